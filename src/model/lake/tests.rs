use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampMillisecondType};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{
    Compression, Encoding, LogicalType, TimeUnit as ParquetTimeUnit, Type as PhysicalType,
};
use proptest::prelude::*;

use super::*;
use crate::model::rules::{AlertKind, AlertKinds, Trend};
use crate::model::tick::{SequenceNumber, Tick};
use crate::model::window::Indicators;

/// 2026-01-02T14:30:00.123Z
const T0: i64 = 1_767_364_200_123;
/// 2026-01-02T23:59:59.999Z, the last millisecond of the day.
const LAST_MS: i64 = 1_767_398_399_999;

fn position(seq: &str, sub: u32) -> Position {
    Position::new(SequenceNumber::new(seq), sub)
}

fn row(symbol: &str, event_time_ms: i64, seq: &str, sub: u32) -> EnrichedTick {
    EnrichedTick {
        tick: Tick {
            symbol: symbol.into(),
            price: 100.0 + (event_time_ms % 1000) as f64 / 100.0,
            event_time_ms,
            open: Some(99.5),
            high: None,
            low: None,
            previous_close: Some(98.0),
            change: Some(-1234.0),
            change_percent: None,
            volume: Some(10.0),
        },
        shard_id: "shardId-000000000001".into(),
        position: position(seq, sub),
        arrival_time_ms: event_time_ms + 40,
        indicators: Indicators {
            sma_short: Some(100.25),
            change: Some(2.0),
            change_percent: Some(2.0 / 98.0 * 100.0),
            ..Indicators::default()
        },
        anomaly: symbol == "TSLA",
        trend: (symbol != "MSFT").then_some(Trend::Up),
        alerts: [AlertKind::TrendUp].into_iter().collect(),
        alerts_held: AlertKinds::default(),
    }
}

fn read(file: &LakeFile) -> ParquetRecordBatchReaderBuilder<Bytes> {
    ParquetRecordBatchReaderBuilder::try_new(Bytes::from(file.bytes.clone())).unwrap()
}

/// `(symbol, event_time, sequence_number, sub_sequence_number)` of every row of a file.
fn row_keys(file: &LakeFile) -> Vec<(String, i64, String, i64)> {
    let mut keys = Vec::new();
    for batch in read(file).build().unwrap() {
        let batch = batch.unwrap();
        let column = |name: &str| batch.column_by_name(name).unwrap().clone();
        let (symbol, time) = (column("symbol"), column("event_time"));
        let (seq, sub) = (column("sequence_number"), column("sub_sequence_number"));
        for i in 0..batch.num_rows() {
            keys.push((
                symbol.as_string::<i32>().value(i).to_owned(),
                time.as_primitive::<TimestampMillisecondType>().value(i),
                seq.as_string::<i32>().value(i).to_owned(),
                sub.as_primitive::<Int64Type>().value(i),
            ));
        }
    }
    keys
}

#[test]
fn round_trip_keeps_rows_sorted_by_symbol_then_time_then_position() {
    let rows = vec![
        row("MSFT", T0 + 5, "100", 0),
        row("AAPL", T0 + 9, "101", 0),
        row("TSLA", T0, "102", 0),
        row("AAPL", T0 + 1, "103", 0),
        // Same symbol and millisecond: position decides, numerically ("99" < "104").
        row("AAPL", T0 + 9, "104", 1),
        row("AAPL", T0 + 9, "104", 0),
    ];
    let files = encode_files("", "shardId-000000000001", &rows).unwrap();
    assert_eq!(files.len(), 1);
    let file = &files[0];
    assert_eq!(file.rows, 6);
    assert_eq!(file.date, "2026-01-02");

    let keys: Vec<_> = row_keys(file)
        .into_iter()
        .map(|(symbol, time, seq, sub)| (symbol, time - T0, seq, sub))
        .collect();
    let expected = [
        ("AAPL", 1, "103", 0),
        ("AAPL", 9, "101", 0),
        ("AAPL", 9, "104", 0),
        ("AAPL", 9, "104", 1),
        ("MSFT", 5, "100", 0),
        ("TSLA", 0, "102", 0),
    ]
    .map(|(symbol, time, seq, sub)| (symbol.to_owned(), time, seq.to_owned(), sub));
    assert_eq!(keys, expected);
}

