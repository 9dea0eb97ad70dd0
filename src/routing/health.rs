//! Passive health and live statistics per provider endpoint, shared by every request and kept
//! across config reloads (keyed by provider id and the provider's model id, not by snapshot).
//!
//! Breaker: `FAILURES_TO_OPEN` consecutive failures (connect errors, timeouts, 429, 5xx) open
//! an endpoint's breaker for `COOLDOWN`; while open the router skips it. After the cooldown
//! the next request may try it again (half-open): a success closes the breaker, a failure
//! opens it for another cooldown.

use std::collections::VecDeque;

use rustc_hash::FxHashMap as HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const FAILURES_TO_OPEN: u32 = 3;
pub const COOLDOWN: Duration = Duration::from_secs(30);
/// How far back the live statistics look.
pub const STATS_WINDOW: Duration = Duration::from_secs(300);
const MAX_SAMPLES: usize = 512;

#[derive(Clone, Copy, Debug)]
struct Sample {
    at: Instant,
    ok: bool,
    ttft_ms: Option<u64>,
    tokens_per_sec: Option<f64>,
}

#[derive(Default)]
pub struct EndpointHealth {
    consecutive_failures: AtomicU32,
    /// Unix milliseconds until which the breaker is open; 0 when closed.
    open_until_ms: AtomicU64,
    samples: Mutex<VecDeque<Sample>>,
}

/// What the router and `/endpoints` see of an endpoint's recent history.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct EndpointStats {
    pub requests: usize,
    /// Share of successful attempts in the window, 0..=1.
    pub uptime: f64,
    pub p50_ttft_ms: Option<u64>,
    pub p50_tokens_per_sec: Option<f64>,
    /// Time to first token in seconds at p50, p75, p90, p99.
    pub ttft_percentiles: Option<[f64; 4]>,
    /// Tokens per second at p50, p75, p90, p99 (p75 and up are the slower end).
    pub throughput_percentiles: Option<[f64; 4]>,
}

/// Nearest-rank percentiles of a sorted sample.
fn percentiles(sorted: &[f64]) -> Option<[f64; 4]> {
    if sorted.is_empty() {
        return None;
    }
    let at =
        |q: f64| sorted[((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1];
    Some([at(0.50), at(0.75), at(0.90), at(0.99)])
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl EndpointHealth {
    pub fn is_open(&self) -> bool {
        self.open_until_ms.load(Ordering::Relaxed) > now_ms()
    }

    pub fn record_success(&self, ttft_ms: Option<u64>, tokens_per_sec: Option<f64>) {
        self.consecutive_failures.store(0, Ordering::Relaxed);
        self.open_until_ms.store(0, Ordering::Relaxed);
        self.push(Sample {
            at: Instant::now(),
            ok: true,
            ttft_ms,
            tokens_per_sec,
        });
    }

    pub fn record_failure(&self) {
        let failures = self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        if failures >= FAILURES_TO_OPEN {
            self.open_until_ms
                .store(now_ms() + COOLDOWN.as_millis() as u64, Ordering::Relaxed);
        }
        self.push(Sample {
            at: Instant::now(),
            ok: false,
            ttft_ms: None,
            tokens_per_sec: None,
        });
    }

    fn push(&self, sample: Sample) {
        if let Ok(mut samples) = self.samples.lock() {
            if samples.len() == MAX_SAMPLES {
                samples.pop_front();
            }
            samples.push_back(sample);
        }
    }

    pub fn stats(&self) -> EndpointStats {
        let Ok(samples) = self.samples.lock() else {
            return EndpointStats::default();
        };
        // Samples are pushed in time order: the window is a suffix.
        let now = Instant::now();
        let first = samples.partition_point(|s| now.duration_since(s.at) > STATS_WINDOW);
        let recent = samples.range(first..);
        let requests = recent.len();
        if requests == 0 {
            return EndpointStats::default();
        }
        let ok = recent.clone().filter(|s| s.ok).count();
        let mut ttft: Vec<u64> = recent.clone().filter_map(|s| s.ttft_ms).collect();
        let mut tps: Vec<f64> = recent.filter_map(|s| s.tokens_per_sec).collect();
        drop(samples);
        ttft.sort_unstable();
        tps.sort_unstable_by(f64::total_cmp);
        let ttft_secs: Vec<f64> = ttft.iter().map(|ms| *ms as f64 / 1000.0).collect();
        // Throughput percentiles read from the slow end: p90 is what 90% of requests beat.
        let tps_desc: Vec<f64> = tps.iter().rev().copied().collect();
        EndpointStats {
            requests,
            uptime: ok as f64 / requests as f64,
            p50_ttft_ms: ttft.get(ttft.len() / 2).copied(),
            p50_tokens_per_sec: tps.get(tps.len() / 2).copied(),
            ttft_percentiles: percentiles(&ttft_secs),
            throughput_percentiles: percentiles(&tps_desc),
        }
    }
}

/// Health of every endpoint the gateway has talked to, by provider id, then the provider's
/// model id (two levels, so a lookup by `&str` allocates nothing).
#[derive(Default)]
pub struct HealthBook {
    endpoints: RwLock<HashMap<String, HashMap<String, Arc<EndpointHealth>>>>,
}

impl HealthBook {
    /// The entry for (provider id, provider model id), created on first use.
    pub fn endpoint(&self, provider: &str, model: &str) -> Arc<EndpointHealth> {
        if let Some(h) = self.get(provider, model) {
            return h;
        }
        match self.endpoints.write() {
            Ok(mut m) => m
                .entry(provider.to_string())
                .or_default()
                .entry(model.to_string())
                .or_default()
                .clone(),
            Err(_) => Arc::default(),
        }
    }

    /// Every known endpoint and whether its breaker is open (for metrics).
    pub fn breakers(&self) -> Vec<((String, String), bool)> {
        self.endpoints
            .read()
            .map(|m| {
                m.iter()
                    .flat_map(|(provider, models)| {
                        models
                            .iter()
                            .map(|(model, h)| ((provider.clone(), model.clone()), h.is_open()))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Read-only view: `None` for an endpoint never tried (healthy, no statistics).
    pub fn get(&self, provider: &str, model: &str) -> Option<Arc<EndpointHealth>> {
        self.endpoints
            .read()
            .ok()?
            .get(provider)?
            .get(model)
            .cloned()
    }

    /// Whether the endpoint's breaker is open; an endpoint never tried is closed.
    pub fn is_open(&self, provider: &str, model: &str) -> bool {
        self.endpoints
            .read()
            .ok()
            .and_then(|m| m.get(provider)?.get(model).map(|h| h.is_open()))
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_failures_open_the_breaker_and_a_success_closes_it() {
        let h = EndpointHealth::default();
        for _ in 0..FAILURES_TO_OPEN - 1 {
            h.record_failure();
        }
        assert!(!h.is_open());
        h.record_failure();
        assert!(h.is_open());
        h.record_success(Some(10), Some(50.0));
        assert!(!h.is_open());
        let s = h.stats();
        assert_eq!(s.requests, FAILURES_TO_OPEN as usize + 1);
        assert_eq!(s.p50_ttft_ms, Some(10));
        assert!((s.uptime - 0.25).abs() < 1e-9);
    }

    #[test]
    fn the_book_shares_one_entry_per_endpoint() {
        let book = HealthBook::default();
        assert!(book.get("p", "m").is_none());
        book.endpoint("p", "m").record_failure();
        assert_eq!(book.get("p", "m").unwrap().stats().requests, 1);
    }
}
