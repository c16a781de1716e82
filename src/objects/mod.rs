//! The object store port: the lake's Parquet files, the dead letters, large checkpoint
//! snapshots and the compaction's manifests, under S3-style keys.
//!
//! Implementations: a local directory ([`local::LocalObjectStore`]) and S3.

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

    pub fn is_retryable(&self) -> bool {
        match self {
            ObjectError::Request { retryable, .. } => *retryable,
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
}