#[test]
fn round_trip_keeps_values_nulls_and_schema() {
    let rows = [row("MSFT", T0, "7", 0), row("TSLA", T0 + 1, "8", 3)];
    let files = encode_files("lake/", "shardId-000000000001", &rows).unwrap();
    let reader = read(&files[0]);
    assert_eq!(reader.schema(), &tick_schema());
    let batch = reader.build().unwrap().next().unwrap().unwrap();
    let f64s = |name: &str| {
        let column = batch
            .column_by_name(name)
            .unwrap()
            .as_primitive::<Float64Type>();
        (0..2)
            .map(|i| column.is_valid(i).then(|| column.value(i)))
            .collect::<Vec<_>>()
    };
    assert_eq!(f64s("price"), [Some(101.23), Some(101.24)]);
    assert_eq!(f64s("open"), [Some(99.5); 2]);
    assert_eq!(f64s("high"), [None; 2]);
    assert_eq!(f64s("sma_short"), [Some(100.25); 2]);
    assert_eq!(f64s("ema"), [None; 2]);
    // The indicators' change, not the producer's -1234.
    assert_eq!(f64s("change"), [Some(2.0); 2]);
    assert_eq!(f64s("change_percent")[0], Some(2.0 / 98.0 * 100.0));

    let anomaly = batch.column_by_name("anomaly").unwrap().as_boolean();
    assert_eq!((anomaly.value(0), anomaly.value(1)), (false, true));
    let trend = batch.column_by_name("trend").unwrap().as_string::<i32>();
    assert!(trend.is_null(0));
    assert_eq!(trend.value(1), "up");
    let shard = batch.column_by_name("shard_id").unwrap().as_string::<i32>();
    assert_eq!(shard.value(1), "shardId-000000000001");
    let arrival = batch.column_by_name("arrival_time").unwrap();
    assert_eq!(
        arrival.as_primitive::<TimestampMillisecondType>().value(1),
        T0 + 41
    );
}

#[test]
fn file_metadata_is_what_athena_expects() {
    let rows: Vec<_> = (0..50)
        .map(|i| {
            row(
                ["AAPL", "MSFT", "TSLA"][i % 3],
                T0 + i as i64,
                &(1000 + i).to_string(),
                0,
            )
        })
        .collect();
    let files = encode_files("", "shardId-000000000001", &rows).unwrap();
    let reader = read(&files[0]);
    let metadata = reader.metadata();
    let schema = metadata.file_metadata().schema_descr();
    for name in ["event_time", "arrival_time"] {
        let column = schema.columns().iter().find(|c| c.name() == name).unwrap();
        assert_eq!(column.physical_type(), PhysicalType::INT64, "{name}");
        assert_eq!(
            column.logical_type_ref(),
            Some(&LogicalType::timestamp(true, ParquetTimeUnit::MILLIS)),
            "{name}"
        );
    }
    assert!(schema.columns().iter().all(|c| c.name() != "dt"));

    assert_eq!(metadata.num_row_groups(), 1);
    let group = metadata.row_group(0);
    let sorting: Vec<_> = group
        .sorting_columns()
        .unwrap()
        .iter()
        .map(|s| s.column_idx)
        .collect();
    assert_eq!(sorting, [0, 1]);
    assert!(
        group
            .columns()
            .iter()
            .all(|c| matches!(c.compression(), Compression::ZSTD(_)))
    );
    let chunk = |name: &str| {
        group
            .columns()
            .iter()
            .find(|c| c.column_path().string() == name)
            .unwrap()
    };
    let uses_dictionary = |name: &str| {
        chunk(name)
            .encodings()
            .any(|e| e == Encoding::RLE_DICTIONARY)
    };
    assert!(uses_dictionary("symbol") && uses_dictionary("shard_id") && uses_dictionary("trend"));
    assert!(!uses_dictionary("sequence_number") && !uses_dictionary("price"));
    let uses = |name: &str, encoding: Encoding| chunk(name).encodings().any(|e| e == encoding);
    assert!(uses("ema", Encoding::BYTE_STREAM_SPLIT) && uses("price", Encoding::PLAIN));
    assert!(uses("event_time", Encoding::DELTA_BINARY_PACKED));
    assert!(uses("sequence_number", Encoding::DELTA_BYTE_ARRAY));
    let stats = chunk("event_time").statistics().unwrap();
    assert_eq!(stats.min_bytes_opt(), Some(&T0.to_le_bytes()[..]));
    assert_eq!(stats.max_bytes_opt(), Some(&(T0 + 49).to_le_bytes()[..]));
}

#[test]
fn rows_split_at_utc_midnight_and_the_first_row_in_stream_order_names_each_file() {
    let rows = [
        row("MSFT", LAST_MS, "20", 0),
        // The next day starts here in stream order, though a later row sorts before it.
        row("MSFT", LAST_MS + 1, "21", 0),
        row("AAPL", LAST_MS - 5, "22", 4),
        row("AAPL", LAST_MS + 2, "23", 0),
    ];
    let files = encode_files("lake/", "shardId-000000000001", &rows).unwrap();
    let summary: Vec<_> = files
        .iter()
        .map(|f| (f.key.as_str(), f.date.as_str(), f.rows))
        .collect();
    assert_eq!(
        summary,
        [
            (
                "lake/ticks/dt=2026-01-02/shardId-000000000001-20.parquet",
                "2026-01-02",
                2
            ),
            (
                "lake/ticks/dt=2026-01-03/shardId-000000000001-21.parquet",
                "2026-01-03",
                2
            ),
        ]
    );
    let symbols = |f: &LakeFile| row_keys(f).into_iter().map(|k| k.0).collect::<Vec<_>>();
    assert_eq!(symbols(&files[0]), ["AAPL", "MSFT"]);
    assert_eq!(symbols(&files[1]), ["AAPL", "MSFT"]);
}

