//! Draws a [`ChartSpec`] as an SVG with `plotters`: the price pane (one polyline per line,
//! markers for anomalies, trend changes and alerts by kind) above the volume pane, a shared time axis (UTC), a
//! title and a legend. Text is left to the viewer's sans-serif font, so no font is read here.
//!
//! In: a chart spec. Out: the SVG document as a string, which the page inlines and `charts/`
//! keeps as a file.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::charts::{AlertMark, ChartSpec, PRICE, SMA_LONG, SMA_SHORT, VWAP};
use crate::model::rules::AlertKind;

pub const WIDTH: u32 = 1100;
pub const HEIGHT: u32 = 474;
/// Height of the title and legend band (two rows: lines and markers, then alert kinds), then of
/// the price pane; the volume pane takes the rest.
const HEADER: u32 = 50;
const PRICE_PANE: u32 = 290;
/// Width of the value labels left of both panes, so their time axes line up.
const Y_LABELS: u32 = 80;
/// Pixels between a trend change's point and its triangle's centre.
const MARKER_GAP: i32 = 10;
/// Trend changes a chart marks beside the price; more go in rows along the top.
pub const INLINE_TREND_MARKERS: usize = 80;
/// Pixels below the top of the price pane of the centres of the rows of up and down changes.
const LANE_UP: i32 = 8;
const LANE_DOWN: i32 = 20;

/// Colours of the lines and markers (`#rrggbb` in the SVG, so tests find a line by its colour).
pub const PRICE_COLOR: RGBColor = RGBColor(0x1f, 0x4e, 0x79);
pub const SMA_SHORT_COLOR: RGBColor = RGBColor(0xe6, 0x7e, 0x22);
pub const SMA_LONG_COLOR: RGBColor = RGBColor(0x8e, 0x44, 0xad);
pub const VWAP_COLOR: RGBColor = RGBColor(0x16, 0xa0, 0x85);
const ANOMALY_COLOR: RGBColor = RGBColor(0xd8, 0x1b, 0x60);
const TREND_UP_COLOR: RGBColor = RGBColor(0x2e, 0x7d, 0x32);
const TREND_DOWN_COLOR: RGBColor = RGBColor(0xc6, 0x28, 0x28);
/// Squares of the alerts by kind (filled: sent; hollow: held by the budget).
pub const CHANGE_ALERT_COLOR: RGBColor = RGBColor(0xef, 0x6c, 0x00);
pub const ZSCORE_ALERT_COLOR: RGBColor = RGBColor(0x6a, 0x1b, 0x9a);
pub const VOLUME_ALERT_COLOR: RGBColor = RGBColor(0x00, 0x83, 0x8f);
pub const LEVEL_ALERT_COLOR: RGBColor = RGBColor(0x5d, 0x40, 0x37);
const VOLUME_COLOR: RGBColor = RGBColor(0x90, 0xa4, 0xae);
const GRID_COLOR: RGBColor = RGBColor(0xe8, 0xe8, 0xe8);
const TEXT_COLOR: RGBColor = RGBColor(0x33, 0x33, 0x33);

#[derive(Debug, thiserror::Error)]
#[error("chart of {symbol} could not be drawn: {message}")]
pub struct RenderError {
    pub symbol: String,
    pub message: String,
}

/// The colour and label of a line.
pub fn line_style(name: &str) -> (RGBColor, &'static str) {
    match name {
        PRICE => (PRICE_COLOR, "price"),
        SMA_SHORT => (SMA_SHORT_COLOR, "SMA short"),
        SMA_LONG => (SMA_LONG_COLOR, "SMA long"),
        VWAP => (VWAP_COLOR, "VWAP"),
        _ => (TEXT_COLOR, "?"),
    }
}

/// The colour and legend label of an alert kind's squares.
pub fn alert_style(kind: AlertKind) -> (RGBColor, &'static str) {
    match kind {
        AlertKind::ChangePercent => (CHANGE_ALERT_COLOR, "change % alert"),
        AlertKind::ReturnZscore => (ZSCORE_ALERT_COLOR, "z-score alert"),
        AlertKind::VolumeSpike => (VOLUME_ALERT_COLOR, "volume alert"),
        AlertKind::PriceAbove | AlertKind::PriceBelow => (LEVEL_ALERT_COLOR, "price level alert"),
        AlertKind::TrendUp => (TREND_UP_COLOR, "trend up"),
        AlertKind::TrendDown => (TREND_DOWN_COLOR, "trend down"),
    }
}

