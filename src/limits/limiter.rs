//! The one entry point the proxy uses for a key's limits: admit a request (rate limits, then
//! the budget reservation) and settle it. In-process state; the async interface is what a
//! shared backend (Redis, for several instances) implements too, with the same
//! reserve/settle contract (see budget.rs).

use std::sync::Arc;

use super::{BudgetExhausted, Budgets, RateLimits, RateStatus, Reservation, SpendReport};
use crate::auth::{ApiKey, KeyHash};
use crate::metering::Cost;

/// What an admitted request holds until it settles (exactly once).
#[derive(Debug)]
pub struct Admission {
    reservation: Option<Reservation>,
    /// The prompt estimate counted against the key's tokens per minute while in flight.
    prompt_estimate: Option<u64>,
    /// The key's rate-limit standing, for `X-RateLimit-*` headers.
    pub rate_status: Option<RateStatus>,
}

#[derive(Debug, PartialEq)]
pub enum Refusal {
    Budget(BudgetExhausted),
    Rate(RateStatus),
    /// The limit state could not be consulted and the policy is to refuse (fail closed).
    Unavailable(String),
}

pub struct Limiter {
    budgets: Arc<Budgets>,
    rates: RateLimits,
}

impl Limiter {
    pub fn new(budgets: Arc<Budgets>) -> Limiter {
        Limiter { budgets, rates: RateLimits::default() }
    }

    pub fn budgets(&self) -> &Arc<Budgets> {
        &self.budgets
    }

    /// Rate limits first (a refused request reserves nothing), then the budget.
    pub async fn admit(&self, key: &ApiKey, prompt_tokens: u64, worst_case: Cost, now_ms: u64) -> Result<Admission, Refusal> {
        let rate_status = self.rates.admit(key, prompt_tokens, now_ms).map_err(Refusal::Rate)?;
        let prompt_estimate = rate_status.map(|_| prompt_tokens);
        match self.budgets.reserve(key, worst_case, now_ms / 1000) {
            Ok(r) => Ok(Admission { reservation: Some(r), prompt_estimate, rate_status }),
            Err(exhausted) => {
                // The request will not run: its tokens-per-minute hold goes too.
                if let Some(estimate) = prompt_estimate {
                    self.rates.settle(&key.hash, estimate, 0, now_ms);
                }
                Err(Refusal::Budget(exhausted))
            }
        }
    }

    /// Releases what `admission` held and charges what the request used.
    pub async fn settle(&self, key: &ApiKey, admission: Admission, actual: Cost, tokens: u64, now_ms: u64) {
        if let Some(r) = admission.reservation {
            self.budgets.settle(r, actual, now_ms / 1000);
        }
        if let Some(estimate) = admission.prompt_estimate {
            self.rates.settle(&key.hash, estimate, tokens, now_ms);
        }
    }

    pub async fn report(&self, key: &KeyHash, now_ms: u64) -> SpendReport {
        self.budgets.report(key, now_ms / 1000)
    }
}
