//! A seeded market simulator: geometric Brownian motion per symbol with realistic prices and
//! volumes, injectable anomalies (jumps, volume spikes) and a share of malformed records.
//!
//! Out: records in the seed producer format (`{"symbol","open","high","low","price",
//! "previous_close","change","change_percent","volume","timestamp"}`), keyed by symbol. The same
//! seed and config always give the same records: the random source is ChaCha8, whose output is
//! specified and portable, and nothing else (no wall clock, no hash order) feeds the market.
//!
//! Event time runs in trading sessions of 6.5 hours that open every weekday at the time of day of
//! `start_time_ms` (holidays are not modelled). A symbol's `open`, `high` and `low` belong to the
//! session, and its `previous_close` is its last price of the previous session (its listing price
//! in the first one), as in a yfinance quote. Prices diffuse only with trading time, so the night
//! between two sessions does not move them.
//!
//! The source of `kinetick produce` and `kinetick demo`, and of the benches' and tests' markets.
//! One concept a file: `symbols.rs` the listed and generated symbols, `instrument.rs` a symbol's
//! price and volume model with its anomalies, `sessions.rs` trading sessions in event time,
//! `alias.rs` the weighted pick of the next symbol, `quote.rs` the JSON of a record. This file
//! draws the record kinds, advances the clock and breaks the malformed records.

mod alias;
mod instrument;
mod quote;
mod sessions;
mod symbols;

use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp1};
use serde::{Deserialize, Serialize};

use self::alias::AliasTable;
use self::instrument::{Instrument, round};
use self::quote::{PriceField, Quote};
use self::sessions::{SESSION_MS, Sessions};
use self::symbols::{LISTINGS, symbol_names};

/// 2026-01-05T14:30:00Z, the opening bell of a Monday on NYSE.
const DEFAULT_START_MS: i64 = 1_767_623_400_000;
const TRADING_DAYS_PER_YEAR: f64 = 252.0;
/// Strings a broken producer puts where a price belongs; none of them parses as a number.
const GARBAGE_PRICES: [&str; 4] = ["N/A", "", "12.3.4", "1,234.56"];

/// What to simulate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct SimulatorConfig {
    /// Number of symbols (well-known tickers first, then generated ones).
    pub symbols: usize,
    pub seed: u64,
    /// Event time of the first tick, epoch ms.
    pub start_time_ms: i64,
    /// Mean event-time gap between two ticks of the whole market, in ms.
    pub tick_interval_ms: f64,
    /// Share of ticks with a price jump (5-15 %).
    pub jump_rate: f64,
    /// Share of ticks with a volume spike (20-50x).
    pub volume_spike_rate: f64,
    /// Share of records that are malformed in one of the ways validation rejects.
    pub malformed_rate: f64,
}

impl Default for SimulatorConfig {
    /// 100 symbols at about 1000 ticks per second of event time from the opening bell of
    /// 2026-01-05, with rare anomalies (1 in 2000 each) and 1 malformed record in 1000.
    fn default() -> Self {
        Self {
            symbols: 100,
            seed: 42,
            start_time_ms: DEFAULT_START_MS,
            tick_interval_ms: 1.0,
            jump_rate: 0.0005,
            volume_spike_rate: 0.0005,
            malformed_rate: 0.001,
        }
    }
}

/// What a simulated record is, so tests can count what the pipeline should make of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    Normal,
    Jump,
    VolumeSpike,
    Malformed,
}

/// One simulated record.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatedRecord {
    /// The symbol, shared by all of its records.
    pub partition_key: Arc<str>,
    pub data: Vec<u8>,
    pub kind: RecordKind,
}

/// The simulator; an endless iterator of records.
#[derive(Debug, Clone)]
pub struct MarketSimulator {
    rng: ChaCha8Rng,
    symbols: Vec<String>,
    instruments: Vec<Instrument>,
    /// Picks a symbol by its weight in O(1).
    picker: AliasTable,
    tick_interval_ms: f64,
    jump_rate: f64,
    volume_spike_rate: f64,
    malformed_rate: f64,
    clock_ms: f64,
    sessions: Sessions,
    malformed_count: u64,
}

