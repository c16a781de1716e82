//! Rolling windows of one symbol: count windows (SMA short/long), EMA, and event-time windows
//! (VWAP, high/low, volatility and z-score of log returns), plus change vs previous close.
//!
//! In: ticks of one symbol in stream order. Out: the [`Indicators`] after each tick. The state
//! serializes (snapshot) and restores to identical results.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::tick::Tick;

/// Window sizes. Count windows are in ticks, `span` is event time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct WindowConfig {
    /// Ticks in the short simple moving average.
    pub sma_short: usize,
    /// Ticks in the long simple moving average.
    pub sma_long: usize,
    /// Span N of the exponential moving average (alpha = 2 / (N + 1)).
    pub ema_span: usize,
    /// Event-time span of VWAP, high/low, volatility and the return z-score.
    #[serde(with = "humantime_serde")]
    pub span: Duration,
    /// Returns needed in the span before volatility and z-score are reported.
    pub min_samples: usize,
}

impl Default for WindowConfig {
    fn default() -> Self {
        todo!()
    }
}

/// What the windows say after one tick. `None` where there is not enough data yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Indicators {
    pub sma_short: Option<f64>,
    pub sma_long: Option<f64>,
    pub ema: Option<f64>,
    pub vwap: Option<f64>,
    pub window_high: Option<f64>,
    pub window_low: Option<f64>,
    /// Standard deviation of log returns in the span (not annualised).
    pub volatility: Option<f64>,
    /// Log return of this tick vs the previous one.
    pub log_return: Option<f64>,
    /// Z-score of this tick's log return against the span's returns before it.
    pub return_zscore: Option<f64>,
    /// This tick's volume over the mean volume of the span before it.
    pub volume_ratio: Option<f64>,
    /// Price minus previous close (recomputed when the tick has `previous_close`).
    pub change: Option<f64>,
    /// Change in percent of previous close.
    pub change_percent: Option<f64>,
}

/// Window state of one symbol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SymbolWindows {}

impl SymbolWindows {
    pub fn new(config: WindowConfig) -> Self {
        let _ = config;
        todo!()
    }

    /// Adds a tick and returns the indicators including it.
    pub fn update(&mut self, tick: &Tick) -> Indicators {
        let _ = tick;
        todo!()
    }
}
