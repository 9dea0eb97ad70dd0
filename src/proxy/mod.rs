//! The `ProxyHttp` implementation: each hook is one step of the request's story (DESIGN §1)
//! and calls into admission, routing, dialects, metering and the front doors for the work.

mod admit;
mod body;
mod body_filter;
mod ctx;
mod failover;
mod frontdoor;
mod head_text;
mod limits;
mod local;
mod record;
mod respond;
mod response;
mod routes;
mod stream;
mod upstream;
mod whole_answer;

pub use ctx::{new_generation_id, Attempt, AttemptOutcome, RequestCtx};
pub use frontdoor::FrontEnd;
pub use routes::Route;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::modules::http::HttpModules;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorType, Result};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::api::{messages, ApiError, FrontDoor};
use crate::catalog::{Backend, Dialect, Provider};
use crate::config::SnapshotStore;
use crate::dialects::{self, gemini};
use crate::keystore::KeyStore;
use crate::ledger::{Ledger, LedgerWriter};
use crate::limits::Limiter;
use crate::net::Resolver;
use crate::pools::ProviderPools;
use crate::routing::{Candidate, HealthBook, RoutePlan, StickyTable, StickyTarget};
use frontdoor::FrontStream;
use record::RecentGenerations;
use response::ResponseMode;
use stream::ChatStream;
use upstream::UpstreamCall;
use whole_answer::{WholeAnswer, WholeAnswerBuilder};

/// What the gateway shares with the rest of the process (reload, admin, metrics).
pub struct GatewayParts {
    pub snapshots: Arc<SnapshotStore>,
    /// Passive health and live statistics; outlives snapshots (reloads keep it).
    pub health: Arc<HealthBook>,
    pub pools: Arc<ProviderPools>,
    pub keys: Arc<KeyStore>,
    pub limits: Arc<Limiter>,
    pub ledger: Ledger,
    pub writer: LedgerWriter,
}

pub struct Gateway {
    snapshots: Arc<SnapshotStore>,
    resolver: Resolver,
    health: Arc<HealthBook>,
    sticky: StickyTable,
    pools: Arc<ProviderPools>,
    keys: Arc<KeyStore>,
    limits: Arc<Limiter>,
    ledger: Ledger,
    writer: LedgerWriter,
    recent: RecentGenerations,
}

impl Gateway {
    pub fn new(parts: GatewayParts) -> Gateway {
        Gateway {
            snapshots: parts.snapshots,
            resolver: Resolver::default(),
            health: parts.health,
            sticky: StickyTable::default(),
            pools: parts.pools,
            keys: parts.keys,
            limits: parts.limits,
            ledger: parts.ledger,
            writer: parts.writer,
            recent: RecentGenerations::default(),
        }
    }

    /// The backend and address for an attempt at `provider`: a healthy one from its pool, or,
    /// before the pool's first discovery (or for a request older than a reload that rebuilt
    /// the pool: its indexes are another list's), a weighted pick resolved here.
    async fn pick_backend(
        &self,
        provider: &Provider,
    ) -> std::result::Result<(Arc<Backend>, SocketAddr), String> {
        let pool = self.pools.get(&provider.id);
        if let Some(pool) = pool.filter(|p| p.is_discovered() && p.serves(provider)) {
            let picked = pool
                .pick()
                .ok_or_else(|| format!("no healthy backend of provider {}", provider.id))?;
            let backend = provider
                .backends
                .get(picked.index)
                .ok_or("backend index out of range")?;
            return Ok((backend.clone(), picked.addr));
        }
        let backend = upstream::choose_backend(provider).clone();
        let addr = self
            .resolver
            .resolve(&backend.url.host, backend.url.port)
            .await
            .map_err(|e| format!("resolving {}: {e}", backend.url.host))?;
        Ok((backend, addr))
    }

    /// The answer is complete and its last bytes are about to go out: what the attempts
    /// showed reaches endpoint health, the record becomes visible, what the request holds of
    /// the key's limits is settled where that needs no wait, and the metrics count it. So a
    /// client that has read the answer finds all of that done: its next request meets the
    /// breaker this one opened, `/v1/generation` and `/v1/key` show it. Once per request;
    /// `logging` calls it for a request that ended without an answer (the client left, the
    /// connection broke).
    fn answer_complete(&self, ctx: &mut RequestCtx, status: u16) {
        if ctx.answered {
            return;
        }
        ctx.answered = true;
        // An attempt still open ends with the answer (`logging` applies the same rule).
        ctx.end_attempt(if ctx.error.is_some() {
            AttemptOutcome::Failed
        } else {
            AttemptOutcome::Succeeded
        });
        self.learn_from(ctx);
        record::publish(&self.recent, ctx, status);
        self.settle_at_once(ctx);
        crate::access_log::record_metrics(ctx, status);
    }

