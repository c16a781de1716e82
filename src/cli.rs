//! The command line: global options and one subcommand per job.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::Config;
use crate::demo::{self, DemoOptions};
use crate::telemetry::{LogFormat, LogTarget};

#[derive(Debug, Parser)]
#[command(
    name = "kinetick",
    version,
    about = "Stream processor for market ticks: Kinesis in; DynamoDB, S3 Parquet, SNS and CloudWatch out."
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
    /// Run the pipeline on AWS: read the Kinesis stream, write DynamoDB, S3, SNS and CloudWatch
    /// (what the ECS task runs; configured by file and `KINETICK_...` variables).
    Run,
    /// Ask a running pipeline's health endpoint; exits 0 when healthy (the container check).
    Health {
        /// `host:port` of the endpoint.
        #[arg(long, default_value = "127.0.0.1:8080")]
        address: String,
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
    /// Output directory: Parquet lake, ticks table, alerts, dead letters and checkpoints.
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
    /// Simulator seed: the same seed gives the same market.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// No live progress line.
    #[arg(long)]
    pub no_progress: bool,
}

impl Command {
    /// Where this command logs.
    pub fn log_target(&self) -> LogTarget {
        match self {
            Command::Demo(_) | Command::Health { .. } => LogTarget::Stderr,
            Command::Run => LogTarget::Stdout,
        }
    }

    /// Log level unless `RUST_LOG` says otherwise.
    pub fn default_log_level(&self) -> &'static str {
        match self {
            Command::Demo(_) | Command::Health { .. } => "warn",
            Command::Run => "info",
        }
    }
}

/// Runs the chosen command; must run inside an actix `System`.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Demo(args) => {
            let options = DemoOptions {
                ticks: args.ticks,
                symbols: args.symbols,
                shards: args.shards,
                out: args.out,
                seed: args.seed,
                progress: !args.no_progress,
            };
            let summary = demo::run(config, options).await?;
            print!("{summary}");
            Ok(())
        }
        Command::Run => crate::run::run(config).await,
        Command::Health { address } => {
            anyhow::ensure!(
                crate::health::check(&address).await?,
                "{address} is not healthy"
            );
            Ok(())
        }
    }
}
