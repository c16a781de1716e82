//! What the rules raise: alerts with their kind and severity, each with a deterministic id, and
//! the builder that keeps a tick's alerts while each rule's cooldown quiets repeats.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::budget::HourBudget;

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
    pub const ALL: [AlertKind; 7] = [
        AlertKind::PriceAbove,
        AlertKind::PriceBelow,
        AlertKind::ChangePercent,
        AlertKind::ReturnZscore,
        AlertKind::VolumeSpike,
        AlertKind::TrendUp,
        AlertKind::TrendDown,
    ];

    /// The kind of a snake_case name.
    pub fn parse(name: &str) -> Option<AlertKind> {
        AlertKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

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

/// A set of alert kinds: those a tick raised, or those its symbol's budget held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertKinds(u8);

impl AlertKinds {
    pub fn insert(&mut self, kind: AlertKind) {
        self.0 |= Self::bit(kind);
    }

    pub fn contains(self, kind: AlertKind) -> bool {
        self.0 & Self::bit(kind) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = AlertKind> {
        AlertKind::ALL
            .into_iter()
            .filter(move |&k| self.contains(k))
    }

    /// The names joined by commas (`trend_up,volume_spike`), `None` for no kind: the lake's text.
    pub fn to_text(self) -> Option<String> {
        (!self.is_empty()).then(|| {
            self.iter()
                .map(AlertKind::as_str)
                .collect::<Vec<_>>()
                .join(",")
        })
    }

    /// The set [`Self::to_text`] wrote; unknown names are left out.
    pub fn parse(text: &str) -> Self {
        let mut kinds = Self::default();
        text.split(',')
            .filter_map(AlertKind::parse)
            .for_each(|k| kinds.insert(k));
        kinds
    }

    fn bit(kind: AlertKind) -> u8 {
        1 << AlertKind::ALL.iter().position(|&k| k == kind).unwrap_or(0)
    }
}

impl FromIterator<AlertKind> for AlertKinds {
    fn from_iter<I: IntoIterator<Item = AlertKind>>(iter: I) -> Self {
        let mut kinds = Self::default();
        iter.into_iter().for_each(|k| kinds.insert(k));
        kinds
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
    max_per_hour: Option<u32>,
    budget: HourBudget,
    /// A rule fired, whether or not its alert was cooling down.
    pub(super) fired: bool,
    pub(super) alerts: Vec<Alert>,
    /// Alerts the symbol's budget held back.
    pub(super) held: AlertKinds,
}

impl<'a> Raised<'a> {
    /// Takes the symbol's `budget` (of `max_per_hour`) for the tick; [`Self::into_budget`]
    /// gives it back.
    pub(super) fn new(
        tick: &'a Tick,
        position: &'a Position,
        cooldown: Duration,
        (budget, max_per_hour): (HourBudget, Option<u32>),
    ) -> Self {
        Self {
            tick,
            position,
            cooldown_ms: i64::try_from(cooldown.as_millis()).unwrap_or(i64::MAX),
            max_per_hour,
            budget,
            fired: false,
            alerts: Vec::new(),
            held: AlertKinds::default(),
        }
    }

    pub(super) fn into_budget(self) -> (HourBudget, Vec<Alert>, AlertKinds) {
        (self.budget, self.alerts, self.held)
    }

    /// Records that rule `kind` fired, and keeps its alert unless the rule is cooling down or
    /// the symbol's budget for the hour is spent (then the alert is held). The message is only
    /// formatted for an alert that is kept: most are quieted.
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
        if !self.budget.admit(self.max_per_hour, tick.event_time_ms) {
            self.held.insert(kind);
            return;
        }
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
