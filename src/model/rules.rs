//! Alert rules: thresholds, change vs previous close, return z-score, volume spike and SMA
//! crossover, configured globally and per symbol.
//!
//! In: a tick, its indicators and the symbol's [`RuleState`]. Out: the alerts it raises, each with
//! a deterministic id so that a replay produces the same ids.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::exact_float as exact;
use super::tick::{Position, Symbol, Tick};
use super::window::{Indicators, WindowConfig};

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
    /// After an alert, the same rule stays quiet for this symbol for this long (event time), so
    /// a run of anomalous ticks sends one e-mail or SMS, not hundreds.
    #[serde(with = "humantime_serde")]
    pub cooldown: Duration,
}

impl Default for RuleSet {
    fn default() -> Self {
        Self {
            price_above: None,
            price_below: None,
            change_percent: Some(5.0),
            return_zscore: Some(4.0),
            volume_spike: Some(5.0),
            trend_crossover: true,
            cooldown: Duration::from_secs(60),
        }
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
    #[serde(with = "humantime_serde::option")]
    pub cooldown: Option<Duration>,
}

/// Rules for every symbol (`[rules.default]`) plus per-symbol overrides (`[rules.symbols.AAPL]`).
///
/// Not `#[serde(flatten)]`: flattening silently disables `deny_unknown_fields`, and a misspelt
/// threshold must be an error, not a rule that never fires.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct RuleConfig {
    pub default: RuleSet,
    pub symbols: BTreeMap<String, RuleOverrides>,
}

impl RuleConfig {
    /// The effective rules of one symbol.
    pub fn for_symbol(&self, symbol: &str) -> RuleSet {
        let global = &self.default;
        let Some(o) = self.symbols.get(symbol) else {
            return global.clone();
        };
        RuleSet {
            price_above: o.price_above.or(global.price_above),
            price_below: o.price_below.or(global.price_below),
            change_percent: o.change_percent.or(global.change_percent),
            return_zscore: o.return_zscore.or(global.return_zscore),
            volume_spike: o.volume_spike.or(global.volume_spike),
            trend_crossover: o.trend_crossover.unwrap_or(global.trend_crossover),
            cooldown: o.cooldown.unwrap_or(global.cooldown),
        }
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

/// What the rules remember about a symbol between ticks (part of the snapshot).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleState {
    /// Price of the previous tick, for the crossing rules.
    #[serde(with = "exact::option")]
    prev_price: Option<f64>,
    /// |change %| was above its threshold on the last tick that had one: the rule stays quiet
    /// until it falls back.
    change_breached: bool,
    /// The last known SMA trend, so that only a change of trend alerts.
    last_trend: Option<Trend>,
    /// Event time of the last alert of each rule, for the cooldown. Kept in event time, not
    /// wall-clock time, so a replay or a new owner of the shard suppresses the same alerts.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    last_alert_ms: BTreeMap<AlertKind, i64>,
}

/// The outcome of the rules for one tick.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evaluation {
    pub alerts: Vec<Alert>,
    pub anomaly: bool,
    pub trend: Option<Trend>,
}

/// The alerts of one tick, as its rules raise them.
struct Raised<'a> {
    tick: &'a Tick,
    position: &'a Position,
    cooldown_ms: i64,
    /// A rule fired, whether or not its alert was cooling down.
    fired: bool,
    alerts: Vec<Alert>,
}

