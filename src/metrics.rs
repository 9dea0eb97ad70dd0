//! Prometheus metrics. Labels are bounded: routes, catalog model ids and provider ids come
//! from the config, never from client input; no key or user labels.

use once_cell::sync::Lazy;
use prometheus::{
    register_gauge, register_gauge_vec, register_histogram_vec, register_int_counter_vec,
    register_int_gauge, register_int_gauge_vec, Counter, Gauge, GaugeVec, Histogram, HistogramVec,
    IntCounter, IntCounterVec, IntGauge, IntGaugeVec, TextEncoder,
};
use std::sync::OnceLock;

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
    pub log_lines_dropped: IntCounter,
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
        log_lines_dropped: prometheus::register_int_counter!(
            "switchyard_log_lines_dropped_total",
            "Log lines dropped because stderr did not keep up (over 1 MiB waiting)"
        )?,
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

/// The `kind` label of `switchyard_tokens_total`, in the order [`EndpointMetrics::tokens`]
/// takes.
pub const TOKEN_KINDS: [&str; 4] = ["prompt", "completion", "cached", "reasoning"];

/// One catalog endpoint's metric handles, each resolved on its first use: a labelled
/// metric's `with_label_values` hashes every label on every call, and an endpoint's labels
/// never change (issue 12: eight calls were ~2,400 instructions a request). Held by the
/// catalog's endpoint, so a reload starts afresh; a series still appears only once used.
#[derive(Default)]
pub struct EndpointMetrics {
    tokens: [OnceLock<IntCounter>; 4],
    cost_usd: OnceLock<Counter>,
    ttft: OnceLock<Histogram>,
    /// `switchyard_requests_total{status="2xx"}` for each route an endpoint serves (the first
    /// [`ENDPOINT_ROUTES`] of [`ROUTE_LABELS`]): the usual answer's series.
    answered: [OnceLock<IntCounter>; ENDPOINT_ROUTES],
    /// `switchyard_upstream_attempts_total{outcome="success"}` of the endpoint's provider.
    succeeded: OnceLock<IntCounter>,
}

/// Routes whose requests are served by a catalog endpoint: the first of [`ROUTE_LABELS`].
pub const ENDPOINT_ROUTES: usize = 4;

impl EndpointMetrics {
    /// `switchyard_tokens_total{model, provider, kind = TOKEN_KINDS[kind]}`.
    pub fn tokens(&self, kind: usize, model: &str, provider: &str) -> &IntCounter {
        self.tokens[kind].get_or_init(|| {
            metrics()
                .tokens
                .with_label_values(&[model, provider, TOKEN_KINDS[kind]])
        })
    }

    pub fn cost_usd(&self, model: &str, provider: &str) -> &Counter {
        self.cost_usd
            .get_or_init(|| metrics().cost_usd.with_label_values(&[model, provider]))
    }

    /// `switchyard_requests_total{route, model, provider, status="2xx"}`; `None` for a route
    /// no endpoint serves.
    pub fn answered(&self, route: usize, model: &str, provider: &str) -> Option<&IntCounter> {
        let cell = self.answered.get(route)?;
        Some(cell.get_or_init(|| {
            metrics()
                .requests
                .with_label_values(&[ROUTE_LABELS[route], model, provider, "2xx"])
        }))
    }

    /// `switchyard_upstream_attempts_total{provider, outcome="success"}`.
    pub fn succeeded(&self, provider: &str) -> &IntCounter {
        self.succeeded
            .get_or_init(|| metrics().attempts.with_label_values(&[provider, "success"]))
    }

    pub fn ttft(&self, provider: &str) -> &Histogram {
        self.ttft
            .get_or_init(|| metrics().ttft.with_label_values(&[provider]))
    }
}

