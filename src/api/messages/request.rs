//! An Anthropic Messages request -> an OpenAI chat request body for the gateway's pipeline.
//!
//! Parameter mapping (anything else present and not null/false is dropped and listed):
//! - `system` + `messages` -> `messages` (see `content.rs`); `max_tokens` ->
//!   `max_completion_tokens` (OpenAI refuses `max_tokens` for its reasoning models; every
//!   dialect reads either); `temperature`, `top_p`, `top_k` (an OpenRouter extension the foreign
//!   dialects read, which the OpenAI dialect drops for OpenAI itself), `stream` as they are;
//!   `stop_sequences` -> `stop`; `metadata.user_id` -> `user` (one longer than OpenAI's 64
//!   characters as its SHA-256 in hex: see [`chat_user`]).
//! - `tools` -> function tools (`input_schema` -> `parameters`, `cache_control` kept); tools
//!   with a `type` other than `custom` are Anthropic's own (web search, bash, ...) and dropped.
//! - `tool_choice` auto/any/tool/none -> `auto`/`required`/named/`none`;
//!   `disable_parallel_tool_use` -> `parallel_tool_calls: false`.
//! - `thinking` enabled with `budget_tokens` -> OpenRouter `reasoning.max_tokens`; adaptive ->
//!   `reasoning.enabled`; `output_config.effort` -> `reasoning.effort` (OpenAI itself gets the
//!   effort alone, as `reasoning_effort`: see `dialects::openai`).
//! - Structured output (`output_config.format` or the beta `output_format`, a JSON schema) ->
//!   `response_format` json_schema.
//! - The gateway's own fields (`models`, `provider`, `session_id`, ...) are copied as they are.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::content;
use crate::api::chat::GATEWAY_ONLY_FIELDS;
use crate::api::{ApiError, TopLevelFields};

#[derive(Debug)]
pub struct MessagesRequest {
    /// An OpenAI chat request body that `ChatRequest::parse` accepts.
    pub chat_body: Bytes,
    pub stream: bool,
    pub model: String,
    /// What of the request no OpenAI chat request can say (for the dropped-fields header).
    pub dropped: Vec<String>,
}

/// Fields read in a fixed place rather than in the client's order.
const READ_FIRST: &[&str] = &["model", "system", "messages", "stream"];

pub fn to_chat_request(body: &Bytes) -> Result<MessagesRequest, ApiError> {
    let fields = TopLevelFields::parse(body.clone())?;
    let model: String = fields
        .get("model", "a string")?
        .ok_or_else(|| ApiError::bad_param("model", "`model` is required"))?;
    if model.trim().is_empty() {
        return Err(ApiError::bad_param("model", "`model` must not be empty"));
    }
    let stream = fields.get("stream", "a boolean")?.unwrap_or(false);
    let system: Option<Value> = fields.get("system", "a string or an array of text blocks")?;
    let messages: Value = fields
        .get("messages", "an array of messages")?
        .ok_or_else(|| ApiError::bad_param("messages", "`messages` is required"))?;

    let mut dropped = Vec::new();
    let mut out = Map::new();
    out.insert("model".into(), json!(model));
    let converted = content::convert(system.as_ref(), &messages, &mut dropped)?;
    out.insert("messages".into(), Value::Array(converted));
    if stream {
        out.insert("stream".into(), json!(true));
    }
    let mut reasoning = Map::new();
    for (key, raw) in fields.iter() {
        if READ_FIRST.contains(&key) || matches!(raw, b"null" | b"false") {
            continue;
        }
        match key {
            "max_tokens" => {
                let n: Option<u64> = fields.get(key, "a non-negative integer")?;
                out.insert("max_completion_tokens".into(), json!(n));
            }
            "top_k" => {
                let n: Option<u64> = fields.get(key, "a non-negative integer")?;
                out.insert(key.into(), json!(n));
            }
            "temperature" | "top_p" => {
                let n: Option<f64> = fields.get(key, "a number")?;
                out.insert(key.into(), json!(n));
            }
            "stop_sequences" => {
                let stops: Option<Vec<String>> = fields.get(key, "an array of strings")?;
                out.insert("stop".into(), json!(stops));
            }
            "metadata" => {
                let m: Option<Map<String, Value>> = fields.get(key, "an object")?;
                if let Some(user) = m
                    .as_ref()
                    .and_then(|m| m.get("user_id"))
                    .and_then(Value::as_str)
                {
                    out.insert("user".into(), json!(chat_user(user)));
                }
            }
            "tools" => {
                let tools: Vec<Value> = fields.get(key, "an array of tools")?.unwrap_or_default();
                let tools = convert_tools(&tools, &mut dropped)?;
                if !tools.is_empty() {
                    out.insert("tools".into(), Value::Array(tools));
                }
            }
            "tool_choice" => {
                let choice: Option<Value> = fields.get(key, "an object")?;
                tool_choice(choice.as_ref(), &mut out, &mut dropped);
            }
            "thinking" => {
                let t: Option<Value> = fields.get(key, "an object")?;
                thinking(t.as_ref(), &mut reasoning, &mut dropped);
            }
            "output_config" | "output_format" => {
                let v: Option<Map<String, Value>> = fields.get(key, "an object")?;
                output_config(key, v.as_ref(), &mut out, &mut reasoning, &mut dropped);
            }
            k if GATEWAY_ONLY_FIELDS.contains(&k) => {
                let v: Option<Value> = fields.get(key, "valid JSON")?;
                out.insert(key.into(), json!(v));
            }
            other => dropped.push(other.to_string()),
        }
    }
    if !reasoning.is_empty() {
        out.insert("reasoning".into(), Value::Object(reasoning));
    }
    super::drop_tool_settings_without_tools(&mut out, &mut dropped);
    let chat_body =
        serde_json::to_vec(&Value::Object(out)).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(MessagesRequest {
        chat_body: Bytes::from(chat_body),
        stream,
        model,
        dropped,
    })
}

