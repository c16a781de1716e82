//! Fixtures shared by the decoder's tests: the seed record, both parsers side by side, and
//! property-test strategies for ticks and for records shaped like those producers send.

use chrono::{DateTime, SecondsFormat, Utc};
use proptest::prelude::*;

use super::general::parse_general;
use super::range::{
    CHANGE_MAGNITUDES, CHANGE_PERCENT_MAGNITUDES, Magnitudes, PRICE_MAGNITUDES, VOLUME_MAGNITUDES,
};
use super::scan::decode_fast;
use super::{DecodeLimits, Rejection, decode_tick};
use crate::model::tick::Tick;

pub(super) const SEED: &str = r#"{"symbol":"AAPL","open":187.15,"high":188.4,"low":186.9,"price":187.23,"previous_close":185.1,"change":2.13,"change_percent":1.1507,"volume":1250,"timestamp":"2026-01-02T14:30:00.123Z"}"#;
/// 2026-01-02T14:30:00.123Z
pub(super) const SEED_MS: i64 = 1_767_364_200_123;

pub(super) fn decode(json: &str) -> Result<Tick, Rejection> {
    decode_tick(json.as_bytes(), &DecodeLimits::default())
}

/// What each parser makes of `data`: `None` where the fast one gives up.
pub(super) fn decode_both(data: &[u8]) -> (Option<Tick>, Result<Tick, Rejection>) {
    let limits = DecodeLimits::default();
    let fast = decode_fast(data, &limits);
    let general = parse_general(data).and_then(|mut raw| raw.validate(&limits));
    (fast, general)
}

pub(super) fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The seed record with `field` set to the raw JSON `value` (or removed when `None`).
pub(super) fn seed_with(field: &str, value: Option<&str>) -> String {
    let mut object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(SEED).unwrap();
    object.remove(field);
    let mut json = serde_json::to_string(&object).unwrap();
    if let Some(value) = value {
        json.insert_str(1, &format!(r#""{field}":{value},"#));
    }
    json
}

pub(super) fn rejected(json: &str) -> Rejection {
    decode(json).expect_err(json)
}

/// A positive double within `bounds`: anywhere in the range, or a realistic price.
fn positive_in(bounds: Magnitudes) -> impl Strategy<Value = f64> {
    prop_oneof![
        (bounds.min.to_bits()..=bounds.max.to_bits()).prop_map(f64::from_bits),
        (1_u32..100_000_000).prop_map(|cents| f64::from(cents) / 100.0),
    ]
}

/// A double of either sign within `bounds`, or 0.
fn signed_in(bounds: Magnitudes) -> impl Strategy<Value = f64> {
    prop_oneof![
        positive_in(bounds),
        positive_in(bounds).prop_map(|x| -x),
        Just(0.0),
    ]
}

prop_compose! {
    pub(super) fn arb_tick()(
        symbol in "[A-Z0-9.^=-]{1,32}",
        price in positive_in(PRICE_MAGNITUDES),
        event_time_ms in 631_152_000_000_i64..=4_102_444_800_000,
        open in proptest::option::of(positive_in(PRICE_MAGNITUDES)),
        high in proptest::option::of(positive_in(PRICE_MAGNITUDES)),
        low in proptest::option::of(positive_in(PRICE_MAGNITUDES)),
        previous_close in proptest::option::of(positive_in(PRICE_MAGNITUDES)),
        change in proptest::option::of(signed_in(CHANGE_MAGNITUDES)),
        change_percent in proptest::option::of(signed_in(CHANGE_PERCENT_MAGNITUDES)),
        volume in proptest::option::of(prop_oneof![
            positive_in(VOLUME_MAGNITUDES),
            (0_u32..).prop_map(f64::from),
        ]),
    ) -> Tick {
        Tick {
            symbol: symbol.into(),
            price,
            event_time_ms,
            open,
            high,
            low,
            previous_close,
            change,
            change_percent,
            volume,
        }
    }
}

/// The tick in the seed producer format, with absent fields left out or sent as `null`,
/// numbers as JSON numbers or strings, and the time as RFC 3339 or epoch ms.
pub(super) fn seed_json(tick: &Tick, nulls: bool, strings: bool, epoch: bool) -> String {
    use serde_json::{Value, json};
    let number = |x: f64| {
        if strings {
            json!(x.to_string())
        } else {
            json!(x)
        }
    };
    let mut object = serde_json::Map::new();
    object.insert("symbol".into(), json!(tick.symbol.as_str()));
    for (name, value) in [
        ("open", tick.open),
        ("high", tick.high),
        ("low", tick.low),
        ("price", Some(tick.price)),
        ("previous_close", tick.previous_close),
        ("change", tick.change),
        ("change_percent", tick.change_percent),
        ("volume", tick.volume),
    ] {
        match value {
            Some(x) => {
                object.insert(name.into(), number(x));
            }
            None if nulls => {
                object.insert(name.into(), Value::Null);
            }
            None => {}
        }
    }
    let timestamp = if epoch {
        json!(tick.event_time_ms)
    } else {
        json!(rfc3339(tick.event_time_ms))
    };
    object.insert("timestamp".into(), timestamp);
    serde_json::to_string(&object).unwrap()
}

/// Text shaped like a JSON number, valid or nearly so.
pub(super) fn number_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "-?(0|[1-9][0-9]{0,21})(\\.[0-9]{1,21})?([eE][+-]?[0-9]{1,3})?",
        "[-+]?[0-9]{0,3}\\.?[0-9]{0,3}([eE][+-]?[0-9]{0,3})?",
        "-?[0-9]{1,4}(\\.[0-9]{1,4})?[eE]-?[0-9]{4,12}",
    ]
}

