//! The Anthropic Messages, OpenAI Responses and embeddings front doors, each against OpenAI-
//! and Anthropic-dialect providers (Bedrock for Claude Code's tool loop, Gemini for
//! embeddings) in the mock.

mod common;

use common::*;
use serde_json::{json, Value};

fn config(mock: &MockServer) -> String {
    let base = mock.base_url();
    format!(
        "{}providers:\n  oai:\n    dialect: openai\n    base_url: \"{base}\"\n    api_key_env: UPSTREAM_KEY\n  claude:\n    dialect: anthropic\n    base_url: \"{base}\"\n    api_key_env: UPSTREAM_KEY\n  gem:\n    dialect: gemini\n    base_url: \"{base}\"\n    api_key_env: UPSTREAM_KEY\n  br:\n    dialect: bedrock\n    base_url: \"{base}\"\n    region: us-east-1\n    aws_access_key_id_env: UPSTREAM_KEY\n    aws_secret_access_key_env: UPSTREAM_KEY\nmodels:\n  anthropic/claude-bedrock:\n    endpoints:\n      - {{ provider: br, model: \"anthropic.claude-sonnet-4-5-20250929-v1:0+tool_call\", price: {{ prompt: 3, completion: 15 }} }}\n  openai/gpt:\n    endpoints:\n      - {{ provider: oai, model: gpt-up, price: {{ prompt: 1, completion: 2 }} }}\n  openai/gpt-nousage:\n    endpoints:\n      - {{ provider: oai, model: \"gpt-up+no_usage\", price: {{ prompt: 1, completion: 2 }} }}\n  openrouter/claude:\n    endpoints:\n      - {{ provider: oai, model: anthropic/claude-up, price: {{ prompt: 1, completion: 2 }} }}\n  anthropic/claude:\n    max_output: 512\n    endpoints:\n      - {{ provider: claude, model: claude-up, price: {{ prompt: 3, completion: 15 }} }}\n  anthropic/broken:\n    endpoints:\n      - {{ provider: claude, model: \"claude-up+status=400\" }}\n  openai/embed:\n    endpoints:\n      - {{ provider: oai, model: text-embedding-3-small, price: {{ prompt: 0.02 }} }}\n  google/embed:\n    endpoints:\n      - {{ provider: gem, model: text-embedding-004, price: {{ prompt: 0.01 }} }}\n  google/gemini-tools:\n    endpoints:\n      - {{ provider: gem, model: \"gemini-test+tool_call\", price: {{ prompt: 1, completion: 2 }} }}\n",
        config_head()
    )
}

fn start() -> (MockServer, Gateway) {
    let mock = MockServer::start_with_key("127.0.0.1:0", UPSTREAM_KEY).unwrap();
    let gw = Gateway::start(&config(&mock));
    (mock, gw)
}

