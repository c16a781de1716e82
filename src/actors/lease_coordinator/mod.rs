//! The lease coordinator: decides which shards this worker reads, and starts and stops their
//! readers.
//!
//! Every poll it reads the lease table and: renews its leases when due; stops a reader whose
//! lease was taken (abort: the new owner reads from the last checkpoint); hands over a lease
//! someone asked for once its reader has checkpointed; starts readers for leases given to it;
//! and takes free and expired leases, or asks for some, towards an even share (see
//! [`crate::lease::balance`]). Every so often it reads the stream's shard list and adds leases
//! for new shards (after a reshard, children wait until their parents are finished).
//!
//! On shutdown it stops every reader, and as each one's last checkpoint is written it releases
//! the lease with a hand-off marker, so another worker takes it on its next poll instead of
//! waiting for the lease to expire.
//!
//! What to do on a read of the table is decided by pure functions of it ([`decide`], with the
//! rule for leases that name this worker but that it does not read in [`unrun`]); this actor
//! carries the decisions out. Letting leases go is in [`release`].
//!
//! The coordinator runs in its span `lease_coordinator{worker_id}` ([`super::span`]). Its lines
//! about one lease name the shard themselves: they are the coordinator's decisions among many
//! shards, not work done in a shard's span.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use tokio::sync::watch;

mod decide;
mod release;
mod unrun;

use self::decide::{Reading, Worker};
pub use self::release::Shutdown;
use self::unrun::Seen;
use super::reader_pool::ReaderPool;
use super::shard_reader::{Assignment, ReaderControl};
use crate::barrier::CommittedPositions;
use crate::config::LeaseConfig;
use crate::health::{Concern, Health};
use crate::lease::clock::LeaseClock;
use crate::lease::{Fence, Lease, LeaseError, LeaseStore, Release};
use crate::metrics::{Counter, Metrics};
use crate::model::ids::ShardId;
use crate::model::ids::WorkerId;
use crate::stream::{ShardInfo, StreamError, StreamSource};

/// A reader this worker runs.
struct Running {
    fence: Fence,
    control: Arc<ReaderControl>,
    /// When the last renewal was sent. Renewals are sent every renew interval whether or not
    /// the previous one has answered, so a slow lease table delays none of them: the lease
    /// stays trusted as long as each answers within the trust time.
    last_sent: Instant,
    /// Stopping to hand the lease over (to a worker, or to anyone on shutdown).
    handing_to: Option<Release>,
}

pub struct LeaseCoordinator {
    me: WorkerId,
    config: LeaseConfig,
    store: Arc<dyn LeaseStore>,
    stream: Arc<dyn StreamSource>,
    pool: ReaderPool,
    committed: Arc<CommittedPositions>,
    /// Until when each running lease is surely this worker's, for the sinks to check.
    clock: Arc<LeaseClock>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    /// Shards whose lease another process renews under this worker's id: left to it.
    shared_id: BTreeSet<ShardId>,
    /// The lease counter at which this worker asked for each shard's hand-off: a lease handed
    /// over names the asker's id, so only the process that asked may start it as it is.
    asked: HashMap<ShardId, u64>,
    running: HashMap<ShardId, Running>,
    seen: HashMap<ShardId, Seen>,
    shards: HashMap<ShardId, ShardInfo>,
    /// Counter of the last lease this worker released or lost per shard: a table read still
    /// naming it as owner at or below that counter is stale or abandoned.
    released: HashMap<ShardId, u64>,
    last_sync: Option<Instant>,
    polling: bool,
    /// Shards whose lease release is in flight; shutdown is done when none is left.
    releasing: HashSet<ShardId>,
    /// Shards whose lease this worker is taking: a table read made meanwhile may already name
    /// this worker as owner, and must not start a second reader beside the one the take starts.
    taking: HashSet<ShardId>,
    /// Releasing, on shutdown, the leases handed to this worker that it has not started.
    releasing_unstarted: bool,
    /// Every lease was finished at the last poll: the next one lists the shards again to see
    /// whether the stream is.
    finish_suspected: bool,
    shutting_down: bool,
    /// Set when this worker has nothing left to do: shut down and released, or every shard of
    /// the stream finished.
    done: watch::Sender<bool>,
}

