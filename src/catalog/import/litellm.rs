//! litellm's price map: `{ "<litellm model key>": { litellm_provider, mode,
//! input_cost_per_token, output_cost_per_token, max_input_tokens, supports_*, ... } }`.

use serde_json::{Map, Value};

use super::canonical::{canonical_id, BEDROCK_REGIONS};
use super::{pico_per_token, Imported, ImportedEndpoint, Mode};
use crate::catalog::Price;

/// litellm provider → our provider id (a preset name). Providers not listed are skipped.
const PROVIDERS: &[(&str, &str)] = &[
    ("openai", "openai"),
    ("anthropic", "anthropic"),
    ("gemini", "gemini"),
    // Vertex through its OpenAI-compatible endpoint: Gemini and the MaaS partner models.
    ("vertex_ai", "vertex"),
    ("vertex_ai-language-models", "vertex"),
    ("vertex_ai-llama_models", "vertex"),
    ("vertex_ai-deepseek_models", "vertex"),
    ("vertex_ai-qwen_models", "vertex"),
    ("vertex_ai-zai_models", "vertex"),
    ("vertex_ai-openai_models", "vertex"),
    ("vertex_ai-minimax_models", "vertex"),
    ("vertex_ai-moonshot_models", "vertex"),
    ("bedrock", "bedrock"),
    ("bedrock_converse", "bedrock"),
    ("azure", "azure"),
    ("mistral", "mistral"),
    ("codestral", "mistral"),
    ("groq", "groq"),
    ("deepseek", "deepseek"),
    ("together_ai", "together"),
    ("fireworks_ai", "fireworks"),
    ("deepinfra", "deepinfra"),
    ("xai", "xai"),
    ("perplexity", "perplexity"),
    ("openrouter", "openrouter"),
    ("ollama", "ollama"),
    ("hosted_vllm", "vllm"),
    ("cerebras", "cerebras"),
    ("sambanova", "sambanova"),
    ("nebius", "nebius"),
    ("novita", "novita"),
    ("hyperbolic", "hyperbolic"),
    ("moonshot", "moonshot"),
    ("zai", "zai"),
];

/// Prefixes litellm puts before a provider's own model id (`groq/llama-…`).
const KEY_PREFIXES: &[&str] = &[
    "openai",
    "gemini",
    "vertex_ai",
    "bedrock",
    "azure",
    "mistral",
    "codestral",
    "groq",
    "deepseek",
    "together_ai",
    "fireworks_ai",
    "deepinfra",
    "xai",
    "perplexity",
    "openrouter",
    "ollama",
    "hosted_vllm",
    "cerebras",
    "sambanova",
    "nebius",
    "novita",
    "hyperbolic",
    "moonshot",
    "zai",
];

/// Providers whose own model ids never contain `/`: a `/` after the prefix is a regional or
/// commitment price variant (`bedrock/us-east-1/…`, `azure/eu/…`), not a model.
const FLAT_IDS: &[&str] = &[
    "openai",
    "anthropic",
    "bedrock",
    "azure",
    "mistral",
    "xai",
    "deepseek",
];

pub fn import(json: &str, mode: Mode) -> Result<Imported, String> {
    let map: Map<String, Value> =
        serde_json::from_str(json).map_err(|e| format!("not a litellm price map: {e}"))?;
    let wanted_mode = match mode {
        Mode::Chat => "chat",
        Mode::Embedding => "embedding",
    };
    let mut out = Imported::default();
    for (key, entry) in &map {
        out.report.entries += 1;
        let Some(entry) = entry.as_object() else {
            out.report.skip("not an object");
            continue;
        };
        if entry.get("mode").and_then(Value::as_str) != Some(wanted_mode) {
            out.report.skip(format!("mode is not {wanted_mode}"));
            continue;
        }
        let litellm_provider = entry
            .get("litellm_provider")
            .and_then(Value::as_str)
            .unwrap_or("");
        let Some(&(_, provider)) = PROVIDERS.iter().find(|(l, _)| *l == litellm_provider) else {
            out.report
                .skip(format!("provider {litellm_provider} has no preset"));
            continue;
        };
        let Some(upstream) = upstream_model(key, provider) else {
            out.report
                .skip("fine-tune, pricing tier or regional variant");
            continue;
        };
        let Some(price) = price(entry) else {
            out.report.skip("no price");
            continue;
        };
        let canonical = canonical_id(provider, &upstream);
        let endpoint = ImportedEndpoint {
            provider: provider.to_string(),
            price,
            context_length: count(entry, "max_input_tokens").or_else(|| count(entry, "max_tokens")),
            max_output: count(entry, "max_output_tokens"),
            quantization: canonical.quantization,
            supports: supports(entry, mode),
            model: upstream,
        };
        out.add(
            canonical.id,
            None,
            modalities(entry, mode),
            endpoint,
            preferred,
        );
    }
    Ok(out)
}

