//! The zero-copy SSE usage scanner (`OpenAiStreamTap`) on a realistic OpenAI stream, in the
//! chunkings a proxy sees: the whole stream at once, one event per read (how providers flush),
//! fixed 16 KiB reads that cut events anywhere, and every event cut in two (the worst case
//! for the carry buffer). Throughput is bytes of upstream stream per second.
//!
//! `cargo bench --bench metering`; issue 12's target is >= 2 GB/s.

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use switchyard::metering::OpenAiStreamTap;

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

criterion_group!(benches, bench_scanner);
criterion_main!(benches);
