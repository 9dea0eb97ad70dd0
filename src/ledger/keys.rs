//! Keys provisioned through the admin API: created with a secret shown once, stored only
//! as its SHA-256, and lowered into `auth::ApiKey` for the key ring.

use rand::distributions::Alphanumeric;
use rand::rngs::OsRng;
use rand::Rng;
use serde_json::Value;
use sqlx::any::AnyRow;

use super::db::{Backend, Db};
use super::error::LedgerError;
use super::period::now_ms;
use super::rows::{col, flag, int, parse_key_hash};
use crate::auth::{hash_secret, ApiKey, KeyHash, LimitReset};
use crate::routing::ProviderPrefs;

/// What the admin asks for when creating a key.
#[derive(Clone, Debug, PartialEq)]
pub struct NewKey {
    pub name: String,
    pub limit_usd: Option<f64>,
    pub limit_reset: LimitReset,
    pub rpm: Option<u32>,
    pub tpm: Option<u64>,
    /// Glob patterns; `None` allows every model.
    pub allowed_models: Option<Vec<String>>,
    /// OpenRouter's `provider` object, kept as sent (it must parse as `ProviderPrefs`).
    pub provider_prefs: Value,
    pub disabled: bool,
}

impl NewKey {
    /// A key with no limits: everything else as a fresh OpenRouter key.
    pub fn named(name: impl Into<String>) -> NewKey {
        NewKey {
            name: name.into(),
            limit_usd: None,
            limit_reset: LimitReset::Never,
            rpm: None,
            tpm: None,
            allowed_models: None,
            provider_prefs: Value::Object(Default::default()),
            disabled: false,
        }
    }
}

/// A partial update: `None` leaves a field alone; for nullable fields `Some(None)` clears it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KeyPatch {
    pub name: Option<String>,
    pub limit_usd: Option<Option<f64>>,
    pub limit_reset: Option<LimitReset>,
    pub rpm: Option<Option<u32>>,
    pub tpm: Option<Option<u64>>,
    pub allowed_models: Option<Option<Vec<String>>>,
    pub provider_prefs: Option<Value>,
    pub disabled: Option<bool>,
}

/// A key as stored. Never holds the secret.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredKey {
    pub hash: KeyHash,
    pub name: String,
    /// `sk-sy-abc...xyz`: enough of the secret for a person to tell keys apart.
    pub label: String,
    pub limit_usd: Option<f64>,
    pub limit_reset: LimitReset,
    pub rpm: Option<u32>,
    pub tpm: Option<u64>,
    pub allowed_models: Option<Vec<String>>,
    pub provider_prefs: Value,
    pub disabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
    /// `provider_prefs` parsed; validated on every write, so reads cannot fail on it.
    prefs: ProviderPrefs,
}

impl StoredKey {
    pub fn hash_hex(&self) -> String {
        hex::encode(self.hash)
    }

    pub fn to_api_key(&self) -> ApiKey {
        ApiKey {
            name: self.name.clone(),
            hash: self.hash,
            limit_usd: self.limit_usd,
            limit_reset: self.limit_reset,
            rpm: self.rpm,
            tpm: self.tpm,
            allowed_models: self.allowed_models.clone(),
            provider_prefs: self.prefs.clone(),
            disabled: self.disabled,
        }
    }
}

const SECRET_PREFIX: &str = "sk-sy-";
const SECRET_RANDOM_CHARS: usize = 48;

const INSERT_KEY: &str = "INSERT INTO keys (hash, name, label, limit_usd, limit_reset, rpm, tpm, \
     allowed_models, provider_prefs, disabled, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
const UPDATE_KEY: &str = "UPDATE keys SET name = $2, limit_usd = $3, limit_reset = $4, rpm = $5, \
     tpm = $6, allowed_models = $7, provider_prefs = $8, disabled = $9, updated_at = $10 WHERE hash = $1";
const SELECT_ALL: &str =
    "SELECT hash, name, label, limit_usd, limit_reset, rpm, tpm, allowed_models, \
     provider_prefs, disabled, created_at, updated_at FROM keys ORDER BY created_at, hash";
const SELECT_ONE: &str =
    "SELECT hash, name, label, limit_usd, limit_reset, rpm, tpm, allowed_models, \
     provider_prefs, disabled, created_at, updated_at FROM keys WHERE hash = $1";
const DELETE_KEY: &str = "DELETE FROM keys WHERE hash = $1";

