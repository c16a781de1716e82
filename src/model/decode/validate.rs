//! From a record's fields as sent to a [`Tick`]: the check of the symbol, and the order in which
//! the general parser reports a record's first problem (numbers are checked by [`Field::number`]).
//!
//! In: the values the parsers read. Out: checked values, or the [`Rejection`] of the first bad
//! one.

use super::field::Field;
use super::timestamp::event_time_ms;
use super::value::Scalar;
use super::{DecodeLimits, MAX_SYMBOL_BYTES, Rejection};
use crate::model::tick::{Symbol, Tick};

/// The record's known fields as sent, before any validation.
#[derive(Debug, Default)]
pub(super) struct RawTick<'a> {
    values: [Option<Scalar<'a>>; Field::COUNT],
    /// First known field seen twice; reported only if the whole record is valid JSON.
    duplicate: Option<Field>,
}

impl<'a> RawTick<'a> {
    pub(super) fn set(&mut self, field: Field, value: Scalar<'a>) {
        let slot = &mut self.values[field as usize];
        if slot.is_some() {
            self.duplicate.get_or_insert(field);
        }
        *slot = Some(value);
    }

    /// The value of `field`, with `null` meaning absent.
    fn take(&mut self, field: Field) -> Option<Scalar<'a>> {
        match self.values[field as usize].take() {
            None | Some(Scalar::Null) => None,
            value => value,
        }
    }

    fn required(&mut self, field: Field) -> Result<Scalar<'a>, Rejection> {
        self.take(field).ok_or(Rejection::MissingField {
            field: field.name(),
        })
    }

    pub(super) fn validate(&mut self, limits: &DecodeLimits) -> Result<Tick, Rejection> {
        if let Some(field) = self.duplicate {
            return Err(Rejection::DuplicateField {
                field: field.name(),
            });
        }
        let symbol = self.required(Field::Symbol)?;
        let price = self.required(Field::Price)?;
        let timestamp = self.required(Field::Timestamp)?;
        let symbol = validate_symbol(symbol)?;
        let price = Field::Price.number(price).expect("a numeric field")?;
        let event_time_ms = event_time_ms(timestamp)?;
        if event_time_ms < limits.min_event_time_ms || event_time_ms > limits.max_event_time_ms {
            return Err(Rejection::TimestampOutOfRange {
                event_time_ms,
                min: limits.min_event_time_ms,
                max: limits.max_event_time_ms,
            });
        }
        Ok(Tick {
            symbol,
            price,
            event_time_ms,
            open: self.optional(Field::Open)?,
            high: self.optional(Field::High)?,
            low: self.optional(Field::Low)?,
            previous_close: self.optional(Field::PreviousClose)?,
            change: self.optional(Field::Change)?,
            change_percent: self.optional(Field::ChangePercent)?,
            volume: self.optional(Field::Volume)?,
        })
    }

    fn optional(&mut self, field: Field) -> Result<Option<f64>, Rejection> {
        self.take(field)
            .map(|v| field.number(v).expect("a numeric field"))
            .transpose()
    }
}

pub(super) fn validate_symbol(value: Scalar<'_>) -> Result<Symbol, Rejection> {
    let Scalar::Str(text) = value else {
        return Err(Rejection::WrongType {
            field: Field::Symbol.name(),
            expected: "a string",
            found: value.kind(),
        });
    };
    let reason = if text.is_empty() {
        "empty"
    } else if text.len() > MAX_SYMBOL_BYTES {
        "longer than 32 bytes"
    } else if text.bytes().all(|b| b.is_ascii_graphic()) {
        return Ok(Symbol::new(&text));
    } else if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        "contains whitespace or control characters"
    } else if text.chars().any(invisible) {
        "contains invisible or bidirectional formatting characters"
    } else {
        return Ok(Symbol::new(&text));
    };
    Err(Rejection::InvalidSymbol { reason })
}

