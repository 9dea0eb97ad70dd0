//! Token usage as providers report it, normalised, and its cost.

use serde::Serialize;
use serde_json::Value;

use crate::api::scan::{read_fields, Field};
use crate::catalog::{Price, PICO_USD_PER_USD};

/// Tokens by kind. `completion` includes `reasoning`, and `prompt` includes `cached_prompt`
/// and `cache_write`, as in OpenAI's usage object (and OpenRouter's `cache_write_tokens`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt: u64,
    pub completion: u64,
    pub cached_prompt: u64,
    pub reasoning: u64,
    /// Prompt tokens written to the provider's prompt cache (Anthropic's
    /// `cache_creation_input_tokens`, Bedrock's `cacheWriteInputTokens`, OpenRouter's
    /// `prompt_tokens_details.cache_write_tokens`), billed at the cache-write price.
    pub cache_write: u64,
    /// True when the provider reported nothing and the gateway estimated.
    pub estimated: bool,
}

fn u64_at(v: &Value, path: &[&str]) -> u64 {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// A token count as OpenAI writes it; 0 for any other value.
fn count(raw: &str) -> u64 {
    raw.parse().unwrap_or(0)
}

/// A nested object's `keys` as counts; 0s when the value is not an object (or one that does
/// not read).
fn nested_counts<const N: usize>(field: Field<'_, '_>, keys: [&str; N]) -> Option<[u64; N]> {
    let mut n = [0; N];
    let read = field.object(|k, value| {
        if let Some(i) = keys.iter().position(|key| k == *key) {
            n[i] = count(value.raw()?);
        }
        Some(())
    })?;
    Some(if read.complete { n } else { [0; N] })
}

impl Usage {
    /// Reads OpenAI's `usage` object; `None` if it is not an object.
    pub fn from_openai(usage: &Value) -> Option<Usage> {
        if !usage.is_object() {
            return None;
        }
        let reported = Usage {
            prompt: u64_at(usage, &["prompt_tokens"]),
            completion: u64_at(usage, &["completion_tokens"]),
            cached_prompt: u64_at(usage, &["prompt_tokens_details", "cached_tokens"]),
            reasoning: u64_at(usage, &["completion_tokens_details", "reasoning_tokens"]),
            cache_write: u64_at(usage, &["prompt_tokens_details", "cache_write_tokens"]),
            estimated: false,
        };
        Some(
            reported
                .with_total(usage.get("total_tokens").and_then(Value::as_u64))
                .with_cache_hits(u64_at(usage, &["prompt_cache_hit_tokens"])),
        )
    }

    /// Reads the raw text of OpenAI's `usage` object without building a tree (`api::scan`);
    /// `None` if it is not an object. Odd field types read as 0, and the last of duplicate
    /// keys counts, as in `from_openai`. The answer path reads usage in its own scan
    /// (`Completion::parse`); this is the reference its tests and fuzz target compare with.
    pub fn from_openai_raw(raw: &str) -> Option<Usage> {
        let mut reader = OpenAiUsageReader::default();
        read_fields(raw, |key, field| reader.read_member(&key, field))?;
        Some(reader.usage())
    }

    /// Reasoning counted apart from `completion_tokens`, as xAI counts it, moved into it: xAI's
    /// `total_tokens` is prompt + completion + reasoning, where OpenAI's completion already
    /// holds the reasoning (and its total is prompt + completion). Read as reported, Grok's
    /// reasoning went unbilled and the client's total fell short of the provider's.
    fn with_total(mut self, total: Option<u64>) -> Usage {
        let reasoning_apart = self
            .prompt
            .checked_add(self.completion)
            .and_then(|n| n.checked_add(self.reasoning));
        if self.reasoning > 0 && total.is_some() && total == reasoning_apart {
            self.completion += self.reasoning;
        }
        self
    }

    /// DeepSeek's count of prompt tokens read from its cache (`prompt_cache_hit_tokens`, beside
    /// `prompt_cache_miss_tokens`), where OpenAI writes `prompt_tokens_details.cached_tokens`:
    /// unread, DeepSeek's cache hits were billed at the full prompt price (ten times the
    /// cached one). The larger count wins when a host writes both (they agree).
    fn with_cache_hits(mut self, hits: u64) -> Usage {
        self.cached_prompt = self.cached_prompt.max(hits);
        self
    }

    pub fn total(&self) -> u64 {
        self.prompt.saturating_add(self.completion)
    }

    /// Cost in pico-USD at this price, before the gateway's fee: prompt tokens read from the
    /// cache at the cached price, those written to it at the cache-write price, the rest at
    /// the prompt price (each count capped by what is left of the prompt).
    pub fn cost_pico(&self, price: &Price) -> u128 {
        let cached = self.cached_prompt.min(self.prompt);
        let written = self.cache_write.min(self.prompt - cached);
        let reasoning = self.reasoning.min(self.completion);
        let t = |n: u64, p: u64| n as u128 * p as u128;
        t(self.prompt - cached - written, price.prompt)
            .saturating_add(t(cached, price.cached_prompt_or_prompt()))
            .saturating_add(t(written, price.cache_write_or_prompt()))
            .saturating_add(t(self.completion - reasoning, price.completion))
            .saturating_add(t(reasoning, price.reasoning_or_completion()))
    }

    /// OpenAI's usage object plus `cost` in USD (OpenRouter's extension).
    pub fn to_openai_json(&self, cost: Cost) -> Value {
        serde_json::to_value(self.to_openai(cost)).unwrap_or(Value::Null)
    }

    /// OpenAI's `usage` object with the gateway's `cost` (and `estimated` when it is),
    /// serialisable straight into a body.
    pub fn to_openai(&self, cost: Cost) -> OpenAiUsage {
        OpenAiUsage {
            prompt_tokens: self.prompt,
            completion_tokens: self.completion,
            total_tokens: self.total(),
            prompt_tokens_details: CachedTokens {
                cached_tokens: self.cached_prompt,
                cache_write_tokens: self.cache_write,
            },
            completion_tokens_details: ReasoningTokens {
                reasoning_tokens: self.reasoning,
            },
            cost: cost.usd(),
            estimated: self.estimated,
        }
    }
}

/// OpenAI's `usage` object read one member at a time, in the pass that scans the answer
/// around it ([`Field::object`]). Visited in place, not collected: each later duplicate
/// overwrites (issue 12: the collected fields were three allocations a response). What the
/// members say together (`total_tokens` against the rest) is settled in [`Self::usage`], once
/// all are read, since they come in any order.
#[derive(Debug, Default)]
pub struct OpenAiUsageReader {
    read: Usage,
    total: Option<u64>,
    cache_hits: u64,
}

impl OpenAiUsageReader {
    /// One member read into the usage; `None` only where the scan itself fails.
    pub fn read_member(&mut self, key: &str, field: Field<'_, '_>) -> Option<()> {
        let read = &mut self.read;
        match key {
            "prompt_tokens" => read.prompt = count(field.raw()?),
            "completion_tokens" => read.completion = count(field.raw()?),
            "total_tokens" => self.total = field.raw()?.parse().ok(),
            "prompt_cache_hit_tokens" => self.cache_hits = count(field.raw()?),
            "prompt_tokens_details" => {
                [read.cached_prompt, read.cache_write] =
                    nested_counts(field, ["cached_tokens", "cache_write_tokens"])?
            }
            "completion_tokens_details" => {
                [read.reasoning] = nested_counts(field, ["reasoning_tokens"])?
            }
            // Left unread: the scan skips it.
            _ => {}
        }
        Some(())
    }

    /// The usage the members read so far say, as [`Usage::from_openai`] reads it.
    pub fn usage(&self) -> Usage {
        self.read
            .with_total(self.total)
            .with_cache_hits(self.cache_hits)
    }
}

#[derive(Debug, Serialize)]
pub struct OpenAiUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: CachedTokens,
    completion_tokens_details: ReasoningTokens,
    cost: f64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    estimated: bool,
}

