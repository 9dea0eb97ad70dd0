//! The OpenAI Chat Completions dialect (OpenAI and every OpenAI-compatible host).
//!
//! Requests are forwarded field by field as the client wrote them, with three edits: `model`
//! becomes the provider's own id, gateway-only fields are dropped, and streams ask for usage
//! (`stream_options.include_usage`) so metering reads the provider's own count. A chat request
//! made by the Messages door has a fourth: Claude's thinking it carried over in
//! `reasoning_details` is removed and reported (see [`convert_chat_request`]).

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::Value;

use crate::api::chat::GATEWAY_ONLY_FIELDS;
use crate::api::quote::push_json_str;
use crate::api::TopLevelFields;
use crate::dialects::common::{note_messages_thinking, ConvertedRequest, MESSAGES_THINKING_FORMAT};

/// The upstream body for one candidate. Untouched values are copied as raw slices.
pub fn chat_request_body(fields: &TopLevelFields, upstream_model: &str, stream: bool) -> Bytes {
    write_body(fields, upstream_model, stream, None)
}

/// [`chat_request_body`] for the chat pipeline. The thinking blocks the Messages door carried
/// over (`reasoning_details` in [`MESSAGES_THINKING_FORMAT`]) are removed and reported: no
/// OpenAI-compatible host can check Claude's signatures, and several refuse message fields they
/// do not know. A client's own `reasoning_details` pass as they are (OpenRouter reads them).
pub fn convert_chat_request(
    fields: &TopLevelFields,
    upstream_model: &str,
    stream: bool,
) -> ConvertedRequest {
    // Built once: a finder's set-up costs about what searching a short body does.
    static MARKER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(MESSAGES_THINKING_FORMAT));
    let mut dropped = Vec::new();
    // Only the door writes the marker, so other requests pay one substring search, no parse.
    let messages = fields
        .raw("messages")
        .filter(|raw| MARKER.find(raw).is_some())
        .and_then(|raw| without_messages_thinking(raw, &mut dropped));
    ConvertedRequest {
        body: write_body(fields, upstream_model, stream, messages.as_deref()),
        dropped,
    }
}

/// `messages` without the door's thinking entries, or `None` when there are none to remove.
fn without_messages_thinking(raw: &[u8], dropped: &mut Vec<String>) -> Option<Vec<u8>> {
    let mut messages: Vec<Value> = serde_json::from_slice(raw).ok()?;
    let before = dropped.len();
    for (i, m) in messages.iter_mut().enumerate() {
        let Some(m) = m.as_object_mut() else { continue };
        note_messages_thinking(m, &format!("messages[{i}]"), dropped);
        let Some(details) = m.get_mut("reasoning_details").and_then(Value::as_array_mut) else {
            continue;
        };
        details
            .retain(|d| d.get("format").and_then(Value::as_str) != Some(MESSAGES_THINKING_FORMAT));
        if details.is_empty() {
            m.shift_remove("reasoning_details");
        }
    }
    if dropped.len() == before {
        return None;
    }
    serde_json::to_vec(&messages).ok()
}

