//! `kinetick demo` through the real binary: every valid tick lands exactly once in the lake and
//! in the ticks table, malformed records land in dead letters with reasons, injected anomalies
//! raise alerts, and every shard ends with a checkpoint.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use arrow_array::{Array, Int64Array, StringArray};
use kinetick::producer::simulator::{MarketSimulator, RecordKind, SimulatorConfig};
use kinetick::table::file::FileTicksTable;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

const RECORDS: usize = 30_000;
const SYMBOLS: usize = 40;
const SHARDS: usize = 3;
const SEED: u64 = 7;
/// News on about one tick in 250 (a real market has a few a day, not in 30 s), so that the
/// demo raises alerts on moves against the previous close.
const JUMPS_PER_SESSION: f64 = 2_340.0;

fn files_under(dir: &Path, extension: &str) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
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

/// `(shard, sequence, sub-sequence)` of every row of the lake, with the `dt` of its file.
fn lake_rows(out: &Path) -> Vec<(String, String, i64, String)> {
    let mut rows = Vec::new();
    for file in files_under(&out.join("ticks"), "parquet") {
        let dt = file
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let bytes = bytes::Bytes::from(std::fs::read(&file).unwrap());
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let column = |name: &str| batch.column_by_name(name).unwrap().clone();
            let shards = column("shard_id");
            let shards = shards.as_any().downcast_ref::<StringArray>().unwrap();
            let sequences = column("sequence_number");
            let sequences = sequences.as_any().downcast_ref::<StringArray>().unwrap();
            let subs = column("sub_sequence_number");
            let subs = subs.as_any().downcast_ref::<Int64Array>().unwrap();
            for i in 0..batch.num_rows() {
                rows.push((
                    shards.value(i).to_owned(),
                    sequences.value(i).to_owned(),
                    subs.value(i),
                    dt.clone(),
                ));
            }
        }
    }
    rows
}