impl LeaseCoordinator {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        me: WorkerId,
        config: LeaseConfig,
        store: Arc<dyn LeaseStore>,
        stream: Arc<dyn StreamSource>,
        pool: ReaderPool,
        committed: Arc<CommittedPositions>,
        clock: Arc<LeaseClock>,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
        done: watch::Sender<bool>,
    ) -> Self {
        metrics.set_worker(&me);
        if config.renew_interval() + config.poll_interval >= config.failover_time {
            tracing::warn!(
                ?config,
                "lease.renew-interval plus lease.poll-interval should be well under \
                lease.failover-time, or live leases will be dropped and taken as expired."
            );
        }
        Self {
            me,
            config,
            store,
            stream,
            pool,
            committed,
            clock,
            metrics,
            health,
            shared_id: BTreeSet::new(),
            asked: HashMap::new(),
            running: HashMap::new(),
            seen: HashMap::new(),
            shards: HashMap::new(),
            released: HashMap::new(),
            last_sync: None,
            polling: false,
            releasing: HashSet::new(),
            taking: HashSet::new(),
            releasing_unstarted: false,
            finish_suspected: false,
            shutting_down: false,
            done,
        }
    }

    fn poll(&mut self, ctx: &mut Context<Self>) {
        if self.polling {
            return;
        }
        self.polling = true;
        let sync_due = self
            .last_sync
            .is_none_or(|at| at.elapsed() >= self.config.shard_sync_interval);
        let (store, stream) = (self.store.clone(), self.stream.clone());
        // Shards with a lease as of the last poll (none before the first: creating is idempotent).
        let known: BTreeSet<ShardId> = self.seen.keys().cloned().collect();
        let read = async move {
            let shards = match sync_due {
                true => Some(sync_shards(&*store, &*stream, &known).await?),
                false => None,
            };
            let leases = store.list().await.map_err(PollError::from)?;
            Ok::<_, PollError>((shards, leases))
        };
        ctx.spawn(read.into_actor(self).map(|result, act, ctx| {
            act.polling = false;
            match result {
                Ok((shards, leases)) => {
                    let synced = shards.is_some();
                    if let Some(shards) = shards {
                        act.last_sync = Some(Instant::now());
                        act.shards = shards.into_iter().map(|s| (s.id.clone(), s)).collect();
                    }
                    act.health.recovered(Concern::LeaseTable);
                    act.act_on(&leases, synced, ctx);
                }
                Err(error) => {
                    // Retrying may not help (a missing table or stream, a permission): the
                    // worker says so on its health endpoint and keeps polling, rather than exit
                    // and have every replacement meet the same error.
                    tracing::warn!(error = %error.message, "Reading the lease table failed; trying again next poll.");
                    act.health.failing(Concern::LeaseTable, &error.message, !error.retryable);
                    act.expire_unrenewed(ctx);
                }
            }
        }));
    }

    /// One round of decisions on a fresh read of the lease table ([`decide`]); `synced`: the
    /// stream's shards were listed (and a lease made for each) just before it was read.
    fn act_on(&mut self, leases: &[Lease], synced: bool, ctx: &mut Context<Self>) {
        let now = Instant::now();
        let reading = self.reading();
        let observed = decide::observe(&self.worker(&reading, now), leases);
        for shard_id in observed.shared_id {
            let error = format!(
                "another worker renews the lease of {shard_id} under this worker's id {}: \
                 lease.worker-id must be unique per task",
                self.me
            );
            tracing::error!(%error, "Leaving the shard to the other worker.");
            self.health.failing(Concern::WorkerId, &error, true);
            self.shared_id.insert(shard_id);
        }
        self.seen.extend(observed.changed);

        let changes = decide::readers(&self.worker(&reading, now), leases, self.shutting_down);
        for shard_id in changes.lose {
            self.lose(&shard_id, "another worker took the lease");
        }
        for (shard_id, to) in changes.hand_over {
            if let Some(running) = self.running.get_mut(&shard_id) {
                tracing::info!(shard_id = %shard_id, to = %to, "Handing the lease over.");
                running.handing_to = Some(Release::To(to));
                running.control.stop();
            }
        }
        self.renew_due(ctx);
        self.expire_unrenewed(ctx);
        if self.shutting_down {
            self.check_done();
            return;
        }

        let reading = self.reading();
        let plan = decide::plan(&self.worker(&reading, now), leases);
        for lease in plan.start {
            // Handed over at least a poll ago: others started timing it then.
            let changed = now
                .checked_sub(2 * self.config.poll_interval)
                .unwrap_or(now);
            self.start_reader(lease, changed);
        }
        for lease in plan.take_anew {
            tracing::info!(shard_id = %lease.shard_id, "Taking anew a lease that names this worker but that it does not read.");
            if self.shared_id.remove(&lease.shard_id) && self.shared_id.is_empty() {
                self.health.recovered(Concern::WorkerId);
            }
            self.take(lease, ctx);
        }
        for lease in plan.take {
            self.take(lease, ctx);
        }
        for lease in plan.request {
            self.request_handoff(lease, ctx);
        }

        // Every lease finished may only mean that the children of the last parents are not in
        // the table yet: the stream is finished once a listing of its shards made after that
        // was seen still finds nothing left.
        match (plan.all_finished, self.finish_suspected && synced) {
            (true, true) => {
                tracing::info!("Every shard of the stream is finished.");
                self.done.send_replace(true);
            }
            (true, false) => {
                self.finish_suspected = true;
                self.last_sync = None;
                self.poll(ctx);
            }
            (false, _) => self.finish_suspected = false,
        }
        self.metrics.set_leases_held(self.running.len());
    }

    /// The readers this worker runs, as the decisions see them.
    fn reading(&self) -> HashMap<ShardId, Reading> {
        self.running
            .iter()
            .map(|(shard_id, running)| {
                let reading = Reading {
                    counter: running.fence.counter,
                    handing_over: running.handing_to.is_some(),
                };
                (shard_id.clone(), reading)
            })
            .collect()
    }

    /// What this worker knows besides the lease table, for the decisions.
    fn worker<'a>(&'a self, reading: &'a HashMap<ShardId, Reading>, now: Instant) -> Worker<'a> {
        Worker {
            me: &self.me,
            reading,
            taking: &self.taking,
            releasing: &self.releasing,
            released: &self.released,
            asked: &self.asked,
            shared_id: &self.shared_id,
            seen: &self.seen,
            failover_time: self.config.failover_time,
            max_moves: self.config.max_moves_per_poll,
            now,
        }
    }

    /// Asks the owner of `lease` to hand it over, to balance the load.
    fn request_handoff(&mut self, lease: Lease, ctx: &mut Context<Self>) {
        let (store, me) = (self.store.clone(), self.me.clone());
        ctx.spawn(
            async move {
                let asked = store.request_handoff(&lease, &me).await;
                (lease, asked)
            }
            .into_actor(self)
            .map(|(lease, asked), act, _| match asked {
                Ok(()) => {
                    tracing::info!(shard_id = %lease.shard_id, owner = ?lease.owner,
                        "Asked for a lease to balance the load.");
                    act.asked.insert(lease.shard_id, lease.counter);
                }
                Err(error) => tracing::debug!(%error, "Hand-off request refused."),
            }),
        );
    }

    fn take(&mut self, lease: Lease, ctx: &mut Context<Self>) {
        let (store, me) = (self.store.clone(), self.me.clone());
        let sent = Instant::now();
        let shard_id = lease.shard_id.clone();
        self.taking.insert(shard_id.clone());
        ctx.spawn(
            async move { store.take(&lease, &me).await }
                .into_actor(self)
                .map(move |result, act, _| {
                    act.taking.remove(&shard_id);
                    match result {
                        Ok(lease) if act.shutting_down => drop(lease),
                        Ok(lease) => {
                            act.metrics.add(Counter::LeasesTaken, 1);
                            // The table takes this worker's conditional writes again.
                            act.health.recovered(Concern::LeaseRenewals);
                            act.start_reader(lease, sent);
                        }
                        Err(LeaseError::Conflict { shard }) => {
                            tracing::debug!(shard_id = %shard, "Lease taken by another worker first.")
                        }
                        Err(error) => {
                            tracing::warn!(%error, "Taking a lease failed.");
                            let refused = !error.is_retryable();
                            act.health.failing(Concern::LeaseRenewals, &error, refused);
                        }
                    }
                }),
        );
    }

    /// Starts reading the shard of `lease`, taken (or handed over) by a call sent at `sent`.
    fn start_reader(&mut self, lease: Lease, sent: Instant) {
        let Some(fence) = lease.fence() else {
            return;
        };
        if self.running.contains_key(&lease.shard_id) {
            // One reader a shard: two would hand the sinks the same records twice.
            return;
        }
        let Some(shard) = self.shards.get(&lease.shard_id).cloned() else {
            // A shard newer than this worker's shard list: read the list on the next poll.
            self.last_sync = None;
            return;
        };
        self.asked.remove(&shard.id);
        tracing::info!(shard_id = %shard.id, counter = fence.counter, "Lease taken; starting the shard's reader.");
        self.clock.renewed(&shard.id, fence.counter, sent);
        let control = self.pool.start(Assignment {
            shard,
            fence: fence.clone(),
        });
        self.running.insert(
            lease.shard_id,
            Running {
                fence,
                control,
                last_sent: sent,
                handing_to: None,
            },
        );
        self.metrics.set_leases_held(self.running.len());
    }

    /// Stops a reader at once: its lease belongs to someone else now.
    fn lose(&mut self, shard_id: &ShardId, why: &str) {
        let Some(running) = self.running.remove(shard_id) else {
            return;
        };
        tracing::warn!(shard_id = %shard_id, reason = why, "Lease lost; stopping the shard's reader.");
        running.control.abort();
        self.clock.end(shard_id, running.fence.counter);
        // Sinks waiting on this reader's commits give up now rather than when it stops.
        self.committed.retire(shard_id, running.fence.counter);
        // Never read it again under the same counter (the table may still name this worker):
        // to read the shard again, the lease must be taken anew.
        self.released
            .insert(shard_id.clone(), running.fence.counter);
        self.pool.stopped(shard_id);
        self.metrics.add(Counter::LeasesLost, 1);
        self.metrics.set_leases_held(self.running.len());
    }

    fn renew_due(&mut self, ctx: &mut Context<Self>) {
        let interval = self.config.renew_interval();
        let due: Vec<Fence> = self
            .running
            .values_mut()
            .filter(|r| r.last_sent.elapsed() >= interval)
            .map(|r| {
                r.last_sent = Instant::now();
                r.fence.clone()
            })
            .collect();
        for fence in due {
            let (store, shard_id) = (self.store.clone(), fence.shard_id.clone());
            let started = Instant::now();
            ctx.spawn(
                async move { store.renew(&fence).await }
                    .into_actor(self)
                    .map(move |result, act, _| {
                        // Reported even when the lease is gone meanwhile (lost on this worker's
                        // clock because renewals hang): the table's trouble outlives the lease.
                        match &result {
                            Ok(()) => act.health.recovered(Concern::LeaseRenewals),
                            Err(LeaseError::Conflict { .. }) => {}
                            Err(error) => {
                                tracing::warn!(%error, shard_id = %shard_id, "Lease renewal failed.");
                                let refused = !error.is_retryable();
                                act.health.failing(Concern::LeaseRenewals, error, refused);
                            }
                        }
                        let Some(running) = act.running.get(&shard_id) else {
                            return;
                        };
                        match result {
                            Ok(()) => act.clock.renewed(&shard_id, running.fence.counter, started),
                            Err(LeaseError::Conflict { .. }) => act.lose(&shard_id, "renewal refused"),
                            Err(_) => {}
                        }
                    }),
            );
        }
    }

    /// A lease this worker could not renew for nearly the failover time may be taken by another
    /// worker any moment: stop its reader before that can happen, so two never write at once.
    /// The lease clock decides, so the reader stops exactly when its sinks stop writing.
    fn expire_unrenewed(&mut self, _: &mut Context<Self>) {
        let overdue: Vec<ShardId> = self
            .running
            .iter()
            .filter(|(shard, r)| !self.clock.holds(shard, r.fence.counter))
            .map(|(shard, _)| shard.clone())
            .collect();
        for shard_id in overdue {
            self.lose(&shard_id, "not renewed within the failover time");
        }
    }
}

