//! The two sets of ports, side by side: one implementation of every outside service the pipeline
//! talks to. In: settings (and, on AWS, the SDK's configuration). Out: a [`Ports`] that
//! [`Pipeline::start`](crate::pipeline::Pipeline::start) connects its stages to.
//!
//! | port          | local ([`Ports::local`], `kinetick demo`) | AWS ([`Ports::aws`], `kinetick run`) |
//! |---------------|--------------------------------------------|--------------------------------------|
//! | `stream`      | the caller's (in-process stream)           | Kinesis, or a Kafka topic            |
//! | `leases`      | memory (one worker)                        | DynamoDB (lease and checkpoint table)|
//! | `checkpoints` | `dir/checkpoints/*.json`                   | DynamoDB, large snapshots in S3      |
//! | `table`       | `dir/table/ticks.jsonl`                    | DynamoDB ticks table                 |
//! | `objects`     | files under `dir`                          | S3                                   |
//! | `alerts`      | `dir/alerts.jsonl` (and stdout)            | SNS, or the log without a topic      |
//! | `metrics`     | the log                                    | CloudWatch                           |

use std::path::Path;
use std::sync::Arc;

use aws_config::SdkConfig;

use crate::alerts::AlertSink;
use crate::alerts::local::LocalAlertSink;
use crate::alerts::log::LogAlertSink;
use crate::alerts::sns::SnsAlertSink;
use crate::aws::{self, CountRequests};
use crate::checkpoint::CheckpointStore;
use crate::checkpoint::dynamodb::DynamoCheckpointStore;
use crate::checkpoint::file::FileCheckpointStore;
use crate::config::{AwsConfig, Config, SourceKind};
use crate::lease::LeaseStore;
use crate::lease::dynamodb::DynamoLeaseStore;
use crate::lease::memory::MemoryLeaseStore;
use crate::metrics::cloudwatch::CloudWatchMetricsSink;
use crate::metrics::log::LogMetricsSink;
use crate::metrics::{Counter, Metrics, MetricsSink};
use crate::objects::ObjectStore;
use crate::objects::local::LocalObjectStore;
use crate::objects::s3::S3ObjectStore;
use crate::stream::StreamSource;
use crate::stream::kafka::{self, KafkaStream};
use crate::stream::kinesis::{KinesisStream, Polling};
use crate::table::TicksTable;
use crate::table::dynamodb::DynamoTicksTable;
use crate::table::file::FileTicksTable;

/// The S3 object store of `bucket`, with the S3 settings of `settings` (addressing, timeouts)
/// and its requests counted into `metrics`: the lake of `kinetick run`, and the lake
/// `kinetick report` reads from S3.
pub fn s3_objects(
    settings: &AwsConfig,
    sdk: &SdkConfig,
    bucket: &str,
    metrics: &Arc<Metrics>,
) -> S3ObjectStore {
    let s3_config = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(settings.s3_force_path_style)
        .interceptor(CountRequests::new(metrics, Counter::S3Requests))
        .timeout_config(aws::timeouts(sdk, settings.timeouts.objects))
        .build();
    S3ObjectStore::new(aws_sdk_s3::Client::from_conf(s3_config), bucket)
}

/// The SNS client of the alerts, with the SNS settings of `settings` (timeouts) and its requests
/// counted into `metrics`: the alert topic of `kinetick run`, and the digest `kinetick report`
/// publishes there.
pub fn sns_client(
    settings: &AwsConfig,
    sdk: &SdkConfig,
    metrics: &Arc<Metrics>,
) -> aws_sdk_sns::Client {
    aws_sdk_sns::Client::from_conf(
        aws_sdk_sns::config::Builder::from(sdk)
            .interceptor(CountRequests::new(metrics, Counter::SnsRequests))
            .timeout_config(aws::timeouts(sdk, settings.timeouts.alerts))
            .build(),
    )
}

/// The CloudWatch client of the metrics, with their timeouts and its requests counted into
/// `metrics`: where `kinetick run` publishes, and where `kinetick report` reads what the lake
/// does not hold.
pub fn cloudwatch_client(
    settings: &AwsConfig,
    sdk: &SdkConfig,
    metrics: &Arc<Metrics>,
) -> aws_sdk_cloudwatch::Client {
    aws_sdk_cloudwatch::Client::from_conf(
        aws_sdk_cloudwatch::config::Builder::from(sdk)
            .interceptor(CountRequests::new(metrics, Counter::CloudWatchRequests))
            .timeout_config(aws::timeouts(sdk, settings.timeouts.metrics))
            .build(),
    )
}

/// The DynamoDB checkpoint store of `aws.checkpoint-table`, large snapshots in `objects`, with
/// the checkpoint calls' timeouts and its requests counted into `metrics`: the checkpoints
/// `kinetick run` writes, and those `kinetick compact` reads.
pub fn aws_checkpoints(
    config: &Config,
    sdk: &SdkConfig,
    objects: Arc<dyn ObjectStore>,
    metrics: &Arc<Metrics>,
) -> DynamoCheckpointStore {
    let client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(sdk)
            .interceptor(CountRequests::new(metrics, Counter::DynamoDbRequests))
            .timeout_config(aws::timeouts(sdk, config.aws.timeouts.checkpoints))
            .build(),
    );
    DynamoCheckpointStore::new(
        client,
        &config.aws.checkpoint_table,
        objects,
        &config.lake.prefix,
    )
}

