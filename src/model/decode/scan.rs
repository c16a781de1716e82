//! The fast parser: the flat objects producers send, read in one pass straight into a [`Tick`].
//!
//! In: a record's bytes. Out: the tick, or `None` for anything else, valid or not, which
//! `general.rs` then decides on.

use std::borrow::Cow;

use super::DecodeLimits;
use super::field::Field;
use super::timestamp::event_time_ms;
use super::validate::validate_symbol;
use super::value::{Number, Scalar, scan_number};
use crate::model::tick::Tick;

/// Decodes the shape producers actually send, a flat object of numbers, plain strings, booleans
/// and nulls, straight into a [`Tick`] in one pass, with less than half the work of
/// [`parse_general`] and without its intermediate values.
///
/// Returns `None` for anything else, valid or not (escapes, nested values, invalid UTF-8 or
/// JSON), and for every record that would be rejected: [`parse_general`] then decides, and
/// gives the reason. So this parser only has to be right about what it accepts, which property
/// tests check.
///
/// [`parse_general`]: super::general::parse_general
pub(super) fn decode_fast(data: &[u8], limits: &DecodeLimits) -> Option<Tick> {
    let mut scan = Scanner {
        // Every record is checked, so the wider check pays: simdutf8 reads 32 bytes at a time.
        text: simdutf8::basic::from_utf8(data).ok()?,
        at: 0,
    };
    let mut seen = 0_u16;
    let mut symbol = None;
    let mut event_time = None;
    let mut numbers = [None; Field::COUNT];
    scan.expect(b'{')?;
    if !scan.accept(b'}') {
        loop {
            let field = scan.key()?;
            scan.expect(b':')?;
            let value = scan.value()?;
            if let Some(field) = field {
                let bit = 1 << field as u16;
                if seen & bit != 0 {
                    return None;
                }
                seen |= bit;
                match (field, value) {
                    (_, Scalar::Null) => {}
                    (Field::Symbol, value) => symbol = Some(validate_symbol(value).ok()?),
                    (Field::Timestamp, value) => event_time = Some(event_time_ms(value).ok()?),
                    (field, value) => numbers[field as usize] = Some(field.number(value)?.ok()?),
                }
            }
            if !scan.accept(b',') {
                scan.expect(b'}')?;
                break;
            }
        }
    }
    scan.skip_space();
    if scan.at != data.len() {
        return None;
    }
    let event_time_ms = event_time
        .filter(|ms| (limits.min_event_time_ms..=limits.max_event_time_ms).contains(ms))?;
    let number = |field: Field| numbers[field as usize];
    Some(Tick {
        symbol: symbol?,
        price: number(Field::Price)?,
        event_time_ms,
        open: number(Field::Open),
        high: number(Field::High),
        low: number(Field::Low),
        previous_close: number(Field::PreviousClose),
        change: number(Field::Change),
        change_percent: number(Field::ChangePercent),
        volume: number(Field::Volume),
    })
}

/// A cursor over a record for [`decode_fast`]; every method returns `None` where it gives up.
struct Scanner<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn skip_space(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.at += 1;
        }
    }

    /// Skips white space, then takes `byte` if it comes next.
    fn accept(&mut self, byte: u8) -> bool {
        self.skip_space();
        let found = self.peek() == Some(byte);
        self.at += usize::from(found);
        found
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.accept(byte).then_some(())
    }

    /// An object key, telling ours from the rest. Ours are compared in place, a few times
    /// cheaper than finding the end of the string and then matching it.
    fn key(&mut self) -> Option<Option<Field>> {
        self.skip_space();
        let rest = &self.text.as_bytes()[self.at..];
        if let Some(field) = rest.strip_prefix(b"\"").and_then(Field::quoted_prefix) {
            self.at += field.name().len() + 2;
            return Some(Some(field));
        }
        self.string().map(Field::from_key)
    }

    /// A string without escapes or control characters (JSON forbids the latter unescaped).
    fn string(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let start = self.at;
        let len = string_end(&self.text.as_bytes()[start..])?;
        self.at = start + len + 1;
        (self.text.as_bytes()[start + len] == b'"').then(|| &self.text[start..start + len])
    }

    fn number(&mut self) -> Option<Number<'a>> {
        let (len, value) = scan_number(&self.text.as_bytes()[self.at..])?;
        let text = &self.text[self.at..self.at + len];
        self.at += len;
        Some(Number { text, value })
    }

    fn literal(&mut self, word: &str, value: Scalar<'a>) -> Option<Scalar<'a>> {
        self.text[self.at..].starts_with(word).then(|| {
            self.at += word.len();
            value
        })
    }

    /// A scalar value; what follows it is checked by the caller.
    fn value(&mut self) -> Option<Scalar<'a>> {
        self.skip_space();
        match self.peek()? {
            b'"' => self.string().map(|s| Scalar::Str(Cow::Borrowed(s))),
            b'-' | b'0'..=b'9' => self.number().map(Scalar::Number),
            b't' => self.literal("true", Scalar::Bool),
            b'f' => self.literal("false", Scalar::Bool),
            b'n' => self.literal("null", Scalar::Null),
            _ => None,
        }
    }
}

