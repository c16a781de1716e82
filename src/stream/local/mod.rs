//! An in-process multi-shard stream, shaped like Kinesis: records are routed to shards by the MD5
//! of their partition key over evenly split hash ranges, and get increasing sequence numbers.
//! Bounded per shard: a producer waits while a shard is full.
//!
//! In: records from a producer ([`LocalStream::put`], [`LocalStream::put_batch`]) until
//! [`LocalStream::close`]. Out: batches through [`ShardCursor`]s, then `shard_end` once a closed
//! shard is drained.
//!
//! Unlike Kinesis, the local stream keeps only unread records: a record is dropped as soon as a
//! cursor has returned it, which is what bounds its memory. So each shard is meant to have one
//! consumer at a time, and a cursor re-opened with [`StartPosition::After`] sees only the
//! records no cursor has been handed yet (those at or before the position are skipped). Sequence
//! numbers depend only on the shard and the order of puts, so a fresh stream fed the same records
//! numbers them the same: a restarted pipeline can resume from a checkpoint taken on an earlier
//! stream. (Nothing here is durable: the stream lives and dies with the process, so recovery
//! always means feeding a fresh stream again from the source.)
//!
//! [`LocalStream::trim`] plays the part of Kinesis's retention: it drops a shard's oldest records,
//! read or not. Sequence numbers here have no holes, so a cursor resumed after a position knows
//! exactly whether records after it were trimmed, and says so on its first read
//! ([`ReadBatch::retention_gap`](crate::stream::ReadBatch::retention_gap)).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use compact_str::CompactString;
use tokio::sync::Notify;

use super::{
    Record, ShardCursor, ShardInfo, StartPosition, StreamError, StreamSource, partition_key_hash,
};
use crate::model::ids::ShardId;
use crate::model::tick::{Position, SequenceNumber};

mod cursor;

pub use self::cursor::LocalShardCursor;
use self::cursor::Skip;

/// Sequence number of record `n` of shard `s`: `10^20 + s * 10^15 + n`. Same width for every
/// shard under 100 000, and distinct across shards, like Kinesis's.
const SEQUENCE_BASE: u128 = 100_000_000_000_000_000_000;
const SEQUENCE_SHARD_STRIDE: u128 = 1_000_000_000_000_000;

/// Partition keys whose shard is remembered. Producers reuse few keys (one per symbol), and
/// hashing one costs more than the rest of a put; past this many the memory is given back.
const KEY_CACHE_ENTRIES: usize = 65_536;

/// How a [`LocalStream`] is sized and paced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalStreamConfig {
    pub shards: usize,
    /// Unread records a shard holds before producers wait: the memory bound.
    pub capacity_per_shard: usize,
    /// Most records one [`ShardCursor::next_batch`] returns (Kinesis: 10 000 per GetRecords).
    pub max_batch_records: usize,
    /// How long `next_batch` waits on an idle shard before returning an empty batch.
    pub idle_wait: Duration,
}

impl LocalStreamConfig {
    /// Batches of up to 10 000 records and a 200 ms idle wait.
    pub fn new(shards: usize, capacity_per_shard: usize) -> Self {
        Self {
            shards,
            capacity_per_shard,
            max_batch_records: 10_000,
            idle_wait: Duration::from_millis(200),
        }
    }
}

#[derive(Debug)]
struct Shard {
    index: usize,
    id: ShardId,
    /// First hash key of the shard's range; the range ends where the next shard's starts.
    starting_hash_key: u128,
    state: Mutex<ShardState>,
    /// Woken on put and on close: the reader waits here for records.
    records_added: Notify,
    /// Woken when a reader takes records: producers wait here for room.
    room_freed: Notify,
}

#[derive(Debug, Default)]
struct ShardState {
    unread: VecDeque<Record>,
    /// Records ever put in the shard: the offset of the next sequence number.
    put_count: u64,
    /// Records trimmed from the head of the shard ([`LocalStream::trim`]): those numbered below.
    trimmed: u64,
    newest_arrival_ms: i64,
    closed: bool,
}

impl Shard {
    fn lock(&self) -> MutexGuard<'_, ShardState> {
        // No code panics while holding the lock half-way through an update, so the state behind
        // a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn position(&self, n: u64) -> Position {
        let sequence = SEQUENCE_BASE + self.index as u128 * SEQUENCE_SHARD_STRIDE + u128::from(n);
        // Digits on the stack, so the `Arc<str>` is the only allocation; itoa divides a u128 by
        // 10^19 once instead of calling the u128 division for every digit.
        Position::new(SequenceNumber::new(itoa::Buffer::new().format(sequence)), 0)
    }

    /// The number `n` of the record at `position` in this shard ([`Shard::position`]), `None`
    /// for a position of another shard (or before any record).
    fn number_of(&self, position: &Position) -> Option<u64> {
        let sequence: u128 = position.sequence.as_str().parse().ok()?;
        let first = SEQUENCE_BASE + self.index as u128 * SEQUENCE_SHARD_STRIDE;
        let n = sequence.checked_sub(first)?;
        (n < SEQUENCE_SHARD_STRIDE).then_some(n as u64)
    }
}

