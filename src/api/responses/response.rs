//! The OpenAI `chat.completion` the proxy would send -> a Responses `response` object.
//!
//! Output items, in the order a model produces them: `reasoning` (from `message.reasoning` or
//! `reasoning_content`), a `message` with one `output_text` (or `refusal`) part, then one
//! `function_call` per tool call. `finish_reason` length / content_filter make the response
//! `incomplete` with its reason. `usage` keeps the gateway's `cost`; `provider` is kept.
//! An error body (no `choices`) is returned as it is: this door's errors are OpenAI's.

use serde_json::Value;

use super::items::{item_id, status_of, usage_json, Envelope, Item};
use crate::api::messages::chunks::StreamUsage;

pub fn from_chat_completion(completion: &Value) -> Value {
    let Some(choice) = completion.pointer("/choices/0") else {
        if completion.get("error").is_some_and(Value::is_object) {
            return completion.clone();
        }
        return from_parts(completion, &Value::Null, None);
    };
    let finish = choice.get("finish_reason").and_then(Value::as_str);
    from_parts(completion, &choice["message"], finish)
}

fn from_parts(completion: &Value, message: &Value, finish: Option<&str>) -> Value {
    let s = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let id = s(completion, "id");
    let mut items = Vec::new();
    let reasoning = ["reasoning", "reasoning_content"].iter().find_map(|k| {
        message
            .get(*k)
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
    });
    if let Some(text) = reasoning {
        items.push(Item::Reasoning {
            id: item_id("rs", &id, items.len()),
            text: text.to_string(),
        });
    }
    let calls = message.get("tool_calls").and_then(Value::as_array);
    let text = text_of(message.get("content"));
    let refusal = message
        .get("refusal")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty());
    match (text, refusal) {
        (Some(t), _) if !t.is_empty() => items.push(message_item(&id, items.len(), t, false)),
        (_, Some(r)) => items.push(message_item(&id, items.len(), r.to_string(), true)),
        // A bare answer still has its (empty) message, so `output_text` reads as "".
        _ if calls.is_none_or(Vec::is_empty) => {
            items.push(message_item(&id, items.len(), String::new(), false))
        }
        _ => {}
    }
    for call in calls.into_iter().flatten() {
        let field = |p: &str| {
            call.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        items.push(Item::FunctionCall {
            id: item_id("fc", &id, items.len()),
            call_id: field("/id"),
            name: field("/function/name"),
            arguments: field("/function/arguments"),
        });
    }
    let (status, incomplete) = status_of(finish);
    let item_status = if status == "incomplete" {
        "incomplete"
    } else {
        "completed"
    };
    let output = items.iter().map(|i| i.to_json(item_status)).collect();
    let usage = completion.get("usage").and_then(StreamUsage::from_value);
    let model = s(completion, "model");
    let envelope = Envelope {
        id: &id,
        created_at: completion
            .get("created")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        model: &model,
        provider: completion.get("provider").and_then(Value::as_str),
    };
    let mut response = envelope.response(status, output, usage.as_ref().map(usage_json));
    response["incomplete_details"] = incomplete;
    response
}

fn message_item(response_id: &str, output_index: usize, text: String, refusal: bool) -> Item {
    Item::Message {
        id: item_id("msg", response_id, output_index),
        text,
        refusal,
    }
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
