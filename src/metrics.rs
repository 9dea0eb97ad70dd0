//! Prometheus metrics. Labels are bounded: routes, catalog model ids and provider ids come
//! from the config, never from client input; no key or user labels.

use once_cell::sync::Lazy;
use prometheus::{
    register_gauge, register_gauge_vec, register_histogram_vec, register_int_counter_vec,
    register_int_gauge, register_int_gauge_vec, Gauge, GaugeVec, HistogramVec, IntCounterVec,
    IntGauge, IntGaugeVec, TextEncoder,
};

pub struct Metrics {
    pub requests: IntCounterVec,
    pub attempts: IntCounterVec,
    pub tokens: IntCounterVec,
    pub cost_usd: prometheus::CounterVec,
    pub request_duration: HistogramVec,
    pub ttft: HistogramVec,
    pub gateway_overhead: HistogramVec,
    pub in_flight: IntGauge,
    pub backend_healthy: IntGaugeVec,
    pub breaker_open: IntGaugeVec,
    pub reloads: IntCounterVec,
    pub last_reload_success: Gauge,
    pub ledger_queue_depth: IntGauge,
    pub ledger_records: IntCounterVec,
    pub build_info: GaugeVec,
    pub limits_redis: IntCounterVec,
}

const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];
const OVERHEAD_BUCKETS: &[f64] = &[
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
];

fn build() -> prometheus::Result<Metrics> {
    let m = Metrics {
        requests: register_int_counter_vec!(
            "switchyard_requests_total",
            "Client requests by route, catalog model, serving provider and status class",
            &["route", "model", "provider", "status"]
        )?,
        attempts: register_int_counter_vec!(
            "switchyard_upstream_attempts_total",
            "Upstream attempts by provider and outcome",
            &["provider", "outcome"]
        )?,
        tokens: register_int_counter_vec!(
            "switchyard_tokens_total",
            "Tokens metered by model, provider and kind (prompt, completion, cached, reasoning)",
            &["model", "provider", "kind"]
        )?,
        cost_usd: prometheus::register_counter_vec!(
            "switchyard_cost_usd_total",
            "Cost charged to keys, in USD",
            &["model", "provider"]
        )?,
        request_duration: register_histogram_vec!(
            "switchyard_request_duration_seconds",
            "Time from request to the end of the response",
            &["route"],
            LATENCY_BUCKETS.to_vec()
        )?,
        ttft: register_histogram_vec!(
            "switchyard_time_to_first_token_seconds",
            "Time from the request to the provider's first response byte",
            &["provider"],
            LATENCY_BUCKETS.to_vec()
        )?,
        gateway_overhead: register_histogram_vec!(
            "switchyard_gateway_overhead_seconds",
            "The gateway's own share of a request: its duration minus time spent waiting on providers",
            &["route"],
            OVERHEAD_BUCKETS.to_vec()
        )?,
        in_flight: register_int_gauge!("switchyard_requests_in_flight", "Requests being served")?,
        backend_healthy: register_int_gauge_vec!(
            "switchyard_backend_healthy",
            "1 when a provider backend passes its health check",
            &["provider", "backend"]
        )?,
        breaker_open: register_int_gauge_vec!(
            "switchyard_breaker_open",
            "1 while an endpoint's breaker is open after consecutive failures",
            &["provider", "upstream_model"]
        )?,
        reloads: register_int_counter_vec!(
            "switchyard_config_reloads_total",
            "Config reloads by result",
            &["result"]
        )?,
        last_reload_success: register_gauge!(
            "switchyard_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful config load"
        )?,
        ledger_queue_depth: register_int_gauge!(
            "switchyard_ledger_queue_depth",
            "Generation records waiting for the database"
        )?,
        ledger_records: register_int_counter_vec!(
            "switchyard_ledger_records_total",
            "Generation records by fate (written; dropped when the queue was full; abandoned after the database stayed down; write_error per failed batch)",
            &["fate"]
        )?,
        build_info: register_gauge_vec!("switchyard_build_info", "Build information", &["version"])?,
        limits_redis: register_int_counter_vec!(
            "switchyard_limits_redis_events_total",
            "Shared limits: redis errors, outages (down/up), admissions by the fallback or refused by policy, spend seeded from the ledger, settles deferred/replayed/dropped",
            &["event"]
        )?,
    };
    m.build_info
        .with_label_values(&[env!("CARGO_PKG_VERSION")])
        .set(1.0);
    Ok(m)
}

static METRICS: Lazy<Metrics> =
    Lazy::new(|| build().expect("metric names are valid and registered once"));

pub fn metrics() -> &'static Metrics {
    &METRICS
}

/// `2xx`, `4xx`, ...
pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "none",
    }
}

/// The text exposition of every registered metric.
pub fn render() -> String {
    let _ = metrics();
    TextEncoder::new()
        .encode_to_string(&prometheus::gather())
        .unwrap_or_default()
}
