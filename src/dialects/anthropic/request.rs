//! OpenAI chat request -> Anthropic Messages request body.
//!
//! Parameter mapping (anything else present is dropped and listed in `dropped`):
//! - `max_completion_tokens` / `max_tokens` -> `max_tokens`, which Anthropic requires: the
//!   output limit's default when the client set none (with room for thinking, within the
//!   model's limit: see [`claude_thinking`]).
//! - `stop` -> `stop_sequences` (without whitespace-only ones); `temperature` (clamped to Anthropic's 0..=1), `top_p`, `top_k`.
//! - `tools` -> `tools` with `input_schema`; `tool_choice` auto/none/required/named ->
//!   `auto`/`none`/`any`/`tool`; `parallel_tool_calls: false` -> `disable_parallel_tool_use`.
//! - `reasoning_effort` / `reasoning` -> `thinking` with a token budget (see
//!   [`claude_thinking`]); a client's own Anthropic `thinking` object is passed as it is (the
//!   way to reach models that only take `{"type": "adaptive"}`; [`native_thinking`]: only a
//!   budget the model's limit cannot hold is cut).
//! - `response_format`: Anthropic has no JSON mode that every model accepts, so JSON output is
//!   asked for in a system instruction (with the schema for `json_schema`); it is not enforced.
//! - `user` -> `metadata.user_id`.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::messages::{self, Turn};
use crate::api::{ApiError, TopLevelFields};
use crate::dialects::common::{
    claude_thinking, native_thinking, ChatParams, ConvertedRequest, OutputLimit, ResponseFormat,
    ToolChoice,
};

const UNDERSTOOD: &[&str] = &[
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "top_k",
    "stop",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "reasoning",
    "reasoning_effort",
    "user",
    "thinking",
];

/// With thinking on, Anthropic refuses `top_p` below this.
const MIN_THINKING_TOP_P: f64 = 0.95;

const JSON_INSTRUCTION: &str =
    "Respond with only a valid JSON value, without Markdown code fences or any text before or after it.";

pub fn chat_request_body(
    fields: &TopLevelFields,
    upstream_model: &str,
    stream: bool,
    limit: OutputLimit,
) -> Result<Bytes, ApiError> {
    convert_chat_request(fields, upstream_model, stream, limit).map(|c| c.body)
}

/// [`chat_request_body`], plus what of the request could not be expressed.
pub fn convert_chat_request(
    fields: &TopLevelFields,
    upstream_model: &str,
    stream: bool,
    limit: OutputLimit,
) -> Result<ConvertedRequest, ApiError> {
    let mut p = ChatParams::read(fields, UNDERSTOOD)?;
    let mut notes = std::mem::take(&mut p.dropped);
    let mut conv = messages::convert(&p.messages, &mut notes)?;
    if conv.turns.is_empty() {
        return Err(ApiError::bad_param(
            "messages",
            "`messages` must hold at least one user or assistant message",
        ));
    }
    if let Some(format) = &p.response_format {
        conv.system
            .push(json!({ "type": "text", "text": json_instruction(format) }));
    }

    let (thinking, max_tokens) = plan_thinking(fields, &p, limit, &mut notes)?;
    let thinking_on = thinking.as_ref().is_some_and(|t| t["type"] != "disabled");

    let mut body = Map::new();
    body.insert("model".into(), json!(upstream_model));
    body.insert("max_tokens".into(), json!(max_tokens));
    if !conv.system.is_empty() {
        body.insert("system".into(), compact(std::mem::take(&mut conv.system)));
    }
    body.insert(
        "messages".into(),
        Value::Array(conv.turns.into_iter().map(turn_json).collect()),
    );
    if !p.tools.is_empty() {
        let tools = p.tools.iter().map(|t| {
            let mut tool = json!({ "name": t.name });
            if let Some(d) = &t.description {
                tool["description"] = json!(d);
            }
            tool["input_schema"] = t
                .parameters
                .clone()
                .unwrap_or_else(|| json!({ "type": "object", "properties": {} }));
            if let Some(cc) = &t.cache_control {
                tool["cache_control"] = cc.clone();
            }
            tool
        });
        body.insert("tools".into(), Value::Array(tools.collect()));
        if let Some(choice) = tool_choice(p.tool_choice.as_ref(), p.parallel_tool_calls) {
            body.insert("tool_choice".into(), choice);
        }
    }
    let (stops, blank): (Vec<&String>, Vec<&String>) =
        p.stop.iter().partition(|s| !s.trim().is_empty());
    if !blank.is_empty() {
        notes.push("stop (whitespace-only sequences, which Anthropic refuses)".into());
    }
    if !stops.is_empty() {
        body.insert("stop_sequences".into(), json!(stops));
    }
    // Anthropic refuses sampling changes while thinking (top_p only below 0.95).
    match p.temperature {
        Some(_) if thinking_on => notes.push("temperature (not allowed with thinking)".into()),
        Some(t) => {
            if t > 1.0 {
                notes.push("temperature (clamped to 1)".into());
            }
            body.insert("temperature".into(), json!(t.clamp(0.0, 1.0)));
        }
        None => {}
    }
    match p.top_p {
        Some(v) if thinking_on && v < MIN_THINKING_TOP_P => {
            notes.push("top_p (below 0.95 with thinking)".into())
        }
        Some(v) => {
            body.insert("top_p".into(), json!(v));
        }
        None => {}
    }
    match p.top_k {
        Some(_) if thinking_on => notes.push("top_k (not allowed with thinking)".into()),
        Some(k) => {
            body.insert("top_k".into(), json!(k));
        }
        None => {}
    }
    if let Some(t) = thinking {
        body.insert("thinking".into(), t);
    }
    if let Some(user) = &p.user {
        body.insert("metadata".into(), json!({ "user_id": user }));
    }
    if stream {
        body.insert("stream".into(), json!(true));
    }
    let body =
        serde_json::to_vec(&Value::Object(body)).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(ConvertedRequest {
        body: Bytes::from(body),
        dropped: notes,
    })
}

