//! The alerter: publishes the alerts of every batch through the [`AlertSink`] port (stdout and a
//! file locally, SNS on AWS), skipping alert ids it has already published.
//!
//! Ids are deterministic, so the alerts of records read again after a hand-off or a retry have
//! the ids they had the first time. Within the process a bounded memory of recent ids drops those
//! repeats; across processes, after publishing a batch's alerts the alerter marks the shard's
//! alerts published up to the batch's last record, under the lease, and whoever reads the shard
//! next sends none of those alerts again. So an alert is published twice only when a worker stops
//! between publishing it and marking it.
//!
//! Publishing runs apart from the actor, batch after batch in order, so an unreachable topic
//! holds up no reader until `alerts.max-backlog` alerts wait: the table and the lake go on
//! meanwhile (a shard's checkpoint, which needs its alerts published, waits). Alerts the topic
//! refuses on their own become dead letters ([`RefusedItems`]).

use std::cell::RefCell;
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use actix::prelude::*;
use tokio::sync::Semaphore;
use tracing::Instrument;

use super::refused::RefusedItems;
use super::sink::{BackgroundWrite, SinkLinks};
use super::span;
use crate::alerts::{AlertError, AlertSink};
use crate::barrier::{ShardBatch, SinkError, SinkKind};
use crate::checkpoint::{CheckpointError, CheckpointStore, Mark};
use crate::config::AlertsConfig;
use crate::failure::Failure;
use crate::health::Concern;
use crate::lease::Fence;
use crate::metrics::Counter;
use crate::model::dead_letter::DeadLetter;
use crate::model::digest::hex_md5;
use crate::model::ids::ShardId;
use crate::model::rules::{Alert, AlertKinds, MinuteCap};
use crate::model::tick::Position;
use crate::retry::persistently;

/// How many recent alert ids are remembered for de-duplication.
const RECENT_IDS: usize = 100_000;

/// A bounded set of recently seen ids (oldest forgotten first).
#[derive(Debug, Default)]
struct RecentIds {
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl RecentIds {
    /// Forgets `id`: it was taken but not published, so a later read of it must publish it.
    fn forget(&mut self, id: &str) {
        self.set.remove(id);
    }

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
    /// Where alerts the topic refuses go.
    refused: RefusedItems,
    links: SinkLinks,
    /// Shared with the publishing, which forgets the ids of alerts it gave up on.
    recent: Arc<Mutex<RecentIds>>,
    /// Room for alerts taken but not yet published: a batch takes room for its alerts and gives
    /// it back once they are published. While the topic cannot be reached, batches are taken
    /// (so the table and the lake go on) until the room runs out.
    backlog: Arc<Semaphore>,
    max_backlog: usize,
    /// The latest batch's publishing; the next batch's waits for it, so batches are published,
    /// marked and acknowledged in the order they came.
    last: Option<BackgroundWrite>,
    /// The task's cap of alerts per minute (`alerts.max-per-minute`), and the last minute whose
    /// held alerts were logged (one line a minute, however many batches it held).
    cap: Option<MinuteCap>,
    logged_minute: Option<i64>,
}

impl Alerter {
    pub fn new(
        sink: Arc<dyn AlertSink>,
        checkpoints: Arc<dyn CheckpointStore>,
        refused: RefusedItems,
        links: SinkLinks,
        settings: &AlertsConfig,
    ) -> Self {
        let max_backlog = settings.max_backlog.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            sink,
            checkpoints,
            refused,
            links,
            recent: Arc::default(),
            backlog: Arc::new(Semaphore::new(max_backlog)),
            max_backlog,
            last: None,
            cap: settings.max_per_minute.map(MinuteCap::new),
            logged_minute: None,
        }
    }

