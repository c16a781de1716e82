//! The alert port: where anomaly and trend alerts are published.
//!
//! Implementations: stdout plus a JSON-lines file ([`local::LocalAlertSink`]) and SNS.

pub mod local;
pub mod log;
pub mod sns;

use async_trait::async_trait;

use crate::model::rules::Alert;

#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("alert {alert_id} could not be published: {message}")]
    Publish {
        alert_id: String,
        message: String,
        retryable: bool,
    },
}

impl AlertError {
    pub fn is_retryable(&self) -> bool {
        match self {
            AlertError::Publish { retryable, .. } => *retryable,
        }
    }
}

#[async_trait]
pub trait AlertSink: Send + Sync + 'static {
    /// Publishes one alert; delivered when this returns.
    async fn publish(&self, alert: &Alert) -> Result<(), AlertError>;
}
