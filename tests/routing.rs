//! Routing end to end: preferences decide the provider, the default draw follows 1/price²,
//! health checks and breakers steer around dead endpoints, sessions stick.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Three providers on three mocks, all serving `test/model` with different prices and
/// policies.
fn three_providers(a: &MockServer, b: &MockServer, c: &MockServer) -> String {
    format!(
        "{}providers:\n{}    data_collection: allow\n{}    data_collection: deny\n    zdr: true\n{}    data_collection: deny\nmodels:\n  test/model:\n    endpoints:\n      - {{ provider: alpha, model: m-a, price: {{ prompt: 1, completion: 1 }}, quantization: fp8 }}\n      - {{ provider: beta, model: m-b, price: {{ prompt: 2, completion: 2 }}, quantization: fp16 }}\n      - {{ provider: gamma, model: m-c, price: {{ prompt: 4, completion: 4 }}, quantization: bf16 }}\n",
        config_head(),
        provider("alpha", a),
        provider("beta", b),
        provider("gamma", c)
    )
}

async fn served_by(gw: &Gateway, body: Value) -> String {
    let resp = chat(gw, body).await;
    assert_eq!(resp.status(), 200);
    resp.headers()["x-switchyard-provider"]
        .to_str()
        .unwrap()
        .to_string()
}

fn with_provider(prefs: Value) -> Value {
    json!({"model": "test/model", "messages": [{"role": "user", "content": "hi"}], "provider": prefs})
}

#[tokio::test]
async fn each_preference_changes_the_choice() {
    let (a, b, c) = (
        MockServer::start("127.0.0.1:0").unwrap(),
        MockServer::start("127.0.0.1:0").unwrap(),
        MockServer::start("127.0.0.1:0").unwrap(),
    );
    let gw = Gateway::start(&three_providers(&a, &b, &c));
    let cases = [
        (json!({"order": ["gamma", "alpha"]}), "gamma"),
        (json!({"only": ["beta"]}), "beta"),
        (json!({"ignore": ["alpha", "beta"]}), "gamma"),
        (json!({"sort": "price"}), "alpha"),
        (
            json!({"sort": "price", "max_price": {"prompt": 3, "completion": 3}, "ignore": ["alpha"]}),
            "beta",
        ),
        (json!({"max_price": {"prompt": 1}}), "alpha"),
        (json!({"zdr": true}), "beta"),
        (json!({"data_collection": "deny", "sort": "price"}), "beta"),
        (json!({"quantizations": ["bf16"]}), "gamma"),
        // OpenRouter's `exacto` sort has nothing to order by here: taken, not refused.
        (json!({"sort": "exacto", "only": ["beta"]}), "beta"),
        (json!({"sort": {"by": null}, "only": ["gamma"]}), "gamma"),
    ];
    for (prefs, expected) in cases {
        for _ in 0..3 {
            assert_eq!(
                served_by(&gw, with_provider(prefs.clone())).await,
                expected,
                "{prefs}"
            );
        }
    }
    // The :floor variant sorts by price.
    let floor =
        json!({"model": "test/model:floor", "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(served_by(&gw, floor).await, "alpha");
}

/// A key's `only` and `ignore` hold whatever the request's own say: the request's lists are
/// merged with the key's (OpenRouter merges them with the account's), never put in their place.
#[tokio::test]
async fn a_request_cannot_bring_back_a_provider_its_key_excludes() {
    let (a, b, c) = (
        MockServer::start("127.0.0.1:0").unwrap(),
        MockServer::start("127.0.0.1:0").unwrap(),
        MockServer::start("127.0.0.1:0").unwrap(),
    );
    let keys = format!(
        "keys:\n  - name: no-alpha\n    key_sha256: \"{}\"\n    provider: {{ ignore: [alpha] }}\n  - name: alpha-or-beta\n    key_sha256: \"{}\"\n    provider: {{ only: [alpha, beta] }}\n",
        sha256_hex("sk-no-alpha"),
        sha256_hex("sk-alpha-or-beta")
    );
    let gw = Gateway::start(&three_providers(&a, &b, &c).replacen("keys:\n", &keys, 1));
    let ask = |key: &'static str, prefs: Value| {
        client()
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(key)
            .json(&with_provider(prefs))
            .send()
    };
    for i in 0..10 {
        // alpha is the cheapest, drawn four times in five: the key's `ignore` must hold.
        // Each request is its own conversation, so no stickiness.
        let mut body = with_provider(json!({"ignore": ["gamma"]}));
        body["messages"][0]["content"] = json!(format!("question {i}"));
        let resp = client()
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth("sk-no-alpha")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["x-switchyard-provider"], "beta");
    }
    assert_eq!(
        a.request_count(),
        0,
        "a provider the key ignores was sent requests"
    );
    // A request's `only` narrows the key's; it cannot name a provider outside it.
    let resp = ask("sk-alpha-or-beta", json!({"only": ["gamma", "beta"]}))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-switchyard-provider"], "beta");
    let resp = ask("sk-alpha-or-beta", json!({"only": ["gamma"]}))
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(
        c.request_count(),
        0,
        "a provider outside the key's `only` was sent requests"
    );
}

