//! The one entry point the proxy uses for a key's limits: admit a request (rate limits,
//! then the budget reservation) and settle it, exactly once (see budget.rs for the
//! reserve/settle invariant).
//!
//! Without `storage.redis_url` the limits are this instance's own (local.rs). With it they
//! are shared by every instance (redis.rs), and when Redis cannot answer,
//! `storage.redis_failure` decides: admit by the local limits (`open`) or refuse with 503
//! (`closed`). An admission remembers which limits admitted it and settles there: one the
//! fallback admitted settles in the fallback — its cost is also replayed into Redis's spend
//! when Redis returns — and never touches Redis's holds.

use std::sync::Arc;

use super::local::{LocalHold, LocalLimits};
use super::outage::{record, RedisEvent, RedisFailure};
use super::redis::{RedisLimits, SharedAdmitted, SharedHold, SpendSource};
use super::{BudgetExhausted, Budgets, RateStatus, SpendReport};
use crate::auth::{ApiKey, KeyHash};
use crate::config::StorageSettings;
use crate::ledger::Ledger;
use crate::metering::Cost;

/// What an admitted request holds until it settles (exactly once).
#[derive(Debug)]
pub struct Admission {
    held: Held,
    /// The key's rate-limit standing, for `X-RateLimit-*` headers.
    pub rate_status: Option<RateStatus>,
}

#[derive(Debug)]
enum Held {
    Local(LocalHold),
    Shared(SharedHold),
}

#[derive(Debug, PartialEq)]
pub enum Refusal {
    Budget(BudgetExhausted),
    Rate(RateStatus),
    /// The limit state could not be consulted and the policy is to refuse (fail closed).
    Unavailable(String),
}

pub struct Limiter {
    local: LocalLimits,
    shared: Option<Shared>,
}

struct Shared {
    redis: RedisLimits,
    on_failure: RedisFailure,
}

impl Limiter {
    /// In-process limits only.
    pub fn new(budgets: Arc<Budgets>) -> Limiter {
        Limiter {
            local: LocalLimits::new(budgets),
            shared: None,
        }
    }

    /// Limits shared through the Redis at `url`; `budgets` are the fallback's (and mirror
    /// what Redis reports); `spend` seeds Redis when it lacks a key's spend. Waits at most a
    /// couple of seconds for Redis; one that is not up yet is treated as an outage.
    pub fn with_redis(
        url: &str,
        on_failure: RedisFailure,
        budgets: Arc<Budgets>,
        spend: Arc<dyn SpendSource>,
    ) -> Result<Limiter, String> {
        Ok(Limiter {
            local: LocalLimits::new(budgets),
            shared: Some(Shared {
                redis: RedisLimits::connect(url, spend)?,
                on_failure,
            }),
        })
    }

    /// The limits `storage` asks for: shared when `redis_url` is set, seeded from `ledger`.
    pub fn from_storage(
        storage: &StorageSettings,
        budgets: Arc<Budgets>,
        ledger: &Ledger,
    ) -> Result<Limiter, String> {
        match &storage.redis_url {
            Some(url) => Limiter::with_redis(
                url,
                storage.redis_failure,
                budgets,
                Arc::new(ledger.clone()),
            ),
            None => Ok(Limiter::new(budgets)),
        }
    }

    pub fn budgets(&self) -> &Arc<Budgets> {
        self.local.budgets()
    }

    /// Whether the limits are shared and Redis answers now.
    pub fn shared_up(&self) -> Option<bool> {
        self.shared.as_ref().map(|s| s.redis.is_up())
    }

    /// Settles and charges waiting for Redis to return.
    pub fn shared_backlog(&self) -> usize {
        self.shared.as_ref().map_or(0, |s| s.redis.deferred())
    }

    /// Rate limits first (a refused request reserves nothing), then the budget.
    pub async fn admit(
        &self,
        key: &ApiKey,
        prompt_tokens: u64,
        worst_case: Cost,
        now_ms: u64,
    ) -> Result<Admission, Refusal> {
        let Some(shared) = &self.shared else {
            return self.admit_locally(key, prompt_tokens, worst_case, now_ms);
        };
        match shared
            .redis
            .admit(key, prompt_tokens, worst_case, now_ms)
            .await
        {
            Ok(Ok(SharedAdmitted {
                hold,
                rate_status,
                spends,
            })) => {
                self.local.mirror(&key.hash, &spends, now_ms);
                Ok(Admission {
                    held: Held::Shared(hold),
                    rate_status,
                })
            }
            Ok(Err(refusal)) => Err(refusal),
            Err(e) => match shared.on_failure {
                RedisFailure::Open => {
                    record(RedisEvent::FallbackAdmit);
                    log::debug!("limits: admitting `{}` locally: {e}", key.name);
                    self.admit_locally(key, prompt_tokens, worst_case, now_ms)
                }
                RedisFailure::Closed => {
                    record(RedisEvent::RefusedUnavailable);
                    Err(Refusal::Unavailable(e.to_string()))
                }
            },
        }
    }

    fn admit_locally(
        &self,
        key: &ApiKey,
        prompt_tokens: u64,
        worst_case: Cost,
        now_ms: u64,
    ) -> Result<Admission, Refusal> {
        let (hold, rate_status) = self.local.admit(key, prompt_tokens, worst_case, now_ms)?;
        Ok(Admission {
            held: Held::Local(hold),
            rate_status,
        })
    }

    /// Releases what `admission` held and charges what the request used, where it was
    /// admitted.
    pub async fn settle(
        &self,
        key: &ApiKey,
        admission: Admission,
        actual: Cost,
        tokens: u64,
        now_ms: u64,
    ) {
        let Some(admission) = self.settle_at_once(key, admission, actual, tokens, now_ms) else {
            return;
        };
        match (admission.held, &self.shared) {
            (Held::Local(_), _) => {}
            (Held::Shared(hold), Some(shared)) => {
                if let Some(spends) = shared.redis.settle(hold, actual, tokens, now_ms).await {
                    self.local.mirror(&key.hash, &spends, now_ms);
                }
            }
            // Only shared limits make shared holds.
            (Held::Shared(_), None) => {}
        }
    }

    /// Settles `admission` if that needs no wait (it was admitted by this instance's own
    /// counters); otherwise hands it back, for [`Limiter::settle`].
    pub fn settle_at_once(
        &self,
        key: &ApiKey,
        admission: Admission,
        actual: Cost,
        tokens: u64,
        now_ms: u64,
    ) -> Option<Admission> {
        let Held::Local(hold) = admission.held else {
            return Some(admission);
        };
        self.local.settle(&key.hash, hold, actual, tokens, now_ms);
        if let Some(shared) = &self.shared {
            shared.redis.charge_later(&key.hash, actual, now_ms);
        }
        None
    }

    /// The key's spend: Redis's figures when shared (this instance's mirror of them when
    /// Redis cannot answer).
    pub async fn report(&self, key: &KeyHash, now_ms: u64) -> SpendReport {
        if let Some(shared) = &self.shared {
            match shared.redis.report(key, now_ms).await {
                Ok(report) => return report,
                Err(e) => log::debug!("limits: reporting from this instance's mirror: {e}"),
            }
        }
        self.local.report(key, now_ms)
    }
}
