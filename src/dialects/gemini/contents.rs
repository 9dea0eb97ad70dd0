//! OpenAI `messages` -> Gemini `systemInstruction` + `contents`.
//!
//! - System and developer messages become `systemInstruction` parts.
//! - Roles become `user` / `model`; consecutive contents of one role are merged, so parallel
//!   function responses share one content as Gemini expects.
//! - Images and files: data URLs become `inlineData`; other URLs `fileData.fileUri` (Files API
//!   and Cloud Storage URIs, or public URLs where Gemini fetches them; the gateway fetches
//!   nothing). Audio becomes `inlineData`.
//! - Assistant `tool_calls` become `functionCall` parts; a tool result becomes a
//!   `functionResponse` named after the call it answers (Gemini matches by name, not id).
//! - Gemini 3 refuses a replayed function call without its `thoughtSignature`. Signatures
//!   this dialect handed out (in `reasoning_details`, keyed by tool call id) are put back;
//!   for calls that lost theirs (history from another model, a client that drops unknown
//!   fields), Google's documented placeholder is sent instead of failing the request. Claude's
//!   thinking (carried from the Messages door) means nothing to Gemini: dropped and reported.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::REASONING_FORMAT;
use crate::api::ApiError;
use crate::dialects::common::{
    content_parts, note_messages_thinking, parse_data_url, reasoning_details, tool_calls, Part,
};

/// Google's documented value for a function call whose real signature is unknown.
const SKIP_SIGNATURE: &str = "skip_thought_signature_validator";

pub(super) struct Conversation {
    pub system: Vec<Value>,
    pub contents: Vec<(&'static str, Vec<Value>)>,
}

pub(super) fn convert(
    messages: &[Map<String, Value>],
    notes: &mut Vec<String>,
) -> Result<Conversation, ApiError> {
    let mut conv = Conversation {
        system: Vec::new(),
        contents: Vec::new(),
    };
    // Tool call id -> function name; a later call with the same id wins, as its result follows it.
    let mut names: HashMap<&str, &str> = HashMap::new();
    for (i, m) in messages.iter().enumerate() {
        let at = format!("messages[{i}]");
        match m.get("role").and_then(Value::as_str).unwrap_or_default() {
            "system" | "developer" => {
                for (k, part) in content_parts(m, &at)?.into_iter().enumerate() {
                    match part {
                        Part::Text { text, .. } if !text.is_empty() => {
                            conv.system.push(json!({ "text": text }))
                        }
                        Part::Text { .. } => {}
                        _ => {
                            notes.push(format!("{at}.content[{k}] (not text, in a system message)"))
                        }
                    }
                }
            }
            "user" => {
                let parts = user_parts(content_parts(m, &at)?, notes, &at)?;
                conv.push("user", parts);
            }
            "assistant" => {
                let mut parts = Vec::new();
                for (k, part) in content_parts(m, &at)?.into_iter().enumerate() {
                    match part {
                        Part::Text { text, .. } if !text.is_empty() => {
                            parts.push(json!({ "text": text }))
                        }
                        Part::Text { .. } => {}
                        _ => notes.push(format!(
                            "{at}.content[{k}] (not text, in an assistant message)"
                        )),
                    }
                }
                note_messages_thinking(m, &at, notes);
                let calls = tool_calls(m, &at)?;
                let signatures = signatures(m);
                let any_signed = calls.iter().any(|c| signatures.contains_key(c.id));
                for (j, call) in calls.into_iter().enumerate() {
                    names.insert(call.id, call.name);
                    let mut part =
                        json!({ "functionCall": { "name": call.name, "args": call.arguments } });
                    match signatures.get(call.id) {
                        Some(sig) => part["thoughtSignature"] = json!(sig),
                        // Gemini signs only the first of parallel calls.
                        None if j == 0 && !any_signed => {
                            part["thoughtSignature"] = json!(SKIP_SIGNATURE)
                        }
                        None => {}
                    }
                    parts.push(part);
                }
                conv.push("model", parts);
            }
            "tool" => {
                let id = m
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let name = names
                    .get(id)
                    .copied()
                    .or_else(|| m.get("name").and_then(Value::as_str));
                let name = name.ok_or_else(|| {
                    ApiError::bad_param(
                        "messages",
                        format!("`{at}.tool_call_id` does not match a tool call of an earlier assistant message"),
                    )
                })?;
                let part =
                    json!({ "functionResponse": { "name": name, "response": tool_response(m) } });
                conv.push("user", vec![part]);
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
    Ok(conv)
}

impl Conversation {
    fn push(&mut self, role: &'static str, parts: Vec<Value>) {
        if parts.is_empty() {
            return;
        }
        match self.contents.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(parts),
            _ => self.contents.push((role, parts)),
        }
    }
}

fn user_parts(
    parts: Vec<Part<'_>>,
    notes: &mut Vec<String>,
    at: &str,
) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::with_capacity(parts.len());
    for (k, part) in parts.into_iter().enumerate() {
        match part {
            Part::Text { text, .. } if !text.is_empty() => out.push(json!({ "text": text })),
            Part::Text { .. } => {}
            Part::Image { url, .. } | Part::File { data_url: url, .. } => {
                out.push(media_part(url, &format!("{at}.content[{k}]"))?)
            }
            Part::Audio { data, format } => out.push(
                json!({ "inlineData": { "mimeType": format!("audio/{format}"), "data": data } }),
            ),
            Part::Other(kind) => notes.push(format!("{at}.content[{k}] ({kind})")),
        }
    }
    Ok(out)
}

fn media_part(url: &str, at: &str) -> Result<Value, ApiError> {
    if let Some(d) = parse_data_url(url) {
        return Ok(json!({ "inlineData": { "mimeType": d.mime, "data": d.base64 } }));
    }
    if url.starts_with("data:") {
        return Err(ApiError::bad_param(
            "messages",
            format!("`{at}` has a malformed data URL"),
        ));
    }
    let mut file = json!({ "fileUri": url });
    if let Some(mime) = mime_from_extension(url) {
        file = json!({ "mimeType": mime, "fileUri": url });
    }
    Ok(json!({ "fileData": file }))
}

fn mime_from_extension(url: &str) -> Option<&'static str> {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "heic" => "image/heic",
        "pdf" => "application/pdf",
        "mp3" => "audio/mp3",
        "wav" => "audio/wav",
        "mp4" => "video/mp4",
        _ => return None,
    })
}

/// Gemini wants a JSON object: a result that is one is sent as it is, anything else is
/// wrapped as `{"content": ...}`.
fn tool_response(m: &Map<String, Value>) -> Value {
    let text = match m.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => {
            let texts = parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str));
            texts.collect::<Vec<_>>().join("")
        }
        _ => String::new(),
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({ "content": text }),
    }
}

/// Tool call id -> `thoughtSignature`, from the details this dialect put on the answer.
fn signatures(m: &Map<String, Value>) -> HashMap<&str, &str> {
    reasoning_details(m, &[REASONING_FORMAT])
        .filter(|d| d["type"] == "reasoning.encrypted")
        .filter_map(|d| Some((d.get("id")?.as_str()?, d.get("data")?.as_str()?)))
        .collect()
}
