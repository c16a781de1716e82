//! The command line: global options and one subcommand per job.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::compact::CompactOptions;
use crate::config::{Config, ConfigError};
use crate::demo::{self, DemoOptions};
use crate::producer::simulated::SimulatedRun;
use crate::producer::simulator::SimulatorConfig;
use crate::producer::yahoo::{DEFAULT_QUOTE_URL, YahooRun};
use crate::producer::{self, Destination, ProducerError, Stats};
use crate::report::ReportOptions;
use crate::telemetry::{LogFormat, LogTarget};

#[derive(Debug, Parser)]
#[command(
    name = "kinetick",
    version,
    about = "Stream processor for market ticks: Kinesis or Kafka in; DynamoDB, S3 Parquet, SNS and CloudWatch out."
)]
pub struct Cli {
    /// TOML configuration file; `KINETICK_...` environment variables override it.
    #[arg(long, global = true, env = "KINETICK_CONFIG")]
    pub config: Option<PathBuf>,

    /// Log format (JSON is what CloudWatch Logs indexes).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole pipeline on a simulated market with local storage (no AWS account needed).
    Demo(DemoArgs),
    /// Run the pipeline on AWS: read the Kinesis stream (or a Kafka topic), write DynamoDB, S3,
    /// SNS and CloudWatch (what the ECS task runs; configured by file and `KINETICK_...`
    /// variables).
    Run,
    /// Write ticks into a Kinesis stream or a Kafka topic: simulated at a target rate, or live
    /// quotes.
    Produce(ProduceArgs),
    /// Replay historical bars or ticks from CSV files into a Kinesis stream or a Kafka topic.
    Replay(ReplayArgs),
    /// Write an HTML report of the lake for a date: charts of the top movers, the day at a
    /// glance and the answers to the seed queries, with `summary.json` and the charts as SVG;
    /// optionally upload it to S3 and publish a digest of it to an SNS topic (the scheduled
    /// daily digest of the ECS stack).
    Report(ReportArgs),
    /// Merge a date's small lake files into few large ones, for Athena: only files whose rows
    /// their shards' checkpoints have all committed, so a running pipeline's replays cannot add
    /// rows twice. Run it again to finish one that stopped.
    Compact(CompactArgs),
    /// Ask a running pipeline's health endpoint and print its answer; exits 0 when healthy (the
    /// container check).
    Health {
        /// `host:port` of the endpoint.
        #[arg(long, default_value = "127.0.0.1:8080")]
        address: String,
        /// Also exit 0 when the only reasons are refusals a new process would meet too
        /// (permissions, missing resources): the worker waits them out without losing anything,
        /// and replacing it would only replay its backlog. The container check uses this.
        #[arg(long)]
        ignore_refusals: bool,
    },
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Records to simulate (ticks, with a small share of malformed records among them).
    #[arg(long, default_value_t = 250_000)]
    pub ticks: u64,
    /// Symbols in the simulated market.
    #[arg(long, default_value_t = 100)]
    pub symbols: usize,
    /// Shards of the in-process stream.
    #[arg(long, default_value_t = 4)]
    pub shards: usize,
    /// Output directory: Parquet lake, ticks table, alerts, dead letters and checkpoints
    /// [default: the `local.dir` setting, `out`].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Simulator seed: the same seed gives the same market.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// News per symbol per trading session (6.5 h of event time): price jumps of 2-8 % on a
    /// volume spike. 0.05 is about one a month, as for a real large cap; the default demo
    /// covers minutes of event time, so raise it to see news.
    #[arg(long, default_value_t = 0.05)]
    pub jumps_per_session: f64,
    /// No live progress line.
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Source {
    /// The market simulator (`kinetick demo`'s).
    Simulator,
    /// Real quotes polled from Yahoo Finance's chart endpoint.
    Yahoo,
}

#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// Kinesis stream to write (AWS settings from the SDK's default chain).
    #[arg(long, required_unless_present_any = ["dry_run", "topic"], conflicts_with = "topic")]
    pub stream: Option<String>,
    /// Kafka topic to write instead (brokers, TLS and SASL from the `[kafka]` settings).
    #[arg(long)]
    pub topic: Option<String>,
    #[arg(long, value_enum, default_value_t = Source::Simulator)]
    pub source: Source,
    /// Simulator: records per second (0 = as fast as the stream takes them).
    #[arg(long, default_value_t = 1_000)]
    pub rate: u32,
    /// Stop after this many records.
    #[arg(long)]
    pub count: Option<u64>,
    /// Stop after this long (e.g. `10m`); without it or `--count`, run until Ctrl-C.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<std::time::Duration>,
    /// Simulator: how many symbols; yahoo: which, comma-separated (AAPL,MSFT).
    #[arg(long, default_value = "100")]
    pub symbols: String,
    /// Simulator seed: the same seed gives the same market.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Simulator: share of records that are malformed (to exercise dead letters).
    #[arg(long, default_value_t = 0.0)]
    pub malformed_rate: f64,
    /// Simulator: news per symbol per trading session (price jumps of 2-8 % on a volume
    /// spike); 0.05 is about one a month, as for a real large cap.
    #[arg(long, default_value_t = 0.05)]
    pub jumps_per_session: f64,
    /// Yahoo: how often each symbol is polled.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    pub interval: std::time::Duration,
    /// Yahoo: base URL of the quote service.
    #[arg(long, default_value = DEFAULT_QUOTE_URL)]
    pub quote_url: String,
    /// Encode and batch only; send nothing (measures the producer itself).
    #[arg(long)]
    pub dry_run: bool,
    /// No progress bar or progress log lines.
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// CSV files, or directories of them: `Date,Open,High,Low,Close,Adj Close,Volume` (the
    /// symbol from `--symbol` or the file name) or `timestamp,symbol,price,volume`.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Kinesis stream to write (AWS settings from the SDK's default chain).
    #[arg(long, required_unless_present_any = ["dry_run", "topic"], conflicts_with = "topic")]
    pub stream: Option<String>,
    /// Kafka topic to write instead (brokers, TLS and SASL from the `[kafka]` settings).
    #[arg(long)]
    pub topic: Option<String>,
    /// Symbol of files without a symbol column (default: the file name, e.g. AAPL.csv).
    #[arg(long)]
    pub symbol: Option<String>,
    /// Time-compress: wait the gaps between timestamps divided by this (default: no waiting).
    #[arg(long)]
    pub speed: Option<f64>,
    /// Stop at the first malformed line instead of reporting it and going on.
    #[arg(long)]
    pub strict: bool,
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The lake: a directory `kinetick demo` wrote (its `--out`; the `lake.prefix` setting
    /// applies, as for the demo), or `s3://bucket/prefix` (read with the SDK's default chain, as
    /// `kinetick run` writes it; path-style addressing and timeouts from the `aws` settings).
    #[arg(long)]
    pub lake: String,
    /// Event date to report: YYYY-MM-DD, or `today` or `yesterday` (UTC dates, as the lake's
    /// `dt` partitions; for a schedule) [default: the newest date in the lake].
    #[arg(long)]
    pub date: Option<String>,
    /// Last date of a range starting at `--date`: YYYY-MM-DD, `today` or `yesterday`.
    #[arg(long, requires = "date")]
    pub to: Option<String>,
    /// Symbols to chart, comma-separated [default: the top movers].
    #[arg(long, value_delimiter = ',', conflicts_with = "top")]
    pub symbols: Option<Vec<String>>,
    /// How many symbols to chart: those whose last price moved most against the previous close.
    #[arg(long, default_value_t = crate::report::DEFAULT_TOP)]
    pub top: usize,
    /// Output directory: report.html, summary.json and charts/ [required without --upload].
    #[arg(long, required_unless_present = "upload")]
    pub out: Option<PathBuf>,
    /// Also put the files in S3, under `PREFIX/reports/dt=YYYY-MM-DD/` of `s3://bucket[/prefix]`
    /// (`report.html` last, so once it is there, all is); without a value, beside an s3:// lake.
    /// One date: not with `--to`. Needs `s3:PutObject` there.
    #[arg(long, value_name = "S3_URL", conflicts_with = "to")]
    pub upload: Option<Option<String>>,
    /// Publish a digest of the report to an SNS topic: a subject and a plain-text body for a
    /// mail client (top movers, anomalies, alerts, dead letters, and where the report is), with
    /// the message attribute `kind` = `digest`; without a value, to the alert topic
    /// (`aws.topic-arn`, `KINETICK_AWS__TOPIC_ARN`). Needs `sns:Publish` on it. With `--date`,
    /// a date without tick files (a market holiday) publishes a digest that says so, and succeeds.
    #[arg(long, value_name = "TOPIC_ARN")]
    pub publish: Option<Option<String>>,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Debug, Args)]
