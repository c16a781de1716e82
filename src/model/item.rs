//! The ticks table item: the attribute names and types of one row of the DynamoDB ticks table,
//! shared by the local file table and the DynamoDB writer so both hold the same shape.
//!
//! In: one enriched tick. Out: its attributes, keyed by `symbol` (partition) and `timestamp`
//! (sort), and their DynamoDB JSON.

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use super::bar::MinuteBar;
use super::enriched::EnrichedTick;
use super::lake::{civil_from_days, partition_date};
use super::rules::Trend;
use super::tick::Position;

/// A DynamoDB attribute value, restricted to the types the ticks table uses. Texts of up to 24
/// bytes (numbers, dates, symbols, shard ids) are held inline: an item is built per tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AttrValue {
    S(CompactString),
    /// A number in DynamoDB's decimal text form.
    N(CompactString),
    #[serde(rename = "BOOL")]
    Bool(bool),
}

/// One item: attribute name to value, in a stable order.
pub type Item = Vec<(&'static str, AttrValue)>;

const MS_PER_DAY: i64 = 86_400_000;

/// DynamoDB rejects numbers of magnitude 1E+126 and above.
const DYNAMO_MAX_ABS: f64 = 1e126;
/// DynamoDB rejects non-zero numbers of magnitude below 1E-130.
const DYNAMO_MIN_ABS: f64 = 1e-130;

/// `2026-01-02T14:30:00.123Z`: fixed width for years 0..=9999, so text order is time order.
/// Written digit by digit: it is built twice per table item.
fn push_iso8601_millis(ms: i64, out: &mut CompactString) {
    let (year, month, day) = civil_from_days(ms.div_euclid(MS_PER_DAY));
    if (0..=9999).contains(&year) {
        push_digits(out, year, 4);
        out.push_str("-");
        push_digits(out, month.into(), 2);
        out.push_str("-");
        push_digits(out, day.into(), 2);
    } else {
        out.push_str(&partition_date(ms));
    }
    let of_day = ms.rem_euclid(MS_PER_DAY);
    out.push_str("T");
    push_digits(out, of_day / 3_600_000, 2);
    out.push_str(":");
    push_digits(out, of_day / 60_000 % 60, 2);
    out.push_str(":");
    push_digits(out, of_day / 1_000 % 60, 2);
    out.push_str(".");
    push_digits(out, of_day % 1_000, 3);
    out.push_str("Z");
}

/// `value` (non-negative, below 10^`width`) zero-padded to `width` digits.
fn push_digits(out: &mut CompactString, value: i64, width: u32) {
    const DIGITS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
    for place in (0..width).rev() {
        out.push_str(DIGITS[(value / 10_i64.pow(place) % 10) as usize]);
    }
}

fn iso8601_millis(ms: i64) -> CompactString {
    let mut text = CompactString::default();
    push_iso8601_millis(ms, &mut text);
    text
}

/// Sort key of a tick: ISO 8601 UTC with milliseconds, then `#` and the stream position, so two
/// ticks in the same millisecond never share a key and time-range queries still work.
pub fn sort_key(event_time_ms: i64, position: &Position) -> String {
    key_of(&iso8601_millis(event_time_ms), position)
}

/// `event_time#position`, as `Position`'s `Display` writes it, without the formatting machinery:
/// it is built once per table item.
fn key_of(event_time: &str, position: &Position) -> String {
    let mut key = String::with_capacity(96);
    key.push_str(event_time);
    key.push('#');
    key.push_str(position.sequence.as_str());
    if position.sub_sequence != 0 {
        key.push('.');
        key.push_str(itoa::Buffer::new().format(position.sub_sequence));
    }
    key
}

/// A float as a DynamoDB number, or `None` when DynamoDB cannot store it (NaN, infinities, and
/// magnitudes past its range), so the attribute is left out instead of failing the batch.
fn number(value: f64) -> Option<AttrValue> {
    if !value.is_finite() || value.abs() >= DYNAMO_MAX_ABS {
        return None;
    }
    // Rust's `{}` is the shortest text that reads back to the same f64, and never uses an
    // exponent. Below DynamoDB's smallest magnitude, zero is the nearest storable value; `-0` is
    // written as `0` too.
    if value.abs() < DYNAMO_MIN_ABS {
        return Some(AttrValue::N("0".into()));
    }
    Some(AttrValue::N(shortest_decimal(value)))
}

/// `value`'s `Display` text (shortest round-trip digits, never an exponent), via ryu where that
/// gives the same text: formatting ~20 numbers per tick is the bulk of building an item.
fn shortest_decimal(value: f64) -> CompactString {
    let mut buffer = ryu::Buffer::new();
    let text = buffer.format_finite(value);
    if text.contains('e') {
        return value.to_string().into();
    }
    text.strip_suffix(".0").unwrap_or(text).into()
}

/// An integer as a DynamoDB number.
fn integer(value: i64) -> AttrValue {
    AttrValue::N(itoa::Buffer::new().format(value).into())
}

fn trend_str(trend: Trend) -> &'static str {
    match trend {
        Trend::Up => "up",
        Trend::Down => "down",
    }
}

