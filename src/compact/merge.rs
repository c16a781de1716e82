//! Merging a group of lake files into one compacted file, on a blocking thread: the lake's
//! schema, encodings and order, with memory bounded by a row group.
//!
//! In: the fetched bodies of the group's files. Out: one Parquet file's bytes, written as they
//! come to a [`std::io::Write`] (the upload's parts), and its row count.
//!
//! A look at each file first ([`inspect`]) decodes only its `symbol`, `shard_id` and position
//! columns: the runs of rows of each symbol, the last position of each shard (what the
//! checkpoint rule needs), and whether its columns fit the lake's schema. Then the output is
//! written a symbol range at a time: ranges of whole symbols of up to a row group's rows
//! ([`symbol_ranges`]); for each, the rows of those symbols are read from every file that has
//! any (a row selection of the file's runs of those symbols: one per row group, since each row
//! group is sorted by symbol), ordered as the lake orders rows (symbol, event time, position,
//! then shard), and written as one row group.
//!
//! Why ranges rather than a k-way merge of the files' rows: a pipeline file is one shard's
//! rows, a row group per barrier, every row group holding all of the shard's symbols, and a
//! column of a row group of that size is a single page. A k-way merge would keep one decoded
//! page of every column of every row group open at once, which is the whole output decoded,
//! several times its compressed size. A range needs only its own rows decoded. The price is
//! that an input's pages are decompressed once for each range it has rows in (a compacted
//! input's page index lets the reader skip pages outside the range). Held throughout: the
//! compressed inputs, about the output's size, and one row group's rows decoded.
//!
//! The output is compressed harder than the pipeline's files
//! ([`compacted_writer_properties`]): it is written once and kept.
//!
//! Files written before a column existed (the trailing nullable `alerts`, `alerts_held`) read
//! those columns as nulls; a column this version does not know, or of another type, is an error
//! naming the file rather than a column dropped.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::io::Write;
use std::ops::Range;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMillisecondType};
use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray, new_null_array};
use arrow_schema::{DataType, Schema, TimeUnit};
use bytes::Bytes;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection,
};
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::file::metadata::PageIndexPolicy;

use crate::model::lake::{MAX_ROW_GROUP_ROWS, compacted_writer_properties, tick_schema};
use crate::model::tick::{Position, SequenceNumber};

/// Rows per record batch read and written.
const BATCH_ROWS: usize = 8192;

/// Why files could not be merged. Never worth another try: the same bytes fail the same way.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("lake file {key} cannot be read: {message}")]
    Input { key: String, message: String },
    #[error("lake file {key} does not fit the lake's schema: {message}")]
    Schema { key: String, message: String },
    #[error("the compacted file could not be written: {0}")]
    Output(String),
}

/// Rows of one symbol next to each other in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Run {
    symbol: String,
    start: usize,
    rows: usize,
}

/// Where a column of the lake's schema comes from in a file's batches.
#[derive(Debug, Clone, Copy)]
enum Source {
    Column(usize),
    /// A UTC timestamp column whose time zone is spelt otherwise (`+00:00`).
    Utc(usize),
    /// A nullable column the file was written without.
    Nulls,
}

/// What a look at one file found.
#[derive(Debug)]
pub struct Inspected {
    pub rows: u64,
    /// The last position of each shard's rows in the file.
    pub last: BTreeMap<String, Position>,
    runs: Vec<Run>,
    sources: Vec<Source>,
    metadata: ArrowReaderMetadata,
}

/// A file of the group: its key, its bytes and what [`inspect`] found.
pub struct Input {
    pub key: String,
    pub body: Bytes,
    pub inspected: Inspected,
}

