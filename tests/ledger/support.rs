//! Shared fixtures: temp dirs, records, keys, fast retries, the optional Postgres URL.

use std::path::PathBuf;
use std::time::Duration;

use switchyard::auth::{hash_secret, KeyHash};
use switchyard::ledger::{now_ms, Attempt, GenerationRecord, WriterConfig};
use switchyard::metering::{Cost, Usage};

pub const DAY_MS: i64 = 86_400_000;

/// A folder under the system temp dir, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        TempDir(std::env::temp_dir().join(format!(
            "switchyard-ledger-{name}-{}-{nanos}",
            std::process::id()
        )))
    }

    pub fn sqlite_url(&self) -> String {
        format!("sqlite://{}/nested/ledger.db", self.0.display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn record(id: &str, key: KeyHash, cost: u128, created_at: i64) -> GenerationRecord {
    GenerationRecord {
        id: id.to_string(),
        key_hash: key,
        key_name: "alice".into(),
        model: "openai/gpt-4o-mini".into(),
        provider: "openai".into(),
        upstream_model: "gpt-4o-mini".into(),
        attempts: vec![
            Attempt {
                provider: "groq".into(),
                model: "openai/gpt-4o-mini".into(),
                outcome: "429".into(),
                status: Some(429),
                latency_ms: 9,
            },
            Attempt {
                provider: "openai".into(),
                model: "openai/gpt-4o-mini".into(),
                outcome: "ok".into(),
                status: Some(200),
                latency_ms: 700,
            },
        ],
        usage: Usage {
            prompt: 1000,
            completion: 200,
            cached_prompt: 400,
            reasoning: 50,
            cache_write: 0,
            estimated: false,
        },
        cost: Cost(cost),
        latency_ms: 812,
        ttft_ms: Some(95),
        finish_reason: Some("stop".into()),
        status: 200,
        streamed: true,
        cancelled: false,
        error: None,
        created_at,
    }
}

/// A key hash no other test or earlier run uses (the Postgres database outlives runs).
pub fn fresh_key(label: &str) -> KeyHash {
    hash_secret(&format!("{label}-{}-{}", std::process::id(), now_ms()))
}

pub fn fast_retries() -> WriterConfig {
    WriterConfig {
        retry_budget: Duration::from_millis(300),
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        attempt_timeout: Duration::from_secs(2),
        ..WriterConfig::default()
    }
}

pub fn postgres_url() -> Option<String> {
    match std::env::var("SWITCHYARD_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            println!("skipped: SWITCHYARD_TEST_POSTGRES_URL is not set, so no Postgres server to test against");
            None
        }
    }
}
