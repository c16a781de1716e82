//! Decoding and validation of one input record (one JSON object) into a [`Tick`].
//!
//! In: the raw bytes of a Kinesis record (after KPL de-aggregation). Out: a [`Tick`], or a typed
//! [`Rejection`] that the reader dead-letters with its shard and sequence number.
//!
//! Every field is first read as whatever JSON value it holds (a `RawTick`, borrowing from the
//! record) and only then checked, so a bad field is reported by name rather than as a parser
//! error. The accepted forms are lenient where real producers differ (numbers as strings, `null`
//! for "absent", RFC 3339 or epoch milliseconds, extra fields) and strict where a guess would
//! corrupt data (no trimming, no seconds-vs-milliseconds guessing, absolute time bounds so a
//! replay decides exactly as the first run did).
//!
//! This is the hot path of every shard, so there are two parsers. The fast one (`scan.rs`) reads
//! the flat objects producers send in one pass, straight into a [`Tick`]; anything it does not
//! recognise or would reject (escapes, nested values, invalid input, a bad field) goes to the
//! general one (`general.rs`), built on serde_json, which is the reference and names the reason:
//! property tests check that the fast one never accepts more or decodes differently. Both read
//! numbers exactly (the nearest `f64` to the decimal sent; `value.rs`), which serde_json alone
//! does not without its `float_roundtrip` feature.
//!
//! What both parsers share: `field.rs` names the known fields and checks the numeric ones,
//! `range.rs` holds the range each number must lie in (and why), `validate.rs` checks the symbol
//! and fixes the order in which problems are reported, and `timestamp.rs` reads event times
//! (RFC 3339 or epoch milliseconds).
//!
//! A record that starts with the KPL magic bytes is an aggregate that could not be split (a whole
//! one is split before it gets here; see [`super::kpl`]): it is refused with the problem
//! [`try_deaggregate`] finds, whatever its size.

mod field;
mod general;
mod range;
mod scan;
#[cfg(test)]
mod testing;
mod timestamp;
mod validate;
mod value;

use self::general::parse_general;
pub use self::range::{
    CHANGE_MAGNITUDES, CHANGE_PERCENT_MAGNITUDES, Magnitudes, PRICE_MAGNITUDES, VOLUME_MAGNITUDES,
};
use self::scan::decode_fast;
use super::kpl::{self, AggregateError, try_deaggregate};
use super::tick::Tick;

/// Longest accepted symbol, in bytes: room for long crypto pairs and option roots, while
/// keeping table keys and file names short.
pub const MAX_SYMBOL_BYTES: usize = 32;

/// Longest excerpt of an offending value kept in a [`Rejection`], in characters; the dead letter
/// carries the whole record anyway.
const MAX_EXCERPT_CHARS: usize = 64;

/// Bounds a record must stay within to be accepted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecodeLimits {
    /// Larger records are rejected before parsing (bytes).
    pub max_record_bytes: usize,
    /// Earliest accepted event time, epoch ms.
    pub min_event_time_ms: i64,
    /// Latest accepted event time, epoch ms.
    pub max_event_time_ms: i64,
}

impl Default for DecodeLimits {
    /// 16 KiB per record (a tick is ~200 bytes; Kinesis would allow 1 MiB), event times from
    /// 1990-01-01T00:00:00Z to 2100-01-01T00:00:00Z inclusive. The time bounds are absolute, not
    /// relative to the wall clock, so a replay accepts exactly what the first run accepted; they
    /// also catch epoch seconds sent as milliseconds (which land in January 1970).
    fn default() -> Self {
        Self {
            max_record_bytes: 16 * 1024,
            min_event_time_ms: 631_152_000_000,
            max_event_time_ms: 4_102_444_800_000,
        }
    }
}

