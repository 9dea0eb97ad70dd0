//! The zero-copy SSE usage scanner (`OpenAiStreamTap`) on a realistic OpenAI stream, in the
//! chunkings a proxy sees: the whole stream at once, one event per read (how providers flush),
//! fixed 16 KiB reads that cut events anywhere, and every event cut in two (the worst case
//! for the carry buffer). Throughput is bytes of upstream stream per second.
//!
//! Also a non-streamed completion read and stamped (`api::stamp`): its top-level fields found
//! by the structural scan (`api::scan`) against serde's validating reader as the baseline in
//! the same run, and the whole read-usage-and-stamp step. Throughput is bytes of answer.
//!
//! `cargo bench --bench metering`; issue 12's target is >= 2 GB/s for the SSE scanner.

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use switchyard::api::fields::raw_fields;
use switchyard::api::scan::top_level_fields;
use switchyard::api::stamp::{Completion, Stamp};
use switchyard::metering::{Cost, OpenAiStreamTap, Usage};

#[path = "common/streams.rs"]
mod streams;

fn feed(chunks: &[Bytes]) -> (usize, OpenAiStreamTap) {
    let mut tap = OpenAiStreamTap::new();
    let mut forwarded = 0;
    for chunk in chunks {
        // Cloning a `Bytes` is a reference-count bump, as when Pingora hands the proxy a body.
        forwarded += tap.on_chunk(chunk.clone()).len();
    }
    forwarded += tap.finish().len();
    (forwarded, tap)
}

fn to_bytes(reads: Vec<Vec<u8>>) -> Vec<Bytes> {
    reads.into_iter().map(Bytes::from).collect()
}

fn bench_scanner(c: &mut Criterion) {
    let stream = streams::openai(streams::COMPLETION_TOKENS);
    let cases: [(&str, Vec<Bytes>); 4] = [
        ("whole_stream", vec![Bytes::from(stream.bytes.clone())]),
        ("event_per_read", to_bytes(streams::event_reads(&stream))),
        (
            "16KiB_reads",
            to_bytes(streams::fixed_reads(&stream.bytes, 16 * 1024)),
        ),
        (
            "split_mid_event",
            to_bytes(streams::split_mid_event(&stream)),
        ),
    ];
    // The scanner must meter every case the same, and keep exactly the events it should
    // (every event but the provider's usage chunk and [DONE]), or the numbers mean nothing.
    let events = &stream.events;
    let expected_forward = stream.bytes.len() - events[events.len() - 2] - events[events.len() - 1];
    for (name, chunks) in &cases {
        let (forwarded, tap) = feed(chunks);
        assert_eq!(forwarded, expected_forward, "{name}: forwarded bytes");
        let usage = tap.usage.expect("the usage chunk is read");
        assert_eq!(usage.completion, streams::COMPLETION_TOKENS, "{name}");
        assert!(tap.saw_done, "{name}");
        assert_eq!(tap.finish_reason.as_deref(), Some("stop"), "{name}");
    }

    let mut group = c.benchmark_group("openai_stream_tap");
    group.throughput(Throughput::Bytes(stream.bytes.len() as u64));
    for (name, chunks) in &cases {
        group.bench_function(*name, |b| b.iter(|| black_box(feed(chunks).0)));
    }
    group.finish();
}

/// An answer as the mock provider (and OpenAI) writes it: ~650 bytes.
const ANSWER: &str = r#"{"id":"chatcmpl-mock-5f1c2a9e","object":"chat.completion","created":1763790000,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from the mock! You said: Hi there. Here is a somewhat longer answer, with \"quotes\" and a caf\u00e9.","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":25,"completion_tokens":48,"total_tokens":73,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"fp_mock"}"#;

fn bench_completion(c: &mut Criterion) {
    let body = ANSWER.as_bytes();
    let scanned = top_level_fields(body).expect("the answer scans");
    let by_serde = raw_fields(body).expect("serde reads the answer");
    assert_eq!(scanned.len(), by_serde.len());
    let stamp = Stamp {
        id: "gen-1763790000-abcdefghijklmnop",
        model: "openai/gpt-4o-mini",
        provider: "openai",
        usage: Usage::default().to_openai(Cost(0)),
    };
    let read_and_stamp = || {
        let completion = Completion::parse(body).expect("parses");
        let peek = completion.peek();
        assert!(peek.usage.is_some());
        completion.stamp(&stamp)
    };
    let stamped: serde_json::Value = serde_json::from_slice(&read_and_stamp()).expect("JSON");
    assert_eq!(stamped["id"], stamp.id);

    let mut group = c.benchmark_group("completion");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("fields_serde_baseline", |b| {
        b.iter(|| black_box(raw_fields(black_box(body)).map(|f| f.len())))
    });
    group.bench_function("fields_scan", |b| {
        b.iter(|| black_box(top_level_fields(black_box(body)).map(|f| f.len())))
    });
    group.bench_function("read_usage_and_stamp", |b| {
        b.iter(|| black_box(read_and_stamp().len()))
    });
    group.finish();
}

criterion_group!(benches, bench_scanner, bench_completion);
criterion_main!(benches);
