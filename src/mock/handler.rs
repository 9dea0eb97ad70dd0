//! One request: record it, check the key, apply the chosen fault, then route to an endpoint
//! (OpenAI here; Anthropic, Gemini, Bedrock and Azure in their own modules, told apart by the
//! path).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{
    HeaderName, HeaderValue, AUTHORIZATION, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE,
    RETRY_AFTER,
};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::Value;

use super::body::{pump, ConnCtl, MockBody};
use super::dialect::Dialect;
use super::faults::{self, Fault, Reset};
use super::openai::{self, Answer, Chat, Usage};
use super::text;
use super::State;
use super::{anthropic, azure, bedrock, gemini, gemini_embed};

/// How long `silence` holds a connection before cutting it.
const SILENCE: Duration = Duration::from_secs(120);
const JSON: &str = "application/json";

pub(super) async fn handle(
    state: Arc<State>,
    ctl: Arc<ConnCtl>,
    req: Request<Incoming>,
) -> Result<Response<MockBody>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            log::debug!("mock: reading request body failed: {e}");
            return Ok(error(400, "Could not read the request body.", None, None));
        }
    };
    // Recorded before any fault so tests can assert what the upstream saw even when it failed.
    state.record(&parts, body.clone());
    // Bedrock and Azure are served whole by their modules (their own keys and error shapes).
    if let Some(target) = bedrock::target(parts.uri.path()) {
        return Ok(bedrock::serve(&state, &ctl, &parts.headers, target, &body).await);
    }
    if let Some(target) = azure::target(parts.uri.path()) {
        let query = parts.uri.query();
        return Ok(azure::serve(&state, &ctl, &parts.headers, query, target, &body).await);
    }
    // So are Gemini's embeddings (`:embedContent`, `:batchEmbedContents`).
    if let Some(target) = gemini_embed::target(parts.uri.path()) {
        let query = parts.uri.query();
        return Ok(gemini_embed::serve(&state, &ctl, &parts.headers, query, target, &body).await);
    }
    let dialect = Dialect::of(parts.uri.path());
    let denied = match dialect {
        Dialect::OpenAi => check_key(state.key.as_deref(), &parts.headers),
        other => other.check_key(state.key.as_deref(), &parts.headers, parts.uri.query()),
    };
    if let Some(denied) = denied {
        return Ok(denied);
    }

    let json: Option<Value> = serde_json::from_slice(&body).ok();
    let header = parts
        .headers
        .get("x-mock-fault")
        .and_then(|v| v.to_str().ok());
    let fault = match dialect
        .path_fault(parts.uri.path())
        .filter(|_| header.is_none())
    {
        Some(fault) => fault,
        None => faults::choose(header, json.as_ref(), state.default_fault().as_ref()),
    };

    if let Some(resp) = before_answer(&fault, &ctl).await {
        return Ok(resp);
    }
    if let Some(status) = fault.status {
        if dialect != Dialect::OpenAi {
            return Ok(dialect.status_fault(status, fault.retry_after.as_deref()));
        }
        let (message, kind, code) = openai::status_error(status);
        let mut resp = error_typed(status, &message, kind, None, code);
        if let Some(v) = fault
            .retry_after
            .as_deref()
            .and_then(|v| HeaderValue::from_str(v).ok())
        {
            resp.headers_mut().insert(RETRY_AFTER, v);
        }
        return Ok(with_request_id(resp));
    }

    let path = parts.uri.path();
    let resp = match parts.method {
        Method::POST if dialect == Dialect::Anthropic => {
            anthropic::messages(&state, json, &parts.headers, &fault, &ctl)
        }
        Method::POST if dialect == Dialect::Gemini => {
            gemini::generate(&state, path, parts.uri.query(), json, &fault, &ctl)
        }
        Method::POST if path.ends_with("/chat/completions") => chat(&state, json, &fault, &ctl),
        Method::POST if path.ends_with("/embeddings") => embeddings(json, &fault, &ctl),
        Method::GET if path.ends_with("/models") => {
            ok_json(openai::MODELS_BODY.as_bytes().to_vec(), &fault, &ctl)
        }
        _ => {
            let message = format!("Unknown request URL: {} {path}.", parts.method);
            error(404, &message, None, Some("unknown_url"))
        }
    };
    Ok(match dialect {
        Dialect::OpenAi => with_request_id(resp),
        _ => resp,
    })
}

