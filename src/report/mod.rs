//! `kinetick report`: a picture of the lake. Reads the tick files of a date or a range of dates
//! (a directory `kinetick demo` wrote, or `s3://bucket/prefix` through the same S3 store as
//! `kinetick run`), the dead letters that arrived with those ticks and, beside a demo's lake, its
//! `alerts.jsonl`; writes into the output directory, and with `--upload` into a bucket under
//! `PREFIX/reports/dt=YYYY-MM-DD/`:
//!
//! ```text
//! report.html          the page: day at a glance, a chart per symbol, the seed queries' answers
//! summary.json         every number of the page, and every row of the four answers
//! charts/NN-SYMBOL.svg each chart (the page inlines the same drawings)
//! ```
//!
//! With `--publish`, a digest of the page goes to an SNS topic (the alert topic by default).
//!
//! The steps, each in its own file: [`lake_reader`] lists and reads the lake through the
//! [`ObjectStore`](crate::objects::ObjectStore) port. The tick files are read twice. The first
//! read takes every row: [`seed`] answers the four queries and [`tally`] keeps what needs no
//! order of every symbol (counts, its last tick, the alerts by kind and hour, where its rows are
//! and which came late), which is enough to choose the charts' symbols. The second read takes
//! only those symbols' rows, of the files that hold them, and [`replay`] feeds them in event-time
//! order ([`series`]) into their charts ([`charts`]) and, for symbols with rows read late, into
//! the trend changes the first read could not count. [`summary`] turns the tally into the day at
//! a glance (pure); [`render`] draws the charts and [`html`] the page; [`digest`] puts the glance
//! into a subject and a plain-text body (pure), and [`deliver`] writes and uploads the files and
//! publishes the digest.
//!
//! Memory does not grow with the rows read: it holds the files being fetched (a few at a time)
//! and a few record batches of rows; per symbol, the tally's numbers; per hour, its counts; per
//! charted symbol, the chart's kept points and markers; and the seed answers' own rows (those of
//! the big moves grow with the moves). A symbol with rows read late (late ticks, a move between
//! shards) adds, in the second read, its points after the next late run's event time until that
//! run's file is read.
//!
//! Requests: each tick file is fetched once for the first read, and once more for the second if
//! it holds a charted symbol, or a symbol with rows read late (their trend changes are counted in
//! order then); on S3, GETs double for those files only.

pub mod charts;
pub mod deliver;
pub mod digest;
pub mod html;
pub mod lake_reader;
pub mod render;
pub mod replay;
pub mod row;
pub mod seed;
pub mod series;
pub mod summary;
pub mod tally;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use self::charts::ChartSpec;
use self::deliver::{Aws, Folder};
use self::lake_reader::{Lake, LakeLocation, Ticks, dates_between, resolve_day, select_dates};
use self::replay::Replay;
use self::seed::{SeedAnswers, SeedQueries};
use self::summary::Glance;
use self::tally::Tally;
use crate::alerts::local::LocalAlertSink;
use crate::config::Config;
use crate::objects::local::LocalObjectStore;

/// Charts by default: the symbols that moved most.
pub const DEFAULT_TOP: usize = 6;

/// What `kinetick report` was asked for.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// A directory, or `s3://bucket[/prefix]`.
    pub lake: String,
    /// First date (`YYYY-MM-DD`, `today` or `yesterday`, UTC); the newest date of the lake
    /// without it.
    pub date: Option<String>,
    /// Last date of a range (with `date`).
    pub to: Option<String>,
    /// Symbols to chart; the top movers without it.
    pub symbols: Option<Vec<String>>,
    /// How many top movers to chart.
    pub top: usize,
    /// A directory to write the files into.
    pub out: Option<PathBuf>,
    /// `s3://bucket[/prefix]` to put the files under, in `reports/dt=YYYY-MM-DD/` (one date).
    pub upload: Option<String>,
    /// SNS topic ARN to publish the digest to.
    pub publish: Option<String>,
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
    /// Alerts the tasks' cap per minute held on these dates (the `AlertsCapped` metric, which the
    /// lake does not record); read only for a digest published on AWS, `None` otherwise or when
    /// the metric could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alerts_capped: Option<u64>,
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
    pub out: Option<PathBuf>,
    /// `s3://bucket/prefix/reports/dt=YYYY-MM-DD/`, where the files were put.
    pub uploaded: Option<String>,
    /// The topic and the subject of the digest published.
    pub published: Option<(String, String)>,
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
        if let Some(out) = &self.out {
            writeln!(
                f,
                "  wrote {}, {} and {} charts in {}",
                out.join("report.html").display(),
                out.join("summary.json").display(),
                self.charts,
                out.join("charts").display()
            )?;
        }
        if let Some(folder) = &self.uploaded {
            writeln!(
                f,
                "  uploaded report.html, summary.json and {} charts to {folder}",
                self.charts
            )?;
        }
        if let Some((topic, subject)) = &self.published {
            writeln!(f, "  published the digest to {topic}: {subject}")?;
        }
        Ok(())
    }
}

