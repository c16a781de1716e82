//! The range rule for numbers: the magnitudes each numeric field accepts, chosen so that the value
//! sent and every value computed from accepted ticks fit every output exactly.
//!
//! In: a numeric field's value as read. Out: the value, or [`Rejection::OutOfRange`].
//!
//! What the outputs hold: a DynamoDB number has a magnitude from 1e-130 to below 1e126 and up to
//! 38 significant digits (a double's shortest decimal has at most 17); Parquet doubles and the
//! alerts' JSON hold any finite double. So DynamoDB bounds the values written, and the windows
//! (`window/`), the rules (`rules.rs`) and the bars (`bar.rs`) bound what is computed. The ranges:
//! - Prices (`price`, `open`, `high`, `low`, `previous_close`): 1e-9 to 1e12. Nine decimals are
//!   below the smallest quote of any venue (tokens worth less are quoted per thousand or million);
//!   1e12 is above any price in any currency.
//! - `volume`: 0, or 1e-9 to 1e15. Satoshis are 1e-8; whole volumes up to 1e15 are exact in a
//!   double (2^53 is 9.007e15), with room to sum them into bars.
//! - `change`: 0, or a magnitude of 1e-25 to 1e12; `change_percent`: 0, or 1e-35 to 1e23. These
//!   are the ranges of the values recomputed from `previous_close`, which the sent ones stand in
//!   for: every accepted price is at least 2^-30, so a multiple of 2^-82, and so is a difference
//!   of two, which is therefore 0 or at least 2^-82 (2.1e-25) in magnitude.
//!
//! What that bounds, for values computed from accepted ticks:
//! - SMAs, EMA, VWAP, window high and low, and the bars' prices and VWAP are averages or picks of
//!   prices: within the price range.
//! - A notional (price x volume) is at most 1e27, so sums of them over any window that fits in
//!   memory stay far below 1e126.
//! - A log return is at most ln(1e21) < 49 in magnitude, and one that is not 0 is at least 1.1e-16
//!   (the nearest ratio of two doubles to 1). So in windows of up to a billion ticks the
//!   volatility is 0 or above 1e-50, and a z-score, a deviation over it, stays below 1e60.
//! - A volume ratio is at most 1e24 times the ticks in the window.
//!
//! A property test below drives the windows, rules and bars with ticks at the edges of every
//! range and checks each computed value against DynamoDB's range with a wide margin.
//!
//! Sent values are never bent to fit: a decimal too large for a double is out of range (not
//! infinite), one too small is out of range (not 0), a subnormal is out of range. The one change
//! made is to `-0`, which is read as 0 so that the lake and the table hold the same zero. (One
//! gap: after a key written with escapes, which no producer does, serde_json reads the number
//! and a decimal too small for a double arrives as 0; see `Scalar::Float`.)

use super::{MAX_EXCERPT_CHARS, Rejection};

/// Inclusive bounds of the magnitude of a number that is not 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Magnitudes {
    pub min: f64,
    pub max: f64,
}

impl Magnitudes {
    /// Whether `x`'s magnitude lies within the bounds.
    #[inline]
    pub fn holds(self, x: f64) -> bool {
        let magnitude = x.abs();
        self.min <= magnitude && magnitude <= self.max
    }
}

/// Prices: `price`, `open`, `high`, `low`, `previous_close` (which must also be positive).
pub const PRICE_MAGNITUDES: Magnitudes = Magnitudes {
    min: 1e-9,
    max: 1e12,
};

/// Volumes other than 0 (which must not be negative).
pub const VOLUME_MAGNITUDES: Magnitudes = Magnitudes {
    min: 1e-9,
    max: 1e15,
};

/// `change` other than 0: the differences of two accepted prices.
pub const CHANGE_MAGNITUDES: Magnitudes = Magnitudes {
    min: 1e-25,
    max: 1e12,
};

/// `change_percent` other than 0: such differences in percent of an accepted price.
pub const CHANGE_PERCENT_MAGNITUDES: Magnitudes = Magnitudes {
    min: 1e-35,
    max: 1e23,
};

/// `x` if it is 0 (`-0` made `+0`) or within `bounds`. Inlined: the fast parser calls it for
/// every number.
#[inline(always)]
pub(super) fn within(field: &'static str, x: f64, bounds: Magnitudes) -> Result<f64, Rejection> {
    if x == 0.0 {
        return Ok(0.0);
    }
    if bounds.holds(x) {
        return Ok(x);
    }
    Err(out_of_range(field, format!("{x:e}"), bounds))
}

