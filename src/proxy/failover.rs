//! When to try the next candidate, and what the client is told when none is left.
//!
//! The invariant: a request fails over only while nothing has been sent to the client. Once
//! the response head is out, an upstream failure ends the stream with an error chunk (or the
//! connection, for a non-stream body) and is never retried; the record says it failed.

use bytes::{BufMut, BytesMut};
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, TRANSFER_ENCODING};
use http::{HeaderName, HeaderValue};
use pingora::http::ResponseHeader;
use pingora::proxy::{FailToProxy, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorSource, ErrorType, OrErr, Result};
use serde_json::json;

use super::ctx::{AttemptOutcome, RequestCtx};
use super::head_text::HeadText;
use super::response::ResponseMode;
use super::Gateway;
use crate::api::ApiError;
use crate::routing::RoutePlan;

/// Upstream statuses that mean "this provider, not this request": try the next one.
pub fn is_failover_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500..=599)
}

/// SSE, or Bedrock's binary event stream.
pub fn is_event_stream(resp: &ResponseHeader) -> bool {
    resp.headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim_start().starts_with("text/event-stream")
                || crate::dialects::bedrock::is_event_stream(ct)
        })
}

/// The provider's id for this request (`x-request-id`, or Bedrock's `x-amzn-requestid`), as
/// the provider sent it. Looked up by `HeaderName`s: a `&str` is parsed on every lookup.
pub fn upstream_request_id_value(resp: &ResponseHeader) -> Option<&HeaderValue> {
    const NAMES: [HeaderName; 3] = [
        HeaderName::from_static("x-request-id"),
        HeaderName::from_static("x-amzn-requestid"),
        HeaderName::from_static("request-id"),
    ];
    NAMES.iter().find_map(|name| resp.headers.get(name))
}

