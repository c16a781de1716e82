//! Alert rules: thresholds, change vs previous close, return z-score, volume spike and the trend
//! of bar closes, configured globally and per symbol, with a cooldown per rule and an alert
//! budget per symbol.
//!
//! In: a tick, its indicators and the symbol's [`RuleState`]. Out: the alerts it raises, each with
//! a deterministic id so that a replay produces the same ids, and the kinds its budget held.

mod alert;
mod budget;
mod settings;
mod trend;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use self::alert::{Raised, escalate};
use self::budget::HourBudget;
use self::trend::TrendBars;
use super::exact_float as exact;
use super::tick::{Position, Tick};
use super::window::{Indicators, WindowConfig};

pub use self::alert::{Alert, AlertKind, AlertKinds, Severity, Trend};
pub use self::budget::MinuteCap;
pub use self::settings::{RuleConfig, RuleOverrides, RuleSet};
pub use self::trend::TrendShape;

/// What the rules remember about a symbol between ticks (part of the snapshot).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleState {
    /// Price of the previous tick, for the crossing rules.
    #[serde(with = "exact::option")]
    prev_price: Option<f64>,
    /// |change %| was above its threshold on the last tick that had one: the rule stays quiet
    /// until it falls back.
    change_breached: bool,
    /// The trend rule's bars and the trend they set.
    #[serde(default, skip_serializing_if = "TrendBars::is_empty")]
    trend: TrendBars,
    /// Alerts sent in the current hour, for the budget.
    #[serde(default, skip_serializing_if = "HourBudget::is_unused")]
    budget: HourBudget,
    /// Event time of the last alert of each rule, for the cooldown. Kept in event time, not
    /// wall-clock time, so a replay or a new owner of the shard suppresses the same alerts.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    last_alert_ms: BTreeMap<AlertKind, i64>,
}

/// The outcome of the rules for one tick.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evaluation {
    pub alerts: Vec<Alert>,
    /// Alerts the symbol's budget held back.
    pub held: AlertKinds,
    pub anomaly: bool,
    /// The trend of bar closes after this tick.
    pub trend: Option<Trend>,
}

/// Applies `rules` to one tick and updates `state`. `windows` gives the window sizes that the
/// messages name (`SMA5`, `the 5m average`).
pub fn evaluate(
    rules: &RuleSet,
    windows: &WindowConfig,
    state: &mut RuleState,
    tick: &Tick,
    indicators: &Indicators,
    position: &Position,
) -> Evaluation {
    let budget = std::mem::take(&mut state.budget);
    let budget = (budget, rules.max_alerts_per_hour);
    let mut raised = Raised::new(tick, position, rules.cooldown, budget);
    price_crossings(rules, state, &mut raised);
    change_vs_previous_close(rules, state, indicators, &mut raised);
    return_outlier(rules, state, indicators, &mut raised);
    volume_spike(rules, windows, state, indicators, &mut raised);
    // Anomaly rules that fired count even when their alert is cooling down.
    let anomaly = raised.fired;
    let trend = trend_change(rules, state, &mut raised);
    let (budget, alerts, held) = raised.into_budget();
    state.budget = budget;
    Evaluation {
        alerts,
        held,
        anomaly,
        trend,
    }
}

/// The price crossed a level: the previous price was on the other side (or there was none).
fn price_crossings(rules: &RuleSet, state: &mut RuleState, raised: &mut Raised) {
    let (price, symbol) = (raised.tick.price, &raised.tick.symbol);
    if let Some(level) = rules.price_above
        && price > level
        && state.prev_price.is_none_or(|prev| prev <= level)
    {
        raised.raise(
            &mut state.last_alert_ms,
            AlertKind::PriceAbove,
            Severity::Warning,
            price,
            level,
            || format!("{symbol} price crossed threshold {level:.2} (now {price:.2})"),
        );
    }
    if let Some(level) = rules.price_below
        && price < level
        && state.prev_price.is_none_or(|prev| prev >= level)
    {
        raised.raise(
            &mut state.last_alert_ms,
            AlertKind::PriceBelow,
            Severity::Warning,
            price,
            level,
            || format!("{symbol} price crossed below threshold {level:.2} (now {price:.2})"),
        );
    }
    state.prev_price = Some(price);
}

