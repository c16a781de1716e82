//! A symbol's points in event-time order: what its chart draws, and where its trend changed.
//!
//! The order is that of a stable sort by event time of the rows as they are read (file key
//! order, then row order): rows of one millisecond keep their read order. Each tick file holds a
//! symbol's rows in event-time order, so a symbol's rows are read in that order already, but for
//! late runs: rows of a file earlier than rows of the same symbol read before (late ticks, a
//! symbol that moved between shards). The first read of the report notes them
//! ([`super::tally`]); [`InOrder`] then puts the second read's points back in order, holding
//! only the points that a late run still to come could precede.
//!
//! In: rows, file by file ([`Point::of`], [`InOrder::push`]). Out: the points in order, one at a
//! time, and the trend changes among them ([`TrendTurns`]).
//!
//! Memory: [`InOrder`] holds nothing for a symbol without late runs; otherwise the points read
//! after the event time of the next late run, until its file is read.

use std::collections::BTreeMap;

use super::row::Row;
use crate::model::rules::{AlertKinds, Trend};

/// What the report keeps of one row for its symbol's chart.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Point {
    pub time_ms: i64,
    pub price: f64,
    pub previous_close: Option<f64>,
    pub sma_short: Option<f64>,
    pub sma_long: Option<f64>,
    pub vwap: Option<f64>,
    pub volume: Option<f64>,
    pub anomaly: bool,
    pub trend: Option<Trend>,
    pub alerts: AlertKinds,
    pub alerts_held: AlertKinds,
}

impl Point {
    pub fn of(row: &Row) -> Self {
        Self {
            time_ms: row.event_time_ms,
            price: row.price,
            previous_close: row.previous_close,
            sma_short: row.sma_short,
            sma_long: row.sma_long,
            vwap: row.vwap,
            volume: row.volume,
            anomaly: row.anomaly,
            trend: row.trend,
            alerts: row.alerts,
            alerts_held: row.alerts_held,
        }
    }

    /// `((price - previous_close) / previous_close) * 100`, as [`Row::change_vs_close`].
    pub fn change_vs_close(&self) -> Option<f64> {
        self.previous_close
            .map(|close| ((self.price - close) / close) * 100.0)
    }
}

/// A run of a symbol's rows read late: the index of its file in the read order, and its
/// earliest event time, which is earlier than a row of the symbol read before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LateRun {
    pub file: u32,
    pub from_ms: i64,
}

/// Trend changes, fed each point's trend in order: the trend is known (up or down) and differs
/// from the previous point's known trend, the condition of the `trend_up` and `trend_down`
/// alerts (before their cooldown). A first trend after none (the averages warming up) is not a
/// change.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TrendTurns {
    previous: Option<Trend>,
}

impl TrendTurns {
    /// The trend the point turned to, if it is a change.
    pub fn next(&mut self, trend: Option<Trend>) -> Option<Trend> {
        let turned = match (self.previous, trend) {
            (Some(before), Some(after)) if before != after => Some(after),
            _ => None,
        };
        self.previous = trend;
        turned
    }
}

/// One symbol's points of the second read, handed on in event-time order.
///
/// A point goes on at once when no late run still to be read starts before it (a late row of
/// the same millisecond comes after it: it is read later); otherwise it waits, and goes on once
/// the files of the late runs before it have been read ([`InOrder::end_file`]).
#[derive(Debug, Default)]
pub struct InOrder {
    /// The late runs, by file, each with the earliest start of it and the runs after it.
    ahead: Vec<LateRun>,
    /// How many of `ahead` have been read.
    done: usize,
    /// Points held back, by event time, file and place in the file.
    held: BTreeMap<(i64, u32, u32), Point>,
}

impl InOrder {
    /// Points of a symbol with `late` runs (by file, as the first read found them).
    pub fn new(late: &[LateRun]) -> Self {
        let mut ahead = late.to_vec();
        let mut earliest = i64::MAX;
        for run in ahead.iter_mut().rev() {
            earliest = earliest.min(run.from_ms);
            run.from_ms = earliest;
        }
        Self {
            ahead,
            done: 0,
            held: BTreeMap::new(),
        }
    }

    /// Before this event time, no row of the files still to be read comes.
    fn horizon(&self) -> i64 {
        self.ahead
            .get(self.done)
            .map_or(i64::MAX, |run| run.from_ms)
    }

    /// Takes the point read `at` (its place among the rows of file `file` taken so far) and
    /// hands on those now in order.
    pub fn push(&mut self, file: u32, at: u32, point: Point, mut emit: impl FnMut(&Point)) {
        // What is held comes after the horizon: a point at or before it comes before them all.
        if point.time_ms <= self.horizon() {
            emit(&point);
        } else {
            self.held.insert((point.time_ms, file, at), point);
        }
    }

    /// File `file` has been read: hands on the points no later file can come before.
    pub fn end_file(&mut self, file: u32, mut emit: impl FnMut(&Point)) {
        while self
            .ahead
            .get(self.done)
            .is_some_and(|run| run.file <= file)
        {
            self.done += 1;
        }
        let horizon = self.horizon();
        while let Some(entry) = self.held.first_entry() {
            if entry.key().0 > horizon {
                break;
            }
            emit(&entry.remove());
        }
    }

