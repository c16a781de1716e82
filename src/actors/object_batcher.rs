//! A sink that collects one shard's rows between two barriers and writes them as objects at the
//! barrier: the shape shared by the Parquet batcher and the dead-letter writer.
//!
//! Object keys name the shard and the first position of the file, and files roll only at
//! barriers (checkpoint candidates). Before a shard's files up to a barrier are written, its
//! previous barrier must be committed and the files' end reserved ([`crate::barrier::files`]): a
//! replay after a crash, or a new owner, then starts exactly where the newest files start and
//! ends them at the same place, so it overwrites them with the same rows instead of writing
//! other rows under the same keys or the same rows under new keys.
//!
//! A shard's files are encoded (on a blocking thread) and written apart from the actor, which
//! meanwhile takes the other shards' batches: encoding a barrier's rows is the heaviest step of
//! any sink, and no reader should wait on it. A shard has one write at a time; its next barrier
//! batch is taken once the previous write is done, which bounds the rows held per shard.
//!
//! The sink runs in its span `sink{sink}`, and a shard's write in a child span
//! `shard{shard_id, generation}` ([`super::span`]).

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;
use bytes::Bytes;
use tokio::sync::Semaphore;

use super::sink::{BackgroundWrite, SinkLinks};
use super::span;
use crate::barrier::{CommittedPositions, FileEnds, ShardBatch, SinkError, SinkKind};
use crate::health::Concern;
use crate::lease::Fence;
use crate::metrics::Metrics;
use crate::model::ids::ShardId;
use crate::model::tick::Position;
use crate::objects::{ObjectError, ObjectStore};
use crate::retry::{Stopped, persistently};

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
    /// Where the shard's writes log: made once per reader, not per batch.
    span: tracing::Span,
    chunks: Vec<Arc<[R]>>,
    /// The shard's previous barrier; the next files wait for its commit.
    last_barrier: Option<Position>,
    /// The shard's latest write (its files, then their acknowledgement), running apart from the
    /// actor so that encoding one shard's files holds up no other shard's batches. The next write
    /// of the shard starts once it is done, so a shard has one write at a time, in order.
    writing: Option<BackgroundWrite>,
}

impl<R> ShardFiles<R> {
    fn new(shard_id: &ShardId, generation: u64) -> Self {
        Self {
            generation,
            span: span::shard(shard_id, generation),
            chunks: Vec::new(),
            last_barrier: None,
            writing: None,
        }
    }

    /// A newer reader took the shard: what the older one collected is dropped (the new reader
    /// reads it again), but its write in progress still goes first.
    fn restart(&mut self, shard_id: &ShardId, generation: u64) {
        *self = Self {
            writing: self.writing.take(),
            ..Self::new(shard_id, generation)
        };
    }
}

pub struct ObjectBatcher<L: ObjectLayout> {
    layout: L,
    objects: Arc<dyn ObjectStore>,
    committed: Arc<CommittedPositions>,
    file_ends: Arc<FileEnds>,
    links: SinkLinks,
    shards: HashMap<ShardId, ShardFiles<L::Row>>,
    /// As many shards' files are encoded at a time as there are cores: when several shards
    /// reach their barriers close together (as every shard does at the end of a stream), more
    /// would hold more encoders' buffers at once and finish no sooner.
    encoding: Arc<Semaphore>,
}