    /// The alerts within the task's cap per minute; the others are held: counted and logged,
    /// not published (and, like published ones, not sent again on a replay of the process).
    fn within_cap(&mut self, fresh: Vec<Alert>) -> Vec<Alert> {
        let Some(cap) = &mut self.cap else {
            return fresh;
        };
        let (sent, held): (Vec<Alert>, Vec<Alert>) = fresh
            .into_iter()
            .partition(|alert| cap.admit(alert.event_time_ms));
        let Some(first) = held.first() else {
            return sent;
        };
        let metrics = &self.links.metrics;
        metrics.add(Counter::AlertsHeld, held.len() as u64);
        metrics.add(Counter::AlertsCapped, held.len() as u64);
        let minute = first.event_time_ms.div_euclid(60_000);
        if self.logged_minute.is_none_or(|logged| logged < minute) {
            self.logged_minute = Some(minute);
            let kinds: AlertKinds = held.iter().map(|alert| alert.kind).collect();
            tracing::warn!(
                minute_start_ms = minute * 60_000,
                held = held.len(),
                kinds = kinds.to_text().unwrap_or_default(),
                "Alerts over alerts.max-per-minute held back (counted in AlertsCapped)."
            );
        }
        sent
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
        let shard_span = span::shard(&batch.shard_id, batch.generation());
        let _in_shard = shard_span.clone().entered();
        let nothing_to_do = batch.alerts.is_empty() && batch.barrier.is_none();
        if nothing_to_do
            || (!batch.alerts.is_empty()
                && !self.links.may_write(&batch.shard_id, batch.generation()))
        {
            // Neither published nor acknowledged: the next owner reads these records again.
            return AtomicResponse::new(Box::pin(fut::ready(Ok(()))));
        }
        let fresh: Vec<_> = batch
            .alerts
            .iter()
            .filter(|alert| self.recent.lock().expect("recent ids").insert(&alert.id))
            .cloned()
            .collect();
        let fresh = self.within_cap(fresh);
        let room = self
            .backlog
            .clone()
            .acquire_many_owned(fresh.len().min(self.max_backlog) as u32);
        let publishing = Publishing {
            sink: self.sink.clone(),
            checkpoints: self.checkpoints.clone(),
            refused: self.refused.clone(),
            links: self.links.clone(),
            recent: self.recent.clone(),
            shard_id: batch.shard_id,
            fence: batch.fence,
            through: batch.through,
            barrier: batch.barrier,
            fresh,
        };
        let previous = self.last.take();
        // The batch is taken once there is room for its alerts.
        let work = room.into_actor(self).map(move |room, act, _| {
            let room = room.expect("the backlog is never closed");
            let fatal = act.links.fatal.clone();
            let write = async move {
                let result = publishing.run().await;
                drop(room);
                result
            }
            .instrument(shard_span);
            let (last, _) = BackgroundWrite::spawn_after(previous, SinkKind::Alerts, fatal, write);
            act.last = Some(last);
            Ok(())
        });
        AtomicResponse::new(Box::pin(work))
    }
}

/// One batch's alerts: published, marked, then the batch's barrier acknowledged. (Only what
/// that takes is kept, not the batch: its ticks are freed while the alerts wait.)
struct Publishing {
    sink: Arc<dyn AlertSink>,
    checkpoints: Arc<dyn CheckpointStore>,
    refused: RefusedItems,
    links: SinkLinks,
    recent: Arc<Mutex<RecentIds>>,
    shard_id: ShardId,
    fence: Fence,
    through: Option<Position>,
    barrier: Option<Position>,
    fresh: Vec<Alert>,
}

impl Publishing {
    async fn run(self) -> Result<(), SinkError> {
        let Self {
            sink,
            checkpoints,
            refused,
            links,
            recent,
            shard_id,
            fence,
            through,
            barrier,
            fresh,
        } = self;
        let shard = &shard_id;
        // Asked again before every try: the batch may have waited, or the worker been frozen,
        // since it was taken.
        let may_write = || links.may_write(shard, fence.counter);
        if !fresh.is_empty() {
            let published = fresh.len() as u64;
            let ids: Vec<String> = fresh.iter().map(|alert| alert.id.clone()).collect();
            match publish(&*sink, fresh, &links, may_write).await {
                Some(refusals) => {
                    for (alert, error) in refusals {
                        let (letter, name) = refused_alert(shard, &alert, &error);
                        refused.keep("alerts", &name, letter, &links).await;
                    }
                }
                // Not all published: whoever reads these records again (maybe a later reader
                // in this process) must publish them, so they are not "seen" any more.
                None => {
                    let mut recent = recent.lock().expect("recent ids");
                    ids.iter().for_each(|id| recent.forget(id));
                    return Ok(());
                }
            }
            links.metrics.add(Counter::AlertsPublished, published);
            if let Some(through) = &through {
                let mark = Mark::AlertsPublished(through.clone());
                let report = links.reporting_as(Concern::Checkpoints);
                let marked = persistently(report, CheckpointError::failure, may_write, || {
                    checkpoints.mark(&fence, &mark)
                });
                if marked.await.is_err() {
                    tracing::warn!("Lease lost; no more alerts are published for the shard.");
                    return Ok(());
                }
            }
        }
        match barrier {
            Some(position) => {
                links
                    .acknowledge(SinkKind::Alerts, shard_id, fence.counter, position)
                    .await
            }
            None => Ok(()),
        }
    }
}

