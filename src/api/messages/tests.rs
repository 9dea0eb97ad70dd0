//! Golden cases (`tests/golden/front/messages/`: Messages request -> chat body, chat completion
//! -> message, chat stream -> Anthropic events) and the behaviour files cannot show.

use bytes::Bytes;
use serde_json::{json, Value};

use super::*;
use crate::api::TopLevelFields;
use crate::dialects::common::golden::{self, Case, Kind};
use crate::metering::Cost;

const DIR: &str = "front/messages";

impl golden::StreamUnderTest for ChatToMessagesStream {
    fn feed(&mut self, chunk: &[u8]) -> Bytes {
        self.on_chunk(chunk)
    }
    fn end(&mut self) -> Bytes {
        self.finish()
    }
    fn usage(&self) -> Option<crate::metering::Usage> {
        ChatToMessagesStream::usage(self)
    }
    fn finish_reason(&self) -> Option<&str> {
        self.stop_reason()
    }
    fn error(&self) -> Option<&Value> {
        ChatToMessagesStream::error(self)
    }
}

/// Every event is named after its data's `type`, as Anthropic's SDKs dispatch on the name.
fn assert_named_events(out: &str) -> Result<(), String> {
    for event in out.split("\n\n").filter(|e| !e.trim().is_empty()) {
        if event.starts_with(':') {
            continue;
        }
        let (name, data) = event
            .strip_prefix("event: ")
            .and_then(|e| e.split_once("\ndata: "))
            .ok_or_else(|| format!("not an Anthropic event: {event:?}"))?;
        let data: Value = serde_json::from_str(data).map_err(|e| e.to_string())?;
        if data["type"] != name {
            return Err(format!("event {name} holds type {}", data["type"]));
        }
    }
    Ok(())
}

fn run(case: &Case) -> Result<(), String> {
    match case.kind {
        Kind::Request => {
            let r = to_chat_request(&Bytes::from(case.input.clone())).map_err(|e| e.to_string())?;
            let body: Value = serde_json::from_slice(&r.chat_body).map_err(|e| e.to_string())?;
            crate::api::ChatRequest::parse(r.chat_body.clone())
                .map_err(|e| format!("the pipeline refuses the chat body: {e}"))?;
            case.check("expected.json", &golden::pretty(&body))?;
            let dropped = (!r.dropped.is_empty()).then(|| golden::pretty(&json!(r.dropped)));
            case.check_optional("dropped.json", dropped.as_deref())
        }
        Kind::Response => {
            let completion: Value =
                serde_json::from_slice(&case.input).map_err(|e| e.to_string())?;
            case.check(
                "expected.json",
                &golden::pretty(&from_chat_completion(&completion)),
            )
        }
        Kind::Stream => {
            let (out, summary) = golden::run_stream(ChatToMessagesStream::new(), &[&case.input]);
            assert_named_events(&out)?;
            case.check("expected.sse", &out)?;
            case.check("summary.json", &golden::pretty(&summary))
        }
    }
}

#[test]
fn golden_cases_convert_as_checked_in() {
    let cases = golden::cases(DIR);
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| run(c).err().map(|e| format!("{}: {e}", c.name)))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    for kind in [Kind::Request, Kind::Response, Kind::Stream] {
        let n = cases.iter().filter(|c| c.kind == kind).count();
        assert!(n >= 5, "too few {kind:?} cases: {n}");
    }
}

#[test]
fn streams_split_at_every_byte_boundary_convert_identically() {
    golden::assert_split_anywhere_converts_identically(DIR, ChatToMessagesStream::new);
}

#[test]
fn the_gateway_identity_names_the_message() {
    let input = br#"data: {"id":"chatcmpl-1","model":"gpt-4o","choices":[{"index":0,"delta":{"content":"x"}}]}

data: [DONE]

"#;
    let mut s = ChatToMessagesStream::new().with_identity("gen-9", "openai/gpt-4o");
    let out = String::from_utf8(s.on_chunk(input).to_vec()).unwrap();
    let start: Value = serde_json::from_str(
        out.split("\n\n")
            .next()
            .unwrap()
            .split_once("data: ")
            .unwrap()
            .1,
    )
    .unwrap();
    assert_eq!(start["message"]["id"], "gen-9");
    assert_eq!(start["message"]["model"], "openai/gpt-4o");
    assert!(s.finish().is_empty(), "[DONE] already ended the message");
}

