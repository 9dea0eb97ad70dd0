//! Reading the client's request body before routing, in a way Pingora can replay.
//!
//! The route (and so the upstream body) depends on fields inside the body, so the gateway
//! reads it whole in `request_filter`. Pingora then sends a request body upstream only from
//! its retry buffer (64 KiB, filled by reads made after `enable_retry_buffering`), calling
//! `request_body_filter` with it on every attempt — where the gateway substitutes the
//! candidate's own body. So the buffer only needs to be non-empty and not truncated: it is
//! enabled once the bytes still to read fit in 64 KiB, which works for bodies of any size
//! that declare a Content-Length. A chunked body over 64 KiB cannot be replayed and is
//! refused with 411 (every SDK sends Content-Length for JSON).

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use pingora::proxy::Session;
use tokio::time::{timeout, Instant};

use crate::api::ApiError;

/// Pingora's retry buffer capacity (`BODY_BUF_LIMIT` in pingora-core 0.9).
const REPLAY_BUFFER_BYTES: usize = 64 * 1024;

/// How much of an unread body is read and dropped after an early refusal, at most.
const DISCARD_MAX_BYTES: usize = 16 << 20;
/// How long that may take in all, and how long the client may pause within it.
const DISCARD_MAX_TIME: Duration = Duration::from_secs(5);
const DISCARD_MAX_PAUSE: Duration = Duration::from_secs(1);

pub async fn read_body_for_replay(session: &mut Session, limit: usize) -> Result<Bytes, ApiError> {
    let declared = match session
        .req_header()
        .headers
        .get(http::header::CONTENT_LENGTH)
    {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<usize>().ok())
                .ok_or_else(|| ApiError::bad_request("Content-Length is not a number"))?,
        ),
    };
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::payload_too_large(limit));
    }
    let mut body = BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
    let mut buffering = false;
    loop {
        let remaining_fits = declared.is_none_or(|n| n - body.len().min(n) <= REPLAY_BUFFER_BYTES);
        if !buffering && remaining_fits {
            session.as_mut().enable_retry_buffering();
            buffering = true;
        }
        let chunk = session
            .read_request_body()
            .await
            .map_err(|e| ApiError::bad_request(format!("could not read the request body: {e}")))?;
        let Some(chunk) = chunk else { break };
        if body.len() + chunk.len() > limit {
            return Err(ApiError::payload_too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "the request body is empty; expected a JSON object",
        ));
    }
    if session.as_ref().retry_buffer_truncated() || session.as_ref().get_retry_buffer().is_none() {
        let mut e = ApiError::bad_request(
            "request bodies over 64 KiB must be sent with a Content-Length header, not chunked",
        );
        e.status = 411;
        e.code = Some("length_required");
        return Err(e);
    }
    Ok(body.freeze())
}

/// After an answer sent before the request body was read (413, 401, 404...): reads and
/// drops what the client is still sending, within bounds, before the connection closes.
/// Closing a socket with unread bytes makes the kernel send a reset, and a client still
/// writing its body then sees "broken pipe" instead of the answer (nginx's lingering close
/// exists for the same reason). A client past the bounds gets the reset. Not Pingora's
/// `drain_request_body`: it has no bound, and an endless body would hold the task forever.
pub async fn discard_unread_body(session: &mut Session) {
    let deadline = Instant::now() + DISCARD_MAX_TIME;
    let mut discarded = 0usize;
    while discarded <= DISCARD_MAX_BYTES {
        let pause = DISCARD_MAX_PAUSE.min(deadline.saturating_duration_since(Instant::now()));
        match timeout(pause, session.read_request_body()).await {
            Ok(Ok(Some(chunk))) => discarded += chunk.len(),
            // The body ended, failed, or paused too long: close now.
            _ => return,
        }
    }
}
