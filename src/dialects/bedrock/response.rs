//! Converse answers -> OpenAI: the non-stream message, its usage, and error statuses.

use serde_json::{json, Value};

use super::{finish_reason, REASONING_FORMAT};
use crate::api::ApiError;
use crate::dialects::common::{error_text, now_unix, tool_call_json, Reply, UNREPORTED_USAGE};
use crate::metering::Usage;

/// `TokenUsage` normalised. Like Anthropic's, Bedrock's `inputTokens` leaves out the tokens
/// read from and written to the prompt cache, which OpenAI's `prompt_tokens` includes. Bedrock
/// does not report reasoning apart from `outputTokens`.
pub(super) fn usage(u: &Value) -> Usage {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    Usage {
        prompt: n("inputTokens")
            .saturating_add(n("cacheReadInputTokens"))
            .saturating_add(n("cacheWriteInputTokens")),
        completion: n("outputTokens"),
        cached_prompt: n("cacheReadInputTokens"),
        cache_write: n("cacheWriteInputTokens"),
        reasoning: 0,
        estimated: false,
    }
}

/// The answer as an OpenAI `chat.completion` and its usage. Converse answers carry no id and
/// no model (the proxy stamps its own): both are empty. When Bedrock reported no usage, the
/// value has no `usage` and the returned usage is [`UNREPORTED_USAGE`]: the proxy estimates.
pub fn chat_response(body: &[u8]) -> Result<(Value, Usage), ApiError> {
    chat_response_at(body, now_unix())
}

/// [`chat_response`] with the `created` time given.
pub fn chat_response_at(body: &[u8], created: u64) -> Result<(Value, Usage), ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|_| ApiError::bad_gateway("the provider answered with a body that is not JSON"))?;
    let Some(content) = v
        .pointer("/output/message/content")
        .and_then(Value::as_array)
    else {
        return Err(ApiError::bad_gateway(match error_message(&v) {
            Some(m) => format!("the provider answered with an error: {m}"),
            None => "the provider's answer has no `output.message.content`".into(),
        }));
    };
    let mut reply = Reply::default();
    for block in content {
        if let Some(text) = block.get("text").and_then(Value::as_str) {
            reply.content.push_str(text);
        } else if let Some(call) = block.get("toolUse") {
            let s = |k: &str| call.get(k).and_then(Value::as_str).unwrap_or_default();
            let input = call.get("input").cloned().unwrap_or_else(|| json!({}));
            reply.tool_calls.push(tool_call_json(
                None,
                s("toolUseId"),
                s("name"),
                input.to_string(),
            ));
        } else if let Some(r) = block.get("reasoningContent") {
            let index = reply.reasoning_details.len();
            if let Some(t) = r.get("reasoningText") {
                let s = |k: &str| t.get(k).and_then(Value::as_str).unwrap_or_default();
                reply.reasoning.push_str(s("text"));
                reply.reasoning_details.push(json!({
                    "type": "reasoning.text", "text": s("text"), "signature": s("signature"),
                    "format": REASONING_FORMAT, "index": index,
                }));
            } else if let Some(data) = r.get("redactedContent").and_then(Value::as_str) {
                reply.reasoning_details.push(json!({
                    "type": "reasoning.encrypted", "data": data, "format": REASONING_FORMAT, "index": index,
                }));
            }
        }
        // Images, documents, citations and guard content have no OpenAI equivalent.
    }
    let native = v
        .get("stopReason")
        .and_then(Value::as_str)
        .unwrap_or("end_turn");
    let reported = v.get("usage").filter(|u| u.is_object()).map(usage);
    let finish = (finish_reason(native), native);
    let completion = reply.into_completion("", "", created, finish, reported.as_ref());
    Ok((completion, reported.unwrap_or(UNREPORTED_USAGE)))
}

fn error_message(v: &Value) -> Option<&str> {
    v.get("message")
        .or_else(|| v.get("Message"))
        .and_then(Value::as_str)
}

/// The status the gateway treats a Bedrock error answer as, and the provider's message.
/// Bedrock names the error in the `x-amzn-errortype` header, which this cannot see: pass it
/// to [`error_status_typed`] when at hand. A `__type` or `code` in the body is read too.
pub fn error_status(status: u16, body: &[u8]) -> (u16, String) {
    error_status_typed(status, None, body)
}

/// [`error_status`] with the `x-amzn-errortype` header (`ThrottlingException:http://...`).
///
/// The error type decides: throttling and quotas are 429; an unavailable or not-yet-loaded
/// model is 503; signature, credential and model-access refusals (Bedrock's 403s) are 401, as
/// they mean the gateway's own AWS setup is wrong; a model timeout is 504; errors inside the
/// model are 502. Without a type, the status does (403 -> 401, 408 -> 504, 424 -> 502).
pub fn error_status_typed(status: u16, error_type: Option<&str>, body: &[u8]) -> (u16, String) {
    let v: Option<Value> = serde_json::from_slice(body).ok();
    let message = v
        .as_ref()
        .and_then(error_message)
        .map(String::from)
        .unwrap_or_else(|| error_text(status, body));
    let from_body = v.as_ref().and_then(|v| {
        ["__type", "code", "Code"]
            .iter()
            .find_map(|k| v.get(*k).and_then(Value::as_str))
    });
    let mapped = error_type
        .or(from_body)
        .and_then(|t| type_status(t, status))
        .unwrap_or(match status {
            403 => 401,
            408 => 504,
            424 => 502,
            s => s,
        });
    (mapped, message)
}

/// The status of an error type, as the HTTP header (`ThrottlingException:http://...`), a
/// body (`com.amazon.coral.service#UnrecognizedClientException`) or a stream exception
/// (`throttlingException`) names it. `None` for types this does not know.
pub(super) fn type_status(error_type: &str, status: u16) -> Option<u16> {
    let name = error_type.split(':').next().unwrap_or_default();
    let name = name.rsplit('#').next().unwrap_or_default().trim();
    Some(match name.to_ascii_lowercase().as_str() {
        "throttlingexception" | "servicequotaexceededexception" | "toomanyrequestsexception" => 429,
        "serviceunavailableexception" | "modelnotreadyexception" => 503,
        "validationexception" if status == 413 => 413,
        "validationexception" => 400,
        "accessdeniedexception"
        | "unrecognizedclientexception"
        | "invalidsignatureexception"
        | "incompletesignatureexception"
        | "missingauthenticationtokenexception"
        | "expiredtokenexception" => 401,
        "resourcenotfoundexception" => 404,
        "modeltimeoutexception" => 504,
        "modelerrorexception" | "modelstreamerrorexception" => 502,
        "internalserverexception" => 500,
        _ => return None,
    })
}
