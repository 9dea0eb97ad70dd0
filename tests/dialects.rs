//! The OpenAI front door to Anthropic and Gemini providers: the real binary against the
//! mock speaking each provider's own API.

mod common;

use common::*;
use serde_json::{json, Value};

fn config(mock: &MockServer) -> String {
    let base = mock.base_url();
    format!(
        "{}providers:\n  claude:\n    dialect: anthropic\n    base_url: \"{base}\"\n    api_key_env: UPSTREAM_KEY\n  gem:\n    dialect: gemini\n    base_url: \"{base}\"\n    api_key_env: UPSTREAM_KEY\n  backup:\n    dialect: openai\n    base_url: \"{base}\"\n    api_key_env: UPSTREAM_KEY\nmodels:\n  anthropic/claude-64k:\n    max_output: 64000\n    endpoints:\n      - {{ provider: claude, model: claude-test }}\n  anthropic/claude:\n    max_output: 1000\n    endpoints:\n      - {{ provider: claude, model: claude-test, price: {{ prompt: 3, completion: 15, cached_prompt: 0.3 }} }}\n  google/gemini:\n    endpoints:\n      - {{ provider: gem, model: gemini-test, price: {{ prompt: 0.3, completion: 2.5 }} }}\n  anthropic/cut:\n    endpoints:\n      - {{ provider: claude, model: \"claude-test+reset=mid+chunks=20\" }}\n  anthropic/whole:\n    endpoints:\n      - {{ provider: claude, model: \"claude-test+chunks=20\" }}\n  anthropic/overloaded:\n    endpoints:\n      - {{ provider: claude, model: \"claude-test+status=529\" }}\n      - {{ provider: backup, model: gpt-backup }}\n  google/limited:\n    endpoints:\n      - {{ provider: gem, model: \"gemini-test+status=429\" }}\n  anthropic/tools:\n    endpoints:\n      - {{ provider: claude, model: \"claude-test+tool_call\" }}\n  google/tools:\n    endpoints:\n      - {{ provider: gem, model: \"gemini-test+tool_call\" }}\n  x-ai/grok:\n    endpoints:\n      - {{ provider: backup, model: \"grok-up+xai_usage+usage_prompt=10120+usage_completion=1499+usage_reasoning=2809\", price: {{ prompt: 3, completion: 15 }} }}\n  deepseek/chat:\n    endpoints:\n      - {{ provider: backup, model: \"deepseek-up+deepseek_usage+usage_prompt=10000+usage_cached=9000+usage_completion=100\", price: {{ prompt: 0.28, completion: 0.42, cached_prompt: 0.028 }} }}\n  moonshot/kimi:\n    endpoints:\n      - {{ provider: backup, model: \"kimi-up+choice_usage+usage_prompt=5000+usage_completion=40\", price: {{ prompt: 0.6, completion: 2.5 }} }}\n",
        config_head()
    )
}

fn start() -> (MockServer, Gateway) {
    let mock = MockServer::start_with_key("127.0.0.1:0", UPSTREAM_KEY).unwrap();
    let gw = Gateway::start(&config(&mock));
    (mock, gw)
}

const WEATHER_TOOL: &str = r#"[{"type":"function","function":{"name":"get_weather","description":"Weather","parameters":{"type":"object","properties":{"location":{"type":"string"}},"required":["location"]}}}]"#;

