//! What an earlier owner of the shard left for this reader to keep to (see
//! [`crate::checkpoint::Mark`]): the reserved end of the next files, where the reader's next
//! barrier must fall and none before it, and how far alerts are published, up to where the reader
//! sends no alert again, and how far each sink that writes no files is durable, up to where the
//! reader gives it nothing again. The reader cuts its reads at each, so that a batch never runs
//! across one.

use std::collections::BTreeMap;

use crate::barrier::SinkKind;
use crate::checkpoint::Marks;
use crate::model::tick::Position;
use crate::stream::ReadBatch;

#[derive(Debug, Default)]
pub(super) struct ResumeMarks {
    files_end: Option<Position>,
    alerts_published: Option<Position>,
    sinks_durable: BTreeMap<SinkKind, Position>,
}

/// What one read is, against the marks.
#[derive(Debug, Default)]
pub(super) struct Cut {
    /// The read ends at the reserved files end: a barrier falls here.
    pub at_files_end: bool,
    /// Every alert of the read was published before: none is sent again.
    pub alerts_published: bool,
    /// The sinks that have every record of the read durable already: not given it again.
    pub skip: Vec<SinkKind>,
    /// The records past the mark, for the next round.
    pub rest: Option<ReadBatch>,
}

impl ResumeMarks {
    /// The marks that still hold for a reader resuming after `resumed_at`.
    pub fn new(marks: Marks, resumed_at: Option<&Position>) -> Self {
        let ahead = |through: &Position| resumed_at.is_none_or(|at| at < through);
        Self {
            files_end: marks.files_end.map(|reserved| reserved.end),
            alerts_published: marks.alerts_published.filter(ahead),
            sinks_durable: marks
                .sinks_durable
                .into_iter()
                .filter(|(_, through)| ahead(through))
                .filter_map(|(name, through)| Some((SinkKind::named(&name)?, through)))
                .collect(),
        }
    }

    /// How far past the checkpoint each sink that writes no files is durable.
    pub fn sinks_durable(&self) -> &BTreeMap<SinkKind, Position> {
        &self.sinks_durable
    }

    pub fn files_end(&self) -> Option<&Position> {
        self.files_end.as_ref()
    }

    pub fn alerts_published(&self) -> Option<&Position> {
        self.alerts_published.as_ref()
    }

