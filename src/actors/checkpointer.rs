//! The checkpointer: commits, per shard, the newest checkpoint candidate that every sink has made
//! durable, with the window snapshot taken at that position (steps 4 to 6 of the barrier, told
//! whole in [`crate::barrier`]).
//!
//! In: [`Propose`] from shard readers and [`Durable`] from sinks. Out: checkpoints in the
//! [`CheckpointStore`], committed positions on the [`CommittedPositions`] board, and
//! [`ShardStopped`] once a reader's last checkpoint is written (or refused because the lease moved
//! on).

use std::sync::Arc;

use actix::prelude::*;

use super::fatal::Fatal;
use crate::barrier::progress::Progress;
use crate::barrier::{
    CommittedPositions, Durable, FinishedEmpty, Propose, ShardStopped, SinkKind, StopOutcome,
};
use crate::checkpoint::{Checkpoint, CheckpointError, CheckpointStore};
use crate::health::{Concern, Health};
use crate::metrics::{Counter, Latency, Metrics, ShardGauge};
use crate::retry::{Reporting, Stopped, persistently};
use crate::stream::ShardId;

pub struct Checkpointer {
    store: Arc<dyn CheckpointStore>,
    sinks: Vec<SinkKind>,
    progress: Progress,
    committed: Arc<CommittedPositions>,
    stopped: Recipient<ShardStopped>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    fatal: Fatal,
}

impl Checkpointer {
    pub fn new(
        store: Arc<dyn CheckpointStore>,
        sinks: Vec<SinkKind>,
        committed: Arc<CommittedPositions>,
        stopped: Recipient<ShardStopped>,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
        fatal: Fatal,
    ) -> Self {
        Self {
            store,
            sinks,
            progress: Progress::default(),
            committed,
            stopped,
            metrics,
            health,
            fatal,
        }
    }

    fn commit_ready(&mut self, shard_id: ShardId, ctx: &mut Context<Self>) {
        let sinks = &self.sinks;
        let candidate = self
            .progress
            .shard(&shard_id)
            .and_then(|progress| progress.take_committable(sinks));
        let Some(candidate) = candidate else {
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
        let (store, health, metrics) = (
            self.store.clone(),
            self.health.clone(),
            self.metrics.clone(),
        );
        let save = async move {
            let report = Reporting {
                concern: Concern::Checkpoints,
                health: &health,
                metrics: &metrics,
            };
            persistently(
                report,
                CheckpointError::failure,
                || true,
                || store.save(&checkpoint),
            )
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
                Err(Stopped::Rejected(CheckpointError::LeaseLost { .. })) => {
                    tracing::warn!(shard_id = %shard_id, "Checkpoint refused: the lease has moved on.");
                    act.stop(&shard_id, generation, StopOutcome::LeaseLost);
                    return;
                }
                Err(error) => {
                    act.fatal
                        .raise(format!("checkpoint of shard {shard_id} failed: {error:?}"));
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
            let Some(progress) = act.progress.current(&shard_id, generation) else {
                return;
            };
            progress.saved(records);
            act.metrics
                .set_gauge(ShardGauge::CheckpointLag, &shard_id, progress.lag() as f64);
            tracing::debug!(shard_id = %shard_id, %position, "Checkpoint written.");
            if last {
                act.stop(&shard_id, generation, StopOutcome::Checkpointed { shard_end });
            } else {
                act.commit_ready(shard_id, ctx);
            }
        }));
    }

    fn stop(&mut self, shard_id: &ShardId, generation: u64, outcome: StopOutcome) {
        self.progress.remove(shard_id, generation);
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
        let shard_id = proposal.shard_id.clone();
        let Some(progress) = self.progress.of(&shard_id, proposal.fence.counter) else {
            return;
        };
        progress.propose(proposal);
        let lag = progress.lag() as f64;
        self.metrics
            .set_gauge(ShardGauge::CheckpointLag, &shard_id, lag);
        self.commit_ready(shard_id, ctx);
    }
}

impl Handler<Durable> for Checkpointer {
    type Result = ();

    fn handle(&mut self, ack: Durable, ctx: &mut Context<Self>) {
        let Some(progress) = self.progress.of(&ack.shard_id, ack.generation) else {
            return;
        };
        progress.acknowledge(ack.sink, ack.position);
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