/// Index of the first `"`, `\` or control character in `bytes`, eight bytes at a time.
fn string_end(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // Flags the bytes below `n` (n <= 128). The lowest flag is always right; borrows can only add
    // false flags above a true one, so the lowest flag of an `|` of such masks is the first match.
    let below = |word: u64, n: u8| word.wrapping_sub(ONES * u64::from(n)) & !word & HIGHS;
    let mut chunks = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("chunk of 8"));
        let hits = below(word ^ (ONES * u64::from(b'"')), 1)
            | below(word ^ (ONES * u64::from(b'\\')), 1)
            | below(word, 0x20);
        if hits != 0 {
            return Some(offset + hits.trailing_zeros() as usize / 8);
        }
        offset += 8;
    }
    let tail = chunks.remainder();
    let at = tail
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
    Some(offset + at)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::model::decode::testing::{SEED, arb_record, decode, decode_both};

    #[test]
    fn fast_parser_leaves_every_rejection_to_the_general_one() {
        let cases = [
            SEED.replace("187.23", "-187.23"),
            SEED.replace("1250", "-1"),
            SEED.replace("\"AAPL\"", "\"\""),
            SEED.replace("\"AAPL\"", "null"),
            SEED.replace("2026-01-02", "1970-01-02"),
            SEED.replace("\"low\"", "\"open\""),
            SEED.replace("1.1507", "\"NaN\""),
            SEED.replace("186.9", "true"),
        ];
        for json in cases {
            let (fast, general) = decode_both(json.as_bytes());
            assert_eq!(fast, None, "{json}");
            assert!(general.is_err(), "{json}");
        }
        assert_eq!(decode_both(SEED.as_bytes()).0, Some(decode(SEED).unwrap()));
    }

    proptest! {
        #[test]
        fn fast_parser_agrees_with_serde_json(json in arb_record()) {
            let (fast, general) = decode_both(json.as_bytes());
            if let Some(fast) = fast {
                prop_assert_eq!(Ok(fast), general, "{}", json);
            }
        }

        #[test]
        fn fast_parser_agrees_on_damaged_records(
            json in arb_record(),
            cut in any::<prop::sample::Index>(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
        ) {
            let mut data = json.into_bytes();
            for (at, byte) in flips {
                let at = at.index(data.len());
                data[at] = byte;
            }
            data.truncate(cut.index(data.len() + 1));
            let (fast, general) = decode_both(&data);
            if let Some(fast) = fast {
                prop_assert_eq!(Ok(fast), general, "{}", String::from_utf8_lossy(&data));
            }
        }

        #[test]
        fn string_end_finds_the_first_stop(
            bytes in proptest::collection::vec(
                prop_oneof![4 => 0x20_u8..0x7f, 1 => any::<u8>(), 1 => Just(b'"'), 1 => Just(b'\\')],
                0..40,
            ),
        ) {
            let naive = bytes.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20);
            prop_assert_eq!(string_end(&bytes), naive);
        }
    }
}
