//! A seeded corpus of hostile records, interleaved with valid ticks, run end to end through the
//! in-process pipeline: nothing panics, every record becomes exactly one tick in the outputs or one
//! dead letter with a known reason, and the valid ticks come out with exactly the values a run of
//! only those ticks gives.
//!
//! The corpus (`fuzz_records/`) holds truncated JSON, invalid UTF-8, nesting thousands deep,
//! numbers out of range or beyond a double, duplicate keys, control, bidirectional and zero-width
//! characters in symbols, odd and out-of-range timestamps, wrong types, empty and oversized
//! records, and KPL aggregates: intact (their user records mixing ticks, hostile records and
//! nested aggregates) or damaged in every part (magic, checksum, protobuf, key indexes, lengths,
//! records).
//!
//! The local stream does not split KPL aggregates, Kinesis does: the pipeline reads through a
//! source that splits them with `kpl::deaggregate` as the Kinesis cursor does, so user records
//! carry the aggregate's sequence number and their sub-sequence numbers.
//!
//! `FUZZ_RECORDS` (10 000 records by default, and at least that) and `FUZZ_SEED` (default 1)
//! choose the corpus; `scripts/fuzz.sh` runs longer series.

#[path = "fuzz_records/corpus.rs"]
mod corpus;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{
    Array, BooleanArray, Float64Array, Int64Array, StringArray, TimestampMillisecondArray,
};
use async_trait::async_trait;
use bytes::Bytes;
use kinetick::config::{Config, TableMode};
use kinetick::model::ids::ShardId;
use kinetick::model::kpl;
use kinetick::model::tick::Position;
use kinetick::pipeline::{Pipeline, Ports};
use kinetick::stream::local::LocalStream;
use kinetick::stream::{
    ReadBatch, Record, ShardCursor, ShardInfo, StartPosition, StreamError, StreamSource,
};
use kinetick::table::file::FileTicksTable;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use self::corpus::{Expect, Generator, Unit};

const SHARDS: usize = 2;

/// Every reason code a dead letter of this pipeline may carry.
const KNOWN_CODES: [&str; 17] = [
    "oversized",
    "malformed_json",
    "not_an_object",
    "missing_field",
    "duplicate_field",
    "wrong_type",
    "non_finite",
    "out_of_range",
    "non_positive",
    "negative_volume",
    "timestamp_unparseable",
    "timestamp_out_of_range",
    "invalid_symbol",
    "damaged_aggregate",
    "nested_aggregate",
    "symbol_limit",
    "lost_to_retention",
];

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).map_or(default, |v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number"))
    })
}

