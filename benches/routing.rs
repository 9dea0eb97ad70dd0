//! Route planning (`RoutePlan::build`) against a 1,000-model catalog (3 endpoints each over
//! 10 providers), loaded through the real config path (`config::load_str`): the default
//! 1/price² draw, provider preferences (filters, then sort or order), `models: [..]`
//! fallbacks, and a health book that knows every endpoint (as after some traffic).
//!
//! `cargo bench --bench routing`

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use std::fmt::Write;
use switchyard::config::{load_str, Snapshot};
use switchyard::routing::{HealthBook, ProviderPrefs, RoutePlan, RouteRequest};

const MODELS: usize = 1_000;
const PROVIDERS: usize = 10;
const WARM_SAMPLES: u64 = 512;

fn catalog_yaml() -> String {
    let mut y = String::from(
        "server:\n  listen: [\"127.0.0.1:8080\"]\nkeys:\n  - name: bench\n    key_sha256: \"",
    );
    y.push_str(&"ab".repeat(32));
    y.push_str("\"\nproviders:\n");
    for p in 0..PROVIDERS {
        let policy = if p % 2 == 0 { "deny" } else { "allow" };
        writeln!(
            y,
            "  p{p}:\n    dialect: openai\n    base_url: \"http://127.0.0.1:9/v1\"\n    data_collection: {policy}\n    zdr: {}",
            p % 3 == 0
        )
        .unwrap();
    }
    y.push_str("models:\n");
    let quants = ["fp8", "fp16", "bf16"];
    for m in 0..MODELS {
        writeln!(
            y,
            "  author{}/model-{m}:\n    context_length: 128000\n    endpoints:",
            m % 25
        )
        .unwrap();
        for (k, step) in [0, 3, 7].iter().enumerate() {
            let p = (m + step) % PROVIDERS;
            let price = 0.1 + (m % 17) as f64 * 0.05 + k as f64 * 0.2;
            writeln!(
                y,
                "      - {{ provider: p{p}, model: up-{m}-{k}, price: {{ prompt: {price:.2}, completion: {:.2} }}, quantization: {}, supports: [tools, response_format, stream] }}",
                price * 4.0,
                quants[k]
            )
            .unwrap();
        }
    }
    y
}

fn snapshot() -> Snapshot {
    let yaml = catalog_yaml();
    let loaded = load_str(&yaml, "bench.yaml", &|_| None).expect("the generated catalog loads");
    assert!(loaded.snapshot.catalog.model("author0/model-500").is_some());
    loaded.snapshot
}

fn prefs(json: &str) -> ProviderPrefs {
    serde_json::from_str(json).expect("valid provider preferences")
}

fn bench_plans(c: &mut Criterion) {
    let snapshot = snapshot();
    let key = snapshot.keys.iter().next().expect("one key").clone();
    let empty_health = HealthBook::default();
    // As after a few minutes of traffic: every endpoint of the planned models holds a full
    // window of samples (the health book keeps up to 512 per endpoint).
    let warm_health = HealthBook::default();
    for m in 500..=502 {
        let model = snapshot
            .catalog
            .model(&format!("author{}/model-{m}", m % 25))
            .expect("generated model");
        for ep in &model.endpoints {
            let health = warm_health.endpoint(&ep.provider.id, &ep.upstream_model);
            for i in 0..WARM_SAMPLES {
                health.record_success(Some(200 + i % 300), Some(40.0 + (i % 50) as f64));
            }
        }
    }
    let no_prefs = ProviderPrefs::default();
    let filtering = prefs(
        r#"{"ignore":["p1"],"data_collection":"deny","quantizations":["fp8","fp16","bf16"],
            "max_price":{"prompt":5,"completion":20},"require_parameters":true,"sort":"price"}"#,
    );
    let ordered = prefs(r#"{"order":["p7","p3"],"allow_fallbacks":true}"#);
    let fallbacks = vec![
        "author1/model-501".to_string(),
        "author2/model-502:floor".to_string(),
    ];
    let no_fallbacks: Vec<String> = Vec::new();
    let parameters = ["tools"];

    let cases: [(&str, &ProviderPrefs, &Vec<String>, &HealthBook); 7] = [
        ("default_draw", &no_prefs, &no_fallbacks, &empty_health),
        (
            "prefs_filter_and_sort",
            &filtering,
            &no_fallbacks,
            &empty_health,
        ),
        ("prefs_order", &ordered, &no_fallbacks, &empty_health),
        ("two_fallbacks", &no_prefs, &fallbacks, &empty_health),
        (
            "default_draw_warm_health",
            &no_prefs,
            &no_fallbacks,
            &warm_health,
        ),
        (
            "prefs_filter_and_sort_warm_health",
            &filtering,
            &no_fallbacks,
            &warm_health,
        ),
        (
            "two_fallbacks_warm_health",
            &no_prefs,
            &fallbacks,
            &warm_health,
        ),
    ];
    let mut group = c.benchmark_group("route_plan_1000_models");
    for (name, prefs, fallbacks, health) in cases {
        let req = RouteRequest {
            model: "author0/model-500",
            fallbacks,
            prefs,
            key: &key,
            parameters: &parameters,
            health,
            sticky: None,
        };
        let plan = RoutePlan::build(&snapshot.catalog, &req).expect("a plan");
        assert!(!plan.candidates().is_empty(), "{name}");
        group.bench_function(name, |b| {
            b.iter(|| RoutePlan::build(black_box(&snapshot.catalog), black_box(&req)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_plans);
criterion_main!(benches);
