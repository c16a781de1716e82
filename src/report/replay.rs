//! The second read of the lake: the rows of the charted symbols again, in event-time order
//! ([`InOrder`]), into their charts ([`ChartBuilder`]); and the trend changes of the symbols
//! whose rows came in late runs, counted in that order, which the first read could not do.
//!
//! In: the first read's [`Tally`] and the symbols to chart; then those symbols' rows (and the
//! late ones'), file by file, of the files that hold one of them ([`Replay::files`]; the reader
//! skips the other symbols' row groups and rows). Out: a [`ChartSpec`] per charted symbol, and
//! the late symbols' trend changes, put into the tally. Pure: no I/O.
//!
//! Memory: per symbol read again, its chart's kept points and markers, and what [`InOrder`]
//! holds back for its late runs; nothing that grows with its rows.

use std::collections::{BTreeMap, BTreeSet};

use super::charts::{ChartBuilder, ChartSpec};
use super::row::Row;
use super::series::{InOrder, Point};
use super::tally::{Tally, TrendHours};

/// The lake's files changed between the two reads (a file rewritten with other rows): the
/// report would not be of one lake. Not retryable as is; a new run reads both times anew.
#[derive(Debug, thiserror::Error)]
#[error(
    "the lake changed while it was read: {symbol} had {first} rows in the first read and {second} \
     in the second; run the report again"
)]
pub struct LakeChanged {
    pub symbol: String,
    pub first: u64,
    pub second: u64,
}

/// One symbol read again.
#[derive(Debug)]
struct Again {
    /// Its rows in the first read.
    ticks: u64,
    /// Its points handed on so far.
    seen: u64,
    order: InOrder,
    chart: Option<ChartBuilder>,
    trend: Option<TrendHours>,
}

impl Again {
    fn take(&mut self, file: u32, at: u32, point: Point) {
        let Self {
            seen,
            order,
            chart,
            trend,
            ..
        } = self;
        order.push(file, at, point, |p| take(p, seen, chart, trend));
    }

    fn end_file(&mut self, file: u32) {
        let Self {
            seen,
            order,
            chart,
            trend,
            ..
        } = self;
        order.end_file(file, |p| take(p, seen, chart, trend));
    }
}

/// A point in order: to the chart and the trend count.
fn take(
    point: &Point,
    seen: &mut u64,
    chart: &mut Option<ChartBuilder>,
    trend: &mut Option<TrendHours>,
) {
    *seen += 1;
    if let Some(chart) = chart {
        chart.push(point);
    }
    if let Some(trend) = trend {
        trend.add(point);
    }
}

/// The second read.
#[derive(Debug)]
pub struct Replay {
    symbols: BTreeMap<String, Again>,
    /// Indices (in the first read's order) of the files to read again, in that order.
    files: Vec<u32>,
    /// Rows taken of the file being read.
    at: u32,
}

impl Replay {
    /// The second read after `tally`: charts of the `chosen` symbols it holds, and the trend
    /// changes of its symbols with late runs.
    pub fn new(tally: &Tally, chosen: &[String]) -> Self {
        let again = |symbol: &str| {
            let tally = tally.get(symbol).expect("a symbol of the tally");
            Again {
                ticks: tally.ticks,
                seen: 0,
                order: InOrder::new(tally.late_runs()),
                chart: None,
                trend: None,
            }
        };
        let mut symbols: BTreeMap<String, Again> = BTreeMap::new();
        for symbol in chosen {
            if let Some(symbol_tally) = tally.get(symbol) {
                let range = (symbol_tally.first_ms, symbol_tally.last.time_ms);
                let ticks = usize::try_from(symbol_tally.ticks).unwrap_or(usize::MAX);
                symbols
                    .entry(symbol.clone())
                    .or_insert_with(|| again(symbol))
                    .chart = Some(ChartBuilder::new(symbol, ticks, range));
            }
        }
        for symbol in tally.late_symbols() {
            symbols
                .entry(symbol.to_owned())
                .or_insert_with(|| again(symbol))
                .trend = Some(TrendHours::default());
        }
        let files: BTreeSet<u32> = symbols
            .keys()
            .filter_map(|symbol| tally.get(symbol))
            .flat_map(|symbol| symbol.files())
            .collect();
        Self {
            symbols,
            files: files.into_iter().collect(),
            at: 0,
        }
    }

