//! Sticky routing: a conversation stays on the provider endpoint that served it, so the
//! provider's prompt cache keeps hitting. Entries expire after `IDLE_TTL` without use; the
//! table is bounded (`MAX_ENTRIES`): when full, expired entries are swept, and if none are,
//! the least recently used half is dropped.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const IDLE_TTL: Duration = Duration::from_secs(600);
pub const MAX_ENTRIES: usize = 100_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StickyTarget {
    pub provider: String,
    pub upstream_model: String,
}

#[derive(Default)]
pub struct StickyTable {
    entries: Mutex<HashMap<u64, (StickyTarget, Instant)>>,
}

/// A session key from its parts (key hash, model, and a session id or the conversation's
/// first system and user messages).
pub fn session_hash(parts: &[&[u8]]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for p in parts {
        p.hash(&mut h);
    }
    h.finish()
}

impl StickyTable {
    pub fn get(&self, session: u64) -> Option<StickyTarget> {
        let mut entries = self.entries.lock().ok()?;
        let (target, last) = entries.get_mut(&session)?;
        if last.elapsed() > IDLE_TTL {
            entries.remove(&session);
            return None;
        }
        *last = Instant::now();
        Some(target.clone())
    }

    pub fn set(&self, session: u64, target: StickyTarget) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&session) {
            entries.retain(|_, (_, last)| last.elapsed() <= IDLE_TTL);
            if entries.len() >= MAX_ENTRIES {
                let mut ages: Vec<Instant> = entries.values().map(|(_, t)| *t).collect();
                ages.sort_unstable();
                let cutoff = ages[ages.len() / 2];
                entries.retain(|_, (_, last)| *last > cutoff);
            }
        }
        entries.insert(session, (target, Instant::now()));
    }

    pub fn forget(&self, session: u64) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(&session);
        }
    }

    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(p: &str) -> StickyTarget {
        StickyTarget {
            provider: p.into(),
            upstream_model: "m".into(),
        }
    }

    #[test]
    fn remembers_and_forgets_sessions() {
        let t = StickyTable::default();
        let s = session_hash(&[b"key", b"model", b"session-1"]);
        assert_ne!(s, session_hash(&[b"key", b"model", b"session-2"]));
        assert!(t.get(s).is_none());
        t.set(s, target("a"));
        assert_eq!(t.get(s), Some(target("a")));
        t.forget(s);
        assert!(t.get(s).is_none());
    }

    #[test]
    fn stays_bounded() {
        let t = StickyTable::default();
        for i in 0..(MAX_ENTRIES as u64 + 10) {
            t.set(i, target("a"));
        }
        assert!(t.len() <= MAX_ENTRIES);
    }
}
