//! OpenAI `messages` -> Converse `system` + `messages`.
//!
//! - System and developer messages, wherever they appear, become `system` blocks.
//! - Tool results (`role: tool`) become `toolResult` blocks of a user turn; consecutive turns
//!   of one role are merged, as Converse requires user and assistant to alternate.
//! - Assistant `tool_calls` become `toolUse` blocks; `reasoning_details` this dialect handed
//!   out become `reasoningContent` blocks again (Claude needs them back, signed, to go on with
//!   a tool loop while thinking), and for Claude so do the thinking blocks the Messages door
//!   carried over (other models cannot use Claude's thinking: dropped and reported).
//! - Media go as bytes: data-URL images (png, jpeg, gif, webp) become `image` blocks and
//!   data-URL files of the document formats `document` blocks; `s3://` image URLs become
//!   `s3Location` sources. Bedrock fetches no http(s) URL and the gateway fetches nothing, so
//!   those are dropped and reported, as is audio.
//! - `cache_control` on a part becomes a `cachePoint` block after it (Bedrock's prompt caching).
//! - Converse refuses blank text blocks: blank text is no block at all, and an empty tool
//!   result is sent as "(no output)". A final assistant message is a prefill, and Claude
//!   refuses one ending in whitespace, so that is trimmed.

use serde_json::{json, Map, Value};

use super::REASONING_FORMAT;
use crate::api::ApiError;
use crate::dialects::common::{
    content_parts, note_messages_thinking, parse_data_url, reasoning_details, tool_calls, Part,
    MESSAGES_THINKING_FORMAT,
};

pub(super) struct Conversation {
    pub system: Vec<Value>,
    pub turns: Vec<Turn>,
    /// Names of the tools the assistant messages called, in order of first use.
    pub called_tools: Vec<String>,
    /// The conversation holds `toolUse` or `toolResult` blocks: Bedrock then refuses a request
    /// without `toolConfig`.
    pub has_tool_blocks: bool,
}

pub(super) struct Turn {
    pub role: &'static str,
    pub blocks: Vec<Value>,
}

/// `claude`: the model is Claude, which takes back the thinking the Messages door carried over.
pub(super) fn convert(
    messages: &[Map<String, Value>],
    claude: bool,
    notes: &mut Vec<String>,
) -> Result<Conversation, ApiError> {
    let replayed: &[&str] = if claude {
        &[REASONING_FORMAT, MESSAGES_THINKING_FORMAT]
    } else {
        &[REASONING_FORMAT]
    };
    let mut conv = Conversation {
        system: Vec::new(),
        turns: Vec::new(),
        called_tools: Vec::new(),
        has_tool_blocks: false,
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
                        } => conv.system.extend(text_blocks(text, cache_control)),
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
                if !claude {
                    note_messages_thinking(m, &at, notes);
                }
                let mut blocks = reasoning_blocks(m, replayed);
                for (k, part) in content_parts(m, &at)?.into_iter().enumerate() {
                    match part {
                        Part::Text {
                            text,
                            cache_control,
                        } => blocks.extend(text_blocks(text, cache_control)),
                        _ => notes.push(format!(
                            "{at}.content[{k}] (not text, in an assistant message)"
                        )),
                    }
                }
                for call in tool_calls(m, &at)? {
                    if !conv.called_tools.iter().any(|n| n == call.name) {
                        conv.called_tools.push(call.name.to_string());
                    }
                    blocks.push(json!({ "toolUse": { "toolUseId": call.id, "name": call.name, "input": call.arguments } }));
                    conv.has_tool_blocks = true;
                }
                conv.push("assistant", blocks);
            }
            "tool" => {
                let block = tool_result(m, &at, notes)?;
                conv.has_tool_blocks = true;
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
        if let Some(block) = last.blocks.last_mut().filter(|b| b.get("text").is_some()) {
            let text = block["text"].as_str().unwrap_or_default();
            let trimmed = text.trim_end().to_string();
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

/// What an empty tool result is sent as.
const EMPTY_TOOL_RESULT: &str = "(no output)";

const CACHE_POINT: &str = r#"{"cachePoint":{"type":"default"}}"#;

fn cache_point() -> Value {
    serde_json::from_str(CACHE_POINT).unwrap_or(Value::Null)
}

/// A text block, and a cache point after it when the part asked for caching. Converse refuses
/// blank text, so whitespace alone is no block.
fn text_blocks(text: &str, cache_control: Option<&Value>) -> Vec<Value> {
    if text.trim().is_empty() {
        return Vec::new();
    }
    let mut blocks = vec![json!({ "text": text })];
    blocks.extend(cache_control.map(|_| cache_point()));
    blocks
}

fn user_blocks(
    parts: Vec<Part<'_>>,
    at: &str,
    notes: &mut Vec<String>,
) -> Result<Vec<Value>, ApiError> {
    let mut blocks = Vec::with_capacity(parts.len());
    for (k, part) in parts.into_iter().enumerate() {
        let here = format!("{at}.content[{k}]");
        let (media, cache_control) = match part {
            Part::Text {
                text,
                cache_control,
            } => {
                blocks.extend(text_blocks(text, cache_control));
                continue;
            }
            Part::Image { url, cache_control } => (media_block(url, &here)?, cache_control),
            Part::File {
                data_url,
                cache_control,
            } => (media_block(data_url, &here)?, cache_control),
            Part::Audio { .. } => (Err("input_audio"), None),
            Part::Other(kind) => {
                notes.push(format!("{here} ({kind})"));
                continue;
            }
        };
        match media {
            Ok(block) => {
                blocks.push(block);
                blocks.extend(cache_control.map(|_| cache_point()));
            }
            Err(why) => notes.push(format!("{here} ({why})")),
        }
    }
    Ok(blocks)
}

/// An `image` or `document` block, or why the part cannot be sent. A malformed data URL is
/// the client's error.
fn media_block(url: &str, at: &str) -> Result<Result<Value, &'static str>, ApiError> {
    if let Some(d) = parse_data_url(url) {
        let source = json!({ "bytes": d.base64 });
        if let Some(format) = image_format(d.mime) {
            return Ok(Ok(
                json!({ "image": { "format": format, "source": source } }),
            ));
        }
        return Ok(match document_format(d.mime) {
            // Bedrock wants a name per document (letters, digits, brackets, single spaces); the
            // part's position is unique in the request.
            Some(format) => Ok(json!({ "document": {
                "format": format, "name": at.replace('.', " "), "source": source } })),
            None => Err("a media type Bedrock cannot read"),
        });
    }
    if url.starts_with("data:") {
        return Err(ApiError::bad_param(
            "messages",
            format!("`{at}` has a malformed data URL"),
        ));
    }
    if url.starts_with("s3://") {
        let ext = url.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
        let format = ext
            .as_deref()
            .and_then(|e| image_format(&format!("image/{e}")));
        return Ok(match format {
            Some(format) => Ok(
                json!({ "image": { "format": format, "source": { "s3Location": { "uri": url } } } }),
            ),
            None => Err("an s3 URL without a png, jpeg, gif or webp extension"),
        });
    }
    Ok(Err(
        "a URL Bedrock cannot fetch: send the bytes as a data URL",
    ))
}

fn image_format(mime: &str) -> Option<&'static str> {
    Some(match mime.to_ascii_lowercase().as_str() {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpeg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        _ => return None,
    })
}