/// Reads the lake, computes the report and writes it; must run inside a tokio runtime.
pub async fn run(config: &Config, options: ReportOptions) -> anyhow::Result<ReportOutcome> {
    let location = LakeLocation::parse(&options.lake)?;
    let upload = options.upload.as_deref().map(Folder::parse).transpose()?;
    anyhow::ensure!(
        upload.is_none() || options.to.is_none(),
        "--upload files one date's report under reports/dt=YYYY-MM-DD/: leave out --to"
    );
    anyhow::ensure!(
        options.out.is_some() || upload.is_some(),
        "nowhere to write the report: give --out or --upload"
    );
    let today = chrono::Utc::now().date_naive();
    let from = options.date.as_deref().map(|date| resolve_day(date, today));
    let to = options.to.as_deref().map(|date| resolve_day(date, today));
    let aws = Aws::default();
    let (lake, root) = open(config, &location, &aws).await?;

    let by_date = lake.tick_files().await?;
    let available: BTreeSet<String> = by_date.keys().cloned().collect();
    let dates = select_dates(&available, from.as_deref(), to.as_deref())?;
    if dates.is_empty() {
        let asked = (from.as_deref(), to.as_deref());
        return without_ticks(config, &aws, &options, asked, &available, &root).await;
    }
    let keys: Vec<String> = dates.iter().flat_map(|d| by_date[d].clone()).collect();
    let bar = progress_bar(&keys, options.progress);
    let reads = async {
        let mut read = first_read(&lake, &keys, bar.as_ref()).await?;
        let (chosen, chart_choice) = choose_symbols(&read.tally, &options);
        let specs = second_read(&lake, &keys, &mut read.tally, &chosen, bar.as_ref()).await?;
        anyhow::Ok((read, chosen, chart_choice, specs))
    }
    .await;
    if let Some(bar) = bar {
        crate::telemetry::set_progress_bar(None);
        bar.finish_and_clear();
    }
    let (read, chosen, chart_choice, specs) = reads?;

    let arrival_dates = read
        .arrivals
        .map_or_else(Vec::new, |(first, last)| dates_between(first, last));
    let (dead_letters, dead_letter_dates) = lake.dead_letters(&arrival_dates).await?;
    let (alerts, alert_log) = alert_log(&location).await?;
    let glance = summary::glance(&read.tally, alerts.as_deref(), &dates, dead_letters);
    let (charts, svgs) = draw_charts(&specs, &chosen)?;
    let alerts_capped = match options.publish {
        Some(_) => alerts_capped(config, &aws, &dates).await,
        None => None,
    };
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
        alerts_capped,
        seed_queries: read.seed.finish(),
    };
    let (uploaded, published) =
        deliver_all(config, &aws, &options, upload.as_ref(), &report, &svgs).await?;
    Ok(ReportOutcome {
        out: options.out,
        uploaded,
        published,
        dates: report.date_label(),
        files: report.files,
        rows: report.rows,
        symbols: report.glance.symbols,
        charts: report.charts.len(),
    })
}

/// No tick file for the dates asked: an error, or with `--publish` and a date, a digest that says
/// so. A weekday without ticks (a market holiday) is news for the digest's readers, not a
/// failure of the schedule that publishes it.
async fn without_ticks(
    config: &Config,
    aws: &Aws,
    options: &ReportOptions,
    (from, to): (Option<&str>, Option<&str>),
    available: &BTreeSet<String>,
    root: &str,
) -> anyhow::Result<ReportOutcome> {
    let held = match (available.first(), available.last()) {
        (Some(first), Some(last)) => format!("it holds {first} to {last}"),
        _ => "it holds no tick files".to_owned(),
    };
    let why = format!(
        "no lake files for {} under {root}ticks/ ({held})",
        from.unwrap_or("any date")
    );
    match (&options.publish, from) {
        (Some(topic), Some(first)) => {
            let last = to.unwrap_or(first);
            no_ticks(config, aws, topic, (first, last), &why).await
        }
        _ => anyhow::bail!(why),
    }
}

