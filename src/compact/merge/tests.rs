use std::sync::Arc;

use arrow_array::types::Float64Type;
use arrow_array::{Float64Array, StringArray};
use arrow_schema::Field;
use parquet::basic::Compression;

use super::*;
use crate::model::enriched::EnrichedTick;
use crate::model::lake::encode_files;
use crate::model::rules::{AlertKind, AlertKinds, Trend};
use crate::model::tick::Tick;
use crate::model::window::Indicators;

/// 2026-01-05T14:30:00Z
const T0: i64 = 1_767_623_400_000;

fn tick(symbol: &str, at: i64, shard: &str, sequence: &str) -> EnrichedTick {
    EnrichedTick {
        tick: Tick {
            symbol: symbol.into(),
            price: 100.0 + at as f64,
            event_time_ms: T0 + at,
            open: Some(99.5),
            high: None,
            low: None,
            previous_close: Some(98.0),
            change: None,
            change_percent: None,
            volume: Some(10.0),
        },
        shard_id: shard.into(),
        position: sequence.parse().unwrap(),
        arrival_time_ms: T0 + at + 40,
        indicators: Indicators {
            sma_short: Some(100.25),
            ..Indicators::default()
        },
        anomaly: at % 3 == 0,
        trend: (at % 2 == 0).then_some(Trend::Up),
        alerts: if at == 4 {
            [AlertKind::VolumeSpike].into_iter().collect()
        } else {
            AlertKinds::default()
        },
        alerts_held: AlertKinds::default(),
    }
}

/// One lake file of `ticks` of `shard`, as the pipeline writes it.
fn lake_file(shard: &str, ticks: &[EnrichedTick]) -> Bytes {
    let files = encode_files("", shard, ticks).unwrap();
    assert_eq!(files.len(), 1);
    Bytes::from(files[0].bytes.clone())
}

