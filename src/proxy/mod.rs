//! The `ProxyHttp` implementation: each hook is one step of the request's story (DESIGN §1)
//! and calls into routing, dialects and metering for the work.

mod body;
mod ctx;
mod failover;
mod respond;
mod response;
mod routes;
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
use crate::auth::bearer_secret;
use crate::config::SnapshotStore;
use crate::dialects;
use crate::metering::OpenAiStreamTap;
use crate::net::Resolver;
use crate::routing::{PlanError, RoutePlan, RouteRequest};
use respond::{send_error, send_json};
use response::{buffer_bounded, ResponseMode, MAX_JSON_RESPONSE};

pub struct Gateway {
    snapshots: Arc<SnapshotStore>,
    resolver: Resolver,
}

impl Gateway {
    pub fn new(snapshots: Arc<SnapshotStore>) -> Gateway {
        Gateway {
            snapshots,
            resolver: Resolver::default(),
        }
    }

    /// Authenticates, reads and parses the body, and plans the route. `Ok(true)` means an
    /// error was already sent.
    async fn admit_chat(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let secret = session
            .req_header()
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| bearer_secret(v.as_bytes()));
        let Some(secret) = secret else {
            return self.refuse_unread(session, ctx, ApiError::unauthorized(
                "missing API key: send `Authorization: Bearer <key>`",
            )).await;
        };
        let key = match ctx.snapshot.keys.find(secret) {
            Some(k) if !k.disabled => k.clone(),
            Some(_) => return self.refuse_unread(session, ctx, ApiError::unauthorized("this API key is disabled")).await,
            None => return self.refuse_unread(session, ctx, ApiError::unauthorized("invalid API key")).await,
        };
        ctx.key = Some(key.clone());
        let body = match body::read_body_for_replay(session, ctx.snapshot.server.max_body_bytes).await {
            Ok(b) => b,
            Err(e) => return self.refuse_unread(session, ctx, e).await,
        };
        let chat = match ChatRequest::parse(body) {
            Ok(c) => c,
            Err(e) => return send_error(session, ctx, e).await,
        };
        let plan = RoutePlan::build(
            &ctx.snapshot.catalog,
            &RouteRequest {
                model: &chat.model,
                fallbacks: &chat.fallbacks,
                prefs: &chat.prefs,
                key: &key,
                parameters: &chat.parameters,
            },
        );
        ctx.chat = Some(chat);
        match plan {
            Ok(plan) => {
                ctx.plan = Some(plan);
                Ok(false)
            }
            Err(e) => send_error(session, ctx, plan_error(e)).await,
        }
    }

    /// Sends an error before the body was read: the connection cannot be reused.
    async fn refuse_unread(&self, session: &mut Session, ctx: &mut RequestCtx, error: ApiError) -> Result<bool> {
        session.as_mut().set_keepalive(None);
        send_error(session, ctx, error).await
    }
}

