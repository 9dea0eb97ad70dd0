//! OpenAI chat request -> Converse body. The model and streaming are not in the body: they
//! are in the URL ([`super::chat_path`]).
//!
//! Parameter mapping (anything else present is dropped and listed in `dropped`):
//! - `max_completion_tokens` / `max_tokens` -> `inferenceConfig.maxTokens` (none: the model's
//!   own default, which fits every Bedrock model, unless thinking needs a limit above its
//!   budget: then as for Anthropic's API, within the model's limit, see [`claude_thinking`]).
//! - `temperature` (clamped to Converse's 0..=1), `top_p`, `stop` (without blank sequences) ->
//!   `inferenceConfig`. `top_k` has no Converse field: Claude takes it as its own `top_k`.
//! - `tools` -> `toolConfig.tools[].toolSpec` with `inputSchema.json`; `tool_choice`
//!   auto/required/named -> `auto`/`any`/`tool`. Converse has no "none": without tool history the
//!   tools are left out (nothing can be called); with it, Bedrock needs them, so they are sent
//!   and the choice is reported dropped. A conversation with tool calls but no `tools` gets
//!   minimal declarations of the tools it called, which Bedrock requires.
//! - `reasoning_effort` / `reasoning` -> Claude's `thinking` in `additionalModelRequestFields`
//!   (see [`claude_thinking`]); a client's own Anthropic `thinking` object is passed as it is
//!   ([`native_thinking`]: only a budget the model's limit cannot hold is cut). Other models
//!   have no documented Converse reasoning switch: reported dropped.
//! - `response_format`: asked for in a system instruction (with the schema), not enforced.
//! - `user` -> `requestMetadata.user` (invocation-log metadata) when Bedrock's pattern allows it.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::is_claude;
use super::messages::{self, Conversation};
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
    "thinking",
    "user",
];

/// With thinking on, Claude refuses `top_p` below this.
const MIN_THINKING_TOP_P: f64 = 0.95;

const JSON_INSTRUCTION: &str =
    "Respond with only a valid JSON value, without Markdown code fences or any text before or after it.";

/// `upstream_model` picks Claude's extra fields; `stream` is in the path, not the body.
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
    _stream: bool,
    limit: OutputLimit,
) -> Result<ConvertedRequest, ApiError> {
    let claude = is_claude(upstream_model);
    let mut p = ChatParams::read(fields, UNDERSTOOD)?;
    let mut notes = std::mem::take(&mut p.dropped);
    let mut conv = messages::convert(&p.messages, claude, &mut notes)?;
    if conv.turns.is_empty() {
        return Err(ApiError::bad_param(
            "messages",
            "`messages` must hold at least one user or assistant message",
        ));
    }
    if let Some(format) = &p.response_format {
        conv.system
            .push(json!({ "text": json_instruction(format) }));
    }
    let (thinking, max_tokens) = plan_thinking(fields, &p, claude, limit, &mut notes)?;
    let thinking_on = thinking.as_ref().is_some_and(|t| t["type"] != "disabled");

    let mut body = Map::new();
    let turns = conv
        .turns
        .iter()
        .map(|t| json!({ "role": t.role, "content": t.blocks }));
    body.insert("messages".into(), Value::Array(turns.collect()));
    if !conv.system.is_empty() {
        body.insert(
            "system".into(),
            Value::Array(std::mem::take(&mut conv.system)),
        );
    }
    let inference = inference_config(&p, max_tokens, thinking_on, &mut notes);
    if !inference.is_empty() {
        body.insert("inferenceConfig".into(), Value::Object(inference));
    }
    if let Some(tools) = tool_config(&p, &conv, &mut notes) {
        body.insert("toolConfig".into(), tools);
    }
    let mut extra = Map::new();
    if let Some(t) = thinking {
        extra.insert("thinking".into(), t);
    }
    match p.top_k {
        Some(_) if thinking_on => notes.push("top_k (not allowed with thinking)".into()),
        Some(k) if claude => {
            extra.insert("top_k".into(), json!(k));
        }
        Some(_) => notes.push("top_k (Converse has no top_k for this model)".into()),
        None => {}
    }
    if !extra.is_empty() {
        body.insert("additionalModelRequestFields".into(), Value::Object(extra));
    }
    match p.user.as_deref() {
        Some(user) if metadata_value_ok(user) => {
            body.insert("requestMetadata".into(), json!({ "user": user }));
        }
        Some(_) => notes.push("user (characters Bedrock's request metadata refuses)".into()),
        None => {}
    }
    let body =
        serde_json::to_vec(&Value::Object(body)).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(ConvertedRequest {
        body: Bytes::from(body),
        dropped: notes,
    })
}