/// The `AlertsCapped` metric summed over `dates` (UTC days); `None`, with a warning, when it
/// cannot be read: the digest goes out without that line rather than not at all.
async fn alerts_capped(config: &Config, aws: &Aws, dates: &BTreeSet<String>) -> Option<u64> {
    let client = crate::ports::cloudwatch_client(&config.aws, aws.sdk().await, &aws.metrics);
    let namespace = &config.metrics.namespace;
    let mut total = 0.0;
    for date in dates {
        let day = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
        let start_ms = day.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis();
        let metric = crate::metrics::Counter::AlertsCapped.name();
        match crate::metrics::cloudwatch::day_sum(&client, namespace, metric, start_ms).await {
            Ok(sum) => total += sum,
            Err(error) => {
                tracing::warn!(%error, metric, "Cannot read the metric; the digest goes without it.");
                return None;
            }
        }
    }
    Some(total as u64)
}

/// Beside a demo's lake, its alert log (`alerts.jsonl`) and its path.
async fn alert_log(
    location: &LakeLocation,
) -> anyhow::Result<(Option<Vec<crate::model::rules::Alert>>, Option<String>)> {
    Ok(match location {
        LakeLocation::Directory(dir) if dir.join("alerts.jsonl").is_file() => {
            let path = dir.join("alerts.jsonl");
            (
                Some(LocalAlertSink::read(&path).await?),
                Some(path.display().to_string()),
            )
        }
        _ => (None, None),
    })
}

/// Writes the report's files to `--out`, uploads them to `upload` and publishes the digest, as
/// asked; returns where they were uploaded and the topic and subject of the digest.
async fn deliver_all(
    config: &Config,
    aws: &Aws,
    options: &ReportOptions,
    upload: Option<&Folder>,
    report: &Report,
    svgs: &[String],
) -> anyhow::Result<(Option<String>, Option<(String, String)>)> {
    let files = deliver::files(report, svgs)?;
    if let Some(out) = &options.out {
        deliver::write(out, &files).await?;
    }
    let uploaded = match upload {
        Some(folder) => Some(deliver::put(config, aws, folder, report, &files).await?),
        None => None,
    };
    let page = match (&uploaded, &options.out) {
        (Some(folder), _) => format!("{folder}{}", deliver::PAGE),
        (None, Some(out)) => out.join(deliver::PAGE).display().to_string(),
        (None, None) => "(kept nowhere)".to_owned(),
    };
    let published = match &options.publish {
        Some(topic) => {
            let digest = digest::digest(report, &page);
            deliver::announce(config, aws, topic, &digest).await?;
            Some((topic.clone(), digest.subject))
        }
        None => None,
    };
    Ok((uploaded, published))
}

/// The lake at `location`, and its root as the messages and the page name it. A directory holds
/// the lake where `kinetick demo` puts it under the same settings (`lake.prefix`); on S3 the
/// store is the one `kinetick run` writes through.
async fn open(
    config: &Config,
    location: &LakeLocation,
    aws: &Aws,
) -> anyhow::Result<(Lake, String)> {
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
            let store =
                crate::ports::s3_objects(&config.aws, aws.sdk().await, bucket, &aws.metrics);
            (
                Lake::new(Arc::new(store), prefix.as_str()),
                location.to_string(),
            )
        }
    })
}

/// What the first read of the tick files gathered.
#[derive(Debug, Default)]
struct Read {
    seed: SeedQueries,
    tally: Tally,
    rows: u64,
    /// First and last arrival time of the rows.
    arrivals: Option<(i64, i64)>,
}

/// The first read: every row of the tick files `keys`, into the seed answers and the tally.
async fn first_read(
    lake: &Lake,
    keys: &[String],
    bar: Option<&indicatif::ProgressBar>,
) -> anyhow::Result<Read> {
    let mut read = Read::default();
    lake.read_ticks(keys, None, |ticks| match ticks {
        Ticks::Rows(file, rows) => {
            let file = u32::try_from(file).expect("fewer than 2^32 files");
            for row in &rows {
                read.seed.add(row);
                read.tally.add(file, row);
                let at = row.arrival_time_ms;
                read.arrivals = Some(
                    read.arrivals
                        .map_or((at, at), |(first, last)| (first.min(at), last.max(at))),
                );
            }
            read.rows += rows.len() as u64;
            if let Some(bar) = bar {
                bar.set_message(format!("{} rows", indicatif::HumanCount(read.rows)));
            }
        }
        Ticks::FileDone(_) => {
            if let Some(bar) = bar {
                bar.inc(1);
            }
        }
    })
    .await?;
    Ok(read)
}

