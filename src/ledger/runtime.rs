//! The ledger's own thread and tokio runtime, and a tiny executor for sync callers.
//!
//! Pingora owns several tokio runtimes and a sqlx pool is tied to the runtime that opened
//! its connections (their sockets and maintenance tasks live there). So the ledger opens
//! its pool on a current-thread runtime running on a thread of its own, and everything that
//! touches the database is spawned onto it. What callers await is a `JoinHandle` or a
//! channel, which any executor can poll: the ledger works the same from a Pingora worker,
//! a test's runtime, or sync code through [`block_on`].

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, JoinHandle, Thread, ThreadId};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio::sync::oneshot;

use super::db::Db;
use super::error::LedgerError;

/// Owns the ledger thread. Dropping it closes the pool (SQLite checkpoints its WAL) and
/// stops the thread; tasks still running on the runtime are cancelled then, which is why
/// the writer holds a `Ledger` (and so this) until it has drained.
pub(crate) struct LedgerRuntime {
    pub handle: Handle,
    stop: Mutex<Option<oneshot::Sender<Option<Db>>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    thread_id: ThreadId,
}

impl LedgerRuntime {
    pub fn start() -> Result<LedgerRuntime, LedgerError> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<Option<Db>>();
        let thread = thread::Builder::new()
            .name("switchyard-ledger".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(rt.handle().clone()));
                // The runtime runs spawned tasks while this thread is inside `block_on`.
                rt.block_on(async move {
                    if let Ok(Some(db)) = stop_rx.await {
                        db.close().await;
                    }
                });
            })?;
        let thread_id = thread.thread().id();
        let handle = match ready_rx.recv() {
            Ok(Ok(handle)) => handle,
            Ok(Err(e)) => return Err(LedgerError::Io(e)),
            Err(_) => return Err(LedgerError::Stopped),
        };
        Ok(LedgerRuntime {
            handle,
            stop: Mutex::new(Some(stop_tx)),
            thread: Mutex::new(Some(thread)),
            thread_id,
        })
    }

    /// Runs `fut` on the ledger runtime; the result can be awaited from any executor.
    pub async fn run<T, F>(&self, fut: F) -> Result<T, LedgerError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, LedgerError>> + Send + 'static,
    {
        self.handle
            .spawn(fut)
            .await
            .map_err(|_| LedgerError::Stopped)?
    }

    /// Closes `db` and stops the thread; waits for it unless called from the thread itself.
    pub fn stop(&self, db: Option<Db>) {
        if let Some(stop) = self
            .stop
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = stop.send(db);
        }
        if thread::current().id() == self.thread_id {
            return;
        }
        if let Some(thread) = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = thread.join();
        }
    }
}

impl Drop for LedgerRuntime {
    fn drop(&mut self) {
        self.stop(None);
    }
}

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Drives `fut` to completion on the calling thread, for sync code (startup, the CLI,
/// shutdown hooks). Blocks the thread: do not call it from inside an async task you care
/// about, and never from the ledger's own thread.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let waker = thread_waker();
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        // A wake between the poll and the park leaves the token set, so none is lost;
        // a spurious unpark just polls again.
        thread::park();
    }
}

/// Like [`block_on`], giving up (and dropping the future) after `timeout`.
pub fn block_on_timeout<F: Future>(fut: F, timeout: Duration) -> Option<F::Output> {
    let deadline = Instant::now() + timeout;
    let mut fut = pin!(fut);
    let waker = thread_waker();
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return Some(out);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        thread::park_timeout(left);
    }
}

fn thread_waker() -> Waker {
    Waker::from(Arc::new(ThreadWaker(thread::current())))
}
