//! The gateway core end to end: the real binary, a mock provider, OpenAI-shaped answers.

mod common;

use common::*;
use serde_json::{json, Value};

fn single_provider_config(mock: &MockServer) -> String {
    format!(
        "{}providers:\n{}models:\n  test/model:\n    context_length: 8000\n    endpoints:\n      - {{ provider: p1, model: up-model, price: {{ prompt: 1.0, completion: 2.0 }} }}\n  test/other:\n    endpoints:\n      - {{ provider: p1, model: other-up }}\n",
        config_head(),
        provider("p1", mock)
    )
}

fn start() -> (MockServer, Gateway) {
    let mock = MockServer::start_with_key("127.0.0.1:0", UPSTREAM_KEY).unwrap();
    let gw = Gateway::start(&single_provider_config(&mock));
    (mock, gw)
}

fn hello(stream: bool) -> Value {
    json!({"model": "test/model", "stream": stream, "messages": [{"role": "user", "content": "Hello there"}]})
}

#[tokio::test]
async fn answers_non_stream_with_catalog_model_provider_and_cost() {
    let (_mock, gw) = start();
    let resp = chat(&gw, hello(false)).await;
    assert_eq!(resp.status(), 200);
    let gen_id = resp.headers()["x-generation-id"]
        .to_str()
        .unwrap()
        .to_string();
    // The provider's own id for the request (OpenAI's `x-request-id`), passed on as it came.
    let upstream_id = resp.headers()["x-upstream-request-id"].to_str().unwrap();
    assert!(
        upstream_id.starts_with("req_") && upstream_id.len() == 36,
        "{upstream_id}"
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["model"], "test/model");
    assert_eq!(body["provider"], "p1");
    assert_eq!(body["id"], gen_id.as_str());
    assert_eq!(body["object"], "chat.completion");
    assert!(body["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .contains("Hello there"));
    let usage = &body["usage"];
    let (p, c) = (
        usage["prompt_tokens"].as_u64().unwrap(),
        usage["completion_tokens"].as_u64().unwrap(),
    );
    // $1/M prompt and $2/M completion.
    let expected = (p as f64 * 1.0 + c as f64 * 2.0) / 1e6;
    assert!(
        (usage["cost"].as_f64().unwrap() - expected).abs() < 1e-12,
        "{usage}"
    );
    // The operator's access line: env_logger's layout, then the request (written as the
    // request ends, after the answer).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let line = loop {
        let log = gw.log_text();
        if let Some(line) = log.lines().find(|l| l.contains(&gen_id)) {
            break line.to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no access line:\n{log}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let (stamp, rest) = line.split_once(' ').unwrap();
    assert_eq!(stamp.len(), "[2026-01-02T03:04:05Z".len(), "{line}");
    assert!(stamp.starts_with("[20") && stamp.ends_with('Z'), "{line}");
    let tail = format!(
        "INFO  access] {gen_id} POST /v1/chat/completions 200 key=tester model=test/model \
         provider=p1 tokens={p}+{c} cost={expected:.8} latency_ms="
    );
    assert!(rest.starts_with(&tail), "{line}\nwanted: {tail}");
    assert!(rest.ends_with(" attempts=1"), "{line}");
}

#[tokio::test]
async fn serves_the_openrouter_prefix_too() {
    let (_mock, gw) = start();
    let resp = client()
        .post(gw.url("/api/v1/chat/completions"))
        .bearer_auth(KEY)
        .json(&hello(false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

/// Blanks the per-request parts of a mock chunk (its id and timestamp) in place, leaving
/// every other byte as it was, so two runs can be compared byte for byte.
fn normalise(event: &str) -> String {
    let mut out = event.to_string();
    for (key, end) in [("\"id\":\"", '"'), ("\"created\":", ',')] {
        if let Some(start) = out.find(key).map(|i| i + key.len()) {
            let stop = start + out[start..].find(end).unwrap();
            out.replace_range(start..stop, "_");
        }
    }
    out
}

#[tokio::test]
async fn streams_the_providers_bytes_unchanged_then_one_usage_chunk_and_done() {
    let (mock, gw) = start();
    let resp = chat(&gw, hello(true)).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let gateway_body = resp.text().await.unwrap();

    // The same request straight to the mock, as the gateway sent it.
    let upstream_req = mock.requests().last().unwrap().body.clone();
    let direct = client()
        .post(format!("{}/chat/completions", mock.base_url()))
        .bearer_auth(UPSTREAM_KEY)
        .header("content-type", "application/json")
        .body(upstream_req)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    let ours = sse_events(&gateway_body);
    let theirs = sse_events(&direct);
    // The mock ends with its usage-only chunk and [DONE]; the gateway replaces both.
    let (their_content, their_tail) = theirs.split_at(theirs.len() - 2);
    let (our_content, our_tail) = ours.split_at(ours.len() - 2);
    assert_eq!(our_content.len(), their_content.len());
    for (a, b) in our_content.iter().zip(their_content) {
        // Same bytes apart from the per-request id and timestamp.
        assert_eq!(normalise(a), normalise(b));
        assert!(
            a.contains("\"model\":\"up-model\""),
            "chunks pass through as sent: {a}"
        );
    }
    assert_eq!(our_tail[1], "data: [DONE]");
    assert_eq!(their_tail[1], "data: [DONE]");
    let usage_chunk: Value =
        serde_json::from_str(our_tail[0].trim_start_matches("data: ")).unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["model"], "test/model");
    assert_eq!(usage_chunk["provider"], "p1");
    let their_usage: Value =
        serde_json::from_str(their_tail[0].trim_start_matches("data: ")).unwrap();
    assert_eq!(
        usage_chunk["usage"]["prompt_tokens"],
        their_usage["usage"]["prompt_tokens"]
    );
    assert_eq!(
        usage_chunk["usage"]["completion_tokens"],
        their_usage["usage"]["completion_tokens"]
    );
    assert!(usage_chunk["usage"]["cost"].as_f64().unwrap() > 0.0);
}

#[tokio::test]
async fn upstream_sees_its_model_and_key_and_nothing_of_the_client() {
    let (mock, gw) = start();
    let body = json!({
        "model": "test/model", "messages": [{"role": "user", "content": "hi"}],
        "models": ["test/other"], "provider": {"sort": "price"}, "session_id": "abc",
        "temperature": 0.3, "vendor_extension": {"keep": true}
    });
    let resp = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(KEY)
        .header("cookie", "session=secret-cookie")
        .header("x-custom-client", "1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let seen = mock.requests().pop().unwrap();
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {UPSTREAM_KEY}").as_str())
    );
    assert_eq!(seen.header("cookie"), None);
    assert_eq!(seen.header("x-custom-client"), None);
    for (name, value) in &seen.headers {
        assert!(
            !value.contains(KEY),
            "client key leaked in upstream header {name}"
        );
    }
    assert!(!String::from_utf8_lossy(&seen.body).contains(KEY));
    let up: Value = seen.json().unwrap();
    assert_eq!(up["model"], "up-model");
    assert_eq!(up["temperature"], 0.3);
    assert_eq!(up["vendor_extension"]["keep"], true);
    for gone in ["models", "provider", "session_id"] {
        assert!(up.get(gone).is_none(), "{gone} reached the provider");
    }
}

/// OpenRouter's fallback form, `models` without `model`: the first is the model, the rest
/// its fallbacks, and the provider gets its own model id.
#[tokio::test]
async fn models_alone_route_to_the_first_then_the_rest() {
    let (mock, gw) = start();
    let resp = chat(
        &gw,
        json!({"models": ["test/model", "test/other"], "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["model"], "test/model");
    let up: Value = mock.requests().pop().unwrap().json().unwrap();
    assert_eq!(up["model"], "up-model");
    assert!(up.get("models").is_none());
}

#[tokio::test]
async fn lists_the_catalog_without_a_key() {
    let (_mock, gw) = start();
    let resp = client().get(gw.url("/v1/models")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["object"], "list");
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["test/model", "test/other"]);
    let first = &body["data"][0];
    assert_eq!(first["context_length"], 8000);
    assert_eq!(first["pricing"]["prompt"], "0.000001");
    assert_eq!(first["pricing"]["completion"], "0.000002");
}

async fn expect_error(resp: reqwest::Response, status: u16, error_type: &str) -> Value {
    assert_eq!(resp.status().as_u16(), status);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["type"], error_type, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    assert!(
        body["error"].get("param").is_some() && body["error"].get("code").is_some(),
        "{body}"
    );
    body
}

#[tokio::test]
async fn every_client_error_has_its_status_and_openai_shape() {
    let (mock, gw) = start();
    let url = gw.url("/v1/chat/completions");
    let c = client();

    let r = c
        .post(&url)
        .bearer_auth(KEY)
        .body("{not json")
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "invalid_request_error").await;

    let r = c
        .post(&url)
        .bearer_auth(KEY)
        .json(&json!({"messages": []}))
        .send()
        .await
        .unwrap();
    let body = expect_error(r, 400, "invalid_request_error").await;
    assert_eq!(body["error"]["param"], "model");

    let r = c
        .post(&url)
        .bearer_auth(KEY)
        .json(&json!({"model": "no/such", "messages": []}))
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "not_found_error").await;

    let r = c.post(&url).json(&hello(false)).send().await.unwrap();
    expect_error(r, 401, "authentication_error").await;

    let r = c
        .post(&url)
        .bearer_auth("sk-wrong")
        .json(&hello(false))
        .send()
        .await
        .unwrap();
    expect_error(r, 401, "authentication_error").await;

    let r = c
        .post(&url)
        .bearer_auth("sk-limited")
        .json(&hello(false))
        .send()
        .await
        .unwrap();
    expect_error(r, 403, "permission_error").await;

    let huge = json!({"model": "test/model", "messages": [{"role": "user", "content": "x".repeat(2 << 20)}]});
    let r = c
        .post(&url)
        .bearer_auth(KEY)
        .json(&huge)
        .send()
        .await
        .unwrap();
    expect_error(r, 413, "invalid_request_error").await;

    let r = c.get(&url).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(r.headers()["allow"], "POST");
    expect_error(r, 405, "invalid_request_error").await;

    let r = c.get(gw.url("/v1/nothing-here")).send().await.unwrap();
    expect_error(r, 404, "not_found_error").await;

    let r = c
        .post(&url)
        .bearer_auth(KEY)
        .json(&json!({"model": "test/model", "messages": [], "provider": {"only": ["nobody"]}}))
        .send()
        .await
        .unwrap();
    let body = expect_error(r, 404, "not_found_error").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("provider.only"),
        "{body}"
    );

    assert_eq!(
        mock.request_count(),
        0,
        "no error above may reach the provider"
    );
}

#[tokio::test]
async fn a_refused_upstream_is_a_502_naming_the_provider() {
    let dead_port = free_port();
    let config = format!(
        "{}providers:\n  dead:\n    dialect: openai\n    base_url: \"http://127.0.0.1:{dead_port}/v1\"\n    timeouts: {{ connect: 1s }}\nmodels:\n  test/model:\n    endpoints:\n      - {{ provider: dead, model: m }}\n",
        config_head()
    );
    let gw = Gateway::start(&config);
    let resp = chat(&gw, hello(false)).await;
    let body = expect_error(resp, 502, "upstream_error").await;
    assert_eq!(body["error"]["metadata"]["provider_name"], "dead");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("connect"),
        "{body}"
    );
}

#[tokio::test]
async fn bodies_larger_than_pingoras_retry_buffer_are_forwarded_whole() {
    let (mock, gw) = start();
    let long = "word ".repeat(60_000); // ~300 KB
    let resp = chat(
        &gw,
        json!({"model": "test/model", "messages": [{"role": "user", "content": long}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let seen = mock.requests().pop().unwrap().json().unwrap();
    assert_eq!(
        seen["messages"][0]["content"].as_str().unwrap().len(),
        long.len()
    );
}

#[tokio::test]
async fn garbage_never_gets_a_5xx_and_never_stops_the_gateway() {
    let (mock, mut gw) = start();
    let url = gw.url("/v1/chat/completions");
    let c = client();
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        vec![0xff, 0xfe, 0x00, 0x80],
        b"[]".to_vec(),
        b"null".to_vec(),
        b"{\"model\": null, \"messages\": null}".to_vec(),
        b"{\"model\": \"test/model\", \"messages\": {}}".to_vec(),
        b"{\"model\": \"test/model\", \"messages\": [], \"stream\": 1e999}".to_vec(),
        b"{\"model\": \"test/model\r\nX-Injected: 1\", \"messages\": []}".to_vec(),
        b"{\"model\": \"../../etc/passwd\", \"messages\": []}".to_vec(),
        b"{\"model\": \"test/model\", \"messages\": [], \"max_tokens\": 99999999999999999999999}"
            .to_vec(),
        format!(
            "{{\"model\":\"test/model\",\"messages\":{}{}}}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        )
        .into_bytes(),
    ];
    for body in bodies {
        let r = c
            .post(&url)
            .bearer_auth(KEY)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        assert!(
            (400..500).contains(&status) || status == 200,
            "{status} for {:?}",
            String::from_utf8_lossy(&body[..body.len().min(80)])
        );
    }
    let raw_requests: Vec<&[u8]> = vec![
        b"GARBAGE\r\n\r\n",
        b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\nContent-Length: 2\r\n\r\n{}",
        b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    ];
    for req in raw_requests {
        let out = raw_exchange(gw.port, req);
        let head = String::from_utf8_lossy(&out[..out.len().min(12)]).to_string();
        assert!(
            !head.starts_with("HTTP/1.1 5"),
            "5xx for {:?}: {head}",
            String::from_utf8_lossy(req)
        );
    }
    assert!(gw.is_running(), "gateway died:\n{}", gw.log_text());
    assert!(!gw.log_text().contains("panicked"), "{}", gw.log_text());
    let r = chat(&gw, hello(false)).await;
    assert_eq!(r.status(), 200, "still serving");
    let _ = mock;
}

/// A provider slow to close its response after its last event: the client gets the usage
/// chunk and `[DONE]` as soon as the provider's answer has ended, not when it closes.
#[tokio::test]
async fn a_stream_ends_for_the_client_when_the_answer_ends_not_when_the_provider_closes() {
    let (_mock, gw) = start();
    let mut body = hello(true);
    body["mock"] = json!({"hang": true});
    let mut resp = chat(&gw, body).await;
    assert_eq!(resp.status(), 200);
    let mut got = Vec::new();
    // The mock keeps its response open for 30 s after `[DONE]`.
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Some(chunk) = resp.chunk().await.unwrap() {
            got.extend_from_slice(&chunk);
            if got.ends_with(b"data: [DONE]\n\n") {
                break;
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&got);
    assert!(
        read.is_ok(),
        "the client waited for the provider to close: {text}"
    );
    let events = sse_events(&text);
    assert_eq!(events.last().map(String::as_str), Some("data: [DONE]"));
    assert!(!text.contains("\"error\""), "{text}");
    let usage: Value =
        serde_json::from_str(events[events.len() - 2].trim_start_matches("data: ")).unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert!(usage["usage"]["completion_tokens"].as_u64().unwrap() > 0);
}

/// One HTTP/1.1 exchange on a fresh connection: the head's lines and the body as framed.
fn raw_chat(gw: &Gateway, body: &Value) -> (Vec<String>, Vec<u8>) {
    let body = body.to_string();
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let out = raw_exchange(gw.port, request.as_bytes());
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head");
    let head: Vec<String> = String::from_utf8(out[..split].to_vec())
        .unwrap()
        .split("\r\n")
        .map(|l| l.to_ascii_lowercase())
        .collect();
    (head, out[split + 4..].to_vec())
}

fn header<'a>(head: &'a [String], name: &str) -> Option<&'a str> {
    head.iter()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
}

/// A buffered answer (non-stream, or an upstream error) goes out with its exact length when
/// it is whole before its head is written — one write, not three (issue 12); a stream stays
/// chunked.
#[tokio::test]
async fn whole_answers_carry_their_length_and_streams_stay_chunked() {
    let (_mock, gw) = start();
    let mut error = hello(false);
    error["mock"] = json!({"status": 400});
    for (body, status) in [(hello(false), "200"), (error, "400")] {
        let (head, bytes) = raw_chat(&gw, &body);
        assert!(
            head[0].starts_with(&format!("http/1.1 {status}")),
            "{head:?}"
        );
        assert_eq!(header(&head, "transfer-encoding"), None, "{head:?}");
        let length: usize = header(&head, "content-length").unwrap().parse().unwrap();
        assert_eq!(length, bytes.len(), "{head:?}");
        let answer: Value = serde_json::from_slice(&bytes).unwrap();
        let id = header(&head, "x-generation-id").unwrap();
        if status == "200" {
            assert_eq!(answer["id"].as_str().unwrap().to_ascii_lowercase(), id);
        } else {
            assert_eq!(answer["error"]["metadata"]["status"], 400, "{answer}");
        }
        // The head keeps its order: content type first, as built.
        assert!(
            head[1].starts_with("content-type: application/json"),
            "{head:?}"
        );
    }
    // An answer larger than one read may have its head sent before its end: then it is
    // chunked, and either way framed right.
    let mut huge = hello(false);
    huge["mock"] = json!({"huge": 400_000});
    let (head, bytes) = raw_chat(&gw, &huge);
    let body = match header(&head, "content-length") {
        Some(n) => {
            assert_eq!(n.parse::<usize>().unwrap(), bytes.len());
            bytes
        }
        None => {
            assert_eq!(
                header(&head, "transfer-encoding"),
                Some("chunked"),
                "{head:?}"
            );
            dechunk(&bytes)
        }
    };
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        answer["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .len()
            >= 400_000
    );
    let (head, bytes) = raw_chat(&gw, &hello(true));
    assert_eq!(
        header(&head, "transfer-encoding"),
        Some("chunked"),
        "{head:?}"
    );
    assert_eq!(header(&head, "content-length"), None, "{head:?}");
    assert!(bytes.ends_with(b"0\r\n\r\n"));
    assert!(String::from_utf8_lossy(&bytes).contains("data: [DONE]"));
}

/// A chunked body's payload; panics on bad framing.
fn dechunk(mut wire: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line = wire
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size = usize::from_str_radix(std::str::from_utf8(&wire[..line]).unwrap(), 16).unwrap();
        wire = &wire[line + 2..];
        if size == 0 {
            assert_eq!(wire, b"\r\n");
            return out;
        }
        out.extend_from_slice(&wire[..size]);
        assert_eq!(&wire[size..size + 2], b"\r\n");
        wire = &wire[size + 2..];
    }
}

/// `server.work_stealing: true` (Pingora's default runtime; ours is one runtime per thread,
/// which every other test runs on) serves the same answers, streamed or not, on many
/// connections at once.
#[tokio::test]
async fn the_work_stealing_runtime_serves_too() {
    let mock = MockServer::start_with_key("127.0.0.1:0", UPSTREAM_KEY).unwrap();
    let yaml = single_provider_config(&mock)
        .replace("  threads: 2\n", "  threads: 2\n  work_stealing: true\n");
    assert!(yaml.contains("work_stealing: true"));
    let gw = Gateway::start(&yaml);
    let answers = futures_util::future::join_all((0..16).map(|i| {
        let gw = &gw;
        async move {
            let resp = chat(gw, hello(i % 2 == 0)).await;
            let status = resp.status();
            let text = resp.text().await.unwrap();
            (status, text)
        }
    }))
    .await;
    for (i, (status, text)) in answers.iter().enumerate() {
        assert_eq!(*status, 200, "{text}");
        if i % 2 == 0 {
            assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
        } else {
            let v: Value = serde_json::from_str(text).unwrap();
            assert_eq!(v["model"], "test/model", "{v}");
        }
    }
}
