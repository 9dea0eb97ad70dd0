//! Connecting: one sqlx `AnyPool` over SQLite or Postgres, the schema brought up to date,
//! and on SQLite the batch writer's own connection (`sqlite_batch.rs`) to the same database.
//!
//! One code path serves both databases: the schemas (`migrations/sqlite`,
//! `migrations/postgres`) use only integers, doubles and text, the queries use `$N`
//! placeholders (SQLite accepts them too) and `ON CONFLICT`, which both speak.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::AnyConnection;
use sqlx::{AnyPool, Executor, SqlSafeStr};

use super::error::LedgerError;
use super::sqlite_batch::SqliteWriter;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The pool and which database is behind it.
#[derive(Clone, Debug)]
pub(crate) struct Db {
    pub pool: AnyPool,
    pub backend: Backend,
    /// SQLite only: where batches of generation records are written.
    pub sqlite: Option<Arc<SqliteWriter>>,
}

impl Db {
    /// Closes every connection; the last one to close checkpoints a SQLite WAL.
    pub async fn close(&self) {
        self.pool.close().await;
        if let Some(sqlite) = &self.sqlite {
            sqlite.close().await;
        }
    }
}

/// How long a caller waits for a connection before the attempt counts as failed; the
/// writer's retry loop, not the pool, decides what happens next.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// SQLite serialises writers anyway; a few connections let reads run beside the writer (WAL).
const SQLITE_CONNECTIONS: u32 = 4;
const POSTGRES_CONNECTIONS: u32 = 8;

/// Opens a pool on `url`: `sqlite://relative/path.db`, `sqlite:///abs/path.db`,
/// `sqlite::memory:` or `postgres://...`. A SQLite file and its folder are created if
/// missing. `lazy` opens no connection now (and so runs no migrations): the first query
/// connects.
pub(crate) async fn connect(url: &str, lazy: bool) -> Result<Db, LedgerError> {
    static DRIVERS: Once = Once::new();
    DRIVERS.call_once(sqlx::any::install_default_drivers);

    let Target {
        backend,
        url,
        in_memory,
        sqlite_file,
    } = prepare_url(url)?;
    let max = match backend {
        Backend::Sqlite => SQLITE_CONNECTIONS,
        Backend::Postgres => POSTGRES_CONNECTIONS,
    };
    let mut options = AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .after_connect(move |conn, _| Box::pin(async move { tune(conn, backend).await }));
    if in_memory {
        // An in-memory database lives only while a connection to it is open: keep one.
        options = options
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None);
    }
    let pool = if lazy {
        options.connect_lazy(&url)?
    } else {
        options.connect(&url).await?
    };
    let db = Db {
        pool,
        backend,
        sqlite: sqlite_file.map(|file| Arc::new(SqliteWriter::new(file))),
    };
    if !lazy {
        migrator(backend).run(&db.pool).await?;
    }
    Ok(db)
}

/// Per-connection settings. WAL lets readers (the `/generation` endpoint, the admin API)
/// run while the writer commits; `synchronous = NORMAL` is the setting WAL is designed for:
/// a power cut may lose the last commits, never corrupt the file. `journal_mode` persists in
/// the file, so after the first connection this is a no-op. `temp_store = MEMORY`: see
/// `SQLITE_PRAGMAS` in `sqlite_batch.rs`.
async fn tune(conn: &mut AnyConnection, backend: Backend) -> Result<(), sqlx::Error> {
    if backend == Backend::Sqlite {
        conn.execute("PRAGMA journal_mode = WAL").await?;
        conn.execute("PRAGMA synchronous = NORMAL").await?;
        conn.execute("PRAGMA temp_store = MEMORY").await?;
    }
    Ok(())
}

/// What to open: the backend and the URL as sqlx should see it.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    backend: Backend,
    url: String,
    in_memory: bool,
    /// SQLite only: the same database as a `file:` URI for the batch writer's connection.
    sqlite_file: Option<String>,
}

