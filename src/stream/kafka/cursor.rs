//! Reading one partition: fetches from the next offset, long-polling at the broker while the
//! partition is idle, and how far behind its end the reader is.
//!
//! Records trimmed by the topic's retention before they were read are told exactly, as offsets
//! are dense: a resume (or a read) whose next offset is below the partition's first one lost the
//! records between them, and the next batch carries a [`RetentionGap`] up to its first record.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use compact_str::CompactString;
use rskafka::client::error::{Error as KafkaError, ProtocolError};
use rskafka::client::partition::{OffsetAt, PartitionClient};
use rskafka::record::RecordAndOffset;
use tokio::time::Instant;

use super::connect::{stream_error, timed_out};
use super::{Fetching, within};
use crate::model::ids::ShardId;
use crate::model::tick::{Position, SequenceNumber};
use crate::stream::{ReadBatch, Record, RetentionGap, ShardCursor, StreamError};

pub struct KafkaCursor {
    shard_id: ShardId,
    client: Arc<PartitionClient>,
    fetching: Fetching,
    /// The offset of the next record to read.
    next: i64,
    /// Records after this position were trimmed before they were read: the next batch with a
    /// record says so.
    gap_after: Option<Position>,
}

fn position(offset: i64) -> Position {
    Position::new(SequenceNumber::new(offset.to_string()), 0)
}

impl KafkaCursor {
    pub fn new(
        shard_id: ShardId,
        client: Arc<PartitionClient>,
        fetching: Fetching,
        next: i64,
    ) -> Self {
        Self {
            shard_id,
            client,
            fetching,
            next,
            gap_after: None,
        }
    }

    async fn offset(&self, at: OffsetAt) -> Result<i64, StreamError> {
        let client = self.client.clone();
        within(
            self.fetching.request_timeout,
            "ListOffsets",
            Some(&self.shard_id),
            async move { client.get_offset(at).await },
        )
        .await
    }

    /// Checks a resume after `after` for records trimmed since (a checkpoint past the
    /// partition's end shows on the first fetch).
    pub async fn resume_after(&mut self, after: Position) -> Result<(), StreamError> {
        self.skip_trimmed(after).await.map(|_| ())
    }

    /// Moves the next offset up to the partition's first when records before it were trimmed;
    /// returns whether it did.
    async fn skip_trimmed(&mut self, after: Position) -> Result<bool, StreamError> {
        let earliest = self.offset(OffsetAt::Earliest).await?;
        let trimmed = earliest > self.next;
        if trimmed {
            tracing::warn!(
                next = self.next,
                earliest,
                "Records were trimmed by the topic's retention before they were read."
            );
            self.gap_after = Some(after);
            self.next = earliest;
        }
        Ok(trimmed)
    }

    /// The records from the next offset on, and the offset after the last of them.
    /// The next offset is past the partition's end: the topic was deleted and created again,
    /// or the cluster lost acknowledged records. Reading on from the end would skip whatever is
    /// written up to that offset, so the reader stops for an operator.
    fn past_the_end(&self) -> StreamError {
        StreamError::Request {
            operation: "Fetch",
            shard: Some(self.shard_id.clone()),
            message: format!(
                "offset {} is past the partition's end: was the topic created again? Remove the \
                 partition's checkpoint to read it anew.",
                self.next
            ),
            retryable: false,
        }
    }

    fn records(&self, fetched: Vec<RecordAndOffset>) -> (Vec<Record>, Option<i64>) {
        let next = fetched.iter().map(|r| r.offset + 1).max();
        let records = fetched
            .into_iter()
            .filter(|r| r.offset >= self.next)
            .map(|r| Record {
                data: r.record.value.map(Bytes::from).unwrap_or_default(),
                partition_key: r
                    .record
                    .key
                    .map(|key| CompactString::from_utf8_lossy(&key))
                    .unwrap_or_default(),
                position: position(r.offset),
                arrival_time_ms: r.record.timestamp.timestamp_millis(),
            })
            .collect();
        (records, next)
    }
}

#[async_trait]
impl ShardCursor for KafkaCursor {
    async fn next_batch(&mut self) -> Result<ReadBatch, StreamError> {
        let started = Instant::now();
        let Fetching {
            max_wait,
            max_bytes,
            request_timeout,
        } = self.fetching;
        let client = self.client.clone();
        let fetch = client.fetch_records(self.next, 1..max_bytes, max_wait.as_millis() as i32);
        let (fetched, high_watermark) =
            match tokio::time::timeout(request_timeout + max_wait, fetch).await {
                Err(_) => return Err(timed_out("Fetch", Some(&self.shard_id), request_timeout)),
                Ok(Err(KafkaError::ServerError {
                    protocol_error: ProtocolError::OffsetOutOfRange,
                    ..
                })) => {
                    // Trimmed under a reader that fell behind the retention, or past the end.
                    if self.skip_trimmed(position(self.next - 1)).await? {
                        return Ok(ReadBatch::default());
                    }
                    return Err(self.past_the_end());
                }
                Ok(Err(error)) => return Err(stream_error("Fetch", Some(&self.shard_id), error)),
                Ok(Ok(fetched)) => fetched,
            };
        // Real Kafka refuses a fetch past the end (handled above); some brokers answer it empty.
        if self.next > high_watermark {
            return Err(self.past_the_end());
        }
        let (records, next) = self.records(fetched);
        let (Some(last), Some(next)) = (records.last(), next) else {
            // A broker that answers an idle fetch at once is not asked again at once.
            tokio::time::sleep_until(started + max_wait).await;
            return Ok(ReadBatch {
                millis_behind_latest: Some(0),
                records_behind_latest: Some((high_watermark - self.next).max(0)),
                ..ReadBatch::default()
            });
        };
        self.next = self.next.max(next);
        let behind = (high_watermark - self.next).max(0);
        let millis_behind_latest = match behind {
            0 => 0,
            _ => (chrono::Utc::now().timestamp_millis() - last.arrival_time_ms).max(0),
        };
        let retention_gap = self.gap_after.take().map(|after| RetentionGap {
            after,
            before: Some(records[0].position.clone()),
            arrival_time_ms: records[0].arrival_time_ms,
        });
        Ok(ReadBatch {
            records,
            millis_behind_latest: Some(millis_behind_latest),
            records_behind_latest: Some(behind),
            shard_end: false,
            retention_gap,
        })
    }
}