impl OpenAiUsage {
    /// The same bytes as `serde_json::to_writer`, written directly: this object goes into
    /// every non-streamed answer, and serde's generic path cost ~3k instructions (issue 12).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let mut n = itoa::Buffer::new();
        let mut put = |key: &str, value: u64, out: &mut Vec<u8>| {
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(n.format(value).as_bytes());
        };
        put("{\"prompt_tokens\":", self.prompt_tokens, out);
        put(",\"completion_tokens\":", self.completion_tokens, out);
        put(",\"total_tokens\":", self.total_tokens, out);
        put(
            ",\"prompt_tokens_details\":{\"cached_tokens\":",
            self.prompt_tokens_details.cached_tokens,
            out,
        );
        if self.prompt_tokens_details.cache_write_tokens != 0 {
            put(
                ",\"cache_write_tokens\":",
                self.prompt_tokens_details.cache_write_tokens,
                out,
            );
        }
        put(
            "},\"completion_tokens_details\":{\"reasoning_tokens\":",
            self.completion_tokens_details.reasoning_tokens,
            out,
        );
        out.extend_from_slice(b"},\"cost\":");
        // serde_json's own float format (writing into a Vec cannot fail).
        let _ = serde_json::to_writer(&mut *out, &self.cost);
        if self.estimated {
            out.extend_from_slice(b",\"estimated\":true");
        }
        out.push(b'}');
    }
}

