//! `GET /v1/models`: the catalog in OpenAI's list shape, with OpenRouter's fields
//! (`context_length`, `pricing` in USD per token as strings, `supported_parameters`, ...).

use bytes::Bytes;
use serde_json::{json, Value};

use crate::catalog::{Catalog, Model, Price};

/// Parameters every chat model takes.
const BASE_PARAMETERS: &[&str] = &["max_tokens", "temperature", "top_p", "stop"];

/// USD per token as a plain decimal string, the way OpenRouter prints prices.
fn usd_per_token(pico: u64) -> String {
    let whole = pico / crate::catalog::PICO_USD_PER_USD;
    let frac = pico % crate::catalog::PICO_USD_PER_USD;
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:012}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// The model's listed price: its cheapest endpoint's.
fn listed_price(model: &Model) -> Price {
    model
        .endpoints
        .iter()
        .map(|e| e.price)
        .min_by_key(Price::blended)
        .unwrap_or_default()
}

pub fn supported_parameters(model: &Model) -> Vec<String> {
    let mut params: Vec<String> = BASE_PARAMETERS.iter().map(|s| s.to_string()).collect();
    for ep in &model.endpoints {
        for s in &ep.supports {
            let implied: Vec<&str> = match s.as_str() {
                "tools" => vec!["tools", "tool_choice"],
                "response_format" => vec!["response_format", "structured_outputs"],
                "stream" => vec![],
                other => vec![other],
            };
            for p in implied {
                if !params.iter().any(|q| q == p) {
                    params.push(p.to_string());
                }
            }
        }
    }
    params
}

pub fn model_json(model: &Model) -> Value {
    let price = listed_price(model);
    let mut pricing = json!({
        "prompt": usd_per_token(price.prompt),
        "completion": usd_per_token(price.completion),
        "request": "0",
        "image": "0",
    });
    if let Some(cached) = price.cached_prompt {
        pricing["input_cache_read"] = json!(usd_per_token(cached));
    }
    if let Some(reasoning) = price.reasoning {
        pricing["internal_reasoning"] = json!(usd_per_token(reasoning));
    }
    let author = model.id.split('/').next().unwrap_or("switchyard");
    json!({
        "id": model.id,
        "object": "model",
        "created": 0,
        "owned_by": author,
        "canonical_slug": model.id,
        "name": model.name,
        "context_length": model.context_length,
        "architecture": {
            "modality": "text->text",
            "input_modalities": ["text"],
            "output_modalities": ["text"],
            "tokenizer": "Other",
            "instruct_type": null,
        },
        "pricing": pricing,
        "top_provider": {
            "context_length": model.context_length,
            "max_completion_tokens": model.max_output,
            "is_moderated": false,
        },
        "per_request_limits": null,
        "supported_parameters": supported_parameters(model),
        "default_parameters": null,
        "supported_voices": null,
        "links": { "details": format!("/api/v1/models/{}/endpoints", model.id) },
        "endpoints": model.endpoints.len(),
    })
}

/// `GET /v1/models/{author}/{slug}/endpoints`: each provider endpoint of a model with its
/// price, health and live statistics (OpenRouter's `ListEndpointsResponse`).
pub fn model_endpoints(model: &Model, health: &crate::routing::HealthBook) -> Value {
    let pct = |p: Option<[f64; 4]>| {
        p.map(|[p50, p75, p90, p99]| json!({"p50": p50, "p75": p75, "p90": p90, "p99": p99}))
    };
    let endpoints: Vec<Value> = model
        .endpoints
        .iter()
        .map(|ep| {
            let h = health.get(&ep.provider.id, &ep.upstream_model);
            let stats = h.as_ref().map(|h| h.stats()).unwrap_or_default();
            let open = h.as_ref().is_some_and(|h| h.is_open());
            let uptime = if stats.requests == 0 { 100.0 } else { stats.uptime * 100.0 };
            let mut pricing = json!({
                "prompt": usd_per_token(ep.price.prompt),
                "completion": usd_per_token(ep.price.completion),
                "request": "0",
                "image": "0",
            });
            if let Some(c) = ep.price.cached_prompt {
                pricing["input_cache_read"] = json!(usd_per_token(c));
            }
            json!({
                "name": format!("{}: {}", ep.provider.id, model.name),
                "model_id": model.id,
                "model_name": model.name,
                "context_length": model.context_length,
                "pricing": pricing,
                "provider_name": ep.provider.id,
                "tag": ep.provider.id,
                "quantization": ep.quantization,
                "max_completion_tokens": model.max_output,
                "max_prompt_tokens": model.context_length,
                "supported_parameters": supported_parameters(model),
                "status": if open || ep.provider.unavailable.is_some() { -1 } else { 0 },
                "uptime_last_5m": uptime,
                "uptime_last_30m": uptime,
                "uptime_last_1d": uptime,
                "supports_implicit_caching": ep.price.cached_prompt.is_some(),
                "latency_last_30m": pct(stats.ttft_percentiles),
                "throughput_last_30m": pct(stats.throughput_percentiles),
                "upstream_model": ep.upstream_model,
                "data_collection": matches!(ep.provider.data_collection, crate::catalog::DataCollection::Allow),
                "zdr": ep.provider.zdr,
                "healthy": !open && ep.provider.unavailable.is_none(),
                "requests_last_5m": stats.requests,
            })
        })
        .collect();
    let listed = model_json(model);
    json!({ "data": {
        "id": model.id,
        "name": model.name,
        "created": 0,
        "description": "",
        "architecture": listed["architecture"],
        "endpoints": endpoints,
    }})
}

/// The whole listing, rendered once per catalog (a snapshot never changes).
pub fn models_listing(catalog: &Catalog) -> Bytes {
    catalog
        .models_listing
        .get_or_init(|| {
            let data: Vec<Value> = catalog.models.values().map(|m| model_json(m)).collect();
            let body = json!({
                "object": "list",
                "total_count": data.len(),
                "links": { "next": null },
                "data": data,
            });
            Bytes::from(body.to_string())
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_prices_per_token_as_decimal_strings() {
        assert_eq!(usd_per_token(150_000), "0.00000015");
        assert_eq!(usd_per_token(0), "0");
        assert_eq!(usd_per_token(1_500_000_000_000), "1.5");
        assert_eq!(usd_per_token(15_000_000), "0.000015");
    }
}
