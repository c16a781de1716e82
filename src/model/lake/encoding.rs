//! How a lake file is encoded: compression, per-column encodings and statistics chosen by
//! measurement (`cargo bench --bench lake_size`), and the Arrow batch of its rows.

use std::sync::Arc;

use arrow_array::builder::{BooleanBuilder, Float64Builder, StringBuilder};
use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, TimestampMillisecondArray};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use super::{LakeError, MEASURE_COLUMNS, TICK_SCHEMA, measures, tick_schema};
use crate::model::enriched::EnrichedTick;
use crate::model::rules::Trend;

/// Rows per row group. A row group is usually the rows between two barriers; the cap bounds the
/// writer's buffered memory when a shard catches up on a large backlog.
pub const MAX_ROW_GROUP_ROWS: usize = 128 * 1024;

/// Columns the writer dictionary-encodes: few distinct values per file. Prices and sequence
/// numbers are nearly unique, so a dictionary would only be built to be thrown away.
const DICTIONARY_COLUMNS: [&str; 5] = ["symbol", "trend", "shard_id", "alerts", "alerts_held"];

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

/// Zstandard level of compacted files: written once, off the pipeline's path, and stored and
/// read for as long as they are kept, so worth more CPU. Chosen by measurement
/// (docs/performance.md, "The compacted files' compression level"): the most bytes saved
/// before the time grows steeply.
const COMPACTED_ZSTD_LEVEL: i32 = 15;

/// Leaf indices of `symbol` and `event_time`, the order rows are written in.
const SORT_COLUMNS: [i32; 2] = [0, 1];

/// How the pipeline writes lake files: compression, encodings per column, statistics, row group
/// size and the sort order it declares.
pub fn writer_properties() -> WriterProperties {
    properties_at(ZSTD_LEVEL)
}

/// How `kinetick compact` writes lake files: as the pipeline does, compressed harder.
pub fn compacted_writer_properties() -> WriterProperties {
    properties_at(COMPACTED_ZSTD_LEVEL)
}

fn properties_at(zstd_level: i32) -> WriterProperties {
    let sorting = SORT_COLUMNS
        .iter()
        .map(|&column_idx| SortingColumn {
            column_idx,
            descending: false,
            nulls_first: false,
        })
        .collect();
    let level = ZstdLevel::try_new(zstd_level).expect("a valid zstd level");
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
pub(super) fn encode_sorted(
    rows: &[&EnrichedTick],
    props: WriterProperties,
) -> Result<Vec<u8>, LakeError> {
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

/// A lake file written a row group at a time, its bytes taken as they are made, so that a file
/// of any size is never held whole.
pub struct GrowingLakeFile {
    writer: ArrowWriter<Vec<u8>>,
}

impl GrowingLakeFile {
    pub fn new() -> Result<Self, LakeError> {
        let writer = ArrowWriter::try_new(Vec::new(), tick_schema(), Some(writer_properties()))?;
        Ok(Self { writer })
    }

    /// Appends rows already in file order as one row group (more if over the row cap).
    pub fn append(&mut self, rows: &[&EnrichedTick]) -> Result<(), LakeError> {
        self.writer.write(&record_batch(rows)?)?;
        Ok(self.writer.flush()?)
    }

    /// Bytes made so far, some of them still in the writer's buffer (not taken yet).
    pub fn size(&self) -> u64 {
        self.writer.bytes_written() as u64
    }

    /// The bytes made since the last call (but those the writer still buffers).
    pub fn take_bytes(&mut self) -> Vec<u8> {
        std::mem::take(self.writer.inner_mut())
    }

    /// Ends the file: the bytes not taken yet, and its footer.
    pub fn finish(self) -> Result<Vec<u8>, LakeError> {
        Ok(self.writer.into_inner()?)
    }
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
    // Almost every row raised no alert: nulls.
    let mut alerts = StringBuilder::with_capacity(n, 0);
    let mut alerts_held = StringBuilder::with_capacity(n, 0);
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
        alerts.append_option(row.alerts.to_text());
        alerts_held.append_option(row.alerts_held.to_text());
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
    columns.push(Arc::new(alerts.finish()));
    columns.push(Arc::new(alerts_held.finish()));
    Ok(RecordBatch::try_new(tick_schema(), columns)?)
}
