//! The stream port on Kinesis Data Streams (polling consumer).
//!
//! A cursor keeps a shard iterator and paces `GetRecords` within the shard's read limits (5 calls
//! and 2 MB per second): it polls again at once while behind, and slowly while idle. Throttling
//! and 5xx back off with jitter; an expired iterator is replaced from the last position read.
//! KPL-aggregated records are split into user records with their sub-sequence numbers.
//!
//! A cursor resumed after a position opens its iterator at that position's record and skips what
//! was done; its first read then says whether that record was still there ([`GapWatch`]). If the
//! stream refuses the sequence number, the cursor reads from the trim horizon instead, and the
//! same first read decides.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::config::http::HttpResponse;
use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::operation::get_shard_iterator::builders::GetShardIteratorFluentBuilder;
use aws_sdk_kinesis::operation::get_shard_iterator::{
    GetShardIteratorError, GetShardIteratorOutput,
};
use aws_sdk_kinesis::primitives::DateTime;
use aws_sdk_kinesis::types::ShardIteratorType;
use backon::Retryable;
use compact_str::CompactString;
use tokio::time::Instant;

use super::retention::GapWatch;
use super::{
    HashRange, ReadBatch, Record, RetentionGap, ShardCursor, ShardInfo, StartPosition, StreamError,
    StreamSource,
};
use crate::aws;
use crate::model::ids::ShardId;
use crate::model::kpl::deaggregate;
use crate::model::tick::{Position, SequenceNumber};

/// The shortest gap between two `GetRecords` calls on one shard (the limit is 5 per second).
const MIN_CALL_GAP: Duration = Duration::from_millis(200);
/// A shard's read limit, bytes per second.
const SHARD_READ_BYTES_PER_SECOND: f64 = 2.0 * 1024.0 * 1024.0;

/// How a cursor polls.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Polling {
    /// Records per `GetRecords` call (at most 10,000).
    pub max_records: i32,
    /// Gap between calls while the shard has nothing new.
    pub idle_interval: Duration,
}

impl Default for Polling {
    fn default() -> Self {
        Self {
            max_records: 10_000,
            idle_interval: Duration::from_secs(1),
        }
    }
}

pub struct KinesisStream {
    client: Client,
    stream_name: String,
    polling: Polling,
}

impl KinesisStream {
    pub fn new(client: Client, stream_name: impl Into<String>, polling: Polling) -> Self {
        Self {
            client,
            stream_name: stream_name.into(),
            polling,
        }
    }
}

fn request_error<E>(
    operation: &'static str,
    shard: Option<&ShardId>,
    error: &aws_sdk_kinesis::error::SdkError<E, aws_sdk_kinesis::config::http::HttpResponse>,
) -> StreamError
where
    E: aws_sdk_kinesis::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    StreamError::Request {
        operation,
        shard: shard.cloned(),
        message: aws::describe(error),
        retryable: aws::is_retryable(error),
    }
}

async fn shard_iterator(
    client: &Client,
    stream_name: &str,
    shard_id: &ShardId,
    start: &StartPosition,
) -> Result<Option<String>, StreamError> {
    let request = client
        .get_shard_iterator()
        .stream_name(stream_name)
        .shard_id(shard_id.as_ref());
    let trim_horizon = request
        .clone()
        .shard_iterator_type(ShardIteratorType::TrimHorizon);
    let typed = match start {
        StartPosition::TrimHorizon => trim_horizon.clone(),
        StartPosition::Latest => request.shard_iterator_type(ShardIteratorType::Latest),
        StartPosition::AtTimestamp(ms) => request
            .shard_iterator_type(ShardIteratorType::AtTimestamp)
            .timestamp(DateTime::from_millis(*ms)),
        // Before every record: not a sequence number the stream knows.
        StartPosition::After(position) if *position == Position::before_any() => {
            trim_horizon.clone()
        }
        // AT, not AFTER: the checkpointed record may be a KPL aggregate whose later user records
        // are not done yet, and whether the record is still there tells whether anything after
        // it was trimmed. The cursor re-reads it and skips every position already done.
        StartPosition::After(position) => request
            .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
            .starting_sequence_number(position.sequence.as_str()),
    };
    let output = match (send_with_retries(typed).await, start) {
        (Err(error), StartPosition::After(position)) if refuses_sequence_number(&error) => {
            tracing::warn!(%position, error = %aws::describe(&error),
                "The stream refuses the sequence number to resume at; reading from the trim horizon.");
            send_with_retries(trim_horizon).await
        }
        (result, _) => result,
    };
    let output = output.map_err(|e| request_error("GetShardIterator", Some(shard_id), &e))?;
    Ok(output.shard_iterator)
}

