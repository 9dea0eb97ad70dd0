//! Validation and lowering: raw YAML → [`Snapshot`]. Every problem found is collected with its
//! path and position, so `switchyard check` can list them all at once.

use indexmap::IndexMap;
use serde::de::DeserializeOwned;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::duration::parse_duration;
use super::locate::{render_path, PathSeg, PositionIndex};
use super::schema::*;
use super::snapshot::*;
use super::ConfigError;
use crate::auth::{ApiKey, KeyRing, LimitReset};
use crate::catalog::*;
use crate::routing::ProviderPrefs;

/// How the loader reads environment variables (tests pass their own map).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

pub struct Lowered {
    pub snapshot: Snapshot,
    pub warnings: Vec<ConfigError>,
}

struct Lowering<'a> {
    index: PositionIndex,
    env: EnvLookup<'a>,
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigError>,
}

fn key(k: &str) -> PathSeg {
    PathSeg::Key(k.to_string())
}

fn child(path: &[PathSeg], seg: PathSeg) -> Vec<PathSeg> {
    let mut p = path.to_vec();
    p.push(seg);
    p
}

pub fn lower(text: &str, env: EnvLookup<'_>) -> Result<Lowered, Vec<ConfigError>> {
    if text.trim().is_empty() {
        return Err(vec![ConfigError::new("", None, "the file is empty")]);
    }
    let raw: RawConfig = match serde_yaml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let position = e.location().map(|l| (l.line(), l.column()));
            return Err(vec![ConfigError::new("", position, &e.to_string())]);
        }
    };
    let mut lowering = Lowering {
        index: PositionIndex::new(text),
        env,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let snapshot = lowering.snapshot(raw);
    if lowering.errors.is_empty() {
        Ok(Lowered {
            snapshot,
            warnings: lowering.warnings,
        })
    } else {
        Err(lowering.errors)
    }
}

