//! Writing a batch of generation records to SQLite: on a rusqlite connection of the writer's
//! own, on a blocking thread, rather than through the sqlx pool that serves reads and keys.
//!
//! Why (issue 12): through sqlx's Any driver a record cost ~95k instructions at batches of
//! 16: owned copies of every value, converted from Any to SQLite arguments, sent to sqlx's
//! worker thread statement by statement, and the created ids sent back as RETURNING rows.
//! Here a batch is one hop to a blocking thread; statements are prepared once per
//! connection; text is bound straight from the record; and which rows the inserts created
//! is told by `changes()` (see `write_batch`). The invariants are in `generations.rs`.
//!
//! One connection, one write at a time. It is opened on first use (so `Ledger::open_lazy`
//! stays lazy) and dropped after a failed write, so that the next attempt starts afresh (on
//! a file that may have been restored meanwhile). An attempt that finds the previous one
//! still running (it outlived the writer's attempt timeout) fails at once instead of
//! queueing behind it: a stuck disk then holds one batch more in memory, not a growing pile.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::Duration;

use once_cell::sync::Lazy;
use rusqlite::{CachedStatement, Connection, OpenFlags, ToSql};

use super::error::LedgerError;
use super::generations::{
    add_spend_sql, row_chunks, SpendDelta, COLUMNS, GENERATION_COLUMNS, ROW_CHUNKS,
};
use super::record::{write_attempts_json, GenerationRecord, SharedRecord};
use super::rows::{int, text};
use crate::auth::KeyHash;

/// As long as sqlx's connections wait for the lock (its default): the pool's key writes
/// and this writer take turns rather than fail.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// One statement per size in `ROW_CHUNKS`, for a multi-row insert of that many rows.
struct ChunkStatements(Vec<(usize, String)>);

impl ChunkStatements {
    fn new(sql: impl Fn(usize) -> String) -> ChunkStatements {
        ChunkStatements(ROW_CHUNKS.map(|n| (n, sql(n))).into())
    }

    /// The statement for `rows`, one of `ROW_CHUNKS`.
    fn get(&self, rows: usize) -> &str {
        self.0
            .iter()
            .find(|(n, _)| *n == rows)
            .map_or("", |(_, sql)| sql.as_str())
    }
}

/// `(?, ?, ..), (..)`: `rows` tuples of `columns` parameters.
fn sqlite_values(rows: usize, columns: usize) -> String {
    let row = format!("({})", vec!["?"; columns].join(", "));
    vec![row.as_str(); rows].join(", ")
}

/// `INSERT OR IGNORE INTO generations .. VALUES (..), ..`: the chunks of a batch whose
/// records are all new (`insert_if_all_new`).
///
/// `OR IGNORE` rather than `ON CONFLICT (id) DO NOTHING` (issue 12): a multi-row insert
/// that may abort halfway (a NOT NULL column's default is ABORT) makes SQLite journal every
/// page it changes, to undo just that statement; one that cannot abort journals nothing:
/// ~3,100 fewer instructions a record. Whatever else `OR IGNORE` could skip (a NULL in a
/// NOT NULL column, which `bind_row` never binds) leaves the chunk short of rows like a
/// known id does, which sends the batch to `INSERT_ONE_ROW`, where such a row fails the
/// write instead of vanishing.
static INSERT_NEW_ROWS: Lazy<ChunkStatements> = Lazy::new(|| {
    ChunkStatements::new(|n| {
        format!(
            "INSERT OR IGNORE INTO generations ({GENERATION_COLUMNS}) VALUES {}",
            sqlite_values(n, COLUMNS)
        )
    })
});

/// One record (`insert_one_by_one`): a known id is skipped, any other violation fails.
static INSERT_ONE_ROW: Lazy<String> = Lazy::new(|| {
    format!(
        "INSERT INTO generations ({GENERATION_COLUMNS}) VALUES {} ON CONFLICT (id) DO NOTHING",
        sqlite_values(1, COLUMNS)
    )
});

/// Spend rows added to in one statement, as records are inserted.
static ADD_SPEND_ROWS: Lazy<ChunkStatements> =
    Lazy::new(|| ChunkStatements::new(|n| add_spend_sql(&sqlite_values(n, 4))));

/// The writer's connection to one SQLite database.
#[derive(Debug)]
pub(crate) struct SqliteWriter {
    /// What `sqlite3_open_v2` is given: a path, or a `file:` URI (see `db.rs`).
    target: String,
    conn: Mutex<Option<Connection>>,
}

impl SqliteWriter {
    pub fn new(target: String) -> SqliteWriter {
        SqliteWriter {
            target,
            conn: Mutex::new(None),
        }
    }

