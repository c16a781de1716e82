//! How a table item writes its numbers and times: DynamoDB's number text (shortest round-trip
//! decimals within DynamoDB's range) and fixed-width ISO 8601 times, written byte by byte since
//! every tick item holds a dozen of them.

use compact_str::CompactString;

use super::AttributeSink;
use crate::model::calendar::{MS_PER_DAY, civil_from_days};
use crate::model::lake::partition_date;

/// DynamoDB rejects numbers of magnitude 1E+126 and above.
pub(super) const DYNAMO_MAX_ABS: f64 = 1e126;
/// DynamoDB rejects non-zero numbers of magnitude below 1E-130.
pub(super) const DYNAMO_MIN_ABS: f64 = 1e-130;

/// `2026-01-02T14:30:00.123Z`: fixed width for years 0..=9999, so text order is time order.
/// Written digit by digit into place: it is built for every table item.
pub(super) fn iso8601_millis(ms: i64) -> CompactString {
    let (year, month, day) = civil_from_days(ms.div_euclid(MS_PER_DAY));
    let of_day = ms.rem_euclid(MS_PER_DAY) as u64;
    let mut text = *b"0000-00-00T00:00:00.000Z";
    put_digits(&mut text[11..13], of_day / 3_600_000);
    put_digits(&mut text[14..16], of_day / 60_000 % 60);
    put_digits(&mut text[17..19], of_day / 1_000 % 60);
    put_digits(&mut text[20..23], of_day % 1_000);
    if !(0..=9999).contains(&year) {
        return [&partition_date(ms), ascii(&text[10..])].concat().into();
    }
    put_digits(&mut text[0..4], year as u64);
    put_digits(&mut text[5..7], month.into());
    put_digits(&mut text[8..10], day.into());
    ascii(&text).into()
}

/// `value` zero-padded into `out`, one digit per byte (`value` is below 10^`out.len()`).
pub(super) fn put_digits(out: &mut [u8], mut value: u64) {
    for digit in out.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// Text this module wrote byte by byte: digits, signs and separators only.
pub(super) fn ascii(bytes: &[u8]) -> &str {
    debug_assert!(bytes.is_ascii(), "{bytes:?}");
    // SAFETY: callers pass only ASCII (see above), which is valid UTF-8. `from_utf8`'s check is
    // an out-of-line call on every number and timestamp of every table item.
    unsafe { std::str::from_utf8_unchecked(bytes) }
}

/// A float as a DynamoDB number.
///
/// The decoder's range rule (`decode/range.rs`) keeps every value of an item, sent or computed,
/// finite and 0 or within DynamoDB's range, so nothing is ever changed or left out here. A value
/// past that is a bug: a debug build stops at it, a release build leaves the attribute out
/// rather than fail the batch or write a number that is not the value.
pub(super) fn float(sink: &mut impl AttributeSink, name: &'static str, value: f64) {
    let storable = value == 0.0 || (DYNAMO_MIN_ABS..DYNAMO_MAX_ABS).contains(&value.abs());
    debug_assert!(
        storable,
        "`{name}` = {value:e} is outside what DynamoDB holds"
    );
    if !storable {
        return;
    }
    // `-0` is written as `0`.
    if value == 0.0 {
        return sink.number(name, "0");
    }
    let mut cents = [0u8; 24];
    if let Some(text) = whole_cents(value, &mut cents) {
        return sink.number(name, text);
    }
    // zmij rather than ryu: the same shortest round-trip digits, found faster (its exponent
    // form, `1e+16`, differs, but text with an exponent is replaced below).
    let mut buffer = zmij::Buffer::new();
    let text = buffer.format_finite(value);
    // zmij writes magnitudes from 1e-5 to below 1e15 as plain decimals (pinned by a test below),
    // so only others are looked at. A plain loop: `contains` calls memchr, which costs more than
    // the scan on a dozen bytes.
    if !(1e-5..1e15).contains(&value.abs()) && text.bytes().any(|b| b == b'e') {
        return sink.number(name, &value.to_string());
    }
    sink.number(name, text.strip_suffix(".0").unwrap_or(text));
}

/// Below this magnitude one ulp is under 2^-13, far below a cent.
pub(super) const WHOLE_CENTS_MAX: f64 = (1u64 << 40) as f64;

/// The shortest decimal of `value` when it is a whole number of cents (most prices and every
/// whole volume), written without zmij's digit search: `[-]whole[.c[c]]`.
///
/// If `cents / 100` reads back as `value`, it is the shortest decimal that does: one ulp is far
/// below a cent here, so no other decimal with as few digits lies close enough to `value`.
pub(super) fn whole_cents(value: f64, out: &mut [u8; 24]) -> Option<&str> {
    let magnitude = value.abs();
    if !(0.01..WHOLE_CENTS_MAX).contains(&magnitude) {
        return None;
    }
    // Truncating after adding a half rounds: the magnitude is positive and far below 2^53.
    // Signed, as x86-64 converts between floats and i64 in one instruction each, where u64
    // takes several.
    let scaled = magnitude * 100.0;
    let cents = (scaled + 0.5) as i64;
    // Computed values (averages, ratios) are seldom whole cents: a product far from an integer
    // rules them out without the division, which costs more than the rest of this function.
    // Far means beyond the rounding of `value` and of the product (an ulp each, 2.2e-16 of it).
    if (scaled - cents as f64).abs() > scaled * 1e-15 || cents as f64 / 100.0 != magnitude {
        return None;
    }
    // Digits from the right end of the buffer (unsigned: no sign fix-ups in the divisions).
    let cents = cents as u64;
    let mut at = out.len();
    let (mut whole, fraction) = (cents / 100, cents % 100);
    if fraction != 0 {
        if fraction % 10 != 0 {
            at -= 1;
            out[at] = b'0' + (fraction % 10) as u8;
        }
        out[at - 2] = b'.';
        out[at - 1] = b'0' + (fraction / 10) as u8;
        at -= 2;
    }
    loop {
        at -= 1;
        out[at] = b'0' + (whole % 10) as u8;
        whole /= 10;
        if whole == 0 {
            break;
        }
    }
    if value < 0.0 {
        at -= 1;
        out[at] = b'-';
    }
    Some(ascii(&out[at..]))
}

pub(super) fn integer(
    sink: &mut impl AttributeSink,
    name: &'static str,
    value: impl itoa::Integer,
) {
    sink.number(name, itoa::Buffer::new().format(value));
}
