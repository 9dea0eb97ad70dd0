//! Responses `instructions` + `input` -> OpenAI chat `messages`.
//!
//! - `instructions` -> a leading system message; `input` as a string -> one user message.
//! - Message items (`{"role", "content"}`, with or without `"type": "message"`): `input_text`
//!   / `output_text` -> text, `input_image` -> `image_url` (with `detail`), `input_file` with
//!   `file_data` -> a `file` part, `input_audio` -> `input_audio`, `refusal` -> text.
//!   Files by `file_id` or `file_url` and images by `file_id` need OpenAI's file store: dropped.
//! - `function_call` items -> `tool_calls` of an assistant message (joined onto the assistant
//!   message right before them, as one chat turn holds text and calls);
//!   `function_call_output` -> a `tool` message with its text; its images, files and audio
//!   move to a user message after the run of tool messages (OpenAI accepts them only from
//!   users, and tool answers must follow the assistant's calls directly), as the Messages door
//!   does for Anthropic tool results.
//! - `reasoning` items and hosted tool calls (web search, ...) are dropped and listed;
//!   `item_reference` needs stored items: a 400.

use serde_json::{json, Map, Value};

use crate::api::ApiError;

pub(super) fn convert(
    instructions: Option<&str>,
    input: &Value,
    dropped: &mut Vec<String>,
) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::new();
    if let Some(text) = instructions.filter(|t| !t.is_empty()) {
        out.push(json!({ "role": "system", "content": text }));
    }
    let items = match input {
        Value::String(s) => {
            out.push(json!({ "role": "user", "content": s }));
            return Ok(out);
        }
        Value::Array(items) => items,
        _ => {
            return Err(ApiError::bad_param(
                "input",
                "`input` must be a string or an array of input items",
            ))
        }
    };
    // Media of the tool outputs since the last other item (Codex CLI sends a screenshot as
    // `input_image` in an output).
    let mut result_media = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("input[{i}]");
        let bad = |what: &str| ApiError::bad_param("input", format!("`{at}` {what}"));
        let item = item.as_object().ok_or_else(|| bad("must be an object"))?;
        let kind = item.get("type").and_then(Value::as_str);
        if kind != Some("function_call_output") {
            push_result_media(&mut result_media, &mut out);
        }
        match (kind, item.get("role").and_then(Value::as_str)) {
            (None | Some("message"), Some(role)) => {
                if let Some(m) = message(role, item, &at, dropped)? {
                    out.push(m);
                }
            }
            (None | Some("message"), None) => return Err(bad("needs a `role`")),
            (Some("function_call"), _) => function_call(item, &at, &mut out)?,
            (Some("function_call_output"), _) => {
                let call_id = item
                    .get("call_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad("needs a `call_id` string"))?;
                let content = match item.get("output") {
                    Some(Value::String(s)) => json!(s),
                    Some(Value::Array(parts)) => {
                        let (texts, media): (Vec<Value>, Vec<Value>) =
                            parts_of(parts, &format!("{at}.output"), dropped)?
                                .into_iter()
                                .partition(|p| p["type"] == "text");
                        result_media.extend(media);
                        match texts.is_empty() {
                            true => json!(""),
                            false => Value::Array(texts),
                        }
                    }
                    _ => return Err(bad("needs an `output` string or array")),
                };
                out.push(json!({ "role": "tool", "tool_call_id": call_id, "content": content }));
            }
            (Some("item_reference"), _) => {
                return Err(bad(
                    "is an item_reference; this gateway stores no items, so send the item itself",
                ))
            }
            (Some(other), _) => dropped.push(format!("{at} ({other})")),
        }
    }
    push_result_media(&mut result_media, &mut out);
    Ok(out)
}

/// The tool outputs' media, as one user message after their tool messages.
fn push_result_media(media: &mut Vec<Value>, out: &mut Vec<Value>) {
    if !media.is_empty() {
        out.push(json!({ "role": "user", "content": std::mem::take(media) }));
    }
}

