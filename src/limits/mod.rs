//! Budgets and rate limits per key, enforced before any upstream call and settled after:
//! in-process for one instance, or in Redis for several (same reserve/settle contract).

mod budget;
mod limiter;
mod local;
mod outage;
pub mod period;
mod rate;
mod redis;

pub use budget::{limit_pico, BudgetExhausted, Budgets, Reservation, SpendReport};
pub use limiter::{Admission, Limiter, Refusal};
pub use outage::{redis_event_count, redis_events, RedisEvent, RedisFailure};
pub use rate::{now_ms, RateLimits, RateStatus};
pub use redis::{SpendSource, HOLD_LEASE};
