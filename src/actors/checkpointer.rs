//! The checkpointer: commits, per shard, the newest checkpoint candidate that every sink has made
//! durable, with the window snapshot taken at that position.
//!
//! In: [`Propose`] from shard readers (a position and the shard's window state there) and
//! [`Durable`] from sinks. Out: checkpoints in the [`CheckpointStore`], committed positions on a
//! [`CommittedPositions`] board, and the set of finished shards.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use actix::prelude::*;
use backon::Retryable;
use tokio::sync::watch;

use super::sink::{Durable, SinkKind};
use crate::checkpoint::{Checkpoint, CheckpointStore, ShardSnapshot};
use crate::metrics::{Counter, Latency, Metrics, ShardGauge};
use crate::model::tick::Position;
use crate::pipeline::Fatal;
use crate::stream::ShardId;

/// A checkpoint candidate from a reader.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Propose {
    pub shard_id: ShardId,
    pub position: Position,
    pub snapshot: ShardSnapshot,
    /// The reader will send nothing more for this shard (end of shard, or shutting down).
    pub last: bool,
    /// The shard was read to its end (a closed parent shard).
    pub shard_end: bool,
    /// Records read since the previous candidate.
    pub records: u64,
    /// Stream arrival time of the newest record before the candidate, epoch ms.
    pub newest_arrival_ms: i64,
}

/// A reader that finishes without any record to checkpoint.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct FinishedEmpty {
    pub shard_id: ShardId,
}

/// The committed position of each shard, for sinks that must not run ahead of the checkpoint.
#[derive(Debug, Default)]
pub struct CommittedPositions {
    shards: Mutex<HashMap<ShardId, watch::Sender<Option<Position>>>>,
}

impl CommittedPositions {
    fn sender(&self, shard_id: &ShardId) -> watch::Sender<Option<Position>> {
        let mut shards = self.shards.lock().expect("committed positions lock");
        shards
            .entry(shard_id.clone())
            .or_insert_with(|| watch::channel(None).0)
            .clone()
    }

    pub fn publish(&self, shard_id: &ShardId, position: &Position) {
        self.sender(shard_id).send_if_modified(|current| {
            let newer = current.as_ref().is_none_or(|c| c < position);
            if newer {
                *current = Some(position.clone());
            }
            newer
        });
    }

    pub fn get(&self, shard_id: &ShardId) -> Option<Position> {
        self.sender(shard_id).borrow().clone()
    }

    /// Waits until the shard's committed position is at least `position`.
    pub async fn wait_at_least(&self, shard_id: &ShardId, position: &Position) {
        let mut receiver = self.sender(shard_id).subscribe();
        // The sender lives in the map for the life of the process, so this cannot fail.
        let _ = receiver
            .wait_for(|c| c.as_ref().is_some_and(|c| c >= position))
            .await;
    }
}

struct Candidate {
    position: Position,
    snapshot: ShardSnapshot,
    last: bool,
    shard_end: bool,
    records: u64,
    newest_arrival_ms: i64,
}

#[derive(Default)]
struct ShardProgress {
    candidates: VecDeque<Candidate>,
    durable: HashMap<SinkKind, Position>,
    saving: bool,
    /// Records read but not yet committed.
    lag: u64,
}

pub struct Checkpointer {
    store: Arc<dyn CheckpointStore>,
    sinks: Vec<SinkKind>,
    shards: HashMap<ShardId, ShardProgress>,
    committed: Arc<CommittedPositions>,
    finished: watch::Sender<BTreeSet<ShardId>>,
    metrics: Arc<Metrics>,
    fatal: Fatal,
}

impl Checkpointer {
    pub fn new(
        store: Arc<dyn CheckpointStore>,
        sinks: Vec<SinkKind>,
        committed: Arc<CommittedPositions>,
        finished: watch::Sender<BTreeSet<ShardId>>,
        metrics: Arc<Metrics>,
        fatal: Fatal,
    ) -> Self {
        Self {
            store,
            sinks,
            shards: HashMap::new(),
            committed,
            finished,
            metrics,
            fatal,
        }
    }

