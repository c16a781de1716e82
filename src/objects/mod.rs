//! The object store port: the lake's Parquet files, the dead letters, large checkpoint
//! snapshots and the compaction's manifests, under S3-style keys.
//!
//! Implementations: a local directory ([`local::LocalObjectStore`]) and S3.
//!
//! Large objects go up in parts, two ways. [`ObjectStore::put_parts`] takes a stream of bytes and
//! does the whole upload in one call. The upload primitives ([`ObjectStore::begin_upload`],
//! [`upload_part`](ObjectStore::upload_part), [`complete_upload`](ObjectStore::complete_upload),
//! [`abort_upload`](ObjectStore::abort_upload)) leave each step to the caller, so that an upload
//! lasting minutes can retry each call on its own and decide late whether the object appears;
//! [`unfinished_uploads`](ObjectStore::unfinished_uploads) finds the uploads a crashed process
//! left (S3 bills their parts until they are aborted).

pub mod local;
pub mod s3;

use async_trait::async_trait;
use bytes::Bytes;

#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("object {key}: {operation} failed: {message}")]
    Request {
        operation: &'static str,
        key: String,
        message: String,
        retryable: bool,
    },
    /// The upload was completed (by an earlier try whose answer was lost) or aborted.
    #[error("object {key}: {operation} failed: upload {upload_id} is gone (completed or aborted)")]
    UploadGone {
        operation: &'static str,
        key: String,
        upload_id: String,
    },
}

impl ObjectError {
    pub fn failure(&self) -> crate::failure::Failure {
        crate::failure::Failure::from_retryable(self.is_retryable())
    }

    const UNFINISHED: &'static str = "put in parts";

    /// Whether this is [`ObjectError::unfinished`]: the writer's own error says why.
    pub fn is_unfinished(&self) -> bool {
        matches!(self, ObjectError::Request { operation, .. } if *operation == Self::UNFINISHED)
    }

    /// Whether the upload this call named is gone ([`ObjectError::UploadGone`]); never retryable.
    pub fn is_upload_gone(&self) -> bool {
        matches!(self, ObjectError::UploadGone { .. })
    }

    pub fn is_retryable(&self) -> bool {
        match self {
            ObjectError::Request { retryable, .. } => *retryable,
            ObjectError::UploadGone { .. } => false,
        }
    }

    pub fn upload_gone(operation: &'static str, upload: &Upload) -> Self {
        ObjectError::UploadGone {
            operation,
            key: upload.key.clone(),
            upload_id: upload.id.clone(),
        }
    }

    /// A call this store has no way to serve (the upload primitives of a test double).
    fn unsupported(operation: &'static str, key: &str) -> Self {
        Self::unsupported_because(operation, key, "this store does not upload in parts")
    }

    fn unsupported_because(operation: &'static str, key: &str, why: &str) -> Self {
        ObjectError::Request {
            operation,
            key: key.to_owned(),
            message: why.to_owned(),
            retryable: false,
        }
    }

    /// A write in parts whose writer stopped before the end: nothing was written.
    pub fn unfinished(key: &str) -> Self {
        ObjectError::Request {
            operation: Self::UNFINISHED,
            key: key.to_owned(),
            message: "the writer stopped before the last part; nothing was written".to_owned(),
            retryable: false,
        }
    }
}

/// One object of a listing, with its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    pub bytes: u64,
}

/// A piece of an object written in parts ([`ObjectStore::put_parts`]), in order.
#[derive(Debug)]
pub enum Part {
    Data(Bytes),
    /// Everything is sent: the object may appear.
    End,
}

/// An upload in parts under way ([`ObjectStore::begin_upload`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub key: String,
    /// The store's name for the upload (S3's upload id).
    pub id: String,
}

/// A part uploaded, as completing the upload names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedPart {
    /// From 1, at most 10,000 (S3's limit; the local store keeps it too).
    pub number: i32,
    /// The store's tag of the part's content (S3's ETag): a part uploaded again has a new one.
    pub tag: String,
}

/// What a conditional write ([`ObjectStore::put_if`]) requires of the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// No object under the key (S3 `If-None-Match: *`).
    Absent,
    /// The object there has this tag (S3 `If-Match`), as [`ObjectStore::get_tagged`] gave it.
    Tagged(String),
}

/// The least size of every part but the last (S3's rule; the local store keeps it too).
pub const MIN_PART_BYTES: usize = 5 * 1024 * 1024;

/// The highest part number (S3's limit; the local store keeps it too).
pub const MAX_PART_NUMBER: i32 = 10_000;

