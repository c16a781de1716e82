//! The event-time window of a symbol: the ticks of the last `span` of event time, with running
//! sums for VWAP, mean volume, volatility and the return z-score, and monotonic deques for the
//! high and the low.
//!
//! In: each tick's time, price, volume and log return. Out: the window's [`SpanStats`].

use std::collections::VecDeque;

use super::WindowConfig;
use super::sum::Sum;

/// One tick in the event-time window.
///
/// A window can hold thousands of ticks per symbol, so an absent volume or return is stored as
/// NaN (present ones are always finite): 32 bytes an entry instead of 48.
#[derive(Debug, Clone, Copy)]
pub(super) struct Entry {
    /// Event time, raised to the window end when the tick came late.
    pub(super) time: i64,
    pub(super) price: f64,
    pub(super) volume: f64,
    pub(super) log_return: f64,
}

impl Entry {
    pub(super) fn new(time: i64, price: f64, volume: Option<f64>, log_return: Option<f64>) -> Self {
        debug_assert!(volume.is_none_or(f64::is_finite) && log_return.is_none_or(f64::is_finite));
        Self {
            time,
            price,
            volume: volume.unwrap_or(f64::NAN),
            log_return: log_return.unwrap_or(f64::NAN),
        }
    }

    pub(super) fn volume(&self) -> Option<f64> {
        Some(self.volume).filter(|v| !v.is_nan())
    }

    pub(super) fn log_return(&self) -> Option<f64> {
        Some(self.log_return).filter(|r| !r.is_nan())
    }
}

impl PartialEq for Entry {
    /// Absent values are equal to each other (NaN is not equal to itself).
    fn eq(&self, other: &Self) -> bool {
        (self.time, self.price, self.volume(), self.log_return())
            == (other.time, other.price, other.volume(), other.log_return())
    }
}

/// A price and the number of the tick that carried it (counting every tick of the symbol).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Extreme {
    seq: u64,
    price: f64,
}

/// What the event-time window says after one tick.
pub(super) struct SpanStats {
    pub(super) vwap: Option<f64>,
    pub(super) high: Option<f64>,
    pub(super) low: Option<f64>,
    pub(super) volatility: Option<f64>,
    pub(super) zscore: Option<f64>,
    pub(super) volume_ratio: Option<f64>,
}

/// The event-time window: the ticks in it, running sums over them, and monotonic deques whose
/// fronts are the window's high and low.
///
/// Counts and extremes are derived from the entries and rebuilt on restore; only the float sums,
/// which depend on the order of past additions, are stored as they are (see `snapshot.rs`).
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct SpanWindow {
    pub(super) entries: VecDeque<Entry>,
    /// Ticks ever pushed: the sequence number of the next one.
    pub(super) ticks: u64,
    /// The latest event time seen.
    pub(super) end: Option<i64>,
    /// Decreasing prices; the front is the high.
    pub(super) highs: VecDeque<Extreme>,
    /// Increasing prices; the front is the low.
    pub(super) lows: VecDeque<Extreme>,
    /// Sum of price * volume over entries with positive volume.
    pub(super) price_volume: Sum,
    pub(super) volume: Sum,
    /// Entries with a volume (zero included): the denominator of the mean volume.
    pub(super) with_volume: usize,
    /// Entries with a positive volume; the volume sums are reset to exactly 0 when none is left.
    pub(super) positive_volume: usize,
    pub(super) returns: Sum,
    pub(super) squared_returns: Sum,
    pub(super) with_return: usize,
    /// The previous tick's log return, and how many ticks in a row ending there had that same
    /// return. When the run covers every return in the window, their deviation is exactly 0,
    /// which the running sums alone would only approximate.
    pub(super) last_return: Option<f64>,
    pub(super) run: usize,
    /// Entries evicted since the sums were last recomputed from the entries.
    pub(super) evicted: usize,
}