impl Lowering<'_> {
    fn problem(&self, path: &[PathSeg], message: impl AsRef<str>) -> ConfigError {
        let position = self.index.locate(path).map(|p| (p.line, p.column));
        ConfigError::new(&render_path(path), position, message.as_ref())
    }

    fn error(&mut self, path: &[PathSeg], message: impl AsRef<str>) {
        let e = self.problem(path, message);
        self.errors.push(e);
    }

    fn warn(&mut self, path: &[PathSeg], message: impl AsRef<str>) {
        let w = self.problem(path, message);
        self.warnings.push(w);
    }

    /// Deserializes one entry on its own, so one bad entry does not hide the others' errors.
    fn entry<T: DeserializeOwned>(
        &mut self,
        value: serde_yaml::Value,
        path: &[PathSeg],
    ) -> Option<T> {
        match serde_yaml::from_value(value) {
            Ok(v) => Some(v),
            Err(e) => {
                let message = e.to_string();
                let at = match unknown_field(&message) {
                    Some(field) => self.index.find_key_under(path, field),
                    None => None,
                }
                .unwrap_or_else(|| path.to_vec());
                self.error(&at, message);
                None
            }
        }
    }

    fn env_secret(&mut self, path: &[PathSeg], var: &str) -> Option<Secret> {
        match (self.env)(var) {
            Some(v) if !v.is_empty() => Some(Secret::new(v)),
            _ => {
                self.warn(path, format!("environment variable `{var}` is not set"));
                None
            }
        }
    }

    fn duration(&mut self, path: &[PathSeg], text: Option<&String>, default: Duration) -> Duration {
        match text.map(|t| parse_duration(t)) {
            None => default,
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                self.error(path, e);
                default
            }
        }
    }

    fn snapshot(&mut self, raw: RawConfig) -> Snapshot {
        let server = self.server(raw.server);
        let billing = self.billing(raw.billing);
        let providers = self.providers(raw.providers);
        let models = self.models(raw.models, &providers);
        let keys = self.keys(raw.keys);
        let mock = raw.mock.map(|m| {
            if m.listen.parse::<SocketAddr>().is_err() {
                self.error(
                    &[key("mock"), key("listen")],
                    format!("`{}` is not an ip:port address", m.listen),
                );
            }
            MockSettings { listen: m.listen }
        });
        Snapshot {
            server,
            storage: StorageSettings {
                database_url: raw.storage.database_url,
                redis_url: raw.storage.redis_url,
            },
            billing,
            catalog: Catalog {
                providers,
                models,
                models_listing: Default::default(),
            },
            keys,
            mock,
            source: None,
        }
    }

    fn server(&mut self, raw: RawServer) -> ServerSettings {
        let base = [key("server")];
        let defaults = ServerSettings::default();
        let listen = raw.listen.unwrap_or(defaults.listen);
        if listen.is_empty() {
            self.error(
                &child(&base, key("listen")),
                "at least one listen address is required",
            );
        }
        for (i, addr) in listen.iter().enumerate() {
            if addr.parse::<SocketAddr>().is_err() {
                let path = [key("server"), key("listen"), PathSeg::Index(i)];
                self.error(&path, format!("`{addr}` is not an ip:port address"));
            }
        }
        for (field, addr) in [
            ("admin_listen", &raw.admin_listen),
            ("metrics_listen", &raw.metrics_listen),
        ] {
            if let Some(a) = addr {
                if a.parse::<SocketAddr>().is_err() {
                    self.error(
                        &child(&base, key(field)),
                        format!("`{a}` is not an ip:port address"),
                    );
                }
            }
        }
        let threads = raw.threads.unwrap_or(defaults.threads);
        if !(1..=256).contains(&threads) {
            self.error(
                &child(&base, key("threads")),
                "threads must be between 1 and 256",
            );
        }
        let max_body_bytes = raw.max_body_bytes.unwrap_or(defaults.max_body_bytes);
        if max_body_bytes == 0 {
            self.error(
                &child(&base, key("max_body_bytes")),
                "max_body_bytes must be positive",
            );
        }
        let log_format = match raw.log_format.as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                self.error(
                    &child(&base, key("log_format")),
                    format!("log_format `{other}` is not text or json"),
                );
                LogFormat::Text
            }
        };
        let admin_token = match &raw.admin_token_env {
            Some(var) => self.env_secret(&child(&base, key("admin_token_env")), var),
            None => None,
        };
        if raw.admin_listen.is_some() && admin_token.is_none() {
            self.warn(
                &child(&base, key("admin_listen")),
                "the admin API refuses every request until its token is set (admin_token_env)",
            );
        }
        let grace_period = self.duration(
            &child(&base, key("grace_period")),
            raw.grace_period.as_ref(),
            defaults.grace_period,
        );
        ServerSettings {
            listen,
            admin_listen: raw.admin_listen,
            metrics_listen: raw.metrics_listen,
            threads,
            max_body_bytes,
            admin_token,
            grace_period,
            log_format,
            pid_file: raw.pid_file,
            upgrade_sock: raw.upgrade_sock,
        }
    }

    fn billing(&mut self, raw: RawBilling) -> Billing {
        let fee_percent = raw.fee_percent.unwrap_or(0.0);
        if !(0.0..=1000.0).contains(&fee_percent) {
            self.error(
                &[key("billing"), key("fee_percent")],
                "fee_percent must be between 0 and 1000",
            );
        }
        Billing { fee_percent }
    }

    fn providers(
        &mut self,
        raw: IndexMap<String, serde_yaml::Value>,
    ) -> IndexMap<String, Arc<Provider>> {
        let mut out = IndexMap::new();
        for (id, value) in raw {
            let path = [key("providers"), key(&id)];
            if !valid_id(&id) {
                self.error(
                    &path,
                    format!("provider id `{id}` may only use letters, digits, `-`, `_` and `.`"),
                );
                continue;
            }
            let Some(raw) = self.entry::<RawProvider>(value, &path) else {
                continue;
            };
            if let Some(p) = self.provider(&id, raw, &path) {
                out.insert(id, Arc::new(p));
            }
        }
        out
    }

    fn provider(&mut self, id: &str, raw: RawProvider, path: &[PathSeg]) -> Option<Provider> {
        let Some(dialect) = Dialect::parse(&raw.dialect) else {
            self.error(
                &child(path, key("dialect")),
                format!(
                    "dialect `{}` is not one of openai, anthropic, gemini, bedrock, azure",
                    raw.dialect
                ),
            );
            return None;
        };
        let mut unavailable = None;
        let mut backends = Vec::new();
        let entries: Vec<(Vec<PathSeg>, String, Option<String>, u32)> = if raw.backends.is_empty() {
            vec![(
                path.to_vec(),
                raw.base_url.clone(),
                raw.api_key_env.clone(),
                1,
            )]
        } else {
            raw.backends
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    let bp = child(&child(path, key("backends")), PathSeg::Index(i));
                    let env = b.api_key_env.clone().or_else(|| raw.api_key_env.clone());
                    (bp, b.base_url.clone(), env, b.weight.unwrap_or(1))
                })
                .collect()
        };
        for (bpath, base_url, key_env, weight) in entries {
            let url = match UpstreamUrl::parse(&base_url) {
                Ok(u) => u,
                Err(e) => {
                    self.error(&child(&bpath, key("base_url")), e);
                    continue;
                }
            };
            if weight == 0 {
                self.error(&child(&bpath, key("weight")), "weight must be at least 1");
            }
            let api_key = match &key_env {
                Some(var) => {
                    let secret = self.env_secret(&child(&bpath, key("api_key_env")), var);
                    if secret.is_none() {
                        unavailable = Some(format!("environment variable `{var}` is not set"));
                    }
                    secret
                }
                None => None,
            };
            backends.push(Backend {
                url,
                api_key,
                weight,
            });
        }
        if backends.is_empty() {
            return None;
        }
        let data_collection = match raw.data_collection.as_deref() {
            None | Some("allow") => DataCollection::Allow,
            Some("deny") => DataCollection::Deny,
            Some(other) => {
                self.error(
                    &child(path, key("data_collection")),
                    format!("`{other}` is not allow or deny"),
                );
                DataCollection::Allow
            }
        };
        let defaults = Timeouts::default();
        let t = raw.timeouts.as_ref();
        let tpath = child(path, key("timeouts"));
        let timeouts = Timeouts {
            connect: self.duration(
                &child(&tpath, key("connect")),
                t.and_then(|t| t.connect.as_ref()),
                defaults.connect,
            ),
            first_byte: self.duration(
                &child(&tpath, key("first_byte")),
                t.and_then(|t| t.first_byte.as_ref()),
                defaults.first_byte,
            ),
            idle: self.duration(
                &child(&tpath, key("idle")),
                t.and_then(|t| t.idle.as_ref()),
                defaults.idle,
            ),
        };
        let health_check = raw.health_check.as_ref().map(|h| HealthCheck {
            interval: self.duration(
                &child(path, key("health_check")),
                h.interval.as_ref(),
                Duration::from_secs(10),
            ),
            path: h.path.clone().unwrap_or_else(|| "/models".to_string()),
        });
        let mut headers = Vec::new();
        for (name, value) in &raw.headers {
            let hpath = child(&child(path, key("headers")), key(name));
            match (
                http::HeaderName::try_from(name.as_str()),
                http::HeaderValue::try_from(value.as_str()),
            ) {
                (Ok(n), Ok(v)) => headers.push((n, v)),
                _ => self.error(
                    &hpath,
                    format!("`{name}: {value}` is not a valid HTTP header"),
                ),
            }
        }
        let aws_credentials = match (&raw.aws_access_key_id_env, &raw.aws_secret_access_key_env) {
            (Some(id_var), Some(secret_var)) => {
                let id = self.env_secret(&child(path, key("aws_access_key_id_env")), id_var);
                let secret =
                    self.env_secret(&child(path, key("aws_secret_access_key_env")), secret_var);
                if id.is_none() || secret.is_none() {
                    unavailable = Some("AWS credentials are not set".into());
                }
                id.zip(secret)
            }
            (None, None) => None,
            _ => {
                self.error(
                    path,
                    "set both aws_access_key_id_env and aws_secret_access_key_env",
                );
                None
            }
        };
        if dialect == Dialect::Azure && raw.api_version.is_none() {
            self.error(
                &child(path, key("api_version")),
                "azure providers need api_version",
            );
        }
        Some(Provider {
            id: id.to_string(),
            dialect,
            backends,
            data_collection,
            zdr: raw.zdr.unwrap_or(false),
            timeouts,
            health_check,
            headers,
            api_version: raw.api_version,
            region: raw.region,
            aws_credentials,
            unavailable,
        })
    }

    fn models(
        &mut self,
        raw: IndexMap<String, serde_yaml::Value>,
        providers: &IndexMap<String, Arc<Provider>>,
    ) -> IndexMap<String, Arc<Model>> {
        let mut out = IndexMap::new();
        for (id, value) in raw {
            let path = [key("models"), key(&id)];
            if !valid_model_id(&id) {
                self.error(&path, format!("model id `{id}` may only use letters, digits and `-_./:@+`, without spaces"));
                continue;
            }
            let Some(raw) = self.entry::<RawModel>(value, &path) else {
                continue;
            };
            if raw.endpoints.is_empty() {
                self.error(
                    &child(&path, key("endpoints")),
                    "a model needs at least one endpoint",
                );
            }
            let mut endpoints = Vec::new();
            for (i, ep) in raw.endpoints.into_iter().enumerate() {
                let epath = child(&child(&path, key("endpoints")), PathSeg::Index(i));
                let Some(provider) = providers.get(&ep.provider) else {
                    self.error(
                        &child(&epath, key("provider")),
                        format!("unknown provider `{}`", ep.provider),
                    );
                    continue;
                };
                if ep.model.is_empty() || ep.model.chars().any(|c| c.is_control()) {
                    self.error(
                        &child(&epath, key("model")),
                        "the provider's model id must be non-empty text",
                    );
                    continue;
                }
                let price = self.price(ep.price.as_ref(), &child(&epath, key("price")));
                endpoints.push(Endpoint {
                    provider: provider.clone(),
                    upstream_model: ep.model,
                    price,
                    quantization: ep.quantization,
                    supports: ep.supports,
                });
            }
            let model = Model {
                name: raw.name.unwrap_or_else(|| id.clone()),
                id: id.clone(),
                context_length: raw.context_length,
                max_output: raw.max_output,
                endpoints,
            };
            out.insert(id, Arc::new(model));
        }
        out
    }

    fn price(&mut self, raw: Option<&RawPrice>, path: &[PathSeg]) -> Price {
        let Some(raw) = raw else {
            return Price::default();
        };
        let mut convert = |field: &str, v: Option<f64>| -> Option<u64> {
            let v = v?;
            let pico = Price::per_token_from_usd_per_million(v);
            if pico.is_none() {
                self.error(
                    &child(path, key(field)),
                    format!("price `{v}` must be a non-negative number (USD per 1M tokens)"),
                );
            }
            pico
        };
        Price {
            prompt: convert("prompt", raw.prompt).unwrap_or(0),
            completion: convert("completion", raw.completion).unwrap_or(0),
            cached_prompt: convert("cached_prompt", raw.cached_prompt),
            reasoning: convert("reasoning", raw.reasoning),
        }
    }

    fn keys(&mut self, raw: Vec<serde_yaml::Value>) -> KeyRing {
        let mut ring = KeyRing::default();
        let mut names = std::collections::HashSet::new();
        for (i, value) in raw.into_iter().enumerate() {
            let path = [key("keys"), PathSeg::Index(i)];
            let Some(raw) = self.entry::<RawKey>(value, &path) else {
                continue;
            };
            if !names.insert(raw.name.clone()) {
                self.error(
                    &child(&path, key("name")),
                    format!("key name `{}` is used twice", raw.name),
                );
            }
            let hash = match (&raw.key_sha256, &raw.key_env) {
                (Some(hex_hash), None) => match hex::decode(hex_hash.trim()) {
                    Ok(bytes) if bytes.len() == 32 => {
                        let mut h = [0u8; 32];
                        h.copy_from_slice(&bytes);
                        h
                    }
                    _ => {
                        self.error(
                            &child(&path, key("key_sha256")),
                            "key_sha256 must be 64 hex digits (sha256 of the secret)",
                        );
                        continue;
                    }
                },
                (None, Some(var)) => match self.env_secret(&child(&path, key("key_env")), var) {
                    Some(secret) => crate::auth::hash_secret(secret.expose()),
                    None => continue,
                },
                _ => {
                    self.error(&path, "a key needs exactly one of key_sha256 or key_env");
                    continue;
                }
            };
            let limit_reset = match raw.limit_reset.as_deref() {
                None => LimitReset::Never,
                Some(s) => LimitReset::parse(s).unwrap_or_else(|| {
                    self.error(
                        &child(&path, key("limit_reset")),
                        format!("`{s}` is not daily, weekly, monthly or never"),
                    );
                    LimitReset::Never
                }),
            };
            if raw.limit_usd.is_some_and(|l| !l.is_finite() || l < 0.0) {
                self.error(
                    &child(&path, key("limit_usd")),
                    "limit_usd must be a non-negative number",
                );
            }
            let provider_prefs = match raw.provider {
                Some(v) => self
                    .entry::<ProviderPrefs>(v, &child(&path, key("provider")))
                    .unwrap_or_default(),
                None => ProviderPrefs::default(),
            };
            let api_key = ApiKey {
                name: raw.name,
                hash,
                limit_usd: raw.limit_usd,
                limit_reset,
                rpm: raw.rpm,
                tpm: raw.tpm,
                allowed_models: raw.allowed_models,
                provider_prefs,
                disabled: raw.disabled.unwrap_or(false),
            };
            if ring.insert(api_key).is_some() {
                self.error(&path, "two keys have the same secret");
            }
        }
        ring
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

fn valid_model_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@+".contains(c))
}

/// The field an "unknown field `x`, expected ..." message names.
fn unknown_field(message: &str) -> Option<&str> {
    let rest = &message[message.find("unknown field `")? + "unknown field `".len()..];
    rest.split('`').next()
}