/// OpenAI names every answer with an `x-request-id` (`req_` and 32 hex digits); so does the
/// mock, a new one per answer, for the gateway to pass on as `x-upstream-request-id`.
fn with_request_id(mut resp: Response<MockBody>) -> Response<MockBody> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if let Ok(id) = HeaderValue::from_str(&format!("req_{n:032x}")) {
        resp.headers_mut()
            .insert(HeaderName::from_static("x-request-id"), id);
    }
    resp
}

/// The faults that act before any answer: `delay_ms`, `silence`, `reset=before`.
pub(super) async fn before_answer(fault: &Fault, ctl: &ConnCtl) -> Option<Response<MockBody>> {
    if fault.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(fault.delay_ms)).await;
    }
    if fault.silence {
        tokio::time::sleep(SILENCE).await;
        return Some(hang_up(ctl).await);
    }
    if fault.reset == Some(Reset::Before) {
        return Some(hang_up(ctl).await);
    }
    None
}

/// Cuts the connection (RST) and never answers.
async fn hang_up(ctl: &ConnCtl) -> Response<MockBody> {
    ctl.abort();
    std::future::pending().await
}

fn check_key(key: Option<&str>, headers: &HeaderMap) -> Option<Response<MockBody>> {
    let key = key?;
    let sent = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    match sent.and_then(|v| v.strip_prefix("Bearer ")) {
        Some(k) if k.trim() == key => None,
        Some(_) => Some(error(
            401,
            "Incorrect API key provided.",
            None,
            Some("invalid_api_key"),
        )),
        None => Some(error(
            401,
            "You didn't provide an API key. You need to provide your API key in an \
             Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            None,
            None,
        )),
    }
}

pub(super) fn chat(
    state: &State,
    json: Option<Value>,
    fault: &Fault,
    ctl: &Arc<ConnCtl>,
) -> Response<MockBody> {
    let Some(req) = json.filter(Value::is_object) else {
        return invalid_json();
    };
    let Some(messages) = req.get("messages").and_then(Value::as_array) else {
        return error(
            400,
            "Missing required parameter: 'messages'.",
            Some("messages"),
            Some("missing_required_parameter"),
        );
    };
    let n = state.next_id();
    let first_tool = req
        .get("tools")
        .and_then(Value::as_array)
        .and_then(|t| t.first());
    let answer = match first_tool.filter(|_| fault.tool_call) {
        Some(tool) => Answer::Tool {
            call_id: format!("call_mock_{n}"),
            name: tool_name(tool),
        },
        None => Answer::text(reply_text(messages, fault)),
    };
    let usage = Usage {
        prompt: fault
            .usage_prompt
            .unwrap_or_else(|| text::prompt_tokens(messages)),
        completion: fault
            .usage_completion
            .unwrap_or((answer.delta_count() + fault.reasoning_deltas) as u64),
        cached: fault.usage_cached.unwrap_or(0),
        reasoning: fault
            .usage_reasoning
            .unwrap_or(fault.reasoning_deltas as u64),
        cache_write: fault.usage_cache_write.unwrap_or(0),
    };
    let chat = Chat {
        id: format!("chatcmpl-mock-{n}"),
        created: now(),
        model: model_of(&req),
        answer,
        usage,
        send_usage: !fault.no_usage,
        include_usage: req.pointer("/stream_options/include_usage") == Some(&Value::Bool(true)),
        xai_usage: fault.xai_usage,
        reasoning_deltas: fault.reasoning_deltas,
        deepseek_usage: fault.deepseek_usage,
        choice_usage: fault.choice_usage,
    };
    if req.get("stream") == Some(&Value::Bool(true)) {
        stream(chat, fault, ctl)
    } else {
        ok_json(chat.completion_body(), fault, ctl)
    }
}

/// Precedence: `chunks`, then `huge`, then `reply`, then the echo of the user's message.
pub(super) fn reply_text(messages: &[Value], fault: &Fault) -> String {
    if let Some(n) = fault.chunks {
        text::numbered_words(n)
    } else if let Some(n) = fault.huge {
        "x".repeat(n)
    } else if let Some(reply) = &fault.reply {
        reply.clone()
    } else {
        text::default_reply(messages)
    }
}

