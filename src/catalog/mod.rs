//! The catalog: models, the provider endpoints that serve them, and their prices. Built once
//! per config load by `config::lower` and then only read.

mod price;
mod provider;

pub use price::{Price, PICO_USD_PER_USD};
pub use provider::{
    Backend, DataCollection, Dialect, HealthCheck, Provider, Secret, Timeouts, UpstreamUrl,
};

use bytes::Bytes;
use indexmap::IndexMap;
use std::sync::{Arc, OnceLock};

/// One model as clients name it (`openai/gpt-4o-mini`), with every endpoint that serves it.
#[derive(Debug)]
pub struct Model {
    pub id: String,
    pub name: String,
    pub context_length: Option<u64>,
    pub max_output: Option<u64>,
    pub endpoints: Vec<Endpoint>,
}

/// A model as one provider serves it: the provider's own model id and its price there.
#[derive(Debug)]
pub struct Endpoint {
    pub provider: Arc<Provider>,
    pub upstream_model: String,
    pub price: Price,
    pub quantization: Option<String>,
    pub supports: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Catalog {
    pub providers: IndexMap<String, Arc<Provider>>,
    pub models: IndexMap<String, Arc<Model>>,
    /// The rendered `/v1/models` body, made on first use: a catalog never changes, so the
    /// listing costs one serialisation per config load, not one per request.
    pub models_listing: OnceLock<Bytes>,
}

impl Catalog {
    /// Looks a model up by its catalog id; variant suffixes (`:nitro`) are the router's job.
    pub fn model(&self, id: &str) -> Option<&Arc<Model>> {
        self.models.get(id)
    }
}
