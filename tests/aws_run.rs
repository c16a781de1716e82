//! `kinetick run` through the real binary against the AWS emulator: ticks with anomalies and
//! malformed records in a 4-shard stream end up exactly once in DynamoDB and in the Parquet lake
//! on S3, alerts reach a queue subscribed to the topic, metrics reach CloudWatch and every shard
//! is checkpointed; a run stopped with SIGTERM mid-stream and started again still writes every
//! tick exactly once.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use aws_config::SdkConfig;
use bytes::Bytes;
use common::stack::{
    SHARDS, Stack, checkpoints, create_stack, put_records, start_run, terminate,
    wait_for_checkpoints,
};
use kinetick::model::simulator::{MarketSimulator, RecordKind, SimulatorConfig};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// Simulated records (seed format, with anomalies and malformed ones) and the count of valid ones.
fn records(count: usize, seed: u64) -> (Vec<(String, Bytes)>, usize) {
    let config = SimulatorConfig {
        symbols: 30,
        seed,
        jump_rate: 0.003,
        ..SimulatorConfig::default()
    };
    let records: Vec<_> = MarketSimulator::new(config).take(count).collect();
    let valid = records
        .iter()
        .filter(|r| r.kind != RecordKind::Malformed)
        .count();
    (
        records
            .into_iter()
            .map(|r| (r.partition_key, Bytes::from(r.data)))
            .collect(),
        valid,
    )
}

async fn table_keys(config: &SdkConfig, table: &str) -> (usize, BTreeSet<(String, String)>) {
    let dynamodb = aws_sdk_dynamodb::Client::new(config);
    let mut keys = BTreeSet::new();
    let mut count = 0;
    let mut pages = dynamodb.scan().table_name(table).into_paginator().send();
    while let Some(page) = pages.next().await {
        for item in page.unwrap().items() {
            count += 1;
            keys.insert((
                item["symbol"].as_s().unwrap().clone(),
                item["timestamp"].as_s().unwrap().clone(),
            ));
        }
    }
    (count, keys)
}

/// `(shard, sequence, sub-sequence)` of every row of the lake.
async fn lake_rows(config: &SdkConfig, bucket: &str) -> Vec<(String, String, i64)> {
    use arrow_array::{Array, Int64Array, StringArray};
    let s3 = common::s3(config);
    let mut rows = Vec::new();
    let listed = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix("ticks/")
        .send()
        .await
        .unwrap();
    for object in listed.contents() {
        let key = object.key().unwrap();
        assert!(key.contains("/dt=") && key.ends_with(".parquet"), "{key}");
        let body = s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes();
        for batch in ParquetRecordBatchReaderBuilder::try_new(body)
            .unwrap()
            .build()
            .unwrap()
        {
            let batch = batch.unwrap();
            let text = |name: &str| {
                batch
                    .column_by_name(name)
                    .unwrap()
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .unwrap()
                    .clone()
            };
            let (shards, sequences) = (text("shard_id"), text("sequence_number"));
            let subs = batch
                .column_by_name("sub_sequence_number")
                .unwrap()
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .clone();
            for i in 0..batch.num_rows() {
                rows.push((
                    shards.value(i).to_owned(),
                    sequences.value(i).to_owned(),
                    subs.value(i),
                ));
            }
        }
    }
    rows
}

async fn assert_exactly_once(config: &SdkConfig, stack: &Stack, valid: usize) {
    let (count, keys) = table_keys(config, &stack.ticks_table).await;
    assert_eq!(count, valid, "table items");
    assert_eq!(keys.len(), valid, "table keys are unique");
    let rows = lake_rows(config, &stack.bucket).await;
    let unique: BTreeSet<_> = rows.iter().collect();
    assert_eq!(rows.len(), valid, "lake rows");
    assert_eq!(unique.len(), valid, "lake rows are unique");
}

#[tokio::test(flavor = "multi_thread")]
async fn run_processes_a_stream_exactly_once_into_every_sink() {
    let config = common::sdk_config();
    let stack = create_stack(&config).await;
    let (records, valid) = records(3_000, 21);
    let last = put_records(&config, &stack.stream, &records).await;

    let child = start_run(&stack, &[]);
    wait_for_checkpoints(&config, &stack.checkpoint_table, &last).await;
    terminate(child);
    assert_exactly_once(&config, &stack, valid).await;

    // Dead letters with their reasons.
    let s3 = common::s3(&config);
    let letters = s3
        .list_objects_v2()
        .bucket(&stack.bucket)
        .prefix("dead-letters/")
        .send()
        .await
        .unwrap();
    let mut dead = 0;
    for object in letters.contents() {
        let body = s3
            .get_object()
            .bucket(&stack.bucket)
            .key(object.key().unwrap())
            .send()
            .await
            .unwrap();
        let text =
            String::from_utf8(body.body.collect().await.unwrap().into_bytes().to_vec()).unwrap();
        for line in text.lines() {
            let letter: serde_json::Value = serde_json::from_str(line).unwrap();
            assert!(letter["reason"].is_string() && letter["sequence_number"].is_string());
            dead += 1;
        }
    }
    assert_eq!(
        dead,
        records.len() - valid,
        "every malformed record is dead-lettered"
    );

    // Alerts in the subscribed queue, with their attributes.
    let sqs = aws_sdk_sqs::Client::new(&config);
    let mut kinds = BTreeSet::new();
    for _ in 0..20 {
        let received = sqs
            .receive_message()
            .queue_url(&stack.queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        if received.messages().is_empty() {
            break;
        }
        for message in received.messages() {
            let envelope: serde_json::Value =
                serde_json::from_str(message.body().unwrap()).unwrap();
            assert!(
                envelope["MessageAttributes"]["symbol"]["Value"].is_string(),
                "{envelope}"
            );
            kinds.insert(
                envelope["MessageAttributes"]["kind"]["Value"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
    }
    assert!(
        kinds.contains("change_percent") || kinds.contains("return_zscore"),
        "alert kinds: {kinds:?}"
    );

    // Metrics in CloudWatch.
    let processed = common::metric_sum(&config, &stack.namespace, "RecordsProcessed").await;
    assert_eq!(
        processed as usize,
        records.len(),
        "RecordsProcessed in CloudWatch"
    );

    // Every shard checkpointed at its end (the wait above), and no other items.
    assert_eq!(
        checkpoints(&config, &stack.checkpoint_table).await.len(),
        SHARDS as usize
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_stopped_mid_stream_resumes_exactly_once() {
    let config = common::sdk_config();
    let stack = create_stack(&config).await;
    let (records, valid) = records(6_000, 22);
    put_records(&config, &stack.stream, &records[..3_000]).await;

    let child = start_run(&stack, &[]);
    // Stop as soon as some shard has a checkpoint: mid-stream, with work in flight.
    while checkpoints(&config, &stack.checkpoint_table)
        .await
        .is_empty()
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    terminate(child);
    let last = put_records(&config, &stack.stream, &records[3_000..]).await;

    let child = start_run(&stack, &[]);
    wait_for_checkpoints(&config, &stack.checkpoint_table, &last).await;
    terminate(child);
    assert_exactly_once(&config, &stack, valid).await;
}
