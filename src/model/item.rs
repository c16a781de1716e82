//! The ticks table item: the attribute names and types of one row of the DynamoDB ticks table,
//! shared by the local file table and the DynamoDB writer so both hold the same shape.
//!
//! In: one enriched tick (or one-minute bar). Out: its attributes, keyed by `symbol` (partition)
//! and `timestamp` (sort), handed one by one to an [`AttributeSink`]: the file table writes them
//! straight into a JSON line, DynamoDB into a request. An item is encoded once per tick, so it is
//! never built as a value of its own first.

use compact_str::CompactString;

use super::bar::MinuteBar;
use super::calendar::civil_from_days;
use super::enriched::EnrichedTick;
use super::lake::partition_date;
use super::rules::Trend;
use super::tick::Position;

/// A DynamoDB attribute value, restricted to the types the ticks table uses: the attributes of
/// an item given one by one ([`Item::Attributes`]).
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    S(CompactString),
    /// A number in DynamoDB's decimal text form.
    N(CompactString),
    Bool(bool),
}

/// Receives an item's attributes in item order.
pub trait AttributeSink {
    fn string(&mut self, name: &'static str, value: &str);
    /// A string attribute given as pieces to join: a sink that writes text writes them one after
    /// another instead of joining them first (the sort key, built for every tick item).
    fn joined_string(&mut self, name: &'static str, pieces: &[&str]) {
        self.string(name, &pieces.concat());
    }
    /// `value` is a number in DynamoDB's decimal text form.
    fn number(&mut self, name: &'static str, value: &str);
    fn boolean(&mut self, name: &'static str, value: bool);
}

/// One item of the ticks table, described by what it is made of.
#[derive(Debug, Clone, PartialEq)]
pub enum Item<'a> {
    /// The item of one enriched tick; `expires_at` is the TTL attribute (epoch seconds).
    ///
    /// `change` and `change_percent` are the recomputed values of the indicators, as in the lake.
    Tick {
        tick: &'a EnrichedTick,
        expires_at: Option<i64>,
    },
    /// The item of one symbol's one-minute bar, `kind` = `bar_1m`.
    Bar {
        symbol: &'a str,
        bar: &'a MinuteBar,
        expires_at: Option<i64>,
    },
    /// Attributes given one by one, in order.
    Attributes(Vec<(&'static str, AttrValue)>),
}

impl Item<'_> {
    /// Hands every attribute to `sink`, in item order.
    pub fn write(&self, sink: &mut impl AttributeSink) {
        match self {
            Item::Tick { tick, expires_at } => write_tick(tick, *expires_at, sink),
            Item::Bar {
                symbol,
                bar,
                expires_at,
            } => write_bar(symbol, bar, *expires_at, sink),
            Item::Attributes(attributes) => {
                for (name, value) in attributes {
                    match value {
                        AttrValue::S(text) => sink.string(name, text),
                        AttrValue::N(number) => sink.number(name, number),
                        AttrValue::Bool(value) => sink.boolean(name, *value),
                    }
                }
            }
        }
    }
}

const MS_PER_DAY: i64 = 86_400_000;

/// DynamoDB rejects numbers of magnitude 1E+126 and above.
const DYNAMO_MAX_ABS: f64 = 1e126;
/// DynamoDB rejects non-zero numbers of magnitude below 1E-130.
const DYNAMO_MIN_ABS: f64 = 1e-130;

/// `2026-01-02T14:30:00.123Z`: fixed width for years 0..=9999, so text order is time order.
/// Written digit by digit into place: it is built for every table item.
fn iso8601_millis(ms: i64) -> CompactString {
    let (year, month, day) = civil_from_days(ms.div_euclid(MS_PER_DAY));
    let of_day = ms.rem_euclid(MS_PER_DAY) as u64;
    let mut text = *b"0000-00-00T00:00:00.000Z";
    put_digits(&mut text[11..13], of_day / 3_600_000);
    put_digits(&mut text[14..16], of_day / 60_000 % 60);
    put_digits(&mut text[17..19], of_day / 1_000 % 60);
    put_digits(&mut text[20..23], of_day % 1_000);
    if !(0..=9999).contains(&year) {
        return [&partition_date(ms), ascii(&text[10..])].concat().into();
    }
    put_digits(&mut text[0..4], year as u64);
    put_digits(&mut text[5..7], month.into());
    put_digits(&mut text[8..10], day.into());
    ascii(&text).into()
}

/// `value` zero-padded into `out`, one digit per byte (`value` is below 10^`out.len()`).
fn put_digits(out: &mut [u8], mut value: u64) {
    for digit in out.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// Text this module wrote byte by byte: digits, signs and separators only.
fn ascii(bytes: &[u8]) -> &str {
    debug_assert!(bytes.is_ascii(), "{bytes:?}");
    // SAFETY: callers pass only ASCII (see above), which is valid UTF-8. `from_utf8`'s check is
    // an out-of-line call on every number and timestamp of every table item.
    unsafe { std::str::from_utf8_unchecked(bytes) }
}

/// Sort key of a tick: ISO 8601 UTC with milliseconds, then `#` and the stream position, so two
/// ticks in the same millisecond never share a key and time-range queries still work.
pub fn sort_key(event_time_ms: i64, position: &Position) -> String {
    let mut sub_sequence = itoa::Buffer::new();
    key_pieces(&iso8601_millis(event_time_ms), position, &mut sub_sequence).concat()
}

/// `event_time#position` in pieces, as `Position`'s `Display` writes it, without the formatting
/// machinery: it is written for every tick item.
fn key_pieces<'a>(
    event_time: &'a str,
    position: &'a Position,
    sub_sequence: &'a mut itoa::Buffer,
) -> [&'a str; 5] {
    let (dot, sub_sequence) = match position.sub_sequence {
        0 => ("", ""),
        sub => (".", sub_sequence.format(sub)),
    };
    [
        event_time,
        "#",
        position.sequence.as_str(),
        dot,
        sub_sequence,
    ]
}

/// A float as a DynamoDB number.
///
/// The decoder's range rule (`decode/range.rs`) keeps every value of an item, sent or computed,
/// finite and 0 or within DynamoDB's range, so nothing is ever changed or left out here. A value
/// past that is a bug: a debug build stops at it, a release build leaves the attribute out
/// rather than fail the batch or write a number that is not the value.
fn float(sink: &mut impl AttributeSink, name: &'static str, value: f64) {
    let storable = value == 0.0 || (DYNAMO_MIN_ABS..DYNAMO_MAX_ABS).contains(&value.abs());
    debug_assert!(
        storable,
        "`{name}` = {value:e} is outside what DynamoDB holds"
    );
    if !storable {
        return;
    }
    // `-0` is written as `0`.
    if value == 0.0 {
        return sink.number(name, "0");
    }
    let mut cents = [0u8; 24];
    if let Some(text) = whole_cents(value, &mut cents) {
        return sink.number(name, text);
    }
    // zmij rather than ryu: the same shortest round-trip digits, found faster (its exponent
    // form, `1e+16`, differs, but text with an exponent is replaced below).
    let mut buffer = zmij::Buffer::new();
    let text = buffer.format_finite(value);
    // zmij writes magnitudes from 1e-5 to below 1e15 as plain decimals (pinned by a test below),
    // so only others are looked at. A plain loop: `contains` calls memchr, which costs more than
    // the scan on a dozen bytes.
    if !(1e-5..1e15).contains(&value.abs()) && text.bytes().any(|b| b == b'e') {
        return sink.number(name, &value.to_string());
    }
    sink.number(name, text.strip_suffix(".0").unwrap_or(text));
}

/// Below this magnitude one ulp is under 2^-13, far below a cent.
const WHOLE_CENTS_MAX: f64 = (1u64 << 40) as f64;

/// The shortest decimal of `value` when it is a whole number of cents (most prices and every
/// whole volume), written without zmij's digit search: `[-]whole[.c[c]]`.
///
/// If `cents / 100` reads back as `value`, it is the shortest decimal that does: one ulp is far
/// below a cent here, so no other decimal with as few digits lies close enough to `value`.
fn whole_cents(value: f64, out: &mut [u8; 24]) -> Option<&str> {
    let magnitude = value.abs();
    if !(0.01..WHOLE_CENTS_MAX).contains(&magnitude) {
        return None;
    }
    // Truncating after adding a half rounds: the magnitude is positive and far below 2^53.
    // Signed, as x86-64 converts between floats and i64 in one instruction each, where u64
    // takes several.
    let scaled = magnitude * 100.0;
    let cents = (scaled + 0.5) as i64;
    // Computed values (averages, ratios) are seldom whole cents: a product far from an integer
    // rules them out without the division, which costs more than the rest of this function.
    // Far means beyond the rounding of `value` and of the product (an ulp each, 2.2e-16 of it).
    if (scaled - cents as f64).abs() > scaled * 1e-15 || cents as f64 / 100.0 != magnitude {
        return None;
    }
    // Digits from the right end of the buffer (unsigned: no sign fix-ups in the divisions).
    let cents = cents as u64;
    let mut at = out.len();
    let (mut whole, fraction) = (cents / 100, cents % 100);
    if fraction != 0 {
        if fraction % 10 != 0 {
            at -= 1;
            out[at] = b'0' + (fraction % 10) as u8;
        }
        out[at - 2] = b'.';
        out[at - 1] = b'0' + (fraction / 10) as u8;
        at -= 2;
    }
    loop {
        at -= 1;
        out[at] = b'0' + (whole % 10) as u8;
        whole /= 10;
        if whole == 0 {
            break;
        }
    }
    if value < 0.0 {
        at -= 1;
        out[at] = b'-';
    }
    Some(ascii(&out[at..]))
}

fn integer(sink: &mut impl AttributeSink, name: &'static str, value: impl itoa::Integer) {
    sink.number(name, itoa::Buffer::new().format(value));
}

fn trend_str(trend: Trend) -> &'static str {
    match trend {
        Trend::Up => "up",
        Trend::Down => "down",
    }
}

fn write_tick(tick: &EnrichedTick, expires_at: Option<i64>, sink: &mut impl AttributeSink) {
    let (t, i) = (&tick.tick, &tick.indicators);
    let event_time = iso8601_millis(t.event_time_ms);
    sink.string("symbol", &t.symbol);
    let mut sub_sequence = itoa::Buffer::new();
    let key = key_pieces(&event_time, &tick.position, &mut sub_sequence);
    sink.joined_string("timestamp", &key);
    sink.string("event_time", &event_time);
    integer(sink, "event_time_ms", t.event_time_ms);
    let numbers = [
        ("price", Some(t.price)),
        ("open", t.open),
        ("high", t.high),
        ("low", t.low),
        ("previous_close", t.previous_close),
        ("volume", t.volume),
        ("change", i.change),
        ("change_percent", i.change_percent),
        ("sma_short", i.sma_short),
        ("sma_long", i.sma_long),
        ("ema", i.ema),
        ("vwap", i.vwap),
        ("window_high", i.window_high),
        ("window_low", i.window_low),
        ("volatility", i.volatility),
        ("return_zscore", i.return_zscore),
        ("volume_ratio", i.volume_ratio),
    ];
    for (name, value) in numbers {
        if let Some(value) = value {
            float(sink, name, value);
        }
    }
    sink.boolean("anomaly", tick.anomaly);
    if let Some(trend) = tick.trend {
        sink.string("trend", trend_str(trend));
    }
    sink.string("shard_id", &tick.shard_id);
    sink.string("sequence_number", tick.position.sequence.as_str());
    integer(sink, "arrival_time_ms", tick.arrival_time_ms);
    if let Some(expires_at) = expires_at {
        integer(sink, "expires_at", expires_at);
    }
}

/// Sort key of a one-minute bar: the minute as `2026-01-02T14:30Z`. In a table that also holds
/// ticks it sorts after that minute's ticks (`2026-01-02T14:30:00.123Z#...`), since `:` < `Z`.
pub fn bar_sort_key(minute_start_ms: i64) -> CompactString {
    let mut key = iso8601_millis(minute_start_ms);
    key.truncate(16);
    key.push('Z');
    key
}

fn write_bar(
    symbol: &str,
    bar: &MinuteBar,
    expires_at: Option<i64>,
    sink: &mut impl AttributeSink,
) {
    sink.string("symbol", symbol);
    sink.string("timestamp", &bar_sort_key(bar.minute_start_ms));
    sink.string("kind", "bar_1m");
    sink.string("event_time", &iso8601_millis(bar.minute_start_ms));
    let numbers = [
        ("open", Some(bar.open)),
        ("high", Some(bar.high)),
        ("low", Some(bar.low)),
        ("close", Some(bar.close)),
        ("volume", Some(bar.volume)),
        ("vwap", bar.vwap()),
    ];
    for (name, value) in numbers {
        if let Some(value) = value {
            float(sink, name, value);
        }
    }
    integer(sink, "trades", bar.trades);
    if let Some(expires_at) = expires_at {
        integer(sink, "expires_at", expires_at);
    }
}

/// Collects an item as DynamoDB JSON (`{"symbol":{"S":"AAPL"},...}`), as `aws dynamodb scan`
/// prints it.
#[derive(Debug, Default)]
pub struct JsonItem(pub serde_json::Map<String, serde_json::Value>);

impl AttributeSink for JsonItem {
    fn string(&mut self, name: &'static str, value: &str) {
        self.0
            .insert(name.into(), serde_json::json!({ "S": value }));
    }

    fn number(&mut self, name: &'static str, value: &str) {
        self.0
            .insert(name.into(), serde_json::json!({ "N": value }));
    }

    fn boolean(&mut self, name: &'static str, value: bool) {
        self.0
            .insert(name.into(), serde_json::json!({ "BOOL": value }));
    }
}

/// DynamoDB JSON of an item.
pub fn item_to_json(item: &Item) -> serde_json::Value {
    let mut json = JsonItem::default();
    item.write(&mut json);
    serde_json::Value::Object(json.0)
}

#[cfg(test)]
pub(crate) mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::model::tick::{SequenceNumber, Tick};
    use crate::model::window::Indicators;

    /// 2026-01-02T14:30:00.123Z
    const T0: i64 = 1_767_364_200_123;
    const SEQ: &str = "49590338271490256608559692538361571095921575989136588898";

    /// The item of [`sample`] with a TTL, as `aws dynamodb get-item` would print it.
    const GOLDEN_ITEM: &str = r#"{
  "symbol": {"S": "AAPL"},
  "timestamp": {"S": "2026-01-02T14:30:00.123Z#49590338271490256608559692538361571095921575989136588898.2"},
  "event_time": {"S": "2026-01-02T14:30:00.123Z"},
  "event_time_ms": {"N": "1767364200123"},
  "price": {"N": "187.25"},
  "open": {"N": "185.5"},
  "previous_close": {"N": "186"},
  "volume": {"N": "1200"},
  "change": {"N": "1.25"},
  "change_percent": {"N": "0.6720430107526881"},
  "sma_short": {"N": "187.1"},
  "sma_long": {"N": "186.95"},
  "ema": {"N": "187.0375"},
  "vwap": {"N": "187.2"},
  "window_high": {"N": "187.5"},
  "window_low": {"N": "186.5"},
  "volatility": {"N": "0.0000001"},
  "return_zscore": {"N": "-3.5"},
  "volume_ratio": {"N": "4"},
  "anomaly": {"BOOL": true},
  "trend": {"S": "up"},
  "shard_id": {"S": "shardId-000000000003"},
  "sequence_number": {"S": "49590338271490256608559692538361571095921575989136588898"},
  "arrival_time_ms": {"N": "1767364200170"},
  "expires_at": {"N": "1769956200"}
}"#;

