//! The Parquet lake format: Arrow schema of enriched ticks, Hive `dt=YYYY-MM-DD` partitioning by
//! event time, deterministic object keys, and encoding of one file to bytes.
//!
//! In: enriched ticks of one shard between two checkpoints. Out: `(key, parquet bytes)` per date.
//!
//! Timestamps are Arrow `Timestamp(Millisecond, "UTC")`, which the parquet writer stores as INT64
//! with the `TIMESTAMP(MILLIS, isAdjustedToUTC=true)` logical type: what Athena reads as
//! `timestamp`, without the deprecated INT96. The `dt` partition is only in the object key.

use std::borrow::Borrow;
use std::sync::{Arc, LazyLock};

use arrow_array::builder::{BooleanBuilder, Float64Builder, StringBuilder};
use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, TimestampMillisecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use super::calendar::{MS_PER_DAY, civil_from_days};
use super::enriched::EnrichedTick;
use super::rules::Trend;
use super::tick::Position;

/// Why a file could not be encoded (a bug or resource problem, never bad input).
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("parquet encoding failed: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("arrow batch could not be built: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
}

/// Rows per row group. A checkpoint's file is usually one row group; the cap bounds the writer's
/// buffered memory when a shard catches up on a large backlog.
const MAX_ROW_GROUP_ROWS: usize = 128 * 1024;

/// Columns the writer dictionary-encodes: few distinct values per file. Prices and sequence
/// numbers are nearly unique, so a dictionary would only be built to be thrown away.
const DICTIONARY_COLUMNS: [&str; 3] = ["symbol", "trend", "shard_id"];

/// Doubles that move smoothly within a symbol but use every bit of their mantissa (averages,
/// ratios): split into byte streams, their sign, exponent and leading bytes compress, which
/// plain encoding hides. Doubles with few distinct values per symbol (prices, changes) compress
/// better plain. Chosen per column by measurement (`cargo bench --bench lake_size`).
const BYTE_STREAM_SPLIT_COLUMNS: [&str; 6] = [
    "ema",
    "vwap",
    "volatility",
    "return_zscore",
    "volume_ratio",
    "volume",
];

/// Integers that rise slowly in file order (times within a symbol): stored as deltas.
const DELTA_COLUMNS: [&str; 3] = ["event_time", "arrival_time", "sub_sequence_number"];

/// Zstandard's fastest level: on files that are mostly doubles, higher levels save little and
/// cost much more time in the heaviest step of any sink.
const ZSTD_LEVEL: i32 = 1;

/// Leaf indices of `symbol` and `event_time`, the order rows are written in.
const SORT_COLUMNS: [i32; 2] = [0, 1];

/// Nullable `Float64` columns after the required ones, in schema order; [`measures`] gives
/// their values.
const MEASURE_COLUMNS: [&str; 17] = [
    "open",
    "high",
    "low",
    "previous_close",
    "change",
    "change_percent",
    "volume",
    "sma_short",
    "sma_long",
    "ema",
    "vwap",
    "window_high",
    "window_low",
    "volatility",
    "log_return",
    "return_zscore",
    "volume_ratio",
];

/// The values of [`MEASURE_COLUMNS`] for one row, in the same order.
fn measures(row: &EnrichedTick) -> [Option<f64>; MEASURE_COLUMNS.len()] {
    let (t, i) = (&row.tick, &row.indicators);
    [
        t.open,
        t.high,
        t.low,
        t.previous_close,
        // The recomputed values, not the producer's, so every sink agrees on what "change" means.
        i.change,
        i.change_percent,
        t.volume,
        i.sma_short,
        i.sma_long,
        i.ema,
        i.vwap,
        i.window_high,
        i.window_low,
        i.volatility,
        i.log_return,
        i.return_zscore,
        i.volume_ratio,
    ]
}

fn utc_millis() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

static TICK_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = vec![
        Field::new("symbol", DataType::Utf8, false),
        Field::new("event_time", utc_millis(), false),
        Field::new("price", DataType::Float64, false),
    ];
    fields.extend(
        MEASURE_COLUMNS
            .iter()
            .map(|name| Field::new(*name, DataType::Float64, true)),
    );
    fields.extend([
        Field::new("anomaly", DataType::Boolean, false),
        Field::new("trend", DataType::Utf8, true),
        Field::new("shard_id", DataType::Utf8, false),
        Field::new("sequence_number", DataType::Utf8, false),
        Field::new("sub_sequence_number", DataType::Int64, false),
        Field::new("arrival_time", utc_millis(), false),
    ]);
    Arc::new(Schema::new(fields))
});

/// Schema of the lake's tick files (snake_case, Athena-compatible types).
pub fn tick_schema() -> SchemaRef {
    TICK_SCHEMA.clone()
}

