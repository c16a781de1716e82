//! The AWS implementation of each port against the AWS emulator on loopback.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use bytes::Bytes;
use common::fault_proxy::{Fault, FaultProxy};
use kinetick::alerts::AlertSink;
use kinetick::alerts::sns::SnsAlertSink;
use kinetick::checkpoint::dynamodb::DynamoCheckpointStore;
use kinetick::checkpoint::{
    Checkpoint, CheckpointError, CheckpointStore, FilesEnd, Mark, Marks, ShardSnapshot,
};
use kinetick::failure::Failure;
use kinetick::lease::dynamodb::DynamoLeaseStore;
use kinetick::lease::{Fence, Lease, LeaseError, LeaseStore, Release};
use kinetick::metrics::cloudwatch::CloudWatchMetricsSink;
use kinetick::metrics::{Counter, Drain, Metrics, MetricsSink};
use kinetick::model::bar::MinuteBar;
use kinetick::model::ids::WorkerId;
use kinetick::model::item::{AttrValue, Item};
use kinetick::model::kpl;
use kinetick::model::rules::{Alert, AlertKind, Severity};
use kinetick::model::state::SymbolState;
use kinetick::model::tick::{Position, SequenceNumber};
use kinetick::model::window::WindowConfig;
use kinetick::objects::s3::S3ObjectStore;
use kinetick::objects::{MIN_PART_BYTES, ObjectStore};
use kinetick::stream::kinesis::{KinesisStream, Polling};
use kinetick::stream::{ShardInfo, StartPosition, StreamSource};
use kinetick::table::TicksTable;
use kinetick::table::dynamodb::DynamoTicksTable;

#[tokio::test]
async fn s3_objects_put_get_list_and_multipart() {
    let config = common::sdk_config();
    let (client, name) = common::bucket(&config).await;
    let store = S3ObjectStore::new(client, &name);
    store
        .put(
            "ticks/dt=2026-01-05/a.parquet",
            Bytes::from_static(b"one"),
            "application/octet-stream",
        )
        .await
        .unwrap();
    store
        .put(
            "ticks/dt=2026-01-05/a.parquet",
            Bytes::from_static(b"two"),
            "application/octet-stream",
        )
        .await
        .unwrap();
    let large = Bytes::from(vec![7u8; 17 * 1024 * 1024]);
    store
        .put(
            "ticks/dt=2026-01-06/large.parquet",
            large.clone(),
            "application/octet-stream",
        )
        .await
        .unwrap();
    store
        .put(
            "dead-letters/x.jsonl",
            Bytes::from_static(b"{}"),
            "application/x-ndjson",
        )
        .await
        .unwrap();

    assert_eq!(
        store
            .get("ticks/dt=2026-01-05/a.parquet")
            .await
            .unwrap()
            .unwrap(),
        Bytes::from_static(b"two")
    );
    assert_eq!(
        store
            .get("ticks/dt=2026-01-06/large.parquet")
            .await
            .unwrap()
            .unwrap(),
        large,
        "multipart upload"
    );
    assert_eq!(store.get("missing").await.unwrap(), None);
    assert_eq!(
        store.list("ticks/").await.unwrap(),
        vec![
            "ticks/dt=2026-01-05/a.parquet".to_owned(),
            "ticks/dt=2026-01-06/large.parquet".to_owned()
        ]
    );
    store.delete("ticks/dt=2026-01-05/a.parquet").await.unwrap();
    store.delete("ticks/dt=2026-01-05/a.parquet").await.unwrap();
    assert_eq!(
        store.get("ticks/dt=2026-01-05/a.parquet").await.unwrap(),
        None
    );
}

