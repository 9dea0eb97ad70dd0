//! Budgets and rate limits end to end: 402 and 429 before any upstream call, with their
//! headers; concurrent requests never overspend by more than one reservation.

mod common;

use common::*;
use serde_json::{json, Value};

/// A config with one priced model and a key `sk-limited-key` carrying `key_extra`.
fn config(mock: &MockServer, key_extra: &str) -> String {
    format!(
        "server:\n  listen: [\"{{listen}}\"]\n  threads: 2\n  grace_period: 1s\nkeys:\n  - name: limited\n    key_sha256: \"{}\"\n{key_extra}providers:\n{}models:\n  test/model:\n    max_output: 100\n    endpoints:\n      - {{ provider: p, model: m, price: {{ prompt: 1000, completion: 1000 }} }}\n",
        sha256_hex("sk-limited-key"),
        provider("p", mock)
    )
}

async fn call(gw: &Gateway, max_tokens: u64) -> reqwest::Response {
    client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("sk-limited-key")
        .json(&json!({"model": "test/model", "max_tokens": max_tokens, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn requests_per_minute_answer_429_with_retry_after_and_ratelimit_headers() {
    let mock = MockServer::start("127.0.0.1:0").unwrap();
    let gw = Gateway::start(&config(&mock, "    rpm: 3\n"));
    for expected_remaining in [2, 1, 0] {
        let r = call(&gw, 10).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-ratelimit-limit"], "3");
        assert_eq!(
            r.headers()["x-ratelimit-remaining"],
            expected_remaining.to_string().as_str()
        );
    }
    let r = call(&gw, 10).await;
    assert_eq!(r.status(), 429);
    let retry_after: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(r.headers()["x-ratelimit-limit"], "3");
    assert_eq!(r.headers()["x-ratelimit-remaining"], "0");
    assert!(r.headers()["x-ratelimit-reset"]
        .to_str()
        .unwrap()
        .parse::<u64>()
        .is_ok());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert_eq!(
        mock.request_count(),
        3,
        "the refused request never reached the provider"
    );
}

#[tokio::test]
async fn an_exhausted_budget_is_a_402_before_any_upstream_call() {
    let mock = MockServer::start("127.0.0.1:0").unwrap();
    // $1000/M tokens: each small request costs about a cent; the budget is two cents.
    let gw = Gateway::start(&config(
        &mock,
        "    limit_usd: 0.02\n    limit_reset: daily\n",
    ));
    let mut spent = 0.0;
    let mut answered = 0;
    loop {
        let r = call(&gw, 5).await;
        if r.status() == 402 {
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"]["type"], "insufficient_quota");
            break;
        }
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        spent += body["usage"]["cost"].as_f64().unwrap();
        answered += 1;
        assert!(answered < 100, "the budget never ran out");
    }
    assert_eq!(mock.request_count(), answered);
    assert!(
        spent >= 0.02,
        "requests were refused before the budget was used: {spent}"
    );

    let key: Value = client()
        .get(gw.url("/v1/key"))
        .bearer_auth("sk-limited-key")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let data = &key["data"];
    assert_eq!(data["label"], "limited");
    assert_eq!(data["limit"], 0.02);
    assert_eq!(data["limit_reset"], "daily");
    assert!(
        (data["usage_daily"].as_f64().unwrap() - spent).abs() < 1e-9,
        "{data}"
    );
    assert_eq!(data["limit_remaining"], 0.0);
}

#[tokio::test]
async fn concurrent_requests_never_settle_above_the_limit_plus_one_reservation() {
    let mock = MockServer::start("127.0.0.1:0").unwrap();
    let gw = Gateway::start(&config(&mock, "    limit_usd: 0.05\n"));
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let url = gw.url("/v1/chat/completions");
            tokio::spawn(async move {
                let r = client()
                    .post(url)
                    .bearer_auth("sk-limited-key")
                    .json(&json!({"model": "test/model", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}],
                                  "mock": {"delay_ms": 20}}))
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let cost = if status == 200 { r.json::<Value>().await.unwrap()["usage"]["cost"].as_f64().unwrap() } else { 0.0 };
                (status, cost)
            })
        })
        .collect();
    let mut spent = 0.0;
    let (mut ok, mut refused) = (0, 0);
    for t in tasks {
        let (status, cost) = t.await.unwrap();
        match status {
            200 => ok += 1,
            402 => refused += 1,
            other => panic!("unexpected status {other} ({ok} answered, {refused} refused so far)"),
        }
        spent += cost;
    }
    // One reservation: (prompt estimate + 10 output tokens) at $1000/M. The body is ~120 bytes
    // ≈ 30 prompt tokens: 40 tokens ≈ $0.04.
    let one_reservation = 0.045;
    assert!(
        spent <= 0.05 + one_reservation,
        "spent {spent} with {ok} answered"
    );
    assert!(refused > 0 && ok > 0, "{ok} answered, {refused} refused");
    // A request settles just after its last byte reaches the client: wait (bounded) for the
    // last settlements before reading the key.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let key = loop {
        let key: Value = client()
            .get(gw.url("/v1/key"))
            .bearer_auth("sk-limited-key")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if key["data"]["reserved"] == 0.0 || std::time::Instant::now() > deadline {
            break key;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(
        key["data"]["reserved"], 0.0,
        "every reservation was settled"
    );
    assert!(
        (key["data"]["usage"].as_f64().unwrap() - spent).abs() < 1e-9,
        "the key's usage is what responses charged"
    );
}

/// `n` answers may each be `max_tokens` long: the reservation holds all of them, so a request
/// asking for eight cannot leave the budget open to others while it runs. It held one.
#[tokio::test]
async fn a_request_for_n_answers_reserves_n_times_its_output() {
    let mock = MockServer::start("127.0.0.1:0").unwrap();
    // $1000/M tokens: a tenth of a cent a token; 8 answers of 100 tokens are $0.80.
    let gw = Gateway::start(&config(&mock, "    limit_usd: 0.5\n"));
    let url = gw.url("/v1/chat/completions");
    let eight = tokio::spawn(async move {
        client()
            .post(url)
            .bearer_auth("sk-limited-key")
            .json(&json!({"model": "test/model", "max_tokens": 100, "n": 8,
                          "messages": [{"role": "user", "content": "hi"}], "mock": {"delay_ms": 2000}}))
            .send()
            .await
            .unwrap()
            .status()
    });
    let key = |gw: &Gateway| {
        let url = gw.url("/v1/key");
        async move { get_json(url, Some("sk-limited-key")).await["data"].clone() }
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let held = loop {
        let held = key(&gw).await["reserved"].as_f64().unwrap();
        if held > 0.0 || std::time::Instant::now() > deadline {
            break held;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(held >= 0.8, "held ${held} for 8 answers of 100 tokens");
    let r = call(&gw, 5).await;
    assert_eq!(
        r.status(),
        402,
        "the budget is held by the request in flight"
    );
    assert_eq!(eight.await.unwrap(), 200);
}

#[tokio::test]
async fn the_key_endpoint_needs_a_valid_key() {
    let mock = MockServer::start("127.0.0.1:0").unwrap();
    let gw = Gateway::start(&config(&mock, "    rpm: 60\n    tpm: 100000\n"));
    let r = client()
        .get(gw.url("/api/v1/key"))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let key: Value = client()
        .get(gw.url("/api/v1/key"))
        .bearer_auth("sk-limited-key")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(key["data"]["rate_limit"]["requests"], 60);
    assert_eq!(key["data"]["rate_limit"]["tokens"], 100000);
    assert_eq!(key["data"]["limit"], Value::Null);
    assert_eq!(key["data"]["usage"], 0.0);
}
