//! Logging: structured JSON where logs are collected (ECS, CI, files), readable lines on a
//! terminal. `RUST_LOG` overrides the command's default level.
//!
//! Each actor logs inside its span ([`crate::actors::span`]): a JSON line has the span's fields
//! (`shard_id`, …) among its own `fields` ([`json`]); a terminal line shows the span's name
//! before the message and its fields after the line's own.

mod json;

use std::io::{self, IsTerminal, Write};
use std::sync::{Mutex, PoisonError};

use indicatif::ProgressBar;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::JsonFields;

pub use self::json::JsonLines;

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
            .fmt_fields(JsonFields::new())
            .event_format(JsonLines)
            .with_writer(std::io::stdout)
            .try_init(),
        (true, LogTarget::Stderr) => builder
            .fmt_fields(JsonFields::new())
            .event_format(JsonLines)
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

/// Log lines written to memory, as `init` formats them.
#[cfg(test)]
pub(crate) mod testing {
    use std::io::{self, Write};
    use std::sync::{Arc, Mutex};

    use tracing::Subscriber;
    use tracing_subscriber::fmt::format::JsonFields;

    use super::JsonLines;

    #[derive(Clone, Default)]
    pub struct CapturedLines(Arc<Mutex<Vec<u8>>>);

    impl CapturedLines {
        pub fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }

        /// Every line, each parsed as JSON.
        pub fn json(&self) -> Vec<serde_json::Value> {
            let text = self.text();
            let lines = text.lines().map(|line| serde_json::from_str(line).unwrap());
            lines.collect()
        }
    }

    impl Write for CapturedLines {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// JSON lines of every level into `lines`.
    pub fn json_subscriber(lines: &CapturedLines) -> impl Subscriber + Send + Sync + 'static {
        let lines = lines.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .fmt_fields(JsonFields::new())
            .event_format(JsonLines)
            .with_writer(move || lines.clone())
            .finish()
    }

    /// Terminal lines (without colours) of every level into `lines`.
    pub fn pretty_subscriber(lines: &CapturedLines) -> impl Subscriber + Send + Sync + 'static {
        let lines = lines.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .compact()
            .with_writer(move || lines.clone())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{CapturedLines, pretty_subscriber};
    use crate::actors::span;
    use crate::lease::Fence;

    #[test]
    fn a_terminal_line_shows_its_span_and_the_span_fields() {
        let captured = CapturedLines::default();
        let fence = Fence {
            shard_id: "shardId-000000000003".into(),
            owner: "worker-1".into(),
            counter: 2,
        };
        tracing::subscriber::with_default(pretty_subscriber(&captured), || {
            let _reader = span::shard_reader(&fence).entered();
            tracing::info!(shard_end = true, "Shard reader finished.");
        });
        let line = captured.text();
        assert!(line.contains("shard_reader"), "{line}");
        assert!(
            line.contains("Shard reader finished. shard_end=true"),
            "{line}"
        );
        assert!(
            line.contains("shard_id=shardId-000000000003 generation=2"),
            "{line}"
        );
    }
}
