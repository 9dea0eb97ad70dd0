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
    /// Catalog files to merge in, as globs relative to this file (`catalog/*.yaml`).
    #[serde(default)]
    pub include: Vec<String>,
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
    pub work_stealing: Option<bool>,
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
    /// `open` (default) or `closed`: what admissions get while Redis is unreachable.
    pub redis_failure: Option<String>,
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

/// An included catalog file: models and, optionally, the providers they need.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCatalogFile {
    #[serde(default)]
    pub providers: IndexMap<String, serde_yaml::Value>,
    #[serde(default)]
    pub models: IndexMap<String, serde_yaml::Value>,
}

/// The same file read in one typed pass: no intermediate YAML tree for thousands of models.
/// Only when this fails is the file read again as [`RawCatalogFile`], so that every bad
/// entry gets its own error.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypedCatalogFile {
    #[serde(default)]
    pub providers: IndexMap<String, serde_yaml::Value>,
    #[serde(default)]
    pub models: IndexMap<String, RawModel>,
}

/// The `models:` of one file, typed already or still raw.
pub enum ModelEntries {
    Typed(IndexMap<String, RawModel>),
    Raw(IndexMap<String, serde_yaml::Value>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    /// A known provider (`openai`, `groq`, ...) whose dialect, base URL, key variable, data
    /// policy and health-check path fill every field this entry leaves out.
    pub preset: Option<String>,
    pub dialect: Option<String>,
    pub base_url: Option<String>,
    pub api_key_env: Option<String>,
    /// The key read from a file instead, re-read whenever the file changes (a rotated token).
    pub api_key_file: Option<String>,
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
    /// Temporary credentials' third part (a role's, SSO's, an instance profile's).
    pub aws_session_token_env: Option<String>,
    pub aws_access_key_id_file: Option<String>,
    pub aws_secret_access_key_file: Option<String>,
    pub aws_session_token_file: Option<String>,
    pub api_version: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBackend {
    pub base_url: String,
    pub api_key_env: Option<String>,
    pub api_key_file: Option<String>,
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
    /// Defaults to `[text]` for both.
    pub input_modalities: Option<Vec<String>>,
    pub output_modalities: Option<Vec<String>>,
    pub categories: Option<Vec<String>>,
    /// May be empty in one file when another file (an include) brings the endpoints.
    #[serde(default)]
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
    /// This provider's limits, when they differ from the model's.
    pub context_length: Option<u64>,
    pub max_output: Option<u64>,
}

/// USD per one million tokens, as providers publish them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrice {
    pub prompt: Option<f64>,
    pub completion: Option<f64>,
    pub cached_prompt: Option<f64>,
    pub reasoning: Option<f64>,
    /// Prompt tokens written to the prompt cache (absent: the prompt price).
    pub cache_write: Option<f64>,
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
