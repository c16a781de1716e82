//! `kinetick run`: the pipeline on AWS (Kinesis in; DynamoDB, S3, SNS and CloudWatch out), as the
//! ECS task runs it. Stops on SIGTERM or SIGINT: readers stop, every sink flushes, every shard
//! checkpoints, and the process exits 0.

use std::sync::Arc;

use anyhow::Context as _;
use aws_config::SdkConfig;

use crate::alerts::AlertSink;
use crate::alerts::log::LogAlertSink;
use crate::alerts::sns::SnsAlertSink;
use crate::aws::{self, CountRequests};
use crate::checkpoint::dynamodb::DynamoCheckpointStore;
use crate::config::{Config, InitialPosition};
use crate::lease::dynamodb::DynamoLeaseStore;
use crate::metrics::cloudwatch::CloudWatchMetricsSink;
use crate::metrics::{Counter, Metrics};
use crate::objects::ObjectStore;
use crate::objects::s3::S3ObjectStore;
use crate::pipeline::{Pipeline, Ports};
use crate::stream::StartPosition;
use crate::stream::kinesis::{KinesisStream, Polling};
use crate::table::dynamodb::DynamoTicksTable;

/// The AWS implementation of every port, from the SDK's default configuration chain; each
/// client counts its requests into `metrics`.
pub async fn aws_ports(
    config: &Config,
    sdk: &SdkConfig,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<Ports> {
    let settings = &config.aws;
    anyhow::ensure!(
        !settings.bucket.is_empty(),
        "aws.bucket is not set (KINETICK_AWS__BUCKET)"
    );
    let counting = |counter| CountRequests::new(metrics, counter);
    let s3_config = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(settings.s3_force_path_style)
        .interceptor(counting(Counter::S3Requests))
        .build();
    let objects: Arc<dyn ObjectStore> = Arc::new(S3ObjectStore::new(
        aws_sdk_s3::Client::from_conf(s3_config),
        &settings.bucket,
    ));
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(sdk)
            .interceptor(counting(Counter::DynamoDbRequests))
            .build(),
    );
    let alerts: Arc<dyn AlertSink> = match &settings.topic_arn {
        Some(topic) => Arc::new(SnsAlertSink::new(
            aws_sdk_sns::Client::from_conf(
                aws_sdk_sns::config::Builder::from(sdk)
                    .interceptor(counting(Counter::SnsRequests))
                    .build(),
            ),
            topic,
        )),
        None => {
            tracing::warn!("No aws.topic-arn: alerts are logged, not published.");
            Arc::new(LogAlertSink)
        }
    };
    let polling = Polling {
        idle_interval: settings.idle_poll_interval,
        ..Polling::default()
    };
    Ok(Ports {
        stream: Arc::new(KinesisStream::new(
            aws_sdk_kinesis::Client::from_conf(
                aws_sdk_kinesis::config::Builder::from(sdk)
                    .interceptor(counting(Counter::KinesisRequests))
                    .build(),
            ),
            &settings.stream_name,
            polling,
        )),
        leases: Arc::new(DynamoLeaseStore::new(
            dynamodb.clone(),
            &settings.checkpoint_table,
        )),
        checkpoints: Arc::new(DynamoCheckpointStore::new(
            dynamodb.clone(),
            &settings.checkpoint_table,
            objects.clone(),
            &config.lake.prefix,
        )),
        table: Arc::new(DynamoTicksTable::new(
            dynamodb,
            &settings.ticks_table,
            settings.table_write_concurrency,
        )),
        objects,
        alerts,
        metrics: Arc::new(CloudWatchMetricsSink::new(
            aws_sdk_cloudwatch::Client::from_conf(
                aws_sdk_cloudwatch::config::Builder::from(sdk)
                    .interceptor(counting(Counter::CloudWatchRequests))
                    .build(),
            ),
            &config.metrics.namespace,
        )),
    })
}

fn initial_position(config: &Config) -> anyhow::Result<StartPosition> {
    Ok(match config.aws.start_position {
        InitialPosition::TrimHorizon => StartPosition::TrimHorizon,
        InitialPosition::Latest => StartPosition::Latest,
        InitialPosition::AtTimestamp => {
            let text = config
                .aws
                .start_timestamp
                .as_deref()
                .context("aws.start-timestamp is required with at-timestamp")?;
            let time = chrono::DateTime::parse_from_rfc3339(text)
                .context("aws.start-timestamp is not RFC 3339")?;
            StartPosition::AtTimestamp(time.timestamp_millis())
        }
    })
}

pub async fn run(config: Config) -> anyhow::Result<()> {
    let start = initial_position(&config)?;
    let sdk = aws::sdk_config().await;
    let metrics = Arc::new(Metrics::default());
    let ports = aws_ports(&config, &sdk, &metrics).await?;
    let listener = tokio::net::TcpListener::bind(&config.health.listen)
        .await
        .with_context(|| format!("health endpoint cannot listen on {}", config.health.listen))?;
    let mut pipeline = Pipeline::start(&config, ports, start, metrics).await;
    actix::spawn(crate::health::serve(
        listener,
        pipeline.metrics().clone(),
        pipeline.failures(),
    ));

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let ended = tokio::select! {
        result = pipeline.wait() => Some(result),
        _ = terminate.recv() => None,
        _ = tokio::signal::ctrl_c() => None,
    };
    let result = match ended {
        Some(result) => result,
        None => {
            tracing::info!("Stopping: flushing sinks and checkpointing every shard.");
            pipeline.request_stop();
            pipeline.wait().await
        }
    };
    pipeline.close().await;
    result?;
    tracing::info!("Stopped.");
    Ok(())
}
