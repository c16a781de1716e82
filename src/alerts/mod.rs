//! The alert port: where anomaly and trend alerts are published.
//!
//! Implementations: stdout plus a JSON-lines file ([`local::LocalAlertSink`]) and SNS.

pub mod local;
pub mod log;
pub mod sns;

use async_trait::async_trait;
use backon::Retryable;
use futures::future::{BoxFuture, FutureExt};
use futures::{StreamExt, TryStreamExt};

use crate::model::rules::Alert;

/// `publish` calls in flight at once in [`AlertSink::publish_all`]'s default.
const PUBLISH_CONCURRENCY: usize = 16;

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

    /// Publishes a batch, retrying what fails while it may succeed; all delivered when this
    /// returns Ok. By default each alert is published and retried on its own, several at a time
    /// (retrying a whole batch would deliver its delivered alerts twice, an SNS message each).
    /// A sink whose batch write is all or nothing writes the batch at once instead.
    async fn publish_all(&self, alerts: &[Alert]) -> Result<(), AlertError> {
        // Boxed up front: with a stream that maps each alert to its future, the compiler cannot
        // prove this whole future `Send` (its check of closures over borrowed items is too
        // strict).
        let publishes: Vec<BoxFuture<'_, Result<(), AlertError>>> = alerts
            .iter()
            .map(|alert| {
                (move || self.publish(alert))
                    .retry(crate::retry::backoff())
                    .when(|e| e.is_retryable())
                    .notify(|e, wait| tracing::warn!(error = %e, ?wait, "Alert publish failed, retrying."))
                    .boxed()
            })
            .collect();
        futures::stream::iter(publishes)
            .buffer_unordered(PUBLISH_CONCURRENCY)
            .try_collect::<()>()
            .await
    }
}
