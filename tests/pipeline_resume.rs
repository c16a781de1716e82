//! The delivery guarantee in-process: a pipeline that crashes mid-stream (threads stopped with
//! no final checkpoint) and is started again on the same storage ends with every tick exactly
//! once in the lake and the table, with the same computed values and one-minute bars as a run
//! that never stopped.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use arrow_array::{Array, Float64Array, Int64Array, StringArray};
use bytes::Bytes;
use kinetick::checkpoint::file::FileCheckpointStore;
use kinetick::checkpoint::{CheckpointStore, FilesEnd, Mark};
use kinetick::config::{Config, TableMode};
use kinetick::lease::Fence;
use kinetick::metrics::Counter;
use kinetick::model::tick::{Position, SequenceNumber};
use kinetick::pipeline::{Pipeline, Ports};
use kinetick::producer::simulator::{MarketSimulator, SimulatorConfig};
use kinetick::stream::StartPosition;
use kinetick::stream::local::LocalStream;
use kinetick::table::file::FileTicksTable;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

const RECORDS: usize = 12_000;
const SHARDS: usize = 2;

fn records() -> Vec<(String, Bytes)> {
    let config = SimulatorConfig {
        symbols: 30,
        seed: 11,
        ..SimulatorConfig::default()
    };
    MarketSimulator::new(config)
        .take(RECORDS)
        .map(|r| (r.partition_key.to_string(), Bytes::from(r.data)))
        .collect()
}

fn config() -> Config {
    let mut config = Config::default();
    config.checkpoint.max_records = 700;
    // A barrier's rows take about 20 KB in the lake: files close every other barrier, so a
    // crash finds the table ahead of the checkpoint.
    config.lake.target_file_size = 30_000;
    config.pipeline.workers = 2;
    config.table.mode = TableMode::Both;
    config
}

/// Starts a pipeline on `dir` and feeds it every record (closing the stream at the end).
async fn start(dir: &Path, records: &[(String, Bytes)], config: &Config) -> Pipeline {
    let stream = LocalStream::new(SHARDS, 2_000);
    let ports = Ports::local(dir, stream.clone(), false).unwrap();
    let pipeline = Pipeline::start(
        config,
        ports,
        StartPosition::TrimHorizon,
        Default::default(),
    )
    .await;
    let records = records.to_vec();
    actix::spawn(async move {
        for chunk in records.chunks(250) {
            stream.put_batch(chunk.to_vec()).await;
        }
        stream.close();
    });
    pipeline
}

fn run_to_end(dir: &Path, records: &[(String, Bytes)], config: &Config) {
    actix::System::new().block_on(async {
        let mut pipeline = start(dir, records, config).await;
        pipeline.wait().await.unwrap();
        pipeline.close().await;
    });
}

fn crash_midway(dir: &Path, records: &[(String, Bytes)]) {
    crash_when(dir, records, &config(), |pipeline| {
        pipeline.metrics().total(Counter::RecordsProcessed) >= (RECORDS / 2) as u64
    });
}