    /// Feeds what each attempt showed into endpoint health, and remembers where a sticky
    /// session was served.
    fn learn_from(&self, ctx: &RequestCtx) {
        for attempt in &ctx.attempts[ctx.health_noted..] {
            let health = self
                .health
                .endpoint(&attempt.provider, &attempt.upstream_model);
            if attempt.outcome == AttemptOutcome::Succeeded {
                let ttft_ms = ctx
                    .first_byte_at
                    .map(|t| t.duration_since(attempt.started).as_millis() as u64);
                // Only a stream shows the time between its first and last token: a
                // non-stream answer arrives whole, its "first" byte microseconds before its
                // end, and would rank its endpoint first in every throughput sort.
                let tokens_per_sec = match (ctx.usage, ctx.first_byte_at, ctx.finished_at) {
                    (Some(u), Some(first), Some(end))
                        if ctx.is_stream() && end > first && u.completion > 0 =>
                    {
                        Some(u.completion as f64 / end.duration_since(first).as_secs_f64())
                    }
                    _ => None,
                };
                health.record_success(ttft_ms, tokens_per_sec);
                if let Some(session) = ctx.session {
                    self.sticky.set(
                        session,
                        StickyTarget {
                            provider: attempt.provider.clone(),
                            upstream_model: attempt.upstream_model.clone(),
                        },
                    );
                }
            } else if attempt.outcome.is_provider_failure() {
                health.record_failure();
            }
        }
    }

    /// Tells endpoint health about the attempts that ended since it was last told, as the
    /// next attempt begins: a failure counts at once, not when the answer that followed it
    /// is complete (a long stream later), so the requests meanwhile meet the breaker it
    /// opens instead of each waiting on the dead endpoint first.
    fn note_ended_attempts(&self, ctx: &mut RequestCtx) {
        for attempt in &ctx.attempts[ctx.health_noted..] {
            if attempt.outcome.is_provider_failure() {
                self.health
                    .endpoint(&attempt.provider, &attempt.upstream_model)
                    .record_failure();
            }
        }
        ctx.health_noted = ctx.attempts.len();
    }
}

/// The upstream body for `candidate`, in its dialect, for the client's front door. An
/// `Err` is the client's error (a request this dialect cannot express).
fn prepare_attempt(
    ctx: &mut RequestCtx,
    candidate: &Candidate,
) -> std::result::Result<(), ApiError> {
    let provider = candidate.provider();
    let upstream_model = &candidate.endpoint().upstream_model;
    ctx.passthrough = false;
    ctx.dropped.clear();
    if let Some(req) = &ctx.embeddings {
        ctx.upstream_body = match provider.dialect {
            Dialect::Gemini => gemini::embeddings::request_body(req, upstream_model)?.1,
            _ => crate::api::embeddings::openai_body(&req.fields, upstream_model),
        };
        return Ok(());
    }
    let Some(chat) = &ctx.chat else { return Ok(()) };
    if provider.dialect == Dialect::Anthropic {
        if let Some(original) = &ctx.original {
            // An Anthropic client of an Anthropic provider: its own request, model rewritten.
            ctx.upstream_body = messages::passthrough_body(original, upstream_model);
            ctx.passthrough = true;
            return Ok(());
        }
    }
    let converted = dialects::chat_request(
        provider.dialect,
        &chat.fields,
        upstream_model,
        chat.stream,
        limits::output_limit(candidate),
    )?;
    ctx.upstream_body = converted.body;
    ctx.dropped = ctx
        .front_dropped
        .iter()
        .cloned()
        .chain(converted.dropped)
        .collect();
    Ok(())
}

#[async_trait]
impl ProxyHttp for Gateway {
    /// Boxed: Pingora moves each request's future (context inside) twice, and a ~1.6 KB
    /// context copied twice cost more than one allocation (issue 12).
    type CTX = Box<RequestCtx>;

    fn init_downstream_modules(&self, modules: &mut HttpModules) {
        // Only ours: Pingora's default is a disabled compression module, which would cost an
        // allocation and a call per task for nothing.
        modules.add_module(Box::new(WholeAnswerBuilder));
    }

