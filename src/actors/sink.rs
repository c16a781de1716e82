//! What every sink shares: the fan-out of a reader's batches to the sinks, the links a sink
//! acknowledges through, and a write that runs apart from its actor. The messages themselves are
//! the barrier's ([`crate::barrier`]).

use std::sync::Arc;

use actix::prelude::*;
use tracing::Instrument;

use super::fatal::Fatal;
use crate::barrier::{Durable, ShardBatch, SinkError, SinkKind};
use crate::health::{Concern, Health};
use crate::lease::clock::LeaseClock;
use crate::metrics::Counter;
use crate::model::ids::ShardId;
use crate::model::tick::Position;
use crate::retry::Reporting;

/// A sink's write running apart from its actor, so that the actor takes the next batches
/// meanwhile; each runs after the one before it ([`Self::spawn_after`]). A failed write stops
/// the process (see [`SinkError`]) and is also the answer of the next batch that waits for it.
#[derive(Debug)]
pub struct BackgroundWrite {
    sink: SinkKind,
    task: tokio::task::JoinHandle<Result<(), SinkError>>,
}

impl BackgroundWrite {
    /// Starts `write` on the current arbiter, in the current span (the sink's, or its shard's).
    fn spawn(
        sink: SinkKind,
        fatal: Fatal,
        write: impl Future<Output = Result<(), SinkError>> + 'static,
    ) -> Self {
        let write = async move {
            let result = write.await;
            if let Err(error) = &result {
                fatal.raise(error.to_string());
            }
            result
        };
        let task = actix::spawn(write.in_current_span());
        Self { sink, task }
    }

    /// Starts `write` to run once `previous` (if any) is done, so that writes run one at a time
    /// in the order they were started, whoever starts them; a failed previous write fails this
    /// one too. Also returns what resolves when `write` begins, with `previous`'s result.
    pub fn spawn_after(
        previous: Option<Self>,
        sink: SinkKind,
        fatal: Fatal,
        write: impl Future<Output = Result<(), SinkError>> + 'static,
    ) -> (Self, impl Future<Output = Result<(), SinkError>> + 'static) {
        let (begins, begun) = tokio::sync::oneshot::channel();
        let chained = async move {
            let before = Self::finished(previous).await;
            let _ = begins.send(before.clone());
            before?;
            write.await
        };
        let begun = async move { begun.await.unwrap_or_else(|e| Err(SinkError::new(sink, e))) };
        (Self::spawn(sink, fatal, chained), begun)
    }

    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Waits until `previous` (if any) is done.
    async fn finished(previous: Option<Self>) -> Result<(), SinkError> {
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
    /// Sends one batch to every sink but those in `skip`, and waits until each has taken it.
    pub async fn send(&self, batch: ShardBatch, skip: &[SinkKind]) -> Result<(), SinkError> {
        let sinks = self.0.iter().filter(|(kind, _)| !skip.contains(kind));
        let sends = sinks.map(|(kind, sink)| {
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
    /// Until when this worker surely holds each lease: no write for a shard after that.
    pub leases: Arc<LeaseClock>,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub health: Arc<Health>,
    pub fatal: Fatal,
    pub mailbox: usize,
}

impl SinkLinks {
    /// Where `sink`'s persistent writes ([`crate::retry::persistently`]) report.
    pub fn reporting(&self, sink: SinkKind) -> Reporting<'_> {
        self.reporting_as(Concern::Sink(sink))
    }

    pub fn reporting_as(&self, concern: Concern) -> Reporting<'_> {
        Reporting {
            concern,
            health: &self.health,
            metrics: &self.metrics,
        }
    }

    /// Whether a sink may still write for the shard's reader of `generation`: not once this
    /// worker's own clock says the lease may have expired, whether or not a call to the lease
    /// table has said so (it may hang). What is not written is read again by the next owner.
    pub fn may_write(&self, shard_id: &ShardId, generation: u64) -> bool {
        let holds = self.leases.holds(shard_id, generation);
        if !holds {
            // Every caller is in its sink's span and the shard's.
            tracing::warn!("Lease may have expired; no longer writing for the shard.");
            self.metrics.add(Counter::WritesFenced, 1);
        }
        holds
    }

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