/// Reads a file's footer, checks its columns against the lake's schema, and decodes its
/// `symbol`, `shard_id` and position columns.
pub fn inspect(key: &str, body: &Bytes) -> Result<Inspected, MergeError> {
    let unreadable = |e: &dyn std::fmt::Display| MergeError::Input {
        key: key.to_owned(),
        message: e.to_string(),
    };
    let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional);
    let metadata = ArrowReaderMetadata::load(body, options).map_err(|e| unreadable(&e))?;
    let sources = sources(metadata.schema()).map_err(|message| MergeError::Schema {
        key: key.to_owned(),
        message,
    })?;
    let leaves: Vec<usize> = [
        "symbol",
        "shard_id",
        "sequence_number",
        "sub_sequence_number",
    ]
    .iter()
    .filter_map(|name| {
        let columns = metadata.parquet_schema().columns();
        columns.iter().position(|c| c.name() == *name)
    })
    .collect();
    let mask = ProjectionMask::leaves(metadata.parquet_schema(), leaves);
    let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(body.clone(), metadata.clone())
        .with_projection(mask)
        .with_batch_size(64 * 1024)
        .build()
        .map_err(|e| unreadable(&e))?;

    let mut runs: Vec<Run> = Vec::new();
    // The greatest (sequence, sub-sequence) of each shard, as text until the end.
    let mut last: Vec<(String, String, i64)> = Vec::new();
    let mut rows = 0usize;
    for batch in reader {
        let batch = batch.map_err(|e| unreadable(&e))?;
        let keys = Keys::of(&batch).map_err(|e| unreadable(&e))?;
        for i in 0..batch.num_rows() {
            let symbol = keys.symbol.value(i);
            match runs.last_mut() {
                Some(run) if run.symbol == symbol => run.rows += 1,
                _ => runs.push(Run {
                    symbol: symbol.to_owned(),
                    start: rows + i,
                    rows: 1,
                }),
            }
            let (shard, sequence, sub) = (keys.shard.value(i), keys.sequence.value(i), keys.sub[i]);
            match last.iter_mut().find(|(s, _, _)| s == shard) {
                Some((_, max_sequence, max_sub)) => {
                    let later = SequenceNumber::cmp_digits(sequence, max_sequence)
                        .then(sub.cmp(max_sub))
                        .is_gt();
                    if later {
                        sequence.clone_into(max_sequence);
                        *max_sub = sub;
                    }
                }
                None => last.push((shard.to_owned(), sequence.to_owned(), sub)),
            }
        }
        rows += batch.num_rows();
    }
    let last = last
        .into_iter()
        .map(|(shard, sequence, sub)| {
            let sub = u32::try_from(sub)
                .map_err(|_| unreadable(&format!("sub-sequence number {sub} out of range")))?;
            if sequence.is_empty() || !sequence.bytes().all(|b| b.is_ascii_digit()) {
                let message = format!("sequence number {sequence:?} is not decimal digits");
                return Err(unreadable(&message));
            }
            Ok((shard, Position::new(SequenceNumber::new(sequence), sub)))
        })
        .collect::<Result<_, _>>()?;
    Ok(Inspected {
        rows: rows as u64,
        last,
        runs,
        sources,
        metadata,
    })
}

/// Where each column of the lake's schema comes from in a file of schema `file`, or why the
/// file does not fit.
fn sources(file: &Schema) -> Result<Vec<Source>, String> {
    let lake = tick_schema();
    if let Some(unknown) = file
        .fields()
        .iter()
        .find(|f| lake.field_with_name(f.name()).is_err())
    {
        return Err(format!(
            "column `{}` is not one this version of kinetick knows; compact with the version \
             that wrote it",
            unknown.name()
        ));
    }
    lake.fields()
        .iter()
        .map(|field| match file.index_of(field.name()) {
            Ok(index) => {
                let found = file.field(index).data_type();
                match (found, field.data_type()) {
                    (found, wanted) if found == wanted => Ok(Source::Column(index)),
                    (
                        DataType::Timestamp(TimeUnit::Millisecond, Some(zone)),
                        DataType::Timestamp(TimeUnit::Millisecond, Some(_)),
                    ) if matches!(&**zone, "UTC" | "+00:00" | "Z") => Ok(Source::Utc(index)),
                    (found, wanted) => Err(format!(
                        "column `{}` is {found}, the lake's is {wanted}",
                        field.name()
                    )),
                }
            }
            Err(_) if field.is_nullable() => Ok(Source::Nulls),
            Err(_) => Err(format!("no column `{}`", field.name())),
        })
        .collect()
}