/// The provider's own model id inside a litellm key, or `None` for keys that are not a
/// callable model of that provider.
fn upstream_model(key: &str, provider: &str) -> Option<String> {
    if key.starts_with("ft:") || key.starts_with("together-ai-") {
        return None;
    }
    let id = match key.split_once('/') {
        Some((prefix, rest)) if KEY_PREFIXES.contains(&prefix) => rest,
        _ => key,
    };
    if id.is_empty() || (FLAT_IDS.contains(&provider) && id.contains('/')) {
        return None;
    }
    if provider == "vertex" && !id.contains('/') {
        // Vertex's OpenAI-compatible endpoint names Google's models `google/<model>`.
        return Some(format!("google/{id}"));
    }
    Some(id.to_string())
}

/// Of two listings of one model by one provider, prefer the plain id over Bedrock's
/// cross-region profiles (`us.`, `global.`), then the shorter, then the smaller id.
fn preferred(new: &ImportedEndpoint, old: &ImportedEndpoint) -> bool {
    let rank = |e: &ImportedEndpoint| {
        let profile = e
            .model
            .split_once('.')
            .is_some_and(|(p, _)| BEDROCK_REGIONS.contains(&p));
        (profile, e.model.len(), e.model.clone())
    };
    rank(new) < rank(old)
}

fn number(entry: &Map<String, Value>, field: &str) -> Option<f64> {
    entry.get(field).and_then(Value::as_f64)
}

fn count(entry: &Map<String, Value>, field: &str) -> Option<u64> {
    entry
        .get(field)
        .and_then(Value::as_f64)
        .filter(|n| (1.0..1e12).contains(n))
        .map(|n| n as u64)
}

fn price(entry: &Map<String, Value>) -> Option<Price> {
    let prompt = pico_per_token(number(entry, "input_cost_per_token")?)?;
    // Embedding models bill input only.
    let completion = match number(entry, "output_cost_per_token") {
        Some(v) => pico_per_token(v)?,
        None if entry.get("mode").and_then(Value::as_str) == Some("embedding") => 0,
        None => return None,
    };
    let cached_prompt = number(entry, "cache_read_input_token_cost")
        .or_else(|| number(entry, "input_cost_per_token_cache_hit"))
        .and_then(pico_per_token);
    let reasoning = number(entry, "output_cost_per_reasoning_token").and_then(pico_per_token);
    // A write price of 0 beside a prompt price is "not charged apart" (DeepSeek, Z.ai): the
    // tokens cost the prompt price, which an absent price says.
    let cache_write = number(entry, "cache_creation_input_token_cost")
        .and_then(pico_per_token)
        .filter(|&w| w > 0 || prompt == 0);
    Some(Price {
        prompt,
        completion,
        cached_prompt,
        reasoning,
        cache_write,
    })
}

fn flag(entry: &Map<String, Value>, field: &str) -> bool {
    entry.get(field).and_then(Value::as_bool) == Some(true)
}

fn supports(entry: &Map<String, Value>, mode: Mode) -> Vec<String> {
    if mode == Mode::Embedding {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (field, flag_name) in [
        ("supports_function_calling", "tools"),
        ("supports_parallel_function_calling", "parallel_tool_calls"),
        ("supports_response_schema", "response_format"),
        ("supports_reasoning", "reasoning"),
        ("supports_web_search", "web_search_options"),
    ] {
        if flag(entry, field) {
            out.push(flag_name.to_string());
        }
    }
    // Every chat API the presets name streams.
    out.push("stream".to_string());
    out
}

fn modalities(entry: &Map<String, Value>, mode: Mode) -> (Vec<String>, Vec<String>) {
    let mut input = vec!["text".to_string()];
    for (field, modality) in [
        ("supports_vision", "image"),
        ("supports_pdf_input", "file"),
        ("supports_audio_input", "audio"),
        ("supports_video_input", "video"),
    ] {
        if flag(entry, field) {
            input.push(modality.to_string());
        }
    }
    let mut output = match mode {
        Mode::Chat => vec!["text".to_string()],
        Mode::Embedding => vec!["embeddings".to_string()],
    };
    if mode == Mode::Chat {
        if flag(entry, "supports_audio_output") {
            output.push("audio".into());
        }
        let listed = entry
            .get("supported_output_modalities")
            .and_then(Value::as_array);
        if listed.is_some_and(|l| l.iter().any(|m| m.as_str() == Some("image"))) {
            output.push("image".into());
        }
    }
    (input, output)
}
