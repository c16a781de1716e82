//! Date arithmetic of the proleptic Gregorian calendar in UTC, on day counts since 1970-01-01.
//!
//! In: epoch days (`epoch_ms.div_euclid(MS_PER_DAY)`) or a calendar date. Out: the other one,
//! the length of a month, the day of the week. The lake's date partitions, the table's sort keys,
//! the decoder's RFC 3339 reader and the simulator's trading days all count days here, so they
//! agree on every date. H. Hinnant's algorithms: exact over the whole range of epoch-ms event
//! times, with no table and no time-zone database.

/// Milliseconds in a UTC day (leap seconds do not exist in epoch time).
pub(crate) const MS_PER_DAY: i64 = 86_400_000;

/// `(year, month, day)` of a day count since 1970-01-01 (H. Hinnant's `civil_from_days`), for
/// every day an `i64` of epoch ms can fall on, so no event time can make partitioning fail.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days since 1970-01-01 of a date (H. Hinnant's `days_from_civil`); the inverse of
/// [`civil_from_days`] for a date that exists.
pub(crate) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days in `month` (1-12) of `year`.
pub(crate) fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Day of the week of a day count since 1970-01-01: 0 is Monday, 6 is Sunday.
pub(crate) fn weekday(days: i64) -> i64 {
    // 1970-01-01 was a Thursday.
    (days + 3).rem_euclid(7)
}

#[cfg(test)]
mod tests {
    use chrono::{Datelike, NaiveDate};
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(days_from_civil(2026, 1, 5), 20_458);
        assert_eq!(weekday(20_458), 0, "2026-01-05 is a Monday");
        assert_eq!(weekday(0), 3, "1970-01-01 was a Thursday");
        assert_eq!(weekday(-4), 6, "1969-12-28 was a Sunday");
        assert_eq!(
            [2024, 2023, 2000, 1900].map(|year| days_in_month(year, 2)),
            [29, 28, 29, 28]
        );
    }

    proptest! {
        #[test]
        fn agrees_with_chrono(days in -3_000_000_i64..3_000_000) {
            let date = NaiveDate::from_ymd_opt(1970, 1, 1)
                .unwrap()
                .checked_add_signed(chrono::Duration::days(days))
                .unwrap();
            let (year, month, day) = civil_from_days(days);
            prop_assert_eq!(
                (year, month, day),
                (i64::from(date.year()), date.month(), date.day())
            );
            prop_assert_eq!(days_from_civil(year, month.into(), day.into()), days);
            prop_assert_eq!(weekday(days), i64::from(date.weekday().num_days_from_monday()));
            let next_month = date.checked_add_months(chrono::Months::new(1)).unwrap();
            let first = date.with_day(1).unwrap();
            let month_length = (next_month.with_day(1).unwrap() - first).num_days();
            prop_assert_eq!(days_in_month(year, month.into()), month_length);
        }
    }
}
