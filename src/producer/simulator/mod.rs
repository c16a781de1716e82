//! A seeded market simulator: geometric Brownian motion per symbol with realistic prices,
//! volatilities and volumes, rare news jumps, volume spikes and a share of malformed records.
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
//! Calibrated to US large caps on an ordinary day: over a session the cross-section of
//! |change % vs previous close| has a median near 1 % and a 90th percentile near 2.5-3 %, and a
//! few names move past 5 % on news (one news item per symbol per month of sessions by default).
//!
//! The source of `kinetick produce` and `kinetick demo`, and of the benches' and tests' markets.
//! One concept a file: `symbols.rs` the listed and generated symbols, `instrument.rs` a symbol's
//! price and volume model, `news.rs` its news jumps, `sessions.rs` trading sessions in event time,
//! `alias.rs` the weighted pick of the next symbol, `quote.rs` the JSON of a record. This file
//! draws the record kinds, advances the clock and breaks the malformed records.

mod alias;
mod instrument;
mod news;
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
use self::news::News;
use self::quote::{PriceField, Quote};
use self::sessions::{SESSION_MS, Sessions};
use self::symbols::{LISTINGS, symbol_names};

/// 2026-01-05T14:30:00Z, the opening bell of a Monday on NYSE.
const DEFAULT_START_MS: i64 = 1_767_623_400_000;
const TRADING_DAYS_PER_YEAR: f64 = 252.0;
/// Share of a year's price variance that a symbol's ordinary days carry; news and earnings days
/// carry the rest, and news is modelled on its own (`news.rs`).
const ORDINARY_VARIANCE_SHARE: f64 = 0.8;
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
    /// Expected news jumps (2-8 %, partly retraced) per symbol per trading session: a Poisson
    /// rate in trading time. 0.05 is about one a month, as for a real large cap.
    pub jumps_per_session: f64,
    /// Share of ticks with a volume spike (20-50x): a block trade. 1 in 200,000 is about one a
    /// symbol per session on a market of 100 symbols at 1000 ticks a second.
    pub volume_spike_rate: f64,
    /// Share of records that are malformed in one of the ways validation rejects.
    pub malformed_rate: f64,
}

impl Default for SimulatorConfig {
    /// 100 symbols at about 1000 ticks per second of event time from the opening bell of
    /// 2026-01-05, with news about once a month per symbol, a volume spike in 200,000 ticks and
    /// 1 malformed record in 1000.
    fn default() -> Self {
        Self {
            symbols: 100,
            seed: 42,
            start_time_ms: DEFAULT_START_MS,
            tick_interval_ms: 1.0,
            jumps_per_session: 0.05,
            volume_spike_rate: 0.000_005,
            malformed_rate: 0.001,
        }
    }
}

/// What a simulated record is, so tests can count what the pipeline should make of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    Normal,
    /// News broke: the price jumped, on a volume spike.
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
    volume_spike_rate: f64,
    malformed_rate: f64,
    clock_ms: f64,
    sessions: Sessions,
    malformed_count: u64,
}

