//! A live server driven over raw TCP (no HTTP client), so the asserted bytes are exactly
//! what went over the wire.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::tests::data;
use super::MockServer;

/// A parsed HTTP/1.1 response; `chunks` holds the chunked-encoding pieces as sent.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    chunks: Vec<String>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

fn post(path: &str, extra_headers: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nhost: mock\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n{extra_headers}\r\n{body}",
        body.len()
    )
}

/// Writes `raw`, reads until the server closes (or resets) the connection.
async fn exchange(addr: SocketAddr, raw: &str) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(raw.as_bytes()).await?;
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out));
    read.await.expect("server neither answered nor closed")?;
    Ok(out)
}

fn parse(raw: &[u8]) -> Reply {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut rest = &raw[split + 4..];
    let mut reply = Reply {
        status: status.expect("status"),
        headers,
        body: Vec::new(),
        chunks: vec![],
    };
    if reply.header("transfer-encoding") != Some("chunked") {
        reply.body = rest.to_vec();
        return reply;
    }
    loop {
        let eol = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).expect("ascii"), 16);
        let size = size.expect("hex chunk size");
        if size == 0 {
            break;
        }
        let chunk = &rest[eol + 2..eol + 2 + size];
        reply
            .chunks
            .push(String::from_utf8_lossy(chunk).into_owned());
        reply.body.extend_from_slice(chunk);
        rest = &rest[eol + 2 + size + 2..];
    }
    reply
}

const HELLO: &str = r#"{"model":"gpt-test","messages":[{"role":"user","content":"Hi there"}]}"#;

#[tokio::test]
async fn non_stream_completion() {
    let server = MockServer::start("127.0.0.1:0").expect("start");
    let raw = exchange(server.addr(), &post("/v1/chat/completions", "", HELLO))
        .await
        .expect("io");
    let reply = parse(&raw);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let v = reply.json();
    assert!(v["id"]
        .as_str()
        .is_some_and(|id| id.starts_with("chatcmpl-mock-")));
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "gpt-test");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Hello from the mock! You said: Hi there"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    let u = &v["usage"];
    assert_eq!(
        (
            &u["prompt_tokens"],
            &u["completion_tokens"],
            &u["total_tokens"]
        ),
        (&json!(5), &json!(8), &json!(13))
    );
    assert_eq!(u["prompt_tokens_details"]["cached_tokens"], 0);
    assert_eq!(u["completion_tokens_details"]["reasoning_tokens"], 0);
    assert!(v["system_fingerprint"].is_string());
}

#[tokio::test]
async fn stream_with_include_usage_ends_with_usage_then_done() {
    let server = MockServer::start("127.0.0.1:0").expect("start");
    let body = r#"{"model":"m","stream":true,"stream_options":{"include_usage":true},
        "messages":[{"role":"user","content":[{"type":"text","text":"Hi there"}]}]}"#;
    let raw = exchange(
        server.addr(),
        &post("/openai/v1/chat/completions", "", body),
    )
    .await
    .expect("io");
    let reply = parse(&raw);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("text/event-stream"));
    // One event per HTTP chunk: first, 8 word deltas, final, usage, [DONE].
    let events = &reply.chunks;
    assert_eq!(events.len(), 12, "{events:?}");
    assert!(events
        .iter()
        .all(|e| e.starts_with("data: ") && e.ends_with("\n\n")));
    assert_eq!(
        data(&events[0])["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    let text: String = events[1..9]
        .iter()
        .map(|e| {
            data(e)["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap_or("?")
                .to_string()
        })
        .collect();
    assert_eq!(text, "Hello from the mock! You said: Hi there");
    assert!(events[..10]
        .iter()
        .all(|e| data(e)["usage"].is_null() && e.contains("\"usage\":null")));
    assert_eq!(data(&events[9])["choices"][0]["finish_reason"], "stop");
    let usage = data(&events[10]);
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["prompt_tokens"], 5);
    assert_eq!(usage["usage"]["completion_tokens"], 8);
    assert_eq!(events[11], "data: [DONE]\n\n");
}

#[tokio::test]
async fn status_429_with_retry_after() {
    let server = MockServer::start("127.0.0.1:0").expect("start");
    let hdr = "x-mock-fault: status=429+retry_after=2\r\n";
    let reply = parse(
        &exchange(server.addr(), &post("/v1/chat/completions", hdr, HELLO))
            .await
            .expect("io"),
    );
    assert_eq!(reply.status, 429);
    assert_eq!(reply.header("retry-after"), Some("2"));
    assert_eq!(reply.json()["error"]["type"], "rate_limit_exceeded");
    assert_eq!(reply.json()["error"]["param"], Value::Null);

    // The same through the model suffix, and a 5xx type.
    let body = r#"{"model":"mock-small+status=503","messages":[]}"#;
    let reply = parse(
        &exchange(server.addr(), &post("/v1/chat/completions", "", body))
            .await
            .expect("io"),
    );
    assert_eq!(reply.status, 503);
    assert_eq!(reply.json()["error"]["type"], "server_error");
}

#[tokio::test]
async fn reset_before_closes_without_bytes() {
    let server = MockServer::start("127.0.0.1:0").expect("start");
    let hdr = "x-mock-fault: reset=before\r\n";
    match exchange(server.addr(), &post("/v1/chat/completions", hdr, HELLO)).await {
        Ok(bytes) => assert!(
            bytes.is_empty(),
            "got {:?}",
            String::from_utf8_lossy(&bytes)
        ),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset),
    }
    assert_eq!(server.request_count(), 1, "recorded before the fault");
}

