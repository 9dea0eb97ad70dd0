//! Hostile input: whatever a client sends, it gets a clear 4xx (or, for a field the gateway
//! only forwards, the provider's answer), never a 5xx or a panic, and the gateway keeps
//! serving. Nothing a client writes reaches an upstream header or URL.

#[path = "../common/mod.rs"]
mod common;
/// On the wire: sizes, paths, CR/LF injection, garbage.
mod wire;

use common::*;
use serde_json::{json, Value};

/// One mock speaking all three dialects behind three providers, and a model on each.
fn config(mock: &MockServer) -> String {
    let base = mock.base_url();
    format!(
        "{}providers:\n{}  claude:\n    dialect: anthropic\n    base_url: \"{base}\"\n    api_key_env: UPSTREAM_KEY\n  gem:\n    dialect: gemini\n    base_url: \"{base}\"\n    api_key_env: UPSTREAM_KEY\nmodels:\n  test/model:\n    endpoints:\n      - {{ provider: p1, model: up-model, price: {{ prompt: 1, completion: 1 }} }}\n  anthropic/claude:\n    endpoints:\n      - {{ provider: claude, model: claude-test }}\n  google/gemini:\n    endpoints:\n      - {{ provider: gem, model: gemini-test }}\n",
        config_head(),
        provider("p1", mock)
    )
}

const MODELS: [&str; 3] = ["test/model", "anthropic/claude", "google/gemini"];

fn start() -> (MockServer, Gateway) {
    let mock = MockServer::start_with_key("127.0.0.1:0", UPSTREAM_KEY).unwrap();
    let gw = Gateway::start(&config(&mock));
    (mock, gw)
}

async fn post_raw(gw: &Gateway, body: Vec<u8>) -> (u16, String) {
    let r = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    text.chars().take(120).collect()
}

/// A 4xx in OpenAI's error shape; returns the error object.
fn assert_client_error(status: u16, text: &str, what: &str) -> Value {
    assert!(
        (400..500).contains(&status),
        "{what}: expected a 4xx, got {status}: {text}"
    );
    let body: Value = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("{what}: the error is not JSON ({e}): {text}"));
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: {body}"
    );
    assert!(body["error"]["type"].is_string(), "{what}: {body}");
    body["error"].clone()
}

/// A 200, or a 4xx in the front door's error shape ([`assert_client_error`]).
fn assert_served_or_refused(status: u16, text: &str, what: &str) {
    assert!(
        status == 200 || (400..500).contains(&status),
        "{what}: {status}: {text}"
    );
    if status != 200 {
        assert_client_error(status, text, what);
    }
}

/// The gateway is alive, has not panicked and still answers a good request.
async fn assert_still_serving(gw: &mut Gateway) {
    assert!(gw.is_running(), "the gateway died:\n{}", gw.log_text());
    let log = gw.log_text();
    assert!(!log.contains("panicked"), "a panic:\n{log}");
    let r = chat(
        gw,
        json!({"model": "test/model", "messages": [{"role": "user", "content": "still there?"}]}),
    )
    .await;
    assert_eq!(r.status(), 200, "still serving");
}

#[tokio::test]
async fn invalid_utf8_is_a_400() {
    let (mock, mut gw) = start();
    let bodies: Vec<Vec<u8>> = vec![
        vec![0xff, 0xfe, 0xfd],
        b"{\"model\": \"test/model\xff\", \"messages\": []}".to_vec(),
        b"{\"model\": \"test/model\", \"messages\": [{\"role\": \"user\", \"content\": \"\xc3\x28\"}]}"
            .to_vec(),
        // An overlong encoding of '/' and a lone surrogate, raw and escaped.
        b"{\"model\": \"test\xc0\xafmodel\", \"messages\": []}".to_vec(),
        b"{\"model\": \"test/model\", \"messages\": [{\"role\": \"user\", \"content\": \"\xed\xa0\x80\"}]}"
            .to_vec(),
        b"{\"model\": \"test/model\", \"messages\": [{\"role\": \"user\", \"content\": \"\\ud800\"}]}"
            .to_vec(),
        b"{\"\xff\": 1, \"model\": \"test/model\", \"messages\": []}".to_vec(),
    ];
    for body in bodies {
        let (status, text) = post_raw(&gw, body.clone()).await;
        // A lone escaped surrogate is valid JSON syntax; serde refuses it as a string.
        assert_client_error(status, &text, &excerpt(&body));
    }
    // The same inside messages sent to the converting dialects.
    for model in ["anthropic/claude", "google/gemini"] {
        let mut body = format!(
            "{{\"model\": \"{model}\", \"messages\": [{{\"role\": \"user\", \"content\": \""
        )
        .into_bytes();
        body.extend_from_slice(b"\xc3\x28\"}]}");
        let (status, text) = post_raw(&gw, body).await;
        assert_client_error(status, &text, model);
    }
    // An escaped lone surrogate (`"\ud800"`) is valid JSON text: inside `messages`, which the
    // gateway forwards without reading, it reaches an OpenAI-dialect provider, which refuses
    // it (as the mock does). Raw invalid bytes never go upstream.
    let upstream: Vec<String> = mock
        .requests()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .filter(|body| !body.contains("\\ud800"))
        .collect();
    assert!(
        upstream.is_empty(),
        "invalid input went upstream: {upstream:?}"
    );
    assert_still_serving(&mut gw).await;
}

