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
//! This is the hot path of every shard, so there are two parsers. `decode_fast` reads the flat
//! objects producers send in one pass, straight into a [`Tick`]; anything it does not recognise
//! or would reject (escapes, nested values, invalid input, a bad field) goes to `parse_general`,
//! built on serde_json, which is the reference and names the reason: property tests check that
//! the fast one never accepts more or decodes differently. Both read
//! numbers exactly (the nearest `f64` to the decimal sent), which serde_json alone does not
//! without its `float_roundtrip` feature.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::tick::{Symbol, Tick};

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
/// When a record has several problems, the first one found is reported: size, then JSON syntax,
/// then duplicates, then fields in the order symbol, price, timestamp (presence first, then
/// value), open, high, low, previous_close, change, change_percent, volume.
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
    /// A number is NaN or infinite (a numeric string such as `"NaN"`, or a number beyond `f64`).
    #[error("field `{field}` is not a finite number")]
    NonFinite { field: &'static str },
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
            Self::NonPositive { .. } => "non_positive",
            Self::NegativeVolume { .. } => "negative_volume",
            Self::TimestampUnparseable { .. } => "timestamp_unparseable",
            Self::TimestampOutOfRange { .. } => "timestamp_out_of_range",
            Self::InvalidSymbol { .. } => "invalid_symbol",
        }
    }
}

