//! The OpenAI-dialect metering tap fed a stream split at fuzzer-chosen points. It must never
//! panic; what it forwards plus what it dropped must be the stream itself, event for event;
//! it may drop only `[DONE]` and usage-only chunks; and the split must not change anything.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use switchyard::metering::sse::{event_data, SseEvents};
use switchyard::metering::OpenAiStreamTap;

#[path = "split.rs"]
mod split;

fn run(chunks: &[&[u8]]) -> (Vec<u8>, OpenAiStreamTap) {
    let mut tap = OpenAiStreamTap::new();
    let mut out = Vec::new();
    for c in chunks {
        out.extend_from_slice(&tap.on_chunk(Bytes::copy_from_slice(c)));
    }
    out.extend_from_slice(&tap.finish());
    (out, tap)
}

/// Only these may be taken out of the stream: `[DONE]` and a chunk with usage and no choices.
fn may_drop(event: &[u8]) -> bool {
    let Some(payload) = event_data(event) else {
        return false;
    };
    if payload.trim_ascii() == b"[DONE]" {
        return true;
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&payload) else {
        return false;
    };
    let usage = v.get("usage").is_some_and(|u| !u.is_null());
    let no_choices = v
        .get("choices")
        .is_none_or(|c| c.as_array().is_some_and(Vec::is_empty));
    usage && no_choices
}

fuzz_target!(|data: &[u8]| {
    let (stream, chunks) = split::split(data);
    let (out, tap) = run(&chunks);
    let (whole_out, whole_tap) = run(&[stream]);
    assert_eq!(out, whole_out, "the split changed the forwarded bytes");
    assert_eq!(tap.usage, whole_tap.usage);
    assert_eq!(tap.finish_reason, whole_tap.finish_reason);
    assert_eq!(tap.upstream_error, whole_tap.upstream_error);
    assert_eq!(tap.content_deltas, whole_tap.content_deltas);
    assert_eq!(tap.saw_done, whole_tap.saw_done);

    // Reassemble: walk the stream's events; each was forwarded as is, or may be dropped.
    let mut events = SseEvents::new(stream);
    let mut ranges: Vec<_> = events.by_ref().collect();
    if events.consumed() < stream.len() {
        ranges.push(events.consumed()..stream.len());
    }
    let mut at = 0;
    for r in ranges {
        let event = &stream[r];
        if out[at..].starts_with(event) {
            at += event.len();
        } else {
            assert!(
                may_drop(event),
                "dropped an event it must forward: {:?}",
                String::from_utf8_lossy(event)
            );
        }
    }
    assert_eq!(at, out.len(), "forwarded bytes that were not in the stream");
});
