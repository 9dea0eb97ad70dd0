//! Hand-written overrides merged on top of an import, in the catalog's own YAML shape:
//!
//! ```yaml
//! models:
//!   meta-llama/llama-3.3-70b-instruct:
//!     name: "Llama 3.3 70B Instruct"
//!     categories: [programming]
//!     endpoints:
//!       - { provider: groq, price: { prompt: 0.59, completion: 0.79 } }  # patch one provider
//!       - { provider: cerebras, drop: true }                            # remove one provider
//!   openai/gpt-4o-2024-05-13: null                                       # remove the model
//!   acme/house-model:                                                    # add a model
//!     endpoints: [{ provider: vllm, model: house, price: { prompt: 0, completion: 0 } }]
//! ```
//!
//! Fields an override sets replace the imported ones; an endpoint override matches the
//! imported endpoint of the same provider (its `model` then renames the upstream id), or is
//! added when there is none (it must then name its `model`).

use indexmap::IndexMap;
use serde::Deserialize;

use super::{Imported, ImportedEndpoint, ImportedModel};
use crate::catalog::Price;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OverrideFile {
    #[serde(default)]
    models: IndexMap<String, Option<ModelOverride>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelOverride {
    name: Option<String>,
    context_length: Option<u64>,
    max_output: Option<u64>,
    input_modalities: Option<Vec<String>>,
    output_modalities: Option<Vec<String>>,
    categories: Option<Vec<String>>,
    #[serde(default)]
    endpoints: Vec<EndpointOverride>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointOverride {
    provider: String,
    model: Option<String>,
    price: Option<PriceOverride>,
    context_length: Option<u64>,
    max_output: Option<u64>,
    quantization: Option<String>,
    supports: Option<Vec<String>>,
    #[serde(default)]
    drop: bool,
}

/// USD per 1M tokens, as in config files.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceOverride {
    prompt: Option<f64>,
    completion: Option<f64>,
    cached_prompt: Option<f64>,
    reasoning: Option<f64>,
    cache_write: Option<f64>,
}

/// Merges the overrides in `yaml` (from `origin`, for messages) into `imported`.
pub fn apply_overrides(imported: &mut Imported, yaml: &str, origin: &str) -> Result<(), String> {
    let file: OverrideFile = serde_yaml::from_str(yaml).map_err(|e| match e.location() {
        Some(l) => format!("{origin}:{}:{}: {e}", l.line(), l.column()),
        None => format!("{origin}: {e}"),
    })?;
    for (id, patch) in file.models {
        let Some(patch) = patch else {
            imported.models.remove(&id);
            continue;
        };
        let model = imported.models.entry(id.clone()).or_default();
        patch_model(model, patch).map_err(|e| format!("{origin}: models.{id}: {e}"))?;
        if model.endpoints.is_empty() {
            imported.models.remove(&id);
        }
    }
    imported.report.endpoints = imported.models.values().map(|m| m.endpoints.len()).sum();
    Ok(())
}

fn patch_model(model: &mut ImportedModel, patch: ModelOverride) -> Result<(), String> {
    fn set<T>(slot: &mut T, value: Option<T>) {
        if let Some(v) = value {
            *slot = v;
        }
    }
    if patch.name.is_some() {
        model.name = patch.name;
    }
    model.context_length = patch.context_length.or(model.context_length);
    model.max_output = patch.max_output.or(model.max_output);
    set(&mut model.input_modalities, patch.input_modalities);
    set(&mut model.output_modalities, patch.output_modalities);
    set(&mut model.categories, patch.categories);
    for ep in patch.endpoints {
        let existing = model
            .endpoints
            .iter()
            .position(|e| e.provider == ep.provider);
        match (existing, ep.drop) {
            (Some(i), true) => {
                model.endpoints.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => patch_endpoint(&mut model.endpoints[i], ep)?,
            (None, false) => {
                let Some(upstream) = ep.model.clone() else {
                    return Err(format!(
                        "provider `{}` has no imported endpoint here, so its override needs `model`",
                        ep.provider
                    ));
                };
                let mut new = ImportedEndpoint {
                    provider: ep.provider.clone(),
                    model: upstream,
                    price: Price::default(),
                    context_length: None,
                    max_output: None,
                    quantization: None,
                    supports: Vec::new(),
                };
                patch_endpoint(&mut new, ep)?;
                let at = model
                    .endpoints
                    .partition_point(|e| e.provider < new.provider);
                model.endpoints.insert(at, new);
            }
        }
    }
    Ok(())
}

fn patch_endpoint(endpoint: &mut ImportedEndpoint, patch: EndpointOverride) -> Result<(), String> {
    if let Some(model) = patch.model {
        endpoint.model = model;
    }
    if let Some(p) = patch.price {
        let convert = |field: &str, v: f64| {
            Price::per_token_from_usd_per_million(v).ok_or_else(|| {
                format!("price.{field} `{v}` must be a non-negative number (USD per 1M tokens)")
            })
        };
        if let Some(v) = p.prompt {
            endpoint.price.prompt = convert("prompt", v)?;
        }
        if let Some(v) = p.completion {
            endpoint.price.completion = convert("completion", v)?;
        }
        if let Some(v) = p.cached_prompt {
            endpoint.price.cached_prompt = Some(convert("cached_prompt", v)?);
        }
        if let Some(v) = p.reasoning {
            endpoint.price.reasoning = Some(convert("reasoning", v)?);
        }
        if let Some(v) = p.cache_write {
            endpoint.price.cache_write = Some(convert("cache_write", v)?);
        }
    }
    endpoint.context_length = patch.context_length.or(endpoint.context_length);
    endpoint.max_output = patch.max_output.or(endpoint.max_output);
    if patch.quantization.is_some() {
        endpoint.quantization = patch.quantization;
    }
    if let Some(s) = patch.supports {
        endpoint.supports = s;
    }
    Ok(())
}