#[test]
fn demo_writes_every_tick_exactly_once() {
    let out = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_kinetick"))
        .args([
            "demo",
            "--no-progress",
            "--ticks",
            &RECORDS.to_string(),
            "--symbols",
            &SYMBOLS.to_string(),
        ])
        .args(["--shards", &SHARDS.to_string(), "--seed", &SEED.to_string()])
        .args(["--jumps-per-session", &JUMPS_PER_SESSION.to_string()])
        .arg("--out")
        .arg(out.path())
        // Small checkpoints so that every shard rolls several Parquet files.
        .env("KINETICK_CHECKPOINT__MAX_RECORDS", "2000")
        .output()
        .expect("kinetick runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "demo failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("kinetick demo finished"), "{stdout}");

    let config = SimulatorConfig {
        symbols: SYMBOLS,
        seed: SEED,
        jumps_per_session: JUMPS_PER_SESSION,
        ..SimulatorConfig::default()
    };
    let records: Vec<_> = MarketSimulator::new(config).take(RECORDS).collect();
    let malformed = records
        .iter()
        .filter(|r| r.kind == RecordKind::Malformed)
        .count();
    let valid = RECORDS - malformed;
    assert!(malformed > 0, "the simulator injects malformed records");

    // The lake: every valid tick once, in the partition of its event date.
    let rows = lake_rows(out.path());
    let unique: BTreeSet<_> = rows
        .iter()
        .map(|(shard, seq, sub, _)| (shard, seq, sub))
        .collect();
    assert_eq!(rows.len(), valid, "lake rows");
    assert_eq!(unique.len(), valid, "lake rows are unique");
    assert!(
        rows.iter().all(|(.., dt)| dt.starts_with("dt=2026-")),
        "Hive partitions by event date"
    );
    // Files close at their target size or age, not at each checkpoint: this short run fills
    // one file per shard and date.
    let files = files_under(&out.path().join("ticks"), "parquet").len();
    let shard_dates: BTreeSet<_> = rows.iter().map(|(shard, .., dt)| (shard, dt)).collect();
    assert_eq!(files, shard_dates.len(), "one file per shard and date");

    // The ticks table: the same ticks, one item each.
    let table = out.path().join("table").join("ticks.jsonl");
    let items = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(FileTicksTable::scan(&table))
        .unwrap();
    assert_eq!(items.len(), valid, "table items");
    let raw_lines = std::fs::read_to_string(&table).unwrap().lines().count();
    assert_eq!(raw_lines, valid, "no item was written twice");
    let table_keys: BTreeSet<(String, String)> = items
        .iter()
        .map(|item| {
            (
                item["shard_id"]["S"].as_str().unwrap().to_owned(),
                item["sequence_number"]["S"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let lake_keys: BTreeSet<(String, String)> = rows
        .iter()
        .map(|(shard, seq, ..)| (shard.clone(), seq.clone()))
        .collect();
    assert_eq!(
        table_keys, lake_keys,
        "the table and the lake hold the same ticks"
    );

    // Dead letters: every malformed record, with a reason.
    let mut reasons = BTreeMap::new();
    let mut dead_letters = 0;
    for file in files_under(&out.path().join("dead-letters"), "jsonl") {
        for line in std::fs::read_to_string(file).unwrap().lines() {
            let letter: serde_json::Value = serde_json::from_str(line).unwrap();
            assert!(
                letter["sequence_number"].is_string() && letter["shard_id"].is_string(),
                "{letter}"
            );
            *reasons
                .entry(letter["reason_code"].as_str().unwrap().to_owned())
                .or_insert(0) += 1;
            dead_letters += 1;
        }
    }
    assert_eq!(
        dead_letters, malformed,
        "dead letters by reason: {reasons:?}"
    );
    assert!(
        reasons.len() >= 3,
        "several kinds of rejection: {reasons:?}"
    );

    // Alerts: news makes anomaly alerts.
    let alerts = std::fs::read_to_string(out.path().join("alerts.jsonl")).unwrap();
    let kinds: BTreeSet<String> = alerts
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(
        records.iter().any(|r| r.kind == RecordKind::Jump),
        "the simulator injects news"
    );
    assert!(
        kinds.contains("change_percent") && kinds.contains("return_zscore"),
        "alert kinds: {kinds:?}"
    );
    let ids: Vec<String> = alerts
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>().len(),
        ids.len(),
        "alert ids are unique"
    );

    // Checkpoints: every shard read to its end.
    let checkpoints = files_under(&out.path().join("checkpoints"), "json");
    assert_eq!(checkpoints.len(), SHARDS);
    for file in checkpoints {
        let checkpoint: kinetick::checkpoint::Checkpoint =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert!(checkpoint.shard_end, "{}", file.display());
        assert!(!checkpoint.snapshot.is_empty(), "{}", file.display());
    }
}

/// The demo's front door: `local.dir` is the output directory when `--out` is not given,
/// `alerts.print` prints each alert on stdout, and rejected records are logged as one summary
/// by reason instead of a line per batch.
#[test]
fn demo_settings_and_rejection_summary() {
    const RECORDS: usize = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("from-local-dir");
    let output = Command::new(env!("CARGO_BIN_EXE_kinetick"))
        .args(["demo", "--no-progress", "--ticks", &RECORDS.to_string()])
        .args([
            "--symbols",
            &SYMBOLS.to_string(),
            "--seed",
            &SEED.to_string(),
        ])
        .env("KINETICK_LOCAL__DIR", &out)
        .env("KINETICK_ALERTS__PRINT", "true")
        .env_remove("RUST_LOG")
        .output()
        .expect("kinetick runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "demo failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );

    // `local.dir`: everything under it.
    let alerts = std::fs::read_to_string(out.join("alerts.jsonl")).unwrap();
    assert!(!alerts.is_empty());
    assert!(!files_under(&out.join("ticks"), "parquet").is_empty());

    // `alerts.print`: one line on stdout per alert in the file.
    let printed = stdout.lines().filter(|l| l.starts_with("ALERT ")).count();
    assert_eq!(printed, alerts.lines().count(), "{stdout}");

    // Rejections: summed by reason (the log is JSON when stderr is not a terminal), the totals
    // equal to what the simulator injected, and no line per batch.
    let config = SimulatorConfig {
        symbols: SYMBOLS,
        seed: SEED,
        ..SimulatorConfig::default()
    };
    let malformed = MarketSimulator::new(config)
        .take(RECORDS)
        .filter(|r| r.kind == RecordKind::Malformed)
        .count() as u64;
    let rejection_lines: Vec<serde_json::Value> = stderr
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| {
            line["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("Records rejected and dead-lettered"))
        })
        .collect();
    assert!(
        rejection_lines
            .iter()
            .all(|l| l["fields"]["shard_id"].is_null()),
        "no line per batch: {stderr}"
    );
    let totals = rejection_lines
        .iter()
        .find(|l| l["fields"]["message"] == "Records rejected and dead-lettered in all.")
        .unwrap_or_else(|| panic!("a summary at the end: {stderr}"));
    assert_eq!(totals["fields"]["count"], malformed, "{totals}");
    let reasons = totals["fields"]["reasons"].as_str().unwrap();
    let summed: u64 = reasons
        .split(", ")
        .map(|reason| reason.rsplit_once(' ').unwrap().1.parse::<u64>().unwrap())
        .sum();
    assert_eq!(summed, malformed, "{reasons}");
}