/// `cache_write_tokens` (OpenRouter's name) only when the provider wrote to its cache.
#[derive(Debug, Serialize)]
struct CachedTokens {
    cached_tokens: u64,
    #[serde(skip_serializing_if = "is_zero")]
    cache_write_tokens: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Serialize)]
struct ReasoningTokens {
    reasoning_tokens: u64,
}

/// An amount charged, in pico-USD (exact integer arithmetic end to end).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cost(pub u128);

impl Cost {
    /// Provider cost plus the gateway's fee (percent), rounded up to the pico-USD.
    pub fn with_fee(provider_pico: u128, fee_percent: f64) -> Cost {
        if fee_percent <= 0.0 {
            return Cost(provider_pico);
        }
        // The fee in millionths of a percent keeps the arithmetic integral.
        let fee_micro_pct = (fee_percent * 1_000_000.0).round() as u128;
        let fee = (provider_pico * fee_micro_pct).div_ceil(100 * 1_000_000);
        Cost(provider_pico + fee)
    }

    pub fn usd(&self) -> f64 {
        self.0 as f64 / PICO_USD_PER_USD as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_openai_usage() {
        let u = Usage::from_openai(&json!({"prompt_tokens": 10, "completion_tokens": 5,
            "prompt_tokens_details": {"cached_tokens": 4}, "completion_tokens_details": {"reasoning_tokens": 2}}))
        .unwrap();
        assert_eq!(
            (u.prompt, u.completion, u.cached_prompt, u.reasoning),
            (10, 5, 4, 2)
        );
        assert!(Usage::from_openai(&Value::Null).is_none());
    }

    #[test]
    fn reads_raw_usage_like_the_tree_reader() {
        for raw in [
            r#"{"prompt_tokens": 10, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 4}, "completion_tokens_details": {"reasoning_tokens": 2}}"#,
            r#"{"prompt_tokens": 10, "completion_tokens": null, "extra": [1]}"#,
            r#"{"prompt_tokens": "10", "completion_tokens": 5.5, "prompt_tokens_details": null}"#,
            r#"{}"#,
            r#"null"#,
            r#"[1]"#,
            r#"[1, 2, null, null]"#,
            r#"{"prompt_tokens": 1, "prompt_tokens": 7, "completion_tokens": -3}"#,
            r#"{"prompt_tokens": 1e3, "completion_tokens": 18446744073709551616}"#,
            r#"{"prompt_tokens": 18446744073709551615, "completion_tokens": 0,
                "completion_tokens_details": {"reasoning_tokens": 2, "reasoning_tokens": 3},
                "prompt_tokens_details": [4]}"#,
            r#"{"prompt_tokens_details": {"cached_tokens": 4}, "prompt_tokens_details": null}"#,
            r#"{"prompt_tokens_details": {"cached_tokens": 4, "cached_tokens": "x"}, "prompt_tokens": 9}"#,
            r#"{"completion_tokens_details": {"reasoning_tokens": 1}, "completion_tokens": 2,
                "completion_tokens_details": {"other": 1}}"#,
            // xAI's shape (reasoning apart from completion), its total first or last, and
            // totals that do not say so.
            r#"{"prompt_tokens": 10120, "completion_tokens": 1499, "total_tokens": 14428,
                "completion_tokens_details": {"reasoning_tokens": 2809}}"#,
            r#"{"total_tokens": 14, "prompt_tokens": 10, "completion_tokens": 1,
                "completion_tokens_details": {"reasoning_tokens": 3}}"#,
            r#"{"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14,
                "completion_tokens_details": {"reasoning_tokens": 3}}"#,
            r#"{"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": "14",
                "completion_tokens_details": {"reasoning_tokens": 3}}"#,
            r#"{"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 14.0,
                "completion_tokens_details": {"reasoning_tokens": 3}}"#,
            r#"{"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 14, "total_tokens": 11,
                "completion_tokens_details": {"reasoning_tokens": 3}}"#,
            r#"{"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11, "total_tokens": 14,
                "completion_tokens_details": {"reasoning_tokens": 3}}"#,
            r#"{"prompt_tokens": 18446744073709551615, "completion_tokens": 1,
                "total_tokens": 18446744073709551615, "completion_tokens_details": {"reasoning_tokens": 3}}"#,
            // DeepSeek's cache hits, alone, beside OpenAI's count, odd or repeated.
            r#"{"prompt_tokens": 100, "prompt_cache_hit_tokens": 64, "prompt_cache_miss_tokens": 36}"#,
            r#"{"prompt_tokens": 100, "prompt_tokens_details": {"cached_tokens": 64}, "prompt_cache_hit_tokens": 64}"#,
            r#"{"prompt_cache_hit_tokens": 9, "prompt_tokens": 100, "prompt_tokens_details": {"cached_tokens": 3}}"#,
            r#"{"prompt_tokens": 100, "prompt_cache_hit_tokens": "64", "prompt_cache_hit_tokens": 5}"#,
            r#"{"prompt_tokens": 100, "prompt_cache_hit_tokens": 7, "prompt_cache_hit_tokens": null}"#,
            // OpenRouter's cache writes, beside reads, odd, repeated or in an odd object.
            r#"{"prompt_tokens": 100, "prompt_tokens_details": {"cached_tokens": 20, "cache_write_tokens": 70}}"#,
            r#"{"prompt_tokens_details": {"cache_write_tokens": 70, "cached_tokens": 20, "cache_write_tokens": 5}}"#,
            r#"{"prompt_tokens_details": {"cache_write_tokens": "70"}, "prompt_tokens": 100}"#,
            r#"{"prompt_tokens_details": {"cache_write_tokens": 70}, "prompt_tokens_details": {"cached_tokens": 1}}"#,
            r#"{"prompt_tokens_details": {"cache_write_tokens": 70, "x": [1, {"cache_write_tokens": 9}]}}"#,
        ] {
            let tree: Value = serde_json::from_str(raw).unwrap();
            assert_eq!(
                Usage::from_openai_raw(raw),
                Usage::from_openai(&tree),
                "{raw}"
            );
        }
        // Cut short: nothing is read, not the fields before the cut.
        for raw in [r#"{"prompt_tokens": 1,"#, r#"{"prompt_tokens": 1} x"#] {
            assert_eq!(Usage::from_openai_raw(raw), None, "{raw}");
        }
    }

    #[test]
    fn reasoning_xai_counts_apart_from_completion_is_billed_as_completion() {
        // Grok: completion_tokens without the reasoning, total_tokens with it.
        let raw = r#"{"prompt_tokens":10120,"completion_tokens":1499,"total_tokens":14428,
            "completion_tokens_details":{"reasoning_tokens":2809}}"#;
        let u = Usage::from_openai_raw(raw).unwrap();
        assert_eq!((u.prompt, u.completion, u.reasoning), (10120, 4308, 2809));
        assert_eq!(u.total(), 14428, "the client's total is the provider's");
        let price = Price {
            prompt: 1,
            completion: 1_000,
            cached_prompt: None,
            reasoning: None,
            cache_write: None,
        };
        assert_eq!(u.cost_pico(&price), 10120 + 4308 * 1_000);
        let json = u.to_openai_json(Cost(0));
        assert_eq!(
            (&json["completion_tokens"], &json["total_tokens"]),
            (&json!(4308), &json!(14428))
        );

        // OpenAI's shape (reasoning inside completion) and a total that says neither: as read.
        for raw in [
            r#"{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,"completion_tokens_details":{"reasoning_tokens":2}}"#,
            r#"{"prompt_tokens":10,"completion_tokens":5,"total_tokens":99,"completion_tokens_details":{"reasoning_tokens":2}}"#,
            r#"{"prompt_tokens":10,"completion_tokens":5,"completion_tokens_details":{"reasoning_tokens":2}}"#,
        ] {
            let u = Usage::from_openai_raw(raw).unwrap();
            assert_eq!((u.completion, u.reasoning), (5, 2), "{raw}");
        }
    }

    #[test]
    fn writes_the_usage_object_as_serde_would() {
        for (usage, pico) in [
            (Usage::default(), 0u128),
            (
                Usage {
                    prompt: 12,
                    completion: 7,
                    cached_prompt: 3,
                    reasoning: 1,
                    cache_write: 2,
                    estimated: true,
                },
                1_500_000,
            ),
            (
                Usage {
                    prompt: u64::MAX,
                    completion: 0,
                    ..Usage::default()
                },
                u128::MAX,
            ),
            (Usage::default(), 123_456_789_012_345),
        ] {
            let openai = usage.to_openai(Cost(pico));
            let mut direct = Vec::new();
            openai.write_json(&mut direct);
            assert_eq!(
                String::from_utf8(direct).unwrap(),
                serde_json::to_string(&openai).unwrap()
            );
        }
    }

    #[test]
    fn writes_openai_usage_with_cost() {
        let u = Usage {
            prompt: 3,
            completion: 2,
            estimated: true,
            ..Usage::default()
        };
        assert_eq!(
            u.to_openai_json(Cost(1_500_000)),
            json!({"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5,
                   "prompt_tokens_details": {"cached_tokens": 0},
                   "completion_tokens_details": {"reasoning_tokens": 0},
                   "cost": 0.0000015, "estimated": true})
        );
    }

    #[test]
    fn reads_and_writes_openrouters_cache_write_tokens() {
        let raw = r#"{"prompt_tokens": 1000, "completion_tokens": 10,
            "prompt_tokens_details": {"cached_tokens": 200, "cache_write_tokens": 700}}"#;
        let u = Usage::from_openai_raw(raw).unwrap();
        assert_eq!((u.prompt, u.cached_prompt, u.cache_write), (1000, 200, 700));
        assert_eq!(
            u.to_openai_json(Cost(0))["prompt_tokens_details"],
            json!({"cached_tokens": 200, "cache_write_tokens": 700})
        );
    }

    #[test]
    fn costs_cache_writes_at_the_cache_write_price_or_the_prompt_price() {
        let mut price = Price {
            prompt: 3_000_000,
            completion: 15_000_000,
            cached_prompt: Some(300_000),
            reasoning: None,
            cache_write: Some(3_750_000),
        };
        let u = Usage {
            prompt: 10_000,
            completion: 100,
            cached_prompt: 2_000,
            cache_write: 6_000,
            ..Usage::default()
        };
        // 2,000 neither read nor written, 2,000 read, 6,000 written, 100 out.
        assert_eq!(
            u.cost_pico(&price),
            2_000 * 3_000_000 + 2_000 * 300_000 + 6_000 * 3_750_000 + 100 * 15_000_000
        );
        price.cache_write = None;
        assert_eq!(
            u.cost_pico(&price),
            8_000 * 3_000_000 + 2_000 * 300_000 + 100 * 15_000_000
        );
        // Counts beyond the prompt are capped by it: reads first, then writes.
        price.cache_write = Some(3_750_000);
        let over = Usage {
            prompt: 100,
            cached_prompt: 40,
            cache_write: 500,
            ..Usage::default()
        };
        assert_eq!(over.cost_pico(&price), 40 * 300_000 + 60 * 3_750_000);
        let huge = Usage {
            prompt: u64::MAX,
            completion: u64::MAX,
            cache_write: u64::MAX,
            ..Usage::default()
        };
        let max = Price {
            prompt: u64::MAX,
            completion: u64::MAX,
            cached_prompt: None,
            reasoning: None,
            cache_write: Some(u64::MAX),
        };
        assert_eq!(huge.cost_pico(&max), u128::MAX, "saturates");
    }

    #[test]
    fn costs_each_token_kind_at_its_price() {
        let price = Price {
            prompt: 150_000,
            completion: 600_000,
            cached_prompt: Some(75_000),
            reasoning: None,
            cache_write: None,
        };
        let u = Usage {
            prompt: 1000,
            completion: 100,
            cached_prompt: 400,
            reasoning: 30,
            cache_write: 0,
            estimated: false,
        };
        // 600 fresh × 0.15/M + 400 cached × 0.075/M + 100 completion × 0.60/M
        assert_eq!(
            u.cost_pico(&price),
            600 * 150_000 + 400 * 75_000 + 100 * 600_000
        );
        let c = Cost::with_fee(u.cost_pico(&price), 5.0);
        assert_eq!(c.0, 180_000_000 + 9_000_000);
        assert!((c.usd() - 0.000189).abs() < 1e-15);
    }
}
