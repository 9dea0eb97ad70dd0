//! The logger's output: stderr, written in batches instead of one `write(2)` per line.
//!
//! Why (issue 12): every request logs an access line, and as a write of its own it cost the
//! proxy thread ~3 us of the ~65 a request takes at 32 connections (perf: a syscall per
//! request, ~5% of the process). Lines now collect in a buffer that goes out
//! - when a line other than an access line is logged, at once (`Batched`): a warning does
//!   not linger, and the access lines before it go out first, so the order is kept;
//! - when the buffer passes [`BATCH_BYTES`], or [`LINGER`] after a line lands in an empty
//!   buffer, from a flusher thread: a request's thread never writes an access line itself;
//! - at shutdown (`log::logger().flush()`) and on a panic (the hook `install_panic_flush`).
//!
//! So an access line reaches stderr at most ~`LINGER` after its request ends, as with nginx's
//! `access_log ... buffer= flush=`. A process killed outright loses at most that much of the
//! access log; the ledger, the record of truth, is unaffected. A stderr that blocks (a
//! stalled pipe, a stuck log collector) blocks the flusher, and a thread logging a line
//! other than an access line; requests go on: past [`MAX_PENDING`] new lines are dropped
//! and counted (`switchyard_log_lines_dropped_total`) instead of held. A batch whose write
//! fails (stderr closed) is dropped: there is nowhere to report it.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError, TryLockError};
use std::time::{Duration, Instant};

use log::{Log, Metadata, Record};

/// A batch goes out once it holds this much (~150 access lines).
pub const BATCH_BYTES: usize = 32 * 1024;

/// How long the first line of a batch may wait for company.
pub const LINGER: Duration = Duration::from_millis(100);

/// The most that waits while stderr is stalled (~5,000 access lines); later lines are
/// dropped and counted until it drains.
pub const MAX_PENDING: usize = 1024 * 1024;

/// The target every access line is logged under (`access_log::log_request`).
pub const ACCESS_TARGET: &str = "access";

/// The batch of the process's logger (`logging::init`), for its metrics.
static INSTALLED: OnceLock<Arc<LineBatch>> = OnceLock::new();

/// The batch `logging::init` installed, if it did.
pub fn installed() -> Option<&'static Arc<LineBatch>> {
    INSTALLED.get()
}

/// Lines waiting to be written, and where they go.
pub struct LineBatch {
    pending: Mutex<Vec<u8>>,
    /// Signalled when a line lands in an empty buffer; the flusher waits on it.
    filled: Condvar,
    /// Held while a batch is written, so that batches leave in the order they were taken.
    out: Mutex<Output>,
    /// No flusher thread could be started: every line is written at once.
    immediate: AtomicBool,
    /// Lines dropped because `MAX_PENDING` bytes were already waiting.
    dropped: AtomicU64,
}

struct Output {
    sink: Box<dyn Write + Send>,
    /// The previous batch's buffer, emptied, swapped in for the next: no allocation per batch.
    spare: Vec<u8>,
}

fn unpoisoned<T>(lock: &Mutex<T>) -> MutexGuard<'_, T> {
    // Both locks guard plain bytes that every holder leaves whole.
    lock.lock().unwrap_or_else(PoisonError::into_inner)
}

impl LineBatch {
    /// A batch writing to `sink`. Until [`start_flusher`](Self::start_flusher), lines wait
    /// for a full batch, another line or a flush.
    pub fn new(sink: Box<dyn Write + Send>) -> Arc<LineBatch> {
        Arc::new(LineBatch {
            pending: Mutex::new(Vec::with_capacity(BATCH_BYTES * 2)),
            filled: Condvar::new(),
            out: Mutex::new(Output {
                sink,
                spare: Vec::with_capacity(BATCH_BYTES * 2),
            }),
            immediate: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
        })
    }

    /// Makes this the batch whose counters `/metrics` shows (once per process).
    pub fn install(self: &Arc<Self>) {
        let _ = INSTALLED.set(self.clone());
    }