async fn send_with_retries(
    request: GetShardIteratorFluentBuilder,
) -> Result<GetShardIteratorOutput, SdkError<GetShardIteratorError, HttpResponse>> {
    (|| request.clone().send())
        .retry(crate::retry::backoff())
        .when(aws::is_retryable)
        .await
}

/// Whether `GetShardIterator` refused the starting sequence number itself, as Kinesis does for a
/// number of another stream (one deleted and created again under the same name) and, by some
/// reports, for one older than the trim horizon. A number of another shard ("It encodes
/// shardId-…") is a wrong checkpoint, not a trimmed one, and stays an error.
fn refuses_sequence_number(error: &SdkError<GetShardIteratorError, HttpResponse>) -> bool {
    error.as_service_error().is_some_and(|e| {
        e.is_invalid_argument_exception() && !e.message().is_some_and(|m| m.contains("encodes"))
    })
}

#[async_trait]
impl StreamSource for KinesisStream {
    async fn list_shards(&self) -> Result<Vec<ShardInfo>, StreamError> {
        let mut shards = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            // The API takes either the stream name or a page token, never both.
            let request = match &next_token {
                Some(token) => self.client.list_shards().next_token(token),
                None => self.client.list_shards().stream_name(&self.stream_name),
            };
            let output = (|| request.clone().send())
                .retry(crate::retry::backoff())
                .when(aws::is_retryable)
                .await
                .map_err(|e| request_error("ListShards", None, &e))?;
            shards.extend(output.shards().iter().map(|shard| ShardInfo {
                id: shard.shard_id().into(),
                parent: shard.parent_shard_id().map(Into::into),
                adjacent_parent: shard.adjacent_parent_shard_id().map(Into::into),
                hash_range: shard.hash_key_range().and_then(|range| {
                    Some(HashRange {
                        start: range.starting_hash_key().parse().ok()?,
                        end: range.ending_hash_key().parse().ok()?,
                    })
                }),
            }));
            match output.next_token {
                Some(token) => next_token = Some(token),
                None => return Ok(shards),
            }
        }
    }

    async fn open_shard(
        &self,
        shard: &ShardId,
        start: StartPosition,
    ) -> Result<Box<dyn ShardCursor>, StreamError> {
        let iterator = shard_iterator(&self.client, &self.stream_name, shard, &start).await?;
        let skip_through = match &start {
            StartPosition::After(position) => Some(position.clone()),
            _ => None,
        };
        Ok(Box::new(KinesisCursor {
            client: self.client.clone(),
            stream_name: self.stream_name.clone(),
            shard_id: shard.clone(),
            polling: self.polling,
            gap_watch: GapWatch::new(&start),
            start,
            iterator,
            last_read: None,
            skip_through,
            next_call_at: Instant::now(),
        }))
    }
}

struct KinesisCursor {
    client: Client,
    stream_name: String,
    shard_id: ShardId,
    polling: Polling,
    /// Where the cursor started, for a fresh iterator when nothing was read yet.
    start: StartPosition,
    /// `None` once the shard is closed and read to its end.
    iterator: Option<String>,
    last_read: Option<Position>,
    /// User records up to this position were already processed (resuming inside a KPL record).
    skip_through: Option<Position>,
    /// Until the first read after the iterator was opened at a position: whether records after
    /// it were lost to the stream's retention.
    gap_watch: Option<GapWatch>,
    next_call_at: Instant,
}