/// A decimal whose value does not survive being read as a double: one too large (read as
/// infinite) or a non-zero one too small (read as 0). `x` is what it was read as.
pub(super) fn lost_in_reading(text: &str, x: f64) -> bool {
    let mantissa = text.split(['e', 'E']).next().unwrap_or_default();
    let digits = |nonzero: bool| {
        mantissa.bytes().any(|b| {
            if nonzero {
                matches!(b, b'1'..=b'9')
            } else {
                b.is_ascii_digit()
            }
        })
    };
    // `inf` and `NaN` have no digits: they say what they are, and are refused as non-finite.
    (x.is_infinite() && digits(false)) || (x == 0.0 && digits(true))
}

#[cold]
pub(super) fn out_of_range(field: &'static str, value: String, bounds: Magnitudes) -> Rejection {
    let mut value = value;
    if let Some((at, _)) = value.char_indices().nth(MAX_EXCERPT_CHARS) {
        value.truncate(at);
    }
    Rejection::OutOfRange {
        field,
        value,
        min: bounds.min,
        max: bounds.max,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;
    use crate::model::bar::OpenBars;
    use crate::model::decode::testing::{decode, decode_both, rejected, seed_with};
    use crate::model::item::{Item, item_to_json};
    use crate::model::rules::RuleSet;
    use crate::model::state::SymbolState;
    use crate::model::tick::{Position, SequenceNumber, Tick};
    use crate::model::window::WindowConfig;

    /// The fields and their bounds; `zero` tells whether 0 is accepted.
    const FIELDS: [(&str, Magnitudes, bool); 8] = [
        ("price", PRICE_MAGNITUDES, false),
        ("open", PRICE_MAGNITUDES, false),
        ("high", PRICE_MAGNITUDES, false),
        ("low", PRICE_MAGNITUDES, false),
        ("previous_close", PRICE_MAGNITUDES, false),
        ("volume", VOLUME_MAGNITUDES, true),
        ("change", CHANGE_MAGNITUDES, true),
        ("change_percent", CHANGE_PERCENT_MAGNITUDES, true),
    ];

    fn value_of(tick: &Tick, field: &str) -> Option<f64> {
        match field {
            "price" => Some(tick.price),
            "open" => tick.open,
            "high" => tick.high,
            "low" => tick.low,
            "previous_close" => tick.previous_close,
            "volume" => tick.volume,
            "change" => tick.change,
            "change_percent" => tick.change_percent,
            _ => unreachable!("{field}"),
        }
    }

    fn next_up(x: f64) -> f64 {
        f64::from_bits(x.to_bits() + 1)
    }

    fn next_down(x: f64) -> f64 {
        f64::from_bits(x.to_bits() - 1)
    }

    #[test]
    fn bounds_are_inclusive_and_the_next_doubles_out() {
        for (field, bounds, _) in FIELDS {
            for x in [bounds.min, bounds.max] {
                let tick = decode(&seed_with(field, Some(&format!("{x:e}")))).unwrap();
                assert_eq!(value_of(&tick, field), Some(x), "{field}={x:e}");
            }
            for x in [next_down(bounds.min), next_up(bounds.max)] {
                assert_eq!(
                    rejected(&seed_with(field, Some(&format!("{x:?}")))),
                    Rejection::OutOfRange {
                        field,
                        value: format!("{x:e}"),
                        min: bounds.min,
                        max: bounds.max,
                    },
                    "{field}={x:e}"
                );
            }
        }
    }

    #[test]
    fn huge_tiny_and_subnormal_numbers_are_out_of_range() {
        for (field, bounds, zero) in FIELDS {
            let tiny = format!("0.{}1", "0".repeat(400));
            let excerpt = &tiny[..MAX_EXCERPT_CHARS];
            for (text, value) in [
                ("1e200", "1e200"),
                ("1e-200", "1e-200"),
                ("5e-324", "5e-324"),
                ("2.2250738585072014e-308", "2.2250738585072014e-308"),
                ("1.7976931348623157e308", "1.7976931348623157e308"),
                // Beyond a double: out of range, not infinite or zero.
                ("1e400", "1e400"),
                ("1e-400", "1e-400"),
                (r#""1e-400""#, "1e-400"),
                (
                    "123456789e99999999999999999999",
                    "123456789e99999999999999999999",
                ),
                (tiny.as_str(), excerpt),
            ] {
                let rejection = rejected(&seed_with(field, Some(text)));
                assert_eq!(
                    rejection,
                    Rejection::OutOfRange {
                        field,
                        value: value.into(),
                        min: bounds.min,
                        max: bounds.max,
                    },
                    "{field}={text}"
                );
                assert_eq!(rejection.code(), "out_of_range");
            }
            // Negative ones too, once the sign itself is allowed.
            if field.starts_with("change") {
                assert_eq!(
                    rejected(&seed_with(field, Some("-1e200"))).code(),
                    "out_of_range"
                );
                assert_eq!(
                    rejected(&seed_with(field, Some("-1e-400"))).code(),
                    "out_of_range"
                );
            }
            // A zero written with an exponent is still 0.
            for text in ["0", "0e999999", "0.000e-999999", r#""0.0""#] {
                let decoded = decode(&seed_with(field, Some(text)));
                if zero {
                    assert_eq!(
                        value_of(&decoded.unwrap(), field),
                        Some(0.0),
                        "{field}={text}"
                    );
                } else {
                    assert_eq!(
                        decoded.unwrap_err().code(),
                        "non_positive",
                        "{field}={text}"
                    );
                }
            }
        }
        assert_eq!(
            rejected(&seed_with("price", Some("1e200"))).to_string(),
            "field `price` is 1e200, outside the accepted magnitudes 1e-9 to 1e12"
        );
    }

    #[test]
    fn negative_zero_is_read_as_zero() {
        for field in ["volume", "change", "change_percent"] {
            for text in ["-0", "-0.0", "-0e5", r#""-0""#] {
                let tick = decode(&seed_with(field, Some(text))).unwrap();
                let x = value_of(&tick, field).unwrap();
                assert_eq!(x.to_bits(), 0.0_f64.to_bits(), "{field}={text}");
            }
        }
        assert_eq!(
            rejected(&seed_with("price", Some("-0"))).code(),
            "non_positive"
        );
    }

    #[test]
    fn changes_recomputed_from_accepted_prices_are_accepted_too() {
        let edges = [
            PRICE_MAGNITUDES.min,
            next_up(PRICE_MAGNITUDES.min),
            1.0,
            next_down(PRICE_MAGNITUDES.max),
            PRICE_MAGNITUDES.max,
        ];
        for price in edges {
            for close in edges {
                assert_changes_accepted(price, close);
            }
        }
    }

    fn assert_changes_accepted(price: f64, close: f64) {
        let change = price - close;
        let percent = change / close * 100.0;
        for (field, x) in [("change", change), ("change_percent", percent)] {
            let json = seed_with(field, Some(&format!("{x:?}")));
            let (fast, general) = decode_both(json.as_bytes());
            assert!(general.is_ok(), "{price:e} vs {close:e}: {json}");
            assert_eq!(fast.is_some(), general.is_ok(), "{json}");
        }
    }

    /// Prices, volumes and changes anywhere in their ranges, mostly at or near the edges.
    fn in_range(bounds: Magnitudes) -> impl Strategy<Value = f64> {
        let (low, high) = (bounds.min.to_bits(), bounds.max.to_bits());
        prop_oneof![
            2 => Just(bounds.min),
            2 => Just(bounds.max),
            1 => (low..low + 1000).prop_map(f64::from_bits),
            1 => (high - 1000..=high).prop_map(f64::from_bits),
            4 => (low..=high).prop_map(f64::from_bits),
        ]
    }

    proptest! {
        #[test]
        fn recomputed_changes_stay_in_range(
            price in in_range(PRICE_MAGNITUDES),
            close in in_range(PRICE_MAGNITUDES),
        ) {
            assert_changes_accepted(price, close);
        }

        /// Every double: accepted by both parsers exactly when it is within its field's range.
        #[test]
        fn a_number_is_accepted_exactly_within_its_range(
            bits: u64,
            field in 0..FIELDS.len(),
            string: bool,
        ) {
            let (name, bounds, zero) = FIELDS[field];
            let x = f64::from_bits(bits);
            prop_assume!(x.is_finite());
            let text = if string { format!("\"{x:?}\"") } else { format!("{x:?}") };
            let json = seed_with(name, Some(&text));
            let (fast, general) = decode_both(json.as_bytes());
            let signed = name.starts_with("change");
            let expected = if x == 0.0 { zero } else { bounds.holds(x) && (x > 0.0 || signed) };
            prop_assert_eq!(general.is_ok(), expected, "{}", json);
            if let Ok(tick) = &general {
                prop_assert_eq!(value_of(tick, name).map(f64::to_bits), Some((x + 0.0).to_bits()));
                prop_assert_eq!(fast.as_ref(), Some(tick), "{}", json);
            } else {
                prop_assert_eq!(fast, None, "{}", json);
            }
        }
    }

    /// A tick with every field at or near the edge of its range.
    fn edge_tick() -> impl Strategy<Value = (Tick, i64)> {
        let signed = |bounds| {
            prop_oneof![
                1 => Just(None),
                1 => Just(Some(0.0)),
                3 => in_range(bounds).prop_map(Some),
                3 => in_range(bounds).prop_map(|x| Some(-x)),
            ]
        };
        (
            in_range(PRICE_MAGNITUDES),
            proptest::option::of(in_range(PRICE_MAGNITUDES)),
            prop_oneof![
                1 => Just(None),
                1 => Just(Some(0.0)),
                4 => in_range(VOLUME_MAGNITUDES).prop_map(Some),
            ],
            signed(CHANGE_MAGNITUDES),
            signed(CHANGE_PERCENT_MAGNITUDES),
            prop_oneof![4 => 0_i64..3, 1 => -5_000_i64..0, 1 => 0_i64..100_000],
        )
            .prop_map(
                |(price, previous_close, volume, change, change_percent, step)| {
                    let tick = Tick {
                        symbol: "EDGE".into(),
                        price,
                        event_time_ms: 0,
                        open: Some(price),
                        high: previous_close,
                        low: Some(price),
                        previous_close,
                        change,
                        change_percent,
                        volume,
                    };
                    (tick, step)
                },
            )
    }

    /// Every number of an item as DynamoDB JSON, by attribute name.
    fn numbers(item: &Item) -> Vec<(String, f64)> {
        let json = item_to_json(item);
        json.as_object()
            .unwrap()
            .iter()
            .filter_map(|(name, value)| {
                let text = value.get("N")?.as_str()?;
                Some((name.clone(), text.parse().unwrap()))
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// The windows, rules and bars fed ticks at the edges of every range: each value they
        /// compute is finite, is 0 or well within DynamoDB's range, and is in the table item.
        #[test]
        fn values_computed_from_accepted_ticks_fit_every_output(
            ticks in proptest::collection::vec(edge_tick(), 1..200),
            max_span_ticks in prop_oneof![Just(3_usize), Just(100_000)],
            span_ms in prop_oneof![Just(10_u64), Just(300_000)],
        ) {
            let config = WindowConfig {
                sma_short: 2,
                sma_long: 5,
                ema_span: 3,
                span: Duration::from_millis(span_ms),
                min_samples: 2,
                max_span_ticks,
            };
            let rules = RuleSet {
                price_above: Some(1.0),
                price_below: Some(1.0),
                ..RuleSet::default()
            };
            let mut state = SymbolState::new(config);
            let mut bars = OpenBars::default();
            let shard: Arc<str> = "shardId-000000000000".into();
            let mut alerts = Vec::new();
            let mut time = 1_767_364_200_000_i64;
            for (i, (mut tick, step)) in ticks.into_iter().enumerate() {
                time += step;
                tick.event_time_ms = time;
                let position = Position::new(SequenceNumber::new(i.to_string()), 0);
                let bar = bars.update(&tick).ok().cloned();
                let enriched = state.process(tick, &shard, position, time, &rules, &mut alerts);
                let ind = &enriched.indicators;
                let computed = [
                    ind.sma_short, ind.sma_long, ind.ema, ind.vwap, ind.window_high,
                    ind.window_low, ind.volatility, ind.log_return, ind.return_zscore,
                    ind.volume_ratio, ind.change, ind.change_percent,
                ];
                for x in computed.into_iter().flatten() {
                    prop_assert!(
                        x == 0.0 || (x.is_finite() && (1e-100..1e100).contains(&x.abs())),
                        "{:?}", ind
                    );
                }
                let item = Item::Tick { tick: &enriched, expires_at: None };
                let written = numbers(&item).len();
                let expected = 3 // event_time_ms, price, arrival_time_ms
                    + [enriched.tick.open, enriched.tick.high, enriched.tick.low,
                       enriched.tick.previous_close, enriched.tick.volume]
                        .iter().flatten().count()
                    + computed.iter().flatten().count() - usize::from(ind.log_return.is_some());
                prop_assert_eq!(written, expected, "every value is written: {:?}", ind);
                if let Some(bar) = bar {
                    let item = Item::Bar { symbol: "EDGE", bar: &bar, expires_at: None };
                    let written = numbers(&item);
                    for (name, x) in &written {
                        prop_assert!(*x == 0.0 || (1e-100..1e100).contains(&x.abs()), "{} {:?}", name, bar);
                    }
                    let expected = 6 + usize::from(bar.vwap().is_some());
                    prop_assert_eq!(written.len(), expected, "{:?}", bar);
                }
            }
            for alert in &alerts {
                for x in [alert.price, alert.value, alert.threshold] {
                    prop_assert!(x.is_finite(), "{:?}", alert);
                }
            }
        }
    }
}
