//! Key provisioning on the admin listener, in OpenRouter's `/keys` shapes: create (the secret
//! appears once, in `key`), list, get, patch, delete. Keys are stored in the ledger as sha256
//! only; `data.hash` names a key afterwards.

use serde_json::{json, Map, Value};

use crate::api::ApiError;
use crate::auth::LimitReset;
use crate::ledger::{iso8601, parse_key_hash, KeyPatch, Ledger, LedgerError, NewKey, StoredKey};
use crate::limits::{Budgets, SpendReport};

/// `data` for one key: OpenRouter's key object plus our limits.
pub fn key_json(key: &StoredKey, spend: &SpendReport) -> Value {
    let usage = spend.for_period(key.limit_reset).usd();
    json!({
        "hash": key.hash_hex(),
        "name": key.name,
        "label": key.label,
        "disabled": key.disabled,
        "limit": key.limit_usd,
        "limit_remaining": key.limit_usd.map(|l| (l - usage).max(0.0)),
        "limit_reset": (key.limit_reset != LimitReset::Never).then(|| key.limit_reset.as_str()),
        "include_byok_in_limit": false,
        "usage": spend.total.usd(),
        "usage_daily": spend.daily.usd(),
        "usage_weekly": spend.weekly.usd(),
        "usage_monthly": spend.monthly.usd(),
        "byok_usage": 0.0,
        "byok_usage_daily": 0.0,
        "byok_usage_weekly": 0.0,
        "byok_usage_monthly": 0.0,
        "created_at": iso8601(key.created_at),
        "updated_at": iso8601(key.updated_at),
        "creator_user_id": null,
        "workspace_id": null,
        "rpm": key.rpm,
        "tpm": key.tpm,
        "allowed_models": key.allowed_models,
        "provider": key.provider_prefs,
    })
}

fn object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::bad_request("the body must be a JSON object")),
        Err(e) => Err(ApiError::bad_request(format!(
            "the body is not valid JSON: {e}"
        ))),
    }
}

/// A field that may be absent (`None`), null (`Some(None)`) or a value.
fn field<T: serde::de::DeserializeOwned>(
    m: &Map<String, Value>,
    name: &str,
    expected: &str,
) -> Result<Option<Option<T>>, ApiError> {
    match m.get(name) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(v) => serde_json::from_value(v.clone())
            .map(|t| Some(Some(t)))
            .map_err(|_| ApiError::bad_param(name, format!("`{name}` must be {expected}"))),
    }
}

fn limit_reset(m: &Map<String, Value>) -> Result<Option<LimitReset>, ApiError> {
    match field::<String>(m, "limit_reset", "daily, weekly, monthly or null")? {
        None => Ok(None),
        Some(None) => Ok(Some(LimitReset::Never)),
        Some(Some(s)) => LimitReset::parse(&s).map(Some).ok_or_else(|| {
            ApiError::bad_param(
                "limit_reset",
                "`limit_reset` must be daily, weekly, monthly, never or null",
            )
        }),
    }
}

fn checked_limit(limit: Option<Option<f64>>) -> Result<Option<Option<f64>>, ApiError> {
    if let Some(Some(l)) = limit {
        if !l.is_finite() || l < 0.0 {
            return Err(ApiError::bad_param(
                "limit",
                "`limit` must be a non-negative number of USD",
            ));
        }
    }
    Ok(limit)
}

pub fn parse_new_key(body: &[u8]) -> Result<NewKey, ApiError> {
    let m = object(body)?;
    let name: String = field(&m, "name", "a string")?
        .flatten()
        .filter(|n: &String| !n.trim().is_empty())
        .ok_or_else(|| ApiError::bad_param("name", "`name` is required"))?;
    let mut key = NewKey::named(name);
    key.limit_usd = checked_limit(field(&m, "limit", "a number")?)?.flatten();
    key.limit_reset = limit_reset(&m)?.unwrap_or(LimitReset::Never);
    key.rpm = field(&m, "rpm", "a positive integer")?.flatten();
    key.tpm = field(&m, "tpm", "a positive integer")?.flatten();
    key.allowed_models = field(&m, "allowed_models", "an array of model patterns")?.flatten();
    if let Some(Some(prefs)) = field::<Value>(&m, "provider", "an object")? {
        key.provider_prefs = prefs;
    }
    key.disabled = field(&m, "disabled", "a boolean")?
        .flatten()
        .unwrap_or(false);
    Ok(key)
}

