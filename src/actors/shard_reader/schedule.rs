//! When a shard's barriers fall (every `checkpoint.interval` or `checkpoint.max-records`, the
//! first one earlier by a share that differs between shards), and which of them close the files
//! (`lake.target-file-size`, `lake.max-file-age`): a pure schedule, given the time.

use std::time::{Duration, Instant};

use crate::barrier::FileSizing;
use crate::model::tick::Position;

/// A barrier that falls at a read's end.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Barrier {
    pub position: Position,
    /// The files close here, a checkpoint candidate: with the records read since the last one.
    pub closing: Option<u64>,
}

/// One shard's barrier schedule.
#[derive(Debug)]
pub(super) struct BarrierSchedule {
    interval: Duration,
    max_records: u64,
    files: FileSizing,
    last_barrier: Option<Position>,
    /// The last barrier where files closed, or the checkpoint resumed from: past it, files are
    /// open.
    last_candidate: Option<Position>,
    records_since_barrier: u64,
    records_since_candidate: u64,
    /// `max_records`, but for the first barrier (see [`first_barrier_after`]).
    barrier_after_records: u64,
    barrier_due_at: Instant,
    /// When the open files reach their age: the first time sooner, by the shard's share too.
    files_close_at: Instant,
}

impl BarrierSchedule {
    pub fn new(
        shard_id: &str,
        (interval, max_records): (Duration, u64),
        files: FileSizing,
        now: Instant,
    ) -> Self {
        let max_age_ms = files.max_age.as_millis() as u64;
        Self {
            interval,
            max_records,
            files,
            last_barrier: None,
            last_candidate: None,
            records_since_barrier: 0,
            records_since_candidate: 0,
            barrier_after_records: first_barrier_after(shard_id, max_records),
            barrier_due_at: now + interval,
            files_close_at: now + Duration::from_millis(first_barrier_after(shard_id, max_age_ms)),
        }
    }

    /// The shard resumes from a checkpoint at `position`: no file is open.
    pub fn resumed_at(&mut self, position: &Position) {
        self.last_barrier = Some(position.clone());
        self.last_candidate = Some(position.clone());
    }

    /// The barrier a read of `records` ending at `position` ends with, if one falls there: when
    /// `forced` (a reserved files end, or the reader's last read), or when one is due and
    /// barriers are not `held` back for a reserved end. A forced barrier closes the files, as
    /// does one that finds them at their target size (`open_bytes`) or age; files that reach
    /// their age on a shard gone quiet close at a barrier of their own, where the last one fell.
    pub fn next(
        &mut self,
        position: Option<&Position>,
        records: u64,
        (forced, held): (bool, bool),
        open_bytes: u64,
        now: Instant,
    ) -> Option<Barrier> {
        self.records_since_barrier += records;
        self.records_since_candidate += records;
        let position = position?;
        let due = !held
            && (self.records_since_barrier >= self.barrier_after_records
                || now >= self.barrier_due_at);
        let fresh = self.last_barrier.as_ref() != Some(position);
        let files_open = self.last_candidate.as_ref() != Some(position);
        let aged = !held && files_open && now >= self.files_close_at;
        if !(forced || (due && fresh) || aged) {
            return None;
        }
        self.last_barrier = Some(position.clone());
        self.records_since_barrier = 0;
        self.barrier_after_records = self.max_records;
        self.barrier_due_at = now + self.interval;
        let closes = forced || now >= self.files_close_at || open_bytes >= self.files.target_bytes;
        let closing = closes.then(|| {
            self.files_close_at = now + self.files.max_age;
            self.last_candidate = Some(position.clone());
            std::mem::take(&mut self.records_since_candidate)
        });
        Some(Barrier {
            position: position.clone(),
            closing,
        })
    }
}

