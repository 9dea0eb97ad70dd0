//! Golden cases (`tests/golden/bedrock/`) and the behaviour they cannot show: paths, error
//! statuses, non-answers, streams split anywhere.
//!
//! Stream inputs are `<case>.upstream.events.json`, a readable list of events framed into
//! binary by the mock's encoder (an encoder apart from the decoder under test), compared with
//! `<case>.expected.sse` and `<case>.summary.json` like the other dialects' streams.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde_json::{json, Value};

use super::*;
use crate::api::{ApiError, TopLevelFields};
use crate::dialects::common::golden::{self, Case, Kind};
use crate::dialects::common::ConvertedRequest;
use crate::mock::eventstream;

const CREATED: u64 = 1_700_000_000;

impl golden::StreamUnderTest for StreamConverter {
    fn feed(&mut self, chunk: &[u8]) -> Bytes {
        self.on_chunk(chunk)
    }
    fn end(&mut self) -> Bytes {
        self.finish()
    }
    fn usage(&self) -> Option<crate::metering::Usage> {
        StreamConverter::usage(self)
    }
    fn finish_reason(&self) -> Option<&str> {
        StreamConverter::finish_reason(self)
    }
    fn error(&self) -> Option<&Value> {
        StreamConverter::error(self)
    }
}

fn convert(body: &str, model: &str) -> Result<ConvertedRequest, ApiError> {
    let fields = TopLevelFields::parse(Bytes::copy_from_slice(body.as_bytes()))?;
    convert_chat_request(&fields, model, false, 4096.into())
}

fn run(case: &Case) -> Result<(), String> {
    match case.kind {
        Kind::Request => {
            let fields = TopLevelFields::parse(Bytes::from(case.input.clone()))
                .map_err(|e| e.to_string())?;
            // Each input names the Bedrock model id it is converted for (Claude or not matters).
            let model: String = fields
                .get("model", "a string")
                .map_err(|e| e.to_string())?
                .unwrap_or_default();
            let c = convert_chat_request(&fields, &model, false, 4096.into())
                .map_err(|e| e.to_string())?;
            let body: Value = serde_json::from_slice(&c.body).map_err(|e| e.to_string())?;
            case.check("expected.json", &golden::pretty(&body))?;
            let dropped = (!c.dropped.is_empty()).then(|| golden::pretty(&json!(c.dropped)));
            case.check_optional("dropped.json", dropped.as_deref())
        }
        Kind::Response => {
            let (v, _) = chat_response_at(&case.input, 0).map_err(|e| e.to_string())?;
            case.check("expected.json", &golden::pretty(&v))
        }
        Kind::Stream => Err("bedrock streams are `.upstream.events.json` files".into()),
    }
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/bedrock")
}

/// Frames one event list (`{"event": name, "payload": {..}}` or `{"exception": name, ...}`).
fn frame_events(events: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    for e in events.as_array().into_iter().flatten() {
        let payload = e["payload"].to_string();
        match (e["event"].as_str(), e["exception"].as_str()) {
            (Some(name), _) => out.extend(eventstream::event(name, payload.as_bytes())),
            (None, Some(name)) => out.extend(eventstream::exception(
                name,
                e["payload"]["message"].as_str().unwrap_or_default(),
            )),
            _ => panic!("an event needs `event` or `exception`: {e}"),
        }
    }
    out
}

/// (name, framed bytes) of every `<case>.upstream.events.json`.
fn stream_cases() -> Vec<(String, Vec<u8>)> {
    let mut names: Vec<String> = std::fs::read_dir(golden_dir())
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
        .iter()
        .filter_map(|f| f.strip_suffix(".upstream.events.json"))
        .map(|name| {
            let path = golden_dir().join(format!("{name}.upstream.events.json"));
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let events: Value = serde_json::from_str(&text).expect("valid events JSON");
            (name.to_string(), frame_events(&events))
        })
        .collect()
}

/// The hand-framed stream of `handbuilt.eventstream.hex` (framed by a Python script).
pub(super) fn handbuilt_stream() -> Vec<u8> {
    let text = std::fs::read_to_string(golden_dir().join("handbuilt.eventstream.hex"))
        .expect("handbuilt.eventstream.hex");
    let hex: String = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .concat();
    hex::decode(hex.trim()).expect("hex")
}