fn inference_config(
    p: &ChatParams,
    max_tokens: Option<u64>,
    thinking_on: bool,
    notes: &mut Vec<String>,
) -> Map<String, Value> {
    let mut c = Map::new();
    if let Some(n) = max_tokens {
        c.insert("maxTokens".into(), json!(n));
    }
    // Claude refuses sampling changes while thinking (top_p only below 0.95).
    match p.temperature {
        Some(_) if thinking_on => notes.push("temperature (not allowed with thinking)".into()),
        Some(t) => {
            if !(0.0..=1.0).contains(&t) {
                notes.push("temperature (clamped to Converse's 0..1)".into());
            }
            c.insert("temperature".into(), json!(t.clamp(0.0, 1.0)));
        }
        None => {}
    }
    match p.top_p {
        Some(v) if thinking_on && v < MIN_THINKING_TOP_P => {
            notes.push("top_p (below 0.95 with thinking)".into())
        }
        Some(v) => {
            c.insert("topP".into(), json!(v));
        }
        None => {}
    }
    let (stops, blank): (Vec<&String>, Vec<&String>) =
        p.stop.iter().partition(|s| !s.trim().is_empty());
    if !blank.is_empty() {
        notes.push("stop (whitespace-only sequences, which Bedrock refuses)".into());
    }
    if !stops.is_empty() {
        c.insert("stopSequences".into(), json!(stops));
    }
    c
}

fn tool_config(p: &ChatParams, conv: &Conversation, notes: &mut Vec<String>) -> Option<Value> {
    if p.parallel_tool_calls == Some(false) && !p.tools.is_empty() {
        notes.push("parallel_tool_calls (Converse cannot turn parallel calls off)".into());
    }
    let mut specs = Vec::new();
    for t in &p.tools {
        let mut spec = json!({ "name": t.name });
        if let Some(d) = t.description.as_deref().filter(|d| !d.is_empty()) {
            spec["description"] = json!(d);
        }
        let schema = t.parameters.clone();
        spec["inputSchema"] = json!({ "json": schema.unwrap_or_else(|| json!({ "type": "object", "properties": {} })) });
        specs.push(json!({ "toolSpec": spec }));
        if t.cache_control.is_some() {
            specs.push(json!({ "cachePoint": { "type": "default" } }));
        }
    }
    if specs.is_empty() {
        if !conv.has_tool_blocks {
            return None;
        }
        notes.push("tools (none sent: the tools the conversation called were declared, as Bedrock requires)".into());
        let declared = conv.called_tools.iter().map(|name| {
            json!({ "toolSpec": { "name": name, "inputSchema": { "json": { "type": "object" } } } })
        });
        return Some(json!({ "tools": declared.collect::<Vec<_>>() }));
    }
    let choice = match &p.tool_choice {
        None | Some(ToolChoice::Auto) => None,
        Some(ToolChoice::None) if !conv.has_tool_blocks => return None,
        Some(ToolChoice::None) => {
            notes.push(
                "tool_choice (Converse cannot forbid tool calls in a conversation that has them)"
                    .into(),
            );
            None
        }
        Some(ToolChoice::Required) => Some(json!({ "any": {} })),
        Some(ToolChoice::Named(name)) => Some(json!({ "tool": { "name": name } })),
    };
    let mut config = json!({ "tools": specs });
    if let Some(choice) = choice {
        config["toolChoice"] = choice;
    }
    Some(config)
}

/// Claude's `thinking` and the `maxTokens` to send. A client's own Anthropic `thinking` wins
/// over the OpenAI settings. Reasoning that was asked for but cannot be had is reported.
fn plan_thinking(
    fields: &TopLevelFields,
    p: &ChatParams,
    claude: bool,
    limit: OutputLimit,
    notes: &mut Vec<String>,
) -> Result<(Option<Value>, Option<u64>), ApiError> {
    let native = fields
        .get::<Value>("thinking", "an object")?
        .filter(Value::is_object);
    let wanted = p.reasoning.as_ref().is_some_and(|r| !r.is_off());
    if !claude {
        if native.is_some() {
            notes.push("thinking (only Claude models take it)".into());
        }
        if wanted {
            notes.push("reasoning (no documented Converse switch for this model)".into());
        }
        return Ok((None, p.max_tokens));
    }
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
        // Claude refuses thinking with a forced tool; the tool call is the client's contract.
        notes.push("reasoning (Claude cannot think while a tool is forced)".into());
        return Ok((None, p.max_tokens));
    }
    if thinking.is_none() && wanted {
        notes.push("reasoning (budget does not fit under max_tokens)".into());
    }
    Ok(match thinking {
        Some(t) => (Some(t), Some(cap)),
        None => (None, p.max_tokens),
    })
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

/// Bedrock's pattern for request metadata values: `[a-zA-Z0-9\s:_@$#=/+,-.]{1,256}`.
fn metadata_value_ok(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 256
        && v.chars().all(|c| {
            c.is_ascii_alphanumeric() || c.is_ascii_whitespace() || ":_@$#=/+,-.".contains(c)
        })
}
