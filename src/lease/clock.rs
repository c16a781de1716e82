//! This worker's own clock on its leases: until when each lease is surely still its own.
//!
//! Other workers take a lease once they have seen it unrenewed for the failover time on their own
//! clocks, so the owner may trust it only until its last confirmed renewal (timed from when the
//! renewal was sent) plus the failover time, less a safety margin. The lease coordinator moves
//! the deadline at each confirmed renewal; sinks ask [`LeaseClock::holds`] before each write, so
//! a worker that was frozen, cut off or whose calls hang stops writing for a shard on its own
//! clock, even when no call to the lease table ever completes.
//!
//! Once a lease has run out on this clock it stays out, even if a renewal sent before is
//! confirmed later: a sink may already have left a batch of it unwritten, and must not go on to
//! acknowledge a later barrier over the gap. The coordinator stops the lease's reader, and the
//! shard is read again under a new lease.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::model::ids::ShardId;

#[derive(Debug, Default)]
pub struct LeaseClock {
    shards: Mutex<HashMap<ShardId, Held>>,
    /// How long a confirmed renewal keeps a lease surely owned: the failover time less a margin.
    trust: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Held {
    generation: u64,
    until: Instant,
    /// Ran out once: never trusted again.
    expired: bool,
}

impl LeaseClock {
    /// A clock that trusts a renewal for `trust` after it was sent.
    pub fn new(trust: Duration) -> Self {
        Self {
            shards: Mutex::default(),
            trust,
        }
    }

    /// The lease of `generation` was taken or renewed by a call sent at `sent`.
    pub fn renewed(&self, shard_id: &ShardId, generation: u64, sent: Instant) {
        let until = sent + self.trust;
        let mut shards = self.shards.lock().expect("lease clock lock");
        let fresh = Held {
            generation,
            until,
            expired: false,
        };
        let held = shards.entry(shard_id.clone()).or_insert(fresh);
        if generation > held.generation
            || (generation == held.generation && !held.expired && until > held.until)
        {
            *held = fresh;
        }
    }

    /// Whether this worker surely still holds the shard's lease of `generation` now.
    pub fn holds(&self, shard_id: &ShardId, generation: u64) -> bool {
        self.holds_at(shard_id, generation, Instant::now())
    }

    fn holds_at(&self, shard_id: &ShardId, generation: u64, now: Instant) -> bool {
        let mut shards = self.shards.lock().expect("lease clock lock");
        let Some(held) = shards.get_mut(shard_id) else {
            return false;
        };
        held.expired |= now >= held.until;
        held.generation == generation && !held.expired
    }

    /// The lease of `generation` is let go or lost: nothing more is written under it.
    pub fn end(&self, shard_id: &ShardId, generation: u64) {
        let mut shards = self.shards.lock().expect("lease clock lock");
        if shards
            .get(shard_id)
            .is_some_and(|held| held.generation == generation)
        {
            shards.remove(shard_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_trusted_from_its_renewal_for_the_trust_time_only() {
        let clock = LeaseClock::new(Duration::from_secs(8));
        let shard: ShardId = "shard-1".into();
        let start = Instant::now();
        assert!(!clock.holds_at(&shard, 1, start), "never taken");
        clock.renewed(&shard, 1, start);
        assert!(clock.holds_at(&shard, 1, start + Duration::from_secs(7)));
        assert!(!clock.holds_at(&shard, 2, start), "another generation");
        clock.renewed(&shard, 1, start + Duration::from_secs(5));
        assert!(clock.holds_at(&shard, 1, start + Duration::from_secs(12)));
        // A renewal answered late, sent before a newer one, does not shorten the deadline.
        clock.renewed(&shard, 1, start + Duration::from_secs(1));
        assert!(clock.holds_at(&shard, 1, start + Duration::from_secs(12)));
        assert!(!clock.holds_at(&shard, 1, start + Duration::from_secs(13)));
    }

    #[test]
    fn a_lease_that_ran_out_stays_out_though_a_late_renewal_is_confirmed() {
        let clock = LeaseClock::new(Duration::from_secs(8));
        let shard: ShardId = "shard-1".into();
        let start = Instant::now();
        clock.renewed(&shard, 1, start);
        assert!(!clock.holds_at(&shard, 1, start + Duration::from_secs(9)));
        clock.renewed(&shard, 1, start + Duration::from_secs(7));
        assert!(
            !clock.holds_at(&shard, 1, start + Duration::from_secs(10)),
            "a sink may have left a gap: the generation is done"
        );
        clock.renewed(&shard, 2, start + Duration::from_secs(10));
        assert!(clock.holds_at(&shard, 2, start + Duration::from_secs(11)));
    }

    #[test]
    fn a_newer_generation_replaces_an_older_and_ending_is_per_generation() {
        let clock = LeaseClock::new(Duration::from_secs(8));
        let shard: ShardId = "shard-1".into();
        let now = Instant::now();
        clock.renewed(&shard, 1, now);
        clock.renewed(&shard, 2, now);
        assert!(!clock.holds_at(&shard, 1, now));
        clock.renewed(&shard, 1, now + Duration::from_secs(1));
        assert!(
            clock.holds_at(&shard, 2, now),
            "an older generation changes nothing"
        );
        clock.end(&shard, 1);
        assert!(clock.holds_at(&shard, 2, now));
        clock.end(&shard, 2);
        assert!(!clock.holds_at(&shard, 2, now));
    }
}