/// As `golden::Case::check`, for the stream cases this module loads itself.
fn check_stream(name: &str, suffix: &str, actual: &str) -> Result<(), String> {
    let path = golden_dir().join(format!("{name}.{suffix}"));
    if std::env::var_os("SWITCHYARD_BLESS").is_some() {
        std::fs::write(&path, actual).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let expected =
        std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let same = match suffix.ends_with(".sse") {
        true => golden::sse_payloads(&expected) == golden::sse_payloads(actual),
        false => {
            serde_json::from_str::<Value>(&expected).ok()
                == serde_json::from_str::<Value>(actual).ok()
        }
    };
    match same {
        true => Ok(()),
        false => Err(format!(
            "{}: expected\n{expected}\nactual\n{actual}",
            path.display()
        )),
    }
}

#[test]
fn golden_cases_convert_as_checked_in() {
    let cases = golden::cases("bedrock");
    let mut failures: Vec<String> = cases
        .iter()
        .filter_map(|c| run(c).err().map(|e| format!("{}: {e}", c.name)))
        .collect();
    let streams = stream_cases();
    for (name, bytes) in &streams {
        let (out, summary) = golden::run_stream(StreamConverter::new(CREATED), &[bytes]);
        let checked = check_stream(name, "expected.sse", &out)
            .and_then(|_| check_stream(name, "summary.json", &golden::pretty(&summary)));
        failures.extend(checked.err().map(|e| format!("{name}: {e}")));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    for kind in [Kind::Request, Kind::Response] {
        let n = cases.iter().filter(|c| c.kind == kind).count();
        assert!(n >= 4, "too few {kind:?} cases");
    }
    assert!(streams.len() >= 4, "too few stream cases");
}

#[test]
fn streams_split_at_every_byte_boundary_convert_identically() {
    let mut streams = stream_cases();
    streams.push(("handbuilt".into(), handbuilt_stream()));
    for (name, bytes) in &streams {
        let whole = golden::run_stream(StreamConverter::new(CREATED), &[bytes]);
        for cut in 0..=bytes.len() {
            let split = golden::run_stream(
                StreamConverter::new(CREATED),
                &[&bytes[..cut], &bytes[cut..]],
            );
            assert_eq!(split, whole, "{name} cut at {cut}");
        }
        let one_by_one: Vec<&[u8]> = bytes.chunks(1).collect();
        let bytewise = golden::run_stream(StreamConverter::new(CREATED), &one_by_one);
        assert_eq!(bytewise, whole, "{name} byte by byte");
    }
}

#[test]
fn the_handbuilt_stream_converts_to_text_usage_and_stop() {
    let (out, summary) = golden::run_stream(StreamConverter::new(CREATED), &[&handbuilt_stream()]);
    let chunks = golden::sse_payloads(&out);
    assert_eq!(chunks.len(), 3, "{out}");
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(chunks[1]["choices"][0]["delta"]["content"], "Hi");
    assert_eq!(chunks[2]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[2]["choices"][0]["native_finish_reason"], "end_turn");
    assert!(!out.contains("[DONE]") && chunks.iter().all(|c| c.get("usage").is_none()));
    assert_eq!(summary["usage"]["prompt"], 3);
    assert_eq!(summary["usage"]["completion"], 1);
    assert_eq!(summary["error"], Value::Null);
}

#[test]
fn corrupt_or_cut_streams_end_in_an_error_not_a_panic() {
    let mut bytes = handbuilt_stream();
    let good = golden::run_stream(StreamConverter::new(CREATED), &[&bytes[..118]]);
    assert_eq!(good.1["error"], Value::Null, "one whole message");
    // A flipped payload byte of the second message: the first converts, then the error.
    bytes[200] ^= 0x20;
    let (out, summary) = golden::run_stream(StreamConverter::new(CREATED), &[&bytes]);
    assert_eq!(golden::sse_payloads(&out).len(), 1, "{out}");
    assert_eq!(summary["error"]["type"], "eventStreamError");
    assert!(summary["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("message CRC")));
    // A stream cut inside a message.
    let bytes = handbuilt_stream();
    let (_, summary) = golden::run_stream(StreamConverter::new(CREATED), &[&bytes[..140]]);
    assert!(summary["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("ended inside a message")));
}

#[test]
fn the_model_goes_in_the_path_encoded_as_aws_sdks_do() {
    assert_eq!(
        chat_path("anthropic.claude-3-haiku-20240307-v1:0", false),
        "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
    );
    assert_eq!(
        chat_path("amazon.nova-pro-v1:0", true),
        "/model/amazon.nova-pro-v1%3A0/converse-stream"
    );
    assert_eq!(
        chat_path(
            "arn:aws:bedrock:us-east-1:123:inference-profile/us.x",
            false
        ),
        "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123%3Ainference-profile%2Fus.x/converse"
    );
    assert_eq!(chat_path("a b+c~_", false), "/model/a%20b%2Bc~_/converse");
    assert!(is_event_stream("application/vnd.amazon.eventstream"));
    assert!(is_event_stream(
        "Application/Vnd.Amazon.Eventstream; charset=x"
    ));
    assert!(!is_event_stream("application/json"));
    assert!(!is_event_stream("text/event-stream"));
}

#[test]
fn error_statuses_follow_the_error_type() {
    let body = br#"{"message":"m"}"#;
    let cases = [
        (
            429,
            "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/",
            429,
        ),
        (503, "ServiceUnavailableException", 503),
        (429, "ModelNotReadyException", 503),
        (400, "ValidationException", 400),
        (413, "ValidationException", 413),
        (403, "AccessDeniedException", 401),
        (403, "UnrecognizedClientException", 401),
        (403, "InvalidSignatureException", 401),
        (404, "ResourceNotFoundException", 404),
        (408, "ModelTimeoutException", 504),
        (424, "ModelErrorException", 502),
        (400, "ServiceQuotaExceededException", 429),
        (500, "InternalServerException", 500),
        (418, "SomethingNewException", 418),
    ];
    for (status, kind, want) in cases {
        assert_eq!(
            error_status_typed(status, Some(kind), body),
            (want, "m".into()),
            "{kind}"
        );
    }
    // The type in the body, as some AWS errors carry it.
    let typed = br#"{"__type":"com.amazon.coral.service#UnrecognizedClientException","Message":"bad token"}"#;
    assert_eq!(error_status(403, typed), (401, "bad token".into()));
    // Without a type, the status decides.
    assert_eq!(error_status(429, body).0, 429);
    assert_eq!(error_status(403, body).0, 401);
    assert_eq!(error_status(408, body).0, 504);
    assert_eq!(error_status(424, body).0, 502);
    assert_eq!(error_status(503, b"").1, "the provider answered HTTP 503");
    assert_eq!(error_status(502, b"<html>"), (502, "<html>".into()));
}

#[test]
fn stream_exceptions_carry_their_status() {
    for (kind, code) in [
        ("throttlingException", 429),
        ("serviceUnavailableException", 503),
        ("validationException", 400),
        ("modelStreamErrorException", 502),
        ("internalServerException", 500),
        ("newException", 502),
    ] {
        let bytes = eventstream::exception(kind, "went wrong");
        let (_, summary) = golden::run_stream(StreamConverter::new(CREATED), &[&bytes]);
        assert_eq!(
            summary["error"],
            json!({ "type": kind, "message": "went wrong", "code": code })
        );
    }
    let unmodeled = eventstream::message(
        &[
            (":message-type", "error"),
            (":error-code", "InternalFailure"),
            (":error-message", "boom"),
        ],
        b"",
    );
    let (_, summary) = golden::run_stream(StreamConverter::new(CREATED), &[&unmodeled]);
    assert_eq!(summary["error"]["message"], "boom");
}

#[test]
fn non_answers_are_bad_gateway_and_missing_usage_is_estimated() {
    for body in [
        &b"<html>"[..],
        br#"{"message":"The security token included in the request is invalid."}"#,
        b"[]",
        br#"{"output":{"message":{"content":"no"}}}"#,
    ] {
        let e = chat_response(body).unwrap_err();
        assert_eq!(e.status, 502, "{}", String::from_utf8_lossy(body));
    }
    let e = chat_response(br#"{"message":"Too many requests"}"#).unwrap_err();
    assert!(e.message.contains("Too many requests"), "{}", e.message);
    let (v, usage) =
        chat_response(br#"{"output":{"message":{"content":[{"text":"hi"}]}}}"#).unwrap();
    assert!(usage.estimated && v.get("usage").is_none());
    assert_eq!(v["choices"][0]["message"]["content"], "hi");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
}

#[test]
fn invalid_shapes_are_bad_params() {
    let cases = [
        r#"{"model":"m","messages":"hi"}"#,
        r#"{"model":"m","messages":[null]}"#,
        r#"{"model":"m","messages":[{"role":"user","content":{"text":"x"}}]}"#,
        r#"{"model":"m","messages":[{"role":"tool","content":"x"}]}"#,
        r#"{"model":"m","messages":[{"role":"robot","content":"x"}]}"#,
        r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png"}}]}]}"#,
        r#"{"model":"m","messages":[]}"#,
        r#"{"model":"m","messages":[{"role":"system","content":"only a system prompt"}]}"#,
        r#"{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":"hot"}"#,
    ];
    for body in cases {
        let e = convert(body, "amazon.nova-pro-v1:0").expect_err(body);
        assert_eq!(e.status, 400, "{body}");
        assert!(e.param.is_some(), "{body}");
    }
}

#[test]
fn garbage_events_are_skipped_and_identity_is_stamped() {
    let mut bytes = eventstream::event("contentBlockDelta", b"{not json");
    bytes.extend(eventstream::event("messageStop", b"7"));
    bytes.extend(eventstream::message(&[(":message-type", "ping")], b"{}"));
    bytes.extend(eventstream::message(&[], b"{}"));
    bytes.extend(eventstream::event(
        "contentBlockDelta",
        br#"{"contentBlockIndex":5,"delta":{"toolUse":{"input":"{}"}}}"#,
    ));
    let (out, summary) = golden::run_stream(StreamConverter::new(CREATED), &[&bytes]);
    // A tool delta without its block start names no call: only the role chunk is written.
    assert_eq!(golden::sse_payloads(&out).len(), 1, "{out}");
    assert_eq!(
        summary,
        json!({ "usage": null, "finish_reason": null, "error": null })
    );
    let text = eventstream::event("contentBlockDelta", br#"{"delta":{"text":"x"}}"#);
    let mut conv = StreamConverter::new(CREATED).with_identity("req-1", "amazon.nova-pro-v1:0");
    let chunks = golden::sse_payloads(&String::from_utf8_lossy(&conv.on_chunk(&text)));
    assert_eq!(chunks[1]["id"], "req-1");
    assert_eq!(chunks[1]["model"], "amazon.nova-pro-v1:0");
    assert_eq!(chunks[1]["created"], CREATED);
}

/// Tokens Bedrock wrote to the prompt cache (`cacheWriteInputTokens`) are a part of the
/// prompt counted apart, for the cache-write price, in a Converse answer and in a
/// ConverseStream's `metadata` alike.
#[test]
fn cache_writes_are_read_from_converse_and_its_stream() {
    let usage = r#"{"inputTokens": 20, "outputTokens": 5, "totalTokens": 1325,
        "cacheReadInputTokens": 300, "cacheWriteInputTokens": 1000}"#;
    let body = format!(
        r#"{{"output":{{"message":{{"role":"assistant","content":[{{"text":"hi"}}]}}}},
            "stopReason":"end_turn","usage":{usage}}}"#
    );
    let (v, u) = chat_response(body.as_bytes()).unwrap();
    assert_eq!(
        (u.prompt, u.cached_prompt, u.cache_write, u.completion),
        (1320, 300, 1000, 5)
    );
    assert_eq!(
        v["usage"]["prompt_tokens_details"]["cache_write_tokens"],
        1000
    );

    let mut stream = eventstream::event("messageStart", br#"{"role":"assistant"}"#);
    stream.extend(eventstream::event(
        "messageStop",
        br#"{"stopReason":"end_turn"}"#,
    ));
    stream.extend(eventstream::event(
        "metadata",
        format!(r#"{{"usage":{usage}}}"#).as_bytes(),
    ));
    let mut conv = StreamConverter::new(CREATED);
    conv.on_chunk(&stream);
    conv.finish();
    let u = conv.usage().unwrap();
    assert_eq!(
        (u.prompt, u.cached_prompt, u.cache_write, u.completion),
        (1320, 300, 1000, 5)
    );

    // No cache activity reported: nothing written.
    let (_, u) = chat_response(
        br#"{"output":{"message":{"content":[{"text":"hi"}]}},"usage":{"inputTokens":7,"outputTokens":1}}"#,
    )
    .unwrap();
    assert_eq!((u.prompt, u.cache_write), (7, 0));
}
