//! The shared limits against a real `redis-server` (skipped when it is not installed): the
//! same decisions as the in-process limiter, the budget invariant across instances, exactly
//! once settles, seeding from the ledger, leases, and both failure policies.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::super::{
    limit_pico, now_ms, redis_event_count, Admission, Budgets, Limiter, RedisFailure, Refusal,
};
use super::test_server::TestRedis;
use super::*;
use crate::routing::ProviderPrefs;

const USD: u128 = crate::catalog::PICO_USD_PER_USD as u128;

/// The ledger as the tests set it: spend per (key, period), zero when unset.
#[derive(Default)]
struct FakeLedger(Mutex<HashMap<(KeyHash, &'static str), u128>>);

#[async_trait]
impl SpendSource for FakeLedger {
    async fn spend(&self, key: &KeyHash, reset: LimitReset, _at_ms: u64) -> Result<u128, String> {
        Ok(*self
            .0
            .lock()
            .unwrap()
            .get(&(*key, reset.as_str()))
            .unwrap_or(&0))
    }
}

fn key(limit_usd: Option<f64>, reset: LimitReset, rpm: Option<u32>, tpm: Option<u64>) -> ApiKey {
    ApiKey {
        name: "k".into(),
        hash: rand::random(),
        limit_usd,
        limit_reset: reset,
        rpm,
        tpm,
        allowed_models: None,
        provider_prefs: ProviderPrefs::default(),
        disabled: false,
    }
}

fn shared(redis: &TestRedis, on_failure: RedisFailure, ledger: Arc<FakeLedger>) -> Limiter {
    Limiter::with_redis(
        &redis.url(),
        on_failure,
        Arc::new(Budgets::default()),
        ledger,
    )
    .unwrap()
}

async fn raw(redis: &TestRedis) -> ::redis::aio::MultiplexedConnection {
    ::redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn get(conn: &mut ::redis::aio::MultiplexedConnection, k: &str) -> Option<String> {
    ::redis::cmd("GET").arg(k).query_async(conn).await.unwrap()
}

async fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A key limited by tokens alone is told the tokens it may still use, as in-process, where
/// every admitted request said `X-RateLimit-Remaining: 0`.
#[tokio::test]
async fn a_tokens_only_key_is_told_the_tokens_that_remain() {
    let Some(redis) = TestRedis::start() else {
        return;
    };
    let remote = shared(&redis, RedisFailure::Closed, Arc::default());
    let k = key(None, LimitReset::Never, None, Some(1_000));
    let now = now_ms() - now_ms() % 60_000 + 1_000;
    let a = remote.admit(&k, 300, Cost(0), now).await.unwrap();
    let s = a.rate_status.unwrap();
    assert_eq!((s.kind, s.limit, s.remaining), ("tokens", 1_000, 700));
    remote.settle(&k, a, Cost(0), 450, now + 1).await;
    let b = remote.admit(&k, 100, Cost(0), now + 2).await.unwrap();
    assert_eq!(
        b.rate_status.unwrap().remaining,
        450,
        "450 used, 100 in flight"
    );
}

#[tokio::test]
async fn decides_exactly_like_the_in_process_limiter() {
    let Some(redis) = TestRedis::start() else {
        return;
    };
    let local = Limiter::new(Arc::new(Budgets::default()));
    let remote = shared(&redis, RedisFailure::Closed, Arc::default());
    let keys = [
        key(None, LimitReset::Never, Some(6), None),
        key(None, LimitReset::Never, None, Some(2_500)),
        key(Some(0.02), LimitReset::Daily, Some(30), Some(20_000)),
        key(Some(0.01), LimitReset::Never, None, None),
    ];
    let mut rng = StdRng::seed_from_u64(11);
    // Mid-window, near the real clock (spend keys expire after their real period), and
    // within one UTC day: the 1,000 steps advance the clock up to 25 minutes, and past
    // midnight Redis leaves a new period's spend to the ledger's seed (none here) while the
    // in-process limiter starts it from the settles (both right; they differ by design).
    const DAY_MS: u64 = 86_400_000;
    let mut now = now_ms() - now_ms() % 60_000 + 17_000;
    if now % DAY_MS > DAY_MS - 30 * 60_000 {
        now -= 30 * 60_000;
    }
    let mut open: Vec<(usize, Admission, Admission, u128)> = Vec::new();
    let mut admitted = 0;
    let mut refused: HashMap<&str, usize> = HashMap::new();
    for step in 0..1_000 {
        now += rng.gen_range(0..1_500);
        if open.is_empty() || rng.gen_bool(0.55) {
            let k = rng.gen_range(0..keys.len());
            let prompt = rng.gen_range(0..400);
            let worst = Cost(rng.gen_range(0..USD / 1000));
            let a = local.admit(&keys[k], prompt, worst, now).await;
            let b = remote.admit(&keys[k], prompt, worst, now).await;
            match (a, b) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(a.rate_status, b.rate_status, "step {step}");
                    admitted += 1;
                    open.push((k, a, b, worst.0));
                }
                (Err(a), Err(b)) => {
                    assert_eq!(a, b, "step {step}");
                    let kind = match a {
                        Refusal::Rate(status) => status.kind,
                        Refusal::Budget(_) => "budget",
                        Refusal::Unavailable(_) => "unavailable",
                    };
                    *refused.entry(kind).or_default() += 1;
                }
                (a, b) => panic!("step {step}: in-process {a:?}, redis {b:?}"),
            }
        } else {
            let (k, a, b, worst) = open.swap_remove(rng.gen_range(0..open.len()));
            // Under- and over-estimates alike: the real cost is charged in full.
            let actual = Cost(rng.gen_range(0..worst * 3 / 2 + 1));
            let tokens = rng.gen_range(0..600);
            local.settle(&keys[k], a, actual, tokens, now).await;
            remote.settle(&keys[k], b, actual, tokens, now).await;
        }
        if step % 50 == 0 {
            for k in &keys {
                assert_eq!(
                    local.report(&k.hash, now).await,
                    remote.report(&k.hash, now).await
                );
            }
        }
    }
    println!("{admitted} admitted; refused: {refused:?}");
    assert!(admitted > 200, "{admitted}");
    for kind in ["requests", "tokens", "budget"] {
        assert!(
            refused.get(kind).copied().unwrap_or(0) > 20,
            "{kind}: {refused:?}"
        );
    }
}

#[tokio::test]
async fn instances_sharing_redis_never_settle_above_the_limit_plus_one_hold() {
    let Some(redis) = TestRedis::start() else {
        return;
    };
    let ledger = Arc::new(FakeLedger::default());
    let instances: Vec<Arc<Limiter>> = (0..3)
        .map(|_| Arc::new(shared(&redis, RedisFailure::Closed, ledger.clone())))
        .collect();
    let k = Arc::new(key(Some(0.05), LimitReset::Monthly, None, None));
    let hold = Cost(USD / 1000);
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let (limiter, k) = (instances[i % 3].clone(), k.clone());
            tokio::spawn(async move {
                for _ in 0..40 {
                    if let Ok(a) = limiter.admit(&k, 10, hold, now_ms()).await {
                        tokio::task::yield_now().await;
                        limiter.settle(&k, a, hold, 10, now_ms()).await;
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let report = instances[0].report(&k.hash, now_ms()).await;
    assert_eq!(report.reserved, Cost(0), "every hold settled");
    assert!(report.monthly.0 <= limit_pico(0.05) + hold.0, "{report:?}");
    assert!(
        report.monthly.0 >= limit_pico(0.05),
        "the budget was used up: {report:?}"
    );
}

#[tokio::test]
async fn a_retried_settle_charges_once_and_a_refusal_holds_nothing() {
    let Some(redis) = TestRedis::start() else {
        return;
    };
    let limits = RedisLimits::connect(&redis.url(), Arc::new(FakeLedger::default())).unwrap();
    let k = key(Some(1.0), LimitReset::Daily, None, None);
    let now = now_ms();
    let Ok(SharedAdmitted { hold, .. }) = limits.admit(&k, 0, Cost(USD), now).await.unwrap() else {
        panic!("admitted")
    };
    let refused = limits.admit(&k, 0, Cost(1), now).await.unwrap();
    assert!(matches!(refused, Err(Refusal::Budget(_))), "{refused:?}");
    let again = SharedHold {
        key: hold.key,
        member: hold.member.clone(),
        amount: hold.amount,
        tokens: hold.tokens,
        rated: hold.rated,
    };
    limits.settle(hold, Cost(USD / 4), 0, now).await.unwrap();
    limits.settle(again, Cost(USD / 4), 0, now).await.unwrap();
    let report = limits.report(&k.hash, now).await.unwrap();
    assert_eq!((report.daily, report.reserved), (Cost(USD / 4), Cost(0)));
}

#[tokio::test]
async fn spend_missing_from_redis_is_seeded_from_the_ledger_and_never_overwritten() {
    let Some(mut redis) = TestRedis::start() else {
        return;
    };
    let ledger = Arc::new(FakeLedger::default());
    let k = key(Some(1.0), LimitReset::Monthly, None, None);
    ledger
        .0
        .lock()
        .unwrap()
        .insert((k.hash, "monthly"), USD * 9 / 10);
    let limiter = shared(&redis, RedisFailure::Closed, ledger.clone());
    let now = now_ms();
    let a = limiter.admit(&k, 0, Cost(USD / 20), now).await.unwrap();
    limiter.settle(&k, a, Cost(USD / 20), 0, now).await;
    assert_eq!(
        limiter.report(&k.hash, now).await.monthly,
        Cost(USD * 95 / 100)
    );
    // A later ledger figure does not replace Redis's newer one: 0.95 spent + 0.05 held
    // reach the limit.
    ledger.0.lock().unwrap().insert((k.hash, "monthly"), 0);
    let held = limiter.admit(&k, 0, Cost(USD / 20), now).await.unwrap();
    assert!(limiter.admit(&k, 0, Cost(1), now).await.is_err());
    limiter.settle(&k, held, Cost(0), 0, now).await;
    // Once Redis loses its data the ledger is the system of record again.
    redis.restart();
    let a = eventually_admitted(&limiter, &k, Cost(USD / 10), now).await;
    limiter.settle(&k, a, Cost(0), 0, now).await;
    assert_eq!(limiter.report(&k.hash, now).await.monthly, Cost(0));
}

/// Admits once Redis answers again (the first call after a restart finds the old
/// connection broken and marks the link down until the probe reconnects).
async fn eventually_admitted(limiter: &Limiter, k: &ApiKey, worst: Cost, now: u64) -> Admission {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match limiter.admit(k, 0, worst, now).await {
            Ok(a) => return a,
            Err(e) => assert!(Instant::now() < deadline, "never admitted again: {e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_hold_of_an_instance_that_never_settles_ends_with_its_lease() {
    let Some(redis) = TestRedis::start() else {
        return;
    };
    let limiter = shared(&redis, RedisFailure::Closed, Arc::default());
    let k = key(Some(1.0), LimitReset::Never, None, None);
    let now = now_ms();
    let forgotten = limiter.admit(&k, 0, Cost(USD), now).await.unwrap();
    std::mem::forget(forgotten); // its instance died
    assert!(limiter.admit(&k, 0, Cost(1), now + 1_000).await.is_err());
    let later = now + HOLD_LEASE.as_millis() as u64 + 1;
    let a = limiter
        .admit(&k, 0, Cost(1), later)
        .await
        .expect("the lease ended");
    limiter.settle(&k, a, Cost(1), 0, later).await;
    assert_eq!(limiter.report(&k.hash, later).await.reserved, Cost(0));
}

/// `"max_tokens": 9007199254740991` at $15 per million output tokens: a worst case far
/// beyond the 64-bit integers Redis sums holds in.
const ABSURD_WORST_CASE: Cost = Cost(9_007_199_254_740_991 * 15_000_000);

#[tokio::test]
async fn a_worst_case_beyond_redis_integers_never_lifts_the_limit() {
    let Some(redis) = TestRedis::start() else {
        return;
    };
    let (limiter, other) = (
        shared(&redis, RedisFailure::Closed, Arc::default()),
        shared(&redis, RedisFailure::Closed, Arc::default()),
    );
    let k = key(Some(1.0), LimitReset::Never, None, None);
    let now = now_ms();
    let in_flight = limiter.admit(&k, 0, Cost(USD / 10), now).await.unwrap();
    let huge = limiter
        .admit(&k, 0, ABSURD_WORST_CASE, now)
        .await
        .expect("admitted: budget remained");
    let refusal = other.admit(&k, 0, Cost(1), now).await;
    assert!(
        matches!(refusal, Err(Refusal::Budget(_))),
        "its hold takes the rest of the budget: {refusal:?}"
    );
    std::mem::forget(huge); // its instance died: the hold ends with its lease
    limiter
        .settle(&k, in_flight, Cost(USD / 10), 0, now + 1)
        .await;
    let later = now + HOLD_LEASE.as_millis() as u64 + 1;
    let last = limiter
        .admit(&k, 0, Cost(USD), later)
        .await
        .expect("the lease ended");
    limiter.settle(&k, last, Cost(USD), 0, later).await;
    let report = limiter.report(&k.hash, later).await;
    assert_eq!(
        (report.total, report.reserved),
        (Cost(USD * 11 / 10), Cost(0))
    );
    for instance in [&limiter, &other] {
        let refusal = instance.admit(&k, 0, Cost(1), later + 1).await;
        assert!(
            matches!(refusal, Err(Refusal::Budget(_))),
            "$1.10 spent of $1: {refusal:?}"
        );
    }
    let mut conn = raw(&redis).await;
    let held: Option<String> = ::redis::cmd("HGET")
        .arg(KeySpace::new(&k.hash).held())
        .arg("usd")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(held.as_deref(), Some("0"));
}

#[tokio::test]
async fn a_hold_an_earlier_version_orphaned_does_not_lift_the_limit() {
    let Some(redis) = TestRedis::start() else {
        return;
    };
    let limiter = shared(&redis, RedisFailure::Closed, Arc::default());
    let k = key(Some(1.0), LimitReset::Never, None, None);
    let space = KeySpace::new(&k.hash);
    let now = now_ms();
    let spend_all = limiter.admit(&k, 0, Cost(USD / 10), now).await.unwrap();
    limiter.settle(&k, spend_all, Cost(USD), 0, now).await;
    // What a failed admission of the earlier admit.lua left: a hold of 2^63 - 1 whose sums
    // were never raised, its lease ending in a second.
    let mut conn = raw(&redis).await;
    let _: () = ::redis::cmd("ZADD")
        .arg(space.holds())
        .arg(now + 1_000)
        .arg(format!("orphan:{}:0", i64::MAX))
        .query_async(&mut conn)
        .await
        .unwrap();
    let refusal = limiter.admit(&k, 0, Cost(1), now + 2_000).await;
    assert!(
        matches!(refusal, Err(Refusal::Budget(_))),
        "its lease ended: {refusal:?}"
    );
    // A sum an orphan already took below zero before the upgrade.
    let _: () = ::redis::cmd("HSET")
        .arg(space.held())
        .arg("usd")
        .arg(1 - i64::MAX)
        .query_async(&mut conn)
        .await
        .unwrap();
    let refusal = limiter.admit(&k, 0, Cost(1), now + 3_000).await;
    assert!(
        matches!(refusal, Err(Refusal::Budget(_))),
        "a negative sum: {refusal:?}"
    );
}

#[tokio::test]
async fn an_admission_redis_cannot_sum_leaves_nothing_behind() {
    let Some(redis) = TestRedis::start() else {
        return;
    };
    let limits = RedisLimits::connect(&redis.url(), Arc::new(FakeLedger::default())).unwrap();
    let k = key(None, LimitReset::Never, Some(100), None);
    let space = KeySpace::new(&k.hash);
    let now = now_ms();
    let Ok(SharedAdmitted { hold, .. }) = limits.admit(&k, 0, Cost(1), now).await.unwrap() else {
        panic!("admitted")
    };
    limits.settle(hold, Cost(1), 0, now).await.unwrap();
    // Held sums one more hold would take past Redis's 64-bit integers (a hand-edited key,
    // or holds made by instances that disagree on how much to hold).
    let mut conn = raw(&redis).await;
    let near_max = (i64::MAX - 10).to_string();
    let _: () = ::redis::cmd("HSET")
        .arg(space.held())
        .arg("usd")
        .arg(&near_max)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(limits.admit(&k, 0, Cost(USD), now).await.is_err());
    let holds: u64 = ::redis::cmd("ZCARD")
        .arg(space.holds())
        .query_async(&mut conn)
        .await
        .unwrap();
    let held: Option<String> = ::redis::cmd("HGET")
        .arg(space.held())
        .arg("usd")
        .query_async(&mut conn)
        .await
        .unwrap();
    let requests = get(&mut conn, &space.requests(now - now % WINDOW_MS)).await;
    assert_eq!(
        (holds, held.as_deref(), requests.as_deref()),
        (0, Some(near_max.as_str()), Some("1")),
        "no hold, no change to the sums, not counted"
    );
}

#[tokio::test]
async fn fail_open_admits_locally_then_replays_the_spend_when_redis_returns() {
    let Some(redis) = TestRedis::start() else {
        return;
    };
    let limiter = shared(&redis, RedisFailure::Open, Arc::default());
    let k = key(Some(1.0), LimitReset::Daily, Some(100), None);
    let now = now_ms();
    // Counters are process-wide and tests run in parallel: compare at least.
    let counted = |e| redis_event_count(e);
    let (fallbacks, replays) = (
        counted(RedisEvent::FallbackAdmit),
        counted(RedisEvent::Replayed),
    );
    let before = limiter.admit(&k, 0, Cost(USD / 10), now).await.unwrap();
    // A hung Redis: calls time out rather than fail.
    redis.pause(true);
    limiter.settle(&k, before, Cost(USD / 10), 5, now).await;
    assert_eq!(limiter.shared_up(), Some(false));
    assert_eq!(limiter.shared_backlog(), 1, "the settle waits for Redis");
    let started = Instant::now();
    let during = limiter
        .admit(&k, 0, Cost(USD / 10), now)
        .await
        .expect("fail open");
    assert!(
        started.elapsed() < Duration::from_millis(150),
        "a down link is not waited on"
    );
    limiter.settle(&k, during, Cost(USD / 5), 5, now).await;
    assert_eq!(
        limiter.shared_backlog(),
        2,
        "the fallback's spend waits for Redis too"
    );
    redis.pause(false);
    // The backlog counts writes still queued; the last one leaves the queue just before it
    // is sent and counted as replayed, so wait for the count too.
    wait_until("the backlog to reach redis", || {
        limiter.shared_backlog() == 0 && counted(RedisEvent::Replayed) >= replays + 2
    })
    .await;
    assert!(counted(RedisEvent::FallbackAdmit) > fallbacks);
    assert!(counted(RedisEvent::Replayed) >= replays + 2);
    let report = limiter.report(&k.hash, now).await;
    assert_eq!(
        (report.daily, report.reserved),
        (Cost(USD * 3 / 10), Cost(0))
    );
    let mut conn = raw(&redis).await;
    let rq = KeySpace::new(&k.hash).requests(now - now % WINDOW_MS);
    assert_eq!(
        get(&mut conn, &rq).await.as_deref(),
        Some("1"),
        "only the request Redis admitted counts there; the fallback counted its own locally"
    );
}

/// An admission sent to a Redis that stalls past the deadline still runs when Redis wakes,
/// and leaves a hold nobody was told about: it is released once Redis answers again, rather
/// than counting against the key's budget for the hold's hour-long lease.
#[tokio::test]
async fn an_admission_whose_answer_was_lost_leaves_no_hold() {
    let Some(redis) = TestRedis::start() else {
        return;
    };
    let limiter = shared(&redis, RedisFailure::Open, Arc::default());
    let k = key(Some(1.0), LimitReset::Daily, None, None);
    let now = now_ms();
    let first = limiter.admit(&k, 0, Cost(USD / 10), now).await.unwrap();
    limiter.settle(&k, first, Cost(USD / 10), 5, now).await;
    redis.pause(true);
    // Sent, then no answer in time: admitted by the local fallback.
    let lost = limiter
        .admit(&k, 0, Cost(USD / 4), now)
        .await
        .expect("fail open");
    assert_eq!(limiter.shared_up(), Some(false));
    limiter.settle(&k, lost, Cost(USD / 10), 5, now).await;
    redis.pause(false);
    wait_until("redis to answer again", || {
        limiter.shared_up() == Some(true)
    })
    .await;
    wait_until("the backlog to reach redis", || {
        limiter.shared_backlog() == 0
    })
    .await;
    let mut conn = raw(&redis).await;
    let space = KeySpace::new(&k.hash);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let holds: u64 = ::redis::cmd("ZCARD")
            .arg(space.holds())
            .query_async(&mut conn)
            .await
            .unwrap();
        let report = limiter.report(&k.hash, now).await;
        if holds == 0 && report.reserved == Cost(0) {
            // Both requests' costs are charged; nothing stays held.
            assert_eq!(report.daily, Cost(USD / 5));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{holds} hold(s), {:?} reserved after Redis came back",
            report.reserved
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_fallback_charge_is_not_counted_twice_once_redis_returns_empty() {
    let Some(mut redis) = TestRedis::start() else {
        return;
    };
    let ledger = Arc::new(FakeLedger::default());
    let limiter = shared(&redis, RedisFailure::Open, ledger.clone());
    let k = key(Some(1.0), LimitReset::Never, None, None);
    let now = now_ms();
    let a = limiter.admit(&k, 0, Cost(USD / 10), now).await.unwrap();
    limiter.settle(&k, a, Cost(USD / 10), 0, now).await;
    redis.kill();
    let during = limiter
        .admit(&k, 0, Cost(USD / 5), now + 1)
        .await
        .expect("fail open");
    limiter.settle(&k, during, Cost(USD / 5), 0, now + 2).await;
    // The ledger has both records by the time Redis comes back without its data.
    ledger
        .0
        .lock()
        .unwrap()
        .insert((k.hash, "never"), USD * 3 / 10);
    redis.restart();
    let a = eventually_admitted(&limiter, &k, Cost(0), now + 3).await;
    limiter.settle(&k, a, Cost(0), 0, now + 3).await;
    wait_until("the charge to be replayed", || {
        limiter.shared_backlog() == 0
    })
    .await;
    assert_eq!(
        limiter.report(&k.hash, now + 3).await.total,
        Cost(USD * 3 / 10)
    );
}

#[tokio::test]
async fn fail_closed_refuses_at_once_while_redis_is_down_and_recovers() {
    let Some(mut redis) = TestRedis::start() else {
        return;
    };
    let limiter = shared(&redis, RedisFailure::Closed, Arc::default());
    let k = key(Some(1.0), LimitReset::Daily, None, None);
    assert!(limiter.admit(&k, 0, Cost(1), now_ms()).await.is_ok());
    let refused = redis_event_count(RedisEvent::RefusedUnavailable);
    redis.kill();
    let refusal = limiter.admit(&k, 0, Cost(1), now_ms()).await.unwrap_err();
    assert!(matches!(refusal, Refusal::Unavailable(_)), "{refusal:?}");
    let started = Instant::now();
    for _ in 0..10 {
        assert!(matches!(
            limiter.admit(&k, 0, Cost(1), now_ms()).await,
            Err(Refusal::Unavailable(_))
        ));
    }
    assert!(
        started.elapsed() < Duration::from_millis(150),
        "refused without waiting"
    );
    assert!(redis_event_count(RedisEvent::RefusedUnavailable) >= refused + 11);
    redis.restart();
    wait_until("the link to come back", || {
        limiter.shared_up() == Some(true)
    })
    .await;
    eventually_admitted(&limiter, &k, Cost(1), now_ms()).await;
}

#[tokio::test]
async fn a_call_redis_refuses_fails_alone_and_leaves_the_link_up() {
    let Some(redis) = TestRedis::start() else {
        return;
    };
    let limiter = shared(&redis, RedisFailure::Closed, Arc::default());
    let (broken, fine) = (
        key(Some(1.0), LimitReset::Daily, None, None),
        key(None, LimitReset::Never, None, None),
    );
    let now = now_ms();
    // A hand-made string where the scripts keep a hash: every call on this key is refused.
    let spend = KeySpace::new(&broken.hash).spends(now / 1000)[0].clone();
    let mut conn = raw(&redis).await;
    let _: () = ::redis::cmd("SET")
        .arg(&spend)
        .arg("1")
        .query_async(&mut conn)
        .await
        .unwrap();
    for _ in 0..3 {
        let refusal = limiter.admit(&broken, 0, Cost(1), now).await.unwrap_err();
        assert!(matches!(refusal, Refusal::Unavailable(_)), "{refusal:?}");
    }
    assert_eq!(
        limiter.shared_up(),
        Some(true),
        "a refusal is not an outage"
    );
    assert!(limiter.admit(&fine, 0, Cost(1), now).await.is_ok());
}

#[test]
fn startup_is_bounded_when_redis_is_not_there() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let limiter = Limiter::with_redis(
        &format!("redis://127.0.0.1:{port}"),
        RedisFailure::Open,
        Arc::new(Budgets::default()),
        Arc::new(FakeLedger::default()),
    )
    .unwrap();
    assert!(started.elapsed() < STARTUP_WAIT + Duration::from_millis(500));
    assert_eq!(limiter.shared_up(), Some(false));
    assert!(Limiter::with_redis(
        "not a url",
        RedisFailure::Open,
        Arc::default(),
        Arc::new(FakeLedger::default())
    )
    .is_err());
}
