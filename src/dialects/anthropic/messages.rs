//! OpenAI `messages` -> Anthropic `system` + `messages`.
//!
//! - System and developer messages, wherever they appear, become the top-level `system`
//!   (Anthropic has no system role inside the conversation).
//! - Tool results (`role: tool`) become `tool_result` blocks of a user turn; consecutive
//!   turns of one role are merged, so parallel tool results share one user turn as Anthropic
//!   requires.
//! - Assistant `tool_calls` become `tool_use` blocks; OpenRouter `reasoning_details` written
//!   by this dialect (or made by the Messages door from Claude's thinking blocks) become
//!   `thinking` / `redacted_thinking` blocks again (Anthropic needs them back, signed, to
//!   continue a tool loop with thinking on).
//! - A final assistant message is a prefill: Anthropic continues it, and rejects it if it
//!   ends in whitespace, so that is trimmed.

use serde_json::{json, Map, Value};

use super::REASONING_FORMAT;
use crate::api::ApiError;
use crate::dialects::common::{
    content_parts, parse_data_url, reasoning_details, tool_calls, Part, MESSAGES_THINKING_FORMAT,
};

pub(super) struct Conversation {
    pub system: Vec<Value>,
    pub turns: Vec<Turn>,
}

pub(super) struct Turn {
    pub role: &'static str,
    pub blocks: Vec<Value>,
}

pub(super) fn convert(
    messages: &[Map<String, Value>],
    notes: &mut Vec<String>,
) -> Result<Conversation, ApiError> {
    let mut conv = Conversation {
        system: Vec::new(),
        turns: Vec::new(),
    };
    for (i, m) in messages.iter().enumerate() {
        let at = format!("messages[{i}]");
        match m.get("role").and_then(Value::as_str).unwrap_or_default() {
            "system" | "developer" => {
                for (k, part) in content_parts(m, &at)?.into_iter().enumerate() {
                    match part {
                        Part::Text {
                            text,
                            cache_control,
                        } => conv.system.extend(text_block(text, cache_control)),
                        _ => {
                            notes.push(format!("{at}.content[{k}] (not text, in a system message)"))
                        }
                    }
                }
            }
            "user" => {
                let blocks = user_blocks(content_parts(m, &at)?, &at, notes)?;
                conv.push("user", blocks);
            }
            "assistant" => {
                let blocks = assistant_blocks(m, &at, notes)?;
                conv.push("assistant", blocks);
            }
            "tool" => {
                let block = tool_result(m, &at, notes)?;
                conv.push("user", vec![block]);
            }
            other => {
                return Err(ApiError::bad_param(
                    "messages",
                    format!(
                    "`{at}.role` `{other}` is not one of system, developer, user, assistant, tool"
                ),
                ))
            }
        }
    }
    conv.trim_prefill();
    Ok(conv)
}

impl Conversation {
    fn push(&mut self, role: &'static str, blocks: Vec<Value>) {
        if blocks.is_empty() {
            return;
        }
        match self.turns.last_mut() {
            Some(last) if last.role == role => last.blocks.extend(blocks),
            _ => self.turns.push(Turn { role, blocks }),
        }
    }

    fn trim_prefill(&mut self) {
        let Some(last) = self.turns.last_mut().filter(|t| t.role == "assistant") else {
            return;
        };
        if let Some(block) = last.blocks.last_mut().filter(|b| b["type"] == "text") {
            let trimmed = block["text"]
                .as_str()
                .unwrap_or_default()
                .trim_end()
                .to_string();
            if trimmed.is_empty() {
                last.blocks.pop();
            } else {
                block["text"] = Value::String(trimmed);
            }
        }
        if last.blocks.is_empty() {
            self.turns.pop();
        }
    }
}

/// Anthropic rejects empty text blocks, so an empty text part is no block at all.
fn text_block(text: &str, cache_control: Option<&Value>) -> Option<Value> {
    if text.is_empty() {
        return None;
    }
    let mut block = json!({ "type": "text", "text": text });
    with_cache_control(&mut block, cache_control);
    Some(block)
}

fn with_cache_control(block: &mut Value, cache_control: Option<&Value>) {
    if let Some(cc) = cache_control {
        block["cache_control"] = cc.clone();
    }
}

fn user_blocks(
    parts: Vec<Part<'_>>,
    at: &str,
    notes: &mut Vec<String>,
) -> Result<Vec<Value>, ApiError> {
    let mut blocks = Vec::with_capacity(parts.len());
    for (k, part) in parts.into_iter().enumerate() {
        match part {
            Part::Text {
                text,
                cache_control,
            } => blocks.extend(text_block(text, cache_control)),
            Part::Image { url, cache_control } => blocks.push(image_block(
                url,
                cache_control,
                &format!("{at}.content[{k}]"),
            )?),
            Part::File {
                data_url,
                cache_control,
            } => match file_block(data_url, cache_control) {
                Some(block) => blocks.push(block),
                None => notes.push(format!(
                    "{at}.content[{k}] (file type Anthropic cannot read)"
                )),
            },
            Part::Audio { .. } => notes.push(format!("{at}.content[{k}] (input_audio)")),
            Part::Other(kind) => notes.push(format!("{at}.content[{k}] ({kind})")),
        }
    }
    Ok(blocks)
}