/// A square of side 8 centred on its point: filled for an alert sent, hollow for one held.
fn alert_square(mark: &AlertMark) -> Rectangle<(i32, i32)> {
    let (color, _) = alert_style(mark.kind);
    let style = if mark.held {
        color.stroke_width(1)
    } else {
        color.mix(0.85).filled()
    };
    Rectangle::new([(-4, -4), (4, 4)], style)
}

/// The SVG of one chart.
pub fn chart_svg(spec: &ChartSpec) -> Result<String, RenderError> {
    let mut svg = String::new();
    draw(spec, &mut svg).map_err(|message| RenderError {
        symbol: spec.symbol.clone(),
        message,
    })?;
    Ok(svg)
}

fn draw(spec: &ChartSpec, svg: &mut String) -> Result<(), String> {
    let failed = |e: DrawingAreaErrorKind<std::io::Error>| e.to_string();
    let root = SVGBackend::with_string(svg, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(failed)?;
    let (header, body) = root.split_vertically(HEADER);
    let (upper, lower) = body.split_vertically(PRICE_PANE);
    header_band(spec, &header).map_err(failed)?;
    price_pane(spec, &upper).map_err(failed)?;
    volume_pane(spec, &lower).map_err(failed)?;
    root.present().map_err(failed)?;
    Ok(())
}

/// The chart's time axis: its first and last tick (one millisecond at least).
fn times(spec: &ChartSpec) -> std::ops::Range<i64> {
    let (t0, t1) = spec.time_range;
    t0..t1.max(t0 + 1)
}

fn label_font() -> TextStyle<'static> {
    ("sans-serif", 12).into_font().color(&TEXT_COLOR)
}

/// The price with its averages and VWAP, anomalies circled and trend changes marked.
fn price_pane<DB: DrawingBackend>(
    spec: &ChartSpec,
    area: &DrawingArea<DB, Shift>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let times = times(spec);
    let (low, high) = padded(spec.value_range);
    let decimals = if high - low < 1.0 { 4 } else { 2 };
    // Many trend changes beside the price would hide it: they line the top of the pane then,
    // in room added above the highest value.
    let lane = spec.trend_up.len() + spec.trend_down.len() > INLINE_TREND_MARKERS;
    let high = if lane {
        high + (high - low) * 0.12
    } else {
        high
    };
    let label_font = label_font();

    let mut price = ChartBuilder::on(area)
        .margin_left(10)
        .margin_right(20)
        .margin_top(6)
        .y_label_area_size(Y_LABELS)
        .build_cartesian_2d(times, low..high)?;
    price
        .configure_mesh()
        .x_labels(10)
        .y_labels(6)
        .x_label_formatter(&|_| String::new())
        .y_label_formatter(&|v| format!("{v:.decimals$}"))
        .label_style(label_font.clone())
        .bold_line_style(GRID_COLOR)
        .light_line_style(TRANSPARENT)
        .draw()?;
    // Trend changes sit beside the price (up below it, down above it) so that a few leave the
    // line in sight, or in two rows along the top; anomalies are circled on the line, over it.
    let (up_dy, down_dy) = if lane {
        (LANE_UP, LANE_DOWN)
    } else {
        (MARKER_GAP, -MARKER_GAP)
    };
    let anchor =
        |(time, value): (i64, f64)| EmptyElement::at((time, if lane { high } else { value }));
    price.draw_series(
        spec.trend_up
            .iter()
            .map(|&at| anchor(at) + up_triangle(TREND_UP_COLOR, up_dy)),
    )?;
    price.draw_series(
        spec.trend_down
            .iter()
            .map(|&at| anchor(at) + down_triangle(TREND_DOWN_COLOR, down_dy)),
    )?;
    // The price last, over its averages.
    for line in spec.lines.iter().rev() {
        let (color, _) = line_style(line.name);
        let width = if line.name == PRICE { 2 } else { 1 };
        price.draw_series(std::iter::once(PathElement::new(
            line.points.clone(),
            color.stroke_width(width),
        )))?;
    }
    price.draw_series(
        spec.anomalies
            .iter()
            .map(|&at| Circle::new(at, 5, ANOMALY_COLOR.stroke_width(2))),
    )?;
    price.draw_series(
        spec.alerts
            .iter()
            .map(|mark| EmptyElement::at(mark.at) + alert_square(mark)),
    )?;
    Ok(())
}

