//! The checkpointer: commits, per shard, the newest checkpoint candidate that every sink has made
//! durable, with the window snapshot taken at that position (steps 4 to 6 of the barrier, told
//! whole in [`crate::barrier`]).
//!
//! In: [`Resumed`] and [`Propose`] from shard readers and [`Durable`] from sinks. Out:
//! checkpoints and the sinks' durable marks in the [`CheckpointStore`], committed positions on the [`CommittedPositions`] board, and
//! [`ShardStopped`] once a reader's last checkpoint is written (or refused because the lease moved
//! on).
//!
//! The checkpointer runs in its span `checkpointer`, and does the work of one shard in a child
//! span `shard{shard_id, generation}` ([`super::span`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use actix::prelude::*;
use tracing::{Instrument, Span};

use super::fatal::Fatal;
use super::span;
use crate::barrier::progress::{Progress, ProgressWrite};
use crate::barrier::{
    CommittedPositions, Durable, FinishedEmpty, Propose, Resumed, ShardStopped, SinkKind,
    StopOutcome,
};
use crate::checkpoint::{Checkpoint, CheckpointError, CheckpointStore, Mark};
use crate::health::{Concern, Health};
use crate::lease::Fence;
use crate::lease::clock::LeaseClock;
use crate::metrics::{Counter, Latency, Metrics, ShardGauge};
use crate::model::ids::ShardId;
use crate::model::tick::Position;
use crate::retry::{Reporting, Stopped, persistently};

/// What a checkpoint write covered, for what follows it once written.
struct Written {
    position: Position,
    last: bool,
    shard_end: bool,
    records: u64,
    newest_arrival_ms: i64,
}

pub struct Checkpointer {
    store: Arc<dyn CheckpointStore>,
    sinks: Vec<SinkKind>,
    progress: Progress,
    links: CheckpointerLinks,
}

/// What the checkpointer tells and consults besides its store.
pub struct CheckpointerLinks {
    pub committed: Arc<CommittedPositions>,
    /// Checked before each save: a sink that found the lease run out wrote nothing more, so no
    /// barrier after that may be committed, though the lease table may still name this worker.
    pub leases: Arc<LeaseClock>,
    pub stopped: Recipient<ShardStopped>,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    pub fatal: Fatal,
}

impl Checkpointer {
    pub fn new(
        store: Arc<dyn CheckpointStore>,
        sinks: Vec<SinkKind>,
        links: CheckpointerLinks,
    ) -> Self {
        Self {
            store,
            sinks,
            progress: Progress::default(),
            links,
        }
    }

    /// Writes what the shard's progress calls for, if anything: its newest committable
    /// candidate, or the sinks' durable mark. Called in the shard's span, which the write and
    /// what follows it keep.
    fn commit_ready(&mut self, shard_id: ShardId, ctx: &mut Context<Self>) {
        let sinks = &self.sinks;
        let write = self
            .progress
            .shard(&shard_id)
            .and_then(|progress| progress.take_write(sinks));
        match write {
            Some(ProgressWrite::Checkpoint(candidate)) => self.save(shard_id, candidate, ctx),
            Some(ProgressWrite::SinksDurable(fence, durable)) => {
                self.mark_durable(shard_id, fence, durable, ctx)
            }
            None => {}
        }
    }

    fn save(&mut self, shard_id: ShardId, candidate: Propose, ctx: &mut Context<Self>) {
        let generation = candidate.fence.counter;
        let checkpoint = Checkpoint {
            shard_id: shard_id.to_string(),
            position: candidate.position.clone(),
            shard_end: candidate.shard_end,
            snapshot: candidate.snapshot,
            fence: Some(candidate.fence),
        };
        let store = self.store.clone();
        let save = self.persistently(&shard_id, generation, move || {
            let (store, checkpoint) = (store.clone(), checkpoint.clone());
            async move { store.save(&checkpoint).await }
        });
        let written = Written {
            position: candidate.position,
            last: candidate.last,
            shard_end: candidate.shard_end,
            records: candidate.records,
            newest_arrival_ms: candidate.newest_arrival_ms,
        };
        let shard_span = Span::current();
        let save = save.instrument(shard_span.clone()).into_actor(self);
        ctx.spawn(save.map(move |result, act, ctx| {
            let _shard = shard_span.enter();
            if act.written(&shard_id, generation, result, "checkpoint") {
                act.committed(shard_id, generation, written, ctx);
            }
        }));
    }

