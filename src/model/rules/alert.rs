//! What the rules raise: alerts with their kind and severity, each with a deterministic id, and
//! the builder that keeps a tick's alerts while each rule's cooldown quiets repeats.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::tick::{Position, Symbol, Tick};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    PriceAbove,
    PriceBelow,
    ChangePercent,
    ReturnZscore,
    VolumeSpike,
    TrendUp,
    TrendDown,
}

impl AlertKind {
    /// The snake_case name used in alert ids and the `kind` message attribute.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::PriceAbove => "price_above",
            AlertKind::PriceBelow => "price_below",
            AlertKind::ChangePercent => "change_percent",
            AlertKind::ReturnZscore => "return_zscore",
            AlertKind::VolumeSpike => "volume_spike",
            AlertKind::TrendUp => "trend_up",
            AlertKind::TrendDown => "trend_down",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    /// The snake_case name used in the `severity` message attribute.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// Direction of the SMA short/long trend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trend {
    Up,
    Down,
}

impl Trend {
    pub fn as_str(self) -> &'static str {
        match self {
            Trend::Up => "up",
            Trend::Down => "down",
        }
    }
}

/// One alert, as every alert sink receives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Deterministic: symbol, kind, event time and stream position of the tick that raised it.
    pub id: String,
    pub symbol: Symbol,
    pub kind: AlertKind,
    pub severity: Severity,
    pub event_time_ms: i64,
    pub price: f64,
    /// The measured value that broke the rule (price, percent, z-score, volume ratio).
    pub value: f64,
    /// The configured level it was compared with.
    pub threshold: f64,
    /// Short human subject, e.g. `AAPL price crossed threshold 412.75 (now 413.10)`.
    pub message: String,
}

/// The alerts of one tick, as its rules raise them.
pub(super) struct Raised<'a> {
    pub(super) tick: &'a Tick,
    position: &'a Position,
    cooldown_ms: i64,
    /// A rule fired, whether or not its alert was cooling down.
    pub(super) fired: bool,
    pub(super) alerts: Vec<Alert>,
}

impl<'a> Raised<'a> {
    pub(super) fn new(tick: &'a Tick, position: &'a Position, cooldown: Duration) -> Self {
        Self {
            tick,
            position,
            cooldown_ms: i64::try_from(cooldown.as_millis()).unwrap_or(i64::MAX),
            fired: false,
            alerts: Vec::new(),
        }
    }

    /// Records that rule `kind` fired, and keeps its alert unless the rule is cooling down. The
    /// message is only formatted for an alert that is kept: most are quieted.
    pub(super) fn raise(
        &mut self,
        last_alert_ms: &mut BTreeMap<AlertKind, i64>,
        kind: AlertKind,
        severity: Severity,
        value: f64,
        threshold: f64,
        message: impl FnOnce() -> String,
    ) {
        self.fired = true;
        let tick = self.tick;
        let quiet = last_alert_ms
            .get(&kind)
            .is_some_and(|&last| tick.event_time_ms.saturating_sub(last) < self.cooldown_ms);
        if quiet {
            return;
        }
        last_alert_ms.insert(kind, tick.event_time_ms);
        self.alerts.push(Alert {
            id: format!(
                "{}-{}-{}-{}",
                tick.symbol,
                kind.as_str(),
                tick.event_time_ms,
                self.position
            ),
            symbol: tick.symbol.clone(),
            kind,
            severity,
            event_time_ms: tick.event_time_ms,
            price: tick.price,
            value,
            threshold,
            message: message(),
        });
    }
}

/// The higher severity once |value| is beyond twice the threshold.
pub(super) fn escalate(value: f64, threshold: f64, normal: Severity, high: Severity) -> Severity {
    if value.abs() > 2.0 * threshold {
        high
    } else {
        normal
    }
}
