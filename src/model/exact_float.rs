//! Bit-exact snapshot encoding of `f64`: the window, rule and bar state of a symbol goes through
//! it, so a restored shard computes the same values, bit for bit, as if it had never stopped.
//!
//! Binary formats (the snapshot's CBOR) write the float itself. serde_json without its
//! `float_roundtrip` feature may read a 17-digit float back one ulp off, and a running sum one
//! ulp off would make a restored shard compute different values. In text formats, state floats
//! are therefore written as a string holding the shortest decimal that round-trips, and read back
//! with the standard library's correctly rounded parser; NaN and infinities survive too. Plain
//! numbers are accepted on input.
//!
//! Importers bring it in as `exact` and put `#[serde(with = "exact")]` on `f64` fields,
//! `exact::option` on `Option<f64>` and `exact::vec` on `Vec<f64>` ones; a window's columns go
//! out through [`FloatColumn`] and come back as [`FloatValues`].

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// An `f64` that serializes bit-exactly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Exact(pub f64);

/// Room for the longest text [`shortest`] writes (`-2.2250738585072014e-308`, or 17 digits
/// and up to 7 zeros in plain notation).
#[derive(Default)]
struct Text {
    bytes: [u8; 32],
    len: usize,
}

impl Text {
    fn push(&mut self, bytes: &[u8]) {
        self.bytes[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    fn as_str(&self) -> &str {
        // Only ASCII is ever pushed.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

/// The shortest decimal that reads back as `value` (ryu's digits), in plain or scientific
/// notation, whichever is shorter: returns are often around 1e-5, where plain notation
/// spends four zeros. Non-finite values as `NaN`, `inf`, `-inf`, which `str::parse` reads.
fn shortest(value: f64, out: &mut Text) {
    let mut buffer = ryu::Buffer::new();
    let text = buffer.format(value).as_bytes();
    if !value.is_finite() {
        return out.push(text);
    }
    let (sign, text) = match text.split_first() {
        Some((b'-', rest)) => (&b"-"[..], rest),
        _ => (&b""[..], text),
    };
    // ryu writes `int.frac` or `d.ddde-x`: gather the digits and the decimal exponent of
    // the first one.
    let (mantissa, exponent) = match text.iter().position(|&b| b == b'e') {
        Some(e) => (&text[..e], parse_exponent(&text[e + 1..])),
        None => (text, 0),
    };
    let point = mantissa
        .iter()
        .position(|&b| b == b'.')
        .unwrap_or(mantissa.len());
    let mut digits = [0u8; 24];
    let mut count = 0;
    for &b in mantissa.iter().filter(|b| b.is_ascii_digit()) {
        digits[count] = b;
        count += 1;
    }
    let leading = digits[..count].iter().take_while(|&&d| d == b'0').count();
    if leading == count {
        out.push(sign);
        return out.push(b"0");
    }
    let trailing = digits[..count]
        .iter()
        .rev()
        .take_while(|&&d| d == b'0')
        .count();
    let significant = &digits[leading..count - trailing];
    let exponent = exponent + point as i32 - 1 - leading as i32;

    let mut exp_text = itoa::Buffer::new();
    let exp_text = exp_text.format(exponent).as_bytes();
    let fraction = significant.len() - 1;
    let scientific_len = 1 + usize::from(fraction > 0) + fraction + 1 + exp_text.len();
    let plain_len = if exponent < 0 {
        2 + (-exponent - 1) as usize + significant.len()
    } else {
        let whole = exponent as usize + 1;
        whole.max(significant.len()) + usize::from(significant.len() > whole)
    };
    out.push(sign);
    if scientific_len < plain_len {
        out.push(&significant[..1]);
        if fraction > 0 {
            out.push(b".");
            out.push(&significant[1..]);
        }
        out.push(b"e");
        out.push(exp_text);
    } else if exponent < 0 {
        out.push(b"0.");
        for _ in 0..(-exponent - 1) {
            out.push(b"0");
        }
        out.push(significant);
    } else {
        let whole = exponent as usize + 1;
        if significant.len() > whole {
            out.push(&significant[..whole]);
            out.push(b".");
            out.push(&significant[whole..]);
        } else {
            out.push(significant);
            for _ in significant.len()..whole {
                out.push(b"0");
            }
        }
    }
}

fn parse_exponent(text: &[u8]) -> i32 {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let magnitude = digits
        .iter()
        .fold(0i32, |n, &d| n * 10 + i32::from(d - b'0'));
    if negative { -magnitude } else { magnitude }
}

impl Serialize for Exact {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // A binary format (the snapshot's CBOR) holds the float's bits as they are.
        if !serializer.is_human_readable() {
            return serializer.serialize_f64(self.0);
        }
        let mut text = Text::default();
        shortest(self.0, &mut text);
        serializer.serialize_str(text.as_str())
    }
}

impl<'de> Deserialize<'de> for Exact {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ExactVisitor;

        impl Visitor<'_> for ExactVisitor {
            type Value = Exact;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a float, or a string holding one")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Exact, E> {
                v.parse().map(Exact).map_err(E::custom)
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Exact, E> {
                Ok(Exact(v))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Exact, E> {
                Ok(Exact(v as f64))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Exact, E> {
                Ok(Exact(v as f64))
            }
        }

        deserializer.deserialize_any(ExactVisitor)
    }
}

/// `#[serde(with = "exact")]` for `f64` fields.
pub(crate) fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    Exact(*value).serialize(serializer)
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    Ok(Exact::deserialize(deserializer)?.0)
}

/// `#[serde(with = "exact::option")]` for `Option<f64>` fields.
pub(crate) mod option {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        value: &Option<f64>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        value.map(Exact).serialize(serializer)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<f64>, D::Error> {
        Ok(Option::<Exact>::deserialize(deserializer)?.map(|x| x.0))
    }
}

/// A column of optional floats (a window's prices, volumes or returns), written from an
/// iterator. In a binary format (the snapshot's CBOR) it is one byte string of
/// little-endian `f64`s with `None` as NaN, which no stored value is (windows hold finite
/// values only): CBOR would otherwise spend a header and a search for a shorter float on
/// each of the snapshot's hundreds of thousands of values. In a text format it is a
/// sequence of [`Exact`] or null, and sequences are read from both, as earlier versions
/// wrote them.
pub(crate) struct FloatColumn<F>(pub F);

impl<F, I> Serialize for FloatColumn<F>
where
    F: Fn() -> I,
    I: ExactSizeIterator<Item = Option<f64>>,
{
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let values = (self.0)();
        if serializer.is_human_readable() {
            return serializer.collect_seq(values.map(|v| v.map(Exact)));
        }
        let mut bytes = Vec::with_capacity(values.len() * 8);
        for value in values {
            bytes.extend_from_slice(&value.unwrap_or(f64::NAN).to_le_bytes());
        }
        serializer.serialize_bytes(&bytes)
    }
}

/// A [`FloatColumn`] read back.
#[derive(Debug, PartialEq)]
pub(crate) struct FloatValues(pub Vec<Option<f64>>);

impl<'de> Deserialize<'de> for FloatValues {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FloatVisitor;