/// `Retry-After` in seconds, when the upstream gave one.
pub fn retry_after_secs(resp: &ResponseHeader) -> Option<u64> {
    resp.headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// Bedrock's error type (`x-amzn-errortype: ServiceQuotaExceededException:http://...`).
pub fn aws_error_type(resp: &ResponseHeader) -> Option<&str> {
    resp.headers
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
}

/// Headers the client may see from the provider's response; everything else (cookies,
/// provider account and rate-limit headers, framing) is dropped.
const PASSED_HEADERS: [HeaderName; 2] = [CONTENT_TYPE, CACHE_CONTROL];

pub(super) const X_GENERATION_ID: HeaderName = HeaderName::from_static("x-generation-id");
const X_PROVIDER: HeaderName = HeaderName::from_static("x-switchyard-provider");
const X_MODEL: HeaderName = HeaderName::from_static("x-switchyard-model");
const X_ATTEMPTS: HeaderName = HeaderName::from_static("x-switchyard-attempts");
const X_ATTEMPT_LOG: HeaderName = HeaderName::from_static("x-switchyard-attempt-log");
const X_UPSTREAM_REQUEST_ID: HeaderName = HeaderName::from_static("x-upstream-request-id");
const X_DROPPED: HeaderName = HeaderName::from_static("x-switchyard-dropped");

/// The response head the client gets: the upstream's status and content type, the gateway's
/// framing (the body is always rewritten, so chunked), and the generation id.
pub fn client_response_head(resp: &mut ResponseHeader, ctx: &RequestCtx) -> Result<()> {
    // A fresh head, built as a plain header map with names known in advance: the
    // provider's headers are mostly dropped, and Pingora's `insert_header` parses every name
    // it is given (issue 12). Without a case map, as `ResponseHeader::build_no_case`.
    let (mut parts, ()) = http::Response::new(()).into_parts();
    parts.status = resp.status;
    parts.version = resp.version;
    let head = &mut parts.headers;
    head.reserve(16);
    for name in PASSED_HEADERS {
        if let Some(value) = resp.headers.get(&name) {
            head.insert(name, value.clone());
        }
    }
    if matches!(ctx.response, ResponseMode::Stream(_)) {
        // Converted streams (Bedrock's binary framing included) reach the client as SSE.
        head.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    }
    // The gateway's own values: one buffer, sliced.
    let mut text = HeadText::with_capacity(160 + 48 * ctx.attempts.len());
    let generation_id = text.text(&ctx.generation_id);
    let served = ctx
        .current
        .as_ref()
        .map(|c| (text.text(&c.provider().id), text.text(&c.model.id)));
    let attempts = text.number(ctx.attempts.len() as u64);
    let attempt_log = text.write(|buf| write_attempt_log(buf, ctx, resp.status.as_u16()));
    let rate = ctx.rate_status.as_ref().map(|rate| {
        super::respond::rate_limit_headers(rate).map(|(name, n)| (name, text.number(n)))
    });
    let text = text.freeze();
    head.insert(X_GENERATION_ID, text.value(generation_id)?);
    if let Some((provider, model)) = served {
        head.insert(X_PROVIDER, text.value(provider)?);
        head.insert(X_MODEL, text.value(model)?);
    }
    head.insert(X_ATTEMPTS, text.value(attempts)?);
    head.insert(X_ATTEMPT_LOG, text.value(attempt_log)?);
    for (name, mark) in rate.into_iter().flatten() {
        head.insert(name, text.value(mark)?);
    }
    if let Some(id) = upstream_request_id_value(resp) {
        head.insert(X_UPSTREAM_REQUEST_ID, id.clone());
    }
    if !ctx.dropped.is_empty() {
        // DESIGN §3: what the provider's dialect could not express is said, never failed on.
        if let Ok(value) = HeaderValue::from_str(&ctx.dropped.join(", ")) {
            head.insert(X_DROPPED, value);
        }
    }
    if let ResponseMode::UpstreamError {
        status,
        error_type,
        retry_after,
        ..
    } = &ctx.response
    {
        let error = ctx.upstream_error(*status, error_type.as_deref(), b"");
        // A passthrough client gets the provider's own status and body.
        if !ctx.passthrough {
            parts.status = http::StatusCode::from_u16(error.status)
                .or_err(ErrorType::InvalidHTTPHeader, "invalid status")?;
        }
        let head = &mut parts.headers;
        head.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if error.status == 429 {
            head.insert(RETRY_AFTER, HeaderValue::from(retry_after.unwrap_or(1)));
        }
    }
    // Last, so that `WholeAnswer` replacing it with a length leaves the order as it is.
    parts
        .headers
        .insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
    *resp = ResponseHeader::from(parts);
    Ok(())
}

/// Every attempt as `provider;status;ms`, comma-separated: the route this request took. The
/// attempt that answered shows the upstream's status and its time to the response head;
/// attempts that failed without a status show their outcome (`connect_failed`, `timeout`).
fn write_attempt_log(buf: &mut BytesMut, ctx: &RequestCtx, answered_status: u16) {
    // Pieces, not `write!`: this runs on every response (issue 12).
    let mut n = itoa::Buffer::new();
    for (i, a) in ctx.attempts.iter().enumerate() {
        if i > 0 {
            buf.put_slice(b", ");
        }
        buf.put_slice(a.provider.as_bytes());
        buf.put_u8(b';');
        match &a.outcome {
            AttemptOutcome::Status(s) => buf.put_slice(n.format(*s).as_bytes()),
            AttemptOutcome::InFlight | AttemptOutcome::Succeeded => {
                buf.put_slice(n.format(answered_status).as_bytes())
            }
            other => buf.put_slice(crate::access_log::outcome_label(other).as_bytes()),
        }
        buf.put_u8(b';');
        let ms = a
            .latency_ms
            .unwrap_or_else(|| a.started.elapsed().as_millis() as u64);
        buf.put_slice(n.format(ms).as_bytes());
    }
}

fn outcome_of(e: &Error) -> AttemptOutcome {
    match e.etype() {
        ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout => {
            AttemptOutcome::TimedOut
        }
        ErrorType::HTTPStatus(s) => AttemptOutcome::Status(*s),
        ErrorType::ConnectRefused | ErrorType::ConnectNoRoute | ErrorType::ConnectError => {
            AttemptOutcome::ConnectFailed
        }
        _ => AttemptOutcome::Failed,
    }
}

/// `error_while_proxy`: decide whether Pingora should call `upstream_peer` again.
pub fn decide_retry(
    peer: &HttpPeer,
    session: &mut Session,
    e: Box<Error>,
    ctx: &mut RequestCtx,
    client_reused: bool,
) -> Box<Error> {
    let mut e = e.more_context(format!("peer: {peer}"));
    if e.esource() == &ErrorSource::Downstream || session.response_written().is_some() {
        // The client left, or already has bytes: nothing can be retried.
        let outcome = if e.esource() == &ErrorSource::Downstream {
            AttemptOutcome::Cancelled
        } else {
            outcome_of(&e)
        };
        ctx.end_attempt(outcome);
        e.set_retry(false);
        return e;
    }
    if matches!(e.etype(), ErrorType::HTTPStatus(_)) && e.retry() {
        return e; // our own failover decision from `upstream_response_filter`
    }
    // A pooled connection the provider had already closed: the same candidate again, once.
    if client_reused && !matches!(e.etype(), ErrorType::ReadTimedout) && !ctx.stale_retry_spent {
        if let Some(current) = ctx.current.clone() {
            ctx.end_attempt(AttemptOutcome::Failed);
            ctx.stale_retry_spent = true;
            ctx.retry_same_candidate = Some(current);
            e.set_retry(true);
            return e;
        }
    }
    ctx.end_attempt(outcome_of(&e));
    e.set_retry(ctx.plan.as_ref().is_some_and(RoutePlan::has_more));
    e
}

/// Every attempt as the client may see it: provider, model, outcome and latency (never an
/// upstream address or key).
pub fn attempts_json(ctx: &RequestCtx) -> serde_json::Value {
    ctx.attempts
        .iter()
        .map(|a| {
            let status = match a.outcome {
                AttemptOutcome::Status(s) => Some(s),
                _ => None,
            };
            json!({ "provider": a.provider, "model": a.model, "outcome": crate::access_log::outcome_label(&a.outcome),
                    "status": status, "latency_ms": a.latency_ms })
        })
        .collect()
}

/// The client-facing error once every attempt failed, from the last attempt's outcome.
fn final_error(e: &Error, ctx: &RequestCtx) -> ApiError {
    let last = ctx.attempts.last();
    let provider = last.map_or("", |a| a.provider.as_str());
    let metadata = json!({ "provider_name": provider, "attempts": attempts_json(ctx), "error_type": e.etype().as_str() });
    let error = match last.map(|a| &a.outcome) {
        None => ApiError::unavailable("no provider endpoint could be tried"),
        Some(AttemptOutcome::TimedOut) => {
            ApiError::gateway_timeout(format!("provider {provider} did not answer in time"))
        }
        Some(AttemptOutcome::ConnectFailed) => {
            ApiError::bad_gateway(format!("could not connect to provider {provider}"))
        }
        Some(AttemptOutcome::Status(s)) => {
            ApiError::bad_gateway(format!("provider {provider} answered HTTP {s}"))
        }
        Some(_) => ApiError::bad_gateway(format!(
            "provider {provider} failed: {}",
            e.etype().as_str()
        )),
    };
    error.with_metadata(metadata)
}

/// The upstream (or the client) failed after the response head went out: nothing can be
/// retried and the status cannot change. A stream ends with an error chunk, its usage chunk
/// and `[DONE]` (in the client's own format); an Anthropic passthrough stream with an `error`
/// event; a non-stream body stays cut off. Whatever the response mode, `ctx.error` says what
/// happened, so the record and the access log do not show a plain success.
async fn broke_after_head(session: &mut Session, e: &Error, ctx: &mut RequestCtx) {
    if ctx.stream_finished {
        // The provider had ended its answer and the client has all of it, tail included:
        // a connection lost after that takes nothing from anyone.
        return;
    }
    let client_left = e.esource() == &ErrorSource::Downstream;
    let error = if client_left {
        ApiError::bad_request("the client closed the connection")
    } else {
        ApiError::bad_gateway(format!(
            "the provider's answer broke: {}",
            e.etype().as_str()
        ))
    };
    let out = match std::mem::replace(&mut ctx.response, ResponseMode::None) {
        ResponseMode::Stream(stream) => {
            let mut out = bytes::BytesMut::from(&ctx.stream_error_chunk(&error)[..]);
            out.extend_from_slice(&ctx.stream_tail(&stream));
            Some(ctx.front_stage(out.freeze(), true))
        }
        ResponseMode::Passthrough(tap) => {
            ctx.usage = Some(
                tap.usage()
                    .unwrap_or_else(|| ctx.estimate_usage(tap.content_deltas())),
            );
            Some(crate::api::messages::error_event(&error))
        }
        ResponseMode::UpstreamError {
            status,
            error_type,
            body,
            ..
        } if !client_left => {
            // The provider's error answer itself broke off: record what it said so far.
            ctx.error = Some(ctx.upstream_error(status, error_type.as_deref(), &body));
            None
        }
        _ => {
            // A non-stream answer: the prompt was processed, so it is charged as for an
            // answer that cannot be read (the documented estimate).
            if ctx.usage.is_none() && ctx.chat.is_some() {
                ctx.usage = Some(ctx.estimate_usage(0));
            }
            None
        }
    };
    if ctx.error.is_none() {
        ctx.error = Some(error);
    }
    if let Some(out) = out.filter(|_| !client_left) {
        // The response ends well-framed; Pingora still closes the connection after it.
        let _ = session.write_response_body(Some(out), true).await;
    }
}

/// `fail_to_proxy`: tell the client, in its own format, that the request failed.
pub async fn fail_to_proxy(
    session: &mut Session,
    e: &Error,
    ctx: &mut RequestCtx,
    gateway: &Gateway,
) -> FailToProxy {
    let gone = FailToProxy {
        error_code: 0,
        can_reuse_downstream: false,
    };
    if session.response_written().is_some() {
        broke_after_head(session, e, ctx).await;
        return gone;
    }
    if e.esource() == &ErrorSource::Downstream
        && matches!(
            e.etype(),
            ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed
        )
    {
        ctx.error = Some(ApiError::bad_request("the client closed the connection"));
        return gone;
    }
    let error = ctx
        .client_error
        .take()
        .unwrap_or_else(|| final_error(e, ctx));
    let status = error.status;
    // Pingora closes a client connection after a failed proxy attempt: say so in the response
    // rather than promise keep-alive.
    session.as_mut().set_keepalive(None);
    match gateway.send_error(session, ctx, error).await {
        Ok(_) => FailToProxy {
            error_code: status,
            can_reuse_downstream: false,
        },
        Err(_) => gone,
    }
}
