//! Generation records and the spend they add to: what a batch write must do, whichever
//! writer does it (`sqlite_batch.rs` for SQLite, `postgres_batch.rs` for Postgres), and
//! the reads.
//!
//! Invariants both writers keep:
//! - A record's cost is added to `spend` (for each kind of period) in the same transaction
//!   that inserts the record, and only if the insert created the row. A batch retried after
//!   a commit whose acknowledgement was lost therefore neither duplicates a record nor
//!   charges it twice, and a record listed twice in one batch is charged once.
//! - Spend saturates at i64::MAX pico-USD instead of overflowing (`SpendDelta`,
//!   `add_spend_sql`): an overflow would fail the batch on every retry and lose its records.
//! - A row holds the same values whichever writer wrote it: text with NUL replaced
//!   (`rows::text`), `attempts` as serde_json, the cost as decimal text, flags as 0/1.

use std::collections::BTreeMap;
use std::sync::Arc;

use sqlx::any::AnyRow;

use super::db::Db;
use super::error::LedgerError;
use super::period::{period_start, MS_PER_DAY};
use super::postgres_batch;
use super::record::{Attempt, GenerationRecord, SharedRecord};
use super::rows::{col, flag, parse_key_hash, unsigned};
use crate::auth::{KeyHash, LimitReset};
use crate::metering::{Cost, Usage};

/// The columns a batch writer fills, in the order it binds them.
pub(crate) const GENERATION_COLUMNS: &str = "id, key_hash, key_name, model, provider, \
     upstream_model, attempts, tokens_prompt, tokens_completion, tokens_cached_prompt, \
     tokens_reasoning, cost_pico, latency_ms, ttft_ms, finish_reason, status, streamed, \
     cancelled, estimated, error, created_at";
pub(crate) const COLUMNS: usize = 21;

/// Rows per multi-row INSERT. One statement per chunk rather than per record saves most of
/// the per-statement work (round trips to Postgres; cursors and VM setup in SQLite); fixed
/// sizes keep the prepared-statement caches at six entries per connection.
pub(crate) const ROW_CHUNKS: [usize; 6] = [32, 16, 8, 4, 2, 1];

/// The batch cut into runs of `ROW_CHUNKS` sizes, largest first.
pub(crate) fn row_chunks<T>(mut batch: &[T]) -> impl Iterator<Item = &[T]> {
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

const SELECT_SPEND: &str =
    "SELECT spent_pico FROM spend WHERE key_hash = $1 AND period = $2 AND period_start = $3";

/// Adds to periods' spend, one row per `values` tuple (key_hash, period, period_start,
/// pico-USD), saturating at i64::MAX pico-USD (~9.2M USD) instead of overflowing.
pub(crate) fn add_spend_sql(values: &str) -> String {
    format!(
        "INSERT INTO spend (key_hash, period, period_start, spent_pico) VALUES {values} \
         ON CONFLICT (key_hash, period, period_start) DO UPDATE SET spent_pico = CASE \
         WHEN spend.spent_pico > 9223372036854775807 - excluded.spent_pico \
         THEN 9223372036854775807 ELSE spend.spent_pico + excluded.spent_pico END"
    )
}

/// Every kind of budget period; each record's cost counts in one period of each.
const PERIOD_KINDS: [LimitReset; 4] = [
    LimitReset::Daily,
    LimitReset::Weekly,
    LimitReset::Monthly,
    LimitReset::Never,
];

/// What a batch adds to `spend`, summed so that each spend row is written once per batch
/// rather than once per record.
#[derive(Default)]
pub(crate) struct SpendDelta {
    /// Pico-USD per (key, UTC day of `created_at`): every kind of period starts at a
    /// midnight, so the day decides all four periods, and a batch's records share few days.
    by_day: BTreeMap<(KeyHash, i64), i64>,
}

impl SpendDelta {
    /// Counts `rec`'s cost. Call it only for a record the batch created, once.
    pub fn charge(&mut self, rec: &GenerationRecord) {
        if rec.cost.0 == 0 {
            return;
        }
        let pico = i64::try_from(rec.cost.0).unwrap_or(i64::MAX);
        // The day the request started: stable however late a retry commits.
        let day = rec.created_at.div_euclid(MS_PER_DAY);
        let total = self.by_day.entry((rec.key_hash, day)).or_default();
        *total = total.saturating_add(pico);
    }

    /// (key hash, kind of period, period start, pico-USD to add), sorted, so that instances
    /// sharing a Postgres database take the row locks in the same order. Sums saturate:
    /// for amounts that are never negative, the order of saturating additions is moot.
    pub fn rows(&self) -> impl Iterator<Item = (KeyHash, &'static str, i64, i64)> {
        let mut rows: BTreeMap<(KeyHash, &'static str, i64), i64> = BTreeMap::new();
        for (&(key, day), &pico) in &self.by_day {
            for reset in PERIOD_KINDS {
                let start = period_start(reset, day * MS_PER_DAY);
                let total = rows.entry((key, reset.as_str(), start)).or_default();
                *total = total.saturating_add(pico);
            }
        }
        rows.into_iter()
            .map(|((key, period, start), pico)| (key, period, start, pico))
    }
}

/// Inserts `batch` and adds its costs to `spend`, all in one transaction.
pub(crate) async fn insert_batch(
    db: &Db,
    batch: &Arc<Vec<SharedRecord>>,
) -> Result<(), LedgerError> {
    match &db.sqlite {
        Some(sqlite) => sqlite.write(batch.clone()).await,
        None => postgres_batch::insert_batch(db, batch).await,
    }
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
            // Not a column: the record's cost holds what the writes cost.
            cache_write: 0,
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
    }

    #[test]
    fn spend_is_summed_per_key_and_period_and_saturates() {
        let rec = |key: u8, cost: u128| GenerationRecord {
            key_hash: [key; 32],
            cost: Cost(cost),
            // Wednesday 2024-03-06 12:00 UTC.
            created_at: 1_709_726_400_000,
            ..crate::ledger::record::tests::sample()
        };
        let mut delta = SpendDelta::default();
        delta.charge(&rec(1, 5));
        delta.charge(&rec(1, 7));
        delta.charge(&rec(2, 0));
        delta.charge(&rec(3, u128::MAX));
        delta.charge(&rec(3, 1));
        // The day before, same week and month: its own daily row, added to the others.
        delta.charge(&GenerationRecord {
            created_at: 1_709_726_400_000 - MS_PER_DAY,
            ..rec(1, 100)
        });
        let rows: Vec<_> = delta.rows().collect();
        // Four kinds of period for each key that spent; nothing for a free record.
        assert_eq!(rows.len(), 9);
        let key1: Vec<_> = rows[..5].iter().map(|r| (r.0[0], r.1, r.3)).collect();
        assert_eq!(
            key1,
            [
                (1, "daily", 100),
                (1, "daily", 12),
                (1, "monthly", 112),
                (1, "never", 112),
                (1, "weekly", 112)
            ]
        );
        assert!(rows[5..].iter().all(|r| r.0 == [3; 32] && r.3 == i64::MAX));
    }
}
