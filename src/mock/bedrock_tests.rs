//! The Bedrock and Azure faces of a live mock: paths, keys, faults and error shapes as each
//! provider has them, and answers equal to the OpenAI path's. Bedrock streams are read with
//! the gateway's own decoder and converter, so this also checks the two against each other.

use std::time::SystemTime;

use serde_json::{json, Value};

use super::MockServer;
use crate::dialects::bedrock::{self, EventStreamDecoder, StreamConverter};

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

async fn post(server: &MockServer, path: &str, headers: &[(&str, &str)], body: &Value) -> Reply {
    let url = format!("http://{}{path}", server.addr());
    let mut req = reqwest::Client::new().post(url).body(body.to_string());
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = req.send().await.expect("mock answers");
    Reply {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        body: resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default(),
    }
}

fn converse_body() -> Value {
    json!({
        "system": [{ "text": "Be brief." }],
        "messages": [{ "role": "user", "content": [{ "text": "Hi there" }] }],
    })
}

#[tokio::test]
async fn converse_answers_like_the_openai_path() {
    let server = MockServer::start("127.0.0.1:0").expect("start");
    let r = post(
        &server,
        "/model/anthropic.claude-x-v1%3A0/converse",
        &[],
        &converse_body(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), "application/json");
    let v = r.json();
    let openai = json!({ "model": "m", "messages": [
        { "role": "system", "content": "Be brief." }, { "role": "user", "content": "Hi there" }] });
    let o = post(&server, "/v1/chat/completions", &[], &openai)
        .await
        .json();
    assert_eq!(
        v["output"]["message"]["content"][0]["text"],
        o["choices"][0]["message"]["content"]
    );
    assert_eq!(v["output"]["message"]["role"], "assistant");
    assert_eq!(v["stopReason"], "end_turn");
    assert_eq!(v["usage"]["inputTokens"], o["usage"]["prompt_tokens"]);
    assert_eq!(v["usage"]["outputTokens"], o["usage"]["completion_tokens"]);
    let (completion, usage) = bedrock::chat_response(&r.body).expect("the dialect reads it");
    assert_eq!(
        completion["choices"][0]["message"]["content"],
        o["choices"][0]["message"]["content"]
    );
    assert_eq!(usage.prompt, 10);
    let recorded = server.requests();
    assert_eq!(
        recorded[0].path,
        "/model/anthropic.claude-x-v1%3A0/converse"
    );
}

/// Every message of a ConverseStream answer, converted to OpenAI chunks and a summary.
fn convert_stream(body: &[u8]) -> (Vec<Value>, StreamConverter) {
    let mut conv = StreamConverter::new(1);
    let mut out = conv.on_chunk(body).to_vec();
    out.extend_from_slice(&conv.finish());
    let text = String::from_utf8_lossy(&out).into_owned();
    let chunks = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str(d).ok())
        .collect();
    (chunks, conv)
}

#[tokio::test]
async fn converse_stream_is_framed_event_stream_with_tool_use_and_thinking() {
    let server = MockServer::start("127.0.0.1:0").expect("start");
    let mut body = converse_body();
    body["toolConfig"] = json!({ "tools": [{ "toolSpec": { "name": "get_weather",
        "inputSchema": { "json": { "type": "object" } } } }] });
    body["additionalModelRequestFields"] =
        json!({ "thinking": { "type": "enabled", "budget_tokens": 1024 } });
    let fault = [("x-mock-fault", "tool_call+usage_cached=4")];
    let r = post(&server, "/model/m/converse-stream", &fault, &body).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), bedrock::STREAM_CONTENT_TYPE);
    let mut decoder = EventStreamDecoder::new();
    decoder.feed(&r.body);
    let mut kinds = Vec::new();
    while let Some(m) = decoder.next_message().expect("valid CRCs") {
        kinds.push(m.event_type().unwrap_or("?").to_string());
    }
    assert_eq!(
        kinds,
        [
            "messageStart",
            "contentBlockDelta",
            "contentBlockDelta",
            "contentBlockStop",
            "contentBlockStart",
            "contentBlockDelta",
            "contentBlockDelta",
            "contentBlockDelta",
            "contentBlockStop",
            "messageStop",
            "metadata"
        ]
    );
    let (chunks, conv) = convert_stream(&r.body);
    let args: String = chunks
        .iter()
        .filter_map(|c| c.pointer("/choices/0/delta/tool_calls/0/function/arguments"))
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(args, r#"{"location":"Paris"}"#);
    let call = chunks
        .iter()
        .find_map(|c| c.pointer("/choices/0/delta/tool_calls/0/id"))
        .and_then(Value::as_str);
    assert!(
        call.is_some_and(|id| id.starts_with("tooluse_mock_")),
        "{call:?}"
    );
    assert!(chunks
        .iter()
        .any(|c| c.pointer("/choices/0/delta/reasoning").is_some()));
    assert_eq!(conv.finish_reason(), Some("tool_calls"));
    let usage = conv.usage().expect("metadata usage");
    assert_eq!(
        (usage.prompt, usage.cached_prompt, usage.completion),
        (10, 4, 3)
    );
    assert!(conv.error().is_none());
}

