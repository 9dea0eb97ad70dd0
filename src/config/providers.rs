//! Lowering of `providers:` entries, presets applied first (see `presets.rs`).

use indexmap::IndexMap;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::credentials::{Credential, CredentialRef};
use super::locate::PathSeg;
use super::lower::{child, key, valid_id, Lowering};
use super::presets;
use super::schema::RawProvider;
use crate::catalog::*;

impl Lowering<'_> {
    /// Lowers the providers of every source (the main file first); an id defined twice is
    /// an error at the second definition.
    pub(super) fn providers(
        &mut self,
        sources: Vec<(usize, IndexMap<String, serde_yaml::Value>)>,
    ) -> IndexMap<String, Arc<Provider>> {
        let mut out = IndexMap::new();
        let mut defined_in: HashMap<String, usize> = HashMap::new();
        for (source, raw) in sources {
            self.current = source;
            for (id, value) in raw {
                let path = [key("providers"), key(&id)];
                if !valid_id(&id) {
                    self.error(
                        &path,
                        format!(
                            "provider id `{id}` may only use letters, digits, `-`, `_` and `.`"
                        ),
                    );
                    continue;
                }
                if let Some(&first) = defined_in.get(&id) {
                    let message = format!(
                        "provider `{id}` is already defined in {}",
                        self.file_name(first)
                    );
                    self.error(&path, message);
                    continue;
                }
                defined_in.insert(id.clone(), source);
                let Some(mut raw) = self.entry::<RawProvider>(value, &path) else {
                    continue;
                };
                if !self.apply_preset(&mut raw, &path) {
                    continue;
                }
                if let Some(p) = self.provider(&id, raw, &path) {
                    out.insert(id, Arc::new(p));
                }
            }
        }
        self.current = 0;
        out
    }

    /// Fills what the entry leaves out from its `preset`, then checks that the fields every
    /// provider needs are there. False when the entry cannot be lowered.
    fn apply_preset(&mut self, raw: &mut RawProvider, path: &[PathSeg]) -> bool {
        let preset = match raw.preset.as_deref() {
            None => None,
            Some(name) => match presets::find(name) {
                Some(p) => Some(p),
                None => {
                    self.error(
                        &child(path, key("preset")),
                        format!("unknown preset `{name}` (known: {})", presets::names()),
                    );
                    return false;
                }
            },
        };
        if let Some(p) = preset {
            raw.dialect.get_or_insert_with(|| p.dialect.to_string());
            // With `backends`, a written `base_url` is one more backend: the preset's is not.
            if raw.base_url.is_none() && raw.backends.is_empty() {
                raw.base_url = p.base_url(raw.region.as_deref());
            }
            if raw.api_key_env.is_none() && raw.api_key_file.is_none() {
                raw.api_key_env = p.api_key_env.map(str::to_string);
            }
            raw.data_collection
                .get_or_insert_with(|| p.data_collection.to_string());
            raw.zdr.get_or_insert(p.zdr);
            if let (Some(h), Some(default_path)) = (raw.health_check.as_mut(), p.health_path) {
                h.path.get_or_insert_with(|| default_path.to_string());
            }
            let aws_named = [
                &raw.aws_access_key_id_env,
                &raw.aws_secret_access_key_env,
                &raw.aws_access_key_id_file,
                &raw.aws_secret_access_key_file,
            ]
            .iter()
            .any(|field| field.is_some());
            if p.aws && !aws_named {
                raw.aws_access_key_id_env = Some("AWS_ACCESS_KEY_ID".into());
                raw.aws_secret_access_key_env = Some("AWS_SECRET_ACCESS_KEY".into());
            }
        }
        let mut complete = true;
        if raw.dialect.is_none() {
            self.error(path, "a provider needs `dialect` (or a `preset`)");
            complete = false;
        }
        if raw.base_url.is_none() && raw.backends.is_empty() {
            let hint = match preset {
                Some(p) => format!("the `{}` preset needs base_url: {}", p.id, p.base_url_hint),
                None => "a provider needs `base_url` (or a `preset`)".to_string(),
            };
            self.error(path, hint);
            complete = false;
        }
        complete
    }

    fn provider(&mut self, id: &str, raw: RawProvider, path: &[PathSeg]) -> Option<Provider> {
        let dialect_name = raw.dialect.clone().unwrap_or_default();
        let Some(dialect) = Dialect::parse(&dialect_name) else {
            self.error(
                &child(path, key("dialect")),
                format!(
                    "dialect `{dialect_name}` is not one of openai, anthropic, gemini, bedrock, azure"
                ),
            );
            return None;
        };
        let mut unavailable = None;
        let mut backends = Vec::new();
        let provider_key = CredentialRef {
            stem: "api_key",
            env: raw.api_key_env.as_deref(),
            file: raw.api_key_file.as_deref(),
        };
        // The provider's own `base_url` and key are its first backend (weight 1), then each
        // of `backends`, whose key defaults to the provider's (DESIGN §2's example: the
        // provider's key once, OPENAI_KEY_2 twice as often).
        let own_entry = raw
            .base_url
            .as_deref()
            .map(|url| (path.to_vec(), url, provider_key, 1));
        let listed = raw.backends.iter().enumerate().map(|(i, b)| {
            let bp = child(&child(path, key("backends")), PathSeg::Index(i));
            let own = CredentialRef {
                stem: "api_key",
                env: b.api_key_env.as_deref(),
                file: b.api_key_file.as_deref(),
            };
            let key_ref = if own.is_named() { own } else { provider_key };
            (bp, b.base_url.as_str(), key_ref, b.weight.unwrap_or(1))
        });
        let entries: Vec<(Vec<PathSeg>, &str, CredentialRef, u32)> =
            own_entry.into_iter().chain(listed).collect();
        // Backends whose key cannot be read sit out (warned) while others can serve; the
        // provider is unavailable only when none can.
        let mut keyless = Vec::new();
        for (bpath, base_url, key_ref, weight) in entries {
            let url = match UpstreamUrl::parse(base_url) {
                Ok(u) => u,
                Err(e) => {
                    self.error(&child(&bpath, key("base_url")), e);
                    continue;
                }
            };
            if weight == 0 {
                self.error(&child(&bpath, key("weight")), "weight must be at least 1");
            }
            let (api_key, missing) = match self.credential(&bpath, key_ref) {
                Credential::Found(secret) => (Some(secret), false),
                Credential::Missing(why) => {
                    unavailable = Some(why);
                    (None, true)
                }
                Credential::Absent => (None, false),
            };
            match Backend::new(url, api_key, weight, dialect) {
                Ok(backend) => {
                    keyless.push(missing);
                    backends.push(std::sync::Arc::new(backend));
                }
                Err(e) => {
                    let source = if key_ref.is_named() {
                        format!(" ({})", key_ref.source())
                    } else {
                        String::new()
                    };
                    self.error(&bpath, format!("{e}{source}"));
                }
            }
        }
        if keyless.contains(&false) && keyless.contains(&true) {
            let mut missing = keyless.iter();
            backends.retain(|_| !missing.next().copied().unwrap_or(false));
            unavailable = None;
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
        let aws_credentials = self.aws_credentials(&raw, path, &mut unavailable);
        let region = match (dialect, raw.region) {
            (Dialect::Bedrock, None) => {
                // Requests are signed for a region; one signed for another is refused (403).
                let derived = backends.first().and_then(|b| aws_region_of(&b.url.host));
                if derived.is_none() {
                    self.error(
                        &child(path, key("region")),
                        "bedrock providers need `region` (the AWS region requests are signed for)",
                    );
                }
                derived
            }
            (_, region) => region,
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
            region,
            aws_credentials,
            unavailable,
        })
    }
    /// The AWS identity a SigV4 provider signs with: keys from `_env` or `_file` fields, and
    /// for temporary credentials their session token. With the standard variables,
    /// `AWS_SESSION_TOKEN` is read too when it is set, as AWS's own SDKs do.
    fn aws_credentials(
        &mut self,
        raw: &RawProvider,
        path: &[PathSeg],
        unavailable: &mut Option<String>,
    ) -> Option<AwsCredentials> {
        let id_ref = CredentialRef {
            stem: "aws_access_key_id",
            env: raw.aws_access_key_id_env.as_deref(),
            file: raw.aws_access_key_id_file.as_deref(),
        };
        let secret_ref = CredentialRef {
            stem: "aws_secret_access_key",
            env: raw.aws_secret_access_key_env.as_deref(),
            file: raw.aws_secret_access_key_file.as_deref(),
        };
        let token_ref = CredentialRef {
            stem: "aws_session_token",
            env: raw.aws_session_token_env.as_deref(),
            file: raw.aws_session_token_file.as_deref(),
        };
        if id_ref.is_named() != secret_ref.is_named()
            || (token_ref.is_named() && !id_ref.is_named())
        {
            self.error(
                path,
                "set both aws_access_key_id_env (or _file) and aws_secret_access_key_env (or _file); a session token needs them",
            );
            return None;
        }
        if !id_ref.is_named() {
            return None;
        }
        let standard_variables = id_ref.env == Some("AWS_ACCESS_KEY_ID")
            && secret_ref.env == Some("AWS_SECRET_ACCESS_KEY");
        let id = self.credential(path, id_ref);
        let secret = self.credential(path, secret_ref);
        let session_token = match self.credential(path, token_ref) {
            Credential::Found(token) => Some(token),
            Credential::Missing(why) => {
                *unavailable = Some(format!("AWS credentials are not set: {why}"));
                return None;
            }
            Credential::Absent if standard_variables => (self.env)("AWS_SESSION_TOKEN")
                .filter(|t| !t.is_empty())
                .map(Secret::new),
            Credential::Absent => None,
        };
        match (id, secret) {
            (Credential::Found(access_key_id), Credential::Found(secret_access_key)) => {
                Some(AwsCredentials {
                    access_key_id,
                    secret_access_key,
                    session_token,
                })
            }
            (Credential::Missing(why), _) | (_, Credential::Missing(why)) => {
                *unavailable = Some(format!("AWS credentials are not set: {why}"));
                None
            }
            _ => None,
        }
    }
}

/// The region of an AWS regional host (`bedrock-runtime.eu-west-1.amazonaws.com`, the FIPS
/// and `.amazonaws.com.cn` forms too).
fn aws_region_of(host: &str) -> Option<String> {
    let mut labels = host.split('.');
    let service = labels.next()?;
    let region = labels.next()?;
    let is_region = region.split('-').count() >= 3
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    (service.starts_with("bedrock-runtime") && is_region && host.contains(".amazonaws.com"))
        .then(|| region.to_string())
}