#[async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// Writes (or replaces) one object; durable when this returns.
    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<(), ObjectError>;

    /// Reads one object, `None` when it does not exist.
    async fn get(&self, key: &str) -> Result<Option<Bytes>, ObjectError>;

    /// Deletes one object; deleting a missing key succeeds, as in S3.
    async fn delete(&self, key: &str) -> Result<(), ObjectError>;

    /// Keys under a prefix, sorted.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, ObjectError>;

    /// Keys under a prefix with their sizes, sorted. This default reads each object; stores
    /// that know the sizes from their listing say so.
    async fn list_sized(&self, prefix: &str) -> Result<Vec<Listed>, ObjectError> {
        let mut listed = Vec::new();
        for key in self.list(prefix).await? {
            if let Some(body) = self.get(&key).await? {
                let bytes = body.len() as u64;
                listed.push(Listed { key, bytes });
            }
        }
        Ok(listed)
    }

    /// Writes (or replaces) one object from parts sent in order, so that a large object need
    /// not be held at once. The object appears whole once [`Part::End`] arrives; if the sender
    /// goes away before that (its writer failed), nothing is written and this fails. This
    /// default gathers the parts and puts them in one call.
    async fn put_parts(
        &self,
        key: &str,
        content_type: &str,
        mut parts: tokio::sync::mpsc::Receiver<Part>,
    ) -> Result<(), ObjectError> {
        let mut body = Vec::new();
        loop {
            match parts.recv().await {
                Some(Part::Data(data)) => body.extend_from_slice(&data),
                Some(Part::End) => return self.put(key, Bytes::from(body), content_type).await,
                None => return Err(ObjectError::unfinished(key)),
            }
        }
    }

    /// Begins an upload in parts of `key`: nothing appears until it is completed. Each call of
    /// an upload may be retried on its own; an upload neither completed nor aborted keeps its
    /// parts (billed, on S3) and is listed by [`ObjectStore::unfinished_uploads`]. This default,
    /// for stores that cannot, fails (not retryable).
    async fn begin_upload(&self, key: &str, content_type: &str) -> Result<Upload, ObjectError> {
        let _ = content_type;
        Err(ObjectError::unsupported("begin upload", key))
    }

    /// Uploads part `number` (from 1) of `upload`; uploading a number again replaces it (so a
    /// retry is safe). Every part but the last must hold at least [`MIN_PART_BYTES`], which
    /// completing checks. An upload that is gone fails with [`ObjectError::is_upload_gone`].
    async fn upload_part(
        &self,
        upload: &Upload,
        number: i32,
        body: Bytes,
    ) -> Result<UploadedPart, ObjectError> {
        let _ = (number, body);
        Err(ObjectError::unsupported("upload part", &upload.key))
    }

    /// The object appears whole (replacing one under the key) from `parts` in order (ascending
    /// numbers, the tags their uploads returned). If the upload is gone (completed already by an
    /// earlier try whose answer was lost, or aborted) this returns an error for which
    /// [`ObjectError::is_upload_gone`] is true (not retryable); S3 may instead answer a repeat
    /// of a completion that succeeded with success.
    async fn complete_upload(
        &self,
        upload: &Upload,
        parts: &[UploadedPart],
    ) -> Result<(), ObjectError> {
        let _ = parts;
        Err(ObjectError::unsupported("complete upload", &upload.key))
    }

    /// Drops the upload and its parts; an upload already gone is no error. This default has
    /// nothing to drop.
    async fn abort_upload(&self, upload: &Upload) -> Result<(), ObjectError> {
        let _ = upload;
        Ok(())
    }

    /// Uploads begun under `prefix` (a key prefix, as in S3) and neither completed nor aborted,
    /// sorted by key. This default has none.
    async fn unfinished_uploads(&self, prefix: &str) -> Result<Vec<Upload>, ObjectError> {
        let _ = prefix;
        Ok(Vec::new())
    }

    /// One object with the store's tag of its content (S3's ETag), `None` when it does not
    /// exist; the tag is what [`Precondition::Tagged`] and [`ObjectStore::delete_if`] compare.
    /// This default, for stores that cannot, fails (not retryable).
    async fn get_tagged(&self, key: &str) -> Result<Option<(Bytes, String)>, ObjectError> {
        Err(ObjectError::unsupported_because(
            "get tagged",
            key,
            "this store does not write conditionally",
        ))
    }

    /// Writes `key` only if `precondition` holds, checked atomically with the write. Returns
    /// the new object's tag, or `None` when the precondition did not hold and nothing was
    /// written (S3's 412). S3's 409 (a conditional write of the key under way at once) is a
    /// retryable error. This default, for stores that cannot, fails (not retryable).
    async fn put_if(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
        precondition: Precondition,
    ) -> Result<Option<String>, ObjectError> {
        let _ = (body, content_type, precondition);
        Err(ObjectError::unsupported_because(
            "put if",
            key,
            "this store does not write conditionally",
        ))
    }

    /// Deletes `key` only if its tag is `tag`, checked atomically with the delete; `false` when
    /// it is not (or the object is gone) and nothing was deleted. This default, for stores that
    /// cannot, fails (not retryable).
    async fn delete_if(&self, key: &str, tag: &str) -> Result<bool, ObjectError> {
        let _ = tag;
        Err(ObjectError::unsupported_because(
            "delete if",
            key,
            "this store does not write conditionally",
        ))
    }
}
