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

use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp1, StandardNormal};
use serde::{Deserialize, Serialize};

/// 2026-01-05T14:30:00Z, the opening bell of a Monday on NYSE.
const DEFAULT_START_MS: i64 = 1_767_623_400_000;
/// One trading session (09:30-16:00 New York), in ms of event time.
const SESSION_MS: f64 = 23_400_000.0;
const MS_PER_DAY: i64 = 86_400_000;
const TRADING_DAYS_PER_YEAR: f64 = 252.0;
/// Dispersion of a tick's volume around its symbol's mean (log scale). Small enough that a normal
/// tick almost never looks like a 20x spike (over 5 sigma).
const VOLUME_LOG_SIGMA: f64 = 0.6;
/// The lowest price a symbol can fall to, in cents.
const MIN_PRICE_CENTS: i64 = 1;
/// Strings a broken producer puts where a price belongs; none of them parses as a number.
const GARBAGE_PRICES: [&str; 4] = ["N/A", "", "12.3.4", "1,234.56"];

/// Well-known US listings: symbol, price (USD, around the end of 2025), annual volatility and
/// average daily volume (millions of shares), so the default market looks like the real one.
const LISTINGS: &[(&str, f64, f64, f64)] = &[
    ("AAPL", 270.0, 0.25, 50.0),
    ("MSFT", 480.0, 0.22, 20.0),
    ("NVDA", 185.0, 0.45, 180.0),
    ("AMZN", 230.0, 0.30, 40.0),
    ("GOOGL", 310.0, 0.30, 30.0),
    ("META", 650.0, 0.35, 12.0),
    ("TSLA", 450.0, 0.60, 90.0),
    ("JPM", 320.0, 0.22, 9.0),
    ("V", 345.0, 0.18, 6.0),
    ("UNH", 330.0, 0.35, 10.0),
    ("XOM", 118.0, 0.22, 15.0),
    ("JNJ", 205.0, 0.16, 8.0),
    ("WMT", 112.0, 0.20, 18.0),
    ("MA", 570.0, 0.20, 3.0),
    ("PG", 148.0, 0.16, 7.0),
    ("AVGO", 345.0, 0.45, 25.0),
    ("HD", 350.0, 0.22, 4.0),
    ("CVX", 155.0, 0.22, 8.0),
    ("LLY", 1050.0, 0.32, 4.0),
    ("ABBV", 230.0, 0.24, 6.0),
    ("KO", 70.0, 0.15, 14.0),
    ("PEP", 150.0, 0.18, 6.0),
    ("COST", 900.0, 0.20, 2.0),
    ("MRK", 100.0, 0.24, 12.0),
    ("BAC", 54.0, 0.26, 35.0),
    ("ORCL", 200.0, 0.45, 20.0),
    ("CRM", 260.0, 0.32, 7.0),
    ("NFLX", 95.0, 0.35, 40.0),
    ("AMD", 215.0, 0.50, 45.0),
    ("ADBE", 350.0, 0.32, 3.0),
    ("TMO", 590.0, 0.24, 2.0),
    ("CSCO", 78.0, 0.22, 18.0),
    ("ACN", 265.0, 0.25, 3.0),
    ("MCD", 305.0, 0.16, 3.0),
    ("ABT", 128.0, 0.20, 6.0),
    ("DIS", 113.0, 0.25, 9.0),
    ("WFC", 93.0, 0.26, 16.0),
    ("INTC", 40.0, 0.55, 90.0),
    ("VZ", 41.0, 0.18, 18.0),
    ("CMCSA", 30.0, 0.25, 25.0),
    ("QCOM", 175.0, 0.35, 8.0),
    ("TXN", 175.0, 0.32, 6.0),
    ("IBM", 300.0, 0.25, 4.0),
    ("GS", 880.0, 0.28, 2.0),
    ("CAT", 580.0, 0.28, 3.0),
    ("BA", 215.0, 0.35, 8.0),
    ("NKE", 65.0, 0.35, 12.0),
    ("PFE", 25.0, 0.22, 35.0),
    ("T", 25.0, 0.20, 30.0),
    ("PLTR", 180.0, 0.65, 50.0),
    ("UBER", 82.0, 0.40, 18.0),
];

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

