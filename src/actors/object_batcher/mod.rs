//! A sink that writes one shard's rows into growing files: the shape shared by the Parquet
//! batcher and the dead-letter writer.
//!
//! At each barrier the rows since the last one are appended to the shard's open file of their
//! date (for the lake, as a row group sorted by symbol then time), and the file's bytes are
//! uploaded in parts as they grow ([`open_file`]). Files close only at barriers that close files
//! (the reader decides which: `lake.target-file-size`, `lake.max-file-age`, its last read, a
//! reserved end), and only those barriers are acknowledged: they are the checkpoint candidates.
//!
//! Object keys name the shard and the first position of the file. Before a shard's files are
//! completed, its previous files must be committed and the files' end reserved
//! ([`crate::barrier::files`]): a replay after a crash, or a new owner, then starts exactly where
//! the newest files start and ends them at the same place, so it overwrites them with the same
//! rows instead of writing other rows under the same keys or the same rows under new keys.
//!
//! A shard's rows are encoded (on a blocking thread) and uploaded apart from the actor, which
//! meanwhile takes the other shards' batches: encoding is the heaviest step of any sink, and no
//! reader should wait on it. A shard has one write at a time; its next barrier batch is taken
//! once the previous write is done, which bounds the rows held per shard.
//!
//! The sink runs in its span `sink{sink}`, and a shard's write in a child span
//! `shard{shard_id, generation}` ([`super::span`]).

mod open_file;
mod write;

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;
use tokio::sync::Semaphore;

use self::open_file::OpenFile;
use self::write::ShardWrite;
use super::sink::{BackgroundWrite, SinkLinks};
use super::span;
use crate::barrier::{
    CommittedPositions, FileEnds, OpenFileSizes, ShardBatch, SinkError, SinkKind,
};
use crate::metrics::Metrics;
use crate::model::ids::ShardId;
use crate::model::lake::Segment;
use crate::model::tick::Position;
use crate::objects::ObjectStore;

/// What a particular object sink collects and how it encodes it.
pub trait ObjectLayout: Clone + Unpin + Send + 'static {
    type Row: Send + Sync + 'static;
    type Encoder: FileEncoder<Self::Row>;
    const SINK: SinkKind;
    const CONTENT_TYPE: &'static str;

    /// This sink's rows of a batch, in chunks that are each in stream order.
    fn rows(batch: &ShardBatch) -> &[Arc<[Self::Row]>];

    /// The folder every file of the sink lies under.
    fn folder(&self) -> String;

    /// Splits one shard's rows by the file (date) they go to.
    fn segments<'a>(&self, shard_id: &str, rows: &[&'a Self::Row]) -> Vec<Segment<'a, Self::Row>>;

    fn encoder(&self) -> Result<Self::Encoder, String>;

    /// Counts files written, with their rows, in the metrics.
    fn count(metrics: &Metrics, files: usize, rows: usize);
}

/// One file's encoding, a segment of rows at a time; its bytes are taken as they are made.
pub trait FileEncoder<R>: Send + 'static {
    fn append(&mut self, rows: &[&R]) -> Result<(), String>;
    /// Bytes made so far, taken or not (an encoder may buffer a few before giving them).
    fn size(&self) -> u64;
    fn take_bytes(&mut self) -> Vec<u8>;
    /// The bytes not taken yet, and the file's end.
    fn finish(self) -> Result<Vec<u8>, String>;
}

/// A shard's open files, one per date, passed from one write of the shard to the next.
struct OpenFiles<E> {
    files: Vec<OpenFile<E>>,
    /// Uploads an earlier owner left unfinished are aborted (once per reader).
    recovered: bool,
    /// A write was given up (the lease may have run out): this reader's later rows are not
    /// written either, so no barrier after the lost rows is acknowledged. The next reader of the
    /// shard reads them again.
    given_up: bool,
}

struct ShardFiles<L: ObjectLayout> {
    /// The shard's reader generation these rows belong to.
    generation: u64,
    /// Where the shard's writes log: made once per reader, not per batch.
    span: tracing::Span,
    chunks: Vec<Arc<[L::Row]>>,
    /// The shard's previous barrier that closed files; the next files complete after its commit.
    last_closing: Option<Position>,
    open: Arc<tokio::sync::Mutex<OpenFiles<L::Encoder>>>,
    /// The shard's latest write, running apart from the actor so that encoding one shard's rows
    /// holds up no other shard's batches. The next write of the shard starts once it is done,
    /// so a shard has one write at a time, in order.
    writing: Option<BackgroundWrite>,
}

