//! Which provider API a request speaks, told by its path, and what differs per provider
//! before an endpoint runs: where the key is, and the shape of error answers.
//!
//! - OpenAI: `Authorization: Bearer`, `{"error": {message, type, param, code}}` (handler.rs).
//! - Anthropic (`.../messages`): `x-api-key`, `{"type": "error", "error": {type, message}}`.
//! - Gemini (`.../models/{model}:generateContent|streamGenerateContent`): `x-goog-api-key`
//!   (or `?key=`), `{"error": {code, message, status}}`.

use http::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, Response};
use serde_json::json;

use super::body::MockBody;
use super::faults::{percent_decode, Fault};
use super::handler::respond;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    OpenAi,
    Anthropic,
    Gemini,
}

/// A Gemini path's model and method (`generateContent` or `streamGenerateContent`).
pub fn gemini_target(path: &str) -> Option<(String, &str)> {
    let (_, rest) = path.rsplit_once("/models/")?;
    let (model, method) = rest.rsplit_once(':')?;
    matches!(method, "generateContent" | "streamGenerateContent")
        .then(|| (percent_decode(model), method))
}

impl Dialect {
    pub fn of(path: &str) -> Dialect {
        if path.ends_with("/messages") {
            Dialect::Anthropic
        } else if gemini_target(path).is_some() {
            Dialect::Gemini
        } else {
            Dialect::OpenAi
        }
    }

    /// Fault knobs on a Gemini path's model (`models/mock+status=429:generateContent`): a
    /// gateway builds the body itself, so the model in the URL is how tests reach the mock.
    pub fn path_fault(self, path: &str) -> Option<Fault> {
        match self {
            Dialect::Gemini => gemini_target(path).and_then(|(model, _)| Fault::from_model(&model)),
            _ => None,
        }
    }

    /// The provider's own refusal when the mock has a key and the request lacks it (OpenAI's
    /// check stays in handler.rs).
    pub fn check_key(
        self,
        key: Option<&str>,
        headers: &HeaderMap,
        query: Option<&str>,
    ) -> Option<Response<MockBody>> {
        let key = key?;
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        match self {
            Dialect::OpenAi => None,
            Dialect::Anthropic => match header("x-api-key") {
                Some(k) if k.trim() == key => None,
                Some(_) => Some(anthropic_error(
                    401,
                    "authentication_error",
                    "invalid x-api-key",
                )),
                None => Some(anthropic_error(
                    401,
                    "authentication_error",
                    "x-api-key header is required",
                )),
            },
            Dialect::Gemini => {
                let from_query =
                    query.and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("key=")));
                match header("x-goog-api-key").or(from_query) {
                    Some(k) if k.trim() == key => None,
                    // Gemini answers a wrong key with 400, and a missing one with 403.
                    Some(_) => Some(gemini_error_with(
                        400,
                        "API key not valid. Please pass a valid API key.",
                        json!([{ "@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                                 "domain": "googleapis.com" }]),
                    )),
                    None => Some(gemini_error(
                        403,
                        "Method doesn't allow unregistered callers (callers without established identity). \
                         Please use API Key or other form of API consumer identity to call this API.",
                    )),
                }
            }
        }
    }

    /// The answer to a `status=N` fault in this provider's error shape (OpenAI's is in
    /// handler.rs), with `Retry-After` when the fault sets one.
    pub fn status_fault(self, status: u16, retry_after: Option<&str>) -> Response<MockBody> {
        let mut resp = match self {
            Dialect::Anthropic => {
                let kind = anthropic_type(status);
                let message = match kind {
                    "overloaded_error" => "Overloaded".to_string(),
                    "rate_limit_error" => "Number of request tokens has exceeded your per-minute rate limit (mock fault)".into(),
                    _ => format!("Mock fault: status {status}."),
                };
                anthropic_error(status, kind, &message)
            }
            _ => {
                let message = match status {
                    429 => {
                        "Resource has been exhausted (e.g. check quota). (mock fault)".to_string()
                    }
                    503 => "The model is overloaded. Please try again later. (mock fault)".into(),
                    _ => format!("Mock fault: status {status}."),
                };
                gemini_error(status, &message)
            }
        };
        if let Some(v) = retry_after.and_then(|v| HeaderValue::from_str(v).ok()) {
            resp.headers_mut().insert(RETRY_AFTER, v);
        }
        resp
    }
}

/// Anthropic's error `type` for a status (529 is its "overloaded").
fn anthropic_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        504 => "timeout_error",
        _ if status < 500 => "invalid_request_error",
        _ => "api_error",
    }
}

pub fn anthropic_error(status: u16, kind: &str, message: &str) -> Response<MockBody> {
    let body = json!({ "type": "error", "error": { "type": kind, "message": message } });
    respond(
        status,
        &[(CONTENT_TYPE, "application/json")],
        MockBody::full(body.to_string()),
    )
}

/// The gRPC status name Google puts next to an HTTP status.
fn grpc_status(status: u16) -> &'static str {
    match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ if status < 500 => "FAILED_PRECONDITION",
        _ => "INTERNAL",
    }
}

pub fn gemini_error(status: u16, message: &str) -> Response<MockBody> {
    gemini_error_with(status, message, serde_json::Value::Null)
}

fn gemini_error_with(status: u16, message: &str, details: serde_json::Value) -> Response<MockBody> {
    let mut error = json!({ "code": status, "message": message, "status": grpc_status(status) });
    if !details.is_null() {
        error["details"] = details;
    }
    let body = json!({ "error": error });
    respond(
        status,
        &[(CONTENT_TYPE, "application/json")],
        MockBody::full(body.to_string()),
    )
}
