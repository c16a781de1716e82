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

use std::collections::VecDeque;
use std::time::Duration;

use serde::ser::{SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};

use super::state::exact::{self, Exact, FloatValues};
use super::tick::Tick;

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
    fn span_ms(&self) -> i64 {
        i64::try_from(self.span.as_millis())
            .unwrap_or(i64::MAX)
            .max(1)
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

/// A running sum with TwoSum compensation: after adding and later subtracting the same values,
/// the error is about one rounding of the current total, not of everything that passed through.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Sum {
    hi: f64,
    lo: f64,
}

impl Sum {
    #[inline]
    fn add(&mut self, x: f64) {
        let sum = self.hi + x;
        let x_part = sum - self.hi;
        self.lo += (self.hi - (sum - x_part)) + (x - x_part);
        self.hi = sum;
    }

    #[inline]
    fn value(self) -> f64 {
        self.hi + self.lo
    }

    fn of(values: impl Iterator<Item = f64>) -> Self {
        let mut sum = Self::default();
        values.for_each(|x| sum.add(x));
        sum
    }
}

impl Serialize for Sum {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (Exact(self.hi), Exact(self.lo)).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Sum {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (hi, lo) = <(Exact, Exact)>::deserialize(deserializer)?;
        Ok(Self { hi: hi.0, lo: lo.0 })
    }
}

/// The last `max(sma_short, sma_long)` prices and the running sums of both SMAs.
///
/// Plain sums suffice here: they are recomputed from the prices at every wrap of the ring, so
/// their error never exceeds a few dozen roundings of the largest price in the ring.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PriceRing {
    /// Grows to capacity, then is overwritten in place at `pos`.
    #[serde(with = "exact::vec")]
    buf: Vec<f64>,
    /// Where the next price goes.
    pos: usize,
    #[serde(with = "exact")]
    short: f64,
    #[serde(with = "exact")]
    long: f64,
}

impl PriceRing {
    fn new(capacity: usize) -> Self {
        Self {
            buf: Vec::with_capacity(capacity.min(4096)),
            pos: 0,
            short: 0.0,
            long: 0.0,
        }
    }

    /// Adds a price; returns the short and long SMAs including it.
    fn push(&mut self, price: f64, short: usize, long: usize) -> (Option<f64>, Option<f64>) {
        let cap = short.max(long);
        if cap == 0 {
            return (None, None);
        }
        let len = self.buf.len();
        // The price `n` places back leaves the n-window (correct while filling too: pos == len).
        // No `%`: an integer division would cost more than the rest of the ring together.
        let pos = self.pos;
        let back = |n: usize| self.buf[if pos >= n { pos - n } else { pos + cap - n }];
        if short > 0 {
            if len >= short {
                self.short -= back(short);
            }
            self.short += price;
        }
        if long > 0 {
            if len >= long {
                self.long -= back(long);
            }
            self.long += price;
        }
        if self.pos == len {
            self.buf.push(price);
        } else {
            self.buf[self.pos] = price;
        }
        self.pos += 1;
        if self.pos == cap {
            self.pos = 0;
            // Every stored price has been replaced once: start the sums afresh (O(1) amortized).
            let tail = |n: usize| self.buf[cap - n.min(cap)..].iter().sum::<f64>();
            self.short = tail(short);
            self.long = tail(long);
        }
        let len = self.buf.len();
        let sma = |n: usize, sum: f64| (n > 0 && len >= n).then(|| sum / n as f64);
        (sma(short, self.short), sma(long, self.long))
    }
}

/// One tick in the event-time window.
///
/// A window can hold thousands of ticks per symbol, so an absent volume or return is stored as
/// NaN (present ones are always finite): 32 bytes an entry instead of 48.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Event time, raised to the window end when the tick came late.
    time: i64,
    price: f64,
    volume: f64,
    log_return: f64,
}

