//! The coordinator's decisions on one read of the lease table, as pure functions of what the
//! table says and what this worker knows besides (its readers, its takes and releases in flight,
//! when it saw each lease change), so that they are tested without actors, a table or a clock.
//! The coordinator carries them out: [`observe`] and [`readers`] first, then its renewals and
//! expiries on its own clock, then [`plan`] on what is left.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use super::unrun::{Seen, UnrunLease, handed_over_as_asked, renewed_by_another, unrun_lease};
use crate::lease::Lease;
use crate::lease::balance::View;
use crate::model::ids::{ShardId, WorkerId};

/// A reader this worker runs, as the decisions see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Reading {
    /// The lease counter it reads under.
    pub counter: u64,
    /// It is already stopping to hand its lease over.
    pub handing_over: bool,
}

/// What this worker knows besides the lease table.
pub(super) struct Worker<'a> {
    pub me: &'a WorkerId,
    pub reading: &'a HashMap<ShardId, Reading>,
    /// Shards whose lease this worker is taking.
    pub taking: &'a HashSet<ShardId>,
    /// Shards whose lease release is in flight.
    pub releasing: &'a HashSet<ShardId>,
    /// The counter under which this worker last stopped reading each shard.
    pub released: &'a HashMap<ShardId, u64>,
    /// The counter at which this worker asked for each shard's hand-off.
    pub asked: &'a HashMap<ShardId, u64>,
    /// Shards whose lease another process renews under this worker's id.
    pub shared_id: &'a BTreeSet<ShardId>,
    /// When this worker last saw each lease change.
    pub seen: &'a HashMap<ShardId, Seen>,
    pub failover_time: Duration,
    pub max_moves: usize,
    pub now: Instant,
}

impl Worker<'_> {
    /// Nobody has changed or renewed the lease for the failover time, on this worker's clock.
    fn unchanged_for_failover(&self, shard_id: &ShardId) -> bool {
        self.seen
            .get(shard_id)
            .is_some_and(|seen| self.now.saturating_duration_since(seen.at) >= self.failover_time)
    }
}

/// What a read of the table tells about the leases themselves.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Observed {
    /// The leases that changed since last seen, as seen now.
    pub changed: Vec<(ShardId, Seen)>,
    /// Leases naming this worker, not read by it, renewed by someone: another process runs
    /// under this worker's id (reported once per shard).
    pub shared_id: Vec<ShardId>,
}

pub(super) fn observe(worker: &Worker, leases: &[Lease]) -> Observed {
    let mut observed = Observed::default();
    for lease in leases {
        let shard = &lease.shard_id;
        let seen = worker.seen.get(shard);
        let unchanged = seen.is_some_and(|seen| {
            (&seen.owner, seen.counter, seen.heartbeat)
                == (&lease.owner, lease.counter, lease.heartbeat)
        });
        if unchanged {
            continue;
        }
        if lease.is_owned_by(worker.me)
            && !worker.reading.contains_key(shard)
            && !worker.taking.contains(shard)
            && let Some(seen) = seen
            && renewed_by_another(seen, lease, worker.released.get(shard).copied())
            && !worker.shared_id.contains(shard)
        {
            observed.shared_id.push(shard.clone());
        }
        let now_seen = Seen {
            owner: lease.owner.clone(),
            counter: lease.counter,
            heartbeat: lease.heartbeat,
            at: worker.now,
        };
        observed.changed.push((shard.clone(), now_seen));
    }
    observed
}

/// What becomes of the readers this worker runs.
#[derive(Debug, Default, PartialEq)]
pub(super) struct ReaderChanges {
    /// Another worker took the lease (a higher counter): stop at once.
    pub lose: Vec<ShardId>,
    /// Someone asked for the lease: checkpoint, then hand it over to them.
    pub hand_over: Vec<(ShardId, WorkerId)>,
}

pub(super) fn readers(worker: &Worker, leases: &[Lease], shutting_down: bool) -> ReaderChanges {
    let mut changes = ReaderChanges::default();
    for lease in leases {
        let Some(reading) = worker.reading.get(&lease.shard_id) else {
            continue;
        };
        if lease.counter > reading.counter {
            changes.lose.push(lease.shard_id.clone());
        } else if let Some(to) = &lease.handoff_to
            && !reading.handing_over
            && !shutting_down
        {
            changes.hand_over.push((lease.shard_id.clone(), to.clone()));
        }
    }
    changes
}