    /// A tick item's content, with a sub-sequence number.
    pub(crate) fn sample() -> EnrichedTick {
        EnrichedTick {
            tick: Tick {
                symbol: "AAPL".into(),
                price: 187.25,
                event_time_ms: T0,
                open: Some(185.5),
                high: None,
                low: None,
                previous_close: Some(186.0),
                // The producer's value; the item carries the recomputed one.
                change: Some(9.0),
                change_percent: None,
                volume: Some(1200.0),
            },
            shard_id: "shardId-000000000003".into(),
            position: Position::new(SequenceNumber::new(SEQ), 2),
            arrival_time_ms: T0 + 47,
            indicators: Indicators {
                sma_short: Some(187.1),
                sma_long: Some(186.95),
                ema: Some(187.0375),
                vwap: Some(187.2),
                window_high: Some(187.5),
                window_low: Some(186.5),
                volatility: Some(1e-7),
                log_return: Some(0.0013),
                return_zscore: Some(-3.5),
                volume_ratio: Some(4.0),
                change: Some(1.25),
                change_percent: Some(1.25 / 186.0 * 100.0),
            },
            anomaly: true,
            trend: Some(Trend::Up),
        }
    }

    /// Attribute names in the order the item writes them.
    fn names(item: &Item) -> Vec<&'static str> {
        struct Names(Vec<&'static str>);
        impl AttributeSink for Names {
            fn string(&mut self, name: &'static str, _: &str) {
                self.0.push(name);
            }
            fn number(&mut self, name: &'static str, _: &str) {
                self.0.push(name);
            }
            fn boolean(&mut self, name: &'static str, _: bool) {
                self.0.push(name);
            }
        }
        let mut names = Names(Vec::new());
        item.write(&mut names);
        names.0
    }