#[test]
fn invalid_shapes_are_anthropic_invalid_request_errors() {
    let cases = [
        (r#"{"max_tokens":1,"messages":[]}"#, "model"),
        (r#"{"model":"","messages":[]}"#, "model"),
        (r#"{"model":"m","max_tokens":1}"#, "messages"),
        (r#"{"model":"m","messages":"not a list"}"#, "messages"),
        (
            r#"{"model":"m","messages":[{"role":"system","content":"x"}]}"#,
            "messages",
        ),
        (
            r#"{"model":"m","messages":[{"content":"no role"}]}"#,
            "messages",
        ),
        (r#"{"model":"m","messages":[{"role":"user"}]}"#, "messages"),
        (
            r#"{"model":"m","messages":[{"role":"user","content":5}]}"#,
            "messages",
        ),
        (
            r#"{"model":"m","messages":[{"role":"user","content":[{"text":"no type"}]}]}"#,
            "messages",
        ),
        (
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":7}]}]}"#,
            "messages",
        ),
        (
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64"}}]}]}"#,
            "messages",
        ),
        (
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"tool_result"}]}]}"#,
            "messages",
        ),
        (
            r#"{"model":"m","messages":[{"role":"assistant","content":[{"type":"tool_use","name":"f"}]}]}"#,
            "messages",
        ),
        (r#"{"model":"m","system":5,"messages":[]}"#, "system"),
        (
            r#"{"model":"m","system":[{"type":"text"}],"messages":[]}"#,
            "system",
        ),
        (
            r#"{"model":"m","messages":[],"max_tokens":-5}"#,
            "max_tokens",
        ),
        (
            r#"{"model":"m","messages":[],"temperature":"hot"}"#,
            "temperature",
        ),
        (
            r#"{"model":"m","messages":[],"stop_sequences":"END"}"#,
            "stop_sequences",
        ),
        (r#"{"model":"m","messages":[],"stream":"yes"}"#, "stream"),
        (
            r#"{"model":"m","messages":[],"tools":[{"description":"no name"}]}"#,
            "tools",
        ),
        (r#"{"model":"m","messages":[],"tools":[5]}"#, "tools"),
    ];
    for (body, param) in cases {
        let e = to_chat_request(&Bytes::from(body)).expect_err(body);
        assert_eq!((e.status, e.param.as_deref()), (400, Some(param)), "{body}");
        let rendered = e.to_json(crate::api::FrontDoor::Anthropic);
        assert_eq!(rendered["error"]["type"], "invalid_request_error");
    }
    for body in ["", "[]", "{", "{\"model\":\"m\"} x"] {
        assert_eq!(to_chat_request(&Bytes::from(body)).unwrap_err().status, 400);
    }
}

#[test]
fn passthrough_rewrites_only_the_model_and_gateway_fields() {
    let body = r#"{"model":"anthropic/claude-sonnet-4.5","max_tokens":5,"models":["x/y"],"provider":{"only":["anthropic"]},"session_id":"s",
        "messages":[{"role":"user","content":[{"type":"text","text":"hi \u00e9","cache_control":{"type":"ephemeral"}}]}],
        "thinking":{"type":"enabled","budget_tokens":2048},"context_management":{"edits":[{"type":"clear_tool_uses_20250919"}]},"stream":true}"#;
    let fields = TopLevelFields::parse(Bytes::from(body)).unwrap();
    let out = passthrough_body(&fields, "claude-sonnet-4-5-20250929");
    let text = std::str::from_utf8(&out).unwrap();
    assert!(
        text.contains(r#""messages":[{"role":"user","content":[{"type":"text","text":"hi \u00e9","cache_control":{"type":"ephemeral"}}]}]"#),
        "messages are copied byte for byte: {text}"
    );
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["model"], "claude-sonnet-4-5-20250929");
    assert_eq!(v["stream"], true);
    assert_eq!(
        v["context_management"]["edits"][0]["type"],
        "clear_tool_uses_20250919"
    );
    for gone in ["models", "provider", "session_id", "stream_options"] {
        assert!(v.get(gone).is_none(), "{gone} must not reach Anthropic");
    }
}

/// The tap reads the same usage from Anthropic streams as the Anthropic dialect's converter
/// (whose golden summaries are checked in), and forwards every byte unchanged.
#[test]
fn the_tap_meters_anthropic_streams_without_changing_them() {
    let cases = golden::cases("anthropic");
    let streams: Vec<_> = cases.iter().filter(|c| c.kind == Kind::Stream).collect();
    assert!(streams.len() >= 4);
    for case in streams {
        let summary: Value = serde_json::from_slice(
            &std::fs::read(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join(format!("tests/golden/anthropic/{}.summary.json", case.name)),
            )
            .unwrap(),
        )
        .unwrap();
        for cut in 0..=case.input.len() {
            let mut tap = AnthropicStreamTap::new();
            let (a, b) = case.input.split_at(cut);
            let mut forwarded = tap.on_chunk(Bytes::copy_from_slice(a)).to_vec();
            forwarded.extend_from_slice(&tap.on_chunk(Bytes::copy_from_slice(b)));
            forwarded.extend_from_slice(&tap.finish());
            assert_eq!(forwarded, case.input, "{} cut at {cut}", case.name);
            let usage = tap.usage().map(|u| {
                json!({ "prompt": u.prompt, "completion": u.completion, "cached_prompt": u.cached_prompt,
                        "reasoning": u.reasoning, "estimated": u.estimated })
            });
            let mut want = summary["usage"].clone();
            // A stream that broke off before `message_delta` (stream_error): the tap estimates
            // its output (here the same one token), the converter reports what it read.
            if !case.input.windows(13).any(|w| w == b"message_delta") {
                want["estimated"] = json!(true);
            }
            assert_eq!(json!(usage), want, "{} cut at {cut}", case.name);
            assert_eq!(
                json!(tap.finish_reason()),
                summary["finish_reason"],
                "{}",
                case.name
            );
            assert_eq!(
                tap.error().cloned().unwrap_or(Value::Null),
                summary["error"],
                "{}",
                case.name
            );
        }
    }
}

#[test]
fn the_tap_counts_deltas_and_sees_the_end() {
    let mut tap = AnthropicStreamTap::new();
    let input = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":5,\"cache_read_input_tokens\":7,\"cache_creation_input_tokens\":20,\"output_tokens\":1}}}\n\n\
        event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"a\"}}\n\n\
        event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"b\"}}\n\n\
        event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":9}}\n\n\
        event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    let out = tap.on_chunk(Bytes::from(input));
    assert_eq!(out, input.as_bytes());
    assert_eq!(tap.content_deltas(), 2);
    assert!(tap.saw_message_stop());
    assert_eq!(
        (tap.stop_reason(), tap.finish_reason()),
        (Some("tool_use"), Some("tool_calls"))
    );
    let u = tap.usage().unwrap();
    assert_eq!(
        (u.prompt, u.cached_prompt, u.cache_write, u.completion),
        (32, 7, 20, 9)
    );
}

