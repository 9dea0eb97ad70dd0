//! The gemini stream converter fed a stream split at fuzzer-chosen points: it must never panic,
//! must emit only well-formed OpenAI chunk events, and must not depend on the split.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::dialects::gemini::StreamConverter;

#[path = "split.rs"]
mod split;

fn run(chunks: &[&[u8]]) -> (Vec<u8>, StreamConverter) {
    // Named as the gateway names it: an answer without responseId gets the same call ids
    // however it is split (random ones otherwise).
    let mut c = StreamConverter::new(1_700_000_000).with_generation_id("gen-fuzz");
    let mut out = Vec::new();
    for chunk in chunks {
        out.extend_from_slice(&c.on_chunk(chunk));
    }
    out.extend_from_slice(&c.finish());
    (out, c)
}

fuzz_target!(|data: &[u8]| {
    let (stream, chunks) = split::split(data);
    let (out, c) = run(&chunks);
    split::assert_openai_events(&out);
    let (whole_out, whole) = run(&[stream]);
    assert_eq!(out, whole_out, "the split changed the output");
    assert_eq!(c.usage(), whole.usage());
    assert_eq!(c.finish_reason(), whole.finish_reason());
    assert_eq!(c.error(), whole.error());
});