fn plan_error(e: PlanError) -> ApiError {
    match e {
        PlanError::UnknownModel(m) => {
            let mut e = ApiError::model_not_found(format!("model `{m}` is not in this gateway's catalog"));
            e.param = Some("model".into());
            e
        }
        PlanError::ModelNotAllowed(m) => ApiError::forbidden(format!("this key may not use model `{m}`")),
        PlanError::NoEligibleEndpoint { model, excluded } => ApiError::model_not_found(format!(
            "no endpoint of `{model}` is eligible: {}",
            excluded.join("; ")
        ))
        .with_metadata(json!({ "excluded": excluded })),
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
            Route::Healthz | Route::Readyz => {
                send_json(session, 200, Bytes::from_static(br#"{"status":"ok"}"#), &[]).await?;
                Ok(true)
            }
            Route::MethodNotAllowed(allowed) => {
                let e = ApiError::method_not_allowed(format!("use {allowed} for {}", session.req_header().uri.path()));
                self.refuse_unread(session, ctx, e).await
            }
            Route::NotFound => {
                let req = session.req_header();
                let e = ApiError::not_found(format!("no such endpoint: {} {}", req.method, req.uri.path()));
                self.refuse_unread(session, ctx, e).await
            }
        }
    }

    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut RequestCtx) -> Result<Box<HttpPeer>> {
        let candidate = match ctx.retry_same_candidate.take() {
            Some(c) => c,
            None => ctx
                .plan
                .as_mut()
                .and_then(RoutePlan::next_candidate)
                .ok_or_else(|| Error::explain(ErrorType::ConnectNoRoute, "no route candidate left"))?,
        };
        let provider = candidate.provider().clone();
        let backend = upstream::choose_backend(&provider).clone();
        ctx.attempts.push(Attempt {
            provider: provider.id.clone(),
            model: candidate.model.id.clone(),
            outcome: AttemptOutcome::InFlight,
            started: Instant::now(),
            latency_ms: None,
        });
        if let Some(chat) = &ctx.chat {
            ctx.upstream_body = dialects::openai::chat_request_body(
                &chat.fields,
                &candidate.endpoint().upstream_model,
                chat.stream,
            );
        }
        ctx.current = Some(candidate);
        ctx.backend = Some(backend.clone());
        let addr = match self.resolver.resolve(&backend.url.host, backend.url.port).await {
            Ok(a) => a,
            Err(e) => {
                ctx.end_attempt(AttemptOutcome::ConnectFailed);
                let mut err = Error::explain(ErrorType::ConnectNoRoute, format!("resolving {}: {e}", backend.url.host));
                err.set_retry(ctx.plan.as_ref().is_some_and(RoutePlan::has_more));
                return Err(err);
            }
        };
        Ok(upstream::peer(&provider, &backend, addr))
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let (Some(candidate), Some(backend)) = (&ctx.current, &ctx.backend) else {
            return Error::e_explain(ErrorType::InternalError, "no candidate for the upstream request");
        };
        *upstream_request = upstream::chat_request_head(candidate, backend, ctx.upstream_body.len(), ctx.is_stream())?;
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
        *body = Some(if end_of_stream { ctx.upstream_body.clone() } else { Bytes::new() });
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let status = upstream_response.status.as_u16();
        if failover::is_failover_status(status) && ctx.plan.as_ref().is_some_and(RoutePlan::has_more) {
            ctx.end_attempt(AttemptOutcome::Status(status));
            let mut e = Error::explain(ErrorType::HTTPStatus(status), "failing over to the next candidate");
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
            ResponseMode::Stream(Box::new(OpenAiStreamTap::new()))
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
            ResponseMode::Stream(tap) => {
                let mut out = body.take().map(|b| tap.on_chunk(b)).unwrap_or_default();
                if end_of_stream {
                    let mut tail = bytes::BytesMut::from(&out[..]);
                    tail.extend_from_slice(&tap.finish());
                    tail.extend_from_slice(&ctx.stream_tail(tap));
                    out = tail.freeze();
                    ctx.end_attempt(AttemptOutcome::Succeeded);
                }
                Some(out)
            }
            ResponseMode::Json(buf) => {
                if let Some(b) = body.take() {
                    if !buffer_bounded(buf, &b, MAX_JSON_RESPONSE) {
                        return Error::e_explain(ErrorType::InvalidHTTPHeader, "upstream response too large");
                    }
                }
                end_of_stream.then(|| {
                    ctx.end_attempt(AttemptOutcome::Succeeded);
                    ctx.finish_json(buf)
                })
            }
            ResponseMode::UpstreamError { status, body: buf, .. } => {
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

    fn fail_to_connect(&self, _session: &mut Session, _peer: &HttpPeer, ctx: &mut RequestCtx, mut e: Box<Error>) -> Box<Error> {
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

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut RequestCtx) -> FailToProxy {
        failover::fail_to_proxy(session, e, ctx).await
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        let outcome = if e.is_some() || ctx.error.is_some() { AttemptOutcome::Failed } else { AttemptOutcome::Succeeded };
        ctx.end_attempt(outcome);
        crate::access_log::log_request(session, ctx);
    }
}