fn document_format(mime: &str) -> Option<&'static str> {
    Some(match mime.to_ascii_lowercase().as_str() {
        "application/pdf" => "pdf",
        "text/csv" => "csv",
        "application/msword" => "doc",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => "docx",
        "application/vnd.ms-excel" => "xls",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx",
        "text/html" => "html",
        "text/plain" => "txt",
        "text/markdown" => "md",
        _ => return None,
    })
}

/// Signed reasoning from the `reasoning_details` written in one of `formats`. Streamed details
/// arrive as several entries per block (text deltas, then the signature), which a client may
/// send back unmerged, so entries with the same `index` are joined first. Unsigned reasoning
/// cannot be replayed: skipped.
fn reasoning_blocks(m: &Map<String, Value>, formats: &[&str]) -> Vec<Value> {
    let mut merged: Vec<(Option<u64>, String, String)> = Vec::new(); // (index, text, signature)
    let mut blocks = Vec::new();
    let flush = |merged: &mut Vec<(Option<u64>, String, String)>, blocks: &mut Vec<Value>| {
        for (_, text, signature) in merged.drain(..).filter(|(_, _, sig)| !sig.is_empty()) {
            blocks.push(json!({ "reasoningContent": { "reasoningText": { "text": text, "signature": signature } } }));
        }
    };
    for d in reasoning_details(m, formats) {
        let s = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or_default();
        match s("type") {
            "reasoning.text" => {
                let index = d.get("index").and_then(Value::as_u64);
                match merged.last_mut() {
                    Some(last) if index.is_some() && last.0 == index => {
                        last.1.push_str(s("text"));
                        last.2.push_str(s("signature"));
                    }
                    _ => merged.push((index, s("text").into(), s("signature").into())),
                }
            }
            "reasoning.encrypted" if !s("data").is_empty() => {
                flush(&mut merged, &mut blocks);
                blocks.push(json!({ "reasoningContent": { "redactedContent": s("data") } }));
            }
            _ => {}
        }
    }
    flush(&mut merged, &mut blocks);
    blocks
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
    let mut content = user_blocks(content_parts(m, at)?, at, notes)?;
    // Cache points are not allowed inside a tool result, and Bedrock refuses one with no
    // content: a tool that returned nothing says so.
    content.retain(|b| b.get("cachePoint").is_none());
    if content.is_empty() {
        content.push(json!({ "text": EMPTY_TOOL_RESULT }));
    }
    Ok(json!({ "toolResult": { "toolUseId": id, "content": content } }))
}