#[tokio::test]
async fn converse_stream_faults_change_the_events() {
    let server = MockServer::start("127.0.0.1:0").expect("start");
    let body = converse_body();
    let r = post(&server, "/model/m+no_usage/converse-stream", &[], &body).await;
    let (chunks, conv) = convert_stream(&r.body);
    assert!(conv.usage().is_none() && conv.finish_reason() == Some("stop"));
    let text: String = chunks
        .iter()
        .filter_map(|c| {
            c.pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
        })
        .collect();
    assert_eq!(text, "Hello from the mock! You said: Hi there");
    let r = post(&server, "/model/m+truncated/converse-stream", &[], &body).await;
    let (_, conv) = convert_stream(&r.body);
    assert!(conv.usage().is_none() && conv.finish_reason().is_none());
    // `malformed`: a well-framed event whose JSON is broken, skipped by the converter.
    let r = post(&server, "/model/m+malformed/converse-stream", &[], &body).await;
    let (chunks, conv) = convert_stream(&r.body);
    assert!(conv.error().is_none() && conv.finish_reason() == Some("stop"));
    assert!(chunks.len() > 3);
    let r = post(&server, "/model/m+malformed/converse", &[], &body).await;
    assert_eq!(bedrock::chat_response(&r.body).unwrap_err().status, 502);
}

#[tokio::test]
async fn converse_errors_come_in_bedrock_shape() {
    let server = MockServer::start("127.0.0.1:0").expect("start");
    let body = converse_body();
    let r = post(
        &server,
        "/model/m+status=429+retry_after=3/converse",
        &[],
        &body,
    )
    .await;
    assert_eq!(r.status, 429);
    assert!(r
        .header("x-amzn-errortype")
        .starts_with("ThrottlingException:"));
    assert_eq!(r.header("retry-after"), "3");
    let message = r.json()["message"].as_str().unwrap_or("").to_string();
    assert!(message.contains("Too many requests"), "{message}");
    let typed = bedrock::error_status_typed(429, Some(r.header("x-amzn-errortype")), &r.body);
    assert_eq!(typed, (429, message));
    for (status, kind, mapped) in [
        ("503", "ServiceUnavailableException", 503),
        ("408", "ModelTimeoutException", 504),
        ("403", "AccessDeniedException", 401),
    ] {
        let fault = format!("status={status}");
        let r = post(
            &server,
            "/model/m/converse",
            &[("x-mock-fault", &fault)],
            &body,
        )
        .await;
        assert!(r.header("x-amzn-errortype").starts_with(kind), "{status}");
        let errortype = Some(r.header("x-amzn-errortype"));
        assert_eq!(
            bedrock::error_status_typed(r.status, errortype, &r.body).0,
            mapped
        );
    }
    let r = post(
        &server,
        "/model/m/converse",
        &[],
        &json!({ "messages": [] }),
    )
    .await;
    assert_eq!(
        (
            r.status,
            r.header("x-amzn-errortype")
                .starts_with("ValidationException")
        ),
        (400, true)
    );
    let r = post(&server, "/model/m/invoke", &[], &body).await;
    assert_eq!(r.status, 404, "not a Converse path: the OpenAI face's 404");
}