#[tokio::test]
async fn s3_uploads_in_parts_complete_abort_and_are_found_unfinished() {
    let config = common::sdk_config();
    let (client, name) = common::bucket(&config).await;
    let store = S3ObjectStore::new(client, &name);
    let key = "lake/ticks/dt=2026-01-05/compacted.parquet";
    let first: Bytes = (0..MIN_PART_BYTES + 1).map(|i| (i % 251) as u8).collect();
    let last = Bytes::from_static(b"the end");

    let upload = store
        .begin_upload(key, "application/vnd.apache.parquet")
        .await
        .unwrap();
    let mut parts = vec![store.upload_part(&upload, 1, first.clone()).await.unwrap()];
    parts.push(
        store
            .upload_part(&upload, 2, Bytes::from_static(b"replaced by the retry"))
            .await
            .unwrap(),
    );
    parts[1] = store.upload_part(&upload, 2, last.clone()).await.unwrap();
    assert_eq!(store.get(key).await.unwrap(), None);
    assert_eq!(
        store.unfinished_uploads("lake/ticks/").await.unwrap(),
        std::slice::from_ref(&upload)
    );
    assert!(
        store
            .unfinished_uploads("lake/dead-letters/")
            .await
            .unwrap()
            .is_empty()
    );
    store.complete_upload(&upload, &parts).await.unwrap();
    assert_eq!(
        store.get(key).await.unwrap().unwrap(),
        [&first[..], &last[..]].concat()
    );
    assert!(store.unfinished_uploads("").await.unwrap().is_empty());

    // An upload a crashed process left is found by its prefix; aborting removes it.
    let left = store.begin_upload("lake/ticks/left", "").await.unwrap();
    let part = store
        .upload_part(&left, 1, Bytes::from_static(b"half"))
        .await
        .unwrap();
    assert_eq!(
        store.unfinished_uploads("lake/").await.unwrap(),
        std::slice::from_ref(&left)
    );
    store.abort_upload(&left).await.unwrap();
    assert!(store.unfinished_uploads("lake/").await.unwrap().is_empty());
    store.abort_upload(&left).await.unwrap();
    // S3 answers `NoSuchUpload` (the gone error, judged in `objects::s3`'s unit test); the
    // emulator answers 500 (retryable), so here the answer may be either.
    let error = store.complete_upload(&left, &[part]).await.unwrap_err();
    assert!(error.is_upload_gone() || error.is_retryable(), "{error}");
    assert_eq!(store.get("lake/ticks/left").await.unwrap(), None);
    assert_eq!(store.list("lake/").await.unwrap(), [key]);
}

fn item(symbol: &str, timestamp: &str, price: f64) -> Item<'static> {
    Item::Attributes(vec![
        ("symbol", AttrValue::S(symbol.into())),
        ("timestamp", AttrValue::S(timestamp.into())),
        ("price", AttrValue::N(price.to_string().into())),
        ("anomaly", AttrValue::Bool(false)),
    ])
}

#[tokio::test]
async fn dynamodb_bars_never_go_back_to_an_older_version() {
    let config = common::sdk_config();
    let client = aws_sdk_dynamodb::Client::new(&config);
    let name = common::table(&client, "symbol", Some("timestamp")).await;
    let table = DynamoTicksTable::new(client.clone(), &name, 4);
    let bar = |trades: u64, close: f64| MinuteBar {
        minute_start_ms: 1_767_623_400_000,
        open: 10.0,
        high: 12.0,
        low: 9.5,
        close,
        volume: 100.0 * trades as f64,
        notional: 1_000.0 * trades as f64,
        trades,
        first_ms: 1_767_623_400_000,
        last_ms: 1_767_623_400_000 + trades as i64,
    };
    let stored = async || {
        let items = client.scan().table_name(&name).send().await.unwrap();
        assert_eq!(items.count(), 1);
        let item = &items.items()[0];
        (
            item["trades"].as_n().unwrap().to_owned(),
            item["close"].as_n().unwrap().to_owned(),
        )
    };
    let write = async |bar: &MinuteBar| {
        let item = Item::Bar {
            symbol: "AAPL",
            bar,
            expires_at: None,
        };
        table.put_items(&[item]).await.unwrap();
    };
    write(&bar(5, 11.0)).await;
    // A stale owner's older version of the bar is refused, without an error.
    write(&bar(3, 10.5)).await;
    assert_eq!(stored().await, ("5".into(), "11".into()));
    // The same version again (a replay) and a later one are written.
    write(&bar(5, 11.0)).await;
    write(&bar(7, 11.5)).await;
    assert_eq!(stored().await, ("7".into(), "11.5".into()));
}

