//! One write of a shard's files, apart from the actor: a barrier's rows appended to the open
//! files and their full parts uploaded; at a barrier that closes files, the files completed once
//! the shard's previous files are committed and the end is reserved, then acknowledged.

use std::sync::Arc;

use tokio::sync::{Mutex, Semaphore};

use super::open_file::{FileWriting, FinishedFile, Halt, OpenFile, abort_unfinished};
use super::{FileBoards, FileEncoder, ObjectLayout, OpenFiles};
use crate::actors::sink::SinkLinks;
use crate::barrier::SinkError;
use crate::health::Concern;
use crate::lease::Fence;
use crate::model::ids::ShardId;
use crate::model::tick::Position;
use crate::objects::ObjectStore;
use crate::retry::Stopped;

pub(super) struct ShardWrite<L: ObjectLayout> {
    pub layout: L,
    pub objects: Arc<dyn ObjectStore>,
    pub boards: FileBoards,
    pub links: SinkLinks,
    pub encoding: Arc<Semaphore>,
    pub shard_id: ShardId,
    pub fence: Fence,
    pub chunks: Vec<Arc<[L::Row]>>,
    pub open: Arc<Mutex<OpenFiles<L::Encoder>>>,
    /// The files close at this barrier, after the previous one that closed them is committed.
    pub closing: Option<(Option<Position>, Position)>,
}

/// How a write ends short of its acknowledgement.
enum Stop {
    /// The lease may have run out, or moved on: the next owner writes these rows.
    GivenUp,
    Failed(SinkError),
}

impl<L: ObjectLayout> ShardWrite<L> {
    pub async fn run(self) -> Result<(), SinkError> {
        let mut open = self.open.clone().lock_owned().await;
        if open.given_up {
            // Rows before these are not written: nothing after them may be acknowledged.
            return Ok(());
        }
        match self.write(&mut open).await {
            Ok(()) => Ok(()),
            Err(Stop::GivenUp) => {
                open.given_up = true;
                for file in std::mem::take(&mut open.files) {
                    file.abandon(&self.objects).await;
                }
                self.boards.sizes.post(&self.shard_id, L::SINK, 0);
                Ok(())
            }
            Err(Stop::Failed(error)) => Err(error),
        }
    }

