//! The alert port: where anomaly and trend alerts are published.
//!
//! Implementations: stdout plus a JSON-lines file ([`local::LocalAlertSink`]) and SNS.

pub mod local;
pub mod log;
pub mod sns;

use async_trait::async_trait;
use futures::StreamExt;
use futures::future::{BoxFuture, FutureExt};

use crate::failure::Failure;
use crate::model::rules::Alert;

/// `publish` calls in flight at once in [`AlertSink::publish_all`]'s default.
const PUBLISH_CONCURRENCY: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("alert {alert_id} could not be published: {message}")]
    Publish {
        alert_id: String,
        message: String,
        failure: Failure,
    },
}

impl AlertError {
    pub fn failure(&self) -> Failure {
        match self {
            AlertError::Publish { failure, .. } => *failure,
        }
    }

    pub fn is_retryable(&self) -> bool {
        self.failure() == Failure::Transient
    }

    /// The same error, taken as the topic refusing every alert rather than this one.
    pub fn as_refusal_of_the_topic(&self) -> AlertError {
        match self {
            AlertError::Publish {
                alert_id, message, ..
            } => AlertError::Publish {
                alert_id: alert_id.clone(),
                message: format!("the topic refuses every alert: {message}"),
                failure: Failure::Refused,
            },
        }
    }
}

#[async_trait]
pub trait AlertSink: Send + Sync + 'static {
    /// Publishes one alert; delivered when this returns.
    async fn publish(&self, alert: &Alert) -> Result<(), AlertError>;

    /// Publishes a batch once (the caller retries what fails): the alerts that were not
    /// delivered, by index, with their errors; empty when all were. By default each alert is
    /// published on its own, several at a time (retrying a whole batch would deliver its
    /// delivered alerts twice, an SNS message each). A sink whose batch write is all or nothing
    /// writes the batch at once instead, and fails every alert with its one error.
    async fn publish_all(&self, alerts: &[Alert]) -> Vec<(usize, AlertError)> {
        // Boxed up front: with a stream that maps each alert to its future, the compiler cannot
        // prove this whole future `Send` (its check of closures over borrowed items is too
        // strict).
        let publishes: Vec<BoxFuture<'_, Option<(usize, AlertError)>>> = alerts
            .iter()
            .enumerate()
            .map(|(index, alert)| {
                async move { self.publish(alert).await.err().map(|e| (index, e)) }.boxed()
            })
            .collect();
        futures::stream::iter(publishes)
            .buffer_unordered(PUBLISH_CONCURRENCY)
            .filter_map(futures::future::ready)
            .collect()
            .await
    }
}
