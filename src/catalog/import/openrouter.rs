//! OpenRouter's `GET /api/v1/models` (`ModelsListResponse`): `data[]` with `id`, `name`,
//! `context_length`, `pricing` (USD per token as strings), `architecture` modalities,
//! `top_provider.max_completion_tokens` and `supported_parameters`. Every model becomes one
//! endpoint on the `openrouter` provider; OpenRouter's ids are already `<author>/<slug>`.

use serde::Deserialize;

use super::{pico_per_token, Imported, ImportedEndpoint, Mode};
use crate::catalog::{is_request_parameter, Price, INPUT_MODALITIES, OUTPUT_MODALITIES};

#[derive(Deserialize)]
struct Listing {
    data: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    id: String,
    name: Option<String>,
    context_length: Option<f64>,
    #[serde(default)]
    pricing: Pricing,
    #[serde(default)]
    architecture: Architecture,
    top_provider: Option<TopProvider>,
    #[serde(default)]
    supported_parameters: Vec<String>,
}

#[derive(Default, Deserialize)]
struct Pricing {
    prompt: Option<String>,
    completion: Option<String>,
    input_cache_read: Option<String>,
    input_cache_write: Option<String>,
    internal_reasoning: Option<String>,
}

#[derive(Default, Deserialize)]
struct Architecture {
    #[serde(default)]
    input_modalities: Vec<String>,
    #[serde(default)]
    output_modalities: Vec<String>,
}

#[derive(Deserialize)]
struct TopProvider {
    max_completion_tokens: Option<f64>,
}

pub fn import(json: &str, mode: Mode) -> Result<Imported, String> {
    let listing: Listing =
        serde_json::from_str(json).map_err(|e| format!("not an OpenRouter models listing: {e}"))?;
    let wanted = match mode {
        Mode::Chat => "text",
        Mode::Embedding => "embeddings",
    };
    let mut out = Imported::default();
    for entry in listing.data {
        out.report.entries += 1;
        let outputs = known(entry.architecture.output_modalities, OUTPUT_MODALITIES);
        // OpenRouter lists text models without modalities in older snapshots.
        let writes_wanted =
            outputs.iter().any(|m| m == wanted) || (outputs.is_empty() && mode == Mode::Chat);
        if !writes_wanted {
            out.report.skip(format!("does not output {wanted}"));
            continue;
        }
        // Routers (`openrouter/auto`) publish `-1`: no fixed price, nothing to meter.
        let Some(price) = price(&entry.pricing) else {
            out.report.skip("no fixed price");
            continue;
        };
        if entry.id.is_empty()
            || entry
                .id
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            out.report.skip("unusable id");
            continue;
        }
        let mut inputs = known(entry.architecture.input_modalities, INPUT_MODALITIES);
        if inputs.is_empty() {
            inputs.push("text".into());
        }
        let outputs = if outputs.is_empty() {
            vec![wanted.to_string()]
        } else {
            outputs
        };
        let mut supports: Vec<String> = entry
            .supported_parameters
            .into_iter()
            .filter(|p| is_request_parameter(p))
            .collect();
        if mode == Mode::Chat {
            supports.push("stream".into());
        }
        let endpoint = ImportedEndpoint {
            provider: "openrouter".into(),
            model: entry.id.clone(),
            price,
            context_length: entry.context_length.and_then(tokens),
            max_output: entry
                .top_provider
                .and_then(|t| t.max_completion_tokens)
                .and_then(tokens),
            quantization: None,
            supports,
        };
        out.add(entry.id, entry.name, (inputs, outputs), endpoint, |_, _| {
            false
        });
    }
    Ok(out)
}

fn known(modalities: Vec<String>, known: &[&str]) -> Vec<String> {
    modalities
        .into_iter()
        .filter(|m| known.contains(&m.as_str()))
        .collect()
}

fn tokens(n: f64) -> Option<u64> {
    (1.0..1e12).contains(&n).then_some(n as u64)
}

fn per_token(text: &Option<String>) -> Option<u64> {
    text.as_deref()?
        .trim()
        .parse::<f64>()
        .ok()
        .and_then(pico_per_token)
}

fn price(p: &Pricing) -> Option<Price> {
    let prompt = per_token(&p.prompt)?;
    Some(Price {
        prompt,
        completion: per_token(&p.completion)?,
        cached_prompt: per_token(&p.input_cache_read),
        reasoning: per_token(&p.internal_reasoning),
        // "0" beside a prompt price: writes not charged apart, so at the prompt price.
        cache_write: per_token(&p.input_cache_write).filter(|&w| w > 0 || prompt == 0),
    })
}