fn image_block(url: &str, cache_control: Option<&Value>, at: &str) -> Result<Value, ApiError> {
    let source = if let Some(d) = parse_data_url(url) {
        json!({ "type": "base64", "media_type": d.mime, "data": d.base64 })
    } else if url.starts_with("https://") || url.starts_with("http://") {
        json!({ "type": "url", "url": url })
    } else {
        return Err(ApiError::bad_param(
            "messages",
            format!("`{at}.image_url.url` must be an http(s) or data URL"),
        ));
    };
    let mut block = json!({ "type": "image", "source": source });
    with_cache_control(&mut block, cache_control);
    Ok(block)
}

/// PDFs become `document` blocks and images `image` blocks; Anthropic reads no other file.
fn file_block(data_url: &str, cache_control: Option<&Value>) -> Option<Value> {
    let d = parse_data_url(data_url)?;
    let source = json!({ "type": "base64", "media_type": d.mime, "data": d.base64 });
    let mut block = match d.mime {
        "application/pdf" => json!({ "type": "document", "source": source }),
        m if m.starts_with("image/") => json!({ "type": "image", "source": source }),
        _ => return None,
    };
    with_cache_control(&mut block, cache_control);
    Some(block)
}

fn assistant_blocks(
    m: &Map<String, Value>,
    at: &str,
    notes: &mut Vec<String>,
) -> Result<Vec<Value>, ApiError> {
    let mut blocks = thinking_blocks(m);
    for (k, part) in content_parts(m, at)?.into_iter().enumerate() {
        match part {
            Part::Text {
                text,
                cache_control,
            } => blocks.extend(text_block(text, cache_control)),
            _ => notes.push(format!(
                "{at}.content[{k}] (not text, in an assistant message)"
            )),
        }
    }
    for call in tool_calls(m, at)? {
        blocks.push(json!({ "type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments }));
    }
    Ok(blocks)
}

/// Signed thinking from `reasoning_details`. Streamed details arrive as several entries per
/// block (text deltas, then the signature) that a client may send back unmerged, so entries
/// with the same `index` are joined first. Unsigned thinking cannot be sent back and is skipped.
fn thinking_blocks(m: &Map<String, Value>) -> Vec<Value> {
    let mut merged: Vec<(Option<u64>, String, String)> = Vec::new(); // (index, text, signature)
    let mut blocks = Vec::new();
    for d in reasoning_details(m, &[REASONING_FORMAT, MESSAGES_THINKING_FORMAT]) {
        let str_at = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or_default();
        match str_at("type") {
            "reasoning.text" => {
                let index = d.get("index").and_then(Value::as_u64);
                match merged.last_mut() {
                    Some(last) if index.is_some() && last.0 == index => {
                        last.1.push_str(str_at("text"));
                        last.2.push_str(str_at("signature"));
                    }
                    _ => merged.push((
                        index,
                        str_at("text").to_string(),
                        str_at("signature").to_string(),
                    )),
                }
            }
            "reasoning.encrypted" if !str_at("data").is_empty() => {
                flush_thinking(&mut merged, &mut blocks);
                blocks.push(json!({ "type": "redacted_thinking", "data": str_at("data") }));
            }
            _ => {}
        }
    }
    flush_thinking(&mut merged, &mut blocks);
    blocks
}

fn flush_thinking(merged: &mut Vec<(Option<u64>, String, String)>, blocks: &mut Vec<Value>) {
    for (_, text, signature) in merged.drain(..) {
        if !signature.is_empty() {
            blocks.push(json!({ "type": "thinking", "thinking": text, "signature": signature }));
        }
    }
}

fn tool_result(
    m: &Map<String, Value>,
    at: &str,
    notes: &mut Vec<String>,
) -> Result<Value, ApiError> {
    let id = m.get("tool_call_id").and_then(Value::as_str);
    let id = id.ok_or_else(|| {
        ApiError::bad_param("messages", format!("`{at}.tool_call_id` is required"))
    })?;
    let mut block = json!({ "type": "tool_result", "tool_use_id": id });
    match m.get("content") {
        Some(Value::String(s)) if !s.is_empty() => block["content"] = json!(s),
        Some(Value::Array(_)) => {
            let blocks = user_blocks(content_parts(m, at)?, at, notes)?;
            if !blocks.is_empty() {
                block["content"] = Value::Array(blocks);
            }
        }
        _ => {}
    }
    Ok(block)
}
