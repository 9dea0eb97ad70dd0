//! A fake model provider speaking OpenAI Chat Completions (whole and SSE), Embeddings and
//! Models, Anthropic Messages (`.../messages`), Gemini (`.../models/{model}:generateContent`,
//! `:streamGenerateContent?alt=sse`), Bedrock Converse (`.../model/{id}/converse`,
//! `/converse-stream` in binary event-stream framing) and Azure OpenAI
//! (`.../openai/deployments/{deployment}/chat/completions?api-version=`), with faults chosen
//! per request (errors come in each provider's own shape). Used by integration tests, benches
//! and the demo.
//!
//! It shares no gateway internals on purpose: it must behave like a foreign upstream.
//!
//! Faults come from (first found wins) the `x-mock-fault` header, the model string's `+knob`
//! suffix (`mock-small+status=429+retry_after=2`; for Gemini and Bedrock the model in the
//! path, for Azure the deployment), a body `"mock": {..}` object, or the server's default
//! fault. Knobs: `status=N`, `retry_after=S`, `delay_ms=N`, `chunk_delay_ms=N`, `chunks=N`,
//! `reset=before|mid`, `silence`, `malformed`, `no_usage`, `truncated`, `hang` (OpenAI
//! streams: the body stays open after `[DONE]`), `reply=TEXT`,
//! `tool_call`, `huge=N`, `usage_prompt=N`, `usage_completion=N`, `usage_cached=N`,
//! `usage_reasoning=N`, `usage_cache_write=N` (prompt tokens reported written to the prompt
//! cache: Anthropic's `cache_creation_input_tokens`, Bedrock's `cacheWriteInputTokens`,
//! OpenRouter's `cache_write_tokens`), `xai_usage` (OpenAI answers: reasoning counted apart from
//! `completion_tokens` and inside `total_tokens`, as xAI reports it), `reasoning_deltas=N`
//! (OpenAI streams: N `reasoning_content` deltas before the answer, as DeepSeek and vLLM
//! stream a reasoning model's thinking), `deepseek_usage` (OpenAI answers: cache hits in
//! `prompt_cache_hit_tokens`/`prompt_cache_miss_tokens`, as DeepSeek reports them),
//! `choice_usage` (OpenAI streams: usage on the finishing choice, as Moonshot sends it).

mod anthropic;
mod azure;
mod bedrock;
#[cfg(test)]
mod bedrock_tests;
mod body;
mod converse;
mod dialect;
#[cfg(test)]
mod dialect_tests;
// Crate-visible so the gateway's decoder is tested against an encoder it does not share.
pub(crate) mod eventstream;
mod faults;
mod gemini;
mod gemini_embed;
mod handler;
mod openai;
#[cfg(test)]
mod server_tests;
mod sse;
#[cfg(test)]
mod tests;
mod text;
mod wire;

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use body::ConnCtl;
use faults::Fault;

/// Recorded requests kept (oldest dropped first) so a long bench cannot grow memory forever.
const MAX_RECORDED: usize = 10_000;

/// A running mock provider; stops when dropped.
pub struct MockServer {
    addr: SocketAddr,
    state: Arc<State>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// One request as the mock received it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// Names lower-cased (as hyper normalises them), in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl RecordedRequest {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON, if it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

impl MockServer {
    /// Binds `listen` synchronously, then serves on a dedicated thread with its own 2-worker
    /// tokio runtime, so it works from sync code, `#[tokio::test]` and inside Pingora.
    pub fn start(listen: &str) -> io::Result<MockServer> {
        Self::spawn(listen, None)
    }

    /// Like [`MockServer::start`], but every request needs the key where its provider wants
    /// it: `Authorization: Bearer <key>`, Anthropic's `x-api-key`, Gemini's `x-goog-api-key`,
    /// Azure's `api-key`, or for Bedrock a SigV4 `authorization` whose access key id is the key.
    pub fn start_with_key(listen: &str, key: &str) -> io::Result<MockServer> {
        Self::spawn(listen, Some(key.to_string()))
    }

