//! The corpus: valid ticks, hostile records (`hostile.rs`) and KPL aggregates
//! (`aggregates.rs`) drawn from one seeded generator, each with what it must become.

mod aggregates;
mod hostile;

use std::collections::HashSet;

use bytes::Bytes;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const SYMBOLS: [&str; 12] = [
    "AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "BRK.B", "^GSPC", "BTC-USD", "EURUSD=X",
    "7203.T", "SHIB-USD",
];
/// 2026-01-02T14:30:00Z
const T0: i64 = 1_767_364_200_000;
const MAX_RECORD_BYTES: usize = 16 * 1024;

/// What one user record (or one whole record) must become.
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    /// A tick, named by its symbol and event time (unique in the corpus).
    Tick(String, i64),
    /// A dead letter with one of these reason codes.
    Dead(&'static [&'static str]),
}

/// One user record of the corpus: what kind of damage it has, its bytes, what it must become.
#[derive(Debug, Clone)]
pub struct Unit {
    pub kind: &'static str,
    pub data: Bytes,
    pub expect: Expect,
}

/// One record put in the stream, and the units it must become: its user records when it is an
/// intact aggregate, itself otherwise.
pub struct Put {
    pub key: String,
    pub data: Bytes,
    pub units: Vec<Unit>,
}

pub struct Corpus {
    pub puts: Vec<Put>,
    /// The valid ticks in stream order, with their partition keys: the clean run's input.
    pub valid: Vec<(String, Bytes, Expect)>,
}

const OUT_OF_RANGE: &[&str] = &["out_of_range"];
const MALFORMED: &[&str] = &["malformed_json"];
const DAMAGED: &[&str] = &["damaged_aggregate"];
const NUMERIC: [&str; 8] = [
    "price",
    "open",
    "high",
    "low",
    "previous_close",
    "change",
    "change_percent",
    "volume",
];

/// A record's fields as raw JSON text, in order.
type Fields = Vec<(String, String)>;

pub struct Generator {
    rng: ChaCha8Rng,
    /// Event time of the latest valid tick.
    time: i64,
    /// Each symbol's last price.
    prices: [f64; SYMBOLS.len()],
    /// Symbol and event time of every valid tick so far.
    used: HashSet<(usize, i64)>,
    valid: Vec<(String, Bytes, Expect)>,
}

impl Generator {
    pub fn new(seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let prices = std::array::from_fn(|_| rng.random_range(1.0..2_000.0));
        Self {
            rng,
            time: T0,
            prices,
            used: HashSet::new(),
            valid: Vec::new(),
        }
    }

