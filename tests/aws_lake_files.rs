//! Lake files that span barriers, through the real binary on the AWS emulator, with ticks put at
//! a steady rate over many 1 s barriers:
//!
//! - A file grows past S3's part size and is uploaded in parts, while the table and the alerts
//!   are durable at every barrier ahead of the checkpoint. A worker killed (`kill -9`) with that
//!   multipart upload in flight loses and doubles nothing in the lake, the table or the alerts,
//!   and no upload is left unfinished after the recovery.
//! - Files close once they reach the target size or the age, not at every barrier; a worker
//!   killed in the middle of a file leaves every tick once in the table and the lake.
//!
//! Every computed value, and the set of alerts, equals a fault-free reference: the same records
//! through the in-process pipeline on local ports.
//!
//! A lake file reaches the 8 MiB of its first part only after hundreds of thousands of ticks, so
//! the records go into the stream as KPL aggregates (the emulator takes one Kinesis record of a
//! thousand ticks about as fast as one of a single tick), and the big-file case writes the table
//! in bars mode, an item per symbol and minute: the emulator writes items far more slowly than
//! such a file's ticks come in the time a test may take. The age case, slower, writes an item per
//! tick.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use bytes::Bytes;
use common::stack::{
    LakeRow, Run, Stack, assert_bars_match_lake, assert_exactly_once, create_stack_with_shards,
    dead_letter_lines, lake_rows, start_run, terminate,
};
use kinetick::model::tick::{Position, SequenceNumber};
use kinetick::producer::simulator::{MarketSimulator, RecordKind, SimulatorConfig};

const SHARD: &str = "shardId-000000000000";
/// The writer's part size (`PART_BYTES` in `src/actors/object_batcher/open_file.rs`).
const PART_BYTES: i64 = 8 << 20;
/// How long a case waits for any one thing the workers should do.
const PATIENCE: Duration = Duration::from_secs(90);

/// The cases take turns: each loads the emulator near what it takes, and the scans of one
/// case's checks would hold up the other's lease renewals past their failover time.
static EMULATOR: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Starts a worker that takes over a killed worker's lease after 3 s.
fn worker(stack: &Stack, name: &str, settings: &[(&str, &str)]) -> Run {
    let mut all = vec![
        ("KINETICK_LEASE__WORKER_ID", name),
        ("KINETICK_LEASE__FAILOVER_TIME", "3s"),
        ("KINETICK_LEASE__POLL_INTERVAL", "500ms"),
    ];
    all.extend(settings);
    start_run(stack, &all)
}

/// A simulated record as it goes into the stream.
struct Record {
    key: String,
    data: Bytes,
    /// `(symbol, event time)` of a valid tick; `None` for a malformed record.
    tick: Option<(String, i64)>,
}

/// A market of 30 symbols with `jumps_per_session` news that raise alerts. Its ticks are written
/// with only symbol, price, volume and time, so that the emulator moves half the bytes for the
/// same ticks; malformed records stay as they are.
fn market(count: usize, seed: u64, jumps_per_session: f64) -> Vec<Record> {
    let config = SimulatorConfig {
        symbols: 30,
        seed,
        jumps_per_session,
        ..SimulatorConfig::default()
    };
    MarketSimulator::new(config)
        .take(count)
        .map(|r| {
            let key = r.partition_key.to_string();
            if r.kind == RecordKind::Malformed {
                let data = Bytes::from(r.data);
                return Record {
                    key,
                    data,
                    tick: None,
                };
            }
            // `{"symbol":…,"open":…,"high":…,"low":…,"price":…,"previous_close":…,"change":…,
            // "change_percent":…,"volume":…,"timestamp":"…"}`, without the fields between.
            let text = String::from_utf8(r.data).unwrap();
            let at = |field: &str| text.find(field).unwrap();
            let compact = [
                &text[..at(",\"open\":")],
                &text[at(",\"price\":")..at(",\"previous_close\":")],
                &text[at(",\"volume\":")..],
            ]
            .concat();
            let time = &text[at("\"timestamp\":\"") + 13..text.len() - 2];
            let time = chrono::DateTime::parse_from_rfc3339(time)
                .unwrap()
                .timestamp_millis();
            Record {
                key: key.clone(),
                data: Bytes::from(compact),
                tick: Some((key, time)),
            }
        })
        .collect()
}

