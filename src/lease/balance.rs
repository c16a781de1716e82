//! Which leases a worker takes or asks for in one round: pure logic over a read of the table.
//!
//! Every worker aims for an even share of the workable leases (unfinished shards whose parents
//! are finished): it takes free and expired leases up to the ceiling of that share, and when none
//! are left and it is below the ceiling, it asks owners that hold at least two more than it does
//! to hand one over, one lease from each such owner in turn, not only from the largest. An owner
//! so asked still holds at least as many as the asker afterwards, so leases never move back and
//! forth.
//! Moves per round are bounded, so a crowd of new workers does not stampede.

use std::collections::{BTreeMap, BTreeSet};

use super::Lease;
use crate::model::ids::ShardId;
use crate::model::ids::WorkerId;

/// What one worker does in a round.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// Free or expired leases to take.
    pub take: Vec<Lease>,
    /// Leases whose owners are asked to hand them over.
    pub request: Vec<Lease>,
}

/// A read of the lease table as one worker sees it.
pub struct View<'a> {
    pub me: &'a WorkerId,
    pub leases: &'a [Lease],
    /// Shards whose owner has not renewed for the failover time, as this worker observed.
    pub expired: &'a BTreeSet<ShardId>,
    /// Most leases taken or requested in one round.
    pub max_moves: usize,
}

impl View<'_> {
    /// Finished shards, and parents no longer in the table (trimmed from the stream) count as
    /// finished.
    fn is_workable(
        &self,
        lease: &Lease,
        finished: &BTreeSet<&ShardId>,
        known: &BTreeSet<&ShardId>,
    ) -> bool {
        !lease.shard_end
            && lease
                .parents
                .iter()
                .all(|parent| finished.contains(parent) || !known.contains(parent))
    }

    fn is_live(&self, lease: &Lease) -> bool {
        lease.owner.is_some() && !self.expired.contains(&lease.shard_id)
    }

    pub fn plan(&self) -> Plan {
        let finished: BTreeSet<&ShardId> = self
            .leases
            .iter()
            .filter(|l| l.shard_end)
            .map(|l| &l.shard_id)
            .collect();
        let known: BTreeSet<&ShardId> = self.leases.iter().map(|l| &l.shard_id).collect();
        let workable: Vec<&Lease> = self
            .leases
            .iter()
            .filter(|l| self.is_workable(l, &finished, &known))
            .collect();

        // Who will hold each live lease once pending hand-offs are done.
        let mut holdings: BTreeMap<&str, usize> = BTreeMap::new();
        holdings.insert(self.me, 0);
        for lease in workable.iter().filter(|l| self.is_live(l)) {
            let holder = lease.handoff_to.as_ref().or(lease.owner.as_ref());
            *holdings
                .entry(holder.expect("live leases have owners"))
                .or_default() += 1;
        }
        let workers = holdings.len();
        let ceiling = workable.len().div_ceil(workers);
        let held = holdings[self.me.as_ref()];

        let mut plan = Plan::default();
        let mut free: Vec<&Lease> = workable
            .iter()
            .copied()
            .filter(|l| !l.is_owned_by(self.me) && !self.is_live(l))
            .collect();
        // Unowned leases first (a hand-off or a new shard), then expired ones; among those, an
        // order of this worker's own, so workers polling at the same moment go for different
        // leases instead of all racing for the first.
        free.sort_by_key(|l| (l.owner.is_some(), preference(self.me, &l.shard_id)));
        let wanted = ceiling.saturating_sub(held).min(self.max_moves);
        plan.take = free.into_iter().take(wanted).cloned().collect();
        if !plan.take.is_empty() || held >= ceiling {
            return plan;
        }

        // Nothing free: ask those with two more, one lease from each in turn, most loaded first.
        let mut needed = (ceiling - held).min(self.max_moves);
        let mut donors: Vec<(&str, usize)> = holdings
            .iter()
            .filter(|(worker, count)| **worker != self.me.as_ref() && **count >= held + 2)
            .map(|(worker, count)| (*worker, *count))
            .collect();
        donors.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let mut asked: BTreeSet<&ShardId> = BTreeSet::new();
        let mut mine = held;
        while needed > 0 {
            let mut asked_this_pass = false;
            for (donor, count) in donors.iter_mut() {
                if needed == 0 || *count < mine + 2 {
                    continue;
                }
                let lease = workable.iter().find(|l| {
                    l.owner.as_deref() == Some(*donor)
                        && l.handoff_to.is_none()
                        && self.is_live(l)
                        && !asked.contains(&l.shard_id)
                });
                if let Some(lease) = lease {
                    asked.insert(&lease.shard_id);
                    plan.request.push((*lease).clone());
                    *count -= 1;
                    mine += 1;
                    needed -= 1;
                    asked_this_pass = true;
                }
            }
            if !asked_this_pass {
                break;
            }
        }
        plan
    }
}

