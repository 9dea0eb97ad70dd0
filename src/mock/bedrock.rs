//! AWS Bedrock Converse (`POST .../model/{modelId}/converse` and `/converse-stream`) as AWS
//! sends it: a whole `output.message`, or a binary event stream (`messageStart`, content block
//! deltas, `contentBlockStop`, `messageStop`, `metadata` with usage). It answers like the
//! OpenAI path (same reply, same token counts; `inputTokens` excludes cache reads, as
//! Bedrock's does) and takes the same fault knobs, also on the model in the path
//! (`/model/mock+status=429/converse`). Errors are `{"message"}` bodies named by the
//! `x-amzn-errortype` header.
//!
//! With thinking on, it refuses a tool loop whose last assistant turn does not start with
//! reasoning, as Claude on Bedrock does.
//!
//! With a key, the mock wants a SigV4 `authorization` header whose credential is that key (as
//! the access key id) and an `x-amz-date`. A key `ID:TOKEN` stands for temporary credentials
//! (AWS ids never hold a colon): the id, and that session token in an `x-amz-security-token`
//! the signature covers. It cannot verify the signature itself: it does not hold a secret
//! key, and checking the algorithm is the signer's unit tests' job.

use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, Response};
use serde_json::{json, Value};

use super::body::{pump, ConnCtl, MockBody};
use super::converse::Converse;
use super::faults::{self, percent_decode, Fault, Reset};
use super::handler::{before_answer, ok_json, reply_text, respond};
use super::openai::{Answer, Usage};
use super::{text, State};

/// A Bedrock runtime path's (decoded) model id and whether it asks for a stream.
pub fn target(path: &str) -> Option<(String, bool)> {
    let (_, rest) = path.rsplit_once("/model/")?;
    let (model, op) = rest.rsplit_once('/')?;
    let stream = match op {
        "converse" => false,
        "converse-stream" => true,
        _ => return None,
    };
    Some((percent_decode(model), stream))
}

/// `POST .../model/{modelId}/converse[-stream]`, faults included.
pub async fn serve(
    state: &State,
    ctl: &Arc<ConnCtl>,
    headers: &HeaderMap,
    (model, stream): (String, bool),
    body: &[u8],
) -> Response<MockBody> {
    if let Some(denied) = check_key(state.key.as_deref(), headers) {
        return denied;
    }
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let header = headers.get("x-mock-fault").and_then(|v| v.to_str().ok());
    let fault = match Fault::from_model(&model).filter(|_| header.is_none()) {
        Some(fault) => fault,
        None => faults::choose(header, json.as_ref(), state.default_fault().as_ref()),
    };
    if let Some(resp) = before_answer(&fault, ctl).await {
        return resp;
    }
    if let Some(status) = fault.status {
        let mut resp = match &fault.error_type {
            Some(kind) => error(status, kind, "Mock fault."),
            None => status_error(status),
        };
        if let Some(v) = fault.retry_after.as_deref() {
            if let Ok(v) = HeaderValue::from_str(v) {
                resp.headers_mut().insert(RETRY_AFTER, v);
            }
        }
        return resp;
    }
    let Some(req) = json.filter(Value::is_object) else {
        return error(
            400,
            "ValidationException",
            "Malformed input request, please reformat your input and try again.",
        );
    };
    let Some(turns) = req
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
    else {
        return error(400, "ValidationException", "A conversation must start with a user message. Try again with a conversation that starts with a user message.");
    };
    let thinking =
        req.pointer("/additionalModelRequestFields/thinking/type") == Some(&json!("enabled"));
    if let Some(refusal) = thinking.then(|| unthought_tool_turn(turns)).flatten() {
        return refusal;
    }
    let messages = as_messages(req.get("system"), turns);
    let n = state.next_id();
    let tool = req
        .pointer("/toolConfig/tools/0/toolSpec/name")
        .and_then(Value::as_str);
    let answer = match tool.filter(|_| fault.tool_call) {
        Some(name) => Answer::Tool {
            call_id: format!("tooluse_mock_{n}"),
            name: name.to_string(),
        },
        None => Answer::text(reply_text(&messages, &fault)),
    };
    let usage = Usage {
        prompt: fault
            .usage_prompt
            .unwrap_or_else(|| text::prompt_tokens(&messages)),
        completion: fault
            .usage_completion
            .unwrap_or(answer.delta_count() as u64),
        cached: fault.usage_cached.unwrap_or(0),
        reasoning: 0, // Bedrock does not report reasoning apart
        cache_write: fault.usage_cache_write.unwrap_or(0),
    };
    let converse = Converse {
        answer,
        thinking,
        usage,
        send_usage: !fault.no_usage,
    };
    if stream {
        event_stream(Arc::new(converse), &fault, ctl)
    } else {
        ok_json(converse.body(), &fault, ctl)
    }
}

/// Claude's rule with thinking on, in Bedrock's words: the last assistant turn of a tool loop
/// must start with the reasoning that led to its calls.
fn unthought_tool_turn(turns: &[Value]) -> Option<Response<MockBody>> {
    let (i, last) = turns
        .iter()
        .enumerate()
        .rev()
        .find(|(_, t)| t.get("role").and_then(Value::as_str) == Some("assistant"))?;
    let blocks = last.get("content").and_then(Value::as_array)?;
    let first = blocks.first()?;
    if first.get("reasoningContent").is_some() || !blocks.iter().any(|b| b.get("toolUse").is_some())
    {
        return None;
    }
    let found = if first.get("toolUse").is_some() {
        "tool_use"
    } else {
        "text"
    };
    Some(error(
        400,
        "ValidationException",
        &format!("The model returned the following errors: messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found `{found}`. When `thinking` is enabled, a final `assistant` message must start with a thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks). We recommend you include thinking blocks from previous turns. To avoid this requirement, disable `thinking`. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking"),
    ))
}