/// A batch of a file's rows with the lake's schema.
fn conform(batch: &RecordBatch, sources: &[Source]) -> Result<RecordBatch, String> {
    let lake = tick_schema();
    let columns: Vec<ArrayRef> = lake
        .fields()
        .iter()
        .zip(sources)
        .map(|(field, source)| match *source {
            Source::Column(index) => batch.column(index).clone(),
            Source::Utc(index) => std::sync::Arc::new(
                batch
                    .column(index)
                    .as_primitive::<TimestampMillisecondType>()
                    .clone()
                    .with_timezone("UTC"),
            ),
            Source::Nulls => new_null_array(field.data_type(), batch.num_rows()),
        })
        .collect();
    RecordBatch::try_new(lake, columns).map_err(|e| e.to_string())
}

/// The columns rows are ordered by, of one batch.
struct Keys<'a> {
    symbol: &'a StringArray,
    time: Option<&'a [i64]>,
    sequence: &'a StringArray,
    sub: &'a [i64],
    shard: &'a StringArray,
}

impl<'a> Keys<'a> {
    fn of(batch: &'a RecordBatch) -> Result<Self, String> {
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .ok_or_else(|| format!("no column `{name}`"))
        };
        let strings = |name: &str| {
            column(name)?
                .as_string_opt::<i32>()
                .ok_or_else(|| format!("column `{name}` is not a string"))
        };
        let time = match batch.column_by_name("event_time") {
            Some(time) => Some(
                time.as_primitive_opt::<TimestampMillisecondType>()
                    .ok_or("column `event_time` is not a timestamp")?
                    .values()
                    .as_ref(),
            ),
            None => None,
        };
        let sub: &Int64Array = column("sub_sequence_number")?
            .as_primitive_opt::<Int64Type>()
            .ok_or("column `sub_sequence_number` is not a bigint")?;
        Ok(Self {
            symbol: strings("symbol")?,
            time,
            sequence: strings("sequence_number")?,
            sub: sub.values().as_ref(),
            shard: strings("shard_id")?,
        })
    }
}

/// The lake's order of two rows: symbol, event time, position (sequence numbers compared as
/// numbers), then shard (rows of two shards at one position, after a reshard).
fn compare(a: (&Keys, usize), b: (&Keys, usize)) -> Ordering {
    let ((ka, i), (kb, j)) = (a, b);
    let time = |k: &Keys, i: usize| k.time.map_or(0, |t| t[i]);
    ka.symbol
        .value(i)
        .cmp(kb.symbol.value(j))
        .then_with(|| time(ka, i).cmp(&time(kb, j)))
        .then_with(|| SequenceNumber::cmp_digits(ka.sequence.value(i), kb.sequence.value(j)))
        .then_with(|| ka.sub[i].cmp(&kb.sub[j]))
        .then_with(|| ka.shard.value(i).cmp(kb.shard.value(j)))
}

/// A range of whole symbols, first to last, and its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolRange {
    pub first: String,
    pub last: String,
    pub rows: usize,
}

/// Cuts the symbols (with their rows, in symbol order) into consecutive ranges of at most
/// `max_rows` rows; a symbol with more rows than that is a range of its own.
pub fn symbol_ranges<'a>(
    counts: impl IntoIterator<Item = (&'a str, usize)>,
    max_rows: usize,
) -> Vec<SymbolRange> {
    let mut ranges: Vec<SymbolRange> = Vec::new();
    for (symbol, rows) in counts {
        match ranges.last_mut() {
            Some(range) if range.rows + rows <= max_rows => {
                symbol.clone_into(&mut range.last);
                range.rows += rows;
            }
            _ => ranges.push(SymbolRange {
                first: symbol.to_owned(),
                last: symbol.to_owned(),
                rows,
            }),
        }
    }
    ranges
}

/// The rows of a file whose symbol lies in `range`, as consecutive row ranges.
fn rows_in(runs: &[Run], range: &SymbolRange) -> Vec<Range<usize>> {
    let mut selected: Vec<Range<usize>> = Vec::new();
    for run in runs {
        if run.symbol < range.first || run.symbol > range.last {
            continue;
        }
        let rows = run.start..run.start + run.rows;
        match selected.last_mut() {
            Some(previous) if previous.end == rows.start => previous.end = rows.end,
            _ => selected.push(rows),
        }
    }
    selected
}

