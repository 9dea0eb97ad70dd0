//! Limits shared by every instance, in Redis: the same reserve → settle contract as the
//! in-process limits (budget.rs, rate.rs), each step one Lua script run atomically by Redis.
//!
//! - Admit (admit.lua): rate limits, then the budget; an admitted request leaves a *hold*
//!   (its worst-case cost and prompt tokens, bounded: see `hold_of`) with a lease of
//!   [`HOLD_LEASE`]. A request is admitted only while settled spend + all holds are below
//!   the limit, so settled spend ≤ limit + one hold across all instances (when providers
//!   bill no more than the worst case; an under-estimate is charged in full, as
//!   in-process). A refused request holds nothing.
//! - Settle (settle.lua): removes the hold and charges the real cost, exactly once — only
//!   the call that removes the hold charges. When Redis cannot be reached the settle waits
//!   in the link's queue and is replayed when it returns; a hold whose instance died is
//!   released when its lease ends.
//! - Spend survives restarts of Redis and of the gateways: Redis holds each period's spend;
//!   a missing figure (first use in a period, Redis restarted empty, key evicted) is seeded
//!   from the ledger — the system of record — only where absent (seed.lua), so a figure
//!   already in Redis, which is newer, is never overwritten. The ledger lags by its write
//!   batch (50 ms; more under load): a seed just after Redis lost its data may miss the
//!   spend settled that long before it.
//! - Requests the in-process fallback admitted during an outage are charged into Redis when
//!   it returns (charge.lua), exactly once, and only into figures older than the request —
//!   a figure seeded later came from the ledger, which has the request already.
//! - Clocks: periods and rate windows are computed from the instance's clock; instances
//!   should run NTP (a skew of s seconds moves a window edge by s).
//!
//! Key layout and versioning: see keys.rs.

mod keys;
mod link;
mod replies;
#[cfg(test)]
mod test_server;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use ::redis::{Script, Value};
use async_trait::async_trait;
use once_cell::sync::Lazy;

use super::local::PERIODS;
use super::outage::{record, RedisEvent};
use super::period::period_end;
use super::{limit_pico, BudgetExhausted, Refusal, SpendReport};
use crate::auth::{ApiKey, KeyHash, LimitReset};
use crate::metering::Cost;
use keys::{spend_slot, KeySpace};
use link::{Link, LinkThread, ScriptCall};
use replies::{AdmitReply, WINDOW_MS};

pub use link::LinkError;

/// How long a hold lasts when its instance never settles it (it died). Longer than any
/// request should run: a hold that ends while its request still runs lets the key overspend.
pub const HOLD_LEASE: Duration = Duration::from_secs(3600);
/// How long a spend key outlives its period (instances' clocks differ a little).
const SPEND_KEY_MARGIN_S: u64 = 3600;
/// How long a replayed charge is remembered, so a second replay of it changes nothing.
const CHARGE_MARKER_TTL: Duration = Duration::from_secs(24 * 3600);
/// How long seeding may wait on the ledger (it is on the request path, once per key and
/// period).
const SEED_TIMEOUT: Duration = Duration::from_secs(2);
/// How long startup waits for a first answer from Redis.
const STARTUP_WAIT: Duration = Duration::from_secs(2);

static ADMIT: Lazy<Script> = Lazy::new(|| {
    Script::new(concat!(
        include_str!("redis/held.lua"),
        include_str!("redis/admit.lua")
    ))
});
static SETTLE: Lazy<Script> = Lazy::new(|| {
    Script::new(concat!(
        include_str!("redis/held.lua"),
        include_str!("redis/settle.lua")
    ))
});
static CHARGE: Lazy<Script> = Lazy::new(|| Script::new(include_str!("redis/charge.lua")));
static SEED: Lazy<Script> = Lazy::new(|| Script::new(include_str!("redis/seed.lua")));
static REPORT: Lazy<Script> = Lazy::new(|| Script::new(include_str!("redis/report.lua")));

