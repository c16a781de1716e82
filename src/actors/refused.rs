//! Where the items an output refuses on their own go (a table item DynamoDB finds invalid, an
//! alert SNS will not take): each is kept as a dead letter with the output's reason, one object
//! per item, so the rest of the stream flows and nothing is lost silently.
//!
//! Objects are named after the item (its shard and position, or a digest of its id), so a replay
//! that meets the same refusal replaces the object with the same line.

use std::sync::Arc;

use bytes::Bytes;

use super::sink::SinkLinks;
use crate::barrier::SinkKind;
use crate::metrics::Counter;
use crate::model::dead_letter::{DeadLetter, refused_object_key};
use crate::objects::{ObjectError, ObjectStore};
use crate::retry::persistently;

#[derive(Clone)]
pub struct RefusedItems {
    pub objects: Arc<dyn ObjectStore>,
    /// The lake's prefix: the dead letters' folder is under it.
    pub prefix: String,
}

impl RefusedItems {
    /// Keeps `letter`, refused by `output` (`table`, `alerts`), as the object named `name`.
    pub async fn keep(&self, output: &str, name: &str, letter: DeadLetter, links: &SinkLinks) {
        let key = refused_object_key(&self.prefix, letter.arrival_time_ms, output, name);
        tracing::error!(reason = %letter.reason, %key, "An item was refused; it is kept as a dead letter.");
        let mut line = letter.to_json_line().into_bytes();
        line.push(b'\n');
        let body = Bytes::from(line);
        let put = || self.objects.put(&key, body.clone(), "application/x-ndjson");
        let report = links.reporting(SinkKind::DeadLetters);
        // Never abandoned: an object store that refuses too is reported and tried again.
        let _ = persistently(report, ObjectError::failure, || true, put).await;
        links.metrics.add(Counter::ItemsRefused, 1);
        links.metrics.add_rejections(letter.reason_code, 1);
    }
}
