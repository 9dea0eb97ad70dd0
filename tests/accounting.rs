//! The ledger end to end: generation records for every request (streams, cancellations,
//! estimates), the admin key API, and nothing lost at shutdown.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use switchyard::ledger::{block_on, Ledger};

fn config(mock: &MockServer, admin_port: u16) -> String {
    format!(
        "server:\n  listen: [\"{{listen}}\"]\n  admin_listen: \"127.0.0.1:{admin_port}\"\n  admin_token_env: ADMIN_TOKEN\n  threads: 2\n  grace_period: 3s\nkeys:\n  - name: tester\n    key_sha256: \"{{key_sha256}}\"\n  - name: other\n    key_sha256: \"{}\"\nproviders:\n{}models:\n  test/model:\n    endpoints:\n      - {{ provider: p1, model: m, price: {{ prompt: 2, completion: 4, cached_prompt: 1 }} }}\n",
        sha256_hex("sk-other"),
        provider("p1", mock)
    )
}

async fn generation(gw: &Gateway, id: &str, key: &str) -> reqwest::Response {
    client()
        .get(gw.url(&format!("/api/v1/generation?id={id}")))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn every_request_leaves_a_record_with_the_usage_and_cost_it_was_charged() {
    let mock = MockServer::start("127.0.0.1:0").unwrap();
    let gw = Gateway::start_with_env(&config(&mock, free_port()), &[("ADMIN_TOKEN", "adm")]);
    // Non-stream, with cached tokens reported by the provider.
    let r = chat(&gw, json!({"model": "test/model", "messages": [{"role": "user", "content": "hi"}],
                             "mock": {"usage_prompt": 100, "usage_cached": 40, "usage_completion": 10}})).await;
    let id = r.headers()["x-generation-id"].to_str().unwrap().to_string();
    let body: Value = r.json().await.unwrap();
    let cost = body["usage"]["cost"].as_f64().unwrap();
    // 60 fresh × $2/M + 40 cached × $1/M + 10 × $4/M
    assert!(
        (cost - (60.0 * 2.0 + 40.0 + 40.0) / 1e6).abs() < 1e-12,
        "{cost}"
    );
    let rec: Value = generation(&gw, &id, KEY).await.json().await.unwrap();
    let d = &rec["data"];
    assert_eq!(d["id"], id.as_str());
    assert_eq!(d["model"], "test/model");
    assert_eq!(d["provider_name"], "p1");
    assert_eq!(d["tokens_prompt"], 100);
    assert_eq!(d["tokens_completion"], 10);
    assert_eq!(d["native_tokens_cached"], 40);
    assert!((d["total_cost"].as_f64().unwrap() - cost).abs() < 1e-15);
    assert_eq!(d["streamed"], false);
    assert_eq!(d["cancelled"], false);
    assert_eq!(d["estimated"], false);
    assert_eq!(d["finish_reason"], "stop");
    assert_eq!(d["attempts"].as_array().unwrap().len(), 1);

    // Another key cannot read it.
    assert_eq!(generation(&gw, &id, "sk-other").await.status(), 404);
    assert_eq!(generation(&gw, "gen-nope", KEY).await.status(), 404);

    // A stream whose provider reports nothing is estimated, and says so.
    let r = chat(&gw, json!({"model": "test/model", "stream": true, "messages": [{"role": "user", "content": "hi"}],
                             "mock": {"no_usage": true, "chunks": 12}})).await;
    let id = r.headers()["x-generation-id"].to_str().unwrap().to_string();
    let text = r.text().await.unwrap();
    let events = sse_events(&text);
    let tail: Value =
        serde_json::from_str(events[events.len() - 2].trim_start_matches("data: ")).unwrap();
    assert_eq!(tail["usage"]["estimated"], true);
    assert_eq!(
        tail["usage"]["completion_tokens"], 12,
        "one token per streamed delta"
    );
    let rec: Value = generation(&gw, &id, KEY).await.json().await.unwrap();
    assert_eq!(rec["data"]["estimated"], true);
    assert_eq!(rec["data"]["streamed"], true);
    assert_eq!(rec["data"]["tokens_completion"], 12);
}

async fn key_usage(gw: &Gateway) -> f64 {
    let key: Value = client()
        .get(gw.url("/v1/key"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    key["data"]["usage"].as_f64().unwrap()
}

/// A static key taken out of the config, the gateway restarted, then the key put back by a
/// reload: its spend so far is read from the ledger, as at startup, not begun again at 0
/// (which would let it spend its whole budget once more).
#[tokio::test]
async fn a_key_put_back_by_reload_keeps_its_spend() {
    let mock = MockServer::start("127.0.0.1:0").unwrap();
    let ledger_dir = std::env::temp_dir().join(format!(
        "switchyard-test-readd-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&ledger_dir).unwrap();
    let with_key = config(&mock, free_port())
        + &format!(
            "storage:\n  database_url: \"sqlite://{}/ledger.db\"\n",
            ledger_dir.display()
        );
    let hi = json!({"model": "test/model", "messages": [{"role": "user", "content": "hi"}]});
    let spent = {
        let mut gw = Gateway::start_with_env(&with_key, &[("ADMIN_TOKEN", "adm")]);
        assert_eq!(chat(&gw, hi.clone()).await.status(), 200);
        let spent = key_usage(&gw).await;
        assert!(spent > 0.0);
        gw.signal("TERM");
        assert!(
            gw.wait_exit(Duration::from_secs(10)).is_some(),
            "no clean stop"
        );
        spent
    };
    let tester = "  - name: tester\n    key_sha256: \"{key_sha256}\"\n";
    assert!(with_key.contains(tester));
    let gw = Gateway::start_with_env(&with_key.replace(tester, ""), &[("ADMIN_TOKEN", "adm")]);
    assert_eq!(chat(&gw, hi).await.status(), 401);
    gw.write_config(&with_key);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = client()
            .get(gw.url("/v1/key"))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            let usage = r.json::<Value>().await.unwrap()["data"]["usage"].clone();
            assert_eq!(usage.as_f64(), Some(spent), "the spend before the restart");
            break;
        }
        assert!(Instant::now() < deadline, "the key did not come back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = std::fs::remove_dir_all(&ledger_dir);
}

/// The cost in a stream's usage chunk (the one before `[DONE]`).
fn streamed_cost(text: &str) -> f64 {
    let events = sse_events(text);
    let tail: Value =
        serde_json::from_str(events[events.len() - 2].trim_start_matches("data: ")).unwrap();
    tail["usage"]["cost"].as_f64().unwrap()
}

/// A client that has read its answer finds its record, and its key charged, at once: both
/// happen as the answer completes, before its last bytes go out, not when the request is
/// torn down later.
#[tokio::test]
async fn the_record_and_the_charge_are_there_as_soon_as_the_answer_has_been_read() {
    let mock = MockServer::start("127.0.0.1:0").unwrap();
    let gw = Gateway::start_with_env(&config(&mock, free_port()), &[("ADMIN_TOKEN", "adm")]);
    // A provider that keeps its response open for 30 s after `[DONE]`: the client has the
    // whole answer long before the request ends.
    let mut r = chat(&gw, json!({"model": "test/model", "stream": true, "messages": [{"role": "user", "content": "hi"}],
                                 "mock": {"hang": true, "chunks": 5}})).await;
    let id = r.headers()["x-generation-id"].to_str().unwrap().to_string();
    let mut got = Vec::new();
    while !got.ends_with(b"data: [DONE]\n\n") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), r.chunk())
            .await
            .expect("the answer ends at [DONE]")
            .unwrap()
            .expect("the stream ended before [DONE]");
        got.extend_from_slice(&chunk);
    }
    let rec = generation(&gw, &id, KEY).await;
    assert_eq!(
        rec.status(),
        200,
        "no record for a stream the client has read"
    );
    let d = rec.json::<Value>().await.unwrap()["data"].clone();
    assert_eq!(d["streamed"], true, "{d}");
    assert_eq!(d["cancelled"], false, "{d}");
    assert_eq!(d["tokens_completion"], 5, "{d}");
    assert_eq!(d["status"], 200, "{d}");
    assert_eq!(d["attempts"][0]["outcome"], "success", "{d}");
    let mut charged = streamed_cost(&String::from_utf8_lossy(&got));
    assert!(charged > 0.0);
    assert!((key_usage(&gw).await - charged).abs() < 1e-12);
    drop(r);

    // Answers and errors read to their end, each looked up at once, many times over (the
    // window this closes is narrow for a provider that closes promptly).
    for round in 0..15 {
        let r = chat(
            &gw,
            json!({"model": "test/model", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
        let id = r.headers()["x-generation-id"].to_str().unwrap().to_string();
        charged += r.json::<Value>().await.unwrap()["usage"]["cost"]
            .as_f64()
            .unwrap();
        let rec = generation(&gw, &id, KEY).await;
        assert_eq!(rec.status(), 200, "round {round}: no record for an answer");
        assert_eq!(rec.json::<Value>().await.unwrap()["data"]["status"], 200);
        assert!(
            (key_usage(&gw).await - charged).abs() < 1e-12,
            "round {round}"
        );

        let r = chat(&gw, json!({"model": "test/model", "stream": true, "messages": [{"role": "user", "content": "hi"}]})).await;
        let id = r.headers()["x-generation-id"].to_str().unwrap().to_string();
        charged += streamed_cost(&r.text().await.unwrap());
        let rec = generation(&gw, &id, KEY).await;
        assert_eq!(rec.status(), 200, "round {round}: no record for a stream");
        assert!(
            (key_usage(&gw).await - charged).abs() < 1e-12,
            "round {round}"
        );

        let r = chat(
            &gw,
            json!({"model": "test/model", "messages": [{"role": "user", "content": "hi"}],
                                 "mock": {"status": 503}}),
        )
        .await;
        let status = r.status().as_u16();
        assert!(status >= 500, "{status}");
        let id = r.headers()["x-generation-id"].to_str().unwrap().to_string();
        r.bytes().await.unwrap();
        let rec = generation(&gw, &id, KEY).await;
        assert_eq!(rec.status(), 200, "round {round}: no record for an error");
        let d = rec.json::<Value>().await.unwrap()["data"].clone();
        assert_eq!(d["status"], status, "{d}");
        assert_eq!(d["attempts"][0]["outcome"], "server_error", "{d}");
        assert!(d["error"].is_string(), "{d}");
    }
}

#[tokio::test]
async fn a_client_that_leaves_mid_stream_leaves_a_cancelled_record_charged_for_what_was_generated()
{
    let mock = MockServer::start("127.0.0.1:0").unwrap();
    let gw = Gateway::start_with_env(&config(&mock, free_port()), &[("ADMIN_TOKEN", "adm")]);
    let r = chat(&gw, json!({"model": "test/model", "stream": true, "messages": [{"role": "user", "content": "long"}],
                             "mock": {"chunks": 200, "chunk_delay_ms": 20}})).await;
    let id = r.headers()["x-generation-id"].to_str().unwrap().to_string();
    let mut stream = r.bytes_stream();
    use futures_util::StreamExt;
    let mut got = 0;
    while got < 2000 {
        got += stream.next().await.unwrap().unwrap().len();
    }
    drop(stream); // the client goes away
    let deadline = Instant::now() + Duration::from_secs(10);
    let rec = loop {
        let r = generation(&gw, &id, KEY).await;
        if r.status() == 200 {
            break r.json::<Value>().await.unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "no record for the cancelled stream"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let d = &rec["data"];
    assert_eq!(d["cancelled"], true, "{d}");
    let completion = d["tokens_completion"].as_u64().unwrap();
    assert!(
        completion > 0 && completion < 200,
        "charged for what was generated: {completion}"
    );
    assert!(d["total_cost"].as_f64().unwrap() > 0.0);
    // The provider's stream was cut too, long before its 4 seconds.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!((key_usage(&gw).await - d["total_cost"].as_f64().unwrap()).abs() < 1e-12);
}

/// A reasoning model's stream cut while it thinks (DeepSeek, vLLM, xAI stream the thinking as
/// `reasoning_content`): the provider's usage never came, so the completion is estimated from
/// what was relayed, and the thinking relayed is part of it. It was billed 0 output tokens.
#[tokio::test]
async fn a_stream_cut_while_the_model_thinks_is_billed_for_the_thinking_relayed() {
    let mock = MockServer::start("127.0.0.1:0").unwrap();
    let gw = Gateway::start_with_env(&config(&mock, free_port()), &[("ADMIN_TOKEN", "adm")]);
    let r = chat(&gw, json!({"model": "test/model", "stream": true, "messages": [{"role": "user", "content": "think"}],
                             "mock": {"reasoning_deltas": 40, "chunks": 2, "reset": "mid"}})).await;
    assert_eq!(r.status(), 200);
    let id = r.headers()["x-generation-id"].to_str().unwrap().to_string();
    let text = r.text().await.unwrap();
    let thought = sse_events(&text)
        .iter()
        .filter(|e| e.contains(r#""reasoning_content":"hmm "#))
        .count() as u64;
    assert!(thought >= 10, "{text}");
    let events = sse_events(&text);
    let tail: Value =
        serde_json::from_str(events[events.len() - 2].trim_start_matches("data: ")).unwrap();
    let usage = &tail["usage"];
    assert_eq!(usage["estimated"], true, "{usage}");
    assert!(
        usage["completion_tokens"].as_u64().unwrap() >= thought,
        "{usage} for {thought} thinking deltas relayed"
    );
    let d = generation_data(&gw, &id).await;
    assert!(d["tokens_completion"].as_u64().unwrap() >= thought, "{d}");
    assert_eq!(d["total_cost"], usage["cost"], "{d}");
}

/// A provider that reports no usage answers with a tool call (`content: null`): the estimate
/// counts the call it generated, as a stream's estimate counts its argument deltas. It was
/// estimated at no output, and charged for the prompt alone.
#[tokio::test]
async fn an_unreported_tool_call_answer_is_estimated_from_the_call() {
    let mock = MockServer::start("127.0.0.1:0").unwrap();
    let gw = Gateway::start_with_env(&config(&mock, free_port()), &[("ADMIN_TOKEN", "adm")]);
    let r = chat(&gw, json!({"model": "test/model", "messages": [{"role": "user", "content": "weather?"}],
                             "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
                             "mock": {"tool_call": true, "no_usage": true}})).await;
    assert_eq!(r.status(), 200);
    let id = r.headers()["x-generation-id"].to_str().unwrap().to_string();
    let body: Value = r.json().await.unwrap();
    let call = &body["choices"][0]["message"]["tool_calls"][0]["function"];
    let generated =
        call["name"].as_str().unwrap().len() + call["arguments"].as_str().unwrap().len();
    let usage = &body["usage"];
    assert_eq!(usage["estimated"], true, "{body}");
    assert_eq!(
        usage["completion_tokens"].as_u64().unwrap(),
        (generated as u64).div_ceil(4),
        "four bytes a token of {call}"
    );
    let d = generation_data(&gw, &id).await;
    assert_eq!(d["tokens_completion"], usage["completion_tokens"], "{d}");
    assert_eq!(d["total_cost"], usage["cost"], "{d}");
}

#[tokio::test]
async fn shutdown_loses_no_queued_record() {
    let mock = MockServer::start("127.0.0.1:0").unwrap();
    let mut gw = Gateway::start_with_env(&config(&mock, free_port()), &[("ADMIN_TOKEN", "adm")]);
    let mut ids = Vec::new();
    for i in 0..60 {
        let r = chat(&gw, json!({"model": "test/model", "stream": i % 2 == 0, "messages": [{"role": "user", "content": "hi"}]})).await;
        ids.push(r.headers()["x-generation-id"].to_str().unwrap().to_string());
        r.text().await.unwrap();
    }
    gw.signal("TERM");
    assert!(gw.wait_exit(Duration::from_secs(20)).is_some());
    assert!(
        gw.log_text().contains("ledger flushed"),
        "{}",
        gw.log_text()
    );
    let ledger = Ledger::open(&gw.ledger_url()).unwrap();
    for id in &ids {
        let rec = block_on(ledger.get_generation(id)).unwrap();
        assert!(rec.is_some(), "record {id} was lost");
    }
}

#[tokio::test]
async fn keys_created_through_the_admin_api_work_and_round_trip() {
    let mock = MockServer::start("127.0.0.1:0").unwrap();
    let admin_port = free_port();
    let gw = Gateway::start_with_env(&config(&mock, admin_port), &[("ADMIN_TOKEN", "adm")]);
    let admin = |path: &str| format!("http://127.0.0.1:{admin_port}{path}");
    let c = client();

    assert_eq!(c.get(admin("/v1/keys")).send().await.unwrap().status(), 401);
    assert_eq!(
        c.post(admin("/v1/keys"))
            .bearer_auth("adm")
            .json(&json!({}))
            .send()
            .await
            .unwrap()
            .status(),
        400
    );

    let r = c.post(admin("/v1/keys")).bearer_auth("adm")
        .json(&json!({"name": "ci-bot", "limit": 5, "limit_reset": "monthly", "rpm": 100, "allowed_models": ["test/*"]}))
        .send().await.unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let secret = created["key"].as_str().unwrap().to_string();
    let hash = created["data"]["hash"].as_str().unwrap().to_string();
    assert_eq!(
        hash,
        sha256_hex(&secret),
        "the hash names the key; the secret is not stored"
    );
    assert_eq!(created["data"]["limit"], 5.0);
    assert_eq!(created["data"]["limit_reset"], "monthly");

    // The new key serves requests at once.
    let r = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(&secret)
        .json(&json!({"model": "test/model", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Listing and getting never show the secret again.
    let list = c
        .get(admin("/v1/keys"))
        .bearer_auth("adm")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(list.contains(&hash) && !list.contains(&secret));
    let got: Value = c
        .get(admin(&format!("/v1/keys/{hash}")))
        .bearer_auth("adm")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["data"]["name"], "ci-bot");
    assert!(
        got["data"]["usage"].as_f64().unwrap() > 0.0,
        "spend shows on the key"
    );

    // The operator's settings are checked: a misspelt preference (which would leave the
    // filter off without a word) and a rate limit of 0 are refused, and change nothing.
    for bad in [
        json!({"provider": {"data_colection": "deny"}}),
        json!({"rpm": 0}),
        json!({"limit": -1}),
    ] {
        let r = c
            .patch(admin(&format!("/v1/keys/{hash}")))
            .bearer_auth("adm")
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        let body: Value = r.json().await.unwrap();
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            ["data_colection", "positive", "non-negative"]
                .iter()
                .any(|m| message.contains(m)),
            "{body}"
        );
    }

    // Patch: disable it.
    let r = c
        .patch(admin(&format!("/v1/keys/{hash}")))
        .bearer_auth("adm")
        .json(&json!({"disabled": true, "limit": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let patched: Value = r.json().await.unwrap();
    assert_eq!(patched["data"]["disabled"], true);
    assert_eq!(patched["data"]["limit"], Value::Null);
    let r = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(&secret)
        .json(&json!({"model": "test/model", "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Delete.
    assert_eq!(
        c.delete(admin(&format!("/v1/keys/{hash}")))
            .bearer_auth("adm")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        c.get(admin(&format!("/v1/keys/{hash}")))
            .bearer_auth("adm")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        c.delete(admin(&format!("/v1/keys/{hash}")))
            .bearer_auth("adm")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

/// OpenRouter's key list pages with `offset` (a client asks again until a page is empty)
/// and can leave disabled keys out with `include_disabled=false`.
#[tokio::test]
async fn the_key_list_honours_offset_and_include_disabled() {
    let mock = MockServer::start("127.0.0.1:0").unwrap();
    let admin_port = free_port();
    let _gw = Gateway::start_with_env(&config(&mock, admin_port), &[("ADMIN_TOKEN", "adm")]);
    let admin = |path: &str| format!("http://127.0.0.1:{admin_port}{path}");
    let c = client();
    let mut hashes = Vec::new();
    for name in ["first", "second", "third"] {
        let r = c
            .post(admin("/v1/keys"))
            .bearer_auth("adm")
            .json(&json!({ "name": name }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let created: Value = r.json().await.unwrap();
        hashes.push(created["data"]["hash"].as_str().unwrap().to_string());
    }
    let r = c
        .patch(admin(&format!("/api/v1/keys/{}", hashes[1])))
        .bearer_auth("adm")
        .json(&json!({ "disabled": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let names = |query: &'static str| {
        let c = c.clone();
        let url = admin(&format!("/api/v1/keys{query}"));
        async move {
            let r = c.get(url).bearer_auth("adm").send().await.unwrap();
            assert_eq!(r.status(), 200, "{query}");
            let body: Value = r.json().await.unwrap();
            body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["name"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(names("").await, ["first", "second", "third"]);
    assert_eq!(names("?offset=0").await, ["first", "second", "third"]);
    assert_eq!(names("?offset=2").await, ["third"]);
    assert!(names("?offset=3").await.is_empty());
    assert_eq!(names("?include_disabled=false").await, ["first", "third"]);
    assert_eq!(names("?include_disabled=false&offset=1").await, ["third"]);
    assert_eq!(names("?include_disabled=true").await.len(), 3);
    for bad in ["?offset=-1", "?offset=x", "?include_disabled=maybe"] {
        let r = c
            .get(admin(&format!("/v1/keys{bad}")))
            .bearer_auth("adm")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
    }
}

#[tokio::test]
async fn budgets_survive_a_restart() {
    let mock = MockServer::start("127.0.0.1:0").unwrap();
    let shared = std::env::temp_dir().join(format!("switchyard-restart-{}", std::process::id()));
    std::fs::create_dir_all(&shared).unwrap();
    let text = format!(
        "server:\n  listen: [\"{{listen}}\"]\n  threads: 1\n  grace_period: 1s\nstorage:\n  database_url: \"sqlite://{}/ledger.db\"\nkeys:\n  - name: tester\n    key_sha256: \"{{key_sha256}}\"\n    limit_usd: 0.0001\n    limit_reset: monthly\nproviders:\n{}models:\n  test/model:\n    endpoints:\n      - {{ provider: p1, model: m, price: {{ prompt: 100, completion: 100 }} }}\n",
        shared.display(),
        provider("p1", &mock)
    );
    let ask = json!({"model": "test/model", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
    let mut first = Gateway::start(&text);
    let mut answered = 0;
    while chat(&first, ask.clone()).await.status() == 200 {
        answered += 1;
        assert!(answered < 50, "the budget never ran out");
    }
    first.signal("TERM");
    first.wait_exit(Duration::from_secs(10)).unwrap();
    // A new process on the same ledger remembers the spend.
    let restarted = Gateway::start(&text);
    assert_eq!(
        chat(&restarted, ask).await.status(),
        402,
        "the spend from before the restart still counts"
    );
    let _ = std::fs::remove_dir_all(shared);
}

#[tokio::test]
async fn keys_created_with_the_cli_reach_a_running_gateway() {
    let mock = MockServer::start("127.0.0.1:0").unwrap();
    let gw = Gateway::start_with_env(&config(&mock, free_port()), &[("ADMIN_TOKEN", "adm")]);
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .arg("keys")
            .arg("-c")
            .arg(gw.config_path())
            .args(args)
            .env("UPSTREAM_KEY", UPSTREAM_KEY)
            .env("ADMIN_TOKEN", "adm")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let created = run(&["create", "--name", "from-cli", "--rpm", "50"]);
    let secret = created["key"].as_str().unwrap().to_string();
    assert_eq!(created["data"]["rpm"], 50);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = client()
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(&secret)
            .json(&json!({"model": "test/model", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            break;
        }
        assert_eq!(r.status(), 401);
        assert!(
            Instant::now() < deadline,
            "the CLI's key never reached the gateway"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let listed = run(&["list"]);
    assert_eq!(listed["data"][0]["name"], "from-cli");
    let hash = created["data"]["hash"].as_str().unwrap();
    assert_eq!(run(&["delete", hash])["deleted"], true);
}

/// A command whose reader goes away before it prints (`switchyard keys list | head`, a closed
/// pipe) ends quietly: no "failed printing to stdout: Broken pipe" panic, status 0 (or the
/// conventional death by SIGPIPE).
#[test]
fn commands_whose_reader_closes_the_pipe_end_quietly() {
    use std::io::Read;
    use std::process::Stdio;
    let mock = MockServer::start("127.0.0.1:0").unwrap();
    let dir = std::env::temp_dir().join(format!(
        "switchyard-test-pipe-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.yaml");
    let text = format!(
        "server:\n  listen: [\"127.0.0.1:{}\"]\nstorage:\n  database_url: \"sqlite://{}/ledger.db\"\nproviders:\n{}models:\n  test/model:\n    endpoints:\n      - {{ provider: p1, model: m, price: {{ prompt: 2, completion: 4 }} }}\n",
        free_port(),
        dir.display(),
        provider("p1", &mock)
    );
    std::fs::write(&config, text).unwrap();
    let switchyard = |args: &[&str]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"));
        c.args(args)
            .arg("-c")
            .arg(&config)
            .env("UPSTREAM_KEY", UPSTREAM_KEY);
        c
    };
    for i in 0..3 {
        let out = switchyard(&["keys", "create", "--name", &format!("k{i}")])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let against = config.to_str().unwrap();
    for args in [
        &["keys", "list"][..],
        &["keys", "create", "--name", "piped"],
        &["check"],
        &["check", "--against", against],
    ] {
        let mut child = switchyard(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before the command has printed anything.
        drop(child.stdout.take());
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let status = child.wait().unwrap();
        assert!(
            !stderr.contains("panicked"),
            "switchyard {args:?} panicked on a closed stdout: {stderr}"
        );
        use std::os::unix::process::ExitStatusExt;
        assert!(
            status.success() || status.signal() == Some(13),
            "switchyard {args:?} | (closed): {status}, {stderr}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Prompt tokens a provider wrote to its prompt cache are charged at the endpoint's
/// `cache_write` price (Anthropic's is 1.25x the prompt price), in the answer's `usage.cost`
/// and the ledger alike; without one they cost the prompt price.
#[tokio::test]
async fn prompt_tokens_written_to_the_cache_are_charged_at_the_cache_write_price() {
    let mock = MockServer::start("127.0.0.1:0").unwrap();
    // 10,000 prompt tokens: 2,000 read from the cache, 6,000 written to it, 2,000 neither.
    let knobs = "usage_prompt=10000+usage_cached=2000+usage_cache_write=6000+usage_completion=100";
    let yaml = format!(
        "{}providers:\n  claude:\n    dialect: anthropic\n    base_url: \"{}\"\n    api_key_env: UPSTREAM_KEY\nmodels:\n  anthropic/writes:\n    endpoints:\n      - {{ provider: claude, model: \"claude-test+{knobs}\", price: {{ prompt: 3, completion: 15, cached_prompt: 0.3, cache_write: 3.75 }} }}\n  anthropic/unpriced:\n    endpoints:\n      - {{ provider: claude, model: \"claude-test+{knobs}\", price: {{ prompt: 3, completion: 15, cached_prompt: 0.3 }} }}\n",
        config_head(),
        mock.base_url()
    );
    let mut gw = Gateway::start(&yaml);
    // Pico-USD per token: $3, $0.30, $3.75 and $15 per 1M.
    let written_pico: u128 =
        2_000 * 3_000_000 + 2_000 * 300_000 + 6_000 * 3_750_000 + 100 * 15_000_000;
    let unpriced_pico: u128 = 8_000 * 3_000_000 + 2_000 * 300_000 + 100 * 15_000_000;
    let usd = |pico: u128| pico as f64 / 1e12;
    let ask = |model: &str, stream: bool| json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]});

    let mut want = Vec::new();
    for (model, pico) in [
        ("anthropic/writes", written_pico),
        ("anthropic/unpriced", unpriced_pico),
    ] {
        let r = chat(&gw, ask(model, false)).await;
        assert_eq!(r.status(), 200);
        let id = r.headers()["x-generation-id"].to_str().unwrap().to_string();
        let usage = r.json::<Value>().await.unwrap()["usage"].clone();
        assert_eq!(usage["cost"].as_f64(), Some(usd(pico)), "{model}: {usage}");
        assert_eq!(usage["prompt_tokens"], 10_000, "{usage}");
        assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 2_000);
        assert_eq!(usage["prompt_tokens_details"]["cache_write_tokens"], 6_000);
        want.push((id, pico));

        let r = chat(&gw, ask(model, true)).await;
        let id = r.headers()["x-generation-id"].to_str().unwrap().to_string();
        let cost = streamed_cost(&r.text().await.unwrap());
        assert_eq!(cost, usd(pico), "{model}, streamed");
        want.push((id, pico));
    }

    // The Messages door relays Anthropic's own usage and stamps the same cost.
    let r = client()
        .post(gw.url("/v1/messages"))
        .header("x-api-key", KEY)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "anthropic/writes", "max_tokens": 100,
                      "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = r.headers()["x-generation-id"].to_str().unwrap().to_string();
    let usage = r.json::<Value>().await.unwrap()["usage"].clone();
    assert_eq!(usage["cache_creation_input_tokens"], 6_000, "{usage}");
    assert_eq!(usage["cost"].as_f64(), Some(usd(written_pico)), "{usage}");
    want.push((id, written_pico));

    let ledger = stop_and_read_ledger(&mut gw).await;
    for (id, pico) in want {
        let row = ledger.iter().find(|r| r.id == id).expect("a record");
        assert_eq!(row.cost_pico, pico.to_string(), "{id}");
    }
}
