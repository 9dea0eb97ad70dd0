//! The query string of `GET /v1/models`: OpenRouter's parameter names and value formats,
//! parsed into the catalog's [`ModelFilter`] and [`ModelOrder`].

use super::super::ApiError;
use crate::catalog::{ModelFilter, ModelOrder, Price, INPUT_MODALITIES, OUTPUT_MODALITIES};

/// A `/v1/models` query: OpenRouter's filter, sort and paging parameters. Parameters this
/// gateway has no data for (benchmarks, age, popularity) are accepted and ignored, as are
/// unknown ones; a malformed value is a 400.
#[derive(Debug, Default, PartialEq)]
pub struct ModelsQuery {
    pub filter: ModelFilter,
    pub order: ModelOrder,
    pub offset: usize,
    pub limit: Option<usize>,
}

impl ModelsQuery {
    pub fn parse(query: &str) -> Result<ModelsQuery, ApiError> {
        let mut q = ModelsQuery::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, raw) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(raw)
                .ok_or_else(|| ApiError::bad_param(name, format!("`{name}` is not valid UTF-8")))?;
            q.set(name, value.trim())?;
        }
        Ok(q)
    }

    fn set(&mut self, name: &str, value: &str) -> Result<(), ApiError> {
        let f = &mut self.filter;
        match name {
            "supported_parameters" => f.supported_parameters = list(value),
            "input_modalities" => f.input_modalities = known_list(name, value, INPUT_MODALITIES)?,
            "output_modalities" if value.eq_ignore_ascii_case("all") => f.output_modalities = None,
            "output_modalities" => {
                f.output_modalities = Some(known_list(name, value, OUTPUT_MODALITIES)?)
            }
            "category" => f.category = non_empty(value),
            "q" => f.text = non_empty(&value.to_ascii_lowercase()),
            "context" => f.min_context = Some(number(name, value)?),
            "min_price" => f.min_prompt_price = Some(price(name, value)?),
            "max_price" => f.max_prompt_price = Some(price(name, value)?),
            "min_output_price" => f.min_completion_price = Some(price(name, value)?),
            "max_output_price" => f.max_completion_price = Some(price(name, value)?),
            "model_authors" => f.authors = list(value),
            "providers" => f.providers = list(value),
            "zdr" => f.zdr_only = value == "true",
            "offset" => self.offset = number(name, value)?,
            "limit" => match number(name, value)? {
                n @ 1..=1000 => self.limit = Some(n),
                _ => return Err(ApiError::bad_param(name, "`limit` must be 1 to 1000")),
            },
            "sort" => self.order = order(value)?,
            _ => {}
        }
        Ok(())
    }
}

fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn known_list(name: &str, value: &str, known: &[&str]) -> Result<Vec<String>, ApiError> {
    let items = list(value);
    match items.iter().find(|i| !known.contains(&i.as_str())) {
        Some(bad) => Err(ApiError::bad_param(
            name,
            format!("`{bad}` is not one of {}", known.join(", ")),
        )),
        None => Ok(items),
    }
}

fn non_empty(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_string())
}

fn number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, ApiError> {
    value
        .parse()
        .map_err(|_| ApiError::bad_param(name, format!("`{name}` must be a whole number")))
}

/// USD per million tokens → pico-USD per token.
fn price(name: &str, value: &str) -> Result<u64, ApiError> {
    value
        .parse::<f64>()
        .ok()
        .and_then(Price::per_token_from_usd_per_million)
        .ok_or_else(|| {
            ApiError::bad_param(name, format!("`{name}` must be USD per 1M tokens, >= 0"))
        })
}

fn order(value: &str) -> Result<ModelOrder, ApiError> {
    Ok(match value {
        "pricing-low-to-high" => ModelOrder::PriceLowToHigh,
        "pricing-high-to-low" => ModelOrder::PriceHighToLow,
        "context-high-to-low" => ModelOrder::ContextHighToLow,
        // Orders by data this gateway does not keep per model: the configured order stands.
        "most-popular"
        | "newest"
        | "top-weekly"
        | "throughput-high-to-low"
        | "latency-low-to-high"
        | "intelligence-high-to-low"
        | "coding-high-to-low"
        | "agentic-high-to-low"
        | "design-arena-elo-high-to-low" => ModelOrder::Catalog,
        other => {
            return Err(ApiError::bad_param(
                "sort",
                format!("unknown sort `{other}`"),
            ))
        }
    })
}

/// Decodes `%XX` escapes and `+` (a space in query strings); `None` on invalid UTF-8.
pub(super) fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}
