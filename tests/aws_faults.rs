//! The AWS ports under failure: throttling, 5xx and expired iterators injected by a proxy in
//! front of the emulator are retried with backoff and lose or duplicate nothing; errors that
//! retrying cannot fix fail fast; bad records reach the decoder (and its dead letters) intact.
//!
//! The stream port retries inside; the sink ports mark errors retryable and the sink actors
//! retry them with [`kinetick::retry::backoff`], as [`with_backoff`] does here.

mod common;

use std::time::{Duration, Instant};

use backon::Retryable;
use bytes::Bytes;
use common::fault_proxy::{Fault, FaultProxy};
use kinetick::alerts::AlertSink;
use kinetick::alerts::sns::SnsAlertSink;
use kinetick::metrics::cloudwatch::CloudWatchMetricsSink;
use kinetick::metrics::{Counter, Drain, Metrics, MetricsSink};
use kinetick::model::item::{AttrValue, Item};
use kinetick::model::kpl;
use kinetick::model::rules::{Alert, AlertKind, Severity};
use kinetick::objects::ObjectStore;
use kinetick::objects::s3::S3ObjectStore;
use kinetick::stream::kinesis::{KinesisStream, Polling};
use kinetick::stream::{StartPosition, StreamSource};
use kinetick::table::TicksTable;
use kinetick::table::dynamodb::DynamoTicksTable;

/// Runs `call` under the sink actors' retry policy.
async fn with_backoff<T, E, F>(
    call: impl FnMut() -> F,
    retryable: impl Fn(&E) -> bool,
) -> Result<T, E>
where
    F: std::future::Future<Output = Result<T, E>>,
{
    call.retry(kinetick::retry::backoff()).when(retryable).await
}

async fn proxy() -> (FaultProxy, aws_config::SdkConfig) {
    let proxy = FaultProxy::start(&common::endpoint()).await;
    let config = common::sdk_config_at(&proxy.url);
    (proxy, config)
}

/// A one-shard stream holding `data`, one record each.
async fn stream_with(kinesis: &aws_sdk_kinesis::Client, data: &[Bytes]) -> String {
    let name = common::unique("faults");
    kinesis
        .create_stream()
        .stream_name(&name)
        .shard_count(1)
        .send()
        .await
        .unwrap();
    for record in data {
        kinesis
            .put_record()
            .stream_name(&name)
            .partition_key("AAPL")
            .data(aws_sdk_kinesis::primitives::Blob::new(record.to_vec()))
            .send()
            .await
            .unwrap();
    }
    name
}

/// Reads the only shard from its start until `count` records came back (or 30 s passed).
async fn read_all(source: &KinesisStream, count: usize) -> Vec<kinetick::stream::Record> {
    let shard = source.list_shards().await.unwrap().remove(0).id;
    let mut cursor = source
        .open_shard(&shard, StartPosition::TrimHorizon)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut records = Vec::new();
    while records.len() < count && Instant::now() < deadline {
        records.extend(cursor.next_batch().await.unwrap().records);
    }
    records
}

fn quick_polling() -> Polling {
    Polling {
        idle_interval: Duration::from_millis(20),
        ..Polling::default()
    }
}

#[tokio::test]
async fn kinesis_reads_through_throttling_5xx_and_an_expired_iterator() {
    let (proxy, config) = proxy().await;
    let kinesis = aws_sdk_kinesis::Client::new(&config);
    let data: Vec<Bytes> = (0..20)
        .map(|i| Bytes::from(format!("{{\"n\":{i}}}")))
        .collect();
    let name = stream_with(&kinesis, &data).await;
    let get_records = "Kinesis_20131202.GetRecords";
    proxy.fail(
        get_records,
        2,
        Fault::JsonError("ProvisionedThroughputExceededException"),
    );
    proxy.fail(get_records, 1, Fault::JsonInternalError);
    proxy.fail(get_records, 1, Fault::JsonError("ExpiredIteratorException"));

    let source = KinesisStream::new(kinesis, &name, quick_polling());
    let records = read_all(&source, data.len()).await;

    let read: Vec<Bytes> = records.iter().map(|r| r.data.clone()).collect();
    assert_eq!(read, data, "every record once, in order");
    assert!(records.windows(2).all(|w| w[0].position < w[1].position));
    assert!(
        proxy.requests(get_records) >= 5,
        "four faults and a success"
    );
    assert_eq!(
        proxy.requests("Kinesis_20131202.GetShardIterator"),
        2,
        "one iterator at the start and one fresh after expiry"
    );
}

