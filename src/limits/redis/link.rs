//! The connection to Redis, and the rule that no request ever waits on a dead one.
//!
//! - A thread of its own runs a tokio runtime that owns the connection (a redis-rs
//!   `ConnectionManager`: one multiplexed connection, replaced when it breaks), as the
//!   ledger does for its pool: Pingora runs several runtimes, and a connection's I/O task
//!   must live on one that outlives every caller. Callers await a task on it.
//! - Every call has a deadline ([`OP_TIMEOUT`]), enforced on both sides of the hop.
//! - The first outage (no answer in time, a broken connection, a Redis still loading) marks
//!   the link down; while it is down calls fail at once (the caller applies
//!   `storage.redis_failure`) and one background probe PINGs every [`PROBE_INTERVAL`]
//!   until Redis answers. Then the link is up again and the writes that waited
//!   ([`Link::defer`]) are replayed in order. A call Redis *refuses* (a script error) fails
//!   alone and leaves the link up.
//! - Deferred writes must be idempotent (the scripts make them so): a write whose reply was
//!   lost may have been applied, and it is sent again.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{ErrorKind, FromRedisValue, RedisError, Script, ServerErrorKind};
use tokio::runtime::Handle;
use tokio::sync::oneshot;

use super::super::outage::{record, RedisEvent};

/// How long one call may take, connection included, before Redis counts as down.
pub const OP_TIMEOUT: Duration = Duration::from_millis(200);
/// How long opening a TCP connection (and its handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// How often a down link asks Redis whether it is back.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(200);
/// How many writes may wait for Redis to return; beyond, the oldest are dropped (counted).
/// About 200 bytes each: a few MB at most.
const DEFERRED_CAPACITY: usize = 20_000;

/// One script call with its keys and arguments, owned so it can wait in the queue.
#[derive(Clone, Debug)]
pub struct ScriptCall {
    pub script: &'static Script,
    pub keys: Vec<String>,
    pub args: Vec<String>,
}

impl ScriptCall {
    /// EVALSHA, loading the script first when Redis does not know it (a fresh or restarted
    /// Redis): the script's SHA is its content, so two versions never collide.
    async fn invoke<T: FromRedisValue>(
        &self,
        conn: &mut ConnectionManager,
    ) -> Result<T, RedisError> {
        let mut invocation = self.script.prepare_invoke();
        for k in &self.keys {
            invocation.key(k);
        }
        for a in &self.args {
            invocation.arg(a);
        }
        invocation.invoke_async(conn).await
    }
}

#[derive(Debug)]
pub enum LinkError {
    /// Known down: not tried.
    Down,
    Timeout,
    Redis(RedisError),
    /// Redis answered, but not usably (an unexpected reply), or the ledger could not seed a
    /// key's spend. Decided by the failure policy like an outage; the link stays up.
    Unusable(String),
}

impl LinkError {
    /// Whether Redis is unreachable or not ready (worth waiting for: the link goes down and
    /// writes are kept for later), as opposed to a call it refused — a bug, a wrong key
    /// type — that no retry will fix.
    pub fn is_outage(&self) -> bool {
        match self {
            LinkError::Down | LinkError::Timeout => true,
            LinkError::Unusable(_) => false,
            LinkError::Redis(e) => match e.kind() {
                ErrorKind::Server(kind) => matches!(
                    kind,
                    ServerErrorKind::BusyLoading
                        | ServerErrorKind::TryAgain
                        | ServerErrorKind::ClusterDown
                        | ServerErrorKind::MasterDown
                        | ServerErrorKind::ReadOnly
                ),
                ErrorKind::Extension
                | ErrorKind::Parse
                | ErrorKind::UnexpectedReturnType
                | ErrorKind::Client => false,
                _ => true,
            },
        }
    }
}

impl std::fmt::Display for LinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkError::Down => f.write_str("redis is unreachable"),
            LinkError::Timeout => write!(f, "redis did not answer within {OP_TIMEOUT:?}"),
            LinkError::Redis(e) => write!(f, "redis: {e}"),
            LinkError::Unusable(why) => f.write_str(why),
        }
    }
}

/// A handle on the link; clones share it.
#[derive(Clone)]
pub struct Link {
    inner: Arc<Inner>,
}

struct Inner {
    handle: Handle,
    conn: ConnectionManager,
    up: AtomicBool,
    probing: AtomicBool,
    flushing: AtomicBool,
    deferred: Mutex<VecDeque<ScriptCall>>,
}

