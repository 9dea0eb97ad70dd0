//! The bounded queue between the request path and the ledger writer, and its counters.
//!
//! Invariants, enforced here:
//! - `push` never waits on the database: it takes a mutex held only for O(1) pushes and for
//!   the writer's O(batch) moves out, and never across an await or any I/O.
//! - Memory is bounded: at most `capacity` records wait here, plus one batch (at most
//!   `max_batch`) in the writer's hands while it is written or retried, plus on SQLite at
//!   most one earlier batch whose write outlived its attempt timeout (`sqlite_batch.rs`).
//! - A record is lost in exactly two ways, each counted: the queue was full or closed when
//!   it arrived (`dropped`), or its batch exhausted the retry budget (`abandoned`).
//! - Records are taken in arrival order and `settled` (written + abandoned) only grows, so
//!   "settled ≥ n" means the first n accepted records are done: that is what flush waits on.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::{watch, Notify};

#[cfg(test)]
use super::record::GenerationRecord;
use super::record::SharedRecord;

/// What the writer has done so far; export these as metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Records waiting in the queue now (not counting a batch being written).
    pub queued: usize,
    /// Records committed to the database.
    pub written: u64,
    /// Records refused because the queue was full (or the writer closed).
    pub dropped: u64,
    /// Records given up after their batch exhausted the retry budget.
    pub abandoned: u64,
    /// Failed batch write attempts (each retry counts).
    pub write_errors: u64,
}

#[derive(Default)]
struct Queue {
    records: VecDeque<SharedRecord>,
    /// Records ever accepted: the sequence number of the newest.
    accepted: u64,
    closing: bool,
}

pub(crate) struct Shared {
    pub capacity: usize,
    pub max_batch: usize,
    queue: Mutex<Queue>,
    /// Wakes the writer: first record of an empty queue, a full batch, a flush, a close.
    pub wake: Notify,
    /// Records written or abandoned, in arrival order.
    settled: watch::Sender<u64>,
    /// The highest `accepted` a flush is waiting for; the writer stops lingering for it.
    flush_target: AtomicU64,
    written: AtomicU64,
    dropped: AtomicU64,
    abandoned: AtomicU64,
    write_errors: AtomicU64,
}