#[tokio::test]
async fn reset_mid_stream_sends_half_then_aborts() {
    let server = MockServer::start("127.0.0.1:0").expect("start");
    server.set_default_fault(Some("reset=mid"));
    let body = r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"a"}]}"#;
    let got = exchange(server.addr(), &post("/v1/chat/completions", "", body)).await;
    // Events: first, 7 deltas, final, [DONE] = 10; half of them arrive, never the terminator.
    if let Ok(raw) = got {
        let text = String::from_utf8_lossy(&raw);
        assert!(text.starts_with("HTTP/1.1 200"));
        assert_eq!(text.matches("data: ").count(), 5, "{text}");
        assert!(!text.contains("[DONE]") && !text.ends_with("0\r\n\r\n"));
    }
}

#[tokio::test]
async fn records_headers_body_and_checks_the_key() {
    let server = MockServer::start_with_key("127.0.0.1:0", "sk-test").expect("start");
    let denied = parse(
        &exchange(server.addr(), &post("/v1/chat/completions", "", HELLO))
            .await
            .expect("io"),
    );
    assert_eq!(denied.status, 401);
    assert!(denied.json()["error"]["message"].is_string());

    // A chunked request body with a query string and custom headers.
    let (a, b) = HELLO.split_at(10);
    let raw = format!(
        "POST /v1/chat/completions?x=1 HTTP/1.1\r\nhost: mock\r\nauthorization: Bearer sk-test\r\n\
         X-Custom: yes\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n\
         {:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
        a.len(),
        b.len()
    );
    let reply = parse(&exchange(server.addr(), &raw).await.expect("io"));
    assert_eq!(reply.status, 200);
    let models = "GET /v1/models HTTP/1.1\r\nhost: m\r\nauthorization: Bearer sk-test\r\nconnection: close\r\n\r\n";
    let reply = parse(&exchange(server.addr(), models).await.expect("io"));
    assert_eq!(reply.json()["data"][0]["id"], "mock-small");

    let seen = server.requests();
    assert_eq!(server.request_count(), 3);
    assert_eq!(seen[0].header("authorization"), None);
    let chat = &seen[1];
    assert_eq!(
        (chat.method.as_str(), chat.path.as_str()),
        ("POST", "/v1/chat/completions")
    );
    assert_eq!(chat.query.as_deref(), Some("x=1"));
    assert_eq!(chat.header("x-custom"), Some("yes"));
    assert_eq!(chat.header("Authorization"), Some("Bearer sk-test"));
    assert_eq!(chat.body, HELLO.as_bytes());
    assert_eq!(
        chat.json().map(|v| v["model"].clone()),
        Some(json!("gpt-test"))
    );
    assert_eq!(seen[2].method, "GET");
    server.clear_requests();
    assert_eq!((server.request_count(), server.requests().len()), (0, 0));
    assert!(
        server.base_url().starts_with("http://127.0.0.1:") && server.base_url().ends_with("/v1")
    );
    server.shutdown();
}

#[tokio::test]
async fn embeddings_models_and_unknown_paths() {
    let server = MockServer::start("127.0.0.1:0").expect("start");
    let body = r#"{"model":"emb","input":["a b","c"]}"#;
    let reply = parse(
        &exchange(server.addr(), &post("/v1/embeddings", "", body))
            .await
            .expect("io"),
    );
    let v = reply.json();
    assert_eq!(
        (v["object"].as_str(), v["model"].as_str()),
        (Some("list"), Some("emb"))
    );
    assert_eq!(v["data"][1]["index"], 1);
    assert_eq!(v["data"][0]["embedding"].as_array().map(Vec::len), Some(8));
    assert_eq!(v["usage"], json!({"prompt_tokens": 3, "total_tokens": 3}));

    let reply = parse(
        &exchange(server.addr(), &post("/v1/nope", "", "{}"))
            .await
            .expect("io"),
    );
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json()["error"]["type"], "invalid_request_error");

    let reply = parse(
        &exchange(server.addr(), &post("/v1/chat/completions", "", "{oops"))
            .await
            .expect("io"),
    );
    assert_eq!(reply.status, 400);
}
