//! One access line per request, in text or JSON (`server.log_format`). Never a secret: keys
//! appear by name only.

use pingora::proxy::Session;
use serde_json::json;

use crate::config::LogFormat;
use crate::proxy::RequestCtx;

pub fn log_request(session: &Session, ctx: &RequestCtx) {
    let status = session
        .response_written()
        .map_or(0, |r| r.status.as_u16());
    let req = session.req_header();
    let key = ctx.key.as_ref().map_or("-", |k| k.name.as_str());
    let model = ctx.current.as_ref().map_or("-", |c| c.model.id.as_str());
    let provider = ctx.current.as_ref().map_or("-", |c| c.provider().id.as_str());
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