impl Entry {
    fn new(time: i64, price: f64, volume: Option<f64>, log_return: Option<f64>) -> Self {
        debug_assert!(volume.is_none_or(f64::is_finite) && log_return.is_none_or(f64::is_finite));
        Self {
            time,
            price,
            volume: volume.unwrap_or(f64::NAN),
            log_return: log_return.unwrap_or(f64::NAN),
        }
    }

    fn volume(&self) -> Option<f64> {
        Some(self.volume).filter(|v| !v.is_nan())
    }

    fn log_return(&self) -> Option<f64> {
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
struct Extreme {
    seq: u64,
    price: f64,
}

/// What the event-time window says after one tick.
struct SpanStats {
    vwap: Option<f64>,
    high: Option<f64>,
    low: Option<f64>,
    volatility: Option<f64>,
    zscore: Option<f64>,
    volume_ratio: Option<f64>,
}

/// The event-time window: the ticks in it, running sums over them, and monotonic deques whose
/// fronts are the window's high and low.
///
/// Counts and extremes are derived from the entries and rebuilt on restore; only the float sums,
/// which depend on the order of past additions, are stored as they are.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(try_from = "SpanRepr")]
struct SpanWindow {
    entries: VecDeque<Entry>,
    /// Ticks ever pushed: the sequence number of the next one.
    ticks: u64,
    /// The latest event time seen.
    end: Option<i64>,
    /// Decreasing prices; the front is the high.
    highs: VecDeque<Extreme>,
    /// Increasing prices; the front is the low.
    lows: VecDeque<Extreme>,
    /// Sum of price * volume over entries with positive volume.
    price_volume: Sum,
    volume: Sum,
    /// Entries with a volume (zero included): the denominator of the mean volume.
    with_volume: usize,
    /// Entries with a positive volume; the volume sums are reset to exactly 0 when none is left.
    positive_volume: usize,
    returns: Sum,
    squared_returns: Sum,
    with_return: usize,
    /// The previous tick's log return, and how many ticks in a row ending there had that same
    /// return. When the run covers every return in the window, their deviation is exactly 0,
    /// which the running sums alone would only approximate.
    last_return: Option<f64>,
    run: usize,
    /// Entries evicted since the sums were last recomputed from the entries.
    evicted: usize,
}

impl SpanWindow {
    fn push(
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

    fn add(&mut self, entry: Entry) {
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

/// Serializes the window as columns, times as deltas, to keep checkpoints small.
impl Serialize for SpanWindow {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let entries = &self.entries;
        let mut state = serializer.serialize_struct("SpanWindow", 13)?;
        state.serialize_field("ticks", &self.ticks)?;
        state.serialize_field("end", &self.end)?;
        state.serialize_field(
            "time",
            &Column(|| {
                let mut previous = 0i64;
                entries.iter().map(move |e| {
                    let delta = e.time.wrapping_sub(previous);
                    previous = e.time;
                    delta
                })
            }),
        )?;
        state.serialize_field(
            "price",
            &exact::FloatColumn(|| entries.iter().map(|e| Some(e.price))),
        )?;
        state.serialize_field(
            "volume",
            &exact::FloatColumn(|| entries.iter().map(Entry::volume)),
        )?;
        state.serialize_field(
            "return",
            &exact::FloatColumn(|| entries.iter().map(Entry::log_return)),
        )?;
        state.serialize_field("price-volume", &self.price_volume)?;
        state.serialize_field("volume-sum", &self.volume)?;
        state.serialize_field("return-sum", &self.returns)?;
        state.serialize_field("squared-return-sum", &self.squared_returns)?;
        state.serialize_field("last-return", &self.last_return.map(Exact))?;
        state.serialize_field("run", &self.run)?;
        state.serialize_field("evicted", &self.evicted)?;
        state.end()
    }
}

/// A sequence serialized straight from an iterator, without collecting it first.
struct Column<F>(F);

impl<F, I> Serialize for Column<F>
where
    F: Fn() -> I,
    I: IntoIterator,
    I::Item: Serialize,
{
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq((self.0)())
    }
}

/// A snapshot is read from outside the process: reject one that would break an invariant.
#[derive(Debug, thiserror::Error)]
#[error("invalid window snapshot: {0}")]
struct InvalidSnapshot(&'static str);

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct SpanRepr {
    ticks: u64,
    end: Option<i64>,
    time: Vec<i64>,
    price: FloatValues,
    volume: FloatValues,
    #[serde(rename = "return")]
    log_return: FloatValues,
    price_volume: Sum,
    volume_sum: Sum,
    return_sum: Sum,
    squared_return_sum: Sum,
    last_return: Option<Exact>,
    run: usize,
    evicted: usize,
}

impl TryFrom<SpanRepr> for SpanWindow {
    type Error = InvalidSnapshot;

    fn try_from(repr: SpanRepr) -> Result<Self, InvalidSnapshot> {
        let len = repr.time.len();
        let (price, volume, log_return) = (repr.price.0, repr.volume.0, repr.log_return.0);
        if price.len() != len || volume.len() != len || log_return.len() != len {
            return Err(InvalidSnapshot("columns differ in length"));
        }
        if repr.ticks < len as u64 || repr.ticks > u64::MAX / 2 {
            return Err(InvalidSnapshot("tick count out of range"));
        }
        let mut window = SpanWindow {
            ticks: repr.ticks - len as u64,
            end: repr.end,
            ..SpanWindow::default()
        };
        let mut time = 0i64;
        for (i, (((delta, price), volume), log_return)) in repr
            .time
            .into_iter()
            .zip(price)
            .zip(volume)
            .zip(log_return)
            .enumerate()
        {
            let previous = time;
            time = time.wrapping_add(delta);
            if (i > 0 && time < previous) || repr.end.is_none_or(|end| time > end) {
                return Err(InvalidSnapshot("entry times out of order"));
            }
            let Some(price) = price else {
                return Err(InvalidSnapshot("an entry lacks its price"));
            };
            if volume.is_some_and(|v| !(v.is_finite() && v >= 0.0))
                || log_return.is_some_and(|r| !r.is_finite())
            {
                return Err(InvalidSnapshot("volume or return out of range"));
            }
            window.add(Entry::new(time, price, volume, log_return));
        }
        // `add` rebuilt the counts and extremes; the sums and the run are taken as they were.
        window.price_volume = repr.price_volume;
        window.volume = repr.volume_sum;
        window.returns = repr.return_sum;
        window.squared_returns = repr.squared_return_sum;
        window.last_return = repr.last_return.map(|r| r.0);
        window.run = repr.run;
        window.evicted = repr.evicted;
        Ok(window)
    }
}

#[derive(Deserialize)]
struct WindowsRepr {
    config: WindowConfig,
    ring: PriceRing,
    #[serde(with = "exact::option")]
    ema: Option<f64>,
    #[serde(with = "exact::option")]
    prev_price: Option<f64>,
    span: SpanWindow,
}

impl TryFrom<WindowsRepr> for SymbolWindows {
    type Error = InvalidSnapshot;

    fn try_from(repr: WindowsRepr) -> Result<Self, InvalidSnapshot> {
        let cap = repr.config.sma_short.max(repr.config.sma_long);
        let ring = &repr.ring;
        let consistent = if cap == 0 {
            ring.buf.is_empty() && ring.pos == 0
        } else {
            ring.buf.len() <= cap
                && ring.pos < cap
                && (ring.buf.len() == cap || ring.pos == ring.buf.len())
        };
        if !consistent {
            return Err(InvalidSnapshot("price ring does not fit the window config"));
        }
        Ok(Self {
            config: repr.config,
            ring: repr.ring,
            ema: repr.ema,
            prev_price: repr.prev_price,
            span: repr.span,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

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

    /// How well-posed the deviation of a set of returns is: sum of squares over sum of squared
    /// deviations. A streaming sum of squares is off by about `1e-16 * kappa` relative, where
    /// the two-pass reference is not; with nearly equal returns both are rounding noise.
    #[derive(Debug, Clone, Copy, Default)]
    struct Conditioning {
        window: f64,
        before: f64,
        /// Root mean square of the window's returns: the scale of the noise when ill-posed.
        rms: f64,
    }

    /// Mean, sample deviation and conditioning, shifted by the first value so that nearly equal
    /// values are subtracted exactly. Identical values have a deviation of exactly 0.
    fn mean_std(xs: &[f64]) -> (f64, f64, f64) {
        let n = xs.len() as f64;
        let sum_squares = xs.iter().map(|x| x * x).sum::<f64>();
        if xs.iter().all(|x| *x == xs[0]) {
            return (xs[0], 0.0, 1.0);
        }
        let shift = xs[0];
        let mean_shifted = xs.iter().map(|x| x - shift).sum::<f64>() / n;
        let m2 = xs
            .iter()
            .map(|x| (x - shift - mean_shifted).powi(2))
            .sum::<f64>();
        (
            shift + mean_shifted,
            (m2 / (n - 1.0)).sqrt(),
            sum_squares / m2,
        )
    }

    /// The indicators computed the slow, obvious way from the whole history.
    fn reference(config: &WindowConfig, ticks: &[Tick]) -> Vec<(Indicators, Conditioning)> {
        let prices: Vec<f64> = ticks.iter().map(|t| t.price).collect();
        let volumes: Vec<Option<f64>> = ticks
            .iter()
            .map(|t| t.volume.filter(|v| v.is_finite() && *v >= 0.0))
            .collect();
        let returns: Vec<Option<f64>> = (0..ticks.len())
            .map(|i| {
                (i > 0)
                    .then(|| (prices[i] / prices[i - 1]).ln())
                    .filter(|r| r.is_finite())
            })
            .collect();
        let mut ends = Vec::new();
        let mut ema = None::<f64>;
        let alpha = 2.0 / (config.ema_span.max(1) as f64 + 1.0);
        let min_samples = config.min_samples.max(2);
        let span_ms = config.span.as_millis() as i64;
        let max_len = config.max_span_ticks.max(1);

        let sma = |i: usize, n: usize| {
            (n > 0 && i + 1 >= n).then(|| prices[i + 1 - n..=i].iter().sum::<f64>() / n as f64)
        };
        let mut out = Vec::new();
        for (i, t) in ticks.iter().enumerate() {
            let end = ends
                .last()
                .map_or(t.event_time_ms, |e: &i64| (*e).max(t.event_time_ms));
            ends.push(end);
            let p = prices[i];
            let e = ema.map_or(p, |e| e + alpha * (p - e));
            ema = Some(e);
            let window: Vec<usize> = (0..=i)
                .filter(|&j| ends[j] > end - span_ms.max(1) && j + max_len > i)
                .collect();
            let before = &window[..window.len() - 1];

            let positive: Vec<usize> = window
                .iter()
                .copied()
                .filter(|&j| volumes[j].is_some_and(|v| v > 0.0))
                .collect();
            let vwap = (!positive.is_empty()).then(|| {
                positive
                    .iter()
                    .map(|&j| prices[j] * volumes[j].unwrap())
                    .sum::<f64>()
                    / positive.iter().map(|&j| volumes[j].unwrap()).sum::<f64>()
            });
            let rets: Vec<f64> = window.iter().filter_map(|&j| returns[j]).collect();
            let rets_before: Vec<f64> = before.iter().filter_map(|&j| returns[j]).collect();
            let vols_before: Vec<f64> = before.iter().filter_map(|&j| volumes[j]).collect();
            let mean_volume = vols_before.iter().sum::<f64>() / vols_before.len() as f64;

            let (change, change_percent) = match t.previous_close {
                Some(c) => (Some(p - c), Some((p - c) / c * 100.0)),
                None => (t.change, t.change_percent),
            };
            let indicators = Indicators {
                sma_short: sma(i, config.sma_short),
                sma_long: sma(i, config.sma_long),
                ema: Some(e),
                vwap,
                window_high: window.iter().map(|&j| prices[j]).reduce(f64::max),
                window_low: window.iter().map(|&j| prices[j]).reduce(f64::min),
                volatility: (rets.len() >= min_samples).then(|| mean_std(&rets).1),
                log_return: returns[i],
                return_zscore: returns[i]
                    .filter(|_| rets_before.len() >= min_samples)
                    .and_then(|r| {
                        let (mean, sd, _) = mean_std(&rets_before);
                        (sd > 0.0).then(|| (r - mean) / sd)
                    }),
                volume_ratio: volumes[i]
                    .filter(|_| mean_volume > 0.0)
                    .map(|v| v / mean_volume),
                change,
                change_percent,
            };
            let conditioning = Conditioning {
                window: if rets.len() >= 2 {
                    mean_std(&rets).2
                } else {
                    1.0
                },
                before: if rets_before.len() >= 2 {
                    mean_std(&rets_before).2
                } else {
                    1.0
                },
                rms: (rets.iter().map(|r| r * r).sum::<f64>() / rets.len().max(1) as f64).sqrt(),
            };
            out.push((indicators, conditioning));
        }
        out
    }

    fn close(a: Option<f64>, b: Option<f64>) -> bool {
        match (a, b) {
            (None, None) => true,
            (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-3),
            _ => false,
        }
    }

    /// Past this conditioning the deviation is compared to its rounding noise only.
    const WELL_POSED: f64 = 1e5;

    fn assert_close(actual: &Indicators, (expected, cond): &(Indicators, Conditioning), at: usize) {
        let fields = |x: &Indicators| {
            [
                ("sma_short", x.sma_short),
                ("sma_long", x.sma_long),
                ("ema", x.ema),
                ("vwap", x.vwap),
                ("window_high", x.window_high),
                ("window_low", x.window_low),
                ("volatility", x.volatility),
                ("log_return", x.log_return),
                ("return_zscore", x.return_zscore),
                ("volume_ratio", x.volume_ratio),
                ("change", x.change),
                ("change_percent", x.change_percent),
            ]
        };
        for ((name, a), (_, e)) in fields(actual).into_iter().zip(fields(expected)) {
            let ok = match name {
                "volatility" if cond.window > WELL_POSED => match (a, e) {
                    (Some(a), Some(e)) => (a - e).abs() <= 1e-6 * cond.rms,
                    (a, e) => a.is_none() && e.is_none(),
                },
                // Noise over noise: any finite value (or none) is as right as the reference.
                "return_zscore" if cond.before > WELL_POSED => a.is_none_or(f64::is_finite),
                _ => close(a, e),
            };
            assert!(
                ok,
                "tick {at}: {name} is {a:?}, reference {e:?} ({cond:?})\n{actual:#?}\n{expected:#?}"
            );
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

    #[test]
    fn snapshot_is_compact_and_exact() {
        let mut w = SymbolWindows::new(WindowConfig::default());
        for i in 0..100 {
            w.update(&tick(
                1_700_000_000_000 + i * 250,
                190.0 + (i % 7) as f64 * 0.01,
                Some(100.0),
            ));
        }
        let json = serde_json::to_string(&w).unwrap();
        assert!(json.contains(r#""time":[1700000000000,250,250"#), "{json}");
        assert!(json.len() < 100 * 50, "{} bytes: {json}", json.len());
        let restored: SymbolWindows = serde_json::from_str(&json).unwrap();
        assert_eq!(restored, w);
    }

    #[test]
    fn corrupt_snapshot_is_rejected() {
        let w = SymbolWindows::new(WindowConfig::default());
        let mut value = serde_json::to_value(&w).unwrap();
        value["ring"]["pos"] = 7.into();
        assert!(serde_json::from_value::<SymbolWindows>(value).is_err());
    }
}
