use super::*;
use crate::config::load_str;
use crate::routing::{HealthBook, StickyTarget};

const CATALOG: &str = r#"
providers:
  cheap: { dialect: openai, base_url: "http://127.0.0.1:1/v1", data_collection: allow }
  pricey: { dialect: openai, base_url: "http://127.0.0.1:2/v1", data_collection: deny, zdr: true }
models:
  m/one:
    endpoints:
      - { provider: cheap, model: one-a, price: { prompt: 1, completion: 1 }, quantization: fp8 }
      - { provider: pricey, model: one-b, price: { prompt: 2, completion: 2 }, quantization: fp16, supports: [tools] }
  m/two:
    endpoints:
      - { provider: cheap, model: two-a, price: { prompt: 1, completion: 1 } }
keys:
  - { name: all, key_sha256: "0000000000000000000000000000000000000000000000000000000000000000" }
  - { name: limited, key_sha256: "1111111111111111111111111111111111111111111111111111111111111111", allowed_models: ["m/two"] }
"#;

fn snapshot() -> crate::config::Snapshot {
    load_str(CATALOG, "t", &|_| None).unwrap().snapshot
}

fn key<'a>(s: &'a crate::config::Snapshot, name: &str) -> &'a ApiKey {
    s.keys.iter().find(|k| k.name == name).unwrap()
}

fn providers(
    s: &crate::config::Snapshot,
    model: &str,
    fallbacks: &[&str],
    prefs: &str,
    key_name: &str,
) -> Result<Vec<String>, PlanError> {
    let prefs: ProviderPrefs = serde_json::from_str(prefs).unwrap();
    let fallbacks: Vec<String> = fallbacks.iter().map(|s| s.to_string()).collect();
    let health = HealthBook::default();
    let req = RouteRequest {
        model,
        fallbacks: &fallbacks,
        prefs: &prefs,
        key: key(s, key_name),
        parameters: &["tools"],
        health: &health,
        sticky: None,
    };
    RoutePlan::build(&s.catalog, &req).map(|p| {
        p.candidates()
            .iter()
            .map(|c| format!("{}@{}", c.endpoint().upstream_model, c.provider().id))
            .collect()
    })
}

