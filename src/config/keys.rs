//! Lowering of `keys:`, the static client keys.

use super::locate::PathSeg;
use super::lower::{child, key, Lowering};
use super::schema::RawKey;
use crate::auth::{ApiKey, KeyRing, LimitReset};
use crate::routing::ProviderPrefs;

impl Lowering<'_> {
    pub(super) fn keys(&mut self, raw: Vec<serde_yaml::Value>) -> KeyRing {
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
            for (name, limit) in [("rpm", raw.rpm.map(u64::from)), ("tpm", raw.tpm)] {
                if limit == Some(0) {
                    // Refused rather than guessed: 0 read "refuse all" in-process but "no
                    // limit" in Redis's scripts.
                    self.error(
                        &child(&path, key(name)),
                        format!("{name} must be a positive integer (leave it out for no limit)"),
                    );
                }
            }
            let provider_prefs = match raw.provider {
                Some(v) => {
                    let at = child(&path, key("provider"));
                    self.refuse_unknown_keys(&v, &at, ProviderPrefs::FIELDS);
                    self.entry::<ProviderPrefs>(v, &at).unwrap_or_default()
                }
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
