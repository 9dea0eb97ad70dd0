//! Azure OpenAI (`POST .../openai/deployments/{deployment}/chat/completions?api-version=...`
//! and `/embeddings`): the OpenAI answers, with the deployment name as `model`, the key in
//! the `api-key` header, a required `api-version`, and Azure's `{"error": {code, message}}`
//! errors (its `code` is a string).

use std::sync::Arc;

use http::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, Response};
use serde_json::{json, Value};

use super::body::{ConnCtl, MockBody};
use super::faults::{self, Fault};
use super::handler::{before_answer, chat, embeddings, respond};
use super::State;

/// An Azure path's deployment and operation (`chat/completions`, `embeddings`).
pub fn target(path: &str) -> Option<(String, String)> {
    let (_, rest) = path.split_once("/openai/deployments/")?;
    let (deployment, op) = rest.split_once('/')?;
    (!deployment.is_empty()).then(|| (deployment.to_string(), op.to_string()))
}

/// One Azure request, faults included.
pub async fn serve(
    state: &State,
    ctl: &Arc<ConnCtl>,
    headers: &HeaderMap,
    query: Option<&str>,
    (deployment, op): (String, String),
    body: &[u8],
) -> Response<MockBody> {
    let version = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|kv| kv.strip_prefix("api-version="))
        .filter(|v| !v.is_empty());
    if version.is_none() {
        return error(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        );
    }
    if let Some(key) = state.key.as_deref() {
        let sent = headers.get("api-key").and_then(|v| v.to_str().ok());
        if sent.map(str::trim) != Some(key) {
            return error(
                401,
                "401",
                "Access denied due to invalid subscription key or wrong API endpoint. Make sure \
                 to provide a valid key for an active subscription and use a correct regional API \
                 endpoint for your resource.",
            );
        }
    }
    let mut json: Option<Value> = serde_json::from_slice(body).ok();
    let header = headers.get("x-mock-fault").and_then(|v| v.to_str().ok());
    // The gateway puts the deployment in the path, so knobs ride on it there too.
    let fault = match Fault::from_model(&deployment).filter(|_| header.is_none()) {
        Some(fault) => fault,
        None => faults::choose(header, json.as_ref(), state.default_fault().as_ref()),
    };
    if let Some(resp) = before_answer(&fault, ctl).await {
        return resp;
    }
    if let Some(status) = fault.status {
        let message = match status {
            429 => "Requests to the ChatCompletions_Create Operation have exceeded the token rate \
                    limit of your current pricing tier. Please retry after 1 second. (mock fault)"
                .to_string(),
            _ => format!("Mock fault: status {status}."),
        };
        let mut resp = error(status, &status.to_string(), &message);
        if let Some(v) = fault.retry_after.as_deref() {
            if let Ok(v) = HeaderValue::from_str(v) {
                resp.headers_mut().insert(RETRY_AFTER, v);
            }
        }
        return resp;
    }
    // Azure answers with the deployment, whatever model the body names.
    if let Some(req) = json.as_mut().and_then(Value::as_object_mut) {
        req.insert("model".into(), json!(deployment));
    }
    match op.as_str() {
        "chat/completions" => chat(state, json, &fault, ctl),
        "embeddings" => embeddings(json, &fault, ctl),
        _ => error(404, "404", "Resource not found"),
    }
}

/// `{"error": {"code": "...", "message": "..."}}`, Azure's error shape.
pub fn error(status: u16, code: &str, message: &str) -> Response<MockBody> {
    let body = json!({ "error": { "code": code, "message": message } }).to_string();
    respond(
        status,
        &[(CONTENT_TYPE, "application/json")],
        MockBody::full(body),
    )
}
