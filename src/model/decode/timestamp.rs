//! Event times: epoch milliseconds, or an RFC 3339 date-time read by a fast path for the forms
//! producers write and by chrono for the rest.
//!
//! In: the value of the `timestamp` field. Out: epoch ms, or the [`Rejection`] that says why it
//! is neither form. Whether it lies in the accepted range is checked by the caller.

use std::fmt;

use super::field::Field;
use super::value::Scalar;
use super::{MAX_EXCERPT_CHARS, Rejection};
use crate::model::calendar::{days_from_civil, days_in_month};

const EXPECTED_TIMESTAMP: &str = "an RFC 3339 string or integer epoch milliseconds";

/// Event time in epoch ms from an RFC 3339 string, or from epoch ms as an integer or a string of
/// digits. No guessing of seconds vs milliseconds: seconds land in 1970 and fail the range check.
pub(super) fn event_time_ms(value: Scalar<'_>) -> Result<i64, Rejection> {
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::model::decode::testing::{SEED_MS, decode, rejected, seed_with};

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

    proptest! {
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
    }
}