impl<L: ObjectLayout> ObjectBatcher<L> {
    pub fn new(
        layout: L,
        objects: Arc<dyn ObjectStore>,
        committed: Arc<CommittedPositions>,
        file_ends: Arc<FileEnds>,
        links: SinkLinks,
    ) -> Self {
        Self {
            layout,
            objects,
            committed,
            file_ends,
            links,
            shards: HashMap::new(),
            encoding: Arc::new(Semaphore::new(
                std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            )),
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
        let files = self
            .shards
            .entry(batch.shard_id.clone())
            .or_insert_with(|| ShardFiles::new(&batch.shard_id, batch.generation()));
        if batch.generation() < files.generation {
            // Left over from a reader that lost the shard: its rows are read again by the owner.
            return AtomicResponse::new(Box::pin(fut::ready(Ok(()))));
        }
        if batch.generation() > files.generation {
            files.restart(&batch.shard_id, batch.generation());
        }
        let chunks = L::rows(&batch).iter().filter(|chunk| !chunk.is_empty());
        files.chunks.extend(chunks.cloned());
        let Some(barrier) = batch.barrier else {
            return AtomicResponse::new(Box::pin(fut::ready(Ok(()))));
        };
        let chunks = std::mem::take(&mut files.chunks);
        let wait_for = files.last_barrier.replace(barrier.clone());
        let write = ShardWrite {
            layout: self.layout.clone(),
            objects: self.objects.clone(),
            committed: self.committed.clone(),
            file_ends: self.file_ends.clone(),
            links: self.links.clone(),
            encoding: self.encoding.clone(),
            shard_id: batch.shard_id.clone(),
            fence: batch.fence.clone(),
            chunks,
            wait_for,
            barrier,
        };
        // The batch is taken once the shard's previous write is done: a shard holds at most one
        // checkpoint's rows being written beside the ones it collects.
        let previous = BackgroundWrite::finished(files.writing.take());
        let shard_id = batch.shard_id;
        let shard_span = files.span.clone();
        let work = previous.into_actor(self).map(move |result, act, _| {
            result?;
            let _shard = shard_span.enter();
            let started = BackgroundWrite::spawn(L::SINK, act.links.fatal.clone(), write.run());
            if let Some(files) = act.shards.get_mut(&shard_id) {
                files.writing = Some(started);
            }
            Ok(())
        });
        AtomicResponse::new(Box::pin(work))
    }
}

/// One shard's rows up to a barrier: written as objects, then acknowledged.
struct ShardWrite<L: ObjectLayout> {
    layout: L,
    objects: Arc<dyn ObjectStore>,
    committed: Arc<CommittedPositions>,
    file_ends: Arc<FileEnds>,
    links: SinkLinks,
    encoding: Arc<Semaphore>,
    shard_id: ShardId,
    fence: Fence,
    chunks: Vec<Arc<[L::Row]>>,
    /// The barrier of the shard's previous files, which must be committed first.
    wait_for: Option<Position>,
    barrier: Position,
}

impl<L: ObjectLayout> ShardWrite<L> {
    async fn run(self) -> Result<(), SinkError> {
        let Self {
            layout,
            objects,
            committed,
            file_ends,
            links,
            encoding,
            shard_id,
            fence,
            chunks,
            wait_for,
            barrier,
        } = self;
        let generation = fence.counter;
        // Even a barrier without rows waits for the previous commit: its acknowledgement says that
        // everything before it is written, which a previous write given up would make untrue.
        if let Some(previous) = wait_for
            && !committed
                .wait_at_least(&shard_id, &previous, generation)
                .await
        {
            // The reader lost the shard before its previous barrier was committed: these rows
            // are not this process's to write any more.
            return Ok(());
        }
        if !links.may_write(&shard_id, generation) {
            return Ok(());
        }
        if !chunks.is_empty() {
            let may_write = || links.may_write(&shard_id, generation);
            let report = links.reporting_as(Concern::Checkpoints);
            match file_ends
                .reserve(
                    &fence,
                    committed.get(&shard_id),
                    &barrier,
                    report,
                    may_write,
                )
                .await
            {
                Ok(()) => {}
                Err(Stopped::Rejected(_)) => {
                    tracing::warn!("Lease lost; the shard's files are not written.");
                    return Ok(());
                }
                Err(Stopped::Abandoned) => return Ok(()),
            }
            // Encoding is the heavy part (a whole barrier's rows at once): on a thread of its own,
            // so the actor's thread goes on taking batches.
            let shard = shard_id.clone();
            let turn = encoding.acquire().await.expect("never closed");
            let encoded = tokio::task::spawn_blocking(move || {
                let rows: Vec<&L::Row> = chunks.iter().flat_map(|chunk| chunk.iter()).collect();
                layout.encode(&shard, &rows)
            })
            .await;
            drop(turn);
            let encoded = encoded
                .map_err(|e| SinkError::new(L::SINK, e))?
                .map_err(|e| SinkError::new(L::SINK, e))?;
            for object in &encoded {
                let put = || objects.put(&object.key, object.body.clone(), object.content_type);
                let report = links.reporting(L::SINK);
                match persistently(report, ObjectError::failure, may_write, put).await {
                    Ok(()) => {}
                    // What is not written is read again by the shard's next owner.
                    Err(Stopped::Abandoned) => return Ok(()),
                    Err(Stopped::Rejected(error)) => return Err(SinkError::new(L::SINK, error)),
                }
                tracing::debug!(key = %object.key, rows = object.rows, "Object written.");
            }
            L::count(&links.metrics, &encoded);
        }
        links
            .acknowledge(L::SINK, shard_id, generation, barrier)
            .await
    }
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;
    use tokio::sync::Semaphore;

    use super::*;
    use crate::actors::parquet_batcher::{ParquetBatcher, ParquetLayout};
    use crate::actors::test_support::{
        answered_ok, eventually, position, sink_links, still_waiting, tick_batch,
    };
    use crate::barrier::Propose;
    use crate::checkpoint::file::FileCheckpointStore;
    use crate::objects::ObjectError;
    use crate::objects::local::LocalObjectStore;

    /// A local store whose writes of one shard's objects wait for permits.
    struct GatedStore {
        inner: LocalObjectStore,
        gated_shard: &'static str,
        gate: Semaphore,
    }

