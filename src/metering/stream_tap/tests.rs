use super::*;

const STREAM: &str = concat!(
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello \"},\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"world\"},\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":2,\"total_tokens\":14,\"prompt_tokens_details\":{\"cached_tokens\":3}}}\n\n",
    "data: [DONE]\n\n",
);

/// What the client must see: every event but the usage-only one and [DONE].
fn expected_forward() -> String {
    let events: Vec<&str> = STREAM.split_inclusive("\n\n").collect();
    events[..4].concat()
}

fn run(chunks: &[&[u8]]) -> (Vec<u8>, OpenAiStreamTap) {
    let mut tap = OpenAiStreamTap::new();
    let mut out = Vec::new();
    for c in chunks {
        out.extend_from_slice(&tap.on_chunk(Bytes::copy_from_slice(c)));
    }
    out.extend_from_slice(&tap.finish());
    (out, tap)
}

#[test]
fn meters_a_whole_stream_in_one_chunk() {
    let (out, tap) = run(&[STREAM.as_bytes()]);
    assert_eq!(String::from_utf8(out).unwrap(), expected_forward());
    let usage = tap.usage.unwrap();
    assert_eq!(
        (usage.prompt, usage.completion, usage.cached_prompt),
        (12, 2, 3)
    );
    assert_eq!(tap.finish_reason.as_deref(), Some("stop"));
    assert_eq!(tap.content_deltas, 2);
    assert!(tap.saw_done);
}

#[test]
fn meters_identically_when_split_at_every_byte_boundary() {
    let bytes = STREAM.as_bytes();
    for cut in 0..=bytes.len() {
        let (out, tap) = run(&[&bytes[..cut], &bytes[cut..]]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            expected_forward(),
            "cut at {cut}"
        );
        assert_eq!(tap.usage.map(|u| u.prompt), Some(12), "cut at {cut}");
        assert_eq!(tap.finish_reason.as_deref(), Some("stop"), "cut at {cut}");
    }
}

#[test]
fn meters_byte_by_byte() {
    let chunks: Vec<&[u8]> = STREAM.as_bytes().chunks(1).collect();
    let (out, tap) = run(&chunks);
    assert_eq!(String::from_utf8(out).unwrap(), expected_forward());
    assert_eq!(tap.usage.map(|u| u.total()), Some(14));
}

#[test]
fn forwards_whole_event_chunks_without_copying() {
    let mut tap = OpenAiStreamTap::new();
    let first = Bytes::from(STREAM.split_inclusive("\n\n").next().unwrap().to_string());
    let out = tap.on_chunk(first.clone());
    assert_eq!(
        out.as_ptr(),
        first.as_ptr(),
        "a whole-event chunk is forwarded as the same bytes"
    );
}

#[test]
fn keeps_usage_that_rides_on_a_content_chunk() {
    let s = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}\n\n";
    let (out, tap) = run(&[s.as_bytes()]);
    assert_eq!(out, s.as_bytes());
    assert_eq!(tap.usage.map(|u| u.completion), Some(1));
}

#[test]
fn records_errors_and_survives_garbage() {
    let s = "data: {\"error\":{\"message\":\"overloaded\"}}\n\ndata: {not json\n\n: keep-alive\n\n";
    let (out, tap) = run(&[s.as_bytes()]);
    assert_eq!(out, s.as_bytes());
    assert_eq!(tap.upstream_error.unwrap()["message"], "overloaded");
    assert!(tap.usage.is_none());
}

/// Older Ollama and SGLang put `"finish_reason": ""` on every chunk: no finish, so a stream
/// cut before its real finish is not taken for a whole one.
#[test]
fn an_empty_finish_reason_is_no_finish() {
    let chunk = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"},\"finish_reason\":\"\"}]}\n\n";
    let (out, tap) = run(&[chunk.as_bytes(), chunk.as_bytes()]);
    assert_eq!(out, [chunk, chunk].concat().as_bytes());
    assert_eq!(tap.finish_reason, None);
    assert_eq!(tap.content_deltas, 2);
    let last = "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n";
    let (_, tap) = run(&[chunk.as_bytes(), last.as_bytes(), chunk.as_bytes()]);
    assert_eq!(tap.finish_reason.as_deref(), Some("stop"));
}

/// The estimate's basis counts every delta of generated text: the answer, tool arguments,
/// and a reasoning model's thinking however the host names it, with or without spaces.
#[test]
fn counts_thinking_deltas_and_spaced_keys_as_generated_text() {
    let delta = |d: &str| format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{d}}}]}}\n\n");
    let counted = [
        r#"{"content":null,"reasoning_content":"Let"}"#,
        r#"{"content":"","reasoning_content":"me"}"#,
        r#"{"role":"assistant","content":"","reasoning":"think"}"#,
        r#"{"content": "spaced"}"#,
        r#"{"tool_calls":[{"index":0,"function":{"arguments" : "{\"a\""}}]}"#,
    ];
    let not_counted = [
        r#"{"role":"assistant","content":""}"#,
        r#"{"content":null,"reasoning_content":null}"#,
        r#"{"reasoning": "", "type":"content"}"#,
        r#"{"content":"say \"content\": \"x\"" }"#,
    ];
    for d in counted {
        assert_eq!(run(&[delta(d).as_bytes()]).1.content_deltas, 1, "{d}");
    }
    for d in &not_counted[..3] {
        assert_eq!(run(&[delta(d).as_bytes()]).1.content_deltas, 0, "{d}");
    }
    // Text that quotes a key is one delta, not more.
    assert_eq!(run(&[delta(not_counted[3]).as_bytes()]).1.content_deltas, 1);
}
