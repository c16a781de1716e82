//! Reading a lake in tests: every row of its tick files with every column's value, keyed by
//! the row's stream position, to compare two lakes value for value.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampMillisecondType};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// `(shard_id, sequence_number, sub_sequence_number)`: a tick's identity.
pub type RowId = (String, String, i64);

/// Every file under `dir` with `extension`, sorted.
pub fn files_under(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
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

/// The values of one row, a text per column of the lake's schema in its order (floats as their
/// bits, so equal means bit-equal; `null` for a null or a column the file lacks).
fn values(batch: &RecordBatch, i: usize) -> Vec<String> {
    kinetick::model::lake::tick_schema()
        .fields()
        .iter()
        .map(|field| match batch.column_by_name(field.name()) {
            None => "null".to_owned(),
            Some(column) if column.is_null(i) => "null".to_owned(),
            Some(column) => match column.data_type() {
                DataType::Utf8 => column.as_string::<i32>().value(i).to_owned(),
                DataType::Float64 => {
                    format!(
                        "{:x}",
                        column.as_primitive::<Float64Type>().value(i).to_bits()
                    )
                }
                DataType::Int64 => column.as_primitive::<Int64Type>().value(i).to_string(),
                DataType::Timestamp(..) => column
                    .as_primitive::<TimestampMillisecondType>()
                    .value(i)
                    .to_string(),
                DataType::Boolean => column.as_boolean().value(i).to_string(),
                other => panic!("column {} of type {other}", field.name()),
            },
        })
        .collect()
}

/// Index of a column in [`values`].
pub fn column(name: &str) -> usize {
    kinetick::model::lake::tick_schema().index_of(name).unwrap()
}

/// Every row of one Parquet file, in file order: its identity and values.
pub fn file_rows(body: Bytes) -> Vec<(RowId, Vec<String>)> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(body)
        .unwrap()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        for i in 0..batch.num_rows() {
            let values = values(&batch, i);
            let id = (
                values[column("shard_id")].clone(),
                values[column("sequence_number")].clone(),
                values[column("sub_sequence_number")].parse().unwrap(),
            );
            rows.push((id, values));
        }
    }
    rows
}

/// Every row of the lake's tick files under `dir` (`dir/ticks/...`), by identity; panics if a
/// tick is there twice.
pub fn lake_rows(dir: &Path) -> BTreeMap<RowId, Vec<String>> {
    let mut rows = BTreeMap::new();
    for file in files_under(&dir.join("ticks"), "parquet") {
        let body = Bytes::from(std::fs::read(&file).unwrap());
        for (id, values) in file_rows(body) {
            if let Some(first) = rows.insert(id.clone(), values) {
                panic!(
                    "{id:?} twice in the lake, again in {}: {first:?}",
                    file.display()
                );
            }
        }
    }
    rows
}

/// The lake's order of two rows: symbol, event time, sequence number (as a number),
/// sub-sequence, shard.
pub fn lake_order(a: &(RowId, Vec<String>), b: &(RowId, Vec<String>)) -> Ordering {
    let number = |digits: &str| {
        let digits = digits.trim_start_matches('0');
        (digits.len(), digits.to_owned())
    };
    let key = |(id, values): &(RowId, Vec<String>)| {
        (
            values[column("symbol")].clone(),
            values[column("event_time")].parse::<i64>().unwrap(),
            number(&id.1),
            id.2,
            id.0.clone(),
        )
    };
    key(a).cmp(&key(b))
}