    #[async_trait]
    impl ObjectStore for GatedStore {
        async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<(), ObjectError> {
            if key.contains(self.gated_shard) {
                self.gate.acquire().await.expect("gate open").forget();
            }
            self.inner.put(key, body, content_type).await
        }
        async fn get(&self, key: &str) -> Result<Option<Bytes>, ObjectError> {
            self.inner.get(key).await
        }
        async fn delete(&self, key: &str) -> Result<(), ObjectError> {
            self.inner.delete(key).await
        }
        async fn list(&self, prefix: &str) -> Result<Vec<String>, ObjectError> {
            self.inner.list(prefix).await
        }
    }

    async fn files(objects: &GatedStore, shard: &str) -> usize {
        let keys = objects.list("ticks/").await.unwrap();
        keys.iter().filter(|key| key.contains(shard)).count()
    }

    #[actix::test]
    async fn one_shard_being_written_holds_up_no_other_and_writes_one_set_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let (slow, fast) = ("shardId-000000000001", "shardId-000000000002");
        let objects = Arc::new(GatedStore {
            inner: LocalObjectStore::new(dir.path().to_path_buf()),
            gated_shard: slow,
            gate: Semaphore::new(0),
        });
        let (links, committed) = sink_links(dir.path(), SinkKind::Lake);
        let layout = ParquetLayout {
            prefix: String::new(),
        };
        let file_ends = Arc::new(FileEnds::new(Arc::new(FileCheckpointStore::new(
            dir.path().join("checkpoints"),
        ))));
        for shard in [slow, fast] {
            committed.begin(&shard.into(), 1);
            links
                .leases
                .renewed(&shard.into(), 1, std::time::Instant::now());
        }
        let lake =
            ParquetBatcher::new(layout, objects.clone(), committed.clone(), file_ends, links)
                .start();

        for shard in [slow, fast] {
            let reply = lake.send(tick_batch(shard, 10, true));
            assert!(
                answered_ok(reply).await,
                "a barrier batch is taken before its files are written"
            );
        }
        assert!(
            eventually(async || files(&objects, fast).await == 1).await,
            "the other shard's file is written while the first one's write waits"
        );
        assert_eq!(files(&objects, slow).await, 0);

        // The slow shard's next files wait for its first ones, so its batch is not taken yet.
        committed.publish(&slow.into(), &position(10));
        let next = actix::spawn(lake.send(tick_batch(slow, 20, true)));
        assert!(
            still_waiting(&next).await,
            "taken while the shard's previous write runs"
        );

        objects.gate.add_permits(2);
        next.await.unwrap().unwrap().unwrap();
        assert!(eventually(async || files(&objects, slow).await == 2).await);
    }

    /// The last barrier of a stopping reader often carries no rows; it must not be acknowledged
    /// over a write given up before it, or its checkpoint would skip that write's rows.
    #[actix::test]
    async fn a_barrier_without_rows_is_not_acknowledged_over_files_given_up() {
        let dir = tempfile::tempdir().unwrap();
        let shard = "shardId-000000000001";
        let objects = Arc::new(LocalObjectStore::new(dir.path().join("lake")));
        let (links, committed) = sink_links(dir.path(), SinkKind::Lake);
        let file_ends = Arc::new(FileEnds::new(Arc::new(FileCheckpointStore::new(
            dir.path().join("checkpoints"),
        ))));
        committed.begin(&shard.into(), 1);
        let (checkpointer, leases) = (links.checkpointer.clone(), links.leases.clone());
        leases.renewed(&shard.into(), 1, std::time::Instant::now());
        let lake = ParquetBatcher::new(
            ParquetLayout {
                prefix: String::new(),
            },
            objects.clone(),
            committed.clone(),
            file_ends,
            links,
        )
        .start();
        // Only the last barrier is proposed: the files up to 20 wait for a commit at 10 that never
        // comes, until the reader is gone and they are given up.
        checkpointer.do_send(Propose {
            shard_id: shard.into(),
            fence: tick_batch(shard, 30, true).fence,
            position: position(30),
            snapshot: Default::default(),
            last: true,
            shard_end: false,
            records: 3,
            newest_arrival_ms: 0,
        });
        for sequence in [10, 20] {
            assert!(answered_ok(lake.send(tick_batch(shard, sequence, true))).await);
        }
        committed.retire(&shard.into(), 1);
        let empty = ShardBatch {
            ticks: Arc::new([]),
            ..tick_batch(shard, 30, true)
        };
        assert!(answered_ok(lake.send(empty)).await);
        assert!(
            !eventually(async || committed.get(&shard.into()).is_some()).await,
            "nothing is committed over the files given up"
        );
        assert_eq!(objects.list("ticks/").await.unwrap().len(), 1);
    }
}
