//! `kinetick run`: the pipeline on AWS (Kinesis or Kafka in; DynamoDB, S3, SNS and CloudWatch
//! out), as the ECS task runs it, on the AWS ports ([`Ports::aws`]). Stops on SIGTERM or SIGINT
//! ([`shutdown::run_to_end`]): readers stop, every sink flushes, every shard checkpoints, and the
//! process exits 0.

use std::sync::Arc;

use anyhow::Context as _;

use crate::aws;
use crate::config::{Config, InitialPosition};
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::ports::Ports;
use crate::shutdown::{self, StopSignal};
use crate::stream::StartPosition;

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
    let ports = Ports::aws(&config, &sdk, &metrics).await?;
    let listener = tokio::net::TcpListener::bind(&config.health.listen)
        .await
        .with_context(|| format!("health endpoint cannot listen on {}", config.health.listen))?;
    let pipeline = Pipeline::start(&config, ports, start, metrics).await;
    actix::spawn(crate::health::endpoint::serve(
        listener,
        pipeline.metrics().clone(),
        pipeline.health().clone(),
        pipeline.failures(),
    ));
    actix::spawn(crate::health::watch(
        pipeline.health().clone(),
        pipeline.metrics().clone(),
    ));

    shutdown::run_to_end(pipeline, |signal: StopSignal| {
        tracing::info!(
            signal = signal.name(),
            "Stopping: flushing sinks and checkpointing every shard."
        );
    })
    .await?;
    tracing::info!("Stopped.");
    Ok(())
}