async fn post(gw: &Gateway, path: &str, body: Value) -> reqwest::Response {
    client()
        .post(gw.url(path))
        .header("x-api-key", KEY)
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn anthropic_events(text: &str) -> Vec<(String, Value)> {
    sse_events(text)
        .iter()
        .filter_map(|e| {
            let name = e
                .lines()
                .find_map(|l| l.strip_prefix("event: "))?
                .to_string();
            let data = e.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((name, serde_json::from_str(data).ok()?))
        })
        .collect()
}

#[tokio::test]
async fn messages_to_an_openai_provider_answer_in_anthropic_shape() {
    let (mock, gw) = start();
    let r = post(
        &gw,
        "/v1/messages?beta=true",
        json!({"model": "openai/gpt", "max_tokens": 100, "system": "be brief",
        "messages": [{"role": "user", "content": "Hello there"}]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let id = r.headers()["x-generation-id"].to_str().unwrap().to_string();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["type"], "message");
    assert_eq!(body["role"], "assistant");
    assert_eq!(body["model"], "openai/gpt");
    assert_eq!(body["id"], id.as_str());
    assert!(
        body["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("Hello there"),
        "{body}"
    );
    assert_eq!(body["stop_reason"], "end_turn");
    assert!(body["usage"]["input_tokens"].as_u64().unwrap() > 0);
    let up = mock.requests().pop().unwrap();
    assert_eq!(up.path, "/v1/chat/completions");
    let up = up.json().unwrap();
    assert_eq!(up["model"], "gpt-up");
    assert_eq!(up["messages"][0]["role"], "system");

    // Streaming: Anthropic's event sequence.
    let r = post(
        &gw,
        "/v1/messages",
        json!({"model": "openai/gpt", "max_tokens": 100, "stream": true,
        "messages": [{"role": "user", "content": "Hello stream"}]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let events = anthropic_events(&r.text().await.unwrap());
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names.last(), Some(&"message_stop"));
    assert!(
        names.contains(&"content_block_delta") && names.contains(&"message_delta"),
        "{names:?}"
    );
    let text: String = events
        .iter()
        .filter_map(|(_, d)| d["delta"]["text"].as_str())
        .collect();
    assert!(text.contains("Hello stream"), "{text}");
    let delta = events.iter().find(|(n, _)| n == "message_delta").unwrap();
    assert!(delta.1["usage"]["output_tokens"].as_u64().unwrap() > 0);
}

/// `metadata.user_id` as Claude Code sends it: 150 characters or so.
const CLAUDE_CODE_USER_ID: &str = r#"{"device_id":"5f0c7e3a9b2d4c6e8f1a3b5c7d9e0f2a4b6c8d0e2f4a6b8c0d2e4f6a8b0c2d4e","account_uuid":"","session_id":"0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"}"#;

/// Claude Code's request to an OpenAI model: OpenAI refuses `max_tokens` for its reasoning
/// models and any field it does not know (OpenRouter's `reasoning`, `top_k`, Anthropic's
/// `cache_control`), so it gets `max_completion_tokens` and none of the others, and the client
/// is told. An OpenRouter upstream (the same dialect) takes them all.
#[tokio::test]
async fn messages_to_openai_send_only_fields_openai_takes() {
    let (mock, gw) = start();
    let body = |model: &str| {
        json!({"model": model, "max_tokens": 32000, "top_k": 5,
            "thinking": {"type": "enabled", "budget_tokens": 2048},
            "metadata": {"user_id": CLAUDE_CODE_USER_ID},
            "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
            "tools": [{"name": "get_weather", "input_schema": {"type": "object"},
                       "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "Hello there", "cache_control": {"type": "ephemeral"}}]}]})
    };
    let r = post(&gw, "/v1/messages", body("openai/gpt")).await;
    assert_eq!(r.status(), 200);
    let dropped = r.headers()["x-switchyard-dropped"].to_str().unwrap();
    assert_eq!(
        dropped,
        "messages[0].content[0].cache_control, messages[1].content[0].cache_control, \
         tools[0].cache_control, top_k, reasoning"
    );
    let up = mock.requests().pop().unwrap().json().unwrap();
    assert_eq!(up["model"], "gpt-up");
    assert_eq!(up["max_completion_tokens"], 32000, "{up}");
    for refused in ["max_tokens", "top_k", "reasoning"] {
        assert!(up.get(refused).is_none(), "{refused}: {up}");
    }
    assert!(!up.to_string().contains("cache_control"), "{up}");
    // OpenAI takes a `user` of 64 characters at most; the same id maps to the same user.
    let user = up["user"].as_str().unwrap().to_string();
    assert_eq!(user.len(), 64, "{up}");
    post(&gw, "/v1/messages", body("openai/gpt")).await;
    assert_eq!(
        mock.requests().pop().unwrap().json().unwrap()["user"],
        user.as_str()
    );

    let r = post(&gw, "/v1/messages", body("openrouter/claude")).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-switchyard-dropped").is_none());
    let up = mock.requests().pop().unwrap().json().unwrap();
    assert_eq!(up["model"], "anthropic/claude-up");
    assert_eq!(up["max_completion_tokens"], 32000, "{up}");
    assert_eq!(up["top_k"], 5, "{up}");
    assert_eq!(up["reasoning"], json!({"max_tokens": 2048}), "{up}");
    assert_eq!(up["tools"][0]["cache_control"]["type"], "ephemeral", "{up}");
}

#[tokio::test]
async fn messages_to_an_anthropic_provider_pass_through() {
    let (mock, gw) = start();
    let r = client()
        .post(gw.url("/v1/messages"))
        .header("x-api-key", KEY)
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "context-management-2025-06-27")
        .json(&json!({"model": "anthropic/claude", "max_tokens": 100, "context_management": {"edits": []},
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi passthrough", "cache_control": {"type": "ephemeral"}}]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["type"], "message");
    assert_eq!(body["model"], "anthropic/claude");
    assert!(body["usage"]["cost"].as_f64().unwrap() > 0.0);
    let seen = mock.requests().pop().unwrap();
    assert_eq!(seen.path, "/v1/messages");
    assert_eq!(
        seen.header("anthropic-beta"),
        Some("context-management-2025-06-27"),
        "the client's beta flags reach an Anthropic upstream"
    );
    let up = seen.json().unwrap();
    assert_eq!(up["model"], "claude-up");
    assert_eq!(
        up["context_management"],
        json!({"edits": []}),
        "unknown fields reach an Anthropic upstream"
    );
    assert_eq!(
        up["messages"][0]["content"][0]["cache_control"]["type"],
        "ephemeral"
    );

    // The stream passes through: Anthropic's own events (stamped: see
    // a_passed_through_stream_carries_the_generation_id_catalog_model_and_cost).
    let r = post(
        &gw,
        "/v1/messages",
        json!({"model": "anthropic/claude", "max_tokens": 100, "stream": true,
        "messages": [{"role": "user", "content": "Hi stream"}]}),
    )
    .await;
    let text = r.text().await.unwrap();
    let names: Vec<String> = anthropic_events(&text)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names.first().map(String::as_str), Some("message_start"));
    assert_eq!(names.last().map(String::as_str), Some("message_stop"));
    assert!(
        !text.contains("[DONE]"),
        "no OpenAI framing on an Anthropic stream"
    );

    // The provider's own error body reaches the client unchanged.
    let r = post(&gw, "/v1/messages", json!({"model": "anthropic/broken", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]})).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "invalid_request_error");
}

/// DESIGN §3: every answer names the generation id and the catalog model, and its usage has
/// `cost`. A stream passed through from an Anthropic provider said neither: `message_start`
/// had the provider's message id and model, and `message_delta` no cost, where the whole
/// passthrough message and the converted streams of every other provider have them.
#[tokio::test]
async fn a_passed_through_stream_carries_the_generation_id_catalog_model_and_cost() {
    let (_mock, gw) = start();
    let r = post(
        &gw,
        "/v1/messages",
        json!({"model": "anthropic/claude", "max_tokens": 100, "stream": true,
        "messages": [{"role": "user", "content": "Hi stream"}]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let id = r.headers()["x-generation-id"].to_str().unwrap().to_string();
    let events = anthropic_events(&r.text().await.unwrap());
    let start = &events.iter().find(|(n, _)| n == "message_start").unwrap().1;
    assert_eq!(start["message"]["id"], id.as_str(), "{start}");
    assert_eq!(start["message"]["model"], "anthropic/claude", "{start}");
    let delta = &events.iter().find(|(n, _)| n == "message_delta").unwrap().1;
    assert_eq!(delta["provider"], "claude", "{delta}");
    let cost = delta["usage"]["cost"].as_f64().expect("usage.cost");
    assert!(cost > 0.0, "{delta}");
    let record = generation_data(&gw, &id).await;
    assert_eq!(record["total_cost"].as_f64(), Some(cost), "{record}");
    // Everything else is the provider's, event for event.
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names.last(), Some(&"message_stop"));
    assert!(names.contains(&"ping"), "{names:?}");
}

/// Claude Code's loop with thinking on, against Claude on Bedrock: each turn after the first
/// replays the signed thinking that led to the tool call, which Claude requires back.
#[tokio::test]
async fn a_thinking_tool_loop_through_the_anthropic_door_goes_on_against_bedrock() {
    let (mock, gw) = start();
    let tools = json!([{"name": "get_weather", "description": "Weather",
        "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}}}]);
    let ask = json!({"role": "user", "content": "Weather in Paris?"});
    let turn = |messages: Value, stream: bool| {
        json!({"model": "anthropic/claude-bedrock", "max_tokens": 4096, "stream": stream,
            "thinking": {"type": "enabled", "budget_tokens": 2048}, "tools": tools,
            "messages": messages})
    };
    let r = post(&gw, "/v1/messages", turn(json!([ask]), false)).await;
    assert_eq!(r.status(), 200);
    let first: Value = r.json().await.unwrap();
    let content = first["content"].as_array().unwrap().clone();
    let (thinking, call) = (&content[0], &content[1]);
    assert_eq!(thinking["type"], "thinking", "{first}");
    let signature = thinking["signature"].as_str().unwrap();
    assert!(
        !signature.is_empty(),
        "Bedrock's signature reaches the client, which must send it back: {first}"
    );
    assert_eq!(call["type"], "tool_use", "{first}");

    // The client sends the assistant turn back as it got it, with the tool's result.
    let result = json!({"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": call["id"], "content": "18C, sunny"}]});
    for stream in [false, true] {
        let messages = json!([ask, {"role": "assistant", "content": content}, result]);
        let r = post(&gw, "/v1/messages", turn(messages, stream)).await;
        let status = r.status();
        let dropped = r.headers().get("x-switchyard-dropped").cloned();
        let text = r.text().await.unwrap();
        assert_eq!(status, 200, "stream {stream}: {text}");
        assert_eq!(dropped, None, "nothing of the turn is dropped");
        let up = mock.requests().pop().unwrap().json().unwrap();
        let replayed = &up["messages"][1]["content"];
        assert_eq!(
            replayed[0]["reasoningContent"]["reasoningText"],
            json!({"text": thinking["thinking"], "signature": signature}),
            "the signed thinking comes first in the assistant turn: {up}"
        );
        assert_eq!(replayed[1]["toolUse"]["toolUseId"], call["id"], "{up}");
        assert_eq!(
            up["additionalModelRequestFields"]["thinking"]["type"], "enabled",
            "{up}"
        );
    }
}

#[tokio::test]
async fn the_anthropic_door_answers_errors_in_anthropic_shape() {
    let (_mock, gw) = start();
    let r = client()
        .post(gw.url("/v1/messages"))
        .json(&json!({"model": "openai/gpt", "max_tokens": 1, "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "authentication_error");
    let r = client().post(gw.url("/v1/messages")).bearer_auth(KEY).json(&json!({"model": "nope/x", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}]})).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["type"],
        "not_found_error"
    );
    let r = post(
        &gw,
        "/v1/messages",
        json!({"model": "openai/gpt", "messages": "not a list"}),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["type"],
        "invalid_request_error"
    );
}

/// A wrong method on `/v1/messages`, or a path below it that the gateway does not serve
/// (the Anthropic SDK's `messages.count_tokens`), is answered in the door's own shape too.
#[tokio::test]
async fn the_anthropic_doors_404_and_405_are_anthropic_shaped() {
    let (_mock, gw) = start();
    let r = client()
        .get(gw.url("/v1/messages"))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "POST");
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (&body["type"], &body["error"]["type"]),
        (&json!("error"), &json!("invalid_request_error")),
        "{body}"
    );
    let r = post(
        &gw,
        "/api/v1/messages/count_tokens",
        json!({"model": "openai/gpt", "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (&body["type"], &body["error"]["type"]),
        (&json!("error"), &json!("not_found_error")),
        "{body}"
    );
    // Other doors keep OpenAI's shape.
    let r = client().get(gw.url("/v1/messagesx")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["type"],
        "not_found_error"
    );
}

#[tokio::test]
async fn responses_work_against_openai_and_anthropic_providers() {
    let (_mock, gw) = start();
    for model in ["openai/gpt", "anthropic/claude"] {
        let r = client()
            .post(gw.url("/v1/responses"))
            .bearer_auth(KEY)
            .json(&json!({"model": model, "instructions": "be brief", "input": "Hello responses"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{model}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["object"], "response");
        assert_eq!(body["status"], "completed");
        assert_eq!(body["model"], model);
        let text = body["output"][0]["content"][0]["text"].as_str().unwrap();
        assert!(text.contains("Hello responses"), "{body}");
        assert!(body["usage"]["input_tokens"].as_u64().unwrap() > 0);

        let r = client().post(gw.url("/v1/responses")).bearer_auth(KEY)
            .json(&json!({"model": model, "input": [{"role": "user", "content": "Hello stream"}], "stream": true})).send().await.unwrap();
        let text = r.text().await.unwrap();
        let names: Vec<String> = anthropic_events(&text)
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(
            names.first().map(String::as_str),
            Some("response.created"),
            "{model}: {text}"
        );
        assert_eq!(names.last().map(String::as_str), Some("response.completed"));
        assert!(names.iter().any(|n| n == "response.output_text.delta"));
    }
    let r = client()
        .post(gw.url("/v1/responses"))
        .bearer_auth(KEY)
        .json(&json!({"model": "openai/gpt", "input": "x", "previous_response_id": "resp_1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.json::<Value>().await.unwrap()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("previous_response_id"));
}

/// A provider that reports no usage is charged an estimate, and the Messages and Responses
/// doors say so in their usage objects (`estimated: true`) as the chat door does, streamed or
/// not. Both dropped it: a client saw estimated counts as the provider's own.
#[tokio::test]
async fn the_messages_and_responses_doors_say_when_usage_is_estimated() {
    let (_mock, gw) = start();
    let model = "openai/gpt-nousage";
    for stream in [false, true] {
        let r = post(&gw, "/v1/messages", json!({"model": model, "max_tokens": 50, "stream": stream,
                                                 "messages": [{"role": "user", "content": "Hello"}]})).await;
        assert_eq!(r.status(), 200);
        let usage = if stream {
            let text = r.text().await.unwrap();
            anthropic_events(&text)
                .into_iter()
                .find(|(name, _)| name == "message_delta")
                .map(|(_, v)| v["usage"].clone())
                .unwrap_or_else(|| panic!("no message_delta: {text}"))
        } else {
            r.json::<Value>().await.unwrap()["usage"].clone()
        };
        assert_eq!(
            usage["estimated"], true,
            "messages, stream {stream}: {usage}"
        );
        assert!(usage["output_tokens"].as_u64().unwrap() > 0, "{usage}");

        let r = client()
            .post(gw.url("/v1/responses"))
            .bearer_auth(KEY)
            .json(&json!({"model": model, "input": "Hello", "stream": stream}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let usage = if stream {
            let text = r.text().await.unwrap();
            anthropic_events(&text)
                .into_iter()
                .find(|(name, _)| name == "response.completed")
                .map(|(_, v)| v["response"]["usage"].clone())
                .unwrap_or_else(|| panic!("no response.completed: {text}"))
        } else {
            r.json::<Value>().await.unwrap()["usage"].clone()
        };
        assert_eq!(
            usage["estimated"], true,
            "responses, stream {stream}: {usage}"
        );
    }
}

#[tokio::test]
async fn embeddings_are_routed_metered_and_recorded() {
    let (mock, gw) = start();
    for model in ["openai/embed", "google/embed"] {
        let r = client()
            .post(gw.url("/v1/embeddings"))
            .bearer_auth(KEY)
            .json(&json!({"model": model, "input": ["first text", "second text"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{model}");
        let id = r.headers()["x-generation-id"].to_str().unwrap().to_string();
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["object"], "list");
        assert_eq!(body["data"].as_array().unwrap().len(), 2);
        assert!(body["data"][0]["embedding"].as_array().unwrap().len() >= 8);
        assert_eq!(body["model"], model);
        assert!(body["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
        assert!(body["usage"]["cost"].as_f64().unwrap() > 0.0);
        let seen = mock.requests().pop().unwrap();
        match model {
            "openai/embed" => assert_eq!(seen.path, "/v1/embeddings"),
            _ => assert_eq!(
                seen.path,
                "/v1/models/text-embedding-004:batchEmbedContents"
            ),
        }
        assert_eq!(generation_data(&gw, &id).await["model"], model);
    }
    // A model with no embeddings-capable provider is a clear 404.
    let r = client()
        .post(gw.url("/v1/embeddings"))
        .bearer_auth(KEY)
        .json(&json!({"model": "anthropic/claude", "input": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

/// An Anthropic stream that ends before `message_delta` (Claude Code's Esc, a provider reset):
/// `message_start` says 1 output token, a placeholder. The record bills the reported prompt
/// and the content that went by, and says it is an estimate.
#[tokio::test]
async fn a_cut_anthropic_stream_is_billed_for_what_was_generated() {
    let (_mock, gw) = start();
    let r = post(
        &gw,
        "/v1/messages",
        json!({"model": "anthropic/claude", "max_tokens": 100, "stream": true,
            "mock": {"truncated": true, "chunks": 20, "usage_prompt": 30},
            "messages": [{"role": "user", "content": "Hello"}]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let id = r.headers()["x-generation-id"].to_str().unwrap().to_string();
    let text = r.text().await.unwrap();
    assert!(!text.contains("message_delta"), "{text}");
    let d = generation_data(&gw, &id).await;
    assert_eq!(d["tokens_prompt"], 30, "{d}");
    assert_eq!(d["tokens_completion"], 20, "{d}");
    assert_eq!(d["estimated"], true, "{d}");
}

/// Gemini's thinking through the Messages door: its thought shows as thinking, but its thought
/// signature (on the tool call) is no Claude signature and becomes no `redacted_thinking`
/// block or `signature_delta`: Claude Code would send those back, and Claude refuses them.
#[tokio::test]
async fn gemini_thought_signatures_do_not_stream_as_claude_thinking() {
    let (_mock, gw) = start();
    let r = post(
        &gw,
        "/v1/messages",
        json!({"model": "google/gemini-tools", "max_tokens": 2000, "stream": true,
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
            "messages": [{"role": "user", "content": "Weather in Paris?"}]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let events = anthropic_events(&text);
    let blocks: Vec<&str> = events
        .iter()
        .filter_map(|(_, d)| d["content_block"]["type"].as_str())
        .collect();
    assert_eq!(blocks, ["thinking", "tool_use"], "{text}");
    assert!(!text.contains("bW9jay1zaWduYXR1cmU="), "{text}");
    assert!(!text.contains("signature_delta"), "{text}");
}

#[tokio::test]
async fn routing_extensions_work_on_every_door() {
    let (_mock, gw) = start();
    let r = post(
        &gw,
        "/v1/messages",
        json!({"model": "anthropic/broken", "models": ["openai/gpt"], "max_tokens": 10,
        "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    // A 400 from the first model is the client's error, not a reason to fall back...
    assert_eq!(r.status(), 400);
    let r = client()
        .post(gw.url("/v1/responses"))
        .bearer_auth(KEY)
        .json(&json!({"model": "openai/gpt", "provider": {"only": ["nobody"]}, "input": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        404,
        "provider preferences apply to the Responses door"
    );
    let r = post(
        &gw,
        "/v1/messages",
        json!({"model": "openai/gpt", "provider": {"only": ["nobody"]}, "max_tokens": 10,
        "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(r.status(), 404, "and to the Messages door");
}