/// Publishes `alerts` until each is delivered or refused on its own (returned, with the topic's
/// reason), trying the undelivered again as long as `may_write`; `None` once it may not. A call
/// of several alerts that refuses every one of them is no alert's fault (a FIFO-only attribute
/// on a standard topic, say): it is tried again, as a refusal of the topic.
async fn publish(
    sink: &dyn AlertSink,
    alerts: Vec<Alert>,
    links: &SinkLinks,
    may_write: impl Fn() -> bool,
) -> Option<Vec<(Alert, AlertError)>> {
    let pending = RefCell::new(alerts);
    let refusals = RefCell::new(Vec::new());
    let attempt = || {
        let alerts = pending.take();
        let (pending, refusals) = (&pending, &refusals);
        async move {
            let failed = sink.publish_all(&alerts).await;
            let every_one_refused = alerts.len() > 1
                && failed.len() == alerts.len()
                && failed
                    .iter()
                    .all(|(_, e)| e.failure() == Failure::ItemRefused);
            if every_one_refused {
                let (_, error) = &failed[0];
                *pending.borrow_mut() = alerts;
                return Err(error.as_refusal_of_the_topic());
            }
            let mut last_error = None;
            let mut again = Vec::new();
            for (index, error) in failed {
                match error.failure() {
                    Failure::ItemRefused => {
                        refusals.borrow_mut().push((alerts[index].clone(), error))
                    }
                    _ => {
                        again.push(alerts[index].clone());
                        last_error = Some(error);
                    }
                }
            }
            *pending.borrow_mut() = again;
            last_error.map_or(Ok(()), Err)
        }
    };
    let report = links.reporting(SinkKind::Alerts);
    persistently(report, AlertError::failure, may_write, attempt)
        .await
        .ok()?;
    Some(refusals.into_inner())
}

