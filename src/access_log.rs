//! One access line per request, in text or JSON (`server.log_format`). Never a secret: keys
//! appear by name only.

use pingora::proxy::Session;
use serde::Serialize;

use crate::catalog::PICO_USD_PER_USD;
use crate::config::LogFormat;
use crate::log_batch::ACCESS_TARGET;
use crate::metering::Cost;
use crate::proxy::{AttemptOutcome, RequestCtx};

/// Counts the finished request in the Prometheus metrics. The endpoint's and the route's
/// handles are cached (`metrics::EndpointMetrics`, `metrics::route_times`).
pub fn record_metrics(ctx: &RequestCtx, status: u16) {
    let m = crate::metrics::metrics();
    let route = route_index(ctx.route);
    let model = ctx.current.as_ref().map_or("", |c| c.model.id.as_str());
    let provider = ctx
        .current
        .as_ref()
        .map_or("", |c| c.provider().id.as_str());
    let endpoint = ctx.current.as_ref().map(|c| &c.endpoint().metrics);
    // The usual answer's series through the endpoint's cached handles (`EndpointMetrics`).
    let answered = endpoint
        .filter(|_| (200..300).contains(&status))
        .and_then(|e| e.answered(route, model, provider));
    match answered {
        Some(counter) => counter.inc(),
        None => m
            .requests
            .with_label_values(&[
                crate::metrics::ROUTE_LABELS[route],
                model,
                provider,
                crate::metrics::status_class(status),
            ])
            .inc(),
    }
    for a in &ctx.attempts {
        match endpoint {
            // The attempt that succeeded is the current candidate's.
            Some(e) if a.outcome == AttemptOutcome::Succeeded && a.provider == provider => {
                e.succeeded(provider).inc()
            }
            _ => m
                .attempts
                .with_label_values(&[a.provider.as_str(), outcome_label(&a.outcome)])
                .inc(),
        }
    }
    if let Some(u) = ctx.usage {
        let counts = [u.prompt, u.completion, u.cached_prompt, u.reasoning];
        for (kind, n) in counts.into_iter().enumerate() {
            if n > 0 {
                match endpoint {
                    Some(e) => e.tokens(kind, model, provider).inc_by(n),
                    None => m
                        .tokens
                        .with_label_values(&[model, provider, crate::metrics::TOKEN_KINDS[kind]])
                        .inc_by(n),
                }
            }
        }
        let usd = ctx.cost_of(&u).usd();
        match endpoint {
            Some(e) => e.cost_usd(model, provider).inc_by(usd),
            None => m.cost_usd.with_label_values(&[model, provider]).inc_by(usd),
        }
    }
    let total = ctx.started.elapsed();
    if let Some((duration, overhead)) = crate::metrics::route_times(route) {
        duration.observe(total.as_secs_f64());
        overhead.observe(total.saturating_sub(ctx.upstream_time()).as_secs_f64());
    }
    if let (Some(first), Some(attempt)) = (ctx.first_byte_at, ctx.attempts.last()) {
        let ttft = first.duration_since(attempt.started).as_secs_f64();
        match endpoint {
            Some(e) => e.ttft(provider).observe(ttft),
            None => m.ttft.with_label_values(&[provider]).observe(ttft),
        }
    }
}

/// The request's place in `metrics::ROUTE_LABELS`.
fn route_index(route: crate::proxy::Route) -> usize {
    use crate::proxy::Route;
    match route {
        Route::ChatCompletions => 0,
        Route::Messages => 1,
        Route::Responses => 2,
        Route::Embeddings => 3,
        Route::Models => 4,
        Route::ModelEndpoints => 5,
        Route::Key => 6,
        Route::Generation => 7,
        Route::Healthz | Route::Readyz => 8,
        Route::MethodNotAllowed(_) | Route::NotFound => 9,
    }
}

pub fn outcome_label(outcome: &crate::proxy::AttemptOutcome) -> &'static str {
    use crate::proxy::AttemptOutcome as O;
    match outcome {
        O::InFlight => "in_flight",
        O::Succeeded => "success",
        O::Status(429) => "rate_limited",
        O::Status(s) if *s >= 500 => "server_error",
        O::Status(_) => "client_error",
        O::ConnectFailed => "connect_failed",
        O::TimedOut => "timeout",
        O::Failed => "failed",
        O::Cancelled => "cancelled",
    }
}

/// What the access line says of one request.
#[derive(Serialize)]
struct AccessLine<'a> {
    generation_id: &'a str,
    method: &'a str,
    path: &'a str,
    status: u16,
    key: &'a str,
    model: &'a str,
    provider: &'a str,
    prompt_tokens: u64,
    completion_tokens: u64,
    #[serde(rename = "cost")]
    cost_usd: f64,
    #[serde(skip)]
    cost: Cost,
    latency_ms: u64,
    attempts: usize,
    error: Option<&'a str>,
}

