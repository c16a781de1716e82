//! What each symbol's chart shows, as data: the lines (price, short and long SMA, VWAP) as
//! `(event time ms, value)` points, markers at the rows flagged as anomalies, at trend changes
//! (up and down apart) and at the alerts the rules sent or held (by kind, from the lake's
//! `alerts` and `alerts_held` columns), and volume summed over equal time slices.
//! [`super::render`] draws it.
//!
//! In: a symbol's points in time order, one at a time ([`ChartBuilder`], fed by
//! [`super::replay`]), with its tick count and first and last event time from the first read.
//! Out: a [`ChartSpec`]. Pure: which symbols get a chart ([`top_movers`]) and what each holds
//! are decided and tested here, apart from the drawing.
//!
//! A line of more than [`MAX_LINE_POINTS`] points is thinned for drawing: the time axis is cut
//! into equal runs of points, and each run keeps its lowest and highest price (so spikes stay),
//! the other lines the same rows. Markers are never thinned. Memory: the kept points and the
//! markers, whatever the number of ticks.

use super::series::{Point, TrendTurns};
use super::tally::Tally;
use crate::model::rules::{AlertKind, Trend};

/// Points a line keeps at most (a chart is about 1,000 pixels wide).
pub const MAX_LINE_POINTS: usize = 1_200;
/// Time slices of the volume pane.
pub const VOLUME_BARS: usize = 120;

/// Names of the lines, in drawing order.
pub const PRICE: &str = "price";
pub const SMA_SHORT: &str = "sma_short";
pub const SMA_LONG: &str = "sma_long";
pub const VWAP: &str = "vwap";

/// One line of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub name: &'static str,
    pub points: Vec<(i64, f64)>,
}

/// Volume of one time slice `[start_ms, end_ms)` (the last slice includes its end).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VolumeBar {
    pub start_ms: i64,
    pub end_ms: i64,
    pub volume: f64,
}

/// An alert of a kind other than a trend change (those have their triangles) at a row: sent, or
/// held by the symbol's budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlertMark {
    pub kind: AlertKind,
    pub held: bool,
    pub at: (i64, f64),
}

/// Everything one symbol's chart draws.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartSpec {
    pub symbol: String,
    /// Change % of the last tick against its previous close, for the title.
    pub change_percent: Option<f64>,
    /// Ticks behind the chart (before any thinning).
    pub ticks: usize,
    /// Lines that have at least one point, in [`PRICE`], [`SMA_SHORT`], [`SMA_LONG`], [`VWAP`]
    /// order.
    pub lines: Vec<Line>,
    /// `(time, price)` of every row flagged as an anomaly.
    pub anomalies: Vec<(i64, f64)>,
    /// `(time, price)` of every row where the trend turned up, and down.
    pub trend_up: Vec<(i64, f64)>,
    pub trend_down: Vec<(i64, f64)>,
    pub alerts: Vec<AlertMark>,
    pub volume: Vec<VolumeBar>,
    /// First and last event time.
    pub time_range: (i64, i64),
    /// Lowest and highest value of any line.
    pub value_range: (f64, f64),
}