/// A failed poll: retried next time, unless retrying cannot help (a missing table or stream).
struct PollError {
    message: String,
    retryable: bool,
}

impl From<LeaseError> for PollError {
    fn from(error: LeaseError) -> Self {
        Self {
            retryable: error.is_retryable(),
            message: error.to_string(),
        }
    }
}

impl From<StreamError> for PollError {
    fn from(error: StreamError) -> Self {
        Self {
            retryable: error.is_retryable(),
            message: error.to_string(),
        }
    }
}

/// Reads the stream's shards and adds a lease for each shard not `known` to have one.
async fn sync_shards(
    store: &dyn LeaseStore,
    stream: &dyn StreamSource,
    known: &BTreeSet<ShardId>,
) -> Result<Vec<ShardInfo>, PollError> {
    let shards = stream.list_shards().await?;
    for shard in shards.iter().filter(|s| !known.contains(&s.id)) {
        if store.create(&Lease::new(shard)).await? {
            tracing::info!(shard_id = %shard.id, parents = ?shard.parents().collect::<Vec<_>>(), "Lease created for a new shard.");
        }
    }
    Ok(shards)
}

impl Actor for LeaseCoordinator {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        tracing::info!("Lease coordinator started.");
        self.poll(ctx);
        ctx.run_interval(self.config.poll_interval, |act, ctx| {
            // On their own timer, not after a completed read of the lease table: a slow read
            // must not hold renewals back, and one that never answers must not keep a reader
            // of a lease this worker can no longer trust.
            act.renew_due(ctx);
            act.expire_unrenewed(ctx);
            act.poll(ctx);
        });
    }
}