/// Which leases to start, take, or ask for.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Plan {
    /// Handed over to this process at its request: start reading under the counter as it is.
    pub start: Vec<Lease>,
    /// Naming this worker, but to be taken again (a new counter) before it reads them: see
    /// [`UnrunLease::TakeAnew`].
    pub take_anew: Vec<Lease>,
    /// Free or expired leases towards an even share.
    pub take: Vec<Lease>,
    /// Leases to ask their owners for, towards an even share.
    pub request: Vec<Lease>,
    /// Every lease in the table is finished and this worker reads nothing.
    pub all_finished: bool,
}

pub(super) fn plan(worker: &Worker, leases: &[Lease]) -> Plan {
    let mut plan = Plan::default();
    // Leases the table says this worker holds but it does not read.
    for lease in leases {
        let shard = &lease.shard_id;
        if !lease.is_owned_by(worker.me)
            || lease.shard_end
            || worker.reading.contains_key(shard)
            || worker.taking.contains(shard)
        {
            continue;
        }
        let abandoned = worker.unchanged_for_failover(shard);
        if worker.shared_id.contains(shard) && !abandoned {
            continue;
        }
        let handed_over = handed_over_as_asked(lease, worker.asked.get(shard).copied());
        let released = worker.released.get(shard).copied();
        let releasing = worker.releasing.contains(shard);
        match unrun_lease(lease, released, releasing, handed_over, abandoned) {
            UnrunLease::Start => plan.start.push(lease.clone()),
            UnrunLease::TakeAnew => plan.take_anew.push(lease.clone()),
            UnrunLease::Wait => {}
        }
    }

    let expired: BTreeSet<ShardId> = leases
        .iter()
        .filter(|l| l.owner.is_some() && !l.is_owned_by(worker.me))
        .filter(|l| worker.unchanged_for_failover(&l.shard_id))
        .map(|l| l.shard_id.clone())
        .collect();
    let balance = View {
        me: worker.me,
        leases,
        expired: &expired,
        max_moves: worker.max_moves,
    }
    .plan();
    plan.take = balance
        .take
        .into_iter()
        .filter(|lease| !worker.taking.contains(&lease.shard_id))
        .collect();
    plan.request = balance.request;
    plan.all_finished =
        !leases.is_empty() && leases.iter().all(|l| l.shard_end) && worker.reading.is_empty();
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAILOVER: Duration = Duration::from_secs(10);

    fn lease(shard: &str, owner: Option<&str>, counter: u64, heartbeat: u64) -> Lease {
        Lease {
            shard_id: shard.into(),
            owner: owner.map(Into::into),
            counter,
            heartbeat,
            shard_end: false,
            parents: Vec::new(),
            handoff_to: None,
        }
    }

    fn seen_as(lease: &Lease, at: Instant) -> (ShardId, Seen) {
        let seen = Seen {
            owner: lease.owner.clone(),
            counter: lease.counter,
            heartbeat: lease.heartbeat,
            at,
        };
        (lease.shard_id.clone(), seen)
    }

    /// What a worker knows, built up by each test and then viewed as a [`Worker`].
    struct Known {
        me: WorkerId,
        reading: HashMap<ShardId, Reading>,
        taking: HashSet<ShardId>,
        releasing: HashSet<ShardId>,
        released: HashMap<ShardId, u64>,
        asked: HashMap<ShardId, u64>,
        shared_id: BTreeSet<ShardId>,
        seen: HashMap<ShardId, Seen>,
        now: Instant,
    }

    impl Known {
        fn new() -> Self {
            Self {
                me: "me".into(),
                reading: HashMap::new(),
                taking: HashSet::new(),
                releasing: HashSet::new(),
                released: HashMap::new(),
                asked: HashMap::new(),
                shared_id: BTreeSet::new(),
                seen: HashMap::new(),
                now: Instant::now() + 2 * FAILOVER,
            }
        }

        /// Every lease seen as it is, `ago` before now.
        fn seen(mut self, leases: &[Lease], ago: Duration) -> Self {
            self.seen
                .extend(leases.iter().map(|l| seen_as(l, self.now - ago)));
            self
        }

        fn worker(&self) -> Worker<'_> {
            Worker {
                me: &self.me,
                reading: &self.reading,
                taking: &self.taking,
                releasing: &self.releasing,
                released: &self.released,
                asked: &self.asked,
                shared_id: &self.shared_id,
                seen: &self.seen,
                failover_time: FAILOVER,
                max_moves: 2,
                now: self.now,
            }
        }
    }

    fn shards(leases: &[Lease]) -> Vec<&str> {
        leases.iter().map(|l| &*l.shard_id).collect()
    }

    #[test]
    fn changed_leases_are_seen_anew_and_unchanged_ones_keep_their_time() {
        let before = [lease("a", Some("w2"), 1, 4), lease("b", None, 0, 0)];
        let known = Known::new().seen(&before, Duration::from_secs(3));
        let now = [lease("a", Some("w2"), 1, 5), lease("b", None, 0, 0)];
        let observed = observe(&known.worker(), &now);
        assert_eq!(observed.changed.len(), 1);
        assert_eq!(observed.changed[0].0.as_ref(), "a");
        assert_eq!(observed.changed[0].1.at, known.now);
        assert!(observed.shared_id.is_empty());
    }

    #[test]
    fn a_lease_renewed_under_this_workers_id_by_another_process_is_reported_once() {
        let before = [lease("a", Some("me"), 3, 0)];
        let mut known = Known::new().seen(&before, Duration::from_secs(1));
        let renewed = [lease("a", Some("me"), 3, 1)];
        assert_eq!(
            observe(&known.worker(), &renewed).shared_id,
            vec![ShardId::from("a")]
        );
        known.shared_id.insert("a".into());
        assert!(observe(&known.worker(), &renewed).shared_id.is_empty());
        // Its own reader's renewals are not another process's.
        known.shared_id.clear();
        known.reading.insert(
            "a".into(),
            Reading {
                counter: 3,
                handing_over: false,
            },
        );
        assert!(observe(&known.worker(), &renewed).shared_id.is_empty());
    }

    #[test]
    fn a_reader_stops_when_its_lease_is_taken_and_hands_over_when_asked() {
        let mut known = Known::new();
        for shard in ["a", "b", "c"] {
            known.reading.insert(
                shard.into(),
                Reading {
                    counter: 2,
                    handing_over: shard == "c",
                },
            );
        }
        let asked = |shard| Lease {
            handoff_to: Some("w2".into()),
            ..lease(shard, Some("me"), 2, 7)
        };
        let leases = [lease("a", Some("w2"), 3, 0), asked("b"), asked("c")];
        let changes = readers(&known.worker(), &leases, false);
        assert_eq!(changes.lose, vec![ShardId::from("a")]);
        assert_eq!(
            changes.hand_over,
            vec![(ShardId::from("b"), WorkerId::from("w2"))]
        );
        // Shutting down, every lease is released anyway: no hand-over of its own.
        assert!(readers(&known.worker(), &leases, true).hand_over.is_empty());
    }

    #[test]
    fn leases_naming_this_worker_are_started_only_when_handed_over_at_its_request() {
        let mut known = Known::new();
        let handed = lease("a", Some("me"), 3, 0);
        let unasked = lease("b", Some("me"), 5, 0);
        let left = lease("c", Some("me"), 7, 0);
        known = known
            .seen(&[handed.clone(), unasked.clone()], Duration::from_secs(1))
            .seen(std::slice::from_ref(&left), FAILOVER);
        known.asked.insert("a".into(), 2);
        let plan = plan(&known.worker(), &[handed, unasked, left]);
        assert_eq!(shards(&plan.start), ["a"]);
        // Left by an earlier run under this id, unchanged for the failover time.
        assert_eq!(shards(&plan.take_anew), ["c"]);
    }

    #[test]
    fn leases_being_taken_or_released_are_left_alone() {
        let mut known = Known::new();
        let mine = lease("a", Some("me"), 3, 0);
        let free = lease("b", None, 0, 0);
        known = known.seen(&[mine.clone(), free.clone()], FAILOVER);
        known.releasing.insert("a".into());
        known.taking.insert("b".into());
        let plan = plan(&known.worker(), &[mine, free]);
        assert!(plan.start.is_empty() && plan.take_anew.is_empty() && plan.take.is_empty());
    }

    #[test]
    fn free_and_expired_leases_are_taken_towards_an_even_share() {
        let live = lease("a", Some("w2"), 1, 9);
        let expired = lease("b", Some("w3"), 1, 9);
        let free = lease("c", None, 0, 0);
        let known = Known::new()
            .seen(std::slice::from_ref(&live), Duration::from_secs(1))
            .seen(&[expired.clone(), free.clone()], FAILOVER);
        let plan = plan(&known.worker(), &[live, expired, free]);
        let mut taken = shards(&plan.take);
        taken.sort();
        assert_eq!(taken, ["b", "c"]);
        assert!(!plan.all_finished);
    }

    #[test]
    fn the_stream_is_finished_when_every_lease_is_and_nothing_is_read() {
        let done = |shard| Lease {
            shard_end: true,
            ..lease(shard, None, 4, 0)
        };
        let mut known = Known::new();
        assert!(plan(&known.worker(), &[done("a"), done("b")]).all_finished);
        assert!(
            !plan(&known.worker(), &[]).all_finished,
            "an empty table is not"
        );
        known.reading.insert(
            "c".into(),
            Reading {
                counter: 1,
                handing_over: false,
            },
        );
        assert!(!plan(&known.worker(), &[done("a"), done("b")]).all_finished);
    }
}