/// Partition key -> shard index. Looked up once per record put: foldhash rather than SipHash, as
/// keys come from the program's own producers.
type KeyCache = foldhash::HashMap<Box<str>, usize>;

/// The in-process stream. Producers and cursors share it through an `Arc`.
#[derive(Debug)]
pub struct LocalStream {
    shards: Vec<Arc<Shard>>,
    keys: Mutex<KeyCache>,
    capacity_per_shard: usize,
    max_batch_records: usize,
    idle_wait: Duration,
}

impl LocalStream {
    /// A stream of `shards` shards holding up to `capacity_per_shard` unread records each, with
    /// the default read pacing of [`LocalStreamConfig::new`].
    ///
    /// # Panics
    /// When `shards` or `capacity_per_shard` is zero.
    pub fn new(shards: usize, capacity_per_shard: usize) -> Arc<Self> {
        Self::with_config(LocalStreamConfig::new(shards, capacity_per_shard))
    }

    /// # Panics
    /// When any count in `config` is zero.
    pub fn with_config(config: LocalStreamConfig) -> Arc<Self> {
        let LocalStreamConfig {
            shards,
            capacity_per_shard,
            max_batch_records,
            idle_wait,
        } = config;
        assert!(shards > 0, "a stream needs at least one shard");
        assert!(
            capacity_per_shard > 0,
            "a shard must hold at least one record"
        );
        assert!(
            max_batch_records > 0,
            "a batch must hold at least one record"
        );
        let shards = starting_hash_keys(shards)
            .into_iter()
            .enumerate()
            .map(|(index, starting_hash_key)| {
                Arc::new(Shard {
                    index,
                    id: format!("shardId-{index:012}").into(),
                    starting_hash_key,
                    state: Mutex::default(),
                    records_added: Notify::new(),
                    room_freed: Notify::new(),
                })
            })
            .collect();
        Arc::new(Self {
            shards,
            keys: Mutex::default(),
            capacity_per_shard,
            max_batch_records,
            idle_wait,
        })
    }

    /// How many shards the stream has.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The shard a partition key is routed to.
    pub fn shard_of(&self, partition_key: &str) -> &ShardId {
        &self.shards[self.shard_index(partition_key)].id
    }

    /// Records put but not yet returned by a cursor, over all shards.
    pub fn unread(&self) -> usize {
        self.shards.iter().map(|s| s.lock().unread.len()).sum()
    }

    /// Adds one record; waits while its shard is full.
    ///
    /// # Panics
    /// When the stream is closed.
    pub async fn put(&self, partition_key: &str, data: Bytes) -> Position {
        let mut positions = self.put_batch(vec![(partition_key.to_owned(), data)]).await;
        positions.pop().expect("one record put")
    }

    /// Adds records, each to the shard of its partition key, and returns their positions in the
    /// order given. Each shard takes its records under one lock for as long as it has room, then
    /// the call waits for a reader to make room; records of one key keep their order.
    ///
    /// Dropping the future part-way leaves a prefix of each shard's records in the stream.
    ///
    /// # Panics
    /// When the stream is closed.
    pub async fn put_batch<K: AsRef<str>>(&self, records: Vec<(K, Bytes)>) -> Vec<Position> {
        let mut per_shard: Vec<Vec<(usize, CompactString, Bytes)>> =
            vec![Vec::new(); self.shards.len()];
        let count = records.len();
        {
            let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
            for (at, (key, data)) in records.into_iter().enumerate() {
                let key = key.as_ref();
                let shard = self.route(&mut keys, key);
                per_shard[shard].push((at, key.into(), data));
            }
        }
        let mut positions: Vec<Option<Position>> = vec![None; count];
        for (shard, pending) in self.shards.iter().zip(per_shard) {
            let mut pending = pending.into_iter().peekable();
            while pending.peek().is_some() {
                let room_freed = shard.room_freed.notified();
                tokio::pin!(room_freed);
                // Registered before the check, so a read between the check and the wait is not
                // missed.
                room_freed.as_mut().enable();
                let added = {
                    let mut state = shard.lock();
                    assert!(!state.closed, "put on a closed local stream");
                    let room = self.capacity_per_shard.saturating_sub(state.unread.len());
                    let arrival_time_ms = now_ms();
                    let mut added = 0;
                    for (at, key, data) in pending.by_ref().take(room) {
                        let position = shard.position(state.put_count);
                        state.put_count += 1;
                        positions[at] = Some(position.clone());
                        state.unread.push_back(Record {
                            data,
                            partition_key: key,
                            position,
                            arrival_time_ms,
                        });
                        added += 1;
                    }
                    if added > 0 {
                        state.newest_arrival_ms = arrival_time_ms;
                    }
                    added
                };
                if added > 0 {
                    shard.records_added.notify_waiters();
                } else {
                    room_freed.await;
                }
            }
        }
        positions
            .into_iter()
            .map(|p| p.expect("every record was put"))
            .collect()
    }