/// The body, with `messages` replaced when given.
fn write_body(
    fields: &TopLevelFields,
    upstream_model: &str,
    stream: bool,
    messages: Option<&[u8]>,
) -> Bytes {
    let mut out = BytesMut::with_capacity(fields.body().len() + upstream_model.len() + 48);
    out.put_u8(b'{');
    let mut first = true;
    let mut put_field = |out: &mut BytesMut, key: &str, value: &[u8]| {
        if !first {
            out.put_u8(b',');
        }
        first = false;
        push_json_str(out, key);
        out.put_u8(b':');
        out.put_slice(value);
    };
    let mut wrote_stream_options = false;
    let mut wrote_model = false;
    let quoted_model = || {
        let mut quoted = Vec::with_capacity(upstream_model.len() + 2);
        push_json_str(&mut quoted, upstream_model);
        quoted
    };
    for (key, raw) in fields.iter() {
        if GATEWAY_ONLY_FIELDS.contains(&key) {
            continue;
        }
        match key {
            "model" => {
                put_field(&mut out, key, &quoted_model());
                wrote_model = true;
            }
            "stream_options" if stream => {
                put_field(&mut out, key, &with_include_usage(raw));
                wrote_stream_options = true;
            }
            "messages" => put_field(&mut out, key, messages.unwrap_or(raw)),
            _ => put_field(&mut out, key, raw),
        }
    }
    if !wrote_model {
        // A client may name its models in `models` alone (OpenRouter's fallback form).
        put_field(&mut out, "model", &quoted_model());
    }
    if stream && !wrote_stream_options {
        put_field(&mut out, "stream_options", br#"{"include_usage":true}"#);
    }
    out.put_u8(b'}');
    out.freeze()
}

/// The client's `stream_options` with `include_usage` forced on.
fn with_include_usage(raw: &[u8]) -> Vec<u8> {
    let mut map = match serde_json::from_slice::<Value>(raw) {
        Ok(Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    map.insert("include_usage".into(), Value::Bool(true));
    serde_json::to_vec(&Value::Object(map))
        .unwrap_or_else(|_| br#"{"include_usage":true}"#.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str, model: &str, stream: bool) -> Value {
        let fields = TopLevelFields::parse(Bytes::copy_from_slice(json.as_bytes())).unwrap();
        serde_json::from_slice(&chat_request_body(&fields, model, stream)).unwrap()
    }

    #[test]
    fn rewrites_model_and_drops_gateway_fields() {
        let v = body(
            r#"{"model":"openai/gpt-4o","messages":[{"role":"user","content":"hi \"there\""}],
                "models":["x"],"provider":{"order":["a"]},"session_id":"s","temperature":0.2,"custom":{"a":1}}"#,
            "gpt-4o-2024",
            false,
        );
        assert_eq!(v["model"], "gpt-4o-2024");
        assert_eq!(v["messages"][0]["content"], "hi \"there\"");
        assert_eq!(v["temperature"], 0.2);
        assert_eq!(v["custom"]["a"], 1, "unknown fields pass through");
        for gone in ["models", "provider", "session_id", "stream_options"] {
            assert!(v.get(gone).is_none(), "{gone} must not reach the provider");
        }
    }

    #[test]
    fn a_body_naming_its_models_in_models_alone_gets_the_upstream_model() {
        let v = body(r#"{"models":["a/b","c/d"],"messages":[]}"#, "up", false);
        assert_eq!(v["model"], "up");
        assert!(v.get("models").is_none());
    }

    #[test]
    fn thinking_the_messages_door_carried_is_removed_and_reported_but_a_clients_own_is_not() {
        let json = r#"{"model":"m","messages":[{"role":"user","content":"mentions switchyard-messages-thinking"},
            {"role":"assistant","content":"a","reasoning_details":[
                {"type":"reasoning.text","text":"t","signature":"s","format":"switchyard-messages-thinking","index":0}]},
            {"role":"assistant","content":"b","reasoning_details":[
                {"type":"reasoning.text","text":"mine","signature":"x","format":"anthropic-claude-v1","index":0},
                {"type":"reasoning.encrypted","data":"d","format":"switchyard-messages-thinking","index":1}]}]}"#;
        let fields = TopLevelFields::parse(Bytes::copy_from_slice(json.as_bytes())).unwrap();
        let c = convert_chat_request(&fields, "up", false);
        let v: Value = serde_json::from_slice(&c.body).unwrap();
        assert_eq!(
            v["messages"][0]["content"],
            "mentions switchyard-messages-thinking"
        );
        assert!(v["messages"][1].get("reasoning_details").is_none(), "{v}");
        assert_eq!(v["messages"][1]["content"], "a");
        assert_eq!(
            v["messages"][2]["reasoning_details"],
            serde_json::json!([{"type":"reasoning.text","text":"mine","signature":"x","format":"anthropic-claude-v1","index":0}]),
            "the client's own details pass (OpenRouter reads them)"
        );
        assert_eq!(
            c.dropped,
            [
                "messages[1].reasoning_details[0] (Claude's thinking: only Claude takes it back)",
                "messages[2].reasoning_details[1] (Claude's thinking: only Claude takes it back)",
            ]
        );

        // The marker in text alone changes nothing: the body is copied as it was.
        let json = r#"{"model":"m","messages":[{"role":"user","content":"switchyard-messages-thinking"}]}"#;
        let fields = TopLevelFields::parse(Bytes::copy_from_slice(json.as_bytes())).unwrap();
        let c = convert_chat_request(&fields, "m", false);
        assert_eq!(c.body, json.as_bytes());
        assert!(c.dropped.is_empty());
    }

    #[test]
    fn streams_always_ask_for_usage() {
        let v = body(r#"{"model":"m","messages":[],"stream":true}"#, "up", true);
        assert_eq!(v["stream_options"]["include_usage"], true);
        let v = body(
            r#"{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":false,"x":1}}"#,
            "up",
            true,
        );
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(v["stream_options"]["x"], 1);
    }
}
