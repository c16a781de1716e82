//! The first read of the lake: what the report keeps of every symbol while all the rows stream
//! past, none of which needs the rows in order. Per symbol: its ticks and anomalies, its last
//! tick (the latest event time, and of rows of that millisecond the last read, as a stable sort
//! by event time would put it), the alerts its budget held, the files that hold it and its late
//! runs ([`LateRun`]), and its trend changes by hour while its rows come in event-time order.
//! For the whole range: ticks and anomalies by hour, the lake's sent alerts by kind and hour and
//! its held alerts by kind.
//!
//! In: lake rows, file by file ([`Tally::add`]). Out: what [`super::summary`] makes the day at a
//! glance of, what [`super::charts::top_movers`] ranks, and what [`super::replay`] reads again.
//! Pure: no I/O.
//!
//! Memory: per symbol, a few numbers, a range of files per stretch of files that holds it, a
//! late run per file that holds rows of it late, and a count per hour with a trend change; per
//! hour of the range, the counts and the alert kinds seen.

use std::collections::BTreeMap;
use std::ops::Range;

use super::row::Row;
use super::series::{LateRun, Point, TrendTurns};
use crate::model::rules::{AlertKind, Trend};

pub const MS_PER_HOUR: i64 = 3_600_000;

/// The hour (since the epoch, UTC) of an event time.
pub fn hour_of(time_ms: i64) -> i64 {
    time_ms.div_euclid(MS_PER_HOUR)
}

/// Trend changes by hour, counted one point at a time in event-time order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrendHours {
    turns: TrendTurns,
    /// Hour → (changes up, changes down).
    by_hour: BTreeMap<i64, (u64, u64)>,
}

impl TrendHours {
    pub fn add(&mut self, point: &Point) {
        if let Some(trend) = self.turns.next(point.trend) {
            let (up, down) = self.by_hour.entry(hour_of(point.time_ms)).or_default();
            match trend {
                Trend::Up => *up += 1,
                Trend::Down => *down += 1,
            }
        }
    }

    /// `(hour, up, down)` of each hour with a change, in hour order.
    pub fn by_hour(&self) -> impl Iterator<Item = (i64, u64, u64)> + '_ {
        self.by_hour
            .iter()
            .map(|(&hour, &(up, down))| (hour, up, down))
    }
}

/// What the first read keeps of one symbol.
#[derive(Debug, Clone)]
pub struct SymbolTally {
    pub ticks: u64,
    pub anomalies: u64,
    /// Alerts the symbol's budget held (each kind of each row).
    pub held: u64,
    /// Its earliest event time.
    pub first_ms: i64,
    /// Its last tick in event-time order (latest time; of one millisecond, the last read).
    pub last: Point,
    /// Indices of the files (in read order) that hold its rows.
    files: Vec<Range<u32>>,
    late: Vec<LateRun>,
    /// Its trend changes, counted in read order: right while no run came late, dropped then
    /// (the second read counts them in order: [`Tally::set_trend`]).
    trend: Option<TrendHours>,
}

impl SymbolTally {
    fn new(file: u32, point: Point) -> Self {
        let mut trend = TrendHours::default();
        trend.add(&point);
        Self {
            ticks: 1,
            anomalies: u64::from(point.anomaly),
            held: 0,
            first_ms: point.time_ms,
            last: point,
            files: std::iter::once(file..file + 1).collect(),
            late: Vec::new(),
            trend: Some(trend),
        }
    }

    fn add(&mut self, file: u32, point: Point) {
        self.ticks += 1;
        self.anomalies += u64::from(point.anomaly);
        self.first_ms = self.first_ms.min(point.time_ms);
        match self.files.last_mut() {
            Some(files) if files.end > file => {}
            Some(files) if files.end == file => files.end = file + 1,
            _ => self.files.push(file..file + 1),
        }
        if point.time_ms < self.last.time_ms {
            match self.late.last_mut() {
                Some(run) if run.file == file => run.from_ms = run.from_ms.min(point.time_ms),
                _ => self.late.push(LateRun {
                    file,
                    from_ms: point.time_ms,
                }),
            }
            self.trend = None;
        } else {
            if let Some(trend) = &mut self.trend {
                trend.add(&point);
            }
            self.last = point;
        }
    }

    /// The indices of the files that hold its rows, in read order.
    pub fn files(&self) -> impl Iterator<Item = u32> + '_ {
        self.files.iter().flat_map(Clone::clone)
    }

    /// Its runs of rows read late, by file.
    pub fn late_runs(&self) -> &[LateRun] {
        &self.late
    }

    /// Its trend changes by hour; `None` when runs came late and the second read has not
    /// counted them in order yet.
    pub fn trend(&self) -> Option<&TrendHours> {
        self.trend.as_ref()
    }
}

/// Ticks and anomalies of one hour.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HourCounts {
    pub ticks: u64,
    pub anomalies: u64,
}