#[tokio::test]
async fn dynamodb_table_writes_every_item_once_per_key() {
    let config = common::sdk_config();
    let client = aws_sdk_dynamodb::Client::new(&config);
    let name = common::table(&client, "symbol", Some("timestamp")).await;
    let store = DynamoTicksTable::new(client.clone(), &name, 4);
    let items: Vec<Item> = (0..130)
        .map(|i| {
            item(
                if i % 2 == 0 { "AAPL" } else { "MSFT" },
                &format!("2026-01-05T14:30:00.{i:03}Z#{i}"),
                100.0 + i as f64,
            )
        })
        .collect();
    store.put_items(&items).await.unwrap();
    store.put_items(&items[..40]).await.unwrap();

    let scanned = client.scan().table_name(&name).send().await.unwrap();
    assert_eq!(
        scanned.count(),
        130,
        "a replayed write leaves one item per key"
    );
    let first = scanned
        .items()
        .iter()
        .find(|i| i["timestamp"].as_s().unwrap().ends_with("#0"))
        .unwrap();
    assert_eq!(first["price"].as_n().unwrap(), "100");
    assert_eq!(first["anomaly"].as_bool().unwrap(), &false);
}

/// A checkpoint store on a new table and bucket, with the table's client and the bucket's
/// objects.
struct CheckpointFixture {
    store: DynamoCheckpointStore,
    objects: Arc<dyn ObjectStore>,
    client: aws_sdk_dynamodb::Client,
    table: String,
}

async fn checkpoint_store(prefix: &str) -> CheckpointFixture {
    let config = common::sdk_config();
    let client = aws_sdk_dynamodb::Client::new(&config);
    let table = common::table(&client, "shard_id", None).await;
    let (s3, bucket) = common::bucket(&config).await;
    let objects: Arc<dyn ObjectStore> = Arc::new(S3ObjectStore::new(s3, &bucket));
    let store = DynamoCheckpointStore::new(client.clone(), &table, objects.clone(), prefix);
    CheckpointFixture {
        store,
        objects,
        client,
        table,
    }
}

#[tokio::test]
async fn dynamodb_checkpoints_round_trip_small_and_large_snapshots() {
    let CheckpointFixture { store, objects, .. } = checkpoint_store("lake/").await;
    assert_eq!(store.load("shardId-000000000000").await.unwrap(), None);

    let position = Position::new(
        SequenceNumber::new("49590338271490256608559692538361571095921575989136588898"),
        3,
    );
    let small = Checkpoint {
        shard_id: "shardId-000000000000".into(),
        position: position.clone(),
        shard_end: false,
        snapshot: BTreeMap::from([("AAPL".into(), SymbolState::new(WindowConfig::default()))]),
        fence: None,
    };
    store.save(&small).await.unwrap();
    assert_eq!(
        store.load("shardId-000000000000").await.unwrap(),
        Some(small)
    );

    // Thousands of symbols outgrow a DynamoDB item: the snapshot moves to the object store.
    let large = Checkpoint {
        shard_id: "shardId-000000000001".into(),
        position,
        shard_end: true,
        snapshot: (0..5_000)
            .map(|i| {
                (
                    format!("S{i:05}").into(),
                    SymbolState::new(WindowConfig::default()),
                )
            })
            .collect(),
        fence: None,
    };
    store.save(&large).await.unwrap();
    assert_eq!(
        store.load("shardId-000000000001").await.unwrap(),
        Some(large)
    );
    assert_eq!(objects.list("lake/checkpoints/").await.unwrap().len(), 1);
}

