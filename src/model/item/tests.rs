use proptest::prelude::*;

use super::text::*;
use super::*;
use crate::model::rules::AlertKinds;
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
        alerts: AlertKinds::default(),
        alerts_held: AlertKinds::default(),
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