    fn spawn(listen: &str, key: Option<String>) -> io::Result<MockServer> {
        let listener = std::net::TcpListener::bind(listen)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State::new(key));
        let (stop_tx, stop_rx) = oneshot::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let served = state.clone();
        // The runtime is built and dropped on its own thread: dropping a runtime inside
        // another runtime's async context would panic.
        let thread = std::thread::Builder::new()
            .name("switchyard-mock".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("switchyard-mock-worker")
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(accept_loop(listener, served, stop_rx, ready_tx));
                // Cancels the connections still open (silent ones included).
                rt.shutdown_timeout(Duration::from_secs(1));
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(io::Error::other("mock server thread exited")),
        }
        Ok(MockServer {
            addr,
            state,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/v1` (a wildcard bind is reached through loopback).
    pub fn base_url(&self) -> String {
        let mut addr = self.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        format!("http://{addr}/v1")
    }

    /// Every request received since the last clear, in order (the most recent 10 000).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state.log).recent.iter().cloned().collect()
    }

    pub fn clear_requests(&self) {
        let mut log = lock(&self.state.log);
        log.recent.clear();
        log.total = 0;
    }

    /// Requests received since the last clear (counts past the recording cap too).
    pub fn request_count(&self) -> usize {
        lock(&self.state.log).total
    }

    /// The fault for requests that choose none; same syntax as `x-mock-fault`. `None` clears.
    pub fn set_default_fault(&self, fault: Option<&str>) {
        *lock(&self.state.default_fault) = fault.map(Fault::parse);
    }

    /// Stops accepting, closes the listener and open connections.
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Blocking entry for `switchyard mock --listen ADDR`: serves until the process is killed.
pub fn run_forever(listen: &str) -> io::Result<()> {
    let server = MockServer::start(listen)?;
    // Whoever started it may not read stdout (or may stop reading): serving goes on.
    let _ = crate::cli_out::print(&format!(
        "switchyard mock provider listening on {}\n",
        server.base_url()
    ));
    loop {
        std::thread::park();
    }
}

/// State shared by the API handle and the connection tasks.
struct State {
    key: Option<String>,
    log: Mutex<RequestLog>,
    default_fault: Mutex<Option<Fault>>,
    next_id: AtomicU64,
}

#[derive(Default)]
struct RequestLog {
    recent: VecDeque<RecordedRequest>,
    total: usize,
}

impl State {
    fn new(key: Option<String>) -> State {
        State {
            key,
            log: Mutex::new(RequestLog::default()),
            default_fault: Mutex::new(None),
            next_id: AtomicU64::new(1),
        }
    }

    fn record(&self, parts: &http::request::Parts, body: Bytes) {
        let request = RecordedRequest {
            method: parts.method.to_string(),
            path: parts.uri.path().to_string(),
            query: parts.uri.query().map(String::from),
            headers: parts
                .headers
                .iter()
                .map(|(n, v)| {
                    (
                        n.to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body,
        };
        let mut log = lock(&self.log);
        if log.recent.len() >= MAX_RECORDED {
            log.recent.pop_front();
        }
        log.recent.push_back(request);
        log.total += 1;
    }

    fn default_fault(&self) -> Option<Fault> {
        lock(&self.default_fault).clone()
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// A poisoned lock only means a panic elsewhere; the data is still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn accept_loop(
    listener: std::net::TcpListener,
    state: Arc<State>,
    mut stop: oneshot::Receiver<()>,
    ready: std::sync::mpsc::Sender<io::Result<()>>,
) {
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    loop {
        tokio::select! {
            // A send or a dropped sender both mean stop.
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(serve_connection(stream, state.clone()));
                }
                Err(e) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    log::warn!("mock: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

async fn serve_connection(stream: TcpStream, state: Arc<State>) {
    let _ = stream.set_nodelay(true);
    // hyper owns the stream; a duplicate descriptor lets an abort set SO_LINGER 0 on the
    // shared socket so that closing it sends an RST.
    let dup = stream.as_fd().try_clone_to_owned().ok();
    let ctl = Arc::new(ConnCtl::default());
    let handler_ctl = ctl.clone();
    let service = service_fn(move |req| handler::handle(state.clone(), handler_ctl.clone(), req));
    let mut conn = Box::pin(
        http1::Builder::new()
            .timer(TokioTimer::new())
            // Idle keep-alive connections close after this, like nginx's default upstream.
            .header_read_timeout(Duration::from_secs(75))
            .serve_connection(TokioIo::new(stream), service),
    );
    tokio::select! {
        done = conn.as_mut() => {
            if let Err(e) = done {
                log::debug!("mock: connection ended with error: {e}");
            }
        }
        _ = ctl.aborted() => {
            if let Some(fd) = dup {
                if let Ok(socket) = TcpStream::from_std(std::net::TcpStream::from(fd)) {
                    let _ = socket.set_zero_linger();
                }
            }
        }
    }
    drop(conn);
}
