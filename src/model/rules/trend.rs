//! The trend rule: averages of bar closes with a hysteresis band.
//!
//! Averages of raw ticks cross on noise every few seconds; a person wants to hear of a trend that
//! holds. So the rule closes a bar every `trend-bar` of event time (the last price of the bar),
//! averages the last `trend-short-bars` and `trend-long-bars` closes, and turns the trend up only
//! when the short average stands more than `trend-band-percent` of the long one above it (down:
//! below it). Between the two edges the trend stays what it was, so a crossover needs a real
//! move, and a move that returns into the band raises nothing.
//!
//! A bar closes when the symbol's first tick of a later bar arrives; ticks of a bar already closed
//! (late ones) do not change it. Everything is in event time and in the snapshot, so a replay or
//! a new owner of the shard closes the same bars and raises the same alerts.

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::alert::Trend;
use crate::model::exact_float as exact;

/// The shape of the trend rule (from the rule settings).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrendShape {
    pub bar: Duration,
    pub short_bars: usize,
    pub long_bars: usize,
    pub band_percent: f64,
}

/// A change of a known trend at a bar close, with the averages that made it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrendChange {
    pub trend: Trend,
    pub short: f64,
    pub long: f64,
}

/// What the trend rule remembers of a symbol (part of its rule state).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrendBars {
    /// Start of the open bar, epoch ms; `None` before the first tick.
    open_bar_ms: Option<i64>,
    /// Last price of the open bar.
    #[serde(with = "exact")]
    open_close: f64,
    /// Closes of the last `long_bars` closed bars, oldest first.
    #[serde(with = "exact_deque")]
    closes: VecDeque<f64>,
    /// The trend after the last closed bar, once the averages have set one.
    trend: Option<Trend>,
}

impl TrendBars {
    pub fn is_empty(&self) -> bool {
        self.open_bar_ms.is_none()
    }

    /// The trend as of the last closed bar.
    pub fn trend(&self) -> Option<Trend> {
        self.trend
    }

    /// Takes one tick's price; when the tick opens a new bar, closes the open one and returns the
    /// change of trend that close made, if any. The first trend the averages set is not a change.
    pub fn update(
        &mut self,
        shape: &TrendShape,
        event_time_ms: i64,
        price: f64,
    ) -> Option<TrendChange> {
        let bar_ms = i64::try_from(shape.bar.as_millis())
            .unwrap_or(i64::MAX)
            .max(1);
        let bar = event_time_ms.div_euclid(bar_ms) * bar_ms;
        let Some(open) = self.open_bar_ms else {
            self.open(bar, price);
            return None;
        };
        if bar < open {
            return None;
        }
        if bar == open {
            self.open_close = price;
            return None;
        }
        let change = self.close(shape);
        self.open(bar, price);
        change
    }

    fn open(&mut self, bar: i64, price: f64) {
        self.open_bar_ms = Some(bar);
        self.open_close = price;
    }

    fn close(&mut self, shape: &TrendShape) -> Option<TrendChange> {
        self.closes.push_back(self.open_close);
        while self.closes.len() > shape.long_bars {
            self.closes.pop_front();
        }
        if self.closes.len() < shape.long_bars {
            return None;
        }
        let long = mean(self.closes.iter());
        let short = mean(self.closes.iter().rev().take(shape.short_bars));
        let band = long.abs() * shape.band_percent / 100.0;
        let next = if short > long + band {
            Some(Trend::Up)
        } else if short < long - band {
            Some(Trend::Down)
        } else {
            self.trend
        };
        let previous = std::mem::replace(&mut self.trend, next);
        match (previous, next) {
            (Some(before), Some(trend)) if before != trend => {
                Some(TrendChange { trend, short, long })
            }
            _ => None,
        }
    }
}

fn mean<'a>(values: impl Iterator<Item = &'a f64>) -> f64 {
    let (sum, count) = values.fold((0.0, 0u32), |(sum, n), v| (sum + v, n + 1));
    sum / f64::from(count.max(1))
}