/// Writes the rows of `inputs` as one file in the lake's order and format into `out`, a row
/// group per symbol range; `progress` hears of the rows written after each. Returns the rows
/// and `out`.
pub fn merge<W: Write + Send>(
    inputs: &[Input],
    out: W,
    progress: impl FnMut(u64),
) -> Result<(u64, W), MergeError> {
    merge_in_ranges(inputs, out, MAX_ROW_GROUP_ROWS, progress)
}

/// [`merge`], with ranges of up to `max_rows` rows.
fn merge_in_ranges<W: Write + Send>(
    inputs: &[Input],
    out: W,
    max_rows: usize,
    mut progress: impl FnMut(u64),
) -> Result<(u64, W), MergeError> {
    let output = |e: &dyn std::fmt::Display| MergeError::Output(e.to_string());
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for input in inputs {
        for run in &input.inspected.runs {
            *counts.entry(run.symbol.as_str()).or_default() += run.rows;
        }
    }
    let mut writer = ArrowWriter::try_new(out, tick_schema(), Some(compacted_writer_properties()))
        .map_err(|e| output(&e))?;
    let mut written = 0u64;
    for range in symbol_ranges(counts, max_rows) {
        let batches = read_range(inputs, &range)?;
        let rows = write_ordered(&batches, &mut writer).map_err(|e| output(&e))?;
        // One row group per range, so a row group's symbol statistics are a range's.
        writer.flush().map_err(|e| output(&e))?;
        written += rows;
        progress(written);
    }
    let out = writer.into_inner().map_err(|e| output(&e))?;
    Ok((written, out))
}

/// The rows of every input whose symbol lies in `range`, with the lake's schema.
fn read_range(inputs: &[Input], range: &SymbolRange) -> Result<Vec<RecordBatch>, MergeError> {
    let mut batches = Vec::new();
    for input in inputs {
        let Inspected {
            runs,
            sources,
            metadata,
            rows,
            ..
        } = &input.inspected;
        let selected = rows_in(runs, range);
        if selected.is_empty() {
            continue;
        }
        let unreadable = |e: &dyn std::fmt::Display| MergeError::Input {
            key: input.key.clone(),
            message: e.to_string(),
        };
        let wanted: usize = selected.iter().map(ExactSizeIterator::len).sum();
        let selection = RowSelection::from_consecutive_ranges(selected.into_iter(), *rows as usize);
        // Batches no larger than the rows wanted: a batch's buffers are sized for the batch,
        // and a range holds one from every input.
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(
            input.body.clone(),
            metadata.clone(),
        )
        .with_row_selection(selection)
        .with_batch_size(wanted.min(BATCH_ROWS))
        .build()
        .map_err(|e| unreadable(&e))?;
        for batch in reader {
            let batch = batch.map_err(|e| unreadable(&e))?;
            batches.push(conform(&batch, sources).map_err(|e| unreadable(&e))?);
        }
    }
    Ok(batches)
}

/// Writes the rows of `batches` in the lake's order; returns how many.
fn write_ordered<W: Write + Send>(
    batches: &[RecordBatch],
    writer: &mut ArrowWriter<W>,
) -> Result<u64, String> {
    let keys = batches
        .iter()
        .map(Keys::of)
        .collect::<Result<Vec<_>, _>>()?;
    let mut order: Vec<(usize, usize)> = batches
        .iter()
        .enumerate()
        .flat_map(|(b, batch)| (0..batch.num_rows()).map(move |i| (b, i)))
        .collect();
    // Each file's rows come sorted, so this is a merge of sorted runs.
    order.sort_by(|&(a, i), &(b, j)| compare((&keys[a], i), (&keys[b], j)));
    let lake = tick_schema();
    for chunk in order.chunks(BATCH_ROWS) {
        let columns = (0..lake.fields().len())
            .map(|c| {
                let arrays: Vec<&dyn Array> =
                    batches.iter().map(|b| b.column(c).as_ref()).collect();
                arrow_select::interleave::interleave(&arrays, chunk)
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        let batch = RecordBatch::try_new(lake.clone(), columns).map_err(|e| e.to_string())?;
        writer.write(&batch).map_err(|e| e.to_string())?;
    }
    Ok(order.len() as u64)
}

#[cfg(test)]
mod tests;
