//! Gemini answers -> OpenAI: the non-stream response, usage, finish reasons and errors.

use serde_json::{json, Value};

use super::REASONING_FORMAT;
use crate::api::ApiError;
use crate::dialects::common::{error_text, now_unix, tool_call_json, Reply, UNREPORTED_USAGE};
use crate::metering::Usage;

/// `usageMetadata` normalised. Gemini counts thoughts apart from `candidatesTokenCount` and
/// tool-use prompts (e.g. search results) apart from `promptTokenCount`; OpenAI's counts
/// include both.
pub(super) fn usage(meta: &Value) -> Usage {
    let n = |k: &str| meta.get(k).and_then(Value::as_u64).unwrap_or(0);
    Usage {
        prompt: n("promptTokenCount").saturating_add(n("toolUsePromptTokenCount")),
        completion: n("candidatesTokenCount").saturating_add(n("thoughtsTokenCount")),
        cached_prompt: n("cachedContentTokenCount"),
        reasoning: n("thoughtsTokenCount"),
        // Gemini does not bill writing its implicit cache.
        cache_write: 0,
        estimated: false,
    }
}

/// OpenAI's `finish_reason` for a candidate's `finishReason` (kept raw in
/// `native_finish_reason`). Gemini says STOP after function calls too.
pub(super) fn finish_reason(native: &str, tool_calls: bool) -> &'static str {
    match native {
        "MAX_TOKENS" => "length",
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION" => "content_filter",
        _ if tool_calls => "tool_calls",
        _ => "stop",
    }
}

/// Gemini has no call ids (newer models may send one): `<prefix><n>` by position in the
/// answer, the prefix ([`call_id_prefix`]) naming the answer, so that the calls of every turn
/// of a conversation have ids of their own (clients key results by id; Claude refuses a
/// conversation that repeats a `tool_use` id).
pub(super) fn call_id(call: &Value, prefix: &str, n: usize) -> String {
    match call.get("id").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => id.to_string(),
        _ => format!("{prefix}{n}"),
    }
}

/// `call_<answer>_` for an answer's calls: Gemini's `responseId` (unique to each answer)
/// reduced to the characters every provider accepts in an id (Claude's `[A-Za-z0-9_-]`);
/// when the answer has none, `fallback` (the gateway's generation id, also unique), else
/// random characters.
pub(super) fn call_id_prefix(response_id: &str, fallback: &str) -> String {
    use rand::distributions::{Alphanumeric, DistString};
    let id_char = |c: &char| c.is_ascii_alphanumeric() || *c == '_' || *c == '-';
    let mut prefix = String::with_capacity(response_id.len().max(24) + 6);
    prefix.push_str("call_");
    let start = prefix.len();
    prefix.extend(response_id.chars().filter(id_char));
    if prefix.len() == start {
        prefix.extend(fallback.chars().filter(id_char));
    }
    if prefix.len() == start {
        Alphanumeric.append_string(&mut rand::thread_rng(), &mut prefix, 16);
    }
    prefix.push('_');
    prefix
}

/// The detail that carries a function call's `thoughtSignature` back next turn.
pub(super) fn signature_detail(signature: &str, call_id: &str, index: usize) -> Value {
    json!({ "type": "reasoning.encrypted", "data": signature, "id": call_id, "format": REASONING_FORMAT, "index": index })
}

/// The answer as an OpenAI `chat.completion` (the provider's `responseId` and `modelVersion`;
/// the proxy stamps its own) and the usage. When Gemini reported no usage, the value has no
/// `usage` and the returned usage is [`UNREPORTED_USAGE`]: the proxy must estimate.
pub fn chat_response(body: &[u8]) -> Result<(Value, Usage), ApiError> {
    chat_response_at(body, now_unix())
}

