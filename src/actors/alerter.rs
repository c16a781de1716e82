//! The alerter: publishes the alerts of every batch through the [`AlertSink`] port (stdout and a
//! file locally, SNS on AWS), skipping alert ids it has already published.
//!
//! Ids are deterministic, so the alerts of records read again after a hand-off or a retry have
//! the ids they had the first time; a bounded memory of recent ids drops those repeats.

use std::collections::{HashSet, VecDeque};
use std::pin::Pin;
use std::sync::Arc;

use actix::prelude::*;

use super::sink::SinkLinks;
use crate::alerts::AlertSink;
use crate::barrier::{ShardBatch, SinkError, SinkKind};
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
    links: SinkLinks,
    recent: RecentIds,
}

impl Alerter {
    pub fn new(sink: Arc<dyn AlertSink>, links: SinkLinks) -> Self {
        Self {
            sink,
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
        let work = async move {
            // The sink decides how: SNS takes one Publish call per alert, several in flight, so
            // a burst costs about one round trip (its standard topics do not keep order anyway);
            // the local file takes the batch in one write.
            sink.publish_all(&fresh)
                .await
                .map_err(|e| SinkError::new(SinkKind::Alerts, e))?;
            links
                .metrics
                .add(Counter::AlertsPublished, fresh.len() as u64);
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