async fn plain_chat(gw: &Gateway, model: &str) -> Value {
    let r = chat(gw, json!({"model": model, "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "Hello there"}]})).await;
    assert_eq!(r.status(), 200, "{model}");
    r.json().await.unwrap()
}

#[tokio::test]
async fn plain_chat_reaches_each_dialect_in_its_own_format() {
    let (mock, gw) = start();
    for (model, provider, path) in [
        ("anthropic/claude", "claude", "/v1/messages"),
        (
            "google/gemini",
            "gem",
            "/v1/models/gemini-test:generateContent",
        ),
    ] {
        let body = plain_chat(&gw, model).await;
        assert_eq!(body["model"], model);
        assert_eq!(body["provider"], provider);
        assert_eq!(body["object"], "chat.completion");
        assert!(
            body["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .contains("Hello there"),
            "{body}"
        );
        assert_eq!(body["choices"][0]["finish_reason"], "stop");
        assert!(body["choices"][0]["native_finish_reason"].is_string());
        assert!(body["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
        assert!(body["usage"]["cost"].as_f64().unwrap() > 0.0);
        let seen = mock.requests().pop().unwrap();
        assert_eq!(seen.path, path);
        let up = seen.json().unwrap();
        match provider {
            "claude" => {
                assert_eq!(seen.header("x-api-key"), Some(UPSTREAM_KEY));
                assert_eq!(seen.header("anthropic-version"), Some("2023-06-01"));
                assert_eq!(seen.header("authorization"), None);
                assert_eq!(up["model"], "claude-test");
                assert!(up["system"].to_string().contains("be brief"), "{up}");
                assert_eq!(
                    up["max_tokens"], 1000,
                    "Anthropic needs max_tokens: the catalog's max_output"
                );
            }
            _ => {
                assert_eq!(seen.header("x-goog-api-key"), Some(UPSTREAM_KEY));
                assert!(
                    up["systemInstruction"].to_string().contains("be brief"),
                    "{up}"
                );
                assert!(up["contents"].is_array());
            }
        }
    }
}

#[tokio::test]
async fn streams_are_converted_event_by_event_and_end_with_usage_and_done() {
    let (_mock, gw) = start();
    for model in ["anthropic/claude", "google/gemini"] {
        let r = chat(&gw, json!({"model": model, "stream": true, "messages": [{"role": "user", "content": "Hello stream"}]})).await;
        assert_eq!(r.status(), 200);
        let text = r.text().await.unwrap();
        // Anthropic's `ping` reaches the client as a comment: the stream shows it is alive.
        assert_eq!(
            text.contains("\n\n: keep-alive\n\n"),
            model == "anthropic/claude",
            "{model}: {text}"
        );
        let events = sse_events(&text);
        assert_eq!(events.last().unwrap(), "data: [DONE]", "{model}");
        let mut content = String::new();
        for e in &events[..events.len() - 2] {
            let chunk: Value = serde_json::from_str(e.trim_start_matches("data: ")).unwrap();
            assert_eq!(chunk["object"], "chat.completion.chunk");
            if let Some(c) = chunk["choices"][0]["delta"]["content"].as_str() {
                content.push_str(c);
            }
        }
        assert!(content.contains("Hello stream"), "{model}: {content}");
        let usage: Value =
            serde_json::from_str(events[events.len() - 2].trim_start_matches("data: ")).unwrap();
        assert_eq!(usage["model"], model);
        assert!(usage["usage"]["completion_tokens"].as_u64().unwrap() > 0);
        assert!(
            usage["usage"].get("estimated").is_none(),
            "{model}: the provider's own usage was read"
        );
    }
}

/// xAI (the OpenAI dialect) counts Grok's reasoning apart from `completion_tokens`, and in
/// `total_tokens`: the reasoning is billed as output, and the client's usage adds up.
#[tokio::test]
async fn grok_reasoning_reported_apart_is_billed_and_shown_as_output() {
    let (_mock, gw) = start();
    // 10120 × $3/M + (1499 + 2809) × $15/M
    let cost = (10120.0 * 3.0 + 4308.0 * 15.0) / 1e6;
    let check = |usage: &Value, how: &str| {
        assert_eq!(usage["prompt_tokens"], 10120, "{how}: {usage}");
        assert_eq!(usage["completion_tokens"], 4308, "{how}: {usage}");
        assert_eq!(usage["total_tokens"], 14428, "{how}: {usage}");
        assert_eq!(
            usage["completion_tokens_details"]["reasoning_tokens"], 2809,
            "{how}"
        );
        let charged = usage["cost"].as_f64().unwrap();
        assert!((charged - cost).abs() < 1e-12, "{how}: {charged} != {cost}");
    };
    let messages = json!([{"role": "user", "content": "think"}]);
    let r = chat(&gw, json!({"model": "x-ai/grok", "messages": messages})).await;
    assert_eq!(r.status(), 200);
    let id = r.headers()["x-generation-id"].to_str().unwrap().to_string();
    let body: Value = r.json().await.unwrap();
    check(&body["usage"], "whole answer");
    let d = generation_data(&gw, &id).await;
    assert_eq!(d["tokens_completion"], 4308, "{d}");

    let r = chat(
        &gw,
        json!({"model": "x-ai/grok", "stream": true, "messages": messages}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let events = sse_events(&r.text().await.unwrap());
    let tail: Value =
        serde_json::from_str(events[events.len() - 2].trim_start_matches("data: ")).unwrap();
    check(&tail["usage"], "stream");
}

/// DeepSeek counts its cache hits in `prompt_cache_hit_tokens`, not OpenAI's
/// `prompt_tokens_details.cached_tokens`: they are billed at the cached price and shown as
/// cached, streamed or not. They were billed at the full prompt price (ten times as much).
#[tokio::test]
async fn deepseek_cache_hits_are_billed_at_the_cached_price() {
    let (_mock, gw) = start();
    // 1000 fresh × $0.28/M + 9000 cached × $0.028/M + 100 × $0.42/M
    let cost = (1000.0 * 0.28 + 9000.0 * 0.028 + 100.0 * 0.42) / 1e6;
    let check = |usage: &Value, how: &str| {
        assert_eq!(usage["prompt_tokens"], 10000, "{how}: {usage}");
        assert_eq!(
            usage["prompt_tokens_details"]["cached_tokens"], 9000,
            "{how}: {usage}"
        );
        let charged = usage["cost"].as_f64().unwrap();
        assert!((charged - cost).abs() < 1e-12, "{how}: {charged} != {cost}");
    };
    let messages = json!([{"role": "user", "content": "again"}]);
    let r = chat(&gw, json!({"model": "deepseek/chat", "messages": messages})).await;
    assert_eq!(r.status(), 200);
    let id = r.headers()["x-generation-id"].to_str().unwrap().to_string();
    check(&r.json::<Value>().await.unwrap()["usage"], "whole answer");
    let d = generation_data(&gw, &id).await;
    assert_eq!(d["native_tokens_cached"], 9000, "{d}");

    let r = chat(
        &gw,
        json!({"model": "deepseek/chat", "stream": true, "messages": messages}),
    )
    .await;
    let events = sse_events(&r.text().await.unwrap());
    let tail: Value =
        serde_json::from_str(events[events.len() - 2].trim_start_matches("data: ")).unwrap();
    check(&tail["usage"], "stream");
}

/// Moonshot (Kimi) streams its usage on the finishing choice (`choices[0].usage`), with no
/// usage-only chunk: the stream is billed and shown at Moonshot's count, not an estimate. It
/// was estimated from the body's bytes and the deltas, and marked so.
#[tokio::test]
async fn a_stream_usage_on_the_finishing_choice_is_the_providers_count() {
    let (_mock, gw) = start();
    let r = chat(
        &gw,
        json!({"model": "moonshot/kimi", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let id = r.headers()["x-generation-id"].to_str().unwrap().to_string();
    let events = sse_events(&r.text().await.unwrap());
    let tail: Value =
        serde_json::from_str(events[events.len() - 2].trim_start_matches("data: ")).unwrap();
    let usage = &tail["usage"];
    assert_eq!(
        (&usage["prompt_tokens"], &usage["completion_tokens"]),
        (&json!(5000), &json!(40)),
        "{usage}"
    );
    assert_eq!(usage.get("estimated"), None, "{usage}");
    let cost = (5000.0 * 0.6 + 40.0 * 2.5) / 1e6;
    assert!(
        (usage["cost"].as_f64().unwrap() - cost).abs() < 1e-12,
        "{usage}"
    );
    let d = generation_data(&gw, &id).await;
    assert_eq!(
        (&d["tokens_prompt"], &d["estimated"]),
        (&json!(5000), &json!(false)),
        "{d}"
    );
}

/// A Claude stream cut before its `message_delta` (the client left, the provider reset):
/// Anthropic's `message_start` says 1 output token whatever follows. The client and the
/// ledger get the prompt Anthropic reported and the completion estimated from what was
/// relayed, marked estimated, not 1 token as reported.
#[tokio::test]
async fn a_cut_claude_stream_is_billed_for_what_was_relayed() {
    let (_mock, gw) = start();
    let ask = |model: &str| {
        json!({"model": model, "stream": true,
               "messages": [{"role": "user", "content": "Hello stream"}]})
    };
    let usage_of = |text: &str| -> Value {
        let events = sse_events(text);
        let usage = events
            .iter()
            .filter_map(|e| serde_json::from_str::<Value>(e.trim_start_matches("data: ")).ok())
            .find(|c| c["usage"].is_object())
            .expect("a usage chunk");
        usage["usage"].clone()
    };
    let whole = chat(&gw, ask("anthropic/whole"))
        .await
        .text()
        .await
        .unwrap();
    let whole = usage_of(&whole);
    let cut = chat(&gw, ask("anthropic/cut")).await;
    let text = cut.text().await.unwrap();
    let relayed = sse_events(&text)
        .iter()
        .filter(|e| e.contains(r#""content":""#) && !e.contains(r#""content":"""#))
        .count() as u64;
    let cut = usage_of(&text);
    assert!(relayed > 1, "{text}");
    assert_eq!(
        cut["prompt_tokens"], whole["prompt_tokens"],
        "the prompt Anthropic reported"
    );
    assert!(
        cut["completion_tokens"].as_u64().unwrap() >= relayed,
        "{cut} for {relayed} relayed deltas"
    );
    assert_eq!(cut["estimated"], true, "{cut}");
}

#[tokio::test]
async fn a_streamed_tool_call_round_trips() {
    let (mock, gw) = start();
    let tools: Value = serde_json::from_str(WEATHER_TOOL).unwrap();
    // The mock answers these endpoints with a call to the first tool (the `tool_call` knob).
    for model in ["anthropic/tools", "google/tools"] {
        let r = chat(
            &gw,
            json!({"model": model, "stream": true, "tools": tools, "tool_choice": "auto",
                                 "messages": [{"role": "user", "content": "weather in Paris?"}]}),
        )
        .await;
        assert_eq!(r.status(), 200);
        let text = r.text().await.unwrap();
        let (mut name, mut args, mut id, mut finish) =
            (String::new(), String::new(), String::new(), String::new());
        for e in sse_events(&text).iter().filter(|e| *e != "data: [DONE]") {
            let chunk: Value = serde_json::from_str(e.trim_start_matches("data: ")).unwrap();
            if let Some(call) = chunk["choices"][0]["delta"]["tool_calls"].get(0) {
                assert_eq!(call["index"], 0);
                if let Some(i) = call["id"].as_str() {
                    id = i.to_string()
                }
                if let Some(n) = call["function"]["name"].as_str() {
                    name.push_str(n)
                }
                if let Some(a) = call["function"]["arguments"].as_str() {
                    args.push_str(a)
                }
            }
            if let Some(f) = chunk["choices"][0]["finish_reason"].as_str() {
                finish = f.to_string()
            }
        }
        assert_eq!(name, "get_weather", "{model}: {text}");
        assert!(!id.is_empty());
        let parsed: Value =
            serde_json::from_str(&args).unwrap_or_else(|_| panic!("{model}: arguments {args}"));
        assert_eq!(parsed["location"], "Paris");
        assert_eq!(finish, "tool_calls");

        // The tool result goes back in the next turn, in the provider's format.
        let r = chat(&gw, json!({"model": model, "tools": tools, "messages": [
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": id, "type": "function", "function": {"name": "get_weather", "arguments": args}}]},
            {"role": "tool", "tool_call_id": id, "content": "sunny, 21C"}]})).await;
        assert_eq!(r.status(), 200, "{model}");
        let up = mock.requests().pop().unwrap().json().unwrap().to_string();
        assert!(up.contains("sunny, 21C"), "{model}: {up}");
    }
}

#[tokio::test]
async fn images_and_json_mode_are_translated() {
    let (mock, gw) = start();
    let image = json!({"model": "anthropic/claude", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]});
    assert_eq!(chat(&gw, image).await.status(), 200);
    let up = mock.requests().pop().unwrap().json().unwrap();
    assert_eq!(up["messages"][0]["content"][1]["type"], "image", "{up}");
    assert_eq!(up["messages"][0]["content"][1]["source"]["type"], "base64");

    let schema = json!({"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object", "properties": {"t": {"type": "number"}}}}});
    let r = chat(&gw, json!({"model": "google/gemini", "response_format": schema, "messages": [{"role": "user", "content": "json"}]})).await;
    assert_eq!(r.status(), 200);
    let up = mock.requests().pop().unwrap().json().unwrap();
    assert_eq!(
        up["generationConfig"]["responseMimeType"], "application/json",
        "{up}"
    );

    // A field Anthropic has no equivalent for is dropped and named in a header.
    let r = chat(&gw, json!({"model": "anthropic/claude", "seed": 7, "messages": [{"role": "user", "content": "x"}]})).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["x-switchyard-dropped"]
        .to_str()
        .unwrap()
        .contains("seed"));
}

#[tokio::test]
async fn provider_errors_fail_over_or_surface_with_the_raw_error() {
    let (_mock, gw) = start();
    // Anthropic's 529 overloaded_error fails over to the next endpoint.
    let r = chat(&gw, json!({"model": "anthropic/overloaded", "provider": {"order": ["claude", "backup"]}, "messages": [{"role": "user", "content": "x"}]})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-provider"], "backup");
    assert_eq!(r.headers()["x-switchyard-attempts"], "2");

    // Gemini's RESOURCE_EXHAUSTED with nowhere to go is a 429 carrying the provider's error.
    let r = chat(
        &gw,
        json!({"model": "google/limited", "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(r.status(), 429);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["metadata"]["provider_name"], "gem");
    assert_eq!(
        body["error"]["metadata"]["raw"]["error"]["status"], "RESOURCE_EXHAUSTED",
        "{body}"
    );

    // A request the dialect cannot express is the client's 400, not a provider failure.
    let r = chat(
        &gw,
        json!({"model": "anthropic/claude", "messages": [{"role": "user", "content": 5}]}),
    )
    .await;
    assert_eq!(r.status(), 400, "{}", r.text().await.unwrap());
}

fn cloud_config(mock: &MockServer) -> String {
    let base = mock.base_url();
    format!(
        "{}providers:\n  br:\n    dialect: bedrock\n    base_url: \"{base}\"\n    region: us-east-1\n    aws_access_key_id_env: UPSTREAM_KEY\n    aws_secret_access_key_env: UPSTREAM_KEY\n  az:\n    dialect: azure\n    base_url: \"{base}\"\n    api_version: \"2024-10-21\"\n    api_key_env: UPSTREAM_KEY\nmodels:\n  amazon/nova:\n    endpoints:\n      - {{ provider: br, model: \"amazon.nova-pro-v1:0\", price: {{ prompt: 0.8, completion: 3.2 }} }}\n  anthropic/claude-bedrock-64k:\n    max_output: 64000\n    endpoints:\n      - {{ provider: br, model: \"anthropic.claude-sonnet-4-5-20250929-v1:0\" }}\n  anthropic/claude-bedrock:\n    endpoints:\n      - {{ provider: br, model: \"anthropic.claude-3-5-sonnet-20241022-v2:0+tool_call\" }}\n  bedrock/throttled:\n    endpoints:\n      - {{ provider: br, model: \"amazon.nova-pro-v1:0+status=429\" }}\n  bedrock/quota:\n    endpoints:\n      - {{ provider: br, model: \"amazon.nova-pro-v1:0+status=400+error_type=ServiceQuotaExceededException\" }}\n  bedrock/quota-or-azure:\n    endpoints:\n      - {{ provider: br, model: \"amazon.nova-pro-v1:0+status=400+error_type=ServiceQuotaExceededException\" }}\n      - {{ provider: az, model: my-gpt4o-deployment }}\n  openai/gpt-azure:\n    endpoints:\n      - {{ provider: az, model: my-gpt4o-deployment, price: {{ prompt: 2.5, completion: 10 }} }}\n",
        config_head()
    )
}

#[tokio::test]
async fn bedrock_requests_are_signed_converted_and_streamed() {
    let mock = MockServer::start_with_key("127.0.0.1:0", UPSTREAM_KEY).unwrap();
    let gw = Gateway::start(&cloud_config(&mock));
    let body = plain_chat(&gw, "amazon/nova").await;
    assert_eq!(body["provider"], "br");
    assert!(body["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .contains("Hello there"));
    assert!(body["usage"]["cost"].as_f64().unwrap() > 0.0);
    let seen = mock.requests().pop().unwrap();
    assert_eq!(seen.path, "/v1/model/amazon.nova-pro-v1%3A0/converse");
    let auth = seen.header("authorization").unwrap();
    assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential="), "{auth}");
    assert!(auth.contains("/us-east-1/bedrock/aws4_request"), "{auth}");
    assert!(seen.header("x-amz-date").is_some());
    assert!(seen.json().unwrap()["messages"].is_array());

    // ConverseStream's binary event stream reaches the client as OpenAI SSE.
    let r = chat(&gw, json!({"model": "amazon/nova", "stream": true, "messages": [{"role": "user", "content": "Hello stream"}]})).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let text = r.text().await.unwrap();
    let events = sse_events(&text);
    assert_eq!(events.last().unwrap(), "data: [DONE]");
    let content: String = events[..events.len() - 2]
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e.trim_start_matches("data: ")).ok())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert!(content.contains("Hello stream"), "{content}");
    let usage: Value =
        serde_json::from_str(events[events.len() - 2].trim_start_matches("data: ")).unwrap();
    assert!(
        usage["usage"].get("estimated").is_none(),
        "Bedrock's metadata event carries usage"
    );

    // Tool use streams as OpenAI tool-call deltas.
    let tools: Value = serde_json::from_str(WEATHER_TOOL).unwrap();
    let r = chat(&gw, json!({"model": "anthropic/claude-bedrock", "stream": true, "tools": tools, "messages": [{"role": "user", "content": "weather?"}]})).await;
    let text = r.text().await.unwrap();
    assert!(
        text.contains("get_weather") && text.contains("\"finish_reason\":\"tool_calls\""),
        "{text}"
    );

    // ThrottlingException is a 429 to the client.
    let r = chat(
        &gw,
        json!({"model": "bedrock/throttled", "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(r.status(), 429);
}

/// Bedrock answers some quota errors 400 with `x-amzn-errortype:
/// ServiceQuotaExceededException`: a rate limit, decided from the head. It fails over like a
/// 429; where nothing is left to try, the client's status line and error body both say 429.
#[tokio::test]
async fn a_bedrock_quota_error_is_a_rate_limit_in_the_head_and_the_body() {
    let mock = MockServer::start_with_key("127.0.0.1:0", UPSTREAM_KEY).unwrap();
    let gw = Gateway::start(&cloud_config(&mock));
    let hi = |model: &str| json!({"model": model, "messages": [{"role": "user", "content": "x"}]});
    let mut bedrock_first = hi("bedrock/quota-or-azure");
    bedrock_first["provider"] = json!({"order": ["br", "az"]});
    let r = chat(&gw, bedrock_first).await;
    assert_eq!(r.status(), 200);
    let log = r.headers()["x-switchyard-attempt-log"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        log.starts_with("br;400;") && log.contains(", az;200;"),
        "{log}"
    );
    let r = chat(&gw, hi("bedrock/quota")).await;
    assert_eq!(r.status(), 429);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");
}

#[tokio::test]
async fn azure_uses_the_deployment_url_api_version_and_api_key() {
    let mock = MockServer::start_with_key("127.0.0.1:0", UPSTREAM_KEY).unwrap();
    let gw = Gateway::start(&cloud_config(&mock));
    for stream in [false, true] {
        let r = chat(&gw, json!({"model": "openai/gpt-azure", "stream": stream, "messages": [{"role": "user", "content": "Hello azure"}]})).await;
        assert_eq!(r.status(), 200);
        let text = r.text().await.unwrap();
        assert!(text.contains("azure"), "{text}");
        let seen = mock.requests().pop().unwrap();
        assert_eq!(
            seen.path,
            "/v1/openai/deployments/my-gpt4o-deployment/chat/completions"
        );
        assert_eq!(seen.query.as_deref(), Some("api-version=2024-10-21"));
        assert_eq!(seen.header("api-key"), Some(UPSTREAM_KEY));
        assert_eq!(seen.header("authorization"), None);
        if stream {
            assert!(text.ends_with("data: [DONE]\n\n"));
            assert!(
                text.contains("\"model\":\"openai/gpt-azure\""),
                "the usage chunk names the catalog model"
            );
        }
    }
}

/// A reasoning budget and no `max_tokens`: the limit sent makes room for the budget but stays
/// within the model's output limit (Claude refuses a higher one), and a budget the limit
/// cannot hold is cut to leave the answer room, on Anthropic's API and on Bedrock alike.
#[tokio::test]
async fn a_reasoning_budget_without_max_tokens_stays_within_the_models_output_limit() {
    let mock = MockServer::start_with_key("127.0.0.1:0", UPSTREAM_KEY).unwrap();
    let anthropic = Gateway::start(&config(&mock));
    let bedrock = Gateway::start(&cloud_config(&mock));
    let cases = [
        (
            &anthropic,
            "anthropic/claude-64k",
            "/max_tokens",
            "/thinking/budget_tokens",
        ),
        (
            &bedrock,
            "anthropic/claude-bedrock-64k",
            "/inferenceConfig/maxTokens",
            "/additionalModelRequestFields/thinking/budget_tokens",
        ),
    ];
    for (gw, model, cap_at, budget_at) in cases {
        for (asked, sent) in [(8000, 8000), (64_000, 60_800)] {
            let r = chat(
                gw,
                json!({"model": model, "reasoning": {"max_tokens": asked},
                "messages": [{"role": "user", "content": "Think hard."}]}),
            )
            .await;
            assert_eq!(r.status(), 200, "{model}: {}", r.text().await.unwrap());
            let up = mock.requests().pop().unwrap().json().unwrap();
            let cap = up.pointer(cap_at).and_then(Value::as_u64).unwrap();
            let budget = up.pointer(budget_at).and_then(Value::as_u64).unwrap();
            assert_eq!(
                cap, 64_000,
                "{model}, budget {asked}: the model's limit, no more: {up}"
            );
            assert_eq!(budget, sent, "{model}, budget {asked}: {up}");
            assert!(
                (1024..cap).contains(&budget),
                "{model}: a budget Claude takes: {up}"
            );
        }
    }
}

/// The tool call id of a chat answer, streamed or not.
async fn gemini_call_id(gw: &Gateway, messages: Value, stream: bool) -> String {
    let tools: Value = serde_json::from_str(WEATHER_TOOL).unwrap();
    let r = chat(
        gw,
        json!({"model": "google/tools", "stream": stream, "tools": tools, "messages": messages}),
    )
    .await;
    assert_eq!(r.status(), 200);
    if !stream {
        let body: Value = r.json().await.unwrap();
        return body["choices"][0]["message"]["tool_calls"][0]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no tool call: {body}"))
            .to_string();
    }
    let text = r.text().await.unwrap();
    sse_events(&text)
        .iter()
        .filter(|e| *e != "data: [DONE]")
        .filter_map(|e| serde_json::from_str::<Value>(e.trim_start_matches("data: ")).ok())
        .find_map(|c| {
            c["choices"][0]["delta"]["tool_calls"][0]["id"]
                .as_str()
                .map(String::from)
        })
        .unwrap_or_else(|| panic!("no tool call: {text}"))
}

#[tokio::test]
async fn gemini_tool_call_ids_are_unique_across_the_turns_of_a_conversation() {
    let (mock, gw) = start();
    for stream in [false, true] {
        let mut messages = vec![json!({"role": "user", "content": "weather in Paris?"})];
        let mut ids = Vec::new();
        for turn in 0..3 {
            let id = gemini_call_id(&gw, Value::Array(messages.clone()), stream).await;
            assert!(
                !ids.contains(&id),
                "stream {stream}, turn {turn}: {id} repeats {ids:?}"
            );
            messages.push(json!({"role": "assistant", "content": null, "tool_calls": [{"id": id, "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris\"}"}}]}));
            messages.push(json!({"role": "tool", "tool_call_id": id, "content": format!("sunny, turn {turn}")}));
            ids.push(id);
        }
        // Every result still goes back to Gemini named after the function it answers.
        let up = mock.requests().pop().unwrap().json().unwrap();
        let responses: Vec<&Value> = up["contents"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| c["parts"].as_array().unwrap())
            .filter_map(|p| p.get("functionResponse"))
            .collect();
        assert_eq!(responses.len(), 2, "{up}");
        for r in responses {
            assert_eq!(r["name"], "get_weather", "{up}");
        }
    }
}

#[tokio::test]
async fn bedrock_stream_chunks_carry_the_generation_id() {
    let mock = MockServer::start_with_key("127.0.0.1:0", UPSTREAM_KEY).unwrap();
    let gw = Gateway::start(&cloud_config(&mock));
    let r = chat(&gw, json!({"model": "amazon/nova", "stream": true, "messages": [{"role": "user", "content": "Hello stream"}]})).await;
    assert_eq!(r.status(), 200);
    let generation = r.headers()["x-generation-id"].to_str().unwrap().to_string();
    assert!(generation.starts_with("gen-"), "{generation}");
    let text = r.text().await.unwrap();
    let chunks: Vec<Value> = sse_events(&text)
        .iter()
        .filter(|e| *e != "data: [DONE]")
        .map(|e| serde_json::from_str(e.trim_start_matches("data: ")).unwrap())
        .collect();
    assert!(chunks.len() > 2, "{text}");
    for c in chunks {
        assert_eq!(c["id"], generation.as_str(), "{text}");
    }
}
