//! The YAML file as written by an operator (DESIGN §2). These types mirror the file one to one;
//! nothing outside `config` reads them: `lower` turns them into the immutable [`Snapshot`].
//!
//! Every struct denies unknown fields so a typo is an error with a line and column, never a
//! silently ignored setting.
//!
//! [`Snapshot`]: crate::config::Snapshot

use indexmap::IndexMap;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub storage: RawStorage,
    #[serde(default)]
    pub billing: RawBilling,
    #[serde(default)]
    pub providers: IndexMap<String, serde_yaml::Value>,
    #[serde(default)]
    pub models: IndexMap<String, serde_yaml::Value>,
    #[serde(default)]
    pub keys: Vec<serde_yaml::Value>,
    /// Starts the built-in mock provider inside the gateway process (the demo uses it).
    pub mock: Option<RawMock>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Option<Vec<String>>,
    pub admin_listen: Option<String>,
    pub metrics_listen: Option<String>,
    pub threads: Option<usize>,
    pub max_body_bytes: Option<usize>,
    pub admin_token_env: Option<String>,
    pub grace_period: Option<String>,
    pub log_format: Option<String>,
    pub pid_file: Option<String>,
    pub upgrade_sock: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStorage {
    pub database_url: Option<String>,
    pub redis_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBilling {
    pub fee_percent: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMock {
    pub listen: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    pub dialect: String,
    pub base_url: String,
    pub api_key_env: Option<String>,
    #[serde(default)]
    pub backends: Vec<RawBackend>,
    pub data_collection: Option<String>,
    pub zdr: Option<bool>,
    pub health_check: Option<RawHealthCheck>,
    pub timeouts: Option<RawTimeouts>,
    /// Static headers sent on every upstream request (e.g. OpenRouter's `HTTP-Referer`).
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    pub region: Option<String>,
    pub aws_access_key_id_env: Option<String>,
    pub aws_secret_access_key_env: Option<String>,
    pub api_version: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBackend {
    pub base_url: String,
    pub api_key_env: Option<String>,
    pub weight: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealthCheck {
    pub interval: Option<String>,
    pub path: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTimeouts {
    pub connect: Option<String>,
    pub first_byte: Option<String>,
    pub idle: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    pub name: Option<String>,
    pub context_length: Option<u64>,
    pub max_output: Option<u64>,
    pub endpoints: Vec<RawEndpoint>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEndpoint {
    pub provider: String,
    pub model: String,
    pub price: Option<RawPrice>,
    pub quantization: Option<String>,
    #[serde(default)]
    pub supports: Vec<String>,
}

/// USD per one million tokens, as providers publish them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrice {
    pub prompt: Option<f64>,
    pub completion: Option<f64>,
    pub cached_prompt: Option<f64>,
    pub reasoning: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKey {
    pub name: String,
    pub key_sha256: Option<String>,
    pub key_env: Option<String>,
    pub limit_usd: Option<f64>,
    pub limit_reset: Option<String>,
    pub rpm: Option<u32>,
    pub tpm: Option<u64>,
    pub allowed_models: Option<Vec<String>>,
    pub provider: Option<serde_yaml::Value>,
    pub disabled: Option<bool>,
}
