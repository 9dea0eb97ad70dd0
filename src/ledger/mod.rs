//! The ledger: generation records, keys and spend, kept with sqlx in SQLite (the default,
//! `sqlite://data/switchyard.db`) or Postgres (`postgres://...`) by the same code, but for
//! the batch write (below).
//!
//! - [`LedgerWriter`] takes finished records from the request path without ever touching
//!   the database there, and writes them in batches (see `writer.rs` and, for what may be
//!   lost and when, `queue.rs`).
//! - [`Ledger`] owns the pool and answers reads: `/v1/generation`, a key's spend, the admin
//!   API's key CRUD. Its methods are async and may be awaited from any runtime or executor:
//!   the work itself runs on the ledger's own runtime thread (`runtime.rs` says why). Sync
//!   callers (startup, the CLI) wrap them in [`block_on`].
//!
//! Batches of generation records are written to SQLite on a connection of the writer's own
//! (`sqlite_batch.rs`, for its cost per record) and to Postgres through the pool.
//!
//! Money: generation costs are stored exactly, as decimal pico-USD text; a key's spend is an
//! integer pico-USD counter per period, kept for every kind of period (day, week, month,
//! all time) so it does not depend on the key's current `limit_reset`, and saturating near
//! 9.2 million USD (see the migrations). A record counts in the periods containing its
//! `created_at`. The ledger knows nothing of requests in flight (DESIGN §1).

mod db;
mod error;
mod generations;
mod keys;
mod period;
mod postgres_batch;
mod queue;
mod record;
mod rows;
mod runtime;
mod sqlite_batch;
mod writer;

use std::sync::Arc;

pub use db::{redacted_url, Backend};
pub use error::LedgerError;
pub use keys::{KeyPatch, NewKey, StoredKey};
pub use period::{iso8601, now_ms, period_end, period_start};
pub use queue::WriterStats;
/// A realistic record, for other modules' tests.
#[cfg(test)]
pub(crate) use record::tests::sample as sample_record;
pub use record::{Attempt, GenerationRecord, SharedRecord};
pub use rows::parse_key_hash;
pub use runtime::{block_on, block_on_timeout};
pub use writer::{LedgerWriter, WriterConfig};

use crate::auth::{KeyHash, LimitReset};
use db::Db;
use runtime::LedgerRuntime;

/// A handle on the ledger; clones share one pool and one runtime thread, which stop when
/// the last handle (and the last writer) is gone.
#[derive(Clone)]
pub struct Ledger {
    inner: Arc<LedgerInner>,
}

struct LedgerInner {
    db: Db,
    runtime: LedgerRuntime,
}

impl Drop for LedgerInner {
    fn drop(&mut self) {
        // Closing the connections lets SQLite checkpoint its WAL into the main file.
        self.runtime.stop(Some(self.db.clone()));
    }
}

impl Ledger {
    /// Connects to `database_url` (creating a SQLite file and its folder if missing) and
    /// brings the schema up to date. Blocks while it does: call it at startup.
    pub fn open(database_url: &str) -> Result<Ledger, LedgerError> {
        Ledger::start(database_url, false)
    }

    /// Opens without connecting and without migrating: the first query connects. For a
    /// database another instance has already migrated, and for tests of an unreachable one.
    pub fn open_lazy(database_url: &str) -> Result<Ledger, LedgerError> {
        Ledger::start(database_url, true)
    }

    fn start(database_url: &str, lazy: bool) -> Result<Ledger, LedgerError> {
        let runtime = LedgerRuntime::start()?;
        let url = database_url.to_string();
        let db = block_on(runtime.run(async move { db::connect(&url, lazy).await }))?;
        Ok(Ledger {
            inner: Arc::new(LedgerInner { db, runtime }),
        })
    }

    pub fn backend(&self) -> Backend {
        self.inner.db.backend
    }