fn batches(body: &Bytes) -> Vec<RecordBatch> {
    ParquetRecordBatchReaderBuilder::try_new(body.clone())
        .unwrap()
        .build()
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The same rows with the columns `keep` says, and `extra` added, written plainly.
fn rewritten(body: &Bytes, keep: impl Fn(&str) -> bool, extra: Option<(Field, ArrayRef)>) -> Bytes {
    let batch = &batches(body)[0];
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if keep(field.name()) {
            fields.push(field.as_ref().clone());
            columns.push(column.clone());
        }
    }
    if let Some((field, column)) = extra {
        fields.push(field);
        columns.push(column);
    }
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
    let mut writer = ArrowWriter::try_new(Vec::new(), batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    Bytes::from(writer.into_inner().unwrap())
}

fn input(key: &str, body: Bytes) -> Input {
    let inspected = inspect(key, &body).unwrap();
    Input {
        key: key.into(),
        body,
        inspected,
    }
}

/// Every row as `(symbol, event time, shard, sequence, sub-sequence, price, alerts)`.
type RowKey = (String, i64, String, String, i64, f64, Option<String>);

fn rows(batches: &[RecordBatch]) -> Vec<RowKey> {
    let mut rows = Vec::new();
    for batch in batches {
        let strings = |name: &str| {
            batch
                .column_by_name(name)
                .unwrap()
                .as_string::<i32>()
                .clone()
        };
        let (symbol, shard, sequence) = (
            strings("symbol"),
            strings("shard_id"),
            strings("sequence_number"),
        );
        let alerts = batch
            .column_by_name("alerts")
            .map(|c| c.as_string::<i32>().clone());
        let time = batch
            .column_by_name("event_time")
            .unwrap()
            .as_primitive::<TimestampMillisecondType>()
            .clone();
        let sub = batch
            .column_by_name("sub_sequence_number")
            .unwrap()
            .as_primitive::<Int64Type>()
            .clone();
        let price = batch
            .column_by_name("price")
            .unwrap()
            .as_primitive::<Float64Type>()
            .clone();
        for i in 0..batch.num_rows() {
            rows.push((
                symbol.value(i).to_owned(),
                time.value(i),
                shard.value(i).to_owned(),
                sequence.value(i).to_owned(),
                sub.value(i),
                price.value(i),
                alerts
                    .as_ref()
                    .filter(|a| !a.is_null(i))
                    .map(|a| a.value(i).to_owned()),
            ));
        }
    }
    rows
}

#[test]
fn merged_rows_are_the_inputs_in_the_lakes_order_and_format() {
    // Shard a: two checkpoints' files; sequence numbers of different lengths compare as numbers.
    let a1 = lake_file(
        "shard-a",
        &[
            tick("MSFT", 1, "shard-a", "8"),
            tick("AAPL", 2, "shard-a", "9"),
            tick("AAPL", 2, "shard-a", "10"),
            tick("ZM", 4, "shard-a", "11"),
        ],
    );
    let a2 = lake_file(
        "shard-a",
        &[
            tick("AAPL", 3, "shard-a", "12.1"),
            tick("AAPL", 3, "shard-a", "12"),
            tick("MSFT", 5, "shard-a", "13"),
        ],
    );
    // Shard b took AAPL over after a reshard; IBM is its own.
    let b = lake_file(
        "shard-b",
        &[
            tick("AAPL", 6, "shard-b", "100"),
            tick("IBM", 0, "shard-b", "101"),
            tick("IBM", 7, "shard-b", "102"),
        ],
    );
    // Written before the lake kept alert kinds: no `alerts`, `alerts_held`.
    let old = lake_file(
        "shard-c",
        &[
            tick("KO", 4, "shard-c", "5"),
            tick("AAPL", 4, "shard-c", "6"),
        ],
    );
    let old = rewritten(&old, |name| !name.starts_with("alerts"), None);
    let inputs = vec![
        input("a1", a1),
        input("a2", a2),
        input("b", b),
        input("old", old),
    ];
    let mut expected: Vec<RowKey> = inputs
        .iter()
        .flat_map(|i| rows(&batches(&i.body)))
        .collect();

    let mut reported = Vec::new();
    let (written, out) =
        merge_in_ranges(&inputs, Vec::new(), 4, |rows| reported.push(rows)).unwrap();
    let out = Bytes::from(out);
    let merged = rows(&batches(&out));
    assert_eq!(written, 12);
    assert_eq!(reported.last(), Some(&12));

    // The lake's order: symbol, event time, position as numbers, then shard.
    let keys: Vec<(&str, i64, &str, &str)> = merged
        .iter()
        .map(|r| (r.0.as_str(), r.1 - T0, r.2.as_str(), r.3.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            ("AAPL", 2, "shard-a", "9"),
            ("AAPL", 2, "shard-a", "10"),
            ("AAPL", 3, "shard-a", "12"),
            ("AAPL", 3, "shard-a", "12"),
            ("AAPL", 4, "shard-c", "6"),
            ("AAPL", 6, "shard-b", "100"),
            ("IBM", 0, "shard-b", "101"),
            ("IBM", 7, "shard-b", "102"),
            ("KO", 4, "shard-c", "5"),
            ("MSFT", 1, "shard-a", "8"),
            ("MSFT", 5, "shard-a", "13"),
            ("ZM", 4, "shard-a", "11"),
        ]
    );
    assert_eq!((merged[2].4, merged[3].4), (0, 1), "then sub-sequence");
    // Every row once, every value kept; the old file's alerts read as nulls.
    let mut sorted = merged.clone();
    let by_key = |a: &RowKey, b: &RowKey| (&a.2, &a.3, a.4).cmp(&(&b.2, &b.3, b.4));
    sorted.sort_by(by_key);
    expected.sort_by(by_key);
    assert_eq!(sorted.len(), expected.len());
    for (got, want) in sorted.iter().zip(&expected) {
        assert_eq!(got, want);
    }
    assert!(
        merged
            .iter()
            .any(|r| r.6.as_deref() == Some("volume_spike"))
    );
    let old_aapl = merged
        .iter()
        .find(|r| r.2 == "shard-c" && r.0 == "AAPL")
        .unwrap();
    assert_eq!(old_aapl.6, None);

    // The lake's schema and encoding; a row group per range of whole symbols.
    let reader = ParquetRecordBatchReaderBuilder::try_new(out.clone()).unwrap();
    assert_eq!(reader.schema().fields(), tick_schema().fields());
    let groups = reader.metadata().row_groups();
    let sizes: Vec<i64> = groups.iter().map(|g| g.num_rows()).collect();
    assert_eq!(sizes, [6, 3, 3], "AAPL; IBM and KO; MSFT and ZM");
    for group in groups {
        assert!(group.sorting_columns().is_some_and(|s| s.len() == 2));
        assert!(matches!(
            group.column(0).compression(),
            Compression::ZSTD(_)
        ));
    }
}

#[test]
fn a_growing_files_row_groups_of_every_symbol_merge_into_symbol_ranges() {
    // As the pipeline writes a file over two barriers: each row group sorted by symbol, every
    // symbol in each.
    let barriers = [
        vec![
            tick("AAPL", 1, "shard-a", "1"),
            tick("IBM", 2, "shard-a", "2"),
            tick("MSFT", 3, "shard-a", "3"),
        ],
        vec![
            tick("AAPL", 5, "shard-a", "4"),
            tick("IBM", 4, "shard-a", "5"),
            tick("MSFT", 6, "shard-a", "6"),
        ],
    ];
    let mut file = crate::model::lake::GrowingLakeFile::new().unwrap();
    for ticks in &barriers {
        file.append(&ticks.iter().collect::<Vec<_>>()).unwrap();
    }
    let body = Bytes::from(file.finish().unwrap());
    let growing = input("growing", body.clone());
    assert_eq!(
        growing.inspected.runs.len(),
        6,
        "a run per symbol per row group"
    );

    let (written, out) = merge_in_ranges(&[growing], Vec::new(), 2, |_| ()).unwrap();
    let out = Bytes::from(out);
    assert_eq!(written, 6);
    let keys: Vec<(String, i64)> = rows(&batches(&out))
        .into_iter()
        .map(|r| (r.0, r.1 - T0))
        .collect();
    let expected = [
        ("AAPL", 1),
        ("AAPL", 5),
        ("IBM", 2),
        ("IBM", 4),
        ("MSFT", 3),
        ("MSFT", 6),
    ];
    assert_eq!(keys, expected.map(|(s, t)| (s.to_owned(), t)));
    let reader = ParquetRecordBatchReaderBuilder::try_new(out).unwrap();
    let sizes: Vec<i64> = reader
        .metadata()
        .row_groups()
        .iter()
        .map(|g| g.num_rows())
        .collect();
    assert_eq!(
        sizes,
        [2, 2, 2],
        "a row group per symbol, where the file had one per barrier"
    );
}

#[test]
fn inspection_finds_each_shards_last_position_and_the_symbols_runs() {
    let body = lake_file(
        "shard-a",
        &[
            tick("AAPL", 1, "shard-a", "99"),
            tick("AAPL", 2, "shard-a", "100"),
            tick("MSFT", 0, "shard-a", "98.7"),
        ],
    );
    let inspected = inspect("k", &body).unwrap();
    assert_eq!(inspected.rows, 3);
    assert_eq!(
        inspected.last,
        BTreeMap::from([("shard-a".to_owned(), "100".parse().unwrap())])
    );
    let runs: Vec<(&str, usize, usize)> = inspected
        .runs
        .iter()
        .map(|r| (r.symbol.as_str(), r.start, r.rows))
        .collect();
    assert_eq!(runs, [("AAPL", 0, 2), ("MSFT", 2, 1)]);
}

#[test]
fn a_file_that_does_not_fit_the_lake_is_refused_naming_the_column() {
    let body = lake_file("shard-a", &[tick("AAPL", 1, "shard-a", "1")]);
    let extra = rewritten(
        &body,
        |_| true,
        Some((
            Field::new("bid", DataType::Float64, true),
            Arc::new(Float64Array::from(vec![1.0])) as ArrayRef,
        )),
    );
    let no_price = rewritten(&body, |name| name != "price", None);
    let text_price = rewritten(
        &rewritten(&body, |name| name != "price", None),
        |_| true,
        Some((
            Field::new("price", DataType::Utf8, false),
            Arc::new(StringArray::from(vec!["1"])) as ArrayRef,
        )),
    );
    for (body, column) in [(extra, "bid"), (no_price, "price"), (text_price, "price")] {
        match inspect("k", &body) {
            Err(MergeError::Schema { key, message }) => {
                assert_eq!(key, "k");
                assert!(message.contains(&format!("`{column}`")), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(matches!(
        inspect("k", &Bytes::from_static(b"not parquet")),
        Err(MergeError::Input { .. })
    ));
}

#[test]
fn ranges_hold_whole_symbols_up_to_the_rows_of_a_row_group() {
    let counts = [("A", 3), ("B", 2), ("C", 4), ("D", 10), ("E", 1)];
    let ranges: Vec<(String, String, usize)> = symbol_ranges(counts, 5)
        .into_iter()
        .map(|r| (r.first, r.last, r.rows))
        .collect();
    let expected = [("A", "B", 5), ("C", "C", 4), ("D", "D", 10), ("E", "E", 1)]
        .map(|(a, b, n)| (a.to_owned(), b.to_owned(), n));
    assert_eq!(ranges, expected);
    assert!(symbol_ranges([], 5).is_empty());

    let run = |symbol: &str, start, rows| Run {
        symbol: symbol.into(),
        start,
        rows,
    };
    let runs = [
        run("A", 0, 3),
        run("B", 3, 2),
        run("C", 5, 4),
        run("A", 9, 1),
    ];
    let range = |first: &str, last: &str| SymbolRange {
        first: first.into(),
        last: last.into(),
        rows: 0,
    };
    assert_eq!(
        rows_in(&runs, &range("B", "C")),
        vec![Range { start: 3, end: 9 }]
    );
    assert_eq!(
        rows_in(&runs, &range("A", "A")),
        [0..3, 9..10],
        "unsorted files too"
    );
    assert!(rows_in(&runs, &range("D", "Z")).is_empty());
}
