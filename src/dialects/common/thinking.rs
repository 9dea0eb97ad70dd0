//! Claude's thinking budget and the output limit sent with it, for the two dialects that reach
//! Claude (Anthropic's API and Bedrock's Converse), and what budgets reserve for it.
//!
//! Claude wants `budget_tokens` >= 1024 and below `max_tokens`, and refuses a `max_tokens` above
//! the model's own output limit. Rules, with the client's limit first:
//! - The client set `max_tokens`: it is sent as it is. A budget that does not fit under it
//!   leaves thinking off (the client's limit is its contract).
//! - It did not, and asked for a budget: the answer gets the default limit on top of the
//!   budget, but never more than the model's known limit; a budget that does not fit under
//!   that is cut to what the largest effort may think for (95% of it).
//! - An effort (no budget) thinks for its share of the limit.

use serde_json::{json, Value};

use super::{read_reasoning, Reasoning};
use crate::api::TopLevelFields;

/// Output tokens sent when a dialect must send a limit and neither the client nor the catalog
/// gives one (Anthropic requires `max_tokens`).
pub const DEFAULT_MAX_OUTPUT: u64 = 4096;

/// Claude's smallest thinking budget.
const MIN_THINKING_BUDGET: u64 = 1024;

/// How many tokens an answer may have when the client does not say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputLimit {
    /// Sent when the client sets no limit and the dialect must send one.
    pub default: u64,
    /// The model's own limit, when the catalog knows it: no limit above it is sent for the
    /// client.
    pub max: Option<u64>,
}

impl OutputLimit {
    /// For a model whose limit the catalog may know: that limit is also the default.
    pub fn of_model(max: Option<u64>) -> OutputLimit {
        OutputLimit {
            default: max.unwrap_or(DEFAULT_MAX_OUTPUT),
            max,
        }
    }

    /// The limit sent with a thinking `budget` when the client set none: room for the budget
    /// and a default answer, within the model's limit.
    pub fn with_budget(self, budget: u64) -> u64 {
        let cap = budget.saturating_add(self.default);
        self.max.map_or(cap, |max| cap.min(max))
    }

    /// The most a request whose client set no limit may be sent (and so must reserve): room
    /// for the [`thinking_budget`] it asked for, if any.
    pub fn without_client_limit(self, thinking_budget: Option<u64>) -> u64 {
        match thinking_budget {
            Some(budget) => self.with_budget(budget),
            None => self.default,
        }
    }
}

/// A default of `n` tokens, the model's own limit unknown.
impl From<u64> for OutputLimit {
    fn from(n: u64) -> OutputLimit {
        OutputLimit {
            default: n,
            max: None,
        }
    }
}

/// The thinking budget a request asks for, as the Claude dialects read it: a native `thinking`
/// object's `budget_tokens` wins, else `reasoning.max_tokens` (at least Claude's minimum). A
/// malformed request asks for nothing here: the dialect refuses it.
pub fn thinking_budget(fields: &TopLevelFields) -> Option<u64> {
    if let Ok(Some(t)) = fields.get::<Value>("thinking", "an object") {
        if t.is_object() {
            return t.get("budget_tokens").and_then(Value::as_u64);
        }
    }
    let r = read_reasoning(fields).ok().flatten()?;
    r.max_tokens
        .filter(|_| !r.is_off())
        .map(|b| b.max(MIN_THINKING_BUDGET))
}

/// Share of the output limit each effort may think for (OpenRouter's documented rule).
fn effort_share(effort: &str) -> f64 {
    match effort {
        "minimal" => 0.1,
        "low" => 0.2,
        "medium" => 0.5,
        "high" => 0.8,
        _ => 0.95, // xhigh, max
    }
}

/// The largest budget that leaves an answer room under `cap`: the largest effort's share.
fn budget_under(cap: u64) -> u64 {
    ((cap as f64 * effort_share("max")) as u64).max(MIN_THINKING_BUDGET)
}

/// `thinking` and `max_tokens` for the client's OpenAI reasoning settings (see the module
/// rules). `None`: thinking cannot be had under the limit.
pub fn claude_thinking(
    reasoning: Option<&Reasoning>,
    client_cap: Option<u64>,
    limit: OutputLimit,
) -> (Option<Value>, u64) {
    let cap = client_cap.unwrap_or(limit.default);
    let Some(r) = reasoning.filter(|r| !r.is_off()) else {
        return (None, cap);
    };
    let (budget, cap) = match (r.max_tokens, client_cap) {
        (Some(b), Some(cap)) => (b.max(MIN_THINKING_BUDGET), cap),
        (Some(b), None) => {
            let budget = b.max(MIN_THINKING_BUDGET);
            let cap = limit.with_budget(budget);
            (
                if budget < cap {
                    budget
                } else {
                    budget_under(cap)
                },
                cap,
            )
        }
        (None, _) => {
            let share = effort_share(r.effort.as_deref().unwrap_or("medium"));
            (((cap as f64 * share) as u64).max(MIN_THINKING_BUDGET), cap)
        }
    };
    if budget >= cap {
        return (None, cap);
    }
    (
        Some(json!({ "type": "enabled", "budget_tokens": budget })),
        cap,
    )
}

