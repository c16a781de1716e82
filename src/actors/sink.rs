//! The protocol between a shard reader and its sinks, and the barrier that ties sinks to
//! checkpoints.
//!
//! A reader sends every sink one [`ShardBatch`] per read, in stream order. Some batches carry a
//! barrier: a checkpoint candidate. A sink acknowledges a barrier to the checkpointer with
//! [`Durable`] once everything of that shard up to the barrier is durable in it; the checkpointer
//! commits a candidate when every sink has acknowledged it.

use std::sync::Arc;

use actix::prelude::*;

use crate::model::bar::MinuteBar;
use crate::model::dead_letter::DeadLetter;
use crate::model::enriched::EnrichedTick;
use crate::model::rules::Alert;
use crate::model::tick::{Position, Symbol};
use crate::stream::ShardId;

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
}

/// What one read of a shard produced, shared by all sinks (each takes its part).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), SinkError>")]
pub struct ShardBatch {
    pub shard_id: ShardId,
    /// The lease counter the shard is read under: a sink drops what an older reader of the shard
    /// left behind when a newer one starts.
    pub generation: u64,
    /// Enriched ticks, one chunk per symbol of the read, each in stream order: as the symbol
    /// aggregators returned them, so no tick is copied again to interleave the symbols.
    pub ticks: Arc<[Arc<[EnrichedTick]>]>,
    pub alerts: Arc<[Alert]>,
    /// Latest values of the one-minute bars the batch changed (bars mode).
    pub bars: Arc<[(Symbol, MinuteBar)]>,
    pub dead_letters: Arc<[DeadLetter]>,
    /// A checkpoint candidate at this position ends the batch.
    pub barrier: Option<Position>,
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
/// in the stream and will be read again from the last checkpoint).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{sink:?} sink failed: {message}")]
pub struct SinkError {
    pub sink: SinkKind,
    pub message: String,
}

impl SinkError {
    pub fn new(sink: SinkKind, error: impl std::fmt::Display) -> Self {
        Self {
            sink,
            message: error.to_string(),
        }
    }
}

/// A sink's write running apart from its actor, so that the actor takes the next batches
/// meanwhile. A failed write stops the process (see [`SinkError`]) and is also the answer of the
/// next batch that waits for it.
#[derive(Debug)]
pub struct BackgroundWrite {
    sink: SinkKind,
    task: tokio::task::JoinHandle<Result<(), SinkError>>,
}

impl BackgroundWrite {
    /// Starts `write` on the current arbiter.
    pub fn spawn(
        sink: SinkKind,
        fatal: crate::pipeline::Fatal,
        write: impl Future<Output = Result<(), SinkError>> + 'static,
    ) -> Self {
        let task = actix::spawn(async move {
            let result = write.await;
            if let Err(error) = &result {
                fatal.raise(error.to_string());
            }
            result
        });
        Self { sink, task }
    }

    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Waits until `previous` (if any) is done.
    pub async fn finished(previous: Option<Self>) -> Result<(), SinkError> {
        let Some(Self { sink, task }) = previous else {
            return Ok(());
        };
        task.await.unwrap_or_else(|e| Err(SinkError::new(sink, e)))
    }
}

/// The sinks a reader feeds, by kind.
#[derive(Clone)]
pub struct Sinks(pub Vec<(SinkKind, Recipient<ShardBatch>)>);

impl Sinks {
    /// Sends one batch to every sink and waits until each has taken it.
    pub async fn send(&self, batch: ShardBatch) -> Result<(), SinkError> {
        let sends = self.0.iter().map(|(kind, sink)| {
            let request = sink.send(batch.clone());
            async move { request.await.map_err(|e| SinkError::new(*kind, e))? }
        });
        futures::future::try_join_all(sends).await.map(drop)
    }
}

/// What every sink talks to besides its own port.
#[derive(Clone)]
pub struct SinkLinks {
    pub checkpointer: Addr<super::checkpointer::Checkpointer>,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub fatal: crate::pipeline::Fatal,
    pub mailbox: usize,
}

impl SinkLinks {
    /// Tells the checkpointer that `sink` made everything of the shard up to `position` durable.
    pub async fn acknowledge(
        &self,
        sink: SinkKind,
        shard_id: ShardId,
        generation: u64,
        position: Position,
    ) -> Result<(), SinkError> {
        self.checkpointer
            .send(Durable {
                sink,
                shard_id,
                generation,
                position,
            })
            .await
            .map_err(|e| SinkError::new(sink, e))
    }
}
