//! Step 4 of a barrier, the decision: which checkpoint candidate of a shard can be committed, as a
//! pure function of what the reader proposed and what each sink has made durable. The
//! checkpointer ([`crate::actors::checkpointer`]) gathers both and carries the decision out.

use std::collections::{HashMap, VecDeque};

use super::proposal::Propose;
use super::sinks::SinkKind;
use crate::model::ids::ShardId;
use crate::model::tick::Position;

/// One shard's barriers between proposal and commit, for one reader generation.
#[derive(Debug, Default)]
pub struct ShardProgress {
    pub generation: u64,
    /// Proposed candidates, oldest first.
    candidates: VecDeque<Propose>,
    durable: HashMap<SinkKind, Position>,
    /// A checkpoint write is under way: the next waits for it, so commits stay in order.
    saving: bool,
    /// Records read but not yet committed.
    lag: u64,
}

impl ShardProgress {
    /// Records read but not yet committed.
    pub fn lag(&self) -> u64 {
        self.lag
    }

    pub fn propose(&mut self, candidate: Propose) {
        self.lag += candidate.records;
        self.candidates.push_back(candidate);
    }

    /// `sink` made everything up to `position` durable (an older acknowledgement changes nothing).
    pub fn acknowledge(&mut self, sink: SinkKind, position: Position) {
        let durable = self.durable.entry(sink).or_insert_with(|| position.clone());
        if *durable < position {
            *durable = position;
        }
    }

    /// The newest candidate that every one of `sinks` has made durable, taken from the queue with
    /// all before it (their records counted into its `records`); `None` while a write is under way. The
    /// caller writes it and then calls [`Self::saved`].
    pub fn take_committable(&mut self, sinks: &[SinkKind]) -> Option<Propose> {
        if self.saving {
            return None;
        }
        let durable = sinks
            .iter()
            .map(|sink| self.durable.get(sink))
            .collect::<Option<Vec<_>>>()?
            .into_iter()
            .min()?
            .clone();
        let count = self
            .candidates
            .iter()
            .take_while(|c| c.position <= durable)
            .count();
        let mut taken = self.candidates.drain(..count);
        let mut newest = taken.next_back()?;
        newest.records += taken.map(|c| c.records).sum::<u64>();
        self.saving = true;
        Some(newest)
    }

    /// The candidate taken last, with `records`, is written.
    pub fn saved(&mut self, records: u64) {
        self.saving = false;
        self.lag = self.lag.saturating_sub(records);
    }
}

/// The progress of every shard, by the newest reader generation seen for it.
#[derive(Debug, Default)]
pub struct Progress {
    shards: HashMap<ShardId, ShardProgress>,
}

impl Progress {
    /// The shard's progress for a message of `generation`: reset when a newer reader started,
    /// `None` when the message comes from an older one (stale: dropped).
    pub fn of(&mut self, shard_id: &ShardId, generation: u64) -> Option<&mut ShardProgress> {
        let progress = self.shards.entry(shard_id.clone()).or_default();
        if generation > progress.generation {
            *progress = ShardProgress {
                generation,
                ..ShardProgress::default()
            };
        }
        (generation == progress.generation).then_some(progress)
    }

    /// The shard's progress, whatever its generation.
    pub fn shard(&mut self, shard_id: &ShardId) -> Option<&mut ShardProgress> {
        self.shards.get_mut(shard_id)
    }

    /// The shard's progress if `generation` is its current reader.
    pub fn current(&mut self, shard_id: &ShardId, generation: u64) -> Option<&mut ShardProgress> {
        self.shards
            .get_mut(shard_id)
            .filter(|p| p.generation == generation)
    }

    /// Forgets the shard if `generation` is its current reader.
    pub fn remove(&mut self, shard_id: &ShardId, generation: u64) {
        if self.current(shard_id, generation).is_some() {
            self.shards.remove(shard_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::ShardSnapshot;
    use crate::lease::Fence;
    use crate::model::tick::SequenceNumber;

    fn position(sequence: u64) -> Position {
        Position::new(SequenceNumber::new(format!("{sequence:05}")), 0)
    }

    fn candidate(sequence: u64, records: u64) -> Propose {
        Propose {
            shard_id: "shard-1".into(),
            fence: Fence {
                shard_id: "shard-1".into(),
                owner: "worker".into(),
                counter: 1,
            },
            position: position(sequence),
            snapshot: ShardSnapshot::new(),
            last: false,
            shard_end: false,
            records,
            newest_arrival_ms: 0,
        }
    }

    const SINKS: [SinkKind; 2] = [SinkKind::Table, SinkKind::Lake];

    #[test]
    fn a_candidate_waits_for_every_sink_and_the_newest_covered_is_taken() {
        let mut progress = ShardProgress::default();
        for (sequence, records) in [(10, 3), (20, 4), (30, 5)] {
            progress.propose(candidate(sequence, records));
        }
        assert_eq!(progress.lag(), 12);
        progress.acknowledge(SinkKind::Table, position(30));
        assert!(
            progress.take_committable(&SINKS).is_none(),
            "the lake has not answered"
        );
        progress.acknowledge(SinkKind::Lake, position(20));
        progress.acknowledge(SinkKind::Lake, position(10));
        let taken = progress
            .take_committable(&SINKS)
            .expect("20 is durable everywhere");
        assert_eq!((taken.position, taken.records), (position(20), 7));
        progress.acknowledge(SinkKind::Lake, position(30));
        assert!(
            progress.take_committable(&SINKS).is_none(),
            "one write at a time"
        );
        progress.saved(7);
        assert_eq!(progress.lag(), 5);
        let taken = progress.take_committable(&SINKS).expect("30 is durable");
        assert_eq!(taken.position, position(30));
    }

    #[test]
    fn an_older_generation_is_dropped_and_a_newer_one_starts_afresh() {
        let mut progress = Progress::default();
        let shard: ShardId = "shard-1".into();
        progress.of(&shard, 2).unwrap().propose(candidate(10, 1));
        assert!(progress.of(&shard, 1).is_none());
        assert_eq!(progress.of(&shard, 2).unwrap().lag(), 1);
        assert_eq!(progress.of(&shard, 3).unwrap().lag(), 0);
        assert!(progress.current(&shard, 2).is_none());
        progress.remove(&shard, 2);
        assert!(
            progress.current(&shard, 3).is_some(),
            "only its own generation removes it"
        );
        progress.remove(&shard, 3);
        assert!(progress.current(&shard, 3).is_none());
    }
}
