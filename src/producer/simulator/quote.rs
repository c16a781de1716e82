//! A simulated record as written: one quote in the seed producer's JSON, encoded by hand into a
//! fixed buffer, with the fields a malformed record breaks.
//!
//! In: an instrument's state, a volume and an event time. Out: the record's bytes.

use super::instrument::{Instrument, round};
use crate::model::calendar::{MS_PER_DAY, civil_from_days};

/// The price field of a quote, which malformed records replace.
#[derive(Debug, Clone, Copy)]
pub(super) enum PriceField {
    Cents(i64),
    Missing,
    Text(&'static str),
}

/// One quote as written: prices in cents, `change_percent` in units of 0.0001 %.
#[derive(Debug, Clone)]
pub(super) struct Quote<'a> {
    pub(super) symbol: Option<&'a str>,
    pub(super) open: i64,
    pub(super) high: i64,
    pub(super) low: i64,
    pub(super) price: PriceField,
    pub(super) previous_close: i64,
    pub(super) change: i64,
    pub(super) change_percent: i64,
    pub(super) volume: i64,
    pub(super) timestamp_ms: i64,
    /// Writes the timestamp with this year instead (a producer with a broken clock).
    pub(super) year: Option<i64>,
}

impl<'a> Quote<'a> {
    pub(super) fn of(inst: &'a Instrument, volume: i64, timestamp_ms: i64) -> Self {
        let change = inst.price - inst.previous_close;
        Self {
            symbol: Some(&inst.symbol),
            open: inst.open,
            high: inst.high,
            low: inst.low,
            price: PriceField::Cents(inst.price),
            previous_close: inst.previous_close,
            change,
            change_percent: round(change as f64 / inst.previous_close as f64 * 1e6),
            volume,
            timestamp_ms,
            year: None,
        }
    }

    /// The seed producer's JSON, written by hand into a stack buffer: this runs millions of
    /// times a second, and `fmt` float formatting or growing a `Vec` piecemeal would cost more
    /// than the whole simulation step.
    pub(super) fn to_json(&self) -> Vec<u8> {
        let mut out = RecordBuf::new();
        out.put(b"{");
        if let Some(symbol) = self.symbol {
            // Symbols are plain ASCII letters: nothing to escape.
            out.put(b"\"symbol\":\"");
            out.put(symbol.as_bytes());
            out.put(b"\",");
        }
        out.put(b"\"open\":");
        out.decimal(self.open, 2);
        out.put(b",\"high\":");
        out.decimal(self.high, 2);
        out.put(b",\"low\":");
        out.decimal(self.low, 2);
        match self.price {
            PriceField::Cents(cents) => {
                out.put(b",\"price\":");
                out.decimal(cents, 2);
            }
            PriceField::Text(text) => {
                out.put(b",\"price\":\"");
                out.put(text.as_bytes());
                out.put(b"\"");
            }
            PriceField::Missing => {}
        }
        out.put(b",\"previous_close\":");
        out.decimal(self.previous_close, 2);
        out.put(b",\"change\":");
        out.decimal(self.change, 2);
        out.put(b",\"change_percent\":");
        out.decimal(self.change_percent, 4);
        out.put(b",\"volume\":");
        out.int(self.volume);
        out.put(b",\"timestamp\":\"");
        out.timestamp(self.timestamp_ms, self.year);
        out.put(b"\"}");
        out.as_bytes().to_vec()
    }
}

/// Room for the longest record: the keys (~120 bytes), nine numbers of at most 21 characters, a
/// timestamp and a symbol of a few letters.
const RECORD_BUF_BYTES: usize = 512;

const DIGIT_PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// A fixed-size output buffer, so that writing a record costs no reallocations and the literal
/// pieces compile to plain stores.
struct RecordBuf {
    bytes: [u8; RECORD_BUF_BYTES],
    len: usize,
}

