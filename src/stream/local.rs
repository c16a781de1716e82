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
//! ([`ReadBatch::retention_gap`]).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use compact_str::CompactString;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{
    ReadBatch, Record, RetentionGap, ShardCursor, ShardId, ShardInfo, StartPosition, StreamError,
    StreamSource, partition_key_hash,
};
use crate::model::tick::{Position, SequenceNumber};

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

/// Which records at the head of the shard a cursor drops instead of returning, until the first
/// one it keeps.
#[derive(Debug, Clone)]
enum Skip {
    Nothing,
    UpTo(Position),
    ArrivedBefore(i64),
}

/// A cursor on one shard of a [`LocalStream`]; it takes the records it returns out of the shard.
#[derive(Debug)]
pub struct LocalShardCursor {
    shard: Arc<Shard>,
    skip: Skip,
    /// Until the first batch: the position the cursor resumed after, and its record's number.
    resumed_after: Option<(Position, u64)>,
    max_batch_records: usize,
    idle_wait: Duration,
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
                records,
                millis_behind_latest: Some(behind.max(0)),
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn record(key: &str, n: usize) -> (String, Bytes) {
        (key.to_owned(), Bytes::from(format!("{key}-{n}")))
    }

    async fn cursor(
        stream: &LocalStream,
        shard: usize,
        start: StartPosition,
    ) -> Box<dyn ShardCursor> {
        let id = stream.list_shards().await.unwrap()[shard].id.clone();
        stream.open_shard(&id, start).await.unwrap()
    }

    /// Reads a closed shard to its end.
    async fn drain(cursor: &mut dyn ShardCursor) -> Vec<Record> {
        let mut records = Vec::new();
        loop {
            let batch = cursor.next_batch().await.unwrap();
            records.extend(batch.records);
            if batch.shard_end {
                return records;
            }
        }
    }

    fn data(records: &[Record]) -> Vec<&[u8]> {
        records.iter().map(|r| r.data.as_ref()).collect()
    }

    #[test]
    fn hash_ranges_split_like_kinesis() {
        let stream = LocalStream::new(3, 10);
        // The ranges CreateStream gives a 3-shard stream.
        assert_eq!(
            stream.hash_key_range(0),
            (0, 113_427_455_640_312_821_154_458_202_477_256_070_484)
        );
        assert_eq!(
            stream.hash_key_range(1).0,
            113_427_455_640_312_821_154_458_202_477_256_070_485
        );
        assert_eq!(stream.hash_key_range(2).1, u128::MAX);
        let two = LocalStream::new(2, 10);
        assert_eq!(two.hash_key_range(1), (1 << 127, u128::MAX));
        assert_eq!(LocalStream::new(1, 10).hash_key_range(0), (0, u128::MAX));
    }

    #[test]
    fn keys_go_to_the_shard_whose_range_holds_their_md5() {
        let stream = LocalStream::new(4, 10);
        let mut used = HashMap::new();
        for n in 0..200 {
            let key = format!("KEY{n}");
            let hash = partition_key_hash(&key);
            let index = stream.shard_index(&key);
            let (first, last) = stream.hash_key_range(index);
            assert!((first..=last).contains(&hash), "{key}");
            assert_eq!(stream.shard_of(&key), &stream.shards[index].id);
            *used.entry(index).or_insert(0) += 1;
        }
        assert_eq!(used.len(), 4, "keys spread over every shard: {used:?}");
    }

    #[tokio::test]
    async fn routing_is_deterministic_and_keeps_per_key_order() {
        let keys: Vec<String> = (0..20).map(|n| format!("SYM{n}")).collect();
        let records: Vec<_> = (0..1_000).map(|n| record(&keys[n % 20], n)).collect();
        let mut runs = Vec::new();
        for _ in 0..2 {
            let stream = LocalStream::new(4, 10_000);
            let mut positions = Vec::new();
            for chunk in records.chunks(64) {
                positions.extend(stream.put_batch(chunk.to_vec()).await);
            }
            stream.close();
            let mut shards = Vec::new();
            for shard in 0..4 {
                let mut cursor = cursor(&stream, shard, StartPosition::TrimHorizon).await;
                let read = drain(cursor.as_mut()).await;
                assert!(read.windows(2).all(|w| w[0].position < w[1].position));
                shards.push(read);
            }
            runs.push((positions, shards));
        }
        assert_eq!(runs[0].0, runs[1].0, "same records, same sequence numbers");
        let (positions, shards) = &runs[0];
        assert_eq!(shards.iter().map(Vec::len).sum::<usize>(), records.len());
        for key in &keys {
            let read: Vec<_> = shards
                .iter()
                .flatten()
                .filter(|r| &*r.partition_key == key)
                .collect();
            let put: Vec<_> = records.iter().filter(|(k, _)| k == key).collect();
            assert!(
                read.iter()
                    .all(|r| r.position.sequence.as_str().len() == 21)
            );
            assert_eq!(
                read.iter().map(|r| &r.data).collect::<Vec<_>>(),
                put.iter().map(|(_, d)| d).collect::<Vec<_>>(),
                "{key} in put order"
            );
        }
        // Positions come back in the order the records were given.
        let by_position: HashMap<_, _> = shards
            .iter()
            .flatten()
            .map(|r| (&r.position, &r.data))
            .collect();
        for (position, (_, data)) in positions.iter().zip(&records) {
            assert_eq!(by_position[position], data);
        }
    }

