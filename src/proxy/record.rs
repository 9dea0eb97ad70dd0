//! The generation record of a finished request, for the ledger and `/v1/generation`.

use std::collections::hash_map::Entry;
use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};

use rustc_hash::{FxBuildHasher, FxHashMap};

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
/// finished (the ledger writes in batches, up to 50 ms later): the last [`RECENT`], and
/// older ones as long as anything else holds them — the ledger's queue, or a batch being
/// written — so that a record leaves only once the ledger has it in its database (or gave
/// it up). Bounded: [`RECENT`] and at most the ledger queue's capacity and a batch more.
pub struct RecentGenerations {
    inner: Mutex<Recent>,
}

/// Records by the hash of their id, and the same oldest first (for eviction).
///
/// Keyed by a hash computed once, at insertion, and evicted by pointer (issue 12): the
/// oldest of 4,096 records has long left the cache, and hashing and comparing its id to
/// remove it cost the proxy thread a chain of cache misses a request at c=32 (`perf
/// annotate`: most of `answer_complete`'s own time). Two ids with the same 64-bit hash keep
/// the newer; the older is then read from the ledger.
#[derive(Default)]
struct Recent {
    by_id_hash: FxHashMap<u64, SharedRecord>,
    oldest_first: VecDeque<(u64, SharedRecord)>,
}

impl Recent {
    /// Drops the oldest record unless something besides this map holds it; `false` if it
    /// stays.
    fn evict_oldest(&mut self) -> bool {
        let Some((hash, oldest)) = self.oldest_first.front() else {
            return false;
        };
        // One probe: the entry is removed through the handle that found it.
        let entry = match self.by_id_hash.entry(*hash) {
            Entry::Occupied(e) if Arc::ptr_eq(e.get(), oldest) => Some(e),
            _ => None,
        };
        if Arc::strong_count(oldest) > 1 + usize::from(entry.is_some()) {
            return false;
        }
        if let Some(entry) = entry {
            entry.remove();
        }
        self.oldest_first.pop_front();
        true
    }
}

fn id_hash(id: &str) -> u64 {
    FxBuildHasher.hash_one(id)
}

const RECENT: usize = 4096;

impl Default for RecentGenerations {
    fn default() -> Self {
        RecentGenerations {
            inner: Mutex::new(Recent::default()),
        }
    }
}

impl RecentGenerations {
    pub fn insert(&self, record: SharedRecord) {
        let hash = id_hash(&record.id);
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let recent = &mut *inner;
        // Two at most, so that the map shrinks back after a ledger backlog without one
        // request freeing thousands of records.
        for _ in 0..2 {
            if recent.oldest_first.len() < RECENT || !recent.evict_oldest() {
                break;
            }
        }
        recent.by_id_hash.insert(hash, record.clone());
        recent.oldest_first.push_back((hash, record));
    }

    pub fn get(&self, id: &str) -> Option<Arc<GenerationRecord>> {
        let inner = self.inner.lock().ok()?;
        let record = inner.by_id_hash.get(&id_hash(id))?;
        (record.id == id).then(|| record.clone())
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
        assert_eq!(
            (inner.by_id_hash.len(), inner.oldest_first.len()),
            (RECENT, RECENT)
        );
    }

    /// A record the ledger still holds (queued, or in a batch being written) stays past the
    /// limit, and the ones behind it with it; once let go, the map shrinks back two a record.
    #[test]
    fn a_record_the_ledger_still_holds_stays_until_it_is_let_go() {
        let recent = RecentGenerations::default();
        let queued = record("gen-queued");
        recent.insert(queued.clone());
        for i in 0..RECENT + 10 {
            recent.insert(record(&format!("gen-{i}")));
        }
        assert!(Arc::ptr_eq(&recent.get("gen-queued").unwrap(), &queued));
        assert!(
            recent.get("gen-0").is_some(),
            "nothing behind it left either"
        );
        let len = || recent.inner.lock().unwrap().oldest_first.len();
        assert_eq!(len(), RECENT + 11);
        drop(queued);
        recent.insert(record("gen-next"));
        assert!(recent.get("gen-queued").is_none() && recent.get("gen-0").is_none());
        assert_eq!(len(), RECENT + 10, "two left, one came");
        for i in 0..20 {
            recent.insert(record(&format!("gen-more-{i}")));
        }
        assert_eq!(len(), RECENT);
        let inner = recent.inner.lock().unwrap();
        assert_eq!(inner.by_id_hash.len(), RECENT);
    }

    /// Evicting an old record leaves alone a newer one under the same hash (here the same
    /// id, as two colliding ids would be).
    #[test]
    fn evicting_a_record_keeps_a_newer_one_under_the_same_hash() {
        let recent = RecentGenerations::default();
        // Watched, not held: a record held elsewhere would stay.
        let (first, second) = (record("gen-dup"), record("gen-dup"));
        let (first_seen, second_seen) = (Arc::downgrade(&first), Arc::downgrade(&second));
        recent.insert(first);
        recent.insert(second);
        for i in 0..RECENT - 1 {
            recent.insert(record(&format!("gen-{i}")));
        }
        assert!(
            first_seen.upgrade().is_none(),
            "the older one is evicted and let go"
        );
        let found = recent.get("gen-dup").expect("the newer one stays");
        assert!(std::sync::Weak::ptr_eq(
            &Arc::downgrade(&found),
            &second_seen
        ));
        drop(found);
        recent.insert(record("gen-last"));
        assert!(
            recent.get("gen-dup").is_none(),
            "then it is evicted in turn"
        );
        assert!(second_seen.upgrade().is_none());
    }

    /// With the real writer: while the database is locked, every record stays findable
    /// here however many come after it; once written, it leaves (and the ledger has it).
    #[test]
    fn a_record_stays_until_the_ledger_has_written_it() {
        use crate::ledger::{block_on, Ledger, WriterConfig};
        use std::time::Duration;

        let dir = std::env::temp_dir().join(format!("sy-recent-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let ledger = Ledger::open(&format!("sqlite://{}/ledger.db", dir.display())).unwrap();
        let writer = ledger.writer(WriterConfig::default());
        // Another connection holds the write lock: batches wait (5 s busy timeout).
        let lock = rusqlite::Connection::open(dir.join("ledger.db")).unwrap();
        lock.execute_batch("BEGIN IMMEDIATE").unwrap();

        let recent = RecentGenerations::default();
        let publish = |id: &str| {
            // As `publish` then `logging` do: the map first, then the ledger's queue.
            let rec = record(id);
            recent.insert(rec.clone());
            assert!(writer.record(rec));
        };
        publish("gen-first");
        for i in 0..RECENT + 100 {
            publish(&format!("gen-{i}"));
        }
        assert!(
            recent.get("gen-first").is_some(),
            "evicted before it was written"
        );
        assert_eq!(writer.stats().written, 0);

        lock.execute_batch("COMMIT").unwrap();
        assert!(writer.flush_blocking(Duration::from_secs(30)));
        for i in 0..200 {
            publish(&format!("gen-after-{i}"));
        }
        assert!(recent.get("gen-first").is_none(), "written, then let go");
        assert!(block_on(ledger.get_generation("gen-first"))
            .unwrap()
            .is_some());
        block_on(writer.close());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
