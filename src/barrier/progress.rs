//! Step 4 of a barrier, the decision: which checkpoint candidate of a shard can be committed, and
//! how far past it the sinks that do not write files are durable, as a pure function of what the
//! reader proposed and what each sink has made durable. The
//! checkpointer ([`crate::actors::checkpointer`]) gathers both and carries the decision out.

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::proposal::Propose;
use super::sinks::SinkKind;
use crate::lease::Fence;
use crate::model::ids::ShardId;
use crate::model::tick::Position;

/// One shard's barriers between proposal and commit, for one reader generation.
///
/// Two records are kept, each by one store write at a time: the checkpoint, at the newest
/// candidate (a barrier where files close, with its snapshot) that every sink has made durable;
/// and, between two checkpoints, the sinks' durable mark, how far each sink that does not write
/// files has gone past it, so a replay from the checkpoint skips them there.
#[derive(Debug, Default)]
pub struct ShardProgress {
    pub generation: u64,
    /// Proposed candidates, oldest first.
    candidates: VecDeque<Propose>,
    durable: HashMap<SinkKind, Position>,
    /// The checkpoint's position, once one is written or resumed from.
    committed: Option<Position>,
    /// The sinks' durable positions past the checkpoint, as last recorded.
    recorded: BTreeMap<SinkKind, Position>,
    /// The lease the reader holds, which fences the sinks' durable mark.
    fence: Option<Fence>,
    /// A store write is under way: the next waits for it, so writes stay in order.
    saving: bool,
    /// Records read but not yet committed.
    lag: u64,
}

/// The store write a shard's progress calls for.
#[derive(Debug)]
pub enum ProgressWrite {
    /// The newest committable candidate, with the records of every one before it.
    Checkpoint(Propose),
    /// How far each sink that does not write files is durable past the checkpoint, fenced by
    /// the reader's lease.
    SinksDurable(Fence, BTreeMap<SinkKind, Position>),
}

impl ShardProgress {
    /// Records read but not yet committed.
    pub fn lag(&self) -> u64 {
        self.lag
    }

    /// The reader under `fence` resumed at the checkpoint `committed`, with the sinks durable as
    /// far as `durable` (their mark).
    pub fn resume(
        &mut self,
        fence: Fence,
        committed: Option<Position>,
        durable: BTreeMap<SinkKind, Position>,
    ) {
        for (sink, position) in &durable {
            self.acknowledge(*sink, position.clone());
        }
        self.fence = Some(fence);
        self.committed = committed;
        self.recorded = durable;
    }