    #[tokio::test]
    async fn a_full_shard_blocks_the_producer_until_read() {
        let stream = LocalStream::new(1, 2);
        stream.put("A", Bytes::from_static(b"1")).await;
        stream.put("A", Bytes::from_static(b"2")).await;
        let put = stream.put("A", Bytes::from_static(b"3"));
        let mut put = std::pin::pin!(put);
        // Polled once: a put with room would finish here, so pending means it waits for room.
        assert!(futures::poll!(put.as_mut()).is_pending());
        assert_eq!(stream.unread(), 2);

        let mut cursor = cursor(&stream, 0, StartPosition::TrimHorizon).await;
        let first = cursor.next_batch().await.unwrap();
        assert_eq!(data(&first.records), [b"1", b"2"]);
        let position = put.await;
        let second = cursor.next_batch().await.unwrap();
        assert_eq!(data(&second.records), [b"3"]);
        assert_eq!(second.records[0].position, position);
    }

    #[tokio::test]
    async fn close_then_drain_ends_the_shard() {
        let stream = LocalStream::with_config(LocalStreamConfig {
            max_batch_records: 2,
            ..LocalStreamConfig::new(1, 10)
        });
        let positions = stream
            .put_batch((0..3).map(|n| record("K", n)).collect())
            .await;
        stream.close();
        let mut cursor = cursor(&stream, 0, StartPosition::TrimHorizon).await;
        let first = cursor.next_batch().await.unwrap();
        assert_eq!(first.records.len(), 2);
        assert!(!first.shard_end);
        let last = cursor.next_batch().await.unwrap();
        assert_eq!(last.records[0].position, positions[2]);
        assert!(
            last.shard_end,
            "the batch that drains a closed shard ends it"
        );
        let after = cursor.next_batch().await.unwrap();
        assert!(after.records.is_empty() && after.shard_end);
    }

    #[tokio::test]
    async fn close_wakes_a_waiting_reader() {
        let stream = LocalStream::with_config(LocalStreamConfig {
            idle_wait: Duration::from_secs(3_600),
            ..LocalStreamConfig::new(1, 10)
        });
        let mut cursor = cursor(&stream, 0, StartPosition::TrimHorizon).await;
        let mut next = cursor.next_batch();
        assert!(
            futures::poll!(next.as_mut()).is_pending(),
            "waits on an open shard"
        );
        stream.close();
        assert!(
            next.await.unwrap().shard_end,
            "woken by close, long before the idle wait"
        );
    }

    #[tokio::test]
    async fn after_a_position_resumes_past_it() {
        let stream = LocalStream::with_config(LocalStreamConfig {
            max_batch_records: 3,
            ..LocalStreamConfig::new(1, 100)
        });
        let positions = stream
            .put_batch((0..10).map(|n| record("K", n)).collect())
            .await;
        stream.close();
        let mut first = cursor(&stream, 0, StartPosition::TrimHorizon).await;
        let batch = first.next_batch().await.unwrap();
        assert_eq!(data(&batch.records), [b"K-0", b"K-1", b"K-2"]);
        drop(first);

        // Resumes from a checkpoint that is behind what was handed out.
        let mut resumed = cursor(&stream, 0, StartPosition::After(positions[5].clone())).await;
        let rest = drain(resumed.as_mut()).await;
        assert_eq!(data(&rest), [b"K-6", b"K-7", b"K-8", b"K-9"]);
    }

    #[tokio::test]
    async fn latest_skips_what_is_already_there() {
        let stream = LocalStream::new(1, 100);
        stream.put("K", Bytes::from_static(b"old")).await;
        let mut cursor = cursor(&stream, 0, StartPosition::Latest).await;
        stream.put("K", Bytes::from_static(b"new")).await;
        stream.close();
        assert_eq!(data(&drain(cursor.as_mut()).await), [b"new"]);
        assert_eq!(stream.unread(), 0, "skipped records are dropped too");
    }