    /// Starts a writer on this ledger (same as [`LedgerWriter::start`]).
    pub fn writer(&self, config: WriterConfig) -> LedgerWriter {
        LedgerWriter::start(self, config)
    }

    pub(crate) fn db(&self) -> &Db {
        &self.inner.db
    }

    pub(crate) fn runtime(&self) -> &LedgerRuntime {
        &self.inner.runtime
    }

    /// Writes `batch` in one transaction exactly as a [`LedgerWriter`] does, without its
    /// queue and retries. For `benches/ledger.rs` and tests; the gateway uses the writer.
    #[doc(hidden)]
    pub async fn write_batch(&self, batch: Vec<GenerationRecord>) -> Result<(), LedgerError> {
        let batch: Vec<SharedRecord> = batch.into_iter().map(Arc::new).collect();
        let (db, batch) = (self.db().clone(), Arc::new(batch));
        self.runtime()
            .run(async move { generations::insert_batch(&db, &batch).await })
            .await
    }

    pub async fn get_generation(&self, id: &str) -> Result<Option<GenerationRecord>, LedgerError> {
        let (db, id) = (self.db().clone(), id.to_string());
        self.runtime()
            .run(async move { generations::get_generation(&db, &id).await })
            .await
    }

    /// Pico-USD `key_hash` has spent in the current `reset` period (UTC): any kind of period,
    /// whatever reset the key itself uses. Records still queued in a writer are not in it.
    pub async fn spend_for(
        &self,
        key_hash: &KeyHash,
        reset: LimitReset,
    ) -> Result<u128, LedgerError> {
        self.spend_at(key_hash, reset, now_ms()).await
    }

    /// Pico-USD `key_hash` spent in the period under `reset` that contains `at_ms`.
    pub async fn spend_at(
        &self,
        key_hash: &KeyHash,
        reset: LimitReset,
        at_ms: i64,
    ) -> Result<u128, LedgerError> {
        let (db, key_hash) = (self.db().clone(), *key_hash);
        let start = period_start(reset, at_ms);
        self.runtime()
            .run(async move { generations::spend_in(&db, &key_hash, reset, start).await })
            .await
    }

    /// Creates a key. The secret (`sk-sy-` + 48 alphanumerics) is returned here and never
    /// again: only its SHA-256 is stored.
    pub async fn create_key(&self, new: NewKey) -> Result<(String, StoredKey), LedgerError> {
        let db = self.db().clone();
        self.runtime()
            .run(async move { keys::create(&db, new).await })
            .await
    }

    pub async fn list_keys(&self) -> Result<Vec<StoredKey>, LedgerError> {
        let db = self.db().clone();
        self.runtime()
            .run(async move { keys::list(&db).await })
            .await
    }

    /// Every stored key, disabled ones included (the proxy refuses those by name rather
    /// than as unknown), for the key ring at startup and on reload.
    pub async fn load_keys(&self) -> Result<Vec<StoredKey>, LedgerError> {
        self.list_keys().await
    }

    pub async fn get_key(&self, hash: &KeyHash) -> Result<Option<StoredKey>, LedgerError> {
        let (db, hash) = (self.db().clone(), *hash);
        self.runtime()
            .run(async move { keys::get(&db, &hash).await })
            .await
    }

    /// `None` if there is no such key.
    pub async fn update_key(
        &self,
        hash: &KeyHash,
        patch: KeyPatch,
    ) -> Result<Option<StoredKey>, LedgerError> {
        let (db, hash) = (self.db().clone(), *hash);
        self.runtime()
            .run(async move { keys::update(&db, &hash, patch).await })
            .await
    }

    /// `true` if the key existed.
    pub async fn delete_key(&self, hash: &KeyHash) -> Result<bool, LedgerError> {
        let (db, hash) = (self.db().clone(), *hash);
        self.runtime()
            .run(async move { keys::delete(&db, &hash).await })
            .await
    }
}