fn format_date(days: i64) -> String {
    let (year, month, day) = civil_from_days(days);
    if (0..=9999).contains(&year) {
        format!("{year:04}-{month:02}-{day:02}")
    } else {
        // ISO 8601 expanded years, as chrono prints them.
        format!("{year:+05}-{month:02}-{day:02}")
    }
}

/// `YYYY-MM-DD` (UTC) of an event time in epoch ms.
pub fn partition_date(event_time_ms: i64) -> String {
    format_date(event_time_ms.div_euclid(MS_PER_DAY))
}

/// Object key of a tick file: `{prefix}ticks/dt={date}/{shard}-{first position}.parquet`.
///
/// `prefix` is `""` or a folder ending in `/` (as the configuration loads it).
pub fn tick_object_key(prefix: &str, date: &str, shard_id: &str, first: &Position) -> String {
    format!("{prefix}ticks/dt={date}/{shard_id}-{first}.parquet")
}

/// One encoded file of the lake.
#[derive(Debug, Clone)]
pub struct LakeFile {
    pub key: String,
    pub date: String,
    pub rows: usize,
    pub bytes: Vec<u8>,
}

/// Splits rows by event date, sorts each date by symbol then event time (then position), and
/// encodes one compressed Parquet file per date, named by its earliest row (by position, so the
/// rows may come in any order). Files come out in date order.
pub fn encode_files<R: Borrow<EnrichedTick>>(
    prefix: &str,
    shard_id: &str,
    rows: &[R],
) -> Result<Vec<LakeFile>, LakeError> {
    let props = writer_properties();
    file_order(rows)
        .into_iter()
        .map(|day| {
            let date = format_date(day.day);
            let key = tick_object_key(prefix, &date, shard_id, &rows[day.first].borrow().position);
            let bytes = encode_sorted(&day.rows, props.clone())?;
            Ok(LakeFile {
                key,
                date,
                rows: day.rows.len(),
                bytes,
            })
        })
        .collect()
}

/// The rows of one date in file order, and the index of the row that names the file.
struct DayRows<'a> {
    day: i64,
    first: usize,
    rows: Vec<&'a EnrichedTick>,
}

/// Groups rows by date, ordered by symbol, event time and position, in date order.
///
/// Buckets by (date, symbol) first: within a bucket, stream order is nearly time order already,
/// so the sorts are short and cheap, and only the few distinct symbols are compared as strings.
fn file_order<R: Borrow<EnrichedTick>>(rows: &[R]) -> Vec<DayRows<'_>> {
    // One lookup per row, so the hash is on the hot path: foldhash, seeded per process, rather
    // than SipHash, which costs several times more on short keys.
    let mut bucket_of: foldhash::HashMap<(i64, &str), usize> = foldhash::HashMap::default();
    let mut buckets: Vec<(i64, &str, Vec<usize>)> = Vec::new();
    for (index, row) in rows.iter().enumerate() {
        let row = row.borrow();
        let key = (
            row.tick.event_time_ms.div_euclid(MS_PER_DAY),
            row.tick.symbol.as_str(),
        );
        let bucket = *bucket_of.entry(key).or_insert_with(|| {
            buckets.push((key.0, key.1, Vec::new()));
            buckets.len() - 1
        });
        buckets[bucket].2.push(index);
    }
    buckets.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));

    buckets
        .chunk_by_mut(|a, b| a.0 == b.0)
        .map(|same_day| {
            // The earliest row by position, not by index: rows come a symbol at a time.
            let first = same_day
                .iter()
                .flat_map(|(_, _, indices)| indices.iter().copied())
                .min_by(|&a, &b| rows[a].borrow().position.cmp(&rows[b].borrow().position));
            let mut day_rows = Vec::with_capacity(same_day.iter().map(|b| b.2.len()).sum());
            for (_, _, indices) in same_day.iter_mut() {
                indices.sort_by(|&a, &b| {
                    let (a, b) = (rows[a].borrow(), rows[b].borrow());
                    a.tick
                        .event_time_ms
                        .cmp(&b.tick.event_time_ms)
                        .then_with(|| a.position.cmp(&b.position))
                });
                day_rows.extend(indices.iter().map(|&i| rows[i].borrow()));
            }
            DayRows {
                day: same_day[0].0,
                first: first.expect("chunks are never empty"),
                rows: day_rows,
            }
        })
        .collect()
}

