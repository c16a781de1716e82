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

/// Where a shard's next lake and dead-letter files end, reserved by the owner before it writes
/// them. Whoever resumes from the checkpoint it follows ends its first files there too, so those
/// files hold the same rows whichever owner writes them, and a late write of an owner that lost
/// the lease replaces a file with the same bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilesEnd {
    /// The checkpoint position the reservation follows (`None`: the shard had no checkpoint).
    pub after: Option<Position>,
    pub end: Position,
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

    /// Reserves where the shard's next files end, fenced like a checkpoint write
    /// ([`CheckpointError::LeaseLost`] once the lease has moved on); durable when this returns.
    async fn reserve_files_end(
        &self,
        fence: &Fence,
        files_end: &FilesEnd,
    ) -> Result<(), CheckpointError>;

    /// The shard's last reservation, if any; it holds only while `after` is the checkpoint's
    /// position.
    async fn files_end(&self, shard_id: &str) -> Result<Option<FilesEnd>, CheckpointError>;
}