impl Shared {
    pub fn new(capacity: usize, max_batch: usize) -> Shared {
        Shared {
            capacity: capacity.max(1),
            max_batch: max_batch.max(1),
            queue: Mutex::new(Queue::default()),
            wake: Notify::new(),
            settled: watch::Sender::new(0),
            flush_target: AtomicU64::new(0),
            written: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            abandoned: AtomicU64::new(0),
            write_errors: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // The lock guards plain data that every holder leaves consistent: poison is harmless.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `rec`, or drops and counts it if the queue is full or closed.
    pub fn push(&self, rec: SharedRecord) -> bool {
        let mut q = self.lock();
        if q.closing || q.records.len() >= self.capacity {
            drop(q);
            drop(rec);
            let before = self.dropped.fetch_add(1, Relaxed);
            // The counter is the signal; the log only says it started, then every 1000th.
            if before.is_multiple_of(1000) {
                log::warn!(
                    "ledger: queue full or closed; {} generation records dropped so far",
                    before + 1
                );
            }
            return false;
        }
        q.records.push_back(rec);
        q.accepted += 1;
        let len = q.records.len();
        drop(q);
        if len == 1 || len == self.max_batch {
            self.wake.notify_one();
        }
        true
    }

    /// Records to write now: `None` once closed and empty.
    pub fn take_batch(&self) -> Option<Vec<SharedRecord>> {
        let mut q = self.lock();
        if q.records.is_empty() {
            return None;
        }
        let n = q.records.len().min(self.max_batch);
        Some(q.records.drain(..n).collect())
    }

    /// (queued, closing).
    pub fn state(&self) -> (usize, bool) {
        let q = self.lock();
        (q.records.len(), q.closing)
    }

    /// Whether the writer should write what it has instead of waiting for more.
    pub fn in_a_hurry(&self) -> bool {
        let (queued, closing) = self.state();
        closing
            || queued >= self.max_batch
            || self.flush_target.load(Relaxed) > *self.settled.borrow()
    }

    pub fn accepted(&self) -> u64 {
        self.lock().accepted
    }

    /// No more records are accepted; returns how many were.
    pub fn begin_close(&self) -> u64 {
        let accepted = {
            let mut q = self.lock();
            q.closing = true;
            q.accepted
        };
        self.wake.notify_one();
        accepted
    }

    pub fn request_flush(&self, target: u64) {
        self.flush_target.fetch_max(target, Relaxed);
        self.wake.notify_one();
    }

    /// Waits until the first `target` accepted records are written or abandoned.
    pub async fn settled_at_least(&self, target: u64) {
        let mut rx = self.settled.subscribe();
        // The sender lives in `self`, so this ends only when the condition holds.
        let _ = rx.wait_for(|settled| *settled >= target).await;
    }

    pub fn wrote(&self, n: usize) {
        self.written.fetch_add(n as u64, Relaxed);
        self.settle(n);
    }

    pub fn write_failed(&self) {
        self.write_errors.fetch_add(1, Relaxed);
    }

    /// Gives up a batch that exhausted its retry budget, and with it the queued records a
    /// flush or close is waiting for: the database has been down for a whole budget, so each
    /// of them would wait a budget of its own and the waiter would wait for all of them.
    /// Records nobody waits for stay queued and get a fresh budget.
    pub fn abandon(&self, batch: usize) {
        self.abandoned.fetch_add(batch as u64, Relaxed);
        self.settle(batch);
        let settled = *self.settled.borrow();
        let mut q = self.lock();
        let goal = if q.closing {
            q.accepted
        } else {
            self.flush_target.load(Relaxed)
        };
        let n = usize::try_from(goal.saturating_sub(settled))
            .unwrap_or(usize::MAX)
            .min(q.records.len());
        // Freed after the lock is released, so `push` never waits on thousands of frees.
        let given_up: Vec<SharedRecord> = q.records.drain(..n).collect();
        drop(q);
        drop(given_up);
        if n > 0 {
            self.abandoned.fetch_add(n as u64, Relaxed);
            self.settle(n);
        }
    }

    fn settle(&self, n: usize) {
        self.settled.send_modify(|settled| *settled += n as u64);
    }

    pub fn stats(&self) -> WriterStats {
        WriterStats {
            queued: self.state().0,
            written: self.written.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            abandoned: self.abandoned.load(Relaxed),
            write_errors: self.write_errors.load(Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::runtime::block_on_timeout;
    use crate::metering::{Cost, Usage};
    use std::time::Duration;

    fn rec(i: usize) -> SharedRecord {
        SharedRecord::new(GenerationRecord {
            id: format!("gen-{i}"),
            key_hash: [0; 32],
            key_name: String::new(),
            model: String::new(),
            provider: String::new(),
            upstream_model: String::new(),
            attempts: Vec::new(),
            usage: Usage::default(),
            cost: Cost(0),
            latency_ms: 0,
            ttft_ms: None,
            finish_reason: None,
            status: 200,
            streamed: false,
            cancelled: false,
            error: None,
            created_at: 0,
        })
    }

    fn ids(batch: Option<Vec<SharedRecord>>) -> Vec<String> {
        batch
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.id.clone())
            .collect()
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let q = Shared::new(3, 2);
        assert_eq!(
            (0..5).map(|i| q.push(rec(i))).collect::<Vec<_>>(),
            [true, true, true, false, false]
        );
        assert_eq!((q.stats().queued, q.stats().dropped), (3, 2));
        // Taken in arrival order, a batch at most.
        assert_eq!(ids(q.take_batch()), ["gen-0", "gen-1"]);
        assert!(q.push(rec(5)));
        assert_eq!(ids(q.take_batch()), ["gen-2", "gen-5"]);
        assert!(q.take_batch().is_none());
    }

    #[test]
    fn a_closed_queue_refuses() {
        let q = Shared::new(10, 10);
        q.push(rec(0));
        assert_eq!(q.begin_close(), 1);
        assert!(!q.push(rec(1)));
        assert_eq!(q.stats().dropped, 1);
        assert_eq!(q.state(), (1, true));
    }

    #[test]
    fn abandoning_gives_up_only_what_a_flush_waits_for() {
        let q = Shared::new(100, 2);
        (0..6).for_each(|i| assert!(q.push(rec(i))));
        q.request_flush(4);
        let batch = q.take_batch().unwrap_or_default();
        q.abandon(batch.len());
        // Two in the batch, two more up to the flush target; the last two stay queued.
        assert_eq!((q.stats().abandoned, q.stats().queued), (4, 2));
        assert!(block_on_timeout(q.settled_at_least(4), Duration::from_secs(1)).is_some());
        assert_eq!(ids(q.take_batch()), ["gen-4", "gen-5"]);
    }

    #[test]
    fn abandoning_while_closing_gives_up_everything() {
        let q = Shared::new(100, 2);
        (0..5).for_each(|i| assert!(q.push(rec(i))));
        let accepted = q.begin_close();
        let batch = q.take_batch().unwrap_or_default();
        q.abandon(batch.len());
        assert_eq!((q.stats().abandoned, q.stats().queued), (5, 0));
        assert!(block_on_timeout(q.settled_at_least(accepted), Duration::from_secs(1)).is_some());
    }

    #[test]
    fn flush_waits_for_writes() {
        let q = Shared::new(100, 10);
        (0..3).for_each(|i| assert!(q.push(rec(i))));
        assert!(block_on_timeout(q.settled_at_least(3), Duration::from_millis(20)).is_none());
        q.wrote(q.take_batch().map_or(0, |b| b.len()));
        assert!(block_on_timeout(q.settled_at_least(3), Duration::from_secs(1)).is_some());
        assert_eq!(q.stats().written, 3);
    }
}
