//! Anthropic `system` + `messages` -> OpenAI chat `messages`.
//!
//! - `system` (a string or text blocks) -> one leading system message.
//! - User turns: `text` -> text parts; `image` (base64 or url source) -> `image_url` parts
//!   (base64 as a data URL); `document` -> a `file` part (base64 PDF) or text (text source);
//!   `tool_result` blocks -> `tool` messages, placed before the rest of the turn as OpenAI
//!   requires tool answers right after the assistant's calls. Images inside a tool result move
//!   to the user message that follows them: OpenAI accepts images only from users.
//! - Assistant turns: `text` -> content, `tool_use` -> `tool_calls` (arguments as JSON text).
//!   Signed `thinking` and `redacted_thinking` -> OpenRouter `reasoning_details` entries, in
//!   order, marked [`MESSAGES_THINKING_FORMAT`]: with thinking on, Claude refuses a tool loop
//!   whose last assistant turn does not start with its thinking, and Claude on Bedrock is
//!   reached through this conversion (an Anthropic upstream gets the passthrough body). The
//!   dialects that cannot use them drop and report them.
//! - `cache_control` stays on text, image and file parts (OpenRouter's convention, which the
//!   Anthropic dialect reads back); elsewhere OpenAI has no place for it.
//! - Unsigned thinking (no upstream accepts it back), thinking in a turn with nothing else,
//!   server tool blocks and unknown blocks are dropped and listed.

use serde_json::{json, Map, Value};

use crate::api::ApiError;
use crate::dialects::common::MESSAGES_THINKING_FORMAT;

pub(super) fn convert(
    system: Option<&Value>,
    messages: &Value,
    dropped: &mut Vec<String>,
) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::new();
    if let Some(system) = system.filter(|s| !s.is_null()) {
        let parts = system_parts(system, dropped)?;
        if !parts.is_empty() {
            out.push(json!({ "role": "system", "content": compact(parts) }));
        }
    }
    let messages = messages
        .as_array()
        .ok_or_else(|| ApiError::bad_param("messages", "`messages` must be an array"))?;
    for (i, m) in messages.iter().enumerate() {
        let at = format!("messages[{i}]");
        let bad = |what: &str| ApiError::bad_param("messages", format!("`{at}` {what}"));
        let role = m
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("must be an object with a `role`"))?;
        let blocks = blocks_of(m.get("content"), &at)?;
        match role {
            "user" => user_turn(&blocks, &at, dropped, &mut out)?,
            "assistant" => out.extend(assistant_turn(&blocks, &at, dropped)?),
            other => {
                return Err(bad(&format!(
                    "has role `{other}`; expected `user` or `assistant`"
                )))
            }
        }
    }
    Ok(out)
}

/// A content value as blocks: a string is one text block.
fn blocks_of(content: Option<&Value>, at: &str) -> Result<Vec<Map<String, Value>>, ApiError> {
    let bad = |what: &str| ApiError::bad_param("messages", format!("`{at}.content` {what}"));
    match content {
        Some(Value::String(s)) => Ok(vec![text_block(s)]),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .map(|b| match b {
                Value::Object(o) if o.get("type").is_some_and(Value::is_string) => Ok(o.clone()),
                _ => Err(bad("must hold objects with a `type`")),
            })
            .collect(),
        None => Err(bad("is required")),
        Some(_) => Err(bad("must be a string or an array of content blocks")),
    }
}

fn text_block(text: &str) -> Map<String, Value> {
    let mut block = Map::new();
    block.insert("type".into(), json!("text"));
    block.insert("text".into(), json!(text));
    block
}

