//! A checkpoint past a Kafka partition's end (the topic deleted and created again under the same
//! name) is refused, not read on from: reading on would skip every record written up to it.

mod common;

use common::kafka;
use kinetick::config::KafkaConfig;
use kinetick::model::tick::{Position, SequenceNumber};
use kinetick::stream::kafka::{Fetching, KafkaStream};
use kinetick::stream::{StartPosition, StreamSource};

fn offset(n: i64) -> Position {
    Position::new(SequenceNumber::new(n.to_string()), 0)
}

async fn stream(topic: &str) -> KafkaStream {
    let config = KafkaConfig {
        bootstrap_servers: kafka::bootstrap(),
        topic: topic.into(),
        ..KafkaConfig::default()
    };
    let client = kinetick::stream::kafka::connect::client(&config, None)
        .await
        .unwrap();
    KafkaStream::new(client, topic, Fetching::of(&config))
}

#[tokio::test]
async fn a_checkpoint_past_the_partitions_end_is_refused() {
    let topic = kafka::create_topic(1);
    let (records, _) = common::stack::records(10, 5);
    kafka::produce(&topic, &records).await;
    let stream = stream(&topic).await;
    let mut cursor = stream
        .open_shard(&stream.shard_id(0), StartPosition::After(offset(500)))
        .await
        .unwrap();
    let error = cursor.next_batch().await.unwrap_err();
    assert!(!error.is_retryable(), "{error}");
    assert!(
        error.to_string().contains("past the partition's end"),
        "{error}"
    );
}
