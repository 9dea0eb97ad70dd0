//! Golden cases (`tests/golden/anthropic/`) and the behaviour they cannot show: refusals,
//! error statuses, streams split anywhere.

use bytes::Bytes;
use serde_json::{json, Value};

use super::*;
use crate::api::TopLevelFields;
use crate::dialects::common::golden::{self, Case, Kind};

const MODEL: &str = "claude-sonnet-4-5";
const DEFAULT_MAX_TOKENS: u64 = 4096;
const CREATED: u64 = 1_700_000_000;

fn convert(body: &str) -> Result<crate::dialects::common::ConvertedRequest, crate::api::ApiError> {
    let fields = TopLevelFields::parse(Bytes::copy_from_slice(body.as_bytes()))?;
    convert_chat_request(&fields, MODEL, false, DEFAULT_MAX_TOKENS.into())
}

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

fn stream(chunks: &[&[u8]]) -> (String, Value) {
    golden::run_stream(StreamConverter::new(CREATED), chunks)
}

fn run(case: &Case) -> Result<(), String> {
    match case.kind {
        Kind::Request => {
            let fields = TopLevelFields::parse(Bytes::from(case.input.clone()))
                .map_err(|e| e.to_string())?;
            let stream = fields
                .get::<bool>("stream", "a boolean")
                .ok()
                .flatten()
                .unwrap_or(false);
            let c = convert_chat_request(&fields, MODEL, stream, DEFAULT_MAX_TOKENS.into())
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
        Kind::Stream => {
            let (out, summary) = stream(&[&case.input]);
            case.check("expected.sse", &out)?;
            case.check("summary.json", &golden::pretty(&summary))
        }
    }
}

#[test]
fn golden_cases_convert_as_checked_in() {
    let cases = golden::cases("anthropic");
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| run(c).err().map(|e| format!("{}: {e}", c.name)))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    for kind in [Kind::Request, Kind::Response, Kind::Stream] {
        assert!(
            cases.iter().filter(|c| c.kind == kind).count() >= 4,
            "too few {kind:?} cases"
        );
    }
}

#[test]
fn streams_split_at_every_byte_boundary_convert_identically() {
    golden::assert_split_anywhere_converts_identically("anthropic", || {
        StreamConverter::new(CREATED)
    });
}

#[test]
fn invalid_shapes_are_bad_params() {
    let cases = [
        r#"{"model":"m","messages":{"role":"user"}}"#,
        r#"{"model":"m","messages":[1]}"#,
        r#"{"model":"m","messages":[{"content":"no role"}]}"#,
        r#"{"model":"m","messages":[{"role":"wizard","content":"x"}]}"#,
        r#"{"model":"m","messages":[{"role":"user","content":5}]}"#,
        r#"{"model":"m","messages":[{"role":"user","content":[{"text":"no type"}]}]}"#,
        r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x"}}]}]}"#,
        r#"{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"c","function":{"name":"f","arguments":"[1"}}]}]}"#,
        r#"{"model":"m","messages":[{"role":"tool","content":"x"}]}"#,
        r#"{"model":"m","messages":[{"role":"system","content":"only a system prompt"}]}"#,
        r#"{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{}}]}"#,
        r#"{"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":"extreme"}"#,
        r#"{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":"hot"}"#,
        r#"{"model":"m","messages":[{"role":"user","content":"x"}],"stop":[1]}"#,
    ];
    for body in cases {
        let e = convert(body).expect_err(body);
        assert_eq!(e.status, 400, "{body}");
        assert!(e.param.is_some(), "{body}");
    }
}

#[test]
fn unknown_fields_and_parts_are_dropped_and_reported() {
    let c = convert(
        r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"hi"},{"type":"video_url","video_url":{}}]}],
            "logprobs":true,"n":1,"seed":null,"frobnicate":{"x":1},"provider":{"sort":"price"}}"#,
    )
    .unwrap();
    assert_eq!(
        c.dropped,
        [
            "logprobs",
            "frobnicate",
            "messages[0].content[1] (video_url)"
        ]
    );
}

