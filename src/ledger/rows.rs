//! Binding and decoding helpers shared by the generation and key queries: the conventions
//! both schemas follow (see the migrations) written down once.

use std::borrow::Cow;

use sqlx::any::AnyRow;
use sqlx::Row;

use super::error::LedgerError;
use crate::auth::KeyHash;

/// A column, with the column's name in the error.
pub(crate) fn col<T>(row: &AnyRow, name: &str) -> Result<T, LedgerError>
where
    T: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(name)
        .map_err(|e| LedgerError::Corrupt(format!("column {name}: {e}")))
}

pub(crate) fn unsigned(row: &AnyRow, name: &str) -> Result<u64, LedgerError> {
    u64::try_from(col::<i64>(row, name)?)
        .map_err(|_| LedgerError::Corrupt(format!("column {name} is negative")))
}

/// Flags are integers 0/1 in both schemas (see the migrations).
pub(crate) fn flag(row: &AnyRow, name: &str) -> Result<bool, LedgerError> {
    Ok(col::<i64>(row, name)? != 0)
}

/// A key hash from its hex form (as in `/v1/keys/{hash}`).
pub fn parse_key_hash(hex_str: &str) -> Option<KeyHash> {
    hex::decode(hex_str).ok()?.try_into().ok()
}

/// Postgres refuses NUL in text, and an upstream's error message may hold one: replaced, so
/// no record can make its batch fail (and in SQLite too, so both hold the same). Borrowed in
/// the usual case, which has none.
pub(crate) fn text(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// Counts are u64 in memory and BIGINT in the database; nothing real comes near i64::MAX.
pub(crate) fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