    fn writing(&self) -> FileWriting<'_> {
        FileWriting {
            objects: &self.objects,
            links: &self.links,
            sink: L::SINK,
            shard_id: &self.shard_id,
            generation: self.fence.counter,
        }
    }

    fn halted(error: Halt) -> Stop {
        match error {
            Stopped::Abandoned => Stop::GivenUp,
            Stopped::Rejected(error) => Stop::Failed(SinkError::new(L::SINK, error)),
        }
    }

    async fn write(&self, open: &mut OpenFiles<L::Encoder>) -> Result<(), Stop> {
        if !self.links.may_write(&self.shard_id, self.fence.counter) {
            return Err(Stop::GivenUp);
        }
        if !open.recovered {
            abort_unfinished(&self.writing(), &self.layout.folder())
                .await
                .map_err(Self::halted)?;
            open.recovered = true;
        }
        if !self.chunks.is_empty() {
            self.append(open).await?;
        }
        let Some((previous, barrier)) = &self.closing else {
            return Ok(());
        };
        self.close(open, previous.as_ref(), barrier).await
    }

    /// Appends the barrier's rows to the open files (opening those of new dates) on a blocking
    /// thread, then uploads their full parts.
    async fn append(&self, open: &mut OpenFiles<L::Encoder>) -> Result<(), Stop> {
        let files = std::mem::take(&mut open.files);
        let (layout, shard, chunks) = (
            self.layout.clone(),
            self.shard_id.clone(),
            self.chunks.clone(),
        );
        let turn = self.encoding.acquire().await.expect("never closed");
        let appended =
            tokio::task::spawn_blocking(move || append_rows(&layout, &shard, &chunks, files)).await;
        drop(turn);
        let failed = |e: String| Stop::Failed(SinkError::new(L::SINK, e));
        let (files, result) = appended.map_err(|e| failed(e.to_string()))?;
        open.files = files;
        result.map_err(failed)?;
        let writing = self.writing();
        for file in &mut open.files {
            file.upload_full_parts::<L>(&writing)
                .await
                .map_err(Self::halted)?;
        }
        let largest = open.files.iter().map(OpenFile::size).max().unwrap_or(0);
        self.boards.sizes.post(&self.shard_id, L::SINK, largest);
        Ok(())
    }

    /// Ends the files and completes them, once the shard's previous files are committed and
    /// these files' end reserved; then acknowledges the barrier. Even a barrier without files
    /// waits for the previous commit: its acknowledgement says that everything before it is
    /// written, which a previous write given up would make untrue.
    async fn close(
        &self,
        open: &mut OpenFiles<L::Encoder>,
        previous: Option<&Position>,
        barrier: &Position,
    ) -> Result<(), Stop> {
        let (shard_id, generation) = (&self.shard_id, self.fence.counter);
        let committed = &self.boards.committed;
        if let Some(previous) = previous
            && !committed
                .wait_at_least(shard_id, previous, generation)
                .await
        {
            // The reader lost the shard before its previous files were committed: these rows
            // are not this process's to write any more.
            return Err(Stop::GivenUp);
        }
        if !self.links.may_write(shard_id, generation) {
            return Err(Stop::GivenUp);
        }
        if !open.files.is_empty() {
            self.reserve_end(barrier).await?;
        }
        let files = std::mem::take(&mut open.files);
        let finished = tokio::task::spawn_blocking(move || {
            files
                .into_iter()
                .map(OpenFile::finish)
                .collect::<Result<Vec<FinishedFile>, String>>()
        })
        .await
        .map_err(|e| Stop::Failed(SinkError::new(L::SINK, e)))?
        .map_err(|e| Stop::Failed(SinkError::new(L::SINK, e)))?;
        let writing = self.writing();
        let (count, rows) = (finished.len(), finished.iter().map(|f| f.rows).sum());
        let mut finished = finished.into_iter();
        while let Some(mut file) = finished.next() {
            let completed = file.complete::<L>(&writing).await;
            if !matches!(completed, Ok(true)) {
                file.abandon(&self.objects).await;
                for rest in finished.by_ref() {
                    rest.abandon(&self.objects).await;
                }
            }
            match completed {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!("A file's upload was aborted by a newer owner.");
                    return Err(Stop::GivenUp);
                }
                Err(halt) => return Err(Self::halted(halt)),
            }
        }
        L::count(&self.links.metrics, count, rows);
        self.boards.sizes.post(shard_id, L::SINK, 0);
        self.links
            .acknowledge(L::SINK, shard_id.clone(), generation, barrier.clone())
            .await
            .map_err(Stop::Failed)
    }

    /// Reserves `barrier` as the end of the files after the committed position, fenced.
    async fn reserve_end(&self, barrier: &Position) -> Result<(), Stop> {
        let (shard_id, generation) = (&self.shard_id, self.fence.counter);
        let may_write = || self.links.may_write(shard_id, generation);
        let report = self.links.reporting_as(Concern::Checkpoints);
        let after = self.boards.committed.get(shard_id);
        match self
            .boards
            .file_ends
            .reserve(&self.fence, after, barrier, report, may_write)
            .await
        {
            Ok(()) => Ok(()),
            Err(Stopped::Rejected(_)) => {
                tracing::warn!("Lease lost; the shard's files are not written.");
                Err(Stop::GivenUp)
            }
            Err(Stopped::Abandoned) => Err(Stop::GivenUp),
        }
    }
}

/// Appends the rows to the open file of their date, opening one where none is; gives the files
/// back whatever happens, with the outcome.
fn append_rows<L: ObjectLayout>(
    layout: &L,
    shard_id: &ShardId,
    chunks: &[Arc<[L::Row]>],
    mut files: Vec<OpenFile<L::Encoder>>,
) -> (Vec<OpenFile<L::Encoder>>, Result<(), String>) {
    let rows: Vec<&L::Row> = chunks.iter().flat_map(|chunk| chunk.iter()).collect();
    let result = (|| {
        for segment in layout.segments(shard_id, &rows) {
            let index = match files.iter().position(|f| f.partition == segment.partition) {
                Some(index) => index,
                None => {
                    let encoder = layout.encoder()?;
                    files.push(OpenFile::new(segment.partition, segment.key, encoder));
                    files.len() - 1
                }
            };
            let file = &mut files[index];
            file.encoder().append(&segment.rows)?;
            file.gather::<L::Row>(segment.rows.len());
        }
        Ok(())
    })();
    (files, result)
}
