//! Answers the gateway writes itself: local endpoints and errors, in the front door's shape.

use bytes::Bytes;
use http::HeaderName;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::Result;

use super::ctx::RequestCtx;
use super::Gateway;
use crate::api::ApiError;

/// Writes a complete JSON response. HEAD requests get the headers only.
pub async fn send_json(
    session: &mut Session,
    status: u16,
    body: Bytes,
    extra_headers: &[(HeaderName, String)],
) -> Result<()> {
    let mut header = ResponseHeader::build(status, Some(4 + extra_headers.len()))?;
    header.insert_header("content-type", "application/json")?;
    header.insert_header("content-length", body.len().to_string())?;
    header.insert_header("cache-control", "no-store")?;
    for (name, value) in extra_headers {
        header.insert_header(name.clone(), value.as_str())?;
    }
    let head_only = session.req_header().method == http::Method::HEAD;
    session
        .write_response_header(Box::new(header), head_only)
        .await?;
    if !head_only {
        session.write_response_body(Some(body), true).await?;
    }
    Ok(())
}

/// `X-RateLimit-Limit/Remaining/Reset` from a key's rate standing.
pub fn rate_limit_headers(rate: &crate::limits::RateStatus) -> [(HeaderName, u64); 3] {
    const LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
    const REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
    const RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
    [
        (LIMIT, rate.limit),
        (REMAINING, rate.remaining),
        (RESET, rate.reset_unix),
    ]
}

impl Gateway {
    /// Sends `error` to the client and remembers it for the log and the record. Returns
    /// `Ok(true)`, which `request_filter` passes on to say "response sent".
    pub(super) async fn send_error(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        error: ApiError,
    ) -> Result<bool> {
        let mut headers: Vec<(HeaderName, String)> = Vec::new();
        if let Some(secs) = error.retry_after {
            headers.push((http::header::RETRY_AFTER, secs.to_string()));
        }
        if error.status == 405 {
            if let super::routes::Route::MethodNotAllowed(allowed) = ctx.route {
                headers.push((http::header::ALLOW, allowed.to_string()));
            }
        }
        // Only requests that leave a generation record (see `record.rs`) name one.
        if ctx.key.is_some() && (ctx.chat.is_some() || ctx.embeddings.is_some()) {
            headers.push((super::failover::X_GENERATION_ID, ctx.generation_id.clone()));
        }
        if let Some(rate) = &ctx.rate_status {
            for (name, n) in rate_limit_headers(rate) {
                headers.push((name, n.to_string()));
            }
        }
        let body = error.body(ctx.door);
        let status = error.status;
        ctx.error = Some(error);
        ctx.client_status = status;
        self.answer_complete(ctx, status);
        send_json(session, status, body, &headers).await?;
        Ok(true)
    }
}