/// The `n` symbols that moved most: largest `|change %|` of their last tick against its previous
/// close (ties by name); symbols whose last tick has no previous close come last, by name.
pub fn top_movers(tally: &Tally, n: usize) -> Vec<String> {
    let mut ranked: Vec<(Option<f64>, &str)> = tally
        .symbols()
        .map(|(symbol, symbol_tally)| (symbol_tally.last.change_vs_close().map(f64::abs), symbol))
        .collect();
    ranked.sort_by(|a, b| match (a.0, b.0) {
        (Some(x), Some(y)) => y.total_cmp(&x).then_with(|| a.1.cmp(b.1)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.1.cmp(b.1),
    });
    ranked
        .into_iter()
        .take(n)
        .map(|(_, symbol)| symbol.to_owned())
        .collect()
}

/// The points a line of `ticks` points keeps, fed one at a time in order: all of them up to
/// `max`; else, for each of `max / 2` equal runs, the lowest price (the first of equals) and the
/// highest (the last of equals), in order, and the first and last point.
#[derive(Debug)]
pub struct Thinning {
    ticks: usize,
    /// Runs of a thinned line; 0 when every point is kept.
    runs: usize,
    run: usize,
    /// Index of the first point after the current run.
    run_end: usize,
    low: Option<(usize, Point)>,
    high: Option<(usize, Point)>,
    seen: usize,
    first: Option<Point>,
    last: Option<Point>,
    kept: Vec<(usize, Point)>,
}

impl Thinning {
    pub fn new(ticks: usize, max: usize) -> Self {
        let runs = if ticks <= max { 0 } else { (max / 2).max(1) };
        Self {
            ticks,
            runs,
            run: 0,
            run_end: ticks.checked_div(runs).unwrap_or(0),
            low: None,
            high: None,
            seen: 0,
            first: None,
            last: None,
            kept: Vec::with_capacity(if runs == 0 { ticks } else { runs * 2 + 2 }),
        }
    }

    pub fn push(&mut self, point: &Point) {
        let index = self.seen;
        self.seen += 1;
        self.first.get_or_insert(*point);
        self.last = Some(*point);
        if self.runs == 0 {
            self.kept.push((index, *point));
            return;
        }
        while index >= self.run_end && self.run + 1 < self.runs {
            self.close_run();
            self.run += 1;
            self.run_end = (self.run + 1) * self.ticks / self.runs;
        }
        if self
            .low
            .is_none_or(|(_, low)| point.price.total_cmp(&low.price).is_lt())
        {
            self.low = Some((index, *point));
        }
        if self
            .high
            .is_none_or(|(_, high)| point.price.total_cmp(&high.price).is_ge())
        {
            self.high = Some((index, *point));
        }
    }

    fn close_run(&mut self) {
        if let (Some(low), Some(high)) = (self.low.take(), self.high.take()) {
            let (a, b) = if low.0 <= high.0 {
                (low, high)
            } else {
                (high, low)
            };
            self.kept.push(a);
            if b.0 != a.0 {
                self.kept.push(b);
            }
        }
    }

    /// The kept points with their indices, in order.
    pub fn finish(mut self) -> Vec<(usize, Point)> {
        self.close_run();
        let (Some(first), Some(last)) = (self.first, self.last) else {
            return Vec::new();
        };
        if self.kept.first().map(|&(i, _)| i) != Some(0) {
            self.kept.insert(0, (0, first));
        }
        if self.kept.last().map(|&(i, _)| i) != Some(self.seen - 1) {
            self.kept.push((self.seen - 1, last));
        }
        self.kept
    }
}

/// Volume summed over `bars` equal slices of the time range from `first_ms` to `last_ms`
/// (fewer when the range is shorter than that many milliseconds), fed one point at a time;
/// ticks without volume add nothing.
#[derive(Debug)]
pub struct VolumeSlices {
    start: i64,
    width: f64,
    slices: Vec<VolumeBar>,
}

impl VolumeSlices {
    pub fn new(first_ms: i64, last_ms: i64, bars: usize) -> Self {
        let (start, span) = (first_ms, (last_ms - first_ms).max(1));
        let bars = bars.clamp(1, usize::try_from(span).unwrap_or(usize::MAX));
        let width = span as f64 / bars as f64;
        let slices = (0..bars)
            .map(|i| VolumeBar {
                start_ms: start + (i as f64 * width).round() as i64,
                end_ms: start + ((i + 1) as f64 * width).round() as i64,
                volume: 0.0,
            })
            .collect();
        Self {
            start,
            width,
            slices,
        }
    }

    pub fn add(&mut self, point: &Point) {
        let last = self.slices.len() - 1;
        let slice = (((point.time_ms - self.start) as f64 / self.width) as usize).min(last);
        self.slices[slice].volume += point.volume.unwrap_or(0.0);
    }

    pub fn finish(self) -> Vec<VolumeBar> {
        self.slices
    }
}

/// One symbol's chart, built from its points in time order, one at a time.
#[derive(Debug)]
pub struct ChartBuilder {
    symbol: String,
    thinning: Thinning,
    volume: VolumeSlices,
    turns: TrendTurns,
    anomalies: Vec<(i64, f64)>,
    trend_up: Vec<(i64, f64)>,
    trend_down: Vec<(i64, f64)>,
    alerts: Vec<AlertMark>,
}

impl ChartBuilder {
    /// The chart of `symbol`, whose `ticks` points, from event time `first_ms` to `last_ms`
    /// (the first read's count and extremes), come next.
    pub fn new(symbol: &str, ticks: usize, (first_ms, last_ms): (i64, i64)) -> Self {
        Self {
            symbol: symbol.to_owned(),
            thinning: Thinning::new(ticks, MAX_LINE_POINTS),
            volume: VolumeSlices::new(first_ms, last_ms, VOLUME_BARS),
            turns: TrendTurns::default(),
            anomalies: Vec::new(),
            trend_up: Vec::new(),
            trend_down: Vec::new(),
            alerts: Vec::new(),
        }
    }

    pub fn push(&mut self, point: &Point) {
        self.thinning.push(point);
        self.volume.add(point);
        let at = (point.time_ms, point.price);
        if point.anomaly {
            self.anomalies.push(at);
        }
        match self.turns.next(point.trend) {
            Some(Trend::Up) => self.trend_up.push(at),
            Some(Trend::Down) => self.trend_down.push(at),
            None => {}
        }
        let sent = point.alerts.iter().map(|kind| (kind, false));
        let held = point.alerts_held.iter().map(|kind| (kind, true));
        self.alerts.extend(
            sent.chain(held)
                .filter(|(kind, _)| !matches!(kind, AlertKind::TrendUp | AlertKind::TrendDown))
                .map(|(kind, held)| AlertMark { kind, held, at }),
        );
    }

    /// Points taken so far.
    pub fn points(&self) -> usize {
        self.thinning.seen
    }

    pub fn finish(self) -> ChartSpec {
        let ticks = self.thinning.seen;
        let kept = self.thinning.finish();
        let line = |name, value: fn(&Point) -> Option<f64>| Line {
            name,
            points: kept
                .iter()
                .filter_map(|(_, p)| value(p).map(|v| (p.time_ms, v)))
                .collect(),
        };
        let lines: Vec<Line> = [
            line(PRICE, |p| Some(p.price)),
            line(SMA_SHORT, |p| p.sma_short),
            line(SMA_LONG, |p| p.sma_long),
            line(VWAP, |p| p.vwap),
        ]
        .into_iter()
        .filter(|line| !line.points.is_empty())
        .collect();
        let values = lines.iter().flat_map(|l| l.points.iter().map(|&(_, v)| v));
        let value_range = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        let (first, last) = (kept.first().map(|(_, p)| p), kept.last().map(|(_, p)| p));
        ChartSpec {
            symbol: self.symbol,
            change_percent: last.and_then(Point::change_vs_close),
            ticks,
            lines,
            anomalies: self.anomalies,
            trend_up: self.trend_up,
            trend_down: self.trend_down,
            alerts: self.alerts,
            volume: if ticks == 0 {
                Vec::new()
            } else {
                self.volume.finish()
            },
            time_range: (
                first.map_or(0, |p| p.time_ms),
                last.map_or(0, |p| p.time_ms),
            ),
            value_range,
        }
    }
}

/// The chart of one symbol from all its points in time order.
pub fn chart(symbol: &str, points: &[Point]) -> ChartSpec {
    let range = match (points.first(), points.last()) {
        (Some(first), Some(last)) => (first.time_ms, last.time_ms),
        _ => (0, 0),
    };
    let mut builder = ChartBuilder::new(symbol, points.len(), range);
    for point in points {
        builder.push(point);
    }
    builder.finish()
}

#[cfg(test)]
mod tests {
    use super::super::row::Row;
    use super::*;

    fn point(i: usize) -> Point {
        Point {
            time_ms: 1_000 + i as i64 * 10,
            price: 100.0 + i as f64,
            previous_close: Some(100.0),
            // The SMAs warm up: the short one from the 3rd tick, the long one from the 6th.
            sma_short: (i >= 2).then_some(99.0),
            sma_long: (i >= 5).then_some(98.0),
            vwap: Some(99.5),
            volume: Some(10.0),
            anomaly: i == 4 || i == 7,
            alerts: match i {
                4 => [AlertKind::VolumeSpike].into_iter().collect(),
                7 => [AlertKind::TrendDown, AlertKind::ReturnZscore]
                    .into_iter()
                    .collect(),
                _ => Default::default(),
            },
            alerts_held: match i {
                8 => [AlertKind::ChangePercent].into_iter().collect(),
                _ => Default::default(),
            },
            trend: match i {
                0..=4 => None,
                5 | 6 => Some(Trend::Up),
                7 => Some(Trend::Down),
                _ => Some(Trend::Up),
            },
        }
    }

    fn kept_indices(points: &[Point], max: usize) -> Vec<usize> {
        let mut thinning = Thinning::new(points.len(), max);
        for point in points {
            thinning.push(point);
        }
        thinning.finish().into_iter().map(|(i, _)| i).collect()
    }

    fn volume_bars(points: &[Point], bars: usize) -> Vec<VolumeBar> {
        let (first, last) = (points[0].time_ms, points[points.len() - 1].time_ms);
        let mut slices = VolumeSlices::new(first, last, bars);
        for point in points {
            slices.add(point);
        }
        slices.finish()
    }

    /// The thinning as a pass over all the points: what the streaming [`Thinning`] must keep.
    fn kept_indices_of_all(points: &[Point], max: usize) -> Vec<usize> {
        let n = points.len();
        if n <= max {
            return (0..n).collect();
        }
        let runs = (max / 2).max(1);
        let mut kept = Vec::new();
        for run in 0..runs {
            let (start, end) = (run * n / runs, (run + 1) * n / runs);
            let slice = &points[start..end];
            let by_price =
                |a: &(usize, &Point), b: &(usize, &Point)| a.1.price.total_cmp(&b.1.price);
            let low = slice.iter().enumerate().min_by(by_price);
            let high = slice.iter().enumerate().max_by(by_price);
            if let (Some((low, _)), Some((high, _))) = (low, high) {
                let (a, b) = (start + low.min(high), start + low.max(high));
                kept.push(a);
                if b != a {
                    kept.push(b);
                }
            }
        }
        if kept.first() != Some(&0) {
            kept.insert(0, 0);
        }
        if kept.last() != Some(&(n - 1)) {
            kept.push(n - 1);
        }
        kept
    }

    proptest::proptest! {
        #[test]
        fn streaming_thinning_keeps_what_a_pass_over_all_points_keeps(
            prices in proptest::collection::vec(0u8..6, 0..400),
            max in 1usize..40,
        ) {
            // Few distinct prices: many ties, where the first lowest and last highest matter.
            let points: Vec<Point> = prices
                .iter()
                .enumerate()
                .map(|(i, &price)| Point {
                    time_ms: i as i64,
                    price: f64::from(price),
                    ..Point::default()
                })
                .collect();
            proptest::prop_assert_eq!(
                kept_indices(&points, max),
                kept_indices_of_all(&points, max)
            );
        }
    }

    #[test]
    fn a_chart_holds_each_line_with_its_points_and_markers_at_their_rows() {
        let points: Vec<Point> = (0..10).map(point).collect();
        let spec = chart("AAPL", &points);
        let counts: Vec<(&str, usize)> = spec
            .lines
            .iter()
            .map(|l| (l.name, l.points.len()))
            .collect();
        assert_eq!(
            counts,
            [(PRICE, 10), (SMA_SHORT, 8), (SMA_LONG, 5), (VWAP, 10)]
        );
        assert_eq!(spec.lines[0].points[3], (1_030, 103.0));
        assert_eq!(spec.lines[2].points[0], (1_050, 98.0));
        assert_eq!(spec.anomalies, [(1_040, 104.0), (1_070, 107.0)]);
        assert_eq!(spec.trend_down, [(1_070, 107.0)]);
        assert_eq!(spec.trend_up, [(1_080, 108.0)]);
        // Alerts by kind, sent and held; trend alerts are the triangles' business.
        let mark = |kind, held, at| AlertMark { kind, held, at };
        assert_eq!(
            spec.alerts,
            [
                mark(AlertKind::VolumeSpike, false, (1_040, 104.0)),
                mark(AlertKind::ReturnZscore, false, (1_070, 107.0)),
                mark(AlertKind::ChangePercent, true, (1_080, 108.0)),
            ]
        );
        assert_eq!(spec.time_range, (1_000, 1_090));
        assert_eq!(spec.value_range, (98.0, 109.0));
        assert_eq!(spec.ticks, 10);
        let total: f64 = spec.volume.iter().map(|b| b.volume).sum();
        assert_eq!(total, 100.0);
        assert!((spec.change_percent.unwrap() - 9.0).abs() < 1e-9);
    }

    #[test]
    fn a_line_without_values_is_left_out() {
        let points: Vec<Point> = (0..3)
            .map(|i| Point {
                vwap: None,
                sma_long: None,
                ..point(i)
            })
            .collect();
        let names: Vec<&str> = chart("X", &points).lines.iter().map(|l| l.name).collect();
        assert_eq!(names, [PRICE, SMA_SHORT]);
    }

    #[test]
    fn long_lines_are_thinned_keeping_each_runs_extremes_and_both_ends() {
        let points: Vec<Point> = (0..10_000)
            .map(|i| Point {
                time_ms: i as i64,
                // A spike at 5,000 that thinning must keep.
                price: if i == 5_000 { 500.0 } else { (i % 7) as f64 },
                ..Point::default()
            })
            .collect();
        let kept = kept_indices(&points, 100);
        assert!(kept.len() <= 102, "{}", kept.len());
        assert!(kept.windows(2).all(|w| w[0] < w[1]), "in order, no repeats");
        assert_eq!((kept[0], *kept.last().unwrap()), (0, 9_999));
        assert!(kept.contains(&5_000));
        let spec = chart("X", &points);
        assert!(spec.lines[0].points.len() <= MAX_LINE_POINTS + 2);
        assert_eq!(spec.value_range.1, 500.0);
    }

    #[test]
    fn volume_is_summed_over_equal_time_slices() {
        let points: Vec<Point> = [(0, 1.0), (5, 2.0), (10, 4.0), (19, 8.0), (20, 16.0)]
            .iter()
            .map(|&(time_ms, volume)| Point {
                time_ms,
                volume: Some(volume),
                ..Point::default()
            })
            .collect();
        let bars = volume_bars(&points, 4);
        let volumes: Vec<f64> = bars.iter().map(|b| b.volume).collect();
        assert_eq!(volumes, [1.0, 2.0, 4.0, 24.0]);
        assert_eq!((bars[0].start_ms, bars[3].end_ms), (0, 20));
        // A single tick still gets one slice.
        assert_eq!(volume_bars(&points[..1], 4).len(), 1);
    }

    #[test]
    fn top_movers_rank_by_absolute_change_of_the_last_tick() {
        let mut tally = Tally::default();
        for (symbol, price, close) in [
            ("UP", 103.0, Some(100.0)),
            ("DOWN", 90.0, Some(100.0)),
            ("FLAT", 100.0, Some(100.0)),
            ("NONE", 100.0, None),
        ] {
            tally.add(
                0,
                &Row {
                    symbol: symbol.into(),
                    price,
                    previous_close: close,
                    ..Row::default()
                },
            );
        }
        assert_eq!(top_movers(&tally, 2), ["DOWN", "UP"]);
        assert_eq!(top_movers(&tally, 9), ["DOWN", "UP", "FLAT", "NONE"]);
    }
}