    fn new_ctx(&self) -> Box<RequestCtx> {
        Box::new(RequestCtx::new(self.snapshots.current()))
    }

    async fn request_filter(
        &self,
        session: &mut Session,
        ctx: &mut Box<RequestCtx>,
    ) -> Result<bool> {
        let req = session.req_header();
        ctx.route = routes::route(&req.method, req.uri.path());
        ctx.front = match ctx.route {
            Route::ChatCompletions => FrontEnd::Chat,
            Route::Messages => FrontEnd::Messages,
            Route::Responses => FrontEnd::Responses,
            Route::Embeddings => FrontEnd::Embeddings,
            _ => {
                // A wrong method on the Messages door, or a path below it that the gateway
                // does not serve (`/v1/messages/count_tokens`), is still answered in its shape.
                if routes::is_under_messages(req.uri.path()) {
                    ctx.door = FrontDoor::Anthropic;
                }
                return self.answer_locally(session, ctx).await;
            }
        };
        ctx.door = ctx.front.door();
        self.admit(session, ctx).await
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut Box<RequestCtx>,
    ) -> Result<Box<HttpPeer>> {
        self.note_ended_attempts(ctx);
        let candidate = loop {
            let candidate = match ctx.retry_same_candidate.take() {
                Some(c) => c,
                None => ctx
                    .plan
                    .as_mut()
                    .and_then(RoutePlan::next_candidate)
                    .ok_or_else(|| {
                        Error::explain(ErrorType::ConnectNoRoute, "no route candidate left")
                    })?,
            };
            ctx.attempts.push(Attempt {
                provider: candidate.provider().id.clone(),
                model: candidate.model.id.clone(),
                upstream_model: candidate.endpoint().upstream_model.clone(),
                outcome: AttemptOutcome::InFlight,
                started: Instant::now(),
                latency_ms: None,
                elapsed: None,
            });
            match prepare_attempt(ctx, &candidate) {
                Ok(()) => break candidate,
                // This dialect cannot express the request (a system prompt alone, an image
                // URL scheme it does not read): the next candidate's may, so it is tried
                // rather than the client refused for the endpoint the draw happened to pick.
                // The skipped one was never sent anything: it is not an attempt.
                Err(_) if ctx.plan.as_ref().is_some_and(RoutePlan::has_more) => {
                    ctx.attempts.pop();
                }
                Err(e) => {
                    // No candidate left: the request is wrong for this dialect, the client's
                    // error.
                    ctx.end_attempt(AttemptOutcome::Cancelled);
                    ctx.client_error = Some(e);
                    return Error::e_explain(
                        ErrorType::InternalError,
                        "the request cannot be converted",
                    );
                }
            }
        };
        let provider = candidate.provider().clone();
        ctx.current = Some(candidate);
        let (backend, addr) = match self.pick_backend(&provider).await {
            Ok(picked) => picked,
            Err(why) => {
                ctx.end_attempt(AttemptOutcome::ConnectFailed);
                let mut err = Error::explain(ErrorType::ConnectNoRoute, why);
                err.set_retry(ctx.plan.as_ref().is_some_and(RoutePlan::has_more));
                return Err(err);
            }
        };
        ctx.backend = Some(backend.clone());
        Ok(upstream::peer(&provider, &backend, addr))
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut Box<RequestCtx>,
    ) -> Result<()> {
        let (Some(candidate), Some(backend)) = (&ctx.current, &ctx.backend) else {
            return Error::e_explain(
                ErrorType::InternalError,
                "no candidate for the upstream request",
            );
        };
        let call = match &ctx.embeddings {
            Some(req) => UpstreamCall::Embeddings {
                batch: gemini::embeddings::is_batch(req),
            },
            None => UpstreamCall::Chat {
                stream: ctx.is_stream(),
            },
        };
        *upstream_request = upstream::request_head(
            candidate,
            backend,
            ctx.upstream_body.len(),
            call,
            ctx.anthropic_beta.as_deref(),
        )?;
        if candidate.provider().dialect == Dialect::Bedrock {
            upstream::sign_bedrock(
                upstream_request,
                candidate.provider(),
                backend,
                &ctx.upstream_body,
            )?;
        }
        Ok(())
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Box<RequestCtx>,
    ) -> Result<()> {
        // The client's body was read in `request_filter`; each attempt sends its candidate's.
        *body = Some(if end_of_stream {
            ctx.upstream_body.clone()
        } else {
            Bytes::new()
        });
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut Box<RequestCtx>,
    ) -> Result<()> {
        let status = upstream_response.status.as_u16();
        let error_type = (status >= 400 && ctx.dialect() == Dialect::Bedrock)
            .then(|| failover::aws_error_type(upstream_response))
            .flatten();
        let mapped = match status {
            400.. => crate::dialects::error_status_at_head(ctx.dialect(), status, error_type),
            _ => status,
        };
        if (failover::is_failover_status(status) || failover::is_failover_status(mapped))
            && ctx.plan.as_ref().is_some_and(RoutePlan::has_more)
        {
            ctx.end_attempt(AttemptOutcome::Status(status));
            let mut e = Error::explain(
                ErrorType::HTTPStatus(status),
                "failing over to the next candidate",
            );
            e.set_retry(true);
            return Err(e);
        }
        ctx.response = if status >= 400 {
            ctx.end_attempt(AttemptOutcome::Status(status));
            ResponseMode::UpstreamError {
                status,
                error_type: error_type.map(Box::from),
                body: Default::default(),
                retry_after: failover::retry_after_secs(upstream_response),
            }
        } else if failover::is_event_stream(upstream_response) && ctx.passthrough {
            ResponseMode::Passthrough(Box::new(messages::AnthropicStreamTap::stamped(
                ctx.stream_stamp(),
            )))
        } else if failover::is_event_stream(upstream_response) {
            let (model, _) = ctx.served();
            let upstream_model = ctx
                .attempts
                .last()
                .map(|a| a.upstream_model.clone())
                .unwrap_or_default();
            if ctx.needs_front_stream() {
                ctx.front_stream =
                    FrontStream::new(ctx.front, &ctx.generation_id, &model).map(Box::new);
            }
            ResponseMode::Stream(Box::new(ChatStream::new(
                ctx.dialect(),
                ctx.created_unix,
                &ctx.generation_id,
                &upstream_model,
            )))
        } else {
            ResponseMode::Json(Default::default())
        };
        Ok(())
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut Box<RequestCtx>,
    ) -> Result<()> {
        failover::client_response_head(upstream_response, ctx)?;
        ctx.client_status = upstream_response.status.as_u16();
        Ok(())
    }

