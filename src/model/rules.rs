//! Alert rules: thresholds, change vs previous close, return z-score, volume spike and SMA
//! crossover, configured globally and per symbol.
//!
//! In: a tick, its indicators and the symbol's [`RuleState`]. Out: the alerts it raises, each with
//! a deterministic id so that a replay produces the same ids.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::tick::{Position, Symbol, Tick};
use super::window::Indicators;

/// One set of rule thresholds. `None` switches a rule off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct RuleSet {
    /// Alert when the price crosses above this level.
    pub price_above: Option<f64>,
    /// Alert when the price crosses below this level.
    pub price_below: Option<f64>,
    /// Alert when |change % vs previous close| rises above this (percent).
    pub change_percent: Option<f64>,
    /// Alert when the z-score of the latest log return exceeds this (standard deviations).
    pub return_zscore: Option<f64>,
    /// Alert when a tick's volume exceeds this multiple of the span's mean volume.
    pub volume_spike: Option<f64>,
    /// Alert when SMA short crosses SMA long (trend up / trend down).
    pub trend_crossover: bool,
}

impl Default for RuleSet {
    fn default() -> Self {
        todo!()
    }
}

/// Per-symbol overrides of the global [`RuleSet`]; unset fields inherit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct RuleOverrides {
    pub price_above: Option<f64>,
    pub price_below: Option<f64>,
    pub change_percent: Option<f64>,
    pub return_zscore: Option<f64>,
    pub volume_spike: Option<f64>,
    pub trend_crossover: Option<bool>,
}

/// Global rules plus per-symbol overrides.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct RuleConfig {
    #[serde(flatten)]
    pub global: RuleSet,
    pub symbols: BTreeMap<String, RuleOverrides>,
}

impl RuleConfig {
    /// The effective rules of one symbol.
    pub fn for_symbol(&self, symbol: &str) -> RuleSet {
        let _ = symbol;
        todo!()
    }
}

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
    pub fn as_str(self) -> &'static str {
        todo!()
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
    pub fn as_str(self) -> &'static str {
        todo!()
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
        todo!()
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

/// What the rules remember about a symbol between ticks (part of the snapshot).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleState {}

/// The outcome of the rules for one tick.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evaluation {
    pub alerts: Vec<Alert>,
    pub anomaly: bool,
    pub trend: Option<Trend>,
}

/// Applies `rules` to one tick and updates `state`.
pub fn evaluate(
    rules: &RuleSet,
    state: &mut RuleState,
    tick: &Tick,
    indicators: &Indicators,
    position: &Position,
) -> Evaluation {
    let _ = (rules, state, tick, indicators, position);
    todo!()
}
