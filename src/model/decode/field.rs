//! The fields of a tick record this decoder knows, how their keys are recognised, and the checks
//! every value of a numeric field passes.
//!
//! In: a key, or a value read by either parser. Out: the [`Field`], or the field's number (or
//! the [`Rejection`] that says why it is not one).

use super::Rejection;
use super::range::{
    CHANGE_MAGNITUDES, CHANGE_PERCENT_MAGNITUDES, Magnitudes, PRICE_MAGNITUDES, VOLUME_MAGNITUDES,
    lost_in_reading, out_of_range, within,
};
use super::value::{Number, Scalar};

/// What a numeric field must hold, as a [`Rejection::WrongType`] says it.
pub(super) const EXPECTED_NUMBER: &str = "a number or a numeric string";

/// The fields this decoder knows; everything else is skipped unparsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    Symbol,
    Price,
    Timestamp,
    Open,
    High,
    Low,
    PreviousClose,
    Change,
    ChangePercent,
    Volume,
}

impl Field {
    pub(super) const COUNT: usize = 10;

    pub(super) fn from_key(key: &str) -> Option<Self> {
        Some(match key {
            "symbol" => Self::Symbol,
            "price" => Self::Price,
            "timestamp" => Self::Timestamp,
            "open" => Self::Open,
            "high" => Self::High,
            "low" => Self::Low,
            "previous_close" => Self::PreviousClose,
            "change" => Self::Change,
            "change_percent" => Self::ChangePercent,
            "volume" => Self::Volume,
            _ => return None,
        })
    }

    /// The field whose name, followed by a closing quote, starts `text`.
    pub(super) fn quoted_prefix(text: &[u8]) -> Option<Self> {
        // Fixed-length comparisons compile to a few loads; a slice comparison calls memcmp.
        fn named<const N: usize>(text: &[u8], quoted: &[u8; N], field: Field) -> Option<Field> {
            (text.first_chunk::<N>() == Some(quoted)).then_some(field)
        }
        match (text.first()?, text.get(2)) {
            (b's', _) => named(text, b"symbol\"", Self::Symbol),
            (b'p', Some(b'i')) => named(text, b"price\"", Self::Price),
            (b'p', _) => named(text, b"previous_close\"", Self::PreviousClose),
            (b't', _) => named(text, b"timestamp\"", Self::Timestamp),
            (b'o', _) => named(text, b"open\"", Self::Open),
            (b'h', _) => named(text, b"high\"", Self::High),
            (b'l', _) => named(text, b"low\"", Self::Low),
            (b'c', _) if text.get(6) == Some(&b'_') => {
                named(text, b"change_percent\"", Self::ChangePercent)
            }
            (b'c', _) => named(text, b"change\"", Self::Change),
            (b'v', _) => named(text, b"volume\"", Self::Volume),
            _ => None,
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Symbol => "symbol",
            Self::Price => "price",
            Self::Timestamp => "timestamp",
            Self::Open => "open",
            Self::High => "high",
            Self::Low => "low",
            Self::PreviousClose => "previous_close",
            Self::Change => "change",
            Self::ChangePercent => "change_percent",
            Self::Volume => "volume",
        }
    }

    /// A numeric field's value as a number that passes the field's check, or why it does not;
    /// `None` for the symbol and the timestamp. Inlined: the fast parser calls it for every
    /// number.
    #[inline(always)]
    pub(super) fn number(self, value: Scalar<'_>) -> Option<Result<f64, Rejection>> {
        if matches!(self, Self::Symbol | Self::Timestamp) {
            return None;
        }
        let x = match value {
            // What producers send, handled here so that the hot path inlines it.
            Scalar::Number(Number { value: Some(x), .. }) => x,
            value => match json_number(self, value) {
                Ok(x) => x,
                Err(rejection) => return Some(Err(rejection)),
            },
        };
        Some(self.check(x))
    }

    /// `x` if it is a valid value of this numeric field: finite, of the sign the field allows,
    /// and 0 or within the field's range (`range.rs`); `-0` comes back as `+0`.
    #[inline]
    pub(super) fn check(self, x: f64) -> Result<f64, Rejection> {
        let field = self.name();
        if !x.is_finite() {
            return Err(Rejection::NonFinite { field });
        }
        match self {
            Self::Price | Self::Open | Self::High | Self::Low | Self::PreviousClose if x <= 0.0 => {
                return Err(Rejection::NonPositive { field, value: x });
            }
            // `-0.0` passes, as 0: rejecting it would only punish a formatting quirk.
            Self::Volume if x < 0.0 => return Err(Rejection::NegativeVolume { value: x }),
            _ => {}
        }
        match self.magnitudes() {
            Some(bounds) => within(field, x, bounds),
            None => Ok(x),
        }
    }

    /// The range of this numeric field's values (`None` for the symbol and the timestamp).
    pub(super) fn magnitudes(self) -> Option<Magnitudes> {
        match self {
            Self::Price | Self::Open | Self::High | Self::Low | Self::PreviousClose => {
                Some(PRICE_MAGNITUDES)
            }
            Self::Volume => Some(VOLUME_MAGNITUDES),
            Self::Change => Some(CHANGE_MAGNITUDES),
            Self::ChangePercent => Some(CHANGE_PERCENT_MAGNITUDES),
            Self::Symbol | Self::Timestamp => None,
        }
    }
}

/// The number a JSON number or a numeric string holds. Beyond-f64 numbers read as infinite and
/// strings may say `NaN` or `inf`: [`Field::check`] refuses those. A decimal that reading as a
/// double would turn into infinity or 0 is out of range here, while its text is at hand.
fn json_number(field: Field, value: Scalar<'_>) -> Result<f64, Rejection> {
    let not_a_number = |found| Rejection::WrongType {
        field: field.name(),
        expected: EXPECTED_NUMBER,
        found,
    };
    let text_number = |number: Number<'_>, found| {
        let x = number.to_f64().ok_or(not_a_number(found))?;
        match field.magnitudes() {
            Some(bounds) if lost_in_reading(number.text, x) => {
                Err(out_of_range(field.name(), number.text.to_owned(), bounds))
            }
            _ => Ok(x),
        }
    };
    match value {
        Scalar::Number(n) => text_number(n, "a malformed number"),
        Scalar::Str(text) => text_number(Number::new(&text), "a non-numeric string"),
        Scalar::Float(x) => Ok(x),
        // `as` rounds to nearest, which is what parsing the same digits as a float would give.
        Scalar::UInt(u) => Ok(u as f64),
        Scalar::Int(i) => Ok(i as f64),
        other => Err(not_a_number(other.kind())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_names_are_the_field_names() {
        let fields = [
            Field::Symbol,
            Field::Price,
            Field::Timestamp,
            Field::Open,
            Field::High,
            Field::Low,
            Field::PreviousClose,
            Field::Change,
            Field::ChangePercent,
            Field::Volume,
        ];
        assert_eq!(fields.len(), Field::COUNT);
        for field in fields {
            let quoted = format!("{}\"", field.name());
            assert_eq!(
                Field::quoted_prefix(quoted.as_bytes()),
                Some(field),
                "{quoted}"
            );
            assert_eq!(Field::from_key(field.name()), Some(field));
            // A longer key that starts with the name is not the field.
            let longer = format!("{}x\"", field.name());
            assert_eq!(Field::quoted_prefix(longer.as_bytes()), None, "{longer}");
        }
    }
}
