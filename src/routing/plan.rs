//! The route plan: for one request, the ordered list of (model, provider endpoint) candidates
//! the proxy tries until one answers.
//!
//! Order of the plan: the requested model's endpoints, then each `models: [..]` fallback's.
//! Within a model, endpoints pass the `provider` filters (only, ignore, data_collection, zdr,
//! quantizations, max_price, require_parameters), then are ordered by `order`, else by `sort`,
//! else drawn weighted by 1/price² (OpenRouter's documented default), so cheap endpoints
//! take most traffic without starving the rest.

use rand::Rng;
use std::sync::Arc;

use super::health::{EndpointStats, HealthBook};
use super::prefs::{DataCollectionPref, ProviderPrefs, SortBy, SortPref};
use super::sticky::StickyTarget;
use crate::auth::ApiKey;
use crate::catalog::{Catalog, DataCollection, Endpoint, Model, Price, Provider};

/// What the router needs to know about a request.
pub struct RouteRequest<'a> {
    pub model: &'a str,
    pub fallbacks: &'a [String],
    pub prefs: &'a ProviderPrefs,
    pub key: &'a ApiKey,
    /// Request parameters that need endpoint support when `require_parameters` is set.
    pub parameters: &'a [&'a str],
    pub health: &'a HealthBook,
    /// Where this conversation was served last, if it is sticky.
    pub sticky: Option<&'a StickyTarget>,
}

/// One place to send the request.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub model: Arc<Model>,
    pub endpoint_index: usize,
}

impl Candidate {
    pub fn endpoint(&self) -> &Endpoint {
        &self.model.endpoints[self.endpoint_index]
    }

    pub fn provider(&self) -> &Arc<Provider> {
        &self.endpoint().provider
    }
}

#[derive(Debug)]
pub struct RoutePlan {
    candidates: Vec<Candidate>,
    next: usize,
}

impl RoutePlan {
    pub fn from_candidates(candidates: Vec<Candidate>) -> RoutePlan {
        RoutePlan {
            candidates,
            next: 0,
        }
    }

    /// The next candidate to try, if any is left.
    pub fn next_candidate(&mut self) -> Option<Candidate> {
        let c = self.candidates.get(self.next).cloned();
        if c.is_some() {
            self.next += 1;
        }
        c
    }

    /// Keeps only the candidates not yet tried that satisfy `keep`.
    pub fn retain(&mut self, keep: impl Fn(&Candidate) -> bool) {
        let tried = self.candidates.drain(..self.next).collect::<Vec<_>>();
        self.candidates.retain(|c| keep(c));
        self.next = tried.len();
        self.candidates.splice(0..0, tried);
    }

    pub fn has_more(&self) -> bool {
        self.next < self.candidates.len()
    }

    pub fn candidates(&self) -> &[Candidate] {
        &self.candidates
    }
}

/// Why no plan could be made; each maps to a client error (DESIGN §3).
#[derive(Debug, PartialEq)]
pub enum PlanError {
    UnknownModel(String),
    ModelNotAllowed(String),
    /// Filters left nothing; each entry says which filter excluded which endpoint.
    NoEligibleEndpoint {
        model: String,
        excluded: Vec<String>,
    },
    /// Endpoints were eligible, but every one has an open breaker.
    AllUnhealthy {
        model: String,
        endpoints: Vec<String>,
    },
}

