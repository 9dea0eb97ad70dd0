//! The Anthropic and Gemini faces of the mock: event sequences as rendered, then a live
//! server answering each dialect's paths, keys and faults in that provider's own shapes.

use serde_json::{json, Value};

use super::anthropic::{Event as AEvent, Message};
use super::gemini::{Event as GEvent, Generation};
use super::openai::{Answer, Usage};
use super::MockServer;

fn usage() -> Usage {
    Usage {
        prompt: 10,
        completion: 2,
        cached: 4,
        reasoning: 0,
        cache_write: 0,
    }
}

fn message(answer: Answer, thinking: bool) -> Message {
    Message {
        id: "msg_mock_1".into(),
        model: "claude-x".into(),
        answer,
        thinking,
        usage: usage(),
        send_usage: true,
    }
}

/// (event name, data) of each rendered Anthropic event.
fn anthropic_events(m: &Message, malformed: bool, truncated: bool) -> Vec<(String, Value)> {
    m.events(malformed, truncated)
        .map(|e| {
            let text = String::from_utf8_lossy(&m.render(e)).into_owned();
            assert!(
                text.ends_with("\n\n") && text.matches("\n\n").count() == 1,
                "{text:?}"
            );
            let (name, data) = text.trim_end().split_once("\ndata: ").unwrap_or_default();
            let name = name.strip_prefix("event: ").unwrap_or_default().to_string();
            (name, serde_json::from_str(data).unwrap_or(Value::Null))
        })
        .collect()
}