    /// Starts the flusher thread, which lives as long as the process.
    pub fn start_flusher(self: &Arc<Self>) {
        let flusher = self.clone();
        let started = std::thread::Builder::new()
            .name("log-flush".into())
            .spawn(move || flusher.flush_after_linger());
        if started.is_err() {
            // No thread to write late lines: write every line at once instead.
            self.immediate.store(true, Relaxed);
        }
    }

    /// Adds `bytes` (whole lines) to the batch and wakes the flusher for a first line or a
    /// full batch; never writes (unless no flusher could be started). Dropped and counted
    /// when `MAX_PENDING` bytes already wait.
    pub fn append(&self, bytes: &[u8]) {
        let mut pending = unpoisoned(&self.pending);
        let before = pending.len();
        if before >= MAX_PENDING {
            drop(pending);
            self.dropped.fetch_add(1, Relaxed);
            return;
        }
        pending.extend_from_slice(bytes);
        let filled_now = before < BATCH_BYTES && pending.len() >= BATCH_BYTES;
        drop(pending);
        if self.immediate.load(Relaxed) {
            self.flush();
        } else if before == 0 || filled_now {
            self.filled.notify_one();
        }
    }

    /// Lines dropped so far because stderr did not keep up.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }

    /// Writes out what is pending.
    pub fn flush(&self) {
        self.write_out(unpoisoned(&self.out));
    }

    /// [`flush`](Self::flush), waiting at most ~100 ms for a write under way (the flusher's,
    /// usually): a panic hook must not wait forever on a lock its own thread might hold.
    pub fn flush_soon(&self) {
        for _ in 0..100 {
            match self.out.try_lock() {
                Ok(out) => return self.write_out(out),
                Err(TryLockError::Poisoned(p)) => return self.write_out(p.into_inner()),
                Err(TryLockError::WouldBlock) => std::thread::sleep(Duration::from_millis(1)),
            }
        }
    }

    fn write_out(&self, mut out: MutexGuard<'_, Output>) {
        let out = &mut *out;
        std::mem::swap(&mut *unpoisoned(&self.pending), &mut out.spare);
        if out.spare.is_empty() {
            return;
        }
        // A log that cannot be written has nowhere to report it: the lines are dropped.
        let _ = out.sink.write_all(&out.spare);
        let _ = out.sink.flush();
        out.spare.clear();
    }

    /// The flusher thread: waits for a first line, lets the batch fill for up to `LINGER`,
    /// writes.
    fn flush_after_linger(&self) {
        loop {
            let mut pending = unpoisoned(&self.pending);
            while pending.is_empty() {
                pending = self
                    .filled
                    .wait(pending)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            let deadline = Instant::now() + LINGER;
            while pending.len() < BATCH_BYTES {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                pending = self
                    .filled
                    .wait_timeout(pending, left)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            drop(pending);
            self.flush();
        }
    }

    /// Writes what is pending before a panic's message (and the process, maybe) goes.
    pub fn install_panic_flush(self: &Arc<Self>) {
        let batch = self.clone();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            batch.flush_soon();
            previous(info);
        }));
    }
}

/// The `Write` end env_logger formats lines into (`Target::Pipe`). env_logger flushes after
/// every line; that flush is ignored here: the batch decides when lines go out.
pub struct BatchWriter(pub Arc<LineBatch>);