/// Puts records at a steady rate, `per_put` of them every 100 ms as one KPL aggregate, until all
/// are put or it is stopped.
struct Producer {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Produced>,
}

/// What a producer put: how many of the records, and the position of the last.
struct Produced {
    count: usize,
    last: Position,
}

impl Producer {
    fn start(config: &SdkConfig, stream: &str, records: Arc<Vec<Record>>, per_put: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (kinesis, stream, stopping) = (
            aws_sdk_kinesis::Client::new(config),
            stream.to_owned(),
            stop.clone(),
        );
        let task = tokio::spawn(async move {
            let mut pace = tokio::time::interval(Duration::from_millis(100));
            let (mut count, mut last) = (0, None);
            for chunk in records.chunks(per_put) {
                pace.tick().await;
                if stopping.load(Ordering::Relaxed) {
                    break;
                }
                let users: Vec<(&str, &[u8])> = chunk
                    .iter()
                    .map(|r| (r.key.as_str(), r.data.as_ref()))
                    .collect();
                let aggregate = kinetick::model::kpl::aggregate(&users);
                let put = kinesis
                    .put_record()
                    .stream_name(&stream)
                    .partition_key(&chunk[0].key)
                    .data(aws_sdk_kinesis::primitives::Blob::new(aggregate.to_vec()))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(put.shard_id(), SHARD);
                count += chunk.len();
                let sequence = SequenceNumber::new(put.sequence_number());
                last = Some(Position::new(sequence, chunk.len() as u32 - 1));
            }
            Produced {
                count,
                last: last.expect("records were put"),
            }
        });
        Self { stop, task }
    }

    async fn finish(self) -> Produced {
        self.task.await.unwrap()
    }

    async fn stop(self) -> Produced {
        self.stop.store(true, Ordering::Relaxed);
        self.finish().await
    }
}

/// The shard's item in the lease and checkpoint table, as far as these tests read it.
#[derive(Debug, Clone, Default)]
struct ShardItem {
    checkpoint: Option<Position>,
    /// How far the table is durable past the checkpoint (the `sinks_durable` mark).
    table: Option<Position>,
    /// How far the alerts are marked published (`alerts_published`).
    alerts: Option<Position>,
}

impl ShardItem {
    /// The table is durable past the checkpoint: the shard's files are growing over barriers.
    fn table_ahead(&self) -> bool {
        self.table.is_some() && self.table > self.checkpoint
    }

    /// How far a killed owner had settled the alerts: marked published, or checkpointed.
    fn alerts_settled(&self) -> Option<Position> {
        self.checkpoint.clone().max(self.alerts.clone())
    }
}

async fn shard_item(config: &SdkConfig, table: &str) -> ShardItem {
    let item = aws_sdk_dynamodb::Client::new(config)
        .get_item()
        .table_name(table)
        .key(
            "shard_id",
            aws_sdk_dynamodb::types::AttributeValue::S(SHARD.to_owned()),
        )
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap_or_default();
    let text = |name: &str| item.get(name).map(|v| v.as_s().unwrap().as_str());
    let checkpoint = text("sequence_number").map(|sequence| {
        let sub = item["sub_sequence_number"].as_n().unwrap().parse().unwrap();
        Position::new(SequenceNumber::new(sequence), sub)
    });
    let durable: BTreeMap<String, Position> = text("sinks_durable")
        .map(|json| serde_json::from_str(json).unwrap())
        .unwrap_or_default();
    ShardItem {
        checkpoint,
        table: durable.get("table").cloned(),
        alerts: text("alerts_published").map(|json| serde_json::from_str(json).unwrap()),
    }
}

/// Reads the shard's item every 200 ms while a case runs, keeping every checkpoint and table
/// durable position it sees: each is a barrier's, so their count is a lower bound on the
/// barriers passed.
struct Watch {
    seen: Arc<Mutex<(ShardItem, BTreeSet<Position>)>>,
    task: tokio::task::JoinHandle<()>,
}

