//! What a request may cost before it runs: the estimates budgets and rate limits reserve.
//!
//! A request's worst case is its prompt estimate plus the most output it may be sent for, at
//! its priciest candidate. The output bound must be the one the dialect sends (a limit the
//! request is not reserved for can overspend the key): the client's `max_tokens` when it set
//! one, else the model's known limit, or the default with room for a thinking budget on top
//! ([`OutputLimit::without_client_limit`], the rule the Claude dialects apply), times the
//! answers (`n`) the request asks for where the dialect sends `n`.

use crate::api::ChatRequest;
use crate::dialects::common::thinking_budget;
use crate::dialects::{converts_responses, OutputLimit};
use crate::metering::{Cost, Usage, ESTIMATED_BYTES_PER_TOKEN};
use crate::routing::{Candidate, RoutePlan};

/// Prompt tokens, estimated from the body's size (the documented approximation).
pub fn prompt_estimate(chat: &ChatRequest) -> u64 {
    (chat.fields.body().len() as u64).div_ceil(ESTIMATED_BYTES_PER_TOKEN)
}

/// The output limit of a candidate: its endpoint's own when the provider's differs, else the
/// model's; the dialects send nothing above it for a client that set no limit.
pub fn output_limit(c: &Candidate) -> OutputLimit {
    OutputLimit::of_model(c.endpoint().max_output.or(c.model.max_output))
}

/// The most a request of known `usage` (embeddings: prompt only) can cost on this plan.
pub fn worst_case_of(usage: &Usage, plan: &RoutePlan, fee_percent: f64) -> Cost {
    plan.candidates()
        .iter()
        .map(|c| Cost::with_fee(usage.cost_pico(&c.endpoint().price), fee_percent))
        .max()
        .unwrap_or_default()
}

/// The most this request can cost: the prompt estimate plus its maximum output, at the
/// priciest candidate it may fail over to, plus the fee.
pub fn worst_case_cost(chat: &ChatRequest, plan: &RoutePlan, fee_percent: f64) -> Cost {
    let prompt = prompt_estimate(chat);
    let budget = thinking_budget(&chat.fields);
    plan.candidates()
        .iter()
        .map(|c| {
            let each = chat
                .max_output_tokens
                .unwrap_or_else(|| output_limit(c).without_client_limit(budget));
            // `n` answers, each up to the limit, where the dialect sends `n` (the converting
            // ones drop it and ask for one).
            let answers = if converts_responses(c.provider().dialect) {
                1
            } else {
                chat.answers
            };
            let completion = each.saturating_mul(answers);
            let price = &c.endpoint().price;
            // The prompt may all be written to the provider's cache, at a price above the
            // prompt's (Anthropic: 1.25x); the worst case prices it so.
            let cache_write = if price.cache_write_or_prompt() > price.prompt {
                prompt
            } else {
                0
            };
            let usage = Usage {
                prompt,
                completion,
                cache_write,
                ..Usage::default()
            };
            Cost::with_fee(usage.cost_pico(price), fee_percent)
        })
        .max()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    const CATALOG: &str = r#"
providers:
  claude: { dialect: anthropic, base_url: "http://127.0.0.1:1/v1" }
  br: { dialect: bedrock, base_url: "http://127.0.0.1:2", region: us-east-1 }
models:
  a/known:
    max_output: 64000
    endpoints:
      - { provider: claude, model: k, price: { prompt: 0, completion: 1 } }
      - { provider: br, model: k2, price: { prompt: 0, completion: 1 }, max_output: 8192 }
  a/unknown:
    endpoints:
      - { provider: claude, model: u, price: { prompt: 0, completion: 1 } }
"#;

    /// The output tokens reserved for `body` on one endpoint (completion price 1 USD per 1M
    /// tokens, prompt free): the reservation divided back into tokens.
    fn reserved_output(model: &str, endpoint_index: usize, body: &str) -> u128 {
        let snapshot = crate::config::load_str(CATALOG, "t", &|_| None)
            .unwrap()
            .snapshot;
        let model = snapshot.catalog.model(model).unwrap().clone();
        let plan = RoutePlan::from_candidates(vec![Candidate {
            model,
            endpoint_index,
        }]);
        let chat = ChatRequest::parse(Bytes::from(body.to_string())).unwrap();
        let per_token = Cost::with_fee(
            Usage {
                completion: 1,
                ..Usage::default()
            }
            .cost_pico(&plan.candidates()[0].endpoint().price),
            0.0,
        );
        worst_case_cost(&chat, &plan, 0.0).0 / per_token.0
    }

    #[test]
    fn a_reasoning_budget_without_max_tokens_reserves_the_limit_the_dialect_sends() {
        let budget = r#"{"model":"m","messages":[],"reasoning":{"max_tokens":8000}}"#;
        // Unknown model limit: the budget plus the default answer, as Anthropic is sent.
        assert_eq!(reserved_output("a/unknown", 0, budget), 12_096);
        let native =
            r#"{"model":"m","messages":[],"thinking":{"type":"enabled","budget_tokens":3000}}"#;
        assert_eq!(reserved_output("a/unknown", 0, native), 7096);
        // A known limit bounds it: the model's, or the endpoint's own.
        assert_eq!(reserved_output("a/known", 0, budget), 64_000);
        assert_eq!(reserved_output("a/known", 1, budget), 8192);
        // The client's limit is what is sent; without thinking, the default.
        let capped =
            r#"{"model":"m","messages":[],"max_tokens":1000,"reasoning":{"max_tokens":8000}}"#;
        assert_eq!(reserved_output("a/unknown", 0, capped), 1000);
        let plain = r#"{"model":"m","messages":[]}"#;
        assert_eq!(reserved_output("a/unknown", 0, plain), 4096);
    }

    /// The prompt may all be written to the provider's cache: reserved at the cache-write
    /// price when it is above the prompt's, so the charge never exceeds the reservation.
    #[test]
    fn the_prompt_is_reserved_at_the_cache_write_price_when_that_is_higher() {
        let catalog = r#"
providers:
  claude: { dialect: anthropic, base_url: "http://127.0.0.1:1/v1" }
models:
  a/writes:
    endpoints: [{ provider: claude, model: w, price: { prompt: 1, completion: 0, cache_write: 1.25 } }]
  a/cheaper-writes:
    endpoints: [{ provider: claude, model: c, price: { prompt: 1, completion: 0, cache_write: 0.5 } }]
  a/plain:
    endpoints: [{ provider: claude, model: p, price: { prompt: 1, completion: 0 } }]
"#;
        let snapshot = crate::config::load_str(catalog, "t", &|_| None)
            .unwrap()
            .snapshot;
        let body = r#"{"model":"m","messages":[{"role":"user","content":"hello there"}]}"#;
        let chat = ChatRequest::parse(Bytes::from(body)).unwrap();
        let prompt = prompt_estimate(&chat) as u128;
        for (model, per_token) in [
            ("a/writes", 1_250_000),
            ("a/cheaper-writes", 1_000_000),
            ("a/plain", 1_000_000),
        ] {
            let plan = RoutePlan::from_candidates(vec![Candidate {
                model: snapshot.catalog.model(model).unwrap().clone(),
                endpoint_index: 0,
            }]);
            assert_eq!(
                worst_case_cost(&chat, &plan, 0.0).0,
                prompt * per_token,
                "{model}"
            );
        }
    }
}