/// Runs a pipeline on `dir` and stops its threads, with no final checkpoint, once `ready`.
fn crash_when(
    dir: &Path,
    records: &[(String, Bytes)],
    config: &Config,
    ready: impl Fn(&Pipeline) -> bool,
) {
    actix::System::new().block_on(async {
        let pipeline = start(dir, records, config).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ready(&pipeline) {
            assert!(Instant::now() < deadline, "the pipeline made no progress");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        pipeline.abort();
    });
}

/// Computed values of one lake row, keyed by `(shard, sequence)`.
type RowValues = BTreeMap<(String, String), Vec<Option<f64>>>;

/// The lake's row count and rows: the computed values must not depend on a crash.
fn lake(dir: &Path) -> (usize, RowValues) {
    let (rows, by_key, _) = lake_files(dir);
    (rows, by_key)
}

/// The lowest and highest sequence number of each lake file, by shard.
type FileRanges = BTreeMap<String, Vec<(u128, u128)>>;

/// The lake's row count, its rows, and the sequence range of each file.
fn lake_files(dir: &Path) -> (usize, RowValues, FileRanges) {
    let mut rows = 0;
    let mut by_key = BTreeMap::new();
    let mut ranges: FileRanges = BTreeMap::new();
    let mut pending = vec![dir.join("ticks")];
    while let Some(path) = pending.pop() {
        for entry in std::fs::read_dir(&path).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let bytes = Bytes::from(std::fs::read(&path).unwrap());
            let mut range: Option<(String, u128, u128)> = None;
            for batch in ParquetRecordBatchReaderBuilder::try_new(bytes)
                .unwrap()
                .build()
                .unwrap()
            {
                let batch = batch.unwrap();
                let text = |name: &str| {
                    batch
                        .column_by_name(name)
                        .unwrap()
                        .as_any()
                        .downcast_ref::<StringArray>()
                        .unwrap()
                        .clone()
                };
                let float = |name: &str| {
                    batch
                        .column_by_name(name)
                        .unwrap()
                        .as_any()
                        .downcast_ref::<Float64Array>()
                        .unwrap()
                        .clone()
                };
                let (shards, sequences) = (text("shard_id"), text("sequence_number"));
                let subs = batch.column_by_name("sub_sequence_number").unwrap();
                assert!(subs.as_any().downcast_ref::<Int64Array>().is_some());
                let values: Vec<Float64Array> = [
                    "sma_short",
                    "sma_long",
                    "ema",
                    "vwap",
                    "volatility",
                    "return_zscore",
                ]
                .map(float)
                .into();
                for i in 0..batch.num_rows() {
                    rows += 1;
                    let sequence: u128 = sequences.value(i).parse().unwrap();
                    let (_, low, high) =
                        range.get_or_insert((shards.value(i).to_owned(), sequence, sequence));
                    (*low, *high) = ((*low).min(sequence), (*high).max(sequence));
                    let computed = values
                        .iter()
                        .map(|c| (!c.is_null(i)).then(|| c.value(i)))
                        .collect();
                    by_key.insert(
                        (shards.value(i).to_owned(), sequences.value(i).to_owned()),
                        computed,
                    );
                }
            }
            if let Some((shard, low, high)) = range {
                ranges.entry(shard).or_default().push((low, high));
            }
        }
    }
    (rows, by_key, ranges)
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

#[test]
fn a_crashed_pipeline_resumes_with_no_loss_no_duplicates_and_the_same_values() {
    let records = records();
    let reference = tempfile::tempdir().unwrap();
    run_to_end(reference.path(), &records, &config());

    let resumed = tempfile::tempdir().unwrap();
    crash_midway(resumed.path(), &records);
    run_to_end(resumed.path(), &records, &config());

    let (reference_rows, reference_lake) = lake(reference.path());
    let (resumed_rows, resumed_lake) = lake(resumed.path());
    assert!(
        reference_rows > RECORDS * 9 / 10,
        "most records are valid ticks"
    );
    assert_eq!(reference_rows, reference_lake.len());
    assert_eq!(
        resumed_rows,
        resumed_lake.len(),
        "no tick twice in the lake after the crash"
    );
    assert_eq!(resumed_lake.len(), reference_lake.len(), "no tick lost");
    assert!(
        resumed_lake == reference_lake,
        "windows restored from the checkpoint give the same values"
    );

    let (reference_table, resumed_table) = (table(reference.path()), table(resumed.path()));
    let reference_bars = bars(&reference_table);
    assert!(reference_bars.len() >= 30, "a bar per symbol and minute");
    assert_eq!(reference_table.len(), reference_rows + reference_bars.len());
    assert_eq!(
        reference_bars,
        bars_of_ticks(&reference_table),
        "each bar item sums up its minute's tick items"
    );
    assert!(
        resumed_table == reference_table,
        "the table holds the same items, bars included"
    );
}

/// `(open, high, low, close, volume, trades)` of a bar.
type Bar = (f64, f64, f64, f64, f64, u64);

fn number(item: &serde_json::Value, name: &str) -> f64 {
    item[name]["N"].as_str().map_or(0.0, |n| n.parse().unwrap())
}

/// The bar items of the table, by symbol and minute.
fn bars(table: &BTreeMap<String, serde_json::Value>) -> BTreeMap<(String, String), Bar> {
    table
        .values()
        .filter(|item| item["kind"]["S"] == "bar_1m")
        .map(|item| {
            let key = (
                item["symbol"]["S"].as_str().unwrap().to_owned(),
                item["event_time"]["S"].as_str().unwrap()[..16].to_owned(),
            );
            let bar = (
                number(item, "open"),
                number(item, "high"),
                number(item, "low"),
                number(item, "close"),
                number(item, "volume"),
                number(item, "trades") as u64,
            );
            (key, bar)
        })
        .collect()
}

/// Bars computed straight from the tick items (in key order: event time, then stream position).
fn bars_of_ticks(table: &BTreeMap<String, serde_json::Value>) -> BTreeMap<(String, String), Bar> {
    let mut ticks: Vec<&serde_json::Value> = table
        .values()
        .filter(|item| item.get("kind").is_none())
        .collect();
    ticks.sort_by_key(|item| {
        (
            item["symbol"]["S"].as_str().unwrap().to_owned(),
            item["timestamp"]["S"].as_str().unwrap().to_owned(),
        )
    });
    let mut bars: BTreeMap<(String, String), Bar> = BTreeMap::new();
    for item in ticks {
        let key = (
            item["symbol"]["S"].as_str().unwrap().to_owned(),
            item["event_time"]["S"].as_str().unwrap()[..16].to_owned(),
        );
        let (price, volume) = (number(item, "price"), number(item, "volume"));
        let bar = bars
            .entry(key)
            .or_insert((price, price, price, price, 0.0, 0));
        bar.1 = bar.1.max(price);
        bar.2 = bar.2.min(price);
        bar.3 = price;
        bar.4 += volume;
        bar.5 += 1;
    }
    bars
}

/// The shard of the tests of marks an earlier owner left.
const SHARD: &str = "shardId-000000000000";

/// Runs the pipeline on `dir`, files closing at every barrier so that the first checkpoint
/// comes early, and crashes it there; then records `mark` for [`SHARD`] as an earlier owner
/// would, `mark` made from the checkpoint's sequence number. Returns that number.
fn crash_at_first_checkpoint(
    dir: &Path,
    records: &[(String, Bytes)],
    mark: impl FnOnce(&Position, u128) -> Mark,
) -> u128 {
    let checkpoint_file = dir.join(format!("checkpoints/{SHARD}.json"));
    let mut every_barrier = config();
    every_barrier.lake.target_file_size = 1;
    crash_when(dir, records, &every_barrier, |_| checkpoint_file.exists());
    let store = FileCheckpointStore::new(dir.join("checkpoints"));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let checkpoint = runtime
        .block_on(store.load(SHARD))
        .unwrap()
        .expect("the shard checkpointed before the crash");
    let after: u128 = checkpoint.position.sequence.to_string().parse().unwrap();
    let fence = Fence {
        shard_id: SHARD.into(),
        owner: "earlier-owner".into(),
        counter: 1,
    };
    let mark = mark(&checkpoint.position, after);
    runtime.block_on(store.mark(&fence, &mark)).unwrap();
    after
}

/// What a new owner does when an earlier one reserved the end of its next files and may still
/// write them late: it ends its own first files exactly there, so the late write replaces a file
/// with the same rows.
#[test]
fn a_resumed_shard_ends_its_first_files_where_an_earlier_owner_reserved() {
    let records = records();
    let reference = tempfile::tempdir().unwrap();
    run_to_end(reference.path(), &records, &config());

    let resumed = tempfile::tempdir().unwrap();
    // An end the reader would not choose itself: a barrier falls every 700 records.
    let end_of = |after: u128| Position::new(SequenceNumber::new((after + 123).to_string()), 0);
    let after = crash_at_first_checkpoint(resumed.path(), &records, |checkpoint, after| {
        Mark::FilesEnd(FilesEnd {
            after: Some(checkpoint.clone()),
            end: end_of(after),
        })
    });
    let end = after + 123;
    run_to_end(resumed.path(), &records, &config());

    let (rows, values, ranges) = lake_files(resumed.path());
    let (_, reference_values) = lake(reference.path());
    assert_eq!(rows, values.len(), "no tick twice");
    assert!(values == reference_values, "no tick lost, the same values");
    let after_checkpoint: Vec<(u128, u128)> = ranges[SHARD]
        .iter()
        .copied()
        .filter(|&(_, high)| high > after)
        .collect();
    assert!(
        after_checkpoint.iter().any(|&(_, high)| high == end),
        "a file ends at the reserved end: {after_checkpoint:?}"
    );
    assert!(
        after_checkpoint
            .iter()
            .all(|&(low, high)| high <= end || low > end),
        "no file runs across the reserved end: {after_checkpoint:?}"
    );
}

/// What a new owner does when the table was durable past the checkpoint (its mark says how
/// far): it reads again from the checkpoint, as the lake needs, but gives the table none of the
/// ticks up to the mark. Those ticks are taken out of the table here after the crash: had the
/// replay written them again, they would be back.
#[test]
fn a_resumed_shard_gives_the_table_nothing_it_had_already() {
    let records = records();
    let reference = tempfile::tempdir().unwrap();
    run_to_end(reference.path(), &records, &config());
    let reference_table = table(reference.path());
    let sequence_of = |item: &serde_json::Value| -> Option<u128> {
        let shard = item.get("shard_id")?["S"].as_str()?;
        (shard == SHARD).then(|| item["sequence_number"]["S"].as_str()?.parse().ok())?
    };
    let last: u128 = reference_table
        .values()
        .filter_map(sequence_of)
        .max()
        .unwrap();
    // The mark runs 500 records past the checkpoint, or half of what the shard has left there:
    // the crash comes wherever the first checkpoint finds the pipeline.
    let through_of = |after: u128| after + 500.min(last.saturating_sub(after).div_ceil(2));
    let resumed = tempfile::tempdir().unwrap();
    let after = crash_at_first_checkpoint(resumed.path(), &records, |_, after| {
        let through = Position::new(SequenceNumber::new(through_of(after).to_string()), 0);
        Mark::SinksDurable(BTreeMap::from([("table".to_owned(), through)]))
    });
    let through = through_of(after);
    let skipped =
        |item: &serde_json::Value| sequence_of(item).is_some_and(|s| s > after && s <= through);
    let log = resumed.path().join("table").join("ticks.jsonl");
    let kept: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter(|line| !skipped(&serde_json::from_str(line).unwrap()))
        .map(|line| format!("{line}\n"))
        .collect();
    std::fs::write(&log, kept.concat()).unwrap();

    run_to_end(resumed.path(), &records, &config());
    let resumed_table = table(resumed.path());
    assert!(
        !resumed_table.values().any(skipped),
        "the table was given ticks up to its mark again"
    );
    let ticks = |table: &BTreeMap<String, serde_json::Value>| {
        table
            .values()
            .filter(|item| sequence_of(item).is_some())
            .count()
    };
    let taken_out = reference_table
        .values()
        .filter(|item| skipped(item))
        .count();
    assert!(
        taken_out > 0,
        "the mark lies among the shard's ticks past the checkpoint"
    );
    assert_eq!(
        ticks(&resumed_table) + taken_out,
        ticks(&reference_table),
        "every other tick of the shard is in the table"
    );
    let (rows, resumed_lake) = lake(resumed.path());
    let (_, reference_lake) = lake(reference.path());
    assert_eq!(rows, resumed_lake.len(), "no tick twice in the lake");
    assert!(
        resumed_lake == reference_lake,
        "the lake has every tick, the same values"
    );
}
