//! Alerts as log lines only: what `kinetick run` does when no SNS topic is configured.

use async_trait::async_trait;

use super::{AlertError, AlertSink};
use crate::model::rules::Alert;

#[derive(Debug, Default)]
pub struct LogAlertSink;

#[async_trait]
impl AlertSink for LogAlertSink {
    async fn publish(&self, alert: &Alert) -> Result<(), AlertError> {
        tracing::info!(alert_id = %alert.id, symbol = %alert.symbol, kind = ?alert.kind, severity = ?alert.severity,
            message = %alert.message, "Alert.");
        Ok(())
    }
}
