//! OpenRouter's `provider` object (routing preferences), as sent by clients in a request body
//! or set per key in the config. The wire shapes are OpenRouter's
//! (`reference/openrouter-openapi.yaml`, `ProviderPreferences`); fields we do not know are
//! ignored rather than refused, so newer clients keep working.

use serde::Deserialize;

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct ProviderPrefs {
    pub order: Option<Vec<String>>,
    pub only: Option<Vec<String>>,
    pub ignore: Option<Vec<String>>,
    pub allow_fallbacks: Option<bool>,
    pub require_parameters: Option<bool>,
    pub data_collection: Option<DataCollectionPref>,
    pub zdr: Option<bool>,
    pub quantizations: Option<Vec<String>>,
    pub sort: Option<SortPref>,
    pub max_price: Option<MaxPrice>,
    pub preferred_max_latency: Option<serde_json::Value>,
    pub preferred_min_throughput: Option<serde_json::Value>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DataCollectionPref {
    Allow,
    Deny,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SortBy {
    Price,
    Throughput,
    Latency,
}

/// `sort` is either `"price"` or `{ "by": "price", "partition": ... }`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum SortPref {
    By(SortBy),
    Config { by: SortBy },
}

impl SortPref {
    pub fn by(&self) -> SortBy {
        match self {
            SortPref::By(by) | SortPref::Config { by } => *by,
        }
    }
}

/// Highest acceptable price, USD per million tokens; OpenRouter sends numbers or strings.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct MaxPrice {
    #[serde(deserialize_with = "number_or_string")]
    pub prompt: Option<f64>,
    #[serde(deserialize_with = "number_or_string")]
    pub completion: Option<f64>,
}

fn number_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumOrStr {
        Num(f64),
        Str(String),
    }
    match Option::<NumOrStr>::deserialize(d)? {
        None => Ok(None),
        Some(NumOrStr::Num(n)) => Ok(Some(n)),
        Some(NumOrStr::Str(s)) => s
            .trim()
            .parse::<f64>()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("`{s}` is not a number"))),
    }
}

impl ProviderPrefs {
    /// Request preferences override the key's defaults field by field.
    pub fn overlay(&self, defaults: &ProviderPrefs) -> ProviderPrefs {
        macro_rules! pick {
            ($f:ident) => {
                self.$f.clone().or_else(|| defaults.$f.clone())
            };
        }
        ProviderPrefs {
            order: pick!(order),
            only: pick!(only),
            ignore: pick!(ignore),
            allow_fallbacks: pick!(allow_fallbacks),
            require_parameters: pick!(require_parameters),
            data_collection: pick!(data_collection),
            zdr: pick!(zdr),
            quantizations: pick!(quantizations),
            sort: pick!(sort),
            max_price: pick!(max_price),
            preferred_max_latency: pick!(preferred_max_latency),
            preferred_min_throughput: pick!(preferred_min_throughput),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_openrouter_shapes() {
        let p: ProviderPrefs = serde_json::from_str(
            r#"{"order":["a","b"],"sort":{"by":"throughput"},"max_price":{"prompt":"1.5","completion":2},
                "data_collection":"deny","future_field":1}"#,
        )
        .unwrap();
        assert_eq!(
            p.order.as_deref(),
            Some(&["a".to_string(), "b".to_string()][..])
        );
        assert_eq!(p.sort.unwrap().by(), SortBy::Throughput);
        let max = p.max_price.unwrap();
        assert_eq!((max.prompt, max.completion), (Some(1.5), Some(2.0)));
        assert_eq!(p.data_collection, Some(DataCollectionPref::Deny));
        let s: ProviderPrefs = serde_json::from_str(r#"{"sort":"price"}"#).unwrap();
        assert_eq!(s.sort.unwrap().by(), SortBy::Price);
    }

    #[test]
    fn request_overrides_key_defaults() {
        let key = ProviderPrefs {
            data_collection: Some(DataCollectionPref::Deny),
            zdr: Some(true),
            ..Default::default()
        };
        let req = ProviderPrefs {
            zdr: Some(false),
            ..Default::default()
        };
        let merged = req.overlay(&key);
        assert_eq!(merged.zdr, Some(false));
        assert_eq!(merged.data_collection, Some(DataCollectionPref::Deny));
    }
}
