//! Which models of a catalog match a client's criteria, and in what order: the semantics
//! behind `/v1/models`' OpenRouter query filters, apart from their query-string spelling
//! (that is `api::models`' job).

use super::{Model, Price};

/// Criteria a model must all meet; the default matches every model.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModelFilter {
    /// Every one of these parameters is taken by some endpoint.
    pub supported_parameters: Vec<String>,
    /// The model reads every one of these.
    pub input_modalities: Vec<String>,
    /// The model writes at least one of these; `None` means any output.
    pub output_modalities: Option<Vec<String>>,
    pub category: Option<String>,
    /// Case-insensitive substring of the id or the name (already lowercased).
    pub text: Option<String>,
    pub min_context: Option<u64>,
    /// Bounds on the listed price, pico-USD per token.
    pub min_prompt_price: Option<u64>,
    pub max_prompt_price: Option<u64>,
    pub min_completion_price: Option<u64>,
    pub max_completion_price: Option<u64>,
    /// The author is one of these (case-insensitive); empty means any.
    pub authors: Vec<String>,
    /// Some endpoint's provider is one of these (case-insensitive); empty means any.
    pub providers: Vec<String>,
    /// Some endpoint's provider keeps no data.
    pub zdr_only: bool,
}

/// The order of a listing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ModelOrder {
    /// As configured.
    #[default]
    Catalog,
    PriceLowToHigh,
    PriceHighToLow,
    ContextHighToLow,
}

/// The price a model is listed at: its cheapest endpoint's.
pub fn listed_price(model: &Model) -> Price {
    model
        .endpoints
        .iter()
        .map(|e| e.price)
        .min_by_key(Price::blended)
        .unwrap_or_default()
}

fn within(value: u64, min: Option<u64>, max: Option<u64>) -> bool {
    min.is_none_or(|m| value >= m) && max.is_none_or(|m| value <= m)
}

/// ASCII-case-insensitive substring test without allocating; `needle` is lowercase.
fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    n.is_empty()
        || h.windows(n.len())
            .any(|w| w.iter().zip(n).all(|(a, b)| a.to_ascii_lowercase() == *b))
}

fn any_eq(list: &[String], value: &str) -> bool {
    list.iter().any(|x| x.eq_ignore_ascii_case(value))
}

impl ModelFilter {
    pub fn matches(&self, model: &Model) -> bool {
        model.supports_all(&self.supported_parameters)
            && self
                .input_modalities
                .iter()
                .all(|m| model.input_modalities.contains(m))
            && self
                .output_modalities
                .as_ref()
                .is_none_or(|wanted| wanted.iter().any(|m| model.output_modalities.contains(m)))
            && self
                .category
                .as_ref()
                .is_none_or(|c| any_eq(&model.categories, c))
            && self.text.as_ref().is_none_or(|t| {
                contains_ignore_case(&model.id, t) || contains_ignore_case(&model.name, t)
            })
            && self
                .min_context
                .is_none_or(|min| model.context_length.is_some_and(|c| c >= min))
            && self.price_matches(model)
            && (self.authors.is_empty() || any_eq(&self.authors, model.author()))
            && (self.providers.is_empty()
                || model
                    .endpoints
                    .iter()
                    .any(|e| any_eq(&self.providers, &e.provider.id)))
            && (!self.zdr_only || model.endpoints.iter().any(|e| e.provider.zdr))
    }
}

impl ModelFilter {
    fn price_matches(&self, model: &Model) -> bool {
        let bounds = [
            self.min_prompt_price,
            self.max_prompt_price,
            self.min_completion_price,
            self.max_completion_price,
        ];
        if bounds.iter().all(Option::is_none) {
            return true;
        }
        let price = listed_price(model);
        within(price.prompt, self.min_prompt_price, self.max_prompt_price)
            && within(
                price.completion,
                self.min_completion_price,
                self.max_completion_price,
            )
    }
}

/// Sorts `models` (indices into the catalog, in catalog order) stably by `order`.
pub fn sort_models(models: &mut [(usize, &Model)], order: ModelOrder) {
    match order {
        ModelOrder::Catalog => {}
        // A listed price walks the endpoints: compute it once per model, not per comparison.
        ModelOrder::PriceLowToHigh => models.sort_by_cached_key(|(_, m)| listed_price(m).blended()),
        ModelOrder::PriceHighToLow => {
            models.sort_by_cached_key(|(_, m)| std::cmp::Reverse(listed_price(m).blended()))
        }
        // Unknown context sorts last.
        ModelOrder::ContextHighToLow => {
            models.sort_by_key(|(_, m)| std::cmp::Reverse(m.context_length.unwrap_or(0)))
        }
    }
}
