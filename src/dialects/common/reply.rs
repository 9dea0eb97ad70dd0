//! The OpenAI shapes the foreign dialects write back: stream chunks, the completion object,
//! tool calls and usage.

use bytes::{BufMut, BytesMut};
use serde_json::{json, Value};

use crate::metering::Usage;

/// Writes OpenAI `chat.completion.chunk` events for one stream.
#[derive(Debug, Default)]
pub struct ChunkWriter {
    pub id: String,
    pub model: String,
    pub created: u64,
}

impl ChunkWriter {
    pub fn delta(&self, out: &mut BytesMut, delta: Value) {
        self.choice(out, delta, Value::Null, Value::Null);
    }

    pub fn finish(&self, out: &mut BytesMut, reason: &str, native: &str) {
        self.choice(out, json!({}), json!(reason), json!(native));
    }

    fn choice(&self, out: &mut BytesMut, delta: Value, finish: Value, native: Value) {
        let chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{ "index": 0, "delta": delta, "finish_reason": finish, "native_finish_reason": native }],
        });
        out.put_slice(b"data: ");
        out.put_slice(chunk.to_string().as_bytes());
        out.put_slice(b"\n\n");
    }
}

/// A non-stream answer as it is assembled from the provider's content.
#[derive(Debug, Default)]
pub struct Reply {
    pub content: String,
    pub reasoning: String,
    pub reasoning_details: Vec<Value>,
    pub tool_calls: Vec<Value>,
}

impl Reply {
    /// `usage: None` (the provider reported none) leaves `usage` out, so the proxy estimates.
    pub fn into_completion(
        self,
        id: &str,
        model: &str,
        created: u64,
        finish: (&str, &str),
        usage: Option<&Usage>,
    ) -> Value {
        let mut message = json!({ "role": "assistant", "content": self.content });
        if self.content.is_empty() && !self.tool_calls.is_empty() {
            message["content"] = Value::Null;
        }
        if !self.reasoning.is_empty() {
            message["reasoning"] = json!(self.reasoning);
        }
        if !self.reasoning_details.is_empty() {
            message["reasoning_details"] = Value::Array(self.reasoning_details);
        }
        if !self.tool_calls.is_empty() {
            message["tool_calls"] = Value::Array(self.tool_calls);
        }
        let mut completion = json!({
            "id": id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{
                "index": 0,
                "message": message,
                "logprobs": null,
                "finish_reason": finish.0,
                "native_finish_reason": finish.1,
            }],
        });
        if let Some(u) = usage {
            completion["usage"] = usage_json(u);
        }
        completion
    }
}

pub fn tool_call_json(index: Option<usize>, id: &str, name: &str, arguments: String) -> Value {
    let mut call = json!({ "id": id, "type": "function", "function": { "name": name, "arguments": arguments } });
    if let Some(i) = index {
        // Stream deltas carry the call's position first, as OpenAI orders them.
        call = json!({ "index": i, "id": id, "type": "function", "function": call["function"].take() });
    }
    call
}

/// OpenAI's usage object (the proxy adds `cost`).
pub fn usage_json(u: &Usage) -> Value {
    let mut v = json!({
        "prompt_tokens": u.prompt,
        "completion_tokens": u.completion,
        "total_tokens": u.total(),
        "prompt_tokens_details": { "cached_tokens": u.cached_prompt },
        "completion_tokens_details": { "reasoning_tokens": u.reasoning },
    });
    // OpenRouter's name for the prompt tokens written to the cache, when there were any.
    if u.cache_write > 0 {
        v["prompt_tokens_details"]["cache_write_tokens"] = json!(u.cache_write);
    }
    v
}

/// An error answer's text when it is not the provider's JSON: its start, or the status.
pub fn error_text(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return format!("the provider answered HTTP {status}");
    }
    text.chars().take(300).collect()
}

/// What a non-stream conversion returns when the provider reported no usage: zero counts
/// marked estimated, for the proxy to replace with its estimate.
pub const UNREPORTED_USAGE: Usage = Usage {
    prompt: 0,
    completion: 0,
    cached_prompt: 0,
    reasoning: 0,
    cache_write: 0,
    estimated: true,
};

pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