fn message(
    role: &str,
    item: &Map<String, Value>,
    at: &str,
    dropped: &mut Vec<String>,
) -> Result<Option<Value>, ApiError> {
    if !matches!(role, "user" | "assistant" | "system" | "developer") {
        return Err(ApiError::bad_param(
            "input",
            format!("`{at}.role` `{role}` is not one of user, assistant, system, developer"),
        ));
    }
    // Not every OpenAI-compatible host knows `developer`; `system` means the same to all.
    let role = if role == "developer" { "system" } else { role };
    let content = match item.get("content") {
        Some(Value::String(s)) => json!(s),
        Some(Value::Array(parts)) => {
            let parts = parts_of(parts, &format!("{at}.content"), dropped)?;
            if parts.is_empty() {
                return Ok(None);
            }
            let all_text = parts.iter().all(|p| p["type"] == "text");
            // Assistant and system turns take text; joined, they read as the model wrote them.
            // A lone text part is a string too, which every host reads.
            if all_text && (role != "user" || parts.len() == 1) {
                let text: String = parts.iter().filter_map(|p| p["text"].as_str()).collect();
                json!(text)
            } else {
                Value::Array(parts)
            }
        }
        _ => {
            return Err(ApiError::bad_param(
                "input",
                format!("`{at}.content` must be a string or an array of content parts"),
            ))
        }
    };
    Ok(Some(json!({ "role": role, "content": content })))
}

/// Content parts as OpenAI chat parts; unconvertible ones are dropped and listed.
fn parts_of(parts: &[Value], at: &str, dropped: &mut Vec<String>) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::with_capacity(parts.len());
    for (k, part) in parts.iter().enumerate() {
        let at = format!("{at}[{k}]");
        let bad = |what: &str| ApiError::bad_param("input", format!("`{at}` {what}"));
        let kind = part
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("must be an object with a `type`"))?;
        let s = |key: &str| part.get(key).and_then(Value::as_str);
        match kind {
            "input_text" | "output_text" | "text" => {
                let text = s("text").ok_or_else(|| bad("needs a `text` string"))?;
                out.push(json!({ "type": "text", "text": text }));
            }
            "refusal" => {
                out.push(json!({ "type": "text", "text": s("refusal").unwrap_or_default() }))
            }
            "input_image" => match s("image_url") {
                Some(url) => {
                    let mut image = json!({ "url": url });
                    if let Some(detail) = s("detail") {
                        image["detail"] = json!(detail);
                    }
                    out.push(json!({ "type": "image_url", "image_url": image }));
                }
                None => dropped.push(format!("{at} (input_image without image_url)")),
            },
            "input_file" => match s("file_data") {
                Some(data) => {
                    let mut file = json!({ "file_data": data });
                    if let Some(name) = s("filename") {
                        file["filename"] = json!(name);
                    }
                    out.push(json!({ "type": "file", "file": file }));
                }
                None => dropped.push(format!("{at} (input_file without file_data)")),
            },
            "input_audio" => match part.get("input_audio") {
                Some(audio) if audio.is_object() => {
                    out.push(json!({ "type": "input_audio", "input_audio": audio }))
                }
                _ => return Err(bad("needs an `input_audio` object")),
            },
            other => dropped.push(format!("{at} ({other})")),
        }
    }
    Ok(out)
}

/// Appends a call to the assistant message right before it, or starts one.
fn function_call(
    item: &Map<String, Value>,
    at: &str,
    out: &mut Vec<Value>,
) -> Result<(), ApiError> {
    let s = |key: &str| item.get(key).and_then(Value::as_str);
    let (Some(call_id), Some(name)) = (s("call_id"), s("name")) else {
        return Err(ApiError::bad_param(
            "input",
            format!("`{at}` (function_call) needs `call_id` and `name` strings"),
        ));
    };
    let call = json!({ "id": call_id, "type": "function",
                       "function": { "name": name, "arguments": s("arguments").unwrap_or("{}") } });
    match out.last_mut() {
        Some(last) if last["role"] == "assistant" => {
            match last.get_mut("tool_calls").and_then(Value::as_array_mut) {
                Some(calls) => calls.push(call),
                None => last["tool_calls"] = json!([call]),
            }
        }
        _ => out.push(json!({ "role": "assistant", "content": null, "tool_calls": [call] })),
    }
    Ok(())
}