/// The dead letter of an alert the topic refused, and the name of its object.
fn refused_alert(shard: &ShardId, alert: &Alert, error: &AlertError) -> (DeadLetter, String) {
    let json = serde_json::to_string(alert).expect("alerts serialize");
    let letter = DeadLetter {
        shard_id: shard.clone(),
        // The alert's id names the tick that raised it.
        position: Position::before_any(),
        partition_key: alert.symbol.as_str().into(),
        arrival_time_ms: alert.event_time_ms,
        reason_code: "refused_by_topic",
        reason: error.to_string(),
        data: json.into(),
    };
    (letter, hex_md5(alert.id.as_bytes()))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use async_trait::async_trait;

    use super::*;
    use crate::actors::test_support::{
        answered_ok, eventually, eventually_within, sink_links, still_waiting, tick_batch,
    };
    use crate::checkpoint::file::FileCheckpointStore;
    use crate::health::Health;
    use crate::model::rules::{AlertKind, Severity};
    use crate::objects::ObjectStore;
    use crate::objects::local::LocalObjectStore;

    /// A topic that refuses every publish (a missing permission) until it is opened, and then
    /// counts what it delivers.
    #[derive(Default)]
    struct ClosedTopic {
        open: AtomicBool,
        delivered: std::sync::Mutex<Vec<String>>,
    }

    #[async_trait]
    impl AlertSink for ClosedTopic {
        async fn publish(&self, alert: &Alert) -> Result<(), AlertError> {
            if !self.open.load(Ordering::SeqCst) {
                return Err(AlertError::Publish {
                    alert_id: alert.id.clone(),
                    message: "AuthorizationError".into(),
                    failure: Failure::Refused,
                });
            }
            self.delivered.lock().unwrap().push(alert.id.clone());
            Ok(())
        }
    }

    /// A topic that refuses (as one invalid message) the alerts named in `refused`, or every
    /// alert while `refuses_all` (a topic misconfigured), and keeps what it delivers.
    #[derive(Default)]
    struct PickyTopic {
        refused: Vec<String>,
        refuses_all: AtomicBool,
        delivered: std::sync::Mutex<Vec<String>>,
    }

    #[async_trait]
    impl AlertSink for PickyTopic {
        async fn publish(&self, alert: &Alert) -> Result<(), AlertError> {
            if self.refuses_all.load(Ordering::SeqCst) || self.refused.contains(&alert.id) {
                return Err(AlertError::Publish {
                    alert_id: alert.id.clone(),
                    message: "InvalidParameter: Invalid parameter: Message too long".into(),
                    failure: Failure::ItemRefused,
                });
            }
            self.delivered.lock().unwrap().push(alert.id.clone());
            Ok(())
        }
    }

    /// An alerter of `topic` for shardId-000000000001 (lease held) with room for `backlog`
    /// alerts; dead letters under `dir`.
    fn alerter_of(
        dir: &std::path::Path,
        topic: Arc<dyn AlertSink>,
        backlog: usize,
    ) -> (Addr<Alerter>, Arc<Health>) {
        let settings = AlertsConfig {
            max_backlog: backlog,
            max_per_minute: None,
            ..AlertsConfig::default()
        };
        let (alerter, health, _) = alerter_with(dir, topic, &settings);
        (alerter, health)
    }

    fn alerter_with(
        dir: &std::path::Path,
        topic: Arc<dyn AlertSink>,
        settings: &AlertsConfig,
    ) -> (Addr<Alerter>, Arc<Health>, Arc<crate::metrics::Metrics>) {
        let (links, _) = sink_links(dir, SinkKind::Alerts);
        let shard = "shardId-000000000001".into();
        links.leases.renewed(&shard, 1, std::time::Instant::now());
        let refused = RefusedItems {
            objects: Arc::new(LocalObjectStore::new(dir.to_path_buf())),
            prefix: String::new(),
        };
        let checkpoints = Arc::new(FileCheckpointStore::new(dir.join("checkpoints")));
        let (health, metrics) = (links.health.clone(), links.metrics.clone());
        let alerter = Alerter::new(topic, checkpoints, refused, links, settings).start();
        (alerter, health, metrics)
    }

    #[actix::test]
    async fn alerts_beyond_the_cap_per_minute_are_held_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let topic = Arc::new(PickyTopic::default());
        let settings = AlertsConfig {
            max_per_minute: Some(3),
            ..AlertsConfig::default()
        };
        let (alerter, _, metrics) = alerter_with(dir.path(), topic.clone(), &settings);
        // Seven alerts of one minute, in two batches: three go out, four are held.
        assert!(answered_ok(alerter.send(with_alerts(1, 5))).await);
        assert!(answered_ok(alerter.send(with_alerts(2, 2))).await);
        let held = async || metrics.total(Counter::AlertsHeld) == 4;
        assert!(eventually(async || metrics.total(Counter::AlertsCapped) == 4).await);
        assert!(eventually(held).await);
        assert!(eventually(async || topic.delivered.lock().unwrap().len() == 3).await);
        assert_eq!(
            *topic.delivered.lock().unwrap(),
            ["alert-1-0", "alert-1-1", "alert-1-2"]
        );
        assert!(dead_letters(dir.path()).await.is_empty());
    }

    async fn dead_letters(dir: &std::path::Path) -> Vec<String> {
        let objects = LocalObjectStore::new(dir.to_path_buf());
        let mut lines = Vec::new();
        for key in objects.list("dead-letters/").await.unwrap() {
            let body = objects.get(&key).await.unwrap().unwrap();
            lines.extend(
                String::from_utf8(body.to_vec())
                    .unwrap()
                    .lines()
                    .map(str::to_owned),
            );
        }
        lines
    }

    #[actix::test]
    async fn an_alert_the_topic_refuses_is_dead_lettered_and_the_others_are_published() {
        let dir = tempfile::tempdir().unwrap();
        let topic = Arc::new(PickyTopic {
            refused: vec!["alert-1-2".to_owned()],
            ..PickyTopic::default()
        });
        let (alerter, _) = alerter_of(dir.path(), topic.clone(), 100);
        assert!(answered_ok(alerter.send(with_alerts(1, 5))).await);
        assert!(eventually(async || topic.delivered.lock().unwrap().len() == 4).await);
        assert!(eventually(async || dead_letters(dir.path()).await.len() == 1).await);
        let letter: serde_json::Value =
            serde_json::from_str(&dead_letters(dir.path()).await[0]).unwrap();
        assert_eq!(letter["reason_code"], "refused_by_topic");
        assert!(
            letter["reason"]
                .as_str()
                .unwrap()
                .contains("InvalidParameter")
        );
        assert!(letter["data"].as_str().unwrap().contains("alert-1-2"));
    }

    #[actix::test]
    async fn a_topic_that_refuses_every_alert_is_a_refusal_not_a_dead_letter_each() {
        let dir = tempfile::tempdir().unwrap();
        let topic = Arc::new(PickyTopic::default());
        topic.refuses_all.store(true, Ordering::SeqCst);
        let (alerter, health) = alerter_of(dir.path(), topic.clone(), 100);
        assert!(answered_ok(alerter.send(with_alerts(1, 5))).await);
        let refused = async || {
            let report = health.report(std::time::Instant::now());
            !report.healthy()
        };
        assert!(eventually(refused).await, "reported as the topic's refusal");
        topic.refuses_all.store(false, Ordering::SeqCst);
        let all = async || topic.delivered.lock().unwrap().len() == 5;
        assert!(eventually_within(std::time::Duration::from_secs(10), all).await);
        assert!(
            dead_letters(dir.path()).await.is_empty(),
            "no alert was dead-lettered"
        );
    }

    fn with_alerts(sequence: u64, count: usize) -> ShardBatch {
        let alert = |i: usize| Alert {
            id: format!("alert-{sequence}-{i}"),
            symbol: "AAPL".into(),
            kind: AlertKind::PriceAbove,
            severity: Severity::Warning,
            event_time_ms: 1_767_623_400_000,
            price: 413.10,
            value: 413.10,
            threshold: 412.75,
            message: "AAPL price crossed threshold 412.75 (now 413.10)".to_owned(),
        };
        ShardBatch {
            alerts: (0..count).map(alert).collect(),
            ..tick_batch("shardId-000000000001", sequence, false)
        }
    }

    #[actix::test]
    async fn an_unreachable_topic_holds_up_no_batch_until_the_backlog_is_full() {
        let dir = tempfile::tempdir().unwrap();
        let topic = Arc::new(ClosedTopic::default());
        let (alerter, health) = alerter_of(dir.path(), topic.clone(), 10);

        for sequence in 1..=2 {
            let reply = alerter.send(with_alerts(sequence, 5));
            assert!(
                answered_ok(reply).await,
                "batch {sequence} is taken while the topic refuses"
            );
        }
        let full = actix::spawn(alerter.send(with_alerts(3, 5)));
        assert!(
            still_waiting(&full).await,
            "taken beyond the backlog of 10 alerts"
        );
        assert!(
            !health.report(std::time::Instant::now()).healthy(),
            "the refusal is reported at once"
        );

        topic.open.store(true, Ordering::SeqCst);
        full.await.unwrap().unwrap().unwrap();
        assert!(eventually(async || topic.delivered.lock().unwrap().len() == 15).await);
        let delivered = topic.delivered.lock().unwrap().clone();
        let first_batch: Vec<_> = (0..5).map(|i| format!("alert-1-{i}")).collect();
        assert!(
            delivered.iter().take(5).all(|id| first_batch.contains(id)),
            "batches are published in the order they came: {delivered:?}"
        );
    }

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
