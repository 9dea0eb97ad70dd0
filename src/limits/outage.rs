//! What the shared (Redis) limits do when Redis cannot answer, and a count of every such
//! event. The policy is `storage.redis_failure`; the counts feed the
//! `switchyard_limits_redis_events_total{event}` metric.

use std::sync::atomic::{AtomicU64, Ordering};

/// `storage.redis_failure`: what an admission gets while Redis is unreachable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RedisFailure {
    /// Admit by this instance's own limits (seeded with the last spend Redis reported), and
    /// replay the spend into Redis when it returns. Availability first: while Redis is away
    /// N instances can together admit up to N times a key's rate and overspend its budget by
    /// what each instance believes remains.
    #[default]
    Open,
    /// Refuse with 503 until Redis answers again. Limits first.
    Closed,
}

impl RedisFailure {
    pub fn parse(s: &str) -> Option<RedisFailure> {
        match s {
            "open" => Some(RedisFailure::Open),
            "closed" => Some(RedisFailure::Closed),
            _ => None,
        }
    }
}

/// Something that happened between the limits and Redis (the metric's `event` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedisEvent {
    /// A call to Redis failed or ran out of time.
    Error,
    /// Redis stopped answering, or did not answer at startup (once per outage): `down`
    /// minus `up` is 1 exactly while Redis is unreachable.
    Down,
    /// Redis answers again after an outage.
    Up,
    /// An admission was decided by the in-process limits because Redis could not answer
    /// (`redis_failure: open`).
    FallbackAdmit,
    /// An admission was refused with 503 because Redis could not answer
    /// (`redis_failure: closed`).
    RefusedUnavailable,
    /// A key's spend for its current periods was copied from the ledger into Redis (first
    /// use in a period, or after Redis lost its data).
    Seeded,
    /// A settle or charge could not reach Redis and waits to be replayed.
    Deferred,
    /// A waiting settle or charge reached Redis.
    Replayed,
    /// A waiting settle or charge was dropped because too many were waiting.
    Dropped,
}

const EVENTS: [RedisEvent; 9] = [
    RedisEvent::Error,
    RedisEvent::Down,
    RedisEvent::Up,
    RedisEvent::FallbackAdmit,
    RedisEvent::RefusedUnavailable,
    RedisEvent::Seeded,
    RedisEvent::Deferred,
    RedisEvent::Replayed,
    RedisEvent::Dropped,
];

impl RedisEvent {
    pub fn label(self) -> &'static str {
        match self {
            RedisEvent::Error => "error",
            RedisEvent::Down => "down",
            RedisEvent::Up => "up",
            RedisEvent::FallbackAdmit => "fallback_admit",
            RedisEvent::RefusedUnavailable => "refused_unavailable",
            RedisEvent::Seeded => "seeded",
            RedisEvent::Deferred => "deferred",
            RedisEvent::Replayed => "replayed",
            RedisEvent::Dropped => "dropped",
        }
    }
}

static COUNTS: [AtomicU64; EVENTS.len()] = [const { AtomicU64::new(0) }; EVENTS.len()];

/// Counts one event. The single place events are recorded: the Prometheus counter is
/// incremented here too once src/metrics.rs declares it.
pub fn record(event: RedisEvent) {
    COUNTS[event as usize].fetch_add(1, Ordering::Relaxed);
    crate::metrics::metrics()
        .limits_redis
        .with_label_values(&[event.label()])
        .inc();
}

/// Every event with its count since the process started.
pub fn redis_events() -> Vec<(&'static str, u64)> {
    EVENTS
        .iter()
        .map(|e| (e.label(), COUNTS[*e as usize].load(Ordering::Relaxed)))
        .collect()
}

/// How many times `event` happened since the process started.
pub fn redis_event_count(event: RedisEvent) -> u64 {
    COUNTS[event as usize].load(Ordering::Relaxed)
}
