//! SQL for generation records and the spend they add to.
//!
//! Invariant: a record's cost is added to `spend` (for each kind of period) in the same
//! transaction that inserts the record, and only if the insert created the row. A batch retried after a commit whose
//! acknowledgement was lost therefore neither duplicates a record nor charges it twice.

use std::collections::{BTreeMap, HashSet};

use once_cell::sync::Lazy;

use sqlx::any::AnyRow;

use super::db::{Backend, Db};
use super::error::LedgerError;
use super::period::period_start;
use super::record::{Attempt, GenerationRecord};
use super::rows::{col, flag, int, parse_key_hash, text, unsigned};
use crate::auth::{KeyHash, LimitReset};
use crate::metering::{Cost, Usage};

const GENERATION_COLUMNS: &str = "id, key_hash, key_name, model, provider, upstream_model, \
     attempts, tokens_prompt, tokens_completion, tokens_cached_prompt, tokens_reasoning, \
     cost_pico, latency_ms, ttft_ms, finish_reason, status, streamed, cancelled, estimated, \
     error, created_at";
const COLUMNS: usize = 21;

/// Rows per INSERT statement. One statement per chunk rather than per record is most of the
/// writer's cost saved (issue 12: each statement is a round trip to sqlx's SQLite worker
/// thread); fixed sizes keep the prepared-statement cache at six entries per connection.
const ROW_CHUNKS: [usize; 6] = [32, 16, 8, 4, 2, 1];

/// `INSERT .. VALUES (..), (..) ON CONFLICT (id) DO NOTHING RETURNING id` for `rows` rows:
/// the ids it returns are the rows it created, whose cost is then added to `spend`. SQLite
/// gets positional `?` parameters (sqlx looks each named one up by a linear scan, which is
/// quadratic in a statement this long); Postgres needs `$N`.
fn insert_sql(backend: Backend, rows: usize) -> String {
    use std::fmt::Write;
    let mut sql = format!("INSERT INTO generations ({GENERATION_COLUMNS}) VALUES ");
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..COLUMNS {
            let sep = if column == 0 { "" } else { ", " };
            let _ = match backend {
                Backend::Sqlite => write!(sql, "{sep}?"),
                Backend::Postgres => write!(sql, "{sep}${}", row * COLUMNS + column + 1),
            };
        }
        sql.push(')');
    }
    sql.push_str(" ON CONFLICT (id) DO NOTHING RETURNING id");
    sql
}

/// The statement for `rows` (one of `ROW_CHUNKS`), built once per backend.
fn insert_statement(backend: Backend, rows: usize) -> &'static str {
    static STATEMENTS: Lazy<Vec<(Backend, usize, String)>> = Lazy::new(|| {
        [Backend::Sqlite, Backend::Postgres]
            .into_iter()
            .flat_map(|b| ROW_CHUNKS.map(|n| (b, n, insert_sql(b, n))))
            .collect()
    });
    STATEMENTS
        .iter()
        .find(|(b, n, _)| *b == backend && *n == rows)
        .map_or("", |(_, _, sql)| sql.as_str())
}

/// The batch cut into runs of `ROW_CHUNKS` sizes, largest first.
fn row_chunks<T>(mut batch: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        let n = ROW_CHUNKS.into_iter().find(|n| *n <= batch.len())?;
        let (chunk, rest) = batch.split_at(n);
        batch = rest;
        Some(chunk)
    })
}

const SELECT_GENERATION: &str = "SELECT id, key_hash, key_name, model, provider, \
     upstream_model, attempts, tokens_prompt, tokens_completion, tokens_cached_prompt, \
     tokens_reasoning, cost_pico, latency_ms, ttft_ms, finish_reason, status, streamed, cancelled, \
     estimated, error, created_at FROM generations WHERE id = $1";

/// Adds to a period's spend, saturating at i64::MAX pico-USD (~9.2M USD) instead of
/// overflowing: an overflow would fail the batch on every retry and lose its records.
const ADD_SPEND: &str =
    "INSERT INTO spend (key_hash, period, period_start, spent_pico) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (key_hash, period, period_start) DO UPDATE SET spent_pico = CASE \
     WHEN spend.spent_pico > 9223372036854775807 - excluded.spent_pico THEN 9223372036854775807 \
     ELSE spend.spent_pico + excluded.spent_pico END";

/// Every kind of budget period; each record's cost counts in one period of each.
const PERIOD_KINDS: [LimitReset; 4] = [
    LimitReset::Daily,
    LimitReset::Weekly,
    LimitReset::Monthly,
    LimitReset::Never,
];

const SELECT_SPEND: &str =
    "SELECT spent_pico FROM spend WHERE key_hash = $1 AND period = $2 AND period_start = $3";

