//! The ticks table port: items of the shape in [`crate::model::item`], keyed by `symbol` and
//! `timestamp`, so writing an item twice leaves one row.
//!
//! Implementations: a JSON-lines file ([`file::FileTicksTable`]) and DynamoDB.

pub mod dynamodb;
pub mod file;
pub mod refused;

use async_trait::async_trait;

use crate::failure::Failure;
use crate::model::item::Item;

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("ticks table write of {items} items failed: {message}")]
    Write {
        items: usize,
        message: String,
        failure: Failure,
    },
}

impl TableError {
    pub fn failure(&self) -> Failure {
        match self {
            TableError::Write { failure, .. } => *failure,
        }
    }

    pub fn is_retryable(&self) -> bool {
        self.failure() == Failure::Transient
    }
}

#[async_trait]
pub trait TicksTable: Send + Sync + 'static {
    /// Writes every item (put semantics: same key, same row); durable when this returns.
    async fn put_items(&self, items: &[Item<'_>]) -> Result<(), TableError>;
}