fn kind(block: &Map<String, Value>) -> &str {
    block
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn system_parts(system: &Value, dropped: &mut Vec<String>) -> Result<Vec<Value>, ApiError> {
    let blocks = match system {
        Value::String(s) => vec![text_block(s)],
        Value::Array(_) => blocks_of(Some(system), "system").map_err(|_| {
            ApiError::bad_param("system", "`system` blocks must be objects with a `type`")
        })?,
        _ => {
            return Err(ApiError::bad_param(
                "system",
                "`system` must be a string or an array of text blocks",
            ))
        }
    };
    let mut parts = Vec::new();
    for (k, block) in blocks.iter().enumerate() {
        match kind(block) {
            "text" => parts.extend(text_part(block, &format!("system[{k}]"))?),
            other => dropped.push(format!("system[{k}] ({other})")),
        }
    }
    Ok(parts)
}

/// A text part, or none for empty text (which providers refuse).
fn text_part(block: &Map<String, Value>, at: &str) -> Result<Option<Value>, ApiError> {
    let param = if at.starts_with("system") {
        "system"
    } else {
        "messages"
    };
    let text = block
        .get("text")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_param(param, format!("`{at}.text` must be a string")))?;
    if text.is_empty() {
        return Ok(None);
    }
    Ok(Some(with_cache_control(
        json!({ "type": "text", "text": text }),
        block,
    )))
}

fn with_cache_control(mut part: Value, block: &Map<String, Value>) -> Value {
    if let Some(cc) = block.get("cache_control").filter(|c| c.is_object()) {
        part["cache_control"] = cc.clone();
    }
    part
}

/// One plain text part is sent as a string, which every OpenAI-compatible host reads.
fn compact(parts: Vec<Value>) -> Value {
    match parts.as_slice() {
        [only] if only.get("cache_control").is_none() && only["type"] == "text" => {
            only["text"].clone()
        }
        _ => Value::Array(parts),
    }
}

fn user_turn(
    blocks: &[Map<String, Value>],
    at: &str,
    dropped: &mut Vec<String>,
    out: &mut Vec<Value>,
) -> Result<(), ApiError> {
    let mut parts = Vec::new();
    let mut result_images = Vec::new();
    for (k, block) in blocks.iter().enumerate() {
        let at = format!("{at}.content[{k}]");
        match kind(block) {
            "tool_result" => {
                out.push(tool_message(block, &at, &mut result_images, dropped)?);
            }
            _ => parts.extend(media_part(block, &at, dropped)?),
        }
    }
    result_images.extend(parts);
    if !result_images.is_empty() {
        out.push(json!({ "role": "user", "content": compact(result_images) }));
    }
    Ok(())
}

/// A user content block that is text or media, as an OpenAI part (`None`: dropped or empty).
fn media_part(
    block: &Map<String, Value>,
    at: &str,
    dropped: &mut Vec<String>,
) -> Result<Option<Value>, ApiError> {
    let source = block.get("source").and_then(Value::as_object);
    let s = |k: &str| source.and_then(|s| s.get(k)).and_then(Value::as_str);
    let bad = |what: &str| ApiError::bad_param("messages", format!("`{at}.source` {what}"));
    let part = match (kind(block), s("type")) {
        ("text", _) => return text_part(block, at),
        ("image", Some("base64")) => {
            let (Some(mime), Some(data)) = (s("media_type"), s("data")) else {
                return Err(bad("needs `media_type` and `data` strings"));
            };
            json!({ "type": "image_url", "image_url": { "url": format!("data:{mime};base64,{data}") } })
        }
        ("image", Some("url")) => {
            let url = s("url").ok_or_else(|| bad("needs a `url` string"))?;
            json!({ "type": "image_url", "image_url": { "url": url } })
        }
        ("document", Some("base64")) => {
            let (Some(mime), Some(data)) = (s("media_type"), s("data")) else {
                return Err(bad("needs `media_type` and `data` strings"));
            };
            let name = block
                .get("title")
                .and_then(Value::as_str)
                .unwrap_or("document.pdf");
            json!({ "type": "file", "file": { "filename": name, "file_data": format!("data:{mime};base64,{data}") } })
        }
        ("document", Some("text")) => {
            let text = s("data").ok_or_else(|| bad("needs a `data` string"))?;
            json!({ "type": "text", "text": text })
        }
        (kind @ ("image" | "document"), source) => {
            dropped.push(format!(
                "{at} ({kind} with a {} source)",
                source.unwrap_or("missing")
            ));
            return Ok(None);
        }
        (other, _) => {
            dropped.push(format!("{at} ({other})"));
            return Ok(None);
        }
    };
    Ok(Some(with_cache_control(part, block)))
}

