//! The immutable, validated configuration every request reads. A reload builds a new one and
//! swaps it in whole; requests in flight keep the `Arc` they started with.

use std::path::PathBuf;
use std::time::Duration;

use crate::auth::KeyRing;
use crate::catalog::{Catalog, Secret};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug)]
pub struct ServerSettings {
    pub listen: Vec<String>,
    pub admin_listen: Option<String>,
    pub metrics_listen: Option<String>,
    pub threads: usize,
    /// Tokio's work-stealing scheduler across the threads (Pingora's default), or one
    /// single-threaded runtime per thread, each connection on one of them (our default: ~9%
    /// less CPU a request at 32 connections, issue 12).
    pub work_stealing: bool,
    pub max_body_bytes: usize,
    pub admin_token: Option<Secret>,
    pub grace_period: Duration,
    pub log_format: LogFormat,
    pub pid_file: Option<String>,
    pub upgrade_sock: Option<String>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: vec!["0.0.0.0:8080".to_string()],
            admin_listen: None,
            metrics_listen: None,
            threads: 2,
            work_stealing: false,
            max_body_bytes: 10 * 1024 * 1024,
            admin_token: None,
            grace_period: Duration::from_secs(30),
            log_format: LogFormat::Text,
            pid_file: None,
            upgrade_sock: None,
        }
    }
}

#[derive(Debug, Default)]
pub struct StorageSettings {
    pub database_url: Option<String>,
    pub redis_url: Option<String>,
    /// What admissions get while Redis is unreachable (only read with `redis_url`).
    pub redis_failure: crate::limits::RedisFailure,
}

#[derive(Debug, Default)]
pub struct Billing {
    /// Added to the provider's cost when charging a key, in percent.
    pub fee_percent: f64,
}

#[derive(Debug)]
pub struct MockSettings {
    pub listen: String,
}

#[derive(Debug, Default)]
pub struct Snapshot {
    pub server: ServerSettings,
    pub storage: StorageSettings,
    pub billing: Billing,
    pub catalog: Catalog,
    pub keys: KeyRing,
    pub mock: Option<MockSettings>,
    /// The file this snapshot came from, when it came from one.
    pub source: Option<PathBuf>,
    /// The catalog files its `include` globs matched, in load order: a reload must notice a
    /// change to any of them, not only to `source`.
    pub included_files: Vec<PathBuf>,
    /// The credential files (`api_key_file`, `aws_*_file`) it read: a rotated token in one of
    /// them reloads the config like an edit does.
    pub secret_files: Vec<PathBuf>,
}