impl MarketSimulator {
    /// # Panics
    /// On a config that cannot describe a market: no symbols, a non-positive tick interval, or
    /// rates outside 0..=1 (or summing past 1).
    pub fn new(config: SimulatorConfig) -> Self {
        let SimulatorConfig {
            symbols: count,
            seed,
            start_time_ms,
            tick_interval_ms,
            jump_rate,
            volume_spike_rate,
            malformed_rate,
        } = config;
        assert!(count > 0, "the simulator needs at least one symbol");
        assert!(
            tick_interval_ms.is_finite() && tick_interval_ms > 0.0,
            "tick interval must be a positive number of ms, got {tick_interval_ms}"
        );
        let rates = [jump_rate, volume_spike_rate, malformed_rate];
        assert!(
            rates.iter().all(|r| (0.0..=1.0).contains(r)) && rates.iter().sum::<f64>() <= 1.0,
            "rates must lie in 0..=1 and sum to at most 1, got {rates:?}"
        );

        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let symbols = symbol_names(count);
        // (price, annual volatility, average daily volume in shares)
        let profiles: Vec<(f64, f64, f64)> = symbols
            .iter()
            .enumerate()
            .map(|(i, _)| match LISTINGS.get(i) {
                Some(&(_, price, vol, adv)) => (price, vol, adv * 1e6),
                None => (
                    5.0 * 100f64.powf(rng.random::<f64>()),
                    rng.random_range(0.25..0.70),
                    0.5e6 * 40f64.powf(rng.random::<f64>()),
                ),
            })
            .collect();

        // Liquid symbols tick more often, but by the square root of their volume so that the
        // tail of the market still trades.
        let weights: Vec<f64> = profiles.iter().map(|&(.., adv)| adv.sqrt()).collect();
        let total_weight: f64 = weights.iter().sum();
        let picker = AliasTable::new(&weights);

        let ticks_per_session = SESSION_MS / tick_interval_ms;
        let sigma_scale = (TRADING_DAYS_PER_YEAR * SESSION_MS).sqrt().recip();
        let instruments = symbols
            .iter()
            .zip(&profiles)
            .zip(&weights)
            .map(|((symbol, &(price, vol, adv)), &weight)| {
                // Spread the real daily volume over the ticks this symbol gets in a session.
                let ticks = ticks_per_session * weight / total_weight;
                Instrument::new(symbol, price, vol * sigma_scale, (adv / ticks).max(1.0))
            })
            .collect();

        Self {
            rng,
            symbols,
            instruments,
            picker,
            tick_interval_ms,
            jump_rate,
            volume_spike_rate,
            malformed_rate,
            clock_ms: 0.0,
            sessions: Sessions::new(start_time_ms),
            malformed_count: 0,
        }
    }

    /// The simulated symbols, in the order they were created.
    pub fn symbols(&self) -> &[String] {
        &self.symbols
    }

    /// Moves the instrument's price and writes its quote.
    fn tick(&mut self, index: usize, kind: RecordKind, session: u64, event_ms: i64) -> Vec<u8> {
        let inst = &mut self.instruments[index];
        let volume = inst.step(&mut self.rng, self.clock_ms, kind, session);
        Quote::of(inst, volume, event_ms).to_json()
    }

    /// A record broken in one of the ways validation must reject, built from the instrument's
    /// current quote without touching its state. The defects take turns, so every kind shows up.
    fn malformed(&mut self, index: usize, event_ms: i64) -> Vec<u8> {
        let inst = &self.instruments[index];
        let turn = self.malformed_count;
        self.malformed_count += 1;
        let mut quote = Quote::of(inst, round(inst.mean_volume), event_ms);
        match turn % 7 {
            0 => {
                let mut data = quote.to_json();
                // Cut mid-record: a prefix of an object is never valid JSON.
                data.truncate(data.len() * 2 / 3);
                return data;
            }
            1 => quote.price = PriceField::Missing,
            2 => quote.price = PriceField::Cents(-inst.price),
            3 => {
                let garbage = GARBAGE_PRICES[(turn / 7) as usize % GARBAGE_PRICES.len()];
                quote.price = PriceField::Text(garbage);
            }
            4 => quote.volume = -quote.volume,
            5 => quote.year = Some(1900),
            _ => quote.symbol = None,
        }
        quote.to_json()
    }
}

