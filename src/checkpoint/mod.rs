//! The checkpoint port: per shard, the last position every sink made durable and the window
//! state of the shard's symbols at that position.
//!
//! Implementations: a directory of JSON files ([`file::FileCheckpointStore`]) and DynamoDB.

pub mod dynamodb;
pub mod file;
pub mod snapshot;

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::lease::Fence;
use crate::model::state::SymbolState;
use crate::model::tick::{Position, Symbol};

/// Window state of every symbol of a shard, as of a checkpoint.
pub type ShardSnapshot = BTreeMap<Symbol, SymbolState>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub shard_id: String,
    /// Everything up to and including this position is durable in every sink.
    pub position: Position,
    /// The shard is closed and was read to its end.
    pub shard_end: bool,
    #[serde(with = "snapshot::text")]
    pub snapshot: ShardSnapshot,
    /// The lease the writer holds: the write is refused once the lease has moved on.
    #[serde(skip)]
    pub fence: Option<Fence>,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint of shard {shard} could not be read: {message}")]
    Read {
        shard: String,
        message: String,
        retryable: bool,
    },
    #[error("checkpoint of shard {shard} could not be written: {message}")]
    Write {
        shard: String,
        message: String,
        retryable: bool,
    },
    #[error("checkpoint of shard {shard} refused: its lease has moved to another owner")]
    LeaseLost { shard: String },
}

impl CheckpointError {
    pub fn is_retryable(&self) -> bool {
        match self {
            CheckpointError::Read { retryable, .. } | CheckpointError::Write { retryable, .. } => {
                *retryable
            }
            CheckpointError::LeaseLost { .. } => false,
        }
    }
}

#[async_trait]
pub trait CheckpointStore: Send + Sync + 'static {
    async fn load(&self, shard_id: &str) -> Result<Option<Checkpoint>, CheckpointError>;

    /// Replaces the shard's checkpoint; durable when this returns.
    async fn save(&self, checkpoint: &Checkpoint) -> Result<(), CheckpointError>;
}
