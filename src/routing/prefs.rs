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

impl ProviderPrefs {
    /// Every field's name on the wire. A client's body may carry fields we do not know; the
    /// operator's own settings (a key's `provider:` in the config or through the admin API)
    /// may not: a typo there (`data_colection: deny`) would turn a privacy filter off
    /// without a word.
    pub const FIELDS: &'static [&'static str] = &[
        "order",
        "only",
        "ignore",
        "allow_fallbacks",
        "require_parameters",
        "data_collection",
        "zdr",
        "quantizations",
        "sort",
        "max_price",
        "preferred_max_latency",
        "preferred_min_throughput",
    ];

    /// The first name in the object `names` that is not a field, for the strict callers.
    pub fn unknown_field<'a>(mut names: impl Iterator<Item = &'a str>) -> Option<&'a str> {
        names.find(|name| !Self::FIELDS.contains(name))
    }
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

/// `sort` is either `"price"` or `{ "by": "price", "partition": "model" | "none" }`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum SortPref {
    By(#[serde(deserialize_with = "strategy")] Option<SortBy>),
    Config {
        #[serde(default, deserialize_with = "strategy")]
        by: Option<SortBy>,
        /// `"none"` sorts the endpoints of every model (the request's and its `models`
        /// fallbacks) together; `"model"`, the default, sorts each model's own.
        #[serde(default)]
        partition: Option<String>,
    },
}

/// A sort strategy by its OpenRouter name. `exacto` (OpenRouter's quality-first order for
/// tool calls) and a `by` of null are no sort here, not a refused request: the gateway has
/// no quality measure to order by. Any other name is refused, typos in a key's config too.
fn strategy<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<SortBy>, D::Error> {
    match Option::<String>::deserialize(d)?.as_deref() {
        None | Some("exacto") => Ok(None),
        Some("price") => Ok(Some(SortBy::Price)),
        Some("throughput") => Ok(Some(SortBy::Throughput)),
        Some("latency") => Ok(Some(SortBy::Latency)),
        Some(other) => Err(serde::de::Error::custom(format!(
            "unknown sort `{other}`, expected price, throughput, latency or exacto"
        ))),
    }
}

impl SortPref {
    /// The sort asked for; `None` for one the gateway orders as unsorted (`exacto`).
    pub fn by(&self) -> Option<SortBy> {
        match self {
            SortPref::By(by) | SortPref::Config { by, .. } => *by,
        }
    }

    /// Whether the sort runs across models (`partition: "none"`).
    pub fn across_models(&self) -> bool {
        matches!(self, SortPref::Config { partition: Some(p), .. } if p == "none")
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
        assert_eq!(p.sort.unwrap().by(), Some(SortBy::Throughput));
        let max = p.max_price.unwrap();
        assert_eq!((max.prompt, max.completion), (Some(1.5), Some(2.0)));
        assert_eq!(p.data_collection, Some(DataCollectionPref::Deny));
        let s: ProviderPrefs = serde_json::from_str(r#"{"sort":"price"}"#).unwrap();
        assert_eq!(s.sort.unwrap().by(), Some(SortBy::Price));
    }

    /// Every sort OpenRouter documents is taken; `exacto` and a null `by` are no sort.
    #[test]
    fn exacto_and_a_null_by_are_no_sort_and_unknown_sorts_are_refused() {
        for body in [
            r#"{"sort":"exacto"}"#,
            r#"{"sort":{"by":"exacto","partition":"none"}}"#,
            r#"{"sort":{"by":null}}"#,
        ] {
            let p: ProviderPrefs = serde_json::from_str(body).expect(body);
            assert_eq!(p.sort.unwrap().by(), None, "{body}");
        }
        let p: ProviderPrefs =
            serde_json::from_str(r#"{"sort":{"by":"latency","partition":"none"}}"#).unwrap();
        let sort = p.sort.unwrap();
        assert_eq!(
            (sort.by(), sort.across_models()),
            (Some(SortBy::Latency), true)
        );
        assert!(serde_json::from_str::<ProviderPrefs>(r#"{"sort":"prise"}"#).is_err());
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

    /// `FIELDS` names every field: an object setting each of them fills every one (a name
    /// missing from the list would leave its field empty; a new field breaks this pattern).
    #[test]
    fn fields_lists_every_field() {
        let values = [
            ("order", r#"["a"]"#),
            ("only", r#"["a"]"#),
            ("ignore", r#"["a"]"#),
            ("allow_fallbacks", "false"),
            ("require_parameters", "true"),
            ("data_collection", r#""deny""#),
            ("zdr", "true"),
            ("quantizations", r#"["fp8"]"#),
            ("sort", r#""price""#),
            ("max_price", r#"{"prompt": 1}"#),
            ("preferred_max_latency", "1"),
            ("preferred_min_throughput", "1"),
        ];
        assert_eq!(
            values.iter().map(|(name, _)| *name).collect::<Vec<_>>(),
            ProviderPrefs::FIELDS
        );
        let body = values
            .iter()
            .map(|(name, value)| format!("\"{name}\": {value}"))
            .collect::<Vec<_>>()
            .join(", ");
        let p: ProviderPrefs = serde_json::from_str(&format!("{{{body}}}")).unwrap();
        let ProviderPrefs {
            order,
            only,
            ignore,
            allow_fallbacks,
            require_parameters,
            data_collection,
            zdr,
            quantizations,
            sort,
            max_price,
            preferred_max_latency,
            preferred_min_throughput,
        } = p;
        assert!(order.is_some() && only.is_some() && ignore.is_some());
        assert!(allow_fallbacks.is_some() && require_parameters.is_some());
        assert!(data_collection.is_some() && zdr.is_some() && quantizations.is_some());
        assert!(sort.is_some() && max_price.is_some());
        assert!(preferred_max_latency.is_some() && preferred_min_throughput.is_some());
        assert_eq!(
            ProviderPrefs::unknown_field(["zdr", "data_colection"].into_iter()),
            Some("data_colection")
        );
    }
}
