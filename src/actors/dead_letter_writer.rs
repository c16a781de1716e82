//! The dead-letter writer: rejected records of each shard, between two checkpoints, as JSON-lines
//! objects under `{prefix}dead-letters/dt=YYYY-MM-DD/` (by arrival time), each with its reason,
//! shard and sequence number.

use std::sync::Arc;

use bytes::Bytes;

use super::object_batcher::{EncodedObject, ObjectBatcher, ObjectLayout};
use crate::barrier::{ShardBatch, SinkKind};
use crate::metrics::Metrics;
use crate::model::dead_letter::{DeadLetter, encode_dead_letters};

pub type DeadLetterWriter = ObjectBatcher<DeadLetterLayout>;

#[derive(Debug, Clone)]
pub struct DeadLetterLayout {
    pub prefix: String,
}

impl ObjectLayout for DeadLetterLayout {
    type Row = DeadLetter;
    const SINK: SinkKind = SinkKind::DeadLetters;

    fn rows(batch: &ShardBatch) -> &[Arc<[DeadLetter]>] {
        std::slice::from_ref(&batch.dead_letters)
    }

    fn encode(&self, shard_id: &str, rows: &[&DeadLetter]) -> Result<Vec<EncodedObject>, String> {
        Ok(encode_dead_letters(&self.prefix, shard_id, rows)
            .into_iter()
            .map(|(key, body, rows)| EncodedObject {
                key,
                body: Bytes::from(body),
                content_type: "application/x-ndjson",
                rows,
            })
            .collect())
    }

    fn count(_: &Metrics, _: &[EncodedObject]) {
        // Dead letters are counted when they are rejected.
    }
}
