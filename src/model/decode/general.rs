//! The general parser: any record, through serde_json. The reference the fast parser is tested
//! against, and the one that names the reason when a record is refused.
//!
//! In: a record's bytes. Out: its known fields as sent (a [`RawTick`]), for `validate.rs` to
//! check, or the [`Rejection`] of a record that is not a JSON object.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::Rejection;
use super::field::Field;
use super::validate::RawTick;
use super::value::{Number, Scalar};

/// Parses any record with serde_json; the reference for [`decode_fast`](super::scan::decode_fast).
#[cold]
pub(super) fn parse_general(data: &[u8]) -> Result<RawTick<'_>, Rejection> {
    // JSON text is UTF-8 throughout, but serde_json checks only the strings it reads, not those
    // it skips (an unknown field's key or value).
    if let Err(error) = simdutf8::compat::from_utf8(data) {
        return Err(Rejection::MalformedJson {
            message: format!("invalid UTF-8 at byte {}", error.valid_up_to()),
        });
    }
    let mut de = serde_json::Deserializer::from_slice(data);
    let parsed = RawTickSeed { record: data }
        .deserialize(&mut de)
        .and_then(|raw| de.end().map(|()| raw));
    parsed.map_err(|err| parse_rejection(data, &err))
}

/// Explains a parse failure. Off the hot path, so it may parse the record a second time.
#[cold]
fn parse_rejection(data: &[u8], err: &serde_json::Error) -> Rejection {
    let first = data
        .iter()
        .find(|b| !matches!(b, b' ' | b'\n' | b'\r' | b'\t'));
    let found = match first {
        Some(b'[') => Some("array"),
        Some(b'"') => Some("string"),
        Some(b't' | b'f') => Some("boolean"),
        Some(b'n') => Some("null"),
        Some(b'-' | b'0'..=b'9') => Some("number"),
        _ => None,
    };
    if let Some(found) = found
        && serde_json::from_slice::<IgnoredAny>(data).is_ok()
    {
        return Rejection::NotAnObject { found };
    }
    Rejection::MalformedJson {
        message: err.to_string(),
    }
}

/// Parses `record` into a [`RawTick`].
struct RawTickSeed<'de> {
    record: &'de [u8],
}

impl<'de> DeserializeSeed<'de> for RawTickSeed<'de> {
    type Value = RawTick<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RawTickSeed<'de> {
    type Value = RawTick<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut raw = RawTick::default();
        let record = self.record;
        while let Some(key) = map.next_key_seed(KeySeed { record })? {
            let Some(field) = key.field else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let value = match key.end.and_then(|end| number_text(record, end)) {
                Some(text) => {
                    map.next_value::<IgnoredAny>()?;
                    Scalar::Number(Number::new(text))
                }
                None => map.next_value::<Scalar<'de>>()?,
            };
            raw.set(field, value);
        }
        Ok(raw)
    }
}

/// An object key: one of ours or anything else, and where its closing quote sits in the record
/// (known unless the key had escapes).
struct Key {
    field: Option<Field>,
    end: Option<usize>,
}

/// Reads an object key of `record`.
struct KeySeed<'de> {
    record: &'de [u8],
}

impl<'de> DeserializeSeed<'de> for KeySeed<'de> {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'de> {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    // An unescaped key is a slice of the record itself, which locates the value that follows it.
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key, E> {
        let end = (v.as_ptr() as usize)
            .checked_sub(self.record.as_ptr() as usize)
            .map(|start| start + v.len())
            .filter(|&end| self.record.get(end) == Some(&b'"'));
        Ok(Key {
            field: Field::from_key(v),
            end,
        })
    }

    fn visit_str<E>(self, v: &str) -> Result<Key, E> {
        Ok(Key {
            field: Field::from_key(v),
            end: None,
        })
    }
}

/// The text of the JSON number that follows the key whose closing quote is at `key_end`, if the
/// value there is a number.
///
/// serde_json (without its `float_roundtrip` feature) rounds numbers of more than 15 significant
/// digits by up to 2 ulp, such as the 17-digit `change` values Python computes. So numbers are
/// taken from the record's text, and serde_json only skips them (still checking their syntax).
pub(super) fn number_text(record: &[u8], key_end: usize) -> Option<&str> {
    let is_space = |b: &u8| matches!(b, b' ' | b'\n' | b'\r' | b'\t');
    let rest = record.get(key_end + 1..)?;
    let rest = &rest[rest.iter().position(|b| !is_space(b))?..];
    let rest = rest.strip_prefix(b":")?;
    let rest = &rest[rest.iter().position(|b| !is_space(b))?..];
    if !matches!(rest.first()?, b'-' | b'0'..=b'9') {
        return None;
    }
    let len = rest
        .iter()
        .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
        .unwrap_or(rest.len());
    std::str::from_utf8(&rest[..len]).ok()
}