/// A worker's own, stable ranking of shards.
fn preference(worker: &str, shard: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    (worker, shard).hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(shard: usize, owner: Option<&str>) -> Lease {
        Lease {
            shard_id: format!("shard-{shard:02}").into(),
            owner: owner.map(Into::into),
            counter: 1,
            heartbeat: 0,
            shard_end: false,
            parents: Vec::new(),
            handoff_to: None,
        }
    }

    fn owned(owners: &[(&str, usize)]) -> Vec<Lease> {
        let mut leases = Vec::new();
        for (owner, count) in owners {
            for _ in 0..*count {
                leases.push(lease(leases.len(), Some(owner)));
            }
        }
        leases
    }

    fn plan(me: &str, leases: &[Lease], expired: &[usize], max_moves: usize) -> Plan {
        let me: WorkerId = me.into();
        let expired = expired
            .iter()
            .map(|i| leases[*i].shard_id.clone())
            .collect();
        View {
            me: &me,
            leases,
            expired: &expired,
            max_moves,
        }
        .plan()
    }

    /// Plays rounds of every worker until nothing moves; returns each worker's lease count.
    fn settle(workers: &[&str], leases: &mut [Lease]) -> BTreeMap<String, usize> {
        for _round in 0..50 {
            let mut moved = false;
            for worker in workers {
                let plan = plan(worker, leases, &[], 2);
                for taken in plan.take.iter().chain(&plan.request) {
                    let lease = leases
                        .iter_mut()
                        .find(|l| l.shard_id == taken.shard_id)
                        .unwrap();
                    lease.owner = Some((*worker).into());
                    lease.counter += 1;
                    moved = true;
                }
            }
            if !moved {
                break;
            }
        }
        let mut counts: BTreeMap<String, usize> =
            workers.iter().map(|w| (w.to_string(), 0)).collect();
        for lease in leases.iter() {
            *counts.get_mut(lease.owner.as_deref().unwrap()).unwrap() += 1;
        }
        counts
    }

    #[test]
    fn first_worker_takes_free_leases_a_bounded_number_per_round() {
        let leases: Vec<Lease> = (0..8).map(|i| lease(i, None)).collect();
        let plan = plan("a", &leases, &[], 2);
        assert_eq!(plan.take.len(), 2);
        assert!(plan.request.is_empty());
    }

    #[test]
    fn three_workers_settle_to_an_even_share_and_a_fourth_takes_its_part() {
        let mut leases: Vec<Lease> = (0..8).map(|i| lease(i, None)).collect();
        let counts = settle(&["a", "b", "c"], &mut leases);
        let mut shares: Vec<usize> = counts.values().copied().collect();
        shares.sort();
        assert_eq!(shares, vec![2, 3, 3]);

        let counts = settle(&["a", "b", "c", "d"], &mut leases);
        assert!(counts.values().all(|&n| n == 2), "{counts:?}");
    }

    #[test]
    fn workers_prefer_different_free_leases() {
        let leases: Vec<Lease> = (0..8).map(|i| lease(i, None)).collect();
        let firsts: BTreeSet<_> = ["a", "b", "c", "d"]
            .iter()
            .map(|w| plan(w, &leases, &[], 1).take[0].shard_id.clone())
            .collect();
        assert!(firsts.len() > 1, "every worker goes for {firsts:?}");
    }

    #[test]
    fn a_new_worker_asks_every_overloaded_owner_not_only_the_largest() {
        let leases = owned(&[("a", 4), ("b", 4)]);
        let plan = plan("c", &leases, &[], 2);
        assert!(plan.take.is_empty());
        let donors: BTreeSet<_> = plan
            .request
            .iter()
            .map(|l| l.owner.clone().unwrap())
            .collect();
        assert_eq!(donors.len(), 2, "{:?}", plan.request);
    }

    #[test]
    fn a_balanced_table_stays_put() {
        for owners in [
            &[("a", 3), ("b", 3), ("c", 2)][..],
            &[("a", 3), ("b", 2), ("c", 2), ("d", 2)],
        ] {
            let leases = owned(owners);
            for (worker, _) in owners {
                assert_eq!(
                    plan(worker, &leases, &[], 2),
                    Plan::default(),
                    "{worker} in {owners:?}"
                );
            }
        }
    }

    #[test]
    fn a_worker_above_the_ceiling_gives_to_one_two_below_it() {
        let leases = owned(&[("a", 4), ("b", 2), ("c", 2)]);
        let plan = plan("b", &leases, &[], 2);
        assert_eq!(plan.request.len(), 1);
        assert_eq!(plan.request[0].owner.as_deref(), Some("a"));
    }

    #[test]
    fn expired_leases_are_taken_up_to_the_new_share() {
        // c died holding 2: a and b now split 8 as 4/4.
        let leases = owned(&[("a", 3), ("b", 3), ("c", 2)]);
        let plan = plan("a", &leases, &[6, 7], 2);
        assert_eq!(plan.take.len(), 1);
        assert!(plan.take.iter().all(|l| l.owner.as_deref() == Some("c")));
    }

    #[test]
    fn pending_handoffs_count_for_the_asker() {
        let mut leases = owned(&[("a", 4), ("b", 4)]);
        leases[0].handoff_to = Some("c".into());
        leases[4].handoff_to = Some("c".into());
        assert_eq!(plan("c", &leases, &[], 2), Plan::default());
    }

    #[test]
    fn children_wait_for_their_parents_to_finish() {
        let mut parent = lease(0, Some("a"));
        let mut child = lease(1, None);
        child.parents = vec![parent.shard_id.clone()];
        let leases = vec![parent.clone(), child.clone()];
        assert!(plan("b", &leases, &[], 2).take.is_empty());

        parent.shard_end = true;
        parent.owner = None;
        let plan = plan("b", &[parent, child.clone()], &[], 2);
        assert_eq!(plan.take, vec![child]);
    }

    #[test]
    fn parents_trimmed_from_the_table_count_as_finished() {
        let mut child = lease(1, None);
        child.parents = vec!["shard-gone".into()];
        assert_eq!(plan("a", &[child.clone()], &[], 2).take, vec![child]);
    }
}
