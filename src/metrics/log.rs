//! The local metrics sink: one structured log line per interval with the non-zero values.

use async_trait::async_trait;

use super::{Datum, MetricsError, MetricsSink};

#[derive(Debug, Default)]
pub struct LogMetricsSink;

#[async_trait]
impl MetricsSink for LogMetricsSink {
    async fn publish(&self, data: &[Datum]) -> Result<(), MetricsError> {
        let summary: Vec<String> = data
            .iter()
            .filter(|datum| datum.value.sum != 0.0)
            .map(|datum| match (&datum.dimension, datum.value.count) {
                (Some(dimension), _) => {
                    format!("{}[{}]={}", datum.name, dimension.value(), datum.value.sum)
                }
                (None, 1) => format!("{}={}", datum.name, datum.value.sum),
                (None, n) => format!(
                    "{}(avg={:.1},max={:.1},n={n})",
                    datum.name,
                    datum.value.sum / n as f64,
                    datum.value.max
                ),
            })
            .collect();
        tracing::info!(metrics = %summary.join(" "), "Metrics.");
        Ok(())
    }
}