/// Decodes and validates one record.
pub fn decode_tick(data: &[u8], limits: &DecodeLimits) -> Result<Tick, Rejection> {
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

// ---------------------------------------------------------------------------------------------
// The record as sent

/// The fields this decoder knows; everything else is skipped unparsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
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
    const COUNT: usize = 10;

    fn from_key(key: &str) -> Option<Self> {
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
    fn quoted_prefix(text: &[u8]) -> Option<Self> {
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

    fn name(self) -> &'static str {
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
    fn number(self, value: Scalar<'_>) -> Option<Result<f64, Rejection>> {
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

    /// `x` if it is a valid value of this numeric field.
    #[inline]
    fn check(self, x: f64) -> Result<f64, Rejection> {
        let field = self.name();
        if !x.is_finite() {
            return Err(Rejection::NonFinite { field });
        }
        match self {
            Self::Price | Self::Open | Self::High | Self::Low | Self::PreviousClose if x <= 0.0 => {
                Err(Rejection::NonPositive { field, value: x })
            }
            // `-0.0` passes: it is zero, and rejecting it would only punish a formatting quirk.
            Self::Volume if x < 0.0 => Err(Rejection::NegativeVolume { value: x }),
            _ => Ok(x),
        }
    }
}

/// Any JSON value, kept only as far as validation needs it: numbers and strings borrow from the
/// record (strings are copied only if they had escapes), containers are remembered by kind only.
#[derive(Debug)]
enum Scalar<'a> {
    Null,
    Bool,
    Number(Number<'a>),
    /// Numbers already converted by serde_json, which happens only after an escaped key (see
    /// [`number_text`]); off by up to 2 ulp when they have more than 15 digits.
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(Cow<'a, str>),
    Array,
    Object,
}

impl Scalar<'_> {
    fn kind(&self) -> &'static str {
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
struct Number<'a> {
    text: &'a str,
    /// Set when [`scan_number`]'s fast path applies; otherwise `text` is parsed on use.
    value: Option<f64>,
}

impl<'a> Number<'a> {
    fn new(text: &'a str) -> Self {
        let value = match scan_number(text.as_bytes()) {
            Some((len, value)) if len == text.len() => value,
            _ => None,
        };
        Self { text, value }
    }

    /// The double nearest to the number, like `str::parse` (so `None` only for non-numbers).
    fn to_f64(&self) -> Option<f64> {
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
fn scan_number(bytes: &[u8]) -> Option<(usize, Option<f64>)> {
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

/// The record's known fields as sent, before any validation.
#[derive(Debug, Default)]
struct RawTick<'a> {
    values: [Option<Scalar<'a>>; Field::COUNT],
    /// First known field seen twice; reported only if the whole record is valid JSON.
    duplicate: Option<Field>,
}

impl<'a> RawTick<'a> {
    fn set(&mut self, field: Field, value: Scalar<'a>) {
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

    fn validate(&mut self, limits: &DecodeLimits) -> Result<Tick, Rejection> {
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

// ---------------------------------------------------------------------------------------------
// The fast parser

/// Decodes the shape producers actually send, a flat object of numbers, plain strings, booleans
/// and nulls, straight into a [`Tick`] in one pass, with less than half the work of
/// [`parse_general`] and without its intermediate values.
///
/// Returns `None` for anything else, valid or not (escapes, nested values, invalid UTF-8 or
/// JSON), and for every record that would be rejected: [`parse_general`] then decides, and
/// gives the reason. So this parser only has to be right about what it accepts, which property
/// tests check.
fn decode_fast(data: &[u8], limits: &DecodeLimits) -> Option<Tick> {
    let mut scan = Scanner {
        // simdutf8 checks 32 bytes at a time; `std`'s check was 1.5 % of the demo's CPU.
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

// ---------------------------------------------------------------------------------------------
// The general parser

/// Parses any record with serde_json; the reference for [`decode_fast`].
#[cold]
fn parse_general(data: &[u8]) -> Result<RawTick<'_>, Rejection> {
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
fn number_text(record: &[u8], key_end: usize) -> Option<&str> {
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

// ---------------------------------------------------------------------------------------------
// Field checks

const EXPECTED_NUMBER: &str = "a number or a numeric string";
const EXPECTED_TIMESTAMP: &str = "an RFC 3339 string or integer epoch milliseconds";

fn validate_symbol(value: Scalar<'_>) -> Result<Symbol, Rejection> {
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
    } else if !text.bytes().all(|b| b.is_ascii_graphic())
        && text.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        "contains whitespace or control characters"
    } else {
        return Ok(Symbol::new(&text));
    };
    Err(Rejection::InvalidSymbol { reason })
}

/// The number a JSON number or a numeric string holds (beyond-f64 numbers are infinite, and
/// strings may say `NaN` or `inf`: [`Field::check`] refuses those).
fn json_number(field: Field, value: Scalar<'_>) -> Result<f64, Rejection> {
    let not_a_number = |found| Rejection::WrongType {
        field: field.name(),
        expected: EXPECTED_NUMBER,
        found,
    };
    match value {
        Scalar::Number(n) => n.to_f64().ok_or(not_a_number("a malformed number")),
        Scalar::Str(text) => Number::new(&text)
            .to_f64()
            .ok_or(not_a_number("a non-numeric string")),
        Scalar::Float(x) => Ok(x),
        // `as` rounds to nearest, which is what parsing the same digits as a float would give.
        Scalar::UInt(u) => Ok(u as f64),
        Scalar::Int(i) => Ok(i as f64),
        other => Err(not_a_number(other.kind())),
    }
}

/// Event time in epoch ms from an RFC 3339 string, or from epoch ms as an integer or a string of
/// digits. No guessing of seconds vs milliseconds: seconds land in 1970 and fail the range check.
fn event_time_ms(value: Scalar<'_>) -> Result<i64, Rejection> {
    let unparseable = |text: &dyn fmt::Display| Rejection::TimestampUnparseable {
        text: text.to_string().chars().take(MAX_EXCERPT_CHARS).collect(),
    };
    match value {
        Scalar::Number(n) => match n.value {
            Some(ms) => whole_ms(ms),
            None => n.text.parse().ok().or_else(|| whole_ms(n.to_f64()?)),
        }
        .ok_or_else(|| unparseable(&n.text)),
        Scalar::Str(text) => {
            let parsed = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
                text.parse().ok()
            } else {
                rfc3339_ms(&text)
            };
            parsed.ok_or_else(|| unparseable(&text))
        }
        Scalar::Int(ms) => Ok(ms),
        Scalar::UInt(ms) => i64::try_from(ms).map_err(|_| unparseable(&ms)),
        Scalar::Float(ms) => whole_ms(ms).ok_or_else(|| unparseable(&ms)),
        other => Err(Rejection::WrongType {
            field: Field::Timestamp.name(),
            expected: EXPECTED_TIMESTAMP,
            found: other.kind(),
        }),
    }
}

/// An integral float (`1767364200123.0`) is still a whole number of milliseconds.
fn whole_ms(ms: f64) -> Option<i64> {
    (ms.fract() == 0.0 && ms.abs() < 9.0e18).then_some(ms as i64)
}

/// Epoch ms of an RFC 3339 date-time (chrono also takes a space or `t` for the `T`).
fn rfc3339_ms(text: &str) -> Option<i64> {
    rfc3339_ms_common(text.as_bytes()).or_else(|| {
        chrono::DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| t.timestamp_millis())
    })
}

/// Epoch ms of `YYYY-MM-DD(T|t| )hh:mm:ss[.fraction](Z|z|±hh:mm)` with a second below 60: the
/// form producers write, read a few times faster than chrono reads it. `None` for anything
/// else (leap seconds among it), which is then chrono's to accept or refuse.
fn rfc3339_ms_common(text: &[u8]) -> Option<i64> {
    if let Ok(text) = <&[u8; 24]>::try_from(text)
        && let Some(ms) = rfc3339_ms_utc_millis(text)
    {
        return Some(ms);
    }
    let digits = |at: usize, len: usize| -> Option<i64> {
        text.get(at..at + len)?.iter().try_fold(0, |n, &b| {
            b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0'))
        })
    };
    let separator = |at: usize, expected: &[u8]| text.get(at).is_some_and(|b| expected.contains(b));
    let ok = separator(4, b"-")
        && separator(7, b"-")
        && separator(10, b"Tt ")
        && separator(13, b":")
        && separator(16, b":");
    if !ok {
        return None;
    }
    let date = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
    let time = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    let mut at = 19;
    let mut millis = 0;
    if separator(at, b".") {
        let fraction = text.get(at + 1..)?;
        let len = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
        if len == 0 {
            return None;
        }
        // Truncated to the millisecond, as chrono's `timestamp_millis` does.
        let kept = &fraction[..len.min(3)];
        let value = kept.iter().fold(0, |ms, &b| ms * 10 + i64::from(b - b'0'));
        millis = value * 10_i64.pow(3 - kept.len() as u32);
        at += 1 + len;
    }
    let offset_s = match text.get(at..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (hours, minutes) = (digits(at + 1, 2)?, digits(at + 4, 2)?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            let offset = hours * 3_600 + minutes * 60;
            if *sign == b'-' { -offset } else { offset }
        }
        _ => return None,
    };
    epoch_ms(date, time, millis, offset_s)
}

/// Epoch ms of `YYYY-MM-DDThh:mm:ss.sssZ`, the form most producers write (JavaScript's
/// `toISOString` among them), read at fixed offsets; `None` for anything else.
fn rfc3339_ms_utc_millis(text: &[u8; 24]) -> Option<i64> {
    let separators = [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
    ];
    if text[23] != b'Z' || separators.iter().any(|&(at, b)| text[at] != b) {
        return None;
    }
    let digits = |from: usize, to: usize| {
        text[from..to].iter().try_fold(0, |n, &b| {
            let digit = b.wrapping_sub(b'0');
            (digit <= 9).then(|| n * 10 + i64::from(digit))
        })
    };
    let date = (digits(0, 4)?, digits(5, 7)?, digits(8, 10)?);
    let time = (digits(11, 13)?, digits(14, 16)?, digits(17, 19)?);
    epoch_ms(date, time, digits(20, 23)?, 0)
}

/// Epoch ms of a calendar date and a time of day (second below 60) at a UTC offset in seconds;
/// `None` for a date or time that does not exist.
fn epoch_ms(
    (year, month, day): (i64, i64, i64),
    (hour, minute, second): (i64, i64, i64),
    millis: i64,
    offset_s: i64,
) -> Option<i64> {
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let seconds =
        days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second - offset_s;
    Some(seconds * 1_000 + millis)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, SecondsFormat, Utc};
    use proptest::prelude::*;

    use super::*;

    const SEED: &str = r#"{"symbol":"AAPL","open":187.15,"high":188.4,"low":186.9,"price":187.23,"previous_close":185.1,"change":2.13,"change_percent":1.1507,"volume":1250,"timestamp":"2026-01-02T14:30:00.123Z"}"#;
    /// 2026-01-02T14:30:00.123Z
    const SEED_MS: i64 = 1_767_364_200_123;

    fn decode(json: &str) -> Result<Tick, Rejection> {
        decode_tick(json.as_bytes(), &DecodeLimits::default())
    }

    /// What each parser makes of `data`: `None` where the fast one gives up.
    fn decode_both(data: &[u8]) -> (Option<Tick>, Result<Tick, Rejection>) {
        let limits = DecodeLimits::default();
        let fast = decode_fast(data, &limits);
        let general = parse_general(data).and_then(|mut raw| raw.validate(&limits));
        (fast, general)
    }

    fn rfc3339(ms: i64) -> String {
        DateTime::<Utc>::from_timestamp_millis(ms)
            .unwrap()
            .to_rfc3339_opts(SecondsFormat::Millis, true)
    }

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
    fn accepts_epoch_ms_as_number_string_or_integral_float() {
        for ts in [
            "1767364200123",
            r#""1767364200123""#,
            "1767364200123.0",
            "1.767364200123e12",
        ] {
            let json = format!(r#"{{"symbol":"X","price":1,"timestamp":{ts}}}"#);
            assert_eq!(decode(&json).unwrap().event_time_ms, SEED_MS, "{ts}");
        }
    }

    #[test]
    fn accepts_rfc3339_variants() {
        for (ts, ms) in [
            ("2026-01-02T14:30:00.123Z", SEED_MS),
            ("2026-01-02T14:30:00Z", SEED_MS - 123),
            ("2026-01-02T14:30:00.1Z", SEED_MS - 23),
            ("2026-01-02T14:30:00.12Z", SEED_MS - 3),
            ("2026-01-02T14:30:00.123999999999Z", SEED_MS),
            ("2026-01-02T15:30:00.123+01:00", SEED_MS),
            ("2026-01-02T09:00:00.123-05:30", SEED_MS),
            ("2026-01-02t14:30:00.123z", SEED_MS),
            ("2026-01-02 14:30:00.123Z", SEED_MS),
            ("2016-12-31T23:59:60.500Z", 1_483_228_800_500),
        ] {
            let json = format!(r#"{{"symbol":"X","price":1,"timestamp":"{ts}"}}"#);
            assert_eq!(decode(&json).unwrap().event_time_ms, ms, "{ts}");
        }
    }

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

    #[test]
    fn reads_floats_exactly() {
        // serde_json alone rounds both of these to a neighbouring double.
        for x in [0.300_000_000_000_000_04_f64, 1.416_645_870_011_464_5e203] {
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

    #[test]
    fn numbers_after_escaped_keys_still_decode() {
        // The one place where serde_json converts numbers itself.
        let tick = decode(
            r#"{"symbol":"X","pri\u0063e":187.23,"ch\u0061nge":-2,"volume":1,"vol\u0075me":2,"timestamp":1767364200123}"#,
        );
        assert_eq!(tick, Err(Rejection::DuplicateField { field: "volume" }));
        let tick = decode(
            r#"{"symbol":"X","pri\u0063e":187.23,"ch\u0061nge":-2,"volum\u0065":18446744073709551615,"timest\u0061mp":1767364200123}"#,
        )
        .unwrap();
        assert_eq!(tick.price, 187.23);
        assert_eq!(tick.change, Some(-2.0));
        assert_eq!(tick.volume, Some(18_446_744_073_709_551_615.0));
        assert_eq!(tick.event_time_ms, SEED_MS);
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
    fn ignores_unknown_fields() {
        let tick = decode(
            r#"{"exchange":"NMS","symbol":"X","nested":{"a":[1,{"b":null}],"huge":1e999},"price":2,"timestamp":1767364200123,"currency":"USD"}"#,
        )
        .unwrap();
        assert_eq!((tick.symbol.as_str(), tick.price), ("X", 2.0));
    }

    #[test]
    fn accepts_symbols_up_to_the_limit() {
        let symbol = "A".repeat(MAX_SYMBOL_BYTES);
        let json = format!(r#"{{"symbol":"{symbol}","price":1,"timestamp":1767364200123}}"#);
        assert_eq!(decode(&json).unwrap().symbol, symbol);
        let json = r#"{"symbol":"^GSPC","price":1,"timestamp":1767364200123}"#;
        assert_eq!(decode(json).unwrap().symbol, "^GSPC");
    }

    /// The seed record with `field` set to the raw JSON `value` (or removed when `None`).
    fn seed_with(field: &str, value: Option<&str>) -> String {
        let mut object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(SEED).unwrap();
        object.remove(field);
        let mut json = serde_json::to_string(&object).unwrap();
        if let Some(value) = value {
            json.insert_str(1, &format!(r#""{field}":{value},"#));
        }
        json
    }

    fn rejected(json: &str) -> Rejection {
        decode(json).expect_err(json)
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
            ("change_percent", "1e400"),
            ("volume", "-1e400"),
        ] {
            assert_eq!(
                rejected(&seed_with(field, Some(value))),
                Rejection::NonFinite { field },
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

    #[test]
    fn rejects_unparseable_timestamps() {
        for (value, text) in [
            (r#""yesterday""#, "yesterday"),
            (r#""""#, ""),
            (r#""2026-13-02T14:30:00Z""#, "2026-13-02T14:30:00Z"),
            (r#""2026-02-29T14:30:00Z""#, "2026-02-29T14:30:00Z"),
            (r#""2026-01-02T14:30:00""#, "2026-01-02T14:30:00"),
            (r#""2026-01-02""#, "2026-01-02"),
            (r#""-1767364200123""#, "-1767364200123"),
            (r#""99999999999999999999""#, "99999999999999999999"),
            ("1767364200123.5", "1767364200123.5"),
            ("18446744073709551615", "18446744073709551615"),
        ] {
            assert_eq!(
                rejected(&seed_with("timestamp", Some(value))),
                Rejection::TimestampUnparseable { text: text.into() },
                "{value}"
            );
        }
        let long = format!(r#""{}""#, "9x".repeat(100));
        let Rejection::TimestampUnparseable { text } =
            rejected(&seed_with("timestamp", Some(&long)))
        else {
            panic!("expected an unparseable timestamp");
        };
        assert_eq!(text.len(), MAX_EXCERPT_CHARS);
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

    /// A positive finite double: anything from subnormal to `f64::MAX`, or a realistic price.
    fn positive_f64() -> impl Strategy<Value = f64> {
        prop_oneof![
            (1_u64..=0x7fef_ffff_ffff_ffff).prop_map(f64::from_bits),
            (1_u32..100_000_000).prop_map(|cents| f64::from(cents) / 100.0),
        ]
    }

    fn finite_f64() -> impl Strategy<Value = f64> {
        prop_oneof![positive_f64(), positive_f64().prop_map(|x| -x), Just(0.0),]
    }

    prop_compose! {
        fn arb_tick()(
            symbol in "[A-Z0-9.^=-]{1,32}",
            price in positive_f64(),
            event_time_ms in 631_152_000_000_i64..=4_102_444_800_000,
            open in proptest::option::of(positive_f64()),
            high in proptest::option::of(positive_f64()),
            low in proptest::option::of(positive_f64()),
            previous_close in proptest::option::of(positive_f64()),
            change in proptest::option::of(finite_f64()),
            change_percent in proptest::option::of(finite_f64()),
            volume in proptest::option::of(prop_oneof![positive_f64(), (0_u32..).prop_map(f64::from)]),
        ) -> Tick {
            Tick {
                symbol: symbol.into(),
                price,
                event_time_ms,
                open,
                high,
                low,
                previous_close,
                change,
                change_percent,
                volume,
            }
        }
    }

    /// The tick in the seed producer format, with absent fields left out or sent as `null`,
    /// numbers as JSON numbers or strings, and the time as RFC 3339 or epoch ms.
    fn seed_json(tick: &Tick, nulls: bool, strings: bool, epoch: bool) -> String {
        use serde_json::{Value, json};
        let number = |x: f64| {
            if strings {
                json!(x.to_string())
            } else {
                json!(x)
            }
        };
        let mut object = serde_json::Map::new();
        object.insert("symbol".into(), json!(tick.symbol.as_str()));
        for (name, value) in [
            ("open", tick.open),
            ("high", tick.high),
            ("low", tick.low),
            ("price", Some(tick.price)),
            ("previous_close", tick.previous_close),
            ("change", tick.change),
            ("change_percent", tick.change_percent),
            ("volume", tick.volume),
        ] {
            match value {
                Some(x) => {
                    object.insert(name.into(), number(x));
                }
                None if nulls => {
                    object.insert(name.into(), Value::Null);
                }
                None => {}
            }
        }
        let timestamp = if epoch {
            json!(tick.event_time_ms)
        } else {
            json!(rfc3339(tick.event_time_ms))
        };
        object.insert("timestamp".into(), timestamp);
        serde_json::to_string(&object).unwrap()
    }

    /// Text shaped like a JSON number, valid or nearly so.
    fn number_like() -> impl Strategy<Value = String> {
        prop_oneof![
            "-?(0|[1-9][0-9]{0,21})(\\.[0-9]{1,21})?([eE][+-]?[0-9]{1,3})?",
            "[-+]?[0-9]{0,3}\\.?[0-9]{0,3}([eE][+-]?[0-9]{0,3})?",
            "-?[0-9]{1,4}(\\.[0-9]{1,4})?[eE]-?[0-9]{4,12}",
        ]
    }

    /// A JSON value of any kind, mostly valid, sometimes nearly.
    fn arb_value() -> impl Strategy<Value = String> {
        prop_oneof![
            6 => "-?(0|[1-9][0-9]{0,21})(\\.[0-9]{1,21})?([eE][+-]?[0-9]{1,3})?",
            1 => number_like(),
            6 => "\"[A-Za-z0-9 .:+^=-]{0,12}\"",
            1 => "\"2026-01-0[1-3]T1[0-9]:30:00(\\.[0-9]{1,4})?(Z|[+-]0[0-9]:[0-5]0)\"",
            1 => "\"(\\\\[\"\\\\/bfnrt]|\\\\u00[0-7][0-9a-f]|\\\\ud83d\\\\ude00|[a-z])*\"",
            1 => "\"[\u{80}-\u{10ffff}\u{0}-\u{1f}]{0,3}\"",
            3 => "true|false|null",
            1 => "nul|tru|nulll|NaN",
            1 => "\\[\\]|\\[1, ?\"a\"\\]|\\{\\}|\\{\"a\": ?\\[null\\]\\}",
        ]
    }

    fn arb_key() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => prop::sample::select(vec![
                "symbol", "price", "timestamp", "open", "high", "low", "previous_close", "change",
                "change_percent", "volume",
            ])
            .prop_map(str::to_owned),
            1 => "[a-z_]{1,16}",
            1 => prop::sample::select(vec!["pri\\u0063e", "price\\n", "prices", "pr", "chang", "change_", "volume\\\""])
                .prop_map(str::to_owned),
        ]
    }

    /// White space between tokens, sometimes not JSON's.
    fn arb_space() -> impl Strategy<Value = String> {
        prop_oneof![30 => "[ \t\n\r]{0,2}", 1 => "[\u{a0}\u{b}\u{c}]"]
    }

    /// A record shaped like what producers send: a valid tick's fields, shuffled with random
    /// extra fields, random spacing and, now and then, a broken separator.
    fn arb_record() -> impl Strategy<Value = String> {
        let field = (
            arb_space(),
            arb_key(),
            arb_space(),
            arb_space(),
            arb_value(),
            arb_space(),
        );
        let fields = (
            arb_tick(),
            any::<bool>(),
            proptest::collection::vec(field, 0..4),
            proptest::collection::vec(
                prop_oneof![100 => Just(","), 1 => Just(""), 1 => Just(",,")],
                20,
            ),
            arb_space(),
        );
        fields.prop_perturb(|(tick, epoch, extra, separators, end), mut rng| {
            let seed: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&seed_json(&tick, false, rng.random(), epoch)).unwrap();
            let mut entries: Vec<String> = seed
                .iter()
                .map(|(key, value)| format!("\"{key}\":{value}"))
                .collect();
            for (s1, key, s2, s3, value, s4) in extra {
                let at = rng.random_range(0..=entries.len());
                entries.insert(at, format!("{s1}\"{key}\"{s2}:{s3}{value}{s4}"));
            }
            let mut json = String::from("{");
            for (i, entry) in entries.iter().enumerate() {
                if i > 0 {
                    json.push_str(separators[i % separators.len()]);
                }
                json.push_str(entry);
            }
            json.push('}');
            json + &end
        })
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

        #[test]
        fn millisecond_utc_rfc3339_reads_as_chrono_does(
            date in (0_i64..=9999, 1_i64..=12, 1_i64..=31),
            time in (0_i64..=24, 0_i64..=60, 0_i64..=61),
            millis in 0_i64..1000,
            damage in proptest::option::of((0_usize..24, 0x20_u8..0x7f)),
        ) {
            let ((year, month, day), (hour, minute, second)) = (date, time);
            let mut text = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis:03}Z").into_bytes();
            if let Some((at, byte)) = damage {
                text[at] = byte;
            }
            let text: [u8; 24] = text.try_into().unwrap();
            let chrono = std::str::from_utf8(&text)
                .ok()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.timestamp_millis());
            match rfc3339_ms_utc_millis(&text) {
                Some(ms) => prop_assert_eq!(Some(ms), chrono),
                // Besides leap seconds, the general reader takes what chrono also takes.
                None => prop_assert!(
                    chrono.is_none() || second == 60 || rfc3339_ms_common(&text) == chrono
                ),
            }
        }

        #[test]
        fn common_rfc3339_reads_as_chrono_does(
            date in (0_i64..=9999, 1_i64..=12, 1_i64..=31),
            time in (0_i64..=24, 0_i64..=60, 0_i64..=61),
            fraction in proptest::option::of("[0-9]{0,12}"),
            separator in prop_oneof![Just('T'), Just('t'), Just(' ')],
            zone in prop_oneof![
                Just("Z".to_owned()),
                Just("z".to_owned()),
                (prop_oneof![Just('+'), Just('-')], 0_u32..=24, 0_u32..=60)
                    .prop_map(|(sign, h, m)| format!("{sign}{h:02}:{m:02}")),
            ],
        ) {
            let ((year, month, day), (hour, minute, second)) = (date, time);
            let fraction = fraction.map(|digits| format!(".{digits}")).unwrap_or_default();
            let text = format!(
                "{year:04}-{month:02}-{day:02}{separator}{hour:02}:{minute:02}:{second:02}{fraction}{zone}"
            );
            let chrono = chrono::DateTime::parse_from_rfc3339(&text).ok().map(|t| t.timestamp_millis());
            match rfc3339_ms_common(text.as_bytes()) {
                Some(ms) => prop_assert_eq!(Some(ms), chrono, "{}", text),
                // Only leap seconds are left to chrono among what chrono accepts.
                None => prop_assert!(chrono.is_none() || second == 60, "{}", text),
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
