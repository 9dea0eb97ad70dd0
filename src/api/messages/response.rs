//! The OpenAI `chat.completion` the proxy would send -> an Anthropic `message`.
//!
//! - `message.reasoning` (or `reasoning_content`) -> a `thinking` block first; when the
//!   completion carries Claude's signed thinking in `reasoning_details` (from Anthropic or
//!   Bedrock), one block per entry with its signature (and `redacted_thinking` for encrypted
//!   ones), so it can be sent back.
//! - `content` -> one `text` block; `tool_calls` -> `tool_use` blocks with `input` parsed from
//!   the arguments (arguments that are not a JSON object become `{}`: Anthropic's `input` is
//!   always an object).
//! - `finish_reason` -> `stop_reason` (see [`super::stop_reason`]); `stop_sequence` is null,
//!   since OpenAI does not say which sequence matched.
//! - `usage` -> Anthropic's usage with `cost`; `provider` is kept.

use serde_json::{json, Map, Value};

use super::chunks::StreamUsage;
use super::{error_json, stop_reason, usage_json, CLAUDE_REASONING_FORMATS};

pub fn from_chat_completion(completion: &Value) -> Value {
    let choice = completion.pointer("/choices/0");
    if choice.is_none() {
        if let Some(error) = completion.get("error").filter(|e| e.is_object()) {
            return error_json(error);
        }
    }
    let message = choice
        .and_then(|c| c.get("message"))
        .and_then(Value::as_object);
    let empty = Map::new();
    let message = message.unwrap_or(&empty);
    let mut content = thinking_blocks(message);
    let text = text_of(message.get("content")).or_else(|| text_of(message.get("refusal")));
    if let Some(text) = text.filter(|t| !t.is_empty()) {
        content.push(json!({ "type": "text", "text": text }));
    }
    let calls = message.get("tool_calls").and_then(Value::as_array);
    for call in calls.into_iter().flatten() {
        let s = |p: &str| call.pointer(p).and_then(Value::as_str).unwrap_or_default();
        let input = match serde_json::from_str::<Value>(s("/function/arguments")) {
            Ok(v @ Value::Object(_)) => v,
            _ => json!({}),
        };
        content.push(json!({ "type": "tool_use", "id": s("/id"), "name": s("/function/name"), "input": input }));
    }
    let reason = choice
        .and_then(|c| c.get("finish_reason"))
        .and_then(Value::as_str)
        .unwrap_or("stop");
    let native = choice
        .and_then(|c| c.get("native_finish_reason"))
        .and_then(Value::as_str);
    let has_tools = content.iter().any(|b| b["type"] == "tool_use");
    let s = |k: &str| {
        completion
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let usage = completion
        .get("usage")
        .and_then(StreamUsage::from_value)
        .map(|u| usage_json(&u.usage, u.reports_cache_write, u.cost.as_ref()))
        .unwrap_or_else(|| json!({ "input_tokens": 0, "output_tokens": 0 }));
    let mut out = json!({
        "id": s("id"),
        "type": "message",
        "role": "assistant",
        "model": s("model"),
        "content": content,
        "stop_reason": stop_reason(reason, native, has_tools),
        "stop_sequence": null,
        "usage": usage,
    });
    if let Some(p) = completion.get("provider").filter(|p| p.is_string()) {
        out["provider"] = p.clone();
    }
    out
}

/// A message's text: a string, or the text parts of an array.
fn text_of(content: Option<&Value>) -> Option<String> {
    match content? {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => Some(
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect(),
        ),
        _ => None,
    }
}

fn thinking_blocks(message: &Map<String, Value>) -> Vec<Value> {
    let signed: Vec<Value> = message
        .get("reasoning_details")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|d| {
            d.get("format")
                .and_then(Value::as_str)
                .is_some_and(|f| CLAUDE_REASONING_FORMATS.contains(&f))
        })
        .filter_map(|d| {
            let s = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or_default();
            match s("type") {
                "reasoning.text" => Some(
                    json!({ "type": "thinking", "thinking": s("text"), "signature": s("signature") }),
                ),
                "reasoning.encrypted" => Some(json!({ "type": "redacted_thinking", "data": s("data") })),
                _ => None,
            }
        })
        .collect();
    if !signed.is_empty() {
        return signed;
    }
    let text = ["reasoning", "reasoning_content"].iter().find_map(|k| {
        message
            .get(*k)
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
    });
    text.map(|t| vec![json!({ "type": "thinking", "thinking": t, "signature": "" })])
        .unwrap_or_default()
}
