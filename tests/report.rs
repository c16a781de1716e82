//! `kinetick report` through the real binary, on the lake a real `kinetick demo` wrote: the page,
//! the summary and a chart per top mover are written; the numbers agree with the lake read here
//! with Arrow, the alert log and the dead letters; each chart draws every tick of its symbol;
//! `--symbols` and `--date` choose what is shown. (`scripts/check-deploy.sh` compares the four
//! seed answers with DuckDB's on such a lake: `deploy/ecs/check_report.py`.)

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{Array, RecordBatch};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;

const TICKS: &str = "20000";
const SYMBOLS: usize = 20;

fn kinetick(args: &[&str], paths: &[(&str, &Path)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kinetick"));
    command.args(args);
    for (flag, path) in paths {
        command.arg(flag).arg(path);
    }
    command.output().expect("kinetick runs")
}

fn succeeded(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "kinetick failed\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn files_under(dir: &Path, extension: &str) -> Vec<PathBuf> {
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
    files
}

/// `(symbol, price, previous_close, volume)` of every row of the lake.
fn lake(dir: &Path) -> Vec<(String, f64, Option<f64>, Option<f64>)> {
    let mut rows = Vec::new();
    for file in files_under(&dir.join("ticks"), "parquet") {
        let body = bytes::Bytes::from(std::fs::read(&file).unwrap());
        for batch in ParquetRecordBatchReaderBuilder::try_new(body)
            .unwrap()
            .build()
            .unwrap()
        {
            let batch: RecordBatch = batch.unwrap();
            let column = |name: &str| batch.column_by_name(name).unwrap().clone();
            let symbols = column("symbol");
            let doubles = |name| column(name).as_primitive::<Float64Type>().clone();
            let (price, close, volume) = (
                doubles("price"),
                doubles("previous_close"),
                doubles("volume"),
            );
            let at =
                |array: &arrow_array::Float64Array, i| (!array.is_null(i)).then(|| array.value(i));
            for i in 0..batch.num_rows() {
                rows.push((
                    symbols.as_string::<i32>().value(i).to_owned(),
                    price.value(i),
                    at(&close, i),
                    at(&volume, i),
                ));
            }
        }
    }
    rows
}

/// The number of points of each polyline of an SVG drawn in `color` (`#RRGGBB`).
fn polylines(svg: &str, color: &str) -> Vec<usize> {
    let stroke = format!("stroke=\"{color}\"");
    svg.split("<polyline")
        .skip(1)
        .map(|tag| &tag[..tag.find("/>").unwrap()])
        .filter(|tag| tag.contains(&stroke))
        .map(|tag| {
            let points = tag.split("points=\"").nth(1).unwrap();
            points[..points.find('"').unwrap()]
                .split_whitespace()
                .count()
        })
        .collect()
}

fn summary(out: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap()
}

#[test]
fn report_of_a_demo_lake() {
    let work = tempfile::tempdir().unwrap();
    let (lake_dir, out) = (work.path().join("demo"), work.path().join("report"));
    succeeded(&kinetick(
        &[
            "demo",
            "--no-progress",
            "--ticks",
            TICKS,
            "--symbols",
            &SYMBOLS.to_string(),
            // News on about one tick in 500, so that the lake holds moves over 5 %: a real
            // market has a few a day, not in 20 s.
            "--jumps-per-session",
            "2340",
        ],
        &[("--out", &lake_dir)],
    ));
    let stdout = succeeded(&kinetick(
        &["report", "--no-progress"],
        &[("--lake", &lake_dir), ("--out", &out)],
    ));
    assert!(stdout.contains("kinetick report:"), "{stdout}");

    let summary = summary(&out);
    let rows = lake(&lake_dir);
    assert_eq!(summary["rows"], rows.len());
    assert_eq!(summary["symbols"], SYMBOLS);
    assert_eq!(summary["dates"], serde_json::json!(["2026-01-05"]));

    // The seed answers against the lake as read here.
    let seed = &summary["seed_queries"];
    let moves = rows
        .iter()
        .filter(|(_, price, close, _)| close.is_some_and(|c| ((price - c) / c * 100.0).abs() > 5.0))
        .count();
    assert!(moves > 0);
    assert_eq!(seed["moves_over_5_percent"]["count"], moves);
    assert_eq!(
        seed["moves_over_5_percent"]["rows"]
            .as_array()
            .unwrap()
            .len(),
        moves
    );
    let best = rows
        .iter()
        .filter_map(|(_, price, close, _)| close.map(|c| price - c))
        .fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(seed["top_price_changes"]["rows"][0][3], best);
    let mut volumes: BTreeMap<&str, (f64, u64)> = BTreeMap::new();
    for (symbol, _, _, volume) in &rows {
        let entry = volumes.entry(symbol).or_default();
        if let Some(volume) = volume {
            *entry = (entry.0 + volume, entry.1 + 1);
        }
    }
    let averages = seed["avg_volume"]["rows"].as_array().unwrap();
    assert_eq!(averages.len(), SYMBOLS);
    for (row, (symbol, (sum, count))) in averages.iter().zip(&volumes) {
        assert_eq!(row[0], *symbol);
        let expected = sum / *count as f64;
        assert!(
            (row[1].as_f64().unwrap() - expected).abs() <= 1e-9 * expected,
            "{row}"
        );
    }
    assert_eq!(seed["first_rows"]["rows"].as_array().unwrap().len(), 10);

    // The alert log (each id once) and the dead letters, all of them of this demo.
    let alert_ids: BTreeSet<String> = std::fs::read_to_string(lake_dir.join("alerts.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap()["id"].to_string())
        .collect();
    assert!(!alert_ids.is_empty());
    assert_eq!(summary["alerts"]["total"], alert_ids.len());
    let dead_letters: usize = files_under(&lake_dir.join("dead-letters"), "jsonl")
        .iter()
        .map(|file| std::fs::read_to_string(file).unwrap().lines().count())
        .sum();
    assert!(dead_letters > 0, "the simulator injects malformed records");
    assert_eq!(summary["dead_letters"], dead_letters);

    // A chart per top mover, each drawing every tick of its symbol once in its price line.
    let charts = summary["charts"].as_array().unwrap();
    assert_eq!(charts.len(), 6);
    let page = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert_eq!(page.matches("<svg").count(), charts.len());
    for fetching in ["<script", "<link", "src=", "href=", "url("] {
        assert!(
            !page.contains(fetching),
            "the page loads nothing: {fetching}"
        );
    }
    for chart in charts {
        let symbol = chart["symbol"].as_str().unwrap();
        let ticks = rows.iter().filter(|r| r.0 == symbol).count();
        assert_eq!(chart["ticks"], ticks, "{symbol}");
        let svg = std::fs::read_to_string(out.join(chart["file"].as_str().unwrap())).unwrap();
        // One polyline per line, with the points the summary counts: every tick up to 1,200,
        // a thinned line beyond.
        let lines = chart["lines"].as_object().unwrap();
        let drawn = |line: &str| lines[line].as_u64().unwrap() as usize;
        let price = drawn("price");
        assert!(
            price == ticks || (ticks > 1_200 && price <= 1_202),
            "{symbol}: {price}"
        );
        for (line, color) in [
            ("price", "#1F4E79"),
            ("sma_short", "#E67E22"),
            ("sma_long", "#8E44AD"),
            ("vwap", "#16A085"),
        ] {
            assert_eq!(polylines(&svg, color), [drawn(line)], "{symbol}: {line}");
        }
        assert!(
            page.contains(&svg),
            "the page inlines the chart of {symbol}"
        );
    }
    let gainer = summary["gainers"][0]["change_percent"].as_f64().unwrap();
    let loser = summary["losers"][0]["change_percent"].as_f64().unwrap();
    assert!(gainer > 0.0 && loser < 0.0, "{gainer} {loser}");

    // Symbols asked for, one of them not in the lake; the earlier charts are replaced.
    succeeded(&kinetick(
        &[
            "report",
            "--no-progress",
            "--date",
            "2026-01-05",
            "--symbols",
            "AAPL,NOPE",
        ],
        &[("--lake", &lake_dir), ("--out", &out)],
    ));
    let summary = crate::summary(&out);
    let charts = summary["charts"].as_array().unwrap();
    assert_eq!(charts.len(), 1);
    assert_eq!(charts[0]["symbol"], "AAPL");
    assert!(summary["chart_choice"].as_str().unwrap().contains("NOPE"));
    assert_eq!(files_under(&out.join("charts"), "svg").len(), 1);

    // A date the lake does not hold.
    let failed = kinetick(
        &["report", "--date", "2020-01-01"],
        &[("--lake", &lake_dir), ("--out", &out)],
    );
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success());
    assert!(
        stderr.contains("no lake files for 2020-01-01") && stderr.contains("2026-01-05"),
        "{stderr}"
    );
}

/// Event times of `symbol`'s rows in the lake.
fn times_of(dir: &Path, symbol: &str) -> Vec<i64> {
    let mut times = Vec::new();
    for file in files_under(&dir.join("ticks"), "parquet") {
        let body = bytes::Bytes::from(std::fs::read(&file).unwrap());
        for batch in ParquetRecordBatchReaderBuilder::try_new(body)
            .unwrap()
            .build()
            .unwrap()
        {
            let batch: RecordBatch = batch.unwrap();
            let symbols = batch.column_by_name("symbol").unwrap().as_string::<i32>();
            let event_time = batch.column_by_name("event_time").unwrap();
            let event_time =
                event_time.as_primitive::<arrow_array::types::TimestampMillisecondType>();
            for i in 0..batch.num_rows() {
                if symbols.value(i) == symbol {
                    times.push(event_time.value(i));
                }
            }
        }
    }
    times.sort_unstable();
    times
}

/// Sum of a column of `lake_by_hour`.
fn by_hour_total(summary: &Value, column: &str) -> u64 {
    summary["lake_by_hour"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hour| hour[column].as_u64().unwrap())
        .sum()
}

/// A file read last with rows of a symbol from the middle of its range (late ticks, or a
/// symbol that moved to a shard whose files sort last): the report reads the lake twice, and
/// must still put the rows in event-time order, as a sort of all of them would.
#[test]
fn late_rows_are_put_in_event_time_order() {
    use kinetick::model::enriched::EnrichedTick;
    use kinetick::model::lake::encode_files;
    use kinetick::model::rules::{AlertKinds, Trend};
    use kinetick::model::tick::{Position, SequenceNumber, Tick};
    use kinetick::model::window::Indicators;

    let work = tempfile::tempdir().unwrap();
    let (lake_dir, out) = (work.path().join("demo"), work.path().join("report"));
    succeeded(&kinetick(
        &["demo", "--no-progress", "--ticks", "5000", "--symbols", "8"],
        &[("--out", &lake_dir)],
    ));
    let report = |symbol: &str| {
        succeeded(&kinetick(
            &["report", "--no-progress", "--symbols", symbol],
            &[("--lake", &lake_dir), ("--out", &out)],
        ));
        summary(&out)
    };
    let before = report("AAPL");
    // Seconds of ticks: too short for the trend's bars, so no trend changes yet.
    assert_eq!(by_hour_total(&before, "trend_up"), 0);
    assert_eq!(by_hour_total(&before, "trend_down"), 0);

    // Five pairs of late ticks, at times of AAPL's own rows: each pair turns the trend from up
    // to down, and rows without a trend come between two pairs. Counted in the order read, the
    // trend would also turn up four times, from one pair to the next.
    let times = times_of(&lake_dir, "AAPL");
    let pairs: Vec<i64> = (1..=5).map(|i| times[i * times.len() / 6]).collect();
    let late: Vec<EnrichedTick> = pairs
        .iter()
        .flat_map(|&time| [(time, Trend::Up), (time, Trend::Down)])
        .enumerate()
        .map(|(i, (event_time_ms, trend))| EnrichedTick {
            tick: Tick {
                symbol: "AAPL".into(),
                price: 100.0,
                event_time_ms,
                open: None,
                high: None,
                low: None,
                previous_close: Some(100.0),
                change: None,
                change_percent: None,
                volume: Some(1.0),
            },
            shard_id: "shardId-late".into(),
            position: Position::new(SequenceNumber::new(format!("{:03}", 100 + i)), 0),
            arrival_time_ms: event_time_ms,
            indicators: Indicators::default(),
            anomaly: false,
            trend: Some(trend),
            alerts: AlertKinds::default(),
            alerts_held: AlertKinds::default(),
        })
        .collect();
    let files = encode_files("", "shardId-late", &late).unwrap();
    assert_eq!(files.len(), 1);
    // Keys sort `shardId-late-…` after the demo's `shardId-0…`: read last.
    std::fs::write(lake_dir.join(&files[0].key), &files[0].bytes).unwrap();

    let after = report("AAPL");
    assert_eq!(after["rows"], before["rows"].as_u64().unwrap() + 10);
    assert_eq!(by_hour_total(&after, "trend_down"), 5);
    assert_eq!(by_hour_total(&after, "trend_up"), 0);
    let chart = &after["charts"][0];
    assert_eq!(chart["symbol"], "AAPL");
    assert_eq!(
        chart["ticks"],
        before["charts"][0]["ticks"].as_u64().unwrap() + 10
    );
    assert_eq!(
        (chart["trend_up"].as_u64(), chart["trend_down"].as_u64()),
        (Some(0), Some(5))
    );
}