/// A client's own Anthropic `thinking` object and the `max_tokens` to send with it: passed as
/// it is, except that a budget the model's limit cannot hold is cut (see the module rules).
pub fn native_thinking(
    mut t: Value,
    client_cap: Option<u64>,
    limit: OutputLimit,
) -> (Option<Value>, u64) {
    let budget = t.get("budget_tokens").and_then(Value::as_u64).unwrap_or(0);
    if let Some(cap) = client_cap {
        return (Some(t), cap);
    }
    let cap = limit.with_budget(budget);
    let cut = budget_under(cap);
    // Budget 0: no budget to cut (adaptive or disabled); a limit too small to think in is
    // Claude's to refuse in its own words.
    if budget >= cap && budget > 0 && cut < cap {
        t["budget_tokens"] = json!(cut);
    }
    (Some(t), cap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn budget(effort: Option<&str>, max_tokens: Option<u64>) -> Reasoning {
        Reasoning {
            effort: effort.map(String::from),
            max_tokens,
            ..Reasoning::default()
        }
    }

    fn sent(t: &(Option<Value>, u64)) -> (Option<u64>, u64) {
        let b = t.0.as_ref().and_then(|t| t["budget_tokens"].as_u64());
        (b, t.1)
    }

    #[test]
    fn a_budget_without_a_client_limit_stays_under_the_models_limit() {
        let known = OutputLimit::of_model(Some(64_000));
        let unknown = OutputLimit::of_model(None);
        let r = budget(None, Some(8000));
        assert_eq!(
            sent(&claude_thinking(Some(&r), None, known)),
            (Some(8000), 64_000)
        );
        assert_eq!(
            sent(&claude_thinking(Some(&r), None, unknown)),
            (Some(8000), 12_096)
        );
        // A budget as large as the limit is cut to leave the answer room.
        let r = budget(None, Some(64_000));
        assert_eq!(
            sent(&claude_thinking(Some(&r), None, known)),
            (Some(60_800), 64_000)
        );
        let r = budget(None, Some(u64::MAX));
        assert_eq!(
            sent(&claude_thinking(Some(&r), None, known)),
            (Some(60_800), 64_000)
        );
        // Too small a model to think in: off, not a request Claude refuses.
        let tiny = OutputLimit::of_model(Some(1000));
        assert_eq!(sent(&claude_thinking(Some(&r), None, tiny)), (None, 1000));
        // Small budgets are raised to Claude's minimum.
        let r = budget(None, Some(10));
        assert_eq!(
            sent(&claude_thinking(Some(&r), None, known)),
            (Some(1024), 64_000)
        );
    }

    #[test]
    fn the_clients_limit_is_kept_and_efforts_take_their_share() {
        let known = OutputLimit::of_model(Some(64_000));
        let r = budget(None, Some(8000));
        assert_eq!(
            sent(&claude_thinking(Some(&r), Some(20_000), known)),
            (Some(8000), 20_000)
        );
        assert_eq!(
            sent(&claude_thinking(Some(&r), Some(4000), known)),
            (None, 4000)
        );
        let r = budget(Some("high"), None);
        assert_eq!(
            sent(&claude_thinking(Some(&r), None, known)),
            (Some(51_200), 64_000)
        );
        assert_eq!(sent(&claude_thinking(None, None, known)), (None, 64_000));
    }

    #[test]
    fn a_native_budget_is_cut_only_when_the_models_limit_cannot_hold_it() {
        let known = OutputLimit::of_model(Some(64_000));
        let t = json!({ "type": "enabled", "budget_tokens": 8000 });
        assert_eq!(
            sent(&native_thinking(t.clone(), None, known)),
            (Some(8000), 64_000)
        );
        assert_eq!(
            sent(&native_thinking(t.clone(), None, 4096.into())),
            (Some(8000), 12_096)
        );
        assert_eq!(
            sent(&native_thinking(t, Some(2000), known)),
            (Some(8000), 2000)
        );
        let t = json!({ "type": "enabled", "budget_tokens": 100_000 });
        assert_eq!(
            sent(&native_thinking(t, None, known)),
            (Some(60_800), 64_000)
        );
        let t = json!({ "type": "adaptive" });
        assert_eq!(native_thinking(t.clone(), None, known), (Some(t), 64_000));
    }

    #[test]
    fn the_limit_without_a_client_limit_has_room_for_the_asked_budget() {
        let budget = |body: &str| {
            thinking_budget(&TopLevelFields::parse(Bytes::from(body.to_string())).unwrap())
        };
        let known = OutputLimit::of_model(Some(64_000));
        let unknown = OutputLimit::of_model(None);
        let r = budget(r#"{"reasoning":{"max_tokens":8000}}"#);
        assert_eq!(known.without_client_limit(r), 64_000);
        assert_eq!(unknown.without_client_limit(r), 12_096);
        let native = budget(
            r#"{"thinking":{"type":"enabled","budget_tokens":3000},"reasoning":{"max_tokens":8000}}"#,
        );
        assert_eq!(
            unknown.without_client_limit(native),
            7096,
            "native thinking wins"
        );
        for asks_none in [
            r#"{}"#,
            r#"{"reasoning":{"effort":"high"}}"#,
            r#"{"reasoning":{"max_tokens":8000,"enabled":false}}"#,
            r#"{"reasoning":{"max_tokens":8000,"effort":"bogus"}}"#,
            r#"{"reasoning":"x"}"#,
        ] {
            assert_eq!(
                unknown.without_client_limit(budget(asks_none)),
                4096,
                "{asks_none}"
            );
        }
    }
}