/// The volume of each stretch of time, as bars under the price.
fn volume_pane<DB: DrawingBackend>(
    spec: &ChartSpec,
    area: &DrawingArea<DB, Shift>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let times = times(spec);
    let (t0, t1) = spec.time_range;
    let label_font = label_font();
    let volume_max = spec
        .volume
        .iter()
        .map(|bar| bar.volume)
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let span = t1 - t0;
    let mut volume = ChartBuilder::on(area)
        .margin_left(10)
        .margin_right(20)
        .margin_top(8)
        .margin_bottom(6)
        .x_label_area_size(28)
        .y_label_area_size(Y_LABELS)
        .build_cartesian_2d(times, 0.0..volume_max * 1.1)?;
    volume
        .configure_mesh()
        .x_labels(10)
        .y_labels(3)
        .x_label_formatter(&|ms| time_label(*ms, span))
        .y_label_formatter(&|v| human(*v))
        .y_desc("volume")
        .label_style(label_font.clone())
        .axis_desc_style(label_font)
        .bold_line_style(GRID_COLOR)
        .light_line_style(TRANSPARENT)
        .draw()?;
    volume.draw_series(
        spec.volume
            .iter()
            .filter(|bar| bar.volume > 0.0)
            .map(|bar| {
                Rectangle::new(
                    [(bar.start_ms, 0.0), (bar.end_ms, bar.volume)],
                    VOLUME_COLOR.filled(),
                )
            }),
    )?;
    Ok(())
}

/// The title (symbol, change vs previous close, ticks) and the legend.
fn header_band<DB: DrawingBackend>(
    spec: &ChartSpec,
    area: &DrawingArea<DB, Shift>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let change = spec
        .change_percent
        .map_or_else(|| "no previous close".to_owned(), |c| format!("{c:+.2} %"));
    let title = format!("{}  ·  {change}  ·  {} ticks", spec.symbol, spec.ticks);
    let title_font = ("sans-serif", 16).into_font().color(&TEXT_COLOR);
    area.draw(&Text::new(title, (14, 10), title_font))?;
    let font = ("sans-serif", 12).into_font().color(&TEXT_COLOR);
    let mut x = 470;
    for line in &spec.lines {
        let (color, label) = line_style(line.name);
        area.draw(&Rectangle::new([(x, 16), (x + 16, 19)], color.filled()))?;
        area.draw(&Text::new(label, (x + 21, 11), font.clone()))?;
        x += 30 + 8 * label.len() as i32;
    }
    // The markers' legend: anomaly, trend up, trend down.
    for (index, label) in ["anomaly", "trend up", "trend down"]
        .into_iter()
        .enumerate()
    {
        let at = (x + 6, 17);
        match index {
            0 => area.draw(&Circle::new(at, 5, ANOMALY_COLOR.stroke_width(2)))?,
            1 => area.draw(&(EmptyElement::at(at) + up_triangle(TREND_UP_COLOR, 0)))?,
            _ => area.draw(&(EmptyElement::at(at) + down_triangle(TREND_DOWN_COLOR, 0)))?,
        }
        area.draw(&Text::new(label, (x + 17, 11), font.clone()))?;
        x += 30 + 7 * label.len() as i32;
    }
    // The alert kinds the chart shows, each once (a held alert's hollow square says the rest),
    // in a second row under the lines' legend.
    let mut x = 470;
    let mut shown: Vec<&str> = Vec::new();
    for mark in &spec.alerts {
        let (_, label) = alert_style(mark.kind);
        if shown.contains(&label) {
            continue;
        }
        shown.push(label);
        let legend = AlertMark {
            held: false,
            at: (0, 0.0),
            ..*mark
        };
        area.draw(&(EmptyElement::at((x + 6, 37)) + alert_square(&legend)))?;
        area.draw(&Text::new(label, (x + 17, 31), font.clone()))?;
        x += 30 + 7 * label.len() as i32;
    }
    Ok(())
}