    /// Every file has been read: hands on what is left.
    pub fn finish(self, mut emit: impl FnMut(&Point)) {
        for point in self.held.values() {
            emit(point);
        }
    }

    /// Points held back now.
    pub fn held(&self) -> usize {
        self.held.len()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn trend_changes_need_a_known_trend_on_both_sides() {
        use Trend::{Down, Up};
        let trends = [
            None,
            Some(Up),
            Some(Up),
            Some(Down),
            None,
            Some(Up),
            Some(Down),
        ];
        let mut turns = TrendTurns::default();
        let changes: Vec<(usize, Trend)> = trends
            .iter()
            .enumerate()
            .filter_map(|(i, &trend)| turns.next(trend).map(|t| (i, t)))
            .collect();
        assert_eq!(changes, [(3, Down), (6, Down)]);
    }

    /// Late runs of `files` (each a symbol's rows in read order, as `(time, tag)`), as the first
    /// read finds them.
    fn late_runs(files: &[Vec<(i64, u32)>]) -> Vec<LateRun> {
        let mut latest = i64::MIN;
        let mut late: Vec<LateRun> = Vec::new();
        for (file, rows) in files.iter().enumerate() {
            for &(time, _) in rows {
                if time < latest {
                    match late.last_mut() {
                        Some(run) if run.file == file as u32 => {
                            run.from_ms = run.from_ms.min(time);
                        }
                        _ => late.push(LateRun {
                            file: file as u32,
                            from_ms: time,
                        }),
                    }
                }
                latest = latest.max(time);
            }
        }
        late
    }

    /// The points of `files` through [`InOrder`], as `(time, tag)`, and the most it held.
    fn in_order(files: &[Vec<(i64, u32)>]) -> (Vec<(i64, u32)>, usize) {
        let mut order = InOrder::new(&late_runs(files));
        let mut out = Vec::new();
        let mut most = 0;
        let point = |time_ms, tag| Point {
            time_ms,
            price: f64::from(tag),
            ..Point::default()
        };
        let tagged = |p: &Point| (p.time_ms, p.price as u32);
        for (file, rows) in files.iter().enumerate() {
            for (at, &(time, tag)) in rows.iter().enumerate() {
                order.push(file as u32, at as u32, point(time, tag), |p| {
                    out.push(tagged(p))
                });
                most = most.max(order.held());
            }
            order.end_file(file as u32, |p| out.push(tagged(p)));
        }
        order.finish(|p| out.push(tagged(p)));
        (out, most)
    }

    #[test]
    fn rows_in_order_go_on_at_once() {
        let files = vec![vec![(1, 0), (2, 1)], vec![(2, 2), (5, 3)], vec![(9, 4)]];
        let (out, most) = in_order(&files);
        assert_eq!(out, [(1, 0), (2, 1), (2, 2), (5, 3), (9, 4)]);
        assert_eq!(most, 0);
    }

    #[test]
    fn a_late_run_is_merged_and_only_what_it_precedes_waits() {
        // File 2 holds a row of time 4, after file 1 read 6 and 8: those wait for it (and file
        // 2's 7 and 10 wait until it is read), while 1, 3 and the 4 of file 1 (read before the
        // late 4) go on.
        let files = vec![
            vec![(1, 0), (3, 1)],
            vec![(4, 2), (6, 3), (8, 4)],
            vec![(4, 5), (7, 6), (10, 7)],
        ];
        let (out, most) = in_order(&files);
        let tags: Vec<u32> = out.iter().map(|&(_, tag)| tag).collect();
        assert_eq!(tags, [0, 1, 2, 5, 3, 6, 4, 7]);
        assert_eq!(most, 4, "6, 8, 7 and 10");
    }

    proptest! {
        /// Whatever the files, the points come out as a stable sort by event time of the rows in
        /// read order.
        #[test]
        fn the_order_is_a_stable_sort_of_the_read_order(
            files in prop::collection::vec(prop::collection::vec(0i64..40, 0..12), 0..8),
        ) {
            let mut tag = 0;
            let files: Vec<Vec<(i64, u32)>> = files
                .into_iter()
                .map(|mut times| {
                    // A file holds a symbol's rows in event-time order.
                    times.sort_unstable();
                    times.into_iter().map(|t| { tag += 1; (t, tag) }).collect()
                })
                .collect();
            let mut expected: Vec<(i64, u32)> = files.iter().flatten().copied().collect();
            expected.sort_by_key(|&(time, _)| time);
            prop_assert_eq!(in_order(&files).0, expected);
        }

        /// Rows out of order within a file are put in order too.
        #[test]
        fn unsorted_files_are_put_in_order(
            files in prop::collection::vec(prop::collection::vec(0i64..40, 0..12), 0..6),
        ) {
            let mut tag = 0;
            let files: Vec<Vec<(i64, u32)>> = files
                .into_iter()
                .map(|times| times.into_iter().map(|t| { tag += 1; (t, tag) }).collect())
                .collect();
            let mut expected: Vec<(i64, u32)> = files.iter().flatten().copied().collect();
            expected.sort_by_key(|&(time, _)| time);
            prop_assert_eq!(in_order(&files).0, expected);
        }
    }
}
