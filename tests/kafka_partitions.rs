//! A partition added to a Kafka topic while kinetick reads it is read from its first record at
//! the next shard sync, alongside the partitions read already, with every tick once.
//!
//! The test broker cannot add partitions to a topic (it has no `CreatePartitions`), so the topic
//! is made with both partitions and shown to the pipeline one at first: the listing the
//! pipeline gets is the broker's own, with the second partition left out until it "appears".
//! Every read goes to the broker as it is.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use common::kafka;
use kinetick::config::{Config, KafkaConfig};
use kinetick::metrics::Counter;
use kinetick::model::ids::ShardId;
use kinetick::pipeline::{Pipeline, Ports};
use kinetick::stream::kafka::{Fetching, KafkaStream};
use kinetick::stream::{ShardCursor, ShardInfo, StartPosition, StreamError, StreamSource};
use kinetick::table::file::FileTicksTable;

/// The topic's partitions as the broker lists them, the first `visible` of them only.
struct GrowingTopic {
    topic: KafkaStream,
    visible: AtomicUsize,
}

#[async_trait]
impl StreamSource for GrowingTopic {
    async fn list_shards(&self) -> Result<Vec<ShardInfo>, StreamError> {
        let mut shards = self.topic.list_shards().await?;
        shards.truncate(self.visible.load(Ordering::SeqCst));
        Ok(shards)
    }

    async fn open_shard(
        &self,
        shard: &ShardId,
        start: StartPosition,
    ) -> Result<Box<dyn ShardCursor>, StreamError> {
        self.topic.open_shard(shard, start).await
    }
}

async fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn a_partition_added_mid_stream_is_read_from_its_start() {
    let topic = kafka::create_topic(2);
    let (records, valid) = common::stack::records(3_000, 71);
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.lease.shard_sync_interval = Duration::from_millis(300);
    config.checkpoint.interval = Duration::from_millis(500);
    let table = dir.path().join("table").join("ticks.jsonl");

    actix::System::new().block_on(async {
        kafka::produce(&topic, &records).await;
        let kafka_config = KafkaConfig {
            bootstrap_servers: kafka::bootstrap(),
            topic: topic.clone(),
            fetch_max_wait: Duration::from_millis(100),
            ..KafkaConfig::default()
        };
        let client = kinetick::stream::kafka::connect::client(&kafka_config, None)
            .await
            .unwrap();
        let stream = Arc::new(GrowingTopic {
            topic: KafkaStream::new(client, &topic, Fetching::of(&kafka_config)),
            visible: AtomicUsize::new(1),
        });
        let ports = Ports::local(dir.path(), stream.clone(), false).unwrap();
        let pipeline = Pipeline::start(
            &config,
            ports,
            StartPosition::TrimHorizon,
            Default::default(),
        )
        .await;
        let metrics = pipeline.metrics().clone();
        let in_first = kafka::last_offsets(&topic, 2, &records)[&format!("{topic}-0")]
            .parse::<u64>()
            .unwrap()
            + 1;
        wait_until("the first partition is read", || {
            metrics.total(Counter::RecordsProcessed) >= in_first
        })
        .await;
        assert_eq!(
            metrics.total(Counter::RecordsProcessed),
            in_first,
            "nothing of the hidden partition is read"
        );

        stream.visible.store(2, Ordering::SeqCst);
        wait_until("the added partition is read", || {
            metrics.total(Counter::RecordsProcessed) >= records.len() as u64
        })
        .await;
        // Checkpointed and released: everything read is written.
        let mut pipeline = pipeline;
        pipeline.request_stop();
        pipeline.wait().await.unwrap();
        pipeline.close().await;
    });

    let rt = tokio::runtime::Runtime::new().unwrap();
    let items = rt.block_on(FileTicksTable::scan(&table)).unwrap();
    let partitions: BTreeSet<&str> = items
        .iter()
        .filter_map(|item| item["shard_id"]["S"].as_str())
        .collect();
    assert_eq!(
        partitions,
        BTreeSet::from([format!("{topic}-0").as_str(), format!("{topic}-1").as_str()]),
    );
    assert_eq!(items.len(), valid, "every valid tick once in the table");
}
