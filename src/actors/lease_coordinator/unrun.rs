//! Leases the table says this worker holds but that it does not read: started, taken anew, or
//! left alone. A lease names a worker id, not a process, so a lease naming this worker may be
//! one handed over at this process's request, one it stopped reading, one left by an earlier
//! run under the same id, or one that another process under the same id reads; only the first
//! may be read under its counter as it is.

use std::time::Instant;

use crate::lease::Lease;
use crate::model::ids::WorkerId;

/// When this worker last saw a lease change, to judge expiry on its own clock.
#[derive(Debug, PartialEq)]
pub(super) struct Seen {
    pub owner: Option<WorkerId>,
    pub counter: u64,
    pub heartbeat: u64,
    pub at: Instant,
}

/// What to do with a lease that the table says this worker holds but that it does not run.
#[derive(Debug, PartialEq)]
pub(super) enum UnrunLease {
    /// Handed over to this process at its request: start reading.
    Start,
    /// This worker stopped reading it under this counter (lost on a missed renewal, or its
    /// release failed) and the table still names it; or nobody has renewed it for the failover
    /// time (left by an earlier run under this id, or handed to another process under it that
    /// is gone). Left alone, nobody would read the shard until the lease expired for others,
    /// and not even then if they had their share already: this worker still counts it as its
    /// own. Taking it again moves the counter on, which fences off whatever read it before.
    TakeAnew,
    /// Its release is in flight (the read predates it), or it may be another process's under
    /// this worker's id (taken or asked for by that one, see [`renewed_by_another`]): reading
    /// it under the same fence would write beside that process.
    Wait,
}

/// `released`: the counter under which this worker last stopped reading the shard, if it did;
/// `handed_over`: see [`handed_over_as_asked`]; `abandoned`: unchanged for the failover time.
pub(super) fn unrun_lease(
    lease: &Lease,
    released: Option<u64>,
    releasing: bool,
    handed_over: bool,
    abandoned: bool,
) -> UnrunLease {
    if releasing {
        UnrunLease::Wait
    } else if released.is_some_and(|counter| lease.counter <= counter) {
        UnrunLease::TakeAnew
    } else if handed_over {
        UnrunLease::Start
    } else if abandoned {
        UnrunLease::TakeAnew
    } else {
        UnrunLease::Wait
    }
}

/// Whether `lease` is the hand-off this process asked for at counter `asked`: released to this
/// worker's id (which moves the counter on by one) and renewed by nobody since.
pub(super) fn handed_over_as_asked(lease: &Lease, asked: Option<u64>) -> bool {
    asked.is_some_and(|counter| lease.counter == counter + 1) && lease.heartbeat == 0
}

/// Whether `lease`, which names this worker but which it does not read, was renewed since
/// `seen` by someone else: a second process under this worker's id. (A handed-over lease, or
/// one left by an earlier run under the same id, is not renewed until it is started.)
/// `released`: as for [`unrun_lease`]; this worker's own renewals of a lease it stopped reading
/// may still land.
pub(super) fn renewed_by_another(seen: &Seen, lease: &Lease, released: Option<u64>) -> bool {
    seen.owner == lease.owner
        && seen.counter == lease.counter
        && lease.heartbeat > seen.heartbeat
        && released.is_none_or(|counter| lease.counter > counter)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mine(counter: u64) -> Lease {
        Lease {
            shard_id: "shardId-000000000000".into(),
            owner: Some("me".into()),
            counter,
            heartbeat: 0,
            shard_end: false,
            parents: Vec::new(),
            handoff_to: None,
        }
    }

    #[test]
    fn only_the_process_that_asked_starts_a_lease_handed_over() {
        assert!(handed_over_as_asked(&mine(3), Some(2)));
        // Another process under this id asked, or this one asked for an older counter.
        assert!(!handed_over_as_asked(&mine(3), None));
        assert!(!handed_over_as_asked(&mine(3), Some(1)));
        // Renewed since: started by the other process under this id.
        let renewed = Lease {
            heartbeat: 1,
            ..mine(3)
        };
        assert!(!handed_over_as_asked(&renewed, Some(2)));

        assert_eq!(
            unrun_lease(&mine(3), None, false, true, false),
            UnrunLease::Start
        );
        // Held before under counter 2 and released; handed back under 3.
        assert_eq!(
            unrun_lease(&mine(3), Some(2), false, true, false),
            UnrunLease::Start
        );
    }

    #[test]
    fn a_lease_naming_this_worker_that_nobody_asked_for_waits_until_abandoned() {
        // Taken by another process under this id (its first renewal not in yet).
        assert_eq!(
            unrun_lease(&mine(3), None, false, false, false),
            UnrunLease::Wait
        );
        // Left by an earlier run under this id: nobody renewed it for the failover time.
        assert_eq!(
            unrun_lease(&mine(3), None, false, false, true),
            UnrunLease::TakeAnew
        );
    }

    #[test]
    fn a_lease_stopped_under_its_current_counter_is_taken_anew() {
        // Lost on a missed renewal: the table still names this worker under the same counter.
        assert_eq!(
            unrun_lease(&mine(3), Some(3), false, true, false),
            UnrunLease::TakeAnew
        );
        // An even older read.
        assert_eq!(
            unrun_lease(&mine(2), Some(3), false, false, false),
            UnrunLease::TakeAnew
        );
    }

    #[test]
    fn a_lease_being_released_is_left_alone() {
        assert_eq!(
            unrun_lease(&mine(3), Some(4), true, true, true),
            UnrunLease::Wait
        );
        assert_eq!(
            unrun_lease(&mine(3), None, true, true, true),
            UnrunLease::Wait
        );
    }

    #[test]
    fn a_lease_renewed_under_this_workers_id_by_another_process_is_told_apart() {
        let seen = |lease: &Lease| Seen {
            owner: lease.owner.clone(),
            counter: lease.counter,
            heartbeat: lease.heartbeat,
            at: Instant::now(),
        };
        let before = mine(3);
        let renewed = Lease {
            heartbeat: 1,
            ..mine(3)
        };
        assert!(renewed_by_another(&seen(&before), &renewed, None));
        // This worker's own renewal, landing after it stopped reading under counter 3.
        assert!(!renewed_by_another(&seen(&before), &renewed, Some(3)));
        // Handed over (a new counter) or left as it was: nobody renews it.
        assert!(!renewed_by_another(&seen(&before), &mine(4), None));
        assert!(!renewed_by_another(&seen(&before), &before, None));
    }
}