    /// Cuts `batch` after the nearest mark and says what the part left is.
    pub fn cut(&mut self, batch: &mut ReadBatch) -> Cut {
        let marked = [&self.files_end, &self.alerts_published]
            .into_iter()
            .flatten();
        let Some(nearest) = marked.chain(self.sinks_durable.values()).min().cloned() else {
            return Cut::default();
        };
        let rest = batch.split_after(&nearest);
        let last = batch.records.last().map(|r| r.position.clone());
        // The marked record is gone from the stream (trimmed), or the shard ended before it.
        let passed = (last.is_none() && rest.is_some()) || batch.shard_end;
        let at_files_end = last.is_some() && last == self.files_end;
        if let Some(end) = &self.files_end
            && (at_files_end || passed)
        {
            if !at_files_end {
                // No owner can end a file there any more: barriers go back to their places.
                tracing::warn!(%end, "The reserved end of the shard's files is no longer in the stream.");
            }
            self.files_end = None;
        }
        let alerts_published = self
            .alerts_published
            .as_ref()
            .is_some_and(|through| last.as_ref().is_none_or(|last| last <= through));
        if passed || (last.is_some() && last == self.alerts_published) {
            self.alerts_published = None;
        }
        let skip = self
            .sinks_durable
            .iter()
            .filter(|(_, through)| last.as_ref().is_some_and(|last| last <= *through))
            .map(|(sink, _)| *sink)
            .collect();
        let reached = if passed {
            Some(&nearest)
        } else {
            last.as_ref()
        };
        if let Some(reached) = reached {
            self.sinks_durable.retain(|_, through| &*through > reached);
        }
        Cut {
            at_files_end,
            alerts_published,
            skip,
            rest,
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::checkpoint::FilesEnd;
    use crate::model::tick::SequenceNumber;
    use crate::stream::Record;

    fn position(n: u64) -> Position {
        Position::new(SequenceNumber::new(n.to_string()), 0)
    }

    fn read(sequences: std::ops::RangeInclusive<u64>) -> ReadBatch {
        ReadBatch {
            records: sequences
                .map(|n| Record {
                    data: Bytes::new(),
                    partition_key: "AAPL".into(),
                    position: position(n),
                    arrival_time_ms: 0,
                })
                .collect(),
            ..ReadBatch::default()
        }
    }

    fn marks(files_end: Option<u64>, alerts_published: Option<u64>) -> Marks {
        Marks {
            files_end: files_end.map(|end| FilesEnd {
                after: Some(position(1)),
                end: position(end),
            }),
            alerts_published: alerts_published.map(position),
            sinks_durable: BTreeMap::new(),
        }
    }

    #[test]
    fn reads_are_cut_at_each_mark_in_turn() {
        let mut marks = ResumeMarks::new(marks(Some(6), Some(4)), Some(&position(1)));
        let mut batch = read(2..=8);
        let cut = marks.cut(&mut batch);
        assert_eq!(batch.records.len(), 3, "2..=4: up to the alerts mark");
        assert!(cut.alerts_published && !cut.at_files_end);
        let mut batch = cut.rest.unwrap();
        let cut = marks.cut(&mut batch);
        assert_eq!(batch.records.len(), 2, "5..=6: up to the files end");
        assert!(cut.at_files_end && !cut.alerts_published);
        assert!(marks.files_end().is_none());
        let mut batch = cut.rest.unwrap();
        let cut = marks.cut(&mut batch);
        assert_eq!(batch.records.len(), 2, "7..=8: no mark left");
        assert!(!cut.at_files_end && !cut.alerts_published && cut.rest.is_none());
    }

    #[test]
    fn a_mark_gone_from_the_stream_is_dropped() {
        let mut marks = ResumeMarks::new(marks(Some(3), Some(3)), Some(&position(1)));
        let mut batch = read(5..=6);
        let cut = marks.cut(&mut batch);
        assert!(batch.records.is_empty() && !cut.at_files_end);
        assert!(marks.files_end().is_none());
        let mut batch = cut.rest.unwrap();
        let cut = marks.cut(&mut batch);
        assert_eq!(batch.records.len(), 2);
        assert!(!cut.alerts_published, "alerts past the mark are sent");
    }

    #[test]
    fn a_sink_durable_past_the_checkpoint_is_skipped_up_to_its_mark() {
        let stored = Marks {
            sinks_durable: BTreeMap::from([
                ("table".to_owned(), position(4)),
                ("alerts".to_owned(), position(6)),
                ("someday".to_owned(), position(9)),
            ]),
            ..Marks::default()
        };
        let mut marks = ResumeMarks::new(stored, Some(&position(1)));
        let mut batch = read(2..=8);
        let cut = marks.cut(&mut batch);
        assert_eq!(batch.records.len(), 3, "2..=4: up to the table's mark");
        assert_eq!(cut.skip, [SinkKind::Table, SinkKind::Alerts]);
        let mut batch = cut.rest.unwrap();
        let cut = marks.cut(&mut batch);
        assert_eq!(batch.records.len(), 2, "5..=6: up to the alerts' mark");
        assert_eq!(cut.skip, [SinkKind::Alerts]);
        let mut batch = cut.rest.unwrap();
        let cut = marks.cut(&mut batch);
        assert_eq!(batch.records.len(), 2);
        assert!(cut.skip.is_empty() && marks.sinks_durable().is_empty());
    }

    #[test]
    fn an_alerts_mark_at_or_before_the_checkpoint_is_ignored() {
        let marks = ResumeMarks::new(marks(None, Some(4)), Some(&position(4)));
        assert!(marks.alerts_published.is_none());
    }
}