impl Iterator for MarketSimulator {
    type Item = SimulatedRecord;

    fn next(&mut self) -> Option<SimulatedRecord> {
        let roll: f64 = self.rng.random();
        let kind = if roll < self.malformed_rate {
            RecordKind::Malformed
        } else if roll < self.malformed_rate + self.jump_rate {
            RecordKind::Jump
        } else if roll < self.malformed_rate + self.jump_rate + self.volume_spike_rate {
            RecordKind::VolumeSpike
        } else {
            RecordKind::Normal
        };
        let index = self.picker.pick(self.rng.random());
        let gap: f64 = Exp1.sample(&mut self.rng);
        self.clock_ms += gap * self.tick_interval_ms;
        let (session, event_ms) = self.sessions.event_time(self.clock_ms);

        let data = match kind {
            RecordKind::Malformed => self.malformed(index, event_ms),
            _ => self.tick(index, kind, session, event_ms),
        };
        Some(SimulatedRecord {
            partition_key: self.instruments[index].symbol.clone(),
            data,
            kind,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use chrono::DateTime;
    use serde_json::Value;

    use super::*;

    pub(super) fn records(config: SimulatorConfig, n: usize) -> Vec<SimulatedRecord> {
        MarketSimulator::new(config).take(n).collect()
    }

    pub(super) fn parse(record: &SimulatedRecord) -> Option<Value> {
        serde_json::from_slice(&record.data).ok()
    }

    pub(super) fn event_ms(value: &Value) -> i64 {
        let text = value["timestamp"].as_str().expect("timestamp string");
        DateTime::parse_from_rfc3339(text)
            .expect("RFC 3339")
            .timestamp_millis()
    }

    #[test]
    fn same_seed_same_records_other_seed_other_records() {
        let config = SimulatorConfig::default();
        let first = records(config.clone(), 5_000);
        assert_eq!(first, records(config.clone(), 5_000));
        let other = records(SimulatorConfig { seed: 43, ..config }, 5_000);
        assert_ne!(first, other);
    }

    #[test]
    fn the_default_market_is_stable() {
        // A golden digest of the first 10 000 records: a recorded market must replay the same
        // after a refactoring or an upgrade. Update it only for a deliberate change of the
        // market, and say so in the commit.
        use md5::{Digest, Md5};
        let mut digest = Md5::new();
        let records = records(SimulatorConfig::default(), 10_000);
        for record in &records {
            digest.update(record.partition_key.as_bytes());
            digest.update(b"\n");
            digest.update(&record.data);
            digest.update(b"\n");
        }
        assert_eq!(
            String::from_utf8_lossy(&records[0].data),
            r#"{"symbol":"ZKU","open":41.41,"high":41.41,"low":41.41,"price":41.41,"previous_close":41.41,"change":0.0,"change_percent":0.0,"volume":35,"timestamp":"2026-01-05T14:30:00.000Z"}"#
        );
        assert_eq!(
            format!("{:x}", digest.finalize()),
            "ac6314f096eda07129f638c8c6a51013"
        );
    }

    #[test]
    fn kinds_come_at_the_configured_rates() {
        let n = 100_000;
        let config = SimulatorConfig {
            jump_rate: 0.01,
            volume_spike_rate: 0.02,
            malformed_rate: 0.03,
            ..SimulatorConfig::default()
        };
        let mut counts: HashMap<_, usize> = HashMap::new();
        for record in records(config, n) {
            *counts.entry(record.kind).or_default() += 1;
        }
        let share = |kind| counts.get(&kind).copied().unwrap_or(0) as f64 / n as f64;
        assert!((share(RecordKind::Jump) - 0.01).abs() < 0.002, "{counts:?}");
        assert!(
            (share(RecordKind::VolumeSpike) - 0.02).abs() < 0.003,
            "{counts:?}"
        );
        assert!(
            (share(RecordKind::Malformed) - 0.03).abs() < 0.004,
            "{counts:?}"
        );

        let mut defaults: HashMap<_, usize> = HashMap::new();
        for record in records(SimulatorConfig::default(), n) {
            *defaults.entry(record.kind).or_default() += 1;
        }
        // Expected 50, 50 and 100.
        assert!(
            (25..=80).contains(&defaults[&RecordKind::Jump]),
            "{defaults:?}"
        );
        assert!(
            (25..=80).contains(&defaults[&RecordKind::VolumeSpike]),
            "{defaults:?}"
        );
        assert!(
            (60..=140).contains(&defaults[&RecordKind::Malformed]),
            "{defaults:?}"
        );
    }

    #[test]
    fn valid_records_are_consistent_quotes() {
        let config = SimulatorConfig {
            symbols: 300,
            ..SimulatorConfig::default()
        };
        let start = config.start_time_ms;
        let mut last_time = HashMap::new();
        // Open, high and low recomputed from the valid ticks alone: if a malformed record had
        // moved the state, they would disagree with what the simulator reports.
        let mut session: HashMap<String, (f64, f64, f64)> = HashMap::new();
        for record in records(config, 100_000) {
            if record.kind == RecordKind::Malformed {
                continue;
            }
            let quote = parse(&record).expect("valid JSON");
            let field = |name: &str| quote[name].as_f64().unwrap_or_else(|| panic!("{name}"));
            assert_eq!(quote["symbol"], &*record.partition_key);
            let (price, prev) = (field("price"), field("previous_close"));
            assert!(price >= 0.01 && prev >= 0.01);
            assert!(quote["volume"].as_u64().unwrap() >= 1);
            assert!((field("change") - (price - prev)).abs() < 1e-6);
            let percent = (price - prev) / prev * 100.0;
            assert!((field("change_percent") - percent).abs() <= 0.000_05 + 1e-9);

            let (open, high, low) = session
                .entry(record.partition_key.to_string())
                .or_insert((price, price, price));
            (*high, *low) = (high.max(price), low.min(price));
            assert_eq!(
                (field("open"), field("high"), field("low")),
                (*open, *high, *low)
            );

            let time = event_ms(&quote);
            assert!(time >= start && time < start + SESSION_MS as i64);
            let previous = last_time
                .insert(record.partition_key.to_string(), time)
                .unwrap_or(start);
            assert!(time >= previous, "a symbol's ticks go forward in time");
        }
    }

    #[test]
    fn malformed_records_break_validation_in_every_way() {
        let config = SimulatorConfig {
            malformed_rate: 0.05,
            ..SimulatorConfig::default()
        };
        let mut defects = HashSet::new();
        for record in records(config, 20_000) {
            let Some(quote) = parse(&record) else {
                assert_eq!(
                    record.kind,
                    RecordKind::Malformed,
                    "only malformed is broken"
                );
                defects.insert("json");
                continue;
            };
            let mut found = Vec::new();
            match quote.get("symbol") {
                None => found.push("no symbol"),
                Some(symbol) => assert_eq!(symbol, &*record.partition_key),
            }
            match &quote.get("price") {
                None => found.push("no price"),
                Some(Value::String(text)) if text.parse::<f64>().is_err() => found.push("garbage"),
                Some(price) if price.as_f64().unwrap() <= 0.0 => found.push("negative price"),
                Some(_) => {}
            }
            if quote["volume"].as_i64().unwrap() < 0 {
                found.push("negative volume");
            }
            if event_ms(&quote) < 631_152_000_000 {
                found.push("year 1900");
            }
            if record.kind == RecordKind::Malformed {
                assert_eq!(found.len(), 1, "one defect each: {quote}");
                defects.insert(found[0]);
            } else {
                assert!(found.is_empty(), "{found:?} in {quote}");
            }
        }
        assert_eq!(defects.len(), 7, "{defects:?}");
    }
}
