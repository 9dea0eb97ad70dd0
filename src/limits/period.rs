//! Budget periods in UTC: daily from midnight, weekly from Monday midnight, monthly from the
//! 1st at midnight.

use crate::auth::LimitReset;

const DAY: u64 = 86_400;

/// Days since 1970-01-01 → (year, month 1..=12, day 1..=31) (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The unix second at which the period containing `now_unix` began (0 for `never`).
pub fn period_start(reset: LimitReset, now_unix: u64) -> u64 {
    let today = now_unix - now_unix % DAY;
    match reset {
        LimitReset::Never => 0,
        LimitReset::Daily => today,
        // 1970-01-01 was a Thursday: Monday is 3 days before day 0's weekday index.
        LimitReset::Weekly => today.saturating_sub(((today / DAY + 3) % 7) * DAY),
        LimitReset::Monthly => {
            let (_, _, day) = civil_from_days((today / DAY) as i64);
            today - (day as u64 - 1) * DAY
        }
    }
}

/// When the current period ends (for `/v1/key` and `X-RateLimit-Reset`), `None` for never.
pub fn period_end(reset: LimitReset, now_unix: u64) -> Option<u64> {
    let start = period_start(reset, now_unix);
    match reset {
        LimitReset::Never => None,
        LimitReset::Daily => Some(start + DAY),
        LimitReset::Weekly => Some(start + 7 * DAY),
        LimitReset::Monthly => {
            let (_, m, _) = civil_from_days((start / DAY) as i64);
            let days_in_month = (28..=31)
                .rev()
                .find(|d| civil_from_days((start / DAY + d - 1) as i64).1 == m)
                .unwrap_or(28);
            Some(start + days_in_month * DAY)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_start_at_utc_boundaries() {
        // 2026-11-21 (a Saturday) 23:15:00 UTC.
        let now = 1_795_302_900;
        assert_eq!(period_start(LimitReset::Daily, now), 1_795_219_200); // 2026-11-21 00:00
        assert_eq!(period_start(LimitReset::Weekly, now), 1_794_787_200); // Monday 2026-11-16
        assert_eq!(period_start(LimitReset::Monthly, now), 1_793_491_200); // 2026-11-01
        assert_eq!(period_start(LimitReset::Never, now), 0);
        assert_eq!(period_end(LimitReset::Monthly, now), Some(1_796_083_200)); // 2026-12-01
        assert_eq!(period_end(LimitReset::Daily, now), Some(1_795_305_600));
    }
}
