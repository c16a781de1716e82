//! Alerts as one log line on stdout each and one JSON line each in a file.
//!
//! In: [`Alert`]s. Out: the serde JSON of each alert appended to a JSON-lines file (the record a
//! demo or a test reads back with [`LocalAlertSink::read`]) and, optionally, a human line such as
//! `ALERT warning AAPL price crossed threshold 412.75 (now 413.10)` on stdout.
//!
//! The file is written like the local ticks table: appends are all or nothing, a torn last line
//! from a crash is skipped on read and cut on reopen. No de-duplication here: a replay after a
//! crash appends the same alert (same id) again, and readers that care de-duplicate by `id`.
//!
//! Durability: `publish` returns once the line is handed to the OS (survives `kill -9`);
//! [`LocalAlertSink::with_fsync`] also syncs the file (power loss).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::Serialize;

use super::{AlertError, AlertSink};
use crate::failure::Failure;
use crate::local_files::is_transient;
use crate::local_files::{LineLog, complete_lines};
use crate::model::rules::Alert;

/// Errors of opening and reading the alert file; publishing reports [`AlertError`].
#[derive(Debug, thiserror::Error)]
pub enum AlertLogError {
    #[error("alert file {} could not be opened: {source}", path.display())]
    Open { path: PathBuf, source: io::Error },
    #[error("alert file {} could not be read: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("alert file {}, line {line}: {message}", path.display())]
    Corrupt {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// The local alert sink: a JSON-lines file, plus stdout when `print` is on.
#[derive(Debug)]
pub struct LocalAlertSink {
    log: LineLog,
    print: bool,
}

impl LocalAlertSink {
    /// Opens (or creates) the alert file, creating its parent directories. With `print`, each
    /// alert is also shown on stdout for a person watching the demo.
    pub fn new(jsonl_path: impl Into<PathBuf>, print: bool) -> Result<Self, AlertLogError> {
        let path = jsonl_path.into();
        let log = LineLog::open(&path).map_err(|source| AlertLogError::Open { path, source })?;
        Ok(Self { log, print })
    }

    /// Also `fsync` the file before `publish` returns (off by default).
    pub fn with_fsync(mut self, fsync: bool) -> Self {
        self.log.fsync = fsync;
        self
    }

    pub fn path(&self) -> &Path {
        self.log.path()
    }

    /// Every alert in the file, in publish order, duplicates included; a torn last line is
    /// skipped with a warning.
    pub async fn read(path: impl AsRef<Path>) -> Result<Vec<Alert>, AlertLogError> {
        let path = path.as_ref();
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|source| AlertLogError::Read {
                path: path.to_owned(),
                source,
            })?;
        complete_lines(path, &bytes)
            .enumerate()
            .map(|(index, line)| {
                serde_json::from_slice(line).map_err(|e| AlertLogError::Corrupt {
                    path: path.to_owned(),
                    line: index + 1,
                    message: e.to_string(),
                })
            })
            .collect()
    }
}

impl LocalAlertSink {
    /// Appends the alerts' lines, all or nothing (the log cuts a failed append back), then
    /// prints them.
    async fn append(&self, alerts: &[Alert]) -> Result<(), AlertError> {
        let Some(first) = alerts.first() else {
            return Ok(());
        };
        let error = |message: String, failure: Failure| AlertError::Publish {
            alert_id: first.id.clone(),
            message,
            failure,
        };
        let mut lines = Vec::with_capacity(alerts.len() * 256);
        for alert in alerts {
            serde_json::to_writer(&mut lines, alert).map_err(|e| {
                error(
                    format!("cannot encode alert {}: {e}", alert.id),
                    Failure::ItemRefused,
                )
            })?;
            lines.push(b'\n');
        }
        let written = match self.log.append(&lines).await {
            Ok(()) => self.log.sync().await,
            Err(e) => Err(e),
        };
        written.map_err(|e| {
            let what = match alerts.len() {
                1 => String::new(),
                n => format!("(with {} more) ", n - 1),
            };
            error(
                format!("{what}{}: {e}", self.log.path().display()),
                Failure::from_retryable(is_transient(&e)),
            )
        })?;
        if self.print {
            let text: String = alerts.iter().map(|a| human_line(a) + "\n").collect();
            // The file is the record; a closed stdout (`kinetick demo | head`) must not fail
            // the alert or panic as `println!` would.
            if let Err(e) = io::stdout().lock().write_all(text.as_bytes()) {
                tracing::debug!(error = %e, "Could not print alerts to stdout.");
            }
        }
        Ok(())
    }
}

#[async_trait]
impl AlertSink for LocalAlertSink {
    async fn publish(&self, alert: &Alert) -> Result<(), AlertError> {
        self.append(std::slice::from_ref(alert)).await
    }