/// One implementation of every port.
#[derive(Clone)]
pub struct Ports {
    pub stream: Arc<dyn StreamSource>,
    pub checkpoints: Arc<dyn CheckpointStore>,
    pub leases: Arc<dyn LeaseStore>,
    pub table: Arc<dyn TicksTable>,
    pub objects: Arc<dyn ObjectStore>,
    pub alerts: Arc<dyn AlertSink>,
    pub metrics: Arc<dyn MetricsSink>,
}

impl Ports {
    /// The local ports under one directory (what `kinetick demo` uses): the lake and dead
    /// letters under `dir`, the ticks table in `dir/table/ticks.jsonl`, alerts in
    /// `dir/alerts.jsonl` (each also printed on stdout with `print_alerts`), checkpoints in
    /// `dir/checkpoints/`, leases in memory (one worker), metrics in the log.
    pub fn local(
        dir: &Path,
        stream: Arc<dyn StreamSource>,
        print_alerts: bool,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            stream,
            checkpoints: Arc::new(FileCheckpointStore::new(dir.join("checkpoints"))),
            leases: Arc::new(MemoryLeaseStore::default()),
            table: Arc::new(FileTicksTable::new(dir.join("table").join("ticks.jsonl"))?),
            objects: Arc::new(LocalObjectStore::new(dir.to_path_buf())),
            alerts: Arc::new(LocalAlertSink::new(dir.join("alerts.jsonl"), print_alerts)?),
            metrics: Arc::new(LogMetricsSink),
        })
    }

    /// The AWS ports (what `kinetick run` uses), named by `config.aws`, with clients from the
    /// SDK's default configuration chain; each client counts its requests into `metrics`.
    pub async fn aws(
        config: &Config,
        sdk: &SdkConfig,
        metrics: &Arc<Metrics>,
    ) -> anyhow::Result<Self> {
        let settings = &config.aws;
        anyhow::ensure!(
            !settings.bucket.is_empty(),
            "aws.bucket is not set (KINETICK_AWS__BUCKET)"
        );
        let counting = |counter| CountRequests::new(metrics, counter);
        let limits = &settings.timeouts;
        let objects: Arc<dyn ObjectStore> =
            Arc::new(s3_objects(settings, sdk, &settings.bucket, metrics));
        // One client per kind of call, each with its own timeouts (they share the connections).
        let dynamodb = |call| {
            aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(sdk)
                    .interceptor(counting(Counter::DynamoDbRequests))
                    .timeout_config(aws::timeouts(sdk, call))
                    .build(),
            )
        };
        Ok(Self {
            stream: aws_stream(config, sdk, metrics).await?,
            leases: Arc::new(DynamoLeaseStore::new(
                dynamodb(config.lease_call_timeout()),
                &settings.checkpoint_table,
            )),
            checkpoints: Arc::new(aws_checkpoints(config, sdk, objects.clone(), metrics)),
            table: Arc::new(DynamoTicksTable::new(
                dynamodb(limits.table),
                &settings.ticks_table,
                settings.table_write_concurrency,
            )),
            objects,
            alerts: aws_alerts(config, sdk, metrics),
            metrics: Arc::new(CloudWatchMetricsSink::new(
                cloudwatch_client(settings, sdk, metrics),
                &config.metrics.namespace,
            )),
        })
    }
}

/// The stream `kinetick run` reads: the Kinesis stream, or the Kafka topic (`source.kind`).
async fn aws_stream(
    config: &Config,
    sdk: &SdkConfig,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<Arc<dyn StreamSource>> {
    let settings = &config.aws;
    Ok(match config.source.kind {
        SourceKind::Kinesis => Arc::new(KinesisStream::new(
            aws_sdk_kinesis::Client::from_conf(
                aws_sdk_kinesis::config::Builder::from(sdk)
                    .interceptor(CountRequests::new(metrics, Counter::KinesisRequests))
                    .timeout_config(aws::timeouts(sdk, settings.timeouts.stream))
                    .build(),
            ),
            &settings.stream_name,
            Polling {
                idle_interval: settings.idle_poll_interval,
                ..Polling::default()
            },
        )),
        SourceKind::Kafka => Arc::new(KafkaStream::new(
            kafka::connect::client(&config.kafka, Some(sdk)).await?,
            &config.kafka.topic,
            kafka::Fetching::of(&config.kafka),
        )),
    })
}

/// The SNS topic of the alerts, or the log without one.
fn aws_alerts(config: &Config, sdk: &SdkConfig, metrics: &Arc<Metrics>) -> Arc<dyn AlertSink> {
    let settings = &config.aws;
    match &settings.topic_arn {
        Some(topic) => Arc::new(SnsAlertSink::new(sns_client(settings, sdk, metrics), topic)),
        None => {
            tracing::warn!("No aws.topic-arn: alerts are logged, not published.");
            Arc::new(LogAlertSink)
        }
    }
}