fn tool_message(
    block: &Map<String, Value>,
    at: &str,
    images: &mut Vec<Value>,
    dropped: &mut Vec<String>,
) -> Result<Value, ApiError> {
    let id = block
        .get("tool_use_id")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ApiError::bad_param("messages", format!("`{at}.tool_use_id` must be a string"))
        })?;
    // `is_error` has no OpenAI equivalent; the result's own text says what went wrong.
    let content = match block.get("content") {
        None | Some(Value::Null) => json!(""),
        Some(Value::String(s)) => json!(s),
        Some(inner) => {
            let mut texts = Vec::new();
            for (k, b) in blocks_of(Some(inner), at)?.iter().enumerate() {
                match media_part(b, &format!("{at}.content[{k}]"), dropped)? {
                    Some(part) if part["type"] == "text" => texts.push(part),
                    Some(part) => images.push(part),
                    None => {}
                }
            }
            match compact(texts) {
                Value::Array(a) if a.is_empty() => json!(""),
                v => v,
            }
        }
    };
    Ok(json!({ "role": "tool", "tool_call_id": id, "content": content }))
}

fn assistant_turn(
    blocks: &[Map<String, Value>],
    at: &str,
    dropped: &mut Vec<String>,
) -> Result<Option<Value>, ApiError> {
    let mut texts = Vec::new();
    let mut calls = Vec::new();
    // Each entry with where it came from, to report it if the turn turns out to be empty.
    let mut thinking: Vec<(Value, String)> = Vec::new();
    for (k, block) in blocks.iter().enumerate() {
        let at = format!("{at}.content[{k}]");
        let non_empty = |key: &str| {
            block
                .get(key)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
        };
        // A distinct `index` per block: the dialects join entries of one index into one block.
        let index = thinking.len();
        match kind(block) {
            "text" => texts.extend(text_part(block, &at)?),
            "thinking" => match non_empty("signature") {
                Some(signature) => thinking.push((
                    json!({ "type": "reasoning.text", "text": non_empty("thinking").unwrap_or_default(),
                            "signature": signature, "format": MESSAGES_THINKING_FORMAT, "index": index }),
                    format!("{at} (thinking)"),
                )),
                None => dropped.push(format!("{at} (thinking without a signature)")),
            },
            "redacted_thinking" => match non_empty("data") {
                Some(data) => thinking.push((
                    json!({ "type": "reasoning.encrypted", "data": data,
                            "format": MESSAGES_THINKING_FORMAT, "index": index }),
                    format!("{at} (redacted_thinking)"),
                )),
                None => dropped.push(format!("{at} (redacted_thinking without data)")),
            },
            "tool_use" => {
                let s = |key: &str| block.get(key).and_then(Value::as_str);
                let (Some(id), Some(name)) = (s("id"), s("name")) else {
                    return Err(ApiError::bad_param(
                        "messages",
                        format!("`{at}` (tool_use) needs `id` and `name` strings"),
                    ));
                };
                let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
                calls.push(json!({ "id": id, "type": "function",
                                   "function": { "name": name, "arguments": input.to_string() } }));
            }
            other => dropped.push(format!("{at} ({other})")),
        }
    }
    if texts.is_empty() && calls.is_empty() {
        // Thinking alone makes no OpenAI message (one with neither content nor tool calls is
        // refused), and Claude needs thinking back only before the text or calls it led to.
        dropped.extend(thinking.into_iter().map(|(_, at)| at));
        return Ok(None);
    }
    let mut message = json!({ "role": "assistant", "content": if texts.is_empty() { Value::Null } else { compact(texts) } });
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    if !thinking.is_empty() {
        message["reasoning_details"] = thinking.into_iter().map(|(d, _)| d).collect();
    }
    Ok(Some(message))
}