    fn response_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Box<RequestCtx>,
    ) -> Result<Option<Duration>> {
        let whole = ctx.response.is_buffered();
        let out = ctx
            .filter_body(body.take(), end_of_stream)
            .map_err(|why| Error::explain(ErrorType::InvalidHTTPHeader, why))?;
        if let (true, true, Some(answer)) = (whole, end_of_stream, &out) {
            // Nothing of a buffered answer went out before its end: this is all of it.
            WholeAnswer::set_length(session, answer.len());
        }
        if end_of_stream || ctx.stream_finished {
            // The answer is complete; its last bytes are about to go out.
            self.answer_complete(ctx, ctx.client_status);
        }
        // An empty chunk would end a chunked response early: send nothing instead.
        *body = out.filter(|b| !b.is_empty() || end_of_stream);
        Ok(None)
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut Box<RequestCtx>,
        mut e: Box<Error>,
    ) -> Box<Error> {
        let outcome = if matches!(e.etype(), ErrorType::ConnectTimedout) {
            AttemptOutcome::TimedOut
        } else {
            AttemptOutcome::ConnectFailed
        };
        ctx.end_attempt(outcome);
        e.set_retry(ctx.plan.as_ref().is_some_and(RoutePlan::has_more));
        e
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut Box<RequestCtx>,
        client_reused: bool,
    ) -> Box<Error> {
        failover::decide_retry(peer, session, e, ctx, client_reused)
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut Box<RequestCtx>,
    ) -> FailToProxy {
        failover::fail_to_proxy(session, e, ctx, self).await
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut Box<RequestCtx>) {
        let outcome = if e.is_some() || ctx.error.is_some() {
            AttemptOutcome::Failed
        } else {
            AttemptOutcome::Succeeded
        };
        ctx.end_attempt(outcome);
        let status = session
            .response_written()
            .map_or(ctx.client_status, |r| r.status.as_u16());
        self.answer_complete(ctx, status);
        // What needed a wait (limits held in Redis).
        self.settle(ctx).await;
        if let Some(record) = ctx.published.take() {
            self.writer.record(record);
        }
        crate::access_log::log_request(session, ctx);
        // After the log line, so that its duration is the answer's, not the discard's.
        if ctx.body_unread && e.is_none() {
            body::discard_unread_body(session).await;
        }
    }
}