pub fn log_request(session: &Session, ctx: &RequestCtx) {
    if !log::log_enabled!(target: ACCESS_TARGET, log::Level::Info) {
        return;
    }
    let req = session.req_header();
    let cost = ctx.usage.map(|u| ctx.cost_of(&u)).unwrap_or_default();
    let usage = ctx.usage.unwrap_or_default();
    let line = AccessLine {
        generation_id: &ctx.generation_id,
        method: req.method.as_str(),
        path: req.uri.path(),
        status: session.response_written().map_or(0, |r| r.status.as_u16()),
        key: ctx.key.as_ref().map_or("-", |k| k.name.as_str()),
        model: ctx.current.as_ref().map_or("-", |c| c.model.id.as_str()),
        provider: ctx
            .current
            .as_ref()
            .map_or("-", |c| c.provider().id.as_str()),
        prompt_tokens: usage.prompt,
        completion_tokens: usage.completion,
        cost_usd: cost.usd(),
        cost,
        latency_ms: ctx.started.elapsed().as_millis() as u64,
        attempts: ctx.attempts.len(),
        error: ctx.error.as_ref().map(|e| e.message.as_str()),
    };
    let text = match ctx.snapshot.server.log_format {
        LogFormat::Json => serde_json::to_string(&line).unwrap_or_default(),
        LogFormat::Text => text_line(&line),
    };
    log::info!(target: ACCESS_TARGET, "{text}");
}

/// `<id> <method> <path> <status> key= model= provider= tokens=<p>+<c> cost=<usd, 8 places>
/// latency_ms= attempts=`, written piece by piece: as one `format!` with a dozen arguments
/// and a float to eight places it cost ~5k instructions a request (issue 12).
fn text_line(l: &AccessLine<'_>) -> String {
    let mut out = String::with_capacity(192);
    let mut n = itoa::Buffer::new();
    for piece in [l.generation_id, " ", l.method, " ", l.path, " "] {
        out.push_str(piece);
    }
    out.push_str(n.format(l.status));
    for (label, value) in [
        (" key=", l.key),
        (" model=", l.model),
        (" provider=", l.provider),
    ] {
        out.push_str(label);
        out.push_str(value);
    }
    out.push_str(" tokens=");
    out.push_str(n.format(l.prompt_tokens));
    out.push('+');
    out.push_str(n.format(l.completion_tokens));
    out.push_str(" cost=");
    push_usd_8(&mut out, l.cost);
    out.push_str(" latency_ms=");
    out.push_str(n.format(l.latency_ms));
    out.push_str(" attempts=");
    out.push_str(n.format(l.attempts));
    out
}

/// `cost` in USD to eight decimal places (rounded half up), in integer arithmetic.
fn push_usd_8(out: &mut String, cost: Cost) {
    const PICO_PER_UNIT: u128 = PICO_USD_PER_USD as u128 / 100_000_000;
    let units = cost.0.saturating_add(PICO_PER_UNIT / 2) / PICO_PER_UNIT;
    let mut n = itoa::Buffer::new();
    out.push_str(n.format(units / 100_000_000));
    out.push('.');
    let frac = n.format(units % 100_000_000);
    for _ in frac.len()..8 {
        out.push('0');
    }
    out.push_str(frac);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_print_to_eight_places_like_the_float_format_did() {
        for pico in [
            0u128,
            1,
            4_999,
            5_000,
            12_345_678_901,
            1_000_000_000_000,
            98_765_432_109_876_543,
        ] {
            let mut out = String::new();
            push_usd_8(&mut out, Cost(pico));
            assert_eq!(out, format!("{:.8}", Cost(pico).usd()), "{pico}");
        }
    }

    #[test]
    fn the_text_line_has_every_field() {
        let line = AccessLine {
            generation_id: "gen-1",
            method: "POST",
            path: "/v1/chat/completions",
            status: 200,
            key: "team-a",
            model: "openai/gpt-x",
            provider: "openai",
            prompt_tokens: 12,
            completion_tokens: 7,
            cost_usd: 0.0,
            cost: Cost(250_000_000),
            latency_ms: 31,
            attempts: 2,
            error: None,
        };
        assert_eq!(
            text_line(&line),
            "gen-1 POST /v1/chat/completions 200 key=team-a model=openai/gpt-x \
             provider=openai tokens=12+7 cost=0.00025000 latency_ms=31 attempts=2"
        );
        let json: serde_json::Value = serde_json::to_value(&line).unwrap();
        assert_eq!(json["cost"], 0.0);
        assert!(json.get("cost_usd").is_none() && json["error"].is_null());
    }
}