/// Creates a key; the returned secret exists nowhere else, so it is the caller's to show once.
pub(crate) async fn create(db: &Db, new: NewKey) -> Result<(String, StoredKey), LedgerError> {
    let random: String = OsRng
        .sample_iter(&Alphanumeric)
        .take(SECRET_RANDOM_CHARS)
        .map(char::from)
        .collect();
    let secret = format!("{SECRET_PREFIX}{random}");
    let now = now_ms();
    let key = StoredKey {
        hash: hash_secret(&secret),
        label: format!(
            "{SECRET_PREFIX}{}...{}",
            &random[..3],
            &random[SECRET_RANDOM_CHARS - 3..]
        ),
        prefs: parse_prefs(&new.provider_prefs)?,
        name: new.name,
        limit_usd: new.limit_usd,
        limit_reset: new.limit_reset,
        rpm: new.rpm,
        tpm: new.tpm,
        allowed_models: new.allowed_models,
        provider_prefs: new.provider_prefs,
        disabled: new.disabled,
        created_at: now,
        updated_at: now,
    };
    validate(&key)?;
    sqlx::query(INSERT_KEY)
        .bind(key.hash_hex())
        .bind(key.name.as_str())
        .bind(key.label.as_str())
        .bind(key.limit_usd)
        .bind(key.limit_reset.as_str())
        .bind(key.rpm.map(i64::from))
        .bind(key.tpm.map(int))
        .bind(models_json(&key.allowed_models))
        .bind(key.provider_prefs.to_string())
        .bind(i64::from(key.disabled))
        .bind(key.created_at)
        .bind(key.updated_at)
        .execute(&db.pool)
        .await?;
    Ok((secret, key))
}

/// Every stored key. A row that does not decode is skipped with a warning, so one bad row
/// cannot lock every other key out at startup.
pub(crate) async fn list(db: &Db) -> Result<Vec<StoredKey>, LedgerError> {
    let rows = sqlx::query(SELECT_ALL).fetch_all(&db.pool).await?;
    Ok(rows
        .iter()
        .filter_map(|row| match decode_key(row) {
            Ok(key) => Some(key),
            Err(e) => {
                log::warn!("ledger: skipping key row: {e}");
                None
            }
        })
        .collect())
}

pub(crate) async fn get(db: &Db, hash: &KeyHash) -> Result<Option<StoredKey>, LedgerError> {
    let row = sqlx::query(SELECT_ONE)
        .bind(hex::encode(hash))
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(decode_key).transpose()
}

/// Applies `patch`; `None` if there is no such key. Read and write share one transaction;
/// two admins patching the same key at once may still see the later write win whole.
pub(crate) async fn update(
    db: &Db,
    hash: &KeyHash,
    patch: KeyPatch,
) -> Result<Option<StoredKey>, LedgerError> {
    // On SQLite the write lock is taken first: a deferred transaction that read and then
    // writes fails at once (SQLITE_BUSY_SNAPSHOT, no busy wait) when the ledger's writer
    // committed in between, which it does every batch. Postgres reads committed rows anyway.
    let mut tx = match db.backend {
        Backend::Sqlite => db.pool.begin_with("BEGIN IMMEDIATE").await?,
        Backend::Postgres => db.pool.begin().await?,
    };
    let result = update_in(&mut tx, hash, patch).await;
    // Ended here, whatever the outcome: a transaction merely dropped is rolled back only when
    // its connection is next used, and until then its read lock on `keys` makes another
    // connection's write to an in-memory (shared-cache) database fail with "table is locked".
    match result {
        Ok(Some(_)) => tx.commit().await?,
        _ => tx.rollback().await?,
    }
    result
}

async fn update_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    hash: &KeyHash,
    patch: KeyPatch,
) -> Result<Option<StoredKey>, LedgerError> {
    let row = sqlx::query(SELECT_ONE)
        .bind(hex::encode(hash))
        .fetch_optional(&mut **tx)
        .await?;
    let Some(mut key) = row.as_ref().map(decode_key).transpose()? else {
        return Ok(None);
    };
    if let Some(prefs) = patch.provider_prefs {
        key.prefs = parse_prefs(&prefs)?;
        key.provider_prefs = prefs;
    }
    key.name = patch.name.unwrap_or(key.name);
    key.limit_usd = patch.limit_usd.unwrap_or(key.limit_usd);
    key.limit_reset = patch.limit_reset.unwrap_or(key.limit_reset);
    key.rpm = patch.rpm.unwrap_or(key.rpm);
    key.tpm = patch.tpm.unwrap_or(key.tpm);
    key.allowed_models = patch.allowed_models.unwrap_or(key.allowed_models);
    key.disabled = patch.disabled.unwrap_or(key.disabled);
    key.updated_at = now_ms().max(key.created_at);
    validate(&key)?;
    sqlx::query(UPDATE_KEY)
        .bind(key.hash_hex())
        .bind(key.name.as_str())
        .bind(key.limit_usd)
        .bind(key.limit_reset.as_str())
        .bind(key.rpm.map(i64::from))
        .bind(key.tpm.map(int))
        .bind(models_json(&key.allowed_models))
        .bind(key.provider_prefs.to_string())
        .bind(i64::from(key.disabled))
        .bind(key.updated_at)
        .execute(&mut **tx)
        .await?;
    Ok(Some(key))
}

