//! What a request may cost before it runs: the estimates budgets and rate limits reserve.

use crate::api::ChatRequest;
use crate::metering::{Cost, Usage, ESTIMATED_BYTES_PER_TOKEN};
use crate::routing::RoutePlan;

/// Output tokens assumed when neither the request (`max_tokens`) nor the model (`max_output`)
/// bounds them.
pub const DEFAULT_MAX_OUTPUT: u64 = 4096;

/// Prompt tokens, estimated from the body's size (the documented approximation).
pub fn prompt_estimate(chat: &ChatRequest) -> u64 {
    (chat.fields.body().len() as u64).div_ceil(ESTIMATED_BYTES_PER_TOKEN)
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
    plan.candidates()
        .iter()
        .map(|c| {
            let completion = chat
                .max_output_tokens
                .or(c.model.max_output)
                .unwrap_or(DEFAULT_MAX_OUTPUT);
            let usage = Usage {
                prompt,
                completion,
                ..Usage::default()
            };
            Cost::with_fee(usage.cost_pico(&c.endpoint().price), fee_percent)
        })
        .max()
        .unwrap_or_default()
}
