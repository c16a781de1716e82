//! The dead-letter writer: rejected records of each shard as JSON-lines files under
//! `{prefix}dead-letters/dt=YYYY-MM-DD/` (by arrival time), each with its reason, shard and
//! sequence number; its files close with the lake's.

use std::sync::Arc;

use super::object_batcher::{FileEncoder, ObjectBatcher, ObjectLayout};
use crate::barrier::{ShardBatch, SinkKind};
use crate::metrics::Metrics;
use crate::model::dead_letter::{DeadLetter, day_segments, json_lines};
use crate::model::lake::Segment;

pub type DeadLetterWriter = ObjectBatcher<DeadLetterLayout>;

#[derive(Debug, Clone)]
pub struct DeadLetterLayout {
    pub prefix: String,
}

/// A JSON-lines file: its lines are its bytes as they come.
#[derive(Debug, Default)]
pub struct JsonLines {
    made: Vec<u8>,
    size: u64,
}

impl ObjectLayout for DeadLetterLayout {
    type Row = DeadLetter;
    type Encoder = JsonLines;
    const SINK: SinkKind = SinkKind::DeadLetters;
    const CONTENT_TYPE: &'static str = "application/x-ndjson";

    fn rows(batch: &ShardBatch) -> &[Arc<[DeadLetter]>] {
        std::slice::from_ref(&batch.dead_letters)
    }

    fn folder(&self) -> String {
        format!("{}dead-letters/", self.prefix)
    }

    fn segments<'a>(
        &self,
        shard_id: &str,
        rows: &[&'a DeadLetter],
    ) -> Vec<Segment<'a, DeadLetter>> {
        day_segments(&self.prefix, shard_id, rows)
    }

    fn encoder(&self) -> Result<JsonLines, String> {
        Ok(JsonLines::default())
    }

    fn count(_: &Metrics, _: usize, _: usize) {
        // Dead letters are counted when they are rejected.
    }
}

impl FileEncoder<DeadLetter> for JsonLines {
    fn append(&mut self, rows: &[&DeadLetter]) -> Result<(), String> {
        let lines = json_lines(rows);
        self.size += lines.len() as u64;
        self.made.extend_from_slice(&lines);
        Ok(())
    }

    fn size(&self) -> u64 {
        self.size
    }

    fn take_bytes(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.made)
    }

    fn finish(self) -> Result<Vec<u8>, String> {
        Ok(self.made)
    }
}