impl<'de> de::Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Bool)
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Int(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Scalar::UInt(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Scalar::Float(v))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }

    // Strings with escapes arrive unescaped in serde_json's scratch buffer and must be copied.
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v)))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Array)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::decode::testing::{SEED_MS, decode, rejected};
    use crate::model::decode::{DecodeLimits, decode_tick};

    #[test]
    fn numbers_after_escaped_keys_still_decode() {
        // The one place where serde_json converts numbers itself.
        let tick = decode(
            r#"{"symbol":"X","pri\u0063e":187.23,"ch\u0061nge":-2,"volume":1,"vol\u0075me":2,"timestamp":1767364200123}"#,
        );
        assert_eq!(tick, Err(Rejection::DuplicateField { field: "volume" }));
        let tick = decode(
            r#"{"symbol":"X","pri\u0063e":187.23,"ch\u0061nge":-2,"volum\u0065":999999999999999,"timest\u0061mp":1767364200123}"#,
        )
        .unwrap();
        assert_eq!(tick.price, 187.23);
        assert_eq!(tick.change, Some(-2.0));
        assert_eq!(tick.volume, Some(999_999_999_999_999.0));
        assert_eq!(tick.event_time_ms, SEED_MS);
        // Numbers read by serde_json pass the same range check.
        let json = r#"{"symbol":"X","price":1,"volum\u0065":18446744073709551615,"timestamp":1767364200123}"#;
        assert_eq!(rejected(json).code(), "out_of_range");
        let json = r#"{"symbol":"X","pric\u0065":1e-200,"timestamp":1767364200123}"#;
        assert_eq!(rejected(json).code(), "out_of_range");
        let json = r#"{"symbol":"X","price":1,"timest\u0061mp":1767364200123.0}"#;
        assert_eq!(decode(json).unwrap().event_time_ms, SEED_MS);
        let json = r#"{"symbol":"X","price":1,"timest\u0061mp":18446744073709551615}"#;
        assert_eq!(rejected(json).code(), "timestamp_unparseable");
    }

    #[test]
    fn unescapes_strings_and_keys() {
        let tick = decode(r#"{"symbol":"BRK\u002eB","pri\u0063e":"1\u002e5","timestamp":"2026-01-02T14:30:00.123\u005a"}"#)
            .unwrap();
        assert_eq!(tick.symbol, "BRK.B");
        assert_eq!(tick.price, 1.5);
        assert_eq!(tick.event_time_ms, SEED_MS);
    }

    #[test]
    fn ignores_unknown_fields() {
        let tick = decode(
            r#"{"exchange":"NMS","symbol":"X","nested":{"a":[1,{"b":null}],"huge":1e999},"price":2,"timestamp":1767364200123,"currency":"USD"}"#,
        )
        .unwrap();
        assert_eq!((tick.symbol.as_str(), tick.price), ("X", 2.0));
    }

    #[test]
    fn rejects_malformed_json_with_serdes_message() {
        for json in [
            "",
            "{",
            r#"{"symbol":"X","price":1,"timestamp":1767364200123"#,
            r#"{"symbol":"X","price":1,"timestamp":1767364200123} x"#,
            r#"{"symbol":"X","price":NaN,"timestamp":1767364200123}"#,
            r#"{"symbol":"X",}"#,
            r#"{"symbol":"X","price":01,"timestamp":1767364200123}"#,
        ] {
            let rejection = rejected(json);
            assert_eq!(rejection.code(), "malformed_json", "{json}");
            assert!(
                rejection.to_string().contains("line 1 column"),
                "{rejection}"
            );
        }
        let invalid_utf8 = b"{\"symbol\":\"\xff\",\"price\":1,\"timestamp\":1767364200123}";
        let rejection = decode_tick(invalid_utf8, &DecodeLimits::default()).unwrap_err();
        assert_eq!(rejection.code(), "malformed_json");
    }

    #[test]
    fn rejects_invalid_utf8_where_nothing_reads_it() {
        // In an unknown field's key and value, and in a nested string: serde_json alone skips
        // these without a look.
        for data in [
            &b"{\"symbol\":\"X\",\"price\":1,\"timestamp\":1767364200123,\"note\":\"\xff\"}"[..],
            b"{\"symbol\":\"X\",\"price\":1,\"timestamp\":1767364200123,\"\xc0\xaf\":1}",
            b"{\"symbol\":\"X\",\"price\":1,\"timestamp\":1767364200123,\"m\":[{\"\xed\xa0\x80\":[]}]}",
            b"[\"\xff\"]",
        ] {
            let rejection = decode_tick(data, &DecodeLimits::default()).unwrap_err();
            assert_eq!(rejection.code(), "malformed_json", "{rejection}");
            assert!(rejection.to_string().contains("invalid UTF-8 at byte"), "{rejection}");
        }
    }

    #[test]
    fn rejects_json_that_is_not_an_object() {
        for (json, found) in [
            ("[1,2]", "array"),
            (r#" "AAPL""#, "string"),
            ("187.23", "number"),
            ("-1", "number"),
            ("true", "boolean"),
            ("null", "null"),
        ] {
            assert_eq!(rejected(json), Rejection::NotAnObject { found }, "{json}");
        }
        // Not valid JSON either: syntax wins.
        assert_eq!(rejected("[1,").code(), "malformed_json");
    }
}