fn nested(depth: usize, open: &str, close: &str, inner: &str) -> String {
    format!("{}{inner}{}", open.repeat(depth), close.repeat(depth))
}

#[tokio::test]
async fn deeply_nested_json_never_overflows_the_stack() {
    let (_mock, mut gw) = start();
    for model in MODELS {
        for depth in [127, 129, 5_000, 200_000] {
            let arrays = nested(depth, "[", "]", "1");
            let objects = nested(depth, "{\"a\":", "}", "1");
            let cases = [
                format!("{{\"model\":\"{model}\",\"messages\":{arrays}}}"),
                format!("{{\"model\":\"{model}\",\"messages\":[{{\"role\":\"user\",\"content\":{objects}}}]}}"),
                format!("{{\"model\":\"{model}\",\"messages\":[],\"tools\":[{{\"type\":\"function\",\"function\":{{\"name\":\"f\",\"parameters\":{objects}}}}}]}}"),
                format!("{{\"model\":\"{model}\",\"messages\":[],\"provider\":{objects}}}"),
                format!("{{\"model\":\"{model}\",\"messages\":[],\"vendor_extension\":{arrays}}}"),
                format!("{{\"model\":\"{model}\",\"messages\":[],\"response_format\":{{\"type\":\"json_schema\",\"json_schema\":{objects}}}}}"),
            ];
            for body in cases {
                let (status, text) = post_raw(&gw, body.clone().into_bytes()).await;
                assert!(
                    (400..500).contains(&status) || status == 200,
                    "depth {depth}, {model}: {status} for {}: {text}",
                    excerpt(body.as_bytes())
                );
                if status != 200 {
                    assert_client_error(status, &text, &excerpt(body.as_bytes()));
                }
            }
        }
    }
    assert_still_serving(&mut gw).await;
}

#[tokio::test]
async fn huge_and_odd_numbers_are_refused_or_forwarded_never_a_5xx() {
    let (_mock, mut gw) = start();
    let numbers = [
        "1e999",
        "-1e999",
        "99999999999999999999999",
        "18446744073709551616",
        "-1",
        "1.5",
        "-0",
        "1e-999",
        "0.0000000000000000000000000000001",
        "123456789012345678901234567890.123456789e300",
    ];
    // Fields the gateway reads must be refused when out of range; the rest are forwarded.
    let read = ["max_tokens", "max_completion_tokens"];
    let forwarded = [
        "temperature",
        "top_p",
        "n",
        "seed",
        "frequency_penalty",
        "logit_bias",
    ];
    for model in MODELS {
        for n in numbers {
            for field in read.iter().chain(forwarded.iter()) {
                let body = format!(
                    "{{\"model\":\"{model}\",\"messages\":[{{\"role\":\"user\",\"content\":\"hi\"}}],\"{field}\":{n}}}"
                );
                let (status, text) = post_raw(&gw, body.clone().into_bytes()).await;
                let what = format!("{model} {field}={n}");
                let out_of_range = n.contains("e999")
                    || n.starts_with("99999")
                    || n.starts_with("1844")
                    || n.starts_with('-')
                    || n.contains('.');
                if read.contains(field) && out_of_range && n != "-0" {
                    let e = assert_client_error(status, &text, &what);
                    if !n.contains("e999") {
                        assert_eq!(e["param"], *field, "{what}: {e}");
                    }
                } else {
                    assert_served_or_refused(status, &text, &what);
                }
            }
        }
    }
    assert_still_serving(&mut gw).await;
}

#[tokio::test]
async fn duplicate_keys_are_refused_at_the_top_and_never_a_5xx_below() {
    let (mock, mut gw) = start();
    for model in MODELS {
        let top = format!(
            "{{\"model\":\"test/other\",\"model\":\"{model}\",\"messages\":[{{\"role\":\"user\",\"content\":\"hi\"}}]}}"
        );
        let (status, text) = post_raw(&gw, top.into_bytes()).await;
        let e = assert_client_error(status, &text, "duplicate model");
        assert_eq!(e["param"], "model", "{e}");
        for field in ["stream", "provider", "messages", "models", "max_tokens"] {
            let value = match field {
                "stream" => "false",
                "provider" => "{}",
                "messages" => "[]",
                "models" => "[]",
                _ => "5",
            };
            let messages = if field == "messages" {
                String::new()
            } else {
                ",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]".to_string()
            };
            let body = format!(
                "{{\"model\":\"{model}\"{messages},\"{field}\":{value},\"{field}\":{value}}}"
            );
            let (status, text) = post_raw(&gw, body.into_bytes()).await;
            let e = assert_client_error(status, &text, field);
            assert_eq!(e["param"], field, "{e}");
        }
        // Inside a message: the gateway does not read it for OpenAI providers; converting
        // dialects take one of the two. Never a 5xx.
        let inner = format!(
            "{{\"model\":\"{model}\",\"messages\":[{{\"role\":\"user\",\"role\":\"system\",\"content\":\"a\",\"content\":\"b\"}}]}}"
        );
        let (status, text) = post_raw(&gw, inner.into_bytes()).await;
        assert!(
            status == 200 || (400..500).contains(&status),
            "{model}: {status} {text}"
        );
    }
    let _ = mock;
    assert_still_serving(&mut gw).await;
}

