//! What the foreign-dialect conversions (Anthropic, Gemini) share: a typed, validated reading
//! of the OpenAI chat request, content parts and data URLs, the OpenAI shapes they write back
//! (completion, stream chunks, usage), and the carry-over of SSE events split across chunks.
//!
//! Unlike the OpenAI dialect, these conversions must understand the conversation, so they parse
//! `messages` into JSON values; everything else is read field by field from `TopLevelFields`.

mod carry;
#[cfg(test)]
pub(crate) mod golden;
mod parts;
mod reply;
mod thinking;

use serde_json::{Map, Value};

use crate::api::chat::GATEWAY_ONLY_FIELDS;
use crate::api::{ApiError, TopLevelFields};

pub use carry::{SseCarry, MAX_EVENT_BYTES};
pub use parts::{
    content_parts, note_messages_thinking, parse_data_url, reasoning_details, tool_calls, DataUrl,
    Part, ToolCall, MESSAGES_THINKING_FORMAT,
};
pub use reply::{
    error_text, now_unix, tool_call_json, usage_json, ChunkWriter, Reply, UNREPORTED_USAGE,
};
pub use thinking::{claude_thinking, native_thinking, thinking_budget, OutputLimit};

/// The request body for a provider, and what of the client's request it could not express
/// (top-level field names, or `messages[i]...` paths of dropped content). DESIGN §3: the proxy
/// says so in a response header instead of failing.
#[derive(Debug)]
pub struct ConvertedRequest {
    pub body: bytes::Bytes,
    pub dropped: Vec<String>,
}

/// Fields every conversion consumes (or that only steer the gateway's own behaviour).
const ALWAYS_UNDERSTOOD: &[&str] = &["model", "messages", "stream", "stream_options"];

/// The OpenAI chat parameters both foreign dialects translate.
#[derive(Debug, Default)]
pub struct ChatParams {
    pub messages: Vec<Map<String, Value>>,
    pub tools: Vec<FunctionTool>,
    pub tool_choice: Option<ToolChoice>,
    pub parallel_tool_calls: Option<bool>,
    pub response_format: Option<ResponseFormat>,
    pub stop: Vec<String>,
    /// `max_completion_tokens`, else `max_tokens`.
    pub max_tokens: Option<u64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<u64>,
    pub reasoning: Option<Reasoning>,
    pub user: Option<String>,
    pub dropped: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct FunctionTool {
    pub name: String,
    pub description: Option<String>,
    pub parameters: Option<Value>,
    /// Anthropic prompt caching, when a client marks a tool (passed through).
    pub cache_control: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ToolChoice {
    Auto,
    None,
    Required,
    Named(String),
}

#[derive(Debug, Clone)]
pub enum ResponseFormat {
    JsonObject,
    JsonSchema { name: Option<String>, schema: Value },
}

/// OpenAI `reasoning_effort` merged with OpenRouter's `reasoning` object (which wins).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reasoning {
    pub effort: Option<String>,
    pub max_tokens: Option<u64>,
    pub exclude: bool,
    pub enabled: Option<bool>,
}

const EFFORTS: &[&str] = &["none", "minimal", "low", "medium", "high", "xhigh", "max"];

impl Reasoning {
    /// The client asked for no reasoning at all.
    pub fn is_off(&self) -> bool {
        self.enabled == Some(false)
            || (self.effort.as_deref() == Some("none") && self.max_tokens.is_none())
    }
}

impl ChatParams {
    /// Reads and validates the request. `understood` lists the dialect's extra fields; any
    /// other field that is present (and not null) is recorded in `dropped`.
    pub fn read(fields: &TopLevelFields, understood: &[&str]) -> Result<ChatParams, ApiError> {
        let mut p = ChatParams {
            messages: read_messages(fields)?,
            stop: match fields.get::<Value>("stop", "a string or an array of strings")? {
                None => Vec::new(),
                Some(Value::String(s)) => vec![s],
                Some(v) => serde_json::from_value::<Vec<String>>(v).map_err(|_| {
                    ApiError::bad_param("stop", "`stop` must be a string or an array of strings")
                })?,
            },
            max_tokens: match fields
                .get::<u64>("max_completion_tokens", "a non-negative integer")?
            {
                Some(n) => Some(n),
                None => fields.get("max_tokens", "a non-negative integer")?,
            },
            temperature: fields.get("temperature", "a number")?,
            top_p: fields.get("top_p", "a number")?,
            top_k: fields.get("top_k", "a non-negative integer")?,
            parallel_tool_calls: fields.get("parallel_tool_calls", "a boolean")?,
            user: fields.get("user", "a string")?,
            reasoning: read_reasoning(fields)?,
            ..ChatParams::default()
        };
        p.stop.retain(|s| !s.is_empty());
        p.read_tools(fields)?;
        p.tool_choice = match fields.get::<Value>("tool_choice", "a string or an object")? {
            None => None,
            Some(v) => tool_choice(&v).or_else(|| {
                p.dropped.push("tool_choice".into());
                None
            }),
        };
        p.response_format = match fields.get::<Value>("response_format", "an object")? {
            None => None,
            Some(v) => match v.get("type").and_then(Value::as_str) {
                Some("text") => None,
                Some("json_object") => Some(ResponseFormat::JsonObject),
                Some("json_schema") => {
                    let spec = v.get("json_schema");
                    let schema = spec.and_then(|s| s.get("schema")).cloned();
                    let schema = schema.ok_or_else(|| {
                        ApiError::bad_param(
                            "response_format",
                            "`response_format.json_schema.schema` is required",
                        )
                    })?;
                    let name = spec
                        .and_then(|s| s.get("name"))
                        .and_then(Value::as_str)
                        .map(String::from);
                    Some(ResponseFormat::JsonSchema { name, schema })
                }
                _ => {
                    p.dropped.push("response_format".into());
                    None
                }
            },
        };
        for (key, raw) in fields.iter() {
            let known = ALWAYS_UNDERSTOOD.contains(&key)
                || GATEWAY_ONLY_FIELDS.contains(&key)
                || understood.contains(&key);
            // A default value asks for nothing the provider lacks.
            let neutral = matches!(raw, b"null" | b"false") || (key == "n" && raw == b"1");
            if !known && !neutral {
                p.dropped.push(key.to_string());
            }
        }
        Ok(p)
    }