#[test]
fn effort_takes_its_share_of_the_output_limit() {
    let body = |extra: &str| -> Value {
        let c = convert(&format!(
            r#"{{"model":"m","messages":[{{"role":"user","content":"x"}}]{extra}}}"#
        ))
        .unwrap();
        serde_json::from_slice(&c.body).unwrap()
    };
    let v = body(r#","reasoning_effort":"low""#);
    assert_eq!(
        (
            v["thinking"]["budget_tokens"].as_u64(),
            v["max_tokens"].as_u64()
        ),
        (Some(1024), Some(4096))
    );
    let v = body(r#","reasoning":{"effort":"medium"},"max_tokens":20000"#);
    assert_eq!(v["thinking"]["budget_tokens"], 10000);
    let v = body(r#","reasoning":{"enabled":false},"reasoning_effort":"high""#);
    assert!(v.get("thinking").is_none(), "enabled: false wins");
    let c = convert(
        r#"{"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":"high","max_tokens":900}"#,
    );
    let c = c.unwrap();
    let v: Value = serde_json::from_slice(&c.body).unwrap();
    assert!(
        v.get("thinking").is_none(),
        "no room to think under 900 tokens"
    );
    assert_eq!(v["max_tokens"], 900);
    assert!(c.dropped.iter().any(|d| d.starts_with("reasoning")));
}

#[test]
fn error_statuses_follow_the_error_type() {
    let body = |kind: &str| {
        format!(r#"{{"type":"error","error":{{"type":"{kind}","message":"m-{kind}"}}}}"#)
    };
    let cases = [
        (529, "overloaded_error", 503),
        (429, "rate_limit_error", 429),
        (400, "invalid_request_error", 400),
        (413, "invalid_request_error", 413),
        (401, "authentication_error", 401),
        (402, "billing_error", 402),
        (403, "permission_error", 403),
        (404, "not_found_error", 404),
        (500, "api_error", 500),
        (504, "timeout_error", 504),
        (418, "teapot_error", 418),
    ];
    for (status, kind, want) in cases {
        assert_eq!(
            error_status(status, body(kind).as_bytes()),
            (want, format!("m-{kind}")),
            "{kind}"
        );
    }
    assert_eq!(
        error_status(529, b"<html>Overloaded</html>"),
        (503, "<html>Overloaded</html>".into())
    );
    assert_eq!(
        error_status(502, b""),
        (502, "the provider answered HTTP 502".into())
    );
}

#[test]
fn non_message_answers_are_bad_gateway() {
    for body in [
        &b"not json"[..],
        br#"{"type":"error","error":{"type":"api_error","message":"x"}}"#,
        b"[1]",
        b"{}",
    ] {
        assert_eq!(
            chat_response(body).unwrap_err().status,
            502,
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    let (v, usage) = chat_response(
        br#"{"id":"m","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn"}"#,
    )
    .unwrap();
    assert!(
        usage.estimated && v.get("usage").is_none(),
        "no usage reported: the proxy estimates"
    );
    assert!(v["created"].as_u64().is_some_and(|t| t > CREATED));
}

#[test]
fn an_event_that_never_ends_is_bounded() {
    let mut conv = StreamConverter::new(CREATED);
    let mut chunk = b"event: content_block_delta\ndata: ".to_vec();
    chunk.resize(crate::dialects::common::MAX_EVENT_BYTES + 10, b'x');
    assert!(conv.on_chunk(&chunk).is_empty());
    assert_eq!(
        conv.error().and_then(|e| e["type"].as_str()),
        Some("api_error")
    );
    assert!(conv.finish().is_empty());
}

#[test]
fn garbage_events_are_skipped_without_panicking() {
    let input = b"event: message_start\ndata: {not json\n\ndata: []\n\ndata: {\"type\":\"content_block_delta\",\"index\":9,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}\n\n: comment\n\n\xff\xfe\n\n";
    let (out, summary) = stream(&[input]);
    assert!(out.is_empty(), "{out}");
    assert_eq!(
        summary,
        json!({ "usage": null, "finish_reason": null, "error": null })
    );
}