/// OpenAI's `user` for an Anthropic `metadata.user_id`. OpenAI refuses a `user` longer than 64
/// characters (OpenRouter one longer than 128), and Claude Code's id is about 150 (a JSON
/// object of device, account and session): a longer id is sent as its SHA-256 in hex, exactly
/// 64 characters, so it still names one user the same way every time.
fn chat_user(user_id: &str) -> String {
    const OPENAI_USER_MAX: usize = 64;
    if user_id.chars().count() <= OPENAI_USER_MAX {
        return user_id.to_string();
    }
    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(user_id.as_bytes()))
}

fn convert_tools(tools: &[Value], dropped: &mut Vec<String>) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        let bad = |what: &str| ApiError::bad_param("tools", format!("`tools[{i}]` {what}"));
        let tool = tool.as_object().ok_or_else(|| bad("must be an object"))?;
        match tool.get("type").and_then(Value::as_str) {
            None | Some("custom") => {}
            Some(other) => {
                dropped.push(format!("tools[{i}] ({other})"));
                continue;
            }
        }
        let name = tool
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| bad("needs a non-empty `name`"))?;
        let mut function = json!({ "name": name });
        if let Some(d) = tool.get("description").filter(|d| d.is_string()) {
            function["description"] = d.clone();
        }
        function["parameters"] = tool
            .get("input_schema")
            .filter(|s| s.is_object())
            .cloned()
            .unwrap_or_else(|| json!({ "type": "object", "properties": {} }));
        if let Some(strict) = tool.get("strict").filter(|s| s.is_boolean()) {
            function["strict"] = strict.clone();
        }
        let mut converted = json!({ "type": "function", "function": function });
        if let Some(cc) = tool.get("cache_control").filter(|c| c.is_object()) {
            converted["cache_control"] = cc.clone();
        }
        out.push(converted);
    }
    Ok(out)
}

fn tool_choice(choice: Option<&Value>, out: &mut Map<String, Value>, dropped: &mut Vec<String>) {
    let Some(choice) = choice else { return };
    let converted = match choice.get("type").and_then(Value::as_str) {
        Some("auto") => json!("auto"),
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => match choice.get("name").and_then(Value::as_str) {
            Some(name) => json!({ "type": "function", "function": { "name": name } }),
            None => return dropped.push("tool_choice".into()),
        },
        _ => return dropped.push("tool_choice".into()),
    };
    out.insert("tool_choice".into(), converted);
    if choice.get("disable_parallel_tool_use") == Some(&Value::Bool(true)) {
        out.insert("parallel_tool_calls".into(), json!(false));
    }
}

fn thinking(t: Option<&Value>, reasoning: &mut Map<String, Value>, dropped: &mut Vec<String>) {
    let Some(t) = t else { return };
    match t.get("type").and_then(Value::as_str) {
        Some("enabled") => match t.get("budget_tokens").and_then(Value::as_u64) {
            Some(budget) => {
                reasoning.insert("max_tokens".into(), json!(budget));
            }
            None => {
                reasoning.insert("enabled".into(), json!(true));
            }
        },
        Some("adaptive") => {
            reasoning.insert("enabled".into(), json!(true));
        }
        // Off is every model's default here: nothing to ask for.
        Some("disabled") => {}
        _ => dropped.push("thinking".into()),
    }
}

/// `output_config` (`effort`, `format`) and the beta `output_format` (a format alone).
fn output_config(
    key: &str,
    config: Option<&Map<String, Value>>,
    out: &mut Map<String, Value>,
    reasoning: &mut Map<String, Value>,
    dropped: &mut Vec<String>,
) {
    let Some(config) = config else { return };
    let format = if key == "output_format" {
        Some(config)
    } else {
        config.get("format").and_then(Value::as_object)
    };
    if let Some(format) = format {
        match (
            format.get("type").and_then(Value::as_str),
            format.get("schema"),
        ) {
            (Some("json_schema"), Some(schema)) if schema.is_object() => {
                let spec = json!({ "name": "output", "schema": schema, "strict": true });
                out.insert(
                    "response_format".into(),
                    json!({ "type": "json_schema", "json_schema": spec }),
                );
            }
            _ if key == "output_format" => dropped.push(key.into()),
            _ => dropped.push(format!("{key}.format")),
        }
    }
    if key == "output_config" {
        if let Some(effort) = config.get("effort").filter(|e| e.is_string()) {
            reasoning.insert("effort".into(), effort.clone());
        }
        for k in config
            .keys()
            .filter(|k| !matches!(k.as_str(), "format" | "effort"))
        {
            dropped.push(format!("output_config.{k}"));
        }
    }
}
