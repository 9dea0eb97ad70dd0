//! Everything one request carries through the proxy hooks (Pingora's `CTX`).

use bytes::Bytes;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::frontdoor::{FrontEnd, FrontStream};
use super::response::ResponseMode;
use super::routes::Route;
use crate::api::embeddings::EmbeddingsRequest;
use crate::api::{ApiError, ChatRequest, FrontDoor, TopLevelFields};
use crate::auth::ApiKey;
use crate::catalog::Backend;
use crate::config::Snapshot;
use crate::ledger::SharedRecord;
use crate::limits::{Admission, RateStatus};
use crate::metering::Usage;
use crate::routing::{Candidate, RoutePlan};

/// How one try at one candidate ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// Still running (the last attempt while the response streams).
    InFlight,
    Succeeded,
    /// The provider answered with this HTTP error status.
    Status(u16),
    ConnectFailed,
    TimedOut,
    /// The connection broke or the provider sent something unreadable.
    Failed,
    /// The client went away; says nothing about the provider's health.
    Cancelled,
}

impl AttemptOutcome {
    /// Whether this outcome counts against the provider endpoint's health.
    pub fn is_provider_failure(&self) -> bool {
        match self {
            AttemptOutcome::ConnectFailed | AttemptOutcome::TimedOut | AttemptOutcome::Failed => {
                true
            }
            AttemptOutcome::Status(s) => super::failover::is_failover_status(*s),
            _ => false,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Attempt {
    pub provider: String,
    pub model: String,
    /// The provider's own model id.
    pub upstream_model: String,
    pub outcome: AttemptOutcome,
    pub started: Instant,
    pub latency_ms: Option<u64>,
    /// How long the provider held this attempt (connect to end of response or failure).
    pub elapsed: Option<std::time::Duration>,
}

/// Counts a request in flight for as long as its context lives.
pub struct InFlight;

impl InFlight {
    fn new() -> InFlight {
        crate::metrics::metrics().in_flight.inc();
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        crate::metrics::metrics().in_flight.dec();
    }
}

pub struct RequestCtx {
    _in_flight: InFlight,
    /// The config this request started with; a reload does not change it mid-request.
    pub snapshot: Arc<Snapshot>,
    pub started: Instant,
    pub generation_id: String,
    pub created_unix: u64,
    pub created_unix_ms: u64,
    /// The provider's finish reason, once known.
    pub finish_reason: Option<String>,
    pub route: Route,
    /// Which API the client speaks; `door` is the error shape that goes with it.
    pub front: FrontEnd,
    pub door: FrontDoor,
    pub key: Option<Arc<ApiKey>>,
    /// The request as OpenAI chat (what chat, Messages and Responses requests route as).
    pub chat: Option<ChatRequest>,
    /// The client's own body when it is not OpenAI chat (Anthropic passthrough).
    pub original: Option<TopLevelFields>,
    /// Boxed, as is `front_stream`: both are rare and large, and the context is moved with
    /// every request's future (issue 12: bytes copied per request).
    pub embeddings: Option<Box<EmbeddingsRequest>>,
    /// What the front door could not express in OpenAI chat.
    pub front_dropped: Vec<String>,
    /// This attempt forwards the client's Anthropic request to an Anthropic provider as is.
    pub passthrough: bool,
    /// The last stage of a streamed answer for doors that do not speak OpenAI chunks.
    pub front_stream: Option<Box<FrontStream>>,
    pub plan: Option<RoutePlan>,
    /// The candidate of the attempt in progress.
    pub current: Option<Candidate>,
    /// The backend (base URL and key) of the attempt in progress.
    pub backend: Option<Arc<Backend>>,
    /// Set when a pooled connection turned out dead: try the same candidate once more.
    pub retry_same_candidate: Option<Candidate>,
    /// That retry was made: once a request. A provider resetting every request looks like a
    /// dead pooled connection each time, and would otherwise be tried once per connection
    /// in the pool (the fault matrix saw 8 attempts at one provider).
    pub stale_retry_spent: bool,
    /// How many of `attempts` endpoint health has been told about (failed attempts are,
    /// as the next one begins).
    pub health_noted: usize,
    /// The upstream body for the current candidate (sent on every try at it).
    pub upstream_body: Bytes,
    pub attempts: Vec<Attempt>,
    pub response: ResponseMode,
    pub usage: Option<Usage>,
    pub first_byte_at: Option<Instant>,
    /// The error the client was (or will be) given, for the access log and the record.
    pub error: Option<ApiError>,
    /// The upstream's last error status and body excerpt, for the final 502's metadata.
    pub last_upstream_error: Option<serde_json::Value>,
    /// The sticky-routing session this request belongs to.
    pub session: Option<u64>,
    /// When the current attempt's response ended (for throughput).
    pub finished_at: Option<Instant>,
    /// What the key's limits hold for this request until it settles.
    pub admission: Option<Admission>,
    /// The key's rate-limit standing, for `X-RateLimit-*` headers.
    pub rate_status: Option<RateStatus>,
    /// What the serving dialect could not express of the client's request.
    pub dropped: Vec<String>,
    /// Events a converted stream has produced (the usage estimate's basis).
    pub stream_events: u64,
    /// The stream's last chunk (usage, `[DONE]`) has been produced: the provider said its
    /// answer ended, so the client need not wait for the provider to close.
    pub stream_finished: bool,
    /// The client's `anthropic-beta` header, forwarded to Anthropic upstreams.
    pub anthropic_beta: Option<String>,
    /// A client error found only once a candidate's dialect was known (a request the
    /// conversion refused): sent instead of an upstream error.
    pub client_error: Option<ApiError>,
    /// The status of the answer the client gets (its head may not be written yet).
    pub client_status: u16,
    /// The generation record, once made visible to `/v1/generation` (before the answer's
    /// last bytes go out, so a client that reads the whole answer then asks finds it).
    pub published: Option<SharedRecord>,
    /// `Gateway::answer_complete` has run: the record, the settlement and the metrics.
    pub answered: bool,
    /// The answer went out before the request body was read: what the client still sends
    /// is dropped before the connection closes (`body::discard_unread_body`).
    pub body_unread: bool,
}

impl RequestCtx {
    pub fn new(snapshot: Arc<Snapshot>) -> RequestCtx {
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let created_unix_ms = created.as_millis() as u64;
        let created_unix = created.as_secs();
        RequestCtx {
            _in_flight: InFlight::new(),
            snapshot,
            started: Instant::now(),
            generation_id: new_generation_id(created_unix, created.subsec_micros()),
            created_unix,
            created_unix_ms,
            finish_reason: None,
            route: Route::NotFound,
            front: FrontEnd::Chat,
            door: FrontDoor::OpenAi,
            key: None,
            chat: None,
            original: None,
            embeddings: None,
            front_dropped: Vec::new(),
            passthrough: false,
            front_stream: None,
            plan: None,
            current: None,
            backend: None,
            retry_same_candidate: None,
            stale_retry_spent: false,
            health_noted: 0,
            upstream_body: Bytes::new(),
            attempts: Vec::new(),
            response: ResponseMode::None,
            usage: None,
            first_byte_at: None,
            error: None,
            last_upstream_error: None,
            session: None,
            finished_at: None,
            admission: None,
            rate_status: None,
            dropped: Vec::new(),
            stream_events: 0,
            stream_finished: false,
            anthropic_beta: None,
            client_error: None,
            client_status: 0,
            published: None,
            answered: false,
            body_unread: false,
        }
    }

    pub fn current_attempt(&mut self) -> Option<&mut Attempt> {
        self.attempts.last_mut()
    }

    /// Closes the attempt in progress with its outcome and latency.
    pub fn end_attempt(&mut self, outcome: AttemptOutcome) {
        if let Some(a) = self.attempts.last_mut() {
            if a.outcome == AttemptOutcome::InFlight {
                a.elapsed = Some(a.started.elapsed());
                a.latency_ms = a.elapsed.map(|d| d.as_millis() as u64);
                a.outcome = outcome;
            }
        }
    }

    /// Time spent waiting on providers, summed over attempts.
    pub fn upstream_time(&self) -> std::time::Duration {
        self.attempts
            .iter()
            .filter_map(|a| a.elapsed.or_else(|| Some(a.started.elapsed())))
            .sum()
    }

    pub fn is_stream(&self) -> bool {
        self.chat.as_ref().is_some_and(|c| c.stream)
    }

    /// The model id the client asked for.
    pub fn requested_model(&self) -> &str {
        match (&self.chat, &self.embeddings) {
            (Some(c), _) => &c.model,
            (None, Some(e)) => &e.model,
            _ => "",
        }
    }
}

/// `gen-<unix seconds>-<20 alphanumerics>`, like OpenRouter's generation ids: the first
/// [`MICROS_DIGITS`] are the microsecond within that second, in base 62 with digits in
/// ASCII order, the other 16 are random (95 bits).
///
/// Why ordered (issue 12): the ledger's primary key is this id. With a wholly random
/// suffix, each batch of records landed all over the index's pages for the current second
/// (~100 pages at 10k requests/s, each rewritten into the WAL at every commit); in time
/// order, a batch appends to the index's right edge, as it does to the table.
pub fn new_generation_id(created_unix: u64, micros: u32) -> String {
    use rand::distributions::{Alphanumeric, DistString};
    // Written in place, not through `format!` (a third of this function's cost, issue 12).
    let mut id = String::with_capacity(4 + 20 + 1 + 20);
    id.push_str("gen-");
    id.push_str(itoa::Buffer::new().format(created_unix));
    id.push('-');
    push_base62(&mut id, micros, MICROS_DIGITS);
    Alphanumeric.append_string(&mut rand::thread_rng(), &mut id, 20 - MICROS_DIGITS);
    id
}

/// 62^4 = 14,776,336 covers a second's 1,000,000 microseconds.
const MICROS_DIGITS: usize = 4;

/// `0-9A-Za-z`: ASCII order, so that fixed-width numbers sort as their text does.
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `n` in `width` base-62 digits, zero-padded (`n` must fit).
fn push_base62(out: &mut String, mut n: u32, width: usize) {
    let mut digits = [b'0'; 8];
    for d in digits[..width].iter_mut().rev() {
        *d = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out.extend(digits[..width].iter().map(|&b| b as char));
}

#[cfg(test)]
mod tests {
    use super::new_generation_id;

    #[test]
    fn generation_ids_are_gen_seconds_and_twenty_alphanumerics() {
        let id = new_generation_id(1_795_336_025, 123_456);
        let rest = id.strip_prefix("gen-1795336025-").expect(&id);
        assert_eq!(rest.len(), 20, "{id}");
        assert!(rest.bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
        assert_ne!(new_generation_id(7, 5), new_generation_id(7, 5));
        assert!(
            new_generation_id(0, 0).starts_with("gen-0-0000"),
            "zero-padded"
        );
        assert!(
            new_generation_id(1, 999_999).starts_with("gen-1-4C91"),
            "999999 = 4*62^3 + 12*62^2 + 9*62 + 1"
        );
    }

    #[test]
    fn ids_of_one_second_sort_in_time_order() {
        // The ledger's primary-key index relies on it (see `new_generation_id`).
        let mut previous = new_generation_id(1_795_336_025, 0);
        for micros in (1..1_000_000).step_by(997).chain([999_999]) {
            let id = new_generation_id(1_795_336_025, micros);
            assert!(id > previous, "{id} after {previous}");
            previous = id;
        }
    }
}
