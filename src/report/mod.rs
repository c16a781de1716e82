//! `kinetick report`: a picture of the lake. Reads the tick files of a date or a range of dates
//! (a directory `kinetick demo` wrote, or `s3://bucket/prefix` through the same S3 store as
//! `kinetick run`), the dead letters that arrived with those ticks and, beside a demo's lake, its
//! `alerts.jsonl`; writes into the output directory:
//!
//! ```text
//! report.html          the page: day at a glance, a chart per symbol, the seed queries' answers
//! summary.json         every number of the page, and every row of the four answers
//! charts/NN-SYMBOL.svg each chart (the page inlines the same drawings)
//! ```
//!
//! The steps, each in its own file: [`lake_reader`] lists and reads the lake through the
//! [`ObjectStore`](crate::objects::ObjectStore) port; [`seed`] answers the four queries and
//! [`series`] keeps each symbol's points while the rows stream past; [`summary`] and [`charts`]
//! turn those into the day at a glance and the chart specs (pure); [`render`] draws the charts
//! and [`html`] the page.
//!
//! Memory: the seed answers are bounded but for the rows of the big moves; the series keep what a
//! chart needs of every row of the range (time, prices, averages, volume, flags): memory grows
//! with the rows read.

pub mod charts;
pub mod html;
pub mod lake_reader;
pub mod render;
pub mod row;
pub mod seed;
pub mod series;
pub mod summary;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use serde::Serialize;

use self::lake_reader::{Lake, LakeLocation, dates_between, select_dates};
use self::seed::{SeedAnswers, SeedQueries};
use self::series::Series;
use self::summary::Glance;
use crate::alerts::local::LocalAlertSink;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::objects::local::LocalObjectStore;

/// Charts by default: the symbols that moved most.
pub const DEFAULT_TOP: usize = 6;

/// What `kinetick report` was asked for.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// A directory, or `s3://bucket[/prefix]`.
    pub lake: String,
    /// First date (`YYYY-MM-DD`); the newest date of the lake without it.
    pub date: Option<String>,
    /// Last date of a range (with `date`).
    pub to: Option<String>,
    /// Symbols to chart; the top movers without it.
    pub symbols: Option<Vec<String>>,
    /// How many top movers to chart.
    pub top: usize,
    pub out: PathBuf,
    pub progress: bool,
}

/// One chart of the report.
#[derive(Debug, Clone, Serialize)]
pub struct ChartInfo {
    pub symbol: String,
    /// Path of its SVG, relative to the output directory.
    pub file: String,
    pub ticks: usize,
    /// Points drawn per line (all the ticks that have the value, or a thinned line's points).
    pub lines: BTreeMap<&'static str, usize>,
    pub anomalies: usize,
    pub trend_up: usize,
    pub trend_down: usize,
}

/// Everything the report says: `summary.json`, and what the page shows.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub lake: String,
    /// The dates (`dt` partitions) read.
    pub dates: Vec<String>,
    pub files: usize,
    pub rows: u64,
    /// Arrival dates of those rows: the dead-letter partitions read.
    pub dead_letter_dates: Vec<String>,
    /// The alert log read, if any.
    pub alert_log: Option<String>,
    /// Why these symbols have charts.
    pub chart_choice: String,
    pub charts: Vec<ChartInfo>,
    #[serde(flatten)]
    pub glance: Glance,
    pub seed_queries: SeedAnswers,
}

impl Report {
    /// `2026-01-05`, or `2026-01-05 to 2026-01-07`.
    pub fn date_label(&self) -> String {
        match (self.dates.first(), self.dates.last()) {
            (Some(first), Some(last)) if first != last => format!("{first} to {last}"),
            (Some(first), _) => first.clone(),
            _ => "no date".to_owned(),
        }
    }
}

/// What the command prints when it is done.
#[derive(Debug)]
pub struct ReportOutcome {
    pub out: PathBuf,
    pub dates: String,
    pub files: usize,
    pub rows: u64,
    pub symbols: usize,
    pub charts: usize,
}

impl fmt::Display for ReportOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "kinetick report: {} rows of {} symbols on {} ({} files)",
            self.rows, self.symbols, self.dates, self.files
        )?;
        writeln!(
            f,
            "  wrote {}, {} and {} charts in {}",
            self.out.join("report.html").display(),
            self.out.join("summary.json").display(),
            self.charts,
            self.out.join("charts").display()
        )
    }
}