    /// Inserts `batch` and adds its costs to `spend` in one transaction, on a blocking
    /// thread: the ledger's runtime thread never waits on SQLite.
    pub async fn write(self: &Arc<Self>, batch: Arc<Vec<SharedRecord>>) -> Result<(), LedgerError> {
        let writer = self.clone();
        tokio::task::spawn_blocking(move || writer.write_blocking(&batch))
            .await
            // Only a panic in the closure, or a runtime shutting down, gets here.
            .map_err(|_| LedgerError::Stopped)?
    }

    fn write_blocking(&self, batch: &[SharedRecord]) -> Result<(), LedgerError> {
        let mut slot = match self.conn.try_lock() {
            Ok(slot) => slot,
            // A panic mid-write leaves the connection in an unknown state: start afresh.
            Err(TryLockError::Poisoned(poisoned)) => {
                let mut slot = poisoned.into_inner();
                *slot = None;
                slot
            }
            Err(TryLockError::WouldBlock) => return Err(LedgerError::TimedOut),
        };
        let result = self.write_on(&mut slot, batch);
        if result.is_err() {
            *slot = None;
        }
        result
    }

    fn write_on(
        &self,
        slot: &mut MutexGuard<'_, Option<Connection>>,
        batch: &[SharedRecord],
    ) -> Result<(), LedgerError> {
        let conn = match slot.as_mut() {
            Some(conn) => conn,
            None => slot.insert(open(&self.target)?),
        };
        Ok(write_batch(conn, batch)?)
    }

    /// Closes the connection (on a blocking thread: the last connection to close
    /// checkpoints the WAL into the database file). A write still running keeps it open
    /// until it ends; nothing waits for that.
    pub async fn close(&self) {
        let conn = match self.conn.try_lock() {
            Ok(mut slot) => slot.take(),
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner().take(),
            Err(TryLockError::WouldBlock) => None,
        };
        if let Some(conn) = conn {
            let _ = tokio::task::spawn_blocking(move || drop(conn)).await;
        }
    }
}

impl Drop for SqliteWriter {
    fn drop(&mut self) {
        // Not closed by `close` (a ledger dropped mid-write): closes wherever it is dropped.
        if let Some(conn) = self
            .conn
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = conn.close();
        }
    }
}

/// Opens the writer's connection with the settings the pool's connections have (`db.rs`).
fn open(target: &str) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(target, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch(SQLITE_PRAGMAS)?;
    Ok(conn)
}

/// WAL persists in the file (a no-op once the pool has set it); `synchronous` is per
/// connection, and NORMAL is what WAL is designed for (see `db.rs`).
///
/// `temp_store = MEMORY` (issue 12): a multi-row statement that may fail halfway inside a
/// transaction keeps a statement journal (the pages it changes, to undo just that
/// statement), and SQLite spills it past 64 KiB to a temp file in /var/tmp: under load that
/// file took two thirds of the ledger's writes (`strace`: 5,514 of 8,560 `pwrite`s for
/// 5,120 records), plus an `open` and `unlink` per transaction. It lives in memory now,
/// bounded by the pages one chunk of `ROW_CHUNKS` rows changes. (The generations insert
/// keeps none since it became `OR IGNORE`; the spend upsert, once a batch, still does.)
const SQLITE_PRAGMAS: &str =
    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA temp_store = MEMORY;";

/// The whole batch in one transaction, in the usual case with multi-row inserts.
///
/// Which records did the inserts create, to be charged? A multi-row insert that changed as
/// many rows as it has created every one of them (each row changes at most one). When one
/// changes fewer (a batch retried after a lost commit acknowledgement, an id listed twice),
/// that transaction is rolled back and the batch written again one record at a time, where
/// `changes()` tells row by row.
fn write_batch(conn: &Connection, batch: &[SharedRecord]) -> rusqlite::Result<()> {
    let mut scratch = Scratch::default();
    if in_transaction(conn, |conn| insert_if_all_new(conn, &mut scratch, batch))? {
        return Ok(());
    }
    in_transaction(conn, |conn| insert_one_by_one(conn, &mut scratch, batch)).map(drop)
}

/// Runs `work` between BEGIN IMMEDIATE and COMMIT, or rolls back if it fails or says
/// `false`. IMMEDIATE takes the write lock up front, waiting its turn behind the pool's
/// writers, rather than failing to upgrade a read lock halfway through. BEGIN and COMMIT
/// are prepared once like the other statements: parsing them was most of the cost of a
/// batch of one.
fn in_transaction(
    conn: &Connection,
    work: impl FnOnce(&Connection) -> rusqlite::Result<bool>,
) -> rusqlite::Result<bool> {
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    let done = work(conn).and_then(|commit| {
        if commit {
            conn.prepare_cached("COMMIT")?.execute([])?;
        }
        Ok(commit)
    });
    if !matches!(done, Ok(true)) && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    done
}

