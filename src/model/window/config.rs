//! Window sizes of a symbol's indicators, as configured (`windows` in the config file).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Window sizes. Count windows are in ticks, `span` is event time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct WindowConfig {
    /// Ticks in the short simple moving average (0 switches it off).
    pub sma_short: usize,
    /// Ticks in the long simple moving average (0 switches it off).
    pub sma_long: usize,
    /// Span N of the exponential moving average (alpha = 2 / (N + 1); 0 counts as 1).
    pub ema_span: usize,
    /// Event-time span of VWAP, high/low, volatility and the return z-score (at least 1 ms).
    #[serde(with = "humantime_serde")]
    pub span: Duration,
    /// Returns needed in the span before volatility and z-score are reported (at least 2, as
    /// they use the sample standard deviation).
    pub min_samples: usize,
    /// Most ticks kept in the event-time window, whatever their times, so that a burst cannot
    /// grow memory without limit: about 80 bytes a tick at worst, 8 MB per symbol at the
    /// default. The oldest ticks leave first.
    pub max_span_ticks: usize,
}

impl Default for WindowConfig {
    fn default() -> Self {
        Self {
            sma_short: 5,
            sma_long: 20,
            ema_span: 20,
            span: Duration::from_secs(5 * 60),
            min_samples: 10,
            max_span_ticks: 100_000,
        }
    }
}

impl WindowConfig {
    pub(super) fn span_ms(&self) -> i64 {
        i64::try_from(self.span.as_millis())
            .unwrap_or(i64::MAX)
            .max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_common_recipes() {
        let c = WindowConfig::default();
        assert_eq!((c.sma_short, c.sma_long, c.ema_span), (5, 20, 20));
        assert_eq!((c.span, c.min_samples), (Duration::from_secs(300), 10));
        assert_eq!(c.max_span_ticks, 100_000);
        let parsed: WindowConfig =
            serde_json::from_str(r#"{"span": "1m", "sma-long": 50}"#).unwrap();
        assert_eq!(parsed.span, Duration::from_secs(60));
        assert_eq!(parsed.sma_long, 50);
        assert_eq!(parsed.sma_short, 5);
    }
}