/// Reads the lake, computes the report and writes it; must run inside a tokio runtime.
pub async fn run(config: &Config, options: ReportOptions) -> anyhow::Result<ReportOutcome> {
    let location = LakeLocation::parse(&options.lake)?;
    let (lake, root) = open(config, &location).await?;

    let by_date = lake.tick_files().await?;
    let available: BTreeSet<String> = by_date.keys().cloned().collect();
    let dates = select_dates(&available, options.date.as_deref(), options.to.as_deref())?;
    if dates.is_empty() {
        let held = match (available.first(), available.last()) {
            (Some(first), Some(last)) => format!("it holds {first} to {last}"),
            _ => "it holds no tick files".to_owned(),
        };
        anyhow::bail!(
            "no lake files for {} under {root}ticks/ ({held})",
            options.date.as_deref().unwrap_or("any date")
        );
    }
    let keys: Vec<String> = dates.iter().flat_map(|d| by_date[d].clone()).collect();
    let read = read(&lake, &keys, options.progress).await?;

    let arrival_dates = read
        .arrivals
        .map_or_else(Vec::new, |(first, last)| dates_between(first, last));
    let (dead_letters, dead_letter_dates) = lake.dead_letters(&arrival_dates).await?;
    let (alerts, alert_log) = match &location {
        LakeLocation::Directory(dir) if dir.join("alerts.jsonl").is_file() => {
            let path = dir.join("alerts.jsonl");
            (
                Some(LocalAlertSink::read(&path).await?),
                Some(path.display().to_string()),
            )
        }
        _ => (None, None),
    };
    let glance = summary::glance(&read.series, alerts.as_deref(), &dates, dead_letters);
    let (chosen, chart_choice) = choose_symbols(&read.series, &options);
    let (charts, svgs) = draw_charts(&read.series, &chosen)?;

    let report = Report {
        lake: root,
        dates: dates.into_iter().collect(),
        files: keys.len(),
        rows: read.rows,
        dead_letter_dates,
        alert_log,
        chart_choice,
        charts,
        glance,
        seed_queries: read.seed.finish(),
    };
    write(&options.out, &report, &svgs).await?;
    Ok(ReportOutcome {
        out: options.out,
        dates: report.date_label(),
        files: report.files,
        rows: report.rows,
        symbols: report.glance.symbols,
        charts: report.charts.len(),
    })
}

/// The lake at `location`, and its root as the messages and the page name it. A directory holds
/// the lake where `kinetick demo` puts it under the same settings (`lake.prefix`); on S3 the
/// store is the one `kinetick run` writes through.
async fn open(config: &Config, location: &LakeLocation) -> anyhow::Result<(Lake, String)> {
    Ok(match location {
        LakeLocation::Directory(dir) => {
            anyhow::ensure!(dir.is_dir(), "--lake {}: no such directory", dir.display());
            let prefix = &config.lake.prefix;
            let root = format!(
                "{}/{prefix}",
                dir.display().to_string().trim_end_matches('/')
            );
            let store = LocalObjectStore::new(dir.clone());
            (Lake::new(Arc::new(store), prefix.as_str()), root)
        }
        LakeLocation::S3 { bucket, prefix } => {
            let sdk = crate::aws::sdk_config().await;
            let metrics = Arc::new(Metrics::default());
            let store = crate::ports::s3_objects(&config.aws, &sdk, bucket, &metrics);
            (
                Lake::new(Arc::new(store), prefix.as_str()),
                location.to_string(),
            )
        }
    })
}

/// What reading the tick files gathered.
struct Read {
    seed: SeedQueries,
    series: Series,
    rows: u64,
    /// First and last arrival time of the rows.
    arrivals: Option<(i64, i64)>,
}

/// Reads the tick files `keys`, with a progress bar on a terminal.
async fn read(lake: &Lake, keys: &[String], progress: bool) -> anyhow::Result<Read> {
    let bar = progress_bar(keys.len() as u64, progress);
    let mut read = Read {
        seed: SeedQueries::default(),
        series: Series::default(),
        rows: 0,
        arrivals: None,
    };
    let result = lake
        .read_ticks(
            keys,
            |file_rows| {
                for row in &file_rows {
                    read.seed.add(row);
                    read.series.add(row);
                    let at = row.arrival_time_ms;
                    read.arrivals = Some(
                        read.arrivals
                            .map_or((at, at), |(first, last)| (first.min(at), last.max(at))),
                    );
                }
                read.rows += file_rows.len() as u64;
                if let Some(bar) = &bar {
                    bar.set_message(format!("{} rows", indicatif::HumanCount(read.rows)));
                }
            },
            || {
                if let Some(bar) = &bar {
                    bar.inc(1);
                }
            },
        )
        .await;
    if let Some(bar) = bar {
        crate::telemetry::set_progress_bar(None);
        bar.finish_and_clear();
    }
    result?;
    read.series = read.series.sorted();
    Ok(read)
}