    /// The newest candidate every sink has made durable, removed from the queue with all before it.
    fn take_committable(&mut self, shard_id: &ShardId) -> Option<Candidate> {
        let progress = self.shards.get_mut(shard_id)?;
        if progress.saving {
            return None;
        }
        let durable = self
            .sinks
            .iter()
            .map(|sink| progress.durable.get(sink))
            .collect::<Option<Vec<_>>>()?
            .into_iter()
            .min()?
            .clone();
        let count = progress
            .candidates
            .iter()
            .take_while(|c| c.position <= durable)
            .count();
        let mut taken = progress.candidates.drain(..count);
        let mut newest = taken.next_back()?;
        newest.records += taken.map(|c| c.records).sum::<u64>();
        progress.saving = true;
        Some(newest)
    }

    fn commit_ready(&mut self, shard_id: ShardId, ctx: &mut Context<Self>) {
        let Some(candidate) = self.take_committable(&shard_id) else {
            return;
        };
        let checkpoint = Checkpoint {
            shard_id: shard_id.to_string(),
            position: candidate.position.clone(),
            shard_end: candidate.shard_end,
            snapshot: candidate.snapshot,
        };
        let store = self.store.clone();
        let save = async move {
            (|| store.save(&checkpoint))
                .retry(crate::retry::backoff())
                .when(|e| e.is_retryable())
                .notify(|e, wait| tracing::warn!(error = %e, ?wait, "Checkpoint write failed, retrying."))
                .await
        };
        let position = candidate.position;
        let (last, records, newest_arrival_ms) = (
            candidate.last,
            candidate.records,
            candidate.newest_arrival_ms,
        );
        ctx.spawn(save.into_actor(self).map(move |result, act, ctx| {
            if let Err(error) = result {
                act.fatal
                    .raise(format!("checkpoint of shard {shard_id} failed: {error}"));
                return;
            }
            act.committed.publish(&shard_id, &position);
            act.metrics.add(Counter::CheckpointsWritten, 1);
            let now = chrono::Utc::now().timestamp_millis();
            act.metrics.observe(
                Latency::EndToEndLatency,
                (now - newest_arrival_ms).max(0) as f64,
            );
            if let Some(progress) = act.shards.get_mut(&shard_id) {
                progress.saving = false;
                progress.lag = progress.lag.saturating_sub(records);
                act.metrics
                    .set_gauge(ShardGauge::CheckpointLag, &shard_id, progress.lag as f64);
            }
            tracing::debug!(shard_id = %shard_id, %position, "Checkpoint written.");
            if last {
                act.finish(&shard_id);
            } else {
                act.commit_ready(shard_id, ctx);
            }
        }));
    }

    fn finish(&mut self, shard_id: &ShardId) {
        self.shards.remove(shard_id);
        self.metrics.remove_shard(shard_id);
        self.finished.send_modify(|finished| {
            finished.insert(shard_id.clone());
        });
    }
}

impl Actor for Checkpointer {
    type Context = Context<Self>;
}

impl Handler<Propose> for Checkpointer {
    type Result = ();

    fn handle(&mut self, proposal: Propose, ctx: &mut Context<Self>) {
        let progress = self.shards.entry(proposal.shard_id.clone()).or_default();
        progress.lag += proposal.records;
        progress.candidates.push_back(Candidate {
            position: proposal.position,
            snapshot: proposal.snapshot,
            last: proposal.last,
            shard_end: proposal.shard_end,
            records: proposal.records,
            newest_arrival_ms: proposal.newest_arrival_ms,
        });
        self.metrics.set_gauge(
            ShardGauge::CheckpointLag,
            &proposal.shard_id,
            progress.lag as f64,
        );
        self.commit_ready(proposal.shard_id, ctx);
    }
}

impl Handler<Durable> for Checkpointer {
    type Result = ();

    fn handle(&mut self, ack: Durable, ctx: &mut Context<Self>) {
        let progress = self.shards.entry(ack.shard_id.clone()).or_default();
        let durable = progress
            .durable
            .entry(ack.sink)
            .or_insert_with(|| ack.position.clone());
        if *durable < ack.position {
            *durable = ack.position;
        }
        self.commit_ready(ack.shard_id, ctx);
    }
}

impl Handler<FinishedEmpty> for Checkpointer {
    type Result = ();

    fn handle(&mut self, message: FinishedEmpty, _: &mut Context<Self>) {
        self.finish(&message.shard_id);
    }
}
