//! The checkpoint port: per shard, the last position every sink made durable and the window
//! state of the shard's symbols at that position, and marks of what is durable beyond it.
//!
//! Implementations: a directory of JSON files ([`file::FileCheckpointStore`]) and DynamoDB.

pub mod dynamodb;
pub mod file;
pub mod snapshot;

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::failure::Failure;
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

/// A fact about a shard's outputs past its checkpoint, recorded under the lease so that whoever
/// resumes the shard keeps to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mark {
    /// Where the next lake and dead-letter files end ([`FilesEnd`]).
    FilesEnd(FilesEnd),
    /// Every alert of a record up to this position is published: a replay publishes none of
    /// them again.
    AlertsPublished(Position),
    /// How far each sink that does not write files (by [`SinkKind::name`]) has made the shard
    /// durable past the checkpoint: a replay gives it nothing up to there again.
    ///
    /// [`SinkKind::name`]: crate::barrier::SinkKind::name
    SinksDurable(BTreeMap<String, Position>),
}

impl Mark {
    /// The name a store keeps the mark under, and the mark as JSON.
    pub fn stored(&self) -> (&'static str, String) {
        let json = match self {
            Mark::FilesEnd(files_end) => serde_json::to_string(files_end),
            Mark::AlertsPublished(position) => serde_json::to_string(position),
            Mark::SinksDurable(positions) => serde_json::to_string(positions),
        };
        (self.name(), json.expect("marks serialize"))
    }

    fn name(&self) -> &'static str {
        match self {
            Mark::FilesEnd(_) => Marks::FILES_END,
            Mark::AlertsPublished(_) => Marks::ALERTS_PUBLISHED,
            Mark::SinksDurable(_) => Marks::SINKS_DURABLE,
        }
    }
}

/// Every mark of a shard, as last recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Marks {
    pub files_end: Option<FilesEnd>,
    pub alerts_published: Option<Position>,
    pub sinks_durable: BTreeMap<String, Position>,
}

impl Marks {
    pub const FILES_END: &'static str = "files_end";
    pub const ALERTS_PUBLISHED: &'static str = "alerts_published";
    pub const SINKS_DURABLE: &'static str = "sinks_durable";
    /// Every name a store keeps a mark under.
    pub const NAMES: [&'static str; 3] =
        [Self::FILES_END, Self::ALERTS_PUBLISHED, Self::SINKS_DURABLE];

    /// The marks from what a store holds under each name (JSON), or why one cannot be read.
    pub fn from_stored<'a>(
        stored: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, String> {
        let mut marks = Marks::default();
        for (name, json) in stored {
            let corrupt = |e: serde_json::Error| format!("corrupt mark {name}: {e}");
            match name {
                Self::FILES_END => {
                    marks.files_end = Some(serde_json::from_str(json).map_err(corrupt)?)
                }
                Self::ALERTS_PUBLISHED => {
                    marks.alerts_published = Some(serde_json::from_str(json).map_err(corrupt)?)
                }
                Self::SINKS_DURABLE => {
                    marks.sinks_durable = serde_json::from_str(json).map_err(corrupt)?
                }
                _ => {}
            }
        }
        Ok(marks)
    }
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
    pub fn failure(&self) -> Failure {
        match self {
            CheckpointError::LeaseLost { .. } => Failure::Fenced,
            _ => Failure::from_retryable(self.is_retryable()),
        }
    }

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

    /// Records a fact about the shard's outputs past its checkpoint, fenced like a checkpoint
    /// write ([`CheckpointError::LeaseLost`] once the lease has moved on); durable when this
    /// returns. A checkpoint write clears the files end, not the alerts mark.
    async fn mark(&self, fence: &Fence, mark: &Mark) -> Result<(), CheckpointError>;

    /// The shard's marks, as last recorded.
    async fn marks(&self, shard_id: &str) -> Result<Marks, CheckpointError>;
}
