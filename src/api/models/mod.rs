//! `GET /v1/models`: the catalog in OpenAI's list shape, with OpenRouter's fields
//! (`context_length`, `pricing` in USD per token as strings, `supported_parameters`, ...).

use bytes::Bytes;
use serde::Serialize;
use serde_json::{json, Value};

mod query;

pub use query::ModelsQuery;

use super::FrontDoor;
use crate::catalog::{
    is_request_parameter, listed_price, sort_models, Catalog, Model, ModelsListing, Price,
    BASE_PARAMETERS,
};

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

/// The parameters a model takes: the base ones, then every endpoint's, without duplicates.
pub fn supported_parameters(model: &Model) -> Vec<String> {
    parameters_of(model.endpoints.iter().flat_map(|e| e.supports.iter()))
        .into_iter()
        .map(str::to_string)
        .collect()
}

fn parameters_of<'a>(supports: impl Iterator<Item = &'a String>) -> Vec<&'a str> {
    let mut params: Vec<&str> = BASE_PARAMETERS.to_vec();
    for s in supports {
        // Flags like `stream` or `vision` describe an endpoint but are not parameters.
        if is_request_parameter(s) && !params.contains(&s.as_str()) {
            params.push(s);
        }
    }
    params
}

/// One model of the listing (OpenRouter's `Model`), borrowed from the catalog and serialised
/// straight to bytes: no intermediate JSON tree for thousands of models.
#[derive(Serialize)]
struct ListedModel<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    owned_by: &'a str,
    canonical_slug: &'a str,
    name: &'a str,
    context_length: Option<u64>,
    architecture: Architecture<'a>,
    pricing: Pricing,
    top_provider: TopProvider,
    per_request_limits: Option<()>,
    supported_parameters: Vec<&'a str>,
    default_parameters: Option<()>,
    supported_voices: Option<()>,
    links: Links,
    endpoints: usize,
}

#[derive(Serialize)]
struct Architecture<'a> {
    /// `text+image->text`.
    modality: String,
    input_modalities: &'a [String],
    output_modalities: &'a [String],
    tokenizer: &'static str,
    instruct_type: Option<()>,
}

/// USD per token as strings, the way OpenRouter prints prices.
#[derive(Serialize)]
struct Pricing {
    prompt: String,
    completion: String,
    request: &'static str,
    image: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    input_cache_read: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    input_cache_write: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    internal_reasoning: Option<String>,
}

impl Pricing {
    fn of(price: &Price, with_reasoning: bool) -> Pricing {
        Pricing {
            prompt: usd_per_token(price.prompt),
            completion: usd_per_token(price.completion),
            request: "0",
            image: "0",
            input_cache_read: price.cached_prompt.map(usd_per_token),
            input_cache_write: price.cache_write.map(usd_per_token),
            internal_reasoning: price
                .reasoning
                .filter(|_| with_reasoning)
                .map(usd_per_token),
        }
    }
}

#[derive(Serialize)]
struct TopProvider {
    context_length: Option<u64>,
    max_completion_tokens: Option<u64>,
    is_moderated: bool,
}

#[derive(Serialize)]
struct Links {
    details: String,
}

impl<'a> ListedModel<'a> {
    fn of(model: &'a Model) -> ListedModel<'a> {
        ListedModel {
            id: &model.id,
            object: "model",
            created: 0,
            owned_by: model.id.split('/').next().unwrap_or("switchyard"),
            canonical_slug: &model.id,
            name: &model.name,
            context_length: model.context_length,
            architecture: Architecture {
                modality: format!(
                    "{}->{}",
                    model.input_modalities.join("+"),
                    model.output_modalities.join("+")
                ),
                input_modalities: &model.input_modalities,
                output_modalities: &model.output_modalities,
                tokenizer: "Other",
                instruct_type: None,
            },
            pricing: Pricing::of(&listed_price(model), true),
            top_provider: TopProvider {
                context_length: model.context_length,
                max_completion_tokens: model.max_output,
                is_moderated: false,
            },
            per_request_limits: None,
            supported_parameters: parameters_of(
                model.endpoints.iter().flat_map(|e| e.supports.iter()),
            ),
            default_parameters: None,
            supported_voices: None,
            links: Links {
                details: format!("/api/v1/models/{}/endpoints", model.id),
            },
            endpoints: model.endpoints.len(),
        }
    }
}

pub fn model_json(model: &Model) -> Value {
    serde_json::to_value(ListedModel::of(model)).unwrap_or(Value::Null)
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
            let pricing = Pricing::of(&ep.price, false);
            json!({
                "name": format!("{}: {}", ep.provider.id, model.name),
                "model_id": model.id,
                "model_name": model.name,
                "context_length": ep.context_length.or(model.context_length),
                "pricing": pricing,
                "provider_name": ep.provider.id,
                "tag": ep.provider.id,
                "quantization": ep.quantization,
                "max_completion_tokens": ep.max_output.or(model.max_output),
                "max_prompt_tokens": ep.context_length.or(model.context_length),
                "supported_parameters": parameters_of(ep.supports.iter()),
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

/// Renders the whole listing once per catalog (a snapshot never changes): one buffer, with
/// each model's object kept as a slice of it for filtered listings.
fn rendered(catalog: &Catalog) -> &ModelsListing {
    catalog.models_listing.get_or_init(|| {
        let mut body = Vec::with_capacity(catalog.models.len() * 1024 + 128);
        body.extend_from_slice(listing_head(catalog.models.len()).as_bytes());
        let mut ranges = Vec::with_capacity(catalog.models.len());
        for (i, model) in catalog.models.values().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            let start = body.len();
            // Writing plain data into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut body, &ListedModel::of(model));
            ranges.push(start..body.len());
        }
        body.extend_from_slice(b"]}");
        let body = Bytes::from(body);
        let entries = ranges.into_iter().map(|r| body.slice(r)).collect();
        ModelsListing { body, entries }
    })
}

fn listing_head(total: usize) -> String {
    format!(r#"{{"object":"list","total_count":{total},"links":{{"next":null}},"data":["#)
}

/// The unfiltered `GET /v1/models` body.
pub fn models_listing(catalog: &Catalog) -> Bytes {
    rendered(catalog).body.clone()
}

/// `GET /v1/models?...`: the status and body for a query string. Without filters, the body
/// rendered once per catalog; with filters, the matching models' pre-rendered objects joined.
pub fn models_response(catalog: &Catalog, query: Option<&str>) -> (u16, Bytes) {
    let query = match query.map(ModelsQuery::parse).transpose() {
        Ok(q) => q.unwrap_or_default(),
        Err(e) => return (e.status, e.body(FrontDoor::OpenAi)),
    };
    let listing = rendered(catalog);
    if query == ModelsQuery::default() {
        return (200, listing.body.clone());
    }
    let mut matching: Vec<(usize, &Model)> = catalog
        .models
        .values()
        .enumerate()
        .filter(|(_, m)| query.filter.matches(m))
        .map(|(i, m)| (i, m.as_ref()))
        .collect();
    sort_models(&mut matching, query.order);
    let total = matching.len();
    let page = matching
        .iter()
        .skip(query.offset)
        .take(query.limit.unwrap_or(usize::MAX));
    let mut body = Vec::new();
    body.extend_from_slice(listing_head(total).as_bytes());
    for (n, (i, _)) in page.enumerate() {
        if n > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&listing.entries[*i]);
    }
    body.extend_from_slice(b"]}");
    (200, Bytes::from(body))
}

#[cfg(test)]
mod tests;