impl RoutePlan {
    pub fn build(catalog: &Catalog, req: &RouteRequest<'_>) -> Result<RoutePlan, PlanError> {
        let mut candidates = Vec::new();
        let mut excluded = Vec::new();
        let mut unhealthy = Vec::new();
        let prefs = req.prefs.overlay(&req.key.provider_prefs);
        let model_ids = std::iter::once(req.model).chain(req.fallbacks.iter().map(String::as_str));
        for (position, requested) in model_ids.enumerate() {
            let (id, variant) = split_variant(requested);
            let Some(model) = catalog.model(id) else {
                if position == 0 {
                    return Err(PlanError::UnknownModel(requested.to_string()));
                }
                excluded.push(format!(
                    "fallback model `{requested}` is not in the catalog"
                ));
                continue;
            };
            if !req.key.may_use_model(id) {
                if position == 0 {
                    return Err(PlanError::ModelNotAllowed(id.to_string()));
                }
                excluded.push(format!("fallback model `{id}` is not allowed for this key"));
                continue;
            }
            let mut eligible: Vec<usize> = Vec::new();
            for (i, ep) in model.endpoints.iter().enumerate() {
                if let Some(why) = exclusion(ep, &prefs, &req.key.provider_prefs, req.parameters) {
                    excluded.push(format!("{id} via {}: {why}", ep.provider.id));
                } else if req.health.is_open(&ep.provider.id, &ep.upstream_model) {
                    unhealthy.push(format!("{id} via {}", ep.provider.id));
                } else {
                    eligible.push(i);
                }
            }
            let sort = variant.or(prefs.sort.as_ref().and_then(SortPref::by));
            // Live statistics cost a pass over each endpoint's window: only when read.
            let stats: Vec<EndpointStats> = if needs_stats(&prefs, sort) {
                model
                    .endpoints
                    .iter()
                    .map(|ep| {
                        req.health
                            .get(&ep.provider.id, &ep.upstream_model)
                            .map(|h| h.stats())
                            .unwrap_or_default()
                    })
                    .collect()
            } else {
                Vec::new()
            };
            order_endpoints(model, &mut eligible, &prefs, sort, &stats);
            // Stickiness replaces the default draw only: an explicit order or sort wins.
            if position == 0 && sort.is_none() && prefs.order.is_none() {
                if let Some(target) = req.sticky {
                    stick_to(model, &mut eligible, target);
                }
            }
            if prefs.allow_fallbacks == Some(false) && prefs.order.is_none() {
                // The primary provider alone (with an `order`, its providers: `exclusion`).
                eligible.truncate(1);
            }
            candidates.extend(eligible.into_iter().map(|endpoint_index| Candidate {
                model: model.clone(),
                endpoint_index,
            }));
        }
        if let Some(sort) = prefs.sort.as_ref() {
            if let (Some(by), true) = (sort.by(), sort.across_models()) {
                if prefs.order.is_none() {
                    sort_across_models(&mut candidates, by, req.health);
                }
            }
        }
        if candidates.is_empty() && !unhealthy.is_empty() {
            return Err(PlanError::AllUnhealthy {
                model: req.model.to_string(),
                endpoints: unhealthy,
            });
        }
        if candidates.is_empty() {
            return Err(PlanError::NoEligibleEndpoint {
                model: req.model.to_string(),
                excluded,
            });
        }
        Ok(RoutePlan::from_candidates(candidates))
    }
}

/// `:nitro` sorts by throughput, `:floor` by price; other suffixes are part of the id.
fn split_variant(model: &str) -> (&str, Option<SortBy>) {
    if let Some(id) = model.strip_suffix(":nitro") {
        (id, Some(SortBy::Throughput))
    } else if let Some(id) = model.strip_suffix(":floor") {
        (id, Some(SortBy::Price))
    } else {
        (model, None)
    }
}

fn names_provider(list: &[String], provider: &Provider) -> bool {
    list.iter().any(|p| p.eq_ignore_ascii_case(&provider.id))
}