impl Write for BatchWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.append(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Wraps the logger writing into `batch`: a line other than an access line writes the batch
/// out at once, and `flush` writes it out.
pub struct Batched<L> {
    pub inner: L,
    pub batch: Arc<LineBatch>,
}

impl<L: Log> Log for Batched<L> {
    fn enabled(&self, metadata: &Metadata) -> bool {
        self.inner.enabled(metadata)
    }

    fn log(&self, record: &Record) {
        self.inner.log(record);
        if record.target() != ACCESS_TARGET && self.inner.enabled(record.metadata()) {
            self.batch.flush();
        }
    }

    fn flush(&self) {
        self.inner.flush();
        self.batch.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use log::Level;

    /// A sink that keeps each write apart.
    #[derive(Clone, Default)]
    struct Writes(Arc<Mutex<Vec<Vec<u8>>>>);

    impl Write for Writes {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Writes {
        fn taken(&self) -> Vec<String> {
            let writes = self.0.lock().unwrap();
            writes
                .iter()
                .map(|w| String::from_utf8(w.clone()).unwrap())
                .collect()
        }
    }

    /// Formats `target message\n` into the batch, as env_logger does with its pipe.
    struct Lines(Arc<LineBatch>);

    impl Log for Lines {
        fn enabled(&self, _: &Metadata) -> bool {
            true
        }
        fn log(&self, record: &Record) {
            let line = format!("{} {}\n", record.target(), record.args());
            BatchWriter(self.0.clone())
                .write_all(line.as_bytes())
                .unwrap();
        }
        fn flush(&self) {}
    }

    fn emit(logger: &dyn Log, target: &str, level: Level, text: &str) {
        logger.log(
            &Record::builder()
                .target(target)
                .level(level)
                .args(format_args!("{text}"))
                .build(),
        );
    }

    #[test]
    fn access_lines_wait_and_any_other_line_writes_them_first_in_order() {
        let sink = Writes::default();
        let batch = LineBatch::new(Box::new(sink.clone()));
        let logger = Batched {
            inner: Lines(batch.clone()),
            batch: batch.clone(),
        };
        for i in 0..10 {
            emit(&logger, ACCESS_TARGET, Level::Info, &format!("request {i}"));
        }
        assert!(sink.taken().is_empty(), "access lines went out one by one");
        emit(&logger, "switchyard::reload", Level::Warn, "reload failed");
        let mut expected: String = (0..10).map(|i| format!("access request {i}\n")).collect();
        expected.push_str("switchyard::reload reload failed\n");
        assert_eq!(sink.taken(), vec![expected], "one write, in order");
        emit(&logger, ACCESS_TARGET, Level::Info, "late");
        logger.flush();
        assert_eq!(sink.taken().len(), 2);
        assert_eq!(sink.taken()[1], "access late\n");
        logger.flush();
        assert_eq!(sink.taken().len(), 2, "an empty batch writes nothing");
    }

    /// A sink whose writes wait until the gate opens: a stalled stderr.
    struct Gated {
        open: Arc<(Mutex<bool>, Condvar)>,
        writes: Writes,
    }

    impl Write for Gated {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let (lock, cvar) = &*self.open;
            let mut open = lock.lock().unwrap();
            while !*open {
                open = cvar.wait(open).unwrap();
            }
            self.writes.write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stalled_stderr_never_blocks_the_lines_of_requests_and_bounds_what_waits() {
        let writes = Writes::default();
        let open = Arc::new((Mutex::new(false), Condvar::new()));
        let batch = LineBatch::new(Box::new(Gated {
            open: open.clone(),
            writes: writes.clone(),
        }));
        batch.start_flusher();
        // 3 MiB of numbered 100-byte lines against a sink that takes nothing yet.
        let total = 3 * MAX_PENDING / 100;
        let appender = batch.clone();
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for i in 0..total {
                appender.append(format!("{i:>99}\n").as_bytes());
            }
            done.send(()).unwrap();
        });
        finished
            .recv_timeout(Duration::from_secs(30))
            .expect("appending waited on the stalled sink");
        let dropped = batch.dropped() as usize;
        assert!(dropped > 0 && dropped < total, "{dropped} of {total}");
        // The sink recovers: what waited is written, whole lines, in order.
        *open.0.lock().unwrap() = true;
        open.1.notify_all();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let written: usize = writes.taken().iter().map(String::len).sum();
            if written / 100 + dropped == total {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{written} bytes, {dropped} dropped"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let text = writes.taken().concat();
        for (n, line) in text.lines().enumerate() {
            assert_eq!(line.trim_start().parse::<usize>().unwrap(), n);
        }
    }

    #[test]
    fn the_flusher_thread_writes_a_lone_line_after_its_linger() {
        let sink = Writes::default();
        let batch = LineBatch::new(Box::new(sink.clone()));
        batch.start_flusher();
        batch.append(b"alone\n");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while sink.taken().is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "the line was never written"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(sink.taken(), vec!["alone\n".to_string()]);
        // And again, once the flusher has gone back to waiting for a first line.
        batch.append(b"second\n");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while sink.taken().len() < 2 {
            assert!(std::time::Instant::now() < deadline, "{:?}", sink.taken());
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(sink.taken()[1], "second\n");
    }
}
