//! The rules' settings: one set of thresholds for every symbol (`[rules.default]`) and
//! per-symbol overrides (`[rules.symbols.AAPL]`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::trend::TrendShape;

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
    /// ... and the return itself is at least this (percent): on a calm name most ticks do not
    /// move, so a one-cent step is many deviations without being news.
    pub return_zscore_min_move: f64,
    /// Alert when a tick's volume exceeds this multiple of the span's mean volume.
    pub volume_spike: Option<f64>,
    /// Alert when the trend of bar closes turns (trend up / trend down): the average of the
    /// last `trend-short-bars` closes moves beyond the band around that of the last
    /// `trend-long-bars`.
    pub trend_crossover: bool,
    /// Length of the trend rule's bars (event time).
    #[serde(with = "humantime_serde")]
    pub trend_bar: Duration,
    pub trend_short_bars: usize,
    pub trend_long_bars: usize,
    /// Hysteresis: the short average must stand this far (percent of the long one) above the
    /// long one to turn the trend up, below it to turn it down.
    pub trend_band_percent: f64,
    /// After an alert, the same rule stays quiet for this symbol for this long (event time), so
    /// a run of anomalous ticks sends one e-mail or SMS, not hundreds.
    #[serde(with = "humantime_serde")]
    pub cooldown: Duration,
    /// At most this many alerts per symbol in each hour of event time; the rest are held:
    /// counted (`AlertsHeld`), kept in the lake's `alerts_held` column, summarised by the digest.
    pub max_alerts_per_hour: Option<u32>,
}

impl Default for RuleSet {
    fn default() -> Self {
        Self {
            price_above: None,
            price_below: None,
            change_percent: Some(5.0),
            return_zscore: Some(4.0),
            return_zscore_min_move: 0.25,
            volume_spike: Some(15.0),
            trend_crossover: true,
            trend_bar: Duration::from_secs(60),
            trend_short_bars: 5,
            trend_long_bars: 20,
            trend_band_percent: 0.2,
            cooldown: Duration::from_secs(60),
            max_alerts_per_hour: Some(4),
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
    pub return_zscore_min_move: Option<f64>,
    pub volume_spike: Option<f64>,
    pub trend_crossover: Option<bool>,
    #[serde(with = "humantime_serde::option")]
    pub trend_bar: Option<Duration>,
    pub trend_short_bars: Option<usize>,
    pub trend_long_bars: Option<usize>,
    pub trend_band_percent: Option<f64>,
    #[serde(with = "humantime_serde::option")]
    pub cooldown: Option<Duration>,
    pub max_alerts_per_hour: Option<u32>,
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

impl RuleSet {
    /// The trend rule's bars and band.
    pub fn trend_shape(&self) -> TrendShape {
        TrendShape {
            bar: self.trend_bar,
            short_bars: self.trend_short_bars,
            long_bars: self.trend_long_bars,
            band_percent: self.trend_band_percent,
        }
    }
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
            return_zscore_min_move: o
                .return_zscore_min_move
                .unwrap_or(global.return_zscore_min_move),
            volume_spike: o.volume_spike.or(global.volume_spike),
            trend_crossover: o.trend_crossover.unwrap_or(global.trend_crossover),
            trend_bar: o.trend_bar.unwrap_or(global.trend_bar),
            trend_short_bars: o.trend_short_bars.unwrap_or(global.trend_short_bars),
            trend_long_bars: o.trend_long_bars.unwrap_or(global.trend_long_bars),
            trend_band_percent: o.trend_band_percent.unwrap_or(global.trend_band_percent),
            cooldown: o.cooldown.unwrap_or(global.cooldown),
            max_alerts_per_hour: o.max_alerts_per_hour.or(global.max_alerts_per_hour),
        }
    }
}
