//! `kinetick run` through the real binary against the AWS emulator: ticks with anomalies and
//! malformed records in a 4-shard stream end up exactly once in DynamoDB and in the Parquet lake
//! on S3, alerts reach a queue subscribed to the topic, metrics reach CloudWatch and every shard
//! is checkpointed; a run stopped with SIGTERM mid-stream and started again still writes every
//! tick exactly once.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::stack::{
    SHARDS, assert_exactly_once, checkpoints, create_stack, put_records, records, start_run,
    terminate, wait_for_checkpoints,
};

#[tokio::test(flavor = "multi_thread")]
async fn run_processes_a_stream_exactly_once_into_every_sink() {
    let config = common::sdk_config();
    let stack = create_stack(&config).await;
    let (records, valid) = records(3_000, 21);
    let last = put_records(&config, &stack.stream, &records).await;

    let child = start_run(&stack, &[]);
    wait_for_checkpoints(&config, &stack.checkpoint_table, &last).await;
    let _log = terminate(child);
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
        let body = common::object_bytes(&s3, &stack.bucket, object.key().unwrap()).await;
        let text = String::from_utf8(body.to_vec()).unwrap();
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
    let _first_log = terminate(child);
    let last = put_records(&config, &stack.stream, &records[3_000..]).await;

    let child = start_run(&stack, &[]);
    wait_for_checkpoints(&config, &stack.checkpoint_table, &last).await;
    let _second_log = terminate(child);
    assert_exactly_once(&config, &stack, valid).await;
}
