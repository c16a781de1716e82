//! The stream port: shards and the records in them.
//!
//! [`StreamSource`] lists shards and opens a [`ShardCursor`] at a start position; the cursor hands
//! out batches in stream order and hides iterators, pacing and retries. Implementations: the
//! in-process [`local::LocalStream`] (fed by the simulator), Kinesis and Kafka. A cursor that resumes
//! after a position also says when the records that followed it were trimmed by the stream's
//! retention before they were read ([`retention`]). A cursor is used by its shard's reader, in
//! the reader's span, so its log lines leave the shard id to that span.

pub mod kafka;
pub mod kinesis;
pub mod local;
pub mod retention;

use async_trait::async_trait;
use bytes::Bytes;
use compact_str::CompactString;

use crate::model::ids::ShardId;
use crate::model::tick::Position;

pub use self::retention::RetentionGap;

/// A shard and its lineage (parents are read to the end before their children).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardInfo {
    pub id: ShardId,
    pub parent: Option<ShardId>,
    pub adjacent_parent: Option<ShardId>,
    /// The partition-key hashes the shard takes, when the stream says.
    pub hash_range: Option<HashRange>,
}

impl ShardInfo {
    /// The parent and the adjacent parent (a merge has both; a split, only the first).
    pub fn parents(&self) -> impl Iterator<Item = &ShardId> {
        self.parent.iter().chain(self.adjacent_parent.iter())
    }
}

/// An inclusive range of 128-bit partition-key hashes (the MD5 of the key, big-endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashRange {
    pub start: u128,
    pub end: u128,
}

impl HashRange {
    /// Whether records with this partition key go to a shard with this range.
    pub fn holds_key(&self, partition_key: &str) -> bool {
        let hash = partition_key_hash(partition_key);
        self.start <= hash && hash <= self.end
    }
}

/// Where Kinesis places a partition key: the MD5 of the key as a big-endian 128-bit number.
pub fn partition_key_hash(partition_key: &str) -> u128 {
    use md5::{Digest, Md5};
    u128::from_be_bytes(Md5::digest(partition_key.as_bytes()).into())
}

/// One record as stored in the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub data: Bytes,
    /// Inline, not shared: a key shared by every record of a symbol was a reference count that
    /// producer and readers, on different cores, updated for every record.
    pub partition_key: CompactString,
    pub position: Position,
    /// When the stream accepted the record, epoch ms.
    pub arrival_time_ms: i64,
}

/// Where a cursor starts reading.
#[derive(Debug, Clone, PartialEq)]
pub enum StartPosition {
    /// The oldest record still in the shard.
    TrimHorizon,
    /// Only records added after the cursor opens.
    Latest,
    /// The first record that arrived at or after this time, epoch ms.
    AtTimestamp(i64),
    /// Just after a checkpointed position. The cursor watches its first read for records lost
    /// to the stream's retention after it ([`ReadBatch::retention_gap`]), except after
    /// [`Position::before_any`], which is where a shard's start stands.
    After(Position),
}

/// One read from a shard.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadBatch {
    pub records: Vec<Record>,
    /// How far the cursor is behind the tip of the shard, when the stream says.
    pub millis_behind_latest: Option<i64>,
    /// How many records the shard holds past the batch, when the stream says (Kafka's lag).
    pub records_behind_latest: Option<i64>,
    /// The shard is closed and every record has been returned: no batch follows.
    pub shard_end: bool,
    /// Set on the first read of a cursor opened [`StartPosition::After`] a position when the
    /// records that followed that position were trimmed by the stream's retention before they
    /// were read: the batch starts with the first record read instead (or is the shard's end).
    pub retention_gap: Option<RetentionGap>,
}