/// `sort: {by, partition: "none"}` sorts the endpoints of the model and its `models`
/// fallbacks together: a cheaper fallback serves before the requested model's endpoint.
#[tokio::test]
async fn a_sort_across_models_serves_the_cheapest_fallback_first() {
    let (a, b) = (
        MockServer::start("127.0.0.1:0").unwrap(),
        MockServer::start("127.0.0.1:0").unwrap(),
    );
    let config = format!(
        "{}providers:\n{}{}models:\n  test/pricey:\n    endpoints:\n      - {{ provider: alpha, model: m-a, price: {{ prompt: 4, completion: 4 }} }}\n  test/cheap:\n    endpoints:\n      - {{ provider: beta, model: m-b, price: {{ prompt: 1, completion: 1 }} }}\n",
        config_head(),
        provider("alpha", &a),
        provider("beta", &b)
    );
    let gw = Gateway::start(&config);
    let ask = |partition: &str| {
        json!({"model": "test/pricey", "models": ["test/cheap"], "messages": [{"role": "user", "content": "hi"}],
               "provider": {"sort": {"by": "price", "partition": partition}}})
    };
    let resp = chat(&gw, ask("none")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-switchyard-provider"], "beta");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["model"], "test/cheap");
    assert_eq!(a.request_count(), 0);
    // Partitioned by model (the default), the requested model comes first.
    assert_eq!(served_by(&gw, ask("model")).await, "alpha");
}

#[tokio::test]
async fn the_default_draw_follows_inverse_price_squared() {
    let (a, b, c) = (
        MockServer::start("127.0.0.1:0").unwrap(),
        MockServer::start("127.0.0.1:0").unwrap(),
        MockServer::start("127.0.0.1:0").unwrap(),
    );
    let gw = Gateway::start(&three_providers(&a, &b, &c));
    let n = 400;
    let mut alpha = 0;
    for i in 0..n {
        // Ignore gamma: two endpoints priced 1 and 2 weigh 1 and 1/4, so alpha leads 80%.
        // Each request is its own conversation, so no stickiness.
        let body = json!({"model": "test/model", "messages": [{"role": "user", "content": format!("question {i}")}],
                          "provider": {"ignore": ["gamma"]}});
        if served_by(&gw, body).await == "alpha" {
            alpha += 1;
        }
    }
    let share = alpha as f64 / n as f64;
    assert!(
        (share - 0.8).abs() < 0.07,
        "alpha share {share} over {n} requests"
    );
}

/// Waits (bounded) until a health check has reached `mock` since now and its verdict has
/// been taken, then forgets the requests `mock` saw. Pingora checks, applies the verdict,
/// then sleeps: a second check since now means the first one's verdict is in force (a fixed
/// wait after the first was not always enough on a loaded machine).
async fn wait_for_a_health_check(mock: &MockServer) {
    mock.clear_requests();
    let deadline = Instant::now() + Duration::from_secs(10);
    let checks = || {
        mock.requests()
            .iter()
            .filter(|r| r.path.ends_with("/models"))
            .count()
    };
    while checks() < 2 {
        assert!(
            Instant::now() < deadline,
            "no health check reached the mock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    mock.clear_requests();
}

/// A provider whose only backend fails its health check is passed over for the next
/// provider, rather than sent traffic it cannot serve.
#[tokio::test]
async fn a_provider_whose_only_backend_is_unhealthy_is_passed_over() {
    let (a, b) = (
        MockServer::start("127.0.0.1:0").unwrap(),
        MockServer::start("127.0.0.1:0").unwrap(),
    );
    let config = format!(
        "{}providers:\n  solo:\n    dialect: openai\n    base_url: \"{}\"\n    health_check: {{ interval: 100ms, path: /models }}\n  backup:\n    dialect: openai\n    base_url: \"{}\"\nmodels:\n  test/model:\n    endpoints:\n      - {{ provider: solo, model: m }}\n      - {{ provider: backup, model: m }}\n",
        config_head(),
        a.base_url(),
        b.base_url()
    );
    let gw = Gateway::start(&config);
    let solo_first = json!({"model": "test/model", "provider": {"order": ["solo", "backup"]},
                            "messages": [{"role": "user", "content": "hi"}]});
    let resp = chat(&gw, solo_first.clone()).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["provider"], "solo");
    a.set_default_fault(Some("status=500"));
    wait_for_a_health_check(&a).await;
    for _ in 0..10 {
        let resp = chat(&gw, solo_first.clone()).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.json::<Value>().await.unwrap()["provider"], "backup");
    }
    let chats_on_a = a
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/chat/completions"))
        .count();
    assert_eq!(chats_on_a, 0, "the unhealthy backend got chat traffic");
}

#[tokio::test]
async fn a_dead_backend_is_skipped_once_the_health_check_notices() {
    let (a, b) = (
        MockServer::start("127.0.0.1:0").unwrap(),
        MockServer::start("127.0.0.1:0").unwrap(),
    );
    let config = format!(
        "{}providers:\n  pool:\n    dialect: openai\n    backends:\n      - {{ base_url: \"{}\", weight: 1 }}\n      - {{ base_url: \"{}\", weight: 1 }}\n    health_check: {{ interval: 100ms, path: /models }}\nmodels:\n  test/model:\n    endpoints:\n      - {{ provider: pool, model: m }}\n",
        config_head(),
        a.base_url(),
        b.base_url()
    );
    let gw = Gateway::start(&config);
    a.set_default_fault(Some("status=500"));
    wait_for_a_health_check(&a).await;
    for _ in 0..20 {
        let resp = chat(
            &gw,
            json!({"model": "test/model", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
        assert_eq!(resp.status(), 200);
    }
    let chats_on_a = a
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/chat/completions"))
        .count();
    assert_eq!(chats_on_a, 0, "the unhealthy backend got chat traffic");
    assert!(
        b.requests()
            .iter()
            .filter(|r| r.path.ends_with("/chat/completions"))
            .count()
            >= 20
    );
}

/// DESIGN §2's `backends` example: the provider's own `base_url` and key serve beside the
/// listed backend, which is weighted 2 against their 1 (they were ignored: the listed
/// backend took everything).
#[tokio::test]
async fn a_providers_own_url_serves_beside_its_weighted_backends() {
    let (own, listed) = (
        MockServer::start_with_key("127.0.0.1:0", "key-own").unwrap(),
        MockServer::start_with_key("127.0.0.1:0", "key-two").unwrap(),
    );
    let config = format!(
        "{}providers:\n  pool:\n    dialect: openai\n    base_url: \"{}\"\n    api_key_env: OWN_KEY\n    backends:\n      - {{ base_url: \"{}\", api_key_env: SECOND_KEY, weight: 2 }}\nmodels:\n  test/model:\n    endpoints:\n      - {{ provider: pool, model: m }}\n",
        config_head(),
        own.base_url(),
        listed.base_url()
    );
    let gw = Gateway::start_with_env(
        &config,
        &[("OWN_KEY", "key-own"), ("SECOND_KEY", "key-two")],
    );
    for _ in 0..90 {
        let r = chat(
            &gw,
            json!({"model": "test/model", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
        assert_eq!(r.status(), 200);
    }
    let (on_own, on_listed) = (own.request_count(), listed.request_count());
    assert_eq!(on_own + on_listed, 90);
    assert!(
        on_own >= 10 && on_listed > on_own,
        "own {on_own}, listed {on_listed}"
    );
}

#[tokio::test]
async fn repeated_failures_open_the_breaker_and_then_every_endpoint_down_is_a_503() {
    let a = MockServer::start("127.0.0.1:0").unwrap();
    let config = format!(
        "{}providers:\n{}models:\n  test/model:\n    endpoints:\n      - {{ provider: alpha, model: m }}\n",
        config_head(),
        provider("alpha", &a)
    );
    let gw = Gateway::start(&config);
    a.set_default_fault(Some("status=500"));
    for _ in 0..3 {
        assert_eq!(
            chat(&gw, json!({"model": "test/model", "messages": []}))
                .await
                .status(),
            502
        );
    }
    let resp = chat(&gw, json!({"model": "test/model", "messages": []})).await;
    assert_eq!(resp.status(), 503);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["type"], "service_unavailable");
    assert_eq!(
        a.request_count(),
        3,
        "an open breaker sends nothing upstream"
    );

    // The endpoints listing shows it.
    let listing = get_json(gw.url("/v1/models/test/model/endpoints"), None).await;
    let ep = &listing["data"]["endpoints"][0];
    assert_eq!(ep["provider_name"], "alpha");
    assert_eq!(ep["status"], -1);
    assert_eq!(ep["healthy"], false);
    assert_eq!(ep["uptime_last_5m"], 0.0);
}

/// One stream from alpha, paced (10 chunks 5 ms apart), so its latency and throughput
/// are measured.
async fn stream_paced_from_alpha(gw: &Gateway) {
    let body = json!({"model": "test/model", "stream": true, "provider": {"only": ["alpha"]},
                      "messages": [{"role": "user", "content": "hi"}], "mock": {"chunk_delay_ms": 5, "chunks": 10}});
    let resp = chat(gw, body).await;
    assert_eq!(resp.status(), 200);
    resp.text().await.unwrap();
}

#[tokio::test]
async fn endpoints_listing_reports_live_latency_and_throughput() {
    let (a, b, c) = (
        MockServer::start("127.0.0.1:0").unwrap(),
        MockServer::start("127.0.0.1:0").unwrap(),
        MockServer::start("127.0.0.1:0").unwrap(),
    );
    let gw = Gateway::start(&three_providers(&a, &b, &c));
    for _ in 0..5 {
        stream_paced_from_alpha(&gw).await;
    }
    let listing = get_json(gw.url("/api/v1/models/test/model/endpoints"), None).await;
    let eps = listing["data"]["endpoints"].as_array().unwrap();
    assert_eq!(eps.len(), 3);
    let alpha = eps.iter().find(|e| e["provider_name"] == "alpha").unwrap();
    assert_eq!(alpha["uptime_last_5m"], 100.0);
    assert_eq!(alpha["requests_last_5m"], 5);
    assert!(alpha["latency_last_30m"]["p50"].as_f64().unwrap() >= 0.0);
    let tps = alpha["throughput_last_30m"]["p50"].as_f64().unwrap();
    assert!(tps > 0.0 && tps < 100_000.0, "{tps}");
    assert_eq!(alpha["pricing"]["prompt"], "0.000001");
    let beta = eps.iter().find(|e| e["provider_name"] == "beta").unwrap();
    assert!(
        beta["latency_last_30m"].is_null(),
        "never used: no statistics"
    );
    let missing = client()
        .get(gw.url("/v1/models/no/such/endpoints"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

/// Throughput is measured on streams only: a non-stream answer arrives whole, and timing it
/// from its first byte to its last made an endpoint that served one look millions of tokens
/// a second fast, first in every `:nitro` or `sort: throughput` plan.
#[tokio::test]
async fn a_non_stream_answer_does_not_make_its_endpoint_the_fastest() {
    let (a, b, c) = (
        MockServer::start("127.0.0.1:0").unwrap(),
        MockServer::start("127.0.0.1:0").unwrap(),
        MockServer::start("127.0.0.1:0").unwrap(),
    );
    let gw = Gateway::start(&three_providers(&a, &b, &c));
    for _ in 0..3 {
        stream_paced_from_alpha(&gw).await;
        assert_eq!(
            served_by(&gw, with_provider(json!({"only": ["beta"]}))).await,
            "beta"
        );
    }
    let listing: Value = client()
        .get(gw.url("/v1/models/test/model/endpoints"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let beta = listing["data"]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["provider_name"] == "beta")
        .unwrap()
        .clone();
    assert_eq!(beta["requests_last_5m"], 3);
    assert!(beta["throughput_last_30m"].is_null(), "{beta}");
    // alpha streamed at a measured pace; beta's speed is unknown, so alpha goes first.
    let nitro =
        json!({"model": "test/model:nitro", "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(served_by(&gw, nitro).await, "alpha");
}

#[tokio::test]
async fn a_session_sticks_to_its_endpoint_and_moves_when_it_dies() {
    let (a, b, c) = (
        MockServer::start("127.0.0.1:0").unwrap(),
        MockServer::start("127.0.0.1:0").unwrap(),
        MockServer::start("127.0.0.1:0").unwrap(),
    );
    let gw = Gateway::start(&three_providers(&a, &b, &c));
    let req = |session: &str| {
        json!({"model": "test/model", "session_id": session, "provider": {"ignore": ["gamma"]},
                                     "messages": [{"role": "user", "content": "hi"}]})
    };
    let first = served_by(&gw, req("conversation-1")).await;
    for _ in 0..15 {
        assert_eq!(
            served_by(&gw, req("conversation-1")).await,
            first,
            "the session moved"
        );
    }
    // The x-session-id header and the conversation's opening are session keys too.
    let by_header = |n: u32| {
        let gw_url = gw.url("/v1/chat/completions");
        async move {
            let r = client().post(gw_url).bearer_auth(KEY).header("x-session-id", "hdr-1")
                .json(&json!({"model": "test/model", "provider": {"ignore": ["gamma"]}, "messages": [{"role": "user", "content": format!("turn {n}")}]}))
                .send().await.unwrap();
            r.headers()["x-switchyard-provider"]
                .to_str()
                .unwrap()
                .to_string()
        }
    };
    let h = by_header(0).await;
    for n in 1..10 {
        assert_eq!(by_header(n).await, h);
    }

    // The sticky provider dies: the request fails over, and the session stays on the new one.
    let (dead, other) = if first == "alpha" {
        (&a, "beta")
    } else {
        (&b, "alpha")
    };
    dead.set_default_fault(Some("status=500"));
    assert_eq!(served_by(&gw, req("conversation-1")).await, other);
    for _ in 0..10 {
        assert_eq!(served_by(&gw, req("conversation-1")).await, other);
    }
}

/// A provider with two keys on one URL (DESIGN's own `backends` example), health-checked,
/// with a metrics listener; `KEY_A` and `KEY_B` are the keys' environment variables.
fn two_keys_on_one_url(mock: &MockServer, metrics_port: u16) -> String {
    config_head().replacen(
        "server:\n",
        &format!("server:\n  metrics_listen: \"127.0.0.1:{metrics_port}\"\n"),
        1,
    ) + &format!(
        "providers:\n  pool:\n    dialect: openai\n    backends:\n      - {{ base_url: \"{0}\", api_key_env: KEY_A }}\n      - {{ base_url: \"{0}\", api_key_env: KEY_B }}\n    health_check: {{ interval: 100ms, path: /models }}\nmodels:\n  test/model:\n    endpoints:\n      - {{ provider: pool, model: m }}\n",
        mock.base_url()
    )
}

/// `switchyard_backend_healthy` for `provider`, as (backend label, value), once `rows`
/// backends show (bounded wait: discovery and the first checks run in the background).
async fn backend_health(metrics_port: u16, provider: &str, rows: usize) -> Vec<(String, String)> {
    let label = format!("provider=\"{provider}\"");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let mut found: Vec<(String, String)> = text
            .lines()
            .filter(|l| l.starts_with("switchyard_backend_healthy{") && l.contains(&label))
            .filter_map(|l| {
                let backend = l.split("backend=\"").nth(1)?.split('"').next()?;
                Some((backend.to_string(), l.rsplit(' ').next()?.to_string()))
            })
            .collect();
        found.sort();
        if found.len() == rows || Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `n` chats, each answered 200.
async fn chats_answered(gw: &Gateway, n: usize) {
    for _ in 0..n {
        let hi = json!({"model": "test/model", "messages": [{"role": "user", "content": "hi"}]});
        assert_eq!(chat(gw, hi).await.status(), 200);
    }
}

fn keys_seen(mock: &MockServer) -> (usize, usize) {
    let chats = mock.requests();
    let with = |key: &str| {
        let bearer = format!("Bearer {key}");
        chats
            .iter()
            .filter(|r| r.path.ends_with("/chat/completions"))
            .filter(|r| r.header("authorization") == Some(bearer.as_str()))
            .count()
    };
    (with("key-a"), with("key-b"))
}

/// Two backends on one URL with different keys are two backends: each key gets its share
/// (Pingora knows a backend by address alone; they used to collapse into the first).
#[tokio::test]
async fn two_keys_on_one_url_share_its_traffic() {
    let mock = MockServer::start("127.0.0.1:0").unwrap();
    let metrics_port = free_port();
    let gw = Gateway::start_with_env(
        &two_keys_on_one_url(&mock, metrics_port),
        &[("KEY_A", "key-a"), ("KEY_B", "key-b")],
    );
    let addr = mock.base_url().split('/').nth(2).unwrap().to_string();
    assert_eq!(
        backend_health(metrics_port, "pool", 2).await,
        vec![
            (format!("0:{addr}"), "1".into()),
            (format!("1:{addr}"), "1".into())
        ]
    );
    mock.clear_requests();
    chats_answered(&gw, 60).await;
    let (a, b) = keys_seen(&mock);
    assert_eq!(a + b, 60);
    // Equal weights: a fair draw puts fewer than 10 of 60 on one key about once in 10^8.
    assert!(a >= 10 && b >= 10, "key-a {a}, key-b {b}");
}

/// Each key on a shared URL is checked with its own credentials: a refused key is taken
/// out of the draw (and shows unhealthy) while the other keeps serving.
#[tokio::test]
async fn a_refused_key_on_a_shared_url_is_passed_over() {
    let mock = MockServer::start_with_key("127.0.0.1:0", "key-a").unwrap();
    let metrics_port = free_port();
    let gw = Gateway::start_with_env(
        &two_keys_on_one_url(&mock, metrics_port),
        &[("KEY_A", "key-a"), ("KEY_B", "key-b")],
    );
    let addr = mock.base_url().split('/').nth(2).unwrap().to_string();
    wait_for_a_health_check(&mock).await;
    assert_eq!(
        backend_health(metrics_port, "pool", 2).await,
        vec![
            (format!("0:{addr}"), "1".into()),
            (format!("1:{addr}"), "0".into())
        ]
    );
    mock.clear_requests();
    chats_answered(&gw, 20).await;
    assert_eq!(keys_seen(&mock), (20, 0));
}

/// A key rotated by reload (the variable's name changed, the length the same) is a new
/// pool: its health checks use the new key, so the backend comes back once the new key is
/// accepted, rather than staying down on the old key's 401s until a restart.
#[tokio::test]
async fn a_key_rotated_by_reload_is_health_checked_with_the_new_key() {
    let mock = MockServer::start_with_key("127.0.0.1:0", "key-b").unwrap();
    let metrics_port = free_port();
    let config = |var: &str| {
        config_head().replacen(
            "server:\n",
            &format!("server:\n  metrics_listen: \"127.0.0.1:{metrics_port}\"\n"),
            1,
        ) + &format!(
            "providers:\n  solo:\n    dialect: openai\n    base_url: \"{}\"\n    api_key_env: {var}\n    health_check: {{ interval: 100ms, path: /models }}\nmodels:\n  test/model:\n    endpoints:\n      - {{ provider: solo, model: m }}\n",
            mock.base_url()
        )
    };
    let gw = Gateway::start_with_env(&config("KEY_A"), &[("KEY_A", "key-a"), ("KEY_B", "key-b")]);
    let addr = mock.base_url().split('/').nth(2).unwrap().to_string();
    wait_for_a_health_check(&mock).await;
    assert_eq!(
        backend_health(metrics_port, "solo", 1).await,
        vec![(format!("0:{addr}"), "0".into())],
        "the refused key's backend is not down"
    );
    gw.write_config(&config("KEY_B"));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let health = backend_health(metrics_port, "solo", 1).await;
        if health == vec![(format!("0:{addr}"), "1".into())] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {health:?} after the reload to the accepted key"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let hi = json!({"model": "test/model", "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(chat(&gw, hi).await.status(), 200);
}
