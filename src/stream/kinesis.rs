//! The stream port on Kinesis Data Streams (polling consumer).
//!
//! A cursor keeps a shard iterator and paces `GetRecords` within the shard's read limits (5 calls
//! and 2 MB per second): it polls again at once while behind, and slowly while idle. Throttling
//! and 5xx back off with jitter; an expired iterator is replaced from the last position read.
//! KPL-aggregated records are split into user records with their sub-sequence numbers.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::DateTime;
use aws_sdk_kinesis::types::ShardIteratorType;
use backon::Retryable;
use compact_str::CompactString;
use tokio::time::Instant;

use super::{
    HashRange, ReadBatch, Record, ShardCursor, ShardId, ShardInfo, StartPosition, StreamError,
    StreamSource,
};
use crate::aws;
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
    let request = match start {
        StartPosition::TrimHorizon => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
        StartPosition::Latest => request.shard_iterator_type(ShardIteratorType::Latest),
        StartPosition::AtTimestamp(ms) => request
            .shard_iterator_type(ShardIteratorType::AtTimestamp)
            .timestamp(DateTime::from_millis(*ms)),
        // AT, not AFTER: the checkpointed record may be a KPL aggregate whose later user records
        // are not done yet. The cursor re-reads it and skips every position already done.
        StartPosition::After(position) => request
            .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
            .starting_sequence_number(position.sequence.as_str()),
    };
    let output = (|| request.clone().send())
        .retry(crate::retry::backoff())
        .when(aws::is_retryable)
        .await
        .map_err(|e| request_error("GetShardIterator", Some(shard_id), &e))?;
    Ok(output.shard_iterator)
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
                tracing::info!(shard_id = %self.shard_id, "Shard iterator expired, renewing.");
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
        let records = self.records(output.records);
        if let Some(last) = records.last() {
            self.last_read = Some(last.position.clone());
        }
        Ok(ReadBatch {
            records,
            millis_behind_latest,
            shard_end: self.iterator.is_none(),
        })
    }
}