/// Inserts `batch` and adds its costs to `spend`, all in one transaction.
pub(crate) async fn insert_batch(db: &Db, batch: &[GenerationRecord]) -> Result<(), LedgerError> {
    let mut tx = db.pool.begin().await?;
    // One spend update per (key, period) rather than per record, in sorted order so that
    // instances sharing a Postgres database take the row locks in the same order.
    let mut spend: BTreeMap<(KeyHash, &str, i64), i64> = BTreeMap::new();
    for chunk in row_chunks(batch) {
        let mut query = sqlx::query_scalar::<_, String>(insert_statement(db.backend, chunk.len()));
        for rec in chunk {
            // Plain strings and numbers always serialise; the fallback keeps this infallible.
            let attempts = serde_json::to_string(&rec.attempts).unwrap_or_else(|_| "[]".into());
            let u = &rec.usage;
            query = query
                .bind(text(&rec.id))
                .bind(hex::encode(rec.key_hash))
                .bind(text(&rec.key_name))
                .bind(text(&rec.model))
                .bind(text(&rec.provider))
                .bind(text(&rec.upstream_model))
                .bind(attempts)
                .bind(int(u.prompt))
                .bind(int(u.completion))
                .bind(int(u.cached_prompt))
                .bind(int(u.reasoning))
                .bind(rec.cost.0.to_string())
                .bind(int(rec.latency_ms))
                .bind(rec.ttft_ms.map(int))
                .bind(rec.finish_reason.as_deref().map(text))
                .bind(i64::from(rec.status))
                .bind(i64::from(rec.streamed))
                .bind(i64::from(rec.cancelled))
                .bind(i64::from(u.estimated))
                .bind(rec.error.as_deref().map(text))
                .bind(rec.created_at);
        }
        let mut created: HashSet<String> = query.fetch_all(&mut *tx).await?.into_iter().collect();
        for rec in chunk {
            // `remove`: a record listed twice in one batch is charged once.
            if !created.remove(&text(&rec.id)) || rec.cost.0 == 0 {
                continue;
            }
            let pico = i64::try_from(rec.cost.0).unwrap_or(i64::MAX);
            for reset in PERIOD_KINDS {
                // The period the request started in: stable however late a retry commits.
                let start = period_start(reset, rec.created_at);
                let total = spend
                    .entry((rec.key_hash, reset.as_str(), start))
                    .or_default();
                *total = total.saturating_add(pico);
            }
        }
    }
    for ((key_hash, period, start), pico) in spend {
        sqlx::query(ADD_SPEND)
            .bind(hex::encode(key_hash))
            .bind(period)
            .bind(start)
            .bind(pico)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn get_generation(
    db: &Db,
    id: &str,
) -> Result<Option<GenerationRecord>, LedgerError> {
    let row = sqlx::query(SELECT_GENERATION)
        .bind(id)
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(decode_generation).transpose()
}

/// Pico-USD spent by `key_hash` in the `reset` period starting at `period_start`.
pub(crate) async fn spend_in(
    db: &Db,
    key_hash: &KeyHash,
    reset: LimitReset,
    period_start: i64,
) -> Result<u128, LedgerError> {
    let spent: Option<i64> = sqlx::query_scalar(SELECT_SPEND)
        .bind(hex::encode(key_hash))
        .bind(reset.as_str())
        .bind(period_start)
        .fetch_optional(&db.pool)
        .await?;
    Ok(spent.map_or(0, |s| u128::try_from(s).unwrap_or(0)))
}

fn decode_generation(row: &AnyRow) -> Result<GenerationRecord, LedgerError> {
    let id: String = col(row, "id")?;
    let corrupt = |what: &str| LedgerError::Corrupt(format!("generation {id}: {what}"));
    let attempts: Vec<Attempt> = serde_json::from_str(&col::<String>(row, "attempts")?)
        .map_err(|e| corrupt(&format!("attempts: {e}")))?;
    let cost: String = col(row, "cost_pico")?;
    Ok(GenerationRecord {
        key_hash: parse_key_hash(&col::<String>(row, "key_hash")?)
            .ok_or_else(|| corrupt("key_hash"))?,
        key_name: col(row, "key_name")?,
        model: col(row, "model")?,
        provider: col(row, "provider")?,
        upstream_model: col(row, "upstream_model")?,
        attempts,
        usage: Usage {
            prompt: unsigned(row, "tokens_prompt")?,
            completion: unsigned(row, "tokens_completion")?,
            cached_prompt: unsigned(row, "tokens_cached_prompt")?,
            reasoning: unsigned(row, "tokens_reasoning")?,
            estimated: flag(row, "estimated")?,
        },
        cost: Cost(cost.parse().map_err(|_| corrupt("cost_pico"))?),
        latency_ms: unsigned(row, "latency_ms")?,
        ttft_ms: col::<Option<i64>>(row, "ttft_ms")?.map(|t| u64::try_from(t).unwrap_or(0)),
        finish_reason: col(row, "finish_reason")?,
        status: u16::try_from(col::<i64>(row, "status")?).map_err(|_| corrupt("status"))?,
        streamed: flag(row, "streamed")?,
        cancelled: flag(row, "cancelled")?,
        error: col(row, "error")?,
        created_at: col(row, "created_at")?,
        id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_cut_into_the_cached_statement_sizes() {
        let sizes = |n: usize| {
            let batch = vec![0u8; n];
            row_chunks(&batch).map(<[u8]>::len).collect::<Vec<_>>()
        };
        assert_eq!(sizes(45), [32, 8, 4, 1]);
        assert_eq!(sizes(64), [32, 32]);
        assert!(sizes(0).is_empty());
        for n in ROW_CHUNKS {
            let sqlite = insert_statement(Backend::Sqlite, n);
            assert_eq!(sqlite.matches('?').count(), n * COLUMNS, "{sqlite}");
            let postgres = insert_statement(Backend::Postgres, n);
            assert_eq!(postgres.matches('$').count(), n * COLUMNS, "{postgres}");
            assert!(
                postgres.contains(&format!("${})", n * COLUMNS)),
                "{postgres}"
            );
        }
        assert!(insert_statement(Backend::Postgres, 2).contains("$42)"));
        assert!(!insert_statement(Backend::Sqlite, 2).contains('$'));
    }
}
