//! One open file of a shard: rows appended segment by segment, its bytes uploaded in parts as
//! they pass the part size, so that memory holds at most about a part of it whatever its size.
//! Nothing is visible in the store until [`OpenFile::close`] completes it; a file given up is
//! aborted, and one a crashed process left is found and aborted by the shard's next owner
//! ([`abort_unfinished`]) or, failing that, by the bucket's lifecycle rule.

use std::sync::Arc;

use bytes::Bytes;

use super::{FileEncoder, ObjectLayout};
use crate::actors::sink::SinkLinks;
use crate::model::ids::ShardId;
use crate::objects::{ObjectError, ObjectStore, Upload, UploadedPart};
use crate::retry::{Stopped, persistently};

/// Bytes of each part but the last. Above S3's 5 MiB minimum, and small enough that a part
/// retried, and a shard's file of each date, hold little memory.
const PART_BYTES: usize = 8 * 1024 * 1024;

/// What stops a file's write: given up (the lease may have run out; the next owner writes the
/// rows) or refused for good (the process stops, see [`crate::barrier::SinkError`]).
pub(super) type Halt = Stopped<ObjectError>;

pub(super) struct OpenFile<E> {
    pub partition: String,
    pub key: String,
    encoder: E,
    /// Bytes made and not uploaded yet.
    pending: Vec<u8>,
    upload: Option<Upload>,
    parts: Vec<UploadedPart>,
    /// Bytes taken from the encoder so far.
    bytes: u64,
    pub rows: usize,
}

/// Where a file's calls go, and under which lease.
pub(super) struct FileWriting<'a> {
    pub objects: &'a Arc<dyn ObjectStore>,
    pub links: &'a SinkLinks,
    pub sink: crate::barrier::SinkKind,
    pub shard_id: &'a ShardId,
    pub generation: u64,
}

impl FileWriting<'_> {
    /// Runs `call` until it succeeds, while the lease is trusted.
    async fn persistently<T, Fut>(&self, call: impl FnMut() -> Fut) -> Result<T, Halt>
    where
        Fut: Future<Output = Result<T, ObjectError>>,
    {
        let wanted = || self.links.may_write(self.shard_id, self.generation);
        let report = self.links.reporting(self.sink);
        persistently(report, ObjectError::failure, wanted, call).await
    }
}

impl<E> OpenFile<E> {
    pub fn new(partition: String, key: String, encoder: E) -> Self {
        Self {
            partition,
            key,
            encoder,
            pending: Vec::new(),
            upload: None,
            parts: Vec::new(),
            bytes: 0,
            rows: 0,
        }
    }

    pub fn encoder(&mut self) -> &mut E {
        &mut self.encoder
    }

    /// The file's size so far.
    pub fn size<R>(&self) -> u64
    where
        E: FileEncoder<R>,
    {
        self.encoder.size()
    }

    /// Takes the bytes the encoder made (on the blocking thread that made them).
    pub fn gather<R>(&mut self, rows: usize)
    where
        E: FileEncoder<R>,
    {
        let made = self.encoder.take_bytes();
        self.bytes += made.len() as u64;
        self.rows += rows;
        self.pending.extend_from_slice(&made);
    }

    /// Uploads every full part made so far, beginning the upload with the first.
    pub async fn upload_full_parts<L: ObjectLayout>(
        &mut self,
        writing: &FileWriting<'_>,
    ) -> Result<(), Halt> {
        while self.pending.len() >= PART_BYTES {
            let rest = self.pending.split_off(PART_BYTES);
            let part = Bytes::from(std::mem::replace(&mut self.pending, rest));
            self.upload_part::<L>(writing, part).await?;
        }
        Ok(())
    }

    async fn upload_part<L: ObjectLayout>(
        &mut self,
        writing: &FileWriting<'_>,
        part: Bytes,
    ) -> Result<(), Halt> {
        let upload = match &self.upload {
            Some(upload) => upload.clone(),
            None => {
                let key = &self.key;
                let begun = writing
                    .persistently(|| writing.objects.begin_upload(key, L::CONTENT_TYPE))
                    .await?;
                self.upload.insert(begun).clone()
            }
        };
        let number = self.parts.len() as i32 + 1;
        let uploaded = writing
            .persistently(|| writing.objects.upload_part(&upload, number, part.clone()))
            .await?;
        self.parts.push(uploaded);
        Ok(())
    }