/// Stops the link's thread (and so its connection and probe) when dropped.
pub struct LinkThread {
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for LinkThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Link {
    /// Starts the link's thread and probes `url` at once. Waits at most `wait` for a first
    /// answer, so startup is bounded whether or not Redis is up; until it answers the link
    /// is down and callers apply their policy.
    pub fn open(url: &str, wait: Duration) -> Result<(Link, LinkThread), String> {
        let client = ::redis::Client::open(url).map_err(|e| format!("storage.redis_url: {e}"))?;
        let (handle, thread) =
            start_thread().map_err(|e| format!("cannot start the redis thread: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(OP_TIMEOUT))
            // One attempt per call: the probe, not the manager, paces reconnection.
            .set_number_of_retries(0);
        let conn = {
            let _runtime = handle.enter();
            ConnectionManager::new_lazy_with_config(client, config)
                .map_err(|e| format!("storage.redis_url: {e}"))?
        };
        let link = Link {
            inner: Arc::new(Inner {
                handle,
                conn,
                up: AtomicBool::new(false),
                probing: AtomicBool::new(false),
                flushing: AtomicBool::new(false),
                deferred: Mutex::new(VecDeque::new()),
            }),
        };
        start_probe(&link.inner, true);
        let deadline = Instant::now() + wait;
        while !link.is_up() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok((link, thread))
    }

    pub fn is_up(&self) -> bool {
        self.inner.up.load(Ordering::Acquire)
    }

    /// Runs `call`, or fails at once while Redis is known to be down.
    pub async fn eval<T>(&self, call: ScriptCall) -> Result<T, LinkError>
    where
        T: FromRedisValue + Send + 'static,
    {
        if !self.is_up() {
            return Err(LinkError::Down);
        }
        let mut conn = self.inner.conn.clone();
        let task = self
            .inner
            .handle
            .spawn(async move { bounded(call.invoke::<T>(&mut conn)).await });
        // The inner deadline ends the task; this one guards the hop itself.
        let result = match tokio::time::timeout(OP_TIMEOUT * 2, task).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) | Err(_) => Err(LinkError::Timeout),
        };
        match &result {
            Err(e) if e.is_outage() => mark_down(&self.inner, e),
            Err(e) => {
                record(RedisEvent::Error);
                log::error!("limits: redis refused a call: {e}");
            }
            Ok(_) => {}
        }
        result
    }

    /// Queues an idempotent write to be replayed, in order, once Redis answers.
    pub fn defer(&self, call: ScriptCall) {
        {
            let mut q = lock(&self.inner.deferred);
            if q.len() >= DEFERRED_CAPACITY {
                q.pop_front();
                record(RedisEvent::Dropped);
            }
            q.push_back(call);
        }
        record(RedisEvent::Deferred);
        if self.is_up() {
            start_flush(&self.inner);
        }
    }

    /// Writes waiting for Redis.
    pub fn deferred_len(&self) -> usize {
        lock(&self.inner.deferred).len()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn bounded<T>(call: impl Future<Output = Result<T, RedisError>>) -> Result<T, LinkError> {
    match tokio::time::timeout(OP_TIMEOUT, call).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(LinkError::Redis(e)),
        Err(_) => Err(LinkError::Timeout),
    }
}

/// An outage marks the link down: the probe, not a request, finds out when it is back.
fn mark_down(inner: &Arc<Inner>, e: &LinkError) {
    record(RedisEvent::Error);
    if inner.up.swap(false, Ordering::AcqRel) {
        record(RedisEvent::Down);
        log::warn!("limits: {e}; following storage.redis_failure until it answers again");
    }
    start_probe(inner, false);
}

/// Starts the background probe unless one runs. `at_startup`: nothing has said yet that
/// Redis is unreachable, so the probe says it.
fn start_probe(inner: &Arc<Inner>, at_startup: bool) {
    if inner.probing.swap(true, Ordering::AcqRel) {
        return;
    }
    let inner = inner.clone();
    inner.handle.clone().spawn(async move {
        let mut unannounced = at_startup;
        loop {
            let mut conn = inner.conn.clone();
            let ping = ::redis::cmd("PING");
            if bounded(ping.query_async::<String>(&mut conn)).await.is_ok() {
                // Clear `probing` before `up`: a failure in between starts a new probe
                // rather than finding this one still (but no longer) running.
                inner.probing.store(false, Ordering::Release);
                inner.up.store(true, Ordering::Release);
                if at_startup && unannounced {
                    log::info!("limits: redis is reachable");
                } else {
                    record(RedisEvent::Up);
                    log::info!("limits: redis answers again; limits are shared again");
                }
                start_flush(&inner);
                return;
            }
            if unannounced {
                record(RedisEvent::Down);
                log::warn!("limits: redis is unreachable; following storage.redis_failure until it answers");
                unannounced = false;
            }
            tokio::time::sleep(PROBE_INTERVAL).await;
        }
    });
}

/// Replays the deferred writes in order; stops (keeping the rest) at the first failure.
fn start_flush(inner: &Arc<Inner>) {
    if inner.flushing.swap(true, Ordering::AcqRel) {
        return;
    }
    let inner = inner.clone();
    inner.handle.clone().spawn(async move {
        loop {
            let Some(call) = lock(&inner.deferred).pop_front() else {
                break;
            };
            let mut conn = inner.conn.clone();
            match bounded(call.invoke::<::redis::Value>(&mut conn)).await {
                Ok(_) => record(RedisEvent::Replayed),
                Err(e) if e.is_outage() => {
                    lock(&inner.deferred).push_front(call);
                    inner.flushing.store(false, Ordering::Release);
                    mark_down(&inner, &e);
                    return;
                }
                // No retry can apply it: keeping it would block every write behind it.
                Err(e) => {
                    record(RedisEvent::Dropped);
                    log::error!("limits: dropping a deferred write redis refuses: {e}");
                }
            }
        }
        inner.flushing.store(false, Ordering::Release);
        // A write deferred between the last pop and the flag: do not leave it waiting.
        if !lock(&inner.deferred).is_empty() && inner.up.load(Ordering::Acquire) {
            start_flush(&inner);
        }
    });
}

fn start_thread() -> std::io::Result<(Handle, LinkThread)> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("switchyard-redis".into())
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
            // Spawned tasks run while this thread waits here; dropping the runtime after
            // the stop signal cancels them (the probe, a flush) and closes the connection.
            rt.block_on(async move {
                let _ = stop_rx.await;
            });
        })?;
    let handle = ready_rx
        .recv()
        .map_err(|_| std::io::Error::other("the redis thread died while starting"))??;
    Ok((
        handle,
        LinkThread {
            stop: Some(stop_tx),
        },
    ))
}