/// Where a key's spend comes from when Redis does not have it: the ledger.
#[async_trait]
pub trait SpendSource: Send + Sync {
    /// Pico-USD `key` spent in the `reset` period that contains `at_ms`.
    async fn spend(&self, key: &KeyHash, reset: LimitReset, at_ms: u64) -> Result<u128, String>;
}

#[async_trait]
impl SpendSource for crate::ledger::Ledger {
    async fn spend(&self, key: &KeyHash, reset: LimitReset, at_ms: u64) -> Result<u128, String> {
        self.spend_at(key, reset, at_ms as i64)
            .await
            .map_err(|e| e.to_string())
    }
}

/// What a request admitted through Redis holds until it settles.
#[derive(Debug)]
pub struct SharedHold {
    key: KeyHash,
    /// The hold's zset member: "id:pico:tokens".
    member: String,
    amount: u128,
    tokens: u64,
    rated: bool,
}

/// A request Redis admitted.
#[derive(Debug)]
pub struct SharedAdmitted {
    pub hold: SharedHold,
    pub rate_status: Option<super::RateStatus>,
    /// The key's spend after the admission, in `PERIODS` order.
    pub spends: [Option<Cost>; 4],
}

/// Redis's decision on one request.
pub type SharedDecision = Result<SharedAdmitted, Refusal>;

pub struct RedisLimits {
    link: Link,
    spend_source: Arc<dyn SpendSource>,
    _thread: LinkThread,
}

/// Decimal pico-USD for a script argument; Redis integers are signed 64-bit.
fn pico_arg(amount: u128) -> String {
    amount.min(i64::MAX as u128).to_string()
}

/// The most one hold may be, in pico-USD and in tokens: 2^53 (about $9,000), beyond what
/// any real request costs — but a client's `max_tokens` alone can make a worst case past
/// 2^63. Redis sums holds in signed 64-bit integers; with holds this small the sums reach
/// 2^62 only with 512 of the largest in flight at once, and admit.lua refuses, before it
/// writes anything, an admission that would take them past that.
const MAX_HOLD: u128 = 1 << 53;

/// What a request holds in Redis: its worst case, but never more than the key's limit — a
/// hold of the whole budget already refuses every other request until it settles, and the
/// cost is charged in full whatever was held — nor more than [`MAX_HOLD`].
fn hold_of(worst_case: Cost, limit: Option<u128>) -> u128 {
    worst_case.0.min(limit.unwrap_or(MAX_HOLD)).min(MAX_HOLD)
}

fn new_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

impl RedisLimits {
    /// Connects to `url`, waiting at most a couple of seconds: when Redis is not up yet
    /// the limits start down and follow the failure policy until it answers.
    pub fn connect(url: &str, spend_source: Arc<dyn SpendSource>) -> Result<RedisLimits, String> {
        let (link, thread) = Link::open(url, STARTUP_WAIT)?;
        Ok(RedisLimits {
            link,
            spend_source,
            _thread: thread,
        })
    }

    pub fn is_up(&self) -> bool {
        self.link.is_up()
    }

    /// Settles and charges waiting for Redis to return.
    pub fn deferred(&self) -> usize {
        self.link.deferred_len()
    }