fn writer_properties() -> WriterProperties {
    let sorting = SORT_COLUMNS
        .iter()
        .map(|&column_idx| SortingColumn {
            column_idx,
            descending: false,
            nulls_first: false,
        })
        .collect();
    let level = ZstdLevel::try_new(ZSTD_LEVEL).expect("a valid zstd level");
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(MAX_ROW_GROUP_ROWS))
        .set_sorting_columns(Some(sorting))
        .set_dictionary_enabled(false);
    for column in DICTIONARY_COLUMNS {
        builder = builder.set_column_dictionary_enabled(ColumnPath::from(column), true);
    }
    let encodings = BYTE_STREAM_SPLIT_COLUMNS
        .iter()
        .map(|column| (*column, Encoding::BYTE_STREAM_SPLIT))
        .chain(DELTA_COLUMNS.map(|column| (column, Encoding::DELTA_BINARY_PACKED)))
        // Sequence numbers in file order share long leading digits.
        .chain([("sequence_number", Encoding::DELTA_BYTE_ARRAY)]);
    for (column, encoding) in encodings {
        builder = builder.set_column_encoding(ColumnPath::from(column), encoding);
    }
    builder.build()
}

fn trend_str(trend: Trend) -> &'static str {
    match trend {
        Trend::Up => "up",
        Trend::Down => "down",
    }
}

/// Writes rows, already in file order, as one Parquet file.
fn encode_sorted(rows: &[&EnrichedTick], props: WriterProperties) -> Result<Vec<u8>, LakeError> {
    let batch = record_batch(rows)?;
    // Room for the file, so the buffer is never regrown (a copy of all it holds): 128 bytes a
    // row is well above what a row of this schema compresses to, and room not written to costs
    // no memory (untouched pages).
    let mut writer = ArrowWriter::try_new(
        Vec::with_capacity(rows.len() * 128),
        batch.schema(),
        Some(props),
    )?;
    writer.write(&batch)?;
    Ok(writer.into_inner()?)
}

fn record_batch(rows: &[&EnrichedTick]) -> Result<RecordBatch, LakeError> {
    let n = rows.len();
    // Sized from the first row rather than a pass over all of them: rows are scattered in
    // memory, and a builder that guessed short only grows a few times.
    let (symbol_len, shard_len, sequence_len) = rows.first().map_or((0, 0, 0), |r| {
        let sequence = r.position.sequence.as_str();
        (r.tick.symbol.len(), r.shard_id.len(), sequence.len())
    });
    let mut symbol = StringBuilder::with_capacity(n, n * symbol_len);
    let mut shard = StringBuilder::with_capacity(n, n * shard_len);
    let mut sequence = StringBuilder::with_capacity(n, n * sequence_len);
    let mut trend = StringBuilder::with_capacity(n, n * 4);
    let mut anomaly = BooleanBuilder::with_capacity(n);
    let mut event_time = Vec::with_capacity(n);
    let mut price = Vec::with_capacity(n);
    let mut sub_sequence = Vec::with_capacity(n);
    let mut arrival_time = Vec::with_capacity(n);
    let mut builders: [Float64Builder; MEASURE_COLUMNS.len()] =
        std::array::from_fn(|_| Float64Builder::with_capacity(n));
    // One pass, row by row: each scattered row is fetched into cache once for all columns.
    for row in rows {
        for (builder, value) in builders.iter_mut().zip(measures(row)) {
            builder.append_option(value);
        }
        symbol.append_value(&row.tick.symbol);
        shard.append_value(&row.shard_id);
        sequence.append_value(row.position.sequence.as_str());
        trend.append_option(row.trend.map(trend_str));
        anomaly.append_value(row.anomaly);
        event_time.push(row.tick.event_time_ms);
        price.push(row.tick.price);
        sub_sequence.push(i64::from(row.position.sub_sequence));
        arrival_time.push(row.arrival_time_ms);
    }

    let mut columns: Vec<ArrayRef> = Vec::with_capacity(TICK_SCHEMA.fields().len());
    columns.push(Arc::new(symbol.finish()));
    columns.push(Arc::new(
        TimestampMillisecondArray::from(event_time).with_timezone("UTC"),
    ));
    columns.push(Arc::new(Float64Array::from(price)));
    for mut values in builders {
        columns.push(Arc::new(values.finish()));
    }
    columns.push(Arc::new(anomaly.finish()));
    columns.push(Arc::new(trend.finish()));
    columns.push(Arc::new(shard.finish()));
    columns.push(Arc::new(sequence.finish()));
    columns.push(Arc::new(Int64Array::from(sub_sequence)));
    columns.push(Arc::new(
        TimestampMillisecondArray::from(arrival_time).with_timezone("UTC"),
    ));
    Ok(RecordBatch::try_new(tick_schema(), columns)?)
}

#[cfg(test)]
mod tests {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, Int64Type, TimestampMillisecondType};
    use bytes::Bytes;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::basic::{LogicalType, TimeUnit as ParquetTimeUnit, Type as PhysicalType};
    use proptest::prelude::*;

    use super::*;
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
        assert!(
            uses_dictionary("symbol") && uses_dictionary("shard_id") && uses_dictionary("trend")
        );
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
}
