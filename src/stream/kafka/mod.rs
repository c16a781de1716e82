//! The stream port on a Kafka topic (Amazon MSK or self-run).
//!
//! A partition plays a shard (its id is `<topic>-<partition>`, Kafka's own way of naming one) and
//! a record's offset its sequence number, so table keys, lake columns, dead letters and
//! checkpoints carry offsets. Partitions have no parents and never close. Which worker reads a
//! partition is decided by the lease table, as for Kinesis, not by a consumer group: the
//! checkpoint table is the one record of what was processed, fenced by the lease counter, and no
//! offsets are committed to the cluster.
//!
//! A partition added to the topic (partitions can only be added) is a new shard on the next shard
//! sync. Kafka then sends some keys to it, so a symbol whose key moves starts its windows afresh
//! there: the topic's key-to-partition map is Kafka's, not kinetick's.

pub mod connect;
mod cursor;
pub mod msk_iam;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rskafka::client::Client;
use rskafka::client::partition::{OffsetAt, PartitionClient, UnknownTopicHandling};

use self::connect::{stream_error, timed_out};
use self::cursor::KafkaCursor;
use super::{ShardCursor, ShardInfo, StartPosition, StreamError, StreamSource};
use crate::config::KafkaConfig;
use crate::model::ids::ShardId;
use crate::model::tick::Position;

/// How a cursor fetches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fetching {
    /// Longest a fetch waits at the broker while the partition has nothing new.
    pub max_wait: Duration,
    /// Most bytes one fetch returns.
    pub max_bytes: i32,
    /// Longest one request may take.
    pub request_timeout: Duration,
}

impl Fetching {
    pub fn of(config: &KafkaConfig) -> Self {
        Self {
            max_wait: config.fetch_max_wait,
            max_bytes: config.fetch_max_bytes,
            request_timeout: config.request_timeout,
        }
    }
}

pub struct KafkaStream {
    client: Arc<Client>,
    topic: String,
    fetching: Fetching,
}

impl KafkaStream {
    pub fn new(client: Client, topic: impl Into<String>, fetching: Fetching) -> Self {
        Self {
            client: Arc::new(client),
            topic: topic.into(),
            fetching,
        }
    }

    /// The shard id of a partition of this topic.
    pub fn shard_id(&self, partition: i32) -> ShardId {
        format!("{}-{partition}", self.topic).into()
    }

    fn partition_of(&self, shard: &ShardId) -> Result<i32, StreamError> {
        shard
            .strip_prefix(self.topic.as_str())
            .and_then(|rest| rest.strip_prefix('-'))
            .and_then(|number| number.parse().ok())
            .ok_or_else(|| StreamError::ShardNotFound {
                shard: shard.clone(),
            })
    }

    async fn within<T>(
        &self,
        operation: &'static str,
        shard: Option<&ShardId>,
        call: impl Future<Output = rskafka::client::error::Result<T>>,
    ) -> Result<T, StreamError> {
        within(self.fetching.request_timeout, operation, shard, call).await
    }
}

/// `call`, abandoned after `limit`, its failure as the port reports it.
async fn within<T>(
    limit: Duration,
    operation: &'static str,
    shard: Option<&ShardId>,
    call: impl Future<Output = rskafka::client::error::Result<T>>,
) -> Result<T, StreamError> {
    match tokio::time::timeout(limit, call).await {
        Ok(result) => result.map_err(|e| stream_error(operation, shard, e)),
        Err(_) => Err(timed_out(operation, shard, limit)),
    }
}

/// The offset of a position (offsets are its sequence numbers).
fn offset_of(position: &Position) -> Result<i64, StreamError> {
    position
        .sequence
        .as_str()
        .parse()
        .map_err(|_| StreamError::Request {
            operation: "resume",
            shard: None,
            message: format!("checkpoint position {position} is not a Kafka offset"),
            retryable: false,
        })
}

#[async_trait]
impl StreamSource for KafkaStream {
    async fn list_shards(&self) -> Result<Vec<ShardInfo>, StreamError> {
        let topics = self
            .within("Metadata", None, self.client.list_topics())
            .await?;
        let topic = topics
            .into_iter()
            .find(|topic| topic.name == self.topic)
            .ok_or_else(|| StreamError::Request {
                operation: "Metadata",
                shard: None,
                message: format!("topic {} does not exist", self.topic),
                retryable: false,
            })?;
        let mut partitions: Vec<i32> = topic.partitions.into_iter().collect();
        partitions.sort_unstable();
        Ok(partitions
            .into_iter()
            .map(|partition| ShardInfo {
                id: self.shard_id(partition),
                parent: None,
                adjacent_parent: None,
                hash_range: None,
            })
            .collect())
    }

    async fn open_shard(
        &self,
        shard: &ShardId,
        start: StartPosition,
    ) -> Result<Box<dyn ShardCursor>, StreamError> {
        let partition = self.partition_of(shard)?;
        let client: Arc<PartitionClient> = Arc::new(
            self.within(
                "Metadata",
                Some(shard),
                self.client
                    .partition_client(&self.topic, partition, UnknownTopicHandling::Retry),
            )
            .await?,
        );
        let offset_at = |at| {
            let client = client.clone();
            async move { client.get_offset(at).await }
        };
        let (next, resumed_after) = match start {
            StartPosition::TrimHorizon => (
                self.within("ListOffsets", Some(shard), offset_at(OffsetAt::Earliest))
                    .await?,
                None,
            ),
            StartPosition::Latest => (
                self.within("ListOffsets", Some(shard), offset_at(OffsetAt::Latest))
                    .await?,
                None,
            ),
            StartPosition::AtTimestamp(ms) => {
                let time = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
                let at = self
                    .within(
                        "ListOffsets",
                        Some(shard),
                        offset_at(OffsetAt::Timestamp(time)),
                    )
                    .await?;
                // No record at or after the time: from the end.
                match at {
                    at if at >= 0 => (at, None),
                    _ => (
                        self.within("ListOffsets", Some(shard), offset_at(OffsetAt::Latest))
                            .await?,
                        None,
                    ),
                }
            }
            // Every position is a record here, offset 0 too: partitions never end, so no
            // checkpoint stands before any record (`Position::before_any` is offset 0's).
            StartPosition::After(position) => (offset_of(&position)? + 1, Some(position)),
        };
        let mut cursor = KafkaCursor::new(shard.clone(), client, self.fetching, next);
        if let Some(after) = resumed_after {
            cursor.resume_after(after).await?;
        }
        Ok(Box::new(cursor))
    }
}