/// Everything the first read keeps.
#[derive(Debug, Default)]
pub struct Tally {
    symbols: BTreeMap<String, SymbolTally>,
    /// By hour since the epoch.
    pub by_hour: BTreeMap<i64, HourCounts>,
    /// The lake's sent alerts (its `alerts` column): hour → kind → count.
    pub sent: BTreeMap<i64, BTreeMap<AlertKind, u64>>,
    /// The lake's held alerts (its `alerts_held` column) by kind.
    pub held: BTreeMap<AlertKind, u64>,
}

impl Tally {
    /// Takes a row of file `file` (its index in the read order; files come in that order).
    pub fn add(&mut self, file: u32, row: &Row) {
        let point = Point::of(row);
        // One lookup per row; rows come a symbol at a time (files are sorted by symbol), so the
        // common case finds the key without allocating it.
        let symbol = match self.symbols.get_mut(row.symbol.as_str()) {
            Some(symbol) => {
                symbol.add(file, point);
                symbol
            }
            None => self
                .symbols
                .entry(row.symbol.clone())
                .or_insert(SymbolTally::new(file, point)),
        };
        let hour = hour_of(point.time_ms);
        let counts = self.by_hour.entry(hour).or_default();
        counts.ticks += 1;
        counts.anomalies += u64::from(point.anomaly);
        if !point.alerts.is_empty() {
            let kinds = self.sent.entry(hour).or_default();
            for kind in point.alerts.iter() {
                *kinds.entry(kind).or_default() += 1;
            }
        }
        for kind in point.alerts_held.iter() {
            *self.held.entry(kind).or_default() += 1;
            symbol.held += 1;
        }
    }

    /// Symbols in name order.
    pub fn symbols(&self) -> impl Iterator<Item = (&str, &SymbolTally)> {
        self.symbols
            .iter()
            .map(|(symbol, tally)| (symbol.as_str(), tally))
    }

    pub fn get(&self, symbol: &str) -> Option<&SymbolTally> {
        self.symbols.get(symbol)
    }

    pub fn len(&self) -> usize {
        self.symbols.len()
    }

    pub fn is_empty(&self) -> bool {
        self.symbols.is_empty()
    }

    /// Symbols with runs read late: their trend changes need the second read.
    pub fn late_symbols(&self) -> impl Iterator<Item = &str> {
        self.symbols()
            .filter(|(_, tally)| tally.trend.is_none())
            .map(|(symbol, _)| symbol)
    }

    /// The trend changes of `symbol` as the second read counted them, in order.
    pub fn set_trend(&mut self, symbol: &str, trend: TrendHours) {
        if let Some(tally) = self.symbols.get_mut(symbol) {
            tally.trend = Some(trend);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(symbol: &str, time_ms: i64, price: f64) -> Row {
        Row {
            symbol: symbol.into(),
            event_time_ms: time_ms,
            price,
            ..Row::default()
        }
    }

    #[test]
    fn the_last_tick_is_the_latest_and_of_one_millisecond_the_last_read() {
        let mut tally = Tally::default();
        for (file, symbol, time, price) in [
            (0, "B", 5, 1.0),
            (0, "A", 3, 2.0),
            (1, "A", 1, 3.0),
            (1, "A", 3, 4.0),
            (2, "A", 2, 5.0),
        ] {
            tally.add(file, &row(symbol, time, price));
        }
        let a = tally.get("A").unwrap();
        assert_eq!((a.last.time_ms, a.last.price), (3, 4.0));
        assert_eq!((a.ticks, a.first_ms), (4, 1));
        let names: Vec<&str> = tally.symbols().map(|(s, _)| s).collect();
        assert_eq!(names, ["A", "B"]);
    }

    #[test]
    fn late_runs_and_files_are_noted() {
        let mut tally = Tally::default();
        for (file, time) in [
            (0, 10),
            (0, 20),
            (2, 30),
            (3, 15),
            (3, 12),
            (3, 40),
            (4, 35),
        ] {
            tally.add(file, &row("A", time, 1.0));
        }
        tally.add(1, &row("B", 1, 1.0));
        let a = tally.get("A").unwrap();
        assert_eq!(a.files().collect::<Vec<_>>(), [0, 2, 3, 4]);
        assert_eq!(
            a.late_runs(),
            [
                LateRun {
                    file: 3,
                    from_ms: 12
                },
                LateRun {
                    file: 4,
                    from_ms: 35
                }
            ]
        );
        assert!(a.trend().is_none());
        assert_eq!(tally.late_symbols().collect::<Vec<_>>(), ["A"]);
        assert!(tally.get("B").unwrap().trend().is_some());
    }

    #[test]
    fn trend_changes_in_order_are_counted_by_hour() {
        let mut tally = Tally::default();
        let trends = [None, Some(Trend::Up), Some(Trend::Down), Some(Trend::Up)];
        for (i, trend) in trends.into_iter().enumerate() {
            tally.add(
                0,
                &Row {
                    trend,
                    ..row("A", i as i64 * 1_800_000, 1.0)
                },
            );
        }
        let trend = tally.get("A").unwrap().trend().unwrap();
        assert_eq!(trend.by_hour().collect::<Vec<_>>(), [(1, 1, 1)]);
    }
}