#[test]
fn hostile_records_end_as_dead_letters_and_valid_ticks_as_in_a_clean_run() {
    let records = env_or("FUZZ_RECORDS", 10_000).max(10_000) as usize;
    let seed = env_or("FUZZ_SEED", 1);
    let started = std::time::Instant::now();
    let corpus = Generator::new(seed).corpus(records);
    let units: Vec<&Unit> = corpus.puts.iter().flat_map(|p| &p.units).collect();
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for unit in &units {
        *kinds.entry(unit.kind).or_default() += 1;
    }
    eprintln!(
        "seed {seed}: {} records, {} user records, {} valid ticks; by kind: {kinds:?}",
        corpus.puts.len(),
        units.len(),
        corpus.valid.len()
    );

    let fuzzed = tempfile::tempdir().unwrap();
    let puts = corpus.puts.iter().map(|p| (p.key.clone(), p.data.clone()));
    let positions = run(fuzzed.path(), puts.collect());
    let clean = tempfile::tempdir().unwrap();
    let valid = corpus
        .valid
        .iter()
        .map(|(key, data, _)| (key.clone(), data.clone()));
    let clean_positions = run(clean.path(), valid.collect());

    // Each unit by where it sits in the stream.
    let mut at: HashMap<Place, &Unit> = HashMap::new();
    for (put, position) in corpus.puts.iter().zip(&positions) {
        let shard = shard_of(&put.key);
        for (sub, unit) in put.units.iter().enumerate() {
            let place = (shard.clone(), position.sequence.to_string(), sub as u32);
            assert!(at.insert(place, unit).is_none());
        }
    }
    let dead = check_dead_letters(fuzzed.path(), &at);

    // Ticks: the lake and the table hold each valid unit once, and nothing else.
    let lake = lake_rows(fuzzed.path());
    let table = table_items(fuzzed.path());
    for place in lake.keys() {
        let unit = at
            .get(place)
            .unwrap_or_else(|| panic!("a lake row of no record: {place:?}"));
        assert!(
            matches!(unit.expect, Expect::Tick(..)),
            "a hostile record ({}) became a tick: {:?}",
            unit.kind,
            String::from_utf8_lossy(&unit.data)
        );
        assert!(!dead.contains(place), "a tick and a dead letter: {place:?}");
    }
    assert!(
        table.ticks.keys().eq(lake.keys()),
        "the table holds the lake's ticks"
    );
    assert_eq!(
        lake.len() + dead.len(),
        units.len(),
        "every record is a tick or a dead letter"
    );
    assert_eq!(lake.len(), corpus.valid.len(), "every valid tick is out");

    // The values: those of a run of only the valid ticks, tick by tick.
    let mut clean_at: HashMap<Place, (String, i64)> = HashMap::new();
    for ((key, _, expect), position) in corpus.valid.iter().zip(&clean_positions) {
        let Expect::Tick(symbol, ms) = expect else {
            unreachable!("the clean run holds ticks only")
        };
        let place = (shard_of(key), position.sequence.to_string(), 0);
        clean_at.insert(place, (symbol.clone(), *ms));
    }
    let fuzz_id = |place: &Place| match &at[place].expect {
        Expect::Tick(symbol, ms) => (symbol.clone(), *ms),
        Expect::Dead(_) => unreachable!("checked above"),
    };
    let clean_id = |place: &Place| clean_at[place].clone();
    let (clean_lake, clean_table) = (lake_rows(clean.path()), table_items(clean.path()));
    let clean_alerts = alerts(clean.path());
    assert_eq!(
        clean_lake.len(),
        corpus.valid.len(),
        "the clean run keeps every tick"
    );
    assert!(!clean_alerts.is_empty(), "the ticks raise alerts");
    let lake = by_id(lake, fuzz_id);
    assert_same("lake rows", lake, by_id(clean_lake, clean_id));
    let table_ticks = by_id(table.ticks, fuzz_id);
    assert_same(
        "table items",
        table_ticks,
        by_id(clean_table.ticks, clean_id),
    );
    assert_same("bar items", table.bars, clean_table.bars);
    assert_same("alerts", alerts(fuzzed.path()), clean_alerts);
    eprintln!("seed {seed}: checked in {:?}", started.elapsed());
}

/// Where a record sits in the stream: shard, sequence number, sub-sequence number.
type Place = (String, String, u32);

/// Checks every dead letter under `dir` against the unit at its place (a hostile one, with a
/// reason it allows, holding the record as sent); returns their places.
fn check_dead_letters(dir: &Path, at: &HashMap<Place, &Unit>) -> HashSet<Place> {
    let mut dead = HashSet::new();
    for letter in dead_letters(dir) {
        let code = letter["reason_code"].as_str().unwrap();
        let reason = letter["reason"].as_str().unwrap();
        assert!(
            KNOWN_CODES.contains(&code),
            "unknown reason code: {}",
            brief(&letter)
        );
        assert!(!reason.is_empty(), "{}", brief(&letter));
        let place = position_key(&letter);
        let unit = at
            .get(&place)
            .unwrap_or_else(|| panic!("a dead letter of no record: {}", brief(&letter)));
        match &unit.expect {
            Expect::Dead(codes) => assert!(
                codes.contains(&code),
                "{} dead-lettered as {code}, expected one of {codes:?}: {}",
                unit.kind,
                brief(&letter)
            ),
            Expect::Tick(..) => panic!("a valid tick dead-lettered: {}", brief(&letter)),
        }
        assert!(
            letter_data(&letter) == unit.data,
            "the dead letter holds the record"
        );
        assert!(
            dead.insert(place),
            "dead-lettered twice: {}",
            brief(&letter)
        );
    }
    dead
}

/// Rows keyed by tick (symbol and event time) instead of by place.
fn by_id<V>(
    rows: BTreeMap<Place, V>,
    id: impl Fn(&Place) -> (String, i64),
) -> BTreeMap<(String, i64), V> {
    rows.into_iter()
        .map(|(place, row)| (id(&place), row))
        .collect()
}

