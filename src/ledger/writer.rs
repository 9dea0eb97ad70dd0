//! `LedgerWriter`: the request path hands it finished generation records; a task on the
//! ledger's runtime writes them in batches. The request path never touches the database.
//!
//! Flow: `record()` pushes onto the bounded queue (`queue.rs`) and returns. The drain task
//! waits for a first record, lingers until it has `max_batch` records or `max_delay` has
//! passed (at once when a flush or close is waiting), and writes the batch in one
//! transaction (`generations.rs`). A failed write is counted and retried with doubling
//! backoff, capped, until it succeeds or the batch has been failing for `retry_budget`;
//! meanwhile new records keep queueing up to `capacity` and beyond that are dropped and
//! counted. Nothing grows without bound and nothing on the request path waits.
//!
//! The schema has no constraint a record can violate (ids conflict into no-ops, integers
//! are clamped, text is NUL-free), so a failed batch means the database is unavailable and
//! retrying the batch whole is the right response.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::{sleep, sleep_until, timeout, Instant};

use super::db::Db;
use super::error::LedgerError;
use super::generations::insert_batch;
use super::queue::{Shared, WriterStats};
use super::record::SharedRecord;
use super::runtime::block_on_timeout;
use super::Ledger;

#[derive(Clone, Debug)]
pub struct WriterConfig {
    /// Records that may wait in memory; beyond it new records are dropped and counted.
    pub capacity: usize,
    /// Records per transaction at most.
    pub max_batch: usize,
    /// How long the first record of a batch may wait for company.
    pub max_delay: Duration,
    /// How long a failing batch is retried before it is abandoned (and counted).
    pub retry_budget: Duration,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// One write attempt longer than this counts as failed (a hung connection must not
    /// stall the writer forever).
    pub attempt_timeout: Duration,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            capacity: 10_000,
            max_batch: 256,
            max_delay: Duration::from_millis(50),
            retry_budget: Duration::from_secs(10),
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
            attempt_timeout: Duration::from_secs(10),
        }
    }
}

/// A cheap, cloneable handle; all clones feed one queue and one drain task.
#[derive(Clone)]
pub struct LedgerWriter {
    handle: Arc<WriterHandle>,
}

struct WriterHandle {
    shared: Arc<Shared>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for WriterHandle {
    /// The last handle gone without `close()`: the task still drains what is queued, then
    /// stops (it keeps the ledger's runtime alive until then). Nobody waits for it.
    fn drop(&mut self) {
        self.shared.begin_close();
    }
}

impl LedgerWriter {
    /// Starts the drain task on `ledger`'s runtime. Callable from any thread or runtime.
    pub fn start(ledger: &Ledger, config: WriterConfig) -> LedgerWriter {
        let shared = Arc::new(Shared::new(config.capacity, config.max_batch));
        let task = ledger
            .runtime()
            .handle
            .spawn(drain(shared.clone(), ledger.clone(), config));
        LedgerWriter {
            handle: Arc::new(WriterHandle {
                shared,
                task: Mutex::new(Some(task)),
            }),
        }
    }

    /// Queues `rec` for writing. Never blocks on the database and never awaits; callable
    /// from sync code. `false` means it was dropped (queue full or writer closed) and counted.
    /// An `Arc` is queued as it is: the gateway shares the record with its recent map.
    pub fn record(&self, rec: impl Into<SharedRecord>) -> bool {
        self.handle.shared.push(rec.into())
    }

    pub fn stats(&self) -> WriterStats {
        self.handle.shared.stats()
    }

    /// Waits until every record queued before this call is written, or abandoned because
    /// the database stayed down for a whole retry budget (so this waits about one budget at
    /// most when it is down).
    pub async fn flush(&self) {
        let shared = &self.handle.shared;
        let target = shared.accepted();
        shared.request_flush(target);
        shared.settled_at_least(target).await;
    }

    /// [`flush`](Self::flush) for sync code; `false` if `timeout` passed first (the records
    /// stay queued and are still written).
    pub fn flush_blocking(&self, timeout: Duration) -> bool {
        block_on_timeout(self.flush(), timeout).is_some()
    }

    /// Stops accepting records (later ones are dropped and counted), writes what is queued
    /// (giving it up after one exhausted retry budget if the database is down) and stops
    /// the task. Closing one clone closes the writer for all of them.
    pub async fn close(self) {
        let shared = self.handle.shared.clone();
        let accepted = shared.begin_close();
        shared.settled_at_least(accepted).await;
        let task = self
            .handle
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    /// [`close`](Self::close) for sync code (a shutdown hook); `false` if `timeout` passed
    /// first, in which case the task goes on draining in the background.
    pub fn close_blocking(self, timeout: Duration) -> bool {
        block_on_timeout(self.close(), timeout).is_some()
    }
}

/// The drain task. Holds `ledger` so the runtime outlives the last queued record.
async fn drain(shared: Arc<Shared>, ledger: Ledger, config: WriterConfig) {
    let db = ledger.db().clone();
    loop {
        // Wait for a first record (a permit left by `notify_one` is not lost).
        loop {
            let (queued, closing) = shared.state();
            if queued > 0 {
                break;
            }
            if closing {
                return;
            }
            shared.wake.notified().await;
        }
        let deadline = Instant::now() + config.max_delay;
        while !shared.in_a_hurry() {
            tokio::select! {
                _ = shared.wake.notified() => {}
                _ = sleep_until(deadline) => break,
            }
        }
        if let Some(batch) = shared.take_batch() {
            // Shared with the blocking thread a SQLite write runs on, which may outlive an
            // attempt that timed out (see `sqlite_batch.rs`).
            write_with_retry(&shared, &db, &config, &Arc::new(batch)).await;
        }
    }
}

async fn write_with_retry(
    shared: &Shared,
    db: &Db,
    config: &WriterConfig,
    batch: &Arc<Vec<SharedRecord>>,
) {
    let started = Instant::now();
    // At least a millisecond: a zero backoff would hammer a database that is down.
    let mut backoff = config.initial_backoff.max(Duration::from_millis(1));
    loop {
        let result = match timeout(config.attempt_timeout, insert_batch(db, batch)).await {
            Ok(result) => result,
            Err(_) => Err(LedgerError::TimedOut),
        };
        let error = match result {
            Ok(()) => return shared.wrote(batch.len()),
            Err(e) => e,
        };
        shared.write_failed();
        let failing_for = started.elapsed();
        if failing_for + backoff > config.retry_budget {
            log::error!(
                "ledger: giving up {} generation records after {failing_for:?} of failures: {error}",
                batch.len()
            );
            return shared.abandon(batch.len());
        }
        log::warn!(
            "ledger: writing {} generation records failed, retrying in {backoff:?}: {error}",
            batch.len()
        );
        sleep(backoff).await;
        backoff = (backoff * 2).min(config.max_backoff);
    }
}