/// Inserts `batch` in chunks and charges every record, if every insert created all of its
/// rows; `false` (to be rolled back) as soon as one did not.
fn insert_if_all_new(
    conn: &Connection,
    scratch: &mut Scratch,
    batch: &[SharedRecord],
) -> rusqlite::Result<bool> {
    for chunk in row_chunks(batch) {
        let mut insert = conn.prepare_cached(INSERT_NEW_ROWS.get(chunk.len()))?;
        for (row, rec) in chunk.iter().enumerate() {
            bind_row(&mut insert, row * COLUMNS, scratch, rec)?;
        }
        if insert.raw_execute()? != chunk.len() {
            return Ok(false);
        }
    }
    let mut spend = SpendDelta::default();
    batch.iter().for_each(|rec| spend.charge(rec));
    add_spend(conn, &spend)?;
    Ok(true)
}

/// Inserts each record on its own and charges those it created.
fn insert_one_by_one(
    conn: &Connection,
    scratch: &mut Scratch,
    batch: &[SharedRecord],
) -> rusqlite::Result<bool> {
    let mut spend = SpendDelta::default();
    let mut insert = conn.prepare_cached(&INSERT_ONE_ROW)?;
    for rec in batch {
        // A record listed twice conflicts with itself the second time.
        bind_row(&mut insert, 0, scratch, rec)?;
        if insert.raw_execute()? == 1 {
            spend.charge(rec);
        }
    }
    add_spend(conn, &spend)?;
    Ok(true)
}

/// One upsert per chunk of spend rows rather than per row: at a batch of one record, its
/// four rows were a third of the cost.
fn add_spend(conn: &Connection, spend: &SpendDelta) -> rusqlite::Result<()> {
    let rows: Vec<_> = spend.rows().collect();
    let mut key_hex = LastKeyHex::default();
    for chunk in row_chunks(&rows) {
        let mut add = conn.prepare_cached(ADD_SPEND_ROWS.get(chunk.len()))?;
        let mut at = 0;
        for (key, period, start, pico) in chunk {
            add.raw_bind_parameter(at + 1, key_hex.of(key))?;
            add.raw_bind_parameter(at + 2, period)?;
            add.raw_bind_parameter(at + 3, start)?;
            add.raw_bind_parameter(at + 4, pico)?;
            at += 4;
        }
        add.raw_execute()?;
    }
    Ok(())
}

/// Buffers reused from record to record, so binding one allocates nothing in the usual case.
#[derive(Default)]
struct Scratch {
    attempts: Vec<u8>,
    key_hex: LastKeyHex,
}

/// Binds `rec` to the parameters after the first `offset`, in `GENERATION_COLUMNS` order.
fn bind_row(
    insert: &mut CachedStatement<'_>,
    offset: usize,
    scratch: &mut Scratch,
    rec: &GenerationRecord,
) -> rusqlite::Result<()> {
    scratch.attempts.clear();
    write_attempts_json(&rec.attempts, &mut scratch.attempts);
    // JSON written from `&str`s is UTF-8.
    let attempts = std::str::from_utf8(&scratch.attempts).unwrap_or("[]");
    let mut cost = itoa::Buffer::new();
    let u = &rec.usage;
    let mut at = offset;
    let mut bind = |value: &dyn ToSql| {
        at += 1;
        insert.raw_bind_parameter(at, value)
    };
    bind(&text(&rec.id))?;
    bind(&scratch.key_hex.of(&rec.key_hash))?;
    bind(&text(&rec.key_name))?;
    bind(&text(&rec.model))?;
    bind(&text(&rec.provider))?;
    bind(&text(&rec.upstream_model))?;
    bind(&attempts)?;
    bind(&int(u.prompt))?;
    bind(&int(u.completion))?;
    bind(&int(u.cached_prompt))?;
    bind(&int(u.reasoning))?;
    bind(&cost.format(rec.cost.0))?;
    bind(&int(rec.latency_ms))?;
    bind(&rec.ttft_ms.map(int))?;
    bind(&rec.finish_reason.as_deref().map(text))?;
    bind(&i64::from(rec.status))?;
    bind(&i64::from(rec.streamed))?;
    bind(&i64::from(rec.cancelled))?;
    bind(&i64::from(u.estimated))?;
    bind(&rec.error.as_deref().map(text))?;
    bind(&rec.created_at)
}