pub struct CompactArgs {
    /// The lake: a directory `kinetick demo` wrote (its `--out`; the `lake.prefix` setting
    /// applies; checkpoints from its `checkpoints/`), or `s3://bucket/prefix` (with the SDK's
    /// default chain, as `kinetick run` writes it; checkpoints from the DynamoDB table
    /// `aws.checkpoint-table`). Needs to list, get, put and delete objects under `ticks/` and
    /// `compaction/`, and `dynamodb:GetItem` on the table.
    #[arg(long)]
    pub lake: String,
    /// Event date to compact: YYYY-MM-DD, or `today` or `yesterday` (UTC dates, as the lake's
    /// `dt` partitions). Best a closed day: see README, "Compacting the lake".
    #[arg(long)]
    pub date: String,
    /// Last date of a range starting at `--date`: YYYY-MM-DD, `today` or `yesterday`.
    #[arg(long)]
    pub to: Option<String>,
    /// Most bytes of input per compacted file (the output is about as large): `128MB`,
    /// `512MiB`, or bytes. Files of half of it or more are left as they are. Memory holds about
    /// this much, and a row group's rows.
    #[arg(long, default_value = crate::compact::DEFAULT_TARGET,
        value_parser = crate::config::size::parse)]
    pub target_size: u64,
    /// Plan only: read the checkpoints and the files, print what would be merged, and write or
    /// delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