#[test]
fn a_passthrough_message_is_stamped_and_metered() {
    let body = br#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[{"type":"text","text":"hi"}],
        "stop_reason":"max_tokens","usage":{"input_tokens":3,"cache_creation_input_tokens":2,"output_tokens":4}}"#;
    let m = passthrough_message(body).unwrap();
    let u = m.usage.unwrap();
    assert_eq!((u.prompt, u.cache_write, u.completion), (5, 2, 4));
    assert_eq!(m.finish_reason, Some("length"));
    let out: Value = serde_json::from_slice(&m.stamp(
        "gen-1",
        "anthropic/claude-x",
        "anthropic",
        Cost(2_500_000),
    ))
    .unwrap();
    assert_eq!(
        (&out["id"], &out["model"], &out["provider"]),
        (
            &json!("gen-1"),
            &json!("anthropic/claude-x"),
            &json!("anthropic")
        )
    );
    assert_eq!(out["usage"]["cost"], 0.0000025);
    assert_eq!(
        out["usage"]["input_tokens"], 3,
        "the provider's counts stay as they were"
    );
    for bad in [&b"nope"[..], b"[]", br#"{"type":"error","error":{}}"#] {
        assert_eq!(passthrough_message(bad).unwrap_err().status, 502);
    }
}

#[test]
fn error_events_name_the_anthropic_error_type() {
    let cases = [
        (crate::api::ApiError::unavailable("x"), "overloaded_error"),
        (
            crate::api::ApiError::rate_limited("x", 1),
            "rate_limit_error",
        ),
        (crate::api::ApiError::gateway_timeout("x"), "timeout_error"),
        (crate::api::ApiError::bad_gateway("x"), "api_error"),
    ];
    for (error, kind) in cases {
        let event = String::from_utf8(error_event(&error).to_vec()).unwrap();
        assert!(event.starts_with("event: error\ndata: "), "{event}");
        assert!(event.ends_with("\n\n"));
        let data: Value =
            serde_json::from_str(event.trim_end().split_once("data: ").unwrap().1).unwrap();
        assert_eq!(data["error"]["type"], kind, "{error}");
        assert_eq!(data["error"]["message"], "x");
    }
}