    /// Records how far the sinks that write no files are durable past the checkpoint.
    fn mark_durable(
        &mut self,
        shard_id: ShardId,
        fence: Fence,
        durable: BTreeMap<SinkKind, Position>,
        ctx: &mut Context<Self>,
    ) {
        let generation = fence.counter;
        let mark = Mark::SinksDurable(
            durable
                .iter()
                .map(|(sink, position)| (sink.name().to_owned(), position.clone()))
                .collect(),
        );
        let store = self.store.clone();
        let write = self.persistently(&shard_id, generation, move || {
            let (store, fence, mark) = (store.clone(), fence.clone(), mark.clone());
            async move { store.mark(&fence, &mark).await }
        });
        let shard_span = Span::current();
        let write = write.instrument(shard_span.clone()).into_actor(self);
        ctx.spawn(write.map(move |result, act, ctx| {
            let _shard = shard_span.enter();
            if act.written(&shard_id, generation, result, "sinks' durable mark") {
                if let Some(progress) = act.progress.current(&shard_id, generation) {
                    progress.marked(durable);
                }
                act.commit_ready(shard_id, ctx);
            }
        }));
    }

    /// A store write of the shard, tried until written while the lease clock trusts the lease.
    fn persistently<F, Fut>(
        &self,
        shard_id: &ShardId,
        generation: u64,
        write: F,
    ) -> impl Future<Output = Result<(), Stopped<CheckpointError>>> + 'static
    where
        F: Fn() -> Fut + 'static,
        Fut: Future<Output = Result<(), CheckpointError>>,
    {
        let (health, metrics, leases) = (
            self.links.health.clone(),
            self.links.metrics.clone(),
            self.links.leases.clone(),
        );
        let shard_id = shard_id.clone();
        async move {
            let report = Reporting {
                concern: Concern::Checkpoints,
                health: &health,
                metrics: &metrics,
            };
            persistently(
                report,
                CheckpointError::failure,
                || leases.holds(&shard_id, generation),
                write,
            )
            .await
        }
    }

    /// Whether a store write of the shard went through; if not, the shard is stopped (the
    /// lease moved on) or the process (the store failed for good).
    fn written(
        &mut self,
        shard_id: &ShardId,
        generation: u64,
        result: Result<(), Stopped<CheckpointError>>,
        what: &str,
    ) -> bool {
        match result {
            Ok(()) => return true,
            Err(Stopped::Rejected(CheckpointError::LeaseLost { .. })) => {
                tracing::warn!(what, "Write refused: the lease has moved on.");
                self.stop(shard_id, generation, StopOutcome::LeaseLost);
            }
            Err(Stopped::Abandoned) => {
                tracing::warn!(what, "Lease may have expired; not written.");
                self.stop(shard_id, generation, StopOutcome::LeaseLost);
            }
            Err(Stopped::Rejected(error)) => {
                self.links
                    .fatal
                    .raise(format!("{what} of shard {shard_id} failed: {error:?}"));
            }
        }
        false
    }

