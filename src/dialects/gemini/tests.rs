//! Golden cases (`tests/golden/gemini/`) and the behaviour they cannot show: paths, error
//! statuses, streams split anywhere.

use bytes::Bytes;
use serde_json::{json, Value};

use super::*;
use crate::api::TopLevelFields;
use crate::dialects::common::golden::{self, Case, Kind};

const MODEL: &str = "gemini-2.5-flash";
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

fn convert(body: &str) -> Result<crate::dialects::common::ConvertedRequest, crate::api::ApiError> {
    let fields = TopLevelFields::parse(Bytes::copy_from_slice(body.as_bytes()))?;
    convert_chat_request(&fields, MODEL, false, 4096.into())
}

fn run(case: &Case) -> Result<(), String> {
    match case.kind {
        Kind::Request => {
            let fields = TopLevelFields::parse(Bytes::from(case.input.clone()))
                .map_err(|e| e.to_string())?;
            let c = convert_chat_request(&fields, MODEL, false, 4096.into())
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
            let (out, summary) = golden::run_stream(StreamConverter::new(CREATED), &[&case.input]);
            case.check("expected.sse", &out)?;
            case.check("summary.json", &golden::pretty(&summary))
        }
    }
}

#[test]
fn golden_cases_convert_as_checked_in() {
    let cases = golden::cases("gemini");
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
    golden::assert_split_anywhere_converts_identically("gemini", || StreamConverter::new(CREATED));
}

#[test]
fn the_model_and_streaming_go_in_the_path() {
    assert_eq!(
        chat_path("gemini-2.5-flash", false),
        "/models/gemini-2.5-flash:generateContent"
    );
    assert_eq!(
        chat_path("models/gemini-2.5-pro", true),
        "/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    );
    assert_eq!(
        chat_path("tuned/x y?", false),
        "/models/tuned%2Fx%20y%3F:generateContent"
    );
    assert_eq!(
        chat_path("mock+status=429", false),
        "/models/mock+status=429:generateContent"
    );
}

#[test]
fn invalid_shapes_are_bad_params() {
    let cases = [
        r#"{"model":"m","messages":"hi"}"#,
        r#"{"model":"m","messages":[null]}"#,
        r#"{"model":"m","messages":[{"role":"user","content":{"text":"x"}}]}"#,
        r#"{"model":"m","messages":[{"role":"tool","tool_call_id":"nobody","content":"x"}]}"#,
        r#"{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{}}]}]}"#,
        r#"{"model":"m","messages":[]}"#,
        r#"{"model":"m","messages":[{"role":"user","content":"x"}],"seed":"lucky"}"#,
        r#"{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"x"}}}"#,
    ];
    for body in cases {
        let e = convert(body).expect_err(body);
        assert_eq!(e.status, 400, "{body}");
        assert!(e.param.is_some(), "{body}");
    }
}

#[test]
fn error_statuses_follow_the_grpc_status() {
    let body = |code: u16, status: &str| {
        format!(r#"{{"error":{{"code":{code},"message":"m-{status}","status":"{status}"}}}}"#)
    };
    let cases = [
        (429, "RESOURCE_EXHAUSTED", 429),
        (400, "INVALID_ARGUMENT", 400),
        (400, "FAILED_PRECONDITION", 502),
        (403, "PERMISSION_DENIED", 403),
        (404, "NOT_FOUND", 404),
        (500, "INTERNAL", 500),
        (503, "UNAVAILABLE", 503),
        (504, "DEADLINE_EXCEEDED", 504),
        (499, "CANCELLED", 499),
    ];
    for (code, status, want) in cases {
        assert_eq!(
            error_status(code, body(code, status).as_bytes()),
            (want, format!("m-{status}")),
            "{status}"
        );
    }
    let bad_key = br#"{"error":{"code":400,"message":"API key not valid.","status":"INVALID_ARGUMENT",
        "details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}]}}"#;
    assert_eq!(error_status(400, bad_key).0, 401);
    let wrapped = br#"[{"error":{"code":503,"message":"overloaded","status":"UNAVAILABLE"}}]"#;
    assert_eq!(error_status(503, wrapped), (503, "overloaded".into()));
    assert_eq!(
        error_status(502, b"Bad Gateway"),
        (502, "Bad Gateway".into())
    );
}

#[test]
fn non_answers_are_bad_gateway_and_missing_usage_is_estimated() {
    for body in [
        &b"<html>"[..],
        br#"{"error":{"code":500,"message":"x"}}"#,
        b"[]",
    ] {
        assert_eq!(
            chat_response(body).unwrap_err().status,
            502,
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    let (v, usage) =
        chat_response(br#"{"candidates":[{"content":{"parts":[{"text":"hi"}]}}]}"#).unwrap();
    assert!(usage.estimated && v.get("usage").is_none());
    assert_eq!(v["choices"][0]["message"]["content"], "hi");
}

#[test]
fn garbage_events_are_skipped_without_panicking() {
    let input =
        b"data: {not json\r\n\r\ndata: 7\r\n\r\ndata: {\"candidates\":\"no\"}\r\n\r\n\xff\r\n\r\n";
    let (out, summary) = golden::run_stream(StreamConverter::new(CREATED), &[input]);
    // `{"candidates": "no"}` is a response without parts: it still opens the stream.
    assert_eq!(golden::sse_payloads(&out).len(), 1, "{out}");
    assert_eq!(
        summary,
        json!({ "usage": null, "finish_reason": null, "error": null })
    );
}

/// An answer without `responseId` (CI's fuzz run found one) names its calls after the
/// gateway's generation id: unique, and the same however the stream is split.
#[test]
fn calls_of_an_answer_without_response_id_are_named_after_the_generation_id() {
    let input = br#"data: {"candidates":[{"content":{"parts":[{"functionCall":{"name":"get_weather","args":{"city":"Tokyo"}}}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":12,"candidatesTokenCount":6}}

"#;
    let run = |chunks: &[&[u8]]| {
        let mut c = StreamConverter::new(CREATED).with_generation_id("gen-17-abc");
        let mut out = Vec::new();
        for chunk in chunks {
            out.extend_from_slice(&c.on_chunk(chunk));
        }
        out.extend_from_slice(&c.finish());
        String::from_utf8(out).unwrap()
    };
    let whole = run(&[input]);
    assert!(whole.contains(r#""id":"call_gen-17-abc_0""#), "{whole}");
    let (a, b) = input.split_at(40);
    assert_eq!(run(&[a, b]), whole);
}
