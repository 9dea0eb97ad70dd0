//! Catalog YAML as `config` reads it: one flow-style line per endpoint, so a price change is a
//! one-line diff. Strings are written as JSON strings (valid YAML double-quoted scalars), so
//! no model id can be misread as a number, a boolean or a comment.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{Imported, ImportedEndpoint, ImportedModel};

/// The whole catalog in one file: model-level limits are the longest any endpoint offers, and
/// an endpoint repeats them only where it differs.
pub fn render(imported: &Imported, header: &str) -> String {
    let mut out = head(header);
    for (id, model) in &imported.models {
        let context = model.context_length();
        let max_output = model.max_output();
        write_model(&mut out, id, model, context, max_output, &model.endpoints);
    }
    out
}

/// One file per provider, `(provider, yaml)` sorted by provider. Model-level limits are left
/// to the endpoints (the config's merge takes the longest), unless an override set them.
pub fn render_split(imported: &Imported, header: &str) -> Vec<(String, String)> {
    let mut files: BTreeMap<&str, String> = BTreeMap::new();
    for (id, model) in &imported.models {
        for endpoint in &model.endpoints {
            let out = files
                .entry(endpoint.provider.as_str())
                .or_insert_with(|| head(header));
            write_model(
                out,
                id,
                model,
                model.context_length,
                model.max_output,
                std::slice::from_ref(endpoint),
            );
        }
    }
    files
        .into_iter()
        .map(|(p, yaml)| (p.to_string(), yaml))
        .collect()
}

fn head(header: &str) -> String {
    let mut out = String::with_capacity(64 * 1024);
    for line in header.lines() {
        let _ = writeln!(out, "# {line}");
    }
    out.push_str("models:\n");
    out
}

fn write_model(
    out: &mut String,
    id: &str,
    model: &ImportedModel,
    context: Option<u64>,
    max_output: Option<u64>,
    endpoints: &[ImportedEndpoint],
) {
    let _ = writeln!(out, "  {}:", quote(id));
    if let Some(name) = &model.name {
        let _ = writeln!(out, "    name: {}", quote(name));
    }
    if let Some(c) = context {
        let _ = writeln!(out, "    context_length: {c}");
    }
    if let Some(m) = max_output {
        let _ = writeln!(out, "    max_output: {m}");
    }
    for (field, list) in [
        ("input_modalities", &model.input_modalities),
        ("output_modalities", &model.output_modalities),
    ] {
        // `[text]` is the default; saying it on every model would only add noise.
        if !list.is_empty() && list.as_slice() != ["text"] {
            let _ = writeln!(out, "    {field}: {}", flow_list(list));
        }
    }
    if !model.categories.is_empty() {
        let _ = writeln!(out, "    categories: {}", flow_list(&model.categories));
    }
    out.push_str("    endpoints:\n");
    for e in endpoints {
        write_endpoint(out, e, context, max_output);
    }
}

fn write_endpoint(
    out: &mut String,
    e: &ImportedEndpoint,
    context: Option<u64>,
    max_output: Option<u64>,
) {
    let _ = write!(
        out,
        "      - {{ provider: {}, model: {}, price: {{ prompt: {}, completion: {}",
        quote(&e.provider),
        quote(&e.model),
        per_million(e.price.prompt),
        per_million(e.price.completion)
    );
    if let Some(c) = e.price.cached_prompt {
        let _ = write!(out, ", cached_prompt: {}", per_million(c));
    }
    if let Some(r) = e.price.reasoning {
        let _ = write!(out, ", reasoning: {}", per_million(r));
    }
    if let Some(w) = e.price.cache_write {
        let _ = write!(out, ", cache_write: {}", per_million(w));
    }
    out.push_str(" }");
    if let Some(c) = e.context_length.filter(|c| Some(*c) != context) {
        let _ = write!(out, ", context_length: {c}");
    }
    if let Some(m) = e.max_output.filter(|m| Some(*m) != max_output) {
        let _ = write!(out, ", max_output: {m}");
    }
    if let Some(q) = &e.quantization {
        let _ = write!(out, ", quantization: {}", quote(q));
    }
    if !e.supports.is_empty() {
        let _ = write!(out, ", supports: {}", flow_list(&e.supports));
    }
    out.push_str(" }\n");
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

fn flow_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| quote(i)).collect();
    format!("[{}]", quoted.join(", "))
}

/// Pico-USD per token → USD per 1M tokens, exactly (1 pico-USD per token = $0.000001 per 1M).
pub fn per_million(pico_per_token: u64) -> String {
    let whole = pico_per_token / 1_000_000;
    let frac = pico_per_token % 1_000_000;
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:06}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}
