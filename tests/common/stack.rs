//! An emulated AWS stack for `kinetick run` (stream, tables, bucket, topic and a queue subscribed
//! to it, all with unique names) and the real binary run against it.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use bytes::Bytes;

use super::{aws_env, s3, subscribed_queue, topic, unique};

pub const SHARDS: i32 = 4;

/// Names of the emulated resources.
pub struct Stack {
    pub stream: String,
    pub ticks_table: String,
    pub checkpoint_table: String,
    pub bucket: String,
    pub topic_arn: String,
    pub queue_url: String,
    pub namespace: String,
}

async fn create_table(client: &aws_sdk_dynamodb::Client, name: &str, keys: &[(&str, KeyType)]) {
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest);
    for (key, kind) in keys {
        request = request
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(*key)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(*key)
                    .key_type(kind.clone())
                    .build()
                    .unwrap(),
            );
    }
    request.send().await.unwrap();
}

pub async fn create_stack(config: &SdkConfig) -> Stack {
    let stack = Stack {
        stream: unique("ticks"),
        ticks_table: unique("ticks"),
        checkpoint_table: unique("leases"),
        bucket: unique("lake").to_lowercase(),
        topic_arn: String::new(),
        queue_url: String::new(),
        namespace: unique("Kinetick"),
    };
    aws_sdk_kinesis::Client::new(config)
        .create_stream()
        .stream_name(&stack.stream)
        .shard_count(SHARDS)
        .send()
        .await
        .unwrap();
    let dynamodb = aws_sdk_dynamodb::Client::new(config);
    create_table(
        &dynamodb,
        &stack.ticks_table,
        &[("symbol", KeyType::Hash), ("timestamp", KeyType::Range)],
    )
    .await;
    create_table(
        &dynamodb,
        &stack.checkpoint_table,
        &[("shard_id", KeyType::Hash)],
    )
    .await;
    s3(config)
        .create_bucket()
        .bucket(&stack.bucket)
        .send()
        .await
        .unwrap();
    let topic_arn = topic(config).await;
    let queue_url = subscribed_queue(config, &topic_arn).await;
    Stack {
        topic_arn,
        queue_url,
        ..stack
    }
}

/// Puts the records in order; returns the last sequence number written to each shard.
pub async fn put_records(
    config: &SdkConfig,
    stream: &str,
    records: &[(String, Bytes)],
) -> BTreeMap<String, String> {
    let kinesis = aws_sdk_kinesis::Client::new(config);
    let mut last = BTreeMap::new();
    for chunk in records.chunks(500) {
        let entries = chunk
            .iter()
            .map(|(key, data)| {
                PutRecordsRequestEntry::builder()
                    .partition_key(key)
                    .data(aws_sdk_kinesis::primitives::Blob::new(data.to_vec()))
                    .build()
                    .unwrap()
            })
            .collect();
        let output = kinesis
            .put_records()
            .stream_name(stream)
            .set_records(Some(entries))
            .send()
            .await
            .unwrap();
        assert_eq!(output.failed_record_count(), Some(0));
        for entry in output.records() {
            let (shard, sequence) = (entry.shard_id().unwrap(), entry.sequence_number().unwrap());
            last.insert(shard.to_owned(), sequence.to_owned());
        }
    }
    last
}

/// Starts `kinetick run` on `stack`, with quick checkpoints and metrics; `settings` are further
/// `KINETICK_...` variables (later ones win).
pub fn start_run(stack: &Stack, settings: &[(&str, &str)]) -> Child {
    let health = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    };
    Command::new(env!("CARGO_BIN_EXE_kinetick"))
        .arg("run")
        .envs(aws_env())
        .env("KINETICK_AWS__STREAM_NAME", &stack.stream)
        .env("KINETICK_AWS__TICKS_TABLE", &stack.ticks_table)
        .env("KINETICK_AWS__CHECKPOINT_TABLE", &stack.checkpoint_table)
        .env("KINETICK_AWS__BUCKET", &stack.bucket)
        .env("KINETICK_AWS__TOPIC_ARN", &stack.topic_arn)
        .env("KINETICK_AWS__S3_FORCE_PATH_STYLE", "true")
        .env("KINETICK_AWS__IDLE_POLL_INTERVAL", "100ms")
        .env("KINETICK_METRICS__NAMESPACE", &stack.namespace)
        .env("KINETICK_METRICS__INTERVAL", "1s")
        .env("KINETICK_CHECKPOINT__INTERVAL", "1s")
        .env("KINETICK_CHECKPOINT__MAX_RECORDS", "500")
        .env("KINETICK_HEALTH__LISTEN", health)
        .env("RUST_LOG", "info")
        .envs(settings.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("kinetick runs")
}

pub fn terminate(mut child: Child) {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(
                status.success(),
                "kinetick run exits 0 after SIGTERM, got {status}"
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "kinetick run did not stop within 60 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Checkpointed sequence number of each shard.
pub async fn checkpoints(config: &SdkConfig, table: &str) -> BTreeMap<String, String> {
    let dynamodb = aws_sdk_dynamodb::Client::new(config);
    let scan = dynamodb.scan().table_name(table).send().await.unwrap();
    scan.items()
        .iter()
        .map(|item| {
            (
                item["shard_id"].as_s().unwrap().clone(),
                item["sequence_number"].as_s().unwrap().clone(),
            )
        })
        .collect()
}

/// Waits until every shard is checkpointed at or past `targets` (each sink has made everything
/// up to there durable). Polls the small checkpoint table, not the ticks table: a full scan of
/// the emulator's ticks table every few hundred milliseconds would slow down the run under test.
pub async fn wait_for_checkpoints(
    config: &SdkConfig,
    table: &str,
    targets: &BTreeMap<String, String>,
) {
    // Kinesis sequence numbers are decimal strings of up to 56 digits.
    let reached = |done: &str, target: &str| (done.len(), done) >= (target.len(), target);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let done = checkpoints(config, table).await;
        if targets
            .iter()
            .all(|(shard, target)| done.get(shard).is_some_and(|d| reached(d, target)))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "checkpoints {done:?} did not reach {targets:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
