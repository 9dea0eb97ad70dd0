//! Per-dialect costs on the request path and the stream path:
//! - `request_parse`: reading the client's body into top-level fields (once per request), on
//!   the load bench's short chat request too;
//! - `request_rewrite`: `dialects::chat_request` per dialect (once per tried candidate), on a
//!   20-message conversation with tools (~6 KB) and the same with a pasted 300 KB document;
//! - `stream_convert`: provider stream to OpenAI chunks, events per second: Anthropic and
//!   Gemini `StreamConverter`s, and the OpenAI passthrough tap for comparison.
//!
//! `cargo bench --bench dialects`

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use switchyard::api::ChatRequest;
use switchyard::catalog::Dialect;
use switchyard::dialects::{self, anthropic, gemini};
use switchyard::metering::OpenAiStreamTap;

#[path = "common/requests.rs"]
mod requests;
#[path = "common/streams.rs"]
mod streams;

const DEFAULT_MAX_TOKENS: u64 = 4096;

/// The load bench's request (`benches/load`): most chat requests are this short.
const SHORT_CHAT: &str = r#"{"model":"bench/chat","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Say hello and tell me one fact about gateways."}],"max_tokens":128,"temperature":0.2}"#;

fn bodies() -> [(&'static str, Bytes); 2] {
    [
        ("chat_with_tools", Bytes::from(requests::chat_with_tools())),
        ("chat_300kb", Bytes::from(requests::chat_300kb())),
    ]
}

fn bench_request(c: &mut Criterion) {
    let mut parse = c.benchmark_group("request_parse");
    let short = ("chat_short", Bytes::from_static(SHORT_CHAT.as_bytes()));
    for (name, body) in std::iter::once(short).chain(bodies()) {
        parse.throughput(Throughput::Bytes(body.len() as u64));
        parse.bench_function(name, |b| {
            b.iter(|| ChatRequest::parse(black_box(body.clone())).expect("valid request"))
        });
    }
    parse.finish();

    let mut rewrite = c.benchmark_group("request_rewrite");
    for (name, body) in bodies() {
        let chat = ChatRequest::parse(body.clone()).expect("valid request");
        rewrite.throughput(Throughput::Bytes(body.len() as u64));
        for (dialect, label) in [
            (Dialect::OpenAi, "openai"),
            (Dialect::Anthropic, "anthropic"),
            (Dialect::Gemini, "gemini"),
        ] {
            let upstream =
                dialects::chat_request(dialect, &chat.fields, "up-model", true, DEFAULT_MAX_TOKENS)
                    .expect("every dialect converts the fixture");
            assert!(upstream.body.len() > body.len() / 2, "{label}/{name}");
            rewrite.bench_function(format!("{label}/{name}"), |b| {
                b.iter(|| {
                    dialects::chat_request(
                        dialect,
                        black_box(&chat.fields),
                        "up-model",
                        true,
                        DEFAULT_MAX_TOKENS,
                    )
                    .expect("converts")
                })
            });
        }
    }
    rewrite.finish();
}

/// Feeds one read per event, as providers flush; returns the bytes produced for the client.
fn convert<C>(reads: &[Vec<u8>], mut converter: C, on_chunk: fn(&mut C, &[u8]) -> Bytes) -> usize {
    reads
        .iter()
        .map(|r| on_chunk(&mut converter, r).len())
        .sum()
}

fn bench_streams(c: &mut Criterion) {
    let openai = streams::openai(streams::COMPLETION_TOKENS);
    let openai_reads: Vec<Bytes> = streams::event_reads(&openai)
        .into_iter()
        .map(Bytes::from)
        .collect();
    let anthropic_stream = streams::anthropic(streams::COMPLETION_TOKENS);
    let anthropic_reads = streams::event_reads(&anthropic_stream);
    let gemini_stream = streams::gemini(streams::COMPLETION_TOKENS);
    let gemini_reads = streams::event_reads(&gemini_stream);

    // The converters must understand the fixtures, or the rates mean nothing.
    let mut a = anthropic::StreamConverter::new(1_741_570_283);
    let out: usize = anthropic_reads.iter().map(|r| a.on_chunk(r).len()).sum();
    assert!(out > 0);
    assert_eq!(
        a.usage().map(|u| u.completion),
        Some(streams::COMPLETION_TOKENS)
    );
    let mut g = gemini::StreamConverter::new(1_741_570_283);
    let out: usize = gemini_reads.iter().map(|r| g.on_chunk(r).len()).sum();
    assert!(out > 0);
    assert_eq!(
        g.usage().map(|u| u.completion),
        Some(streams::COMPLETION_TOKENS)
    );

    let mut group = c.benchmark_group("stream_convert");
    group.throughput(Throughput::Elements(openai.events.len() as u64));
    group.bench_function("openai_tap", |b| {
        b.iter(|| {
            let mut tap = OpenAiStreamTap::new();
            let n: usize = openai_reads
                .iter()
                .map(|r| tap.on_chunk(r.clone()).len())
                .sum();
            black_box(n)
        })
    });
    group.throughput(Throughput::Elements(anthropic_stream.events.len() as u64));
    group.bench_function("anthropic", |b| {
        b.iter(|| {
            convert(
                &anthropic_reads,
                anthropic::StreamConverter::new(1_741_570_283),
                anthropic::StreamConverter::on_chunk,
            )
        })
    });
    group.throughput(Throughput::Elements(gemini_stream.events.len() as u64));
    group.bench_function("gemini", |b| {
        b.iter(|| {
            convert(
                &gemini_reads,
                gemini::StreamConverter::new(1_741_570_283),
                gemini::StreamConverter::on_chunk,
            )
        })
    });
    group.finish();
}

criterion_group!(benches, bench_request, bench_streams);
criterion_main!(benches);