/// The chart of each symbol in `chosen` that has rows: what `summary.json` says of it, and its
/// SVG.
fn draw_charts(
    series: &Series,
    chosen: &[String],
) -> Result<(Vec<ChartInfo>, Vec<String>), render::RenderError> {
    let (mut charts, mut svgs) = (Vec::new(), Vec::new());
    for (index, symbol) in chosen.iter().enumerate() {
        let Some(points) = series.get(symbol) else {
            continue;
        };
        let spec = charts::chart(symbol, points);
        svgs.push(render::chart_svg(&spec)?);
        charts.push(ChartInfo {
            symbol: symbol.clone(),
            file: format!("charts/{:02}-{}.svg", index + 1, file_name(symbol)),
            ticks: spec.ticks,
            lines: spec
                .lines
                .iter()
                .map(|line| (line.name, line.points.len()))
                .collect(),
            anomalies: spec.anomalies.len(),
            trend_up: spec.trend_up.len(),
            trend_down: spec.trend_down.len(),
        });
    }
    Ok((charts, svgs))
}

/// The symbols to chart and a sentence saying why.
fn choose_symbols(series: &Series, options: &ReportOptions) -> (Vec<String>, String) {
    match &options.symbols {
        Some(asked) => {
            let (present, missing): (Vec<String>, Vec<String>) =
                asked.iter().cloned().partition(|s| series.get(s).is_some());
            let mut choice = format!("The symbols asked for ({})", asked.join(", "));
            if !missing.is_empty() {
                tracing::warn!(symbols = %missing.join(","), "Symbols not in the lake's rows of these dates.");
                choice.push_str(&format!("; not in the lake: {}", missing.join(", ")));
            }
            (present, choice)
        }
        None => {
            let top = charts::top_movers(series, options.top);
            let choice = format!(
                "The {} symbols whose last price moved most against the previous close, by \
                 |change %| (--top {})",
                top.len(),
                options.top
            );
            (top, choice)
        }
    }
}

/// A file name for a symbol: any symbol is 1 to 32 bytes of almost anything, so only ASCII
/// letters, digits, `_` and `-` are kept (the index before it keeps names apart).
fn file_name(symbol: &str) -> String {
    symbol
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect()
}

/// A bar over the files to read, on a terminal only.
fn progress_bar(files: u64, enabled: bool) -> Option<indicatif::ProgressBar> {
    let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(files);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} reading the lake {bar:30} {pos}/{len} files  {msg}  eta {eta}",
            )
            .expect("valid progress template"),
        );
        bar
    });
    crate::telemetry::set_progress_bar(bar.clone());
    bar
}

/// Writes the page, the summary and the charts into `out`; charts of an earlier report there
/// are removed first.
async fn write(out: &Path, report: &Report, svgs: &[String]) -> anyhow::Result<()> {
    let charts_dir = out.join("charts");
    tokio::fs::create_dir_all(&charts_dir)
        .await
        .with_context(|| format!("cannot create {}", charts_dir.display()))?;
    let mut entries = tokio::fs::read_dir(&charts_dir).await?;
    while let Some(entry) = entries.next_entry().await? {
        if entry.path().extension().is_some_and(|e| e == "svg") {
            tokio::fs::remove_file(entry.path()).await?;
        }
    }
    for (chart, svg) in report.charts.iter().zip(svgs) {
        let path = out.join(&chart.file);
        tokio::fs::write(&path, svg)
            .await
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let summary = serde_json::to_vec(report)?;
    let page = html::page(report, svgs);
    for (name, body) in [
        ("summary.json", summary),
        ("report.html", page.into_bytes()),
    ] {
        let path = out.join(name);
        tokio::fs::write(&path, body)
            .await
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_keep_only_safe_characters() {
        assert_eq!(file_name("BRK.B"), "BRK_B");
        assert_eq!(file_name("../x/y"), "___x_y");
        assert_eq!(file_name("AAPL"), "AAPL");
    }
}
