//! Lowering of `models:` entries from the main file and every included catalog.
//!
//! Merge rule: a model id may appear in several files; its endpoint lists are concatenated in
//! load order (main file first, then includes in glob and name order). For `name`,
//! `context_length`, `max_output`, modalities and categories the first file that sets a value
//! wins, so the main file overrides a shipped catalog. An endpoint that repeats an earlier
//! one's provider and upstream model is dropped: again the first wins (silently when the
//! first is the operator's main file; with a warning between two included files).
//!
//! Included catalogs are written for many providers; an endpoint naming a provider this
//! config does not define is skipped (one summary warning), and a model left without
//! endpoints is dropped. In the main file an unknown provider stays an error.

use indexmap::IndexMap;
use std::collections::HashMap;
use std::sync::Arc;

use super::locate::PathSeg;
use super::lower::{child, key, valid_model_id, Lowering};
use super::schema::{ModelEntries, RawModel, RawPrice};
use crate::catalog::*;

/// One file's definition of a model.
struct Part {
    source: usize,
    raw: RawModel,
}

/// Endpoints of included catalogs whose provider is not configured, counted per provider.
type Skipped = IndexMap<String, usize>;

impl Lowering<'_> {
    pub(super) fn models(
        &mut self,
        sources: Vec<(usize, ModelEntries)>,
        providers: &IndexMap<String, Arc<Provider>>,
    ) -> IndexMap<String, Arc<Model>> {
        let mut parts: IndexMap<String, Vec<Part>> = IndexMap::new();
        for (source, entries) in sources {
            self.current = source;
            let typed: Vec<(String, Option<RawModel>)> = match entries {
                ModelEntries::Typed(models) => {
                    models.into_iter().map(|(id, m)| (id, Some(m))).collect()
                }
                ModelEntries::Raw(values) => values
                    .into_iter()
                    .map(|(id, value)| {
                        let parsed = self.entry::<RawModel>(value, &[key("models"), key(&id)]);
                        (id, parsed)
                    })
                    .collect(),
            };
            for (id, raw) in typed {
                let path = [key("models"), key(&id)];
                if !valid_model_id(&id) {
                    self.error(&path, format!("model id `{id}` may only use letters, digits and `-_./:@+`, without spaces"));
                    continue;
                }
                let Some(raw) = raw else {
                    continue;
                };
                self.check_modalities(&raw, &path);
                parts.entry(id).or_default().push(Part { source, raw });
            }
        }
        let mut skipped = Skipped::default();
        let mut out = IndexMap::with_capacity(parts.len());
        for (id, parts) in parts {
            if let Some(model) = self.model(&id, parts, providers, &mut skipped) {
                out.insert(id, Arc::new(model));
            }
        }
        self.current = 0;
        if !skipped.is_empty() {
            let list: Vec<String> = skipped.iter().map(|(p, n)| format!("{p} ({n})")).collect();
            self.warn(
                &[key("include")],
                format!(
                    "included endpoints of providers not configured here were skipped: {}",
                    list.join(", ")
                ),
            );
        }
        out
    }

    fn check_modalities(&mut self, raw: &RawModel, path: &[PathSeg]) {
        let fields = [
            ("input_modalities", &raw.input_modalities, INPUT_MODALITIES),
            (
                "output_modalities",
                &raw.output_modalities,
                OUTPUT_MODALITIES,
            ),
        ];
        for (field, values, known) in fields {
            if values.as_ref().is_some_and(Vec::is_empty) {
                self.error(
                    &child(path, key(field)),
                    format!("{field} must name at least one"),
                );
            }
            for (i, m) in values.iter().flatten().enumerate() {
                if !known.contains(&m.as_str()) {
                    self.error(
                        &child(&child(path, key(field)), PathSeg::Index(i)),
                        format!("`{m}` is not one of {}", known.join(", ")),
                    );
                }
            }
        }
    }

    fn model(
        &mut self,
        id: &str,
        parts: Vec<Part>,
        providers: &IndexMap<String, Arc<Provider>>,
        skipped: &mut Skipped,
    ) -> Option<Model> {
        let path = [key("models"), key(id)];
        let first_source = parts[0].source;
        let mut endpoints: Vec<Endpoint> = Vec::new();
        // (provider, upstream model) → the source that defined it first.
        let mut seen: HashMap<(String, String), usize> = HashMap::new();
        let mut written = 0;
        let mut fields = MergedFields::default();
        for part in parts {
            self.current = part.source;
            fields.take(&part.raw);
            written += part.raw.endpoints.len();
            for (i, ep) in part.raw.endpoints.into_iter().enumerate() {
                let epath = child(&child(&path, key("endpoints")), PathSeg::Index(i));
                let Some(provider) = providers.get(&ep.provider) else {
                    if part.source == 0 {
                        self.error(
                            &child(&epath, key("provider")),
                            format!("unknown provider `{}`", ep.provider),
                        );
                    } else {
                        *skipped.entry(ep.provider).or_default() += 1;
                    }
                    continue;
                };
                if ep.model.is_empty() || ep.model.chars().any(|c| c.is_control()) {
                    self.error(
                        &child(&epath, key("model")),
                        "the provider's model id must be non-empty text",
                    );
                    continue;
                }
                let identity = (ep.provider.clone(), ep.model.clone());
                if let Some(&first) = seen.get(&identity) {
                    if first != 0 && first != part.source {
                        let message = format!(
                            "`{}` on `{}` is already an endpoint of `{id}` in {}; this one is ignored",
                            ep.model,
                            ep.provider,
                            self.file_name(first)
                        );
                        self.warn(&epath, message);
                    }
                    continue;
                }
                seen.insert(identity, part.source);
                let price = self.price(ep.price.as_ref(), &child(&epath, key("price")));
                endpoints.push(Endpoint {
                    provider: provider.clone(),
                    upstream_model: ep.model,
                    price,
                    quantization: ep.quantization,
                    supports: expand_supports(ep.supports),
                    context_length: ep.context_length,
                    max_output: ep.max_output,
                    metrics: Default::default(),
                });
            }
        }
        self.current = first_source;
        if endpoints.is_empty() {
            // Endpoints that were written but refused are reported already (an error, or the
            // summary warning for unconfigured providers).
            if written == 0 {
                self.error(
                    &child(&path, key("endpoints")),
                    "a model needs at least one endpoint",
                );
            }
            return None;
        }
        let context_length = fields
            .context_length
            .or_else(|| endpoints.iter().filter_map(|e| e.context_length).max());
        let max_output = fields
            .max_output
            .or_else(|| endpoints.iter().filter_map(|e| e.max_output).max());
        let text = || vec!["text".to_string()];
        Some(Model {
            name: fields.name.unwrap_or_else(|| id.to_string()),
            id: id.to_string(),
            context_length,
            max_output,
            input_modalities: fields.input_modalities.unwrap_or_else(text),
            output_modalities: fields.output_modalities.unwrap_or_else(text),
            categories: fields.categories.unwrap_or_default(),
            endpoints,
        })
    }

    pub(super) fn price(&mut self, raw: Option<&RawPrice>, path: &[PathSeg]) -> Price {
        let Some(raw) = raw else {
            return Price::default();
        };
        let mut convert = |field: &str, v: Option<f64>| -> Option<u64> {
            let v = v?;
            let pico = Price::per_token_from_usd_per_million(v);
            if pico.is_none() {
                self.error(
                    &child(path, key(field)),
                    format!("price `{v}` must be a non-negative number (USD per 1M tokens)"),
                );
            }
            pico
        };
        Price {
            prompt: convert("prompt", raw.prompt).unwrap_or(0),
            completion: convert("completion", raw.completion).unwrap_or(0),
            cached_prompt: convert("cached_prompt", raw.cached_prompt),
            reasoning: convert("reasoning", raw.reasoning),
            cache_write: convert("cache_write", raw.cache_write),
        }
    }
}

/// Model-level fields: the first file that sets one wins.
#[derive(Default)]
struct MergedFields {
    name: Option<String>,
    context_length: Option<u64>,
    max_output: Option<u64>,
    input_modalities: Option<Vec<String>>,
    output_modalities: Option<Vec<String>>,
    categories: Option<Vec<String>>,
}

impl MergedFields {
    fn take(&mut self, raw: &RawModel) {
        fn first<T: Clone>(slot: &mut Option<T>, value: &Option<T>) {
            if slot.is_none() {
                slot.clone_from(value);
            }
        }
        first(&mut self.name, &raw.name);
        first(&mut self.context_length, &raw.context_length);
        first(&mut self.max_output, &raw.max_output);
        first(&mut self.input_modalities, &raw.input_modalities);
        first(&mut self.output_modalities, &raw.output_modalities);
        first(&mut self.categories, &raw.categories);
    }
}