#[tokio::test]
async fn dynamodb_checkpoints_with_json_snapshots_of_earlier_versions_load() {
    let CheckpointFixture {
        store,
        client,
        table,
        ..
    } = checkpoint_store("").await;
    let snapshot: ShardSnapshot =
        BTreeMap::from([("AAPL".into(), SymbolState::new(WindowConfig::default()))]);
    client
        .put_item()
        .table_name(&table)
        .item("shard_id", AttributeValue::S("shardId-000000000000".into()))
        .item("sequence_number", AttributeValue::S("42".into()))
        .item("sub_sequence_number", AttributeValue::N("0".into()))
        .item("shard_end", AttributeValue::Bool(false))
        .item(
            "snapshot",
            AttributeValue::S(serde_json::to_string(&snapshot).unwrap()),
        )
        .send()
        .await
        .unwrap();
    let loaded = store.load("shardId-000000000000").await.unwrap().unwrap();
    assert_eq!(loaded.position, Position::new(SequenceNumber::new("42"), 0));
    assert_eq!(loaded.snapshot, snapshot);
}

#[tokio::test]
async fn dynamodb_checkpoints_keep_one_snapshot_object_per_shard() {
    let CheckpointFixture { store, objects, .. } = checkpoint_store("").await;
    let checkpoint = |sequence: &str, symbols: usize, fence: Option<Fence>| Checkpoint {
        shard_id: "shardId-000000000000".into(),
        position: Position::new(SequenceNumber::new(sequence), 0),
        shard_end: false,
        snapshot: (0..symbols)
            .map(|i| {
                let state = SymbolState::new(WindowConfig::default());
                (format!("S{i:05}").into(), state)
            })
            .collect(),
        fence,
    };
    let snapshots = || async { objects.list("checkpoints/").await.unwrap() };

    store.save(&checkpoint("100", 500, None)).await.unwrap();
    store.save(&checkpoint("200", 500, None)).await.unwrap();
    assert_eq!(
        snapshots().await,
        ["checkpoints/shardId-000000000000/200.cbor"],
        "the superseded snapshot is deleted"
    );
    // The same position saved again (a retried write) keeps its object.
    store.save(&checkpoint("200", 500, None)).await.unwrap();
    assert_eq!(snapshots().await.len(), 1);
    // A snapshot small enough to stay inline supersedes the object too.
    store.save(&checkpoint("300", 1, None)).await.unwrap();
    assert!(snapshots().await.is_empty());
    store.save(&checkpoint("400", 500, None)).await.unwrap();

    // A refused checkpoint (no such lease) leaves the saved one and its object alone, and
    // deletes the object written for it.
    let stale = Fence {
        shard_id: "shardId-000000000000".into(),
        owner: "worker-gone".into(),
        counter: 7,
    };
    assert!(matches!(
        store.save(&checkpoint("500", 500, Some(stale))).await,
        Err(CheckpointError::LeaseLost { .. })
    ));
    assert_eq!(
        snapshots().await,
        ["checkpoints/shardId-000000000000/400.cbor"]
    );
    let loaded = store.load("shardId-000000000000").await.unwrap().unwrap();
    assert_eq!(loaded, checkpoint("400", 500, None));
}