#[test]
fn order_only_ignore_and_sort_change_the_choice() {
    let s = snapshot();
    assert_eq!(
        providers(&s, "m/one", &[], r#"{"order":["pricey","cheap"]}"#, "all").unwrap(),
        ["one-b@pricey", "one-a@cheap"]
    );
    assert_eq!(
        providers(&s, "m/one", &[], r#"{"only":["pricey"]}"#, "all").unwrap(),
        ["one-b@pricey"]
    );
    assert_eq!(
        providers(&s, "m/one", &[], r#"{"ignore":["pricey"]}"#, "all").unwrap(),
        ["one-a@cheap"]
    );
    assert_eq!(
        providers(&s, "m/one", &[], r#"{"sort":"price"}"#, "all").unwrap(),
        ["one-a@cheap", "one-b@pricey"]
    );
    assert_eq!(
        providers(&s, "m/one:floor", &[], "{}", "all").unwrap(),
        ["one-a@cheap", "one-b@pricey"]
    );
}

#[test]
fn policy_filters_exclude_endpoints() {
    let s = snapshot();
    for prefs in [
        r#"{"data_collection":"deny"}"#,
        r#"{"zdr":true}"#,
        r#"{"quantizations":["fp16"]}"#,
        r#"{"require_parameters":true}"#,
    ] {
        let got = providers(&s, "m/one", &[], prefs, "all").unwrap();
        assert_eq!(got, ["one-b@pricey"], "{prefs}");
    }
    let got = providers(&s, "m/one", &[], r#"{"max_price":{"prompt":1.5}}"#, "all").unwrap();
    assert_eq!(got, ["one-a@cheap"]);
}

/// `require_parameters` never excludes an endpoint for a parameter every endpoint takes
/// (`stop`, `temperature`: /v1/models lists them for every model), only for flagged ones.
#[test]
fn require_parameters_counts_the_base_parameters_as_supported() {
    let s = snapshot();
    let prefs: ProviderPrefs = serde_json::from_str(r#"{"require_parameters":true}"#).unwrap();
    let health = HealthBook::default();
    let plan = |parameters: &[&'static str]| {
        let req = RouteRequest {
            model: "m/one",
            fallbacks: &[],
            prefs: &prefs,
            key: key(&s, "all"),
            parameters,
            health: &health,
            sticky: None,
        };
        RoutePlan::build(&s.catalog, &req).map(|p| p.candidates().len())
    };
    assert_eq!(plan(&["stop", "temperature"]).unwrap(), 2);
    assert_eq!(plan(&["stop", "tools"]).unwrap(), 1);
}

#[test]
fn fallbacks_follow_the_first_model_and_fallbacks_can_be_disabled() {
    let s = snapshot();
    let got = providers(&s, "m/one", &["m/two"], r#"{"sort":"price"}"#, "all").unwrap();
    assert_eq!(got, ["one-a@cheap", "one-b@pricey", "two-a@cheap"]);
    let got = providers(
        &s,
        "m/one",
        &[],
        r#"{"sort":"price","allow_fallbacks":false}"#,
        "all",
    )
    .unwrap();
    assert_eq!(got, ["one-a@cheap"]);
    // With an `order`, "the primary/custom providers" are the ones it names, in its order,
    // and no others (OpenRouter's `allow_fallbacks`).
    let no_fallbacks = |order: &str| {
        providers(
            &s,
            "m/one",
            &[],
            &format!(r#"{{"order":{order},"allow_fallbacks":false}}"#),
            "all",
        )
    };
    assert_eq!(
        no_fallbacks(r#"["pricey","cheap"]"#).unwrap(),
        ["one-b@pricey", "one-a@cheap"]
    );
    assert_eq!(no_fallbacks(r#"["pricey"]"#).unwrap(), ["one-b@pricey"]);
    match no_fallbacks(r#"["nobody"]"#) {
        Err(PlanError::NoEligibleEndpoint { excluded, .. }) => {
            assert_eq!(excluded.len(), 2);
            assert!(excluded[0].contains("provider.order"), "{excluded:?}");
        }
        other => panic!("a provider the client did not name served: {other:?}"),
    }
}

#[test]
fn explains_what_excluded_everything() {
    let s = snapshot();
    match providers(&s, "m/one", &[], r#"{"only":["nobody"]}"#, "all") {
        Err(PlanError::NoEligibleEndpoint { excluded, .. }) => {
            assert_eq!(excluded.len(), 2);
            assert!(excluded[0].contains("provider.only"), "{excluded:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        providers(&s, "nope/x", &[], "{}", "all"),
        Err(PlanError::UnknownModel("nope/x".into()))
    );
    assert_eq!(
        providers(&s, "m/one", &[], "{}", "limited"),
        Err(PlanError::ModelNotAllowed("m/one".into()))
    );
}

#[test]
fn default_draw_weighs_endpoints_by_inverse_price_squared() {
    let s = snapshot();
    let draws = 4000;
    let cheap_first = (0..draws)
        .filter(|_| providers(&s, "m/one", &[], "{}", "all").unwrap()[0] == "one-a@cheap")
        .count();
    // Weights 1/1² and 1/2²: the cheap endpoint leads 4/5 of the time.
    let share = cheap_first as f64 / draws as f64;
    assert!((share - 0.8).abs() < 0.03, "cheap share {share}");
}

fn plan_with(
    s: &crate::config::Snapshot,
    prefs: &str,
    health: &HealthBook,
    sticky: Option<&StickyTarget>,
) -> Result<Vec<String>, PlanError> {
    let prefs: ProviderPrefs = serde_json::from_str(prefs).unwrap();
    let req = RouteRequest {
        model: "m/one",
        fallbacks: &[],
        prefs: &prefs,
        key: key(s, "all"),
        parameters: &[],
        health,
        sticky,
    };
    RoutePlan::build(&s.catalog, &req).map(|p| {
        p.candidates()
            .iter()
            .map(|c| c.provider().id.clone())
            .collect()
    })
}

#[test]
fn open_breakers_are_skipped_and_all_open_is_unhealthy() {
    let s = snapshot();
    let health = HealthBook::default();
    for _ in 0..crate::routing::health::FAILURES_TO_OPEN {
        health.endpoint("cheap", "one-a").record_failure();
    }
    assert_eq!(plan_with(&s, "{}", &health, None).unwrap(), ["pricey"]);
    for _ in 0..crate::routing::health::FAILURES_TO_OPEN {
        health.endpoint("pricey", "one-b").record_failure();
    }
    assert!(matches!(
        plan_with(&s, "{}", &health, None),
        Err(PlanError::AllUnhealthy { .. })
    ));
}

#[test]
fn throughput_and_latency_sorts_use_live_statistics() {
    let s = snapshot();
    let health = HealthBook::default();
    health
        .endpoint("cheap", "one-a")
        .record_success(Some(900), Some(20.0));
    health
        .endpoint("pricey", "one-b")
        .record_success(Some(100), Some(200.0));
    assert_eq!(
        plan_with(&s, r#"{"sort":"throughput"}"#, &health, None).unwrap(),
        ["pricey", "cheap"]
    );
    assert_eq!(
        plan_with(&s, r#"{"sort":"latency"}"#, &health, None).unwrap(),
        ["pricey", "cheap"]
    );
    // :nitro is a throughput sort.
    let prefs = ProviderPrefs::default();
    let req = RouteRequest {
        model: "m/one:nitro",
        fallbacks: &[],
        prefs: &prefs,
        key: key(&s, "all"),
        parameters: &[],
        health: &health,
        sticky: None,
    };
    let plan = RoutePlan::build(&s.catalog, &req).unwrap();
    assert_eq!(plan.candidates()[0].provider().id, "pricey");
    // A soft latency preference moves the slow endpoint back even under a price sort.
    assert_eq!(
        plan_with(
            &s,
            r#"{"sort":"price","preferred_max_latency":0.5}"#,
            &health,
            None
        )
        .unwrap(),
        ["pricey", "cheap"]
    );
}

#[test]
fn a_sticky_session_goes_back_to_its_endpoint() {
    let s = snapshot();
    let health = HealthBook::default();
    let target = StickyTarget {
        provider: "pricey".into(),
        upstream_model: "one-b".into(),
    };
    for _ in 0..50 {
        assert_eq!(
            plan_with(&s, "{}", &health, Some(&target)).unwrap()[0],
            "pricey"
        );
    }
    // An explicit sort or order wins over stickiness.
    assert_eq!(
        plan_with(&s, r#"{"sort":"price"}"#, &health, Some(&target)).unwrap()[0],
        "cheap"
    );
    // ...unless that endpoint is no longer eligible.
    assert_eq!(
        plan_with(&s, r#"{"ignore":["pricey"]}"#, &health, Some(&target)).unwrap(),
        ["cheap"]
    );
}

#[test]
fn a_sort_with_partition_none_orders_every_models_endpoints_together() {
    let s = snapshot();
    let across = r#"{"sort":{"by":"price","partition":"none"}}"#;
    assert_eq!(
        providers(&s, "m/one", &["m/two"], across, "all").unwrap(),
        ["one-a@cheap", "two-a@cheap", "one-b@pricey"]
    );
    // `partition: "model"` (the default) keeps fallback models behind.
    let by_model = r#"{"sort":{"by":"price","partition":"model"}}"#;
    assert_eq!(
        providers(&s, "m/one", &["m/two"], by_model, "all").unwrap(),
        ["one-a@cheap", "one-b@pricey", "two-a@cheap"]
    );
}

#[test]
fn soft_preferences_take_every_percentile_cutoff() {
    let s = snapshot();
    let health = HealthBook::default();
    // cheap: six answers fast, four slow (p50 0.1 s and 100 tokens/s; p90 5 s and 5).
    for slow in [
        false, true, false, true, false, true, false, true, false, false,
    ] {
        let (ttft, tps) = if slow { (5000, 5.0) } else { (100, 100.0) };
        health
            .endpoint("cheap", "one-a")
            .record_success(Some(ttft), Some(tps));
    }
    health
        .endpoint("pricey", "one-b")
        .record_success(Some(500), Some(50.0));
    let plan = |prefs: &str| plan_with(&s, prefs, &health, None).unwrap();
    assert_eq!(plan(r#"{"sort":"price"}"#), ["cheap", "pricey"]);
    assert_eq!(
        plan(r#"{"sort":"price","preferred_max_latency":{"p50":1}}"#),
        ["cheap", "pricey"]
    );
    assert_eq!(
        plan(r#"{"sort":"price","preferred_max_latency":{"p90":1}}"#),
        ["pricey", "cheap"]
    );
    assert_eq!(
        plan(r#"{"sort":"price","preferred_min_throughput":{"p90":20}}"#),
        ["pricey", "cheap"]
    );
}