/// Records before a shard's first barrier: `max_records` shortened by a fraction set by the
/// shard's number. Evenly loaded shards would otherwise reach every record-count barrier
/// together, and the lake would encode all their files, and the checkpointer snapshot all their
/// windows, at the same moment, with every shard's rows held meanwhile. Golden-ratio steps
/// spread any run of shard numbers evenly; ids without a number take a hash.
fn first_barrier_after(shard_id: &str, max_records: u64) -> u64 {
    const GOLDEN_FRACTION: f64 = 0.618_033_988_749_895;
    let digits = shard_id.trim_start_matches(|c: char| !c.is_ascii_digit());
    let number = digits.parse::<u64>().unwrap_or_else(|_| {
        // FNV-1a: fixed, so a shard's barriers fall in the same places on every run.
        shard_id.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        })
    });
    let fraction = (number as f64 * GOLDEN_FRACTION).fract();
    let shortened = max_records - (max_records as f64 * fraction) as u64;
    shortened.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tick::SequenceNumber;

    fn at(sequence: u64) -> Position {
        Position::new(SequenceNumber::new(sequence.to_string()), 0)
    }

    /// Barriers every 10 records or 1 s; files close at 1,000 bytes or 5 s.
    fn schedule(now: Instant) -> BarrierSchedule {
        let files = FileSizing {
            target_bytes: 1_000,
            max_age: Duration::from_secs(5),
        };
        // Shard 0 reaches its first barrier and its first file's age in full.
        BarrierSchedule::new(
            "shardId-000000000000",
            (Duration::from_secs(1), 10),
            files,
            now,
        )
    }

    #[test]
    fn files_close_at_their_size_or_age_and_barriers_fall_between() {
        let start = Instant::now();
        let mut schedule = schedule(start);
        let none = (false, false);
        assert_eq!(schedule.next(Some(&at(5)), 5, none, 0, start), None);
        let barrier = schedule.next(Some(&at(10)), 5, none, 400, start).unwrap();
        assert_eq!(barrier.closing, None, "a barrier, the file open");
        let barrier = schedule
            .next(Some(&at(20)), 10, none, 1_000, start)
            .unwrap();
        assert_eq!(barrier.closing, Some(20), "the file reached its size");
        let later = start + Duration::from_secs(2);
        let barrier = schedule.next(Some(&at(21)), 1, none, 10, later).unwrap();
        assert_eq!(barrier.closing, None, "due by time, the new file young");
        let aged = later + Duration::from_secs(4);
        let barrier = schedule.next(Some(&at(22)), 1, none, 20, aged).unwrap();
        assert_eq!(barrier.closing, Some(2), "the file reached its age");
    }

    #[test]
    fn a_quiet_shards_file_closes_at_its_age_where_the_last_barrier_fell() {
        let start = Instant::now();
        let mut schedule = schedule(start);
        let none = (false, false);
        let barrier = schedule.next(Some(&at(10)), 10, none, 100, start).unwrap();
        assert_eq!(barrier.closing, None);
        let quiet = start + Duration::from_secs(3);
        assert_eq!(schedule.next(Some(&at(10)), 0, none, 100, quiet), None);
        let aged = start + Duration::from_secs(6);
        let barrier = schedule.next(Some(&at(10)), 0, none, 100, aged).unwrap();
        assert_eq!((barrier.position, barrier.closing), (at(10), Some(10)));
        let after = aged + Duration::from_secs(60);
        assert_eq!(
            schedule.next(Some(&at(10)), 0, none, 0, after),
            None,
            "no file is open"
        );
    }

    #[test]
    fn a_held_schedule_waits_for_the_reserved_end_which_closes_the_files() {
        let start = Instant::now();
        let mut schedule = schedule(start);
        schedule.resumed_at(&at(100));
        let aged = start + Duration::from_secs(60);
        assert_eq!(
            schedule.next(Some(&at(150)), 50, (false, true), 0, aged),
            None
        );
        let barrier = schedule
            .next(Some(&at(160)), 10, (true, false), 0, aged)
            .unwrap();
        assert_eq!(barrier.closing, Some(60));
    }

    #[test]
    fn shards_reach_their_first_barrier_apart() {
        let firsts: Vec<u64> = (0..4)
            .map(|n| first_barrier_after(&format!("shardId-{n:012}"), 20_000))
            .collect();
        assert_eq!(firsts[0], 20_000);
        let mut sorted = firsts.clone();
        sorted.sort_unstable();
        for pair in sorted.windows(2) {
            assert!(pair[1] - pair[0] >= 2_000, "{firsts:?}");
        }
        assert!(firsts.iter().all(|&n| (1..=20_000).contains(&n)));
        // Any id works, and always gives the same answer.
        let odd = first_barrier_after("local-shard", 20_000);
        assert_eq!(odd, first_barrier_after("local-shard", 20_000));
        assert!((1..=20_000).contains(&odd));
        assert_eq!(first_barrier_after("shardId-000000000007", 1), 1);
    }
}