impl Raised<'_> {
    /// Records that rule `kind` fired, and keeps its alert unless the rule is cooling down. The
    /// message is only formatted for an alert that is kept: most are quieted.
    fn raise(
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
    let price = tick.price;
    let symbol = &tick.symbol;
    let cooldown_ms = i64::try_from(rules.cooldown.as_millis()).unwrap_or(i64::MAX);
    let mut raised = Raised {
        tick,
        position,
        cooldown_ms,
        fired: false,
        alerts: Vec::new(),
    };
    // Crossing: the previous price was on the other side (or there was none).
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

    // Edge-triggered: one alert per excursion beyond the threshold.
    if let (Some(threshold), Some(percent)) = (rules.change_percent, indicators.change_percent) {
        let breached = percent.abs() > threshold;
        if breached && !state.change_breached {
            raised.raise(
                &mut state.last_alert_ms,
                AlertKind::ChangePercent,
                escalate(percent, threshold, Severity::Warning, Severity::Critical),
                percent,
                threshold,
                || {
                    format!(
                        "{symbol} change vs previous close {percent:.2}% (threshold {threshold}%)"
                    )
                },
            );
        }
        state.change_breached = breached;
    }

    if let (Some(k), Some(z)) = (rules.return_zscore, indicators.return_zscore)
        && z.abs() > k
    {
        raised.raise(
            &mut state.last_alert_ms,
            AlertKind::ReturnZscore,
            escalate(z, k, Severity::Warning, Severity::Critical),
            z,
            k,
            || format!("{symbol} return z-score {z:.1} (threshold {k})"),
        );
    }

    if let (Some(k), Some(ratio)) = (rules.volume_spike, indicators.volume_ratio)
        && ratio > k
    {
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
    // Anomaly rules that fired count even when their alert is cooling down.
    let anomaly = raised.fired;

    let averages = indicators.sma_short.zip(indicators.sma_long);
    let trend = match averages {
        Some((short, long)) if short > long => Some(Trend::Up),
        Some((short, long)) if short < long => Some(Trend::Down),
        // Equal averages do not make a new trend.
        Some(_) => state.last_trend,
        None => None,
    };
    if let (Some((short, long)), Some(trend), Some(last)) = (averages, trend, state.last_trend)
        && trend != last
        && rules.trend_crossover
    {
        let (kind, direction) = match trend {
            Trend::Up => (AlertKind::TrendUp, "above"),
            Trend::Down => (AlertKind::TrendDown, "below"),
        };
        raised.raise(
            &mut state.last_alert_ms,
            kind,
            Severity::Info,
            short,
            long,
            || {
                format!(
                    "{symbol} trend {}: SMA{} {short:.2} crossed {direction} SMA{} {long:.2}",
                    trend.as_str(),
                    windows.sma_short,
                    windows.sma_long
                )
            },
        );
    }
    if trend.is_some() {
        state.last_trend = trend;
    }

    Evaluation {
        alerts: raised.alerts,
        anomaly,
        trend,
    }
}

/// The higher severity once |value| is beyond twice the threshold.
fn escalate(value: f64, threshold: f64, normal: Severity, high: Severity) -> Severity {
    if value.abs() > 2.0 * threshold {
        high
    } else {
        normal
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tick::SequenceNumber;

    fn tick(symbol: &str, price: f64) -> Tick {
        Tick {
            symbol: symbol.into(),
            price,
            event_time_ms: 1_700_000_000_000,
            open: None,
            high: None,
            low: None,
            previous_close: None,
            change: None,
            change_percent: None,
            volume: None,
        }
    }

    fn position() -> Position {
        Position::new(
            SequenceNumber::new("49590338271490256608559692538361571095921575989136588898"),
            3,
        )
    }

    /// Only the rules a test switches on.
    fn none() -> RuleSet {
        RuleSet {
            price_above: None,
            price_below: None,
            change_percent: None,
            return_zscore: None,
            volume_spike: None,
            trend_crossover: false,
            cooldown: Duration::ZERO,
        }
    }

    /// Runs the rules over prices with the given indicators; returns the alerts of each tick.
    fn run(rules: &RuleSet, ticks: &[(Tick, Indicators)]) -> Vec<Evaluation> {
        let mut state = RuleState::default();
        let windows = WindowConfig::default();
        ticks
            .iter()
            .map(|(t, i)| evaluate(rules, &windows, &mut state, t, i, &position()))
            .collect()
    }

    fn kinds(evaluations: &[Evaluation]) -> Vec<Vec<AlertKind>> {
        evaluations
            .iter()
            .map(|e| e.alerts.iter().map(|a| a.kind).collect())
            .collect()
    }

    fn prices(symbol: &str, prices: &[f64]) -> Vec<(Tick, Indicators)> {
        prices
            .iter()
            .map(|&p| (tick(symbol, p), Indicators::default()))
            .collect()
    }

    #[test]
    fn defaults() {
        let d = RuleSet::default();
        assert_eq!((d.price_above, d.price_below), (None, None));
        assert_eq!(d.change_percent, Some(5.0));
        assert_eq!(d.return_zscore, Some(4.0));
        assert_eq!(d.volume_spike, Some(5.0));
        assert!(d.trend_crossover);
    }

    #[test]
    fn names_are_snake_case() {
        assert_eq!(AlertKind::PriceAbove.as_str(), "price_above");
        assert_eq!(AlertKind::ReturnZscore.as_str(), "return_zscore");
        assert_eq!(AlertKind::TrendDown.as_str(), "trend_down");
        assert_eq!(Severity::Critical.as_str(), "critical");
        assert_eq!(Trend::Up.as_str(), "up");
        for kind in [
            AlertKind::ChangePercent,
            AlertKind::VolumeSpike,
            AlertKind::TrendUp,
        ] {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
    }

    #[test]
    fn overrides_merge_over_defaults() {
        let config: RuleConfig = serde_json::from_str(
            r#"{"default": {"change-percent": 3, "price-below": 10},
                "symbols": {"AAPL": {"price-above": 200, "trend-crossover": false}}}"#,
        )
        .unwrap();
        let aapl = config.for_symbol("AAPL");
        assert_eq!(aapl.price_above, Some(200.0));
        assert_eq!(aapl.price_below, Some(10.0));
        assert_eq!(aapl.change_percent, Some(3.0));
        assert_eq!(aapl.return_zscore, Some(4.0));
        assert!(!aapl.trend_crossover);
        assert_eq!(config.for_symbol("MSFT"), config.default);
        let typo = serde_json::from_str::<RuleConfig>(r#"{"symbols": {"A": {"price-abve": 1}}}"#);
        assert!(typo.is_err());
        let typo = serde_json::from_str::<RuleConfig>(r#"{"default": {"change-prcent": 1}}"#);
        assert!(typo.is_err());
    }

    #[test]
    fn cooldown_quiets_a_rule_per_symbol_in_event_time_and_survives_a_snapshot() {
        let rules = RuleSet {
            return_zscore: Some(3.0),
            volume_spike: Some(2.0),
            cooldown: Duration::from_secs(60),
            ..none()
        };
        let windows = WindowConfig::default();
        let at = |seconds: i64| {
            let mut t = tick("AAPL", 100.0);
            t.event_time_ms += seconds * 1000;
            let indicators = Indicators {
                return_zscore: Some(5.0),
                volume_ratio: (seconds == 30).then_some(4.0),
                ..Indicators::default()
            };
            (t, indicators)
        };
        let mut state = RuleState::default();
        let fired = |state: &mut RuleState, seconds| {
            let (t, i) = at(seconds);
            let e = evaluate(&rules, &windows, state, &t, &i, &position());
            assert!(
                e.anomaly,
                "the tick is an anomaly even when its alert is quiet"
            );
            e.alerts.iter().map(|a| a.kind).collect::<Vec<_>>()
        };
        assert_eq!(fired(&mut state, 0), [AlertKind::ReturnZscore]);
        assert_eq!(fired(&mut state, 59), []);
        // Another rule of the same symbol has its own cooldown.
        assert_eq!(fired(&mut state, 30), [AlertKind::VolumeSpike]);
        let json = serde_json::to_string(&state).unwrap();
        let mut restored: RuleState = serde_json::from_str(&json).unwrap();
        assert_eq!(fired(&mut restored, 59), []);
        assert_eq!(fired(&mut restored, 60), [AlertKind::ReturnZscore]);
    }

    #[test]
    fn price_above_alerts_on_crossing_only() {
        let rules = RuleSet {
            price_above: Some(412.75),
            ..none()
        };
        let e = run(
            &rules,
            &prices("AAPL", &[413.1, 414.0, 412.75, 413.0, 412.0, 412.8]),
        );
        use AlertKind::PriceAbove as A;
        // First tick above counts; staying above does not; from exactly the level it does.
        assert_eq!(
            kinds(&e),
            [vec![A], vec![], vec![], vec![A], vec![], vec![A]]
        );
        let alert = &e[0].alerts[0];
        assert_eq!(
            alert.message,
            "AAPL price crossed threshold 412.75 (now 413.10)"
        );
        assert_eq!(alert.severity, Severity::Warning);
        assert_eq!(
            (alert.value, alert.threshold, alert.price),
            (413.1, 412.75, 413.1)
        );
        assert!(e[0].anomaly && !e[1].anomaly);
    }

    #[test]
    fn price_below_alerts_on_crossing_only() {
        let rules = RuleSet {
            price_below: Some(100.0),
            ..none()
        };
        let e = run(&rules, &prices("AAPL", &[101.0, 99.5, 99.0, 100.0, 99.9]));
        use AlertKind::PriceBelow as B;
        assert_eq!(kinds(&e), [vec![], vec![B], vec![], vec![], vec![B]]);
        assert_eq!(
            e[1].alerts[0].message,
            "AAPL price crossed below threshold 100.00 (now 99.50)"
        );
        // No previous price: being below counts as crossing.
        assert_eq!(kinds(&run(&rules, &prices("AAPL", &[98.0]))), [vec![B]]);
    }

    #[test]
    fn change_percent_is_edge_triggered() {
        let rules = RuleSet {
            change_percent: Some(5.0),
            ..none()
        };
        let with = |percent: Option<f64>| {
            let indicators = Indicators {
                change_percent: percent,
                ..Indicators::default()
            };
            (tick("MSFT", 400.0), indicators)
        };
        let e = run(
            &rules,
            &[
                with(Some(-6.21)),
                with(Some(-7.0)),
                with(None),
                with(Some(-6.0)),
                with(Some(5.0)),
                with(Some(11.0)),
                with(Some(12.0)),
            ],
        );
        use AlertKind::ChangePercent as C;
        assert_eq!(
            kinds(&e),
            [vec![C], vec![], vec![], vec![], vec![], vec![C], vec![]]
        );
        assert_eq!(
            e[0].alerts[0].message,
            "MSFT change vs previous close -6.21% (threshold 5%)"
        );
        assert_eq!(e[0].alerts[0].severity, Severity::Warning);
        assert_eq!(e[5].alerts[0].severity, Severity::Critical);
    }

    #[test]
    fn zscore_alerts_every_spike() {
        let rules = RuleSet {
            return_zscore: Some(4.0),
            ..none()
        };
        let with = |z: f64| {
            let indicators = Indicators {
                return_zscore: Some(z),
                ..Indicators::default()
            };
            (tick("NVDA", 120.0), indicators)
        };
        let e = run(&rules, &[with(5.3), with(5.3), with(-9.0), with(4.0)]);
        use AlertKind::ReturnZscore as Z;
        assert_eq!(kinds(&e), [vec![Z], vec![Z], vec![Z], vec![]]);
        assert_eq!(
            e[0].alerts[0].message,
            "NVDA return z-score 5.3 (threshold 4)"
        );
        assert_eq!(e[0].alerts[0].severity, Severity::Warning);
        assert_eq!(e[2].alerts[0].severity, Severity::Critical);
    }

    #[test]
    fn volume_spike_names_the_span() {
        let rules = RuleSet {
            volume_spike: Some(5.0),
            ..none()
        };
        let with = |ratio: f64| {
            let indicators = Indicators {
                volume_ratio: Some(ratio),
                ..Indicators::default()
            };
            (tick("TSLA", 250.0), indicators)
        };
        let e = run(&rules, &[with(25.0), with(7.0), with(5.0)]);
        assert_eq!(
            e[0].alerts[0].message,
            "TSLA volume 25.0x the 5m average (threshold 5x)"
        );
        assert_eq!(e[0].alerts[0].severity, Severity::Warning);
        assert_eq!(e[1].alerts[0].severity, Severity::Info);
        assert!(e[2].alerts.is_empty());

        let mut state = RuleState::default();
        let windows = WindowConfig {
            span: Duration::from_secs(90),
            ..WindowConfig::default()
        };
        let (t, i) = with(6.0);
        let e = evaluate(&rules, &windows, &mut state, &t, &i, &position());
        assert_eq!(
            e.alerts[0].message,
            "TSLA volume 6.0x the 1m 30s average (threshold 5x)"
        );
    }

    #[test]
    fn trend_alerts_on_change_of_a_known_trend() {
        let rules = RuleSet {
            trend_crossover: true,
            ..none()
        };
        let with = |short: Option<f64>, long: Option<f64>| {
            let indicators = Indicators {
                sma_short: short,
                sma_long: long,
                ..Indicators::default()
            };
            (tick("AAPL", 190.0), indicators)
        };
        let e = run(
            &rules,
            &[
                with(Some(190.0), None),
                with(Some(189.0), Some(189.9)),
                with(Some(189.5), Some(189.9)),
                with(Some(189.9), Some(189.9)),
                with(Some(190.12), Some(189.9)),
                with(Some(189.0), Some(189.5)),
            ],
        );
        let trends: Vec<_> = e.iter().map(|e| e.trend).collect();
        use Trend::{Down, Up};
        assert_eq!(
            trends,
            [
                None,
                Some(Down),
                Some(Down),
                Some(Down),
                Some(Up),
                Some(Down)
            ]
        );
        use AlertKind::{TrendDown, TrendUp};
        // The first known trend is not a change; equal averages keep the trend.
        assert_eq!(
            kinds(&e),
            [
                vec![],
                vec![],
                vec![],
                vec![],
                vec![TrendUp],
                vec![TrendDown]
            ]
        );
        let up = &e[4].alerts[0];
        assert_eq!(
            up.message,
            "AAPL trend up: SMA5 190.12 crossed above SMA20 189.90"
        );
        assert_eq!(up.severity, Severity::Info);
        assert_eq!(
            e[5].alerts[0].message,
            "AAPL trend down: SMA5 189.00 crossed below SMA20 189.50"
        );
        // A trend change is not an anomaly.
        assert!(!e[4].anomaly);

        // Switched off: the trend is still reported and tracked, without alerts.
        let quiet = run(
            &none(),
            &[with(Some(1.0), Some(2.0)), with(Some(3.0), Some(2.0))],
        );
        assert!(quiet.iter().all(|e| e.alerts.is_empty()));
        assert_eq!(quiet[1].trend, Some(Up));
    }

    #[test]
    fn alert_ids_are_deterministic() {
        let rules = RuleSet {
            price_above: Some(1.0),
            return_zscore: Some(1.0),
            ..none()
        };
        let indicators = Indicators {
            return_zscore: Some(2.0),
            ..Indicators::default()
        };
        let first = run(&rules, &[(tick("AAPL", 2.0), indicators)]);
        let again = run(&rules, &[(tick("AAPL", 2.0), indicators)]);
        assert_eq!(first, again);
        let ids: Vec<_> = first[0].alerts.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "AAPL-price_above-1700000000000-49590338271490256608559692538361571095921575989136588898.3",
                "AAPL-return_zscore-1700000000000-49590338271490256608559692538361571095921575989136588898.3",
            ]
        );
    }

    #[test]
    fn state_survives_a_snapshot() {
        let rules = RuleSet {
            price_above: Some(10.0),
            change_percent: Some(5.0),
            ..RuleSet::default()
        };
        let mut state = RuleState::default();
        let indicators = Indicators {
            change_percent: Some(6.0),
            sma_short: Some(2.0),
            sma_long: Some(1.0),
            ..Indicators::default()
        };
        let windows = WindowConfig::default();
        evaluate(
            &rules,
            &windows,
            &mut state,
            &tick("X", 10.1),
            &indicators,
            &position(),
        );
        let restored: RuleState =
            serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap();
        assert_eq!(restored, state);
        let again = evaluate(
            &rules,
            &windows,
            &mut state.clone(),
            &tick("X", 10.2),
            &indicators,
            &position(),
        );
        assert!(again.alerts.is_empty(), "{again:?}");
    }
}
