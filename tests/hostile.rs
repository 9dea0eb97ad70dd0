//! Hostile input: whatever a client sends, it gets a clear 4xx (or, for a field the gateway
//! only forwards, the provider's answer), never a 5xx or a panic, and the gateway keeps
//! serving. Nothing a client writes reaches an upstream header or URL.

mod common;

use common::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

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
                    assert!(
                        status == 200 || (400..500).contains(&status),
                        "{what}: {status}: {text}"
                    );
                    if status != 200 {
                        assert_client_error(status, &text, &what);
                    }
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
                    assert!(
                        status == 200 || (400..500).contains(&status),
                        "{what}: {status}: {text}"
                    );
                    if status != 200 {
                        assert_client_error(status, &text, &what);
                    }
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
            assert!(
                status == 200 || (400..500).contains(&status),
                "{what}: {status}: {text}"
            );
            if status != 200 {
                assert_client_error(status, &text, &what);
            }
        }
    }
    assert_still_serving(&mut gw).await;
}

/// Sends raw bytes and returns the status line's code (0 if the connection closed silently).
fn raw_status(port: u16, request: &[u8]) -> (u16, String) {
    let out = raw_exchange(port, request);
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|t| t.get(..3))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[tokio::test]
async fn oversized_headers_get_431_or_400_and_oversized_bodies_413() {
    let (mock, mut gw) = start();
    let body =
        json!({"model": "test/model", "messages": [{"role": "user", "content": "hi"}]}).to_string();
    let with_headers = |extra: &str| {
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
            body.len()
        )
    };
    let header_cases = [
        (
            "one 2 MiB header",
            format!("X-Big: {}\r\n", "a".repeat(2 << 20)),
        ),
        (
            "2 MiB of small headers",
            (0..40_000)
                .map(|i| format!("X-H{i}: {}\r\n", "b".repeat(40)))
                .collect::<String>(),
        ),
        (
            "300 headers",
            (0..300)
                .map(|i| format!("X-H{i}: v\r\n"))
                .collect::<String>(),
        ),
        ("a 2 MiB request line", String::new()),
    ];
    for (what, extra) in header_cases {
        let request = if what == "a 2 MiB request line" {
            format!(
                "GET /v1/models?q={} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                "q".repeat(2 << 20)
            )
        } else {
            with_headers(&extra)
        };
        let (status, text) = raw_status(gw.port, request.as_bytes());
        assert!(
            status == 431 || status == 400,
            "{what}: expected 431 or 400, got {status}: {}",
            &text[..text.len().min(300)]
        );
    }

    // Bodies: declared too large (refused before reading), and sent too large.
    let limit = 1 << 20;
    let declared = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nContent-Length: {}\r\n\r\n{{",
        limit * 100
    );
    let (status, text) = raw_status(gw.port, declared.as_bytes());
    assert_eq!(status, 413, "{text}");
    let big = json!({"model": "test/model", "messages": [{"role": "user", "content": "x".repeat(limit)}]});
    let (status, text) = post_raw(&gw, big.to_string().into_bytes()).await;
    let e = assert_client_error(status, &text, "a body over max_body_bytes");
    assert_eq!(status, 413, "{e}");
    // A Content-Length that is not a number, or two that disagree.
    for cl in [
        "Content-Length: abc\r\n",
        "Content-Length: 5\r\nContent-Length: 6\r\n",
        "Content-Length: -1\r\n",
        "Content-Length: 99999999999999999999999\r\n",
    ] {
        let request = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n{cl}Connection: close\r\n\r\n{{}}"
        );
        let (status, text) = raw_status(gw.port, request.as_bytes());
        assert!(
            (400..500).contains(&status) || status == 0,
            "{cl:?}: {status}: {text}"
        );
    }
    assert_eq!(mock.request_count(), 0);
    assert_still_serving(&mut gw).await;
}

/// A client that writes its whole oversized body before reading (every HTTP client library)
/// reads its 413, not "broken pipe": the gateway drops the unread body before it closes.
/// Without that, closing with unread bytes resets the connection under the client's writes.
#[tokio::test]
async fn a_client_still_sending_an_oversized_body_reads_its_413() {
    let (mock, mut gw) = start();
    // 8 MiB against the 1 MiB limit: far more than loopback's socket buffers absorb.
    let big = json!({"model": "test/model", "messages": [{"role": "user", "content": "x".repeat(8 << 20)}]})
        .to_string()
        .into_bytes();
    for round in 0..3 {
        let sent = client()
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(KEY)
            .header("content-type", "application/json")
            .body(big.clone())
            .send()
            .await;
        let r = sent.unwrap_or_else(|e| panic!("round {round}: the client saw {e:?}"));
        assert_eq!(r.status(), 413, "round {round}");
        let e = assert_client_error(413, &r.text().await.unwrap(), "an 8 MiB body");
        assert_eq!(e["code"], "request_too_large", "{e}");
    }
    // The same for a request refused before its body for another reason.
    let unauthorized = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("sk-wrong")
        .body(big)
        .send()
        .await
        .unwrap_or_else(|e| panic!("a wrong key: the client saw {e:?}"));
    assert_eq!(unauthorized.status(), 401);
    assert_eq!(mock.request_count(), 0);
    assert_still_serving(&mut gw).await;
}