    /// The files to read again, as indices into the first read's files, in its order.
    pub fn files(&self) -> &[u32] {
        &self.files
    }

    /// The symbols whose rows the second read needs.
    pub fn symbols(&self) -> BTreeSet<String> {
        self.symbols.keys().cloned().collect()
    }

    /// Takes a row of file `file` (rows of other symbols are passed over).
    pub fn add(&mut self, file: u32, row: &Row) {
        let at = self.at;
        self.at += 1;
        if let Some(again) = self.symbols.get_mut(row.symbol.as_str()) {
            again.take(file, at, Point::of(row));
        }
    }

    /// File `file` has been read.
    pub fn end_file(&mut self, file: u32) {
        for again in self.symbols.values_mut() {
            again.end_file(file);
        }
        self.at = 0;
    }

    /// Every file has been read: the charts by symbol; the late symbols' trend changes go into
    /// `tally`.
    pub fn finish(self, tally: &mut Tally) -> Result<BTreeMap<String, ChartSpec>, LakeChanged> {
        let mut charts = BTreeMap::new();
        for (symbol, again) in self.symbols {
            let Again {
                ticks,
                mut seen,
                order,
                mut chart,
                mut trend,
            } = again;
            order.finish(|p| take(p, &mut seen, &mut chart, &mut trend));
            if seen != ticks {
                return Err(LakeChanged {
                    symbol,
                    first: ticks,
                    second: seen,
                });
            }
            if let Some(trend) = trend {
                tally.set_trend(&symbol, trend);
            }
            if let Some(chart) = chart {
                charts.insert(symbol, chart.finish());
            }
        }
        Ok(charts)
    }
}