    /// A checkpoint is written: the sinks waiting on it may go on, and the shard's next
    /// candidate is committed (or, after its last, the shard is stopped).
    fn committed(
        &mut self,
        shard_id: ShardId,
        generation: u64,
        written: Written,
        ctx: &mut Context<Self>,
    ) {
        let Written {
            position,
            last,
            shard_end,
            records,
            newest_arrival_ms,
        } = written;
        self.links.committed.publish(&shard_id, &position);
        self.links.metrics.add(Counter::CheckpointsWritten, 1);
        let now = chrono::Utc::now().timestamp_millis();
        self.links.metrics.observe(
            Latency::EndToEndLatency,
            (now - newest_arrival_ms).max(0) as f64,
        );
        let Some(progress) = self.progress.current(&shard_id, generation) else {
            return;
        };
        progress.saved(position.clone(), records);
        self.links
            .metrics
            .set_gauge(ShardGauge::CheckpointLag, &shard_id, progress.lag() as f64);
        tracing::debug!(%position, "Checkpoint written.");
        if last {
            self.stop(
                &shard_id,
                generation,
                StopOutcome::Checkpointed { shard_end },
            );
        } else {
            self.commit_ready(shard_id, ctx);
        }
    }

    fn stop(&mut self, shard_id: &ShardId, generation: u64, outcome: StopOutcome) {
        self.progress.remove(shard_id, generation);
        self.links.metrics.remove_shard(shard_id);
        self.links.stopped.do_send(ShardStopped {
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
        let _shard = span::shard(&shard_id, proposal.fence.counter).entered();
        let Some(progress) = self.progress.of(&shard_id, proposal.fence.counter) else {
            return;
        };
        progress.propose(proposal);
        let lag = progress.lag() as f64;
        self.links
            .metrics
            .set_gauge(ShardGauge::CheckpointLag, &shard_id, lag);
        self.commit_ready(shard_id, ctx);
    }
}

impl Handler<Resumed> for Checkpointer {
    type Result = ();

    fn handle(&mut self, resumed: Resumed, _: &mut Context<Self>) {
        let Resumed {
            fence,
            checkpoint,
            sinks_durable,
        } = resumed;
        let shard_id = fence.shard_id.clone();
        let _shard = span::shard(&shard_id, fence.counter).entered();
        if let Some(progress) = self.progress.of(&shard_id, fence.counter) {
            progress.resume(fence, checkpoint, sinks_durable);
        }
    }
}

impl Handler<Durable> for Checkpointer {
    type Result = ();

    fn handle(&mut self, ack: Durable, ctx: &mut Context<Self>) {
        let _shard = span::shard(&ack.shard_id, ack.generation).entered();
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
        let _shard = span::shard(&message.shard_id, message.generation).entered();
        let outcome = StopOutcome::Checkpointed {
            shard_end: message.shard_end,
        };
        self.stop(&message.shard_id, message.generation, outcome);
    }
}

#[cfg(test)]
mod tests {
    use crate::actors::test_support::{eventually, position, proposal, sink_links};
    use crate::barrier::{Durable, SinkKind};

    fn durable(shard: &str, sequence: u64) -> Durable {
        Durable {
            sink: SinkKind::Lake,
            shard_id: shard.into(),
            generation: 1,
            position: position(sequence),
        }
    }

    /// A sink that found the lease run out wrote nothing more, while the lease table may still
    /// name this worker (so a save would be let through): what comes after is not committed.
    #[actix::test]
    async fn nothing_is_committed_once_the_lease_may_have_expired() {
        let dir = tempfile::tempdir().unwrap();
        let shard = "shardId-000000000001";
        let (links, committed) = sink_links(dir.path(), SinkKind::Lake);
        links
            .leases
            .renewed(&shard.into(), 1, std::time::Instant::now());
        links.checkpointer.do_send(proposal(shard, 10));
        links.checkpointer.do_send(durable(shard, 10));
        assert!(eventually(async || committed.get(&shard.into()) == Some(position(10))).await);

        links.leases.end(&shard.into(), 1);
        links.checkpointer.do_send(proposal(shard, 20));
        links.checkpointer.do_send(durable(shard, 20));
        assert!(
            !eventually(async || committed.get(&shard.into()) != Some(position(10))).await,
            "committed past the lease's end"
        );
    }
}
