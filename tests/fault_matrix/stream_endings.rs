//! How a stream ends, for every provider dialect and every front door: a stream the provider
//! closes cleanly but before the answer finished (no finish reason or `[DONE]`, no
//! `message_stop`, no `finishReason`, no `messageStop`) ends with the front door's error and
//! leaves a record with the error and a failed attempt (it counts against the provider's
//! health); a whole stream ends as usual, with no error anywhere.

use serde_json::{json, Value};

use super::common::*;
use super::upstream::record_of;

/// One provider per dialect, all on one mock.
fn dialects_config(mock: &MockServer) -> String {
    let base = mock.base_url();
    let mut providers = String::new();
    for (name, dialect, extra) in [
        ("oai", "openai", "    api_key_env: UPSTREAM_KEY\n"),
        ("claude", "anthropic", "    api_key_env: UPSTREAM_KEY\n"),
        ("gem", "gemini", "    api_key_env: UPSTREAM_KEY\n"),
        (
            "br",
            "bedrock",
            "    region: us-east-1\n    aws_access_key_id_env: UPSTREAM_KEY\n    aws_secret_access_key_env: UPSTREAM_KEY\n",
        ),
    ] {
        providers.push_str(&format!(
            "  {name}:\n    dialect: {dialect}\n    base_url: \"{base}\"\n{extra}"
        ));
    }
    let mut models = String::new();
    for (provider, upstream) in [
        ("oai", "gpt-up"),
        ("claude", "claude-up"),
        ("gem", "gemini-up"),
        ("br", "amazon.nova-pro-v1:0"),
    ] {
        for (suffix, knobs) in [("whole", ""), ("truncated", "+truncated")] {
            models.push_str(&format!(
                "  t/{provider}-{suffix}:\n    endpoints:\n      - {{ provider: {provider}, model: \"{upstream}{knobs}\", price: {{ prompt: 1, completion: 1 }} }}\n"
            ));
        }
    }
    format!("{}providers:\n{providers}models:\n{models}", config_head())
}

#[derive(Clone, Copy, Debug)]
enum Door {
    Chat,
    Messages,
    Responses,
}

async fn stream_through(gw: &Gateway, door: Door, model: &str) -> (u16, String, String) {
    let (path, body) = match door {
        Door::Chat => (
            "/v1/chat/completions",
            json!({"model": model, "stream": true, "messages": [{"role": "user", "content": "Hello stream"}]}),
        ),
        Door::Messages => (
            "/v1/messages",
            json!({"model": model, "stream": true, "max_tokens": 200,
                   "messages": [{"role": "user", "content": "Hello stream"}]}),
        ),
        Door::Responses => (
            "/v1/responses",
            json!({"model": model, "stream": true, "input": "Hello stream"}),
        ),
    };
    let r = client()
        .post(gw.url(path))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .expect("the gateway answers");
    let status = r.status().as_u16();
    let id = r
        .headers()
        .get("x-generation-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, id, r.text().await.unwrap_or_default())
}

/// The data of each event that is JSON.
fn event_data(text: &str) -> Vec<Value> {
    sse_events(text)
        .iter()
        .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
        .filter_map(|d| serde_json::from_str(d).ok())
        .collect()
}

/// Whether the stream ended in the front door's own failure, as its clients read one.
fn ends_in_error(door: Door, text: &str) -> Result<bool, String> {
    let events = sse_events(text);
    let data = event_data(text);
    Ok(match door {
        Door::Chat => {
            if events.last().map(String::as_str) != Some("data: [DONE]") {
                return Err("no [DONE] at the end".into());
            }
            let usage = data.last().ok_or("no chunk")?;
            if usage["choices"] != json!([]) || !usage["usage"]["cost"].is_number() {
                return Err(format!("the last chunk is not the usage chunk: {usage}"));
            }
            let errors: Vec<&Value> = data.iter().filter(|c| c.get("error").is_some()).collect();
            match errors.as_slice() {
                [] => false,
                [one] if data.len() >= 2 && data[data.len() - 2] == **one => {
                    if one["choices"][0]["finish_reason"] != "error" {
                        return Err(format!("malformed error chunk: {one}"));
                    }
                    true
                }
                more => return Err(format!("error chunks out of place: {more:?}")),
            }
        }
        Door::Messages => {
            let last = events.last().ok_or("no event")?;
            if last.starts_with("event: error") {
                let error = data.last().ok_or("no error data")?;
                if error["type"] != "error" || !error["error"]["message"].is_string() {
                    return Err(format!("malformed error event: {error}"));
                }
                true
            } else if last.starts_with("event: message_stop") {
                if text.contains("event: error") {
                    return Err("an error event before message_stop".into());
                }
                false
            } else {
                return Err(format!(
                    "the stream ends with neither error nor message_stop: {last}"
                ));
            }
        }
        Door::Responses => {
            let last = data.last().ok_or("no event")?;
            match last["type"].as_str() {
                Some("response.failed") => true,
                Some("response.completed") => false,
                _ => return Err(format!("the stream ends with {last}")),
            }
        }
    })
}

#[tokio::test]
async fn a_cut_stream_ends_in_an_error_for_every_dialect_and_front_door() {
    let mock = MockServer::start("127.0.0.1:0").unwrap();
    let gw = Gateway::start(&dialects_config(&mock));
    let mut failures = Vec::new();
    for provider in ["oai", "claude", "gem", "br"] {
        for door in [Door::Chat, Door::Messages, Door::Responses] {
            for truncated in [false, true] {
                let suffix = if truncated { "truncated" } else { "whole" };
                let model = format!("t/{provider}-{suffix}");
                let (status, id, text) = stream_through(&gw, door, &model).await;
                let case = format!("{model} through {door:?}");
                if status != 200 || !id.starts_with("gen-") {
                    failures.push(format!("{case}: status {status}, id {id:?}"));
                    continue;
                }
                match ends_in_error(door, &text) {
                    Ok(errored) if errored == truncated => {}
                    Ok(errored) => failures.push(format!(
                        "{case}: ends in an error: {errored} (expected {truncated}): ...{}",
                        &text[text.floor_char_boundary(text.len().saturating_sub(600))..]
                    )),
                    Err(why) => failures.push(format!("{case}: {why}")),
                }
                match record_of(&gw, &id).await {
                    Ok(rec) => {
                        if rec["status"] != 200 || rec["error"].is_string() != truncated {
                            failures.push(format!(
                                "{case}: record status {}, error {} (expected an error: {truncated})",
                                rec["status"], rec["error"]
                            ));
                        }
                        let outcome = if truncated { "failed" } else { "success" };
                        if rec["attempts"][0]["outcome"] != outcome {
                            failures.push(format!(
                                "{case}: attempt {} (expected {outcome})",
                                rec["attempts"][0]
                            ));
                        }
                        if truncated && rec["finish_reason"] != "error" {
                            failures.push(format!(
                                "{case}: record finish_reason {}",
                                rec["finish_reason"]
                            ));
                        }
                    }
                    Err(e) => failures.push(format!("{case}: {e}")),
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(!gw.log_text().contains("panicked"), "{}", gw.log_text());
}