/// `exact::vec` for a `VecDeque<f64>`.
mod exact_deque {
    use std::collections::VecDeque;

    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        values: &VecDeque<f64>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let (front, back) = values.as_slices();
        if back.is_empty() {
            return crate::model::exact_float::vec::serialize(front, serializer);
        }
        let contiguous: Vec<f64> = values.iter().copied().collect();
        crate::model::exact_float::vec::serialize(&contiguous, serializer)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<VecDeque<f64>, D::Error> {
        crate::model::exact_float::vec::deserialize(deserializer).map(VecDeque::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000;

    fn shape(band_percent: f64) -> TrendShape {
        TrendShape {
            bar: Duration::from_secs(60),
            short_bars: 2,
            long_bars: 4,
            band_percent,
        }
    }

    /// Feeds one tick per minute at the given prices (plus one to close the last bar); returns
    /// the changes, by the index of the bar whose close made them.
    fn closes(shape: &TrendShape, prices: &[f64]) -> (Vec<(usize, Trend)>, TrendBars) {
        let mut bars = TrendBars::default();
        let mut changes = Vec::new();
        for (i, &price) in prices.iter().chain([prices.last().unwrap()]).enumerate() {
            if let Some(change) = bars.update(shape, i as i64 * MINUTE, price) {
                changes.push((i - 1, change.trend));
            }
        }
        (changes, bars)
    }

    #[test]
    fn the_first_trend_is_no_change_and_a_reversal_is() {
        let (changes, bars) = closes(&shape(0.0), &[10.0, 10.0, 11.0, 12.0, 9.0, 8.0]);
        // Bar 3 sets the first trend (up: short 11.5 > long 10.75); bar 5 turns it down.
        assert_eq!(changes, [(5, Trend::Down)]);
        assert_eq!(bars.trend(), Some(Trend::Down));
    }

    #[test]
    fn a_move_inside_the_band_keeps_the_trend() {
        // Up, then the short average dips under the long one and comes back: with a 1 % band
        // the trend stays up; without a band the dip is two alerts.
        let prices = [
            100.0, 100.0, 104.0, 104.0, 102.0, 102.2, 102.5, 104.0, 104.0,
        ];
        let (changes, bars) = closes(&shape(1.0), &prices);
        assert_eq!((changes, bars.trend()), (vec![], Some(Trend::Up)));
        assert_eq!(
            closes(&shape(0.0), &prices).0,
            [(5, Trend::Down), (7, Trend::Up)]
        );
        // A real move beyond the band turns it.
        let (changes, _) = closes(&shape(1.0), &[100.0, 100.0, 104.0, 104.0, 99.0, 97.0]);
        assert_eq!(changes, [(5, Trend::Down)]);
    }

    #[test]
    fn ticks_within_a_bar_set_its_close_and_late_ticks_are_ignored() {
        let shape = shape(0.0);
        let mut bars = TrendBars::default();
        bars.update(&shape, 0, 10.0);
        bars.update(&shape, 30_000, 11.0);
        bars.update(&shape, 59_999, 12.0);
        assert_eq!(bars.update(&shape, MINUTE, 5.0), None);
        assert_eq!(bars.closes, [12.0]);
        // Late for the closed bar: ignored.
        bars.update(&shape, 59_000, 100.0);
        bars.update(&shape, 2 * MINUTE, 6.0);
        assert_eq!(bars.closes, [12.0, 5.0]);
    }

    #[test]
    fn state_survives_a_snapshot_bit_for_bit() {
        let (_, bars) = closes(&shape(0.5), &[0.1 + 0.2, 1.0 / 3.0, 2.0, 3.0, 4.0]);
        // The first close fell out of the long window.
        let cbor = cbor4ii::serde::to_vec(Vec::new(), &bars).unwrap();
        let restored: TrendBars = cbor4ii::serde::from_slice(&cbor).unwrap();
        assert_eq!(restored, bars);
        assert_eq!(restored.closes[0].to_bits(), (1.0f64 / 3.0).to_bits());
    }
}