/// A triangle pointing up, centred `dy` pixels below its point (above when negative).
fn up_triangle(color: RGBColor, dy: i32) -> Polygon<(i32, i32)> {
    let style = color.mix(0.75).filled();
    Polygon::new(vec![(-5, dy + 4), (5, dy + 4), (0, dy - 5)], style)
}

/// A triangle pointing down, centred `dy` pixels below its point (above when negative).
fn down_triangle(color: RGBColor, dy: i32) -> Polygon<(i32, i32)> {
    let style = color.mix(0.75).filled();
    Polygon::new(vec![(-5, dy - 4), (5, dy - 4), (0, dy + 5)], style)
}

/// The value range with a margin, never empty.
fn padded((low, high): (f64, f64)) -> (f64, f64) {
    if !low.is_finite() || !high.is_finite() {
        return (0.0, 1.0);
    }
    let margin = match high - low {
        d if d > 0.0 => d * 0.05,
        _ => (high.abs() * 0.005).max(0.01),
    };
    (low - margin, high + margin)
}

/// A time axis label (UTC): the time of day within a day, with the date beyond.
fn time_label(ms: i64, span_ms: i64) -> String {
    let Some(time) = chrono::DateTime::from_timestamp_millis(ms) else {
        return String::new();
    };
    let format = match span_ms {
        s if s < 60_000 => "%H:%M:%S%.3f",
        s if s < 86_400_000 => "%H:%M:%S",
        _ => "%m-%d %H:%M",
    };
    time.format(format).to_string()
}

/// `950`, `12.5k`, `3.2M`.
fn human(value: f64) -> String {
    match value.abs() {
        v if v >= 1e9 => format!("{:.1}G", value / 1e9),
        v if v >= 1e6 => format!("{:.1}M", value / 1e6),
        v if v >= 1e3 => format!("{:.1}k", value / 1e3),
        _ => format!("{value:.0}"),
    }
}

#[cfg(test)]
mod tests {
    use super::super::charts::{Line, VolumeBar};
    use super::*;

    /// The `points` attribute of every polyline drawn in `color`.
    fn polylines(svg: &str, color: RGBColor) -> Vec<usize> {
        let stroke = format!("stroke=\"#{:02X}{:02X}{:02X}\"", color.0, color.1, color.2);
        svg.split("<polyline")
            .skip(1)
            .map(|tag| &tag[..tag.find("/>").unwrap()])
            .filter(|tag| tag.contains(&stroke))
            .map(|tag| {
                let points = tag.split("points=\"").nth(1).unwrap();
                points[..points.find('"').unwrap()]
                    .split_whitespace()
                    .count()
            })
            .collect()
    }

    fn spec() -> ChartSpec {
        let line = |name, n: i64, base: f64| Line {
            name,
            points: (0..n).map(|i| (i * 100, base + i as f64)).collect(),
        };
        ChartSpec {
            symbol: "A<B".into(),
            change_percent: Some(-1.25),
            ticks: 50,
            lines: vec![
                line(PRICE, 50, 100.0),
                line(SMA_SHORT, 46, 100.5),
                line(SMA_LONG, 31, 101.0),
                line(VWAP, 50, 99.0),
            ],
            anomalies: vec![(700, 107.0), (1_200, 112.0)],
            trend_up: vec![(2_000, 120.0)],
            trend_down: vec![(3_000, 130.0)],
            alerts: vec![
                AlertMark {
                    kind: AlertKind::VolumeSpike,
                    held: false,
                    at: (900, 109.0),
                },
                AlertMark {
                    kind: AlertKind::VolumeSpike,
                    held: true,
                    at: (1_500, 115.0),
                },
            ],
            volume: (0..10)
                .map(|i| VolumeBar {
                    start_ms: i * 490,
                    end_ms: (i + 1) * 490,
                    volume: 100.0 * i as f64,
                })
                .collect(),
            time_range: (0, 4_900),
            value_range: (99.0, 149.0),
        }
    }

