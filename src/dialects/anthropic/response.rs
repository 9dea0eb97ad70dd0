//! Anthropic answers -> OpenAI: the non-stream message, its usage, and error statuses.

use serde_json::{json, Value};

use super::{finish_reason, REASONING_FORMAT};
use crate::api::ApiError;
use crate::dialects::common::{error_text, now_unix, tool_call_json, Reply, UNREPORTED_USAGE};
use crate::metering::Usage;

/// Anthropic's token counts. `input_tokens` excludes cache reads and writes, which OpenAI's
/// `prompt_tokens` includes, so the normalised prompt is their sum.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct AnthropicUsage {
    input: u64,
    output: u64,
    cache_read: u64,
    cache_creation: u64,
}

impl AnthropicUsage {
    /// Takes every count present in `usage` (stream events repeat them cumulatively).
    pub fn merge(&mut self, usage: &Value) {
        let take = |key: &str, slot: &mut u64| {
            if let Some(n) = usage.get(key).and_then(Value::as_u64) {
                *slot = n;
            }
        };
        take("input_tokens", &mut self.input);
        take("output_tokens", &mut self.output);
        take("cache_read_input_tokens", &mut self.cache_read);
        take("cache_creation_input_tokens", &mut self.cache_creation);
    }

    pub fn normalised(&self) -> Usage {
        Usage {
            prompt: self
                .input
                .saturating_add(self.cache_read)
                .saturating_add(self.cache_creation),
            completion: self.output,
            cached_prompt: self.cache_read,
            cache_write: self.cache_creation,
            // Anthropic bills thinking as output and does not report it apart.
            reasoning: 0,
            estimated: false,
        }
    }
}

/// The answer as an OpenAI `chat.completion` (the provider's id and model; the proxy stamps
/// its own) and the usage ([`UNREPORTED_USAGE`], and no `usage` in the value, when the
/// provider reported none). An error body or a body that is not a message is a 502.
pub fn chat_response(body: &[u8]) -> Result<(Value, Usage), ApiError> {
    chat_response_at(body, now_unix())
}

/// [`chat_response`] with the `created` time given.
pub fn chat_response_at(body: &[u8], created: u64) -> Result<(Value, Usage), ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|_| ApiError::bad_gateway("the provider answered with a body that is not JSON"))?;
    if v["type"] == "error" {
        let message = v
            .pointer("/error/message")
            .and_then(Value::as_str)
            .unwrap_or("unknown error");
        return Err(ApiError::bad_gateway(format!(
            "the provider answered with an error: {message}"
        )));
    }
    let Some(content) = v.get("content").and_then(Value::as_array) else {
        return Err(ApiError::bad_gateway(
            "the provider's answer has no `content`",
        ));
    };
    let mut reply = Reply::default();
    for block in content {
        let s = |k: &str| block.get(k).and_then(Value::as_str).unwrap_or_default();
        match s("type") {
            "text" => reply.content.push_str(s("text")),
            "thinking" => {
                reply.reasoning.push_str(s("thinking"));
                let index = reply.reasoning_details.len();
                reply.reasoning_details.push(json!({
                    "type": "reasoning.text", "text": s("thinking"), "signature": s("signature"),
                    "format": REASONING_FORMAT, "index": index,
                }));
            }
            "redacted_thinking" => {
                let index = reply.reasoning_details.len();
                reply.reasoning_details.push(json!({
                    "type": "reasoning.encrypted", "data": s("data"), "format": REASONING_FORMAT, "index": index,
                }));
            }
            "tool_use" => {
                let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
                reply
                    .tool_calls
                    .push(tool_call_json(None, s("id"), s("name"), input.to_string()));
            }
            // Server tools' blocks, citations and future types have no OpenAI equivalent.
            _ => {}
        }
    }
    let native = v
        .get("stop_reason")
        .and_then(Value::as_str)
        .unwrap_or("end_turn");
    let reported = v.get("usage").filter(|u| u.is_object()).map(|u| {
        let mut usage = AnthropicUsage::default();
        usage.merge(u);
        usage.normalised()
    });
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default();
    let finish = (finish_reason(native), native);
    let completion = reply.into_completion(s("id"), s("model"), created, finish, reported.as_ref());
    Ok((completion, reported.unwrap_or(UNREPORTED_USAGE)))
}

/// The status the gateway treats an Anthropic error answer as, and the provider's message.
/// The error `type` decides, since it is more precise than the status: `overloaded_error`
/// (Anthropic's 529) is a 503, so the proxy fails over as it would for any overloaded host.
pub fn error_status(status: u16, body: &[u8]) -> (u16, String) {
    let v: Option<Value> = serde_json::from_slice(body).ok();
    let error = v.as_ref().and_then(|v| v.get("error"));
    let message = error
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .map(String::from)
        .unwrap_or_else(|| error_text(status, body));
    let mapped = match error.and_then(|e| e.get("type")).and_then(Value::as_str) {
        Some("invalid_request_error") if status == 413 => 413,
        Some("invalid_request_error") => 400,
        Some("authentication_error") => 401,
        Some("billing_error") => 402,
        Some("permission_error") => 403,
        Some("not_found_error") => 404,
        Some("request_too_large") => 413,
        Some("rate_limit_error") => 429,
        Some("api_error") => 500,
        Some("overloaded_error") => 503,
        Some("timeout_error") => 504,
        _ if status == 529 => 503,
        _ => status,
    };
    (mapped, message)
}
