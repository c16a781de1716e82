//! The Parquet batcher: enriched ticks of each shard as compressed Parquet files under
//! `{prefix}ticks/dt=YYYY-MM-DD/` (by event time), a row group sorted by symbol then time per
//! barrier, closed at the target size or age (`lake.target-file-size`, `lake.max-file-age`).

use std::sync::Arc;

use super::object_batcher::{FileEncoder, ObjectBatcher, ObjectLayout};
use crate::barrier::{ShardBatch, SinkKind};
use crate::metrics::{Counter, Metrics};
use crate::model::enriched::EnrichedTick;
use crate::model::lake::{GrowingLakeFile, Segment, day_segments};

pub type ParquetBatcher = ObjectBatcher<ParquetLayout>;

#[derive(Debug, Clone)]
pub struct ParquetLayout {
    pub prefix: String,
}

impl ObjectLayout for ParquetLayout {
    type Row = EnrichedTick;
    type Encoder = GrowingLakeFile;
    const SINK: SinkKind = SinkKind::Lake;
    const CONTENT_TYPE: &'static str = "application/vnd.apache.parquet";

    fn rows(batch: &ShardBatch) -> &[Arc<[EnrichedTick]>] {
        &batch.ticks
    }

    fn folder(&self) -> String {
        format!("{}ticks/", self.prefix)
    }

    fn segments<'a>(
        &self,
        shard_id: &str,
        rows: &[&'a EnrichedTick],
    ) -> Vec<Segment<'a, EnrichedTick>> {
        day_segments(&self.prefix, shard_id, rows)
    }

    fn encoder(&self) -> Result<GrowingLakeFile, String> {
        GrowingLakeFile::new().map_err(|e| e.to_string())
    }

    fn count(metrics: &Metrics, files: usize, rows: usize) {
        metrics.add(Counter::ParquetFilesWritten, files as u64);
        metrics.add(Counter::ParquetRowsWritten, rows as u64);
    }
}

impl FileEncoder<EnrichedTick> for GrowingLakeFile {
    fn append(&mut self, rows: &[&EnrichedTick]) -> Result<(), String> {
        GrowingLakeFile::append(self, rows).map_err(|e| e.to_string())
    }

    fn size(&self) -> u64 {
        GrowingLakeFile::size(self)
    }

    fn take_bytes(&mut self) -> Vec<u8> {
        GrowingLakeFile::take_bytes(self)
    }

    fn finish(self) -> Result<Vec<u8>, String> {
        GrowingLakeFile::finish(self).map_err(|e| e.to_string())
    }
}