/// Readers hand over a symbol's ticks at a time: the file is still named by the earliest
/// row (numerically: "99" < "100"), whatever order the rows come in.
#[test]
fn the_earliest_row_names_the_file_whatever_the_order_of_rows() {
    let rows = [
        row("MSFT", T0 + 5, "103", 0),
        row("MSFT", T0 + 6, "105", 0),
        row("AAPL", T0 + 9, "99", 2),
        row("AAPL", T0 + 1, "104", 0),
        row("TSLA", T0, "99", 3),
    ];
    let files = encode_files("", "shardId-000000000001", &rows).unwrap();
    assert_eq!(
        files[0].key,
        "ticks/dt=2026-01-02/shardId-000000000001-99.2.parquet"
    );
    let mut reversed = rows.clone();
    reversed.reverse();
    let files = encode_files("", "shardId-000000000001", &reversed).unwrap();
    assert_eq!(
        files[0].key,
        "ticks/dt=2026-01-02/shardId-000000000001-99.2.parquet"
    );
}

#[test]
fn no_rows_make_no_files() {
    assert!(
        encode_files::<EnrichedTick>("", "shardId-0", &[])
            .unwrap()
            .is_empty()
    );
}

#[test]
fn object_keys() {
    let seq = "49590338271490256608559692538361571095921575989136588898";
    let cases = [
        (
            "",
            position(seq, 0),
            format!("ticks/dt=2026-01-02/shardId-000000000001-{seq}.parquet"),
        ),
        (
            "lake/",
            position("7", 3),
            "lake/ticks/dt=2026-01-02/shardId-000000000001-7.3.parquet".to_owned(),
        ),
        (
            "a/b/",
            position("7", 0),
            "a/b/ticks/dt=2026-01-02/shardId-000000000001-7.parquet".to_owned(),
        ),
    ];
    for (prefix, first, expected) in cases {
        assert_eq!(
            tick_object_key(prefix, "2026-01-02", "shardId-000000000001", &first),
            expected
        );
    }
}

#[test]
fn partition_dates_at_the_edges() {
    let cases = [
        (0, "1970-01-01"),
        (-1, "1969-12-31"),
        (-MS_PER_DAY, "1969-12-31"),
        (-MS_PER_DAY - 1, "1969-12-30"),
        (LAST_MS, "2026-01-02"),
        (LAST_MS + 1, "2026-01-03"),
        (1_709_164_800_000, "2024-02-29"),
        (951_782_400_000, "2000-02-29"),
        (253_402_300_799_999, "9999-12-31"),
        (253_402_300_800_000, "+10000-01-01"),
        (-62_135_596_800_001, "0000-12-31"),
        (-62_167_219_200_001, "-0001-12-31"),
    ];
    for (ms, date) in cases {
        assert_eq!(partition_date(ms), date, "{ms}");
    }
    // Total: no panic or overflow at the ends of i64.
    assert!(partition_date(i64::MIN).starts_with('-'));
    assert!(partition_date(i64::MAX).starts_with('+'));
}

proptest! {
    #[test]
    fn partition_date_agrees_with_chrono(ms in -8_210_298_412_800_000i64..8_210_298_412_800_000) {
        let expected = chrono::DateTime::from_timestamp_millis(ms).unwrap().format("%Y-%m-%d").to_string();
        prop_assert_eq!(partition_date(ms), expected);
    }
}

/// A file grown a segment at a time gives its bytes as each row group is written, and reads
/// back as the same rows as the file encoded whole.
#[test]
fn a_growing_file_gives_its_bytes_as_it_grows_and_reads_back_whole() {
    let rows: Vec<EnrichedTick> = (0..3_000)
        .map(|i| {
            row(
                ["AAPL", "MSFT", "SPY"][i % 3],
                1_000 * i as i64,
                &format!("{:05}", i),
                0,
            )
        })
        .collect();
    let refs: Vec<&EnrichedTick> = rows.iter().collect();
    let mut file = GrowingLakeFile::new().unwrap();
    let mut bytes = Vec::new();
    let mut size = file.size();
    for chunk in refs.chunks(1_000) {
        let segments = day_segments("", "shard-1", chunk);
        assert_eq!(segments.len(), 1);
        file.append(&segments[0].rows).unwrap();
        assert!(
            file.size() > size,
            "a row group's bytes count once it is written"
        );
        size = file.size();
        bytes.extend_from_slice(&file.take_bytes());
    }
    bytes.extend_from_slice(&file.finish().unwrap());
    let whole = &encode_files("", "shard-1", &refs).unwrap()[0];
    let grown = LakeFile {
        bytes,
        ..whole.clone()
    };
    let metadata = read(&grown).metadata().clone();
    assert_eq!(metadata.num_row_groups(), 3, "a row group per segment");
    let mut grown_keys = row_keys(&grown);
    grown_keys.sort();
    let mut whole_keys = row_keys(whole);
    whole_keys.sort();
    assert_eq!(grown_keys, whole_keys);
}
