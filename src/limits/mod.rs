//! Budgets and rate limits per key, enforced before any upstream call and settled after.
//! In-process; state shared across instances (Redis) keeps the same reserve/settle contract.

mod budget;
mod limiter;
pub mod period;
mod rate;

pub use budget::{limit_pico, BudgetExhausted, Budgets, Reservation, SpendReport};
pub use rate::{now_ms, RateLimits, RateStatus};
pub use limiter::{Admission, Limiter, Refusal};