impl CompactArgs {
    pub fn options(self) -> CompactOptions {
        CompactOptions {
            lake: self.lake,
            date: self.date,
            to: self.to,
            target: self.target_size,
            dry_run: self.dry_run,
            progress: !self.no_progress,
        }
    }
}

impl ReportArgs {
    /// The report's options: `--upload` without a value is the lake's bucket and prefix, and
    /// `--publish` without one the `aws.topic-arn` setting.
    pub fn options(self, config: &Config) -> anyhow::Result<ReportOptions> {
        let upload = match self.upload {
            Some(None) if self.lake.starts_with("s3://") => Some(self.lake.clone()),
            Some(None) => anyhow::bail!(
                "--upload without a bucket puts the report beside an s3:// lake; give one: \
                 --upload s3://bucket/prefix"
            ),
            Some(Some(url)) => Some(url),
            None => None,
        };
        let publish = match self.publish {
            Some(None) => Some(config.aws.topic_arn.clone().ok_or_else(|| {
                anyhow::anyhow!(
                    "--publish without a topic publishes to aws.topic-arn, which is not set \
                     (KINETICK_AWS__TOPIC_ARN); give one: --publish TOPIC_ARN"
                )
            })?),
            Some(Some(topic)) => Some(topic),
            None => None,
        };
        Ok(ReportOptions {
            lake: self.lake,
            date: self.date,
            to: self.to,
            symbols: self.symbols.map(|symbols| {
                symbols
                    .into_iter()
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect()
            }),
            top: self.top,
            out: self.out,
            upload,
            publish,
            progress: !self.no_progress,
        })
    }
}

