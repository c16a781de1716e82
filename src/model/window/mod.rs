//! Rolling windows of one symbol: count windows (SMA short/long), EMA, and event-time windows
//! (VWAP, high/low, volatility and z-score of log returns), plus change vs previous close.
//!
//! In: ticks of one symbol in stream order. Out: the [`Indicators`] after each tick. The state
//! serializes (snapshot) and restores to identical results.
//!
//! Every indicator costs O(1) amortized per tick: a ring of the last prices with running sums for
//! the SMAs, the EMA recurrence, and for the event-time window a deque of ticks with running sums
//! and two monotonic deques for the extremes. Running sums are recomputed from the stored values
//! each time those have all been replaced once, so rounding cannot accumulate however long the
//! stream runs; the event-time sums are also compensated (TwoSum), because a span can hold a
//! million-share print next to odd lots, or a price jump next to flat returns, and subtracting
//! the large value again must not leave its rounding behind.
//!
//! Exact zeros stay exact: sums are reset to 0 when the last contributing tick leaves, and a span
//! whose returns are all equal has a deviation of exactly 0 (no z-score), not rounding noise.
//!
//! Event time: the window end is the latest event time seen and never moves back. A tick whose
//! event time is earlier (late or out of order) joins the window at the window end, as if it had
//! happened when it arrived; the window holds the ticks whose (so adjusted) time is after
//! `end - span`, at most [`WindowConfig::max_span_ticks`] of them, and ticks leave it in arrival
//! order.
//!
//! One concept a file: `config.rs` the window sizes, `ring.rs` the count windows (SMAs),
//! `span.rs` the event-time window, `sum.rs` its compensated sums, and `snapshot.rs` the
//! serialized form, checked on restore. This file combines them into the [`Indicators`] of a
//! tick.

mod config;
#[cfg(test)]
mod reference;
mod ring;
mod snapshot;
mod span;
mod sum;

use serde::{Deserialize, Serialize};

pub use self::config::WindowConfig;
use self::ring::PriceRing;
use self::snapshot::WindowsRepr;
use self::span::SpanWindow;
use super::exact_float as exact;
use super::tick::Tick;

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
///
/// The snapshot carries the [`WindowConfig`] it was built with, so a restored symbol keeps its
/// window sizes; compare [`SymbolWindows::config`] with the current one to detect a change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "WindowsRepr")]
pub struct SymbolWindows {
    config: WindowConfig,
    ring: PriceRing,
    #[serde(with = "exact::option")]
    ema: Option<f64>,
    #[serde(with = "exact::option")]
    prev_price: Option<f64>,
    span: SpanWindow,
}

impl SymbolWindows {
    pub fn new(config: WindowConfig) -> Self {
        Self {
            config,
            ring: PriceRing::new(config.sma_short.max(config.sma_long)),
            ema: None,
            prev_price: None,
            span: SpanWindow::default(),
        }
    }

    /// The window sizes this state was built with.
    pub fn config(&self) -> &WindowConfig {
        &self.config
    }

    /// The newest event time of the ticks so far (a late tick does not move it back).
    pub fn newest_event_ms(&self) -> Option<i64> {
        self.span.end
    }

    /// Adds a tick and returns the indicators including it.
    pub fn update(&mut self, tick: &Tick) -> Indicators {
        let config = &self.config;
        let price = tick.price;

        let (sma_short, sma_long) = self.ring.push(price, config.sma_short, config.sma_long);

        let alpha = 2.0 / (config.ema_span.max(1) as f64 + 1.0);
        let ema = match self.ema {
            Some(ema) => ema + alpha * (price - ema),
            None => price,
        };
        self.ema = Some(ema);

        let log_return = self.prev_price.and_then(|prev| log_return(prev, price));
        self.prev_price = Some(price);

        // A volume that cannot be one is treated as absent rather than poisoning the sums.
        let volume = tick.volume.filter(|v| v.is_finite() && *v >= 0.0);
        let span = self
            .span
            .push(tick.event_time_ms, price, volume, log_return, config);

        let (change, change_percent) = match tick.previous_close {
            Some(close) if close.is_finite() && close != 0.0 => {
                let change = price - close;
                (Some(change), Some(change / close * 100.0))
            }
            _ => (tick.change, tick.change_percent),
        };

        Indicators {
            sma_short,
            sma_long,
            ema: Some(ema),
            vwap: span.vwap,
            window_high: span.high,
            window_low: span.low,
            volatility: span.volatility,
            log_return,
            return_zscore: span.zscore,
            volume_ratio: span.volume_ratio,
            change,
            change_percent,
        }
    }
}