/// Converse turns as OpenAI-style messages, so the shared text helpers (echo, token counts)
/// read them as the OpenAI path would: `system` first, tool results as `tool` messages.
fn as_messages(system: Option<&Value>, turns: &[Value]) -> Vec<Value> {
    let texts = |blocks: Option<&Value>| -> Vec<String> {
        let blocks = blocks.and_then(Value::as_array).into_iter().flatten();
        blocks
            .filter_map(|b| b.get("text").and_then(Value::as_str).map(String::from))
            .collect()
    };
    let mut out = Vec::new();
    let system = texts(system);
    if !system.is_empty() {
        out.push(json!({ "role": "system", "content": system.join(" ") }));
    }
    for turn in turns {
        let role = match turn.get("role").and_then(Value::as_str) {
            Some("assistant") => "assistant",
            _ => "user",
        };
        let blocks = turn.get("content").and_then(Value::as_array);
        for result in blocks
            .into_iter()
            .flatten()
            .filter_map(|b| b.get("toolResult"))
        {
            out.push(json!({ "role": "tool", "content": texts(result.get("content")).join(" ") }));
        }
        let said = texts(turn.get("content"));
        if !said.is_empty() || blocks.is_some_and(|b| b.iter().any(|b| b.get("toolUse").is_some()))
        {
            out.push(json!({ "role": role, "content": said.join(" ") }));
        }
    }
    out
}

/// The signed request AWS wants: no `authorization` is Bedrock's "Missing Authentication
/// Token"; a foreign credential or scheme its "security token ... is invalid"; no date an
/// incomplete signature. All are 403s, as AWS answers them.
fn check_key(key: Option<&str>, headers: &HeaderMap) -> Option<Response<MockBody>> {
    let key = key?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(auth) = header("authorization") else {
        return Some(error(
            403,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        ));
    };
    let field = |name: &str| {
        auth.strip_prefix("AWS4-HMAC-SHA256 ")
            .and_then(|rest| rest.split(", ").find_map(|kv| kv.trim().strip_prefix(name)))
    };
    let credential = field("Credential=").and_then(|c| c.split('/').next());
    let (key_id, session_token) = match key.split_once(':') {
        Some((id, token)) => (id, Some(token)),
        None => (key, None),
    };
    let token_signed =
        field("SignedHeaders=").is_some_and(|h| h.split(';').any(|h| h == "x-amz-security-token"));
    let token_ok = session_token
        .is_none_or(|want| header("x-amz-security-token") == Some(want) && token_signed);
    if credential != Some(key_id) || !token_ok {
        return Some(error(
            403,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ));
    }
    if header("x-amz-date").is_none() {
        return Some(error(
            403,
            "IncompleteSignatureException",
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        ));
    }
    None
}

/// The answer to a `status=N` fault: the error type Bedrock uses for that status.
fn status_error(status: u16) -> Response<MockBody> {
    let (kind, message) = match status {
        400 => ("ValidationException", "Mock fault: status 400."),
        403 => (
            "AccessDeniedException",
            "You don't have access to the model with the specified model ID.",
        ),
        404 => (
            "ResourceNotFoundException",
            "The model was not found. (mock fault)",
        ),
        408 => (
            "ModelTimeoutException",
            "The model took too long to respond. (mock fault)",
        ),
        424 => (
            "ModelErrorException",
            "The model returned an error. (mock fault)",
        ),
        429 => (
            "ThrottlingException",
            "Too many requests, please wait before trying again. (mock fault)",
        ),
        503 => (
            "ServiceUnavailableException",
            "Bedrock is unable to process your request. (mock fault)",
        ),
        s if s < 500 => ("ValidationException", "Mock fault."),
        _ => (
            "InternalServerException",
            "The server encountered an internal error. (mock fault)",
        ),
    };
    error(status, kind, message)
}

/// `{"message": ...}` with the type in `x-amzn-errortype`, as Bedrock's REST-JSON errors come.
pub fn error(status: u16, kind: &str, message: &str) -> Response<MockBody> {
    let body = json!({ "message": message }).to_string();
    let mut resp = respond(
        status,
        &[(CONTENT_TYPE, "application/json")],
        MockBody::full(body),
    );
    let errortype = format!("{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/");
    if let Ok(v) = HeaderValue::from_str(&errortype) {
        resp.headers_mut().insert("x-amzn-errortype", v);
    }
    resp
}

/// The stream: each event its own HTTP chunk, rendered when sent, with `reset=mid` (half the
/// events, then a cut connection) and `chunk_delay_ms`.
fn event_stream(converse: Arc<Converse>, fault: &Fault, ctl: &Arc<ConnCtl>) -> Response<MockBody> {
    let events = converse.events(fault.malformed, fault.truncated);
    let total = events.clone().count();
    let (limit, abort) = match fault.reset {
        Some(Reset::Mid) => (total / 2, Some(ctl.clone())),
        _ => (total, None),
    };
    let frames = events.take(limit).map(move |e| converse.render(e));
    let (tx, body) = MockBody::channel();
    let gap = Duration::from_millis(fault.chunk_delay_ms);
    tokio::spawn(pump(tx, frames, gap, abort));
    respond(
        200,
        &[(CONTENT_TYPE, "application/vnd.amazon.eventstream")],
        body,
    )
}
