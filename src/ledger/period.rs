//! Budget periods and timestamps in UTC, as unix milliseconds.
//!
//! A key's spend is kept per period: the period starts at midnight UTC (daily), Monday
//! midnight UTC (weekly), the 1st of the month at midnight UTC (monthly), or at 0 for keys
//! whose limit never resets. Civil-date arithmetic is Howard Hinnant's `days_from_civil`
//! algorithm, exact over the whole proleptic Gregorian calendar, so no date crate is needed.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::auth::LimitReset;

pub(crate) const MS_PER_DAY: i64 = 86_400_000;

/// Now, in unix milliseconds (0 if the clock is before 1970).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Start of the budget period that contains `at_ms`.
pub fn period_start(reset: LimitReset, at_ms: i64) -> i64 {
    let day = at_ms.div_euclid(MS_PER_DAY);
    match reset {
        LimitReset::Never => 0,
        LimitReset::Daily => day * MS_PER_DAY,
        // 1970-01-01 was a Thursday: day 0 is three days after a Monday.
        LimitReset::Weekly => (day - (day + 3).rem_euclid(7)) * MS_PER_DAY,
        LimitReset::Monthly => {
            let (y, m, _) = civil_from_days(day);
            days_from_civil(y, m, 1) * MS_PER_DAY
        }
    }
}

/// When the period containing `at_ms` ends (the next reset), or `None` if it never does.
pub fn period_end(reset: LimitReset, at_ms: i64) -> Option<i64> {
    let start = period_start(reset, at_ms);
    match reset {
        LimitReset::Never => None,
        LimitReset::Daily => Some(start + MS_PER_DAY),
        LimitReset::Weekly => Some(start + 7 * MS_PER_DAY),
        LimitReset::Monthly => {
            let (y, m, _) = civil_from_days(start.div_euclid(MS_PER_DAY));
            let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            Some(days_from_civil(y, m, 1) * MS_PER_DAY)
        }
    }
}

/// `2024-07-15T23:33:19.433+00:00`: the ISO 8601 form OpenRouter's API uses.
pub fn iso8601(at_ms: i64) -> String {
    let day = at_ms.div_euclid(MS_PER_DAY);
    let ms_of_day = at_ms.rem_euclid(MS_PER_DAY);
    let (y, m, d) = civil_from_days(day);
    let (secs, ms) = (ms_of_day / 1000, ms_of_day % 1000);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}+00:00",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// (year, month 1-12, day 1-31) of a count of days since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Days since 1970-01-01 of a civil date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let (m, d) = (i64::from(m), i64::from(d));
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2024-02-29T13:45:06.789Z, a Thursday in a leap year.
    const LEAP_DAY: i64 = 1_709_214_306_789;

    #[test]
    fn formats_iso8601_in_utc() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000+00:00");
        assert_eq!(iso8601(LEAP_DAY), "2024-02-29T13:45:06.789+00:00");
        assert_eq!(iso8601(-1), "1969-12-31T23:59:59.999+00:00");
    }

    #[test]
    fn periods_start_at_utc_midnight_monday_and_the_first() {
        assert_eq!(
            iso8601(period_start(LimitReset::Daily, LEAP_DAY)),
            "2024-02-29T00:00:00.000+00:00"
        );
        assert_eq!(
            iso8601(period_start(LimitReset::Weekly, LEAP_DAY)),
            "2024-02-26T00:00:00.000+00:00"
        );
        assert_eq!(
            iso8601(period_start(LimitReset::Monthly, LEAP_DAY)),
            "2024-02-01T00:00:00.000+00:00"
        );
        assert_eq!(period_start(LimitReset::Never, LEAP_DAY), 0);
    }

    #[test]
    fn periods_end_at_the_next_reset() {
        let end = |r| period_end(r, LEAP_DAY).map(iso8601);
        assert_eq!(
            end(LimitReset::Daily).as_deref(),
            Some("2024-03-01T00:00:00.000+00:00")
        );
        assert_eq!(
            end(LimitReset::Weekly).as_deref(),
            Some("2024-03-04T00:00:00.000+00:00")
        );
        assert_eq!(
            end(LimitReset::Monthly).as_deref(),
            Some("2024-03-01T00:00:00.000+00:00")
        );
        assert_eq!(end(LimitReset::Never), None);
        let december = 1_734_000_000_000; // 2024-12-12
        assert_eq!(
            period_end(LimitReset::Monthly, december)
                .map(iso8601)
                .as_deref(),
            Some("2025-01-01T00:00:00.000+00:00")
        );
    }

    #[test]
    fn a_monday_starts_its_own_week() {
        let monday = 1_709_510_400_000; // 2024-03-04T00:00:00Z
        assert_eq!(period_start(LimitReset::Weekly, monday), monday);
        assert_eq!(
            period_start(LimitReset::Weekly, monday - 1),
            monday - 7 * MS_PER_DAY
        );
    }

    #[test]
    fn civil_dates_round_trip_across_centuries() {
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
    }
}