#[tokio::test]
async fn unknown_paths_and_methods_are_404_or_405() {
    let (mock, mut gw) = start();
    let c = client();
    let paths = [
        "/",
        "/v1",
        "/v1/",
        "/v2/chat/completions",
        "/v1/chat/completions/extra",
        "/v1/chat",
        "//v1/models",
        "/v1//models",
        "/v1/models/../../etc/passwd",
        "/v1/%2e%2e/%2e%2e/etc/passwd",
        "/api/v2/models",
        "/v1/keys",
        "/api/v1/keys",
        "/admin/reload",
        "/metrics",
        "/v1/embeddings/../keys",
        "/.env",
        "/v1/chat/completions%00",
        "/v1/chat/completions;x=1",
        &format!("/{}", "a/".repeat(5000)),
    ];
    for path in paths {
        for method in ["GET", "POST", "DELETE"] {
            let r = c
                .request(method.parse().unwrap(), gw.url(path))
                .bearer_auth(KEY)
                .body("{}")
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let text = r.text().await.unwrap();
            assert!(
                status == 404 || status == 405,
                "{method} {}: {status} {text}",
                &path[..path.len().min(60)]
            );
            assert_client_error(status, &text, path);
        }
    }
    for method in ["PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"] {
        let r = c
            .request(method.parse().unwrap(), gw.url("/v1/chat/completions"))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405, "{method}");
    }
    // Methods no client library sends, and HTTP/0.9 and 2.0 preambles.
    for request in [
        &b"BREW /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"[..],
        b"GET /v1/models HTTP/9.9\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /v1/models\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"GET http://[::1 HTTP/1.1\r\nHost: x\r\n\r\n",
    ] {
        let (status, text) = raw_status(gw.port, request);
        assert!(
            status == 0 || (400..500).contains(&status),
            "{:?}: {status} {text}",
            String::from_utf8_lossy(request)
        );
    }
    assert_eq!(mock.request_count(), 0);
    assert_still_serving(&mut gw).await;
}

/// Asserts the mock saw no header, path or query that a client's CR/LF could have made.
fn assert_nothing_injected(mock: &MockServer) {
    for req in mock.requests() {
        for (name, value) in &req.headers {
            assert!(
                !name.contains("injected") && !value.to_ascii_lowercase().contains("injected"),
                "an injected header reached the provider: {name}: {value}"
            );
            assert!(
                !value.contains(['\r', '\n']),
                "CR/LF in the upstream header {name}: {value:?}"
            );
        }
        assert!(
            !req.path.to_ascii_lowercase().contains("injected")
                && !req.path.contains("..")
                && req.query.as_deref().is_none_or(|q| !q.contains("injected")),
            "the upstream URL carries client input: {} {:?}",
            req.path,
            req.query
        );
    }
}

