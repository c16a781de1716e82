//! Bounded symbol state through the real pipeline (the in-process stream and the local ports):
//! - a producer bug floods one shard with 200,000 distinct symbols: the shard keeps state for
//!   `symbols.max-per-shard` of them, every record of the others is dead-lettered with reason
//!   `symbol_limit`, every record is a tick or a dead letter, and the checkpoint stays within the
//!   bound that the limit sets;
//! - with a small limit and eviction both at work, a pipeline crashed midway (stopped with no
//!   final checkpoint) and resumed from its checkpoint writes the same enriched ticks, table
//!   items and dead letters as a run that never stopped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use arrow_array::{Array, Float64Array, StringArray};
use bytes::Bytes;
use kinetick::checkpoint::CheckpointStore;
use kinetick::checkpoint::file::FileCheckpointStore;
use kinetick::checkpoint::snapshot;
use kinetick::config::{Config, TableMode};
use kinetick::metrics::Counter;
use kinetick::model::symbol_table::SYMBOL_LIMIT;
use kinetick::pipeline::{Pipeline, Ports};
use kinetick::stream::StartPosition;
use kinetick::stream::local::{LocalStream, LocalStreamConfig};
use kinetick::table::file::FileTicksTable;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// 2026-01-05T14:30:00Z.
const START_MS: i64 = 1_767_623_400_000;

fn tick(symbol: &str, time_ms: i64, price: f64) -> (String, Bytes) {
    let json =
        format!(r#"{{"symbol":"{symbol}","price":{price:.2},"volume":100,"timestamp":{time_ms}}}"#);
    (symbol.to_owned(), Bytes::from(json))
}

/// How a run is fed: records per read, and how many records the producer puts before it
/// pauses for good (all of them, by default).
#[derive(Clone, Copy)]
struct Feed {
    shards: usize,
    max_batch_records: usize,
    pause_after: usize,
}

impl Feed {
    fn new(shards: usize) -> Self {
        Self {
            shards,
            max_batch_records: 10_000,
            pause_after: usize::MAX,
        }
    }
}

/// Starts a pipeline of `config` on `dir` and feeds it `records` (closing the stream at the
/// end, unless the feed pauses first).
async fn start(config: &Config, feed: Feed, dir: &Path, records: &[(String, Bytes)]) -> Pipeline {
    let stream = LocalStream::with_config(LocalStreamConfig {
        max_batch_records: feed.max_batch_records,
        ..LocalStreamConfig::new(feed.shards, 5_000)
    });
    let ports = Ports::local(dir, stream.clone(), false).unwrap();
    let pipeline = Pipeline::start(
        config,
        ports,
        StartPosition::TrimHorizon,
        Default::default(),
    )
    .await;
    let records: Vec<_> = records.iter().take(feed.pause_after).cloned().collect();
    let close = records.len() < feed.pause_after;
    actix::spawn(async move {
        for chunk in records.chunks(1_000) {
            stream.put_batch(chunk.to_vec()).await;
        }
        if close {
            stream.close();
        }
    });
    pipeline
}

/// Runs a pipeline to the end of the stream; the counters it ends with.
fn run_to_end(
    config: &Config,
    feed: Feed,
    dir: &Path,
    records: &[(String, Bytes)],
) -> BTreeMap<&'static str, u64> {
    actix::System::new().block_on(async {
        let mut pipeline = start(config, feed, dir, records).await;
        pipeline.wait().await.unwrap();
        let totals = Counter::ALL
            .iter()
            .map(|&c| (c.name(), pipeline.metrics().total(c)))
            .collect();
        pipeline.close().await;
        totals
    })
}