    #[test]
    fn each_line_is_one_polyline_with_all_its_points() {
        let svg = chart_svg(&spec()).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        for (color, points) in [
            (PRICE_COLOR, 50),
            (SMA_SHORT_COLOR, 46),
            (SMA_LONG_COLOR, 31),
            (VWAP_COLOR, 50),
        ] {
            assert_eq!(polylines(&svg, color), [points], "{color:?}");
        }
        // Markers: two anomaly circles; one triangle each way (the legend draws one of each too).
        assert_eq!(svg.matches("<circle").count(), 2 + 1);
        assert_eq!(svg.matches("<polygon").count(), 2 + 2);
        // Alert squares: one sent (filled, and one in the legend), one held (hollow).
        let hex = |c: RGBColor| format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2);
        let color = hex(VOLUME_ALERT_COLOR);
        assert_eq!(svg.matches(&format!("fill=\"{color}\"")).count(), 1 + 1);
        assert_eq!(svg.matches(&format!("stroke=\"{color}\"")).count(), 1);
        // Nine volume slices with volume, plus the white background.
        let bars = format!(
            "fill=\"#{:02X}{:02X}{:02X}\"",
            VOLUME_COLOR.0, VOLUME_COLOR.1, VOLUME_COLOR.2
        );
        assert_eq!(svg.matches(&bars).count(), 9);
        assert!(svg.contains("A&lt;B"), "the symbol is escaped");
    }

    /// The `y`s of the points of every polygon filled with `color`.
    fn polygon_ys(svg: &str, color: RGBColor) -> Vec<Vec<i32>> {
        let fill = format!("fill=\"#{:02X}{:02X}{:02X}\"", color.0, color.1, color.2);
        svg.split("<polygon")
            .skip(1)
            .map(|tag| &tag[..tag.find("/>").unwrap()])
            .filter(|tag| tag.contains(&fill))
            .map(|tag| {
                let points = tag.split("points=\"").nth(1).unwrap();
                points[..points.find('"').unwrap()]
                    .split_whitespace()
                    .map(|xy| xy.split(',').nth(1).unwrap().parse().unwrap())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn many_trend_changes_line_the_top_instead_of_the_price() {
        let few = chart_svg(&spec()).unwrap();
        // Beside the price: the two up triangles (one in the legend) at different heights.
        let ys = polygon_ys(&few, TREND_UP_COLOR);
        assert_eq!(ys.len(), 2);
        assert_ne!(ys[0], ys[1]);

        let many = ChartSpec {
            trend_up: (0..INLINE_TREND_MARKERS as i64)
                .map(|i| (i * 50, 100.0 + i as f64 / 2.0))
                .collect(),
            ..spec()
        };
        let svg = chart_svg(&many).unwrap();
        let ys = polygon_ys(&svg, TREND_UP_COLOR);
        assert_eq!(ys.len(), INLINE_TREND_MARKERS + 1);
        // Past the legend, every up triangle sits in one row, whatever its price.
        assert!(ys[1..].iter().all(|y| *y == ys[1]), "{ys:?}");
        assert_eq!(polylines(&svg, PRICE_COLOR), [50]);
    }

    #[test]
    fn a_chart_of_one_tick_still_draws() {
        let spec = ChartSpec {
            lines: vec![Line {
                name: PRICE,
                points: vec![(5, 10.0)],
            }],
            anomalies: Vec::new(),
            trend_up: Vec::new(),
            trend_down: Vec::new(),
            alerts: Vec::new(),
            volume: Vec::new(),
            time_range: (5, 5),
            value_range: (10.0, 10.0),
            ..spec()
        };
        let svg = chart_svg(&spec).unwrap();
        assert_eq!(polylines(&svg, PRICE_COLOR), [1]);
    }

    #[test]
    fn labels() {
        assert_eq!(human(950.0), "950");
        assert_eq!(human(12_500.0), "12.5k");
        assert_eq!(human(3_200_000.0), "3.2M");
        assert_eq!(time_label(1_767_623_400_123, 20_000), "14:30:00.123");
        assert_eq!(time_label(1_767_623_400_123, 3_600_000), "14:30:00");
        assert_eq!(time_label(1_767_623_400_123, 2 * 86_400_000), "01-05 14:30");
        assert_eq!(padded((10.0, 10.0)), (9.95, 10.05));
    }
}