pub fn parse_patch(body: &[u8]) -> Result<KeyPatch, ApiError> {
    let m = object(body)?;
    Ok(KeyPatch {
        name: field(&m, "name", "a string")?.flatten(),
        limit_usd: checked_limit(field(&m, "limit", "a number")?)?,
        limit_reset: limit_reset(&m)?,
        rpm: field(&m, "rpm", "a positive integer")?,
        tpm: field(&m, "tpm", "a positive integer")?,
        allowed_models: field(&m, "allowed_models", "an array of model patterns")?,
        provider_prefs: field::<Value>(&m, "provider", "an object")?
            .map(|v| v.unwrap_or(json!({}))),
        disabled: field(&m, "disabled", "a boolean")?.flatten(),
    })
}

/// The list's query: OpenRouter's `offset` (keys to skip) and `include_disabled`. A client
/// pages with `offset` until a page comes back empty, so it must be honoured: ignored, every
/// page was the whole list and such a client never stopped.
struct ListPage {
    offset: usize,
    /// Disabled keys are listed unless `include_disabled=false` (the listing always held
    /// them, and the CLI's `keys list` shows every key).
    include_disabled: bool,
}

impl ListPage {
    fn parse(query: &str) -> Result<ListPage, ApiError> {
        let mut page = ListPage {
            offset: 0,
            include_disabled: true,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match name {
                "offset" => {
                    page.offset = value.parse().map_err(|_| {
                        ApiError::bad_param("offset", "`offset` must be a non-negative integer")
                    })?
                }
                "include_disabled" => {
                    page.include_disabled = match value {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => {
                            return Err(ApiError::bad_param(
                                "include_disabled",
                                "`include_disabled` must be true or false",
                            ))
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(page)
    }
}

/// What a keys request answers: status and body.
pub type Answer = Result<(u16, Value), ApiError>;

/// A ledger error as the admin's answer: what the ledger refused is the caller's 400 (a
/// negative limit, a misspelt preference), anything else the store's 503.
fn storage_error(e: LedgerError) -> ApiError {
    if let LedgerError::Invalid(why) = e {
        return ApiError::bad_request(why);
    }
    log::error!("admin keys: {e}");
    ApiError::unavailable("the key store is unavailable right now")
}

pub struct KeysApi<'a> {
    pub ledger: &'a Ledger,
    pub budgets: &'a Budgets,
}

impl KeysApi<'_> {
    fn spend(&self, key: &StoredKey) -> SpendReport {
        self.budgets
            .report(&key.hash, (crate::ledger::now_ms() / 1000) as u64)
    }

    /// Routes `method` and the path after `/v1/keys` (empty, or `/{hash}`); `query` is the
    /// request's query string (OpenRouter's list takes `offset` and `include_disabled`).
    pub async fn handle(&self, method: &str, rest: &str, query: &str, body: &[u8]) -> Answer {
        let hash = rest.trim_start_matches('/');
        match (method, hash.is_empty()) {
            ("GET", true) => {
                let page = ListPage::parse(query)?;
                let keys = self.ledger.list_keys().await.map_err(storage_error)?;
                let data: Vec<Value> = keys
                    .iter()
                    .filter(|k| page.include_disabled || !k.disabled)
                    .skip(page.offset)
                    .map(|k| key_json(k, &self.spend(k)))
                    .collect();
                Ok((200, json!({ "data": data })))
            }
            ("POST", true) => {
                let new = parse_new_key(body)?;
                let (secret, key) = self.ledger.create_key(new).await.map_err(storage_error)?;
                Ok((
                    201,
                    json!({ "data": key_json(&key, &self.spend(&key)), "key": secret }),
                ))
            }
            (_, true) => Err(ApiError::method_not_allowed("use GET or POST on /v1/keys")),
            (method, false) => {
                let hash = parse_key_hash(hash).ok_or_else(|| {
                    ApiError::not_found("no such key: expected a 64-hex-digit hash")
                })?;
                let missing = || ApiError::not_found("no such key");
                match method {
                    "GET" => {
                        let key = self
                            .ledger
                            .get_key(&hash)
                            .await
                            .map_err(storage_error)?
                            .ok_or_else(missing)?;
                        Ok((200, json!({ "data": key_json(&key, &self.spend(&key)) })))
                    }
                    "PATCH" => {
                        let patch = parse_patch(body)?;
                        let key = self
                            .ledger
                            .update_key(&hash, patch)
                            .await
                            .map_err(storage_error)?
                            .ok_or_else(missing)?;
                        Ok((200, json!({ "data": key_json(&key, &self.spend(&key)) })))
                    }
                    "DELETE" => {
                        if self.ledger.delete_key(&hash).await.map_err(storage_error)? {
                            Ok((200, json!({ "deleted": true })))
                        } else {
                            Err(missing())
                        }
                    }
                    _ => Err(ApiError::method_not_allowed(
                        "use GET, PATCH or DELETE on /v1/keys/{hash}",
                    )),
                }
            }
        }
    }
}