    #[tokio::test]
    async fn at_timestamp_skips_records_that_arrived_before() {
        let stream = LocalStream::new(2, 100);
        let key_of = |shard: usize| {
            (0..)
                .map(|n| format!("K{n}"))
                .find(|k| stream.shard_index(k) == shard)
                .unwrap()
        };
        let (zero, one) = (key_of(0), key_of(1));
        stream.put(&zero, Bytes::from_static(b"a")).await;
        stream.put(&one, Bytes::from_static(b"b")).await;
        stream.close();
        let mut from_epoch = cursor(&stream, 0, StartPosition::AtTimestamp(0)).await;
        assert_eq!(data(&drain(from_epoch.as_mut()).await), [b"a"]);
        let future = now_ms() + 3_600_000;
        let mut from_future = cursor(&stream, 1, StartPosition::AtTimestamp(future)).await;
        assert!(drain(from_future.as_mut()).await.is_empty());
    }

    #[tokio::test]
    async fn an_idle_shard_returns_an_empty_batch_after_the_idle_wait() {
        // Real time: this branch's tokio has no `test-util`, so time cannot be paused. The wait
        // is measured, not used to synchronise anything.
        let idle_wait = Duration::from_millis(30);
        let stream = LocalStream::with_config(LocalStreamConfig {
            idle_wait,
            ..LocalStreamConfig::new(1, 10)
        });
        let mut cursor = cursor(&stream, 0, StartPosition::TrimHorizon).await;
        let started = Instant::now();
        let batch = cursor.next_batch().await.unwrap();
        assert!(started.elapsed() >= idle_wait);
        assert_eq!(
            batch,
            ReadBatch {
                records: Vec::new(),
                millis_behind_latest: Some(0),
                shard_end: false,
                retention_gap: None,
            }
        );
    }

    #[tokio::test]
    async fn a_put_wakes_a_waiting_reader() {
        let stream = LocalStream::with_config(LocalStreamConfig {
            idle_wait: Duration::from_secs(3_600),
            ..LocalStreamConfig::new(1, 10)
        });
        let mut cursor = cursor(&stream, 0, StartPosition::TrimHorizon).await;
        let mut next = cursor.next_batch();
        assert!(
            futures::poll!(next.as_mut()).is_pending(),
            "waits on an empty shard"
        );
        stream.put("K", Bytes::from_static(b"x")).await;
        let batch = next.await.unwrap();
        assert_eq!(data(&batch.records), [b"x"]);
        assert_eq!(batch.millis_behind_latest, Some(0), "caught up");
    }

    #[tokio::test]
    async fn millis_behind_latest_is_measured_from_the_newest_arrival() {
        let stream = LocalStream::with_config(LocalStreamConfig {
            max_batch_records: 1,
            ..LocalStreamConfig::new(1, 10)
        });
        let positions = stream
            .put_batch((0..3).map(|n| record("K", n)).collect())
            .await;
        {
            // Arrival times are the wall clock's: set them to known values.
            let mut state = stream.shards[0].lock();
            for (record, ms) in state.unread.iter_mut().zip([1_000, 1_500, 2_000]) {
                record.arrival_time_ms = ms;
            }
            state.newest_arrival_ms = 2_000;
        }
        let mut cursor = cursor(&stream, 0, StartPosition::TrimHorizon).await;
        let mut behind = Vec::new();
        for position in &positions {
            let batch = cursor.next_batch().await.unwrap();
            assert_eq!(&batch.records[0].position, position);
            behind.push(batch.millis_behind_latest.unwrap());
        }
        assert_eq!(behind, [1_000, 500, 0]);
    }

    #[tokio::test]
    async fn lists_shards_and_refuses_unknown_ones() {
        let stream = LocalStream::new(3, 10);
        let shards = stream.list_shards().await.unwrap();
        let ids: Vec<&str> = shards.iter().map(|s| &*s.id).collect();
        assert_eq!(
            ids,
            [
                "shardId-000000000000",
                "shardId-000000000001",
                "shardId-000000000002"
            ]
        );
        assert!(
            shards
                .iter()
                .all(|s| s.parent.is_none() && s.adjacent_parent.is_none())
        );
        let unknown: ShardId = "shardId-000000000003".into();
        let result = stream
            .open_shard(&unknown, StartPosition::TrimHorizon)
            .await;
        assert!(matches!(result, Err(StreamError::ShardNotFound { shard }) if shard == unknown));
    }

    #[tokio::test]
    async fn sequence_numbers_are_per_shard_and_increasing() {
        let stream = LocalStream::new(2, 10);
        let key = (0..)
            .map(|n| format!("K{n}"))
            .find(|k| stream.shard_index(k) == 1)
            .unwrap();
        let first = stream.put(&key, Bytes::new()).await;
        let second = stream.put(&key, Bytes::new()).await;
        assert_eq!(first.sequence.as_str(), "100001000000000000000");
        assert_eq!(second.sequence.as_str(), "100001000000000000001");
        assert!(first < second);
    }

