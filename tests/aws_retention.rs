//! Records lost to the stream's retention are detected. A shard resumed after a record that is no
//! longer in the stream logs an error, counts `RecordsLostToRetention` and writes a
//! `lost_to_retention` marker naming the lost range among its dead letters, while every record
//! still in the stream becomes exactly one tick; a resume whose record is still there reports
//! nothing, wherever in a KPL aggregate it stands.
//!
//! In process, the local stream trims for real, and a pipeline resumed after trimmed records writes
//! one marker even when it crashed after writing it and resumed from the same checkpoint again.
//!
//! Neither emulator trims at test speed (moto never trims; kinesalite keeps records for the
//! stream's retention, 24 hours at least), so a trimmed checkpoint is built instead: one at a
//! sequence number before the shard's first record, which is what a checkpoint looks like once its
//! record has aged out. Kinesis runs on kinesalite here, whose sequence numbers are shaped like
//! Kinesis's: a shard's starting sequence number is no record's (moto numbers records 1, 2, … with
//! no room before the first but 0), and a number of a deleted stream is refused. Everything else
//! runs on moto.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_kinesis::types::{ShardIteratorType, StreamStatus};
use bytes::Bytes;
use common::stack::{
    assert_exactly_once, create_stack_with_stream_on, dead_letter_lines, put_records, records,
    start_run, terminate, wait_for_checkpoints,
};
use kinetick::checkpoint::file::FileCheckpointStore;
use kinetick::checkpoint::{Checkpoint, CheckpointStore};
use kinetick::config::Config;
use kinetick::metrics::Counter;
use kinetick::model::ids::ShardId;
use kinetick::model::kpl;
use kinetick::model::tick::{Position, SequenceNumber};
use kinetick::pipeline::{Pipeline, Ports};
use kinetick::stream::kinesis::{KinesisStream, Polling};
use kinetick::stream::local::LocalStream;
use kinetick::stream::{Record, RetentionGap, StartPosition, StreamSource, partition_key_hash};

const LOST: &str = "Records were lost to the stream's retention before they were read.";

fn kinesalite() -> aws_sdk_kinesis::Client {
    aws_sdk_kinesis::Client::new(&common::sdk_config_at(&common::kinesis_endpoint()))
}

