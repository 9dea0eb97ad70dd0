//! `switchyard catalog import`: turns a public price map — litellm's
//! `model_prices_and_context_window.json` or OpenRouter's `GET /api/v1/models` — into catalog
//! YAML for `include:`. The same model from several providers becomes one model id (see
//! [`canonical`]) with one endpoint per provider; prices stay exact (pico-USD per token).

pub mod canonical;
pub mod cli;
mod litellm;
mod openrouter;
mod overrides;
mod render;

pub use overrides::apply_overrides;
pub use render::{render, render_split};

use std::collections::{BTreeMap, BTreeSet};

use super::Price;

/// Which price map a file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Source {
    Litellm,
    Openrouter,
}

/// Which models to import.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Chat models (text out): the chat catalog.
    #[default]
    Chat,
    /// Embedding models, for a separate catalog file.
    Embedding,
}

#[derive(Clone, Debug, Default)]
pub struct Options {
    pub mode: Mode,
    /// Keep only endpoints of these provider ids; `None` keeps every mapped provider.
    pub providers: Option<BTreeSet<String>>,
}

/// A catalog being built: model id → model, sorted so the output is stable.
#[derive(Debug, Default)]
pub struct Imported {
    pub models: BTreeMap<String, ImportedModel>,
    pub report: Report,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct ImportedModel {
    pub name: Option<String>,
    /// Set only by overrides; otherwise the endpoints' own limits speak.
    pub context_length: Option<u64>,
    pub max_output: Option<u64>,
    pub input_modalities: Vec<String>,
    pub output_modalities: Vec<String>,
    pub categories: Vec<String>,
    /// One per provider, sorted by provider id.
    pub endpoints: Vec<ImportedEndpoint>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ImportedEndpoint {
    pub provider: String,
    /// The provider's own model id.
    pub model: String,
    pub price: Price,
    pub context_length: Option<u64>,
    pub max_output: Option<u64>,
    pub quantization: Option<String>,
    pub supports: Vec<String>,
}

impl ImportedModel {
    /// The longest context any endpoint offers, unless an override set one.
    pub fn context_length(&self) -> Option<u64> {
        self.context_length
            .or_else(|| self.endpoints.iter().filter_map(|e| e.context_length).max())
    }

    pub fn max_output(&self) -> Option<u64> {
        self.max_output
            .or_else(|| self.endpoints.iter().filter_map(|e| e.max_output).max())
    }
}

/// What an import read, kept and skipped (printed by the CLI).
#[derive(Debug, Default)]
pub struct Report {
    pub entries: usize,
    pub endpoints: usize,
    /// Reason → how many entries it skipped.
    pub skipped: BTreeMap<String, usize>,
}

impl Report {
    pub fn skip(&mut self, reason: impl Into<String>) {
        *self.skipped.entry(reason.into()).or_default() += 1;
    }
}

impl Imported {
    /// Adds one provider's offer of a model. A second offer of the same model by the same
    /// provider keeps the preferred one (`prefer` decides; the first stays on a tie).
    fn add(
        &mut self,
        id: String,
        name: Option<String>,
        modalities: (Vec<String>, Vec<String>),
        endpoint: ImportedEndpoint,
        prefer: impl Fn(&ImportedEndpoint, &ImportedEndpoint) -> bool,
    ) {
        let model = self.models.entry(id).or_default();
        if model.name.is_none() {
            model.name = name;
        }
        // A model reads and writes what any of its endpoints does.
        for (have, new) in [
            (&mut model.input_modalities, modalities.0),
            (&mut model.output_modalities, modalities.1),
        ] {
            for m in new {
                if !have.contains(&m) {
                    have.push(m);
                }
            }
        }
        match model
            .endpoints
            .iter_mut()
            .find(|e| e.provider == endpoint.provider)
        {
            Some(existing) => {
                if prefer(&endpoint, existing) {
                    *existing = endpoint;
                }
            }
            None => {
                let at = model
                    .endpoints
                    .partition_point(|e| e.provider < endpoint.provider);
                model.endpoints.insert(at, endpoint);
                self.report.endpoints += 1;
            }
        }
    }

    /// Keeps the endpoints of `providers` only; drops models left without any.
    pub fn retain_providers(&mut self, providers: &BTreeSet<String>) {
        for model in self.models.values_mut() {
            model.endpoints.retain(|e| providers.contains(&e.provider));
        }
        self.models.retain(|_, m| !m.endpoints.is_empty());
        self.report.endpoints = self.models.values().map(|m| m.endpoints.len()).sum();
    }

    /// Modalities in OpenRouter's order, so output does not depend on which file came first.
    fn sort_modalities(&mut self) {
        use crate::catalog::{INPUT_MODALITIES, OUTPUT_MODALITIES};
        let rank = |known: &[&str], m: &String| known.iter().position(|k| k == m);
        for model in self.models.values_mut() {
            model
                .input_modalities
                .sort_by_key(|m| rank(INPUT_MODALITIES, m));
            model
                .output_modalities
                .sort_by_key(|m| rank(OUTPUT_MODALITIES, m));
        }
    }
}

/// Imports a price map's JSON text.
pub fn import(source: Source, json: &str, options: &Options) -> Result<Imported, String> {
    let mut imported = match source {
        Source::Litellm => litellm::import(json, options.mode)?,
        Source::Openrouter => openrouter::import(json, options.mode)?,
    };
    if let Some(providers) = &options.providers {
        imported.retain_providers(providers);
    }
    imported.sort_modalities();
    Ok(imported)
}

/// Pico-USD per token from a USD-per-token number, as price maps publish them.
pub(crate) fn pico_per_token(usd_per_token: f64) -> Option<u64> {
    let pico = (usd_per_token * super::PICO_USD_PER_USD as f64).round();
    (usd_per_token.is_finite() && usd_per_token >= 0.0 && pico <= u64::MAX as f64)
        .then_some(pico as u64)
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
