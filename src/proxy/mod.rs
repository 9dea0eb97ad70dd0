//! The `ProxyHttp` implementation: each hook is one step of the request's story (DESIGN §1)
//! and calls into routing, dialects and metering for the work.

mod body;
mod ctx;
mod failover;
mod limits;
mod record;
mod respond;
mod response;
mod routes;
mod stream;
mod upstream;

pub use ctx::{Attempt, AttemptOutcome, RequestCtx};
pub use routes::Route;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorType, Result};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::api::{models::models_listing, ApiError, ChatRequest};
use crate::auth::{bearer_secret, ApiKey};
use crate::catalog::{Backend, Provider};
use crate::config::SnapshotStore;
use crate::dialects;
use crate::keystore::KeyStore;
use crate::ledger::{Ledger, LedgerWriter};
use crate::limits::{now_ms, Limiter, Refusal};
use crate::net::Resolver;
use crate::pools::ProviderPools;
use crate::routing::{
    session_hash, HealthBook, PlanError, RoutePlan, RouteRequest, StickyTable, StickyTarget,
};
use record::RecentGenerations;
use respond::{send_error, send_json};
use response::{buffer_bounded, ResponseMode, MAX_JSON_RESPONSE};
use std::net::SocketAddr;
use stream::ChatStream;

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

    /// `GET /v1/generation?id=`: the caller's own generation record (another key's is as
    /// unknown as a missing one).
    async fn generation(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let key = match self.authenticate(session, ctx) {
            Ok(k) => k,
            Err(e) => return send_error(session, ctx, e).await,
        };
        ctx.key = Some(key.clone());
        let id = session
            .req_header()
            .uri
            .query()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("id=")))
            .map(str::to_string);
        let Some(id) = id.filter(|i| !i.is_empty()) else {
            let e = ApiError::bad_param("id", "`id` is required: /v1/generation?id=gen-...");
            return send_error(session, ctx, e).await;
        };
        let record = match self.recent.get(&id) {
            Some(r) => Some((*r).clone()),
            None => match self.ledger.get_generation(&id).await {
                Ok(r) => r,
                Err(e) => {
                    log::error!("reading generation {id}: {e}");
                    let e = ApiError::unavailable("the generation ledger is unavailable right now");
                    return send_error(session, ctx, e).await;
                }
            },
        };
        match record.filter(|r| r.key_hash == key.hash) {
            Some(r) => {
                let body = json!({ "data": r.to_openrouter_json() });
                send_json(session, 200, Bytes::from(body.to_string()), &[]).await?;
                Ok(true)
            }
            None => {
                let e = ApiError::not_found(format!("no generation `{id}` for this key"));
                send_error(session, ctx, e).await
            }
        }
    }

    /// The backend and address for an attempt at `provider`: a healthy one from its pool, or,
    /// before the pool's first discovery, a weighted pick resolved here.
    async fn pick_backend(
        &self,
        provider: &Provider,
    ) -> std::result::Result<(Backend, SocketAddr), String> {
        if let Some(pool) = self.pools.get(&provider.id).filter(|p| p.is_discovered()) {
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

    /// Feeds what each attempt showed into endpoint health, and remembers where a sticky
    /// session was served.
    fn learn_from(&self, ctx: &RequestCtx) {
        for attempt in &ctx.attempts {
            let health = self
                .health
                .endpoint(&attempt.provider, &attempt.upstream_model);
            if attempt.outcome == AttemptOutcome::Succeeded {
                let ttft_ms = ctx
                    .first_byte_at
                    .map(|t| t.duration_since(attempt.started).as_millis() as u64);
                let tokens_per_sec = match (ctx.usage, ctx.first_byte_at, ctx.finished_at) {
                    (Some(u), Some(first), Some(end)) if end > first && u.completion > 0 => {
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

    /// The key of `Authorization: Bearer`, or the error to send.
    fn authenticate(
        &self,
        session: &Session,
        ctx: &RequestCtx,
    ) -> std::result::Result<Arc<ApiKey>, ApiError> {
        let secret = session
            .req_header()
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| bearer_secret(v.as_bytes()))
            .ok_or_else(|| {
                ApiError::unauthorized("missing API key: send `Authorization: Bearer <key>`")
            })?;
        match self.keys.find(&ctx.snapshot, secret) {
            Some(k) if !k.disabled => Ok(k),
            Some(_) => Err(ApiError::unauthorized("this API key is disabled")),
            None => Err(ApiError::unauthorized("invalid API key")),
        }
    }

    /// Authenticates, reads and parses the body, and plans the route. `Ok(true)` means an
    /// error was already sent.
    async fn admit_chat(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let key = match self.authenticate(session, ctx) {
            Ok(k) => k,
            Err(e) => return self.refuse_unread(session, ctx, e).await,
        };
        ctx.key = Some(key.clone());
        let body =
            match body::read_body_for_replay(session, ctx.snapshot.server.max_body_bytes).await {
                Ok(b) => b,
                Err(e) => return self.refuse_unread(session, ctx, e).await,
            };
        let chat = match ChatRequest::parse(body) {
            Ok(c) => c,
            Err(e) => return send_error(session, ctx, e).await,
        };
        ctx.anthropic_beta = session
            .req_header()
            .headers
            .get("anthropic-beta")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let header_session = session
            .req_header()
            .headers
            .get("x-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let session_key = sticky_session(&key, &chat, header_session.as_deref());
        let sticky = self.sticky.get(session_key);
        ctx.session = Some(session_key);
        let plan = RoutePlan::build(
            &ctx.snapshot.catalog,
            &RouteRequest {
                model: &chat.model,
                fallbacks: &chat.fallbacks,
                prefs: &chat.prefs,
                key: &key,
                parameters: &chat.parameters,
                health: &self.health,
                sticky: sticky.as_ref(),
            },
        );
        let plan = match plan {
            Ok(plan) => plan,
            Err(e) => {
                ctx.chat = Some(chat);
                return send_error(session, ctx, plan_error(e)).await;
            }
        };
        let prompt_estimate = limits::prompt_estimate(&chat);
        let worst_case = limits::worst_case_cost(&chat, &plan, ctx.snapshot.billing.fee_percent);
        ctx.chat = Some(chat);
        ctx.plan = Some(plan);
        match self.limits.admit(&key, prompt_estimate, worst_case, now_ms()).await {
            Ok(admission) => {
                ctx.rate_status = admission.rate_status;
                ctx.admission = Some(admission);
            }
            Err(refusal) => {
                let error = refusal_error(refusal, ctx);
                return send_error(session, ctx, error).await;
            }
        }
        Ok(false)
    }

    /// Releases what the request held and charges what it used: every request passes here
    /// exactly once (from `logging`), whatever path it took.
    async fn settle(&self, ctx: &mut RequestCtx) {
        let (Some(key), Some(admission)) = (ctx.key.clone(), ctx.admission.take()) else {
            return;
        };
        let usage = ctx.usage;
        let cost = usage.map(|u| ctx.cost_of(&u)).unwrap_or_default();
        let tokens = usage.map_or(0, |u| u.total());
        self.limits.settle(&key, admission, cost, tokens, now_ms()).await;
    }

    /// Sends an error before the body was read: the connection cannot be reused.
    async fn refuse_unread(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        error: ApiError,
    ) -> Result<bool> {
        session.as_mut().set_keepalive(None);
        send_error(session, ctx, error).await
    }
}

/// The client's answer to a refused admission: 429 with the rate standing, 402, or 503.
fn refusal_error(refusal: Refusal, ctx: &mut RequestCtx) -> ApiError {
    match refusal {
        Refusal::Rate(status) => {
            ctx.rate_status = Some(status);
            ApiError::rate_limited(
                format!("rate limit exceeded: {} {} per minute for this key", status.limit, status.kind),
                status.retry_after.unwrap_or(1),
            )
        }
        Refusal::Budget(exhausted) => ApiError::payment_required(format!(
            "this key's budget of ${:.6} is used up for the current period (spent ${:.6}, ${:.6} held by requests in flight)",
            exhausted.limit.usd(),
            exhausted.spent.usd(),
            exhausted.reserved.usd()
        )),
        Refusal::Unavailable(why) => ApiError::unavailable(format!("limits are unavailable, refusing by policy: {why}")),
    }
}

fn plan_error(e: PlanError) -> ApiError {
    match e {
        PlanError::UnknownModel(m) => {
            let mut e =
                ApiError::model_not_found(format!("model `{m}` is not in this gateway's catalog"));
            e.param = Some("model".into());
            e
        }
        PlanError::ModelNotAllowed(m) => {
            ApiError::forbidden(format!("this key may not use model `{m}`"))
        }
        PlanError::NoEligibleEndpoint { model, excluded } => ApiError::model_not_found(format!(
            "no endpoint of `{model}` is eligible: {}",
            excluded.join("; ")
        ))
        .with_metadata(json!({ "excluded": excluded })),
        PlanError::AllUnhealthy { model, endpoints } => ApiError::unavailable(format!(
            "every eligible endpoint of `{model}` is unhealthy right now: {}",
            endpoints.join(", ")
        ))
        .with_metadata(json!({ "unhealthy": endpoints })),
    }
}

/// The sticky-routing key: the client's session id (`session_id`, `x-session-id` or
/// `prompt_cache_key`), else the conversation's opening (first system and first user
/// message) — scoped to the key and the model either way.
fn sticky_session(key: &ApiKey, chat: &ChatRequest, header: Option<&str>) -> u64 {
    let model = chat.model.as_bytes();
    match chat.session_id.as_deref().or(header) {
        Some(id) => session_hash(&[&key.hash, model, id.as_bytes()]),
        None => {
            let (system, user) = chat.conversation_opening();
            session_hash(&[
                &key.hash,
                model,
                system.unwrap_or_default(),
                user.unwrap_or_default(),
            ])
        }
    }
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::new(self.snapshots.current())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let req = session.req_header();
        ctx.route = routes::route(&req.method, req.uri.path());
        match ctx.route {
            Route::ChatCompletions => self.admit_chat(session, ctx).await,
            Route::Models => {
                send_json(session, 200, models_listing(&ctx.snapshot.catalog), &[]).await?;
                Ok(true)
            }
            Route::ModelEndpoints => {
                let id =
                    routes::model_endpoints_id(routes::api_path(session.req_header().uri.path()))
                        .unwrap_or_default();
                match ctx.snapshot.catalog.model(id) {
                    Some(model) => {
                        let body = crate::api::models::model_endpoints(model, &self.health);
                        send_json(session, 200, Bytes::from(body.to_string()), &[]).await?;
                        Ok(true)
                    }
                    None => {
                        let e = ApiError::model_not_found(format!(
                            "model `{id}` is not in this gateway's catalog"
                        ));
                        send_error(session, ctx, e).await
                    }
                }
            }
            Route::Generation => self.generation(session, ctx).await,
            Route::Key => match self.authenticate(session, ctx) {
                Ok(key) => {
                    let report = self.limits.report(&key.hash, ctx.created_unix_ms).await;
                    let body = crate::api::key::key_info(&key, &report, ctx.created_unix);
                    ctx.key = Some(key);
                    send_json(session, 200, Bytes::from(body.to_string()), &[]).await?;
                    Ok(true)
                }
                Err(e) => send_error(session, ctx, e).await,
            },
            Route::Healthz | Route::Readyz => {
                send_json(session, 200, Bytes::from_static(br#"{"status":"ok"}"#), &[]).await?;
                Ok(true)
            }
            Route::MethodNotAllowed(allowed) => {
                let e = ApiError::method_not_allowed(format!(
                    "use {allowed} for {}",
                    session.req_header().uri.path()
                ));
                self.refuse_unread(session, ctx, e).await
            }
            Route::NotFound => {
                let req = session.req_header();
                let e = ApiError::not_found(format!(
                    "no such endpoint: {} {}",
                    req.method,
                    req.uri.path()
                ));
                self.refuse_unread(session, ctx, e).await
            }
        }
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
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
        let provider = candidate.provider().clone();
        ctx.attempts.push(Attempt {
            provider: provider.id.clone(),
            model: candidate.model.id.clone(),
            upstream_model: candidate.endpoint().upstream_model.clone(),
            outcome: AttemptOutcome::InFlight,
            started: Instant::now(),
            latency_ms: None,
            elapsed: None,
        });
        if let Some(chat) = &ctx.chat {
            let max_tokens = candidate
                .model
                .max_output
                .unwrap_or(limits::DEFAULT_MAX_OUTPUT);
            let upstream_model = &candidate.endpoint().upstream_model;
            match dialects::chat_request(
                provider.dialect,
                &chat.fields,
                upstream_model,
                chat.stream,
                max_tokens,
            ) {
                Ok(converted) => {
                    ctx.upstream_body = converted.body;
                    ctx.dropped = converted.dropped;
                }
                Err(e) => {
                    // The request itself is wrong for this dialect: the client's error, no retry.
                    ctx.end_attempt(AttemptOutcome::Cancelled);
                    ctx.client_error = Some(e);
                    return Error::e_explain(
                        ErrorType::InternalError,
                        "the request cannot be converted",
                    );
                }
            }
        }
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
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let (Some(candidate), Some(backend)) = (&ctx.current, &ctx.backend) else {
            return Error::e_explain(
                ErrorType::InternalError,
                "no candidate for the upstream request",
            );
        };
        *upstream_request = upstream::chat_request_head(
            candidate,
            backend,
            ctx.upstream_body.len(),
            ctx.is_stream(),
            ctx.anthropic_beta.as_deref(),
        )?;
        Ok(())
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
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
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let status = upstream_response.status.as_u16();
        if failover::is_failover_status(status)
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
                body: Default::default(),
                retry_after: failover::retry_after_secs(upstream_response),
            }
        } else if failover::is_event_stream(upstream_response) {
            ResponseMode::Stream(Box::new(ChatStream::new(ctx.dialect(), ctx.created_unix)))
        } else {
            ResponseMode::Json(Default::default())
        };
        Ok(())
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        failover::client_response_head(upstream_response, ctx)
    }

    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<Duration>> {
        if ctx.first_byte_at.is_none() && body.as_ref().is_some_and(|b| !b.is_empty()) {
            ctx.first_byte_at = Some(Instant::now());
        }
        let mut mode = std::mem::replace(&mut ctx.response, ResponseMode::None);
        let out = match &mut mode {
            ResponseMode::None => body.take(),
            ResponseMode::Stream(stream) => {
                let mut out = body.take().map(|b| stream.on_chunk(b)).unwrap_or_default();
                if !matches!(**stream, ChatStream::Passthrough(_)) {
                    ctx.stream_events += stream::count_events(&out);
                }
                if end_of_stream {
                    let mut tail = bytes::BytesMut::from(&out[..]);
                    tail.extend_from_slice(&stream.finish());
                    if let Some(raw) = stream.error() {
                        // The provider reported an error inside its 200 stream.
                        let message = raw
                            .pointer("/message")
                            .or_else(|| raw.pointer("/error/message"))
                            .and_then(|m| m.as_str())
                            .unwrap_or("the provider reported an error mid-stream")
                            .to_string();
                        let error =
                            ApiError::bad_gateway(message).with_metadata(json!({ "raw": raw }));
                        tail.extend_from_slice(&ctx.stream_error_chunk(&error));
                        ctx.error = Some(error);
                    }
                    tail.extend_from_slice(&ctx.stream_tail(stream));
                    out = tail.freeze();
                    ctx.finished_at = Some(Instant::now());
                    ctx.end_attempt(AttemptOutcome::Succeeded);
                }
                Some(out)
            }
            ResponseMode::Json(buf) => {
                if let Some(b) = body.take() {
                    if !buffer_bounded(buf, &b, MAX_JSON_RESPONSE) {
                        return Error::e_explain(
                            ErrorType::InvalidHTTPHeader,
                            "upstream response too large",
                        );
                    }
                }
                end_of_stream.then(|| {
                    ctx.finished_at = Some(Instant::now());
                    ctx.end_attempt(AttemptOutcome::Succeeded);
                    ctx.finish_json(buf)
                })
            }
            ResponseMode::UpstreamError {
                status, body: buf, ..
            } => {
                if let Some(b) = body.take() {
                    buffer_bounded(buf, &b, response::error_body_limit());
                }
                end_of_stream.then(|| {
                    let error = ctx.upstream_error(*status, buf);
                    let out = error.body(ctx.door);
                    ctx.error = Some(error);
                    out
                })
            }
        };
        ctx.response = mode;
        // An empty chunk would end a chunked response early: send nothing instead.
        *body = out.filter(|b| !b.is_empty() || end_of_stream);
        Ok(None)
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
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
        ctx: &mut RequestCtx,
        client_reused: bool,
    ) -> Box<Error> {
        failover::decide_retry(peer, session, e, ctx, client_reused)
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        failover::fail_to_proxy(session, e, ctx).await
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        let outcome = if e.is_some() || ctx.error.is_some() {
            AttemptOutcome::Failed
        } else {
            AttemptOutcome::Succeeded
        };
        ctx.end_attempt(outcome);
        self.learn_from(ctx);
        self.settle(ctx).await;
        crate::access_log::record_metrics(session, ctx);
        if ctx.route == Route::ChatCompletions {
            if let Some(record) = record::generation_record(session, ctx) {
                self.recent.insert(record.clone());
                self.writer.record(record);
            }
        }
        crate::access_log::log_request(session, ctx);
    }
}