impl ReadBatch {
    /// Cuts the batch after `end`: the records past it come back as a batch of their own (with
    /// the end of the shard, if this one had it), or `None` when there are none. A retention gap
    /// stays with the batch that holds the first record, which is where its marker goes.
    pub fn split_after(&mut self, end: &Position) -> Option<ReadBatch> {
        let cut = self.records.partition_point(|r| r.position <= *end);
        if cut == self.records.len() {
            return None;
        }
        let rest = ReadBatch {
            records: self.records.split_off(cut),
            millis_behind_latest: self.millis_behind_latest,
            records_behind_latest: self.records_behind_latest,
            shard_end: self.shard_end,
            retention_gap: if cut == 0 {
                self.retention_gap.take()
            } else {
                None
            },
        };
        self.shard_end = false;
        Some(rest)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("shard {shard} does not exist")]
    ShardNotFound { shard: ShardId },
    #[error("stream request {operation} failed (shard {shard:?}): {message}")]
    Request {
        operation: &'static str,
        shard: Option<ShardId>,
        message: String,
        retryable: bool,
    },
}

impl StreamError {
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StreamError::Request {
                retryable: true,
                ..
            }
        )
    }
}

#[async_trait]
pub trait StreamSource: Send + Sync + 'static {
    /// Every shard of the stream, open and closed, with its parents.
    async fn list_shards(&self) -> Result<Vec<ShardInfo>, StreamError>;

    /// Opens a cursor on one shard.
    async fn open_shard(
        &self,
        shard: &ShardId,
        start: StartPosition,
    ) -> Result<Box<dyn ShardCursor>, StreamError>;
}

#[async_trait]
pub trait ShardCursor: Send {
    /// The next batch in stream order. Returns an empty batch after a bounded wait when the shard
    /// is idle, so the caller keeps control of its timers.
    async fn next_batch(&mut self) -> Result<ReadBatch, StreamError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tick::SequenceNumber;

    fn batch(sequences: &[u64], shard_end: bool) -> ReadBatch {
        ReadBatch {
            records: sequences
                .iter()
                .map(|&n| Record {
                    data: Bytes::new(),
                    partition_key: "AAPL".into(),
                    position: Position::new(SequenceNumber::new(n.to_string()), 0),
                    arrival_time_ms: 0,
                })
                .collect(),
            millis_behind_latest: Some(5),
            records_behind_latest: None,
            shard_end,
            retention_gap: None,
        }
    }

    fn sequences(batch: &ReadBatch) -> Vec<String> {
        batch
            .records
            .iter()
            .map(|r| r.position.sequence.to_string())
            .collect()
    }

    #[test]
    fn a_batch_splits_after_a_position_and_the_rest_keeps_the_shard_end() {
        let mut read = batch(&[1, 2, 3, 4], true);
        let end = Position::new(SequenceNumber::new("2"), 0);
        let rest = read.split_after(&end).expect("records past 2");
        assert_eq!(
            (sequences(&read), read.shard_end),
            (vec!["1".into(), "2".into()], false)
        );
        assert_eq!(
            (sequences(&rest), rest.shard_end),
            (vec!["3".into(), "4".into()], true)
        );
        assert_eq!(rest.millis_behind_latest, Some(5));

        let mut whole = batch(&[1, 2], true);
        assert!(whole.split_after(&end).is_none());
        assert!(whole.shard_end, "nothing cut, nothing changed");
        let mut past = batch(&[3], false);
        let rest = past.split_after(&end).unwrap();
        assert!(past.records.is_empty());
        assert_eq!(sequences(&rest), vec!["3".to_string()]);
    }

    #[test]
    fn a_retention_gap_stays_with_the_first_record_when_a_batch_splits() {
        let gap = RetentionGap {
            after: Position::new(SequenceNumber::new("0"), 0),
            before: Some(Position::new(SequenceNumber::new("1"), 0)),
            arrival_time_ms: 0,
        };
        let end = Position::new(SequenceNumber::new("2"), 0);
        let mut read = ReadBatch {
            retention_gap: Some(gap.clone()),
            ..batch(&[1, 2, 3], false)
        };
        let rest = read.split_after(&end).unwrap();
        assert_eq!(
            (read.retention_gap, rest.retention_gap),
            (Some(gap.clone()), None)
        );

        let mut past = ReadBatch {
            retention_gap: Some(gap.clone()),
            ..batch(&[3, 4], false)
        };
        let rest = past.split_after(&end).unwrap();
        assert_eq!((past.retention_gap, rest.retention_gap), (None, Some(gap)));
    }
}
