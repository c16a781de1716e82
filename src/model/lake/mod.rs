//! The Parquet lake format: Arrow schema of enriched ticks, Hive `dt=YYYY-MM-DD` partitioning by
//! event time, deterministic object keys, and encoding of one file to bytes.
//!
//! In: enriched ticks of one shard. Out: a file per date, whole (`encode_files`) or growing a row
//! group at a time (`day_segments` into a `GrowingLakeFile`).
//!
//! Timestamps are Arrow `Timestamp(Millisecond, "UTC")`, which the parquet writer stores as INT64
//! with the `TIMESTAMP(MILLIS, isAdjustedToUTC=true)` logical type: what Athena reads as
//! `timestamp`, without the deprecated INT96. The `dt` partition is only in the object key.

mod encoding;

use std::borrow::Borrow;
use std::sync::{Arc, LazyLock};

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

use self::encoding::encode_sorted;
pub use self::encoding::{
    GrowingLakeFile, MAX_ROW_GROUP_ROWS, compacted_writer_properties, writer_properties,
};
use super::calendar::{MS_PER_DAY, civil_from_days};
use super::enriched::EnrichedTick;
use super::tick::Position;

/// Why a file could not be encoded (a bug or resource problem, never bad input).
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("parquet encoding failed: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("arrow batch could not be built: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
}

/// Nullable `Float64` columns after the required ones, in schema order; [`measures`] gives
/// their values.
pub const MEASURE_COLUMNS: [&str; 17] = [
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
pub(super) fn measures(row: &EnrichedTick) -> [Option<f64>; MEASURE_COLUMNS.len()] {
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

pub(super) static TICK_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
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
        // Kinds of the alerts the row's tick raised (sent, and held by the symbol's budget),
        // comma-separated; null for none. Last, so files written before them still line up.
        Field::new("alerts", DataType::Utf8, true),
        Field::new("alerts_held", DataType::Utf8, true),
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
            let day_rows: Vec<&EnrichedTick> = day.rows.iter().map(|&i| rows[i].borrow()).collect();
            let bytes = encode_sorted(&day_rows, props.clone())?;
            Ok(LakeFile {
                key,
                date,
                rows: day.rows.len(),
                bytes,
            })
        })
        .collect()
}

/// Rows of one shard that go to one file: its date partition, the key the file takes when these
/// rows open it (named by their earliest row), and the rows in file order.
#[derive(Debug)]
pub struct Segment<'a, R> {
    pub partition: String,
    pub key: String,
    pub rows: Vec<&'a R>,
}

/// Splits rows by event date into the segments of each date's file, in date order; each sorted
/// by symbol then event time (then position), so that a segment is a row group of the lake's order.
pub fn day_segments<'a>(
    prefix: &str,
    shard_id: &str,
    rows: &[&'a EnrichedTick],
) -> Vec<Segment<'a, EnrichedTick>> {
    file_order(rows)
        .into_iter()
        .map(|day| {
            let partition = format_date(day.day);
            let key = tick_object_key(prefix, &partition, shard_id, &rows[day.first].position);
            Segment {
                partition,
                key,
                rows: day.rows.iter().map(|&i| rows[i]).collect(),
            }
        })
        .collect()
}

/// The rows of one date in file order (as indices), and the index of the row that names the file.
struct DayRows {
    day: i64,
    first: usize,
    rows: Vec<usize>,
}

/// Groups rows by date, ordered by symbol, event time and position, in date order.
///
/// Buckets by (date, symbol) first: within a bucket, stream order is nearly time order already,
/// so the sorts are short and cheap, and only the few distinct symbols are compared as strings.
fn file_order<R: Borrow<EnrichedTick>>(rows: &[R]) -> Vec<DayRows> {
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
                day_rows.extend_from_slice(indices);
            }
            DayRows {
                day: same_day[0].0,
                first: first.expect("chunks are never empty"),
                rows: day_rows,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