/// `ln(price / prev)`, when both are positive and the result is finite.
fn log_return(prev: f64, price: f64) -> Option<f64> {
    if prev > 0.0 && price > 0.0 {
        Some((price / prev).ln()).filter(|r| r.is_finite())
    } else {
        None
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use proptest::prelude::*;

    use super::reference::{assert_close, close, reference};
    use super::*;

    pub(crate) fn tick(time: i64, price: f64, volume: Option<f64>) -> Tick {
        Tick {
            symbol: "TEST".into(),
            price,
            event_time_ms: time,
            open: None,
            high: None,
            low: None,
            previous_close: None,
            change: None,
            change_percent: None,
            volume,
        }
    }

    /// How the next price moves: mostly small steps, often not at all (exact zero returns), now
    /// and then a jump.
    fn price_step() -> impl Strategy<Value = f64> {
        prop_oneof![
            3 => Just(0.0),
            5 => -0.01..0.01f64,
            1 => -0.5..0.5f64,
            1 => Just(f64::NAN), // jump to a fresh price
        ]
    }

    fn volume() -> impl Strategy<Value = Option<f64>> {
        prop_oneof![
            2 => Just(None),
            1 => Just(Some(0.0)),
            6 => (1.0..1e5f64).prop_map(Some),
            1 => (1e-3..1.0f64).prop_map(Some),
            1 => (1e6..1e9f64).prop_map(Some),
            1 => Just(Some(-5.0)),
        ]
    }

    pub(crate) fn ticks() -> impl Strategy<Value = Vec<Tick>> {
        let step = (
            price_step(),
            1.0..1000.0f64,
            prop_oneof![8 => 0i64..40, 2 => -60i64..0, 1 => 0i64..1000],
            volume(),
            prop_oneof![3 => Just(None), 1 => (50.0..150.0f64).prop_map(Some)],
        );
        (1.0..1000.0f64, proptest::collection::vec(step, 1..250)).prop_map(|(first, steps)| {
            let mut price = first;
            let mut time = 1_700_000_000_000i64;
            steps
                .into_iter()
                .map(|(step, fresh, dt, volume, previous_close)| {
                    price = if step.is_nan() {
                        fresh
                    } else {
                        price * (1.0 + step)
                    };
                    time += dt;
                    Tick {
                        previous_close,
                        change: Some(dt as f64),
                        change_percent: Some(dt as f64 / 10.0),
                        ..tick(time, price, volume)
                    }
                })
                .collect()
        })
    }

    pub(crate) fn configs() -> impl Strategy<Value = WindowConfig> {
        (
            0usize..8,
            0usize..30,
            0usize..30,
            prop_oneof![1u64..200, Just(0), Just(300_000)],
            0usize..8,
            prop_oneof![1usize..40, Just(0), Just(100_000)],
        )
            .prop_map(
                |(sma_short, sma_long, ema_span, span_ms, min_samples, max_span_ticks)| {
                    WindowConfig {
                        sma_short,
                        sma_long,
                        ema_span,
                        span: Duration::from_millis(span_ms),
                        min_samples,
                        max_span_ticks,
                    }
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn indicators_match_naive_reference(config in configs(), ticks in ticks()) {
            let mut windows = SymbolWindows::new(config);
            let expected = reference(&config, &ticks);
            for (i, (t, e)) in ticks.iter().zip(&expected).enumerate() {
                assert_close(&windows.update(t), e, i);
            }
        }
    }

    #[test]
    fn sums_stay_accurate_over_a_long_volatile_stream() {
        let config = WindowConfig {
            span: Duration::from_millis(500),
            ..WindowConfig::default()
        };
        let mut windows = SymbolWindows::new(config);
        let mut ticks = Vec::new();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut random = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        for i in 0..300_000i64 {
            // Regimes of wildly different price and volume scales, to stress cancellation.
            let scale = if (i / 777) % 2 == 0 { 1e5 } else { 1e-2 };
            let price = scale * (1.0 + random());
            let volume = if (i / 333) % 3 == 0 {
                1e9 * random()
            } else {
                random()
            };
            ticks.push(tick(i * 7, price, Some(volume)));
        }
        let mut last = Indicators::default();
        for t in &ticks {
            last = windows.update(t);
        }
        let tail = &ticks[ticks.len() - 200..];
        let expected = reference(&config, tail);
        let (e, _) = expected.last().unwrap();
        for (a, b) in [
            (last.sma_short, e.sma_short),
            (last.sma_long, e.sma_long),
            (last.vwap, e.vwap),
            (last.volatility, e.volatility),
            (last.volume_ratio, e.volume_ratio),
        ] {
            assert!(close(a, b), "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn late_ticks_join_at_the_window_end() {
        let config = WindowConfig {
            span: Duration::from_millis(100),
            ..WindowConfig::default()
        };
        let mut w = SymbolWindows::new(config);
        w.update(&tick(1_000, 10.0, Some(1.0)));
        w.update(&tick(1_050, 12.0, Some(1.0)));
        // 900 is before the window start, but the window end stays at 1_050.
        let late = w.update(&tick(900, 8.0, Some(2.0)));
        assert_eq!(late.window_low, Some(8.0));
        assert_eq!(late.window_high, Some(12.0));
        // At 1_120 the ticks of 1_000 leaves; the late one counts as 1_050 and stays.
        let next = w.update(&tick(1_120, 11.0, None));
        assert_eq!(next.window_low, Some(8.0));
        assert_eq!(next.window_high, Some(12.0));
        assert_eq!(next.vwap, Some((12.0 + 16.0) / 3.0));
    }

    #[test]
    fn burst_is_capped() {
        let config = WindowConfig {
            max_span_ticks: 3,
            ..WindowConfig::default()
        };
        let mut w = SymbolWindows::new(config);
        let mut last = Indicators::default();
        for (i, p) in [5.0, 1.0, 2.0, 3.0, 4.0].into_iter().enumerate() {
            last = w.update(&tick(0, p, Some(i as f64 + 1.0)));
        }
        assert_eq!(w.span.entries.len(), 3);
        assert_eq!((last.window_low, last.window_high), (Some(2.0), Some(4.0)));
        // Volume ratio of the last tick: 5 over the mean of the two before it (3 and 4).
        assert_eq!(last.volume_ratio, Some(5.0 / 3.5));
    }

    #[test]
    fn change_is_recomputed_from_previous_close() {
        let mut w = SymbolWindows::new(WindowConfig::default());
        let with_close = Tick {
            previous_close: Some(200.0),
            change: Some(99.0),
            change_percent: Some(99.0),
            ..tick(0, 190.0, None)
        };
        let i = w.update(&with_close);
        assert_eq!((i.change, i.change_percent), (Some(-10.0), Some(-5.0)));
        let without = Tick {
            change: Some(1.5),
            change_percent: Some(0.75),
            ..tick(1, 190.0, None)
        };
        let i = w.update(&without);
        assert_eq!((i.change, i.change_percent), (Some(1.5), Some(0.75)));
    }

    #[test]
    fn flat_prices_have_zero_volatility_and_no_zscore() {
        let config = WindowConfig {
            min_samples: 3,
            ..WindowConfig::default()
        };
        let mut w = SymbolWindows::new(config);
        let mut last = Indicators::default();
        for i in 0..10 {
            last = w.update(&tick(i, 100.0, Some(0.0)));
        }
        assert_eq!(last.volatility, Some(0.0));
        assert_eq!(last.return_zscore, None);
        assert_eq!((last.vwap, last.volume_ratio), (None, None));
        // A move after a flat stretch has no defined z-score (the deviation was 0).
        let jump = w.update(&tick(10, 101.0, Some(10.0)));
        assert_eq!(jump.return_zscore, None);
        assert!(jump.volatility.unwrap() > 0.0);
    }
}