/// Why a record was not accepted. `Display` is the human reason written to the dead letter;
/// [`Rejection::code`] is the stable code for metrics and queries.
///
/// When a record has several problems, the first one found is reported: the KPL magic bytes,
/// then size, then JSON syntax, then duplicates, then fields in the order symbol, price,
/// timestamp (presence first, then value), open, high, low, previous_close, change,
/// change_percent, volume.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    /// Checked before parsing, so a huge record costs nothing to refuse.
    #[error("record is {len} bytes, more than the limit of {max}")]
    Oversized { len: usize, max: usize },
    /// Not valid JSON (syntax, encoding, trailing data); `message` is serde_json's, with position.
    #[error("malformed JSON: {message}")]
    MalformedJson { message: String },
    /// Valid JSON, but not an object; `found` is the JSON type (`array`, `string`, ...).
    #[error("record is a JSON {found}, not an object")]
    NotAnObject { found: &'static str },
    /// A required field (`symbol`, `price`, `timestamp`) is absent or `null`.
    #[error("missing required field `{field}`")]
    MissingField { field: &'static str },
    /// A known field appears twice; neither value can be trusted over the other.
    #[error("field `{field}` appears more than once")]
    DuplicateField { field: &'static str },
    /// A field holds a JSON value of the wrong kind, e.g. a boolean price.
    #[error("field `{field}` must be {expected}, found {found}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
        found: &'static str,
    },
    /// A numeric string says NaN or infinity (`"NaN"`, `"inf"`).
    #[error("field `{field}` is not a finite number")]
    NonFinite { field: &'static str },
    /// A number outside its field's range (`range.rs`): the outputs could not hold it, or values
    /// computed from it, faithfully. `value` is the number as read, or an excerpt of the text of
    /// a decimal too large or too small for a double; `min` and `max` bound the magnitude of a
    /// value other than 0.
    #[error("field `{field}` is {value}, outside the accepted magnitudes {min:e} to {max:e}")]
    OutOfRange {
        field: &'static str,
        value: String,
        min: f64,
        max: f64,
    },
    /// A price (`price`, `open`, `high`, `low`, `previous_close`) is zero or negative.
    #[error("field `{field}` must be positive, found {value}")]
    NonPositive { field: &'static str, value: f64 },
    #[error("volume must not be negative, found {value}")]
    NegativeVolume { value: f64 },
    /// The timestamp is neither an RFC 3339 date-time nor integer epoch milliseconds; `text` is
    /// an excerpt of what was sent.
    #[error("timestamp {text:?} is neither RFC 3339 nor integer epoch milliseconds")]
    TimestampUnparseable { text: String },
    /// The event time parsed but lies outside [`DecodeLimits`]; all values in epoch ms.
    #[error("event time {event_time_ms} ms is outside the accepted range {min}..={max} ms")]
    TimestampOutOfRange {
        event_time_ms: i64,
        min: i64,
        max: i64,
    },
    /// The symbol is empty, longer than [`MAX_SYMBOL_BYTES`], or contains whitespace or control
    /// characters (it becomes part of table keys and partition keys).
    #[error("invalid symbol: {reason}")]
    InvalidSymbol { reason: &'static str },
    /// The record starts with the KPL magic bytes but cannot be split into user records.
    #[error("damaged KPL aggregate: {problem}")]
    DamagedAggregate { problem: AggregateError },
    /// An intact KPL aggregate where one user record belongs: aggregates do not nest, so it came
    /// inside another, or from a source that does not split them.
    #[error("a KPL aggregate of {records} user records where one user record belongs")]
    NestedAggregate { records: usize },
}

impl Rejection {
    /// Stable machine-readable reason code (`malformed_json`, `missing_field`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Oversized { .. } => "oversized",
            Self::MalformedJson { .. } => "malformed_json",
            Self::NotAnObject { .. } => "not_an_object",
            Self::MissingField { .. } => "missing_field",
            Self::DuplicateField { .. } => "duplicate_field",
            Self::WrongType { .. } => "wrong_type",
            Self::NonFinite { .. } => "non_finite",
            Self::OutOfRange { .. } => "out_of_range",
            Self::NonPositive { .. } => "non_positive",
            Self::NegativeVolume { .. } => "negative_volume",
            Self::TimestampUnparseable { .. } => "timestamp_unparseable",
            Self::TimestampOutOfRange { .. } => "timestamp_out_of_range",
            Self::InvalidSymbol { .. } => "invalid_symbol",
            Self::DamagedAggregate { .. } => "damaged_aggregate",
            Self::NestedAggregate { .. } => "nested_aggregate",
        }
    }
}

/// Decodes and validates one record.
pub fn decode_tick(data: &[u8], limits: &DecodeLimits) -> Result<Tick, Rejection> {
    if kpl::is_aggregated(data) {
        return Err(aggregate_rejection(data));
    }
    if data.len() > limits.max_record_bytes {
        return Err(Rejection::Oversized {
            len: data.len(),
            max: limits.max_record_bytes,
        });
    }
    match decode_fast(data, limits) {
        Some(tick) => Ok(tick),
        None => parse_general(data)?.validate(limits),
    }
}

/// Why an aggregate reached the decoder: the problem that kept it from being split, if any.
#[cold]
fn aggregate_rejection(data: &[u8]) -> Rejection {
    match try_deaggregate(&bytes::Bytes::copy_from_slice(data)) {
        Ok(records) => Rejection::NestedAggregate {
            records: records.map_or(0, |records| records.len()),
        },
        Err(problem) => Rejection::DamagedAggregate { problem },
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::field::EXPECTED_NUMBER;
    use super::testing::{
        SEED, SEED_MS, arb_tick, decode, decode_both, rejected, rfc3339, seed_json, seed_with,
    };
    use super::*;

    #[test]
    fn default_limits_are_the_documented_dates() {
        let limits = DecodeLimits::default();
        assert_eq!(limits.max_record_bytes, 16 * 1024);
        assert_eq!(
            rfc3339(limits.min_event_time_ms),
            "1990-01-01T00:00:00.000Z"
        );
        assert_eq!(
            rfc3339(limits.max_event_time_ms),
            "2100-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn decodes_the_seed_format() {
        let tick = decode(SEED).unwrap();
        assert_eq!(
            tick,
            Tick {
                symbol: "AAPL".into(),
                price: 187.23,
                event_time_ms: SEED_MS,
                open: Some(187.15),
                high: Some(188.4),
                low: Some(186.9),
                previous_close: Some(185.1),
                change: Some(2.13),
                change_percent: Some(1.1507),
                volume: Some(1250.0),
            }
        );
    }

    #[test]
    fn decodes_the_minimal_format() {
        let tick = decode(r#"{"symbol":"BTC-USD","price":97000.5,"timestamp":1767364200123}"#);
        assert_eq!(
            tick.unwrap(),
            Tick {
                symbol: "BTC-USD".into(),
                price: 97000.5,
                event_time_ms: SEED_MS,
                open: None,
                high: None,
                low: None,
                previous_close: None,
                change: None,
                change_percent: None,
                volume: None,
            }
        );
    }

    #[test]
    fn rejects_oversized_records_before_parsing() {
        let limits = DecodeLimits {
            max_record_bytes: SEED.len(),
            ..DecodeLimits::default()
        };
        assert!(decode_tick(SEED.as_bytes(), &limits).is_ok());
        let mut data = b"{not even json".to_vec();
        data.resize(SEED.len() + 1, b' ');
        assert_eq!(
            decode_tick(&data, &limits),
            Err(Rejection::Oversized {
                len: SEED.len() + 1,
                max: SEED.len(),
            })
        );
    }

    #[test]
    fn rejects_timestamps_out_of_range() {
        let limits = DecodeLimits::default();
        let out_of_range = |event_time_ms| Rejection::TimestampOutOfRange {
            event_time_ms,
            min: limits.min_event_time_ms,
            max: limits.max_event_time_ms,
        };
        for (value, ms) in [
            // Epoch seconds where milliseconds belong.
            ("1767364200", 1_767_364_200),
            ("-5", -5),
            (
                r#""1989-12-31T23:59:59.999Z""#,
                limits.min_event_time_ms - 1,
            ),
            (
                r#""2100-01-01T00:00:00.001Z""#,
                limits.max_event_time_ms + 1,
            ),
            (r#""1767364200123000""#, 1_767_364_200_123_000),
        ] {
            assert_eq!(
                rejected(&seed_with("timestamp", Some(value))),
                out_of_range(ms),
                "{value}"
            );
        }
        for edge in [limits.min_event_time_ms, limits.max_event_time_ms] {
            let tick = decode(&seed_with("timestamp", Some(&edge.to_string()))).unwrap();
            assert_eq!(tick.event_time_ms, edge);
        }
    }

    #[test]
    fn codes_are_distinct_snake_case() {
        let all = [
            Rejection::Oversized { len: 2, max: 1 },
            Rejection::MalformedJson {
                message: String::new(),
            },
            Rejection::NotAnObject { found: "array" },
            Rejection::MissingField { field: "price" },
            Rejection::DuplicateField { field: "price" },
            Rejection::WrongType {
                field: "price",
                expected: EXPECTED_NUMBER,
                found: "boolean",
            },
            Rejection::NonFinite { field: "price" },
            Rejection::NonPositive {
                field: "price",
                value: 0.0,
            },
            Rejection::NegativeVolume { value: -1.0 },
            Rejection::TimestampUnparseable {
                text: String::new(),
            },
            Rejection::TimestampOutOfRange {
                event_time_ms: 0,
                min: 1,
                max: 2,
            },
            Rejection::InvalidSymbol { reason: "empty" },
            Rejection::OutOfRange {
                field: "price",
                value: "1e200".into(),
                min: 1e-9,
                max: 1e12,
            },
            Rejection::DamagedAggregate {
                problem: AggregateError::Empty,
            },
            Rejection::NestedAggregate { records: 2 },
        ];
        let codes: std::collections::BTreeSet<_> = all.iter().map(Rejection::code).collect();
        assert_eq!(codes.len(), all.len());
        for code in codes {
            assert!(
                code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{code}"
            );
        }
        assert_eq!(
            all[0].to_string(),
            "record is 2 bytes, more than the limit of 1"
        );
    }

    #[test]
    fn aggregates_are_refused_with_their_problem_whatever_their_size() {
        let limits = DecodeLimits::default();
        let intact = kpl::aggregate(&[("AAPL", SEED.as_bytes()), ("MSFT", b"{}")]);
        assert_eq!(
            decode_tick(&intact, &limits),
            Err(Rejection::NestedAggregate { records: 2 })
        );
        let mut damaged = intact.to_vec();
        damaged[6] ^= 1;
        let rejection = decode_tick(&damaged, &limits).unwrap_err();
        assert_eq!(
            rejection,
            Rejection::DamagedAggregate {
                problem: AggregateError::Checksum
            }
        );
        assert_eq!(rejection.code(), "damaged_aggregate");
        assert_eq!(
            rejection.to_string(),
            "damaged KPL aggregate: the MD5 trailer does not match the protobuf"
        );
        let big = vec![b'x'; limits.max_record_bytes * 2];
        let big = kpl::aggregate(&[("AAPL", &big)]);
        assert_eq!(
            decode_tick(&big, &limits),
            Err(Rejection::NestedAggregate { records: 1 })
        );
        assert_eq!(
            decode_tick(&kpl::MAGIC, &limits),
            Err(Rejection::DamagedAggregate {
                problem: AggregateError::Truncated { len: 4 }
            })
        );
    }

    proptest! {
        #[test]
        fn seed_json_round_trips(
            tick in arb_tick(),
            nulls: bool,
            strings: bool,
            epoch: bool,
        ) {
            let json = seed_json(&tick, nulls, strings, epoch);
            let (fast, general) = decode_both(json.as_bytes());
            prop_assert_eq!(fast, Some(tick.clone()), "{}", json);
            prop_assert_eq!(general, Ok(tick), "{}", json);
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_tick(&data, &DecodeLimits::default());
        }

        #[test]
        fn damaged_records_never_panic(
            cut in 0..SEED.len(),
            flips in proptest::collection::vec((0..SEED.len(), any::<u8>()), 0..4),
        ) {
            let mut data = SEED.as_bytes().to_vec();
            for (at, byte) in flips {
                data[at] = byte;
            }
            data.truncate(cut);
            let _ = decode_tick(&data, &DecodeLimits::default());
        }
    }
}