#[tokio::test]
async fn cr_lf_in_any_field_never_reaches_an_upstream_header_or_url() {
    let (mock, mut gw) = start();
    let evil = [
        "test/model\r\nX-Injected: 1",
        "test/model\nX-Injected: 1",
        "test/model\r\n\r\nGET /injected HTTP/1.1",
        "test/model%0d%0aX-Injected:%201",
        "test/model\u{0085}X-Injected: 1",
        "test/model\u{2028}X-Injected: 1",
    ];
    for model in evil {
        for stream in [false, true] {
            let r = chat(&gw, json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]})).await;
            let status = r.status().as_u16();
            let text = r.text().await.unwrap();
            let e = assert_client_error(status, &text, model);
            assert_eq!(status, 404, "{model:?}: {e}");
        }
    }
    // The same in every other field a client controls: fallbacks, provider names, session
    // ids, tool names, user, metadata; to every dialect (Gemini puts the model in its URL).
    for model in MODELS {
        for evil in evil {
            let body = json!({
                "model": model,
                "models": [evil],
                "provider": {"order": [evil], "ignore": [evil]},
                "session_id": evil,
                "prompt_cache_key": evil,
                "user": evil,
                "metadata": {"x": evil},
                "stop": [evil],
                "messages": [{"role": "user", "content": evil, "name": evil}],
                "tools": [{"type": "function", "function": {"name": evil, "description": evil, "parameters": {"type": "object"}}}],
            });
            let (status, text) = post_raw(&gw, body.to_string().into_bytes()).await;
            assert!(
                status == 200 || (400..500).contains(&status),
                "{model}: {status} {text}"
            );
        }
    }
    // Headers that reach upstreams (`anthropic-beta`) or steer routing (`x-session-id`),
    // with obsolete line folding and raw CR/LF the client library would never send.
    for (name, value) in [
        ("anthropic-beta", "tools-2024\r\n X-Injected: folded"),
        ("anthropic-beta", "tools-2024\r\nX-Injected: split"),
        ("x-session-id", "s\r\n X-Injected: folded"),
        ("anthropic-beta", "tools-2024\rX-Injected: bare-cr"),
        ("anthropic-beta", "tools-2024\nX-Injected: bare-lf"),
    ] {
        for model in MODELS {
            let body = json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
                .to_string();
            let request = format!(
                "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{name}: {value}\r\n\r\n{body}",
                body.len()
            );
            let (status, text) = raw_status(gw.port, request.as_bytes());
            assert!(
                status == 200 || status == 0 || (400..500).contains(&status),
                "{name}: {value:?} to {model}: {status} {text}"
            );
        }
    }
    // Query strings and fragments on the client's URL do not follow the request upstream.
    let r = client()
        .post(gw.url("/v1/chat/completions?x=injected&key=injected#injected"))
        .bearer_auth(KEY)
        .json(&json!({"model": "google/gemini", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        mock.request_count() > 0,
        "the legitimate requests went upstream"
    );
    assert_nothing_injected(&mock);
    assert_still_serving(&mut gw).await;
}

#[tokio::test]
async fn path_traversal_in_model_ids_finds_nothing() {
    let (mock, mut gw) = start();
    for model in [
        "../../etc/passwd",
        "test/../test/model",
        "test/model/..",
        "./test/model",
        "test/./model",
        "..%2f..%2fetc%2fpasswd",
        "test%2fmodel",
        "test\\..\\model",
        "/test/model",
        "test/model/",
        "test/model\u{0000}",
        "google/gemini/../../v1/models/gemini-test:generateContent",
        "google/gemini?alt=sse",
        "google/gemini#frag",
    ] {
        let r = chat(
            &gw,
            json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        let e = assert_client_error(status, &text, model);
        assert_eq!(status, 404, "{model}: {e}");
    }
    assert_eq!(mock.request_count(), 0, "no odd model id was served");
    assert_still_serving(&mut gw).await;
}

#[tokio::test]
async fn model_endpoints_with_odd_ids_are_404_never_5xx() {
    let (_mock, mut gw) = start();
    let r = client()
        .get(gw.url("/v1/models/test/model/endpoints"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the plain id works");
    let long = "a".repeat(16 * 1024);
    for id in [
        "",
        "/",
        "//",
        "test",
        "test/model/extra",
        "../../etc/passwd",
        "..%2f..%2fetc%2fpasswd",
        "test%2Fmodel",
        "%00",
        "%ff%fe",
        "test/model%0d%0aX-Injected:%201",
        "test/model/endpoints",
        "a/b/c/d/e/f/g",
        "%",
        "%%",
        long.as_str(),
    ] {
        let url = gw.url(&format!("/v1/models/{id}/endpoints"));
        let r = client().get(&url).send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert!(
            status == 404 || status == 400 || status == 431 || status == 414,
            "{}: {status} {text}",
            &id[..id.len().min(60)]
        );
    }
    // Raw bytes no URL library would send.
    for path in [
        &b"/v1/models/\xff\xfe/endpoints"[..],
        b"/v1/models/a\tb/endpoints",
    ] {
        let mut request = b"GET ".to_vec();
        request.extend_from_slice(path);
        request.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let (status, text) = raw_status(gw.port, &request);
        assert!(
            status == 0 || (400..500).contains(&status),
            "{status}: {text}"
        );
    }
    assert_still_serving(&mut gw).await;
}

#[tokio::test]
async fn garbage_on_the_wire_never_stops_the_gateway() {
    let (_mock, mut gw) = start();
    let junk: Vec<Vec<u8>> = vec![
        (0..=255u8).collect(),
        b"\r\n\r\n\r\n\r\n".to_vec(),
        b"POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
        b"POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n".to_vec(),
        b"POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n".to_vec(),
        b"POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nHost: x\r\n\x00\x00\x00: y\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\n : x\r\n\r\n".to_vec(),
        vec![b'G'; 100_000],
    ];
    for request in &junk {
        let mut s = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(request);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        assert!(
            !out.starts_with(b"HTTP/1.1 5"),
            "{}: {}",
            excerpt(request),
            excerpt(&out)
        );
    }
    assert_still_serving(&mut gw).await;
}
