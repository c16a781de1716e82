//! The metrics publisher: every interval, drains the shared [`Metrics`] into data points and
//! publishes them through the [`MetricsSink`] port (a log line locally, CloudWatch on AWS).

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use backon::Retryable;

use crate::metrics::{Drain, Metrics, MetricsSink};

/// Publish what has been counted now (used at shutdown); resolves when it is published.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct PublishNow;

pub struct MetricsPublisher {
    metrics: Arc<Metrics>,
    sink: Arc<dyn MetricsSink>,
    interval: Duration,
    drain: Drain,
}

impl MetricsPublisher {
    pub fn new(metrics: Arc<Metrics>, sink: Arc<dyn MetricsSink>, interval: Duration) -> Self {
        Self {
            metrics,
            sink,
            interval,
            drain: Drain::default(),
        }
    }

    fn publish(&mut self) -> impl Future<Output = ()> + 'static {
        let data = self.drain.take(&self.metrics);
        let sink = self.sink.clone();
        async move {
            // Metrics are best effort: a few retries, then the interval's data is dropped with a
            // warning, never a fatal error.
            let published = (|| sink.publish(&data))
                .retry(crate::retry::backoff().with_max_times(3))
                .when(|e| e.retryable)
                .await;
            if let Err(error) = published {
                tracing::warn!(%error, "Metrics publish failed.");
            }
        }
    }
}

impl Actor for MetricsPublisher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(self.interval, |act, ctx| {
            ctx.wait(act.publish().into_actor(act));
        });
    }
}

impl Handler<PublishNow> for MetricsPublisher {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, _: PublishNow, _: &mut Context<Self>) -> Self::Result {
        let publish: std::pin::Pin<Box<dyn Future<Output = ()>>> = Box::pin(self.publish());
        AtomicResponse::new(Box::pin(publish.into_actor(self)))
    }
}