/// One symbol's market state. Prices are kept in cents so that the quote fields are exact and
/// `change` is exactly `price - previous_close`.
#[derive(Debug, Clone)]
struct Instrument {
    symbol: Arc<str>,
    /// The unrounded price the diffusion works on, so that rounding never accumulates.
    level: f64,
    price: i64,
    open: i64,
    high: i64,
    low: i64,
    previous_close: i64,
    /// The session `open`, `high` and `low` belong to; `None` before the first tick.
    session: Option<u64>,
    /// Volatility per square root of a millisecond of trading time.
    sigma_per_sqrt_ms: f64,
    /// Mean volume of one tick, shares.
    mean_volume: f64,
    /// Trading clock of the last tick, ms.
    last_clock_ms: f64,
}

/// Maps the trading clock (ms of trading time since the start) to event time, skipping nights
/// and weekends.
#[derive(Debug, Clone)]
struct Calendar {
    session: u64,
    session_open_ms: i64,
}

impl Calendar {
    /// The session and the event time (epoch ms) of a trading-clock instant. The clock never
    /// goes back, so sessions are only ever walked forwards.
    fn event_time(&mut self, clock_ms: f64) -> (u64, i64) {
        let session = (clock_ms / SESSION_MS) as u64;
        while self.session < session {
            self.session_open_ms += MS_PER_DAY;
            while is_weekend(self.session_open_ms) {
                self.session_open_ms += MS_PER_DAY;
            }
            self.session += 1;
        }
        let into_session = clock_ms - session as f64 * SESSION_MS;
        (session, self.session_open_ms + into_session as i64)
    }
}

