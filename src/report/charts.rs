//! What each symbol's chart shows, as data: the lines (price, short and long SMA, VWAP) as
//! `(event time ms, value)` points, markers at the rows flagged as anomalies and at trend changes
//! (up and down apart), and volume summed over equal time slices. [`super::render`] draws it.
//!
//! In: a symbol's points in time order ([`super::series`]). Out: a [`ChartSpec`]. Pure: which
//! symbols get a chart ([`top_movers`]) and what each holds are decided and tested here, apart
//! from the drawing.
//!
//! A line of more than [`MAX_LINE_POINTS`] points is thinned for drawing: the time axis is cut
//! into equal runs of points, and each run keeps its lowest and highest price (so spikes stay),
//! the other lines the same rows. Markers are never thinned.

use super::series::{Point, Series, trend_changes};
use crate::model::rules::Trend;

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
    pub volume: Vec<VolumeBar>,
    /// First and last event time.
    pub time_range: (i64, i64),
    /// Lowest and highest value of any line.
    pub value_range: (f64, f64),
}

/// The `n` symbols that moved most: largest `|change %|` of their last tick against its previous
/// close (ties by name); symbols whose last tick has no previous close come last, by name.
pub fn top_movers(series: &Series, n: usize) -> Vec<String> {
    let mut ranked: Vec<(Option<f64>, &str)> = series
        .symbols()
        .filter_map(|(symbol, points)| {
            let last = points.last()?;
            Some((last.change_vs_close().map(f64::abs), symbol))
        })
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

/// Indices of the points a line keeps: all of them up to `max`; else, for each of `max / 2`
/// equal runs, the lowest and the highest price, in order (the first and last point included).
pub fn kept_indices(points: &[Point], max: usize) -> Vec<usize> {
    let n = points.len();
    if n <= max {
        return (0..n).collect();
    }
    let runs = (max / 2).max(1);
    let mut kept = Vec::with_capacity(runs * 2 + 2);
    for run in 0..runs {
        let (start, end) = (run * n / runs, (run + 1) * n / runs);
        let slice = &points[start..end];
        let by_price = |a: &(usize, &Point), b: &(usize, &Point)| a.1.price.total_cmp(&b.1.price);
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

/// Volume summed over [`VOLUME_BARS`] equal slices of the time range (fewer when the range is
/// shorter than that many milliseconds); ticks without volume add nothing.
pub fn volume_bars(points: &[Point], bars: usize) -> Vec<VolumeBar> {
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return Vec::new();
    };
    let (start, span) = (first.time_ms, (last.time_ms - first.time_ms).max(1));
    let bars = bars.clamp(1, usize::try_from(span).unwrap_or(usize::MAX));
    let width = span as f64 / bars as f64;
    let mut slices: Vec<VolumeBar> = (0..bars)
        .map(|i| VolumeBar {
            start_ms: start + (i as f64 * width).round() as i64,
            end_ms: start + ((i + 1) as f64 * width).round() as i64,
            volume: 0.0,
        })
        .collect();
    for point in points {
        let slice = (((point.time_ms - start) as f64 / width) as usize).min(bars - 1);
        slices[slice].volume += point.volume.unwrap_or(0.0);
    }
    slices
}

/// The chart of one symbol from its points in time order.
pub fn chart(symbol: &str, points: &[Point]) -> ChartSpec {
    let kept = kept_indices(points, MAX_LINE_POINTS);
    let line = |name, value: fn(&Point) -> Option<f64>| Line {
        name,
        points: kept
            .iter()
            .filter_map(|&i| value(&points[i]).map(|v| (points[i].time_ms, v)))
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

    let at = |p: &Point| (p.time_ms, p.price);
    let anomalies = points.iter().filter(|p| p.anomaly).map(at).collect();
    let (mut trend_up, mut trend_down) = (Vec::new(), Vec::new());
    for (index, trend) in trend_changes(points) {
        match trend {
            Trend::Up => trend_up.push(at(&points[index])),
            Trend::Down => trend_down.push(at(&points[index])),
        }
    }
    let values = lines.iter().flat_map(|l| l.points.iter().map(|&(_, v)| v));
    let value_range = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    ChartSpec {
        symbol: symbol.to_owned(),
        change_percent: points.last().and_then(Point::change_vs_close),
        ticks: points.len(),
        lines,
        anomalies,
        trend_up,
        trend_down,
        volume: volume_bars(points, VOLUME_BARS),
        time_range: (
            points.first().map_or(0, |p| p.time_ms),
            points.last().map_or(0, |p| p.time_ms),
        ),
        value_range,
    }
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
            trend: match i {
                0..=4 => None,
                5 | 6 => Some(Trend::Up),
                7 => Some(Trend::Down),
                _ => Some(Trend::Up),
            },
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
        let mut series = Series::default();
        for (symbol, price, close) in [
            ("UP", 103.0, Some(100.0)),
            ("DOWN", 90.0, Some(100.0)),
            ("FLAT", 100.0, Some(100.0)),
            ("NONE", 100.0, None),
        ] {
            series.add(&Row {
                symbol: symbol.into(),
                price,
                previous_close: close,
                ..Row::default()
            });
        }
        let series = series.sorted();
        assert_eq!(top_movers(&series, 2), ["DOWN", "UP"]);
        assert_eq!(top_movers(&series, 9), ["DOWN", "UP", "FLAT", "NONE"]);
    }
}