    /// The number text an item holds for `value`, if any.
    fn number(value: f64) -> Option<String> {
        let mut json = JsonItem::default();
        float(&mut json, "n", value);
        Some(json.0.get("n")?["N"].as_str()?.to_owned())
    }

    fn tick_item(tick: &EnrichedTick, expires_at: Option<i64>) -> Item<'_> {
        Item::Tick { tick, expires_at }
    }

    #[test]
    fn sort_key_names_the_position_as_displayed() {
        for sub_sequence in [0, 2, 12_345] {
            let position = Position::new(SequenceNumber::new(SEQ), sub_sequence);
            assert_eq!(
                sort_key(T0, &position),
                format!("2026-01-02T14:30:00.123Z#{position}")
            );
        }
    }

    #[test]
    fn item_matches_golden_json() {
        let tick = sample();
        let item = tick_item(&tick, Some(1_769_956_200));
        let golden: serde_json::Value = serde_json::from_str(GOLDEN_ITEM).unwrap();
        assert_eq!(item_to_json(&item), golden);
        // Same attributes, in the documented order (the golden text is in that order too).
        let golden_order: Vec<_> = GOLDEN_ITEM
            .lines()
            .filter_map(|line| line.trim().strip_prefix('"')?.split('"').next())
            .collect();
        assert_eq!(names(&item), golden_order);
    }

    #[test]
    fn missing_values_and_ttl_are_left_out() {
        let mut tick = sample();
        tick.indicators = Indicators::default();
        tick.trend = None;
        tick.anomaly = false;
        let item = tick_item(&tick, None);
        assert_eq!(
            names(&item),
            [
                "symbol",
                "timestamp",
                "event_time",
                "event_time_ms",
                "price",
                "open",
                "previous_close",
                "volume",
                "anomaly",
                "shard_id",
                "sequence_number",
                "arrival_time_ms",
            ]
        );
        assert_eq!(item_to_json(&item)["anomaly"]["BOOL"], false);
    }

    #[test]
    fn numbers_are_plain_decimals_dynamodb_accepts() {
        let cases = [
            (1.5, Some("1.5")),
            (186.0, Some("186")),
            (0.1 + 0.2, Some("0.30000000000000004")),
            (1e-7, Some("0.0000001")),
            (-2.5e-10, Some("-0.00000000025")),
            (1e20, Some("100000000000000000000")),
            (-0.0, Some("0")),
            // -235628728097230.125, halfway between two shortest decimals: zmij rounds half to
            // even (`Display` up).
            (
                f64::from_bits(14045260157812947396),
                Some("-235628728097230.12"),
            ),
            (1e-130, Some(&*format!("0.{}1", "0".repeat(129)))),
        ];
        for (value, expected) in cases {
            assert_eq!(number(value).as_deref(), expected, "{value:e}");
        }
    }

    /// Values DynamoDB cannot hold never reach an item (the decoder's range rule keeps them
    /// out): a debug build stops at one, a release build leaves it out, never writes 0.
    #[test]
    fn numbers_dynamodb_cannot_hold_are_a_bug() {
        let values = [
            1e-200,
            -5e-324,
            1e126,
            f64::MAX,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        for value in values {
            let written = std::panic::catch_unwind(|| number(value));
            if cfg!(debug_assertions) {
                assert!(written.is_err(), "{value:e} is caught");
            } else {
                assert_eq!(written.unwrap(), None, "{value:e} is left out");
            }
        }
    }

    #[test]
    fn bar_items_sort_after_their_minute_s_ticks() {
        let bar = MinuteBar {
            minute_start_ms: T0 - T0 % 60_000,
            open: 10.0,
            high: 12.0,
            low: 9.5,
            close: 11.0,
            volume: 400.0,
            notional: 4_200.0,
            trades: 3,
            first_ms: T0,
            last_ms: T0,
        };
        let item = Item::Bar {
            symbol: "AAPL",
            bar: &bar,
            expires_at: Some(99),
        };
        let json = item_to_json(&item);
        assert_eq!(json["timestamp"]["S"], "2026-01-02T14:30Z");
        assert_eq!(json["kind"]["S"], "bar_1m");
        assert_eq!(json["vwap"]["N"], "10.5");
        assert_eq!(json["trades"]["N"], "3");
        assert_eq!(json["expires_at"]["N"], "99");
        let pos = Position::new(SequenceNumber::new("17"), 0);
        let tick_key = sort_key(T0 + 59_999 - T0 % 60_000, &pos);
        assert!(bar_sort_key(bar.minute_start_ms).as_str() > tick_key.as_str());
        assert!(
            bar_sort_key(bar.minute_start_ms).as_str()
                < sort_key(bar.minute_start_ms + 60_000, &pos).as_str()
        );
    }

    #[test]
    fn sort_keys() {
        let pos = |sub| Position::new(SequenceNumber::new("17"), sub);
        assert_eq!(sort_key(T0, &pos(0)), "2026-01-02T14:30:00.123Z#17");
        assert_eq!(sort_key(T0, &pos(4)), "2026-01-02T14:30:00.123Z#17.4");
        assert_eq!(sort_key(0, &pos(0)), "1970-01-01T00:00:00.000Z#17");
        assert_eq!(sort_key(-1, &pos(0)), "1969-12-31T23:59:59.999Z#17");
    }

    proptest! {
        #[test]
        fn timestamps_agree_with_chrono(ms in -62_135_596_800_000i64..253_402_300_800_000) {
            let expected = chrono::DateTime::from_timestamp_millis(ms)
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            prop_assert_eq!(iso8601_millis(ms), expected);
        }

        #[test]
        /// As short as `Display`'s text and read back to the same value. (Not always the same
        /// text: on a tie between two shortest decimals, zmij rounds half to even.)
        fn numbers_are_shortest_round_trip_decimals(
            mantissa in 0u64..1 << 52,
            // Binary exponents of DynamoDB's range, 1e-130 to 1e126.
            exponent in -431i64..418,
            negative: bool,
        ) {
            let bits = u64::from(negative) << 63 | ((exponent + 1023) as u64) << 52 | mantissa;
            let value = f64::from_bits(bits);
            prop_assume!((DYNAMO_MIN_ABS..DYNAMO_MAX_ABS).contains(&value.abs()));
            let text = number(value).unwrap();
            prop_assert!(!text.contains(['e', 'E']), "{}", text);
            prop_assert_eq!(text.parse::<f64>().unwrap(), value);
            prop_assert_eq!(text.len(), value.to_string().len());
        }

        /// `float` looks for an exponent only outside this range.
        #[test]
        fn zmij_writes_plain_decimals_from_1e_minus_5_to_1e15(
            magnitude in 1e-5f64..1e15,
            digits in 1i32..17,
        ) {
            // Also the short decimals zmij may write for values that are whole at some digit.
            let scale = 10f64.powi(digits - 1 - magnitude.log10().floor() as i32);
            for value in [magnitude, (magnitude * scale).round() / scale] {
                prop_assume!((1e-5..1e15).contains(&value));
                let mut buffer = zmij::Buffer::new();
                let text = buffer.format_finite(value);
                prop_assert!(!text.contains('e'), "{}", text);
            }
        }

        /// Whole cents take the shortcut; the text is still exactly `Display`'s.
        #[test]
        fn whole_cents_are_the_display_text(cents in 1u64..(1 << 40) * 100, negative: bool) {
            let value = cents as f64 / 100.0;
            let value = if negative { -value } else { value };
            let (mut buffer, display) = ([0u8; 24], value.to_string());
            if value.abs() < WHOLE_CENTS_MAX {
                prop_assert_eq!(whole_cents(value, &mut buffer), Some(display.as_str()));
            }
            prop_assert_eq!(number(value), Some(value.to_string()));
        }

        #[test]
        fn sort_keys_order_like_event_times(a in 0i64..253_402_300_800_000, b in 0i64..253_402_300_800_000) {
            let pos = Position::new(SequenceNumber::new("1"), 0);
            prop_assert_eq!(sort_key(a, &pos).cmp(&sort_key(b, &pos)), a.cmp(&b));
        }
    }
}