/// |change % vs previous close| beyond the threshold, edge-triggered: one alert per excursion.
fn change_vs_previous_close(
    rules: &RuleSet,
    state: &mut RuleState,
    indicators: &Indicators,
    raised: &mut Raised,
) {
    let (Some(threshold), Some(percent)) = (rules.change_percent, indicators.change_percent) else {
        return;
    };
    let breached = percent.abs() > threshold;
    if breached && !state.change_breached {
        let symbol = &raised.tick.symbol;
        raised.raise(
            &mut state.last_alert_ms,
            AlertKind::ChangePercent,
            escalate(percent, threshold, Severity::Warning, Severity::Critical),
            percent,
            threshold,
            || format!("{symbol} change vs previous close {percent:.2}% (threshold {threshold}%)"),
        );
    }
    state.change_breached = breached;
}

/// The latest log return is an outlier of the span's returns, and a real move.
fn return_outlier(
    rules: &RuleSet,
    state: &mut RuleState,
    indicators: &Indicators,
    raised: &mut Raised,
) {
    let moved = |r: f64| r.abs() * 100.0 >= rules.return_zscore_min_move;
    if let (Some(k), Some(z)) = (rules.return_zscore, indicators.return_zscore)
        && z.abs() > k
        && indicators.log_return.is_none_or(moved)
    {
        let symbol = &raised.tick.symbol;
        raised.raise(
            &mut state.last_alert_ms,
            AlertKind::ReturnZscore,
            escalate(z, k, Severity::Warning, Severity::Critical),
            z,
            k,
            || format!("{symbol} return z-score {z:.1} (threshold {k})"),
        );
    }
}

/// A tick's volume is a multiple of the span's mean volume.
fn volume_spike(
    rules: &RuleSet,
    windows: &WindowConfig,
    state: &mut RuleState,
    indicators: &Indicators,
    raised: &mut Raised,
) {
    if let (Some(k), Some(ratio)) = (rules.volume_spike, indicators.volume_ratio)
        && ratio > k
    {
        let symbol = &raised.tick.symbol;
        let span = humantime_serde::re::humantime::format_duration(windows.span);
        raised.raise(
            &mut state.last_alert_ms,
            AlertKind::VolumeSpike,
            escalate(ratio, k, Severity::Info, Severity::Warning),
            ratio,
            k,
            || format!("{symbol} volume {ratio:.1}x the {span} average (threshold {k}x)"),
        );
    }
}

/// The trend of bar closes, and an alert when a bar's close turns it.
fn trend_change(rules: &RuleSet, state: &mut RuleState, raised: &mut Raised) -> Option<Trend> {
    let shape = rules.trend_shape();
    let tick = raised.tick;
    let change = state.trend.update(&shape, tick.event_time_ms, tick.price);
    if let Some(change) = change
        && rules.trend_crossover
    {
        let (kind, direction) = match change.trend {
            Trend::Up => (AlertKind::TrendUp, "above"),
            Trend::Down => (AlertKind::TrendDown, "below"),
        };
        let (short, long) = (change.short, change.long);
        let bar = humantime_serde::re::humantime::format_duration(shape.bar);
        raised.raise(
            &mut state.last_alert_ms,
            kind,
            Severity::Info,
            short,
            long,
            || {
                format!(
                    "{} trend {}: {}-bar average {short:.2} moved {direction} the {}-bar average {long:.2} ({bar} bars)",
                    tick.symbol,
                    change.trend.as_str(),
                    shape.short_bars,
                    shape.long_bars,
                )
            },
        );
    }
    state.trend.trend()
}

#[cfg(test)]
mod tests;