impl KinesisCursor {
    async fn renew_iterator(&mut self) -> Result<(), StreamError> {
        let start = match &self.last_read {
            Some(position) => StartPosition::After(position.clone()),
            None => self.start.clone(),
        };
        if let StartPosition::After(position) = &start {
            self.skip_through = Some(position.clone());
        }
        self.gap_watch = GapWatch::new(&start);
        self.iterator =
            shard_iterator(&self.client, &self.stream_name, &self.shard_id, &start).await?;
        Ok(())
    }

    fn records(&mut self, kinesis_records: Vec<aws_sdk_kinesis::types::Record>) -> Vec<Record> {
        let mut records = Vec::with_capacity(kinesis_records.len());
        let kinesis_records_seen = !kinesis_records.is_empty();
        for record in kinesis_records {
            let sequence = SequenceNumber::new(record.sequence_number);
            let partition_key = CompactString::from(record.partition_key);
            let arrival_time_ms = record
                .approximate_arrival_timestamp
                .map_or(0, |t| t.to_millis().unwrap_or(0));
            let data = bytes::Bytes::from(record.data.into_inner());
            for user in deaggregate(&data) {
                let position = Position::new(sequence.clone(), user.sub_sequence);
                if self
                    .skip_through
                    .as_ref()
                    .is_some_and(|done| position <= *done)
                {
                    continue;
                }
                records.push(Record {
                    data: user.data,
                    partition_key: user
                        .partition_key
                        .map_or_else(|| partition_key.clone(), Into::into),
                    position,
                    arrival_time_ms,
                });
            }
        }
        // Positions only grow, so once the re-read record has gone by nothing else is skipped.
        // (An empty batch does not count: GetRecords may return nothing before the data.)
        if kinesis_records_seen {
            self.skip_through = None;
        }
        records
    }

    /// The watch's verdict on a read whose first stream record has `first_sequence` (none when
    /// the read was empty); `records` are the user records it hands on.
    fn retention_gap(
        &mut self,
        first_sequence: Option<SequenceNumber>,
        records: &[Record],
    ) -> Option<RetentionGap> {
        match first_sequence {
            Some(first) => self.gap_watch.take()?.first_read(&first, records.first()),
            None if self.iterator.is_none() => Some(self.gap_watch.take()?.shard_ended()),
            None => None,
        }
    }
}

#[async_trait]
impl ShardCursor for KinesisCursor {
    async fn next_batch(&mut self) -> Result<ReadBatch, StreamError> {
        tokio::time::sleep_until(self.next_call_at).await;
        let Some(iterator) = self.iterator.clone() else {
            return Ok(ReadBatch {
                shard_end: true,
                ..ReadBatch::default()
            });
        };
        let request = self
            .client
            .get_records()
            .shard_iterator(&iterator)
            .limit(self.polling.max_records);
        let output = match (|| request.clone().send())
            .retry(crate::retry::backoff())
            .when(aws::is_retryable)
            .await
        {
            Ok(output) => output,
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_expired_iterator_exception()) =>
            {
                tracing::info!("Shard iterator expired, renewing.");
                self.renew_iterator().await?;
                return Ok(ReadBatch::default());
            }
            Err(error) => return Err(request_error("GetRecords", Some(&self.shard_id), &error)),
        };
        let bytes: usize = output
            .records()
            .iter()
            .map(|r| r.data().as_ref().len())
            .sum();
        let gap = if output.records().is_empty() {
            self.polling.idle_interval
        } else {
            MIN_CALL_GAP
        };
        // Stay under the shard's 2 MB/s: a large read buys a proportionally longer pause.
        let gap = gap.max(Duration::from_secs_f64(
            bytes as f64 / SHARD_READ_BYTES_PER_SECOND,
        ));
        self.next_call_at = Instant::now() + gap;

        let millis_behind_latest = output.millis_behind_latest;
        self.iterator = output.next_shard_iterator;
        let first_sequence = output
            .records
            .first()
            .map(|r| SequenceNumber::new(r.sequence_number()));
        let records = self.records(output.records);
        let retention_gap = self.retention_gap(first_sequence, &records);
        if let Some(last) = records.last() {
            self.last_read = Some(last.position.clone());
        }
        Ok(ReadBatch {
            records,
            millis_behind_latest,
            records_behind_latest: None,
            shard_end: self.iterator.is_none(),
            retention_gap,
        })
    }
}
