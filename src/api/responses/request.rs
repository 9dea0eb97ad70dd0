//! A Responses request -> an OpenAI chat request body for the gateway's pipeline.
//!
//! Parameter mapping (anything else present and not null/false is dropped and listed):
//! - `instructions` + `input` -> `messages` (see `input.rs`).
//! - `tools`: function tools (flat in Responses) -> chat's `{"type": "function", "function":
//!   {...}}`; hosted tools (web search, file search, MCP, ...) and custom tools are dropped.
//! - `tool_choice` auto/none/required pass; `{"type": "function", "name"}` -> a named choice.
//! - `text.format` json_schema / json_object -> `response_format`; `text.verbosity` ->
//!   `verbosity`.
//! - `max_output_tokens` -> `max_completion_tokens` (both count reasoning tokens);
//!   `reasoning.effort` -> `reasoning_effort`; `temperature`, `top_p`, `parallel_tool_calls`,
//!   `user`, `prompt_cache_key`, `service_tier`, `stream` as they are; `safety_identifier` ->
//!   `user` when there is none.
//! - Needing stored state is a 400: `store: true`, `previous_response_id`, `conversation`,
//!   `background: true`.
//! - The gateway's own fields (`models`, `provider`, `session_id`, ...) are copied as they are.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::input;
use crate::api::chat::GATEWAY_ONLY_FIELDS;
use crate::api::{ApiError, TopLevelFields};

#[derive(Debug)]
pub struct ResponsesRequest {
    /// An OpenAI chat request body that `ChatRequest::parse` accepts.
    pub chat_body: Bytes,
    pub stream: bool,
    pub model: String,
    /// What of the request no chat request can say (for the dropped-fields header).
    pub dropped: Vec<String>,
}

const READ_FIRST: &[&str] = &["model", "instructions", "input", "stream"];