    /// Ends the file's bytes (its footer, for Parquet), on a blocking thread.
    pub fn finish<R>(self) -> Result<FinishedFile, String>
    where
        E: FileEncoder<R>,
    {
        let Self {
            partition: _,
            key,
            encoder,
            mut pending,
            upload,
            parts,
            bytes,
            rows,
        } = self;
        let tail = encoder.finish()?;
        let bytes = bytes + tail.len() as u64;
        pending.extend_from_slice(&tail);
        Ok(FinishedFile {
            key,
            pending,
            upload,
            parts,
            bytes,
            rows,
        })
    }

    /// Gives the file up: its upload, if begun, is aborted.
    pub async fn abandon(self, objects: &Arc<dyn ObjectStore>) {
        abort_once(objects, self.upload.as_ref()).await;
    }
}

/// A file whose bytes are all made: only its last part and completion are left.
pub(super) struct FinishedFile {
    pub key: String,
    pending: Vec<u8>,
    upload: Option<Upload>,
    parts: Vec<UploadedPart>,
    pub bytes: u64,
    pub rows: usize,
}

impl FinishedFile {
    /// Makes the file appear whole: in one put if it never reached a part's size, else its last
    /// part and the upload's completion. True once it is there; false if its upload is gone and
    /// the file with it (aborted by a newer owner: the file is that owner's to write).
    pub async fn complete<L: ObjectLayout>(
        &mut self,
        writing: &FileWriting<'_>,
    ) -> Result<bool, Halt> {
        let objects = writing.objects;
        let Some(upload) = self.upload.clone() else {
            let body = Bytes::from(std::mem::take(&mut self.pending));
            let key = &self.key;
            writing
                .persistently(|| objects.put(key, body.clone(), L::CONTENT_TYPE))
                .await?;
            tracing::debug!(%key, bytes = self.bytes, rows = self.rows, "File written.");
            return Ok(true);
        };
        if !self.pending.is_empty() {
            let last = Bytes::from(std::mem::take(&mut self.pending));
            let number = self.parts.len() as i32 + 1;
            let uploaded = writing
                .persistently(|| objects.upload_part(&upload, number, last.clone()))
                .await?;
            self.parts.push(uploaded);
        }
        let parts = &self.parts;
        let completed = writing
            .persistently(|| async {
                match objects.complete_upload(&upload, parts).await {
                    Err(error) if error.is_upload_gone() => Ok(false),
                    other => other.map(|()| true),
                }
            })
            .await?;
        if !completed {
            // Gone: completed by an earlier try whose answer was lost, or aborted.
            let key = &self.key;
            let listed = writing.persistently(|| objects.list_sized(key)).await?;
            let there = listed
                .iter()
                .any(|o| &o.key == key && o.bytes == self.bytes);
            if !there {
                return Ok(false);
            }
        }
        tracing::debug!(key = %self.key, bytes = self.bytes, rows = self.rows, "File written.");
        self.upload = None;
        Ok(true)
    }

    /// Gives the file up: its upload, if begun and not completed, is aborted.
    pub async fn abandon(self, objects: &Arc<dyn ObjectStore>) {
        abort_once(objects, self.upload.as_ref()).await;
    }
}

/// Aborts an upload given up, trying once: what fails is left to the next owner's recovery and
/// the bucket's lifecycle rule.
async fn abort_once(objects: &Arc<dyn ObjectStore>, upload: Option<&Upload>) {
    if let Some(upload) = upload
        && let Err(error) = objects.abort_upload(upload).await
    {
        tracing::warn!(%error, key = %upload.key, "An upload given up could not be aborted.");
    }
}

/// Aborts the uploads of the shard's files under `folder` that an earlier owner began and never
/// completed (it crashed, or lost the lease): their parts are billed until aborted.
pub(super) async fn abort_unfinished(
    writing: &FileWriting<'_>,
    folder: &str,
) -> Result<usize, Halt> {
    let objects = writing.objects;
    let unfinished = writing
        .persistently(|| objects.unfinished_uploads(folder))
        .await?;
    let name_start = format!("{}-", writing.shard_id);
    let mut aborted = 0;
    for upload in unfinished {
        let name = upload.key.rsplit('/').next().unwrap_or_default();
        // `{shard}-{position}.…`: the position's digits tell this shard from one whose id
        // merely starts with this one's.
        let of_shard = name
            .strip_prefix(&name_start)
            .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()));
        if !of_shard {
            continue;
        }
        writing
            .persistently(|| objects.abort_upload(&upload))
            .await?;
        tracing::info!(key = %upload.key, "Aborted an upload an earlier owner left unfinished.");
        aborted += 1;
    }
    Ok(aborted)
}