        impl<'de> Visitor<'de> for FloatVisitor {
            type Value = FloatValues;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sequence of floats, or bytes holding them")
            }

            fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<FloatValues, E> {
                if !bytes.len().is_multiple_of(8) {
                    return Err(E::invalid_length(bytes.len(), &"a multiple of 8 bytes"));
                }
                Ok(FloatValues(
                    bytes
                        .chunks_exact(8)
                        .map(|chunk| {
                            let value = f64::from_le_bytes(chunk.try_into().expect("8 bytes"));
                            (!value.is_nan()).then_some(value)
                        })
                        .collect(),
                ))
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<FloatValues, A::Error> {
                let mut values = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(value) = seq.next_element::<Option<Exact>>()? {
                    values.push(value.map(|x| x.0));
                }
                Ok(FloatValues(values))
            }
        }

        deserializer.deserialize_any(FloatVisitor)
    }
}

/// `#[serde(with = "exact::vec")]` for `Vec<f64>` fields.
pub(crate) mod vec {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        values: &[f64],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(values.iter().map(|&x| Exact(x)))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<f64>, D::Error> {
        Ok(Vec::<Exact>::deserialize(deserializer)?
            .into_iter()
            .map(|x| x.0)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn exact_floats_round_trip_bit_for_bit() {
        let values = [
            0.0,
            -0.0,
            190.01,
            0.1 + 0.2,
            3800.6099999999997,
            5.2630193954348976e-5,
            -8.526512829121202e-14,
            1e300,
            f64::MIN_POSITIVE / 3.0,
            f64::MAX,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ];
        for x in values {
            let json = serde_json::to_string(&Exact(x)).unwrap();
            let back: Exact = serde_json::from_str(&json).unwrap();
            assert_eq!(back.0.to_bits(), x.to_bits(), "{x:e} came back as {json}");
        }
        let text = |x: f64| serde_json::to_string(&Exact(x)).unwrap();
        assert_eq!(text(190.01), r#""190.01""#);
        assert_eq!(text(0.0001), r#""1e-4""#);
        assert_eq!(text(0.01), r#""0.01""#);
        assert_eq!(text(0.001), r#""1e-3""#);
        assert_eq!(text(2.0), r#""2""#);
        assert_eq!(text(-0.0), r#""-0""#);
        assert_eq!(text(1e15), r#""1e15""#);
        assert_eq!(text(123456.0), r#""123456""#);
        assert_eq!(text(1.5e300), r#""1.5e300""#);
        assert_eq!(
            text(-2.2250738585072014e-308),
            r#""-2.2250738585072014e-308""#
        );
        assert_eq!(text(5.2630193954348976e-5), r#""5.2630193954348976e-5""#);
        assert_eq!(serde_json::from_str::<Exact>("2.5").unwrap(), Exact(2.5));
    }

    proptest! {
        #[test]
        fn any_float_round_trips(bits in any::<u64>()) {
            let x = f64::from_bits(bits);
            let json = serde_json::to_string(&Exact(x)).unwrap();
            let back: Exact = serde_json::from_str(&json).unwrap();
            prop_assert!(back.0.to_bits() == x.to_bits() || (x.is_nan() && back.0.is_nan()));
        }
    }
}
