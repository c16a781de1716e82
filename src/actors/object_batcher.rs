//! A sink that collects one shard's rows between two barriers and writes them as objects at the
//! barrier: the shape shared by the Parquet batcher and the dead-letter writer.
//!
//! Object keys name the shard and the first position of the file, and files roll only at
//! barriers (checkpoint candidates). Before a shard's next files are written, the previous ones
//! must be covered by a committed checkpoint: a replay after a crash then starts exactly where
//! the newest files start, and overwrites them instead of writing the same rows under new keys.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;

use actix::prelude::*;
use backon::Retryable;
use bytes::Bytes;

use super::checkpointer::CommittedPositions;
use super::sink::{ShardBatch, SinkError, SinkKind, SinkLinks};
use crate::metrics::Metrics;
use crate::model::tick::Position;
use crate::objects::ObjectStore;
use crate::stream::ShardId;

/// One object ready to write.
#[derive(Debug, Clone)]
pub struct EncodedObject {
    pub key: String,
    pub body: Bytes,
    pub content_type: &'static str,
    pub rows: usize,
}

/// What a particular object sink collects and how it encodes it.
pub trait ObjectLayout: Clone + Unpin + Send + 'static {
    type Row: Send + Sync + 'static;
    const SINK: SinkKind;

    /// This sink's rows of a batch, in chunks that are each in stream order.
    fn rows(batch: &ShardBatch) -> &[Arc<[Self::Row]>];

    /// Encodes one shard's rows (chunk after chunk) into objects.
    fn encode(&self, shard_id: &str, rows: &[&Self::Row]) -> Result<Vec<EncodedObject>, String>;

    /// Counts written objects in the metrics.
    fn count(metrics: &Metrics, objects: &[EncodedObject]);
}

struct ShardFiles<R> {
    /// The shard's reader generation these rows belong to.
    generation: u64,
    chunks: Vec<Arc<[R]>>,
    /// Barrier of the newest files written by this process; the next files wait for its commit.
    written_through: Option<Position>,
}

pub struct ObjectBatcher<L: ObjectLayout> {
    layout: L,
    objects: Arc<dyn ObjectStore>,
    committed: Arc<CommittedPositions>,
    links: SinkLinks,
    shards: HashMap<ShardId, ShardFiles<L::Row>>,
}

impl<L: ObjectLayout> ObjectBatcher<L> {
    pub fn new(
        layout: L,
        objects: Arc<dyn ObjectStore>,
        committed: Arc<CommittedPositions>,
        links: SinkLinks,
    ) -> Self {
        Self {
            layout,
            objects,
            committed,
            links,
            shards: HashMap::new(),
        }
    }
}

impl<L: ObjectLayout> Actor for ObjectBatcher<L> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(self.links.mailbox);
    }
}

impl<L: ObjectLayout> Handler<ShardBatch> for ObjectBatcher<L> {
    type Result = AtomicResponse<Self, Result<(), SinkError>>;

    fn handle(&mut self, batch: ShardBatch, _: &mut Context<Self>) -> Self::Result {
        let fresh = || ShardFiles {
            generation: batch.generation,
            chunks: Vec::new(),
            written_through: None,
        };
        let files = self
            .shards
            .entry(batch.shard_id.clone())
            .or_insert_with(fresh);
        if batch.generation < files.generation {
            // Left over from a reader that lost the shard: its rows are read again by the owner.
            return AtomicResponse::new(Box::pin(fut::ready(Ok(()))));
        }
        if batch.generation > files.generation {
            *files = fresh();
        }
        let chunks = L::rows(&batch).iter().filter(|chunk| !chunk.is_empty());
        files.chunks.extend(chunks.cloned());
        let Some(barrier) = batch.barrier else {
            return AtomicResponse::new(Box::pin(fut::ready(Ok(()))));
        };
        let chunks = std::mem::take(&mut files.chunks);
        let wait_for = match chunks.is_empty() {
            true => None,
            false => files.written_through.replace(barrier.clone()),
        };
        let (layout, objects, committed, links) = (
            self.layout.clone(),
            self.objects.clone(),
            self.committed.clone(),
            self.links.clone(),
        );
        let (shard_id, generation) = (batch.shard_id, batch.generation);
        let work = async move {
            if !chunks.is_empty() {
                if let Some(previous) = wait_for
                    && !committed
                        .wait_at_least(&shard_id, &previous, generation)
                        .await
                {
                    // The reader lost the shard before its previous files were committed: these
                    // rows are not this process's to write any more.
                    return Ok(());
                }
                let rows: Vec<&L::Row> = chunks.iter().flat_map(|chunk| chunk.iter()).collect();
                let encoded = layout
                    .encode(&shard_id, &rows)
                    .map_err(|e| SinkError::new(L::SINK, e))?;
                for object in &encoded {
                    (|| objects.put(&object.key, object.body.clone(), object.content_type))
                        .retry(crate::retry::backoff())
                        .when(|e| e.is_retryable())
                        .notify(|e, wait| tracing::warn!(error = %e, ?wait, "Object write failed, retrying."))
                        .await
                        .map_err(|e| SinkError::new(L::SINK, e))?;
                    tracing::debug!(key = %object.key, rows = object.rows, "Object written.");
                }
                L::count(&links.metrics, &encoded);
            }
            links
                .acknowledge(L::SINK, shard_id, generation, barrier)
                .await
        };
        let work: Pin<Box<dyn Future<Output = _>>> = Box::pin(work);
        AtomicResponse::new(Box::pin(work.into_actor(self)))
    }
}