#[tokio::test]
async fn dynamodb_leases_change_only_as_read_and_fence_checkpoints() {
    let CheckpointFixture {
        store: checkpoints,
        client,
        table,
        ..
    } = checkpoint_store("").await;
    let leases = DynamoLeaseStore::new(client, &table);
    let (a, b): (WorkerId, WorkerId) = ("worker-a".into(), "worker-b".into());
    let shard = ShardInfo {
        id: "shardId-000000000001".into(),
        parent: Some("shardId-000000000000".into()),
        adjacent_parent: None,
        hash_range: None,
    };
    assert!(leases.create(&Lease::new(&shard)).await.unwrap(), "new");
    assert!(!leases.create(&Lease::new(&shard)).await.unwrap(), "there");
    let read = leases.list().await.unwrap();
    assert_eq!(read, vec![Lease::new(&shard)]);

    // Two workers take the same read: one wins, the other is refused.
    let taken = leases.take(&read[0], &a).await.unwrap();
    assert!(matches!(
        leases.take(&read[0], &b).await,
        Err(LeaseError::Conflict { .. })
    ));
    let fence_a = taken.fence().unwrap();
    assert_eq!(fence_a.counter, 1);
    leases.renew(&fence_a).await.unwrap();
    assert_eq!(leases.list().await.unwrap()[0].heartbeat, 1);

    // A checkpoint under the current fence is written; the lease attributes stay.
    let checkpoint = |fence| Checkpoint {
        shard_id: shard.id.to_string(),
        position: Position::new(SequenceNumber::new("100"), 0),
        shard_end: false,
        snapshot: BTreeMap::new(),
        fence: Some(fence),
    };
    checkpoints
        .save(&checkpoint(fence_a.clone()))
        .await
        .unwrap();
    assert!(leases.list().await.unwrap()[0].is_owned_by(&a));

    // b asks for the lease (once); a hands it over; a's fence is dead from then on.
    let current = leases.list().await.unwrap().remove(0);
    leases.request_handoff(&current, &b).await.unwrap();
    assert!(leases.request_handoff(&current, &b).await.is_err());
    assert_eq!(leases.list().await.unwrap()[0].handoff_to, Some(b.clone()));
    leases
        .release(&fence_a, Release::To(b.clone()))
        .await
        .unwrap();
    let handed = leases.list().await.unwrap().remove(0);
    assert!(handed.is_owned_by(&b) && handed.counter == 2 && handed.handoff_to.is_none());
    assert!(matches!(
        leases.renew(&fence_a).await,
        Err(LeaseError::Conflict { .. })
    ));
    assert!(matches!(
        checkpoints.save(&checkpoint(fence_a.clone())).await,
        Err(CheckpointError::LeaseLost { .. })
    ));
    // Marks are written under the current fence only; the next checkpoint clears the files end
    // (it held for the checkpoint before) and keeps how far alerts are published.
    let files_end = Mark::FilesEnd(FilesEnd {
        after: Some(Position::new(SequenceNumber::new("100"), 0)),
        end: Position::new(SequenceNumber::new("150"), 2),
    });
    let published = Position::new(SequenceNumber::new("140"), 0);
    assert!(matches!(
        checkpoints.mark(&fence_a, &files_end).await,
        Err(CheckpointError::LeaseLost { .. })
    ));
    assert_eq!(
        checkpoints.marks(&shard.id).await.unwrap(),
        Marks::default()
    );
    let fence_b = handed.fence().unwrap();
    checkpoints.mark(&fence_b, &files_end).await.unwrap();
    checkpoints
        .mark(&fence_b, &Mark::AlertsPublished(published.clone()))
        .await
        .unwrap();
    let sinks_durable = std::collections::BTreeMap::from([(
        "table".to_owned(),
        Position::new(SequenceNumber::new("145"), 0),
    )]);
    checkpoints
        .mark(&fence_b, &Mark::SinksDurable(sinks_durable.clone()))
        .await
        .unwrap();
    let Mark::FilesEnd(reserved) = files_end else {
        unreachable!()
    };
    assert_eq!(
        checkpoints.marks(&shard.id).await.unwrap(),
        Marks {
            files_end: Some(reserved),
            alerts_published: Some(published.clone()),
            sinks_durable: sinks_durable.clone(),
        }
    );
    assert!(
        leases.list().await.unwrap()[0].is_owned_by(&b),
        "the lease stays"
    );
    checkpoints
        .save(&checkpoint(handed.fence().unwrap()))
        .await
        .unwrap();
    assert_eq!(
        checkpoints.marks(&shard.id).await.unwrap(),
        Marks {
            files_end: None,
            alerts_published: Some(published),
            sinks_durable,
        }
    );

    // The end of the shard: unowned, finished, and its parents remembered.
    leases
        .release(&handed.fence().unwrap(), Release::ShardEnd)
        .await
        .unwrap();
    let finished = leases.list().await.unwrap().remove(0);
    assert!(finished.shard_end && finished.owner.is_none());
    assert_eq!(finished.parents, vec![shard.parent.clone().unwrap()]);
    assert_eq!(
        checkpoints.load(&shard.id).await.unwrap().unwrap().position,
        Position::new(SequenceNumber::new("100"), 0)
    );
}

