//! The rules' settings: one set of thresholds for every symbol (`[rules.default]`) and
//! per-symbol overrides (`[rules.symbols.AAPL]`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

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