async fn wait_active(kinesis: &aws_sdk_kinesis::Client, stream: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let summary = kinesis
            .describe_stream_summary()
            .stream_name(stream)
            .send()
            .await;
        if let Ok(summary) = summary
            && summary
                .stream_description_summary()
                .unwrap()
                .stream_status()
                == &StreamStatus::Active
        {
            return;
        }
        assert!(Instant::now() < deadline, "stream {stream} is not active");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn create_stream(kinesis: &aws_sdk_kinesis::Client, stream: &str, shards: i32) {
    kinesis
        .create_stream()
        .stream_name(stream)
        .shard_count(shards)
        .send()
        .await
        .unwrap();
    wait_active(kinesis, stream).await;
}

async fn put(kinesis: &aws_sdk_kinesis::Client, stream: &str, key: &str, data: Bytes) -> String {
    kinesis
        .put_record()
        .stream_name(stream)
        .partition_key(key)
        .data(aws_sdk_kinesis::primitives::Blob::new(data.to_vec()))
        .send()
        .await
        .unwrap()
        .sequence_number
}

/// The starting sequence number of each shard, in shard order: no record's, and before them all.
async fn starting_sequences(kinesis: &aws_sdk_kinesis::Client, stream: &str) -> Vec<String> {
    let shards = kinesis
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .unwrap();
    shards
        .shards()
        .iter()
        .map(|s| {
            s.sequence_number_range()
                .unwrap()
                .starting_sequence_number()
                .to_owned()
        })
        .collect()
}

fn at(sequence: &str, sub_sequence: u32) -> Position {
    Position::new(SequenceNumber::new(sequence), sub_sequence)
}

/// What a cursor opened at `start` reads: at least `want` records, over three reads at least
/// (so that the first read that reaches the data is among them); with `None`, to the shard's end.
struct Read {
    records: Vec<Record>,
    gaps: Vec<RetentionGap>,
    shard_end: bool,
}

async fn read(
    source: &KinesisStream,
    shard: &ShardId,
    start: StartPosition,
    want: Option<usize>,
) -> Read {
    let mut cursor = source.open_shard(shard, start).await.unwrap();
    let mut read = Read {
        records: Vec::new(),
        gaps: Vec::new(),
        shard_end: false,
    };
    for reads in 1..=40 {
        let batch = cursor.next_batch().await.unwrap();
        read.records.extend(batch.records);
        read.gaps.extend(batch.retention_gap);
        read.shard_end = batch.shard_end;
        let enough = want.is_some_and(|want| read.records.len() >= want && reads >= 3);
        if read.shard_end || enough {
            return read;
        }
    }
    panic!("{} records read, {want:?} wanted", read.records.len());
}

fn positions(records: &[Record]) -> Vec<Position> {
    records.iter().map(|r| r.position.clone()).collect()
}

fn source(kinesis: aws_sdk_kinesis::Client, stream: &str) -> KinesisStream {
    let polling = Polling {
        idle_interval: Duration::from_millis(50),
        ..Polling::default()
    };
    KinesisStream::new(kinesis, stream, polling)
}

#[tokio::test]
async fn the_kinesis_cursor_reports_a_gap_only_when_the_resume_positions_record_is_gone() {
    let kinesis = kinesalite();
    let stream = common::unique("retention");
    create_stream(&kinesis, &stream, 1).await;
    for n in 0..3 {
        put(&kinesis, &stream, "AAPL", format!("{{\"n\":{n}}}").into()).await;
    }
    let packed = kpl::aggregate(&[("MSFT", b"{\"n\":3}"), ("MSFT", b"{\"n\":4}")]);
    put(&kinesis, &stream, "MSFT", packed).await;
    let source = source(kinesis.clone(), &stream);
    let shard = source.list_shards().await.unwrap()[0].id.clone();
    let all = read(&source, &shard, StartPosition::TrimHorizon, Some(5)).await;
    assert_eq!(
        all.records.len(),
        5,
        "three plain records and two in one aggregate"
    );
    assert!(
        all.gaps.is_empty(),
        "a start at the trim horizon is no resume"
    );
    let all = all.records;

    // A checkpoint whose record is gone: before the oldest record left, as after a trim.
    let start = &starting_sequences(&kinesis, &stream).await[0];
    let trimmed = read(&source, &shard, StartPosition::After(at(start, 0)), Some(5)).await;
    assert_eq!(
        positions(&trimmed.records),
        positions(&all),
        "every record left"
    );
    assert_eq!(
        trimmed.gaps,
        [RetentionGap {
            after: at(start, 0),
            before: Some(all[0].position.clone()),
            arrival_time_ms: all[0].arrival_time_ms,
        }],
        "one gap, up to the first record read"
    );

    // Checkpoints whose record is there: a plain record, inside the aggregate, its last user
    // record (nothing of the re-read record is handed on), and before any record.
    let cases = [
        (all[1].position.clone(), &all[2..]),
        (all[3].position.clone(), &all[4..]),
        (all[4].position.clone(), &all[5..]),
        (Position::before_any(), &all[..]),
    ];
    for (after, expected) in cases {
        let resumed = read(
            &source,
            &shard,
            StartPosition::After(after.clone()),
            Some(expected.len()),
        )
        .await;
        assert_eq!(
            positions(&resumed.records),
            positions(expected),
            "after {after}"
        );
        assert!(resumed.gaps.is_empty(), "after {after}: {:?}", resumed.gaps);
    }
}

#[tokio::test]
async fn a_closed_shard_with_nothing_left_after_the_resume_position_is_a_gap_to_its_end() {
    let kinesis = kinesalite();
    let stream = common::unique("retention");
    create_stream(&kinesis, &stream, 2).await;
    let shards = kinesis
        .list_shards()
        .stream_name(&stream)
        .send()
        .await
        .unwrap();
    let first_range_end: u128 = shards.shards()[0]
        .hash_key_range()
        .unwrap()
        .ending_hash_key()
        .parse()
        .unwrap();
    // Records for the first shard only; the second stays empty.
    let key = (0..)
        .map(|n| format!("K{n}"))
        .find(|k| partition_key_hash(k) <= first_range_end)
        .unwrap();
    put(&kinesis, &stream, &key, "{\"n\":0}".into()).await;
    let last = put(&kinesis, &stream, &key, "{\"n\":1}".into()).await;
    let starts = starting_sequences(&kinesis, &stream).await;
    for shard in shards.shards() {
        let range = shard.hash_key_range().unwrap();
        let (low, high): (u128, u128) = (
            range.starting_hash_key().parse().unwrap(),
            range.ending_hash_key().parse().unwrap(),
        );
        kinesis
            .split_shard()
            .stream_name(&stream)
            .shard_to_split(shard.shard_id())
            .new_starting_hash_key((low + (high - low) / 2).to_string())
            .send()
            .await
            .unwrap();
        wait_active(&kinesis, &stream).await;
    }
    let source = source(kinesis.clone(), &stream);
    let (full, empty): (ShardId, ShardId) = (
        shards.shards()[0].shard_id().into(),
        shards.shards()[1].shard_id().into(),
    );

    // Resumed at its last record, a closed shard ends without a gap.
    let ended = read(&source, &full, StartPosition::After(at(&last, 0)), None).await;
    assert!(ended.shard_end && ended.records.is_empty());
    assert!(ended.gaps.is_empty(), "{:?}", ended.gaps);

    // Nothing left from the resume position on: whatever followed it is gone.
    let gone = read(
        &source,
        &empty,
        StartPosition::After(at(&starts[1], 0)),
        None,
    )
    .await;
    assert!(gone.shard_end && gone.records.is_empty());
    assert_eq!(
        gone.gaps,
        [RetentionGap {
            after: at(&starts[1], 0),
            before: None,
            arrival_time_ms: 0,
        }]
    );
}

#[tokio::test]
async fn a_sequence_number_the_stream_refuses_resumes_at_the_trim_horizon_with_a_gap() {
    let kinesis = kinesalite();
    let stream = common::unique("retention");
    create_stream(&kinesis, &stream, 1).await;
    let created_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let old = put(&kinesis, &stream, "AAPL", "{\"n\":0}".into()).await;
    kinesis
        .delete_stream()
        .stream_name(&stream)
        .send()
        .await
        .unwrap();
    // The stream is created again under the same name, in a later second: its shard's creation
    // time, which its sequence numbers encode, differs from the old one's.
    let deadline = Instant::now() + Duration::from_secs(30);
    while kinesis
        .describe_stream_summary()
        .stream_name(&stream)
        .send()
        .await
        .is_ok()
        || SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            <= created_at
    {
        assert!(Instant::now() < deadline, "stream {stream} is not deleted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    create_stream(&kinesis, &stream, 1).await;
    put(&kinesis, &stream, "AAPL", "{\"n\":1}".into()).await;
    put(&kinesis, &stream, "AAPL", "{\"n\":2}".into()).await;
    let source = source(kinesis.clone(), &stream);
    let shard = source.list_shards().await.unwrap()[0].id.clone();

    // What the cursor meets: the stream refuses the old number, as Kinesis does.
    let refused = kinesis
        .get_shard_iterator()
        .stream_name(&stream)
        .shard_id(shard.as_ref())
        .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
        .starting_sequence_number(&old)
        .send()
        .await
        .unwrap_err();
    assert!(
        refused
            .as_service_error()
            .is_some_and(|e| e.is_invalid_argument_exception()),
        "{refused:?}"
    );

    let all = read(&source, &shard, StartPosition::TrimHorizon, Some(2))
        .await
        .records;
    let resumed = read(&source, &shard, StartPosition::After(at(&old, 0)), Some(2)).await;
    assert_eq!(
        positions(&resumed.records),
        positions(&all),
        "read from the trim horizon"
    );
    assert_eq!(
        resumed.gaps,
        [RetentionGap {
            after: at(&old, 0),
            before: Some(all[0].position.clone()),
            arrival_time_ms: all[0].arrival_time_ms,
        }]
    );
}

/// The local stream's only shard, holding `records` with the first `trimmed` of them trimmed,
/// closed; returns it with the position of every record.
async fn trimmed_stream(
    records: &[(String, Bytes)],
    trimmed: u64,
) -> (Arc<LocalStream>, Vec<Position>) {
    let stream = LocalStream::new(1, records.len());
    let positions = stream.put_batch(records.to_vec()).await;
    stream.trim(0, trimmed);
    stream.close();
    (stream, positions)
}

/// Every line of the dead-letter files under `dir`, with its file's name.
fn local_dead_letters(dir: &Path) -> Vec<(String, serde_json::Value)> {
    let mut lines = Vec::new();
    let Ok(dates) = std::fs::read_dir(dir.join("dead-letters")) else {
        return lines;
    };
    for date in dates {
        for file in std::fs::read_dir(date.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with('.') || !name.ends_with(".jsonl") {
                continue; // a file being written
            }
            for line in std::fs::read_to_string(&path).unwrap().lines() {
                lines.push((name.clone(), serde_json::from_str(line).unwrap()));
            }
        }
    }
    lines
}

/// The sequence numbers of every row of the lake under `dir`.
fn local_lake_sequences(dir: &Path) -> Vec<String> {
    use arrow_array::cast::AsArray;
    let mut sequences = Vec::new();
    let mut pending = vec![dir.join("ticks")];
    while let Some(path) = pending.pop() {
        for entry in std::fs::read_dir(&path).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let file = std::fs::File::open(&path).unwrap();
            let reader =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                    .unwrap()
                    .build()
                    .unwrap();
            for batch in reader {
                let batch = batch.unwrap();
                let column = batch.column_by_name("sequence_number").unwrap();
                let column = column.as_string::<i32>();
                sequences.extend((0..batch.num_rows()).map(|i| column.value(i).to_owned()));
            }
        }
    }
    sequences
}

/// Runs a pipeline on `dir` over `stream` to the stream's end, or stops its threads with no
/// final checkpoint (a crash) once `crash` holds; returns how many gaps it counted.
fn run_local(dir: &Path, stream: Arc<LocalStream>, crash: impl Fn() -> bool) -> u64 {
    actix::System::new().block_on(async {
        let mut config = Config::default();
        config.checkpoint.max_records = 400;
        let ports = Ports::local(dir, stream, false).unwrap();
        let mut pipeline = Pipeline::start(
            &config,
            ports,
            StartPosition::TrimHorizon,
            Default::default(),
        )
        .await;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if crash() {
                let lost = pipeline.metrics().total(Counter::RecordsLostToRetention);
                pipeline.abort();
                return lost;
            }
            if let Ok(result) =
                tokio::time::timeout(Duration::from_millis(5), pipeline.wait()).await
            {
                result.unwrap();
                let lost = pipeline.metrics().total(Counter::RecordsLostToRetention);
                pipeline.close().await;
                return lost;
            }
            assert!(Instant::now() < deadline, "the pipeline did not finish");
        }
    })
}

#[test]
fn an_in_process_pipeline_resumed_after_trimmed_records_writes_one_marker_through_a_crash() {
    const SHARD: &str = "shardId-000000000000";
    let (records, _) = records(3_000, 62);
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (stream, positions) = runtime.block_on(trimmed_stream(&records, 1_000));
    // A checkpoint at record 500, whose record and the 499 after it are trimmed.
    let store = FileCheckpointStore::new(dir.path().join("checkpoints"));
    let checkpoint = Checkpoint {
        shard_id: SHARD.to_owned(),
        position: positions[500].clone(),
        shard_end: false,
        snapshot: Default::default(),
        fence: None,
    };
    runtime.block_on(store.save(&checkpoint)).unwrap();
    let marker_written = || {
        local_dead_letters(dir.path())
            .iter()
            .any(|(_, l)| l["reason_code"] == "lost_to_retention")
    };

    // The first run crashes as soon as its marker is written, perhaps before its checkpoint.
    let first = run_local(dir.path(), stream, marker_written);
    assert_eq!(first, 1, "the first run found the gap");
    let resumed_at = runtime
        .block_on(store.load(SHARD))
        .unwrap()
        .unwrap()
        .position;
    // The same records on a fresh stream, trimmed the same: the same sequence numbers.
    let (stream, again) = runtime.block_on(trimmed_stream(&records, 1_000));
    assert_eq!(again, positions);
    let second = run_local(dir.path(), stream, || false);
    assert_eq!(
        second,
        u64::from(resumed_at == positions[500]),
        "the gap is found again only by a resume from the same checkpoint"
    );

    let markers: Vec<_> = local_dead_letters(dir.path())
        .into_iter()
        .filter(|(_, line)| line["reason_code"] == "lost_to_retention")
        .collect();
    assert_eq!(
        markers.len(),
        1,
        "one marker, whoever wrote it: {markers:?}"
    );
    let (file, marker) = &markers[0];
    assert_eq!(file, &format!("{SHARD}-{}.jsonl", positions[1_000]));
    assert_eq!(
        (&marker["lost_after"], &marker["lost_before"]),
        (
            &positions[500].to_string().into(),
            &positions[1_000].to_string().into()
        )
    );
    // Every record left is read once: a tick in the lake, or a rejected record's dead letter.
    let mut read = local_lake_sequences(dir.path());
    read.extend(
        local_dead_letters(dir.path())
            .into_iter()
            .filter(|(_, line)| line["reason_code"] != "lost_to_retention")
            .map(|(_, line)| line["sequence_number"].as_str().unwrap().to_owned()),
    );
    read.sort_by_key(|s| s.parse::<u128>().unwrap());
    let expected: Vec<String> = positions[1_000..]
        .iter()
        .map(|p| p.sequence.to_string())
        .collect();
    assert_eq!(read, expected);
}

/// The error lines of a run's log that report lost records (JSON lines).
fn lost_lines(log: &str) -> Vec<serde_json::Value> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| line["fields"]["message"] == LOST)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_resumed_past_the_trim_horizon_writes_one_marker_and_reads_every_record_left() {
    let config = common::sdk_config();
    let kinesis_config = common::sdk_config_at(&common::kinesis_endpoint());
    let kinesis = aws_sdk_kinesis::Client::new(&kinesis_config);
    let stack = create_stack_with_stream_on(&config, &kinesis_config, 2).await;
    wait_active(&kinesis, &stack.stream).await;
    let (records, valid) = records(3_000, 61);
    let half = records.len() / 2;
    put_records(&kinesis_config, &stack.stream, &records[..half]).await;

    // The first shard's checkpoint lies before its oldest record: its own record is gone.
    let (trimmed_shard, start) = (
        "shardId-000000000000",
        &starting_sequences(&kinesis, &stack.stream).await[0],
    );
    aws_sdk_dynamodb::Client::new(&config)
        .put_item()
        .table_name(&stack.checkpoint_table)
        .item("shard_id", AttributeValue::S(trimmed_shard.to_owned()))
        .item("sequence_number", AttributeValue::S(start.clone()))
        .item("sub_sequence_number", AttributeValue::N("0".to_owned()))
        .item("shard_end", AttributeValue::Bool(false))
        .send()
        .await
        .unwrap();
    let iterator = kinesis
        .get_shard_iterator()
        .stream_name(&stack.stream)
        .shard_id(trimmed_shard)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap()
        .shard_iterator
        .unwrap();
    let oldest = kinesis
        .get_records()
        .shard_iterator(iterator)
        .limit(1)
        .send()
        .await
        .unwrap()
        .records()[0]
        .sequence_number()
        .to_owned();

    let endpoint = common::kinesis_endpoint();
    let settings = [("AWS_ENDPOINT_URL_KINESIS", endpoint.as_str())];
    let run = start_run(&stack, &settings);
    let last = put_records(&kinesis_config, &stack.stream, &records[half..half + 500]).await;
    wait_for_checkpoints(&config, &stack.checkpoint_table, &last).await;
    let first_log = terminate(run);
    // Resumed again, now from checkpoints whose records are there: nothing to report.
    let last = put_records(&kinesis_config, &stack.stream, &records[half + 500..]).await;
    let run = start_run(&stack, &settings);
    wait_for_checkpoints(&config, &stack.checkpoint_table, &last).await;
    let second_log = terminate(run);

    assert_exactly_once(&config, &stack, valid).await;
    let letters = dead_letter_lines(&config, &stack.bucket).await;
    let (markers, rejected): (Vec<_>, Vec<_>) = letters
        .iter()
        .partition(|(_, line)| line["reason_code"] == "lost_to_retention");
    assert_eq!(
        rejected.len(),
        records.len() - valid,
        "every malformed record"
    );
    assert_eq!(markers.len(), 1, "one marker: {markers:?}");
    let (key, marker) = markers[0];
    assert_eq!(marker["shard_id"], trimmed_shard);
    assert_eq!(
        (&marker["lost_after"], &marker["lost_before"]),
        (&start.as_str().into(), &oldest.as_str().into()),
        "the range: after the checkpoint, before the first record read"
    );
    assert_eq!(
        marker["sequence_number"],
        oldest.as_str(),
        "placed at the first record read"
    );
    assert!(marker["data"].is_null() && marker["data_base64"].is_null());
    assert!(
        key.ends_with(&format!("/{trimmed_shard}-{oldest}.jsonl")),
        "the marker opens the shard's first dead-letter file: {key}"
    );

    // Each reader that resumes at the trimmed checkpoint finds the gap: one, unless the first
    // run's reader lost its lease before checkpointing past the gap and resumed there again.
    let lost = common::metric_sum(&config, &stack.namespace, "RecordsLostToRetention").await;
    match (first_log.text(), second_log.text()) {
        (Some(first), Some(second)) => {
            let lines = lost_lines(&first);
            assert!(!lines.is_empty(), "an error line in the first run");
            for line in &lines {
                assert_eq!(line["level"], "ERROR");
                assert_eq!(line["fields"]["shard_id"], trimmed_shard);
                assert_eq!(
                    line["fields"]["lost"],
                    format!("after {start} and before {oldest}")
                );
            }
            assert_eq!(
                lost,
                lines.len() as f64,
                "RecordsLostToRetention in CloudWatch"
            );
            assert!(
                lost_lines(&second).is_empty(),
                "nothing lost on the second resume"
            );
        }
        _ => {
            assert!(lost >= 1.0, "RecordsLostToRetention in CloudWatch");
            eprintln!("TEST_RUN_LOGS is set: the runs' log lines are not checked");
        }
    }
}