impl SpanWindow {
    pub(super) fn push(
        &mut self,
        event_time_ms: i64,
        price: f64,
        volume: Option<f64>,
        log_return: Option<f64>,
        config: &WindowConfig,
    ) -> SpanStats {
        let end = self.end.map_or(event_time_ms, |end| end.max(event_time_ms));
        self.end = Some(end);
        let start = end.saturating_sub(config.span_ms());
        let max_len = config.max_span_ticks.max(1);
        let before = self.entries.len();
        while let Some(front) = self.entries.front() {
            if front.time > start && self.entries.len() < max_len {
                break;
            }
            self.evict_front();
        }
        if self.entries.len() != before {
            let first = self.ticks - self.entries.len() as u64;
            while self.highs.front().is_some_and(|e| e.seq < first) {
                self.highs.pop_front();
            }
            while self.lows.front().is_some_and(|e| e.seq < first) {
                self.lows.pop_front();
            }
            if self.evicted >= self.entries.len() {
                self.recompute();
            }
            shrink(&mut self.entries);
            shrink(&mut self.highs);
            shrink(&mut self.lows);
        }

        let min_samples = config.min_samples.max(2);
        // Z-score and volume ratio compare this tick with the window as it was before it.
        let zscore = log_return.and_then(|r| {
            let n = self.with_return;
            if n < min_samples || self.run >= n {
                return None;
            }
            let (mean, std) = self.mean_std();
            (std > 0.0).then(|| (r - mean) / std)
        });
        let volume_ratio = volume.and_then(|v| {
            (self.positive_volume > 0)
                .then(|| v / (self.volume.value() / self.with_volume as f64))
                .filter(|ratio| ratio.is_finite())
        });

        self.add(Entry::new(end, price, volume, log_return));

        let n = self.with_return;
        let volatility = (n >= min_samples).then(|| {
            if self.run >= n {
                0.0
            } else {
                self.mean_std().1
            }
        });
        SpanStats {
            vwap: (self.positive_volume > 0)
                .then(|| self.price_volume.value() / self.volume.value()),
            high: self.highs.front().map(|e| e.price),
            low: self.lows.front().map(|e| e.price),
            volatility,
            zscore,
            volume_ratio,
        }
    }

    pub(super) fn add(&mut self, entry: Entry) {
        let seq = self.ticks;
        self.ticks += 1;
        let price = entry.price;
        while self.highs.back().is_some_and(|e| e.price <= price) {
            self.highs.pop_back();
        }
        self.highs.push_back(Extreme { seq, price });
        while self.lows.back().is_some_and(|e| e.price >= price) {
            self.lows.pop_back();
        }
        self.lows.push_back(Extreme { seq, price });

        if let Some(v) = entry.volume() {
            self.with_volume += 1;
            if v > 0.0 {
                self.positive_volume += 1;
                self.volume.add(v);
                self.price_volume.add(price * v);
            }
        }
        match entry.log_return() {
            Some(r) => {
                self.with_return += 1;
                self.returns.add(r);
                self.squared_returns.add(r * r);
                self.run = if self.last_return == Some(r) {
                    self.run + 1
                } else {
                    1
                };
            }
            None => self.run = 0,
        }
        self.last_return = entry.log_return();
        self.entries.push_back(entry);
    }

    fn evict_front(&mut self) {
        let Some(entry) = self.entries.pop_front() else {
            return;
        };
        self.evicted += 1;
        if let Some(v) = entry.volume() {
            self.with_volume -= 1;
            if v > 0.0 {
                self.positive_volume -= 1;
                if self.positive_volume == 0 {
                    self.volume = Sum::default();
                    self.price_volume = Sum::default();
                } else {
                    self.volume.add(-v);
                    self.price_volume.add(-(entry.price * v));
                }
            }
        }
        if let Some(r) = entry.log_return() {
            self.with_return -= 1;
            if self.with_return == 0 {
                self.returns = Sum::default();
                self.squared_returns = Sum::default();
            } else {
                self.returns.add(-r);
                self.squared_returns.add(-(r * r));
            }
        }
    }

    /// Starts the running sums afresh from the entries.
    fn recompute(&mut self) {
        let positive = || {
            self.entries
                .iter()
                .filter_map(|e| e.volume().filter(|v| *v > 0.0).map(|v| (e.price, v)))
        };
        self.volume = Sum::of(positive().map(|(_, v)| v));
        self.price_volume = Sum::of(positive().map(|(p, v)| p * v));
        let returns = || self.entries.iter().filter_map(Entry::log_return);
        self.returns = Sum::of(returns());
        self.squared_returns = Sum::of(returns().map(|r| r * r));
        self.evicted = 0;
    }

    /// Mean and sample standard deviation of the returns in the window (at least 2).
    fn mean_std(&self) -> (f64, f64) {
        let n = self.with_return as f64;
        let sum = self.returns.value();
        let mean = sum / n;
        let variance = ((self.squared_returns.value() - sum * mean) / (n - 1.0)).max(0.0);
        (mean, variance.sqrt())
    }
}

/// Gives memory back after a burst; halving only below a quarter keeps it O(1) amortized.
fn shrink<T>(deque: &mut VecDeque<T>) {
    if deque.capacity() > 1024 && deque.len() < deque.capacity() / 4 {
        deque.shrink_to(deque.capacity() / 2);
    }
}