fn alert() -> Alert {
    Alert {
        id: "AAPL-change_percent-1767623400000-4959".into(),
        symbol: "AAPL".into(),
        kind: AlertKind::ChangePercent,
        severity: Severity::Warning,
        event_time_ms: 1_767_623_400_000,
        price: 213.4,
        value: -6.21,
        threshold: 5.0,
        message: "AAPL change vs previous close -6.21% (threshold 5%)".into(),
    }
}

#[tokio::test]
async fn sns_alerts_reach_a_subscribed_queue_with_attributes() {
    let config = common::sdk_config();
    let sns = aws_sdk_sns::Client::new(&config);
    let topic = common::topic(&config).await;
    let queue_url = common::subscribed_queue(&config, &topic).await;

    SnsAlertSink::new(sns, &topic)
        .publish(&alert())
        .await
        .unwrap();

    let envelopes = common::drain_queue(&config, &queue_url).await;
    assert_eq!(envelopes.len(), 1);
    let envelope = &envelopes[0];
    assert_eq!(
        envelope["Subject"],
        "AAPL change vs previous close -6.21% (threshold 5%)"
    );
    assert_eq!(
        common::alert_of(envelope)["id"],
        "AAPL-change_percent-1767623400000-4959",
        "queues get the JSON body"
    );
    assert_eq!(
        envelope["MessageAttributes"]["alert_id"]["Value"],
        "AAPL-change_percent-1767623400000-4959",
        "subscribers can drop repeats by attribute"
    );
    assert_eq!(envelope["MessageAttributes"]["symbol"]["Value"], "AAPL");
    assert_eq!(
        envelope["MessageAttributes"]["kind"]["Value"],
        "change_percent"
    );
    assert_eq!(
        envelope["MessageAttributes"]["severity"]["Value"],
        "warning"
    );
}

/// How the error policy takes what SNS answers: an alert it finds invalid is that alert's
/// refusal (dead-lettered), a missing permission a refusal of every publish (retried, reported).
#[tokio::test]
async fn sns_refusals_are_told_apart() {
    let config = common::sdk_config();
    let topic = common::topic(&config).await;
    let proxy = FaultProxy::start(&common::endpoint()).await;
    let sns = aws_sdk_sns::Client::new(&common::sdk_config_at(&proxy.url));
    let alerts = SnsAlertSink::new(sns, &topic);
    for (status, code, failure) in [
        ("400 Bad Request", "InvalidParameter", Failure::ItemRefused),
        ("403 Forbidden", "AuthorizationError", Failure::Refused),
    ] {
        proxy.fail("Action=Publish", 1, Fault::QueryError(status, code));
        let error = alerts.publish(&alert()).await.unwrap_err();
        assert_eq!(error.failure(), failure, "{code}: {error}");
        assert!(error.to_string().contains(code), "{error}");
    }
    alerts.publish(&alert()).await.unwrap();
}

#[tokio::test]
async fn a_fifo_topic_drops_a_repeated_alert() {
    let config = common::sdk_config();
    let (topic, queue_url) = common::fifo_topic_and_queue(&config).await;
    let alerts = SnsAlertSink::new(aws_sdk_sns::Client::new(&config), &topic);
    // As after a crash between publishing an alert and marking it published: the same alert
    // twice.
    alerts.publish(&alert()).await.unwrap();
    alerts.publish(&alert()).await.unwrap();

    let envelopes = common::drain_queue(&config, &queue_url).await;
    assert_eq!(envelopes.len(), 1, "the repeat is dropped: {envelopes:?}");
    assert_eq!(
        envelopes[0]["MessageAttributes"]["alert_id"]["Value"],
        "AAPL-change_percent-1767623400000-4959"
    );
}