    /// Decides one request. `Err` when Redis cannot answer (the caller's policy applies).
    pub async fn admit(
        &self,
        key: &ApiKey,
        prompt_tokens: u64,
        worst_case: Cost,
        now_ms: u64,
    ) -> Result<SharedDecision, LinkError> {
        let space = KeySpace::new(&key.hash);
        let window_start = now_ms - now_ms % WINDOW_MS;
        let rated = key.rpm.is_some() || key.tpm.is_some();
        let held_tokens = if rated {
            prompt_tokens.min(MAX_HOLD as u64)
        } else {
            0
        };
        let limit = key.limit_usd.map(limit_pico);
        let hold = hold_of(worst_case, limit);
        let member_id = new_id();
        let mut keys = space.spends(now_ms / 1000).to_vec();
        keys.extend([
            space.holds(),
            space.held(),
            space.requests(window_start),
            space.requests(window_start.saturating_sub(WINDOW_MS)),
            space.tokens(window_start),
            space.tokens(window_start.saturating_sub(WINDOW_MS)),
        ]);
        let args = vec![
            now_ms.to_string(),
            window_start.to_string(),
            limit.map_or(0, |_| spend_slot(key.limit_reset)).to_string(),
            pico_arg(limit.unwrap_or(0)),
            hold.to_string(),
            key.rpm.unwrap_or(0).to_string(),
            key.tpm.unwrap_or(0).to_string(),
            held_tokens.to_string(),
            member_id.clone(),
            (now_ms + HOLD_LEASE.as_millis() as u64).to_string(),
            (HOLD_LEASE.as_millis() as u64 + 60_000).to_string(),
            (3 * WINDOW_MS).to_string(),
            if rated { "1" } else { "0" }.to_string(),
        ];
        let call = ScriptCall {
            script: &ADMIT,
            keys,
            args,
        };
        let hold = SharedHold {
            key: key.hash,
            member: format!("{member_id}:{hold}:{held_tokens}"),
            amount: hold,
            tokens: held_tokens,
            rated,
        };
        // At most one seed: a second "seed" means the figure vanished again at once.
        for attempt in 0..2 {
            let reply: Vec<Value> = match self.link.eval(call.clone()).await {
                Ok(reply) => reply,
                Err(e) => {
                    if !matches!(e, LinkError::Down) {
                        // Sent, so it may have run with its answer lost (a stall past the
                        // deadline): its hold would count against the key for HOLD_LEASE
                        // with nothing to settle it. Released once Redis answers again, on
                        // the same connection, so after the admission; settle's ZREM makes
                        // this a no-op if the admission never ran.
                        self.link.defer(settle_call(&hold, Cost(0), 0, now_ms));
                    }
                    return Err(e);
                }
            };
            let parsed = replies::parse_admit(&reply, window_start).map_err(protocol)?;
            let decided = match parsed {
                AdmitReply::Seed if attempt == 0 => {
                    self.seed(&key.hash, now_ms).await?;
                    continue;
                }
                AdmitReply::Seed => {
                    return Err(protocol("admit: spend still missing after seeding".into()))
                }
                AdmitReply::Rate { kind, window } => {
                    Err(Refusal::Rate(replies::refused(key, kind, &window, now_ms)))
                }
                AdmitReply::Budget { spent, held } => Err(Refusal::Budget(BudgetExhausted {
                    limit: Cost(limit.unwrap_or(0)),
                    spent,
                    reserved: held,
                })),
                AdmitReply::Admitted {
                    requests,
                    spends,
                    tokens,
                    tokens_held,
                } => Ok(SharedAdmitted {
                    hold,
                    rate_status: replies::admitted(key, &requests, &tokens, tokens_held, now_ms),
                    spends,
                }),
            };
            return Ok(decided);
        }
        Err(protocol("admit: no answer".into()))
    }

    /// Releases `hold` and charges `actual`. The key's spend after it when Redis answered;
    /// `None` when it did not — the settle then waits for Redis and is replayed.
    pub async fn settle(
        &self,
        hold: SharedHold,
        actual: Cost,
        tokens: u64,
        now_ms: u64,
    ) -> Option<[Option<Cost>; 4]> {
        let call = settle_call(&hold, actual, tokens, now_ms);
        match self.link.eval::<Vec<Value>>(call.clone()).await {
            Ok(reply) => match replies::parse_settle(&reply) {
                Ok((_, spends)) => Some(spends),
                Err(e) => {
                    log::error!("limits: {e}");
                    None
                }
            },
            Err(e) if e.is_outage() => {
                self.link.defer(call);
                None
            }
            // Refused, not unreachable: a retry would be refused too. The hold ends with
            // its lease.
            Err(_) => None,
        }
    }

