//! A Kafka topic on the broker `scripts/test.sh` starts on loopback, ticks produced to it, and
//! the settings that point `kinetick run` at it.

use std::collections::BTreeMap;
use std::process::Command;

use bytes::Bytes;
use kinetick::config::KafkaConfig;
use kinetick::producer::kafka::{KafkaSink, partition_of};
use kinetick::producer::{EntryOutcome, RecordSink, batch::Outgoing};

use super::unique;

/// The broker's `host:port`. The tests do not skip without it: they fail and say how to run them.
pub fn bootstrap() -> String {
    std::env::var("KAFKA_BOOTSTRAP_SERVERS").expect(
        "KAFKA_BOOTSTRAP_SERVERS is not set: run the tests with scripts/test.sh, which starts a \
         Kafka broker",
    )
}

/// A new topic with `partitions` partitions; returns its name.
pub fn create_topic(partitions: usize) -> String {
    let broker = std::env::var("KAFKA_BROKER_BIN").expect(
        "KAFKA_BROKER_BIN is not set: run the tests with scripts/test.sh, which starts a Kafka broker",
    );
    let topic = unique("ticks");
    let status = Command::new(broker)
        .args(["topic", "create", &topic, "--partitions"])
        .arg(partitions.to_string())
        .arg("--broker")
        .arg(format!("tcp://{}", bootstrap()))
        .status()
        .expect("the broker's topic command runs");
    assert!(status.success(), "creating topic {topic}: {status}");
    topic
}

/// `KINETICK_...` settings that make `kinetick run` read `topic`.
pub fn settings(topic: &str) -> Vec<(&'static str, String)> {
    vec![
        ("KINETICK_SOURCE__KIND", "kafka".into()),
        ("KINETICK_KAFKA__BOOTSTRAP_SERVERS", bootstrap()),
        ("KINETICK_KAFKA__TOPIC", topic.into()),
        ("KINETICK_KAFKA__FETCH_MAX_WAIT", "100ms".into()),
    ]
}

/// Produces `records` (key, value) to `topic`, oldest first, to the partitions
/// `kinetick produce --topic` chooses.
pub async fn produce(topic: &str, records: &[(String, Bytes)]) {
    let config = KafkaConfig {
        bootstrap_servers: bootstrap(),
        ..KafkaConfig::default()
    };
    let client = kinetick::stream::kafka::connect::client(&config, None)
        .await
        .unwrap();
    let sink = KafkaSink::new(&client, topic).await.unwrap();
    for chunk in records.chunks(500) {
        let outgoing: Vec<Outgoing> = chunk
            .iter()
            .map(|(key, data)| Outgoing {
                partition_key: key.clone(),
                data: data.clone(),
            })
            .collect();
        let outcomes = sink.put(&outgoing).await.unwrap();
        assert!(outcomes.iter().all(|o| *o == EntryOutcome::Written));
    }
}

/// The offset of the last record of each partition, by shard id, once `records` are all the
/// topic holds.
pub fn last_offsets(
    topic: &str,
    partitions: usize,
    records: &[(String, Bytes)],
) -> BTreeMap<String, String> {
    let mut counts: BTreeMap<usize, u64> = BTreeMap::new();
    for (key, _) in records {
        *counts
            .entry(partition_of(key.as_bytes(), partitions))
            .or_default() += 1;
    }
    counts
        .into_iter()
        .map(|(partition, count)| (format!("{topic}-{partition}"), (count - 1).to_string()))
        .collect()
}