    pub fn corpus(mut self, records: usize) -> Corpus {
        let mut puts = Vec::with_capacity(records);
        while puts.len() < records {
            let put = match self.rng.random_range(0..100) {
                0..50 => {
                    let (key, unit) = self.valid_tick(None);
                    Put {
                        key,
                        data: unit.data.clone(),
                        units: vec![unit],
                    }
                }
                50..88 => {
                    let unit = self.hostile();
                    Put {
                        key: self.any_key(),
                        data: unit.data.clone(),
                        units: vec![unit],
                    }
                }
                _ => self.aggregate(),
            };
            puts.push(put);
        }
        Corpus {
            puts,
            valid: self.valid,
        }
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        *items.choose(&mut self.rng).unwrap()
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    fn any_key(&mut self) -> String {
        self.pick(&SYMBOLS).to_owned()
    }

    // --- Valid ticks -------------------------------------------------------------------------

    /// A valid tick (of symbol `symbol`, or any), recorded for the clean run.
    fn valid_tick(&mut self, symbol: Option<usize>) -> (String, Unit) {
        let s = symbol.unwrap_or_else(|| self.rng.random_range(0..SYMBOLS.len()));
        let (fields, ms) = self.tick_fields(s, true);
        let data = Bytes::from(self.render(&fields));
        let expect = Expect::Tick(SYMBOLS[s].to_owned(), ms);
        self.valid
            .push((SYMBOLS[s].to_owned(), data.clone(), expect.clone()));
        let unit = Unit {
            kind: "valid",
            data,
            expect,
        };
        (SYMBOLS[s].to_owned(), unit)
    }

    /// The fields of a valid tick of symbol `s` and its event time; `register` makes it one of
    /// the corpus's ticks (unique symbol and event time), otherwise it is a base for damage.
    fn tick_fields(&mut self, s: usize, register: bool) -> (Fields, i64) {
        let mut ms = if register {
            self.time += self.rng.random_range(1..400);
            self.time
        } else {
            self.time + self.rng.random_range(0..1_000)
        };
        if register && self.chance(0.05) {
            let late = ms - self.rng.random_range(1..120_000);
            if !self.used.contains(&(s, late)) {
                ms = late;
            }
        }
        let whole_second = ms - ms.rem_euclid(1_000);
        let timestamp = match self.rng.random_range(0..10) {
            0..4 => quoted(&rfc3339(ms, 0)),
            4 => ms.to_string(),
            5 => quoted(&ms.to_string()),
            6 => format!("{ms}.0"),
            7 => quoted(&rfc3339(ms, 19_800)),
            8 if !self.used.contains(&(s, whole_second)) => {
                ms = whole_second;
                quoted(&rfc3339(ms, -18_000).replace(".000", ""))
            }
            _ => {
                let micros = chrono::DateTime::from_timestamp_micros(
                    ms * 1_000 + self.rng.random_range(0..1_000),
                )
                .unwrap();
                quoted(&micros.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
            }
        };
        if register {
            assert!(self.used.insert((s, ms)));
        }

        let walk = self.prices[s] * (1.0 + self.rng.random_range(-0.004..0.004));
        let price = match self.rng.random_range(0..100) {
            0 => 1e-9,
            1 => 1e12,
            2 => 0.000_012_345,
            _ => {
                self.prices[s] = walk.clamp(0.5, 100_000.0);
                self.prices[s]
            }
        };
        let symbol = match SYMBOLS[s] {
            "BRK.B" if self.chance(0.3) => quoted("BRK\\u002eB"),
            symbol => quoted(symbol),
        };
        let price_key = if self.chance(0.03) {
            "pri\\u0063e"
        } else {
            "price"
        };
        let mut fields: Fields = vec![
            ("symbol".into(), symbol),
            (price_key.into(), self.number(price)),
            ("timestamp".into(), timestamp),
        ];
        let previous_close = in_price_range(price * self.rng.random_range(0.95..1.05));
        for name in ["open", "high", "low", "previous_close"] {
            if self.chance(0.6) {
                let value = match name {
                    "previous_close" => previous_close,
                    _ => in_price_range(price * self.rng.random_range(0.99..1.01)),
                };
                let value = self.number(value);
                fields.push((name.into(), value));
            } else if self.chance(0.2) {
                fields.push((name.into(), "null".into()));
            }
        }
        if self.chance(0.4) {
            let change = match self.rng.random_range(0..20) {
                0 => "1e-25".into(),
                1 => "-1e12".into(),
                2 => "-0".into(),
                _ => self.number(price - previous_close),
            };
            fields.push(("change".into(), change));
        }
        if self.chance(0.4) {
            let percent = match self.rng.random_range(0..20) {
                0 => "-1e-35".into(),
                1 => "1e23".into(),
                _ => self.number((price / previous_close - 1.0) * 100.0),
            };
            fields.push(("change_percent".into(), percent));
        }
        if self.chance(0.9) {
            let volume = match self.rng.random_range(0..40) {
                0 => "0".into(),
                1 => "1e-9".into(),
                2 => "1e15".into(),
                3 => "0.00012345".into(),
                4 => "-0".into(),
                _ => self.rng.random_range(1..5_000).to_string(),
            };
            fields.push(("volume".into(), volume));
        }
        match self.rng.random_range(0..100) {
            0..10 => fields.push(("exchange".into(), quoted("NMS"))),
            10..20 => fields.push(("meta".into(), r#"{"a":[1,{"b":null}],"huge":1e999}"#.into())),
            // Nesting thousands deep in a field nobody reads is no reason to refuse a tick.
            20 => {
                let depth = self.rng.random_range(200..1_500);
                let nested = format!("{}1{}", "[{\"a\":".repeat(depth), "}]".repeat(depth));
                fields.push(("meta".into(), nested));
            }
            _ => {}
        }
        (fields, ms)
    }

    /// A number as producers write it: cents, all digits, or a numeric string.
    fn number(&mut self, x: f64) -> String {
        match self.rng.random_range(0..10) {
            0..5 if (0.01..1e9).contains(&x.abs()) => format!("{x:.2}"),
            5 => quoted(&format!("{x:?}")),
            _ => format!("{x:?}"),
        }
    }

    /// The fields as a JSON object, with spacing that varies.
    fn render(&mut self, fields: &Fields) -> String {
        let (gap, comma) = match self.rng.random_range(0..10) {
            0 => (" : ", " , "),
            1 => (":\n\t", ",\r\n"),
            _ => (":", ","),
        };
        let body: Vec<String> = fields
            .iter()
            .map(|(key, value)| format!("\"{key}\"{gap}{value}"))
            .collect();
        format!("{{{}}}", body.join(comma))
    }

    /// A valid-looking tick to damage, and its rendering.
    fn base(&mut self) -> Fields {
        let s = self.rng.random_range(0..SYMBOLS.len());
        self.tick_fields(s, false).0
    }

    fn with(&mut self, name: &str, value: &str) -> String {
        let mut fields = self.base();
        fields.retain(|(key, _)| key != name && !(name == "price" && key.starts_with("pri")));
        let at = self.rng.random_range(0..=fields.len());
        fields.insert(at, (name.into(), value.into()));
        self.render(&fields)
    }
}

fn in_price_range(price: f64) -> f64 {
    price.clamp(1e-9, 1e12)
}

fn quoted(text: &str) -> String {
    format!("\"{text}\"")
}

/// RFC 3339 with milliseconds at a UTC offset in seconds (`Z` at 0).
fn rfc3339(ms: i64, offset_s: i32) -> String {
    let utc = chrono::DateTime::from_timestamp_millis(ms).unwrap();
    if offset_s == 0 {
        return utc.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    }
    let zone = chrono::FixedOffset::east_opt(offset_s).unwrap();
    utc.with_timezone(&zone)
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
}
