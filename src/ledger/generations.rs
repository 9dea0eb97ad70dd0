//! SQL for generation records and the spend they add to.
//!
//! Invariant: a record's cost is added to `spend` (for each kind of period) in the same
//! transaction that inserts the record, and only if the insert created the row. A batch retried after a commit whose
//! acknowledgement was lost therefore neither duplicates a record nor charges it twice.

use std::collections::BTreeMap;

use sqlx::any::AnyRow;

use super::db::Db;
use super::error::LedgerError;
use super::period::period_start;
use super::record::{Attempt, GenerationRecord};
use super::rows::{col, flag, int, parse_key_hash, text, unsigned};
use crate::auth::{KeyHash, LimitReset};
use crate::metering::{Cost, Usage};

const INSERT_GENERATION: &str = "INSERT INTO generations (id, key_hash, key_name, model, \
     provider, upstream_model, attempts, tokens_prompt, tokens_completion, tokens_cached_prompt, \
     tokens_reasoning, cost_pico, latency_ms, ttft_ms, finish_reason, status, streamed, cancelled, \
     estimated, error, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
     $14, $15, $16, $17, $18, $19, $20, $21) ON CONFLICT (id) DO NOTHING";

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
    for rec in batch {
        // Plain strings and numbers always serialise; the fallback only keeps this infallible.
        let attempts = serde_json::to_string(&rec.attempts).unwrap_or_else(|_| "[]".into());
        let u = &rec.usage;
        let inserted = sqlx::query(INSERT_GENERATION)
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
            .bind(rec.created_at)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        if inserted && rec.cost.0 > 0 {
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
