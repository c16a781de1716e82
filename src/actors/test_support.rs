//! What the sink actors' tests share: a checkpointer to acknowledge to, batches of one tick, and
//! a wait for something to happen.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::checkpointer::{Checkpointer, CheckpointerLinks};
use super::fatal::Fatal;
use super::sink::SinkLinks;
use crate::barrier::{CommittedPositions, Propose, ShardBatch, ShardStopped, SinkKind};
use crate::checkpoint::file::FileCheckpointStore;
use crate::health::Health;
use crate::lease::clock::LeaseClock;
use crate::model::enriched::EnrichedTick;
use crate::model::tick::{Position, SequenceNumber};

/// Takes the checkpointer's reports of stopped shards and ignores them.
struct NoCoordinator;

impl Actor for NoCoordinator {
    type Context = Context<Self>;
}

impl Handler<ShardStopped> for NoCoordinator {
    type Result = ();
    fn handle(&mut self, _: ShardStopped, _: &mut Context<Self>) {}
}

/// Links to a checkpointer (checkpoints in `dir`) that waits for `sink` alone.
pub fn sink_links(dir: &std::path::Path, sink: SinkKind) -> (SinkLinks, Arc<CommittedPositions>) {
    let committed = Arc::new(CommittedPositions::default());
    let (fatal, _) = Fatal::new();
    let health = Arc::new(Health::new(Duration::from_secs(60)));
    let leases = Arc::new(LeaseClock::new(Duration::from_secs(3600)));
    let checkpointer = Checkpointer::new(
        Arc::new(FileCheckpointStore::new(dir.join("checkpoints"))),
        vec![sink],
        CheckpointerLinks {
            committed: committed.clone(),
            leases: leases.clone(),
            stopped: NoCoordinator.start().recipient(),
            metrics: Arc::default(),
            health: health.clone(),
            fatal: fatal.clone(),
        },
    )
    .start();
    let links = SinkLinks {
        checkpointer,
        leases,
        metrics: Arc::default(),
        health,
        fatal,
        mailbox: 4,
    };
    (links, committed)
}

pub fn position(sequence: u64) -> Position {
    Position::new(SequenceNumber::new(sequence.to_string()), 0)
}

/// A batch of one tick of `shard` at `sequence`, ending in a barrier there if `barrier`.
pub fn tick_batch(shard: &str, sequence: u64, barrier: bool) -> ShardBatch {
    let tick = EnrichedTick {
        shard_id: shard.into(),
        position: position(sequence),
        ..crate::model::item::tests::sample()
    };
    ShardBatch {
        shard_id: shard.into(),
        fence: crate::lease::Fence {
            shard_id: shard.into(),
            owner: "worker".into(),
            counter: 1,
        },
        through: Some(position(sequence)),
        ticks: vec![Arc::from(vec![tick])].into(),
        alerts: Arc::new([]),
        bars: Arc::new([]),
        dead_letters: Arc::new([]),
        barrier: barrier.then(|| position(sequence)),
        closes_files: barrier,
    }
}

/// A checkpoint candidate of one record at `sequence` (a barrier where files close).
pub fn proposal(shard: &str, sequence: u64) -> Propose {
    Propose {
        shard_id: shard.into(),
        fence: tick_batch(shard, sequence, true).fence,
        position: position(sequence),
        snapshot: Default::default(),
        last: false,
        shard_end: false,
        records: 1,
        newest_arrival_ms: 0,
    }
}

/// Waits (a few seconds at most) until `done` holds.
pub async fn eventually(done: impl AsyncFnMut() -> bool) -> bool {
    eventually_within(Duration::from_secs(2), done).await
}

/// Waits at most `limit` until `done` holds: for what waits on a retry's backoff.
pub async fn eventually_within(limit: Duration, mut done: impl AsyncFnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if done().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// Whether a request to an actor is answered `Ok` within a few seconds: the batch was taken.
pub async fn answered_ok<E1, E2>(reply: impl Future<Output = Result<Result<(), E1>, E2>>) -> bool {
    let answer = tokio::time::timeout(Duration::from_secs(5), reply).await;
    matches!(answer, Ok(Ok(Ok(()))))
}

/// Whether `task` is still running after a fifth of a second: it waits for something (a test
/// asserting that a batch is not taken yet cannot wait for what should never happen).
pub async fn still_waiting<T>(task: &tokio::task::JoinHandle<T>) -> bool {
    tokio::time::sleep(Duration::from_millis(200)).await;
    !task.is_finished()
}