    #[tokio::test]
    async fn a_resume_after_trimmed_records_reports_the_gap_up_to_the_first_record_read() {
        let stream = LocalStream::with_config(LocalStreamConfig {
            max_batch_records: 3,
            ..LocalStreamConfig::new(1, 100)
        });
        let positions = stream
            .put_batch((0..10).map(|n| record("K", n)).collect())
            .await;
        stream.trim(0, 6);
        assert_eq!(stream.unread(), 4, "trimmed records are gone unread");
        let mut resumed = cursor(&stream, 0, StartPosition::After(positions[2].clone())).await;
        let first = resumed.next_batch().await.unwrap();
        assert_eq!(data(&first.records), [b"K-6", b"K-7", b"K-8"]);
        assert_eq!(
            first.retention_gap,
            Some(RetentionGap {
                after: positions[2].clone(),
                before: Some(positions[6].clone()),
                arrival_time_ms: first.records[0].arrival_time_ms,
            })
        );
        let next = resumed.next_batch().await.unwrap();
        assert_eq!(data(&next.records), [b"K-9"]);
        assert_eq!(next.retention_gap, None, "reported once");
    }

    #[tokio::test]
    async fn trimming_up_to_the_resume_position_or_a_fresh_start_is_no_gap() {
        let stream = LocalStream::new(1, 100);
        let positions = stream
            .put_batch((0..6).map(|n| record("K", n)).collect())
            .await;
        stream.trim(0, 3);
        stream.trim(0, 1); // never back
        stream.close();
        let mut resumed = cursor(&stream, 0, StartPosition::After(positions[2].clone())).await;
        let first = resumed.next_batch().await.unwrap();
        assert_eq!(data(&first.records), [b"K-3", b"K-4", b"K-5"]);
        assert_eq!(
            first.retention_gap, None,
            "nothing after the position was trimmed"
        );

        let stream = LocalStream::new(1, 100);
        stream
            .put_batch((0..6).map(|n| record("K", n)).collect())
            .await;
        stream.trim(0, 4);
        let mut from_start = cursor(&stream, 0, StartPosition::After(Position::before_any())).await;
        let first = from_start.next_batch().await.unwrap();
        assert_eq!(data(&first.records), [b"K-4", b"K-5"]);
        assert_eq!(
            first.retention_gap, None,
            "before any record is no checkpoint"
        );
        let mut horizon = cursor(&stream, 0, StartPosition::TrimHorizon).await;
        assert_eq!(horizon.next_batch().await.unwrap().retention_gap, None);
    }

    #[tokio::test]
    async fn a_gap_waits_for_the_first_record_and_runs_to_the_end_of_a_closed_shard() {
        let stream = LocalStream::with_config(LocalStreamConfig {
            idle_wait: Duration::from_millis(10),
            ..LocalStreamConfig::new(2, 100)
        });
        let key_of = |shard: usize| {
            (0..)
                .map(|n| format!("K{n}"))
                .find(|k| stream.shard_index(k) == shard)
                .unwrap()
        };
        let (zero, one) = (key_of(0), key_of(1));
        let open = stream
            .put_batch(vec![record(&zero, 0), record(&zero, 1)])
            .await;
        let closed = stream
            .put_batch(vec![record(&one, 0), record(&one, 1)])
            .await;
        stream.trim(0, 2);
        stream.trim(1, 2);

        // Open and empty: nothing to place the gap at yet.
        let mut waiting = cursor(&stream, 0, StartPosition::After(open[0].clone())).await;
        let idle = waiting.next_batch().await.unwrap();
        assert!(idle.records.is_empty() && idle.retention_gap.is_none());
        let later = stream.put(&zero, Bytes::from_static(b"later")).await;
        let first = waiting.next_batch().await.unwrap();
        assert_eq!(data(&first.records), [b"later"]);
        let gap = first.retention_gap.unwrap();
        assert_eq!((gap.after, gap.before), (open[0].clone(), Some(later)));

        stream.close();
        let mut ended = cursor(&stream, 1, StartPosition::After(closed[0].clone())).await;
        let last = ended.next_batch().await.unwrap();
        assert!(last.records.is_empty() && last.shard_end);
        assert_eq!(
            last.retention_gap,
            Some(RetentionGap {
                after: closed[0].clone(),
                before: None,
                arrival_time_ms: 0,
            })
        );
    }

    #[test]
    fn producer_futures_can_move_between_threads() {
        fn assert_send<T: Send>(_: &T) {}
        let stream = LocalStream::new(1, 10);
        assert_send(&stream.put_batch(Vec::<(String, Bytes)>::new()));
        assert_send(&stream.put("K", Bytes::new()));
    }

    #[tokio::test]
    #[should_panic(expected = "closed")]
    async fn put_after_close_is_a_bug() {
        let stream = LocalStream::new(1, 10);
        stream.close();
        stream.put("K", Bytes::new()).await;
    }
}
