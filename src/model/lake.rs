//! The Parquet lake format: Arrow schema of enriched ticks, Hive `dt=YYYY-MM-DD` partitioning by
//! event time, deterministic object keys, and encoding of one file to bytes.
//!
//! In: enriched ticks of one shard between two checkpoints. Out: `(key, parquet bytes)` per date.

use arrow_schema::SchemaRef;

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

/// Schema of the lake's tick files (snake_case, Athena-compatible types).
pub fn tick_schema() -> SchemaRef {
    todo!()
}

/// `YYYY-MM-DD` (UTC) of an event time in epoch ms.
pub fn partition_date(event_time_ms: i64) -> String {
    let _ = event_time_ms;
    todo!()
}

/// Object key of a tick file: `{prefix}ticks/dt={date}/{shard}-{first position}.parquet`.
pub fn tick_object_key(prefix: &str, date: &str, shard_id: &str, first: &Position) -> String {
    let _ = (prefix, date, shard_id, first);
    todo!()
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
/// encodes one compressed Parquet file per date. `rows` must be in stream order (the first row
/// of each date names its file).
pub fn encode_files(
    prefix: &str,
    shard_id: &str,
    rows: &[EnrichedTick],
) -> Result<Vec<LakeFile>, LakeError> {
    let _ = (prefix, shard_id, rows);
    todo!()
}
