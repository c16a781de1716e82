//! What this worker knows about its own health, for `GET /health`, the `Unhealthy` metric and
//! the log.
//!
//! In: the stages report troubles as they meet them (a sink's writes failing, lease renewals or
//! lease-table reads failing) and the shard readers report each read they hand on. Out: a
//! [`Report`] naming every reason the worker is unhealthy, and whether a restart could help.
//!
//! A trouble counts once it has lasted `health.unhealthy-after`, except a refusal (permissions, a
//! missing resource), which retrying cannot fix and so counts at once. A shard counts as stalled
//! when its reader has handed on no read for that long: an idle shard is read every
//! `aws.idle-poll-interval`, so a reader that hands nothing on is stuck in a call or held back
//! by its sinks.

pub mod endpoint;

use std::collections::BTreeMap;
use std::fmt::Display;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::barrier::SinkKind;
use crate::metrics::Metrics;
use crate::model::ids::ShardId;

/// A part of the worker that can be in trouble.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Concern {
    /// A sink's writes.
    Sink(SinkKind),
    /// Checkpoint saves and marks.
    Checkpoints,
    /// Renewing this worker's leases.
    LeaseRenewals,
    /// Reading the lease table (new shards, free and handed-over leases).
    LeaseTable,
    /// This worker's id: another process uses it too.
    WorkerId,
}

impl Display for Concern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Concern::Sink(sink) => write!(f, "{} writes", sink.name()),
            Concern::Checkpoints => f.write_str("checkpoint writes"),
            Concern::LeaseRenewals => f.write_str("lease renewals"),
            Concern::LeaseTable => f.write_str("lease table reads"),
            Concern::WorkerId => f.write_str("worker id"),
        }
    }
}

#[derive(Debug, Clone)]
struct Trouble {
    since: Instant,
    error: String,
    /// Refused by the service: retrying (or restarting) does not help until someone fixes it.
    refused: bool,
}

/// One reason this worker is unhealthy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reason {
    /// `failing` (a concern's calls fail), `refused` (the service refuses them), or
    /// `shard_stalled`.
    pub kind: &'static str,
    /// What is failing or stalled: `lake writes`, `lease renewals`, a shard id.
    pub what: String,
    /// The latest error, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How long it has lasted.
    pub seconds: u64,
    /// Whether replacing the process could help: not while a service refuses the calls (a new
    /// process meets the same refusal and replays its backlog for nothing).
    pub restart_helps: bool,
}

impl Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} for {} s", self.what, self.kind, self.seconds)?;
        match &self.error {
            Some(error) => write!(f, ": {error}"),
            None => Ok(()),
        }
    }
}

/// Every reason the worker is unhealthy, now; healthy when empty.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    pub reasons: Vec<Reason>,
}

impl Report {
    pub fn healthy(&self) -> bool {
        self.reasons.is_empty()
    }

    /// Whether a replacement process could do better than this one.
    pub fn restart_helps(&self) -> bool {
        self.reasons.iter().any(|reason| reason.restart_helps)
    }
}

/// A shard this worker reads.
#[derive(Debug, Clone)]
struct ShardHealth {
    /// When its reader last handed a read on (or started).
    progressed: Instant,
    /// Why its latest read failed, since it last handed one on: the error, and whether the
    /// stream refuses the reads.
    read_error: Option<(String, bool)>,
}

impl ShardHealth {
    fn read_refused(&self) -> bool {
        matches!(self.read_error, Some((_, true)))
    }
}

#[derive(Debug, Default)]
struct State {
    troubles: BTreeMap<Concern, Trouble>,
    shards: BTreeMap<ShardId, ShardHealth>,
}

/// The health board of one worker, shared by every stage that reports to it.
#[derive(Debug)]
pub struct Health {
    unhealthy_after: Duration,
    state: Mutex<State>,
}

impl Health {
    pub fn new(unhealthy_after: Duration) -> Self {
        Self {
            unhealthy_after,
            state: Mutex::default(),
        }
    }

    /// A call of `concern` failed with `error`; `refused`: the service refuses it (see
    /// [`crate::failure::Failure::Refused`]). The trouble dates from the first failure since
    /// the concern last succeeded.
    pub fn failing(&self, concern: Concern, error: &dyn Display, refused: bool) {
        let mut state = self.state.lock().expect("health lock");
        let trouble = state.troubles.entry(concern).or_insert_with(|| Trouble {
            since: Instant::now(),
            error: String::new(),
            refused,
        });
        trouble.error = error.to_string();
        trouble.refused = refused;
    }

    /// A call of `concern` succeeded.
    pub fn recovered(&self, concern: Concern) {
        let removed = self
            .state
            .lock()
            .expect("health lock")
            .troubles
            .remove(&concern);
        if let Some(trouble) = removed {
            let seconds = trouble.since.elapsed().as_secs();
            tracing::info!(%concern, seconds, "Recovered.");
        }
    }

    /// This worker started reading `shard_id`.
    pub fn shard_started(&self, shard_id: &ShardId) {
        let mut state = self.state.lock().expect("health lock");
        let shard = ShardHealth {
            progressed: Instant::now(),
            read_error: None,
        };
        state.shards.insert(shard_id.clone(), shard);
    }

    /// The reader of `shard_id` handed a read on. (A reader left over after its shard was
    /// released reports nothing, here and below.)
    pub fn shard_progressed(&self, shard_id: &ShardId) {
        let mut state = self.state.lock().expect("health lock");
        if let Some(shard) = state.shards.get_mut(shard_id) {
            shard.progressed = Instant::now();
            shard.read_error = None;
        }
    }