fn signed(key: &str, path: &str, body: &Value) -> Vec<(String, String)> {
    let body = body.to_string();
    bedrock::sign(
        "POST",
        "127.0.0.1",
        path,
        body.as_bytes(),
        "us-east-1",
        key,
        "secret",
        None,
        SystemTime::now(),
    )
    .expect("signs")
}

#[tokio::test]
async fn converse_with_a_key_wants_a_sigv4_credential_for_it() {
    let server = MockServer::start_with_key("127.0.0.1:0", "AKIDMOCK").expect("start");
    let body = converse_body();
    let path = "/model/m/converse";
    let r = post(&server, path, &[], &body).await;
    assert_eq!(r.status, 403);
    assert!(r
        .header("x-amzn-errortype")
        .starts_with("MissingAuthenticationTokenException"));
    let headers = signed("AKIDOTHER", path, &body);
    let refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let r = post(&server, path, &refs, &body).await;
    assert_eq!(r.status, 403);
    assert!(r
        .header("x-amzn-errortype")
        .starts_with("UnrecognizedClientException"));
    let headers = signed("AKIDMOCK", path, &body);
    let refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let r = post(&server, path, &refs, &body).await;
    assert_eq!(r.status, 200);
    let without_date: Vec<(&str, &str)> = refs
        .into_iter()
        .filter(|(n, _)| *n != "x-amz-date")
        .collect();
    let r = post(&server, path, &without_date, &body).await;
    assert!(r
        .header("x-amzn-errortype")
        .starts_with("IncompleteSignatureException"));
}

#[tokio::test]
async fn azure_answers_like_openai_under_the_deployment_name() {
    let server = MockServer::start_with_key("127.0.0.1:0", "az-key").expect("start");
    let key = [("api-key", "az-key")];
    let chat =
        json!({ "model": "ignored", "messages": [{ "role": "user", "content": "Hi there" }] });
    let path = "/openai/deployments/my-gpt/chat/completions?api-version=2024-10-21";
    let r = post(&server, path, &key, &chat).await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["model"], "my-gpt");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Hello from the mock! You said: Hi there"
    );
    assert_eq!(v["usage"]["prompt_tokens"], 5);

    let mut stream = chat.clone();
    stream["stream"] = json!(true);
    let r = post(&server, path, &key, &stream).await;
    let text = String::from_utf8_lossy(&r.body).into_owned();
    assert_eq!(r.header("content-type"), "text/event-stream");
    assert!(
        text.contains(r#""model":"my-gpt""#) && text.ends_with("data: [DONE]\n\n"),
        "{text}"
    );

    let embed = json!({ "input": "hello world" });
    let r = post(
        &server,
        "/openai/deployments/emb/embeddings?api-version=1",
        &key,
        &embed,
    )
    .await;
    assert_eq!((r.status, r.json()["model"].clone()), (200, json!("emb")));
}

#[tokio::test]
async fn azure_refusals_and_faults_come_in_azure_shape() {
    let server = MockServer::start_with_key("127.0.0.1:0", "az-key").expect("start");
    let key = [("api-key", "az-key")];
    let chat = json!({ "messages": [{ "role": "user", "content": "Hi" }] });
    let r = post(
        &server,
        "/openai/deployments/d/chat/completions",
        &key,
        &chat,
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], "MissingApiVersionParameter");
    let path = "/openai/deployments/d/chat/completions?api-version=2024-10-21";
    let r = post(&server, path, &[("api-key", "wrong")], &chat).await;
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (401, json!("401"))
    );
    let r = post(&server, path, &[("authorization", "Bearer az-key")], &chat).await;
    assert_eq!(r.status, 401, "Azure's key goes in api-key");
    let knobs = "/openai/deployments/d+status=429+retry_after=2/chat/completions?api-version=1";
    let r = post(&server, knobs, &key, &chat).await;
    assert_eq!((r.status, r.header("retry-after")), (429, "2"));
    assert_eq!(r.json()["error"]["code"], "429");
    let r = post(
        &server,
        "/openai/deployments/d/completions?api-version=1",
        &key,
        &chat,
    )
    .await;
    assert_eq!(
        (r.status, r.json()["error"]["message"].clone()),
        (404, json!("Resource not found"))
    );
}
