//! What the lake costs per tick: `kinetick demo` writes a lake (1,000,000 ticks of 1,000 symbols
//! on 4 shards; `LAKE_TICKS` changes the count), then this reads every file back
//! and prints its files, its bytes per tick in all and per column, and the same rows in two
//! other layouts: the encoding the lake used before (Snappy, plain doubles and strings) and one
//! JSON object per tick (what a Firehose delivery stream of the producer's records would hold).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampMillisecondType};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

fn parquet_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            parquet_files(&path, files);
        } else if path.extension().is_some_and(|e| e == "parquet") {
            files.push(path);
        }
    }
}

/// The lake's encoding before it was chosen by measurement.
fn earlier_properties() -> WriterProperties {
    ["symbol", "trend", "shard_id"]
        .iter()
        .fold(
            WriterProperties::builder()
                .set_compression(Compression::SNAPPY)
                .set_dictionary_enabled(false),
            |builder, column| {
                builder.set_column_dictionary_enabled(ColumnPath::from(*column), true)
            },
        )
        .build()
}

fn encoded_size(batches: &[RecordBatch], properties: WriterProperties) -> usize {
    let mut writer =
        ArrowWriter::try_new(Vec::new(), batches[0].schema(), Some(properties)).expect("a writer");
    for batch in batches {
        writer.write(batch).expect("written");
    }
    writer.into_inner().expect("closed").len()
}

/// One JSON object per row, as a JSON-lines file would hold it: its length with the newline.
fn json_size(batch: &RecordBatch) -> usize {
    let schema = batch.schema();
    let mut total = 0;
    for row in 0..batch.num_rows() {
        let mut object = serde_json::Map::new();
        for (field, column) in schema.fields().iter().zip(batch.columns()) {
            let value = if column.is_null(row) {
                serde_json::Value::Null
            } else {
                match field.data_type() {
                    DataType::Utf8 => column.as_string::<i32>().value(row).into(),
                    DataType::Float64 => column.as_primitive::<Float64Type>().value(row).into(),
                    DataType::Int64 => column.as_primitive::<Int64Type>().value(row).into(),
                    DataType::Boolean => column.as_boolean().value(row).into(),
                    DataType::Timestamp(..) => {
                        let ms = column.as_primitive::<TimestampMillisecondType>().value(row);
                        chrono::DateTime::from_timestamp_millis(ms)
                            .expect("in range")
                            .to_rfc3339()
                            .into()
                    }
                    other => panic!("a column of type {other} in the lake"),
                }
            };
            object.insert(field.name().clone(), value);
        }
        total += serde_json::to_string(&object).expect("json").len() + 1;
    }
    total
}

fn main() {
    // `cargo test` runs benches without `--bench`: a small lake then, to check that this runs.
    let default = match std::env::args().any(|arg| arg == "--bench") {
        true => 1_000_000,
        false => 20_000,
    };
    let ticks: usize = std::env::var("LAKE_TICKS").map_or(default, |v| v.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let demo = Command::new(env!("CARGO_BIN_EXE_kinetick"))
        .args([
            "demo",
            "--no-progress",
            "--symbols",
            "1000",
            "--shards",
            "4",
        ])
        .args(["--ticks", &ticks.to_string(), "--out"])
        .arg(dir.path())
        .output()
        .expect("kinetick demo runs");
    assert!(
        demo.status.success(),
        "{}",
        String::from_utf8_lossy(&demo.stderr)
    );

    let mut files = Vec::new();
    parquet_files(&dir.path().join("ticks"), &mut files);
    let (mut bytes, mut rows, mut earlier, mut json) = (0, 0, 0, 0);
    let mut by_column: BTreeMap<String, i64> = BTreeMap::new();
    let mut encodings: BTreeMap<String, String> = BTreeMap::new();
    for file in &files {
        let body = Bytes::from(std::fs::read(file).unwrap());
        bytes += body.len();
        let reader = ParquetRecordBatchReaderBuilder::try_new(body).unwrap();
        for group in reader.metadata().row_groups() {
            for column in group.columns() {
                let name = column.column_path().string();
                *by_column.entry(name.clone()).or_default() += column.compressed_size();
                let used: Vec<String> = column.encodings().map(|e| format!("{e:?}")).collect();
                encodings.insert(name, used.join("+"));
            }
        }
        let batches: Vec<RecordBatch> = reader.build().unwrap().map(Result::unwrap).collect();
        rows += batches.iter().map(RecordBatch::num_rows).sum::<usize>();
        earlier += encoded_size(&batches, earlier_properties());
        json += batches.iter().map(json_size).sum::<usize>();
    }
    assert!(rows > 0, "the demo wrote no lake rows");

    let per_tick = |bytes: usize| bytes as f64 / rows as f64;
    println!("lake of `kinetick demo --ticks {ticks} --symbols 1000 --shards 4`:");
    println!("  {rows} rows in {} files", files.len());
    println!(
        "  as written:           {:6.1} bytes a tick",
        per_tick(bytes)
    );
    println!(
        "  earlier encoding:     {:6.1} bytes a tick",
        per_tick(earlier)
    );
    println!(
        "  JSON object per tick: {:6.1} bytes a tick",
        per_tick(json)
    );
    println!("  by column, as written:");
    for (column, size) in &by_column {
        let size = *size as usize;
        println!(
            "    {column:<20} {:6.2} bytes a tick  {}",
            per_tick(size),
            encodings[column]
        );
    }
}
