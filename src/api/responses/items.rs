//! The Responses shapes both the whole answer and the stream write: output items, the
//! `response` object, usage and status. One set of builders keeps a streamed response and a
//! whole one identical item for item (the SDKs check that item ids never change).

use serde_json::{json, Value};

use crate::api::messages::chunks::StreamUsage;

/// An output item as it is built up.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Item {
    Message {
        id: String,
        text: String,
        refusal: bool,
    },
    Reasoning {
        id: String,
        text: String,
    },
    FunctionCall {
        id: String,
        call_id: String,
        name: String,
        arguments: String,
    },
}

/// Item ids: the response id and the item's position make them unique within a response.
pub(super) fn item_id(prefix: &str, response_id: &str, output_index: usize) -> String {
    format!("{prefix}_{response_id}_{output_index}")
}

impl Item {
    /// The message's content part (`output_text`, or `refusal`).
    pub fn part(text: &str, refusal: bool) -> Value {
        if refusal {
            json!({ "type": "refusal", "refusal": text })
        } else {
            json!({ "type": "output_text", "text": text, "annotations": [], "logprobs": [] })
        }
    }

    /// The item as `output` lists it: `status` is `in_progress` while it streams.
    pub fn to_json(&self, status: &str) -> Value {
        match self {
            Item::Message { id, text, refusal } => {
                let content = if status == "in_progress" {
                    json!([])
                } else {
                    json!([Item::part(text, *refusal)])
                };
                json!({ "id": id, "type": "message", "status": status, "role": "assistant", "content": content })
            }
            Item::Reasoning { id, text } => {
                let mut item =
                    json!({ "id": id, "type": "reasoning", "summary": [], "status": status });
                if status != "in_progress" {
                    item["content"] = json!([{ "type": "reasoning_text", "text": text }]);
                }
                item
            }
            Item::FunctionCall {
                id,
                call_id,
                name,
                arguments,
            } => json!({
                "id": id, "type": "function_call", "status": status, "call_id": call_id,
                "name": name, "arguments": arguments,
            }),
        }
    }
}

/// `completed`, or `incomplete` with its reason, for a chat `finish_reason`.
pub(super) fn status_of(finish_reason: Option<&str>) -> (&'static str, Value) {
    match finish_reason {
        Some("length") => ("incomplete", json!({ "reason": "max_output_tokens" })),
        Some("content_filter") => ("incomplete", json!({ "reason": "content_filter" })),
        _ => ("completed", Value::Null),
    }
}

/// The Responses usage object, with the gateway's `cost` (USD) and, when the provider reported
/// nothing, `estimated` (as on the chat door).
pub(super) fn usage_json(u: &StreamUsage) -> Value {
    let c = &u.usage;
    let mut v = json!({
        "input_tokens": c.prompt,
        "input_tokens_details": { "cached_tokens": c.cached_prompt, "cache_write_tokens": c.cache_write },
        "output_tokens": c.completion,
        "output_tokens_details": { "reasoning_tokens": c.reasoning },
        "total_tokens": c.total(),
    });
    if let Some(cost) = &u.cost {
        v["cost"] = cost.clone();
    }
    if c.estimated {
        v["estimated"] = json!(true);
    }
    v
}

/// The identity and outcome of one response.
pub(super) struct Envelope<'a> {
    pub id: &'a str,
    pub created_at: u64,
    pub model: &'a str,
    pub provider: Option<&'a str>,
}

impl Envelope<'_> {
    /// The `response` object. Request echoes the gateway does not keep (`tools`, `tool_choice`,
    /// `parallel_tool_calls`) hold their defaults, which the SDKs require to be present.
    pub fn response(&self, status: &str, output: Vec<Value>, usage: Option<Value>) -> Value {
        let mut r = json!({
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "error": null,
            "incomplete_details": null,
            "model": self.model,
            "output": output,
            "parallel_tool_calls": true,
            "tool_choice": "auto",
            "tools": [],
            "store": false,
            "usage": usage,
        });
        if let Some(p) = self.provider {
            r["provider"] = json!(p);
        }
        r
    }
}

/// The Responses error `code` for an OpenAI-shaped error object.
pub(super) fn error_code(error: &Value) -> &'static str {
    let status = error.get("code").and_then(Value::as_u64);
    let kind = error.get("type").and_then(Value::as_str);
    if status == Some(429) || kind == Some("rate_limit_error") {
        "rate_limit_exceeded"
    } else {
        "server_error"
    }
}
