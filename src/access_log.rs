//! One access line per request, in text or JSON (`server.log_format`). Never a secret: keys
//! appear by name only.

use pingora::proxy::Session;
use serde_json::json;

use crate::config::LogFormat;
use crate::proxy::RequestCtx;

/// Counts the finished request in the Prometheus metrics.
pub fn record_metrics(session: &Session, ctx: &RequestCtx) {
    let m = crate::metrics::metrics();
    let status = session.response_written().map_or(0, |r| r.status.as_u16());
    let route = route_label(ctx.route);
    let model = ctx.current.as_ref().map_or("", |c| c.model.id.as_str());
    let provider = ctx
        .current
        .as_ref()
        .map_or("", |c| c.provider().id.as_str());
    m.requests
        .with_label_values(&[route, model, provider, crate::metrics::status_class(status)])
        .inc();
    for a in &ctx.attempts {
        m.attempts
            .with_label_values(&[a.provider.as_str(), outcome_label(&a.outcome)])
            .inc();
    }
    if let Some(u) = ctx.usage {
        for (kind, n) in [
            ("prompt", u.prompt),
            ("completion", u.completion),
            ("cached", u.cached_prompt),
            ("reasoning", u.reasoning),
        ] {
            if n > 0 {
                m.tokens
                    .with_label_values(&[model, provider, kind])
                    .inc_by(n);
            }
        }
        m.cost_usd
            .with_label_values(&[model, provider])
            .inc_by(ctx.cost_of(&u).usd());
    }
    let total = ctx.started.elapsed();
    m.request_duration
        .with_label_values(&[route])
        .observe(total.as_secs_f64());
    m.gateway_overhead
        .with_label_values(&[route])
        .observe(total.saturating_sub(ctx.upstream_time()).as_secs_f64());
    if let (Some(first), Some(attempt)) = (ctx.first_byte_at, ctx.attempts.last()) {
        m.ttft
            .with_label_values(&[provider])
            .observe(first.duration_since(attempt.started).as_secs_f64());
    }
}

fn route_label(route: crate::proxy::Route) -> &'static str {
    use crate::proxy::Route;
    match route {
        Route::ChatCompletions => "chat_completions",
        Route::Messages => "messages",
        Route::Responses => "responses",
        Route::Embeddings => "embeddings",
        Route::Models => "models",
        Route::ModelEndpoints => "model_endpoints",
        Route::Key => "key",
        Route::Generation => "generation",
        Route::Healthz | Route::Readyz => "health",
        Route::MethodNotAllowed(_) | Route::NotFound => "unknown",
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

pub fn log_request(session: &Session, ctx: &RequestCtx) {
    let status = session.response_written().map_or(0, |r| r.status.as_u16());
    let req = session.req_header();
    let key = ctx.key.as_ref().map_or("-", |k| k.name.as_str());
    let model = ctx.current.as_ref().map_or("-", |c| c.model.id.as_str());
    let provider = ctx
        .current
        .as_ref()
        .map_or("-", |c| c.provider().id.as_str());
    let usage = ctx.usage.unwrap_or_default();
    let cost = ctx.usage.map_or(0.0, |u| ctx.cost_of(&u).usd());
    let latency_ms = ctx.started.elapsed().as_millis() as u64;
    match ctx.snapshot.server.log_format {
        LogFormat::Json => log::info!(
            target: "access",
            "{}",
            json!({
                "generation_id": ctx.generation_id, "method": req.method.as_str(), "path": req.uri.path(),
                "status": status, "key": key, "model": model, "provider": provider,
                "prompt_tokens": usage.prompt, "completion_tokens": usage.completion,
                "cost": cost, "latency_ms": latency_ms, "attempts": ctx.attempts.len(),
                "error": ctx.error.as_ref().map(|e| e.message.as_str()),
            })
        ),
        LogFormat::Text => log::info!(
            target: "access",
            "{} {} {} {status} key={key} model={model} provider={provider} tokens={}+{} cost={cost:.8} latency_ms={latency_ms} attempts={}",
            ctx.generation_id,
            req.method,
            req.uri.path(),
            usage.prompt,
            usage.completion,
            ctx.attempts.len(),
        ),
    }
}