fn is_weekend(epoch_ms: i64) -> bool {
    // 1970-01-01 was a Thursday: weekday 0 is Monday.
    let weekday = (epoch_ms.div_euclid(MS_PER_DAY) + 3).rem_euclid(7);
    weekday >= 5
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
    calendar: Calendar,
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
                let cents = to_cents(price);
                // Spread the real daily volume over the ticks this symbol gets in a session.
                let ticks = ticks_per_session * weight / total_weight;
                Instrument {
                    symbol: symbol.as_str().into(),
                    level: price,
                    price: cents,
                    open: cents,
                    high: cents,
                    low: cents,
                    previous_close: cents,
                    session: None,
                    sigma_per_sqrt_ms: vol * sigma_scale,
                    mean_volume: (adv / ticks).max(1.0),
                    last_clock_ms: 0.0,
                }
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
            calendar: Calendar {
                session: 0,
                session_open_ms: start_time_ms,
            },
            malformed_count: 0,
        }
    }

    /// The simulated symbols, in the order they were created.
    pub fn symbols(&self) -> &[String] {
        &self.symbols
    }

    /// Moves the instrument's price and writes its quote.
    fn tick(&mut self, index: usize, kind: RecordKind, session: u64, event_ms: i64) -> Vec<u8> {
        let rng = &mut self.rng;
        let inst = &mut self.instruments[index];

        let dt = (self.clock_ms - inst.last_clock_ms).max(0.0);
        inst.last_clock_ms = self.clock_ms;
        let sigma = inst.sigma_per_sqrt_ms;
        let z: f64 = StandardNormal.sample(rng);
        // Exact GBM step with no drift: the price is a martingale.
        let mut level = inst.level * (sigma * dt.sqrt() * z - 0.5 * sigma * sigma * dt).exp();
        if kind == RecordKind::Jump {
            let size = rng.random_range(0.05..0.15);
            level *= if rng.random_bool(0.5) {
                1.0 + size
            } else {
                1.0 - size
            };
        }
        inst.level = level.max(MIN_PRICE_CENTS as f64 / 100.0);
        let price = to_cents(inst.level);

        if inst.session == Some(session) {
            inst.high = inst.high.max(price);
            inst.low = inst.low.min(price);
        } else {
            if inst.session.is_some() {
                inst.previous_close = inst.price;
            }
            inst.session = Some(session);
            (inst.open, inst.high, inst.low) = (price, price, price);
        }
        inst.price = price;

        let volume = if kind == RecordKind::VolumeSpike {
            inst.mean_volume * rng.random_range(20.0..50.0)
        } else {
            let z: f64 = StandardNormal.sample(rng);
            inst.mean_volume
                * (VOLUME_LOG_SIGMA * z - 0.5 * VOLUME_LOG_SIGMA * VOLUME_LOG_SIGMA).exp()
        };
        let volume = round(volume).max(1);

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
        let (session, event_ms) = self.calendar.event_time(self.clock_ms);

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

fn to_cents(price: f64) -> i64 {
    round(price * 100.0).max(MIN_PRICE_CENTS)
}

/// Rounds half away from zero like `f64::round`, without its libm call on targets that lack a
/// rounding instruction in their baseline (x86-64 before SSE4.1): a few percent of the hot path.
fn round(value: f64) -> i64 {
    if value >= 0.0 {
        (value + 0.5) as i64
    } else {
        -((0.5 - value) as i64)
    }
}

/// Walker's alias method (Vose's construction): a weighted pick from one uniform draw, where a
/// binary search over cumulative weights cost a tenth of the whole simulation step.
#[derive(Debug, Clone)]
struct AliasTable {
    /// Chance of keeping slot `i` rather than taking its alias.
    keep: Vec<f64>,
    alias: Vec<u32>,
}

impl AliasTable {
    fn new(weights: &[f64]) -> Self {
        let n = weights.len();
        let total: f64 = weights.iter().sum();
        let mut scaled: Vec<f64> = weights.iter().map(|w| w * n as f64 / total).collect();
        let mut keep = vec![1.0; n];
        let mut alias: Vec<u32> = (0..n as u32).collect();
        let (mut small, mut large): (Vec<usize>, Vec<usize>) =
            (0..n).partition(|&i| scaled[i] < 1.0);
        while let (Some(&s), Some(&l)) = (small.last(), large.last()) {
            small.pop();
            keep[s] = scaled[s];
            alias[s] = l as u32;
            scaled[l] -= 1.0 - scaled[s];
            if scaled[l] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        // What is left is 1 up to rounding: those slots keep themselves (already set).
        Self { keep, alias }
    }

    /// The slot for a uniform draw in `[0, 1)`.
    fn pick(&self, uniform: f64) -> usize {
        let scaled = uniform * self.keep.len() as f64;
        let slot = (scaled as usize).min(self.keep.len() - 1);
        if scaled - (slot as f64) < self.keep[slot] {
            slot
        } else {
            self.alias[slot] as usize
        }
    }
}

/// Generates `count` unique symbols: the listings first, then 3-5 letter (longer past about
/// 12 million) codes that are a fixed function of their index and skip the listed ones.
fn symbol_names(count: usize) -> Vec<String> {
    let mut names: Vec<String> = LISTINGS
        .iter()
        .take(count)
        .map(|&(s, ..)| s.to_owned())
        .collect();
    let mut generated = 0u64;
    while names.len() < count {
        let name = generated_symbol(generated);
        generated += 1;
        if !LISTINGS.iter().any(|&(listed, ..)| listed == name) {
            names.push(name);
        }
    }
    names
}

/// The `n`th generated symbol. Each length gets a block of `26^len` names, and inside a block an
/// affine map (a bijection, as 7919 is prime to 26) scatters the letters so the codes look varied.
fn generated_symbol(mut n: u64) -> String {
    let mut len = 3u32;
    while n >= 26u64.pow(len) {
        n -= 26u64.pow(len);
        len += 1;
    }
    let block = 26u64.pow(len);
    let mut code = ((n as u128 * 7919 + 12_345) % block as u128) as u64;
    let mut letters = vec![b'A'; len as usize];
    for letter in letters.iter_mut().rev() {
        *letter = b'A' + (code % 26) as u8;
        code /= 26;
    }
    String::from_utf8(letters).expect("ASCII letters")
}

/// The price field of a quote, which malformed records replace.
#[derive(Debug, Clone, Copy)]
enum PriceField {
    Cents(i64),
    Missing,
    Text(&'static str),
}

/// One quote as written: prices in cents, `change_percent` in units of 0.0001 %.
#[derive(Debug, Clone)]
struct Quote<'a> {
    symbol: Option<&'a str>,
    open: i64,
    high: i64,
    low: i64,
    price: PriceField,
    previous_close: i64,
    change: i64,
    change_percent: i64,
    volume: i64,
    timestamp_ms: i64,
    /// Writes the timestamp with this year instead (a producer with a broken clock).
    year: Option<i64>,
}

impl<'a> Quote<'a> {
    fn of(inst: &'a Instrument, volume: i64, timestamp_ms: i64) -> Self {
        let change = inst.price - inst.previous_close;
        Self {
            symbol: Some(&inst.symbol),
            open: inst.open,
            high: inst.high,
            low: inst.low,
            price: PriceField::Cents(inst.price),
            previous_close: inst.previous_close,
            change,
            change_percent: round(change as f64 / inst.previous_close as f64 * 1e6),
            volume,
            timestamp_ms,
            year: None,
        }
    }

    /// The seed producer's JSON, written by hand into a stack buffer: this runs millions of
    /// times a second, and `fmt` float formatting or growing a `Vec` piecemeal would cost more
    /// than the whole simulation step.
    fn to_json(&self) -> Vec<u8> {
        let mut out = RecordBuf::new();
        out.put(b"{");
        if let Some(symbol) = self.symbol {
            // Symbols are plain ASCII letters: nothing to escape.
            out.put(b"\"symbol\":\"");
            out.put(symbol.as_bytes());
            out.put(b"\",");
        }
        out.put(b"\"open\":");
        out.decimal(self.open, 2);
        out.put(b",\"high\":");
        out.decimal(self.high, 2);
        out.put(b",\"low\":");
        out.decimal(self.low, 2);
        match self.price {
            PriceField::Cents(cents) => {
                out.put(b",\"price\":");
                out.decimal(cents, 2);
            }
            PriceField::Text(text) => {
                out.put(b",\"price\":\"");
                out.put(text.as_bytes());
                out.put(b"\"");
            }
            PriceField::Missing => {}
        }
        out.put(b",\"previous_close\":");
        out.decimal(self.previous_close, 2);
        out.put(b",\"change\":");
        out.decimal(self.change, 2);
        out.put(b",\"change_percent\":");
        out.decimal(self.change_percent, 4);
        out.put(b",\"volume\":");
        out.int(self.volume);
        out.put(b",\"timestamp\":\"");
        out.timestamp(self.timestamp_ms, self.year);
        out.put(b"\"}");
        out.as_bytes().to_vec()
    }
}

/// Room for the longest record: the keys (~120 bytes), nine numbers of at most 21 characters, a
/// timestamp and a symbol of a few letters.
const RECORD_BUF_BYTES: usize = 512;

const DIGIT_PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// A fixed-size output buffer, so that writing a record costs no reallocations and the literal
/// pieces compile to plain stores.
struct RecordBuf {
    bytes: [u8; RECORD_BUF_BYTES],
    len: usize,
}

impl RecordBuf {
    fn new() -> Self {
        Self {
            bytes: [0; RECORD_BUF_BYTES],
            len: 0,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    #[inline(always)]
    fn put(&mut self, piece: &[u8]) {
        self.bytes[self.len..self.len + piece.len()].copy_from_slice(piece);
        self.len += piece.len();
    }

    /// Writes `value` with exactly `width` digits (zero-padded, high digits dropped).
    fn padded(&mut self, mut value: u64, width: usize) {
        let end = self.len + width;
        let mut at = end;
        while at >= self.len + 2 {
            let pair = (value % 100) as usize * 2;
            self.bytes[at - 2..at].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
            value /= 100;
            at -= 2;
        }
        if at > self.len {
            self.bytes[at - 1] = b'0' + (value % 10) as u8;
        }
        self.len = end;
    }

    fn uint(&mut self, value: u64) {
        let width = value.checked_ilog10().unwrap_or(0) as usize + 1;
        self.padded(value, width);
    }

    fn int(&mut self, value: i64) {
        if value < 0 {
            self.put(b"-");
        }
        self.uint(value.unsigned_abs());
    }

    /// Writes `units / 10^scale` as Python's `json.dumps(round(x, scale))` does: trailing zeros
    /// dropped but at least one decimal (`250.1`, `250.0`, `-0.05`).
    ///
    /// Inlined so that at each call `10^scale` is a constant: the division by it becomes a
    /// multiplication (seven of them a record).
    #[inline(always)]
    fn decimal(&mut self, units: i64, scale: u32) {
        let divisor = 10u64.pow(scale);
        let magnitude = units.unsigned_abs();
        if units < 0 {
            self.put(b"-");
        }
        self.uint(magnitude / divisor);
        self.put(b".");
        let mut fraction = magnitude % divisor;
        let mut digits = scale as usize;
        while digits > 1 && fraction.is_multiple_of(10) {
            fraction /= 10;
            digits -= 1;
        }
        self.padded(fraction, digits);
    }

    /// RFC 3339 UTC with milliseconds: `2026-01-05T14:30:00.123Z`.
    fn timestamp(&mut self, epoch_ms: i64, year_override: Option<i64>) {
        let (year, month, day) = civil_from_days(epoch_ms.div_euclid(MS_PER_DAY));
        let of_day = epoch_ms.rem_euclid(MS_PER_DAY) as u64;
        let (year, day) = match year_override {
            // Keep the date valid in the other year (1900 has no 29 February).
            Some(other) if month == 2 && day == 29 => (other, 28),
            Some(other) => (other, day),
            None => (year, day),
        };
        self.padded(year.unsigned_abs(), 4);
        self.put(b"-");
        self.padded(month, 2);
        self.put(b"-");
        self.padded(day, 2);
        self.put(b"T");
        self.padded(of_day / 3_600_000, 2);
        self.put(b":");
        self.padded(of_day / 60_000 % 60, 2);
        self.put(b":");
        self.padded(of_day / 1_000 % 60, 2);
        self.put(b".");
        self.padded(of_day % 1_000, 3);
        self.put(b"Z");
    }
}

/// (year, month, day) of a day count since 1970-01-01 in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u64, u64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u64;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u64;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use chrono::DateTime;
    use serde_json::Value;

    use super::*;

    fn records(config: SimulatorConfig, n: usize) -> Vec<SimulatedRecord> {
        MarketSimulator::new(config).take(n).collect()
    }

    fn parse(record: &SimulatedRecord) -> Option<Value> {
        serde_json::from_slice(&record.data).ok()
    }

    fn event_ms(value: &Value) -> i64 {
        let text = value["timestamp"].as_str().expect("timestamp string");
        DateTime::parse_from_rfc3339(text)
            .expect("RFC 3339")
            .timestamp_millis()
    }

    #[test]
    fn writes_the_seed_producer_format() {
        let quote = Quote {
            symbol: Some("AAPL"),
            open: 27_000,
            high: 27_150,
            low: 26_987,
            price: PriceField::Cents(27_045),
            previous_close: 27_000,
            change: 45,
            change_percent: 1_667,
            volume: 312,
            timestamp_ms: DEFAULT_START_MS + 123,
            year: None,
        };
        assert_eq!(
            String::from_utf8(quote.to_json()).unwrap(),
            r#"{"symbol":"AAPL","open":270.0,"high":271.5,"low":269.87,"price":270.45,"previous_close":270.0,"change":0.45,"change_percent":0.1667,"volume":312,"timestamp":"2026-01-05T14:30:00.123Z"}"#
        );
    }

    #[test]
    fn decimals_match_python_json() {
        let text = |units, scale| {
            let mut out = RecordBuf::new();
            out.decimal(units, scale);
            String::from_utf8(out.as_bytes().to_vec()).unwrap()
        };
        assert_eq!(text(0, 2), "0.0");
        assert_eq!(text(5, 2), "0.05");
        assert_eq!(text(-5, 2), "-0.05");
        assert_eq!(text(-120, 2), "-1.2");
        assert_eq!(text(100_000, 2), "1000.0");
        assert_eq!(text(-50, 4), "-0.005");
        assert_eq!(text(12_345, 4), "1.2345");
        assert_eq!(text(123_456_789_012, 2), "1234567890.12");
        for value in [0, 7, 10, 99, 100, 12_345, -987_654, i64::MAX, i64::MIN] {
            let mut out = RecordBuf::new();
            out.int(value);
            assert_eq!(out.as_bytes(), value.to_string().as_bytes());
        }
    }

    #[test]
    fn timestamps_match_chrono() {
        for ms in [
            0,
            DEFAULT_START_MS,
            951_782_400_000, // 2000-02-29
            4_102_444_799_999,
            -1,
            1_709_164_800_123, // 2024-02-29
        ] {
            let mut out = RecordBuf::new();
            out.timestamp(ms, None);
            let expected = DateTime::from_timestamp_millis(ms)
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            assert_eq!(
                String::from_utf8(out.as_bytes().to_vec()).unwrap(),
                expected
            );
        }
    }

    #[test]
    fn alias_table_picks_by_weight() {
        let weights = [1.0, 0.0, 3.0, 6.0];
        let table = AliasTable::new(&weights);
        let mut counts = [0usize; 4];
        let draws = 100_000;
        for i in 0..draws {
            counts[table.pick((i as f64 + 0.5) / draws as f64)] += 1;
        }
        // Evenly spread draws hit every slot in exact proportion, up to the slot edges.
        for (count, weight) in counts.iter().zip(weights) {
            let expected = weight / 10.0 * draws as f64;
            assert!((*count as f64 - expected).abs() <= 2.0, "{counts:?}");
        }
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

    #[test]
    fn anomalies_look_like_anomalies() {
        let config = SimulatorConfig {
            jump_rate: 0.01,
            volume_spike_rate: 0.01,
            malformed_rate: 0.0,
            ..SimulatorConfig::default()
        };
        let mut last_price: HashMap<String, f64> = HashMap::new();
        let mut volumes: HashMap<String, Vec<u64>> = HashMap::new();
        let mut spikes = Vec::new();
        let mut jumps = 0;
        for record in records(config, 100_000) {
            let quote = parse(&record).unwrap();
            let price = quote["price"].as_f64().unwrap();
            let volume = quote["volume"].as_u64().unwrap();
            let before = last_price.insert(record.partition_key.to_string(), price);
            match record.kind {
                RecordKind::Jump => {
                    if let Some(before) = before.filter(|&p| p >= 5.0) {
                        let change = (price / before - 1.0).abs();
                        assert!((0.045..0.16).contains(&change), "jump of {change}");
                        jumps += 1;
                    }
                }
                RecordKind::VolumeSpike => spikes.push((record.partition_key.to_string(), volume)),
                _ => volumes
                    .entry(record.partition_key.to_string())
                    .or_default()
                    .push(volume),
            }
        }
        assert!(jumps > 500);
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

    #[test]
    fn sessions_skip_nights_and_weekends() {
        // One tick a minute for 100 symbols: several trading days.
        let config = SimulatorConfig {
            tick_interval_ms: 60_000.0,
            malformed_rate: 0.0,
            ..SimulatorConfig::default()
        };
        let mut last: HashMap<String, (i64, f64)> = HashMap::new();
        let mut days = HashSet::new();
        for record in records(config, 5_000) {
            let quote = parse(&record).unwrap();
            let time = event_ms(&quote);
            let of_day = time.rem_euclid(MS_PER_DAY);
            assert!(
                (52_200_000..75_600_000).contains(&of_day),
                "14:30 to 21:00 UTC"
            );
            assert!(!is_weekend(time));
            let day = time.div_euclid(MS_PER_DAY);
            days.insert(day);
            let price = quote["price"].as_f64().unwrap();
            if let Some((last_day, last_price)) =
                last.insert(record.partition_key.to_string(), (day, price))
                && last_day != day
            {
                assert_eq!(quote["previous_close"].as_f64().unwrap(), last_price);
                assert_eq!(quote["open"].as_f64().unwrap(), price);
            }
        }
        // 5000 minutes of trading is 12.8 sessions: past two weekends.
        assert_eq!(days.len(), 13);
    }

    #[test]
    fn symbols_are_unique_and_listed_first() {
        let simulator = MarketSimulator::new(SimulatorConfig {
            symbols: 30_000,
            ..SimulatorConfig::default()
        });
        let symbols = simulator.symbols();
        assert_eq!(symbols.len(), 30_000);
        assert_eq!(&symbols[..3], ["AAPL", "MSFT", "NVDA"]);
        let unique: HashSet<_> = symbols.iter().collect();
        assert_eq!(unique.len(), symbols.len());
        for symbol in &symbols[LISTINGS.len()..] {
            assert!((3..=5).contains(&symbol.len()), "{symbol}");
            assert!(symbol.bytes().all(|b| b.is_ascii_uppercase()), "{symbol}");
        }
        let few = MarketSimulator::new(SimulatorConfig {
            symbols: 3,
            ..SimulatorConfig::default()
        });
        assert_eq!(few.symbols(), ["AAPL", "MSFT", "NVDA"]);
        let partition_keys: HashSet<_> = few.take(1_000).map(|r| r.partition_key).collect();
        assert_eq!(partition_keys.len(), 3, "every symbol trades");
    }
}
