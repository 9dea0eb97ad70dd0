//! The ledger's one error type.

use std::fmt;

#[derive(Debug)]
pub enum LedgerError {
    /// The database refused or could not be reached.
    Database(sqlx::Error),
    /// SQLite refused a batch on the writer's own connection (`sqlite_batch.rs`).
    Sqlite(rusqlite::Error),
    /// The schema could not be brought up to date.
    Migrate(sqlx::migrate::MigrateError),
    /// Creating the database file or its folder failed.
    Io(std::io::Error),
    /// The caller asked for something the ledger does not accept (bad URL, bad key fields).
    Invalid(String),
    /// A stored row does not decode (hand-edited or written by a newer version).
    Corrupt(String),
    /// One attempt took longer than the writer allows (or, on SQLite, one that did is
    /// still running).
    TimedOut,
    /// The ledger's runtime has stopped; nothing more can run on it.
    Stopped,
}

impl fmt::Display for LedgerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LedgerError::Database(e) => write!(f, "ledger database error: {e}"),
            LedgerError::Sqlite(e) => write!(f, "ledger database error: {e}"),
            LedgerError::Migrate(e) => write!(f, "ledger migration failed: {e}"),
            LedgerError::Io(e) => write!(f, "ledger storage: {e}"),
            LedgerError::Invalid(why) => write!(f, "invalid: {why}"),
            LedgerError::Corrupt(why) => write!(f, "corrupt ledger row: {why}"),
            LedgerError::TimedOut => write!(f, "ledger write timed out"),
            LedgerError::Stopped => write!(f, "the ledger has stopped"),
        }
    }
}

impl std::error::Error for LedgerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LedgerError::Database(e) => Some(e),
            LedgerError::Sqlite(e) => Some(e),
            LedgerError::Migrate(e) => Some(e),
            LedgerError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<sqlx::Error> for LedgerError {
    fn from(e: sqlx::Error) -> Self {
        LedgerError::Database(e)
    }
}

impl From<rusqlite::Error> for LedgerError {
    fn from(e: rusqlite::Error) -> Self {
        LedgerError::Sqlite(e)
    }
}

impl From<sqlx::migrate::MigrateError> for LedgerError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        LedgerError::Migrate(e)
    }
}

impl From<std::io::Error> for LedgerError {
    fn from(e: std::io::Error) -> Self {
        LedgerError::Io(e)
    }
}
