//! Reading a [`LocalStream`](super::LocalStream) shard: a cursor takes the records it returns out
//! of the shard, dropping first those before where it was opened, and says on its first read
//! whether records after its resume position were trimmed.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::Shard;
use crate::model::tick::Position;
use crate::stream::{ReadBatch, Record, RetentionGap, ShardCursor, StreamError};

/// Which records at the head of the shard a cursor drops instead of returning, until the first
/// one it keeps.
#[derive(Debug, Clone)]
pub(super) enum Skip {
    Nothing,
    UpTo(Position),
    ArrivedBefore(i64),
}

/// A cursor on one shard of a [`LocalStream`](super::LocalStream); it takes the records it returns out of the shard.
#[derive(Debug)]
pub struct LocalShardCursor {
    pub(super) shard: Arc<Shard>,
    pub(super) skip: Skip,
    /// Until the first batch: the position the cursor resumed after, and its record's number.
    pub(super) resumed_after: Option<(Position, u64)>,
    pub(super) max_batch_records: usize,
    pub(super) idle_wait: Duration,
}

impl LocalShardCursor {
    /// Takes the next batch if there is one to give (records, or the end of the shard).
    fn take(&mut self) -> Option<ReadBatch> {
        let mut state = self.shard.lock();
        let mut dropped = false;
        while let Some(front) = state.unread.front() {
            let skipped = match &self.skip {
                Skip::Nothing => break,
                Skip::UpTo(position) => front.position <= *position,
                Skip::ArrivedBefore(ms) => front.arrival_time_ms < *ms,
            };
            if !skipped {
                // Positions only grow, so nothing after the first kept record is skipped.
                self.skip = Skip::Nothing;
                break;
            }
            state.unread.pop_front();
            dropped = true;
        }

        let mut batch = if state.unread.is_empty() {
            state.closed.then(|| ReadBatch {
                records: Vec::new(),
                millis_behind_latest: Some(0),
                records_behind_latest: Some(0),
                shard_end: true,
                retention_gap: None,
            })
        } else {
            let take = state.unread.len().min(self.max_batch_records);
            let records: Vec<Record> = state.unread.drain(..take).collect();
            let behind = match (state.unread.is_empty(), records.last()) {
                (false, Some(last)) => state.newest_arrival_ms - last.arrival_time_ms,
                _ => 0,
            };
            Some(ReadBatch {
                millis_behind_latest: Some(behind.max(0)),
                records_behind_latest: Some(state.unread.len() as i64),
                records,
                shard_end: state.closed && state.unread.is_empty(),
                retention_gap: None,
            })
        };
        // Decided on the first batch: records after the resume position were trimmed.
        if let Some(batch) = &mut batch
            && let Some((after, number)) = self.resumed_after.take()
            && state.trimmed > number + 1
        {
            let first = batch.records.first();
            batch.retention_gap = Some(RetentionGap {
                after,
                before: first.map(|r| r.position.clone()),
                arrival_time_ms: first.map_or(0, |r| r.arrival_time_ms),
            });
        }
        drop(state);
        if dropped || batch.as_ref().is_some_and(|b| !b.records.is_empty()) {
            self.shard.room_freed.notify_waiters();
        }
        batch
    }
}

#[async_trait]
impl ShardCursor for LocalShardCursor {
    async fn next_batch(&mut self) -> Result<ReadBatch, StreamError> {
        let deadline = Instant::now() + self.idle_wait;
        let shard = self.shard.clone();
        loop {
            let added = shard.records_added.notified();
            tokio::pin!(added);
            // Registered before looking, so a put between the look and the wait is not missed.
            added.as_mut().enable();
            if let Some(batch) = self.take() {
                return Ok(batch);
            }
            if tokio::time::timeout_at(deadline, added).await.is_err() {
                return Ok(ReadBatch {
                    millis_behind_latest: Some(0),
                    ..ReadBatch::default()
                });
            }
        }
    }
}
