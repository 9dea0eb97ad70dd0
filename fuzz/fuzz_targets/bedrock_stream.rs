//! Bedrock's binary event-stream framing and its stream converter, fed bytes split at
//! fuzzer-chosen points: never a panic, never a frame-length-driven huge allocation, the same
//! messages whatever the split, and only well-formed OpenAI chunk events out.
//!
//! Random bytes rarely pass the frames' CRCs, so the input's first byte chooses the mode:
//! even, the rest is the raw stream (the decoder's own checks); odd, the rest is a list of
//! messages separated by 0x00 bytes, each an event-type selector byte and a JSON payload, which
//! the target frames with valid CRCs so the converter sees what it would get from AWS.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::dialects::bedrock::{EventStreamDecoder, StreamConverter};

#[path = "split.rs"]
mod split;

const EVENTS: &[(&str, &str)] = &[
    ("event", "messageStart"),
    ("event", "contentBlockStart"),
    ("event", "contentBlockDelta"),
    ("event", "contentBlockStop"),
    ("event", "messageStop"),
    ("event", "metadata"),
    ("exception", "internalServerException"),
    ("exception", "modelStreamErrorException"),
    ("exception", "throttlingException"),
    ("exception", "validationException"),
    ("event", "somethingNew"),
    ("error", "whatever"),
];

fn header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.push(name.len() as u8);
    out.extend_from_slice(name.as_bytes());
    out.push(7); // string
    out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    out.extend_from_slice(value.as_bytes());
}

/// One message with valid lengths and CRCs.
fn frame(kind: &str, event: &str, payload: &[u8]) -> Vec<u8> {
    let mut headers = Vec::new();
    let type_header = if kind == "exception" {
        ":exception-type"
    } else {
        ":event-type"
    };
    header(&mut headers, ":message-type", kind);
    header(&mut headers, type_header, event);
    header(&mut headers, ":content-type", "application/json");
    let total = 12 + headers.len() + payload.len() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    let prelude_crc = crc32fast::hash(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&headers);
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

fn framed(spec: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for message in spec.split(|b| *b == 0) {
        let Some((&which, payload)) = message.split_first() else {
            continue;
        };
        let (kind, event) = EVENTS[which as usize % EVENTS.len()];
        out.extend_from_slice(&frame(kind, event, payload));
    }
    out
}

/// Every message the decoder yields, then whether it stopped on an error.
fn frames(chunks: &[&[u8]]) -> (Vec<String>, bool) {
    let mut d = EventStreamDecoder::new();
    let mut seen = Vec::new();
    for chunk in chunks {
        d.feed(chunk);
        loop {
            match d.next_message() {
                Ok(Some(m)) => seen.push(format!("{m:?}")),
                Ok(None) => break,
                Err(_) => return (seen, true),
            }
        }
    }
    (seen, false)
}

fn convert(chunks: &[&[u8]]) -> Vec<u8> {
    let mut c = StreamConverter::new(1_700_000_000);
    let mut out = Vec::new();
    for chunk in chunks {
        out.extend_from_slice(&c.on_chunk(chunk));
    }
    out.extend_from_slice(&c.finish());
    let _ = (c.usage(), c.finish_reason(), c.error());
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (cuts, body) = split::cut_points(rest);
    let stream = if mode % 2 == 1 {
        framed(body)
    } else {
        body.to_vec()
    };
    let chunks = split::chunks(&stream, &cuts);
    let (split_frames, split_err) = frames(&chunks);
    let (whole_frames, whole_err) = frames(&[&stream]);
    assert_eq!(split_frames, whole_frames, "the split changed the frames");
    assert_eq!(split_err, whole_err);
    let out = convert(&chunks);
    split::assert_openai_events(&out);
    assert_eq!(out, convert(&[&stream]), "the split changed the output");
});