#[tokio::test]
async fn kinesis_passes_a_damaged_aggregate_through_as_one_record() {
    let (_proxy, config) = proxy().await;
    let kinesis = aws_sdk_kinesis::Client::new(&config);
    let aggregate = kpl::aggregate(&[("AAPL", b"{\"n\":1}"), ("AAPL", b"{\"n\":2}")]);
    let mut damaged = aggregate.to_vec();
    let last = damaged.len() - 1;
    damaged[last] ^= 0xff; // breaks the MD5 digest
    let damaged = Bytes::from(damaged);
    let name = stream_with(&kinesis, &[damaged.clone(), aggregate]).await;

    let source = KinesisStream::new(kinesis, &name, quick_polling());
    let records = read_all(&source, 3).await;

    assert_eq!(records.len(), 3);
    assert_eq!(
        records[0].data, damaged,
        "kept whole, for the decoder to dead-letter"
    );
    assert_eq!(&records[1].data[..], b"{\"n\":1}");
    assert_eq!(&records[2].data[..], b"{\"n\":2}");
}

fn item(i: usize) -> Item<'static> {
    Item::Attributes(vec![
        ("symbol", AttrValue::S("AAPL".into())),
        (
            "timestamp",
            AttrValue::S(format!("2026-01-05T14:30:00.{i:03}Z#{i}").into()),
        ),
        ("price", AttrValue::N(format!("{}.5", 100 + i).into())),
    ])
}

#[tokio::test]
async fn dynamodb_writes_through_throttling_and_5xx() {
    let (proxy, config) = proxy().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let name = common::table(&client, "symbol", Some("timestamp")).await;
    let batch_write = "DynamoDB_20120810.BatchWriteItem";
    proxy.fail(
        batch_write,
        2,
        Fault::JsonError("ProvisionedThroughputExceededException"),
    );
    // More faults in a row than the SDK's own three attempts: the sink's backoff takes over.
    proxy.fail(batch_write, 2, Fault::JsonInternalError);

    let table = DynamoTicksTable::new(client.clone(), &name, 1);
    let items: Vec<Item> = (0..60).map(item).collect();
    with_backoff(|| table.put_items(&items), |e| e.is_retryable())
        .await
        .unwrap();

    let scanned = client.scan().table_name(&name).send().await.unwrap();
    assert_eq!(scanned.count(), 60, "every item written once");
    assert!(
        proxy.requests(batch_write) >= 3 + 4,
        "three batches of at most 25 items, four faults"
    );
}

#[tokio::test]
async fn errors_that_retrying_cannot_fix_fail_fast() {
    let config = common::sdk_config();
    let table = DynamoTicksTable::new(
        aws_sdk_dynamodb::Client::new(&config),
        common::unique("missing"),
        1,
    );
    let started = Instant::now();
    let error = table.put_items(&[item(1)]).await.unwrap_err();
    assert!(!error.is_retryable(), "{error}");
    assert!(error.to_string().contains("ResourceNotFound"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn s3_puts_through_slow_down() {
    let (proxy, config) = proxy().await;
    let (client, bucket) = common::bucket(&config).await;
    let put_object = format!("PUT /{bucket}/dead-letters/");
    proxy.fail(&put_object, 4, Fault::S3SlowDown);

    let store = S3ObjectStore::new(client, &bucket);
    let body = Bytes::from_static(b"{\"n\":1}\n");
    with_backoff(
        || store.put("dead-letters/x.jsonl", body.clone(), "application/x-ndjson"),
        |e| e.is_retryable(),
    )
    .await
    .unwrap();

    assert_eq!(store.get("dead-letters/x.jsonl").await.unwrap(), Some(body));
    assert_eq!(proxy.requests(&put_object), 5);
}

#[tokio::test]
async fn sns_and_cloudwatch_publish_through_a_5xx() {
    let (proxy, config) = proxy().await;
    let topic = common::topic(&config).await;
    proxy.fail("Action=Publish", 4, Fault::QueryInternalError);
    proxy.fail("Action=PutMetricData", 4, Fault::QueryInternalError);

    let alert = Alert {
        id: "AAPL-price_above-1767623400000-1".into(),
        symbol: "AAPL".into(),
        kind: AlertKind::PriceAbove,
        severity: Severity::Warning,
        event_time_ms: 1_767_623_400_000,
        price: 413.1,
        value: 413.1,
        threshold: 412.75,
        message: "AAPL price crossed threshold 412.75 (now 413.10)".into(),
    };
    let alerts = SnsAlertSink::new(aws_sdk_sns::Client::new(&config), &topic);
    with_backoff(|| alerts.publish(&alert), |e| e.is_retryable())
        .await
        .unwrap();
    assert_eq!(proxy.requests("Action=Publish"), 5);

    let metrics = Metrics::default();
    metrics.add(Counter::RecordsProcessed, 7);
    let data = Drain::default().take(&metrics);
    let cloudwatch = CloudWatchMetricsSink::new(
        aws_sdk_cloudwatch::Client::new(&config),
        common::unique("Faults"),
    );
    with_backoff(|| cloudwatch.publish(&data), |e| e.retryable)
        .await
        .unwrap();
    assert_eq!(proxy.requests("Action=PutMetricData"), 5);
}