/// `true` if a key was deleted. Its generations and spend stay: they are history.
pub(crate) async fn delete(db: &Db, hash: &KeyHash) -> Result<bool, LedgerError> {
    let done = sqlx::query(DELETE_KEY)
        .bind(hex::encode(hash))
        .execute(&db.pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

fn validate(key: &StoredKey) -> Result<(), LedgerError> {
    let invalid = |why: &str| Err(LedgerError::Invalid(why.to_string()));
    if key.name.trim().is_empty() || key.name.contains('\0') {
        return invalid("name must be non-empty text");
    }
    if key.limit_usd.is_some_and(|l| !l.is_finite() || l < 0.0) {
        return invalid("limit must be a non-negative number of USD");
    }
    if key.rpm == Some(0) || key.tpm == Some(0) {
        // 0 read "refuse all" in-process but "no limit" in Redis's scripts.
        return invalid("rpm and tpm must be positive integers (null for no limit)");
    }
    if key
        .allowed_models
        .as_ref()
        .is_some_and(|m| m.iter().any(|p| p.trim().is_empty()))
    {
        return invalid("allowed_models must not hold empty patterns");
    }
    Ok(())
}

fn parse_prefs(prefs: &Value) -> Result<ProviderPrefs, LedgerError> {
    if !prefs.is_object() {
        return Err(LedgerError::Invalid(
            "provider preferences must be an object".into(),
        ));
    }
    let names = prefs.as_object().into_iter().flat_map(|m| m.keys());
    if let Some(name) = ProviderPrefs::unknown_field(names.map(String::as_str)) {
        return Err(LedgerError::Invalid(format!(
            "provider preferences: unknown field `{name}`, expected one of {}",
            ProviderPrefs::FIELDS.join(", ")
        )));
    }
    serde_json::from_value(prefs.clone())
        .map_err(|e| LedgerError::Invalid(format!("provider preferences: {e}")))
}

fn models_json(models: &Option<Vec<String>>) -> Option<String> {
    models.as_ref().map(|m| Value::from(m.clone()).to_string())
}

fn decode_key(row: &AnyRow) -> Result<StoredKey, LedgerError> {
    let hash_hex: String = col(row, "hash")?;
    let corrupt = |what: &str| LedgerError::Corrupt(format!("key {hash_hex}: {what}"));
    let provider_prefs: Value = serde_json::from_str(&col::<String>(row, "provider_prefs")?)
        .map_err(|_| corrupt("provider_prefs"))?;
    let allowed_models = match col::<Option<String>>(row, "allowed_models")? {
        Some(json) => Some(serde_json::from_str(&json).map_err(|_| corrupt("allowed_models"))?),
        None => None,
    };
    let reset: String = col(row, "limit_reset")?;
    let rpm = match col::<Option<i64>>(row, "rpm")? {
        Some(n) => Some(u32::try_from(n).map_err(|_| corrupt("rpm"))?),
        None => None,
    };
    let tpm = match col::<Option<i64>>(row, "tpm")? {
        Some(n) => Some(u64::try_from(n).map_err(|_| corrupt("tpm"))?),
        None => None,
    };
    Ok(StoredKey {
        hash: parse_key_hash(&hash_hex).ok_or_else(|| corrupt("hash"))?,
        name: col(row, "name")?,
        label: col(row, "label")?,
        limit_usd: col(row, "limit_usd")?,
        limit_reset: LimitReset::parse(&reset).ok_or_else(|| corrupt("limit_reset"))?,
        rpm,
        tpm,
        allowed_models,
        prefs: parse_prefs(&provider_prefs).map_err(|_| corrupt("provider_prefs"))?,
        provider_prefs,
        disabled: flag(row, "disabled")?,
        created_at: col(row, "created_at")?,
        updated_at: col(row, "updated_at")?,
    })
}
