//! One-minute bars (open, high, low, close, volume, VWAP, trades) per symbol, for the ticks
//! table's bars mode: one item per symbol and minute instead of one per tick.
//!
//! In: the symbol's ticks. Out: the bar of each tick's event-time minute, updated. The open bars
//! are part of the symbol's snapshot, so a replay after a crash resumes each bar exactly where
//! the checkpoint left it; writing a bar's latest value with put semantics is therefore
//! effectively once, like the tick items.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::exact_float as exact;
use super::tick::Tick;

const MINUTE_MS: i64 = 60_000;

/// Minutes behind the newest one whose bars still take late ticks.
pub const OPEN_MINUTES: i64 = 5;

/// The bar of one symbol and minute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MinuteBar {
    /// Start of the minute, epoch milliseconds.
    pub minute_start_ms: i64,
    #[serde(with = "exact")]
    pub open: f64,
    #[serde(with = "exact")]
    pub high: f64,
    #[serde(with = "exact")]
    pub low: f64,
    #[serde(with = "exact")]
    pub close: f64,
    /// Sum of the ticks' volumes (ticks without one count as 0).
    #[serde(with = "exact")]
    pub volume: f64,
    /// Sum of price x volume, for the VWAP.
    #[serde(with = "exact")]
    pub notional: f64,
    pub trades: u64,
    /// Event time of the tick that set `open` and of the one that set `close`: a late tick
    /// moves them only when it is earlier or later.
    pub first_ms: i64,
    pub last_ms: i64,
}

impl MinuteBar {
    fn new(minute_start_ms: i64, tick: &Tick) -> Self {
        let volume = tick.volume.unwrap_or(0.0);
        Self {
            minute_start_ms,
            open: tick.price,
            high: tick.price,
            low: tick.price,
            close: tick.price,
            volume,
            notional: tick.price * volume,
            trades: 1,
            first_ms: tick.event_time_ms,
            last_ms: tick.event_time_ms,
        }
    }

    fn add(&mut self, tick: &Tick) {
        let volume = tick.volume.unwrap_or(0.0);
        self.high = self.high.max(tick.price);
        self.low = self.low.min(tick.price);
        if tick.event_time_ms < self.first_ms {
            (self.open, self.first_ms) = (tick.price, tick.event_time_ms);
        }
        if tick.event_time_ms >= self.last_ms {
            (self.close, self.last_ms) = (tick.price, tick.event_time_ms);
        }
        self.volume += volume;
        self.notional += tick.price * volume;
        self.trades += 1;
    }

    /// Volume-weighted average price; `None` without volume.
    pub fn vwap(&self) -> Option<f64> {
        (self.volume > 0.0).then(|| self.notional / self.volume)
    }
}

/// A tick older than every open bar; it is left out of the bars (not of the ticks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LateForBars;

/// The bars of the last [`OPEN_MINUTES`] minutes of one symbol, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OpenBars(VecDeque<MinuteBar>);

