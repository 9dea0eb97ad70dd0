//! Client keys: how a bearer secret becomes a known caller.
//!
//! Secrets are never stored: a key is its SHA-256. Lookup hashes the presented secret and
//! finds the hash in a map, so timing depends on the hash, not on how much of a guessed
//! secret matched; the final equality is checked in constant time all the same.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use subtle::ConstantTimeEq;

use crate::routing::ProviderPrefs;

pub type KeyHash = [u8; 32];

/// A map keyed by [`KeyHash`], hashed by [`KeyHashHasher`].
pub type KeyHashMap<V> = HashMap<KeyHash, V, BuildHasherDefault<KeyHashHasher>>;

/// Hashes a [`KeyHash`] by its first eight bytes. It is a SHA-256 digest already, spread
/// evenly, so the maps keyed by it (the key ring, budgets, rate limits) need no second,
/// keyed hash: SipHash over 32 bytes was ~270 instructions a lookup, five a request (issue
/// 12). Flooding is not a concern: only configured and admin-created keys are inserted, and
/// a client cannot choose the digest of the secret it presents.
#[derive(Default, Clone, Copy)]
pub struct KeyHashHasher(u64);

impl Hasher for KeyHashHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut first = [0u8; 8];
        let n = bytes.len().min(8);
        first[..n].copy_from_slice(&bytes[..n]);
        self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(first);
    }

    /// The array's length prefix: the same for every key, nothing to mix in.
    fn write_usize(&mut self, _: usize) {}

    fn finish(&self) -> u64 {
        self.0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitReset {
    Daily,
    Weekly,
    Monthly,
    Never,
}

impl LimitReset {
    pub fn parse(s: &str) -> Option<LimitReset> {
        Some(match s {
            "daily" => LimitReset::Daily,
            "weekly" => LimitReset::Weekly,
            "monthly" => LimitReset::Monthly,
            "never" => LimitReset::Never,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LimitReset::Daily => "daily",
            LimitReset::Weekly => "weekly",
            LimitReset::Monthly => "monthly",
            LimitReset::Never => "never",
        }
    }
}

/// A caller's key and what it may do.
#[derive(Debug)]
pub struct ApiKey {
    pub name: String,
    pub hash: KeyHash,
    pub limit_usd: Option<f64>,
    pub limit_reset: LimitReset,
    pub rpm: Option<u32>,
    pub tpm: Option<u64>,
    /// Glob patterns (`openai/*`); `None` allows every model.
    pub allowed_models: Option<Vec<String>>,
    pub provider_prefs: ProviderPrefs,
    pub disabled: bool,
}

impl ApiKey {
    pub fn hash_hex(&self) -> String {
        hex::encode(self.hash)
    }

    pub fn may_use_model(&self, model_id: &str) -> bool {
        match &self.allowed_models {
            None => true,
            Some(patterns) => patterns.iter().any(|p| glob_match(p, model_id)),
        }
    }
}

/// `*` matches any run of characters; everything else matches itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let tail: Vec<&str> = parts.collect();
    let Some((last, middle)) = tail.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

pub fn hash_secret(secret: &str) -> KeyHash {
    Sha256::digest(secret.as_bytes()).into()
}

/// The keys a snapshot knows, by hash.
#[derive(Debug, Default)]
pub struct KeyRing {
    by_hash: KeyHashMap<Arc<ApiKey>>,
}

impl KeyRing {
    pub fn insert(&mut self, key: ApiKey) -> Option<Arc<ApiKey>> {
        self.by_hash.insert(key.hash, Arc::new(key))
    }

    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<ApiKey>> {
        self.by_hash.values()
    }

    /// The key whose secret this is, if any.
    pub fn find(&self, secret: &str) -> Option<&Arc<ApiKey>> {
        let hash = hash_secret(secret);
        self.by_hash
            .get(&hash)
            .filter(|key| bool::from(key.hash.ct_eq(&hash)))
    }
}

/// The secret of an `Authorization: Bearer <secret>` header value.
pub fn bearer_secret(header: &[u8]) -> Option<&str> {
    let value = std::str::from_utf8(header).ok()?.trim();
    let (scheme, secret) = value.split_once(' ')?;
    let secret = secret.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !secret.is_empty()).then_some(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_model_ids() {
        assert!(glob_match("openai/*", "openai/gpt-4o"));
        assert!(!glob_match("openai/*", "anthropic/claude"));
        assert!(glob_match("*", "x"));
        assert!(glob_match("a/*-mini", "a/gpt-4o-mini"));
        assert!(!glob_match("a/*-mini", "a/gpt-4o"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
    }

    #[test]
    fn parses_bearer_headers() {
        assert_eq!(bearer_secret(b"Bearer sk-1"), Some("sk-1"));
        assert_eq!(bearer_secret(b"bearer  sk-1 "), Some("sk-1"));
        assert_eq!(bearer_secret(b"Basic abc"), None);
        assert_eq!(bearer_secret(b"Bearer "), None);
        assert_eq!(bearer_secret(&[0xff, 0xfe]), None);
    }

    #[test]
    fn finds_keys_by_secret_only() {
        let mut ring = KeyRing::default();
        ring.insert(ApiKey {
            name: "alice".into(),
            hash: hash_secret("sk-alice"),
            limit_usd: None,
            limit_reset: LimitReset::Never,
            rpm: None,
            tpm: None,
            allowed_models: None,
            provider_prefs: ProviderPrefs::default(),
            disabled: false,
        });
        assert_eq!(
            ring.find("sk-alice").map(|k| k.name.as_str()),
            Some("alice")
        );
        assert!(ring.find("sk-alicf").is_none());
    }

    #[test]
    fn key_hash_maps_tell_apart_digests_that_share_their_first_bytes() {
        use std::hash::BuildHasher;
        let mut map: KeyHashMap<u8> = KeyHashMap::default();
        let mut twin = [7u8; 32];
        twin[31] = 8;
        map.insert([7; 32], 1);
        map.insert(twin, 2);
        map.insert(hash_secret("sk-a"), 3);
        assert_eq!(map.get(&[7; 32]), Some(&1));
        assert_eq!(map.get(&twin), Some(&2));
        assert_eq!(map.get(&hash_secret("sk-a")), Some(&3));
        assert_eq!(map.get(&hash_secret("sk-b")), None);
        // The hash is the digest's first eight bytes, as written.
        let build = BuildHasherDefault::<KeyHashHasher>::default();
        assert_eq!(build.hash_one([7u8; 32]), u64::from_le_bytes([7; 8]));
    }
}
