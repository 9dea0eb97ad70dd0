//! The OpenAI Chat Completions dialect (OpenAI and every OpenAI-compatible host).
//!
//! Requests are forwarded field by field as the client wrote them, with three edits: `model`
//! becomes the provider's own id, gateway-only fields are dropped, and streams ask for usage
//! (`stream_options.include_usage`) so metering reads the provider's own count. A chat request
//! made by the Messages door has a fourth: Claude's thinking it carried over in
//! `reasoning_details` is removed and reported (see [`convert_chat_request`]). OpenAI's own
//! API (and Azure's) refuses OpenRouter's `reasoning` and `top_k` and Anthropic's
//! `cache_control`, which the other hosts of this dialect take or ignore: for it they are
//! translated or dropped and reported ([`is_openai_itself`]).

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::{Map, Value};

use crate::api::chat::GATEWAY_ONLY_FIELDS;
use crate::api::quote::push_json_str;
use crate::api::TopLevelFields;
use crate::catalog::Dialect;
use crate::dialects::common::{note_messages_thinking, ConvertedRequest, MESSAGES_THINKING_FORMAT};

/// The `reasoning_effort` values OpenAI takes.
const OPENAI_EFFORTS: &[&str] = &["none", "minimal", "low", "medium", "high", "xhigh"];

/// The upstream body for one candidate. Untouched values are copied as raw slices.
pub fn chat_request_body(fields: &TopLevelFields, upstream_model: &str, stream: bool) -> Bytes {
    write_body(fields, upstream_model, stream, &[], None)
}

/// Whether the upstream is OpenAI's own API, which refuses every request field it does not
/// know ("Unrecognized request argument supplied"): Azure OpenAI always, and on the OpenAI
/// dialect the model ids OpenAI names its chat models by. The dialect sees the model, not the
/// host: OpenRouter and the other hosts of this dialect (whose ids are `author/slug`, or their
/// own names) keep `reasoning` and `top_k`, which they take or ignore.
fn is_openai_itself(dialect: Dialect, upstream_model: &str) -> bool {
    const FAMILIES: &[&str] = &["gpt-", "chatgpt-", "codex-", "computer-use-", "ft:"];
    let id = upstream_model;
    let o_series = id
        .strip_prefix('o')
        .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()));
    dialect == Dialect::Azure
        || (!id.contains('/')
            && !id.starts_with("gpt-oss")
            && (o_series || FAMILIES.iter().any(|f| id.starts_with(f))))
}

/// [`chat_request_body`] for the chat pipeline. The thinking blocks the Messages door carried
/// over (`reasoning_details` in [`MESSAGES_THINKING_FORMAT`]) are removed and reported: no
/// OpenAI-compatible host can check Claude's signatures, and several refuse message fields they
/// do not know. A client's own `reasoning_details` pass as they are (OpenRouter reads them).
/// OpenAI itself also loses Anthropic's `cache_control` marks (on messages, their parts and
/// tools), which it refuses ("Unknown parameter") and has no use for: it caches by itself.
pub fn convert_chat_request(
    dialect: Dialect,
    fields: &TopLevelFields,
    upstream_model: &str,
    stream: bool,
) -> ConvertedRequest {
    // Built once: a finder's set-up costs about what searching a short body does.
    static MARKER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(MESSAGES_THINKING_FORMAT));
    static CACHE_CONTROL: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"cache_control\""));
    let openai_itself = is_openai_itself(dialect, upstream_model);
    let mut dropped = Vec::new();
    let mut replaced = Vec::new();
    // Only the door writes the marker, and only OpenAI itself loses cache marks, so other
    // requests pay a substring search or two, no parse.
    if let Some(raw) = fields.raw("messages") {
        let thinking = MARKER.find(raw).is_some();
        let cache = openai_itself && CACHE_CONTROL.find(raw).is_some();
        if thinking || cache {
            let edited = edit_each(raw, &mut dropped, |i, m, dropped| {
                let at = format!("messages[{i}]");
                if thinking {
                    remove_messages_thinking(m, &at, dropped);
                }
                if cache {
                    remove_cache_control(m, &at, dropped);
                }
            });
            replaced.extend(edited.map(|v| ("messages", v)));
        }
    }
    if let Some(raw) = fields
        .raw("tools")
        .filter(|raw| openai_itself && CACHE_CONTROL.find(raw).is_some())
    {
        let edited = edit_each(raw, &mut dropped, |i, tool, dropped| {
            remove_cache_control(tool, &format!("tools[{i}]"), dropped)
        });
        replaced.extend(edited.map(|v| ("tools", v)));
    }
    let body = write_body(
        fields,
        upstream_model,
        stream,
        &replaced,
        openai_itself.then_some(&mut dropped),
    );
    ConvertedRequest { body, dropped }
}