impl DemoArgs {
    /// The demo's options; the output directory defaults to the `local.dir` setting.
    pub fn options(self, config: &Config) -> DemoOptions {
        DemoOptions {
            ticks: self.ticks,
            symbols: self.symbols,
            shards: self.shards,
            out: self.out.unwrap_or_else(|| config.local.dir.clone()),
            seed: self.seed,
            jumps_per_session: self.jumps_per_session,
            progress: !self.no_progress,
        }
    }
}

impl Command {
    /// Where this command logs.
    pub fn log_target(&self) -> LogTarget {
        match self {
            Command::Demo(_)
            | Command::Health { .. }
            | Command::Produce(_)
            | Command::Replay(_)
            | Command::Report(_)
            | Command::Compact(_) => LogTarget::Stderr,
            Command::Run => LogTarget::Stdout,
        }
    }

    /// Log level unless `RUST_LOG` says otherwise.
    pub fn default_log_level(&self) -> &'static str {
        match self {
            Command::Demo(_)
            | Command::Health { .. }
            | Command::Report(_)
            | Command::Compact(_) => "warn",
            Command::Run | Command::Produce(_) | Command::Replay(_) => "info",
        }
    }
}

/// Runs the chosen command; must run inside an actix `System`.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Demo(args) => {
            let options = args.options(&config);
            let summary = demo::run(config, options).await?;
            print!("{summary}");
            Ok(())
        }
        Command::Run => crate::run::run(config).await,
        Command::Produce(args) => produce(args, &config).await,
        Command::Replay(args) => replay(args, &config).await,
        Command::Report(args) => {
            let options = args.options(&config)?;
            // At ERROR, so that a scheduled report that fails raises the stack's errors alarm
            // (its metric filter counts ERROR lines of the task's log).
            let outcome = crate::report::run(&config, options).await.inspect_err(
                |error| tracing::error!(error = %format!("{error:#}"), "The report failed."),
            )?;
            print!("{outcome}");
            Ok(())
        }
        Command::Compact(args) => {
            let outcome = crate::compact::run(&config, args.options())
                .await
                .inspect_err(|error| {
                    // A date another run holds is no failure of this one to log: the one line
                    // on stderr says who holds it.
                    let locked = matches!(
                        error.downcast_ref(),
                        Some(crate::compact::CompactError::Locked { .. })
                    );
                    if !locked {
                        tracing::error!(error = %format!("{error:#}"), "The compaction failed.")
                    }
                })?;
            print!("{outcome}");
            Ok(())
        }
        Command::Health {
            address,
            ignore_refusals,
        } => {
            let answer = crate::health::endpoint::check(&address).await?;
            println!("{}", answer.body);
            anyhow::ensure!(
                answer.healthy || (ignore_refusals && !answer.restart_helps),
                "{address} is not healthy"
            );
            Ok(())
        }
    }
}

/// Reports a failed command on stderr and gives the process's exit code: 2 for settings refused
/// at start (nothing ran, and a restart will not help), one line per refusal; 1 for any other
/// failure.
pub fn fail(error: &anyhow::Error) -> ExitCode {
    match error.downcast_ref::<ConfigError>() {
        Some(error) => {
            for line in error.lines() {
                eprintln!("error: {line}");
            }
            ExitCode::from(2)
        }
        None => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Where `--stream`, `--topic` and `--dry-run` say to write.
fn destination<'a>(
    stream: Option<&'a str>,
    topic: Option<&'a str>,
    dry_run: bool,
) -> anyhow::Result<Destination<'a>> {
    Ok(match (dry_run, stream, topic) {
        (true, _, _) => Destination::DryRun,
        (false, Some(stream), None) => Destination::Kinesis(stream),
        (false, None, Some(topic)) => Destination::Kafka(topic),
        _ => anyhow::bail!("one of --stream, --topic or --dry-run is required"),
    })
}