/// Format characters (Unicode category Cf) and the other default-ignorable code points: zero-width
/// spaces and joiners, bidirectional marks, embeddings, overrides and isolates, the byte order
/// mark, variation selectors, Hangul fillers, tags. They show as nothing, or reorder the text
/// around them, so a symbol holding one would read as another in logs, alerts and consoles while
/// its table and partition keys differ.
const INVISIBLE: [(char, char); 25] = [
    ('\u{ad}', '\u{ad}'),
    ('\u{34f}', '\u{34f}'),
    ('\u{600}', '\u{605}'),
    ('\u{61c}', '\u{61c}'),
    ('\u{6dd}', '\u{6dd}'),
    ('\u{70f}', '\u{70f}'),
    ('\u{890}', '\u{891}'),
    ('\u{8e2}', '\u{8e2}'),
    ('\u{115f}', '\u{1160}'),
    ('\u{17b4}', '\u{17b5}'),
    ('\u{180b}', '\u{180f}'),
    ('\u{200b}', '\u{200f}'),
    ('\u{202a}', '\u{202e}'),
    ('\u{2060}', '\u{206f}'),
    ('\u{3164}', '\u{3164}'),
    ('\u{fe00}', '\u{fe0f}'),
    ('\u{feff}', '\u{feff}'),
    ('\u{ffa0}', '\u{ffa0}'),
    ('\u{fff0}', '\u{fffb}'),
    ('\u{110bd}', '\u{110bd}'),
    ('\u{110cd}', '\u{110cd}'),
    ('\u{13430}', '\u{1343f}'),
    ('\u{1bca0}', '\u{1bca3}'),
    ('\u{1d173}', '\u{1d17a}'),
    ('\u{e0000}', '\u{e0fff}'),
];

