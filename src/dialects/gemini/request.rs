//! OpenAI chat request -> Gemini `generateContent` body. The model and streaming are not in
//! the body: they are in the URL ([`super::chat_path`]).
//!
//! Parameter mapping (anything else present is dropped and listed in `dropped`):
//! - `stop` -> `stopSequences`; `temperature`, `top_p`, `top_k`, `presence_penalty`,
//!   `frequency_penalty`, `seed`; `max_completion_tokens` / `max_tokens` -> `maxOutputTokens`
//!   (none: the model's own limit; Gemini needs no default).
//! - `tools` -> one `functionDeclarations` tool with `parametersJsonSchema` (JSON Schema as
//!   the client wrote it; the older `parameters` field takes only an OpenAPI subset).
//! - `tool_choice` auto/none/required/named -> `AUTO`/`NONE`/`ANY`/`ANY` + `allowedFunctionNames`.
//!   Gemini cannot turn parallel calls off: `parallel_tool_calls: false` is reported dropped.
//! - `response_format` json_object -> `responseMimeType: application/json`; json_schema ->
//!   also `responseJsonSchema` (again full JSON Schema, where `responseSchema` would refuse
//!   `additionalProperties` and type arrays that strict OpenAI schemas carry).
//! - `reasoning_effort` / `reasoning` -> `thinkingConfig` (see [`thinking_config`]).

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::contents;
use crate::api::{ApiError, TopLevelFields};
use crate::dialects::common::{
    ChatParams, ConvertedRequest, OutputLimit, Reasoning, ResponseFormat, ToolChoice,
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
    "presence_penalty",
    "frequency_penalty",
    "seed",
];

/// `upstream_model` and `stream` are not part of a Gemini body (see [`super::chat_path`]), nor
/// is a default output limit; the parameters keep the call shape of every dialect.
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
    _upstream_model: &str,
    _stream: bool,
    _limit: OutputLimit,
) -> Result<ConvertedRequest, ApiError> {
    let mut p = ChatParams::read(fields, UNDERSTOOD)?;
    let mut notes = std::mem::take(&mut p.dropped);
    let conv = contents::convert(&p.messages, &mut notes)?;
    if conv.contents.is_empty() {
        return Err(ApiError::bad_param(
            "messages",
            "`messages` must hold at least one user or assistant message",
        ));
    }
    if p.parallel_tool_calls == Some(false) {
        notes.push("parallel_tool_calls (Gemini cannot turn parallel calls off)".into());
    }

    let mut body = Map::new();
    let contents = conv
        .contents
        .into_iter()
        .map(|(role, parts)| json!({ "role": role, "parts": parts }));
    body.insert("contents".into(), Value::Array(contents.collect()));
    if !conv.system.is_empty() {
        body.insert("systemInstruction".into(), json!({ "parts": conv.system }));
    }
    if !p.tools.is_empty() {
        let declarations = p.tools.iter().map(|t| {
            let mut f = json!({ "name": t.name });
            if let Some(d) = &t.description {
                f["description"] = json!(d);
            }
            if let Some(schema) = &t.parameters {
                f["parametersJsonSchema"] = schema.clone();
            }
            f
        });
        body.insert(
            "tools".into(),
            json!([{ "functionDeclarations": declarations.collect::<Vec<_>>() }]),
        );
        if let Some(choice) = &p.tool_choice {
            let config = match choice {
                ToolChoice::Auto => json!({ "mode": "AUTO" }),
                ToolChoice::None => json!({ "mode": "NONE" }),
                ToolChoice::Required => json!({ "mode": "ANY" }),
                ToolChoice::Named(name) => json!({ "mode": "ANY", "allowedFunctionNames": [name] }),
            };
            body.insert(
                "toolConfig".into(),
                json!({ "functionCallingConfig": config }),
            );
        }
    }
    let config = generation_config(fields, &p)?;
    if !config.is_empty() {
        body.insert("generationConfig".into(), Value::Object(config));
    }
    let body =
        serde_json::to_vec(&Value::Object(body)).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(ConvertedRequest {
        body: Bytes::from(body),
        dropped: notes,
    })
}

fn generation_config(
    fields: &TopLevelFields,
    p: &ChatParams,
) -> Result<Map<String, Value>, ApiError> {
    let mut c = Map::new();
    let mut put = |key: &str, v: Option<Value>| {
        if let Some(v) = v {
            c.insert(key.into(), v);
        }
    };
    put("stopSequences", (!p.stop.is_empty()).then(|| json!(p.stop)));
    put("temperature", p.temperature.map(|v| json!(v)));
    put("topP", p.top_p.map(|v| json!(v)));
    put("topK", p.top_k.map(|v| json!(v)));
    put("maxOutputTokens", p.max_tokens.map(|v| json!(v)));
    put(
        "presencePenalty",
        fields
            .get::<f64>("presence_penalty", "a number")?
            .map(|v| json!(v)),
    );
    put(
        "frequencyPenalty",
        fields
            .get::<f64>("frequency_penalty", "a number")?
            .map(|v| json!(v)),
    );
    put(
        "seed",
        fields.get::<i64>("seed", "an integer")?.map(|v| json!(v)),
    );
    match &p.response_format {
        Some(ResponseFormat::JsonObject) => {
            put("responseMimeType", Some(json!("application/json")))
        }
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            put("responseMimeType", Some(json!("application/json")));
            put("responseJsonSchema", Some(schema.clone()));
        }
        None => {}
    }
    put("thinkingConfig", p.reasoning.as_ref().map(thinking_config));
    Ok(c)
}

/// Thinking budget per effort, inside every Gemini 2.5 model's allowed range (Gemini 3
/// accepts budgets too and maps them to its levels).
fn effort_budget(effort: &str) -> u64 {
    match effort {
        "minimal" => 512,
        "low" => 1024,
        "medium" => 8192,
        _ => 24576, // high, xhigh, max
    }
}

/// An explicit `reasoning.max_tokens` is the budget; an effort maps through
/// [`effort_budget`]; `enabled: true` alone lets the model decide (-1). Thoughts are
/// returned (as `reasoning`) unless the client excluded them. Off is a budget of 0, which
/// models that cannot stop thinking (2.5 Pro) refuse.
fn thinking_config(r: &Reasoning) -> Value {
    if r.is_off() {
        return json!({ "thinkingBudget": 0 });
    }
    let budget = match (r.max_tokens, r.effort.as_deref()) {
        (Some(n), _) => n as i64,
        (None, Some(effort)) => effort_budget(effort) as i64,
        (None, None) => -1,
    };
    json!({ "thinkingBudget": budget, "includeThoughts": !r.exclude })
}