/// Compares two maps, naming the first difference.
fn assert_same<K: std::fmt::Debug + Ord, V: std::fmt::Debug + PartialEq>(
    what: &str,
    found: BTreeMap<K, V>,
    expected: BTreeMap<K, V>,
) {
    assert_eq!(found.len(), expected.len(), "{what}: count");
    for ((k1, v1), (k2, v2)) in found.iter().zip(&expected) {
        assert_eq!(k1, k2, "{what}: keys");
        assert_eq!(v1, v2, "{what} of {k1:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// The run.

fn config() -> Config {
    let mut config = Config::default();
    // Several barriers per shard, so files roll and snapshots are taken mid-run.
    config.checkpoint.max_records = 1_500;
    config.pipeline.workers = 2;
    config.table.mode = TableMode::Both;
    config
}

/// Runs a pipeline on `dir` over `records` (partition key, data) to the end of the stream;
/// returns each record's position.
fn run(dir: &Path, records: Vec<(String, Bytes)>) -> Vec<Position> {
    actix::System::new().block_on(async {
        let stream = LocalStream::new(SHARDS, 4_000);
        let source = Arc::new(Deaggregating(stream.clone()));
        let ports = Ports::local(dir, source, false).unwrap();
        let mut pipeline = Pipeline::start(
            &config(),
            ports,
            StartPosition::TrimHorizon,
            Default::default(),
        )
        .await;
        let feeder = actix::spawn(async move {
            let mut positions = Vec::with_capacity(records.len());
            for chunk in records.chunks(400) {
                positions.extend(stream.put_batch(chunk.to_vec()).await);
            }
            stream.close();
            positions
        });
        pipeline.wait().await.unwrap();
        pipeline.close().await;
        feeder.await.unwrap()
    })
}

/// The shard a partition key goes to in a stream of [`SHARDS`] shards.
fn shard_of(key: &str) -> String {
    thread_local! {
        static STREAM: Arc<LocalStream> = LocalStream::new(SHARDS, 1);
    }
    STREAM.with(|stream| stream.shard_of(key).to_string())
}

/// A local stream read as Kinesis is: each record split into its KPL user records.
struct Deaggregating(Arc<LocalStream>);

#[async_trait]
impl StreamSource for Deaggregating {
    async fn list_shards(&self) -> Result<Vec<ShardInfo>, StreamError> {
        self.0.list_shards().await
    }

    // The runs here never resume, so a start inside an aggregate never comes up.
    async fn open_shard(
        &self,
        shard: &ShardId,
        start: StartPosition,
    ) -> Result<Box<dyn ShardCursor>, StreamError> {
        let inner = self.0.open_shard(shard, start).await?;
        Ok(Box::new(DeaggregatingCursor(inner)))
    }
}

struct DeaggregatingCursor(Box<dyn ShardCursor>);

#[async_trait]
impl ShardCursor for DeaggregatingCursor {
    async fn next_batch(&mut self) -> Result<ReadBatch, StreamError> {
        let mut batch = self.0.next_batch().await?;
        let mut records = Vec::with_capacity(batch.records.len());
        for record in std::mem::take(&mut batch.records) {
            for user in kpl::deaggregate(&record.data) {
                records.push(Record {
                    data: user.data,
                    partition_key: user
                        .partition_key
                        .map_or_else(|| record.partition_key.clone(), Into::into),
                    position: Position::new(record.position.sequence.clone(), user.sub_sequence),
                    arrival_time_ms: record.arrival_time_ms,
                });
            }
        }
        batch.records = records;
        Ok(batch)
    }
}

// ---------------------------------------------------------------------------------------------
// The outputs.

fn files_under(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == extension) {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn dead_letters(dir: &Path) -> Vec<serde_json::Value> {
    let files = files_under(&dir.join("dead-letters"), "jsonl");
    // Items an output refused are dead-lettered beside the records; the range rule must leave
    // none (every accepted value fits every output).
    let refused: Vec<_> = files
        .iter()
        .filter(|f| f.to_string_lossy().contains("refused-by-"))
        .collect();
    assert!(refused.is_empty(), "outputs refused items: {refused:?}");
    files
        .iter()
        .flat_map(|file| {
            let text = std::fs::read_to_string(file).unwrap();
            text.lines()
                .map(|line| serde_json::from_str(line).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A dead letter for a message: its reason, and the start of its record.
fn brief(letter: &serde_json::Value) -> String {
    let data = letter_data(letter);
    let data = String::from_utf8_lossy(&data[..data.len().min(300)]).into_owned();
    format!(
        "{} ({}) of {:?}",
        letter["reason_code"], letter["reason"], data
    )
}

fn position_key(letter: &serde_json::Value) -> Place {
    (
        letter["shard_id"].as_str().unwrap().to_owned(),
        letter["sequence_number"].as_str().unwrap().to_owned(),
        letter["sub_sequence_number"].as_u64().unwrap() as u32,
    )
}

fn letter_data(letter: &serde_json::Value) -> Bytes {
    match (letter["data"].as_str(), letter["data_base64"].as_str()) {
        (Some(text), None) => Bytes::copy_from_slice(text.as_bytes()),
        (None, Some(base64)) => base64_simd::STANDARD.decode_to_vec(base64).unwrap().into(),
        _ => panic!("a dead letter without its record: {letter}"),
    }
}

/// One value of a lake row; floats as bit patterns, so that rows compare exactly.
#[derive(Debug, PartialEq)]
enum Cell {
    Null,
    Float(u64),
    Text(String),
    Bool(bool),
    Int(i64),
}

/// The lake's rows by position, each as its columns other than the position and arrival time.
fn lake_rows(dir: &Path) -> BTreeMap<Place, Vec<(String, Cell)>> {
    let mut rows = BTreeMap::new();
    for file in files_under(&dir.join("ticks"), "parquet") {
        let bytes = Bytes::from(std::fs::read(&file).unwrap());
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let text = |name: &str| {
                let column = batch.column_by_name(name).unwrap();
                column
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .unwrap()
                    .clone()
            };
            let (shards, sequences) = (text("shard_id"), text("sequence_number"));
            let subs = batch.column_by_name("sub_sequence_number").unwrap();
            let subs = subs.as_any().downcast_ref::<Int64Array>().unwrap();
            let schema = batch.schema();
            let columns: Vec<_> = schema
                .fields()
                .iter()
                .zip(batch.columns())
                .filter(|(field, _)| {
                    let skipped = ["sequence_number", "sub_sequence_number", "arrival_time"];
                    !skipped.contains(&field.name().as_str())
                })
                .collect();
            for i in 0..batch.num_rows() {
                let row = columns
                    .iter()
                    .map(|(field, values)| (field.name().clone(), cell(field, values, i)))
                    .collect();
                let key = (
                    shards.value(i).to_owned(),
                    sequences.value(i).to_owned(),
                    subs.value(i) as u32,
                );
                assert!(
                    rows.insert(key.clone(), row).is_none(),
                    "a tick twice in the lake: {key:?}"
                );
            }
        }
    }
    rows
}

fn cell(field: &arrow_schema::Field, values: &arrow_array::ArrayRef, i: usize) -> Cell {
    let any = values.as_any();
    if values.is_null(i) {
        Cell::Null
    } else if let Some(a) = any.downcast_ref::<Float64Array>() {
        Cell::Float(a.value(i).to_bits())
    } else if let Some(a) = any.downcast_ref::<StringArray>() {
        Cell::Text(a.value(i).to_owned())
    } else if let Some(a) = any.downcast_ref::<BooleanArray>() {
        Cell::Bool(a.value(i))
    } else if let Some(a) = any.downcast_ref::<Int64Array>() {
        Cell::Int(a.value(i))
    } else if let Some(a) = any.downcast_ref::<TimestampMillisecondArray>() {
        Cell::Int(a.value(i))
    } else {
        panic!("column {} of type {}", field.name(), field.data_type());
    }
}

struct Table {
    /// Tick items by position, without the sort key, sequence number and arrival time.
    ticks: BTreeMap<Place, serde_json::Value>,
    /// Bar items by symbol and minute.
    bars: BTreeMap<(String, String), serde_json::Value>,
}

fn table_items(dir: &Path) -> Table {
    let path = dir.join("table").join("ticks.jsonl");
    let items = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(FileTicksTable::scan(&path))
        .unwrap();
    let mut table = Table {
        ticks: BTreeMap::new(),
        bars: BTreeMap::new(),
    };
    for mut item in items {
        let symbol = item["symbol"]["S"].as_str().unwrap().to_owned();
        let sort_key = item["timestamp"]["S"].as_str().unwrap().to_owned();
        if item.get("kind").is_some() {
            table.bars.insert((symbol, sort_key), item);
            continue;
        }
        let sub = sort_key
            .rsplit_once('#')
            .and_then(|(_, position)| position.split_once('.'))
            .map_or(0, |(_, sub)| sub.parse().unwrap());
        let key = (
            item["shard_id"]["S"].as_str().unwrap().to_owned(),
            item["sequence_number"]["S"].as_str().unwrap().to_owned(),
            sub,
        );
        let object = item.as_object_mut().unwrap();
        for name in ["timestamp", "sequence_number", "arrival_time_ms"] {
            object.remove(name);
        }
        assert!(
            table.ticks.insert(key.clone(), item).is_none(),
            "a tick twice in the table: {key:?}"
        );
    }
    table
}

/// Alerts without their ids (which name stream positions), counted.
fn alerts(dir: &Path) -> BTreeMap<String, usize> {
    let text = std::fs::read_to_string(dir.join("alerts.jsonl")).unwrap_or_default();
    let mut alerts = BTreeMap::new();
    for line in text.lines() {
        let mut alert: serde_json::Value = serde_json::from_str(line).unwrap();
        alert.as_object_mut().unwrap().remove("id");
        *alerts.entry(alert.to_string()).or_default() += 1;
    }
    alerts
}