/// Values of every JSON type but the right one.
fn wrong_values(right: &str) -> Vec<&'static str> {
    let all = [
        ("null", "null"),
        ("bool", "true"),
        ("number", "42"),
        ("string", "\"text\""),
        ("array", "[1,\"a\",null]"),
        ("object", "{\"x\":{\"y\":[]}}"),
    ];
    all.iter()
        .filter(|(kind, _)| *kind != right)
        .map(|(_, v)| *v)
        .collect()
}

#[tokio::test]
async fn wrong_types_for_every_chat_field_are_4xx_never_5xx() {
    let (_mock, mut gw) = start();
    // (field, its right JSON type, whether the gateway itself reads it: those must be a 400
    // naming the field; the others are forwarded or converted, and may be refused upstream).
    let fields: &[(&str, &str, bool)] = &[
        ("model", "string", true),
        ("messages", "array", true),
        ("models", "array", true),
        ("stream", "bool", true),
        ("provider", "object", true),
        ("session_id", "string", true),
        ("prompt_cache_key", "string", true),
        ("max_tokens", "number", true),
        ("max_completion_tokens", "number", true),
        ("temperature", "number", false),
        ("top_p", "number", false),
        ("top_k", "number", false),
        ("n", "number", false),
        ("stop", "array", false),
        ("seed", "number", false),
        ("presence_penalty", "number", false),
        ("frequency_penalty", "number", false),
        ("logit_bias", "object", false),
        ("logprobs", "bool", false),
        ("top_logprobs", "number", false),
        ("user", "string", false),
        ("tools", "array", false),
        ("tool_choice", "string", false),
        ("parallel_tool_calls", "bool", false),
        ("response_format", "object", false),
        ("stream_options", "object", false),
        ("reasoning", "object", false),
        ("reasoning_effort", "string", false),
        ("metadata", "object", false),
        ("store", "bool", false),
        ("modalities", "array", false),
        ("prediction", "object", false),
        ("service_tier", "string", false),
        ("transforms", "array", false),
        ("route", "string", false),
        ("usage", "object", false),
        ("plugins", "array", false),
    ];
    for model in MODELS {
        for (field, right, read) in fields {
            for wrong in wrong_values(right) {
                if wrong == "null" && !matches!(*field, "model" | "messages") {
                    continue; // null means "absent" for optional fields
                }
                let mut body =
                    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
                body[*field] = serde_json::from_str(wrong).unwrap();
                let what = format!("{model}: {field}={wrong}");
                let (status, text) = post_raw(&gw, body.to_string().into_bytes()).await;
                if *read {
                    let e = assert_client_error(status, &text, &what);
                    assert!(
                        e["param"] == *field || *field == "model" && status == 404,
                        "{what}: the error should name `{field}`: {e}"
                    );
                } else {
                    assert_served_or_refused(status, &text, &what);
                }
            }
        }
        // Wrong types inside a message.
        for message in [
            json!(1),
            json!("user: hi"),
            json!(null),
            json!([]),
            json!({"role": 5, "content": "hi"}),
            json!({"role": "user", "content": 5}),
            json!({"role": "user", "content": {"text": "hi"}}),
            json!({"role": "user", "content": [5]}),
            json!({"role": "user", "content": [{"type": 5}]}),
            json!({"role": "user", "content": [{"type": "image_url", "image_url": 5}]}),
            json!({"role": "user", "content": [{"type": "text", "text": ["a"]}]}),
            json!({"role": "tool", "content": "x", "tool_call_id": 5}),
            json!({"role": "assistant", "tool_calls": "x"}),
            json!({"role": "assistant", "tool_calls": [{"id": 1, "type": "function", "function": {"name": 2, "arguments": {}}}]}),
            json!({"role": "wizard", "content": "hi"}),
        ] {
            let body = json!({"model": model, "messages": [message]});
            let what = format!("{model}: message {message}");
            let (status, text) = post_raw(&gw, body.to_string().into_bytes()).await;
            assert_served_or_refused(status, &text, &what);
        }
    }
    assert_still_serving(&mut gw).await;
}
