//! An emulated AWS stack for `kinetick run` (stream, tables, bucket, topic and a queue subscribed
//! to it, all with unique names) and the real binary run against it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use bytes::Bytes;
use kinetick::producer::simulator::{MarketSimulator, RecordKind, SimulatorConfig};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

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
    create_stack_with_shards(config, SHARDS).await
}

pub async fn create_stack_with_shards(config: &SdkConfig, shards: i32) -> Stack {
    create_stack_with_stream_on(config, config, shards).await
}

/// A stack whose stream is made through `kinesis_config` (another emulator), the rest through
/// `config`.
pub async fn create_stack_with_stream_on(
    config: &SdkConfig,
    kinesis_config: &SdkConfig,
    shards: i32,
) -> Stack {
    let stack = Stack {
        stream: unique("ticks"),
        ticks_table: unique("ticks"),
        checkpoint_table: unique("leases"),
        bucket: unique("lake").to_lowercase(),
        topic_arn: String::new(),
        queue_url: String::new(),
        namespace: unique("Kinetick"),
    };
    aws_sdk_kinesis::Client::new(kinesis_config)
        .create_stream()
        .stream_name(&stack.stream)
        .shard_count(shards)
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

/// The owner of each owned lease, by shard.
pub async fn owners(config: &SdkConfig, stack: &Stack) -> BTreeMap<String, String> {
    use kinetick::lease::LeaseStore;
    kinetick::lease::dynamodb::DynamoLeaseStore::new(
        aws_sdk_dynamodb::Client::new(config),
        &stack.checkpoint_table,
    )
    .list()
    .await
    .unwrap()
    .into_iter()
    .filter_map(|lease| Some((lease.shard_id.to_string(), lease.owner?.to_string())))
    .collect()
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

/// A running `kinetick run`, killed if the test fails before it stops it (so no process outlives
/// the test holding its output pipes open). Its log goes to a file (or to the test's output with
/// `TEST_RUN_LOGS=1`).
pub struct Run {
    child: Option<Child>,
    log: Option<RunLog>,
    /// `host:port` of its health endpoint.
    pub health: String,
}

impl Run {
    /// `kill -9`: what a crash does. The log is kept until the test ends.
    pub fn kill(mut self) -> RunLog {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
        self.log.take().expect("a log")
    }

    /// SIGSTOP: the run stalls as a frozen VM or a long pause would, holding its leases, buffers
    /// and connections as they are, until [`Run::thaw`]. (Dropping a frozen run still kills it.)
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT: a frozen run resumes where it stopped, unaware of the time that passed.
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let id = self.child.as_ref().expect("running").id().to_string();
        let status = Command::new("kill").arg(signal).arg(&id).status().unwrap();
        assert!(status.success(), "kill {signal} {id}");
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        let child = self.child.as_mut().expect("started");
        child.try_wait().unwrap().is_none()
    }

    /// What the run has logged so far (see [`RunLog::text`]).
    pub fn log_text(&self) -> Option<String> {
        self.log.as_ref().expect("a log").text()
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The log file of a run, deleted when dropped; if the test is failing by then, its warnings
/// and its end are printed and the file is kept. Keep it for the length of the test to see, on
/// a failure, what a run that already stopped went through.
#[must_use = "the log is deleted when dropped"]
pub struct RunLog(PathBuf);

impl RunLog {
    /// The log's JSON lines; `None` with `TEST_RUN_LOGS=1`, when the log goes to the test's
    /// output instead of the file.
    pub fn text(&self) -> Option<String> {
        std::env::var_os("TEST_RUN_LOGS")
            .is_none()
            .then(|| std::fs::read_to_string(&self.0).unwrap_or_default())
    }
}

impl Drop for RunLog {
    fn drop(&mut self) {
        if std::thread::panicking() {
            const LINES: usize = 40;
            let log = std::fs::read_to_string(&self.0).unwrap_or_default();
            let warnings: Vec<_> = log
                .lines()
                .filter(|line| {
                    line.contains(r#""level":"WARN""#) || line.contains(r#""level":"ERROR""#)
                })
                .take(LINES)
                .collect();
            let lines: Vec<_> = log.lines().collect();
            eprintln!(
                "--- {}: first {LINES} warnings and errors ---\n{}\n--- its last {LINES} lines ---\n{}",
                self.0.display(),
                warnings.join("\n"),
                lines[lines.len().saturating_sub(LINES)..].join("\n")
            );
            eprintln!("--- the whole log is kept: {} ---", self.0.display());
            return;
        }
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Starts `kinetick run` on `stack`, with quick checkpoints and metrics; `settings` are further
/// `KINETICK_...` variables (later ones win).
pub fn start_run(stack: &Stack, settings: &[(&str, &str)]) -> Run {
    let health = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    };
    let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{}.log", unique("run")));
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
        // Files close every few barriers: the table runs ahead of each checkpoint between them.
        .env("KINETICK_LAKE__MAX_FILE_AGE", "3s")
        .env(
            "RUST_LOG",
            std::env::var("TEST_RUST_LOG").unwrap_or("info".into()),
        )
        .env("KINETICK_HEALTH__LISTEN", &health)
        .envs(settings.iter().copied())
        // The runs' logs (JSON lines on stdout) with TEST_RUN_LOGS=1, filtered by TEST_RUST_LOG.
        .stdout(match std::env::var_os("TEST_RUN_LOGS") {
            Some(_) => Stdio::inherit(),
            None => Stdio::from(std::fs::File::create(&log).expect("a log file for the run")),
        })
        .stderr(Stdio::inherit())
        .spawn()
        .map(|child| Run {
            child: Some(child),
            log: Some(RunLog(log)),
            health,
        })
        .expect("kinetick runs")
}

/// SIGTERM, and the graceful stop must end with exit status 0 within a minute. The log is kept
/// until the test ends.
pub fn terminate(mut run: Run) -> RunLog {
    let mut child = run.child.take().expect("running");
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let log = run.log.take().expect("a log");
            assert!(
                status.success(),
                "kinetick run exits 0 after SIGTERM, got {status}"
            );
            return log;
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
    // Lease items of shards not checkpointed yet have no sequence number.
    scan.items()
        .iter()
        .filter_map(|item| {
            Some((
                item["shard_id"].as_s().unwrap().clone(),
                item.get("sequence_number")?.as_s().unwrap().clone(),
            ))
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

/// Simulated records (seed format, with anomalies and malformed ones) and the count of valid ones.
pub fn records(count: usize, seed: u64) -> (Vec<(String, Bytes)>, usize) {
    let config = SimulatorConfig {
        symbols: 30,
        seed,
        // A stressed market: news on about one tick in 330 (a real one has a few a day), so
        // that the anomaly alerts' paths run.
        jumps_per_session: 2_340.0,
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
            .map(|r| (r.partition_key.to_string(), Bytes::from(r.data)))
            .collect(),
        valid,
    )
}

pub async fn table_keys(config: &SdkConfig, table: &str) -> (usize, BTreeSet<(String, String)>) {
    let dynamodb = aws_sdk_dynamodb::Client::new(config);
    let mut keys = BTreeSet::new();
    let mut count = 0;
    let mut pages = dynamodb.scan().table_name(table).into_paginator().send();
    while let Some(page) = pages.next().await {
        for item in page.unwrap().items() {
            if item.contains_key("kind") {
                continue; // a one-minute bar (bars mode), not a tick
            }
            count += 1;
            keys.insert((
                item["symbol"].as_s().unwrap().clone(),
                item["timestamp"].as_s().unwrap().clone(),
            ));
        }
    }
    (count, keys)
}

/// One row of the lake: where it came from, which tick it is, and every computed number.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
pub struct LakeRow {
    /// `(shard, sequence, sub-sequence)`.
    pub position: (String, String, i64),
    /// `(symbol, event time in ms)`.
    pub tick: (String, i64),
    /// Every Float64 column (price and the computed values), in schema order.
    pub values: Vec<Option<f64>>,
    /// The key of the file the row is in.
    pub file: String,
}

/// The keys of the lake's tick files (`ticks/dt=YYYY-MM-DD/{shard}-{first position}.parquet`).
pub async fn tick_object_keys(config: &SdkConfig, bucket: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut pages = s3(config)
        .list_objects_v2()
        .bucket(bucket)
        .prefix("ticks/")
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        keys.extend(
            page.unwrap()
                .contents()
                .iter()
                .map(|object| object.key().unwrap().to_owned()),
        );
    }
    keys
}

pub async fn lake_rows(config: &SdkConfig, bucket: &str) -> Vec<LakeRow> {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, Int64Type, TimestampMillisecondType};
    let s3 = s3(config);
    let mut rows = Vec::new();
    for key in tick_object_keys(config, bucket).await {
        let key = key.as_str();
        assert!(key.contains("/dt=") && key.ends_with(".parquet"), "{key}");
        let body = super::object_bytes(&s3, bucket, key).await;
        for batch in ParquetRecordBatchReaderBuilder::try_new(body)
            .unwrap()
            .build()
            .unwrap()
        {
            let batch = batch.unwrap();
            let column = |name: &str| batch.column_by_name(name).unwrap().clone();
            let (shards, sequences, symbols) = (
                column("shard_id"),
                column("sequence_number"),
                column("symbol"),
            );
            let subs = column("sub_sequence_number");
            let times = column("event_time");
            let numbers: Vec<_> = batch
                .schema()
                .fields()
                .iter()
                .enumerate()
                .filter(|(_, f)| f.data_type() == &arrow_schema::DataType::Float64)
                .map(|(i, _)| batch.column(i).as_primitive::<Float64Type>().clone())
                .collect();
            for i in 0..batch.num_rows() {
                rows.push(LakeRow {
                    position: (
                        shards.as_string::<i32>().value(i).to_owned(),
                        sequences.as_string::<i32>().value(i).to_owned(),
                        subs.as_primitive::<Int64Type>().value(i),
                    ),
                    tick: (
                        symbols.as_string::<i32>().value(i).to_owned(),
                        times.as_primitive::<TimestampMillisecondType>().value(i),
                    ),
                    values: numbers
                        .iter()
                        .map(|c| (!c.is_null(i)).then(|| c.value(i)))
                        .collect(),
                    file: key.to_owned(),
                });
            }
        }
    }
    rows
}

/// `(open, high, low, close, volume, trades)` of a one-minute bar.
pub type Bar = (f64, f64, f64, f64, f64, u64);

/// Every bar item of the ticks table (bars mode) equals the bar of its minute's ticks in the
/// lake: a bar written late by an owner that lost its lease would be an older, partial one.
pub async fn assert_bars_match_lake(config: &SdkConfig, stack: &Stack, rows: &[LakeRow]) {
    let dynamodb = aws_sdk_dynamodb::Client::new(config);
    let mut stored: BTreeMap<(String, i64), Bar> = BTreeMap::new();
    let mut pages = dynamodb
        .scan()
        .table_name(&stack.ticks_table)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for item in page.unwrap().items() {
            if item
                .get("kind")
                .and_then(|k| k.as_s().ok())
                .map(String::as_str)
                != Some("bar_1m")
            {
                continue;
            }
            let number = |name: &str| -> f64 {
                item.get(name)
                    .map_or(0.0, |n| n.as_n().unwrap().parse().unwrap())
            };
            let minute = chrono::DateTime::parse_from_rfc3339(item["event_time"].as_s().unwrap())
                .unwrap()
                .timestamp_millis();
            stored.insert(
                (item["symbol"].as_s().unwrap().clone(), minute),
                (
                    number("open"),
                    number("high"),
                    number("low"),
                    number("close"),
                    number("volume"),
                    number("trades") as u64,
                ),
            );
        }
    }
    // Price is the first Float64 column of the lake, volume the eighth (after open, high, low,
    // previous close, change and change percent).
    let mut ticks: Vec<&LakeRow> = rows.iter().collect();
    ticks.sort_by(|a, b| {
        let sequence = |r: &LakeRow| (r.position.1.len(), r.position.1.clone(), r.position.2);
        (&a.tick, sequence(a))
            .partial_cmp(&(&b.tick, sequence(b)))
            .unwrap()
    });
    let mut computed: BTreeMap<(String, i64), Bar> = BTreeMap::new();
    for row in ticks {
        let (price, volume) = (row.values[0].unwrap(), row.values[7].unwrap_or(0.0));
        let minute = row.tick.1 - row.tick.1.rem_euclid(60_000);
        let bar = computed
            .entry((row.tick.0.clone(), minute))
            .or_insert((price, price, price, price, 0.0, 0));
        bar.1 = bar.1.max(price);
        bar.2 = bar.2.min(price);
        bar.3 = price;
        bar.4 += volume;
        bar.5 += 1;
    }
    assert!(!stored.is_empty(), "the table holds bars");
    assert_eq!(stored.len(), computed.len(), "a bar per symbol and minute");
    for (key, bar) in &computed {
        assert_eq!(stored.get(key), Some(bar), "the bar of {key:?}");
    }
}

/// Every valid tick is in the table once and in the lake once; returns the lake's rows.
pub async fn assert_exactly_once(config: &SdkConfig, stack: &Stack, valid: usize) -> Vec<LakeRow> {
    let (count, keys) = table_keys(config, &stack.ticks_table).await;
    if count != valid {
        let table = table_positions(config, &stack.ticks_table).await;
        let rows = lake_rows(config, &stack.bucket).await;
        eprintln!("{}", table_differences(&table, &rows));
        // Items the table refused are dead letters named refused-by-table-….
        let refused: Vec<String> = dead_letter_lines(config, &stack.bucket)
            .await
            .into_iter()
            .filter(|(key, _)| key.contains("/refused-by-table-"))
            .map(|(key, line)| format!("{key}: {line}"))
            .collect();
        eprintln!("dead letters of the table: {refused:?}");
    }
    assert_eq!(count, valid, "table items");
    assert_eq!(keys.len(), valid, "table keys are unique");
    let rows = lake_rows(config, &stack.bucket).await;
    let unique: BTreeSet<_> = rows.iter().map(|r| &r.position).collect();
    if rows.len() != valid {
        let table = table_positions(config, &stack.ticks_table).await;
        eprintln!("{}", lake_differences(&table, &rows));
    }
    assert_eq!(rows.len(), valid, "lake rows");
    assert_eq!(unique.len(), valid, "lake rows are unique");
    rows
}

/// `(shard, sequence number)` of every tick item in the table.
async fn table_positions(config: &SdkConfig, table: &str) -> BTreeSet<(String, String)> {
    let dynamodb = aws_sdk_dynamodb::Client::new(config);
    let mut positions = BTreeSet::new();
    let mut pages = dynamodb.scan().table_name(table).into_paginator().send();
    while let Some(page) = pages.next().await {
        for item in page.unwrap().items() {
            if let (Some(shard), Some(sequence)) =
                (item.get("shard_id"), item.get("sequence_number"))
            {
                let text = |v: &aws_sdk_dynamodb::types::AttributeValue| v.as_s().unwrap().clone();
                positions.insert((text(shard), text(sequence)));
            }
        }
    }
    positions
}

/// The lake's positions missing from the table, as runs of consecutive lake rows per shard.
fn table_differences(table: &BTreeSet<(String, String)>, rows: &[LakeRow]) -> String {
    let sequence = |s: &String| (s.len(), s.clone());
    let mut by_shard: BTreeMap<&String, Vec<&String>> = BTreeMap::new();
    for row in rows {
        by_shard
            .entry(&row.position.0)
            .or_default()
            .push(&row.position.1);
    }
    let mut report = String::from("table against lake:");
    for (shard, mut sequences) in by_shard {
        sequences.sort_by_key(|s| sequence(s));
        sequences.dedup();
        let mut runs: Vec<(&String, &String, usize)> = Vec::new();
        let mut open = false;
        for s in &sequences {
            let missing = !table.contains(&(shard.clone(), (*s).clone()));
            match (missing, open, runs.last_mut()) {
                (true, true, Some(run)) => {
                    run.1 = s;
                    run.2 += 1;
                }
                (true, _, _) => runs.push((s, s, 1)),
                _ => {}
            }
            open = missing;
        }
        report.push_str(&format!(
            "\n{shard}: {} rows in the lake, first {:?}, last {:?}; missing from the table: {runs:?}",
            sequences.len(),
            sequences.first(),
            sequences.last()
        ));
    }
    report
}

/// What a failed lake count needs to be diagnosed: the table's ticks missing from the lake, the
/// lake's rows not in the table or there twice, and each file of an affected shard with its
/// first and last sequence numbers, in stream order.
fn lake_differences(table: &BTreeSet<(String, String)>, rows: &[LakeRow]) -> String {
    let sequence = |s: &String| (s.len(), s.clone());
    let mut in_lake: BTreeMap<(String, String), usize> = BTreeMap::new();
    for row in rows {
        *in_lake
            .entry((row.position.0.clone(), row.position.1.clone()))
            .or_default() += 1;
    }
    let missing: Vec<_> = table.iter().filter(|p| !in_lake.contains_key(*p)).collect();
    let odd: Vec<_> = in_lake
        .iter()
        .filter(|(p, n)| **n > 1 || !table.contains(*p))
        .collect();
    let shards: BTreeSet<&String> = missing
        .iter()
        .map(|p| &p.0)
        .chain(odd.iter().map(|(p, _)| &p.0))
        .collect();
    let mut report = format!(
        "lake against table: {} missing {missing:?}; {} twice or not in the table {odd:?}",
        missing.len(),
        odd.len()
    );
    for shard in shards {
        let mut files: BTreeMap<&String, Vec<&String>> = BTreeMap::new();
        for row in rows.iter().filter(|r| &r.position.0 == shard) {
            files.entry(&row.file).or_default().push(&row.position.1);
        }
        let mut spans: Vec<_> = files
            .into_iter()
            .map(|(file, mut sequences)| {
                sequences.sort_by_key(|s| sequence(s));
                let (first, last) = (sequences[0], sequences[sequences.len() - 1]);
                (
                    sequence(first),
                    format!("{file}: {} rows {first}..={last}", sequences.len()),
                )
            })
            .collect();
        spans.sort();
        report.push_str(&format!("\nfiles of {shard}:"));
        for (_, span) in spans {
            report.push_str(&format!("\n  {span}"));
        }
    }
    report
}

/// Computed values of every tick by `(symbol, event time, n)`, the n-th tick of the symbol in
/// that millisecond in stream order (runs on different streams share no positions): what must
/// not depend on which worker read what, or on crashes, hand-overs and resharding.
pub type ComputedValues = BTreeMap<(String, i64, usize), Vec<Option<f64>>>;

pub fn computed(mut rows: Vec<LakeRow>) -> ComputedValues {
    // Sequence numbers as numbers: longer is later.
    let stream_order =
        |row: &LakeRow| (row.position.1.len(), row.position.1.clone(), row.position.2);
    rows.sort_by(|a, b| {
        a.tick
            .cmp(&b.tick)
            .then_with(|| stream_order(a).cmp(&stream_order(b)))
    });
    let mut values = ComputedValues::new();
    let mut previous: Option<(String, i64)> = None;
    let mut n = 0;
    for row in rows {
        n = if previous.as_ref() == Some(&row.tick) {
            n + 1
        } else {
            0
        };
        let (symbol, time) = row.tick.clone();
        previous = Some(row.tick);
        values.insert((symbol, time, n), row.values);
    }
    values
}

pub fn assert_same_values(actual: &ComputedValues, expected: &ComputedValues) {
    assert_eq!(actual.len(), expected.len(), "ticks with computed values");
    for (tick, values) in expected {
        assert_eq!(
            actual.get(tick),
            Some(values),
            "computed values of {tick:?}"
        );
    }
}

/// Every dead-letter line in the bucket (`dead-letters/…`), with the key of its object.
pub async fn dead_letter_lines(
    config: &SdkConfig,
    bucket: &str,
) -> Vec<(String, serde_json::Value)> {
    let s3 = s3(config);
    let mut lines = Vec::new();
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix("dead-letters/")
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for object in page.unwrap().contents() {
            let key = object.key().unwrap();
            let bytes = super::object_bytes(&s3, bucket, key).await;
            for line in std::str::from_utf8(&bytes).unwrap().lines() {
                lines.push((key.to_owned(), serde_json::from_str(line).unwrap()));
            }
        }
    }
    lines
}
