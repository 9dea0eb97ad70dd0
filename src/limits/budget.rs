//! Budgets: estimate → reserve → settle (the invariant TensorZero documents for its limiter).
//!
//! - Before a request, the worst-case cost (prompt estimate + max output at the priciest
//!   candidate) is reserved against the key's budget. A key whose settled spend plus
//!   outstanding reservations already reach its limit gets 402 before any upstream call.
//! - After the request — on every path, success, error or disconnect — the reservation is
//!   released and the real cost is added to the spend.
//! - So concurrent requests can overspend by at most the reservation of the last request
//!   admitted while budget remained: settled spend ≤ limit + one reservation.
//! - An under-estimate (a provider bills more than the worst case) is charged in full: the
//!   spend is what providers billed, never the estimate.

use std::sync::Mutex;

use crate::auth::{ApiKey, KeyHash, KeyHashMap, LimitReset};
use crate::metering::Cost;

use super::period::period_start;

/// Settled spend of one key in each kind of period (so `/v1/key` can report daily, weekly
/// and monthly usage whichever period the key's limit resets on), and its reservations.
#[derive(Default)]
struct KeySpend {
    /// (period start, spent) for daily, weekly, monthly and never.
    periods: [(u64, u128); 4],
    reserved: u128,
}

const RESETS: [LimitReset; 4] = [
    LimitReset::Daily,
    LimitReset::Weekly,
    LimitReset::Monthly,
    LimitReset::Never,
];

fn slot(reset: LimitReset) -> usize {
    RESETS.iter().position(|r| *r == reset).unwrap_or(3)
}

impl KeySpend {
    /// Rolls every period forward to the one containing `now_unix`, never back: a
    /// timestamp from an earlier period (a request stamped before midnight and settled
    /// after, another thread's, a clock stepped back) counts in the current one, as
    /// `settle` documents; rolling back and forth again would drop the current spend.
    fn roll(&mut self, now_unix: u64) {
        for (i, reset) in RESETS.iter().enumerate() {
            let start = period_start(*reset, now_unix);
            if start > self.periods[i].0 {
                self.periods[i] = (start, 0);
            }
        }
    }

    fn spent(&self, reset: LimitReset) -> u128 {
        self.periods[slot(reset)].1
    }
}

/// A reservation that must be settled exactly once.
#[derive(Debug)]
pub struct Reservation {
    key: KeyHash,
    amount: u128,
}

impl Reservation {
    pub fn amount(&self) -> Cost {
        Cost(self.amount)
    }
}

#[derive(Debug, PartialEq)]
pub struct BudgetExhausted {
    pub limit: Cost,
    pub spent: Cost,
    pub reserved: Cost,
}

/// A key's spend as `/v1/key` reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SpendReport {
    pub daily: Cost,
    pub weekly: Cost,
    pub monthly: Cost,
    pub total: Cost,
    pub reserved: Cost,
}

impl SpendReport {
    pub fn for_period(&self, reset: LimitReset) -> Cost {
        match reset {
            LimitReset::Daily => self.daily,
            LimitReset::Weekly => self.weekly,
            LimitReset::Monthly => self.monthly,
            LimitReset::Never => self.total,
        }
    }
}

/// Spend per key, in pico-USD.
#[derive(Default)]
pub struct Budgets {
    keys: Mutex<KeyHashMap<KeySpend>>,
}

pub fn limit_pico(limit_usd: f64) -> u128 {
    (limit_usd.max(0.0) * crate::catalog::PICO_USD_PER_USD as f64).round() as u128
}

impl Budgets {
    fn with<T>(&self, key: &KeyHash, now_unix: u64, f: impl FnOnce(&mut KeySpend) -> T) -> T {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let entry = keys.entry(*key).or_default();
        entry.roll(now_unix);
        f(entry)
    }

    /// Reserves `worst_case` for a request of `key`, or says the budget is exhausted.
    pub fn reserve(
        &self,
        key: &ApiKey,
        worst_case: Cost,
        now_unix: u64,
    ) -> Result<Reservation, BudgetExhausted> {
        let limit = key.limit_usd.map(limit_pico);
        self.with(&key.hash, now_unix, |s| {
            let spent = s.spent(key.limit_reset);
            if let Some(limit) = limit {
                if spent + s.reserved >= limit {
                    return Err(BudgetExhausted {
                        limit: Cost(limit),
                        spent: Cost(spent),
                        reserved: Cost(s.reserved),
                    });
                }
            }
            s.reserved += worst_case.0;
            Ok(Reservation {
                key: key.hash,
                amount: worst_case.0,
            })
        })
    }

    /// Releases the reservation and adds what the request really cost (to the periods that
    /// contain `now_unix`: a request that began before midnight is charged to the new day).
    pub fn settle(&self, reservation: Reservation, actual: Cost, now_unix: u64) {
        self.with(&reservation.key, now_unix, |s| {
            s.reserved = s.reserved.saturating_sub(reservation.amount);
            for period in s.periods.iter_mut() {
                period.1 += actual.0;
            }
        });
    }

