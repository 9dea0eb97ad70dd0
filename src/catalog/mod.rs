//! The catalog: models, the provider endpoints that serve them, and their prices. Built once
//! per config load by `config::lower` and then only read.

mod filter;
pub mod import;
mod price;
mod provider;
mod supports;

pub use filter::{listed_price, sort_models, ModelFilter, ModelOrder};
pub use price::{Price, PICO_USD_PER_USD};
pub use provider::{
    AwsCredentials, Backend, DataCollection, Dialect, HealthCheck, Provider, Secret, Timeouts,
    UpstreamUrl,
};
pub use supports::{
    expand_supports, is_request_parameter, BASE_PARAMETERS, INPUT_MODALITIES, OUTPUT_MODALITIES,
};

use bytes::Bytes;
use indexmap::IndexMap;
use std::sync::{Arc, OnceLock};

/// One model as clients name it (`openai/gpt-4o-mini`), with every endpoint that serves it.
#[derive(Debug)]
pub struct Model {
    pub id: String,
    pub name: String,
    /// The longest context any endpoint offers (what `/v1/models` lists).
    pub context_length: Option<u64>,
    pub max_output: Option<u64>,
    /// What the model reads and writes (OpenRouter's `architecture`): `text`, `image`, ...
    pub input_modalities: Vec<String>,
    pub output_modalities: Vec<String>,
    /// Use-case categories (`programming`, ...) for `/v1/models?category=`; empty if unknown.
    pub categories: Vec<String>,
    pub endpoints: Vec<Endpoint>,
}

impl Model {
    /// True when some endpoint of the model takes every one of `parameters`.
    pub fn supports_all<S: AsRef<str>>(&self, parameters: &[S]) -> bool {
        parameters
            .iter()
            .all(|p| self.endpoints.iter().any(|e| e.supports(p.as_ref())))
    }

    /// The author part of the id (`openai` of `openai/gpt-4o`).
    pub fn author(&self) -> &str {
        self.id.split_once('/').map_or("", |(author, _)| author)
    }
}

/// A model as one provider serves it: the provider's own model id and its price there.
pub struct Endpoint {
    pub provider: Arc<Provider>,
    pub upstream_model: String,
    pub price: Price,
    pub quantization: Option<String>,
    /// Capability flags and request parameters this endpoint takes, expanded at load time so
    /// that a flag implies the parameters it stands for (`tools` → `tool_choice`); see
    /// [`expand_supports`].
    pub supports: Vec<String>,
    /// This provider's own limits when they differ from the model's (providers serve the same
    /// open model with different context windows).
    pub context_length: Option<u64>,
    pub max_output: Option<u64>,
    /// Its metric handles, resolved on first use (not part of what a reload compares).
    pub metrics: crate::metrics::EndpointMetrics,
}

impl Endpoint {
    pub fn supports(&self, parameter: &str) -> bool {
        BASE_PARAMETERS.contains(&parameter) || self.supports.iter().any(|s| s == parameter)
    }
}

/// Names the provider by id only: a reload compares models by their `Debug` text, and
/// printing the whole provider into each of thousands of endpoints made that comparison cost
/// more than the load itself (provider changes are reported on their own).
impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("provider", &self.provider.id)
            .field("upstream_model", &self.upstream_model)
            .field("price", &self.price)
            .field("quantization", &self.quantization)
            .field("supports", &self.supports)
            .field("context_length", &self.context_length)
            .field("max_output", &self.max_output)
            .finish()
    }
}

/// `/v1/models` rendered once per catalog: the whole body, and each model's JSON object as a
/// slice of that same buffer, in catalog order, so a filtered listing joins slices instead of
/// serialising models again.
#[derive(Debug)]
pub struct ModelsListing {
    pub body: Bytes,
    pub entries: Vec<Bytes>,
}

#[derive(Debug, Default)]
pub struct Catalog {
    pub providers: IndexMap<String, Arc<Provider>>,
    pub models: IndexMap<String, Arc<Model>>,
    /// Made on first use by `api::models`: a catalog never changes, so the listing costs one
    /// serialisation per config load, not one per request.
    pub models_listing: OnceLock<ModelsListing>,
}

impl Catalog {
    pub fn new(
        providers: IndexMap<String, Arc<Provider>>,
        models: IndexMap<String, Arc<Model>>,
    ) -> Catalog {
        Catalog {
            providers,
            models,
            models_listing: OnceLock::new(),
        }
    }

    /// Looks a model up by its catalog id; variant suffixes (`:nitro`) are the router's job.
    pub fn model(&self, id: &str) -> Option<&Arc<Model>> {
        self.models.get(id)
    }
}
