//! Golden cases (`tests/golden/front/responses/`: Responses request -> chat body, chat
//! completion -> response, chat stream -> Responses events) and the behaviour files cannot show.

use bytes::Bytes;
use serde_json::{json, Value};

use super::*;
use crate::dialects::common::golden::{self, Case, Kind};

const DIR: &str = "front/responses";

impl golden::StreamUnderTest for ChatToResponsesStream {
    fn feed(&mut self, chunk: &[u8]) -> Bytes {
        self.on_chunk(chunk)
    }
    fn end(&mut self) -> Bytes {
        self.finish()
    }
    fn usage(&self) -> Option<crate::metering::Usage> {
        ChatToResponsesStream::usage(self)
    }
    fn finish_reason(&self) -> Option<&str> {
        ChatToResponsesStream::finish_reason(self)
    }
    fn error(&self) -> Option<&Value> {
        ChatToResponsesStream::error(self)
    }
}

/// The events' data, checked for what the SDK relies on: each event named after its `type`,
/// sequence numbers counting up from 0, and item ids that never change.
fn checked_events(out: &str) -> Result<Vec<Value>, String> {
    let mut events = Vec::new();
    let mut item_ids: Vec<(u64, String)> = Vec::new();
    for event in out.split("\n\n").filter(|e| !e.trim().is_empty()) {
        if event.starts_with(':') {
            continue;
        }
        let (name, data) = event
            .strip_prefix("event: ")
            .and_then(|e| e.split_once("\ndata: "))
            .ok_or_else(|| format!("not a Responses event: {event:?}"))?;
        let data: Value = serde_json::from_str(data).map_err(|e| e.to_string())?;
        if data["type"] != name {
            return Err(format!("event {name} holds type {}", data["type"]));
        }
        if data["sequence_number"] != events.len() {
            return Err(format!(
                "{name} has sequence_number {}",
                data["sequence_number"]
            ));
        }
        if let (Some(at), Some(id)) = (data["output_index"].as_u64(), data["item"]["id"].as_str()) {
            match item_ids.iter().find(|(i, _)| *i == at) {
                Some((_, known)) if known != id => {
                    return Err(format!("item {at} changed id to {id}"))
                }
                Some(_) => {}
                None => item_ids.push((at, id.to_string())),
            }
        }
        events.push(data);
    }
    if let Some(last) = events.last() {
        let output = last["response"]["output"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for (at, id) in &item_ids {
            if output.get(*at as usize).and_then(|i| i["id"].as_str()) != Some(id.as_str()) {
                return Err(format!("the final response lost item {at} ({id})"));
            }
        }
    }
    Ok(events)
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
            let (out, summary) = golden::run_stream(ChatToResponsesStream::new(), &[&case.input]);
            checked_events(&out)?;
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
    golden::assert_split_anywhere_converts_identically(DIR, ChatToResponsesStream::new);
}

/// A streamed response ends as the same object a whole one is (but for `created_at`, which a
/// whole completion states and a stream takes from its first chunk).
#[test]
fn a_stream_completes_with_the_whole_response() {
    let stream = br#"data: {"id":"gen-1","created":5,"model":"m","choices":[{"index":0,"delta":{"reasoning_content":"hm"}}]}

data: {"id":"gen-1","created":5,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"}}]}

data: {"id":"gen-1","created":5,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}

data: {"id":"gen-1","model":"m","provider":"p","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"cost":0.5}}

data: [DONE]

"#;
    let completion = json!({
        "id": "gen-1", "created": 5, "model": "m", "provider": "p",
        "choices": [{ "index": 0, "finish_reason": "tool_calls", "message": { "role": "assistant", "content": "Hi",
            "reasoning_content": "hm",
            "tool_calls": [{ "id": "call_1", "type": "function", "function": { "name": "f", "arguments": "{}" } }] } }],
        "usage": { "prompt_tokens": 1, "completion_tokens": 2, "cost": 0.5 },
    });
    let mut s = ChatToResponsesStream::new();
    let out = String::from_utf8(s.on_chunk(stream).to_vec()).unwrap();
    let events = checked_events(&out).unwrap();
    let last = events.last().unwrap();
    assert_eq!(last["type"], "response.completed");
    assert_eq!(last["response"], from_chat_completion(&completion));
}

#[test]
fn the_gateway_identity_names_the_response() {
    let mut s = ChatToResponsesStream::new().with_identity("gen-9", "openai/gpt-4o");
    let out = s.on_chunk(b"data: {\"id\":\"chatcmpl-1\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\n\ndata: [DONE]\n\n");
    let events = checked_events(std::str::from_utf8(&out).unwrap()).unwrap();
    for e in events.iter().filter(|e| e.get("response").is_some()) {
        assert_eq!(
            (&e["response"]["id"], &e["response"]["model"]),
            (&json!("gen-9"), &json!("openai/gpt-4o"))
        );
    }
    assert_eq!(events[2]["item"]["id"], "msg_gen-9_0");
}

#[test]
fn stored_state_is_refused_with_a_clear_400() {
    let cases = [
        (r#"{"model":"m","input":"hi","store":true}"#, "store"),
        (
            r#"{"model":"m","input":"hi","previous_response_id":"resp_1"}"#,
            "previous_response_id",
        ),
        (
            r#"{"model":"m","input":"hi","conversation":"conv_1"}"#,
            "conversation",
        ),
        (
            r#"{"model":"m","input":"hi","background":true}"#,
            "background",
        ),
    ];
    for (body, param) in cases {
        let e = to_chat_request(&Bytes::from(body)).expect_err(body);
        assert_eq!((e.status, e.param.as_deref()), (400, Some(param)), "{body}");
        assert!(e.message.contains("stateless"), "{}", e.message);
    }
    for body in [
        r#"{"model":"m","input":"hi","store":false}"#,
        r#"{"model":"m","input":"hi","previous_response_id":null}"#,
    ] {
        assert!(to_chat_request(&Bytes::from(body)).is_ok(), "{body}");
    }
}

#[test]
fn invalid_shapes_are_bad_params() {
    let cases = [
        (r#"{"input":"hi"}"#, "model"),
        (r#"{"model":" ","input":"hi"}"#, "model"),
        (r#"{"model":"m"}"#, "input"),
        (r#"{"model":"m","input":5}"#, "input"),
        (r#"{"model":"m","input":[5]}"#, "input"),
        (r#"{"model":"m","input":[{"content":"no role"}]}"#, "input"),
        (
            r#"{"model":"m","input":[{"role":"tool","content":"x"}]}"#,
            "input",
        ),
        (
            r#"{"model":"m","input":[{"role":"user","content":7}]}"#,
            "input",
        ),
        (
            r#"{"model":"m","input":[{"role":"user","content":[{"text":"no type"}]}]}"#,
            "input",
        ),
        (
            r#"{"model":"m","input":[{"role":"user","content":[{"type":"input_text"}]}]}"#,
            "input",
        ),
        (
            r#"{"model":"m","input":[{"type":"function_call","name":"f"}]}"#,
            "input",
        ),
        (
            r#"{"model":"m","input":[{"type":"function_call_output","output":"x"}]}"#,
            "input",
        ),
        (
            r#"{"model":"m","input":[{"type":"item_reference","id":"msg_1"}]}"#,
            "input",
        ),
        (
            r#"{"model":"m","input":"x","instructions":5}"#,
            "instructions",
        ),
        (
            r#"{"model":"m","input":"x","tools":[{"type":"function"}]}"#,
            "tools",
        ),
        (
            r#"{"model":"m","input":"x","tools":[{"name":"no type"}]}"#,
            "tools",
        ),
        (
            r#"{"model":"m","input":"x","text":{"format":{"type":"json_schema","name":"x"}}}"#,
            "text",
        ),
        (
            r#"{"model":"m","input":"x","max_output_tokens":-1}"#,
            "max_output_tokens",
        ),
        (r#"{"model":"m","input":"x","stream":"yes"}"#, "stream"),
    ];
    for (body, param) in cases {
        let e = to_chat_request(&Bytes::from(body)).expect_err(body);
        assert_eq!((e.status, e.param.as_deref()), (400, Some(param)), "{body}");
    }
}

#[test]
fn garbage_streams_end_without_panicking() {
    let mut s = ChatToResponsesStream::new();
    let mut out = s
        .on_chunk(b"data: {nope\n\ndata: [1]\n\n\xff\n\ndata: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":3,\"function\":{\"arguments\":\"{\"}}]}}]}\n\n")
        .to_vec();
    out.extend_from_slice(&s.finish());
    let events = checked_events(std::str::from_utf8(&out).unwrap()).unwrap();
    assert_eq!(events.last().unwrap()["type"], "response.completed");
    assert!(
        ChatToResponsesStream::new().finish().is_empty(),
        "no input, no response"
    );
}

/// Codex CLI hands back a screenshot inside a tool output. OpenAI accepts images only from
/// users, and tool answers must follow the assistant's calls directly: the text stays in the
/// tool message, the image follows the run of tool answers as a user message.
#[test]
fn images_in_tool_outputs_move_to_a_user_message_after_the_tool_answers() {
    let png = "data:image/png;base64,iVBORw0KGgo=";
    let body = json!({"model": "openai/gpt-5", "input": [
        {"role": "user", "content": "Look at the page."},
        {"type": "function_call", "call_id": "c1", "name": "screenshot", "arguments": "{}"},
        {"type": "function_call", "call_id": "c2", "name": "title", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": [
            {"type": "input_text", "text": "Here it is."},
            {"type": "input_image", "image_url": png}]},
        {"type": "function_call_output", "call_id": "c2", "output": [
            {"type": "input_image", "image_url": png, "detail": "low"}]},
        {"role": "user", "content": "What do you see?"}]});
    let r = to_chat_request(&Bytes::from(body.to_string())).unwrap();
    let chat: Value = serde_json::from_slice(&r.chat_body).unwrap();
    let image = |detail: Option<&str>| {
        let mut url = json!({"url": png});
        if let Some(d) = detail {
            url["detail"] = json!(d);
        }
        json!({"type": "image_url", "image_url": url})
    };
    assert_eq!(
        chat["messages"],
        json!([
            {"role": "user", "content": "Look at the page."},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "screenshot", "arguments": "{}"}},
                {"id": "c2", "type": "function", "function": {"name": "title", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "Here it is."}]},
            {"role": "tool", "tool_call_id": "c2", "content": ""},
            {"role": "user", "content": [image(None), image(Some("low"))]},
            {"role": "user", "content": "What do you see?"}])
    );
    assert!(r.dropped.is_empty(), "{:?}", r.dropped);

    // The last item a tool output: its image still follows it.
    let body = json!({"model": "m", "input": [
        {"type": "function_call", "call_id": "c1", "name": "screenshot", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": [
            {"type": "input_image", "image_url": png}]}]});
    let r = to_chat_request(&Bytes::from(body.to_string())).unwrap();
    let chat: Value = serde_json::from_slice(&r.chat_body).unwrap();
    let roles: Vec<&str> = chat["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["assistant", "tool", "user"]);
    assert_eq!(chat["messages"][2]["content"], json!([image(None)]));
}

/// Older Ollama and SGLang put `"finish_reason": ""` on every chunk. That is no finish: the
/// message stays one item, and a tool call's later arguments reach its open item, which is
/// done once, with all of them.
#[test]
fn empty_finish_reasons_do_not_split_items() {
    let stream = crate::api::test_streams::EMPTY_FINISH_REASONS;
    let mut s = ChatToResponsesStream::new();
    let out = String::from_utf8(s.on_chunk(stream).to_vec()).unwrap();
    let events = checked_events(&out).unwrap();
    let done: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "response.output_item.done")
        .collect();
    assert_eq!(done.len(), 2, "{out}");
    assert_eq!(done[0]["item"]["content"][0]["text"], "Let me check.");
    assert_eq!(done[1]["item"]["type"], "function_call");
    assert_eq!(done[1]["item"]["arguments"], r#"{"location":"Paris"}"#);
    // Nothing reaches an item after it is done.
    let last_done = events
        .iter()
        .rposition(|e| e["type"] == "response.output_item.done")
        .unwrap();
    assert!(
        events[last_done + 1..]
            .iter()
            .all(|e| e["type"] == "response.completed"),
        "{out}"
    );
    let last = events.last().unwrap();
    assert_eq!(last["response"]["output"].as_array().unwrap().len(), 2);
    assert_eq!(
        last["response"]["output"][1]["arguments"],
        r#"{"location":"Paris"}"#
    );
}

/// OpenAI streams a refusal as `delta.refusal`. It is the message's `refusal` part, as in a
/// whole answer, and never output text: the SDKs parse output text as the structured output
/// the request asked for (`responses.stream(text_format=...)` raised on the refusal's words).
#[test]
fn a_streamed_refusal_is_a_refusal_part_not_output_text() {
    let stream = br#"data: {"id":"gen-1","created":5,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","refusal":""}}]}

data: {"id":"gen-1","created":5,"model":"m","choices":[{"index":0,"delta":{"refusal":"I can't "}}]}

data: {"id":"gen-1","created":5,"model":"m","choices":[{"index":0,"delta":{"refusal":"help with that."},"finish_reason":"stop"}]}

data: {"id":"gen-1","model":"m","provider":"p","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"cost":0.5}}

data: [DONE]

"#;
    let completion = json!({
        "id": "gen-1", "created": 5, "model": "m", "provider": "p",
        "choices": [{ "index": 0, "finish_reason": "stop",
            "message": { "role": "assistant", "content": null, "refusal": "I can't help with that." } }],
        "usage": { "prompt_tokens": 1, "completion_tokens": 2, "cost": 0.5 },
    });
    let mut s = ChatToResponsesStream::new();
    let out = String::from_utf8(s.on_chunk(stream).to_vec()).unwrap();
    let events = checked_events(&out).unwrap();
    let types: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert!(
        !types.iter().any(|t| t.starts_with("response.output_text")),
        "{types:?}"
    );
    let deltas: String = events
        .iter()
        .filter(|e| e["type"] == "response.refusal.delta")
        .filter_map(|e| e["delta"].as_str())
        .collect();
    assert_eq!(deltas, "I can't help with that.");
    let added = events
        .iter()
        .find(|e| e["type"] == "response.content_part.added")
        .unwrap();
    assert_eq!(added["part"], json!({ "type": "refusal", "refusal": "" }));
    let done = events
        .iter()
        .find(|e| e["type"] == "response.refusal.done")
        .unwrap();
    assert_eq!(done["refusal"], "I can't help with that.");
    let last = events.last().unwrap();
    assert_eq!(last["type"], "response.completed");
    assert_eq!(last["response"], from_chat_completion(&completion));
}

/// A host that interleaves parallel tool calls (deltas for call 0, then 1, then 0 again):
/// each call is still one item, added, given its arguments and done before the next is
/// added, and its `done` events hold its whole arguments (clients act on them). Before, late
/// deltas went to an item already done.
#[test]
fn interleaved_parallel_tool_calls_become_whole_items_in_order() {
    let stream = crate::api::test_streams::interleaved_tool_calls();
    let mut s = ChatToResponsesStream::new();
    let out = String::from_utf8([s.on_chunk(stream.as_bytes()), s.finish()].concat()).unwrap();
    let events = checked_events(&out).unwrap();
    // One item in progress at a time; every delta goes to the item in progress.
    let mut open: Option<u64> = None;
    let mut calls = Vec::new();
    for e in &events {
        let at = e["output_index"].as_u64();
        match e["type"].as_str().unwrap() {
            "response.output_item.added" => {
                assert_eq!(open, None, "{e} added while {open:?} is open\n{out}");
                open = at;
            }
            "response.output_item.done" => {
                assert_eq!(open, at, "{e}");
                open = None;
                if e["item"]["type"] == "function_call" {
                    let args: Value =
                        serde_json::from_str(e["item"]["arguments"].as_str().unwrap()).unwrap();
                    calls.push((
                        e["item"]["call_id"].clone(),
                        e["item"]["name"].clone(),
                        args,
                    ));
                }
            }
            t if t.ends_with(".delta") => assert_eq!(open, at, "{e} outside its open item"),
            _ => {}
        }
    }
    assert_eq!(
        calls,
        [
            (json!("call_a"), json!("weather"), json!({"city": "Paris"})),
            (json!("call_b"), json!("time"), json!({"zone": "CET"})),
            (json!("call_c"), json!("news"), json!({})),
        ],
        "{out}"
    );

    // Sequential calls still stream as they come: call 0's item opens with its first delta.
    let mut s = ChatToResponsesStream::new();
    let first = s.on_chunk(
        crate::api::test_streams::tool_call_chunk(0, Some(("call_a", "weather")), "{\"ci")
            .as_bytes(),
    );
    let first = String::from_utf8(first.to_vec()).unwrap();
    assert!(
        first.contains("response.output_item.added") && first.contains("{\\\"ci"),
        "{first}"
    );
}