/// [`chat_response`] with the `created` time given.
pub fn chat_response_at(body: &[u8], created: u64) -> Result<(Value, Usage), ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|_| ApiError::bad_gateway("the provider answered with a body that is not JSON"))?;
    if let Some(message) = v.get("error").map(|e| {
        e.get("message")
            .and_then(Value::as_str)
            .unwrap_or("unknown error")
    }) {
        return Err(ApiError::bad_gateway(format!(
            "the provider answered with an error: {message}"
        )));
    }
    if !v.is_object() {
        return Err(ApiError::bad_gateway(
            "the provider's answer is not a JSON object",
        ));
    }
    let candidate = v.pointer("/candidates/0");
    let mut reply = Reply::default();
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default();
    let prefix = call_id_prefix(s("responseId"), "");
    let parts = candidate
        .and_then(|c| c.pointer("/content/parts"))
        .and_then(Value::as_array);
    for part in parts.into_iter().flatten() {
        if let Some(call) = part.get("functionCall") {
            let id = call_id(call, &prefix, reply.tool_calls.len());
            let name = call.get("name").and_then(Value::as_str).unwrap_or_default();
            let args = call.get("args").cloned().unwrap_or_else(|| json!({}));
            if let Some(sig) = part.get("thoughtSignature").and_then(Value::as_str) {
                let index = reply.reasoning_details.len();
                reply
                    .reasoning_details
                    .push(signature_detail(sig, &id, index));
            }
            reply
                .tool_calls
                .push(tool_call_json(None, &id, name, args.to_string()));
        } else if let Some(text) = part.get("text").and_then(Value::as_str) {
            match part.get("thought") == Some(&Value::Bool(true)) {
                true => reply.reasoning.push_str(text),
                false => reply.content.push_str(text),
            }
        }
    }
    let blocked = v
        .pointer("/promptFeedback/blockReason")
        .and_then(Value::as_str);
    let (finish, native) = match (
        candidate
            .and_then(|c| c.get("finishReason"))
            .and_then(Value::as_str),
        blocked,
    ) {
        (Some(native), _) => (finish_reason(native, !reply.tool_calls.is_empty()), native),
        // A blocked prompt has no candidate at all.
        (None, Some(reason)) => ("content_filter", reason),
        (None, None) => ("stop", "STOP"),
    };
    let reported = v.get("usageMetadata").filter(|m| m.is_object()).map(usage);
    let completion = reply.into_completion(
        s("responseId"),
        s("modelVersion"),
        created,
        (finish, native),
        reported.as_ref(),
    );
    Ok((completion, reported.unwrap_or(UNREPORTED_USAGE)))
}

/// The status a Gemini error answer means, and the provider's message. The gRPC `status`
/// decides. An invalid key is a 401 although Gemini says 400, and a failed precondition
/// (Gemini's "not available in your country / enable billing") is the provider account's
/// problem, not the request's: 502. Not yet what the client gets or what failover decides:
/// both are decided on the head, before this body is read (`error_status_at_head`), and
/// failing over on the body would mean holding every error head until its body is in.
pub fn error_status(status: u16, body: &[u8]) -> (u16, String) {
    let v: Option<Value> = serde_json::from_slice(body).ok();
    // streamGenerateContent without `alt=sse` wraps the error in an array.
    let error = v
        .as_ref()
        .map(|v| v.pointer("/0").unwrap_or(v))
        .and_then(|v| v.get("error"));
    let message = error
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .map(String::from)
        .unwrap_or_else(|| error_text(status, body));
    let key_invalid = error
        .and_then(|e| e.get("details"))
        .and_then(Value::as_array)
        .is_some_and(|d| d.iter().any(|d| d["reason"] == "API_KEY_INVALID"));
    let mapped = match error.and_then(|e| e.get("status")).and_then(Value::as_str) {
        _ if key_invalid => 401,
        Some("INVALID_ARGUMENT" | "OUT_OF_RANGE") => 400,
        Some("FAILED_PRECONDITION") => 502,
        Some("UNAUTHENTICATED") => 401,
        Some("PERMISSION_DENIED") => 403,
        Some("NOT_FOUND") => 404,
        Some("RESOURCE_EXHAUSTED") => 429,
        Some("INTERNAL" | "UNKNOWN" | "DATA_LOSS") => 500,
        Some("UNAVAILABLE") => 503,
        Some("DEADLINE_EXCEEDED") => 504,
        _ => status,
    };
    (mapped, message)
}