/// The backend of `url`, and the URL sqlx should open. For SQLite: the parent folder is
/// created and `mode=rwc` asks SQLite to create the file, unless the URL chose a mode.
/// `url` as it may be shown: a password in it (`postgres://user:PASSWORD@host/db`, or
/// `?password=...`) replaced by `***`. Messages about the database name it; logs and
/// terminals must not hold its key.
pub fn redacted_url(url: &str) -> std::borrow::Cow<'_, str> {
    let mut shown = std::borrow::Cow::Borrowed(url);
    if let Some(password) = userinfo_password(url) {
        shown = format!("{}***{}", &url[..password.start], &url[password.end..]).into();
    }
    if let Some(at) = shown.find("password=") {
        let value = at + "password=".len();
        let end = shown[value..].find('&').map_or(shown.len(), |i| value + i);
        shown = format!("{}***{}", &shown[..value], &shown[end..]).into();
    }
    shown
}

/// Where the password of `scheme://user:PASSWORD@host...` is.
fn userinfo_password(url: &str) -> Option<std::ops::Range<usize>> {
    let scheme_end = url.find("://")? + 3;
    let authority_end = url[scheme_end..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| scheme_end + i);
    let authority = &url[scheme_end..authority_end];
    let at = authority.rfind('@')?;
    let colon = authority[..at].find(':')?;
    Some(scheme_end + colon + 1..scheme_end + at)
}

fn prepare_url(url: &str) -> Result<Target, LedgerError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let url = url.to_string();
        return Ok(Target {
            backend: Backend::Postgres,
            url,
            in_memory: false,
            sqlite_file: None,
        });
    }
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return Err(LedgerError::Invalid(format!(
            "database_url `{}`: expected sqlite://PATH or postgres://...",
            redacted_url(url)
        )));
    };
    let (path, params) = match rest.split_once('?') {
        Some((path, params)) => (path, Some(params)),
        None => (rest, None),
    };
    let in_memory =
        path.is_empty() || path == ":memory:" || params.is_some_and(|p| p.contains("mode=memory"));
    if !in_memory {
        if let Some(parent) = Path::new(path)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent)?;
        }
    }
    if path.is_empty() || path == ":memory:" {
        // sqlx gives each connection its own `:memory:` database when it parses the URL
        // anew, as the Any driver does per connection; a name shares one between them.
        static MEMORY_DBS: AtomicUsize = AtomicUsize::new(0);
        let n = MEMORY_DBS.fetch_add(1, Ordering::Relaxed);
        let file = format!(
            "file:switchyard-memory-{}-{n}?mode=memory&cache=shared",
            std::process::id()
        );
        return Ok(Target {
            backend: Backend::Sqlite,
            url: format!("sqlite:{file}"),
            in_memory: true,
            sqlite_file: Some(file),
        });
    }
    let (url, params) = match params {
        Some(p) if p.contains("mode=") => (url.to_string(), p.to_string()),
        Some(p) => (format!("{url}&mode=rwc"), format!("{p}&mode=rwc")),
        None => (format!("{url}?mode=rwc"), "mode=rwc".to_string()),
    };
    Ok(Target {
        backend: Backend::Sqlite,
        url,
        in_memory,
        sqlite_file: Some(sqlite_uri(path, &params, in_memory)),
    })
}

/// `path?params` of a sqlx SQLite URL as a SQLite `file:` URI naming the same database:
/// sqlx's parameters (`mode`, `cache`, `immutable`, `vfs`) are SQLite's URI parameters, and
/// both decode `%HH` in the path. `#` would end a URI's path, so it is escaped. sqlx opens
/// an in-memory database with a shared cache unless told otherwise, and so must the writer,
/// or it would see a database of its own.
fn sqlite_uri(path: &str, params: &str, in_memory: bool) -> String {
    let path = path.replace('#', "%23");
    let cache = if in_memory && !params.contains("cache=") {
        "&cache=shared"
    } else {
        ""
    };
    let scheme = if path.starts_with("file:") {
        ""
    } else if path.starts_with('/') {
        "file://"
    } else {
        "file:"
    };
    format!("{scheme}{path}?{params}{cache}")
}

