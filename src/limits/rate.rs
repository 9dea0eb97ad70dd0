//! Per-key rate limits: requests per minute and tokens per minute.
//!
//! A sliding window estimated from two fixed one-minute windows (the current count plus the
//! previous window's count weighted by how much of it still overlaps the last 60 s): O(1)
//! memory per key, no timestamps per request, and within a few percent of an exact log.
//! Requests count when admitted; tokens count when a request settles (its real usage) plus,
//! while in flight, its prompt estimate — so a burst of large prompts is held back before
//! the provider bills them.

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::auth::{ApiKey, KeyHash, KeyHashMap};

const WINDOW_MS: u64 = 60_000;

#[derive(Default, Clone, Copy)]
struct Window {
    start_ms: u64,
    current: u64,
    previous: u64,
}

impl Window {
    /// Moves to the window containing `now_ms`, forward only: a timestamp from an earlier
    /// window (read before an await on Redis while other requests moved the window on,
    /// another thread's, or a clock stepped back) counts in the current one, as if at its
    /// start — moving back would drop both windows' counts.
    fn roll(&mut self, now_ms: u64) {
        let start = now_ms - now_ms % WINDOW_MS;
        if start > self.start_ms {
            self.previous = if start - self.start_ms == WINDOW_MS {
                self.current
            } else {
                0
            };
            self.current = 0;
            self.start_ms = start;
        }
    }

    fn estimate(&self, now_ms: u64) -> f64 {
        let into = now_ms.saturating_sub(self.start_ms) as f64 / WINDOW_MS as f64;
        self.previous as f64 * (1.0 - into) + self.current as f64
    }

    /// Milliseconds until the estimate drops by at least one unit below `limit`.
    fn wait_ms(&self, now_ms: u64, limit: u64) -> u64 {
        if self.previous == 0 {
            return WINDOW_MS - now_ms.saturating_sub(self.start_ms);
        }
        let excess = self.estimate(now_ms) + 1.0 - limit as f64;
        let per_ms = self.previous as f64 / WINDOW_MS as f64;
        let ms = (excess / per_ms).ceil().max(1.0) as u64;
        ms.min(WINDOW_MS * 2)
    }
}

#[derive(Default)]
struct KeyRate {
    requests: Window,
    tokens: Window,
    tokens_in_flight: u64,
}

/// What the client is told in `X-RateLimit-*` headers and on a 429.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateStatus {
    pub limit: u64,
    pub remaining: u64,
    /// Unix seconds at which the current window ends.
    pub reset_unix: u64,
    /// Seconds to wait, when limited.
    pub retry_after: Option<u64>,
    /// Which limit refused the request: "requests" or "tokens".
    pub kind: &'static str,
}

/// What a key limited to `tpm` tokens a minute may still use, `used` counted (the sliding
/// minute's tokens and those held in flight): the `X-RateLimit-Remaining` of a key with no
/// request limit.
pub(super) fn tokens_remaining(tpm: u64, used: f64) -> u64 {
    (tpm as f64 - used).max(0.0) as u64
}