    /// Adds the cost of a request the in-process fallback admitted (Redis was away) to the
    /// shared spend, now or when Redis returns.
    pub fn charge_later(&self, key: &KeyHash, actual: Cost, now_ms: u64) {
        if actual.0 == 0 {
            return;
        }
        let space = KeySpace::new(key);
        let mut keys = space.spends(now_ms / 1000).to_vec();
        keys.push(space.charged(&new_id()));
        self.link.defer(ScriptCall {
            script: &CHARGE,
            keys,
            args: vec![
                pico_arg(actual.0),
                CHARGE_MARKER_TTL.as_millis().to_string(),
                now_ms.to_string(),
            ],
        });
    }

    /// The key's spend in each kind of period and its outstanding holds.
    pub async fn report(&self, key: &KeyHash, now_ms: u64) -> Result<SpendReport, LinkError> {
        let space = KeySpace::new(key);
        let mut keys = space.spends(now_ms / 1000).to_vec();
        keys.push(space.held());
        let call = ScriptCall {
            script: &REPORT,
            keys,
            args: vec![],
        };
        for attempt in 0..2 {
            let reply: Vec<Value> = self.link.eval(call.clone()).await?;
            match replies::parse_report(&reply).map_err(protocol)? {
                Some(([daily, weekly, monthly, total], reserved)) => {
                    return Ok(SpendReport {
                        daily,
                        weekly,
                        monthly,
                        total,
                        reserved,
                    })
                }
                None if attempt == 0 => self.seed(key, now_ms).await?,
                None => break,
            }
        }
        Err(protocol("report: spend still missing after seeding".into()))
    }

    /// Copies the ledger's spend for the current periods into Redis where Redis has none.
    async fn seed(&self, key: &KeyHash, now_ms: u64) -> Result<(), LinkError> {
        let mut spent = Vec::with_capacity(4);
        for reset in PERIODS {
            let read = self.spend_source.spend(key, reset, now_ms);
            match tokio::time::timeout(SEED_TIMEOUT, read).await {
                Ok(Ok(v)) => spent.push(pico_arg(v)),
                Ok(Err(e)) => return Err(protocol(format!("reading spend from the ledger: {e}"))),
                Err(_) => {
                    return Err(protocol(format!(
                        "the ledger did not answer within {SEED_TIMEOUT:?}"
                    )))
                }
            }
        }
        let now_unix = now_ms / 1000;
        let expiries = PERIODS.map(|reset| {
            period_end(reset, now_unix)
                .map_or(0, |end| end + SPEND_KEY_MARGIN_S)
                .to_string()
        });
        let space = KeySpace::new(key);
        let call = ScriptCall {
            script: &SEED,
            keys: space.spends(now_unix).to_vec(),
            args: spent
                .into_iter()
                .chain(expiries)
                .chain([now_ms.to_string()])
                .collect(),
        };
        self.link.eval::<Value>(call).await?;
        record(RedisEvent::Seeded);
        Ok(())
    }
}

/// settle.lua for `hold`: release it and charge `actual` (and `tokens` to a rated key's
/// window), exactly once whoever sends it first.
fn settle_call(hold: &SharedHold, actual: Cost, tokens: u64, now_ms: u64) -> ScriptCall {
    let space = KeySpace::new(&hold.key);
    let window_start = now_ms - now_ms % WINDOW_MS;
    let mut keys = space.spends(now_ms / 1000).to_vec();
    keys.extend([space.holds(), space.held(), space.tokens(window_start)]);
    ScriptCall {
        script: &SETTLE,
        keys,
        args: vec![
            hold.member.clone(),
            pico_arg(hold.amount),
            hold.tokens.to_string(),
            pico_arg(actual.0),
            if hold.rated { tokens } else { 0 }.to_string(),
            (3 * WINDOW_MS).to_string(),
        ],
    }
}

fn protocol(why: String) -> LinkError {
    LinkError::Unusable(why)
}