/// An array of objects with `edit` applied to each, or `None` when the edits dropped nothing
/// (the client's bytes are sent then).
fn edit_each(
    raw: &[u8],
    dropped: &mut Vec<String>,
    mut edit: impl FnMut(usize, &mut Map<String, Value>, &mut Vec<String>),
) -> Option<Vec<u8>> {
    let mut items: Vec<Value> = serde_json::from_slice(raw).ok()?;
    let before = dropped.len();
    for (i, item) in items.iter_mut().enumerate() {
        if let Some(item) = item.as_object_mut() {
            edit(i, item, dropped);
        }
    }
    if dropped.len() == before {
        return None;
    }
    serde_json::to_vec(&items).ok()
}

/// Removes the door's thinking entries from a message's `reasoning_details`.
fn remove_messages_thinking(m: &mut Map<String, Value>, at: &str, dropped: &mut Vec<String>) {
    note_messages_thinking(m, at, dropped);
    let Some(details) = m.get_mut("reasoning_details").and_then(Value::as_array_mut) else {
        return;
    };
    details.retain(|d| d.get("format").and_then(Value::as_str) != Some(MESSAGES_THINKING_FORMAT));
    if details.is_empty() {
        m.shift_remove("reasoning_details");
    }
}

/// Removes `cache_control` from an object (a message or a tool) and its content parts.
fn remove_cache_control(item: &mut Map<String, Value>, at: &str, dropped: &mut Vec<String>) {
    if item.shift_remove("cache_control").is_some() {
        dropped.push(format!("{at}.cache_control"));
    }
    let Some(parts) = item.get_mut("content").and_then(Value::as_array_mut) else {
        return;
    };
    for (k, part) in parts.iter_mut().enumerate() {
        let part = part.as_object_mut();
        if part.is_some_and(|p| p.shift_remove("cache_control").is_some()) {
            dropped.push(format!("{at}.content[{k}].cache_control"));
        }
    }
}