/// The `route` label of the per-route metrics: a request's route is one of these.
pub const ROUTE_LABELS: [&str; 10] = [
    "chat_completions",
    "messages",
    "responses",
    "embeddings",
    "models",
    "model_endpoints",
    "key",
    "generation",
    "health",
    "unknown",
];

/// The duration and overhead histograms of `ROUTE_LABELS[route]`, resolved on first use like
/// [`EndpointMetrics`]; `None` for an index outside the table.
pub fn route_times(route: usize) -> Option<&'static (Histogram, Histogram)> {
    static ROUTES: [OnceLock<(Histogram, Histogram)>; ROUTE_LABELS.len()] =
        [const { OnceLock::new() }; ROUTE_LABELS.len()];
    let label = *ROUTE_LABELS.get(route)?;
    Some(ROUTES[route].get_or_init(|| {
        let m = metrics();
        (
            m.request_duration.with_label_values(&[label]),
            m.gateway_overhead.with_label_values(&[label]),
        )
    }))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The exposition's line for `name{..labels..}`, if the series exists.
    fn line_of(name: &str, labels: &str) -> Option<String> {
        render()
            .lines()
            .find(|l| l.starts_with(&format!("{name}{{")) && l.contains(labels))
            .map(str::to_string)
    }

    #[test]
    fn cached_endpoint_handles_count_into_the_labelled_series_across_reloads() {
        let (model, provider) = ("cache-test/model", "cache-test-provider");
        let before = EndpointMetrics::default();
        before.tokens(0, model, provider).inc_by(5);
        before.cost_usd(model, provider).inc_by(0.25);
        before.ttft(provider).observe(0.1);
        // A reload builds new endpoints: their handles must land in the same series.
        let after = EndpointMetrics::default();
        after.tokens(0, model, provider).inc_by(2);
        after.cost_usd(model, provider).inc_by(0.5);
        after.ttft(provider).observe(0.2);
        for m in [&before, &after] {
            m.answered(0, model, provider).unwrap().inc();
            m.succeeded(provider).inc();
        }
        assert!(before.answered(ENDPOINT_ROUTES, model, provider).is_none());
        let counted_twice = |name: &str, labels: String| {
            let line = line_of(name, &labels);
            assert_eq!(
                line.as_deref().map(|l| l.ends_with(" 2")),
                Some(true),
                "{line:?}"
            );
        };
        counted_twice(
            "switchyard_requests_total",
            format!("model=\"{model}\",provider=\"{provider}\",route=\"chat_completions\",status=\"2xx\""),
        );
        counted_twice(
            "switchyard_upstream_attempts_total",
            format!("outcome=\"success\",provider=\"{provider}\""),
        );
        let labels = format!("model=\"{model}\",provider=\"{provider}\"");
        let prompt = line_of("switchyard_tokens_total", &labels).expect("prompt series");
        assert!(
            prompt.contains("kind=\"prompt\"") && prompt.ends_with(" 7"),
            "{prompt}"
        );
        let cost = line_of("switchyard_cost_usd_total", &labels).expect("cost series");
        assert!(cost.ends_with(" 0.75"), "{cost}");
        counted_twice(
            "switchyard_time_to_first_token_seconds_count",
            format!("provider=\"{provider}\""),
        );
        // Kinds never counted have no series (nothing is resolved ahead of use).
        let text = render();
        assert!(!text
            .lines()
            .any(|l| l.contains(&labels) && l.contains("kind=\"reasoning\"")));
    }

    #[test]
    fn route_times_cover_every_route_label_and_nothing_else() {
        for (i, label) in ROUTE_LABELS.iter().enumerate() {
            let (duration, _) = route_times(i).expect("a fixed route");
            let before = duration.get_sample_count();
            duration.observe(0.001);
            let m = metrics();
            assert_eq!(
                m.request_duration
                    .with_label_values(&[label])
                    .get_sample_count(),
                before + 1,
                "{label}"
            );
        }
        assert!(route_times(ROUTE_LABELS.len()).is_none());
    }
}
