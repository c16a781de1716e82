//! The alerter: publishes the alerts of every batch through the [`AlertSink`] port (stdout and a
//! file locally, SNS on AWS), skipping alert ids it has already published.
//!
//! Ids are deterministic, so the alerts of records read again after a hand-off or a retry have
//! the ids they had the first time. Within the process a bounded memory of recent ids drops those
//! repeats; across processes, after publishing a batch's alerts the alerter marks the shard's
//! alerts published up to the batch's last record, under the lease, and whoever reads the shard
//! next sends none of those alerts again. So an alert is published twice only when a worker stops
//! between publishing it and marking it.

use std::collections::{HashSet, VecDeque};
use std::pin::Pin;
use std::sync::Arc;

use actix::prelude::*;

use backon::Retryable;

use super::sink::SinkLinks;
use crate::alerts::AlertSink;
use crate::barrier::{ShardBatch, SinkError, SinkKind};
use crate::checkpoint::{CheckpointError, CheckpointStore, Mark};
use crate::metrics::Counter;

/// How many recent alert ids are remembered for de-duplication.
const RECENT_IDS: usize = 100_000;

/// A bounded set of recently seen ids (oldest forgotten first).
#[derive(Debug, Default)]
struct RecentIds {
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl RecentIds {
    /// True when `id` was not seen before (and remembers it).
    fn insert(&mut self, id: &str) -> bool {
        if self.set.contains(id) {
            return false;
        }
        if self.order.len() == RECENT_IDS
            && let Some(oldest) = self.order.pop_front()
        {
            self.set.remove(&oldest);
        }
        self.set.insert(id.to_owned());
        self.order.push_back(id.to_owned());
        true
    }
}

pub struct Alerter {
    sink: Arc<dyn AlertSink>,
    /// Where the alerts-published mark of each shard goes.
    checkpoints: Arc<dyn CheckpointStore>,
    links: SinkLinks,
    recent: RecentIds,
}

impl Alerter {
    pub fn new(
        sink: Arc<dyn AlertSink>,
        checkpoints: Arc<dyn CheckpointStore>,
        links: SinkLinks,
    ) -> Self {
        Self {
            sink,
            checkpoints,
            links,
            recent: RecentIds::default(),
        }
    }
}

impl Actor for Alerter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(self.links.mailbox);
    }
}

impl Handler<ShardBatch> for Alerter {
    type Result = AtomicResponse<Self, Result<(), SinkError>>;

    fn handle(&mut self, batch: ShardBatch, _: &mut Context<Self>) -> Self::Result {
        if !batch.alerts.is_empty()
            && !self
                .links
                .may_write(SinkKind::Alerts, &batch.shard_id, batch.generation())
        {
            // Neither published nor acknowledged: the next owner reads these records again.
            return AtomicResponse::new(Box::pin(fut::ready(Ok(()))));
        }
        let fresh: Vec<_> = batch
            .alerts
            .iter()
            .filter(|alert| self.recent.insert(&alert.id))
            .cloned()
            .collect();
        let (sink, links) = (self.sink.clone(), self.links.clone());
        let checkpoints = self.checkpoints.clone();
        let work = async move {
            // Again right before publishing: the batch may have waited, or the worker been
            // frozen, since it was taken.
            let shard = &batch.shard_id;
            if !fresh.is_empty() && !links.may_write(SinkKind::Alerts, shard, batch.generation()) {
                return Ok(());
            }
            // The sink decides how: SNS takes one Publish call per alert, several in flight, so
            // a burst costs about one round trip (its standard topics do not keep order anyway);
            // the local file takes the batch in one write.
            sink.publish_all(&fresh)
                .await
                .map_err(|e| SinkError::new(SinkKind::Alerts, e))?;
            links
                .metrics
                .add(Counter::AlertsPublished, fresh.len() as u64);
            if let (false, Some(through)) = (fresh.is_empty(), &batch.through) {
                let mark = Mark::AlertsPublished(through.clone());
                let marked = (|| checkpoints.mark(&batch.fence, &mark))
                    .retry(crate::retry::backoff())
                    .when(|e| e.is_retryable())
                    .notify(|e, wait| tracing::warn!(error = %e, ?wait, "Marking alerts published failed, retrying."))
                    .await;
                match marked {
                    Ok(()) => {}
                    Err(CheckpointError::LeaseLost { .. }) => {
                        tracing::warn!(shard_id = %batch.shard_id,
                            "Lease lost; no more alerts are published for the shard.");
                        return Ok(());
                    }
                    Err(error) => return Err(SinkError::new(SinkKind::Alerts, error)),
                }
            }
            match batch.barrier {
                Some(position) => {
                    links
                        .acknowledge(
                            SinkKind::Alerts,
                            batch.shard_id,
                            batch.fence.counter,
                            position,
                        )
                        .await
                }
                None => Ok(()),
            }
        };
        let work: Pin<Box<dyn Future<Output = _>>> = Box::pin(work);
        AtomicResponse::new(Box::pin(work.into_actor(self)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_ids_forget_the_oldest_beyond_capacity() {
        let mut recent = RecentIds::default();
        assert!(recent.insert("a"));
        assert!(!recent.insert("a"));
        for i in 0..RECENT_IDS {
            recent.insert(&i.to_string());
        }
        assert!(
            recent.insert("a"),
            "the oldest id is forgotten once the set is full"
        );
        assert_eq!(recent.order.len(), RECENT_IDS);
    }
}