/// The `thinking` object and `max_tokens`. A client's own Anthropic `thinking` wins over the
/// OpenAI settings. Reasoning that was asked for but cannot be had is reported in `notes`.
fn plan_thinking(
    fields: &TopLevelFields,
    p: &ChatParams,
    limit: OutputLimit,
    notes: &mut Vec<String>,
) -> Result<(Option<Value>, u64), ApiError> {
    let native = fields
        .get::<Value>("thinking", "an object")?
        .filter(Value::is_object);
    let (thinking, cap) = match native {
        Some(t) => native_thinking(t, p.max_tokens, limit),
        None => claude_thinking(p.reasoning.as_ref(), p.max_tokens, limit),
    };
    let on = thinking.as_ref().is_some_and(|t| t["type"] != "disabled");
    let forced_tool = matches!(
        p.tool_choice,
        Some(ToolChoice::Required | ToolChoice::Named(_))
    ) && !p.tools.is_empty();
    if on && forced_tool {
        // Anthropic refuses thinking with a forced tool; the tool call is the client's contract.
        notes.push("reasoning (Anthropic cannot think while a tool is forced)".into());
        return Ok((None, p.max_tokens.unwrap_or(limit.default)));
    }
    if thinking.is_none() && p.reasoning.as_ref().is_some_and(|r| !r.is_off()) {
        notes.push("reasoning (budget does not fit under max_tokens)".into());
    }
    Ok((thinking, cap))
}

fn tool_choice(choice: Option<&ToolChoice>, parallel: Option<bool>) -> Option<Value> {
    let mut v = match choice {
        None if parallel == Some(false) => json!({ "type": "auto" }),
        None => return None,
        Some(ToolChoice::Auto) => json!({ "type": "auto" }),
        Some(ToolChoice::None) => return Some(json!({ "type": "none" })),
        Some(ToolChoice::Required) => json!({ "type": "any" }),
        Some(ToolChoice::Named(name)) => json!({ "type": "tool", "name": name }),
    };
    if parallel == Some(false) {
        v["disable_parallel_tool_use"] = json!(true);
    }
    Some(v)
}

fn json_instruction(format: &ResponseFormat) -> String {
    match format {
        ResponseFormat::JsonObject => {
            format!("{JSON_INSTRUCTION} The value must be a JSON object.")
        }
        ResponseFormat::JsonSchema { name, schema } => {
            let named = name
                .as_deref()
                .map(|n| format!(" (\"{n}\")"))
                .unwrap_or_default();
            format!("{JSON_INSTRUCTION} It must conform to this JSON Schema{named}:\n{schema}")
        }
    }
}

/// A lone plain text block is written as a string, as most clients write it.
fn compact(mut blocks: Vec<Value>) -> Value {
    if let [only] = blocks.as_slice() {
        if only["type"] == "text" && only.get("cache_control").is_none() {
            return blocks.swap_remove(0)["text"].take();
        }
    }
    Value::Array(blocks)
}

fn turn_json(turn: Turn) -> Value {
    json!({ "role": turn.role, "content": compact(turn.blocks) })
}