fn tool_name(tool: &Value) -> String {
    tool.pointer("/function/name")
        .or_else(|| tool.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("tool")
        .to_string()
}

fn stream(chat: Chat, fault: &Fault, ctl: &Arc<ConnCtl>) -> Response<MockBody> {
    let chat = Arc::new(chat);
    let (malformed, truncated) = (fault.malformed, fault.truncated);
    let total = chat.events(malformed, truncated).count();
    let (limit, abort) = match fault.reset {
        Some(Reset::Mid) => (total / 2, Some(ctl.clone())),
        _ => (total, None),
    };
    let renderer = chat.clone();
    let frames = chat
        .events(malformed, truncated)
        .take(limit)
        .map(move |event| renderer.render(event));
    let (tx, body) = MockBody::channel();
    let gap = Duration::from_millis(fault.chunk_delay_ms);
    let hang = fault.hang.then(|| tx.clone());
    tokio::spawn(async move {
        pump(tx, frames, gap, abort).await;
        if let Some(open) = hang {
            let _ = tokio::time::timeout(Duration::from_secs(30), open.closed()).await;
        }
    });
    respond(
        200,
        &[
            (CONTENT_TYPE, "text/event-stream"),
            (CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

pub(super) fn embeddings(
    json: Option<Value>,
    fault: &Fault,
    ctl: &Arc<ConnCtl>,
) -> Response<MockBody> {
    let Some(req) = json.filter(Value::is_object) else {
        return invalid_json();
    };
    let Some((inputs, tokens)) = req.get("input").and_then(embedding_inputs) else {
        return error(
            400,
            "'input' must be a non-empty string, array of strings, or array of token arrays.",
            Some("input"),
            None,
        );
    };
    let tokens = (!fault.no_usage).then(|| fault.usage_prompt.unwrap_or(tokens));
    let base64 = req.get("encoding_format").and_then(Value::as_str) == Some("base64");
    ok_json(
        openai::embeddings_body(&model_of(&req), &inputs, tokens, base64),
        fault,
        ctl,
    )
}

/// The texts to embed and their token count (words, or the length of token arrays).
fn embedding_inputs(input: &Value) -> Option<(Vec<String>, u64)> {
    match input {
        Value::String(s) => Some((vec![s.clone()], text::word_count(s))),
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_number) => {
            Some((vec![input.to_string()], items.len() as u64))
        }
        Value::Array(items) if !items.is_empty() => {
            let each = items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Some((s.clone(), text::word_count(s))),
                    Value::Array(tokens) => Some((item.to_string(), tokens.len() as u64)),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()?;
            let tokens = each.iter().map(|(_, t)| t).sum();
            Some((each.into_iter().map(|(s, _)| s).collect(), tokens))
        }
        _ => None,
    }
}

/// A 200 JSON answer, subject to `malformed` (broken body) and `reset=mid` (half, then RST).
pub(super) fn ok_json(body: Vec<u8>, fault: &Fault, ctl: &Arc<ConnCtl>) -> Response<MockBody> {
    let body = if fault.malformed {
        openai::malformed_body()
    } else {
        body
    };
    if fault.reset != Some(Reset::Mid) {
        return respond(200, &[(CONTENT_TYPE, JSON)], MockBody::full(body));
    }
    // Promise the whole length, deliver half: the client sees a body cut short.
    let full_len = HeaderValue::from(body.len());
    let mut first = Bytes::from(body);
    first.truncate(first.len() / 2);
    let (tx, chan) = MockBody::channel();
    tokio::spawn(pump(
        tx,
        std::iter::once(first),
        Duration::ZERO,
        Some(ctl.clone()),
    ));
    let mut resp = respond(200, &[(CONTENT_TYPE, JSON)], chan);
    resp.headers_mut().insert(CONTENT_LENGTH, full_len);
    resp
}

fn invalid_json() -> Response<MockBody> {
    error(
        400,
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't \
         using your HTTP library correctly. The OpenAI API expects a JSON payload.)",
        None,
        None,
    )
}

fn error(
    status: u16,
    message: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Response<MockBody> {
    error_typed(status, message, "invalid_request_error", param, code)
}

fn error_typed(
    status: u16,
    message: &str,
    kind: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Response<MockBody> {
    let body = openai::error_body(message, kind, param, code);
    respond(status, &[(CONTENT_TYPE, JSON)], MockBody::full(body))
}

/// Builds a response without the fallible builder; statuses outside 100..=999 become 500.
pub(super) fn respond(
    status: u16,
    headers: &[(HeaderName, &'static str)],
    body: MockBody,
) -> Response<MockBody> {
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in headers {
        resp.headers_mut()
            .insert(name.clone(), HeaderValue::from_static(value));
    }
    resp
}

fn model_of(req: &Value) -> String {
    req.get("model")
        .and_then(Value::as_str)
        .unwrap_or("mock-small")
        .to_string()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