impl OpenBars {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds `tick` to the bar of its minute and returns that bar.
    pub fn update(&mut self, tick: &Tick) -> Result<&MinuteBar, LateForBars> {
        let minute = tick.event_time_ms.div_euclid(MINUTE_MS) * MINUTE_MS;
        let newest = self
            .0
            .back()
            .map_or(minute, |b| b.minute_start_ms.max(minute));
        let oldest_open = newest - (OPEN_MINUTES - 1) * MINUTE_MS;
        if minute < oldest_open {
            return Err(LateForBars);
        }
        while self
            .0
            .front()
            .is_some_and(|b| b.minute_start_ms < oldest_open)
        {
            self.0.pop_front();
        }
        let index = match self.0.binary_search_by_key(&minute, |b| b.minute_start_ms) {
            Ok(index) => {
                self.0[index].add(tick);
                index
            }
            Err(index) => {
                self.0.insert(index, MinuteBar::new(minute, tick));
                index
            }
        };
        Ok(&self.0[index])
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::model::window::tests::tick;

    const T0: i64 = 1_767_623_400_000; // a minute start

    #[test]
    fn a_minute_collects_its_ticks() {
        let mut bars = OpenBars::default();
        bars.update(&tick(T0 + 1_000, 10.0, Some(100.0))).unwrap();
        bars.update(&tick(T0 + 2_000, 12.0, Some(300.0))).unwrap();
        let bar = bars.update(&tick(T0 + 59_999, 9.0, None)).unwrap().clone();
        assert_eq!(bar.minute_start_ms, T0);
        assert_eq!(
            (bar.open, bar.high, bar.low, bar.close),
            (10.0, 12.0, 9.0, 9.0)
        );
        assert_eq!((bar.volume, bar.trades), (400.0, 3));
        assert_eq!(bar.vwap(), Some((10.0 * 100.0 + 12.0 * 300.0) / 400.0));

        let next = bars.update(&tick(T0 + 60_000, 11.0, Some(1.0))).unwrap();
        assert_eq!((next.minute_start_ms, next.open), (T0 + 60_000, 11.0));
    }

    #[test]
    fn late_ticks_land_in_their_minute_while_it_is_open() {
        let mut bars = OpenBars::default();
        bars.update(&tick(T0 + 4 * 60_000, 20.0, Some(1.0)))
            .unwrap();
        let late = bars.update(&tick(T0 + 30_000, 5.0, Some(1.0))).unwrap();
        assert_eq!(late.minute_start_ms, T0, "4 minutes late is still open");
        bars.update(&tick(T0 + 5 * 60_000, 21.0, Some(1.0)))
            .unwrap();
        assert_eq!(
            bars.update(&tick(T0 + 30_000, 5.0, Some(1.0))),
            Err(LateForBars),
            "5 minutes behind the newest minute is closed"
        );
        let earlier_open = bars.update(&tick(T0 + 5 * 60_000 - 1, 1.0, None));
        assert_eq!(earlier_open.unwrap().minute_start_ms, T0 + 4 * 60_000);
    }

    fn ticks() -> impl Strategy<Value = Vec<Tick>> {
        prop::collection::vec(
            (0i64..600_000, 1.0..500.0f64, prop::option::of(0.0..1e6f64)),
            1..200,
        )
        .prop_map(|raw| {
            // Event times mostly rising, sometimes a little late, as real feeds are.
            let mut t = T0;
            raw.into_iter()
                .map(|(step, price, volume)| {
                    t += step / 50 - 1_000;
                    tick(t, price, volume)
                })
                .collect()
        })
    }

    /// The bars a straight pass over the accepted ticks gives.
    fn reference(ticks: &[&Tick]) -> BTreeMap<i64, (f64, f64, f64, f64, f64, u64)> {
        let mut bars: BTreeMap<i64, Vec<&Tick>> = BTreeMap::new();
        for t in ticks {
            bars.entry(t.event_time_ms.div_euclid(MINUTE_MS) * MINUTE_MS)
                .or_default()
                .push(t);
        }
        bars.into_iter()
            .map(|(minute, ts)| {
                let first = ts.iter().min_by_key(|t| t.event_time_ms).unwrap();
                let last = ts.iter().max_by_key(|t| t.event_time_ms).unwrap();
                let high = ts.iter().map(|t| t.price).fold(f64::MIN, f64::max);
                let low = ts.iter().map(|t| t.price).fold(f64::MAX, f64::min);
                let volume = ts.iter().map(|t| t.volume.unwrap_or(0.0)).sum();
                (
                    minute,
                    (first.price, high, low, last.price, volume, ts.len() as u64),
                )
            })
            .collect()
    }

    proptest! {
        #[test]
        fn bars_match_a_straight_pass_and_survive_a_snapshot(
            ticks in ticks(),
            cut in any::<prop::sample::Index>(),
        ) {
            let cut = cut.index(ticks.len() + 1);
            let mut bars = OpenBars::default();
            let mut latest = BTreeMap::new();
            let mut accepted = Vec::new();
            for (i, t) in ticks.iter().enumerate() {
                if i == cut {
                    let json = serde_json::to_string(&bars).unwrap();
                    bars = serde_json::from_str(&json).unwrap();
                }
                if let Ok(bar) = bars.update(t) {
                    latest.insert(bar.minute_start_ms, bar.clone());
                    accepted.push(t);
                }
            }
            let got: BTreeMap<_, _> = latest
                .into_iter()
                .map(|(m, b)| (m, (b.open, b.high, b.low, b.close, b.volume, b.trades)))
                .collect();
            let expected = reference(&accepted);
            prop_assert_eq!(got.len(), expected.len());
            for (minute, (o, h, l, c, v, n)) in expected {
                let (go, gh, gl, gc, gv, gn) = got[&minute];
                prop_assert_eq!((go, gh, gl, gc, gn), (o, h, l, c, n));
                prop_assert!((gv - v).abs() <= 1e-9 * v.max(1.0));
            }
        }
    }
}