#[test]
fn anthropic_stream_follows_the_standard_event_sequence() {
    let m = message(Answer::text("Hi there you".into()), false);
    let events = anthropic_events(&m, false, false);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert!(events
        .iter()
        .all(|(name, data)| data["type"] == name.as_str()));
    let start = &events[0].1["message"];
    assert_eq!(
        start["usage"],
        json!({"input_tokens": 6, "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 4, "output_tokens": 1})
    );
    let text: String = events[3..6]
        .iter()
        .map(|(_, d)| d["delta"]["text"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(text, "Hi there you");
    assert_eq!(events[7].1["delta"]["stop_reason"], "end_turn");
    assert_eq!(events[7].1["usage"], json!({"output_tokens": 2}));

    let whole: Value = serde_json::from_slice(&m.body()).unwrap_or(Value::Null);
    assert_eq!(
        whole["content"],
        json!([{"type": "text", "text": "Hi there you"}])
    );
    assert_eq!(whole["usage"]["input_tokens"], 6);
}

#[test]
fn anthropic_thinking_and_tool_use_blocks() {
    let tool = Answer::Tool {
        call_id: "toolu_mock_1".into(),
        name: "get_weather".into(),
    };
    let m = message(tool, true);
    let events = anthropic_events(&m, false, false);
    assert_eq!(events[1].1["content_block"]["type"], "thinking");
    assert_eq!(events[3].1["delta"]["type"], "signature_delta");
    let block = &events[5].1;
    assert_eq!(
        (
            block["index"].as_u64(),
            block["content_block"]["type"].as_str()
        ),
        (Some(1), Some("tool_use"))
    );
    let args: String = events
        .iter()
        .filter_map(|(_, d)| d["delta"]["partial_json"].as_str())
        .collect();
    assert_eq!(args, r#"{"location":"Paris"}"#);
    assert_eq!(
        events[events.len() - 2].1["delta"]["stop_reason"],
        "tool_use"
    );
    let whole: Value = serde_json::from_slice(&m.body()).unwrap_or(Value::Null);
    assert_eq!(whole["content"][1]["input"], json!({"location": "Paris"}));
    assert_eq!(whole["stop_reason"], "tool_use");
}

#[test]
fn anthropic_stream_faults_change_the_sequence() {
    let mut m = message(Answer::text("a b".into()), false);
    let kinds: Vec<AEvent> = m.events(true, true).collect();
    assert_eq!(kinds[1], AEvent::Malformed);
    assert_eq!(
        kinds.last(),
        Some(&AEvent::Delta(1)),
        "truncated ends after the last delta"
    );
    m.send_usage = false;
    let events = anthropic_events(&m, false, false);
    assert!(events
        .iter()
        .all(|(_, d)| d.get("usage").is_none() && d["message"].get("usage").is_none()));
}

fn generation(answer: Answer, thoughts: bool) -> Generation {
    let usage = Usage {
        prompt: 10,
        completion: 7,
        cached: 4,
        reasoning: 5,
        cache_write: 0,
    };
    Generation {
        id: "mock-resp-1".into(),
        model: "gemini-x".into(),
        answer,
        thoughts,
        usage,
        send_usage: true,
    }
}

#[test]
fn gemini_stream_sends_new_parts_then_finish_and_usage() {
    let g = generation(Answer::text("Hi you".into()), true);
    let kinds: Vec<GEvent> = g.events(false, false).collect();
    assert_eq!(
        kinds,
        [
            GEvent::Thought,
            GEvent::Delta(0),
            GEvent::Delta(1),
            GEvent::Final
        ]
    );
    let events: Vec<Value> = kinds
        .iter()
        .map(|e| {
            let text = String::from_utf8_lossy(&g.render(*e)).into_owned();
            assert!(
                text.starts_with("data: ") && text.ends_with("\r\n\r\n"),
                "{text:?}"
            );
            serde_json::from_str(text.trim_end().trim_start_matches("data: "))
                .unwrap_or(Value::Null)
        })
        .collect();
    assert_eq!(
        events[0]["candidates"][0]["content"]["parts"][0]["thought"],
        true
    );
    assert_eq!(
        events[1]["candidates"][0]["content"]["parts"][0]["text"],
        "Hi "
    );
    assert!(events[..3]
        .iter()
        .all(|e| e.get("usageMetadata").is_none()
            && e["candidates"][0].get("finishReason").is_none()));
    assert_eq!(events[3]["candidates"][0]["finishReason"], "STOP");
    assert_eq!(
        events[3]["usageMetadata"],
        json!({"promptTokenCount": 10, "candidatesTokenCount": 2,
        "totalTokenCount": 17, "cachedContentTokenCount": 4, "thoughtsTokenCount": 5})
    );
    assert_eq!(events[3]["modelVersion"], "gemini-x");

    let tool = generation(
        Answer::Tool {
            call_id: String::new(),
            name: "get_weather".into(),
        },
        false,
    );
    let whole: Value = serde_json::from_slice(&tool.body()).unwrap_or(Value::Null);
    let part = &whole["candidates"][0]["content"]["parts"][0];
    assert_eq!(
        part["functionCall"],
        json!({"name": "get_weather", "args": {"location": "Paris"}})
    );
    assert!(part["thoughtSignature"].is_string());
    assert_eq!(
        tool.events(true, true).collect::<Vec<_>>(),
        [GEvent::Malformed, GEvent::Delta(0)]
    );
}

/// A request to the live mock; returns status, content type and body text.
async fn send(
    server: &MockServer,
    path: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> (u16, String, String) {
    let url = format!("http://{}{path}", server.addr());
    let mut req = reqwest::Client::new().post(url).json(&body);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = req.send().await.expect("mock answers");
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        retry.map_or(ctype.clone(), |r| format!("{ctype}; retry-after={r}")),
        text,
    )
}

const VERSION: (&str, &str) = ("anthropic-version", "2023-06-01");

#[tokio::test]
async fn anthropic_messages_with_key_stream_and_faults() {
    let server = MockServer::start_with_key("127.0.0.1:0", "sk-ant").expect("start");
    let body = json!({"model": "claude-x", "max_tokens": 100, "messages": [{"role": "user", "content": "Hi there"}]});
    let (status, _, text) = send(&server, "/v1/messages", &[VERSION], body.clone()).await;
    assert_eq!(status, 401);
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    assert_eq!(
        (v["type"].as_str(), v["error"]["type"].as_str()),
        (Some("error"), Some("authentication_error"))
    );

    let key = ("x-api-key", "sk-ant");
    let (status, _, text) = send(&server, "/v1/messages", &[key], body.clone()).await;
    assert_eq!(status, 400, "anthropic-version is required: {text}");

    let (status, ctype, text) = send(&server, "/v1/messages", &[key, VERSION], body.clone()).await;
    assert_eq!((status, ctype.as_str()), (200, "application/json"));
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    assert_eq!(
        v["content"][0]["text"],
        "Hello from the mock! You said: Hi there"
    );
    assert_eq!(v["usage"]["input_tokens"], 5);

    let mut stream = body.clone();
    stream["stream"] = json!(true);
    let (status, ctype, text) =
        send(&server, "/anthropic/v1/messages", &[key, VERSION], stream).await;
    assert_eq!((status, ctype.as_str()), (200, "text/event-stream"));
    assert!(
        text.starts_with("event: message_start\ndata: ")
            && text.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
    );

    let mut overloaded = body.clone();
    overloaded["model"] = json!("claude-x+status=529");
    let (status, _, text) = send(&server, "/v1/messages", &[key, VERSION], overloaded).await;
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    assert_eq!(
        (status, v["error"]["type"].as_str()),
        (529, Some("overloaded_error"))
    );
    let (status, ctype, _) = send(
        &server,
        "/v1/messages",
        &[key, VERSION, ("x-mock-fault", "status=429+retry_after=3")],
        body,
    )
    .await;
    assert_eq!(
        (status, ctype.as_str()),
        (429, "application/json; retry-after=3")
    );
    assert_eq!(
        server.requests()[0].header("x-api-key"),
        None,
        "recorded before the key check"
    );
}

#[tokio::test]
async fn gemini_generate_with_key_stream_and_faults() {
    let server = MockServer::start_with_key("127.0.0.1:0", "g-key").expect("start");
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "Hi there"}]}],
                      "tools": [{"functionDeclarations": [{"name": "get_weather"}]}]});
    let path = "/v1beta/models/gemini-x:generateContent";
    let (status, _, text) = send(&server, path, &[], body.clone()).await;
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    assert_eq!(
        (status, v["error"]["status"].as_str()),
        (403, Some("PERMISSION_DENIED"))
    );
    let (status, _, text) = send(&server, path, &[("x-goog-api-key", "wrong")], body.clone()).await;
    assert_eq!(status, 400);
    assert!(text.contains("API_KEY_INVALID"));

    let key = ("x-goog-api-key", "g-key");
    let (status, _, text) = send(&server, path, &[key], body.clone()).await;
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    assert_eq!(status, 200);
    assert_eq!(
        v["candidates"][0]["content"]["parts"][0]["text"],
        "Hello from the mock! You said: Hi there"
    );
    assert_eq!(
        (
            v["modelVersion"].as_str(),
            v["usageMetadata"]["promptTokenCount"].as_u64()
        ),
        (Some("gemini-x"), Some(5))
    );

    let stream = "/v1beta/models/gemini-x:streamGenerateContent?alt=sse&key=g-key";
    let (status, ctype, text) = send(
        &server,
        stream,
        &[("x-mock-fault", "tool_call")],
        body.clone(),
    )
    .await;
    assert_eq!((status, ctype.as_str()), (200, "text/event-stream"));
    let events: Vec<&str> = text.split_terminator("\r\n\r\n").collect();
    assert_eq!(events.len(), 2, "{text}");
    assert!(
        events[0].contains("\"functionCall\"") && events[1].contains("\"finishReason\":\"STOP\"")
    );

    let array = "/v1beta/models/gemini-x:streamGenerateContent";
    let (_, _, text) = send(&server, array, &[key], body.clone()).await;
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    assert!(
        v.as_array().is_some_and(|a| a.len() == 9),
        "one JSON array without alt=sse: {text}"
    );

    let limited = "/v1beta/models/gemini-x+status=429+retry_after=2:generateContent";
    let (status, ctype, text) = send(&server, limited, &[key], body).await;
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    assert_eq!(
        (status, ctype.as_str()),
        (429, "application/json; retry-after=2")
    );
    assert_eq!(
        (v["error"]["code"].as_u64(), v["error"]["status"].as_str()),
        (Some(429), Some("RESOURCE_EXHAUSTED"))
    );
}

#[tokio::test]
async fn stream_faults_apply_to_every_dialect() {
    let server = MockServer::start("127.0.0.1:0").expect("start");
    server.set_default_fault(Some("reset=mid"));
    let body = json!({"model": "c", "max_tokens": 10, "stream": true, "messages": [{"role": "user", "content": "a b c d"}]});
    let url = format!("http://{}/v1/messages", server.addr());
    let resp = reqwest::Client::new()
        .post(url)
        .header(VERSION.0, VERSION.1)
        .json(&body)
        .send()
        .await;
    let resp = resp.expect("headers arrive before the cut");
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.text().await.is_err(), "the body is cut mid-stream");

    server.set_default_fault(Some("truncated+no_usage"));
    let contents = json!({"contents": [{"parts": [{"text": "x"}]}]});
    let (_, _, text) = send(
        &server,
        "/v1beta/models/g:streamGenerateContent?alt=sse",
        &[],
        contents,
    )
    .await;
    assert!(
        !text.contains("finishReason") && !text.contains("usageMetadata"),
        "{text}"
    );
}