async fn produce(args: ProduceArgs, config: &Config) -> anyhow::Result<()> {
    let to = destination(args.stream.as_deref(), args.topic.as_deref(), args.dry_run)?;
    let sink = producer::sink(to, &config.kafka).await?;
    let (stats, result) = match args.source {
        Source::Simulator => {
            let symbols: usize = args.symbols.parse().map_err(|_| {
                anyhow::anyhow!(
                    "--symbols: the simulator takes a number of symbols, got {:?}",
                    args.symbols
                )
            })?;
            anyhow::ensure!(symbols > 0, "--symbols must be at least 1");
            anyhow::ensure!(
                (0.0..1.0).contains(&args.malformed_rate),
                "--malformed-rate must be in [0, 1)"
            );
            anyhow::ensure!(
                args.jumps_per_session.is_finite() && args.jumps_per_session >= 0.0,
                "--jumps-per-session must be a number, 0 or more"
            );
            let simulator = SimulatorConfig {
                symbols,
                seed: args.seed,
                // Live event time: now, advancing at the target rate.
                start_time_ms: chrono::Utc::now().timestamp_millis(),
                tick_interval_ms: match args.rate {
                    0 => 1.0,
                    rate => 1000.0 / f64::from(rate),
                },
                malformed_rate: args.malformed_rate,
                jumps_per_session: args.jumps_per_session,
                ..SimulatorConfig::default()
            };
            let run = SimulatedRun {
                simulator,
                rate: args.rate,
                count: args.count,
                duration: args.duration,
                progress: !args.no_progress,
            };
            producer::simulated::produce(run, sink).await
        }
        Source::Yahoo => {
            let symbols: Vec<String> = args
                .symbols
                .split(',')
                .map(|s| s.trim().to_ascii_uppercase())
                .filter(|s| !s.is_empty())
                .collect();
            anyhow::ensure!(
                symbols.iter().all(|s| s.parse::<usize>().is_err()),
                "--symbols: the yahoo source takes ticker symbols, e.g. AAPL,MSFT"
            );
            let run = YahooRun {
                symbols,
                quote_url: args.quote_url,
                interval: args.interval,
                count: args.count,
                duration: args.duration,
                progress: !args.no_progress,
            };
            producer::yahoo::produce(run, sink).await
        }
    };
    report(&stats, result)
}

async fn replay(args: ReplayArgs, config: &Config) -> anyhow::Result<()> {
    if let Some(speed) = args.speed {
        anyhow::ensure!(speed > 0.0, "--speed must be positive");
    }
    let files = producer::replay::expand(&args.files)?;
    anyhow::ensure!(!files.is_empty(), "no CSV files in {:?}", args.files);
    let (ticks, bad_lines) = producer::replay::load(&files, args.symbol.as_deref());
    for bad in &bad_lines {
        eprintln!("{bad}");
    }
    if args.strict && !bad_lines.is_empty() {
        anyhow::bail!(
            "{} malformed lines (--strict): nothing sent",
            bad_lines.len()
        );
    }
    let to = destination(args.stream.as_deref(), args.topic.as_deref(), args.dry_run)?;
    let sink = producer::sink(to, &config.kafka).await?;
    let (stats, result) =
        producer::replay::replay(ticks, args.speed, sink, !args.no_progress).await;
    if !bad_lines.is_empty() {
        println!("skipped   {} malformed lines", bad_lines.len());
    }
    report(&stats, result)
}

