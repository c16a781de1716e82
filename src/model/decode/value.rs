//! A JSON value as sent, kept only as far as validation needs it, and the exact reading of JSON
//! numbers that both parsers share.
//!
//! In: the text of a value in the record. Out: a [`Scalar`], borrowing from the record; for a
//! number, the nearest `f64` to the decimal sent.

use std::borrow::Cow;

/// Any JSON value, kept only as far as validation needs it: numbers and strings borrow from the
/// record (strings are copied only if they had escapes), containers are remembered by kind only.
#[derive(Debug)]
pub(super) enum Scalar<'a> {
    Null,
    Bool,
    Number(Number<'a>),
    /// Numbers already converted by serde_json, which happens only after an escaped key (see
    /// [`number_text`](super::general::number_text)); off by up to 2 ulp when they have more
    /// than 15 digits, and 0 for a decimal too small for a double (one too large is a syntax
    /// error there), which the range check then cannot tell from 0.
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(Cow<'a, str>),
    Array,
    Object,
}

impl Scalar<'_> {
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Bool => "boolean",
            Self::Number(_) | Self::Int(_) | Self::UInt(_) | Self::Float(_) => "number",
            Self::Str(_) => "string",
            Self::Array => "array",
            Self::Object => "object",
        }
    }
}

/// A JSON number as sent, with its value when that was cheap to get exactly.
#[derive(Debug)]
pub(super) struct Number<'a> {
    pub(super) text: &'a str,
    /// Set when [`scan_number`]'s fast path applies; otherwise `text` is parsed on use.
    pub(super) value: Option<f64>,
}

impl<'a> Number<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        let value = match scan_number(text.as_bytes()) {
            Some((len, value)) if len == text.len() => value,
            _ => None,
        };
        Self { text, value }
    }

    /// The double nearest to the number, like `str::parse` (so `None` only for non-numbers).
    pub(super) fn to_f64(&self) -> Option<f64> {
        self.value.or_else(|| self.text.parse().ok())
    }
}

/// Scans a number in JSON's grammar (`-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`) at the start
/// of `bytes`, returning its length and, when Clinger's fast path applies, its exact value.
///
/// The fast path: when the digits, read as an integer, are at most 2^53 and the power of ten is
/// at most 22, both convert to `f64` exactly and one multiplication or division rounds
/// correctly. That covers prices and volumes as producers write them; longer numbers (such as
/// 17-digit computed changes) are left to Rust's parser, which is exact but several times slower.
///
/// Inlined so that the fast parser keeps the result in registers (it runs for every number).
#[inline(always)]
pub(super) fn scan_number(bytes: &[u8]) -> Option<(usize, Option<f64>)> {
    static POW10: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];
    let negative = bytes.first() == Some(&b'-');
    let mut at = usize::from(negative);
    match bytes.get(at..at + 2) {
        // JSON allows no leading zeros.
        Some([b'0', b'0'..=b'9']) => return None,
        _ if !bytes.get(at)?.is_ascii_digit() => return None,
        _ => {}
    }
    // Digits accumulate in `mantissa`, which is only used if there were at most 19 of them.
    let mut mantissa = 0_u64;
    let mut digit_run = |at: &mut usize| {
        let start = *at;
        while let Some(&b) = bytes.get(*at) {
            let d = b.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(d));
            *at += 1;
        }
        *at - start
    };
    let mut digits = digit_run(&mut at);
    let mut fraction_digits = 0;
    if bytes.get(at) == Some(&b'.') {
        at += 1;
        fraction_digits = digit_run(&mut at);
        if fraction_digits == 0 {
            return None;
        }
        digits += fraction_digits;
    }
    let mut exponent = -(fraction_digits as i64);
    if let Some(b'e' | b'E') = bytes.get(at) {
        at += 1;
        let negative_exponent = bytes.get(at) == Some(&b'-');
        at += usize::from(matches!(bytes.get(at), Some(b'-' | b'+')));
        if !bytes.get(at)?.is_ascii_digit() {
            return None;
        }
        let mut e = 0_i64;
        while let Some(&b @ b'0'..=b'9') = bytes.get(at) {
            e = (e * 10 + i64::from(b - b'0')).min(1 << 20);
            at += 1;
        }
        exponent += if negative_exponent { -e } else { e };
    }
    let value = (digits <= 19 && mantissa <= 1 << 53)
        .then(|| POW10.get(exponent.unsigned_abs() as usize))
        .flatten()
        .map(|&power| {
            let magnitude = if exponent < 0 {
                mantissa as f64 / power
            } else {
                mantissa as f64 * power
            };
            if negative { -magnitude } else { magnitude }
        });
    Some((at, value))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde::de::IgnoredAny;

    use super::*;
    use crate::model::decode::testing::{decode, decode_both, number_like};

    #[test]
    fn reads_floats_exactly() {
        // serde_json alone rounds both of these to a neighbouring double.
        for x in [0.300_000_000_000_000_04_f64, 246.330_488_969_330_22] {
            let json = format!(
                r#"{{"symbol":"X","price":{x:?},"change":{x:?},"timestamp":1767364200123}}"#
            );
            let tick = decode(&json).unwrap();
            assert_eq!((tick.price, tick.change), (x, Some(x)), "{json}");
        }
        let spaced = "{ \"symbol\" : \"X\" , \"price\"\n:\t0.30000000000000004 , \"timestamp\" : 1767364200123 }";
        let nested = r#"{"symbol":"X","meta":{"a":[1]},"price":0.30000000000000004,"timestamp":1767364200123}"#;
        for json in [spaced, nested] {
            let (fast, general) = decode_both(json.as_bytes());
            assert_eq!(general.unwrap().price, 0.300_000_000_000_000_04, "{json}");
            assert_eq!(fast.is_some(), json == spaced);
        }
    }

    proptest! {
        #[test]
        fn scan_number_reads_json_numbers_exactly(text in number_like()) {
            let json_ok = serde_json::from_str::<IgnoredAny>(&text).is_ok();
            let scanned = scan_number(text.as_bytes());
            prop_assert_eq!(json_ok, matches!(scanned, Some((len, _)) if len == text.len()), "{}", text);
            if let Some((len, Some(x))) = scanned {
                prop_assert_eq!(Some(x), text[..len].parse::<f64>().ok(), "{}", text);
            }
            prop_assert_eq!(Number::new(&text).to_f64(), text.parse::<f64>().ok(), "{}", text);
        }

        #[test]
        fn scan_number_round_trips_doubles(x in any::<f64>().prop_filter("finite", |x| x.is_finite())) {
            for text in [serde_json::to_string(&x).unwrap(), format!("{x:e}"), x.to_string()] {
                prop_assert_eq!(Number::new(&text).to_f64(), Some(x), "{}", text);
            }
        }
    }
}