#[test]
fn garbage_streams_end_without_panicking() {
    let mut s = ChatToMessagesStream::new();
    let out = s.on_chunk(b"data: {nope\n\ndata: [1,2]\n\n\xff\xfe\n\ndata: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":99}]}}]}\n\n");
    let out = String::from_utf8_lossy(&out).into_owned() + &String::from_utf8_lossy(&s.finish());
    assert_named_events(&out).unwrap();
    assert!(out.contains("message_stop"), "{out}");
    let mut empty = ChatToMessagesStream::new();
    assert!(empty.finish().is_empty(), "no input, no message");
}

/// Claude Code sends each turn of a tool loop back with the signed thinking that led to it.
/// Behind the door, the Claude dialects replay it first in the turn (Claude refuses the loop
/// otherwise); the others cannot check Claude's signatures, so it is not sent, and said so.
#[test]
fn replayed_thinking_reaches_claude_and_is_reported_by_the_rest() {
    use crate::catalog::Dialect;
    let body = json!({"model": "m", "max_tokens": 4096,
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
        "messages": [
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Call the tool.", "signature": "c2ln"},
                {"type": "redacted_thinking", "data": "ZW5j"},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}]}]});
    let r = to_chat_request(&Bytes::from(body.to_string())).unwrap();
    assert!(r.dropped.is_empty(), "{:?}", r.dropped);
    let chat = crate::api::ChatRequest::parse(r.chat_body).unwrap();
    let convert = |dialect, model| {
        let up = crate::dialects::chat_request(dialect, &chat.fields, model, false, 4096).unwrap();
        (
            serde_json::from_slice::<Value>(&up.body).unwrap(),
            up.dropped,
        )
    };

    let (up, dropped) = convert(
        Dialect::Bedrock,
        "anthropic.claude-sonnet-4-5-20250929-v1:0",
    );
    assert_eq!(
        up["messages"][1]["content"],
        json!([
            {"reasoningContent": {"reasoningText": {"text": "Call the tool.", "signature": "c2ln"}}},
            {"reasoningContent": {"redactedContent": "ZW5j"}},
            {"toolUse": {"toolUseId": "toolu_1", "name": "get_weather", "input": {}}}]),
        "{up}"
    );
    assert!(dropped.is_empty(), "{dropped:?}");
    let (up, dropped) = convert(Dialect::Anthropic, "claude-sonnet-4-5");
    assert_eq!(
        up["messages"][1]["content"],
        json!([
            {"type": "thinking", "thinking": "Call the tool.", "signature": "c2ln"},
            {"type": "redacted_thinking", "data": "ZW5j"},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}]),
        "{up}"
    );
    assert!(dropped.is_empty(), "{dropped:?}");

    let reported = [
        "messages[1].reasoning_details[0] (Claude's thinking: only Claude takes it back)",
        "messages[1].reasoning_details[1] (Claude's thinking: only Claude takes it back)",
    ];
    for (dialect, model) in [
        (Dialect::OpenAi, "gpt-4o"),
        (Dialect::Gemini, "gemini-2.5-pro"),
        (Dialect::Bedrock, "amazon.nova-pro-v1:0"),
    ] {
        let (up, dropped) = convert(dialect, model);
        let sent = up.to_string();
        assert!(
            !sent.contains("c2ln") && !sent.contains("ZW5j"),
            "{model}: {sent}"
        );
        let thinking: Vec<&String> = dropped.iter().filter(|d| d.contains("thinking")).collect();
        assert_eq!(thinking, reported, "{model}");
    }
    let (up, _) = convert(Dialect::OpenAi, "gpt-4o");
    assert_eq!(up["messages"][1]["tool_calls"][0]["id"], "toolu_1", "{up}");
    assert!(up["messages"][1].get("reasoning_details").is_none(), "{up}");
}

