//! Logging: structured JSON where logs are collected (ECS, CI, files), readable lines on a
//! terminal. `RUST_LOG` overrides the command's default level.

use std::io::IsTerminal;

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
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
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
            .with_writer(std::io::stderr)
            .try_init(),
        (false, LogTarget::Stdout) => builder.compact().with_writer(std::io::stdout).try_init(),
        (false, LogTarget::Stderr) => builder.compact().with_writer(std::io::stderr).try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    drop(result);
}