#[tokio::test]
async fn cloudwatch_receives_statistic_sets() {
    let config = common::sdk_config();
    let namespace = common::unique("Kinetick");
    let metrics = Metrics::default();
    metrics.add(Counter::RecordsProcessed, 1234);
    let data = Drain::default().take(&metrics);
    CloudWatchMetricsSink::new(aws_sdk_cloudwatch::Client::new(&config), &namespace)
        .publish(&data)
        .await
        .unwrap();

    let sum = common::metric_sum(&config, &namespace, "RecordsProcessed").await;
    assert_eq!(sum, 1234.0);
}

#[tokio::test]
async fn kinesis_cursor_reads_plain_and_aggregated_records_and_resumes() {
    let config = common::sdk_config();
    let kinesis = aws_sdk_kinesis::Client::new(&config);
    let stream = common::unique("ticks");
    kinesis
        .create_stream()
        .stream_name(&stream)
        .shard_count(1)
        .send()
        .await
        .unwrap();
    for i in 0..5 {
        kinesis
            .put_record()
            .stream_name(&stream)
            .partition_key("AAPL")
            .data(aws_sdk_kinesis::primitives::Blob::new(format!(
                "{{\"n\":{i}}}"
            )))
            .send()
            .await
            .unwrap();
    }
    let packed = kpl::aggregate(&[("MSFT", b"{\"n\":5}"), ("MSFT", b"{\"n\":6}")]);
    kinesis
        .put_record()
        .stream_name(&stream)
        .partition_key("MSFT")
        .data(aws_sdk_kinesis::primitives::Blob::new(packed.to_vec()))
        .send()
        .await
        .unwrap();

    let source = KinesisStream::new(
        kinesis,
        &stream,
        Polling {
            idle_interval: std::time::Duration::from_millis(50),
            ..Polling::default()
        },
    );
    let shards = source.list_shards().await.unwrap();
    assert_eq!(shards.len(), 1);
    let mut cursor = source
        .open_shard(&shards[0].id, StartPosition::TrimHorizon)
        .await
        .unwrap();
    let mut records = Vec::new();
    while records.len() < 7 {
        records.extend(cursor.next_batch().await.unwrap().records);
    }
    let data: Vec<String> = records
        .iter()
        .map(|r| String::from_utf8(r.data.to_vec()).unwrap())
        .collect();
    assert_eq!(data.last().unwrap(), "{\"n\":6}");
    assert_eq!(&*records[6].partition_key, "MSFT");
    assert_eq!(records[6].position.sub_sequence, 1);
    assert_eq!(
        records[5].position.sequence, records[6].position.sequence,
        "one Kinesis record, two user records"
    );
    assert!(records.windows(2).all(|w| w[0].position < w[1].position));

    // Resuming inside the aggregated record skips what was checkpointed.
    let mut resumed = source
        .open_shard(
            &shards[0].id,
            StartPosition::After(records[5].position.clone()),
        )
        .await
        .unwrap();
    // GetRecords may answer empty before the data, as real Kinesis does.
    let mut again = Vec::new();
    for _ in 0..20 {
        again.extend(resumed.next_batch().await.unwrap().records);
        if !again.is_empty() {
            break;
        }
    }
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].position, records[6].position);

    // Resuming after a plain record starts with the record after it.
    let mut resumed = source
        .open_shard(
            &shards[0].id,
            StartPosition::After(records[3].position.clone()),
        )
        .await
        .unwrap();
    let mut again = Vec::new();
    for _ in 0..20 {
        again.extend(resumed.next_batch().await.unwrap().records);
        if again.len() >= 3 {
            break;
        }
    }
    let positions: Vec<_> = again.iter().map(|r| r.position.clone()).collect();
    let expected: Vec<_> = records[4..].iter().map(|r| r.position.clone()).collect();
    assert_eq!(positions, expected);
}