/// Key hashes as the 64 lowercase hex digits the tables hold (as `hex::encode` writes
/// them), on the stack, the last one kept: a batch's records share few keys.
#[derive(Default)]
struct LastKeyHex(Option<(KeyHash, [u8; 64])>);

impl LastKeyHex {
    fn of(&mut self, key: &KeyHash) -> &str {
        if self.0.as_ref().is_none_or(|(last, _)| last != key) {
            let mut hex = [0u8; 64];
            // 32 bytes always fit 64 digits.
            let _ = hex::encode_to_slice(key, &mut hex);
            self.0 = Some((*key, hex));
        }
        self.0
            .as_ref()
            .and_then(|(_, hex)| std::str::from_utf8(hex).ok())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_writers_connection_keeps_temp_files_in_memory() {
        let dir =
            std::env::temp_dir().join(format!("switchyard-temp-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conn = open(dir.join("ledger.db").to_str().unwrap()).unwrap();
        let pragma = |name: &str| -> String {
            conn.query_row(&format!("PRAGMA {name}"), [], |row| {
                row.get::<_, rusqlite::types::Value>(0)
            })
            .map(|v| format!("{v:?}"))
            .unwrap()
        };
        // 2 is MEMORY; 0 (the default) would spill statement journals to /var/tmp.
        assert_eq!(pragma("temp_store"), "Integer(2)");
        assert_eq!(pragma("journal_mode"), "Text(\"wal\")");
        assert_eq!(pragma("synchronous"), "Integer(1)");
        drop(conn);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn sqlite_is_built_without_allocation_statistics_and_with_a_larger_lookaside() {
        // .cargo/config.toml: a mutex per malloc for counters nothing reads; the system
        // malloc for the text a multi-row insert binds.
        let conn = Connection::open_in_memory().unwrap();
        let mut options = conn.prepare("PRAGMA compile_options").unwrap();
        let options: Vec<String> = options
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "{options:?}"
        );
        assert!(
            options.iter().any(|o| o == "DEFAULT_LOOKASIDE=1200,200"),
            "{options:?}"
        );
    }

    /// `OR IGNORE` would skip a NULL in a NOT NULL column as it skips a known id: the chunk
    /// comes up short, and the one-by-one insert the batch falls back to refuses the row.
    #[test]
    fn a_row_the_chunk_insert_skips_fails_the_one_by_one_insert() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(include_str!("../../migrations/sqlite/0001_ledger.sql"))
            .unwrap();
        let row = |id: &str, key_name: Option<&str>| -> Vec<rusqlite::types::Value> {
            use rusqlite::types::Value::{Integer, Null, Text};
            let text = |s: &str| Text(s.into());
            let mut row = vec![text(id), text("ab"), key_name.map_or(Null, text)];
            row.extend(["m", "p", "u", "[]"].map(text));
            row.extend([Integer(1), Integer(2), Integer(0), Integer(0), text("7")]);
            row.extend([Integer(5), Null, Null, Integer(200), Integer(0), Integer(0)]);
            row.extend([Integer(0), Null, Integer(9)]);
            row
        };
        let insert = |sql: &str, row: Vec<_>| {
            conn.prepare(sql)
                .unwrap()
                .execute(rusqlite::params_from_iter(row))
        };
        assert_eq!(
            insert(INSERT_NEW_ROWS.get(1), row("gen-a", Some("k"))),
            Ok(1)
        );
        assert_eq!(
            insert(INSERT_NEW_ROWS.get(1), row("gen-a", Some("k"))),
            Ok(0)
        );
        assert_eq!(insert(INSERT_NEW_ROWS.get(1), row("gen-b", None)), Ok(0));
        assert_eq!(insert(&INSERT_ONE_ROW, row("gen-a", Some("k"))), Ok(0));
        let refused = insert(&INSERT_ONE_ROW, row("gen-b", None)).unwrap_err();
        assert!(refused.to_string().contains("NOT NULL"), "{refused}");
    }

    #[test]
    fn the_insert_binds_every_column_and_key_hex_matches_hex_encode() {
        for n in ROW_CHUNKS {
            assert_eq!(INSERT_NEW_ROWS.get(n).matches('?').count(), n * COLUMNS);
            assert_eq!(ADD_SPEND_ROWS.get(n).matches('?').count(), n * 4);
        }
        assert_eq!(GENERATION_COLUMNS.split(',').count(), COLUMNS);
        let (a, b): (KeyHash, KeyHash) = (std::array::from_fn(|i| (i * 37) as u8), [9; 32]);
        let mut hex = LastKeyHex::default();
        for key in [a, a, b, a] {
            assert_eq!(hex.of(&key), hex::encode(key));
        }
    }
}
