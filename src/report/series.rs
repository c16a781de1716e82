//! Each symbol's ticks in event-time order: what the charts draw, and what the day at a glance
//! reads its last prices and trend changes from.
//!
//! In: lake rows in any order ([`Series::add`]). Out: per symbol, the points sorted by event time
//! (rows of one millisecond keep the order they were read in: file key order, then row order),
//! and the rows where the trend changed ([`trend_changes`]).

use std::collections::BTreeMap;

use super::row::Row;
use crate::model::rules::Trend;

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
        }
    }

    /// `((price - previous_close) / previous_close) * 100`, as [`Row::change_vs_close`].
    pub fn change_vs_close(&self) -> Option<f64> {
        self.previous_close
            .map(|close| ((self.price - close) / close) * 100.0)
    }
}

/// Every symbol's points; [`Series::sorted`] puts each in event-time order.
#[derive(Debug, Default)]
pub struct Series {
    by_symbol: BTreeMap<String, Vec<Point>>,
    sorted: bool,
}

impl Series {
    pub fn add(&mut self, row: &Row) {
        // One lookup per row; rows come a symbol at a time (files are sorted by symbol), so the
        // common case finds the key without allocating it.
        match self.by_symbol.get_mut(row.symbol.as_str()) {
            Some(points) => points.push(Point::of(row)),
            None => {
                self.by_symbol
                    .insert(row.symbol.clone(), vec![Point::of(row)]);
            }
        }
        self.sorted = false;
    }

    /// The series with each symbol's points in event-time order (stable, so rows of one
    /// millisecond stay in read order).
    pub fn sorted(mut self) -> Self {
        for points in self.by_symbol.values_mut() {
            points.sort_by_key(|p| p.time_ms);
        }
        self.sorted = true;
        self
    }

    /// Symbols in name order with their points (in time order once [`Series::sorted`]).
    pub fn symbols(&self) -> impl Iterator<Item = (&str, &[Point])> {
        debug_assert!(self.sorted || self.by_symbol.is_empty());
        self.by_symbol
            .iter()
            .map(|(symbol, points)| (symbol.as_str(), points.as_slice()))
    }

    pub fn get(&self, symbol: &str) -> Option<&[Point]> {
        self.by_symbol.get(symbol).map(Vec::as_slice)
    }

    pub fn len(&self) -> usize {
        self.by_symbol.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_symbol.is_empty()
    }
}

/// Indices of the points where the trend changed, and to what: the trend is known (up or down)
/// and differs from the previous point's known trend, the condition of the `trend_up` and
/// `trend_down` alerts (before their cooldown). A first trend after none (the SMAs warming up)
/// is not a change.
pub fn trend_changes(points: &[Point]) -> Vec<(usize, Trend)> {
    points
        .windows(2)
        .enumerate()
        .filter_map(|(i, pair)| match (pair[0].trend, pair[1].trend) {
            (Some(before), Some(after)) if before != after => Some((i + 1, after)),
            _ => None,
        })
        .collect()
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
    fn sorted_puts_each_symbol_in_time_order_keeping_ties_in_read_order() {
        let mut series = Series::default();
        for (symbol, time, price) in [("B", 5, 1.0), ("A", 3, 2.0), ("A", 1, 3.0), ("A", 3, 4.0)] {
            series.add(&row(symbol, time, price));
        }
        let series = series.sorted();
        let a: Vec<_> = series
            .get("A")
            .unwrap()
            .iter()
            .map(|p| (p.time_ms, p.price))
            .collect();
        assert_eq!(a, [(1, 3.0), (3, 2.0), (3, 4.0)]);
        let names: Vec<_> = series.symbols().map(|(s, _)| s).collect();
        assert_eq!(names, ["A", "B"]);
    }

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
        let points: Vec<Point> = trends
            .iter()
            .map(|&trend| Point {
                trend,
                ..Point::default()
            })
            .collect();
        assert_eq!(trend_changes(&points), [(3, Down), (6, Down)]);
    }
}
