//! Unit tests: knob parsing, fault precedence, SSE event framing and sequencing.

use serde_json::{json, Value};

use super::faults::{self, Fault, Reset};
use super::openai::{Answer, Chat, Event, Usage};

#[test]
fn header_syntax_parses_pairs_flags_and_percent_escapes() {
    let f = Fault::parse("status=429+retry_after=2, no_usage,reply=hi%20there%2C%2B!,chunks=3");
    assert_eq!(f.status, Some(429));
    assert_eq!(f.retry_after.as_deref(), Some("2"));
    assert!(f.no_usage);
    assert_eq!(f.reply.as_deref(), Some("hi there,+!"));
    assert_eq!(f.chunks, Some(3));
    assert!(!f.malformed);

    let f =
        Fault::parse("reset=mid+silence+malformed+truncated+tool_call+delay_ms=5+chunk_delay_ms=7");
    assert_eq!(f.reset, Some(Reset::Mid));
    assert!(f.silence && f.malformed && f.truncated && f.tool_call);
    assert_eq!((f.delay_ms, f.chunk_delay_ms), (5, 7));

    let f =
        Fault::parse("huge=10+usage_prompt=1+usage_completion=2+usage_cached=3+usage_reasoning=4");
    assert_eq!(f.huge, Some(10));
    let usage = (
        f.usage_prompt,
        f.usage_completion,
        f.usage_cached,
        f.usage_reasoning,
    );
    assert_eq!(usage, (Some(1), Some(2), Some(3), Some(4)));
    assert!(Fault::parse("xai_usage").xai_usage);
}

#[test]
fn bad_knobs_are_ignored_not_fatal() {
    let f = Fault::parse("status=abc+status2=1+=+%+reply=%zz%4+delay_ms=-1+reset=sideways");
    assert_eq!(f.status, None);
    assert_eq!(f.reply.as_deref(), Some("%zz%4"));
    assert_eq!(f.delay_ms, 0);
    assert_eq!(f.reset, None);
    assert_eq!(Fault::parse("status=200").status, None);
    assert_eq!(Fault::parse("status=99999").status, None);
    assert_eq!(Fault::parse("no_usage=false"), Fault::default());
    assert_eq!(Fault::parse(""), Fault::default());
    assert_eq!(
        Fault::parse("huge=999999999999").huge,
        Some(64 * 1024 * 1024)
    );
}

#[test]
fn fault_sources_first_found_wins() {
    let body = json!({"model": "mock-small+status=503", "mock": {"status": 400}});
    let default = Fault::parse("status=500");
    let header = faults::choose(Some("status=429"), Some(&body), Some(&default));
    assert_eq!(header.status, Some(429));
    assert_eq!(faults::choose(None, Some(&body), None).status, Some(503));

    let body =
        json!({"model": "mock-small", "mock": {"status": 400, "reply": "a+b", "no_usage": true}});
    let from_body = faults::choose(None, Some(&body), Some(&default));
    assert_eq!(from_body.status, Some(400));
    assert_eq!(from_body.reply.as_deref(), Some("a+b"));
    assert!(from_body.no_usage);

    let plain = json!({"model": "mock-small"});
    assert_eq!(faults::choose(None, Some(&plain), Some(&default)), default);
    assert_eq!(faults::choose(None, None, None), Fault::default());
    // An explicit header (even one with no knobs) overrides the default.
    assert_eq!(
        faults::choose(Some("none"), None, Some(&default)),
        Fault::default()
    );
}

fn chat(answer: Answer, include_usage: bool) -> Chat {
    let usage = Usage {
        prompt: 5,
        completion: answer.delta_count() as u64,
        ..Usage::default()
    };
    Chat {
        id: "chatcmpl-mock-1".into(),
        created: 7,
        model: "m".into(),
        answer,
        usage,
        send_usage: true,
        include_usage,
        xai_usage: false,
        reasoning_deltas: 0,
        deepseek_usage: false,
        choice_usage: false,
    }
}

fn render_all(c: &Chat, malformed: bool, truncated: bool) -> Vec<String> {
    let events = c.events(malformed, truncated);
    events
        .map(|e| String::from_utf8_lossy(&c.render(e)).into_owned())
        .collect()
}

/// The JSON of one `data: ...\n\n` event (Null when it is not JSON).
pub(super) fn data(event: &str) -> Value {
    let json = event
        .strip_prefix("data: ")
        .and_then(|e| e.strip_suffix("\n\n"));
    serde_json::from_str(json.unwrap_or("")).unwrap_or(Value::Null)
}