/// Runs a pipeline on `dir` and stops its threads, with no final checkpoint, once `ready`.
fn crash_when(
    config: &Config,
    feed: Feed,
    dir: &Path,
    records: &[(String, Bytes)],
    ready: impl Fn(&Pipeline) -> bool,
) {
    actix::System::new().block_on(async {
        let pipeline = start(config, feed, dir, records).await;
        let deadline = Instant::now() + Duration::from_secs(120);
        while !ready(&pipeline) {
            if Instant::now() >= deadline {
                let totals: Vec<_> = Counter::ALL
                    .iter()
                    .map(|&c| (c.name(), pipeline.metrics().total(c)))
                    .collect();
                panic!("the pipeline made no progress: {totals:?}");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        pipeline.abort();
    });
}

fn files_under(dir: &Path, extension: &str) -> Vec<std::path::PathBuf> {
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
    files
}

/// `(shard, sequence number)`: where a record was in the stream.
type Key = (String, String);

/// The lake's rows by record, each with its symbol and computed values; panics on a record in
/// two rows.
fn lake(dir: &Path) -> BTreeMap<Key, (String, Vec<Option<f64>>)> {
    let mut rows = BTreeMap::new();
    for file in files_under(&dir.join("ticks"), "parquet") {
        let bytes = Bytes::from(std::fs::read(&file).unwrap());
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
        for batch in reader.build().unwrap() {
            let batch = batch.unwrap();
            let column = |name: &str| batch.column_by_name(name).unwrap().clone();
            let text = |name: &str| {
                let column = column(name);
                column
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .unwrap()
                    .clone()
            };
            let (shards, sequences, symbols) =
                (text("shard_id"), text("sequence_number"), text("symbol"));
            let values: Vec<Float64Array> = ["sma_short", "sma_long", "ema", "vwap", "volatility"]
                .map(|name| {
                    let column = column(name);
                    column
                        .as_any()
                        .downcast_ref::<Float64Array>()
                        .unwrap()
                        .clone()
                })
                .into();
            for i in 0..batch.num_rows() {
                let key = (shards.value(i).to_owned(), sequences.value(i).to_owned());
                let computed = values
                    .iter()
                    .map(|c| (!c.is_null(i)).then(|| c.value(i)))
                    .collect();
                let row = (symbols.value(i).to_owned(), computed);
                assert!(rows.insert(key, row).is_none(), "a tick twice in the lake");
            }
        }
    }
    rows
}

/// The dead letters by record: reason code and partition key; panics on a record dead-lettered
/// twice.
fn dead_letters(dir: &Path) -> BTreeMap<Key, (String, String)> {
    let mut letters = BTreeMap::new();
    for file in files_under(&dir.join("dead-letters"), "jsonl") {
        for line in std::fs::read_to_string(file).unwrap().lines() {
            let letter: serde_json::Value = serde_json::from_str(line).unwrap();
            let text = |name: &str| letter[name].as_str().unwrap().to_owned();
            let key = (text("shard_id"), text("sequence_number"));
            let value = (text("reason_code"), text("partition_key"));
            assert!(
                letters.insert(key, value).is_none(),
                "a record dead-lettered twice"
            );
        }
    }
    letters
}

/// Table items by key, without the arrival time (a replayed stream has new arrival times).
fn table(dir: &Path) -> BTreeMap<String, serde_json::Value> {
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(FileTicksTable::scan(dir.join("table").join("ticks.jsonl")))
        .unwrap()
        .into_iter()
        .map(|mut item| {
            item.as_object_mut().unwrap().remove("arrival_time_ms");
            let key = format!("{}|{}", item["symbol"]["S"], item["timestamp"]["S"]);
            (key, item)
        })
        .collect()
}

const FLOOD: usize = 200_000;
/// Ticks of the first symbols after the flood: the kept symbols go on.
const AFTER_FLOOD: usize = 5_000;
const KEPT_AGAIN: usize = 1_000;

/// A tick of each of 200,000 distinct symbols, a millisecond apart (none idle for a day), then
/// ticks of the first 1,000 again.
fn flood() -> Vec<(String, Bytes)> {
    let distinct = (0..FLOOD).map(|i| tick(&format!("F{i:06}"), START_MS + i as i64, 10.0));
    let again = (0..AFTER_FLOOD).map(|i| {
        let time = START_MS + (FLOOD + i) as i64;
        tick(&format!("F{:06}", i % KEPT_AGAIN), time, 10.5)
    });
    distinct.chain(again).collect()
}

#[test]
fn a_flood_of_distinct_symbols_is_dead_lettered_past_the_limit() {
    let mut config = Config::default();
    config.pipeline.workers = 1;
    let limit = config.symbols.max_per_shard;
    assert_eq!(limit, 10_000, "the default limit");
    let records = flood();
    let dir = tempfile::tempdir().unwrap();
    let totals = run_to_end(&config, Feed::new(1), dir.path(), &records);

    let over = FLOOD - limit;
    assert_eq!(totals["RecordsProcessed"], records.len() as u64);
    assert_eq!(totals["RecordsOverSymbolLimit"], over as u64);
    assert_eq!(totals["DeadLetters"], over as u64);
    assert_eq!(totals["SymbolsEvicted"], 0, "no symbol was idle for a day");

    // Every record of a symbol past the limit is a dead letter with reason `symbol_limit`: the
    // symbols the shard met after its first 10,000.
    let letters = dead_letters(dir.path());
    assert_eq!(letters.len(), over);
    assert!(letters.values().all(|(code, _)| code == SYMBOL_LIMIT));
    let refused: BTreeSet<&str> = letters.values().map(|(_, key)| key.as_str()).collect();
    let expected: BTreeSet<String> = (limit..FLOOD).map(|i| format!("F{i:06}")).collect();
    assert!(
        refused
            .iter()
            .copied()
            .eq(expected.iter().map(String::as_str)),
        "the symbols past the first 10,000 are refused"
    );

    // Every other record is a tick: the first 10,000 symbols, and all the ticks after the flood.
    let rows = lake(dir.path());
    assert_eq!(rows.len(), limit + AFTER_FLOOD);
    assert!(rows.keys().all(|key| !letters.contains_key(key)));
    let sequences: BTreeSet<&str> = rows
        .keys()
        .chain(letters.keys())
        .map(|(_, sequence)| sequence.as_str())
        .collect();
    assert_eq!(
        sequences.len(),
        records.len(),
        "every record is a tick or a dead letter"
    );

    // The checkpoint holds the kept symbols only, within the bound the limit sets.
    let store = FileCheckpointStore::new(dir.path().join("checkpoints"));
    let checkpoint = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(store.load("shardId-000000000000"))
        .unwrap()
        .expect("the shard checkpointed at its end");
    assert!(checkpoint.shard_end);
    assert_eq!(checkpoint.snapshot.len(), limit);
    let most_ticks = 1 + AFTER_FLOOD / KEPT_AGAIN;
    let bound = snapshot::max_encoded_len(limit, most_ticks, most_ticks);
    let bytes = snapshot::encode(&checkpoint.snapshot).len();
    assert!(bytes <= bound, "snapshot {bytes} bytes, bound {bound}");
    let file = std::fs::metadata(dir.path().join("checkpoints/shardId-000000000000.json"));
    let file_bytes = file.unwrap().len() as usize;
    assert!(
        file_bytes <= bound / 3 * 4 + 1_024,
        "checkpoint file {file_bytes} bytes (base64 of at most {bound})"
    );
}

const RECORDS: usize = 12_000;
const SHARDS: usize = 2;
const POOL: u64 = 200;

/// A small xorshift generator: the same records on every run, without a seeded library.
struct Rng(u64);

impl Rng {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

/// A second apart, records of a window of 30 symbols of a pool of 200 that moves on by one every
/// 20 records (a symbol is busy for about 10 minutes, then idle for about an hour before the
/// window comes round again), one in 20 of a symbol seen once, one in 30 up to 4 minutes late.
fn market() -> Vec<(String, Bytes)> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut prices: BTreeMap<String, f64> = BTreeMap::new();
    (0..RECORDS as u64)
        .map(|i| {
            let symbol = match rng.next(20) {
                0 => format!("N{i:05}"),
                _ => format!("P{:03}", (i / 20 + rng.next(30)) % POOL),
            };
            let late = match rng.next(30) {
                0 => rng.next(240_000) as i64,
                _ => 0,
            };
            let price = prices.entry(symbol.clone()).or_insert(100.0);
            *price *= 1.0 + (rng.next(201) as f64 - 100.0) / 10_000.0;
            tick(&symbol, START_MS + i as i64 * 1_000 - late, *price)
        })
        .collect()
}

fn small_limits() -> Config {
    let mut config = Config::default();
    config.pipeline.workers = 2;
    config.checkpoint.max_records = 500;
    // Files close at every barrier: each shard checkpoints once the feed pauses.
    config.lake.target_file_size = 1;
    config.table.mode = TableMode::Both;
    config.symbols.max_per_shard = 20;
    config.symbols.evict_after = Duration::from_secs(600);
    config
}

#[test]
fn a_crashed_pipeline_resumes_with_the_same_evictions_and_refusals() {
    let (config, records) = (small_limits(), market());
    let reference = tempfile::tempdir().unwrap();
    let totals = run_to_end(&config, Feed::new(SHARDS), reference.path(), &records);
    let (lake_rows, letters) = (lake(reference.path()), dead_letters(reference.path()));
    assert!(
        totals["SymbolsEvicted"] > 100,
        "symbols are evicted: {totals:?}"
    );
    let refused = letters.values().filter(|(code, _)| code == SYMBOL_LIMIT);
    assert!(refused.count() > 500, "records are refused: {totals:?}");
    assert!(
        lake_rows.len() > RECORDS / 3,
        "most ticks are kept: {totals:?}"
    );
    assert_eq!(lake_rows.len() + letters.len(), RECORDS);

    // Reads of another size than the reference's, so that reads and checkpoints end elsewhere;
    // the producer pauses halfway, and the pipeline crashes once it has read everything put, a
    // few hundred records past its last checkpoint.
    let halfway = Feed {
        max_batch_records: 97,
        pause_after: RECORDS / 2,
        ..Feed::new(SHARDS)
    };
    let resumed = tempfile::tempdir().unwrap();
    let checkpoints = resumed.path().join("checkpoints");
    crash_when(&config, halfway, resumed.path(), &records, |pipeline| {
        let metrics = pipeline.metrics();
        metrics.total(Counter::RecordsProcessed) == (RECORDS / 2) as u64
            && files_under(&checkpoints, "json").len() == SHARDS
    });
    let store = FileCheckpointStore::new(&checkpoints);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut covered = 0;
    for shard in 0..SHARDS {
        let checkpoint = runtime
            .block_on(store.load(&format!("shardId-{shard:012}")))
            .unwrap()
            .unwrap();
        assert!(checkpoint.snapshot.len() <= config.symbols.max_per_shard);
        // The local stream numbers a shard's records 10^20 + shard * 10^15 + n.
        let sequence: u128 = checkpoint.position.sequence.to_string().parse().unwrap();
        covered += (sequence % 1_000_000_000_000_000) as usize + 1;
    }
    assert!(
        covered < RECORDS / 2,
        "records to replay past the checkpoints"
    );
    let resume = Feed {
        max_batch_records: 97,
        ..Feed::new(SHARDS)
    };
    run_to_end(&config, resume, resumed.path(), &records);

    let resumed_rows = lake(resumed.path());
    assert_eq!(resumed_rows.len(), lake_rows.len(), "no tick lost");
    assert!(
        resumed_rows == lake_rows,
        "the same ticks kept, with the same values (fresh where a symbol restarted)"
    );
    assert!(
        dead_letters(resumed.path()) == letters,
        "the same records refused"
    );
    assert!(
        table(resumed.path()) == table(reference.path()),
        "the same table items, bars included"
    );
}