    pub fn propose(&mut self, candidate: Propose) {
        self.fence.get_or_insert_with(|| candidate.fence.clone());
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

    /// What to write next, if anything: the checkpoint first, else the sinks' durable mark once
    /// it moved; `None` while a write is under way. The caller writes it and then calls
    /// [`Self::saved`] or [`Self::marked`].
    pub fn take_write(&mut self, sinks: &[SinkKind]) -> Option<ProgressWrite> {
        if self.saving {
            return None;
        }
        if let Some(candidate) = self.take_committable(sinks) {
            self.saving = true;
            return Some(ProgressWrite::Checkpoint(candidate));
        }
        let ahead: BTreeMap<SinkKind, Position> = sinks
            .iter()
            .filter(|sink| !sink.writes_files())
            .filter_map(|sink| Some((*sink, self.durable.get(sink)?.clone())))
            .filter(|(_, position)| self.committed.as_ref().is_none_or(|c| c < position))
            .collect();
        if ahead.is_empty() || ahead == self.recorded {
            return None;
        }
        let fence = self.fence.clone()?;
        self.saving = true;
        Some(ProgressWrite::SinksDurable(fence, ahead))
    }

    /// The newest candidate that every one of `sinks` has made durable, taken from the queue with
    /// all before it (their records counted into its `records`).
    fn take_committable(&mut self, sinks: &[SinkKind]) -> Option<Propose> {
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
        Some(newest)
    }

    /// The checkpoint taken last, at `position` with `records`, is written.
    pub fn saved(&mut self, position: Position, records: u64) {
        self.saving = false;
        self.lag = self.lag.saturating_sub(records);
        self.recorded.retain(|_, durable| *durable > position);
        self.committed = Some(position);
    }

    /// The sinks' durable mark taken last is written.
    pub fn marked(&mut self, recorded: BTreeMap<SinkKind, Position>) {
        self.saving = false;
        self.recorded = recorded;
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

    fn checkpoint(write: Option<ProgressWrite>) -> Propose {
        match write {
            Some(ProgressWrite::Checkpoint(candidate)) => candidate,
            other => panic!("expected a checkpoint, got {other:?}"),
        }
    }

    #[test]
    fn a_candidate_waits_for_every_sink_and_the_newest_covered_is_taken() {
        let mut progress = ShardProgress::default();
        for (sequence, records) in [(10, 3), (20, 4), (30, 5)] {
            progress.propose(candidate(sequence, records));
        }
        assert_eq!(progress.lag(), 12);
        progress.acknowledge(SinkKind::Table, position(30));
        let Some(ProgressWrite::SinksDurable(_, ahead)) = progress.take_write(&SINKS) else {
            panic!("the lake has not answered: only the table's progress is recorded");
        };
        assert_eq!(ahead, BTreeMap::from([(SinkKind::Table, position(30))]));
        assert!(progress.take_write(&SINKS).is_none(), "one write at a time");
        progress.marked(ahead);
        assert!(progress.take_write(&SINKS).is_none(), "recorded already");
        progress.acknowledge(SinkKind::Lake, position(20));
        progress.acknowledge(SinkKind::Lake, position(10));
        let taken = checkpoint(progress.take_write(&SINKS));
        assert_eq!((taken.position.clone(), taken.records), (position(20), 7));
        progress.acknowledge(SinkKind::Lake, position(30));
        assert!(progress.take_write(&SINKS).is_none(), "one write at a time");
        progress.saved(taken.position, 7);
        assert_eq!(progress.lag(), 5);
        let taken = checkpoint(progress.take_write(&SINKS));
        assert_eq!(taken.position, position(30));
    }

    /// Files close at few barriers; the table is durable at each. Its progress is recorded
    /// past the checkpoint, once per change, and a resumed reader starts from what was recorded.
    #[test]
    fn sinks_that_write_no_files_are_recorded_past_the_checkpoint() {
        let mut progress = ShardProgress::default();
        progress.resume(
            candidate(10, 0).fence,
            Some(position(10)),
            BTreeMap::from([(SinkKind::Table, position(15))]),
        );
        assert!(
            progress.take_write(&SINKS).is_none(),
            "the resumed mark is not written again"
        );
        progress.acknowledge(SinkKind::Lake, position(10));
        progress.acknowledge(SinkKind::Table, position(25));
        let Some(ProgressWrite::SinksDurable(_, ahead)) = progress.take_write(&SINKS) else {
            panic!("the table moved on");
        };
        assert_eq!(ahead, BTreeMap::from([(SinkKind::Table, position(25))]));
        progress.marked(ahead);
        // Files close at 30; the table is still at 25: the checkpoint waits for it.
        progress.propose(candidate(30, 9));
        progress.acknowledge(SinkKind::Lake, position(30));
        assert!(progress.take_write(&SINKS).is_none());
        progress.acknowledge(SinkKind::Table, position(40));
        let taken = checkpoint(progress.take_write(&SINKS));
        assert_eq!(taken.position, position(30));
        progress.saved(position(30), 9);
        let Some(ProgressWrite::SinksDurable(_, ahead)) = progress.take_write(&SINKS) else {
            panic!("the table is past the new checkpoint");
        };
        assert_eq!(ahead, BTreeMap::from([(SinkKind::Table, position(40))]));
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