/// Claude Code's parameters through the door: every dialect gets its output limit, and
/// OpenAI's own API (which refuses `max_tokens` for reasoning models and every field it does
/// not know) gets only what it takes, the rest reported; OpenRouter still gets all of it.
#[test]
fn claude_code_parameters_reach_each_upstream_in_a_form_it_takes() {
    use crate::catalog::Dialect;
    let body = json!({"model": "m", "max_tokens": 32000, "top_k": 5, "temperature": 1,
        "thinking": {"type": "enabled", "budget_tokens": 4096},
        "output_config": {"effort": "high"},
        "messages": [{"role": "user", "content": "Hi"}]});
    let r = to_chat_request(&Bytes::from(body.to_string())).unwrap();
    let chat = crate::api::ChatRequest::parse(r.chat_body).unwrap();
    let convert = |dialect, model| {
        let up = crate::dialects::chat_request(dialect, &chat.fields, model, false, 64_000);
        let up = up.unwrap();
        (
            serde_json::from_slice::<Value>(&up.body).unwrap(),
            up.dropped,
        )
    };

    for (dialect, model) in [
        (Dialect::OpenAi, "gpt-5"),
        (Dialect::Azure, "my-deployment"),
    ] {
        let (up, dropped) = convert(dialect, model);
        assert_eq!(up["max_completion_tokens"], 32000, "{model}: {up}");
        assert_eq!(up["reasoning_effort"], "high", "{model}: {up}");
        for refused in ["max_tokens", "reasoning", "top_k"] {
            assert!(up.get(refused).is_none(), "{model}: {refused} in {up}");
        }
        assert_eq!(dropped, ["top_k", "reasoning.max_tokens"], "{model}");
    }
    // OpenRouter (the OpenAI dialect, `author/slug` ids) takes OpenRouter's own fields.
    let (up, dropped) = convert(Dialect::OpenAi, "anthropic/claude-sonnet-4.5");
    assert_eq!(up["max_completion_tokens"], 32000, "{up}");
    assert_eq!(up["top_k"], 5);
    assert_eq!(
        up["reasoning"],
        json!({"max_tokens": 4096, "effort": "high"})
    );
    assert!(dropped.is_empty(), "{dropped:?}");

    let (up, _) = convert(Dialect::Anthropic, "claude-sonnet-4-5");
    assert_eq!(up["max_tokens"], 32000, "{up}");
    let (up, _) = convert(
        Dialect::Bedrock,
        "anthropic.claude-sonnet-4-5-20250929-v1:0",
    );
    assert_eq!(up["inferenceConfig"]["maxTokens"], 32000, "{up}");
    let (up, _) = convert(Dialect::Gemini, "gemini-2.5-pro");
    assert_eq!(up["generationConfig"]["maxOutputTokens"], 32000, "{up}");
}

/// OpenAI refuses a `user` longer than 64 characters; Claude Code's `metadata.user_id` is
/// about 150. A short id passes as it is; a long one as its SHA-256, the same every time.
#[test]
fn a_user_id_too_long_for_openai_is_sent_as_its_hash() {
    let user = |id: &str| {
        let body = json!({"model": "m", "metadata": {"user_id": id}, "messages": []});
        let r = to_chat_request(&Bytes::from(body.to_string())).unwrap();
        let chat: Value = serde_json::from_slice(&r.chat_body).unwrap();
        chat["user"].as_str().unwrap().to_string()
    };
    assert_eq!(user("user-42"), "user-42");
    let exactly = "é".repeat(64);
    assert_eq!(user(&exactly), exactly);
    let long = format!(
        "user_{}_account__session_{}",
        "a".repeat(64),
        "b".repeat(36)
    );
    let hashed = user(&long);
    assert_eq!(hashed.len(), 64);
    assert!(hashed.bytes().all(|b| b.is_ascii_hexdigit()), "{hashed}");
    assert_eq!(hashed, user(&long));
    assert_ne!(hashed, user(&format!("{long}x")));
}

