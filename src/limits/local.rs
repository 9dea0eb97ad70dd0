//! The in-process limits of one instance: rate limits, then the budget reservation (see
//! budget.rs for the reserve/settle invariant). The only limits without Redis; with Redis,
//! the fallback when it cannot answer (`redis_failure: open`), and a mirror of the spend
//! Redis last reported (what the admin API shows).

use std::sync::Arc;

use super::{Budgets, RateLimits, RateStatus, Refusal, Reservation, SpendReport};
use crate::auth::{ApiKey, KeyHash, LimitReset};
use crate::metering::Cost;

/// What a request admitted by the in-process limits holds until it settles.
#[derive(Debug)]
pub(super) struct LocalHold {
    reservation: Reservation,
    /// The prompt estimate counted against the key's tokens per minute while in flight.
    prompt_estimate: Option<u64>,
}

pub(super) struct LocalLimits {
    budgets: Arc<Budgets>,
    rates: RateLimits,
}

/// The order of the spend figures the shared limits report (`[daily, weekly, monthly, never]`).
pub(super) const PERIODS: [LimitReset; 4] = [
    LimitReset::Daily,
    LimitReset::Weekly,
    LimitReset::Monthly,
    LimitReset::Never,
];

impl LocalLimits {
    pub fn new(budgets: Arc<Budgets>) -> LocalLimits {
        LocalLimits {
            budgets,
            rates: RateLimits::default(),
        }
    }

    pub fn budgets(&self) -> &Arc<Budgets> {
        &self.budgets
    }

    /// Rate limits first (a refused request reserves nothing), then the budget.
    pub fn admit(
        &self,
        key: &ApiKey,
        prompt_tokens: u64,
        worst_case: Cost,
        now_ms: u64,
    ) -> Result<(LocalHold, Option<RateStatus>), Refusal> {
        let rate_status = self
            .rates
            .admit(key, prompt_tokens, now_ms)
            .map_err(Refusal::Rate)?;
        let prompt_estimate = rate_status.map(|_| prompt_tokens);
        match self.budgets.reserve(key, worst_case, now_ms / 1000) {
            Ok(reservation) => Ok((
                LocalHold {
                    reservation,
                    prompt_estimate,
                },
                rate_status,
            )),
            Err(exhausted) => {
                // The request will not run: its tokens-per-minute hold goes too.
                if let Some(estimate) = prompt_estimate {
                    self.rates.settle(&key.hash, estimate, 0, now_ms);
                }
                Err(Refusal::Budget(exhausted))
            }
        }
    }

    /// Releases what `hold` held and charges what the request used.
    pub fn settle(&self, key: &KeyHash, hold: LocalHold, actual: Cost, tokens: u64, now_ms: u64) {
        self.budgets.settle(hold.reservation, actual, now_ms / 1000);
        if let Some(estimate) = hold.prompt_estimate {
            self.rates.settle(key, estimate, tokens, now_ms);
        }
    }

    pub fn report(&self, key: &KeyHash, now_ms: u64) -> SpendReport {
        self.budgets.report(key, now_ms / 1000)
    }

    /// Takes the spend the shared limits report (in [`PERIODS`] order) as this instance's
    /// own, so a fallback during an outage starts from the cluster's figure, not from this
    /// instance's share of it.
    pub fn mirror(&self, key: &KeyHash, spends: &[Option<Cost>; 4], now_ms: u64) {
        for (reset, spent) in PERIODS.iter().zip(spends) {
            if let Some(spent) = spent {
                self.budgets.seed(key, *reset, now_ms / 1000, *spent);
            }
        }
    }
}
