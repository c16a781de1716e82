//! One symbol's market model: a geometric Brownian motion of its price in trading time, times
//! the offset of its news (`news.rs`), its volumes with their spikes, and its session's open,
//! high, low and previous close.
//!
//! In: the trading clock, the session and the kind of record to make. Out: the instrument's new
//! state, the tick's volume and whether news broke at it.

use std::sync::Arc;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use super::RecordKind;
use super::news::News;

/// Dispersion of a tick's volume around its symbol's mean (log scale). Small enough that a normal
/// tick almost never looks like a 20x spike (over 5 sigma).
const VOLUME_LOG_SIGMA: f64 = 0.6;
/// The lowest price a symbol can fall to, in cents.
const MIN_PRICE_CENTS: i64 = 1;

/// One symbol's market state. Prices are kept in cents so that the quote fields are exact and
/// `change` is exactly `price - previous_close`.
#[derive(Debug, Clone)]
pub(super) struct Instrument {
    pub(super) symbol: Arc<str>,
    /// The unrounded price the diffusion works on, so that rounding never accumulates; the
    /// price is this times the factor of the symbol's news.
    pub(super) level: f64,
    pub(super) price: i64,
    pub(super) open: i64,
    pub(super) high: i64,
    pub(super) low: i64,
    pub(super) previous_close: i64,
    /// The session `open`, `high` and `low` belong to; `None` before the first tick.
    pub(super) session: Option<u64>,
    /// Volatility per square root of a millisecond of trading time.
    pub(super) sigma_per_sqrt_ms: f64,
    /// Mean volume of one tick, shares.
    pub(super) mean_volume: f64,
    /// Trading clock of the last tick, ms.
    pub(super) last_clock_ms: f64,
    pub(super) news: News,
}

impl Instrument {
    /// A symbol at its listing price (USD), before its first tick.
    pub(super) fn new(
        symbol: &str,
        price: f64,
        sigma_per_sqrt_ms: f64,
        mean_volume: f64,
        news: News,
    ) -> Self {
        let cents = to_cents(price);
        Self {
            symbol: symbol.into(),
            level: price,
            price: cents,
            open: cents,
            high: cents,
            low: cents,
            previous_close: cents,
            session: None,
            sigma_per_sqrt_ms,
            mean_volume,
            last_clock_ms: 0.0,
            news,
        }
    }

    /// Moves the price to the trading clock's `clock_ms`, in `session`, and returns the tick's
    /// kind (`kind`, or [`RecordKind::Jump`] where news broke) and volume (shares). The draws
    /// from `rng` come in a fixed order, so a seed gives one market.
    pub(super) fn step(
        &mut self,
        rng: &mut ChaCha8Rng,
        clock_ms: f64,
        kind: RecordKind,
        session: u64,
    ) -> (RecordKind, i64) {
        let dt = (clock_ms - self.last_clock_ms).max(0.0);
        self.last_clock_ms = clock_ms;
        let sigma = self.sigma_per_sqrt_ms;
        let z: f64 = StandardNormal.sample(rng);
        // Exact GBM step with no drift: the price is a martingale.
        let level = self.level * (sigma * dt.sqrt() * z - 0.5 * sigma * sigma * dt).exp();
        self.level = level.max(MIN_PRICE_CENTS as f64 / 100.0);
        let kind = if self.news.advance(rng, clock_ms, dt, session) {
            RecordKind::Jump
        } else {
            kind
        };
        let price = to_cents(self.level * self.news.factor);

        if self.session == Some(session) {
            self.high = self.high.max(price);
            self.low = self.low.min(price);
        } else {
            if self.session.is_some() {
                self.previous_close = self.price;
            }
            self.session = Some(session);
            (self.open, self.high, self.low) = (price, price, price);
        }
        self.price = price;

        // News trades heavily too.
        let volume = if matches!(kind, RecordKind::VolumeSpike | RecordKind::Jump) {
            self.mean_volume * rng.random_range(20.0..50.0)
        } else {
            let z: f64 = StandardNormal.sample(rng);
            self.mean_volume
                * (VOLUME_LOG_SIGMA * z - 0.5 * VOLUME_LOG_SIGMA * VOLUME_LOG_SIGMA).exp()
        };
        (kind, round(volume).max(1))
    }
}

fn to_cents(price: f64) -> i64 {
    round(price * 100.0).max(MIN_PRICE_CENTS)
}

/// Rounds half away from zero like `f64::round`, without its libm call on targets that lack a
/// rounding instruction in their baseline (x86-64 before SSE4.1): it runs several times a tick.
pub(super) fn round(value: f64) -> i64 {
    if value >= 0.0 {
        (value + 0.5) as i64
    } else {
        -((0.5 - value) as i64)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::super::SimulatorConfig;
    use super::*;
    use crate::producer::simulator::tests::{parse, records};

    #[test]
    fn anomalies_look_like_anomalies() {
        // News on one tick in 1000 (200 s of trading for 100 symbols), rare enough that two
        // items almost never break between two ticks of a symbol.
        let config = SimulatorConfig {
            jumps_per_session: 234.0,
            volume_spike_rate: 0.01,
            malformed_rate: 0.0,
            ..SimulatorConfig::default()
        };
        let mut last_price: HashMap<String, f64> = HashMap::new();
        let mut volumes: HashMap<String, Vec<u64>> = HashMap::new();
        let mut spikes = Vec::new();
        let (mut ups, mut downs) = (0, 0);
        for record in records(config, 200_000) {
            let quote = parse(&record).unwrap();
            let price = quote["price"].as_f64().unwrap();
            let volume = quote["volume"].as_u64().unwrap();
            let before = last_price.insert(record.partition_key.to_string(), price);
            match record.kind {
                RecordKind::Jump => {
                    // Over $20 a cent of rounding is at most 0.05 % of a move.
                    if let Some(before) = before.filter(|&p| p >= 20.0) {
                        let change = price / before - 1.0;
                        assert!((0.0193..0.0807).contains(&change.abs()), "news of {change}");
                        if change > 0.0 {
                            ups += 1;
                        } else {
                            downs += 1;
                        }
                    }
                    spikes.push((record.partition_key.to_string(), volume));
                }
                RecordKind::VolumeSpike => spikes.push((record.partition_key.to_string(), volume)),
                _ => volumes
                    .entry(record.partition_key.to_string())
                    .or_default()
                    .push(volume),
            }
        }
        assert!(ups > 50 && downs > 50, "{ups} up, {downs} down");
        for (symbol, volume) in spikes {
            let normal = volumes.get_mut(&symbol).unwrap();
            normal.sort_unstable();
            let median = normal[normal.len() / 2];
            assert!(
                volume >= 10 * median,
                "{symbol}: {volume} vs median {median}"
            );
        }
    }
}