/// Values that ask for nothing, so dropping them loses nothing.
fn is_neutral(key: &str, raw: &[u8]) -> bool {
    raw == b"null"
        || (raw == b"false" && key != "parallel_tool_calls")
        || (key == "truncation" && raw == br#""disabled""#)
        || (key == "include" && raw == b"[]")
        || (key == "metadata" && raw == b"{}")
}

pub fn to_chat_request(body: &Bytes) -> Result<ResponsesRequest, ApiError> {
    let fields = TopLevelFields::parse(body.clone())?;
    refuse_stateful(&fields)?;
    let model: String = fields
        .get("model", "a string")?
        .ok_or_else(|| ApiError::bad_param("model", "`model` is required"))?;
    if model.trim().is_empty() {
        return Err(ApiError::bad_param("model", "`model` must not be empty"));
    }
    let stream = fields.get("stream", "a boolean")?.unwrap_or(false);
    let instructions: Option<String> = fields.get("instructions", "a string")?;
    let input_items: Value = fields
        .get("input", "a string or an array of input items")?
        .ok_or_else(|| ApiError::bad_param("input", "`input` is required"))?;

    let mut dropped = Vec::new();
    let mut out = Map::new();
    out.insert("model".into(), json!(model));
    let messages = input::convert(instructions.as_deref(), &input_items, &mut dropped)?;
    out.insert("messages".into(), Value::Array(messages));
    if stream {
        out.insert("stream".into(), json!(true));
    }
    for (key, raw) in fields.iter() {
        if READ_FIRST.contains(&key) || is_neutral(key, raw) {
            continue;
        }
        match key {
            "max_output_tokens" => {
                let n: Option<u64> = fields.get(key, "a non-negative integer")?;
                out.insert("max_completion_tokens".into(), json!(n));
            }
            "temperature" | "top_p" => {
                let n: Option<f64> = fields.get(key, "a number")?;
                out.insert(key.into(), json!(n));
            }
            "parallel_tool_calls" => {
                let b: Option<bool> = fields.get(key, "a boolean")?;
                out.insert(key.into(), json!(b));
            }
            "user" | "prompt_cache_key" | "service_tier" => {
                let s: Option<String> = fields.get(key, "a string")?;
                out.insert(key.into(), json!(s));
            }
            "safety_identifier" => {
                let s: Option<String> = fields.get(key, "a string")?;
                if fields.raw("user").is_none() {
                    out.insert("user".into(), json!(s));
                }
            }
            "store" => {} // only `false` reaches here: `true` was refused
            "tools" => {
                let tools: Vec<Value> = fields.get(key, "an array of tools")?.unwrap_or_default();
                let tools = function_tools(&tools, &mut dropped)?;
                if !tools.is_empty() {
                    out.insert("tools".into(), Value::Array(tools));
                }
            }
            "tool_choice" => {
                let choice: Option<Value> = fields.get(key, "a string or an object")?;
                match choice.as_ref().and_then(tool_choice) {
                    Some(c) => {
                        out.insert("tool_choice".into(), c);
                    }
                    None => dropped.push("tool_choice".into()),
                }
            }
            "text" => {
                let text: Option<Map<String, Value>> = fields.get(key, "an object")?;
                text_config(text.as_ref(), &mut out, &mut dropped)?;
            }
            "reasoning" => {
                let r: Option<Map<String, Value>> = fields.get(key, "an object")?;
                let r = r.unwrap_or_default();
                if let Some(effort) = r.get("effort").filter(|e| e.is_string()) {
                    out.insert("reasoning_effort".into(), effort.clone());
                }
                for k in r.keys().filter(|k| *k != "effort") {
                    if !r[k.as_str()].is_null() {
                        dropped.push(format!("reasoning.{k}"));
                    }
                }
            }
            k if GATEWAY_ONLY_FIELDS.contains(&k) => {
                let v: Option<Value> = fields.get(key, "valid JSON")?;
                out.insert(key.into(), json!(v));
            }
            other => dropped.push(other.to_string()),
        }
    }
    crate::api::messages::drop_tool_settings_without_tools(&mut out, &mut dropped);
    let chat_body =
        serde_json::to_vec(&Value::Object(out)).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(ResponsesRequest {
        chat_body: Bytes::from(chat_body),
        stream,
        model,
        dropped,
    })
}

/// The gateway keeps no responses: what would need one is refused with the reason.
fn refuse_stateful(fields: &TopLevelFields) -> Result<(), ApiError> {
    let stateless = "this gateway is stateless and stores no responses";
    if fields.get::<bool>("store", "a boolean")? == Some(true) {
        return Err(ApiError::bad_param(
            "store",
            format!("`store: true` is not supported: {stateless}; send `store: false` (or leave it out) and pass the whole conversation in `input`"),
        ));
    }
    for (key, what) in [
        (
            "previous_response_id",
            "pass the earlier turns in `input` instead",
        ),
        (
            "conversation",
            "pass the conversation's items in `input` instead",
        ),
    ] {
        if fields.raw(key).is_some_and(|v| v != b"null") {
            return Err(ApiError::bad_param(
                key,
                format!("`{key}` is not supported: {stateless}; {what}"),
            ));
        }
    }
    if fields.get::<bool>("background", "a boolean")? == Some(true) {
        return Err(ApiError::bad_param(
            "background",
            format!("`background: true` is not supported: {stateless}; stream instead"),
        ));
    }
    Ok(())
}

fn function_tools(tools: &[Value], dropped: &mut Vec<String>) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        let bad = |what: &str| ApiError::bad_param("tools", format!("`tools[{i}]` {what}"));
        let kind = tool
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("must be an object with a `type`"))?;
        if kind != "function" {
            dropped.push(format!("tools[{i}] ({kind})"));
            continue;
        }
        let name = tool
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| bad("needs a non-empty `name`"))?;
        let mut function = json!({ "name": name });
        for key in ["description", "parameters", "strict"] {
            if let Some(v) = tool.get(key).filter(|v| !v.is_null()) {
                function[key] = v.clone();
            }
        }
        out.push(json!({ "type": "function", "function": function }));
    }
    Ok(out)
}

fn tool_choice(choice: &Value) -> Option<Value> {
    match choice {
        Value::String(s) if matches!(s.as_str(), "auto" | "none" | "required") => {
            Some(choice.clone())
        }
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("function") => {
            let name = o.get("name").and_then(Value::as_str)?;
            Some(json!({ "type": "function", "function": { "name": name } }))
        }
        _ => None,
    }
}

fn text_config(
    text: Option<&Map<String, Value>>,
    out: &mut Map<String, Value>,
    dropped: &mut Vec<String>,
) -> Result<(), ApiError> {
    let Some(text) = text else { return Ok(()) };
    if let Some(format) = text.get("format").filter(|f| !f.is_null()) {
        match format.get("type").and_then(Value::as_str) {
            Some("text") => {}
            Some("json_object") => {
                out.insert("response_format".into(), json!({ "type": "json_object" }));
            }
            Some("json_schema") => {
                let schema = format
                    .get("schema")
                    .filter(|s| s.is_object())
                    .ok_or_else(|| {
                        ApiError::bad_param("text", "`text.format.schema` must be an object")
                    })?;
                let mut spec = json!({
                    "name": format.get("name").and_then(Value::as_str).unwrap_or("output"),
                    "schema": schema,
                });
                for key in ["strict", "description"] {
                    if let Some(v) = format.get(key).filter(|v| !v.is_null()) {
                        spec[key] = v.clone();
                    }
                }
                out.insert(
                    "response_format".into(),
                    json!({ "type": "json_schema", "json_schema": spec }),
                );
            }
            _ => dropped.push("text.format".into()),
        }
    }
    if let Some(v) = text.get("verbosity").filter(|v| v.is_string()) {
        out.insert("verbosity".into(), v.clone());
    }
    Ok(())
}
