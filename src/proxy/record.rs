//! The generation record of a finished request, for the ledger and `/v1/generation`.

use std::borrow::Borrow;
use std::collections::VecDeque;
use std::hash::{Hash, Hasher};

use rustc_hash::FxHashSet as HashSet;
use std::sync::{Arc, Mutex};

use super::ctx::{AttemptOutcome, RequestCtx};
use crate::ledger::{Attempt, GenerationRecord, SharedRecord};

/// Makes the request's record visible to `/v1/generation`, with the status the client gets
/// (`Gateway::answer_complete`: before the answer's last bytes are written, so a client that
/// has read the whole answer finds its record); `logging` then hands it to the ledger.
pub fn publish(recent: &RecentGenerations, ctx: &mut RequestCtx, status: u16) {
    if let Some(record) = generation_record(ctx, status) {
        let record = Arc::new(record);
        recent.insert(record.clone());
        ctx.published = Some(record);
    }
}

/// The record of `ctx`, if the request belongs in the ledger (a chat request by a known key).
fn generation_record(ctx: &RequestCtx, status: u16) -> Option<GenerationRecord> {
    let key = ctx.key.as_ref()?;
    if ctx.chat.is_none() && ctx.embeddings.is_none() {
        return None;
    }
    let attempts = ctx
        .attempts
        .iter()
        .map(|a| Attempt {
            provider: a.provider.clone(),
            model: a.model.clone(),
            outcome: crate::access_log::outcome_label(&a.outcome).to_string(),
            status: match a.outcome {
                AttemptOutcome::Status(s) => Some(s),
                AttemptOutcome::Succeeded => Some(status),
                _ => None,
            },
            latency_ms: a.latency_ms.unwrap_or(0),
        })
        .collect();
    let usage = ctx.usage.unwrap_or_default();
    let (model, provider, upstream_model) = match &ctx.current {
        Some(c) => (
            c.model.id.clone(),
            c.provider().id.clone(),
            c.endpoint().upstream_model.clone(),
        ),
        None => (
            ctx.requested_model().to_string(),
            String::new(),
            String::new(),
        ),
    };
    let cancelled = ctx
        .attempts
        .last()
        .is_some_and(|a| a.outcome == AttemptOutcome::Cancelled);
    Some(GenerationRecord {
        id: ctx.generation_id.clone(),
        key_hash: key.hash,
        key_name: key.name.clone(),
        model,
        provider,
        upstream_model,
        attempts,
        usage,
        cost: ctx.usage.map(|u| ctx.cost_of(&u)).unwrap_or_default(),
        latency_ms: ctx.started.elapsed().as_millis() as u64,
        ttft_ms: ctx
            .first_byte_at
            .map(|t| t.duration_since(ctx.started).as_millis() as u64),
        finish_reason: ctx
            .finish_reason
            .clone()
            .or_else(|| ctx.error.as_ref().map(|_| "error".to_string())),
        status,
        streamed: ctx.is_stream(),
        cancelled,
        error: ctx.error.as_ref().map(|e| e.message.clone()),
        created_at: (ctx.created_unix_ms) as i64,
    })
}

/// The most recent records, so `/v1/generation` answers at once for a request that just
/// finished (the ledger writes in batches, up to 50 ms later). Bounded.
pub struct RecentGenerations {
    inner: Mutex<Recent>,
}

/// Records by id (the set's keys borrow the records' own ids: no copy per request), and
/// records oldest first (for eviction).
type Recent = (HashSet<ById>, VecDeque<SharedRecord>);

/// A record hashed and compared by its id.
struct ById(SharedRecord);

impl PartialEq for ById {
    fn eq(&self, other: &ById) -> bool {
        self.0.id == other.0.id
    }
}

impl Eq for ById {}

impl Hash for ById {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // As `str` hashes, so that lookups by `&str` (`Borrow`) find it.
        self.0.id.as_str().hash(state);
    }
}

impl Borrow<str> for ById {
    fn borrow(&self) -> &str {
        &self.0.id
    }
}

const RECENT: usize = 4096;

impl Default for RecentGenerations {
    fn default() -> Self {
        RecentGenerations {
            inner: Mutex::new((HashSet::default(), VecDeque::new())),
        }
    }
}

impl RecentGenerations {
    pub fn insert(&self, record: SharedRecord) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let (by_id, order) = &mut *inner;
        if order.len() == RECENT {
            if let Some(old) = order.pop_front() {
                by_id.remove(old.id.as_str());
            }
        }
        by_id.replace(ById(record.clone()));
        order.push_back(record);
    }

    pub fn get(&self, id: &str) -> Option<Arc<GenerationRecord>> {
        self.inner.lock().ok()?.0.get(id).map(|r| r.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> SharedRecord {
        Arc::new(GenerationRecord {
            id: id.to_string(),
            ..crate::ledger::sample_record()
        })
    }

    #[test]
    fn the_recent_map_finds_the_last_records_and_forgets_the_oldest() {
        let recent = RecentGenerations::default();
        for i in 0..=RECENT {
            recent.insert(record(&format!("gen-{i}")));
        }
        assert!(recent.get("gen-0").is_none(), "the oldest is evicted");
        for i in [1, RECENT / 2, RECENT] {
            let id = format!("gen-{i}");
            assert_eq!(recent.get(&id).map(|r| r.id.clone()), Some(id));
        }
        assert!(recent.get("gen-nope").is_none());
        let inner = recent.inner.lock().unwrap();
        assert_eq!((inner.0.len(), inner.1.len()), (RECENT, RECENT));
    }
}