/// The second read: the rows of the `chosen` symbols and of those with rows read late, of the
/// files that hold them; the charts of `chosen`, and the late symbols' trend changes into
/// `tally`.
async fn second_read(
    lake: &Lake,
    keys: &[String],
    tally: &mut Tally,
    chosen: &[String],
    bar: Option<&indicatif::ProgressBar>,
) -> anyhow::Result<BTreeMap<String, ChartSpec>> {
    let mut replay = Replay::new(tally, chosen);
    let files = replay.files().to_vec();
    if let Some(bar) = bar {
        // The first read's files are done; the second's are known now.
        bar.set_length((keys.len() + files.len()) as u64);
        bar.set_prefix("reading again for the charts");
        bar.set_message("");
    }
    let again: Vec<String> = files.iter().map(|&i| keys[i as usize].clone()).collect();
    let mut rows_again = 0u64;
    let only = Arc::new(replay.symbols());
    lake.read_ticks(&again, Some(only), |ticks| match ticks {
        Ticks::Rows(index, rows) => {
            for row in &rows {
                replay.add(files[index], row);
            }
            rows_again += rows.len() as u64;
            if let Some(bar) = bar {
                bar.set_message(format!("{} rows", indicatif::HumanCount(rows_again)));
            }
        }
        Ticks::FileDone(index) => {
            replay.end_file(files[index]);
            if let Some(bar) = bar {
                bar.inc(1);
            }
        }
    })
    .await?;
    Ok(replay.finish(tally)?)
}

/// The chart of each symbol in `chosen` that has rows: what `summary.json` says of it, and its
/// SVG.
fn draw_charts(
    specs: &BTreeMap<String, ChartSpec>,
    chosen: &[String],
) -> Result<(Vec<ChartInfo>, Vec<String>), render::RenderError> {
    let (mut charts, mut svgs) = (Vec::new(), Vec::new());
    for (index, symbol) in chosen.iter().enumerate() {
        let Some(spec) = specs.get(symbol) else {
            continue;
        };
        svgs.push(render::chart_svg(spec)?);
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
fn choose_symbols(tally: &Tally, options: &ReportOptions) -> (Vec<String>, String) {
    match &options.symbols {
        Some(asked) => {
            let (present, missing): (Vec<String>, Vec<String>) =
                asked.iter().cloned().partition(|s| tally.get(s).is_some());
            let mut choice = format!("The symbols asked for ({})", asked.join(", "));
            if !missing.is_empty() {
                tracing::warn!(symbols = %missing.join(","), "Symbols not in the lake's rows of these dates.");
                choice.push_str(&format!("; not in the lake: {}", missing.join(", ")));
            }
            (present, choice)
        }
        None => {
            let top = charts::top_movers(tally, options.top);
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

/// A bar over the files to read, on a terminal only: `keys` for the first read, and as many
/// again for the second until it knows how many it reads.
fn progress_bar(keys: &[String], enabled: bool) -> Option<indicatif::ProgressBar> {
    let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(2 * keys.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {prefix} {bar:30} {pos}/{len} files  {msg}  eta {eta}",
            )
            .expect("valid progress template"),
        );
        bar.set_prefix("reading the lake");
        bar
    });
    crate::telemetry::set_progress_bar(bar.clone());
    bar
}

/// Publishes the digest of dates without tick files, `why` saying what the lake holds.
async fn no_ticks(
    config: &Config,
    aws: &Aws,
    topic: &str,
    (first, last): (&str, &str),
    why: &str,
) -> anyhow::Result<ReportOutcome> {
    tracing::warn!(reason = %why, "No ticks: publishing a digest that says so.");
    let digest = digest::without_ticks(first, last, why);
    deliver::announce(config, aws, topic, &digest).await?;
    Ok(ReportOutcome {
        out: None,
        uploaded: None,
        published: Some((topic.to_owned(), digest.subject)),
        dates: match first == last {
            true => first.to_owned(),
            false => format!("{first} to {last}"),
        },
        files: 0,
        rows: 0,
        symbols: 0,
        charts: 0,
    })
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
