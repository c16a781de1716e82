//! The Parquet batcher: enriched ticks of each shard, between two checkpoints, as compressed
//! Parquet files under `{prefix}ticks/dt=YYYY-MM-DD/` (by event time), sorted by symbol then time.

use std::sync::Arc;

use bytes::Bytes;

use super::object_batcher::{EncodedObject, ObjectBatcher, ObjectLayout};
use crate::barrier::{ShardBatch, SinkKind};
use crate::metrics::{Counter, Metrics};
use crate::model::enriched::EnrichedTick;
use crate::model::lake::encode_files;

pub type ParquetBatcher = ObjectBatcher<ParquetLayout>;

#[derive(Debug, Clone)]
pub struct ParquetLayout {
    pub prefix: String,
}

impl ObjectLayout for ParquetLayout {
    type Row = EnrichedTick;
    const SINK: SinkKind = SinkKind::Lake;

    fn rows(batch: &ShardBatch) -> &[Arc<[EnrichedTick]>] {
        &batch.ticks
    }

    fn encode(&self, shard_id: &str, rows: &[&EnrichedTick]) -> Result<Vec<EncodedObject>, String> {
        let files = encode_files(&self.prefix, shard_id, rows).map_err(|e| e.to_string())?;
        Ok(files
            .into_iter()
            .map(|file| EncodedObject {
                key: file.key,
                body: Bytes::from(file.bytes),
                content_type: "application/vnd.apache.parquet",
                rows: file.rows,
            })
            .collect())
    }

    fn count(metrics: &Metrics, objects: &[EncodedObject]) {
        metrics.add(Counter::ParquetFilesWritten, objects.len() as u64);
        metrics.add(
            Counter::ParquetRowsWritten,
            objects.iter().map(|o| o.rows as u64).sum(),
        );
    }
}