    /// A read of `shard_id` failed (after the stream port's own retries); `refused`: the stream
    /// refuses it (a permission, a deleted stream).
    pub fn shard_read_failed(&self, shard_id: &ShardId, error: &dyn Display, refused: bool) {
        let mut state = self.state.lock().expect("health lock");
        if let Some(shard) = state.shards.get_mut(shard_id) {
            shard.read_error = Some((error.to_string(), refused));
        }
    }

    /// This worker no longer reads `shard_id`.
    pub fn shard_released(&self, shard_id: &ShardId) {
        self.state
            .lock()
            .expect("health lock")
            .shards
            .remove(shard_id);
    }

    /// The reasons this worker is unhealthy at `now`.
    pub fn report(&self, now: Instant) -> Report {
        let state = self.state.lock().expect("health lock");
        let lasted = |since: Instant| now.saturating_duration_since(since);
        let mut reasons: Vec<Reason> = state
            .troubles
            .iter()
            .filter(|(_, t)| t.refused || lasted(t.since) >= self.unhealthy_after)
            .map(|(concern, t)| Reason {
                kind: if t.refused { "refused" } else { "failing" },
                what: concern.to_string(),
                error: Some(t.error.clone()),
                seconds: lasted(t.since).as_secs(),
                restart_helps: !t.refused,
            })
            .collect();
        // A shard held back by a refusal is explained by it; a restart would not move it.
        let refused = state.troubles.values().any(|t| t.refused)
            || state.shards.values().any(|s| s.read_refused());
        for (shard_id, shard) in &state.shards {
            let seconds = lasted(shard.progressed).as_secs();
            let error = shard.read_error.as_ref().map(|(error, _)| error.clone());
            if shard.read_refused() {
                reasons.push(Reason {
                    kind: "refused",
                    what: format!("{shard_id} reads"),
                    error,
                    seconds,
                    restart_helps: false,
                });
            } else if lasted(shard.progressed) >= self.unhealthy_after {
                reasons.push(Reason {
                    kind: "shard_stalled",
                    what: shard_id.to_string(),
                    error,
                    seconds,
                    restart_helps: !refused,
                });
            }
        }
        Report { reasons }
    }
}

/// Keeps the `Unhealthy` metric current and logs each change of the worker's health, until the
/// process ends.
pub async fn watch(health: Arc<Health>, metrics: Arc<Metrics>) {
    let mut was_healthy = true;
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    loop {
        ticks.tick().await;
        let report = health.report(Instant::now());
        metrics.set_unhealthy(!report.healthy());
        match (was_healthy, report.healthy()) {
            (true, false) => {
                let reasons: Vec<String> = report.reasons.iter().map(Reason::to_string).collect();
                tracing::error!(reasons = ?reasons, restart_helps = report.restart_helps(), "Unhealthy.");
            }
            (false, true) => tracing::info!("Healthy again."),
            _ => {}
        }
        was_healthy = report.healthy();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AFTER: Duration = Duration::from_secs(60);

    #[test]
    fn a_failure_counts_once_it_has_lasted_and_a_refusal_at_once() {
        let health = Health::new(AFTER);
        let start = Instant::now();
        health.failing(Concern::Sink(SinkKind::Table), &"timeout", false);
        assert!(health.report(start).healthy());
        let later = health.report(start + AFTER + Duration::from_secs(1));
        assert_eq!(later.reasons.len(), 1);
        assert_eq!(later.reasons[0].what, "table writes");
        assert!(later.restart_helps());

        health.failing(Concern::Sink(SinkKind::Lake), &"AccessDenied", true);
        let report = health.report(Instant::now());
        assert_eq!(report.reasons[0].kind, "refused");
        assert!(!report.restart_helps());

        health.recovered(Concern::Sink(SinkKind::Lake));
        health.recovered(Concern::Sink(SinkKind::Table));
        assert!(health.report(start + 2 * AFTER).healthy());
    }

    #[test]
    fn a_repeated_failure_keeps_its_start() {
        let health = Health::new(AFTER);
        let start = Instant::now();
        health.failing(Concern::LeaseTable, &"first", false);
        health.failing(Concern::LeaseTable, &"second", false);
        let report = health.report(start + AFTER + Duration::from_secs(1));
        assert_eq!(report.reasons[0].error.as_deref(), Some("second"));
    }

    #[test]
    fn a_shard_without_progress_stalls_until_released() {
        let health = Health::new(AFTER);
        let shard: ShardId = "shardId-000000000001".into();
        health.shard_started(&shard);
        let now = Instant::now();
        assert!(health.report(now).healthy());
        let stalled = health.report(now + AFTER + Duration::from_secs(1));
        assert_eq!(stalled.reasons[0].kind, "shard_stalled");
        assert!(stalled.restart_helps());

        // Held back by a refusal: a replacement would not do better.
        health.failing(Concern::Sink(SinkKind::Lake), &"AccessDenied", true);
        let explained = health.report(now + AFTER + Duration::from_secs(1));
        assert!(!explained.restart_helps());

        // A read the stream refuses counts at once, and a read that goes through clears it.
        health.recovered(Concern::Sink(SinkKind::Lake));
        health.shard_read_failed(&shard, &"AccessDeniedException", true);
        let refused = health.report(Instant::now());
        assert_eq!(refused.reasons[0].what, "shardId-000000000001 reads");
        assert!(!refused.restart_helps());
        health.shard_progressed(&shard);
        assert!(health.report(Instant::now()).healthy());

        health.shard_released(&shard);
        assert!(health.report(now + 2 * AFTER).healthy());
        health.shard_progressed(&shard);
        assert!(
            health.report(now + 2 * AFTER).healthy(),
            "a reader left over after the release reports nothing"
        );
    }
}
