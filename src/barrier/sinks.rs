//! Step 2 and 3 of a barrier: what a reader hands its sinks, and how a sink answers once its part
//! is durable.

use std::sync::Arc;

use actix::prelude::*;

use crate::lease::Fence;
use crate::model::bar::MinuteBar;
use crate::model::dead_letter::DeadLetter;
use crate::model::enriched::EnrichedTick;
use crate::model::ids::ShardId;
use crate::model::rules::Alert;
use crate::model::tick::{Position, Symbol};

/// Each sink that must make a position durable before it is checkpointed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SinkKind {
    Table,
    Lake,
    Alerts,
    DeadLetters,
}

impl SinkKind {
    pub const ALL: [SinkKind; 4] = [
        SinkKind::Table,
        SinkKind::Lake,
        SinkKind::Alerts,
        SinkKind::DeadLetters,
    ];

    /// Whether the sink writes files, which close only at some barriers (those of a
    /// [`ShardBatch`] that `closes_files`): it makes a shard durable only there.
    pub fn writes_files(self) -> bool {
        matches!(self, SinkKind::Lake | SinkKind::DeadLetters)
    }

    /// The sink of a [`Self::name`].
    pub fn named(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|sink| sink.name() == name)
    }

    /// The sink's name in logs, health reasons and marks.
    pub fn name(self) -> &'static str {
        match self {
            SinkKind::Table => "table",
            SinkKind::Lake => "lake",
            SinkKind::Alerts => "alerts",
            SinkKind::DeadLetters => "dead-letter",
        }
    }
}

/// What one read of a shard produced, shared by all sinks (each takes its part).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), SinkError>")]
pub struct ShardBatch {
    pub shard_id: ShardId,
    /// The lease the shard is read under. Its counter is the reader's generation: a sink drops
    /// what an older reader of the shard left behind when a newer one starts.
    pub fence: Fence,
    /// The position of the last record read so far (this batch's last, or an earlier one).
    pub through: Option<Position>,
    /// Enriched ticks, one chunk per symbol of the read, each in stream order: as the symbol
    /// aggregators returned them, so no tick is copied again to interleave the symbols.
    pub ticks: Arc<[Arc<[EnrichedTick]>]>,
    pub alerts: Arc<[Alert]>,
    /// Latest values of the one-minute bars the batch changed (bars mode).
    pub bars: Arc<[(Symbol, MinuteBar)]>,
    pub dead_letters: Arc<[DeadLetter]>,
    /// A barrier at this position ends the batch: every sink that does not write files makes
    /// the shard durable up to it.
    pub barrier: Option<Position>,
    /// The barrier is also a checkpoint candidate: the sinks that write files close them here
    /// and make the shard durable up to it.
    pub closes_files: bool,
}

impl ShardBatch {
    /// The reader's generation: the counter of the lease it reads under.
    pub fn generation(&self) -> u64 {
        self.fence.counter
    }
}

/// A sink's acknowledgement: everything of `shard_id` up to `position` is durable in it.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Durable {
    pub sink: SinkKind,
    pub shard_id: ShardId,
    pub generation: u64,
    pub position: Position,
}

/// A sink gave up on a write after its retries; the process must stop (the records are still
/// in the stream and will be read again from the last checkpoint). Keeps the error that stopped
/// it (shared, as the error travels in messages that are cloned).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{sink:?} sink failed: {source}")]
pub struct SinkError {
    pub sink: SinkKind,
    #[source]
    pub source: Arc<dyn std::error::Error + Send + Sync>,
}

impl SinkError {
    pub fn new(sink: SinkKind, error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            sink,
            source: Arc::from(error.into()),
        }
    }
}