#[derive(Default)]
pub struct RateLimits {
    keys: Mutex<KeyHashMap<KeyRate>>,
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl RateLimits {
    /// Admits one request of `key` carrying `prompt_tokens` (estimated), or refuses it.
    /// `Ok(None)` when the key has no limits.
    pub fn admit(
        &self,
        key: &ApiKey,
        prompt_tokens: u64,
        now_ms: u64,
    ) -> Result<Option<RateStatus>, RateStatus> {
        if key.rpm.is_none() && key.tpm.is_none() {
            return Ok(None);
        }
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let rate = keys.entry(key.hash).or_default();
        rate.requests.roll(now_ms);
        rate.tokens.roll(now_ms);
        let reset_unix = (rate.requests.start_ms + WINDOW_MS) / 1000;
        if let Some(rpm) = key.rpm.map(u64::from) {
            if rate.requests.estimate(now_ms) + 1.0 > rpm as f64 {
                let wait = rate.requests.wait_ms(now_ms, rpm);
                return Err(RateStatus {
                    limit: rpm,
                    remaining: 0,
                    reset_unix,
                    retry_after: Some(wait.div_ceil(1000).max(1)),
                    kind: "requests",
                });
            }
        }
        if let Some(tpm) = key.tpm {
            let used = rate.tokens.estimate(now_ms) + rate.tokens_in_flight as f64;
            if used + prompt_tokens as f64 > tpm as f64 && used > 0.0 {
                let wait = rate.tokens.wait_ms(now_ms, tpm);
                return Err(RateStatus {
                    limit: tpm,
                    remaining: 0,
                    reset_unix,
                    retry_after: Some(wait.div_ceil(1000).max(1)),
                    kind: "tokens",
                });
            }
        }
        rate.requests.current += 1;
        rate.tokens_in_flight += prompt_tokens;
        let status = match key.rpm.map(u64::from) {
            Some(rpm) => RateStatus {
                limit: rpm,
                remaining: (rpm as f64 - rate.requests.estimate(now_ms)).max(0.0) as u64,
                reset_unix,
                retry_after: None,
                kind: "requests",
            },
            None => RateStatus {
                limit: key.tpm.unwrap_or(0),
                remaining: tokens_remaining(
                    key.tpm.unwrap_or(0),
                    rate.tokens.estimate(now_ms) + rate.tokens_in_flight as f64,
                ),
                reset_unix,
                retry_after: None,
                kind: "tokens",
            },
        };
        Ok(Some(status))
    }

    /// A request admitted with `prompt_estimate` finished having used `tokens` in all.
    pub fn settle(&self, key: &KeyHash, prompt_estimate: u64, tokens: u64, now_ms: u64) {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(rate) = keys.get_mut(key) {
            rate.tokens.roll(now_ms);
            rate.tokens_in_flight = rate.tokens_in_flight.saturating_sub(prompt_estimate);
            rate.tokens.current += tokens;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::LimitReset;
    use crate::routing::ProviderPrefs;

    fn key(rpm: Option<u32>, tpm: Option<u64>) -> ApiKey {
        ApiKey {
            name: "k".into(),
            hash: [1; 32],
            limit_usd: None,
            limit_reset: LimitReset::Never,
            rpm,
            tpm,
            allowed_models: None,
            provider_prefs: ProviderPrefs::default(),
            disabled: false,
        }
    }

    #[test]
    fn holds_requests_per_minute() {
        let r = RateLimits::default();
        let k = key(Some(3), None);
        let t0 = 1_000_000_020_000; // 20 s into a window
        for i in 0..3 {
            let s = r.admit(&k, 0, t0 + i).unwrap().unwrap();
            assert_eq!(s.remaining, 2 - i);
        }
        let refused = r.admit(&k, 0, t0 + 5).unwrap_err();
        assert_eq!(
            (refused.limit, refused.remaining, refused.kind),
            (3, 0, "requests")
        );
        assert!(refused.retry_after.unwrap() >= 1 && refused.retry_after.unwrap() <= 60);
        // Two windows later everything has decayed.
        assert!(r.admit(&k, 0, t0 + 2 * WINDOW_MS).is_ok());
    }

    #[test]
    fn the_previous_window_decays_gradually() {
        let r = RateLimits::default();
        let k = key(Some(10), None);
        let start = 1_200_000_000_000; // a window boundary
        for i in 0..10 {
            r.admit(&k, 0, start + 59_000 + i).unwrap();
        }
        // Just into the next window the old requests still weigh almost fully...
        assert!(r.admit(&k, 0, start + WINDOW_MS + 1_000).is_err());
        // ...and half-way through, half of them are forgiven.
        for i in 0..4 {
            assert!(r.admit(&k, 0, start + WINDOW_MS + 30_000 + i).is_ok());
        }
    }

    #[test]
    fn a_stamp_from_before_the_window_moved_counts_in_the_current_window() {
        let r = RateLimits::default();
        let k = key(Some(3), Some(1_000));
        let start = 1_200_000_000_000; // a window boundary
        let (stale, now) = (start + 59_000, start + WINDOW_MS + 1_000);
        r.admit(&k, 0, now).unwrap();
        // Stamped before the window moved: read before an await on Redis, or on another
        // thread, or before the clock stepped back.
        r.admit(&k, 0, stale).unwrap();
        r.settle(&k.hash, 0, 900, stale);
        let refused = r.admit(&k, 200, now + 1).unwrap_err();
        assert_eq!(refused.kind, "tokens", "900 used + 200 > 1,000");
        r.admit(&k, 0, now + 2).unwrap();
        let refused = r.admit(&k, 0, now + 3).unwrap_err();
        assert_eq!(refused.kind, "requests", "3 admitted this minute");
        assert!(refused.retry_after.unwrap() <= 60);
    }

    /// A key limited by tokens alone is told what it may still use, where every answer said
    /// `X-RateLimit-Remaining: 0` (and clients that honour it backed off for nothing).
    #[test]
    fn a_tokens_only_key_is_told_the_tokens_that_remain() {
        let r = RateLimits::default();
        let k = key(None, Some(1000));
        let t0 = 1_000_000_000_000; // a window boundary
        let s = r.admit(&k, 300, t0).unwrap().unwrap();
        assert_eq!((s.kind, s.limit, s.remaining), ("tokens", 1000, 700));
        r.settle(&k.hash, 300, 450, t0 + 1);
        let s = r.admit(&k, 100, t0 + 2).unwrap().unwrap();
        assert_eq!(s.remaining, 450, "450 used, 100 in flight");
    }

    #[test]
    fn holds_tokens_per_minute_including_requests_in_flight() {
        let r = RateLimits::default();
        let k = key(None, Some(1000));
        let t0 = 1_000_000_000_000;
        r.admit(&k, 600, t0).unwrap();
        assert_eq!(r.admit(&k, 600, t0 + 1).unwrap_err().kind, "tokens");
        r.settle(&k.hash, 600, 700, t0 + 2);
        assert!(r.admit(&k, 400, t0 + 3).is_err(), "700 used + 400 > 1000");
        assert!(r.admit(&k, 200, t0 + 4).is_ok());
    }
}
