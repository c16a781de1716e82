//! How fast one process reads a Kafka topic: simulated ticks produced to a 4-partition topic on
//! the loopback broker, then every partition read to its end at once through the Kafka source
//! (one cursor per partition, as the shard readers hold them), each record decoded as a tick.
//!
//! `cargo bench --bench kafka_read` reads 400,000 ticks (needs `KAFKA_BOOTSTRAP_SERVERS` and
//! `KAFKA_BROKER_BIN`, as `scripts/test.sh` and `scripts/local-kafka.sh` provide); under
//! `cargo test` it runs briefly as a smoke test.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use common::kafka;
use futures::future::join_all;
use kinetick::config::KafkaConfig;
use kinetick::model::decode::{DecodeLimits, decode_tick};
use kinetick::stream::kafka::{Fetching, KafkaStream};
use kinetick::stream::{StartPosition, StreamSource};

const PARTITIONS: usize = 4;

/// Reads every partition from its start to its end (nothing is produced meanwhile) and checks
/// that `expected` records were read in all; returns the ticks that decoded.
async fn read_all(stream: &KafkaStream, expected: usize) -> usize {
    let shards = stream.list_shards().await.unwrap();
    let per_shard = shards.iter().map(|shard| async move {
        let mut cursor = stream
            .open_shard(&shard.id, StartPosition::TrimHorizon)
            .await
            .unwrap();
        let (mut read, mut ticks) = (0, 0);
        let limits = DecodeLimits::default();
        loop {
            let batch = cursor.next_batch().await.unwrap();
            read += batch.records.len();
            ticks += batch
                .records
                .iter()
                .filter(|r| decode_tick(&r.data, &limits).is_ok())
                .count();
            if batch.records_behind_latest == Some(0) {
                return (read, ticks);
            }
        }
    });
    let counts = join_all(per_shard).await;
    let read: usize = counts.iter().map(|(read, _)| read).sum();
    assert_eq!(read, expected, "every record read once");
    counts.iter().map(|(_, ticks)| ticks).sum()
}

#[tokio::main]
async fn main() {
    let count = match std::env::args().any(|arg| arg == "--bench") {
        true => 400_000,
        false => 5_000,
    };
    let (records, valid) = common::stack::records(count, 7);
    let topic = kafka::create_topic(PARTITIONS);
    let started = Instant::now();
    kafka::produce(&topic, &records).await;
    let produced = started.elapsed();

    let config = KafkaConfig {
        bootstrap_servers: kafka::bootstrap(),
        topic: topic.clone(),
        ..KafkaConfig::default()
    };
    let client = kinetick::stream::kafka::connect::client(&config, None)
        .await
        .unwrap();
    let stream = KafkaStream::new(client, &topic, Fetching::of(&config));
    let started = Instant::now();
    let ticks = read_all(&stream, records.len()).await;
    let read = started.elapsed();
    assert_eq!(ticks, valid, "every valid record decodes");
    let bytes: usize = records.iter().map(|(_, data)| data.len()).sum();
    println!(
        "produced {:>9.0} ticks/s  ({} ticks to {PARTITIONS} partitions in {:.2} s)",
        records.len() as f64 / produced.as_secs_f64(),
        records.len(),
        produced.as_secs_f64()
    );
    println!(
        "read     {:>9.0} ticks/s  ({} ticks, {:.1} MB, from {PARTITIONS} partitions at once in {:.2} s, decoded)",
        records.len() as f64 / read.as_secs_f64(),
        records.len(),
        bytes as f64 / 1e6,
        read.as_secs_f64()
    );
}