/// Prints the summary; a run that could not send everything fails.
fn report(stats: &Stats, result: Result<(), ProducerError>) -> anyhow::Result<()> {
    print!("{stats}");
    result?;
    anyhow::ensure!(stats.failed == 0, "{} records were not sent", stats.failed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo_args(args: &[&str]) -> DemoArgs {
        let cli = Cli::try_parse_from([&["kinetick", "demo"], args].concat()).unwrap();
        match cli.command {
            Command::Demo(args) => args,
            other => panic!("parsed {other:?}"),
        }
    }

    fn report_args(args: &[&str]) -> Result<ReportArgs, clap::Error> {
        let cli = Cli::try_parse_from([&["kinetick", "report"], args].concat())?;
        match cli.command {
            Command::Report(args) => Ok(args),
            other => panic!("parsed {other:?}"),
        }
    }

    #[test]
    fn report_uploads_beside_an_s3_lake_and_publishes_to_the_alert_topic_by_default() {
        let mut config = Config::default();
        let topic = "arn:aws:sns:us-east-1:123456789012:kinetick-alerts";
        config.aws.topic_arn = Some(topic.to_owned());
        let lake = ["--lake", "s3://market/lake"];
        let options =
            report_args(&[&lake[..], &["--upload", "--publish", "--date", "today"]].concat())
                .unwrap()
                .options(&config)
                .unwrap();
        assert_eq!(options.upload.as_deref(), Some("s3://market/lake"));
        assert_eq!(options.publish.as_deref(), Some(topic));
        assert_eq!(options.out, None);
        assert_eq!(options.date.as_deref(), Some("today"));

        let options = report_args(&[
            "--lake",
            "out",
            "--out",
            "report",
            "--upload",
            "s3://reports",
            "--publish",
            "arn:x",
        ])
        .unwrap()
        .options(&Config::default())
        .unwrap();
        assert_eq!(options.upload.as_deref(), Some("s3://reports"));
        assert_eq!(options.publish.as_deref(), Some("arn:x"));
    }

    #[test]
    fn report_refuses_what_it_cannot_resolve() {
        let config = Config::default();
        // Nowhere to write.
        assert!(report_args(&["--lake", "out"]).is_err());
        // A range has no one dt= folder.
        assert!(
            report_args(&[
                "--lake",
                "s3://b",
                "--upload",
                "--date",
                "2026-01-05",
                "--to",
                "2026-01-06"
            ])
            .is_err()
        );
        // No bucket beside a directory, no topic set.
        let no_bucket = report_args(&["--lake", "out", "--upload"])
            .unwrap()
            .options(&config);
        assert!(
            no_bucket
                .unwrap_err()
                .to_string()
                .contains("--upload s3://bucket/prefix")
        );
        let no_topic = report_args(&["--lake", "s3://b", "--upload", "--publish"])
            .unwrap()
            .options(&config);
        assert!(
            no_topic
                .unwrap_err()
                .to_string()
                .contains("KINETICK_AWS__TOPIC_ARN")
        );
    }

    #[test]
    fn compact_takes_sizes_with_units_and_needs_a_date() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from([&["kinetick", "compact", "--lake", "out"], args].concat()).map(
                |cli| match cli.command {
                    Command::Compact(args) => args.options(),
                    other => panic!("parsed {other:?}"),
                },
            )
        };
        let options = parse(&["--date", "yesterday"]).unwrap();
        assert_eq!((options.target, options.dry_run), (128_000_000, false));
        let options = parse(&[
            "--date",
            "2026-01-05",
            "--target-size",
            "64MiB",
            "--dry-run",
        ]);
        let options = options.unwrap();
        assert_eq!((options.target, options.dry_run), (64 << 20, true));
        assert!(parse(&[]).is_err(), "a date is required");
        assert!(parse(&["--date", "2026-01-05", "--target-size", "12 parsecs"]).is_err());
    }

    #[test]
    fn demo_output_defaults_to_the_local_dir_setting() {
        let mut config = Config::default();
        assert_eq!(demo_args(&[]).options(&config).out, PathBuf::from("out"));
        config.local.dir = PathBuf::from("/data/kinetick");
        assert_eq!(
            demo_args(&[]).options(&config).out,
            PathBuf::from("/data/kinetick")
        );
        assert_eq!(
            demo_args(&["--out", "elsewhere"]).options(&config).out,
            PathBuf::from("elsewhere")
        );
    }
}
