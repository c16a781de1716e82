//! The checkpointer: commits, per shard, the newest checkpoint candidate that every sink has made
//! durable, with the window snapshot taken at that position.
//!
//! In: [`Propose`] from shard readers (a position and the shard's window state there) and
//! [`Durable`] from sinks. Out: checkpoints in the [`CheckpointStore`], committed positions on a
//! [`CommittedPositions`] board, and [`ShardStopped`] once a reader's last checkpoint is written
//! (or refused because the lease moved on).
//!
//! Each reader of a shard has a generation (the lease counter it reads under); messages of an
//! older generation than the newest seen are stale and dropped.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use actix::prelude::*;
use backon::Retryable;
use tokio::sync::watch;

use super::sink::{Durable, SinkKind};
use crate::checkpoint::{Checkpoint, CheckpointError, CheckpointStore, ShardSnapshot};
use crate::lease::Fence;
use crate::metrics::{Counter, Latency, Metrics, ShardGauge};
use crate::model::tick::Position;
use crate::pipeline::Fatal;
use crate::stream::ShardId;

/// A checkpoint candidate from a reader.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Propose {
    pub shard_id: ShardId,
    /// The lease the reader holds; its counter is the reader's generation.
    pub fence: Fence,
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
    pub generation: u64,
    pub shard_end: bool,
}

/// A shard's reader is done here: its last checkpoint is written, or was refused.
#[derive(Debug, Clone, PartialEq, Message)]
#[rtype(result = "()")]
pub struct ShardStopped {
    pub shard_id: ShardId,
    pub generation: u64,
    pub outcome: StopOutcome,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StopOutcome {
    /// Everything read is checkpointed; `shard_end` if the shard was read to its end.
    Checkpointed { shard_end: bool },
    /// The checkpoint store refused the write: another worker holds the lease now.
    LeaseLost,
}

/// The committed position of each shard, for sinks that must not run ahead of the checkpoint,
/// and which generation (lease counter) of the shard is being read here, so that a wait of a
/// reader that lost its lease gives up instead of blocking its sink.
#[derive(Debug, Default)]
pub struct CommittedPositions {
    shards: Mutex<HashMap<ShardId, watch::Sender<ShardCommit>>>,
}

#[derive(Debug, Clone, Default)]
struct ShardCommit {
    position: Option<Position>,
    /// The generation of the shard's live reader, if one is reading it in this process.
    live: Option<u64>,
}

impl CommittedPositions {
    fn sender(&self, shard_id: &ShardId) -> watch::Sender<ShardCommit> {
        let mut shards = self.shards.lock().expect("committed positions lock");
        shards
            .entry(shard_id.clone())
            .or_insert_with(|| watch::channel(ShardCommit::default()).0)
            .clone()
    }

    /// A reader of `generation` starts on the shard.
    pub fn begin(&self, shard_id: &ShardId, generation: u64) {
        self.sender(shard_id)
            .send_modify(|commit| commit.live = Some(generation));
    }

    /// The reader of `generation` is gone: waits on its behalf give up.
    pub fn retire(&self, shard_id: &ShardId, generation: u64) {
        self.sender(shard_id).send_if_modified(|commit| {
            let live = commit.live == Some(generation);
            if live {
                commit.live = None;
            }
            live
        });
    }

    pub fn publish(&self, shard_id: &ShardId, position: &Position) {
        self.sender(shard_id).send_if_modified(|commit| {
            let newer = commit.position.as_ref().is_none_or(|c| c < position);
            if newer {
                commit.position = Some(position.clone());
            }
            newer
        });
    }

    pub fn get(&self, shard_id: &ShardId) -> Option<Position> {
        self.sender(shard_id).borrow().position.clone()
    }

    /// Waits until the shard's committed position is at least `position` (true), or until the
    /// reader of `generation` is no longer the shard's live reader (false).
    pub async fn wait_at_least(
        &self,
        shard_id: &ShardId,
        position: &Position,
        generation: u64,
    ) -> bool {
        let mut receiver = self.sender(shard_id).subscribe();
        // The sender lives in the map for the life of the process, so this cannot fail.
        let commit = receiver
            .wait_for(|c| {
                c.position.as_ref().is_some_and(|c| c >= position) || c.live != Some(generation)
            })
            .await
            .map(|commit| commit.clone())
            .unwrap_or_default();
        commit.position.is_some_and(|c| &c >= position)
    }
}

struct Candidate {
    fence: Fence,
    position: Position,
    snapshot: ShardSnapshot,
    last: bool,
    shard_end: bool,
    records: u64,
    newest_arrival_ms: i64,
}

#[derive(Default)]
struct ShardProgress {
    generation: u64,
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
    stopped: Recipient<ShardStopped>,
    metrics: Arc<Metrics>,
    fatal: Fatal,
}

impl Checkpointer {
    pub fn new(
        store: Arc<dyn CheckpointStore>,
        sinks: Vec<SinkKind>,
        committed: Arc<CommittedPositions>,
        stopped: Recipient<ShardStopped>,
        metrics: Arc<Metrics>,
        fatal: Fatal,
    ) -> Self {
        Self {
            store,
            sinks,
            shards: HashMap::new(),
            committed,
            stopped,
            metrics,
            fatal,
        }
    }