    fn read_tools(&mut self, fields: &TopLevelFields) -> Result<(), ApiError> {
        let tools: Vec<Value> = fields
            .get("tools", "an array of tools")?
            .unwrap_or_default();
        for (i, tool) in tools.into_iter().enumerate() {
            let kind = tool
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("function");
            let Some(function) = tool.get("function").filter(|_| kind == "function") else {
                self.dropped.push(format!("tools[{i}] ({kind})"));
                continue;
            };
            let name = function
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty());
            let name = name.ok_or_else(|| {
                ApiError::bad_param(
                    "tools",
                    format!("`tools[{i}].function.name` must be a non-empty string"),
                )
            })?;
            self.tools.push(FunctionTool {
                name: name.to_string(),
                description: function
                    .get("description")
                    .and_then(Value::as_str)
                    .map(String::from),
                parameters: function
                    .get("parameters")
                    .filter(|v| v.is_object())
                    .cloned(),
                cache_control: tool.get("cache_control").filter(|v| v.is_object()).cloned(),
            });
        }
        Ok(())
    }
}

fn read_messages(fields: &TopLevelFields) -> Result<Vec<Map<String, Value>>, ApiError> {
    let shape =
        || ApiError::bad_param("messages", "`messages` must be an array of message objects");
    let messages: Vec<Value> = fields
        .get("messages", "an array of message objects")?
        .ok_or_else(shape)?;
    messages
        .into_iter()
        .enumerate()
        .map(|(i, m)| match m {
            Value::Object(m) if m.get("role").is_some_and(Value::is_string) => Ok(m),
            Value::Object(_) => Err(ApiError::bad_param(
                "messages",
                format!("`messages[{i}].role` must be a string"),
            )),
            _ => Err(shape()),
        })
        .collect()
}

fn read_reasoning(fields: &TopLevelFields) -> Result<Option<Reasoning>, ApiError> {
    let effort: Option<String> = fields.get("reasoning_effort", "a string")?;
    let object: Option<Map<String, Value>> = fields.get("reasoning", "an object")?;
    if effort.is_none() && object.is_none() {
        return Ok(None);
    }
    let mut r = Reasoning {
        effort,
        ..Reasoning::default()
    };
    if let Some(o) = object {
        if let Some(e) = o.get("effort").and_then(Value::as_str) {
            r.effort = Some(e.to_string());
        }
        r.max_tokens = o.get("max_tokens").and_then(Value::as_u64);
        r.exclude = o.get("exclude").and_then(Value::as_bool).unwrap_or(false);
        r.enabled = o.get("enabled").and_then(Value::as_bool);
    }
    // OpenRouter infers `enabled` from `effort` or `max_tokens`: `exclude` alone asks for nothing.
    if r.effort.is_none() && r.max_tokens.is_none() && r.enabled.is_none() {
        return Ok(None);
    }
    if let Some(e) = r.effort.as_deref().filter(|e| !EFFORTS.contains(e)) {
        return Err(ApiError::bad_param(
            "reasoning",
            format!(
                "reasoning effort `{e}` is not one of {}",
                EFFORTS.join(", ")
            ),
        ));
    }
    Ok(Some(r))
}

fn tool_choice(v: &Value) -> Option<ToolChoice> {
    match v {
        Value::String(s) => match s.as_str() {
            "auto" => Some(ToolChoice::Auto),
            "none" => Some(ToolChoice::None),
            "required" | "any" => Some(ToolChoice::Required),
            _ => None,
        },
        _ => v
            .pointer("/function/name")
            .and_then(Value::as_str)
            .map(|n| ToolChoice::Named(n.to_string())),
    }
}