    /// Trims the `count` oldest records ever put in shard `shard_index`, read or not, as a
    /// stream's retention trims old records (a smaller count than an earlier trim's changes
    /// nothing). A cursor resuming after a position whose following records are trimmed reports
    /// the gap on its first read.
    ///
    /// # Panics
    /// When the stream has no shard `shard_index`.
    pub fn trim(&self, shard_index: usize, count: u64) {
        let shard = &self.shards[shard_index];
        let mut state = shard.lock();
        state.trimmed = state.trimmed.max(count.min(state.put_count));
        let (trimmed, unread) = (state.trimmed, state.unread.len());
        while state
            .unread
            .front()
            .is_some_and(|r| shard.number_of(&r.position).is_some_and(|n| n < trimmed))
        {
            state.unread.pop_front();
        }
        let dropped = state.unread.len() != unread;
        drop(state);
        if dropped {
            shard.room_freed.notify_waiters();
        }
    }

    /// No more records: once a shard is drained, its cursor reports `shard_end`.
    pub fn close(&self) {
        for shard in &self.shards {
            shard.lock().closed = true;
            shard.records_added.notify_waiters();
        }
    }

    /// Index (in shard order) of the shard a partition key is routed to; cached like a put's.
    pub fn shard_index(&self, partition_key: &str) -> usize {
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        self.route(&mut keys, partition_key)
    }

    /// The shard of `key`, from the cache when there.
    fn route(&self, keys: &mut KeyCache, key: &str) -> usize {
        if let Some(&shard) = keys.get(key) {
            return shard;
        }
        if keys.len() >= KEY_CACHE_ENTRIES {
            keys.clear();
        }
        let shard = self.hashed_shard_index(key);
        keys.insert(key.into(), shard);
        shard
    }

    fn hashed_shard_index(&self, partition_key: &str) -> usize {
        let hash = partition_key_hash(partition_key);
        self.shards
            .partition_point(|s| s.starting_hash_key <= hash)
            .saturating_sub(1)
    }

    #[cfg(test)]
    fn hash_key_range(&self, index: usize) -> (u128, u128) {
        let end = match self.shards.get(index + 1) {
            Some(next) => next.starting_hash_key - 1,
            None => u128::MAX,
        };
        (self.shards[index].starting_hash_key, end)
    }
}

/// The first hash key of each of `shards` even ranges over `0..2^128`, as Kinesis CreateStream
/// splits them: shard `i` starts at `floor(i * 2^128 / shards)`.
fn starting_hash_keys(shards: usize) -> Vec<u128> {
    let n = shards as u128;
    // 2^128 = quotient * n + rest with 1 <= rest <= n, written without 2^128 itself.
    let (quotient, rest) = (u128::MAX / n, u128::MAX % n + 1);
    (0..n).map(|i| i * quotient + i * rest / n).collect()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[async_trait]
impl StreamSource for LocalStream {
    async fn list_shards(&self) -> Result<Vec<ShardInfo>, StreamError> {
        Ok(self
            .shards
            .iter()
            .map(|shard| ShardInfo {
                id: shard.id.clone(),
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
        let found = self.shards.iter().find(|s| s.id == *shard).ok_or_else(|| {
            StreamError::ShardNotFound {
                shard: shard.clone(),
            }
        })?;
        let resumed_after = match &start {
            StartPosition::After(position) => found
                .number_of(position)
                .map(|number| (position.clone(), number)),
            _ => None,
        };
        let skip = match start {
            StartPosition::TrimHorizon => Skip::Nothing,
            StartPosition::Latest => match found.lock().put_count {
                0 => Skip::Nothing,
                count => Skip::UpTo(found.position(count - 1)),
            },
            StartPosition::AtTimestamp(ms) => Skip::ArrivedBefore(ms),
            StartPosition::After(position) => Skip::UpTo(position),
        };
        Ok(Box::new(LocalShardCursor {
            shard: found.clone(),
            skip,
            resumed_after,
            max_batch_records: self.max_batch_records,
            idle_wait: self.idle_wait,
        }))
    }
}

#[cfg(test)]
mod tests;