fn invisible(c: char) -> bool {
    INVISIBLE
        .iter()
        .any(|&(first, last)| (first..=last).contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::decode::testing::{decode, rejected, seed_with};

    #[test]
    fn accepts_numbers_as_strings() {
        let tick = decode(
            r#"{"symbol":"X","price":"187.23","open":"1e2","previous_close":"185","change":"-0.5","volume":"12.5","timestamp":1767364200123}"#,
        )
        .unwrap();
        assert_eq!(tick.price, 187.23);
        assert_eq!(tick.open, Some(100.0));
        assert_eq!(tick.previous_close, Some(185.0));
        assert_eq!(tick.change, Some(-0.5));
        assert_eq!(tick.volume, Some(12.5));
    }

    #[test]
    fn null_means_absent() {
        let tick = decode(
            r#"{"symbol":"X","price":1,"timestamp":1767364200123,"open":null,"high":null,"low":null,"previous_close":null,"change":null,"change_percent":null,"volume":null}"#,
        )
        .unwrap();
        assert_eq!(
            (tick.open, tick.high, tick.low, tick.previous_close),
            (None, None, None, None)
        );
        assert_eq!(
            (tick.change, tick.change_percent, tick.volume),
            (None, None, None)
        );
        assert_eq!(
            decode(r#"{"symbol":"X","price":null,"timestamp":1767364200123}"#),
            Err(Rejection::MissingField { field: "price" })
        );
    }

    #[test]
    fn accepts_symbols_up_to_the_limit() {
        let symbol = "A".repeat(MAX_SYMBOL_BYTES);
        let json = format!(r#"{{"symbol":"{symbol}","price":1,"timestamp":1767364200123}}"#);
        assert_eq!(decode(&json).unwrap().symbol, symbol);
        let json = r#"{"symbol":"^GSPC","price":1,"timestamp":1767364200123}"#;
        assert_eq!(decode(json).unwrap().symbol, "^GSPC");
    }

    #[test]
    fn rejects_missing_required_fields() {
        for field in ["symbol", "price", "timestamp"] {
            assert_eq!(
                rejected(&seed_with(field, None)),
                Rejection::MissingField { field }
            );
        }
        assert_eq!(rejected("{}"), Rejection::MissingField { field: "symbol" });
    }

    #[test]
    fn rejects_duplicate_fields() {
        assert_eq!(
            rejected(&seed_with("volume", Some("1")).replacen(
                "\"volume\":1,",
                "\"volume\":1,\"volume\":2,",
                1
            )),
            Rejection::DuplicateField { field: "volume" }
        );
    }

    #[test]
    fn rejects_ill_typed_fields() {
        for (field, value, found) in [
            ("symbol", "42", "number"),
            ("price", "true", "boolean"),
            ("price", r#""abc""#, "a non-numeric string"),
            ("price", r#"" 1""#, "a non-numeric string"),
            ("open", "[1]", "array"),
            ("volume", r#"{"v":1}"#, "object"),
            ("change", "false", "boolean"),
            ("timestamp", "true", "boolean"),
            ("timestamp", "[1767364200123]", "array"),
        ] {
            let rejection = rejected(&seed_with(field, Some(value)));
            let Rejection::WrongType {
                field: f,
                found: got,
                ..
            } = rejection
            else {
                panic!("{field}={value}: {rejection:?}");
            };
            assert_eq!((f, got), (field, found));
        }
        assert_eq!(
            rejected(&seed_with("price", Some("true"))).to_string(),
            "field `price` must be a number or a numeric string, found boolean"
        );
    }

    #[test]
    fn rejects_non_finite_numbers() {
        for (field, value) in [
            ("price", r#""NaN""#),
            ("high", r#""inf""#),
            ("change", r#""-infinity""#),
            ("volume", r#""-inf""#),
        ] {
            assert_eq!(
                rejected(&seed_with(field, Some(value))),
                Rejection::NonFinite { field },
                "{field}={value}"
            );
        }
        // A decimal beyond a double is a number, just out of range (see `range.rs`).
        for (field, value) in [("change_percent", "1e400"), ("volume", "-1e400")] {
            assert_eq!(
                rejected(&seed_with(field, Some(value))).code(),
                "out_of_range",
                "{field}={value}"
            );
        }
    }

    #[test]
    fn rejects_non_positive_prices() {
        for field in ["price", "open", "high", "low", "previous_close"] {
            for (value, x) in [
                ("0", 0.0),
                ("-0.0", -0.0),
                ("-1.5", -1.5),
                (r#""-2""#, -2.0),
            ] {
                assert_eq!(
                    rejected(&seed_with(field, Some(value))),
                    Rejection::NonPositive { field, value: x }
                );
            }
        }
        // Change fields are signed.
        let tick = decode(&seed_with("change", Some("-3"))).unwrap();
        assert_eq!(tick.change, Some(-3.0));
    }

    #[test]
    fn rejects_negative_volume() {
        assert_eq!(
            rejected(&seed_with("volume", Some("-1"))),
            Rejection::NegativeVolume { value: -1.0 }
        );
        assert_eq!(
            decode(&seed_with("volume", Some("0"))).unwrap().volume,
            Some(0.0)
        );
    }

    const INVISIBLE_REASON: &str = "contains invisible or bidirectional formatting characters";

    #[test]
    fn accepts_visible_non_ascii_symbols() {
        for symbol in [
            "7203.T",
            "\u{4e2d}\u{56fd}\u{77f3}\u{6cb9}",
            "\u{20ac}STOXX50",
            "\u{2116}1",
        ] {
            let json = format!(r#"{{"symbol":"{symbol}","price":1,"timestamp":1767364200123}}"#);
            assert_eq!(decode(&json).unwrap().symbol, symbol);
        }
    }

    #[test]
    fn rejects_invalid_symbols() {
        for (value, reason) in [
            (r#""""#, "empty"),
            (r#"" ""#, "contains whitespace or control characters"),
            (r#"" AAPL""#, "contains whitespace or control characters"),
            (r#""AA PL""#, "contains whitespace or control characters"),
            (r#""AAPL\n""#, "contains whitespace or control characters"),
            (
                r#""AAPL\u00a0""#,
                "contains whitespace or control characters",
            ),
            (
                r#""AAPL\u0000""#,
                "contains whitespace or control characters",
            ),
            (r#""AA\u202ePL""#, INVISIBLE_REASON),
            ("\"AA\u{202e}PL\"", INVISIBLE_REASON),
            ("\"\u{2066}AAPL\u{2069}\"", INVISIBLE_REASON),
            ("\"AAPL\u{200b}\"", INVISIBLE_REASON),
            ("\"AA\u{200d}PL\"", INVISIBLE_REASON),
            ("\"\u{feff}AAPL\"", INVISIBLE_REASON),
            ("\"AAPL\u{fe0f}\"", INVISIBLE_REASON),
            ("\"AAPL\u{e0041}\"", INVISIBLE_REASON),
            ("\"AA\u{ad}PL\"", INVISIBLE_REASON),
            ("\"\u{3164}\"", INVISIBLE_REASON),
        ] {
            assert_eq!(
                rejected(&seed_with("symbol", Some(value))),
                Rejection::InvalidSymbol { reason },
                "{value}"
            );
        }
        let long = format!(r#""{}""#, "A".repeat(MAX_SYMBOL_BYTES + 1));
        assert_eq!(
            rejected(&seed_with("symbol", Some(&long))),
            Rejection::InvalidSymbol {
                reason: "longer than 32 bytes"
            }
        );
    }
}
