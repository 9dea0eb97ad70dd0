//! What one generation record costs to write (issue 12): batches of records shaped like the
//! gateway's for a chat completion (one attempt, an id made as the gateway makes it, a
//! key hash, model and provider names, usage, cost), written by `Ledger::write_batch` (the
//! writer's own transaction, without its queue) into a SQLite file in WAL mode, as the
//! gateway opens it. Batches of 1 (one request at a time), 16 (light load) and 256 (the
//! writer's `max_batch`, under load); four keys take turns, so each batch charges spend to
//! several keys. Throughput is records per second.
//!
//! `cargo bench --bench ledger`. Wall time on a shared machine is noisy; instruction counts
//! are not. With `LEDGER_BENCH_RECORDS=N` (and `LEDGER_BENCH_BATCH=16`, say) the bench
//! binary skips criterion and writes exactly N records into a fresh database: run it under
//! `valgrind --tool=callgrind --separate-threads=yes` for two values of N and divide the
//! difference in instructions (all threads but the main one, which only makes the records)
//! by the difference in N.

use std::path::PathBuf;

use criterion::{criterion_group, BatchSize, Criterion, Throughput};
use switchyard::auth::KeyHash;
use switchyard::ledger::{block_on, now_ms, Attempt, GenerationRecord, Ledger};
use switchyard::metering::{Cost, Usage};
use switchyard::proxy::new_generation_id;

const BATCH_SIZES: [usize; 3] = [1, 16, 256];
const KEYS: usize = 4;

/// Makes records with fresh ids (a repeated id would be a cheap no-op insert), in the same
/// order and with the same values every run, so that instruction counts repeat.
struct Records {
    seed: u64,
    keys: [KeyHash; KEYS],
    started_ms: i64,
}

impl Records {
    fn new() -> Records {
        let mut keys = [[0u8; 32]; KEYS];
        for (i, key) in keys.iter_mut().enumerate() {
            key.iter_mut()
                .enumerate()
                .for_each(|(j, b)| *b = (i * 37 + j * 11) as u8);
        }
        Records {
            seed: 0x9E37_79B9_7F4A_7C15,
            keys,
            started_ms: now_ms(),
        }
    }

    /// xorshift64: usage and latencies vary from record to record.
    fn next_random(&mut self) -> u64 {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        self.seed
    }

    /// The gateway's own ids: in time order within their second (the microsecond leads the
    /// suffix), so that the id index sees what it sees in production. Eight records a
    /// millisecond, each its own microsecond, so the order repeats run to run.
    fn id(created_ms: i64, n: usize) -> String {
        let micros = (created_ms % 1000) as u32 * 1000 + (n % 8) as u32 * 125;
        new_generation_id((created_ms / 1000) as u64, micros)
    }

    fn record(&mut self, n: usize) -> GenerationRecord {
        let created_at = self.started_ms + (n / 8) as i64;
        let r = self.next_random();
        let prompt = 200 + r % 2000;
        let completion = 50 + (r >> 16) % 500;
        GenerationRecord {
            id: Records::id(created_at, n),
            key_hash: self.keys[n % KEYS],
            key_name: format!("team-{}", n % KEYS),
            model: "openai/gpt-4o-mini".into(),
            provider: "openai".into(),
            upstream_model: "gpt-4o-mini".into(),
            attempts: vec![Attempt {
                provider: "openai".into(),
                model: "openai/gpt-4o-mini".into(),
                outcome: "ok".into(),
                status: Some(200),
                latency_ms: 400 + (r >> 32) % 400,
            }],
            usage: Usage {
                prompt,
                completion,
                cached_prompt: 0,
                reasoning: 0,
                cache_write: 0,
                estimated: false,
            },
            // USD 0.15 and 0.60 per 1M tokens, in pico-USD.
            cost: Cost(u128::from(prompt * 150_000 + completion * 600_000)),
            latency_ms: 900 + (r >> 40) % 600,
            ttft_ms: Some(150 + (r >> 48) % 100),
            finish_reason: Some("stop".into()),
            status: 200,
            streamed: true,
            cancelled: false,
            error: None,
            created_at,
        }
    }

    fn batch(&mut self, size: usize, written: &mut usize) -> Vec<GenerationRecord> {
        let batch = (0..size).map(|i| self.record(*written + i)).collect();
        *written += size;
        batch
    }
}

/// A temp folder for the database, removed at the end.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn bench_write_batch(c: &mut Criterion) {
    let mut group = c.benchmark_group("ledger_write_batch");
    for size in BATCH_SIZES {
        let dir = TempDir(std::env::temp_dir().join(format!(
            "switchyard-bench-ledger-{}-{size}",
            std::process::id()
        )));
        let ledger = Ledger::open(&format!("sqlite://{}/ledger.db", dir.0.display()))
            .expect("open the bench database");
        let (mut records, mut written) = (Records::new(), 0usize);
        group.throughput(Throughput::Elements(size as u64));
        group.bench_function(format!("batch_of_{size}"), |b| {
            b.iter_batched(
                || records.batch(size, &mut written),
                |batch| block_on(ledger.write_batch(batch)).expect("write the batch"),
                BatchSize::SmallInput,
            )
        });
        // For instruction counts: records made is records written (each write succeeds).
        eprintln!("ledger bench: batch_of_{size}: {written} records written");
        drop(ledger);
    }
    group.finish();
}

/// The counting mode (see the top of the file): `true` if it ran.
fn write_counted_records() -> bool {
    let env = |name: &str| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
    };
    let Some(total) = env("LEDGER_BENCH_RECORDS") else {
        return false;
    };
    let size = env("LEDGER_BENCH_BATCH").unwrap_or(16).max(1);
    let dir = TempDir(std::env::temp_dir().join(format!(
        "switchyard-bench-ledger-count-{}",
        std::process::id()
    )));
    let ledger = Ledger::open(&format!("sqlite://{}/ledger.db", dir.0.display()))
        .expect("open the bench database");
    let (mut records, mut written) = (Records::new(), 0usize);
    while written < total {
        let batch = records.batch(size.min(total - written), &mut written);
        block_on(ledger.write_batch(batch)).expect("write the batch");
    }
    eprintln!("ledger bench: {written} records written in batches of {size}");
    true
}

criterion_group!(benches, bench_write_batch);

fn main() {
    if !write_counted_records() {
        benches();
        Criterion::default().configure_from_args().final_summary();
    }
}