    /// The whole batch in one append: it is all or nothing, so retrying it writes no alert
    /// twice.
    async fn publish_all(&self, alerts: &[Alert]) -> Vec<(usize, AlertError)> {
        match self.append(alerts).await {
            Ok(()) => Vec::new(),
            Err(error) => {
                let failure = error.failure();
                let message = error.to_string();
                let each = |(index, alert): (usize, &Alert)| {
                    let error = AlertError::Publish {
                        alert_id: alert.id.clone(),
                        message: message.clone(),
                        failure,
                    };
                    (index, error)
                };
                alerts.iter().enumerate().map(each).collect()
            }
        }
    }
}

/// `ALERT <severity> <message>`, falling back to the measured fields when there is no message.
fn human_line(alert: &Alert) -> String {
    let severity = serde_name(&alert.severity);
    if alert.message.is_empty() {
        format!(
            "ALERT {severity} {} {} {} (threshold {})",
            alert.symbol,
            serde_name(&alert.kind),
            alert.value,
            alert.threshold
        )
    } else {
        format!("ALERT {severity} {}", alert.message)
    }
}

/// The serde name of a unit enum variant (`warning`, `price_above`), as the JSON line holds it.
fn serde_name(value: &impl Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => "?".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::rules::{AlertKind, Severity};

    fn alert(id: &str, severity: Severity) -> Alert {
        Alert {
            id: id.to_owned(),
            symbol: "AAPL".into(),
            kind: AlertKind::PriceAbove,
            severity,
            event_time_ms: 1_767_623_400_000,
            price: 413.10,
            value: 413.10,
            threshold: 412.75,
            message: "AAPL price crossed threshold 412.75 (now 413.10)".to_owned(),
        }
    }

    fn sink(print: bool) -> (tempfile::TempDir, LocalAlertSink) {
        let dir = tempfile::tempdir().unwrap();
        let sink = LocalAlertSink::new(dir.path().join("out/alerts.jsonl"), print).unwrap();
        (dir, sink)
    }

    #[tokio::test]
    async fn published_alerts_are_json_lines_that_parse_back() {
        let (_dir, sink) = sink(false);
        let alerts = [
            alert("a1", Severity::Warning),
            alert("a2", Severity::Critical),
        ];
        for a in &alerts {
            sink.publish(a).await.unwrap();
        }
        assert_eq!(LocalAlertSink::read(sink.path()).await.unwrap(), alerts);
        let text = std::fs::read_to_string(sink.path()).unwrap();
        assert_eq!(text.lines().count(), 2);
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["severity"], "warning");
        assert_eq!(first["kind"], "price_above");
    }

    #[tokio::test]
    async fn a_batch_is_appended_in_order_after_what_was_there() {
        let (_dir, sink) = sink(true);
        sink.publish(&alert("a0", Severity::Info)).await.unwrap();
        let batch: Vec<_> = (1..=3)
            .map(|i| alert(&format!("a{i}"), Severity::Warning))
            .collect();
        assert!(sink.publish_all(&batch).await.is_empty());
        assert!(sink.publish_all(&[]).await.is_empty());
        let ids: Vec<_> = LocalAlertSink::read(sink.path())
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.id)
            .collect();
        assert_eq!(ids, ["a0", "a1", "a2", "a3"]);
    }

    #[tokio::test]
    async fn reopening_appends_and_keeps_earlier_alerts() {
        let (_dir, sink) = sink(false);
        let path = sink.path().to_owned();
        sink.publish(&alert("a1", Severity::Info)).await.unwrap();
        drop(sink);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"id\":\"torn")
            .unwrap();
        assert_eq!(LocalAlertSink::read(&path).await.unwrap().len(), 1);

        let sink = LocalAlertSink::new(&path, false).unwrap();
        sink.publish(&alert("a2", Severity::Info)).await.unwrap();
        let ids: Vec<_> = LocalAlertSink::read(&path)
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.id)
            .collect();
        assert_eq!(ids, ["a1", "a2"]);
    }

    #[tokio::test]
    async fn printing_does_not_change_the_file() {
        let (_dir, sink) = sink(true);
        sink.publish(&alert("a1", Severity::Warning)).await.unwrap();
        assert_eq!(LocalAlertSink::read(sink.path()).await.unwrap().len(), 1);
    }

    #[test]
    fn the_human_line_leads_with_the_severity() {
        assert_eq!(
            human_line(&alert("a1", Severity::Warning)),
            "ALERT warning AAPL price crossed threshold 412.75 (now 413.10)"
        );
        let mut bare = alert("a2", Severity::Critical);
        bare.message.clear();
        assert_eq!(
            human_line(&bare),
            "ALERT critical AAPL price_above 413.1 (threshold 412.75)"
        );
    }
}
