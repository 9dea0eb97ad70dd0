//! Writing a batch of generation records to Postgres through the sqlx pool: multi-row
//! `INSERT .. ON CONFLICT (id) DO NOTHING RETURNING id`, whose returned ids are the rows it
//! created, then one spend update per (key, period). The invariants are in `generations.rs`.

use std::collections::HashSet;

use once_cell::sync::Lazy;

use super::db::Db;
use super::error::LedgerError;
use super::generations::{
    add_spend_sql, row_chunks, SpendDelta, COLUMNS, GENERATION_COLUMNS, ROW_CHUNKS,
};
use super::record::SharedRecord;
use super::rows::{int, text};

/// `INSERT .. VALUES ($1, ..), (..) ON CONFLICT (id) DO NOTHING RETURNING id` for `rows` rows.
fn insert_sql(rows: usize) -> String {
    use std::fmt::Write;
    let mut sql = format!("INSERT INTO generations ({GENERATION_COLUMNS}) VALUES ");
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..COLUMNS {
            let sep = if column == 0 { "" } else { ", " };
            let _ = write!(sql, "{sep}${}", row * COLUMNS + column + 1);
        }
        sql.push(')');
    }
    sql.push_str(" ON CONFLICT (id) DO NOTHING RETURNING id");
    sql
}

/// The statement for `rows` (one of `ROW_CHUNKS`), built once.
fn insert_statement(rows: usize) -> &'static str {
    static STATEMENTS: Lazy<Vec<(usize, String)>> =
        Lazy::new(|| ROW_CHUNKS.map(|n| (n, insert_sql(n))).into());
    STATEMENTS
        .iter()
        .find(|(n, _)| *n == rows)
        .map_or("", |(_, sql)| sql.as_str())
}

/// Inserts `batch` and adds its costs to `spend`, all in one transaction.
pub(crate) async fn insert_batch(db: &Db, batch: &[SharedRecord]) -> Result<(), LedgerError> {
    let mut tx = db.pool.begin().await?;
    let mut spend = SpendDelta::default();
    for chunk in row_chunks(batch) {
        let mut query = sqlx::query_scalar::<_, String>(insert_statement(chunk.len()));
        for rec in chunk {
            // Plain strings and numbers always serialise; the fallback keeps this infallible.
            let attempts = serde_json::to_string(&rec.attempts).unwrap_or_else(|_| "[]".into());
            let u = &rec.usage;
            query = query
                .bind(text(&rec.id).into_owned())
                .bind(hex::encode(rec.key_hash))
                .bind(text(&rec.key_name).into_owned())
                .bind(text(&rec.model).into_owned())
                .bind(text(&rec.provider).into_owned())
                .bind(text(&rec.upstream_model).into_owned())
                .bind(attempts)
                .bind(int(u.prompt))
                .bind(int(u.completion))
                .bind(int(u.cached_prompt))
                .bind(int(u.reasoning))
                .bind(rec.cost.0.to_string())
                .bind(int(rec.latency_ms))
                .bind(rec.ttft_ms.map(int))
                .bind(rec.finish_reason.as_deref().map(|s| text(s).into_owned()))
                .bind(i64::from(rec.status))
                .bind(i64::from(rec.streamed))
                .bind(i64::from(rec.cancelled))
                .bind(i64::from(u.estimated))
                .bind(rec.error.as_deref().map(|s| text(s).into_owned()))
                .bind(rec.created_at);
        }
        let mut created: HashSet<String> = query.fetch_all(&mut *tx).await?.into_iter().collect();
        for rec in chunk {
            // `remove`: a record listed twice in one batch is charged once.
            if created.remove(text(&rec.id).as_ref()) {
                spend.charge(rec);
            }
        }
    }
    static ADD_SPEND: Lazy<String> = Lazy::new(|| add_spend_sql("($1, $2, $3, $4)"));
    for (key_hash, period, start, pico) in spend.rows() {
        sqlx::query(ADD_SPEND.as_str())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_is_a_statement_for_each_chunk_size() {
        for n in ROW_CHUNKS {
            let sql = insert_statement(n);
            assert_eq!(sql.matches('$').count(), n * COLUMNS, "{sql}");
            assert!(sql.contains(&format!("${})", n * COLUMNS)), "{sql}");
        }
        assert!(insert_statement(2).contains("$42)"));
    }
}