impl<L: ObjectLayout> ShardFiles<L> {
    fn new(shard_id: &ShardId, generation: u64) -> Self {
        Self {
            generation,
            span: span::shard(shard_id, generation),
            chunks: Vec::new(),
            last_closing: None,
            open: Arc::new(tokio::sync::Mutex::new(OpenFiles {
                files: Vec::new(),
                recovered: false,
                given_up: false,
            })),
            writing: None,
        }
    }

    /// A newer reader took the shard: what the older one collected is dropped (the new reader
    /// reads it again; its uploads are aborted by the new reader's first write), but its write
    /// in progress still goes first.
    fn restart(&mut self, shard_id: &ShardId, generation: u64) {
        *self = Self {
            writing: self.writing.take(),
            ..Self::new(shard_id, generation)
        };
    }
}

/// The boards an object sink shares with the readers and the checkpointer.
#[derive(Clone)]
pub struct FileBoards {
    pub committed: Arc<CommittedPositions>,
    pub file_ends: Arc<FileEnds>,
    pub sizes: Arc<OpenFileSizes>,
}

pub struct ObjectBatcher<L: ObjectLayout> {
    layout: L,
    objects: Arc<dyn ObjectStore>,
    boards: FileBoards,
    links: SinkLinks,
    shards: HashMap<ShardId, ShardFiles<L>>,
    /// As many shards' rows are encoded at a time as there are cores: when several shards
    /// reach their barriers close together, more would hold more encoders' buffers at once and
    /// finish no sooner.
    encoding: Arc<Semaphore>,
}

