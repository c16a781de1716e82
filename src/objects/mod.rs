//! The object store port: the lake's Parquet files, the dead letters and large checkpoint
//! snapshots, under S3-style keys.
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

    pub fn is_retryable(&self) -> bool {
        match self {
            ObjectError::Request { retryable, .. } => *retryable,
        }
    }
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
}