/// Why an endpoint is not eligible under these preferences (the request's over the key's,
/// `prefs`, and the key's own, `key`), if it is not.
fn exclusion(
    ep: &Endpoint,
    prefs: &ProviderPrefs,
    key: &ProviderPrefs,
    parameters: &[&str],
) -> Option<String> {
    let provider = &ep.provider;
    if let Some(why) = &provider.unavailable {
        return Some(format!("provider unavailable ({why})"));
    }
    if !provider.dialect.is_served() {
        return Some(format!(
            "dialect {} is not supported by this build",
            provider.dialect.as_str()
        ));
    }
    // A request's `only` and `ignore` are merged with the key's (OpenRouter merges them with
    // the account's), not put in their place: a request narrows the providers its key may
    // use and never brings back one the key excludes.
    for only in [&prefs.only, &key.only].into_iter().flatten() {
        if !names_provider(only, provider) {
            return Some("not in provider.only".into());
        }
    }
    for ignore in [&prefs.ignore, &key.ignore].into_iter().flatten() {
        if names_provider(ignore, provider) {
            return Some("in provider.ignore".into());
        }
    }
    if let (Some(false), Some(order)) = (prefs.allow_fallbacks, &prefs.order) {
        // OpenRouter: without fallbacks, only "your custom providers in `order`" serve.
        if !names_provider(order, provider) {
            return Some("not in provider.order (provider.allow_fallbacks is false)".into());
        }
    }
    if prefs.data_collection == Some(DataCollectionPref::Deny)
        && provider.data_collection == DataCollection::Allow
    {
        return Some("provider may collect data (provider.data_collection: deny)".into());
    }
    if prefs.zdr == Some(true) && !provider.zdr {
        return Some("provider is not zero-data-retention (provider.zdr)".into());
    }
    if let Some(quants) = &prefs.quantizations {
        let q = ep.quantization.as_deref().unwrap_or("unknown");
        if !quants.iter().any(|w| w.eq_ignore_ascii_case(q)) {
            return Some(format!("quantization {q} not in provider.quantizations"));
        }
    }
    if let Some(max) = &prefs.max_price {
        let over = |limit: Option<f64>, pico: u64| {
            limit.is_some_and(|usd_per_m| Price::usd_per_token(pico) * 1e6 > usd_per_m + 1e-12)
        };
        if over(max.prompt, ep.price.prompt) || over(max.completion, ep.price.completion) {
            return Some("price above provider.max_price".into());
        }
    }
    if prefs.require_parameters == Some(true) {
        if let Some(missing) = parameters.iter().find(|p| !ep.supports(p)) {
            return Some(format!(
                "does not support `{missing}` (provider.require_parameters)"
            ));
        }
    }
    None
}

/// Whether ordering reads live statistics: a latency or throughput sort, or a soft
/// latency/throughput preference (an explicit `order` reads none).
fn needs_stats(prefs: &ProviderPrefs, sort: Option<SortBy>) -> bool {
    prefs.order.is_none()
        && (matches!(sort, Some(SortBy::Throughput | SortBy::Latency))
            || prefs.preferred_max_latency.is_some()
            || prefs.preferred_min_throughput.is_some())
}

/// Orders the eligible endpoints; `stats` is indexed like `model.endpoints` and may be empty
/// when `needs_stats` says no branch here reads it.
fn order_endpoints(
    model: &Model,
    eligible: &mut Vec<usize>,
    prefs: &ProviderPrefs,
    sort: Option<SortBy>,
    stats: &[EndpointStats],
) {
    let price = |i: &usize| model.endpoints[*i].price.blended();
    if let Some(order) = &prefs.order {
        // Named providers first, in the given order; the rest keep the default order after.
        let rank = |i: &usize| {
            let id = &model.endpoints[*i].provider.id;
            order
                .iter()
                .position(|p| p.eq_ignore_ascii_case(id))
                .unwrap_or(usize::MAX)
        };
        weighted_shuffle(eligible, price);
        eligible.sort_by_key(rank);
        return;
    }
    match sort {
        Some(by) => eligible
            .sort_by(|a, b| compare(by, (price(a), stats.get(*a)), (price(b), stats.get(*b)))),
        None => weighted_shuffle(eligible, price),
    }
    // Soft preferences: endpoints measured outside them move behind the others.
    let max_latency = prefs.preferred_max_latency.as_ref().and_then(cutoffs);
    let min_throughput = prefs.preferred_min_throughput.as_ref().and_then(cutoffs);
    if max_latency.is_some() || min_throughput.is_some() {
        let misses = |i: &usize| {
            let s = &stats[*i];
            max_latency.is_some_and(|max| {
                misses_cutoffs(&max, s.ttft_percentiles, |secs, cutoff| secs > cutoff)
            }) || min_throughput.is_some_and(|min| {
                misses_cutoffs(&min, s.throughput_percentiles, |tps, cutoff| tps < cutoff)
            })
        };
        eligible.sort_by_key(misses);
    }
}

/// How a sort ranks two endpoints by their blended prices and live statistics (`None`, or
/// empty, for a price sort: it reads none). Endpoints without statistics yet rank after
/// measured ones, cheapest first.
fn compare(
    by: SortBy,
    (price_a, a): (u64, Option<&EndpointStats>),
    (price_b, b): (u64, Option<&EndpointStats>),
) -> std::cmp::Ordering {
    use std::cmp::Ordering::{Greater, Less};
    match by {
        SortBy::Price => price_a.cmp(&price_b),
        SortBy::Throughput => {
            let tps = |s: Option<&EndpointStats>| s.and_then(|s| s.p50_tokens_per_sec);
            match (tps(a), tps(b)) {
                (Some(x), Some(y)) => y.total_cmp(&x),
                (Some(_), None) => Less,
                (None, Some(_)) => Greater,
                (None, None) => price_a.cmp(&price_b),
            }
        }
        SortBy::Latency => {
            let ttft = |s: Option<&EndpointStats>| s.and_then(|s| s.p50_ttft_ms);
            (ttft(a).unwrap_or(u64::MAX), price_a).cmp(&(ttft(b).unwrap_or(u64::MAX), price_b))
        }
    }
}