/// The table item of one enriched tick. `ttl_epoch_s` sets the TTL attribute `expires_at`.
///
/// `change` and `change_percent` are the recomputed values of the indicators, as in the lake.
pub fn tick_item(tick: &EnrichedTick, ttl_epoch_s: Option<i64>) -> Item {
    let (t, i) = (&tick.tick, &tick.indicators);
    let mut item = Item::with_capacity(28);
    let event_time = iso8601_millis(t.event_time_ms);
    item.push(("symbol", AttrValue::S(t.symbol.clone())));
    item.push((
        "timestamp",
        AttrValue::S(key_of(&event_time, &tick.position).into()),
    ));
    item.push(("event_time", AttrValue::S(event_time)));
    item.push(("event_time_ms", integer(t.event_time_ms)));
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
    item.extend(
        numbers
            .into_iter()
            .filter_map(|(name, value)| Some((name, number(value?)?))),
    );
    item.push(("anomaly", AttrValue::Bool(tick.anomaly)));
    if let Some(trend) = tick.trend {
        item.push(("trend", AttrValue::S(trend_str(trend).into())));
    }
    item.push(("shard_id", AttrValue::S(tick.shard_id.as_ref().into())));
    item.push((
        "sequence_number",
        AttrValue::S(tick.position.sequence.as_str().into()),
    ));
    item.push(("arrival_time_ms", integer(tick.arrival_time_ms)));
    if let Some(expires_at) = ttl_epoch_s {
        item.push(("expires_at", integer(expires_at)));
    }
    item
}

/// Sort key of a one-minute bar: the minute as `2026-01-02T14:30Z`. In a table that also holds
/// ticks it sorts after that minute's ticks (`2026-01-02T14:30:00.123Z#...`), since `:` < `Z`.
pub fn bar_sort_key(minute_start_ms: i64) -> CompactString {
    let mut key = iso8601_millis(minute_start_ms);
    key.truncate(16);
    key.push('Z');
    key
}

/// The table item of one symbol's one-minute bar, `kind` = `bar_1m`. `ttl_epoch_s` sets the TTL
/// attribute `expires_at`.
pub fn bar_item(symbol: &str, bar: &MinuteBar, ttl_epoch_s: Option<i64>) -> Item {
    let mut item = Item::with_capacity(13);
    item.push(("symbol", AttrValue::S(symbol.into())));
    item.push(("timestamp", AttrValue::S(bar_sort_key(bar.minute_start_ms))));
    item.push(("kind", AttrValue::S("bar_1m".into())));
    item.push((
        "event_time",
        AttrValue::S(iso8601_millis(bar.minute_start_ms)),
    ));
    let numbers = [
        ("open", Some(bar.open)),
        ("high", Some(bar.high)),
        ("low", Some(bar.low)),
        ("close", Some(bar.close)),
        ("volume", Some(bar.volume)),
        ("vwap", bar.vwap()),
    ];
    item.extend(
        numbers
            .into_iter()
            .filter_map(|(name, value)| Some((name, number(value?)?))),
    );
    item.push((
        "trades",
        AttrValue::N(itoa::Buffer::new().format(bar.trades).into()),
    ));
    if let Some(expires_at) = ttl_epoch_s {
        item.push(("expires_at", integer(expires_at)));
    }
    item
}

/// DynamoDB JSON of an item (`{"symbol":{"S":"AAPL"},...}`), as `aws dynamodb scan` prints it.
pub fn item_to_json(item: &Item) -> serde_json::Value {
    let attributes = item.iter().map(|(name, value)| {
        let typed = match value {
            AttrValue::S(s) => serde_json::json!({ "S": s }),
            AttrValue::N(n) => serde_json::json!({ "N": n }),
            AttrValue::Bool(b) => serde_json::json!({ "BOOL": b }),
        };
        ((*name).to_owned(), typed)
    });
    serde_json::Value::Object(attributes.collect())
}

#[cfg(test)]
mod tests {
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

    fn sample() -> EnrichedTick {
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

    fn names(item: &Item) -> Vec<&'static str> {
        item.iter().map(|(name, _)| *name).collect()
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
        let item = tick_item(&sample(), Some(1_769_956_200));
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
        assert!(item.contains(&("anomaly", AttrValue::Bool(false))));
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
            // Past DynamoDB's range: zero is the nearest value it can hold, or nothing.
            (1e-200, Some("0")),
            (1e126, None),
            (f64::NAN, None),
            (f64::INFINITY, None),
            (f64::NEG_INFINITY, None),
        ];
        for (value, expected) in cases {
            let expected = expected.map(|n| AttrValue::N(n.into()));
            assert_eq!(number(value), expected, "{value:e}");
        }

        let mut tick = sample();
        tick.indicators.return_zscore = Some(f64::NAN);
        tick.indicators.volume_ratio = Some(f64::INFINITY);
        let item = tick_item(&tick, None);
        assert!(!names(&item).contains(&"return_zscore"));
        assert!(!names(&item).contains(&"volume_ratio"));
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
        let item = bar_item("AAPL", &bar, Some(99));
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
        fn numbers_are_the_display_text(bits in any::<u64>()) {
            let value = f64::from_bits(bits);
            prop_assume!(value.is_finite());
            prop_assert_eq!(shortest_decimal(value), value.to_string());
        }

        #[test]
        fn sort_keys_order_like_event_times(a in 0i64..253_402_300_800_000, b in 0i64..253_402_300_800_000) {
            let pos = Position::new(SequenceNumber::new("1"), 0);
            prop_assert_eq!(sort_key(a, &pos).cmp(&sort_key(b, &pos)), a.cmp(&b));
        }
    }
}