    /// The shard's progress for a message of `generation`: reset when a newer reader started,
    /// `None` when the message comes from an older one.
    fn progress(&mut self, shard_id: &ShardId, generation: u64) -> Option<&mut ShardProgress> {
        let progress = self.shards.entry(shard_id.clone()).or_default();
        if generation > progress.generation {
            *progress = ShardProgress {
                generation,
                ..ShardProgress::default()
            };
        }
        (generation == progress.generation).then_some(progress)
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
        let generation = candidate.fence.counter;
        let checkpoint = Checkpoint {
            shard_id: shard_id.to_string(),
            position: candidate.position.clone(),
            shard_end: candidate.shard_end,
            snapshot: candidate.snapshot,
            fence: Some(candidate.fence),
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
        let (last, shard_end, records, newest_arrival_ms) = (
            candidate.last,
            candidate.shard_end,
            candidate.records,
            candidate.newest_arrival_ms,
        );
        ctx.spawn(save.into_actor(self).map(move |result, act, ctx| {
            match result {
                Ok(()) => {}
                Err(CheckpointError::LeaseLost { .. }) => {
                    tracing::warn!(shard_id = %shard_id, "Checkpoint refused: the lease has moved on.");
                    act.stop(&shard_id, generation, StopOutcome::LeaseLost);
                    return;
                }
                Err(error) => {
                    act.fatal
                        .raise(format!("checkpoint of shard {shard_id} failed: {error}"));
                    return;
                }
            }
            act.committed.publish(&shard_id, &position);
            act.metrics.add(Counter::CheckpointsWritten, 1);
            let now = chrono::Utc::now().timestamp_millis();
            act.metrics.observe(
                Latency::EndToEndLatency,
                (now - newest_arrival_ms).max(0) as f64,
            );
            let current = act.shards.get_mut(&shard_id).filter(|p| p.generation == generation);
            let Some(progress) = current else {
                return;
            };
            {
                progress.saving = false;
                progress.lag = progress.lag.saturating_sub(records);
                act.metrics
                    .set_gauge(ShardGauge::CheckpointLag, &shard_id, progress.lag as f64);
            }
            tracing::debug!(shard_id = %shard_id, %position, "Checkpoint written.");
            if last {
                act.stop(&shard_id, generation, StopOutcome::Checkpointed { shard_end });
            } else {
                act.commit_ready(shard_id, ctx);
            }
        }));
    }

    fn stop(&mut self, shard_id: &ShardId, generation: u64, outcome: StopOutcome) {
        if self
            .shards
            .get(shard_id)
            .is_some_and(|p| p.generation == generation)
        {
            self.shards.remove(shard_id);
        }
        self.metrics.remove_shard(shard_id);
        self.stopped.do_send(ShardStopped {
            shard_id: shard_id.clone(),
            generation,
            outcome,
        });
    }
}

impl Actor for Checkpointer {
    type Context = Context<Self>;
}

impl Handler<Propose> for Checkpointer {
    type Result = ();

    fn handle(&mut self, proposal: Propose, ctx: &mut Context<Self>) {
        let Some(progress) = self.progress(&proposal.shard_id, proposal.fence.counter) else {
            return;
        };
        progress.lag += proposal.records;
        progress.candidates.push_back(Candidate {
            fence: proposal.fence,
            position: proposal.position,
            snapshot: proposal.snapshot,
            last: proposal.last,
            shard_end: proposal.shard_end,
            records: proposal.records,
            newest_arrival_ms: proposal.newest_arrival_ms,
        });
        let lag = progress.lag as f64;
        self.metrics
            .set_gauge(ShardGauge::CheckpointLag, &proposal.shard_id, lag);
        self.commit_ready(proposal.shard_id, ctx);
    }
}

impl Handler<Durable> for Checkpointer {
    type Result = ();

    fn handle(&mut self, ack: Durable, ctx: &mut Context<Self>) {
        let Some(progress) = self.progress(&ack.shard_id, ack.generation) else {
            return;
        };
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
        let outcome = StopOutcome::Checkpointed {
            shard_end: message.shard_end,
        };
        self.stop(&message.shard_id, message.generation, outcome);
    }
}