/// A JSON value of any kind, mostly valid, sometimes nearly.
fn arb_value() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "-?(0|[1-9][0-9]{0,21})(\\.[0-9]{1,21})?([eE][+-]?[0-9]{1,3})?",
        1 => number_like(),
        6 => "\"[A-Za-z0-9 .:+^=-]{0,12}\"",
        1 => "\"2026-01-0[1-3]T1[0-9]:30:00(\\.[0-9]{1,4})?(Z|[+-]0[0-9]:[0-5]0)\"",
        1 => "\"(\\\\[\"\\\\/bfnrt]|\\\\u00[0-7][0-9a-f]|\\\\ud83d\\\\ude00|[a-z])*\"",
        1 => "\"[\u{80}-\u{10ffff}\u{0}-\u{1f}]{0,3}\"",
        3 => "true|false|null",
        1 => "nul|tru|nulll|NaN",
        1 => "\\[\\]|\\[1, ?\"a\"\\]|\\{\\}|\\{\"a\": ?\\[null\\]\\}",
    ]
}

fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "symbol", "price", "timestamp", "open", "high", "low", "previous_close", "change",
            "change_percent", "volume",
        ])
        .prop_map(str::to_owned),
        1 => "[a-z_]{1,16}",
        1 => prop::sample::select(vec!["pri\\u0063e", "price\\n", "prices", "pr", "chang", "change_", "volume\\\""])
            .prop_map(str::to_owned),
    ]
}

/// White space between tokens, sometimes not JSON's.
fn arb_space() -> impl Strategy<Value = String> {
    prop_oneof![30 => "[ \t\n\r]{0,2}", 1 => "[\u{a0}\u{b}\u{c}]"]
}

/// A record shaped like what producers send: a valid tick's fields, shuffled with random
/// extra fields, random spacing and, now and then, a broken separator.
pub(super) fn arb_record() -> impl Strategy<Value = String> {
    let field = (
        arb_space(),
        arb_key(),
        arb_space(),
        arb_space(),
        arb_value(),
        arb_space(),
    );
    let fields = (
        arb_tick(),
        any::<bool>(),
        proptest::collection::vec(field, 0..4),
        proptest::collection::vec(
            prop_oneof![100 => Just(","), 1 => Just(""), 1 => Just(",,")],
            20,
        ),
        arb_space(),
    );
    fields.prop_perturb(|(tick, epoch, extra, separators, end), mut rng| {
        let seed: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&seed_json(&tick, false, rng.random(), epoch)).unwrap();
        let mut entries: Vec<String> = seed
            .iter()
            .map(|(key, value)| format!("\"{key}\":{value}"))
            .collect();
        for (s1, key, s2, s3, value, s4) in extra {
            let at = rng.random_range(0..=entries.len());
            entries.insert(at, format!("{s1}\"{key}\"{s2}:{s3}{value}{s4}"));
        }
        let mut json = String::from("{");
        for (i, entry) in entries.iter().enumerate() {
            if i > 0 {
                json.push_str(separators[i % separators.len()]);
            }
            json.push_str(entry);
        }
        json.push('}');
        json + &end
    })
}