#[test]
fn sse_events_are_framed_and_sequenced_like_openai() {
    let c = chat(Answer::text("Hi you ".into()), true);
    let events = render_all(&c, false, false);
    assert_eq!(events.len(), 6);
    assert!(events
        .iter()
        .all(|e| e.starts_with("data: ") && e.ends_with("\n\n")));
    assert!(events.iter().all(|e| e.matches("\n\n").count() == 1));
    assert_eq!(
        events[0],
        "data: {\"id\":\"chatcmpl-mock-1\",\"object\":\"chat.completion.chunk\",\"created\":7,\
         \"model\":\"m\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_mock\",\
         \"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\
         \"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n"
    );
    assert_eq!(
        data(&events[1])["choices"][0]["delta"],
        json!({"content": "Hi "})
    );
    assert_eq!(
        data(&events[2])["choices"][0]["delta"],
        json!({"content": "you "})
    );
    assert_eq!(data(&events[3])["choices"][0]["finish_reason"], "stop");
    assert_eq!(data(&events[3])["choices"][0]["delta"], json!({}));
    let usage = data(&events[4]);
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["total_tokens"], 7);
    assert_eq!(usage["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
    assert_eq!(events[5], "data: [DONE]\n\n");

    // xAI's usage: the reasoning is in the total, not in completion_tokens.
    let mut xai = chat(Answer::text("Hi you ".into()), true);
    xai.usage.reasoning = 3;
    xai.xai_usage = true;
    let usage = &data(&render_all(&xai, false, false)[4])["usage"];
    assert_eq!(
        (&usage["completion_tokens"], &usage["total_tokens"]),
        (&json!(2), &json!(10))
    );
    assert_eq!(usage["completion_tokens_details"]["reasoning_tokens"], 3);
    let whole: Value = serde_json::from_slice(&xai.completion_body()).unwrap();
    assert_eq!(whole["usage"], *usage);

    // Without include_usage: no usage chunk and no `usage` key at all.
    let events = render_all(&chat(Answer::text("Hi".into()), false), false, false);
    assert_eq!(events.len(), 4);
    assert!(events.iter().all(|e| !e.contains("usage")));
}

#[test]
fn sse_faults_change_the_sequence() {
    let mut c = chat(Answer::text("a b c".into()), true);
    let kinds: Vec<Event> = c.events(true, false).collect();
    assert_eq!(kinds[1], Event::Malformed);
    assert_eq!(
        render_all(&c, true, false)[1],
        "data: {\"id\": \"broken\n\n"
    );

    let truncated = render_all(&c, false, true);
    assert_eq!(truncated.len(), 4); // first + 3 deltas
    assert!(truncated
        .iter()
        .all(|e| !e.contains("[DONE]") && !e.contains("finish_reason\":\"")));

    c.send_usage = false;
    let no_usage = render_all(&c, false, false);
    assert_eq!(no_usage.len(), 6);
    assert!(no_usage.iter().all(|e| !e.contains("prompt_tokens")));
}

#[test]
fn tool_call_stream_splits_arguments_over_three_deltas() {
    let tool = Answer::Tool {
        call_id: "call_mock_1".into(),
        name: "get_weather".into(),
    };
    let c = chat(tool, false);
    let events = render_all(&c, false, false);
    assert_eq!(events.len(), 6);
    let first = &data(&events[0])["choices"][0]["delta"];
    assert_eq!(first["content"], Value::Null);
    assert_eq!(first["tool_calls"][0]["id"], "call_mock_1");
    assert_eq!(first["tool_calls"][0]["function"]["name"], "get_weather");
    let mut args = String::new();
    for e in &events[1..4] {
        let call = &data(e)["choices"][0]["delta"]["tool_calls"][0];
        assert_eq!(call["index"], 0);
        assert!(call.get("id").is_none());
        args.push_str(call["function"]["arguments"].as_str().unwrap_or("?"));
    }
    assert_eq!(args, r#"{"location":"Paris"}"#);
    assert_eq!(
        data(&events[4])["choices"][0]["finish_reason"],
        "tool_calls"
    );

    let whole: Value = serde_json::from_slice(&c.completion_body()).unwrap_or(Value::Null);
    let call = &whole["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["arguments"], r#"{"location":"Paris"}"#);
    assert_eq!(whole["choices"][0]["finish_reason"], "tool_calls");
}
