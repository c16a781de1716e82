//! Metrics as CloudWatch custom metrics: `PutMetricData` with statistic sets, in requests within
//! the API's limits, under a configurable namespace. Dimensions: `ShardId` or `WorkerId`.

use async_trait::async_trait;
use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit, Statistic, StatisticSet};

use super::{Datum, MetricsError, MetricsSink, Unit};
use crate::aws;

/// Data points per request (the API takes up to 1,000 and 1 MB).
const DATA_PER_REQUEST: usize = 500;

pub struct CloudWatchMetricsSink {
    client: Client,
    namespace: String,
}

impl CloudWatchMetricsSink {
    pub fn new(client: Client, namespace: impl Into<String>) -> Self {
        Self {
            client,
            namespace: namespace.into(),
        }
    }
}

/// The sum of `metric` (without a dimension) under `namespace` over the day that starts at
/// `day_start_ms`: what a command run after the fact (the daily digest) reads back of what the
/// tasks published.
pub async fn day_sum(
    client: &Client,
    namespace: &str,
    metric: &str,
    day_start_ms: i64,
) -> Result<f64, MetricsError> {
    const DAY_S: i32 = 86_400;
    let statistics = client
        .get_metric_statistics()
        .namespace(namespace)
        .metric_name(metric)
        .start_time(DateTime::from_millis(day_start_ms))
        .end_time(DateTime::from_millis(
            day_start_ms + i64::from(DAY_S) * 1000,
        ))
        .period(DAY_S)
        .statistics(Statistic::Sum)
        .send()
        .await
        .map_err(|error| MetricsError {
            retryable: aws::is_retryable(&error),
            message: aws::describe(&error),
        })?;
    Ok(statistics.datapoints().iter().filter_map(|d| d.sum()).sum())
}

fn unit(unit: Unit) -> StandardUnit {
    match unit {
        Unit::Count => StandardUnit::Count,
        Unit::Bytes => StandardUnit::Bytes,
        Unit::Milliseconds => StandardUnit::Milliseconds,
    }
}

fn metric_datum(datum: &Datum, timestamp: DateTime) -> MetricDatum {
    let value = datum.value;
    let statistics = StatisticSet::builder()
        .sample_count(value.count as f64)
        .sum(value.sum)
        .minimum(value.min)
        .maximum(value.max)
        .build();
    let mut builder = MetricDatum::builder()
        .metric_name(datum.name)
        .unit(unit(datum.unit))
        .timestamp(timestamp)
        .statistic_values(statistics);
    if let Some(dimension) = &datum.dimension {
        builder = builder.dimensions(
            Dimension::builder()
                .name(dimension.name())
                .value(dimension.value())
                .build(),
        );
    }
    builder.build()
}

#[async_trait]
impl MetricsSink for CloudWatchMetricsSink {
    async fn publish(&self, data: &[Datum]) -> Result<(), MetricsError> {
        let timestamp = DateTime::from_millis(chrono::Utc::now().timestamp_millis());
        for chunk in data.chunks(DATA_PER_REQUEST) {
            let data = chunk
                .iter()
                .map(|datum| metric_datum(datum, timestamp))
                .collect();
            self.client
                .put_metric_data()
                .namespace(&self.namespace)
                .set_metric_data(Some(data))
                .send()
                .await
                .map_err(|error| MetricsError {
                    retryable: aws::is_retryable(&error),
                    message: aws::describe(&error),
                })?;
        }
        Ok(())
    }
}
