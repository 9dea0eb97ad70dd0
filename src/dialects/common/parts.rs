//! The parts of an OpenAI message both foreign dialects read: content parts, data URLs,
//! assistant tool calls and OpenRouter `reasoning_details`.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::api::ApiError;

/// One part of a message's `content`, borrowed from the request.
#[derive(Debug, PartialEq)]
pub enum Part<'a> {
    Text {
        text: &'a str,
        cache_control: Option<&'a Value>,
    },
    /// `image_url.url`: an `http(s)` URL or a `data:` URL.
    Image {
        url: &'a str,
        cache_control: Option<&'a Value>,
    },
    Audio {
        data: &'a str,
        format: &'a str,
    },
    /// `file.file_data` (a data URL), the only file form a provider can be sent inline.
    File {
        data_url: &'a str,
        cache_control: Option<&'a Value>,
    },
    /// A part this gateway cannot translate, by type (dropped and reported).
    Other(String),
}

/// A message's content as parts: a string is one text part, `null` is none.
pub fn content_parts<'a>(
    message: &'a Map<String, Value>,
    at: &str,
) -> Result<Vec<Part<'a>>, ApiError> {
    let bad = |what: &str| ApiError::bad_param("messages", format!("`{at}.content` {what}"));
    let parts = match message.get("content") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) => {
            return Ok(vec![Part::Text {
                text: s,
                cache_control: None,
            }])
        }
        Some(Value::Array(parts)) => parts,
        Some(_) => return Err(bad("must be a string or an array of content parts")),
    };
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        let kind = part
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("parts must be objects with a `type`"))?;
        let cache_control = part.get("cache_control").filter(|v| v.is_object());
        let text = |key: &str| part.get(key).and_then(Value::as_str);
        out.push(match kind {
            "text" => Part::Text {
                text: text("text").ok_or_else(|| bad("text parts need a `text` string"))?,
                cache_control,
            },
            "refusal" => Part::Text {
                text: text("refusal").unwrap_or_default(),
                cache_control,
            },
            "image_url" => {
                let url = part
                    .get("image_url")
                    .and_then(|u| u.get("url").or(Some(u)))
                    .and_then(Value::as_str);
                Part::Image {
                    url: url.ok_or_else(|| bad("image parts need `image_url.url`"))?,
                    cache_control,
                }
            }
            "input_audio" => match (
                part.pointer("/input_audio/data"),
                part.pointer("/input_audio/format"),
            ) {
                (Some(Value::String(data)), Some(Value::String(format))) => {
                    Part::Audio { data, format }
                }
                _ => {
                    return Err(bad(
                        "audio parts need `input_audio.data` and `input_audio.format`",
                    ))
                }
            },
            "file" => match part.pointer("/file/file_data").and_then(Value::as_str) {
                Some(data_url) if data_url.starts_with("data:") => Part::File {
                    data_url,
                    cache_control,
                },
                _ => Part::Other("file without a data URL in file_data".into()),
            },
            other => Part::Other(other.to_string()),
        });
    }
    Ok(out)
}

/// A `data:` URL's media type and its payload as base64.
#[derive(Debug, PartialEq)]
pub struct DataUrl<'a> {
    pub mime: &'a str,
    pub base64: Cow<'a, str>,
}

