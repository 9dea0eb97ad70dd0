//! The catalog at scale: loading the shipped config (20 included catalog files generated from
//! litellm's map) and a generated 5,000-model catalog; rendering `/v1/models` for 5,000 models
//! (first render, cached, filtered); a full hot reload (`Reloader::reload`) of the 5,000-model
//! config.
//!
//! `cargo bench --bench catalog`

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use switchyard::api::models::{models_listing, models_response};
use switchyard::config::{load_file_with_env, Snapshot, SnapshotStore};
use switchyard::pools::ProviderPools;
use switchyard::reload::Reloader;

const MODELS: usize = 5_000;
const FILES: usize = 10;
const PROVIDERS: usize = 20;

fn every_key_set(_: &str) -> Option<String> {
    Some("bench-secret".into())
}

/// A main file and `FILES` included catalogs holding `MODELS` models with 1–3 endpoints each,
/// written like the importer's output.
fn write_big_catalog(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir.join("catalog")).unwrap();
    let mut main = String::from("include: [\"catalog/*.yaml\"]\nproviders:\n");
    for p in 0..PROVIDERS {
        writeln!(main, "  p{p}: {{ preset: vllm, base_url: \"http://127.0.0.1:9/v1\", data_collection: allow }}").unwrap();
    }
    let per_file = MODELS / FILES;
    for f in 0..FILES {
        let mut y = String::from("models:\n");
        for i in 0..per_file {
            let m = f * per_file + i;
            writeln!(y, "  \"author{}/model-{m}\":", m % 40).unwrap();
            if m.is_multiple_of(3) {
                y.push_str("    input_modalities: [\"text\", \"image\"]\n");
            }
            y.push_str("    endpoints:\n");
            for k in 0..(1 + m % 3) {
                let p = (m + k * 7) % PROVIDERS;
                let price = 0.1 + (m % 17) as f64 * 0.05 + k as f64 * 0.2;
                let supports = if m.is_multiple_of(2) {
                    "[\"tools\", \"response_format\", \"stream\"]"
                } else {
                    "[\"stream\"]"
                };
                writeln!(
                    y,
                    "      - {{ provider: \"p{p}\", model: \"upstream-{m}\", price: {{ prompt: {price:.2}, completion: {:.2} }}, context_length: {}, supports: {supports} }}",
                    price * 4.0,
                    32_768 << (m % 4)
                )
                .unwrap();
            }
        }
        std::fs::write(dir.join(format!("catalog/part{f:02}.yaml")), y).unwrap();
    }
    let path = dir.join("main.yaml");
    std::fs::write(&path, main).unwrap();
    path
}

fn load(path: &Path) -> Snapshot {
    load_file_with_env(path, &every_key_set)
        .unwrap_or_else(|e| panic!("{e}"))
        .snapshot
}

fn bench_catalog(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("switchyard-bench-catalog-{}", std::process::id()));
    let big = write_big_catalog(&dir);
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/switchyard.yaml");
    let shipped_models = load(&shipped).catalog.models.len();
    let big_models = load(&big).catalog.models.len();
    assert_eq!(big_models, MODELS);

    let mut g = c.benchmark_group("config_load");
    g.sample_size(20).measurement_time(Duration::from_secs(8));
    g.bench_function(format!("shipped_conf_{shipped_models}_models"), |b| {
        b.iter(|| black_box(load(&shipped)))
    });
    g.bench_function(format!("generated_{MODELS}_models_{FILES}_files"), |b| {
        b.iter(|| black_box(load(&big)))
    });
    g.finish();

    let mut g = c.benchmark_group("models_listing_5000");
    g.sample_size(20).measurement_time(Duration::from_secs(8));
    g.bench_function("unfiltered_first_render", |b| {
        // By reference: dropping the 5,000-model snapshot is not part of a render.
        b.iter_batched_ref(
            || load(&big),
            |snapshot| black_box(models_listing(&snapshot.catalog).len()),
            BatchSize::PerIteration,
        )
    });
    let snapshot = load(&big);
    let _ = models_listing(&snapshot.catalog);
    g.bench_function("unfiltered_cached", |b| {
        b.iter(|| black_box(models_response(&snapshot.catalog, None)))
    });
    for (name, query) in [
        (
            "filtered_supported_parameters",
            "supported_parameters=tools,response_format",
        ),
        (
            "filtered_input_modalities",
            "input_modalities=image&output_modalities=text",
        ),
        (
            "filtered_sorted_by_price_page",
            "sort=pricing-low-to-high&limit=100",
        ),
        ("filtered_text_search", "q=model-49"),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| black_box(models_response(&snapshot.catalog, Some(query))))
        });
    }
    g.finish();

    // A full reload as the running gateway does it: read, validate, diff, sync pools, swap.
    let mut g = c.benchmark_group("reload");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    let store = Arc::new(SnapshotStore::new(load(&big)));
    let pools = Arc::new(ProviderPools::default());
    let reloader = Reloader::new(Some(big.clone()), store, pools);
    g.bench_function(format!("reload_{MODELS}_models"), |b| {
        b.iter(|| black_box(reloader.reload().unwrap()))
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench_catalog);
criterion_main!(benches);