impl<L: ObjectLayout> ObjectBatcher<L> {
    pub fn new(
        layout: L,
        objects: Arc<dyn ObjectStore>,
        boards: FileBoards,
        links: SinkLinks,
    ) -> Self {
        Self {
            layout,
            objects,
            boards,
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
            self.boards.sizes.post(&batch.shard_id, L::SINK, 0);
        }
        let chunks = L::rows(&batch).iter().filter(|chunk| !chunk.is_empty());
        files.chunks.extend(chunks.cloned());
        let Some(barrier) = batch.barrier else {
            return AtomicResponse::new(Box::pin(fut::ready(Ok(()))));
        };
        if files.chunks.is_empty() && !batch.closes_files {
            return AtomicResponse::new(Box::pin(fut::ready(Ok(()))));
        }
        let closing = batch
            .closes_files
            .then(|| (files.last_closing.replace(barrier.clone()), barrier));
        let write = ShardWrite {
            layout: self.layout.clone(),
            objects: self.objects.clone(),
            boards: self.boards.clone(),
            links: self.links.clone(),
            encoding: self.encoding.clone(),
            shard_id: batch.shard_id.clone(),
            fence: batch.fence.clone(),
            chunks: std::mem::take(&mut files.chunks),
            open: files.open.clone(),
            closing,
        };
        // The batch is taken once its write begins, after the shard's previous one: a shard
        // holds at most one barrier's rows being written beside the ones it collects.
        let _shard = files.span.clone().entered();
        let previous = files.writing.take();
        let fatal = self.links.fatal.clone();
        let (writing, begun) = BackgroundWrite::spawn_after(previous, L::SINK, fatal, write.run());
        files.writing = Some(writing);
        AtomicResponse::new(Box::pin(begun.into_actor(self)))
    }
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;
    use bytes::Bytes;
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
        async fn unfinished_uploads(
            &self,
            prefix: &str,
        ) -> Result<Vec<crate::objects::Upload>, ObjectError> {
            self.inner.unfinished_uploads(prefix).await
        }
    }

    fn boards(dir: &std::path::Path, committed: &Arc<CommittedPositions>) -> FileBoards {
        FileBoards {
            committed: committed.clone(),
            file_ends: Arc::new(FileEnds::new(Arc::new(FileCheckpointStore::new(
                dir.join("checkpoints"),
            )))),
            sizes: Arc::default(),
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
        let boards = boards(dir.path(), &committed);
        for shard in [slow, fast] {
            committed.begin(&shard.into(), 1);
            links
                .leases
                .renewed(&shard.into(), 1, std::time::Instant::now());
        }
        let lake = ParquetBatcher::new(layout, objects.clone(), boards, links).start();

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
        let boards = boards(dir.path(), &committed);
        committed.begin(&shard.into(), 1);
        let (checkpointer, leases) = (links.checkpointer.clone(), links.leases.clone());
        leases.renewed(&shard.into(), 1, std::time::Instant::now());
        let lake = ParquetBatcher::new(
            ParquetLayout {
                prefix: String::new(),
            },
            objects.clone(),
            boards,
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

    /// Barriers that do not close files add row groups to the open file, which nothing sees;
    /// the barrier that closes it completes it, one file with every row, and is committed.
    #[actix::test]
    async fn a_file_grows_over_barriers_and_appears_whole_where_it_closes() {
        let dir = tempfile::tempdir().unwrap();
        let shard = "shardId-000000000001";
        let objects = Arc::new(LocalObjectStore::new(dir.path().join("lake")));
        let (links, committed) = sink_links(dir.path(), SinkKind::Lake);
        let boards = boards(dir.path(), &committed);
        let sizes = boards.sizes.clone();
        committed.begin(&shard.into(), 1);
        let checkpointer = links.checkpointer.clone();
        links
            .leases
            .renewed(&shard.into(), 1, std::time::Instant::now());
        let layout = ParquetLayout {
            prefix: String::new(),
        };
        let lake = ParquetBatcher::new(layout, objects.clone(), boards, links).start();
        for sequence in [10, 20] {
            let open = ShardBatch {
                closes_files: false,
                ..tick_batch(shard, sequence, true)
            };
            assert!(answered_ok(lake.send(open)).await);
        }
        assert!(
            eventually(async || sizes.largest(&shard.into()) > 0).await,
            "the open file's size is posted for the reader"
        );
        assert!(objects.list("ticks/").await.unwrap().is_empty());
        checkpointer.do_send(Propose {
            shard_id: shard.into(),
            fence: tick_batch(shard, 30, true).fence,
            position: position(30),
            snapshot: Default::default(),
            last: false,
            shard_end: false,
            records: 3,
            newest_arrival_ms: 0,
        });
        assert!(answered_ok(lake.send(tick_batch(shard, 30, true))).await);
        assert!(eventually(async || committed.get(&shard.into()) == Some(position(30))).await);
        let keys = objects.list("ticks/").await.unwrap();
        assert_eq!(keys.len(), 1, "{keys:?}");
        let body = objects.get(&keys[0]).await.unwrap().unwrap();
        let reader =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(body).unwrap();
        assert_eq!(
            reader.metadata().num_row_groups(),
            3,
            "a row group per barrier"
        );
        assert_eq!(reader.metadata().file_metadata().num_rows(), 3);
        assert_eq!(sizes.largest(&shard.into()), 0, "no file is open");
    }

    /// Rows given up while the lease could not be trusted are never followed by an
    /// acknowledgement, even once the lease is trusted again: it would commit over them.
    #[actix::test]
    async fn nothing_is_acknowledged_after_rows_given_up() {
        let dir = tempfile::tempdir().unwrap();
        let shard = "shardId-000000000001";
        let objects = Arc::new(LocalObjectStore::new(dir.path().join("lake")));
        let (links, committed) = sink_links(dir.path(), SinkKind::Lake);
        let boards = boards(dir.path(), &committed);
        committed.begin(&shard.into(), 1);
        let (checkpointer, leases) = (links.checkpointer.clone(), links.leases.clone());
        let layout = ParquetLayout {
            prefix: String::new(),
        };
        let lake = ParquetBatcher::new(layout, objects.clone(), boards, links).start();
        // Not trusted: the barrier's rows are given up.
        let open = ShardBatch {
            closes_files: false,
            ..tick_batch(shard, 10, true)
        };
        assert!(answered_ok(lake.send(open)).await);
        leases.renewed(&shard.into(), 1, std::time::Instant::now());
        checkpointer.do_send(Propose {
            shard_id: shard.into(),
            fence: tick_batch(shard, 20, true).fence,
            position: position(20),
            snapshot: Default::default(),
            last: false,
            shard_end: false,
            records: 2,
            newest_arrival_ms: 0,
        });
        assert!(answered_ok(lake.send(tick_batch(shard, 20, true))).await);
        assert!(
            !eventually(async || committed.get(&shard.into()).is_some()).await,
            "committed over rows given up"
        );
        assert!(objects.list("ticks/").await.unwrap().is_empty());
    }
}