/// Parses `data:[<mime>][;params][;base64],<data>`. A payload that is not base64 is
/// percent-decoded and encoded, since providers only take base64.
pub fn parse_data_url(url: &str) -> Option<DataUrl<'_>> {
    let rest = url.strip_prefix("data:")?;
    let (meta, payload) = rest.split_once(',')?;
    let (mime, is_base64) = match meta.strip_suffix(";base64") {
        Some(m) => (m, true),
        None => (meta, false),
    };
    let mime = mime
        .split(';')
        .next()
        .filter(|m| !m.is_empty())
        .unwrap_or("text/plain");
    let base64 = if is_base64 {
        Cow::Borrowed(payload)
    } else {
        Cow::Owned(base64_encode(&percent_decode(payload)))
    };
    Some(DataUrl { mime, base64 })
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn base64_encode(data: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            out.push(if i <= chunk.len() {
                TABLE[((n >> shift) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

/// One `tool_calls[]` entry of an assistant message, arguments parsed to an object.
#[derive(Debug)]
pub struct ToolCall<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub arguments: Value,
}

pub fn tool_calls<'a>(
    message: &'a Map<String, Value>,
    at: &str,
) -> Result<Vec<ToolCall<'a>>, ApiError> {
    let Some(calls) = message.get("tool_calls").and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(calls.len());
    for (j, call) in calls.iter().enumerate() {
        let bad =
            |what: &str| ApiError::bad_param("messages", format!("`{at}.tool_calls[{j}]` {what}"));
        let id = call
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("needs an `id` string"))?;
        let name = call
            .pointer("/function/name")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("needs `function.name`"))?;
        let raw = call
            .pointer("/function/arguments")
            .and_then(Value::as_str)
            .unwrap_or("");
        let arguments = if raw.trim().is_empty() {
            Value::Object(Map::new())
        } else {
            match serde_json::from_str::<Value>(raw) {
                Ok(v @ Value::Object(_)) => v,
                _ => return Err(bad("has `function.arguments` that are not a JSON object")),
            }
        };
        out.push(ToolCall {
            id,
            name,
            arguments,
        });
    }
    Ok(out)
}

/// `reasoning_details[].format` of the entries the Anthropic Messages door makes from a
/// client's `thinking` and `redacted_thinking` blocks. Claude signed them, on Anthropic's API or
/// on Bedrock's (the door cannot tell which), so only the Claude dialects replay them. The
/// others drop them and say so: OpenAI-compatible hosts refuse message fields they do not know.
pub const MESSAGES_THINKING_FORMAT: &str = "switchyard-messages-thinking";

/// An assistant message's OpenRouter `reasoning_details` entries written in one of `formats`
/// (entries without a format are accepted: clients often strip it).
pub fn reasoning_details<'a>(
    message: &'a Map<String, Value>,
    formats: &'a [&'a str],
) -> impl Iterator<Item = &'a Value> + 'a {
    message
        .get("reasoning_details")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(move |d| {
            d.get("format")
                .and_then(Value::as_str)
                .is_none_or(|f| formats.contains(&f))
        })
}

/// For a dialect that cannot replay them: notes each `reasoning_details` entry the Messages
/// door made from a thinking block, as the door itself did before Claude dialects used them.
pub fn note_messages_thinking(message: &Map<String, Value>, at: &str, notes: &mut Vec<String>) {
    let details = message.get("reasoning_details").and_then(Value::as_array);
    for (k, d) in details.into_iter().flatten().enumerate() {
        if d.get("format").and_then(Value::as_str) == Some(MESSAGES_THINKING_FORMAT) {
            notes.push(format!(
                "{at}.reasoning_details[{k}] (Claude's thinking: only Claude takes it back)"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_urls_yield_base64() {
        let d = parse_data_url("data:image/png;base64,iVBORw0KGgo=").unwrap();
        assert_eq!((d.mime, d.base64.as_ref()), ("image/png", "iVBORw0KGgo="));
        let d = parse_data_url("data:text/plain;charset=utf-8,Man%20").unwrap();
        assert_eq!((d.mime, d.base64.as_ref()), ("text/plain", "TWFuIA=="));
        assert_eq!(parse_data_url("data:,M").unwrap().base64, "TQ==");
        assert!(parse_data_url("https://x/y.png").is_none());
        assert!(parse_data_url("data:image/png;base64").is_none());
        assert_eq!(percent_decode("%4"), b"%4");
        assert_eq!(percent_decode("a%zz%41"), b"a%zzA");
    }
}