impl MarketSimulator {
    /// # Panics
    /// On a config that cannot describe a market: no symbols, a non-positive tick interval, a
    /// negative news rate, or shares outside 0..=1 (or summing past 1).
    pub fn new(config: SimulatorConfig) -> Self {
        let SimulatorConfig {
            symbols: count,
            seed,
            start_time_ms,
            tick_interval_ms,
            jumps_per_session,
            volume_spike_rate,
            malformed_rate,
        } = config;
        assert!(count > 0, "the simulator needs at least one symbol");
        assert!(
            tick_interval_ms.is_finite() && tick_interval_ms > 0.0,
            "tick interval must be a positive number of ms, got {tick_interval_ms}"
        );
        assert!(
            jumps_per_session.is_finite() && jumps_per_session >= 0.0,
            "jumps per session must be a number of at least 0, got {jumps_per_session}"
        );
        let rates = [volume_spike_rate, malformed_rate];
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
                // Volatility log-uniform in 12-45 % a year (median 23 %), the bulk of the
                // S&P 500's; the listings add the few wilder ones.
                None => (
                    5.0 * 100f64.powf(rng.random::<f64>()),
                    0.12 * (0.45f64 / 0.12).powf(rng.random::<f64>()),
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
        let sigma_scale = (ORDINARY_VARIANCE_SHARE / (TRADING_DAYS_PER_YEAR * SESSION_MS)).sqrt();
        let instruments = symbols
            .iter()
            .zip(&profiles)
            .zip(&weights)
            .map(|((symbol, &(price, vol, adv)), &weight)| {
                // Spread the real daily volume over the ticks this symbol gets in a session.
                let ticks = ticks_per_session * weight / total_weight;
                let news = News::new(&mut rng, jumps_per_session);
                Instrument::new(
                    symbol,
                    price,
                    vol * sigma_scale,
                    (adv / ticks).max(1.0),
                    news,
                )
            })
            .collect();

        Self {
            rng,
            symbols,
            instruments,
            picker,
            tick_interval_ms,
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

    /// Moves the instrument's price and writes its quote, with the kind the tick turned out
    /// to be.
    fn tick(
        &mut self,
        index: usize,
        kind: RecordKind,
        session: u64,
        event_ms: i64,
    ) -> (RecordKind, Vec<u8>) {
        let inst = &mut self.instruments[index];
        let (kind, volume) = inst.step(&mut self.rng, self.clock_ms, kind, session);
        (kind, Quote::of(inst, volume, event_ms).to_json())
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
        // News is the instruments' own: a valid tick may turn into a jump.
        let kind = if roll < self.malformed_rate {
            RecordKind::Malformed
        } else if roll < self.malformed_rate + self.volume_spike_rate {
            RecordKind::VolumeSpike
        } else {
            RecordKind::Normal
        };
        let index = self.picker.pick(self.rng.random());
        let gap: f64 = Exp1.sample(&mut self.rng);
        self.clock_ms += gap * self.tick_interval_ms;
        let (session, event_ms) = self.sessions.event_time(self.clock_ms);

        let (kind, data) = match kind {
            RecordKind::Malformed => (kind, self.malformed(index, event_ms)),
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
            r#"{"symbol":"AOL","open":17.64,"high":17.64,"low":17.64,"price":17.64,"previous_close":17.64,"change":0.0,"change_percent":0.0,"volume":119,"timestamp":"2026-01-05T14:30:00.001Z"}"#
        );
        assert_eq!(
            format!("{:x}", digest.finalize()),
            "8b0148940a12c4754b2e0a116731f6b9"
        );
    }

    #[test]
    fn kinds_come_at_the_configured_rates() {
        let n = 100_000;
        // 100 s of trading for 100 symbols: news 2340 times a session is one tick in 100.
        let config = SimulatorConfig {
            jumps_per_session: 2_340.0,
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
        // Less the spikes that news took over.
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
        // Expected 0.02 news (100 s of a month of sessions), 0.5 spikes and 100 malformed.
        let at_most = |kind, n| defaults.get(&kind).is_none_or(|&count| count <= n);
        assert!(at_most(RecordKind::Jump, 1), "{defaults:?}");
        assert!(at_most(RecordKind::VolumeSpike, 3), "{defaults:?}");
        assert!(
            (60..=140).contains(&defaults[&RecordKind::Malformed]),
            "{defaults:?}"
        );
    }

    /// Every symbol's |change % vs previous close| at the close of each of `sessions` sessions
    /// (its last tick of the session), and the news that broke, per symbol and session.
    fn closing_moves(config: SimulatorConfig, sessions: usize) -> (Vec<f64>, f64) {
        let symbols = config.symbols;
        let mut last: HashMap<(Arc<str>, String), f64> = HashMap::new();
        let mut days = HashSet::new();
        let mut news = 0;
        for record in MarketSimulator::new(config) {
            if record.kind == RecordKind::Malformed {
                continue;
            }
            let quote = parse(&record).unwrap();
            let day = quote["timestamp"].as_str().unwrap()[..10].to_owned();
            days.insert(day.clone());
            if days.len() > sessions {
                break;
            }
            news += usize::from(record.kind == RecordKind::Jump);
            let change = quote["change_percent"].as_f64().unwrap().abs();
            last.insert((record.partition_key, day), change);
        }
        assert_eq!(last.len(), symbols * sessions, "every symbol trades daily");
        let mut moves: Vec<f64> = last.into_values().collect();
        moves.sort_by(f64::total_cmp);
        (moves, news as f64 / (symbols * sessions) as f64)
    }

    fn quantile(sorted: &[f64], q: f64) -> f64 {
        sorted[((sorted.len() - 1) as f64 * q).round() as usize]
    }

    #[test]
    fn a_session_moves_like_a_real_day() {
        // The default market (half listings) through ten sessions, and a market of mostly
        // generated symbols through two; about 100 and 40 ticks per symbol a session.
        for (symbols, sessions, tick_interval_ms) in [(100, 10, 2_340.0), (500, 2, 1_170.0)] {
            let (moves, news) = closing_moves(
                SimulatorConfig {
                    symbols,
                    tick_interval_ms,
                    malformed_rate: 0.0,
                    ..SimulatorConfig::default()
                },
                sessions,
            );
            let (median, p90) = (quantile(&moves, 0.5), quantile(&moves, 0.9));
            let past_5 = moves.iter().filter(|&&m| m > 5.0).count() as f64 / moves.len() as f64;
            println!(
                "{symbols} symbols, {} closes: |change %| median {median:.2}, p90 {p90:.2}, \
                 max {:.2}, {:.1} % of closes past 5 %; news per symbol per session {news:.3}",
                moves.len(),
                moves[moves.len() - 1],
                past_5 * 100.0,
            );
            // S&P 500 members on an ordinary day: median about 1 %, 90th percentile 2.5-3 %,
            // a few names past 5 %; widened by the sampling error of 1000 closes.
            assert!((0.8..1.2).contains(&median), "median {median}");
            assert!((2.4..3.2).contains(&p90), "90th percentile {p90}");
            assert!((0.005..0.05).contains(&past_5), "{past_5} past 5 %");
            assert!((0.02..0.1).contains(&news), "{news} news a session");
        }
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
