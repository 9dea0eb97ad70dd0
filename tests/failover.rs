//! Failover: a provider that fails before the first byte is replaced by the next candidate;
//! one that fails after it ends the stream with an error chunk.

mod common;

use common::*;
use serde_json::{json, Value};

/// Two providers on two mocks; `test/model` is served first by `first` (whose upstream model
/// carries the fault knobs) and then by `second`.
fn config(first: &MockServer, second: &MockServer, fault: &str) -> String {
    format!(
        "{}providers:\n{}{}models:\n  test/model:\n    endpoints:\n      - {{ provider: first, model: \"m+{fault}\", price: {{ prompt: 1, completion: 1 }} }}\n      - {{ provider: second, model: m, price: {{ prompt: 2, completion: 2 }} }}\n  test/broken:\n    endpoints:\n      - {{ provider: first, model: \"m+status=503\" }}\n  test/fallback:\n    endpoints:\n      - {{ provider: second, model: fallback-up }}\n  test/plain:\n    endpoints:\n      - {{ provider: first, model: plain }}\n",
        config_head(),
        provider("first", first).replace("first_byte: 3s", "first_byte: 1s"),
        provider("second", second)
    )
}

fn ordered(stream: bool) -> Value {
    json!({"model": "test/model", "stream": stream, "provider": {"order": ["first", "second"]},
           "messages": [{"role": "user", "content": "hi"}]})
}

async fn assert_fails_over(fault: &str) {
    let (a, b) = (
        MockServer::start("127.0.0.1:0").unwrap(),
        MockServer::start("127.0.0.1:0").unwrap(),
    );
    let gw = Gateway::start(&config(&a, &b, fault));
    for stream in [false, true] {
        let resp = chat(&gw, ordered(stream)).await;
        assert_eq!(resp.status(), 200, "{fault} stream={stream}");
        assert_eq!(resp.headers()["x-switchyard-provider"], "second", "{fault}");
        assert_eq!(resp.headers()["x-switchyard-attempts"], "2", "{fault}");
        let log = resp.headers()["x-switchyard-attempt-log"]
            .to_str()
            .unwrap()
            .to_string();
        let entries: Vec<&str> = log.split(", ").collect();
        assert_eq!(entries.len(), 2, "{log}");
        assert!(
            entries[0].starts_with("first;") && entries[1].starts_with("second;200;"),
            "{fault}: {log}"
        );
        let text = resp.text().await.unwrap();
        assert!(text.contains("mock"), "{fault}: {text}");
        if stream {
            assert!(text.ends_with("data: [DONE]\n\n"));
            assert!(!text.contains("\"error\""), "one clean answer: {text}");
        }
    }
    assert_eq!(
        a.request_count(),
        2,
        "{fault}: the first provider was tried each time\n{}",
        gw.log_text()
    );
    assert_eq!(
        b.request_count(),
        2,
        "{fault}: the second provider answered each time"
    );
}

#[tokio::test]
async fn fails_over_on_429() {
    assert_fails_over("status=429").await;
}

#[tokio::test]
async fn fails_over_on_500() {
    assert_fails_over("status=500").await;
}

#[tokio::test]
async fn fails_over_on_503() {
    assert_fails_over("status=503").await;
}

#[tokio::test]
async fn fails_over_on_reset_before_first_byte() {
    assert_fails_over("reset=before").await;
}

#[tokio::test]
async fn fails_over_when_the_provider_stays_silent_past_its_timeout() {
    assert_fails_over("silence").await;
}