/// The schema for `backend`, embedded in the binary. Version 1 is `0001_ledger.sql`, the
/// same version and checksum `sqlx migrate run --source migrations/<backend>` would use.
fn migrator(backend: Backend) -> Migrator {
    let sql = match backend {
        Backend::Sqlite => include_str!("../../migrations/sqlite/0001_ledger.sql"),
        Backend::Postgres => include_str!("../../migrations/postgres/0001_ledger.sql"),
    };
    Migrator::with_migrations(vec![Migration::new(
        1,
        "ledger".into(),
        MigrationType::Simple,
        sql.into_sql_str(),
        false,
    )])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_their_password() {
        let cases = [
            (
                "postgres://sy:hunter2@db:5432/ledger",
                "postgres://sy:***@db:5432/ledger",
            ),
            (
                "postgresql://sy:p%40ss@db/l?sslmode=require",
                "postgresql://sy:***@db/l?sslmode=require",
            ),
            ("postgres://sy@db/l", "postgres://sy@db/l"),
            (
                "postgres://db/l?password=x@y&sslmode=require",
                "postgres://db/l?password=***&sslmode=require",
            ),
            ("sqlite://data/switchyard.db", "sqlite://data/switchyard.db"),
            ("not a url", "not a url"),
        ];
        for (url, shown) in cases {
            assert_eq!(redacted_url(url), shown, "{url}");
        }
    }

    #[test]
    fn sqlite_urls_ask_for_creation() {
        let dir = std::env::temp_dir().join(format!("sy-ledger-url-{}", std::process::id()));
        let url = format!("sqlite://{}/a/b.db", dir.display());
        let target = prepare_url(&url).unwrap();
        let expected = Target {
            backend: Backend::Sqlite,
            url: format!("{url}?mode=rwc"),
            in_memory: false,
            sqlite_file: Some(format!("file://{}/a/b.db?mode=rwc", dir.display())),
        };
        assert_eq!(target, expected);
        assert!(dir.join("a").is_dir());
        let _ = std::fs::remove_dir_all(&dir);

        let memory = prepare_url("sqlite::memory:").unwrap();
        assert!(memory.in_memory && memory.url.starts_with("sqlite:file:switchyard-memory-"));
        assert_eq!(
            memory.sqlite_file.as_deref(),
            memory.url.strip_prefix("sqlite:")
        );
        assert_ne!(
            prepare_url("sqlite::memory:").unwrap().url,
            memory.url,
            "each its own"
        );
        assert_eq!(
            prepare_url("sqlite:x.db?mode=ro").unwrap().url,
            "sqlite:x.db?mode=ro"
        );
        assert_eq!(
            prepare_url("sqlite:x.db?cache=shared").unwrap().url,
            "sqlite:x.db?cache=shared&mode=rwc"
        );
        let writer_file = |url: &str| prepare_url(url).unwrap().sqlite_file.unwrap();
        assert_eq!(writer_file("sqlite:x.db?mode=ro"), "file:x.db?mode=ro");
        assert_eq!(
            writer_file("sqlite:a%20b#1.db"),
            "file:a%20b%231.db?mode=rwc"
        );
        assert_eq!(
            writer_file("sqlite:mem?mode=memory"),
            "file:mem?mode=memory&cache=shared"
        );
        assert_eq!(
            writer_file("sqlite:file:m?mode=memory&cache=shared"),
            "file:m?mode=memory&cache=shared"
        );
        assert_eq!(
            prepare_url("postgres://h/db").unwrap().backend,
            Backend::Postgres
        );
        assert_eq!(prepare_url("postgres://h/db").unwrap().sqlite_file, None);
        assert!(matches!(
            prepare_url("mysql://h/db"),
            Err(LedgerError::Invalid(_))
        ));
    }
}
