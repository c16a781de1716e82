//! Letting leases go: when a reader has stopped (its last checkpoint written), its lease is
//! released to whoever asked for it, marked finished, or freed; on shutdown every reader is
//! stopped so, and the leases handed to this worker that it has not started are freed too.

use std::collections::BTreeSet;

use actix::prelude::*;

use super::LeaseCoordinator;
use super::unrun::handed_over_as_asked;
use crate::barrier::{ShardStopped, StopOutcome};
use crate::lease::{LeaseError, Release};
use crate::model::ids::ShardId;

/// Stop every reader, checkpoint, and release every lease.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Shutdown;

impl LeaseCoordinator {
    /// Done once shut down and every lease is released.
    pub(super) fn check_done(&mut self) {
        self.metrics.set_leases_held(self.running.len());
        if self.shutting_down
            && self.running.is_empty()
            && self.releasing.is_empty()
            && !self.releasing_unstarted
        {
            self.done.send_replace(true);
        }
    }
}

impl Handler<ShardStopped> for LeaseCoordinator {
    type Result = ();

    fn handle(&mut self, stopped: ShardStopped, ctx: &mut Context<Self>) {
        let current = self
            .running
            .get(&stopped.shard_id)
            .is_some_and(|r| r.fence.counter == stopped.generation);
        if !current {
            return;
        }
        let release = match stopped.outcome {
            StopOutcome::LeaseLost => {
                self.lose(&stopped.shard_id, "checkpoint refused");
                return;
            }
            StopOutcome::Checkpointed { shard_end: true } => Release::ShardEnd,
            StopOutcome::Checkpointed { shard_end: false } => {
                match self.running[&stopped.shard_id].handing_to.clone() {
                    Some(release) => release,
                    None if self.shutting_down => Release::Free,
                    None => {
                        // A reader stopped on its own without being asked: nothing should do
                        // that, so let the shard go to whoever takes it next.
                        tracing::warn!(shard_id = %stopped.shard_id, "Reader stopped unasked; releasing its lease.");
                        Release::Free
                    }
                }
            }
        };
        let running = self
            .running
            .remove(&stopped.shard_id)
            .expect("checked above");
        self.committed
            .retire(&stopped.shard_id, running.fence.counter);
        self.clock.end(&stopped.shard_id, running.fence.counter);
        self.pool.stopped(&stopped.shard_id);
        self.released
            .insert(stopped.shard_id.clone(), running.fence.counter + 1);
        let (store, fence) = (self.store.clone(), running.fence);
        let shard_id = stopped.shard_id;
        self.releasing.insert(shard_id.clone());
        ctx.spawn(
            async move {
                let result = store.release(&fence, release.clone()).await;
                (release, result)
            }
            .into_actor(self)
            .map(move |(release, result), act, ctx| {
                match result {
                    Ok(()) => tracing::info!(shard_id = %shard_id, ?release, "Lease released."),
                    Err(error) => tracing::warn!(%error, shard_id = %shard_id, "Releasing a lease failed; it will expire."),
                }
                act.releasing.remove(&shard_id);
                act.check_done();
                // A finished shard may free its children, or end the stream: look now rather
                // than at the next poll.
                if release == Release::ShardEnd && !act.shutting_down {
                    act.poll(ctx);
                }
            }),
        );
        self.metrics.set_leases_held(self.running.len());
    }
}

impl Handler<Shutdown> for LeaseCoordinator {
    type Result = ();

    fn handle(&mut self, _: Shutdown, ctx: &mut Context<Self>) {
        tracing::info!(
            leases = self.running.len(),
            "Shutting down: checkpointing and releasing every lease."
        );
        self.shutting_down = true;
        for running in self.running.values_mut() {
            running.handing_to.get_or_insert(Release::Free);
            running.control.stop();
        }
        // Leases handed to this worker at its request whose readers it has not started yet: free
        // them too, or they would wait out the failover time.
        self.releasing_unstarted = true;
        let (store, me, asked) = (self.store.clone(), self.me.clone(), self.asked.clone());
        let running: BTreeSet<ShardId> = self.running.keys().cloned().collect();
        let release_unstarted = async move {
            let leases = store.list().await?;
            for lease in leases {
                let unstarted = lease.is_owned_by(&me)
                    && !lease.shard_end
                    && !running.contains(&lease.shard_id)
                    && handed_over_as_asked(&lease, asked.get(&lease.shard_id).copied());
                if let (true, Some(fence)) = (unstarted, lease.fence()) {
                    store.release(&fence, Release::Free).await?;
                    tracing::info!(shard_id = %lease.shard_id, "Lease released before its reader started.");
                }
            }
            Ok::<_, LeaseError>(())
        };
        ctx.spawn(release_unstarted.into_actor(self).map(|result, act, _| {
            if let Err(error) = result {
                tracing::warn!(%error, "Releasing unstarted leases failed; they will expire.");
            }
            act.releasing_unstarted = false;
            act.check_done();
        }));
    }
}
