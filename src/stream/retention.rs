//! Records lost to a stream's retention: how a cursor that resumes after a position tells that
//! records which followed it were trimmed before anyone read them.
//!
//! Kinesis keeps a record for the stream's retention period (24 hours unless raised), then trims
//! it, oldest first. A shard resumed from a checkpoint older than that has lost the records
//! between the checkpoint and the oldest record left, and no API call says so: the iterator is
//! granted and simply starts further on (or, for a sequence number the stream no longer accepts,
//! the request is refused and reading can only start at `TRIM_HORIZON`). Sequence numbers grow
//! but are not contiguous, so the first record read does not tell whether records came before
//! it. What can be told is whether the checkpoint's *own* record is still there, and
//! [`GapWatch`] decides exactly that, on the first stream record read from an iterator opened
//! `AT_SEQUENCE_NUMBER` of the checkpoint (or at `TRIM_HORIZON` when that was refused):
//!
//! - its sequence number is the checkpoint's (or lower): nothing after the checkpoint was
//!   trimmed, as trimming takes the oldest records first;
//! - it is higher: the checkpoint's record was trimmed, and with it every record between the
//!   checkpoint and the first one read, if there were any: a [`RetentionGap`];
//! - the shard is closed and no record is left from the checkpoint on: a gap to the shard's end.
//!
//! How many records a gap held is not knowable from Kinesis, nor whether it held any: a shard
//! that received nothing for longer than the retention after the checkpoint's record (its last
//! before a quiet weekend, say) reports a gap on its next resume although nothing was lost. What
//! this does not see: records trimmed under a reader that is running (a reader more than the
//! retention behind), and a shard that never gets another record (nothing to compare with, and
//! nothing left to lose).
//!
//! A resume at [`Position::before_any`] stands before every record of the shard and is never a
//! gap. The in-process stream ([`super::local`]) numbers its records without holes and knows what
//! it trimmed, so its gaps are exact.

use std::fmt;

use crate::model::tick::{Position, SequenceNumber};

use super::{Record, StartPosition};

/// Records of a shard lost to the stream's retention: those after `after` and before `before`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionGap {
    /// The position reading resumed after (a checkpoint): every record up to it was read before.
    pub after: Position,
    /// The first record read instead; `None` when the shard is closed and no record after
    /// `after` is left in it.
    pub before: Option<Position>,
    /// When the stream took the record at `before`, epoch ms (0 without one).
    pub arrival_time_ms: i64,
}

impl fmt::Display for RetentionGap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.before {
            Some(before) => write!(f, "after {} and before {before}", self.after),
            None => write!(f, "after {} to the end of the shard", self.after),
        }
    }
}

/// Watches the first read of a Kinesis cursor that resumed after a position (see the module
/// documentation for the rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GapWatch {
    after: Position,
}

impl GapWatch {
    /// The watch of a cursor opened at `start`: only a resume after a record is watched.
    pub fn new(start: &StartPosition) -> Option<Self> {
        match start {
            StartPosition::After(after) if *after != Position::before_any() => Some(Self {
                after: after.clone(),
            }),
            _ => None,
        }
    }

    /// The position the cursor resumed after.
    pub fn after(&self) -> &Position {
        &self.after
    }

    /// The verdict on the first read that returned stream records: `first_sequence` is the
    /// sequence number of the first of them, `first` the first record the cursor hands on (none
    /// when every user record of the read was at or before the resume position).
    pub fn first_read(
        self,
        first_sequence: &SequenceNumber,
        first: Option<&Record>,
    ) -> Option<RetentionGap> {
        (*first_sequence > self.after.sequence).then(|| RetentionGap {
            before: Some(first.map_or_else(
                || Position::new(first_sequence.clone(), 0),
                |record| record.position.clone(),
            )),
            arrival_time_ms: first.map_or(0, |record| record.arrival_time_ms),
            after: self.after,
        })
    }

    /// The verdict when the shard ended before any stream record was read: the resume
    /// position's record, and whatever followed it, are gone.
    pub fn shard_ended(self) -> RetentionGap {
        RetentionGap {
            after: self.after,
            before: None,
            arrival_time_ms: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn seq(digits: &str) -> SequenceNumber {
        SequenceNumber::new(digits)
    }

    fn position(sequence: &str, sub_sequence: u32) -> Position {
        Position::new(SequenceNumber::new(sequence), sub_sequence)
    }

    fn record(sequence: &str, sub_sequence: u32) -> Record {
        Record {
            data: Bytes::new(),
            partition_key: "AAPL".into(),
            position: position(sequence, sub_sequence),
            arrival_time_ms: 1_700_000_000_000,
        }
    }

    fn watch(sequence: &str, sub_sequence: u32) -> GapWatch {
        GapWatch::new(&StartPosition::After(position(sequence, sub_sequence))).unwrap()
    }

    #[test]
    fn only_a_resume_after_a_record_is_watched() {
        assert!(GapWatch::new(&StartPosition::TrimHorizon).is_none());
        assert!(GapWatch::new(&StartPosition::Latest).is_none());
        assert!(GapWatch::new(&StartPosition::AtTimestamp(5)).is_none());
        assert!(GapWatch::new(&StartPosition::After(Position::before_any())).is_none());
        assert_eq!(watch("17", 0).after(), &position("17", 0));
    }

    #[test]
    fn reading_the_checkpoints_record_again_is_no_gap() {
        // A plain record: re-read, skipped, and the next one handed on.
        assert_eq!(
            watch("17", 0).first_read(&seq("17"), Some(&record("20", 0))),
            None
        );
        // Inside a KPL aggregate: the rest of the aggregate comes next.
        assert_eq!(
            watch("17", 2).first_read(&seq("17"), Some(&record("17", 3))),
            None
        );
        // The aggregate's last user record: nothing of the re-read record is handed on.
        assert_eq!(
            watch("17", 4).first_read(&seq("17"), Some(&record("30", 0))),
            None
        );
        assert_eq!(watch("17", 4).first_read(&seq("17"), None), None);
        // From the trim horizon, after the stream refused the number: older records come first.
        assert_eq!(
            watch("17", 0).first_read(&seq("9"), Some(&record("20", 0))),
            None
        );
    }

    #[test]
    fn a_first_record_past_the_checkpoints_is_a_gap_up_to_it() {
        let gap = watch("17", 2)
            .first_read(&seq("40"), Some(&record("40", 0)))
            .unwrap();
        assert_eq!(
            gap,
            RetentionGap {
                after: position("17", 2),
                before: Some(position("40", 0)),
                arrival_time_ms: 1_700_000_000_000,
            }
        );
        assert_eq!(gap.to_string(), "after 17.2 and before 40");
        // Numerically, not as text.
        let gap = watch("99", 0).first_read(&seq("100"), Some(&record("100", 0)));
        assert!(gap.is_some());
    }

    #[test]
    fn a_shard_that_ends_before_any_record_ends_the_gap() {
        let gap = watch("17", 0).shard_ended();
        assert_eq!((gap.before.as_ref(), gap.arrival_time_ms), (None, 0));
        assert_eq!(gap.to_string(), "after 17 to the end of the shard");
    }
}