/// The body, with the `replaced` fields' values instead of the client's. With `openai_itself`
/// (where what it drops is noted), OpenRouter's `reasoning` and `top_k` are translated or
/// dropped.
fn write_body(
    fields: &TopLevelFields,
    upstream_model: &str,
    stream: bool,
    replaced: &[(&str, Vec<u8>)],
    mut openai_itself: Option<&mut Vec<String>>,
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
        if let Some((_, value)) = replaced.iter().find(|(k, _)| *k == key) {
            put_field(&mut out, key, value);
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
            "top_k" | "reasoning" => match openai_itself.as_deref_mut() {
                Some(dropped) => {
                    let client_effort = fields.raw("reasoning_effort").is_some();
                    if let Some(effort) = openai_effort(key, raw, client_effort, dropped) {
                        put_field(&mut out, "reasoning_effort", &effort);
                    }
                }
                None => put_field(&mut out, key, raw),
            },
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

/// What OpenAI gets for OpenRouter's `top_k` or `reasoning`: `reasoning_effort` (quoted) for
/// a `reasoning.effort` OpenAI knows, when the client set no `reasoning_effort` of its own.
/// What OpenAI cannot express (`top_k`, a token budget, `exclude`, ...) is noted in `dropped`.
fn openai_effort(
    key: &str,
    raw: &[u8],
    client_effort: bool,
    dropped: &mut Vec<String>,
) -> Option<Vec<u8>> {
    if raw == b"null" {
        return None; // asks for nothing
    }
    let reasoning = match key {
        "reasoning" => serde_json::from_slice::<Map<String, Value>>(raw).ok(),
        _ => None,
    };
    let effort = reasoning
        .as_ref()
        .and_then(|r| r.get("effort"))
        .and_then(Value::as_str)
        .filter(|e| !client_effort && OPENAI_EFFORTS.contains(e));
    let (Some(reasoning), Some(effort)) = (&reasoning, effort) else {
        dropped.push(key.to_string());
        return None;
    };
    for (k, v) in reasoning {
        if k != "effort" && !v.is_null() {
            dropped.push(format!("reasoning.{k}"));
        }
    }
    serde_json::to_vec(effort).ok()
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
        let c = convert_chat_request(Dialect::OpenAi, &fields, "up", false);
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
        let c = convert_chat_request(Dialect::OpenAi, &fields, "m", false);
        assert_eq!(c.body, json.as_bytes());
        assert!(c.dropped.is_empty());
    }

    #[test]
    fn openai_itself_is_azure_or_openais_own_model_ids() {
        for id in [
            "gpt-4o",
            "gpt-5.1-2025-11-13",
            "o1",
            "o3-pro",
            "o4-mini",
            "chatgpt-4o-latest",
            "codex-mini-latest",
            "computer-use-preview",
            "ft:gpt-4o-mini:org::abc",
        ] {
            assert!(is_openai_itself(Dialect::OpenAi, id), "{id}");
        }
        for id in [
            "openai/gpt-5",
            "anthropic/claude-sonnet-4.5",
            "gpt-oss-120b",
            "gpt-oss:20b",
            "grok-4",
            "deepseek-chat",
            "llama3.1:8b",
            "Qwen/Qwen3-8B",
            "omni-x",
            "o",
            "",
        ] {
            assert!(!is_openai_itself(Dialect::OpenAi, id), "{id}");
        }
        assert!(is_openai_itself(Dialect::Azure, "any-deployment"));
    }

    #[test]
    fn openai_itself_gets_an_effort_for_openrouters_reasoning_and_no_top_k() {
        let convert = |json: &str, dialect, model| {
            let fields = TopLevelFields::parse(Bytes::copy_from_slice(json.as_bytes())).unwrap();
            let c = convert_chat_request(dialect, &fields, model, false);
            (serde_json::from_slice::<Value>(&c.body).unwrap(), c.dropped)
        };
        let json = r#"{"model":"m","messages":[],"top_k":3,"temperature":1,
            "reasoning":{"effort":"low","max_tokens":100,"exclude":null}}"#;
        let (v, dropped) = convert(json, Dialect::OpenAi, "o3");
        assert_eq!(
            v,
            serde_json::json!({"model":"o3","messages":[],"temperature":1,"reasoning_effort":"low"})
        );
        assert_eq!(dropped, ["top_k", "reasoning.max_tokens"]);

        // The client's own reasoning_effort wins; an effort OpenAI does not name, or none, is
        // not translated; null asks for nothing.
        for (json, effort, gone) in [
            (
                r#"{"reasoning_effort":"high","reasoning":{"effort":"low"}}"#,
                Some("high"),
                vec!["reasoning"],
            ),
            (r#"{"reasoning":{"effort":"max"}}"#, None, vec!["reasoning"]),
            (r#"{"reasoning":{"max_tokens":9}}"#, None, vec!["reasoning"]),
            (r#"{"reasoning":"high"}"#, None, vec!["reasoning"]),
            (r#"{"reasoning":null,"top_k":null}"#, None, vec![]),
        ] {
            let (v, dropped) = convert(json, Dialect::Azure, "dep");
            assert_eq!(v["reasoning_effort"].as_str(), effort, "{json}");
            assert!(
                v.get("reasoning").is_none() && v.get("top_k").is_none(),
                "{json}"
            );
            assert_eq!(dropped, gone, "{json}");
        }

        // Other hosts of the dialect get the fields as the client wrote them.
        let (v, dropped) = convert(json, Dialect::OpenAi, "openai/o3");
        assert_eq!(v["top_k"], 3);
        assert_eq!(v["reasoning"]["max_tokens"], 100);
        assert!(v.get("reasoning_effort").is_none() && dropped.is_empty());
    }

    #[test]
    fn openai_itself_gets_no_cache_control_and_the_rest_of_the_dialect_does() {
        let json = r#"{"model":"m","messages":[
            {"role":"system","content":[{"type":"text","text":"s","cache_control":{"type":"ephemeral"}}]},
            {"role":"user","content":"u","cache_control":{"type":"ephemeral"}},
            {"role":"user","content":[{"type":"text","text":"a"},
                {"type":"image_url","image_url":{"url":"https://x/y.png"},"cache_control":{"type":"ephemeral"}}]}],
            "tools":[{"type":"function","function":{"name":"f"},"cache_control":{"type":"ephemeral"}},
                {"type":"function","function":{"name":"g"}}]}"#;
        let fields = TopLevelFields::parse(Bytes::copy_from_slice(json.as_bytes())).unwrap();
        let c = convert_chat_request(Dialect::OpenAi, &fields, "gpt-5", false);
        let v: Value = serde_json::from_slice(&c.body).unwrap();
        assert!(!v.to_string().contains("cache_control"), "{v}");
        assert_eq!(
            v["messages"][2]["content"][1]["image_url"]["url"],
            "https://x/y.png"
        );
        assert_eq!(v["tools"][1]["function"]["name"], "g");
        assert_eq!(
            c.dropped,
            [
                "messages[0].content[0].cache_control",
                "messages[1].cache_control",
                "messages[2].content[1].cache_control",
                "tools[0].cache_control",
            ]
        );

        // OpenRouter passes the marks on to Anthropic's models: the body as the client wrote it.
        let c = convert_chat_request(Dialect::OpenAi, &fields, "anthropic/claude", false);
        assert!(c.dropped.is_empty());
        let sent: Value = serde_json::from_slice(&c.body).unwrap();
        let mut want: Value = serde_json::from_str(json).unwrap();
        want["model"] = "anthropic/claude".into();
        assert_eq!(sent, want);
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