/// `sort.partition: "none"` (OpenRouter): one order for the candidates of every model, so a
/// cheaper (or faster) fallback model's endpoint goes before the requested model's. Stable:
/// ties keep the order the models were given in.
fn sort_across_models(candidates: &mut Vec<Candidate>, by: SortBy, health: &HealthBook) {
    let mut keyed: Vec<(u64, EndpointStats, Candidate)> = candidates
        .drain(..)
        .map(|c| {
            let ep = c.endpoint();
            let stats = match by {
                SortBy::Price => EndpointStats::default(),
                _ => health
                    .get(&ep.provider.id, &ep.upstream_model)
                    .map(|h| h.stats())
                    .unwrap_or_default(),
            };
            (ep.price.blended(), stats, c)
        })
        .collect();
    keyed.sort_by(|a, b| compare(by, (a.0, Some(&a.1)), (b.0, Some(&b.1))));
    candidates.extend(keyed.into_iter().map(|(_, _, c)| c));
}

/// Cutoffs at p50, p75, p90 and p99: OpenRouter sends a number (the p50's) or an object of
/// percentile cutoffs (`{"p50": 2, "p90": 5}`), all of which an endpoint must meet.
fn cutoffs(v: &serde_json::Value) -> Option<[Option<f64>; 4]> {
    if let Some(p50) = v.as_f64() {
        return Some([Some(p50), None, None, None]);
    }
    let cutoffs = ["p50", "p75", "p90", "p99"].map(|p| v.get(p).and_then(|c| c.as_f64()));
    cutoffs.iter().any(Option::is_some).then_some(cutoffs)
}

/// Whether an endpoint's measured percentiles (in the order of `cutoffs`) miss one of them;
/// an endpoint not measured yet misses none.
fn misses_cutoffs(
    cutoffs: &[Option<f64>; 4],
    measured: Option<[f64; 4]>,
    misses: impl Fn(f64, f64) -> bool,
) -> bool {
    measured.is_some_and(|m| {
        cutoffs
            .iter()
            .zip(m)
            .any(|(cutoff, value)| cutoff.is_some_and(|c| misses(value, c)))
    })
}

/// Moves the conversation's previous endpoint to the front, if it is still eligible.
fn stick_to(model: &Model, eligible: &mut [usize], target: &StickyTarget) {
    let pos = eligible.iter().position(|i| {
        let ep = &model.endpoints[*i];
        ep.provider.id == target.provider && ep.upstream_model == target.upstream_model
    });
    if let Some(pos) = pos {
        eligible[..=pos].rotate_right(1);
    }
}

/// Orders endpoints by repeated weighted draws without replacement, weight 1/price²
/// (a free endpoint weighs as much as the cheapest priced one times 100).
fn weighted_shuffle(items: &mut Vec<usize>, price: impl Fn(&usize) -> u64) {
    if items.len() < 2 {
        return;
    }
    let min_positive = items
        .iter()
        .map(&price)
        .filter(|p| *p > 0)
        .min()
        .unwrap_or(1) as f64;
    let weight = |i: &usize| {
        let p = price(i) as f64;
        let p = if p > 0.0 { p } else { min_positive / 10.0 };
        1.0 / (p * p)
    };
    let mut rng = rand::thread_rng();
    let mut remaining = std::mem::take(items);
    while !remaining.is_empty() {
        let total: f64 = remaining.iter().map(weight).sum();
        let mut draw = rng.gen::<f64>() * total;
        let mut chosen = remaining.len() - 1;
        for (pos, item) in remaining.iter().enumerate() {
            draw -= weight(item);
            if draw <= 0.0 {
                chosen = pos;
                break;
            }
        }
        items.push(remaining.remove(chosen));
    }
}

#[cfg(test)]
mod tests;