/// Both reads over rows in memory (`files[i]` the rows of file `i`): the tally and the charts
/// of `chosen`, as the report computes them from a lake.
#[cfg(test)]
pub(super) fn both_reads(
    files: &[Vec<Row>],
    chosen: &[String],
) -> (Tally, BTreeMap<String, ChartSpec>) {
    let mut tally = Tally::default();
    for (file, rows) in files.iter().enumerate() {
        for row in rows {
            tally.add(file as u32, row);
        }
    }
    let mut replay = Replay::new(&tally, chosen);
    for file in replay.files().to_vec() {
        for row in &files[file as usize] {
            replay.add(file, row);
        }
        replay.end_file(file);
    }
    let charts = replay.finish(&mut tally).expect("the same rows twice");
    (tally, charts)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::model::rules::Trend;
    use crate::report::charts::chart;

    const HOUR: i64 = 3_600_000;

    /// `(symbol, event time, trend)` rows, as files.
    fn files(rows: &[Vec<(&str, i64, Option<Trend>)>]) -> Vec<Vec<Row>> {
        let mut n = 0;
        rows.iter()
            .map(|file| {
                file.iter()
                    .map(|&(symbol, event_time_ms, trend)| {
                        n += 1;
                        Row {
                            symbol: symbol.into(),
                            event_time_ms,
                            // Tells rows apart, and of one millisecond, the order they were read.
                            price: f64::from(n),
                            previous_close: Some(1.0),
                            volume: Some(f64::from(n % 7)),
                            anomaly: n % 5 == 0,
                            trend,
                            ..Row::default()
                        }
                    })
                    .collect()
            })
            .collect()
    }

    /// Each symbol's points as a stable sort of all rows by event time: the order of the charts.
    fn sorted(files: &[Vec<Row>]) -> BTreeMap<String, Vec<Point>> {
        let mut by_symbol: BTreeMap<String, Vec<Point>> = BTreeMap::new();
        for row in files.iter().flatten() {
            by_symbol
                .entry(row.symbol.clone())
                .or_default()
                .push(Point::of(row));
        }
        for points in by_symbol.values_mut() {
            points.sort_by_key(|p| p.time_ms);
        }
        by_symbol
    }

    fn trend_of(points: &[Point]) -> Vec<(i64, u64, u64)> {
        let mut trend = TrendHours::default();
        for point in points {
            trend.add(point);
        }
        trend.by_hour().collect()
    }

    #[test]
    fn only_files_of_charted_and_late_symbols_are_read_again() {
        use Trend::{Down, Up};
        let files = files(&[
            vec![("A", 0, Some(Up)), ("B", 0, Some(Up)), ("C", 5, Some(Up))],
            vec![("B", HOUR, Some(Down)), ("C", 9, Some(Down))],
            // C's time 7 is late: C must be counted again, in order.
            vec![("C", 7, Some(Up))],
            vec![("D", 1, None)],
        ]);
        let mut first = Tally::default();
        for (file, rows) in files.iter().enumerate() {
            for row in rows {
                first.add(file as u32, row);
            }
        }
        let replay = Replay::new(&first, &["A".to_owned()]);
        assert_eq!(replay.files(), [0, 1, 2]);
        assert_eq!(replay.symbols(), BTreeSet::from(["A".into(), "C".into()]));
        let (tally, charts) = both_reads(&files, &["A".to_owned()]);
        assert_eq!(charts.keys().collect::<Vec<_>>(), ["A"]);
        // In event-time order C goes up (5), up (7), down (9): one change, not two.
        let c = tally.get("C").unwrap().trend().unwrap();
        assert_eq!(c.by_hour().collect::<Vec<_>>(), [(0, 0, 1)]);
        let b = tally.get("B").unwrap().trend().unwrap();
        assert_eq!(b.by_hour().collect::<Vec<_>>(), [(1, 0, 1)]);
    }

    #[test]
    fn a_file_that_changed_between_the_reads_is_an_error() {
        let first = files(&[vec![("A", 0, None), ("A", 1, None)]]);
        let mut tally = Tally::default();
        for row in &first[0] {
            tally.add(0, row);
        }
        let mut replay = Replay::new(&tally, &["A".to_owned()]);
        replay.add(0, &first[0][0]);
        replay.end_file(0);
        let error = replay.finish(&mut tally).unwrap_err();
        assert_eq!((error.first, error.second), (2, 1));
    }

    proptest! {
        /// Whatever the files (late runs, rows of one millisecond, files without the symbol),
        /// both reads give the charts and trend changes of the rows sorted in memory.
        #[test]
        fn both_reads_agree_with_a_sort_of_all_the_rows(
            raw in prop::collection::vec(
                prop::collection::vec((0usize..3, 0i64..12, 0u8..3), 0..30),
                1..6,
            ),
        ) {
            let symbols = ["A", "B", "C"];
            let rows: Vec<Vec<(&str, i64, Option<Trend>)>> = raw
                .iter()
                .map(|file| {
                    let mut file: Vec<(&str, i64, Option<Trend>)> = file
                        .iter()
                        .map(|&(s, minutes, trend)| {
                            let trends = [None, Some(Trend::Up), Some(Trend::Down)];
                            let trend = trends[usize::from(trend)];
                            (symbols[s], minutes * 10 * 60_000, trend)
                        })
                        .collect();
                    // A file holds rows by symbol, then event time.
                    file.sort_by_key(|&(symbol, time, _)| (symbol, time));
                    file
                })
                .collect();
            let files = files(&rows);
            let chosen = vec!["A".to_owned(), "C".to_owned()];
            let (tally, charts) = both_reads(&files, &chosen);
            let sorted = sorted(&files);
            for (symbol, points) in &sorted {
                let counted: Vec<(i64, u64, u64)> =
                    tally.get(symbol).unwrap().trend().unwrap().by_hour().collect();
                prop_assert_eq!(counted, trend_of(points), "{}", symbol);
                if chosen.contains(symbol) {
                    prop_assert_eq!(&charts[symbol], &chart(symbol, points));
                }
                let last = points.last().unwrap();
                prop_assert_eq!(tally.get(symbol).unwrap().last, *last);
            }
        }
    }
}