impl RecordBuf {
    fn new() -> Self {
        Self {
            bytes: [0; RECORD_BUF_BYTES],
            len: 0,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    #[inline(always)]
    fn put(&mut self, piece: &[u8]) {
        self.bytes[self.len..self.len + piece.len()].copy_from_slice(piece);
        self.len += piece.len();
    }

    /// Writes `value` with exactly `width` digits (zero-padded, high digits dropped).
    fn padded(&mut self, mut value: u64, width: usize) {
        let end = self.len + width;
        let mut at = end;
        while at >= self.len + 2 {
            let pair = (value % 100) as usize * 2;
            self.bytes[at - 2..at].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
            value /= 100;
            at -= 2;
        }
        if at > self.len {
            self.bytes[at - 1] = b'0' + (value % 10) as u8;
        }
        self.len = end;
    }

    fn uint(&mut self, value: u64) {
        let width = value.checked_ilog10().unwrap_or(0) as usize + 1;
        self.padded(value, width);
    }

    fn int(&mut self, value: i64) {
        if value < 0 {
            self.put(b"-");
        }
        self.uint(value.unsigned_abs());
    }

    /// Writes `units / 10^scale` as Python's `json.dumps(round(x, scale))` does: trailing zeros
    /// dropped but at least one decimal (`250.1`, `250.0`, `-0.05`).
    ///
    /// Inlined so that at each call `10^scale` is a constant: the division by it becomes a
    /// multiplication (seven of them a record).
    #[inline(always)]
    fn decimal(&mut self, units: i64, scale: u32) {
        let divisor = 10u64.pow(scale);
        let magnitude = units.unsigned_abs();
        if units < 0 {
            self.put(b"-");
        }
        self.uint(magnitude / divisor);
        self.put(b".");
        let mut fraction = magnitude % divisor;
        let mut digits = scale as usize;
        while digits > 1 && fraction.is_multiple_of(10) {
            fraction /= 10;
            digits -= 1;
        }
        self.padded(fraction, digits);
    }

    /// RFC 3339 UTC with milliseconds: `2026-01-05T14:30:00.123Z`.
    fn timestamp(&mut self, epoch_ms: i64, year_override: Option<i64>) {
        let (year, month, day) = civil_from_days(epoch_ms.div_euclid(MS_PER_DAY));
        let of_day = epoch_ms.rem_euclid(MS_PER_DAY) as u64;
        let (year, day) = match year_override {
            // Keep the date valid in the other year (1900 has no 29 February).
            Some(other) if month == 2 && day == 29 => (other, 28),
            Some(other) => (other, day),
            None => (year, day),
        };
        self.padded(year.unsigned_abs(), 4);
        self.put(b"-");
        self.padded(month.into(), 2);
        self.put(b"-");
        self.padded(day.into(), 2);
        self.put(b"T");
        self.padded(of_day / 3_600_000, 2);
        self.put(b":");
        self.padded(of_day / 60_000 % 60, 2);
        self.put(b":");
        self.padded(of_day / 1_000 % 60, 2);
        self.put(b".");
        self.padded(of_day % 1_000, 3);
        self.put(b"Z");
    }
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;

    use super::super::DEFAULT_START_MS;
    use super::*;

    #[test]
    fn writes_the_seed_producer_format() {
        let quote = Quote {
            symbol: Some("AAPL"),
            open: 27_000,
            high: 27_150,
            low: 26_987,
            price: PriceField::Cents(27_045),
            previous_close: 27_000,
            change: 45,
            change_percent: 1_667,
            volume: 312,
            timestamp_ms: DEFAULT_START_MS + 123,
            year: None,
        };
        assert_eq!(
            String::from_utf8(quote.to_json()).unwrap(),
            r#"{"symbol":"AAPL","open":270.0,"high":271.5,"low":269.87,"price":270.45,"previous_close":270.0,"change":0.45,"change_percent":0.1667,"volume":312,"timestamp":"2026-01-05T14:30:00.123Z"}"#
        );
    }

    #[test]
    fn decimals_match_python_json() {
        let text = |units, scale| {
            let mut out = RecordBuf::new();
            out.decimal(units, scale);
            String::from_utf8(out.as_bytes().to_vec()).unwrap()
        };
        assert_eq!(text(0, 2), "0.0");
        assert_eq!(text(5, 2), "0.05");
        assert_eq!(text(-5, 2), "-0.05");
        assert_eq!(text(-120, 2), "-1.2");
        assert_eq!(text(100_000, 2), "1000.0");
        assert_eq!(text(-50, 4), "-0.005");
        assert_eq!(text(12_345, 4), "1.2345");
        assert_eq!(text(123_456_789_012, 2), "1234567890.12");
        for value in [0, 7, 10, 99, 100, 12_345, -987_654, i64::MAX, i64::MIN] {
            let mut out = RecordBuf::new();
            out.int(value);
            assert_eq!(out.as_bytes(), value.to_string().as_bytes());
        }
    }

    #[test]
    fn timestamps_match_chrono() {
        for ms in [
            0,
            DEFAULT_START_MS,
            951_782_400_000, // 2000-02-29
            4_102_444_799_999,
            -1,
            1_709_164_800_123, // 2024-02-29
        ] {
            let mut out = RecordBuf::new();
            out.timestamp(ms, None);
            let expected = DateTime::from_timestamp_millis(ms)
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            assert_eq!(
                String::from_utf8(out.as_bytes().to_vec()).unwrap(),
                expected
            );
        }
    }
}
