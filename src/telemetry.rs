//! Logging: structured JSON where logs are collected (ECS, CI, files), readable lines on a
//! terminal. `RUST_LOG` overrides the command's default level.

use std::io::{self, IsTerminal, Write};
use std::sync::{Mutex, PoisonError};

use indicatif::ProgressBar;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// JSON unless the log stream is a terminal.
    Auto,
    Json,
    Pretty,
}

/// Where log lines go: stdout for services (CloudWatch Logs reads it), stderr for commands whose
/// stdout is their output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTarget {
    Stdout,
    Stderr,
}

pub fn init(format: LogFormat, target: LogTarget, default_level: &str) {
    let mut directives =
        std::env::var(EnvFilter::DEFAULT_ENV).unwrap_or_else(|_| default_level.to_owned());
    // The Kafka client logs every connection it opens at info: kept for those who ask for it.
    if !directives.contains("rskafka") {
        directives.push_str(",rskafka=warn");
    }
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new(default_level));
    let is_terminal = match target {
        LogTarget::Stdout => std::io::stdout().is_terminal(),
        LogTarget::Stderr => std::io::stderr().is_terminal(),
    };
    let json = match format {
        LogFormat::Auto => !is_terminal,
        LogFormat::Json => true,
        LogFormat::Pretty => false,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(is_terminal && !json);
    let result = match (json, target) {
        (true, LogTarget::Stdout) => builder
            .json()
            .with_current_span(true)
            .with_writer(std::io::stdout)
            .try_init(),
        (true, LogTarget::Stderr) => builder
            .json()
            .with_current_span(true)
            .with_writer(|| AboveProgressBar)
            .try_init(),
        (false, LogTarget::Stdout) => builder.compact().with_writer(std::io::stdout).try_init(),
        (false, LogTarget::Stderr) => builder
            .compact()
            .with_writer(|| AboveProgressBar)
            .try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    drop(result);
}

/// The progress bar on stderr while one is shown.
static PROGRESS_BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Names the progress bar shown on stderr (`None` once it is gone), so that log lines are
/// printed above it instead of through it.
pub fn set_progress_bar(bar: Option<ProgressBar>) {
    *PROGRESS_BAR.lock().unwrap_or_else(PoisonError::into_inner) = bar;
}

/// Stderr, with each log line printed above the progress bar if one is shown: the bar is cleared,
/// the line written and the bar drawn again below it. The logger writes a line in one call.
struct AboveProgressBar;

impl Write for AboveProgressBar {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let bar = PROGRESS_BAR
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match bar {
            Some(bar) => bar.suspend(|| io::stderr().write_all(line))?,
            None => io::stderr().write_all(line)?,
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}