/// Claude Code's Esc, or a provider reset, cuts an Anthropic stream before `message_delta`
/// brings the output count: `message_start`'s placeholder (1 token) is not the bill. The
/// reported prompt stays; the output is estimated from the content that went by.
#[test]
fn a_cut_anthropic_stream_is_billed_for_what_was_generated() {
    let start = r#"event: message_start
data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[],"usage":{"input_tokens":25,"cache_read_input_tokens":100,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

"#;
    let delta = "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"word \"}}\n\n";
    let mut tap = AnthropicStreamTap::new();
    tap.on_chunk(Bytes::from(start));
    for _ in 0..30 {
        tap.on_chunk(Bytes::from(delta));
    }
    tap.finish();
    let usage = tap.usage().unwrap();
    assert_eq!(
        (
            usage.prompt,
            usage.cached_prompt,
            usage.completion,
            usage.estimated
        ),
        (125, 100, 30, true)
    );

    // The same stream, whole: Anthropic's own count, not the estimate.
    tap.on_chunk(Bytes::from(
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":42}}\n\n",
    ));
    let usage = tap.usage().unwrap();
    assert_eq!((usage.completion, usage.estimated), (42, false));
}

/// Older Ollama and SGLang put `"finish_reason": ""` on every chunk. That is no finish: the
/// text stays one block and a tool call's later arguments reach its open block, which closes
/// once, at the real finish.
#[test]
fn empty_finish_reasons_do_not_split_blocks() {
    let stream = crate::api::test_streams::EMPTY_FINISH_REASONS;
    let mut s = ChatToMessagesStream::new();
    let out = String::from_utf8(s.on_chunk(stream).to_vec()).unwrap();
    assert_named_events(&out).unwrap();
    let events: Vec<Value> = out
        .split("\n\n")
        .filter_map(|e| e.split_once("\ndata: "))
        .map(|(_, data)| serde_json::from_str(data).unwrap())
        .collect();
    let kinds: Vec<String> = events
        .iter()
        .map(|e| match e["type"].as_str().unwrap() {
            "content_block_delta" => format!("delta {}", e["index"]),
            "content_block_start" => format!("start {}", e["index"]),
            "content_block_stop" => format!("stop {}", e["index"]),
            other => other.to_string(),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "message_start",
            "start 0",
            "delta 0",
            "stop 0",
            "start 1",
            "delta 1",
            "delta 1",
            "stop 1",
            "message_delta",
            "message_stop"
        ],
        "{out}"
    );
    let input: String = events
        .iter()
        .filter_map(|e| e["delta"]["partial_json"].as_str())
        .collect();
    assert_eq!(input, r#"{"location":"Paris"}"#);
    assert_eq!(s.stop_reason(), Some("tool_use"));
}

/// A stamped tap sends every event whole, whatever the split: the two it rewrites (here cut
/// anywhere, `\r\n` framing included) come out stamped, the rest as they came.
#[test]
fn a_stamped_tap_rewrites_whole_events_wherever_the_stream_is_cut() {
    let input = "event: message_start\r\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"claude-x\",\"usage\":{\"input_tokens\":1000000,\"output_tokens\":1}}}\r\n\r\n\
        event: ping\r\ndata: {\"type\":\"ping\"}\r\n\r\n\
        event: message_delta\r\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":1000000}}\r\n\r\n\
        event: message_stop\r\ndata: {\"type\":\"message_stop\"}";
    let stamp = StreamStamp {
        id: "gen-1".into(),
        model: "anthropic/claude-x".into(),
        provider: "anthropic".into(),
        price: crate::catalog::Price {
            prompt: 3_000_000,
            completion: 15_000_000,
            ..Default::default()
        },
        fee_percent: 0.0,
    };
    let whole = {
        let mut tap = AnthropicStreamTap::stamped(stamp.clone());
        let mut out = tap.on_chunk(Bytes::from(input)).to_vec();
        out.extend_from_slice(&tap.finish());
        String::from_utf8(out).unwrap()
    };
    let start = whole.strip_prefix("event: message_start\ndata: ").unwrap();
    let (start, rest) = start.split_once("\n\n").unwrap();
    let start: Value = serde_json::from_str(start).unwrap();
    assert_eq!(
        (&start["message"]["id"], &start["message"]["model"]),
        (&json!("gen-1"), &json!("anthropic/claude-x"))
    );
    let rest = rest
        .strip_prefix("event: ping\r\ndata: {\"type\":\"ping\"}\r\n\r\n")
        .unwrap();
    let delta = rest.strip_prefix("event: message_delta\ndata: ").unwrap();
    let (delta, rest) = delta.split_once("\n\n").unwrap();
    let delta: Value = serde_json::from_str(delta).unwrap();
    assert_eq!(
        (&delta["usage"]["cost"], &delta["provider"]),
        (&json!(18.0), &json!("anthropic"))
    );
    assert_eq!(
        rest,
        "event: message_stop\r\ndata: {\"type\":\"message_stop\"}"
    );
    for cut in 0..=input.len() {
        let mut tap = AnthropicStreamTap::stamped(stamp.clone());
        let (a, b) = input.as_bytes().split_at(cut);
        let mut out = tap.on_chunk(Bytes::copy_from_slice(a)).to_vec();
        out.extend_from_slice(&tap.on_chunk(Bytes::copy_from_slice(b)));
        out.extend_from_slice(&tap.finish());
        assert_eq!(String::from_utf8(out).unwrap(), whole, "cut at {cut}");
    }
}

/// Checks Anthropic's block order (each block started, given its deltas and stopped before
/// the next starts, indexes from 0 up) and returns each tool_use block's id, name and input.
fn tool_uses_of_valid_stream(out: &str) -> Vec<(String, String, Value)> {
    assert_named_events(out).unwrap();
    let mut open: Option<u64> = None;
    let mut next = 0;
    let mut tools: Vec<(String, String, String)> = Vec::new();
    let mut tool_block = Vec::new();
    for (_, data) in out.split("\n\n").filter_map(|e| e.split_once("\ndata: ")) {
        let e: Value = serde_json::from_str(data).unwrap();
        match e["type"].as_str().unwrap() {
            "content_block_start" => {
                assert_eq!(open, None, "a block started inside another: {out}");
                assert_eq!(e["index"], next, "{out}");
                open = Some(next);
                next += 1;
                let block = &e["content_block"];
                if block["type"] == "tool_use" {
                    tools.push((
                        block["id"].as_str().unwrap().into(),
                        block["name"].as_str().unwrap().into(),
                        String::new(),
                    ));
                    tool_block.push(e["index"].as_u64().unwrap());
                }
            }
            "content_block_delta" => {
                assert_eq!(
                    open,
                    e["index"].as_u64(),
                    "a delta outside its open block: {out}"
                );
                if let Some(json) = e["delta"]["partial_json"].as_str() {
                    let at = tool_block.iter().position(|b| Some(*b) == open).unwrap();
                    tools[at].2.push_str(json);
                }
            }
            "content_block_stop" => {
                assert_eq!(open, e["index"].as_u64(), "{out}");
                open = None;
            }
            "message_delta" | "message_stop" => assert_eq!(open, None, "{out}"),
            _ => {}
        }
    }
    tools
        .into_iter()
        .map(|(id, name, input)| {
            let input = serde_json::from_str(&input)
                .unwrap_or_else(|_| panic!("tool input {input:?} is not JSON: {out}"));
            (id, name, input)
        })
        .collect()
}

#[test]
fn interleaved_parallel_tool_calls_become_whole_blocks_in_order() {
    let stream = crate::api::test_streams::interleaved_tool_calls();
    let mut s = ChatToMessagesStream::new();
    let out = String::from_utf8([s.on_chunk(stream.as_bytes()), s.finish()].concat()).unwrap();
    let tools = tool_uses_of_valid_stream(&out);
    assert_eq!(
        tools,
        [
            ("call_a".into(), "weather".into(), json!({"city": "Paris"})),
            ("call_b".into(), "time".into(), json!({"zone": "CET"})),
            ("call_c".into(), "news".into(), json!({})),
        ],
        "{out}"
    );
    assert_eq!(s.stop_reason(), Some("tool_use"));

    // Sequential calls still stream as they come: call 0's block opens with its first delta.
    let mut s = ChatToMessagesStream::new();
    let first = String::from_utf8(
        s.on_chunk(
            crate::api::test_streams::tool_call_chunk(0, Some(("call_a", "weather")), "{\"ci")
                .as_bytes(),
        )
        .to_vec(),
    )
    .unwrap();
    assert!(
        first.contains("content_block_start") && first.contains("{\\\"ci"),
        "{first}"
    );
}
