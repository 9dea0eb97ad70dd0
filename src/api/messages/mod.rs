//! `POST /v1/messages`: the Anthropic Messages front door.
//!
//! The gateway's pipeline speaks OpenAI chat, so this door converts at both ends:
//! - in: [`to_chat_request`] turns a Messages request into an OpenAI chat request body the
//!   pipeline accepts (routing fields included);
//! - out: [`from_chat_completion`] and [`ChatToMessagesStream`] turn the OpenAI answer the
//!   proxy would send an OpenAI client into an Anthropic message or Anthropic SSE events.
//!
//! When the serving provider speaks Anthropic itself, nothing is converted: the upstream gets
//! the client's own body with the model rewritten ([`passthrough_body`]) and the answer goes
//! back as the provider sent it, only read for usage and stamped with the generation id,
//! catalog model, provider and cost ([`AnthropicStreamTap`], [`passthrough_message`]). That
//! keeps everything only Anthropic knows (betas, server tools, signed thinking,
//! `context_management`) intact, and its errors unchanged.
//!
//! Errors are `ApiError` rendered with `FrontDoor::Anthropic`; a failure after the first
//! streamed byte is an Anthropic `error` event ([`error_event`]).

pub(crate) mod chunks;
mod content;
mod passthrough;
mod request;
mod response;
mod stream;
#[cfg(test)]
mod tests;

use bytes::Bytes;
use serde_json::{json, Value};

use crate::dialects::{anthropic, bedrock};
use crate::metering::Usage;

pub use passthrough::{passthrough_body, passthrough_message, AnthropicStreamTap, StreamStamp};
pub use request::{to_chat_request, MessagesRequest};
pub use response::from_chat_completion;
pub use stream::ChatToMessagesStream;

/// The `reasoning_details[].format`s of Claude's signed thinking: Anthropic's and Bedrock's.
/// Only these become `thinking` signatures and `redacted_thinking` blocks, which a client
/// hands back to Claude; another provider's (Gemini's thought signatures) Claude refuses.
const CLAUDE_REASONING_FORMATS: &[&str] = &[anthropic::REASONING_FORMAT, bedrock::REASONING_FORMAT];

/// Anthropic's own stop reasons: when the provider stated one (`native_finish_reason`), it is
/// used as it is rather than guessed back from OpenAI's coarser reason.
const ANTHROPIC_STOP_REASONS: &[&str] = &[
    "end_turn",
    "max_tokens",
    "stop_sequence",
    "tool_use",
    "pause_turn",
    "refusal",
    "model_context_window_exceeded",
];

/// Anthropic's `stop_reason` for an OpenAI `finish_reason`. Some OpenAI-compatible hosts end a
/// tool call with `stop`; agents run tools only on `tool_use`, so a message that holds tool
/// calls says so whatever the host said.
fn stop_reason(reason: &str, native: Option<&str>, has_tool_calls: bool) -> String {
    if let Some(n) = native.filter(|n| ANTHROPIC_STOP_REASONS.contains(n)) {
        return n.to_string();
    }
    let mapped = match reason {
        "length" => "max_tokens",
        "tool_calls" | "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ if has_tool_calls => "tool_use",
        _ => "end_turn",
    };
    mapped.to_string()
}

/// Anthropic's usage object. Its `input_tokens` excludes cache reads and writes, which
/// OpenAI's `prompt_tokens` includes. `cost` (USD) and `estimated` (the provider reported
/// nothing, as on the chat door) are the gateway's extensions.
fn usage_json(usage: &Usage, reports_cache_write: bool, cost: Option<&Value>) -> Value {
    let cached = usage.cached_prompt.min(usage.prompt);
    let written = usage.cache_write.min(usage.prompt - cached);
    let mut v = json!({
        "input_tokens": usage.prompt - cached - written,
        "output_tokens": usage.completion,
        "cache_read_input_tokens": cached,
    });
    if reports_cache_write || written > 0 {
        v["cache_creation_input_tokens"] = json!(written);
    }
    if let Some(c) = cost {
        v["cost"] = c.clone();
    }
    if usage.estimated {
        v["estimated"] = json!(true);
    }
    v
}

/// Anthropic's error `type` for an OpenAI-shaped error object (`code` holds the HTTP status in
/// the gateway's stream error chunks).
fn error_type(error: &Value) -> &'static str {
    let status = error.get("code").and_then(Value::as_u64).unwrap_or(0);
    let kind = error
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match (status, kind) {
        (_, "overloaded_error") | (503 | 529, _) => "overloaded_error",
        (_, "rate_limit_error") | (429, _) => "rate_limit_error",
        (408 | 504, _) | (_, "timeout_error") => "timeout_error",
        _ => "api_error",
    }
}

/// The Anthropic `error` event for an OpenAI-shaped error object.
fn error_json(error: &Value) -> Value {
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("the upstream stream failed");
    json!({ "type": "error", "error": { "type": error_type(error), "message": message } })
}

/// The Anthropic SSE event that ends a stream which failed after its first byte (for the
/// passthrough case, where no converter writes it).
pub fn error_event(error: &crate::api::ApiError) -> Bytes {
    let mut out = Vec::new();
    let body = json!({ "code": error.status, "type": error.kind, "message": error.message });
    write_event(&mut out, &error_json(&body));
    Bytes::from(out)
}

/// OpenAI refuses `tool_choice` and `parallel_tool_calls` without tools (and an empty
/// `tools`), which is what is left when every tool a client sent was one of a provider's own.
pub(crate) fn drop_tool_settings_without_tools(
    body: &mut serde_json::Map<String, Value>,
    dropped: &mut Vec<String>,
) {
    if body.contains_key("tools") {
        return;
    }
    for key in ["tool_choice", "parallel_tool_calls"] {
        if body.shift_remove(key).is_some() {
            dropped.push(format!("{key} (no function tools left)"));
        }
    }
}

/// `event: <type>\ndata: <json>\n\n`, as Anthropic names every event after its `type`.
fn write_event(out: &mut Vec<u8>, data: &Value) {
    let kind = data
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("message");
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(data.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
}