impl Watch {
    fn start(config: &SdkConfig, table: &str) -> Self {
        let seen: Arc<Mutex<(ShardItem, BTreeSet<Position>)>> = Arc::default();
        let (config, table, writing) = (config.clone(), table.to_owned(), seen.clone());
        let task = tokio::spawn(async move {
            loop {
                let item = shard_item(&config, &table).await;
                {
                    let mut seen = writing.lock().unwrap();
                    let barriers = item.checkpoint.iter().chain(&item.table).cloned();
                    seen.1.extend(barriers);
                    seen.0 = item;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Self { seen, task }
    }

    fn latest(&self) -> ShardItem {
        self.seen.lock().unwrap().0.clone()
    }

    async fn until(&self, what: &str, wanted: impl Fn(&ShardItem) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let item = self.latest();
            if wanted(&item) {
                return;
            }
            assert!(Instant::now() < deadline, "never {what}: {item:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Barriers seen so far (a lower bound).
    fn barriers(&self) -> usize {
        self.seen.lock().unwrap().1.len()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An unfinished multipart upload and the size of its parts.
#[derive(Debug)]
struct Upload {
    key: String,
    parts: usize,
    bytes: i64,
}

/// The bucket's unfinished multipart uploads. Their parts are listed with a plain request: the
/// emulator answers ListParts with a root element the SDK refuses (`ListPartsResponse`).
async fn uploads(config: &SdkConfig, bucket: &str) -> Vec<Upload> {
    let listed = common::s3(config)
        .list_multipart_uploads()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    let mut uploads = Vec::new();
    for upload in listed.uploads() {
        let (key, id) = (upload.key().unwrap(), upload.upload_id().unwrap());
        let url = format!("{}/{bucket}/{key}?uploadId={id}", common::endpoint());
        let body = reqwest::get(url).await.unwrap().text().await.unwrap();
        let sizes: Vec<i64> = body
            .split("<Size>")
            .skip(1)
            .map(|rest| rest.split('<').next().unwrap().parse().unwrap())
            .collect();
        uploads.push(Upload {
            key: key.to_owned(),
            parts: sizes.len(),
            bytes: sizes.iter().sum(),
        });
    }
    uploads
}

/// A tick file of the lake: its key, size, and the position it starts at.
#[derive(Debug)]
struct LakeFile {
    key: String,
    bytes: i64,
    first: Position,
}

/// The lake's tick files, in stream order.
async fn lake_files(config: &SdkConfig, bucket: &str) -> Vec<LakeFile> {
    let listed = common::s3(config)
        .list_objects_v2()
        .bucket(bucket)
        .prefix("ticks/")
        .send()
        .await
        .unwrap();
    let mut files: Vec<LakeFile> = listed
        .contents()
        .iter()
        .map(|object| {
            let key = object.key().unwrap().to_owned();
            LakeFile {
                first: first_position(&key),
                key,
                bytes: object.size().unwrap(),
            }
        })
        .collect();
    files.sort_by(|a, b| a.first.cmp(&b.first));
    files
}

/// The position a tick file of the shard starts at (`…/{shard}-{position}.parquet`).
fn first_position(key: &str) -> Position {
    let name = key.rsplit('/').next().unwrap();
    name.strip_prefix(&format!("{SHARD}-"))
        .and_then(|rest| rest.strip_suffix(".parquet"))
        .unwrap_or_else(|| panic!("{key}: not a tick file of {SHARD}"))
        .parse()
        .unwrap()
}

/// How long the records of a lake file took to arrive: from its first to its last, in ms.
async fn arrival_span(config: &SdkConfig, bucket: &str, key: &str) -> i64 {
    let body = common::object_bytes(&common::s3(config), bucket, key).await;
    let arrival = common::lake::column("arrival_time");
    let times: Vec<i64> = common::lake::file_rows(body)
        .iter()
        .map(|(_, values)| values[arrival].parse().unwrap())
        .collect();
    times.iter().max().unwrap() - times.iter().min().unwrap()
}

/// A tick by what does not depend on the stream's numbering: symbol, event time, and its rank
/// among the ticks of that symbol and time (a symbol may tick twice in a millisecond).
type TickKey = (String, i64, usize);

/// The computed values of each tick: the lake's Float64 columns, in schema order.
type Values = BTreeMap<TickKey, Vec<Option<f64>>>;

/// A lake row on its way into [`Values`].
struct RankedRow {
    /// `(digits, sequence number, sub-sequence)`: the row's place in stream order.
    order: (usize, String, i64),
    tick: (String, i64),
    values: Vec<Option<f64>>,
}

/// The rows' values by [`TickKey`], ranking the ticks of a symbol and time in stream order.
fn ranked(rows: impl Iterator<Item = RankedRow>) -> Values {
    let mut rows: Vec<RankedRow> = rows.collect();
    rows.sort_by(|a, b| a.order.cmp(&b.order));
    let mut ranks: BTreeMap<(String, i64), usize> = BTreeMap::new();
    rows.into_iter()
        .map(|row| {
            let rank = ranks.entry(row.tick.clone()).or_default();
            *rank += 1;
            ((row.tick.0, row.tick.1, *rank), row.values)
        })
        .collect()
}

/// An alert by the tick that raised it, whatever the stream's numbering: symbol, kind (as
/// JSON), event time.
type AlertKey = (String, String, i64);

fn alert_key(alert: &serde_json::Value) -> AlertKey {
    (
        alert["symbol"].as_str().unwrap().to_owned(),
        alert["kind"].to_string(),
        alert["event_time_ms"].as_i64().unwrap(),
    )
}

/// What a fault-free run makes of the records: computed values and alerts.
struct Reference {
    values: Values,
    alerts: BTreeSet<AlertKey>,
}

/// Runs the records through the in-process pipeline on local ports to their end, on a thread of
/// its own while the workers on the emulator run.
fn reference(records: Arc<Vec<Record>>) -> std::thread::JoinHandle<Reference> {
    use kinetick::pipeline::{Pipeline, Ports};
    use kinetick::stream::StartPosition;
    use kinetick::stream::local::LocalStream;
    std::thread::spawn(move || {
        let dir = tempfile::tempdir().unwrap();
        actix::System::new().block_on(async {
            let stream = LocalStream::new(1, 50_000);
            let ports = Ports::local(dir.path(), stream.clone(), false).unwrap();
            let config = kinetick::config::Config::default();
            let start = StartPosition::TrimHorizon;
            let mut pipeline = Pipeline::start(&config, ports, start, Default::default()).await;
            actix::spawn(async move {
                for chunk in records.chunks(5_000) {
                    let chunk = chunk.iter().map(|r| (r.key.clone(), r.data.clone()));
                    stream.put_batch(chunk.collect()).await;
                }
                stream.close();
            });
            pipeline.wait().await.unwrap();
            pipeline.close().await;
        });
        let schema = kinetick::model::lake::tick_schema();
        let floats: Vec<usize> = (0..schema.fields().len())
            .filter(|&i| schema.field(i).data_type() == &arrow_schema::DataType::Float64)
            .collect();
        let (symbol, time) = (
            common::lake::column("symbol"),
            common::lake::column("event_time"),
        );
        let rows = common::lake::lake_rows(dir.path());
        let values = ranked(rows.iter().map(|((_, sequence, sub), row)| {
            let float = |text: &String| f64::from_bits(u64::from_str_radix(text, 16).unwrap());
            RankedRow {
                order: (sequence.len(), sequence.clone(), *sub),
                tick: (row[symbol].clone(), row[time].parse().unwrap()),
                values: floats
                    .iter()
                    .map(|&i| (row[i] != "null").then(|| float(&row[i])))
                    .collect(),
            }
        }));
        let alerts: Vec<AlertKey> = std::fs::read_to_string(dir.path().join("alerts.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|line| alert_key(&serde_json::from_str(line).unwrap()))
            .collect();
        // A restarted worker counts the task's alerts per minute afresh: the comparison holds
        // only for a market that never reaches that cap (`alerts.max-per-minute`, 120).
        let mut per_minute: BTreeMap<i64, usize> = BTreeMap::new();
        for (_, _, time) in &alerts {
            *per_minute.entry(time.div_euclid(60_000)).or_default() += 1;
        }
        assert!(
            per_minute.values().all(|&n| n < 100),
            "alerts per minute: {per_minute:?}"
        );
        Reference {
            values,
            alerts: alerts.into_iter().collect(),
        }
    })
}

/// Every valid tick put is in the lake once, with the reference's values; every malformed
/// record is dead-lettered once.
async fn assert_lake_matches(
    config: &SdkConfig,
    stack: &Stack,
    rows: &[LakeRow],
    records: &[Record],
    reference: &Values,
) {
    let valid = records.iter().filter(|r| r.tick.is_some()).count();
    let positions: BTreeSet<_> = rows.iter().map(|r| &r.position).collect();
    assert_eq!(rows.len(), valid, "lake rows");
    assert_eq!(positions.len(), valid, "lake rows are unique");
    let actual = ranked(rows.iter().map(|row| RankedRow {
        order: (row.position.1.len(), row.position.1.clone(), row.position.2),
        tick: row.tick.clone(),
        values: row.values.clone(),
    }));
    let differing: Vec<_> = actual
        .iter()
        .filter(|(tick, values)| reference.get(*tick) != Some(values))
        .take(5)
        .collect();
    assert!(
        differing.is_empty(),
        "computed values differ from the reference's: {differing:?}"
    );
    let letters = dead_letter_lines(config, &stack.bucket).await;
    let unique: BTreeSet<(String, String)> = letters
        .iter()
        .map(|(_, l)| {
            let text = |name: &str| l[name].to_string();
            (text("sequence_number"), text("sub_sequence_number"))
        })
        .collect();
    assert_eq!(letters.len(), records.len() - valid, "dead letters");
    assert_eq!(unique.len(), letters.len(), "dead letters are unique");
}

/// The alerts in the case's queue, `(id, key)`, deleting what it reads.
async fn drain_alerts(config: &SdkConfig, stack: &Stack) -> Vec<(String, AlertKey)> {
    common::drain_queue(config, &stack.queue_url)
        .await
        .iter()
        .map(|envelope| {
            let alert = common::alert_of(envelope);
            (alert["id"].as_str().unwrap().to_owned(), alert_key(&alert))
        })
        .collect()
}

/// Each alert of the reference's among the records put reached the queue, and none other; a
/// repeat only of an alert the killed worker had published past what it had settled (marked
/// published, or checkpointed). Returns how many alerts, and how many repeated.
fn assert_alerts_once(
    before_kill: &[(String, AlertKey)],
    after_kill: &[(String, AlertKey)],
    settled_at_kill: Option<&Position>,
    reference: &BTreeSet<AlertKey>,
    records: &[Record],
) -> (usize, usize) {
    let mut times: BTreeMap<&str, usize> = BTreeMap::new();
    for (id, _) in before_kill.iter().chain(after_kill) {
        *times.entry(id).or_default() += 1;
    }
    let repeated: Vec<&str> = times
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| *id)
        .collect();
    // The id ends with the position of the tick that raised the alert.
    let settled = |id: &str| {
        let position: Position = id.rsplit('-').next().unwrap().parse().unwrap();
        settled_at_kill.is_some_and(|settled| &position <= settled)
    };
    assert!(
        repeated.iter().all(|id| !settled(id)),
        "an alert settled before the kill was published again: {repeated:?}"
    );
    assert!(
        repeated
            .iter()
            .all(|id| before_kill.iter().any(|(b, _)| b == id)),
        "a repeat of an alert the killed worker had not published: {repeated:?}"
    );
    let keys: BTreeSet<AlertKey> = before_kill
        .iter()
        .chain(after_kill)
        .map(|(_, key)| key.clone())
        .collect();
    assert_eq!(times.len(), keys.len(), "an id per alert");
    let ticks: BTreeSet<&(String, i64)> = records.iter().filter_map(|r| r.tick.as_ref()).collect();
    let expected: BTreeSet<AlertKey> = reference
        .iter()
        .filter(|(symbol, _, time)| ticks.contains(&(symbol.clone(), *time)))
        .cloned()
        .collect();
    assert!(!expected.is_empty(), "the market raised alerts");
    let missing: Vec<_> = expected.difference(&keys).collect();
    let other: Vec<_> = keys.difference(&expected).collect();
    assert!(
        missing.is_empty() && other.is_empty(),
        "alerts against the reference: missing {missing:?}, not in it {other:?}"
    );
    (keys.len(), repeated.len())
}

/// A file grows past the part size over many barriers, and the worker writing it is killed with
/// its multipart upload in flight. The next worker aborts that upload and writes the file again
/// from the checkpoint; nothing is lost or doubled anywhere.
#[tokio::test(flavor = "multi_thread")]
async fn a_kill_while_a_file_is_uploaded_in_parts_loses_and_doubles_nothing() {
    let _turn = EMULATOR.lock().await;
    let started = Instant::now();
    let config = common::sdk_config();
    // More than are put: the producer is stopped a little after the kill.
    let records = Arc::new(market(320_000, 71, 200.0));
    let stack = create_stack_with_shards(&config, 1).await;
    let watch = Watch::start(&config, &stack.checkpoint_table);
    // 10,000 ticks a second, a row group of the lake file a barrier.
    let producer = Producer::start(&config, &stack.stream, records.clone(), 1_000);
    // Barriers every second (not every 500 records, as stack.rs has them); files close at the
    // target size only.
    let settings = |target| {
        vec![
            ("KINETICK_TABLE__MODE", "bars"),
            ("KINETICK_CHECKPOINT__MAX_RECORDS", "20000"),
            ("KINETICK_LAKE__MAX_FILE_AGE", "10m"),
            ("KINETICK_LAKE__TARGET_FILE_SIZE", target),
        ]
    };

    // w0 closes a file at 300 KB, a checkpoint with the windows' state to resume from, and stops.
    let w0 = worker(&stack, "w0", &settings("300KB"));
    watch
        .until("a checkpoint", |s| s.checkpoint.is_some())
        .await;
    let w0_log = terminate(w0);

    // w1 resumes with a target no file reaches here: its file grows until its first part is
    // uploaded, while the table is durable past the checkpoint. Then it is killed.
    let big = settings("20MB");
    let w1 = worker(&stack, "w1", &big);
    let deadline = Instant::now() + PATIENCE;
    let in_flight = loop {
        let item = watch.latest();
        let growing = uploads(&config, &stack.bucket)
            .await
            .into_iter()
            .find(|u| u.key.starts_with("ticks/") && u.parts >= 1);
        if let Some(upload) = growing
            && item.table_ahead()
        {
            break upload;
        }
        assert!(
            Instant::now() < deadline,
            "no part uploaded while the table runs ahead: {item:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let w1_log = w1.kill();
    let killed_at = started.elapsed();
    // Computed now, while the next worker waits for the lease, not while w1's file grows.
    let reference = reference(records.clone());
    // The killed worker writes nothing more: this is what it had settled.
    let at_kill = shard_item(&config, &stack.checkpoint_table).await;
    let before_kill = drain_alerts(&config, &stack).await;
    let checkpoint = at_kill
        .checkpoint
        .clone()
        .expect("a checkpoint before the kill");
    assert!(in_flight.bytes >= PART_BYTES, "{in_flight:?}");
    assert!(
        first_position(&in_flight.key) > checkpoint,
        "the upload in flight is of the file after the checkpoint: {in_flight:?}"
    );

    // w2 takes the shard over once the lease expires; the producer goes on a little, then stops.
    let w2 = worker(&stack, "w2", &big);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let produced = producer.stop().await;
    watch
        .until("the table durable to the last record", |s| {
            s.table.as_ref() >= Some(&produced.last)
        })
        .await;
    // Its stop closes the file at its last barrier, which is then the checkpoint.
    let w2_log = terminate(w2);
    let end = shard_item(&config, &stack.checkpoint_table).await;
    assert_eq!(end.checkpoint.as_ref(), Some(&produced.last));
    let barriers = watch.barriers();
    drop(watch);

    let left = uploads(&config, &stack.bucket).await;
    assert!(left.is_empty(), "uploads left unfinished: {left:?}");
    let put = &records[..produced.count];
    let reference = reference.join().unwrap();
    let rows = lake_rows(&config, &stack.bucket).await;
    assert_bars_match_lake(&config, &stack, &rows).await;
    assert_lake_matches(&config, &stack, &rows, put, &reference.values).await;
    let after_kill = drain_alerts(&config, &stack).await;
    let settled = at_kill.alerts_settled();
    let (alerts, repeated) = assert_alerts_once(
        &before_kill,
        &after_kill,
        settled.as_ref(),
        &reference.alerts,
        put,
    );

    // Before the kill, files closed at w0's target but the one closed at its stop; after it, one
    // file from the checkpoint to w2's stop, where the killed upload's file was.
    let files = lake_files(&config, &stack.bucket).await;
    let (before, after): (Vec<&LakeFile>, Vec<&LakeFile>) =
        files.iter().partition(|f| f.first <= checkpoint);
    let (_, at_target) = before.split_last().expect("files before the kill");
    assert!(at_target.iter().all(|f| f.bytes >= 300_000), "{files:?}");
    assert_eq!(after.len(), 1, "{files:?}");
    assert_eq!(after[0].key, in_flight.key);
    assert!(after[0].bytes > PART_BYTES, "{files:?}");
    assert!(files.len() * 3 < barriers, "{files:?}, {barriers} barriers");
    eprintln!(
        "multipart kill: {} ticks at 10,000/s; kill -9 at {killed_at:.1?} with {in_flight:?} in \
         flight, checkpoint {checkpoint}, table durable to {:?}; {barriers} barriers seen; files \
         {:?}; {alerts} alerts ({} before the kill, {repeated} repeated); {:.1?} in all",
        produced.count,
        at_kill.table,
        files.iter().map(|f| (&f.key, f.bytes)).collect::<Vec<_>>(),
        before_kill.len(),
        started.elapsed(),
    );
    drop((w0_log, w1_log, w2_log));
}

/// Files close at their age: over some 15 s at a steady rate, with a barrier every second and
/// files closing after 3 s, each file spans several barriers. A worker killed in the middle of a
/// file, with the table and the alerts durable past its checkpoint, is replaced, and every tick
/// is once in the table (an item per tick) and in the lake.
#[tokio::test(flavor = "multi_thread")]
async fn files_close_at_their_age_over_several_barriers() {
    // The age stack.rs sets; the target size is the default, 128 MiB.
    const AGE_MS: i64 = 3_000;
    let _turn = EMULATOR.lock().await;
    let started = Instant::now();
    let config = common::sdk_config();
    let records = Arc::new(market(9_000, 72, 2_340.0));
    let reference = reference(records.clone());
    let stack = create_stack_with_shards(&config, 1).await;
    let watch = Watch::start(&config, &stack.checkpoint_table);
    // 600 ticks a second for 15 s.
    let producer = Producer::start(&config, &stack.stream, records.clone(), 60);
    let w1 = worker(&stack, "w1", &[]);
    watch
        .until("a checkpoint", |s| s.checkpoint.is_some())
        .await;
    let first = watch.latest().checkpoint;
    watch
        .until("a second checkpoint, with the table durable past it", |s| {
            s.checkpoint > first && s.table_ahead()
        })
        .await;
    let w1_log = w1.kill();
    // The killed worker writes nothing more: this is what it had settled.
    let at_kill = shard_item(&config, &stack.checkpoint_table).await;
    let before_kill = drain_alerts(&config, &stack).await;
    let w2 = worker(&stack, "w2", &[]);
    let produced = producer.finish().await;
    watch
        .until("a checkpoint at the last record", |s| {
            s.checkpoint.as_ref() >= Some(&produced.last)
        })
        .await;
    let w2_log = terminate(w2);
    let barriers = watch.barriers();
    drop(watch);

    let left = uploads(&config, &stack.bucket).await;
    assert!(left.is_empty(), "uploads left unfinished: {left:?}");
    let reference = reference.join().unwrap();
    let valid = records.iter().filter(|r| r.tick.is_some()).count();
    let rows = assert_exactly_once(&config, &stack, valid).await;
    assert_lake_matches(&config, &stack, &rows, &records, &reference.values).await;
    let after_kill = drain_alerts(&config, &stack).await;
    let settled = at_kill.alerts_settled();
    let (alerts, repeated) = assert_alerts_once(
        &before_kill,
        &after_kill,
        settled.as_ref(),
        &reference.alerts,
        &records,
    );

    // Each file but the last was open for the age: its records arrived over at least two of the
    // 1 s barrier intervals. The last may hold only the stream's tail.
    let files = lake_files(&config, &stack.bucket).await;
    let mut spans = Vec::new();
    for file in &files {
        spans.push(arrival_span(&config, &stack.bucket, &file.key).await);
    }
    let (_, closed_by_age) = spans.split_last().unwrap();
    assert!(
        closed_by_age.len() >= 2 && closed_by_age.iter().all(|&span| span >= AGE_MS - 1_000),
        "arrival spans of the files, ms: {spans:?}"
    );
    assert!(files.len() < barriers, "{files:?}, {barriers} barriers");
    eprintln!(
        "age: {} ticks at 600/s; kill -9 with checkpoint {:?}, table durable to {:?}; {barriers} \
         barriers seen; {} files of {:?} bytes, their records arriving over {spans:?} ms; \
         {alerts} alerts ({} before the kill, {repeated} repeated); {:.1?} in all",
        produced.count,
        at_kill.checkpoint,
        at_kill.table,
        files.len(),
        files.iter().map(|f| f.bytes).collect::<Vec<_>>(),
        before_kill.len(),
        started.elapsed(),
    );
    drop((w1_log, w2_log));
}