    pub fn report(&self, key: &KeyHash, now_unix: u64) -> SpendReport {
        self.with(key, now_unix, |s| SpendReport {
            daily: Cost(s.periods[0].1),
            weekly: Cost(s.periods[1].1),
            monthly: Cost(s.periods[2].1),
            total: Cost(s.periods[3].1),
            reserved: Cost(s.reserved),
        })
    }

    /// Settled spend and outstanding reservations in the key's current period.
    pub fn usage(&self, key: &KeyHash, reset: LimitReset, now_unix: u64) -> (Cost, Cost) {
        self.with(key, now_unix, |s| (Cost(s.spent(reset)), Cost(s.reserved)))
    }

    /// Whether the key's spend is tracked here already (seeded, or spent since start).
    pub fn tracks(&self, key: &KeyHash) -> bool {
        self.keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(key)
    }

    /// Seeds a key's settled spend for one kind of period (from the ledger at startup, or
    /// Redis's figure mirrored). A figure for a period earlier than the current one (a
    /// stale timestamp) is not the current one's: it changes nothing.
    pub fn seed(&self, key: &KeyHash, reset: LimitReset, now_unix: u64, spent: Cost) {
        self.with(key, now_unix, |s| {
            let period = &mut s.periods[slot(reset)];
            if period.0 == period_start(reset, now_unix) {
                period.1 = spent.0;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::ProviderPrefs;
    use std::sync::Arc;

    fn key(limit: Option<f64>) -> ApiKey {
        ApiKey {
            name: "k".into(),
            hash: [7; 32],
            limit_usd: limit,
            limit_reset: LimitReset::Daily,
            rpm: None,
            tpm: None,
            allowed_models: None,
            provider_prefs: ProviderPrefs::default(),
            disabled: false,
        }
    }

    const USD: u128 = crate::catalog::PICO_USD_PER_USD as u128;

    #[test]
    fn refuses_once_spend_and_reservations_reach_the_limit() {
        let b = Budgets::default();
        let k = key(Some(1.0));
        let r1 = b.reserve(&k, Cost(USD / 2), 0).unwrap();
        let r2 = b.reserve(&k, Cost(USD / 2), 0).unwrap();
        assert!(
            b.reserve(&k, Cost(1), 0).is_err(),
            "reservations cover the whole budget"
        );
        b.settle(r1, Cost(USD / 10), 0);
        let r3 = b.reserve(&k, Cost(USD / 2), 0).unwrap();
        b.settle(r2, Cost(USD / 10), 0);
        b.settle(r3, Cost(USD / 10), 0);
        assert_eq!(
            b.usage(&k.hash, LimitReset::Daily, 0),
            (Cost(3 * USD / 10), Cost(0))
        );
    }

    #[test]
    fn a_new_period_starts_from_zero() {
        let b = Budgets::default();
        let k = key(Some(1.0));
        let r = b.reserve(&k, Cost(USD), 0).unwrap();
        b.settle(r, Cost(USD), 0);
        assert!(b.reserve(&k, Cost(1), 10).is_err());
        assert!(b.reserve(&k, Cost(1), 86_400).is_ok());
        let report = b.report(&k.hash, 86_400);
        assert_eq!(
            (report.daily, report.monthly, report.total),
            (Cost(0), Cost(USD), Cost(USD))
        );
    }

    #[test]
    fn a_settle_stamped_in_the_previous_day_counts_in_the_new_one() {
        let b = Budgets::default();
        let k = key(Some(1.0));
        let midnight = 1_699_920_000; // Tuesday 2023-11-14: not a week's or month's start
        let yesterday = b.reserve(&k, Cost(USD / 2), midnight - 10).unwrap();
        let today = b.reserve(&k, Cost(USD / 4), midnight + 5).unwrap();
        b.settle(today, Cost(USD / 4), midnight + 6);
        // Stamped before midnight, settled after the day rolled (a stale timestamp).
        b.settle(yesterday, Cost(USD / 2), midnight - 1);
        let report = b.report(&k.hash, midnight + 7);
        assert_eq!(
            (report.daily, report.monthly, report.reserved),
            (Cost(USD * 3 / 4), Cost(USD * 3 / 4), Cost(0))
        );
        // A figure for the previous day (a mirror of Redis's, stamped before midnight) is
        // not the new day's.
        b.seed(&k.hash, LimitReset::Daily, midnight - 1, Cost(USD * 9));
        assert_eq!(b.report(&k.hash, midnight + 8).daily, Cost(USD * 3 / 4));
        assert!(b.reserve(&k, Cost(1), midnight + 9).is_ok());
    }

    #[test]
    fn concurrent_requests_never_settle_above_limit_plus_one_reservation() {
        let b = Arc::new(Budgets::default());
        let k = Arc::new(key(Some(0.01)));
        let reservation = Cost(USD / 1000);
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (b, k) = (b.clone(), k.clone());
                std::thread::spawn(move || {
                    for _ in 0..200 {
                        if let Ok(r) = b.reserve(&k, reservation, 0) {
                            b.settle(r, reservation, 0);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let (spent, reserved) = b.usage(&k.hash, LimitReset::Daily, 0);
        assert_eq!(reserved, Cost(0));
        assert!(spent.0 <= limit_pico(0.01) + reservation.0, "{spent:?}");
        assert!(spent.0 >= limit_pico(0.01), "the budget was used up");
    }
}
