//! `kinetick compact` through the real binary, on the lake a real `kinetick demo` wrote: every
//! tick stays in the lake exactly once with every value equal, in fewer files, each sorted as
//! the lake sorts; files with rows past their shard's checkpoint are left as they are, whatever
//! their names say; files written before the `alerts` columns merge with nulls there; a rerun
//! changes nothing; a run that stopped between writing and deleting is finished by the next; and
//! once the checkpoint moves on, the rest compacts with the day's earlier output. The pipeline's
//! large files, a row group of every symbol per barrier, are sorted into symbol ranges. A date
//! another run holds the lock of is left untouched, and a lock whose lease ran out is taken over.

#[path = "common/lake.rs"]
mod lake;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use arrow_schema::Schema;
use bytes::Bytes;
use kinetick::model::tick::Position;
use lake::{RowId, file_rows, files_under, lake_order, lake_rows};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn succeeded(output: Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "kinetick failed\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Writes a demo's lake into `lake` (`demo --ticks T --symbols S --shards N --seed X`, with
/// `settings` as `KINETICK_*` variables); returns its one partition and that partition's date.
fn demo_lake(
    lake: &Path,
    [ticks, symbols, shards, seed]: [&str; 4],
    settings: &[(&str, &str)],
) -> (PathBuf, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kinetick"));
    command
        .args([
            "demo",
            "--no-progress",
            "--ticks",
            ticks,
            "--symbols",
            symbols,
        ])
        .args(["--shards", shards, "--seed", seed, "--out"])
        .arg(lake)
        .envs(settings.iter().copied());
    succeeded(command.output().unwrap());
    let partitions: Vec<PathBuf> = std::fs::read_dir(lake.join("ticks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(partitions.len(), 1, "one event date");
    let date = name(&partitions[0]).strip_prefix("dt=").unwrap().to_owned();
    (partitions[0].clone(), date)
}

fn compact(lake: &Path, date: &str, target: u64, dry_run: bool) -> String {
    succeeded(
        compact_command(lake, date, target, dry_run)
            .output()
            .expect("kinetick runs"),
    )
}

fn compact_command(lake: &Path, date: &str, target: u64, dry_run: bool) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kinetick"));
    command
        .args(["compact", "--no-progress", "--date", date, "--target-size"])
        .arg(target.to_string())
        .arg("--lake")
        .arg(lake);
    if dry_run {
        command.arg("--dry-run");
    }
    command
}

/// Every file of the partition and of the compaction's manifests, with its bytes.
fn snapshot(lake: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    ["ticks", "compaction"]
        .iter()
        .flat_map(|dir| {
            let mut files = files_under(&lake.join(dir), "parquet");
            files.extend(files_under(&lake.join(dir), "json"));
            files
        })
        .map(|file| {
            let bytes = std::fs::read(&file).unwrap();
            (file.strip_prefix(lake).unwrap().to_owned(), bytes)
        })
        .collect()
}

/// Each file's size and a hash of its bytes, to compare snapshots (and print them) briefly.
fn digest(snapshot: &BTreeMap<PathBuf, Vec<u8>>) -> BTreeMap<&Path, (usize, u64)> {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    let hasher = BuildHasherDefault::<DefaultHasher>::default();
    snapshot
        .iter()
        .map(|(path, bytes)| (path.as_path(), (bytes.len(), hasher.hash_one(bytes))))
        .collect()
}

fn name(path: &Path) -> &str {
    path.file_name().unwrap().to_str().unwrap()
}

/// The position a shard file's name starts at.
fn first_position(path: &Path) -> Position {
    let stem = name(path).strip_suffix(".parquet").unwrap();
    stem.rsplit_once('-').unwrap().1.parse().unwrap()
}

/// The file's rows' greatest position.
fn last_position(path: &Path) -> Position {
    let rows = file_rows(Bytes::from(std::fs::read(path).unwrap()));
    let position =
        |(_, sequence, sub): &RowId| -> Position { format!("{sequence}.{sub}").parse().unwrap() };
    rows.iter().map(|(id, _)| position(id)).max().unwrap()
}

/// Rewrites a lake file without its `alerts` and `alerts_held` columns, as files written before
/// them are.
fn without_alert_columns(path: &Path) {
    let body = Bytes::from(std::fs::read(path).unwrap());
    let reader = ParquetRecordBatchReaderBuilder::try_new(body).unwrap();
    let schema = reader.schema().clone();
    let keep: Vec<usize> = (0..schema.fields().len())
        .filter(|&i| !schema.field(i).name().starts_with("alerts"))
        .collect();
    let narrow = Arc::new(schema.project(&keep).unwrap());
    let mut writer = ArrowWriter::try_new(Vec::new(), narrow.clone(), None).unwrap();
    for batch in reader.build().unwrap() {
        writer
            .write(&batch.unwrap().project(&keep).unwrap())
            .unwrap();
    }
    std::fs::write(path, writer.into_inner().unwrap()).unwrap();
}

/// Moves a shard's checkpoint: to `position` (not its end), or back to the end it was at.
fn set_checkpoint(lake: &Path, shard: &str, position: Option<&Position>) {
    let path = lake.join("checkpoints").join(format!("{shard}.json"));
    let mut checkpoint: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    if let Some(position) = position {
        checkpoint["position"] = serde_json::to_value(position).unwrap();
    }
    checkpoint["shard_end"] = position.is_none().into();
    std::fs::write(&path, serde_json::to_vec(&checkpoint).unwrap()).unwrap();
}

fn assert_sorted_in_the_lakes_schema(file: &Path) {
    let body = Bytes::from(std::fs::read(file).unwrap());
    let schema: Arc<Schema> = ParquetRecordBatchReaderBuilder::try_new(body.clone())
        .unwrap()
        .schema()
        .clone();
    assert_eq!(
        schema.fields(),
        kinetick::model::lake::tick_schema().fields()
    );
    let rows = file_rows(body);
    for pair in rows.windows(2) {
        assert!(
            lake_order(&pair[0], &pair[1]).is_le(),
            "{} out of order at {:?}",
            file.display(),
            pair[1].0
        );
    }
}

#[test]
fn compaction_keeps_every_tick_once_and_leaves_what_is_not_committed() {
    let work = tempfile::tempdir().unwrap();
    let lake = work.path().join("demo");
    // Small checkpoints: many small files, as a day on AWS has. A reader that lags takes up to
    // 10,000 records a read and cuts files at reads, so each shard needs several times that to
    // have five files however the machine runs. A target of 1 byte: files close at every
    // barrier, as the lake wrote them before they grew.
    let settings = [
        ("KINETICK_CHECKPOINT__MAX_RECORDS", "2000"),
        ("KINETICK_LAKE__TARGET_FILE_SIZE", "1"),
    ];
    let (partition, date) = demo_lake(&lake, ["200000", "30", "4", "3"], &settings);
    let partition = &partition;
    let shard_files = |shard: &str| {
        let mut files: Vec<PathBuf> = files_under(partition, "parquet")
            .into_iter()
            .filter(|f| name(f).starts_with(&format!("{shard}-")))
            .collect();
        files.sort_by_key(|f| first_position(f));
        files
    };

    // Two of shard 2's files as the lake wrote them before it kept alert kinds.
    for file in &shard_files("shardId-000000000002")[..2] {
        without_alert_columns(file);
    }
    // A shard's checkpoint goes back to the end of its second file: its later files are past it.
    // One of those under a name that says no shard, one under a name whose first position is
    // committed: only their rows tell. (Of shards 1 and 3, the one with more files.)
    let shard1 = ["shardId-000000000001", "shardId-000000000003"]
        .into_iter()
        .max_by_key(|shard| shard_files(shard).len())
        .unwrap();
    let files1 = shard_files(shard1);
    assert!(files1.len() >= 5, "{files1:?}");
    set_checkpoint(&lake, shard1, Some(&last_position(&files1[1])));
    let by_hand = partition.join("late-by-hand.parquet");
    let misnamed = partition.join(format!("{shard1}-1.parquet"));
    std::fs::rename(&files1[2], &by_hand).unwrap();
    std::fs::rename(&files1[3], &misnamed).unwrap();
    let mut past: Vec<PathBuf> = vec![by_hand, misnamed];
    past.extend(files1[4..].iter().cloned());

    let before = lake_rows(&lake);
    let listed = snapshot(&lake);
    let lake_bytes: usize = listed.values().map(Vec::len).sum();
    let kept = |snapshot: &BTreeMap<PathBuf, Vec<u8>>| {
        let digest = digest(snapshot);
        past.iter()
            .map(|p| digest.get(p.strip_prefix(&lake).unwrap()).copied())
            .collect::<Vec<_>>()
    };
    let target = (lake_bytes / 3) as u64;

    // A dry run plans and changes nothing.
    let planned = compact(&lake, &date, target, true);
    assert!(planned.contains("would merge"), "{planned}");
    assert_eq!(digest(&snapshot(&lake)), digest(&listed));

    let said = compact(&lake, &date, target, false);
    assert!(
        said.contains(&format!("{} past their shard's checkpoint", past.len())),
        "{said}"
    );
    let compacted = snapshot(&lake);
    assert_eq!(
        lake_rows(&lake),
        before,
        "every tick once, every value equal"
    );
    let outputs: Vec<&PathBuf> = compacted
        .keys()
        .filter(|p| name(p).starts_with("compacted-") && name(p).ends_with(".parquet"))
        .collect();
    let tick_files =
        |s: &BTreeMap<PathBuf, Vec<u8>>| s.keys().filter(|p| p.starts_with("ticks")).count();
    assert!(outputs.len() >= 2, "{said}");
    // Left besides the outputs: the files past the checkpoint only (a file alone in its group
    // is rewritten too).
    assert_eq!(tick_files(&compacted), outputs.len() + past.len(), "{said}");
    assert!(tick_files(&compacted) < tick_files(&listed) / 2, "{said}");
    for output in &outputs {
        assert_sorted_in_the_lakes_schema(&lake.join(output));
    }
    assert_eq!(
        kept(&compacted),
        kept(&listed),
        "files past the checkpoint untouched"
    );

    // Again: nothing to do.
    compact(&lake, &date, target, false);
    assert_eq!(digest(&snapshot(&lake)), digest(&compacted));

    // A run that stopped between writing a compacted file and deleting its inputs: an input is
    // still there. One that stopped after writing a manifest, before its compacted file.
    let (input, input_bytes) = listed
        .iter()
        .find(|(p, _)| name(p).starts_with("shardId-000000000000-"))
        .unwrap();
    std::fs::write(lake.join(input), input_bytes).unwrap();
    let unwritten = format!("compacted-{date}-0123456789abcdef");
    std::fs::write(
        lake.join(format!("compaction/dt={date}/{unwritten}.json")),
        serde_json::json!({
            "output": format!("ticks/dt={date}/{unwritten}.parquet"),
            "date": date,
            "inputs": [{"key": format!("ticks/dt={date}/{}", name(&past[0])), "bytes": 1, "rows": 1}],
        })
        .to_string(),
    )
    .unwrap();
    let finished = compact(&lake, &date, target, false);
    assert!(finished.contains("deleted 1 copy of rows"), "{finished}");
    assert_eq!(digest(&snapshot(&lake)), digest(&compacted));

    // Shard 1 is read to its end, and the target grows past the day: its files and the earlier
    // compacted files merge into one.
    set_checkpoint(&lake, shard1, None);
    let rest = compact(&lake, &date, 3 * lake_bytes as u64, false);
    assert_eq!(lake_rows(&lake), before, "{rest}");
    let done = snapshot(&lake);
    let files: Vec<&PathBuf> = done.keys().filter(|p| p.starts_with("ticks")).collect();
    assert_eq!(files.len(), 1, "{rest}");
    assert!(name(files[0]).starts_with("compacted-"));
    assert_sorted_in_the_lakes_schema(&lake.join(files[0]));
    // The merged compacted files' manifests are gone; the new one knows every shard file.
    let manifests: Vec<&PathBuf> = done
        .keys()
        .filter(|p| p.starts_with("compaction"))
        .collect();
    assert_eq!(manifests.len(), 1);
    let manifest: serde_json::Value = serde_json::from_slice(&done[manifests[0]]).unwrap();
    let held = manifest["inputs"].as_array().unwrap().len()
        + manifest["earlier"].as_array().unwrap().len();
    let compacted_inputs = manifest["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["key"].as_str().unwrap().contains("/compacted-"))
        .count();
    assert_eq!(held - compacted_inputs, tick_files(&listed), "{manifest:#}");
}

/// The `symbol` statistics of each row group of a lake file: (min, max).
fn symbol_ranges(file: &Path) -> Vec<(String, String)> {
    let body = Bytes::from(std::fs::read(file).unwrap());
    let reader = ParquetRecordBatchReaderBuilder::try_new(body).unwrap();
    let text = |bytes: Option<&[u8]>| String::from_utf8(bytes.unwrap().to_vec()).unwrap();
    reader
        .metadata()
        .row_groups()
        .iter()
        .map(|group| {
            let statistics = group.column(lake::column("symbol")).statistics().unwrap();
            (
                text(statistics.min_bytes_opt()),
                text(statistics.max_bytes_opt()),
            )
        })
        .collect()
}

#[test]
fn the_pipelines_growing_files_are_sorted_into_symbol_ranges() {
    let work = tempfile::tempdir().unwrap();
    let lake = work.path().join("demo");
    // Default file sizing: a file per shard grows over several barriers.
    let settings = [("KINETICK_CHECKPOINT__MAX_RECORDS", "10000")];
    let (partition, date) = demo_lake(&lake, ["120000", "40", "2", "7"], &settings);
    let written = files_under(&partition, "parquet");
    assert_eq!(written.len(), 2, "a file per shard: {written:?}");
    for file in &written {
        let ranges = symbol_ranges(file);
        assert!(ranges.len() >= 3, "a row group per barrier: {ranges:?}");
        assert!(
            ranges.windows(2).all(|pair| pair[1].0 <= pair[0].1),
            "every row group spans the shard's symbols: {ranges:?}"
        );
    }
    let before = lake_rows(&lake);

    // Each file is over half the target, alone in a group of its own, and still rewritten.
    let each = written
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .max()
        .unwrap();
    let said = compact(&lake, &date, each + 1, false);
    assert!(said.contains("2 files -> 2, "), "{said}");
    assert_eq!(
        lake_rows(&lake),
        before,
        "every tick once, every value equal"
    );
    let outputs = files_under(&partition, "parquet");
    assert_eq!(outputs.len(), 2);
    for output in &outputs {
        assert!(name(output).starts_with("compacted-"), "{output:?}");
        assert_sorted_in_the_lakes_schema(output);
        let ranges = symbol_ranges(output);
        assert!(
            ranges.windows(2).all(|pair| pair[0].1 < pair[1].0),
            "row groups of disjoint symbol ranges, in order: {ranges:?}"
        );
    }
    // Done: a rerun leaves the compacted files as they are.
    let compacted = snapshot(&lake);
    let again = compact(&lake, &date, each + 1, false);
    assert!(again.contains("nothing to merge"), "{again}");
    assert_eq!(digest(&snapshot(&lake)), digest(&compacted));
}

#[test]
fn a_date_another_run_holds_is_left_untouched_until_its_lease_runs_out() {
    let work = tempfile::tempdir().unwrap();
    let lake = work.path().join("demo");
    let settings = [
        ("KINETICK_CHECKPOINT__MAX_RECORDS", "1000"),
        ("KINETICK_LAKE__TARGET_FILE_SIZE", "1"),
    ];
    let (_, date) = demo_lake(&lake, ["20000", "10", "2", "5"], &settings);
    let lock = lake.join(format!("compaction/dt={date}/lock"));
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    let lock_of = |expires_at: &str| {
        serde_json::json!({
            "run": "elsewhere/4242/0badcafe",
            "taken_at": "2026-01-06T03:00:00Z",
            "expires_at": expires_at,
        })
        .to_string()
    };
    let target = 1 << 30;

    // Held until far ahead: the run refuses in one line and changes nothing.
    let held = lock_of("2999-01-01T00:00:00Z");
    std::fs::write(&lock, &held).unwrap();
    let before = snapshot(&lake);
    let refused = compact_command(&lake, &date, target, false)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("elsewhere/4242/0badcafe") && stderr.contains("2999-01-01T00:00:00Z"),
        "{stderr}"
    );
    assert_eq!(digest(&snapshot(&lake)), digest(&before));
    assert_eq!(std::fs::read_to_string(&lock).unwrap(), held);
    // A dry run reports the lock and plans as ever.
    let planned = compact_command(&lake, &date, target, true)
        .output()
        .unwrap();
    assert!(planned.status.success());
    assert!(
        String::from_utf8_lossy(&planned.stderr).contains("elsewhere/4242/0badcafe"),
        "{planned:?}"
    );
    assert_eq!(std::fs::read_to_string(&lock).unwrap(), held);

    // Its lease ran out (the run died): taken over, with a warning naming it, and released.
    std::fs::write(&lock, lock_of("2026-01-06T03:15:00Z")).unwrap();
    let output = compact_command(&lake, &date, target, false)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("elsewhere/4242/0badcafe"), "{stderr}");
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(said.contains(" -> 1, "), "{said}");
    assert!(!lock.exists(), "released");
    let tick_files =
        |s: &BTreeMap<PathBuf, Vec<u8>>| s.keys().filter(|p| p.starts_with("ticks")).count();
    assert!(tick_files(&snapshot(&lake)) < tick_files(&before), "{said}");
}