#[tokio::test]
async fn fails_over_when_the_connection_is_refused() {
    let b = MockServer::start("127.0.0.1:0").unwrap();
    let dead = format!(
        "  first:\n    dialect: openai\n    base_url: \"http://127.0.0.1:{}/v1\"\n    timeouts: {{ connect: 1s }}\n",
        free_port()
    );
    let config = format!(
        "{}providers:\n{dead}{}models:\n  test/model:\n    endpoints:\n      - {{ provider: first, model: m }}\n      - {{ provider: second, model: m }}\n",
        config_head(),
        provider("second", &b)
    );
    let gw = Gateway::start(&config);
    let resp = chat(&gw, ordered(false)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-switchyard-provider"], "second");
}

#[tokio::test]
async fn falls_back_to_the_next_model_of_models() {
    let (a, b) = (
        MockServer::start("127.0.0.1:0").unwrap(),
        MockServer::start("127.0.0.1:0").unwrap(),
    );
    let gw = Gateway::start(&config(&a, &b, "status=429"));
    let resp = chat(
        &gw,
        json!({"model": "test/broken", "models": ["test/fallback"],
                                "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["model"], "test/fallback");
    assert_eq!(
        b.requests().pop().unwrap().json().unwrap()["model"],
        "fallback-up"
    );
}

#[tokio::test]
async fn the_last_candidates_failure_reaches_the_client_in_openai_shape() {
    let (a, b) = (
        MockServer::start("127.0.0.1:0").unwrap(),
        MockServer::start("127.0.0.1:0").unwrap(),
    );
    let gw = Gateway::start(&config(&a, &b, "status=429"));
    // Only one candidate: its 503 is the answer, as a 502 naming the provider.
    let resp = chat(
        &gw,
        json!({"model": "test/broken", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(resp.status(), 502);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["metadata"]["provider_name"], "first");
    assert_eq!(body["error"]["metadata"]["status"], 503);
    assert!(
        body["error"]["metadata"]["raw"]["error"]["message"].is_string(),
        "{body}"
    );

    // A 429 with no candidate left stays a 429 with the provider's Retry-After.
    a.set_default_fault(Some("status=429,retry_after=7"));
    let resp = chat(
        &gw,
        json!({"model": "test/plain",
                                "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "7");
}

#[tokio::test]
async fn a_stream_that_breaks_after_the_first_byte_ends_with_an_error_chunk() {
    let (a, b) = (
        MockServer::start("127.0.0.1:0").unwrap(),
        MockServer::start("127.0.0.1:0").unwrap(),
    );
    let gw = Gateway::start(&config(&a, &b, "reset=mid+chunks=20"));
    let resp = chat(&gw, ordered(true)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["x-switchyard-provider"],
        "first",
        "no failover once bytes flowed"
    );
    let text = resp.text().await.unwrap();
    let events = sse_events(&text);
    let n = events.len();
    assert!(n >= 4, "{text}");
    assert_eq!(events[n - 1], "data: [DONE]");
    let usage: Value = serde_json::from_str(events[n - 2].trim_start_matches("data: ")).unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(
        usage["usage"]["estimated"], true,
        "the provider never reported usage"
    );
    let error: Value = serde_json::from_str(events[n - 3].trim_start_matches("data: ")).unwrap();
    assert_eq!(error["choices"][0]["finish_reason"], "error");
    assert!(error["error"]["message"].is_string());
    assert_eq!(b.request_count(), 0);
}

#[tokio::test]
async fn fails_over_with_a_body_larger_than_pingoras_retry_buffer() {
    let (a, b) = (
        MockServer::start("127.0.0.1:0").unwrap(),
        MockServer::start("127.0.0.1:0").unwrap(),
    );
    let gw = Gateway::start(&config(&a, &b, "status=503"));
    let long = "token ".repeat(50_000); // ~300 KB, far over the 64 KiB retry buffer
    let resp = chat(
        &gw,
        json!({"model": "test/model", "provider": {"order": ["first", "second"]},
                                "messages": [{"role": "user", "content": long}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-switchyard-provider"], "second");
    for mock in [&a, &b] {
        let seen = mock.requests().pop().unwrap().json().unwrap();
        assert_eq!(
            seen["messages"][0]["content"].as_str().unwrap().len(),
            long.len(),
            "each attempt sent the whole body"
        );
    }
}

/// A request one candidate's dialect cannot express (a system prompt alone: Anthropic's API
/// needs a user turn) goes to the next candidate, whether another provider of the model or a
/// `models` fallback, instead of a 400 for whichever endpoint came first.
#[tokio::test]
async fn a_request_one_dialect_cannot_express_goes_to_the_next_candidate() {
    let (a, b) = (
        MockServer::start("127.0.0.1:0").unwrap(),
        MockServer::start("127.0.0.1:0").unwrap(),
    );
    let config = format!(
        "{}providers:\n  claude:\n    dialect: anthropic\n    base_url: \"{}\"\n    api_key_env: UPSTREAM_KEY\n{}models:\n  test/mixed:\n    endpoints:\n      - {{ provider: claude, model: claude-test }}\n      - {{ provider: second, model: m }}\n  test/claude:\n    endpoints:\n      - {{ provider: claude, model: claude-test }}\n  test/fallback:\n    endpoints:\n      - {{ provider: second, model: fallback-up }}\n",
        config_head(),
        a.base_url(),
        provider("second", &b)
    );
    let gw = Gateway::start(&config);
    let system_only = json!([{"role": "system", "content": "Say hello."}]);
    let resp = chat(
        &gw,
        json!({"model": "test/mixed", "provider": {"order": ["claude", "second"]}, "messages": system_only}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-switchyard-provider"], "second");
    assert_eq!(resp.headers()["x-switchyard-attempts"], "1");
    let resp = chat(
        &gw,
        json!({"model": "test/claude", "models": ["test/fallback"], "messages": system_only}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["model"], "test/fallback");
    assert_eq!(a.request_count(), 0, "nothing was sent to Anthropic");
    // With no other candidate, it is still the client's error.
    let resp = chat(
        &gw,
        json!({"model": "test/claude", "messages": system_only}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["param"], "messages", "{body}");
}

/// A failed attempt counts against its endpoint as the request moves on, not when the answer
/// that followed it is complete: while the streams that failed over are still running, the
/// next request meets the breaker they opened and goes straight to the second provider
/// instead of waiting out the dead one's timeout too.
#[tokio::test]
async fn a_failover_opens_the_breaker_before_the_stream_that_followed_it_ends() {
    let (a, b) = (
        MockServer::start("127.0.0.1:0").unwrap(),
        MockServer::start("127.0.0.1:0").unwrap(),
    );
    let gw = Gateway::start(&config(&a, &b, "silence"));
    let slow_stream = json!({"model": "test/model", "stream": true, "provider": {"order": ["first", "second"]},
                             "messages": [{"role": "user", "content": "hi"}], "mock": {"chunk_delay_ms": 400, "chunks": 10}});
    let streams: Vec<_> = (0..3)
        .map(|_| {
            let url = gw.url("/v1/chat/completions");
            let body = slow_stream.clone();
            tokio::spawn(async move {
                let resp = client()
                    .post(url)
                    .bearer_auth(KEY)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.headers()["x-switchyard-attempts"], "2");
                resp.text().await.unwrap()
            })
        })
        .collect();
    // The three have failed over (after 3 s: Pingora's one read timeout is the longer of
    // first_byte and idle) and are streaming for about 4 s more.
    tokio::time::sleep(std::time::Duration::from_millis(3600)).await;
    let resp = chat(&gw, ordered(false)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-switchyard-provider"], "second");
    assert_eq!(
        resp.headers()["x-switchyard-attempts"],
        "1",
        "the breaker the three failures opened was not met"
    );
    for s in streams {
        assert!(s.await.unwrap().ends_with("data: [DONE]\n\n"));
    }
}
