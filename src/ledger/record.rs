//! One generation as the ledger keeps it, and its OpenRouter `/generation` shape.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::period::iso8601;
use crate::auth::KeyHash;
use crate::metering::{Cost, Usage};

/// One try of one (model, provider) candidate of the route plan.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub provider: String,
    /// The catalog id of the model tried (`openai/gpt-4o-mini`).
    pub model: String,
    /// What happened, in a word the proxy chooses: `ok`, `connect_error`, `timeout`, `429`...
    pub outcome: String,
    /// The upstream's HTTP status, if it answered at all.
    pub status: Option<u16>,
    pub latency_ms: u64,
}

/// `attempts` as the JSON array the ledger's `attempts` column holds: what serde_json writes
/// for them (field order, `null` status), without its serializer, which was a tenth of the
/// ledger's time per record (issue 12, perf at c=32).
pub fn write_attempts_json(attempts: &[Attempt], out: &mut Vec<u8>) {
    use crate::api::quote::push_json_str;
    let mut n = itoa::Buffer::new();
    out.push(b'[');
    for (i, a) in attempts.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"provider\":");
        push_json_str(out, &a.provider);
        out.extend_from_slice(b",\"model\":");
        push_json_str(out, &a.model);
        out.extend_from_slice(b",\"outcome\":");
        push_json_str(out, &a.outcome);
        out.extend_from_slice(b",\"status\":");
        match a.status {
            Some(status) => out.extend_from_slice(n.format(status).as_bytes()),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"latency_ms\":");
        out.extend_from_slice(n.format(a.latency_ms).as_bytes());
        out.push(b'}');
    }
    out.push(b']');
}

/// A record as queued for the ledger: shared with the gateway's map of recent ones, not
/// copied (issue 12).
pub type SharedRecord = std::sync::Arc<GenerationRecord>;

/// Everything the ledger keeps about one request, written once when it ends.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerationRecord {
    /// The `gen-...` id the client saw in `id` and `x-generation-id`.
    pub id: String,
    pub key_hash: KeyHash,
    pub key_name: String,
    /// Catalog id of the model that served (or was last tried).
    pub model: String,
    /// Provider id that served (or was last tried).
    pub provider: String,
    /// The provider's own model id.
    pub upstream_model: String,
    /// Every try, in order; the last one is the one that answered the client.
    pub attempts: Vec<Attempt>,
    /// Tokens by kind; `usage.estimated` says the gateway estimated them.
    pub usage: Usage,
    /// What the key is charged, fee included.
    pub cost: Cost,
    pub latency_ms: u64,
    pub ttft_ms: Option<u64>,
    pub finish_reason: Option<String>,
    /// The HTTP status the client got.
    pub status: u16,
    pub streamed: bool,
    /// The client went away before the end; `usage` is what was generated until then.
    pub cancelled: bool,
    pub error: Option<String>,
    /// Unix milliseconds when the request arrived.
    pub created_at: i64,
}

impl GenerationRecord {
    /// The `data` object of OpenRouter's `GET /api/v1/generation` answer, every field its
    /// schema requires present, plus ours: `attempts`, `estimated`, `key_name`,
    /// `upstream_model`, `ttft_ms`, `status`, `error`.
    ///
    /// `latency` is the whole request as the client saw it; `generation_time` is the part
    /// after the first token when that is known. Fields about things a self-hosted gateway
    /// does not have (apps, presets, workspaces, media counts, web search) are null rather
    /// than invented; `is_byok` is false because every provider key is the operator's.
    pub fn to_openrouter_json(&self) -> Value {
        let usd = self.cost.usd();
        let u = &self.usage;
        let generation_time = match self.ttft_ms {
            Some(ttft) => self.latency_ms.saturating_sub(ttft),
            None => self.latency_ms,
        };
        let provider_responses: Vec<Value> = self
            .attempts
            .iter()
            .map(|a| {
                json!({
                    "provider_name": a.provider,
                    "model_permaslug": a.model,
                    "status": a.status,
                    "latency": a.latency_ms,
                    "is_byok": false,
                })
            })
            .collect();
        // Three objects merged: one `json!` this size exceeds the macro recursion limit.
        let mut data = json!({
            "id": self.id,
            "upstream_id": null,
            "total_cost": usd,
            "cache_discount": null,
            "upstream_inference_cost": null,
            "created_at": iso8601(self.created_at),
            "model": self.model,
            "app_id": null,
            "streamed": self.streamed,
            "cancelled": self.cancelled,
            "provider_name": self.provider,
            "latency": self.latency_ms,
            "moderation_latency": null,
            "generation_time": generation_time,
            "finish_reason": self.finish_reason,
            "native_finish_reason": self.finish_reason,
            "service_tier": null,
        });
        let tokens = json!({
            "tokens_prompt": u.prompt,
            "tokens_completion": u.completion,
            "native_tokens_prompt": u.prompt,
            "native_tokens_completion": u.completion,
            "native_tokens_completion_images": null,
            "native_tokens_reasoning": u.reasoning,
            "native_tokens_cached": u.cached_prompt,
            "num_media_prompt": null,
            "num_input_audio_prompt": null,
            "num_media_completion": null,
            "num_search_results": null,
            "num_fetches": null,
            "web_search_engine": null,
            "origin": "",
            "usage": usd,
        });
        let provenance = json!({
            "is_byok": false,
            "external_user": null,
            "api_type": "completions",
            "preset_id": null,
            "router": null,
            "provider_responses": provider_responses,
            "user_agent": null,
            "http_referer": null,
            "data_region": "global",
            "workspace_id": null,
            "request_id": null,
            "session_id": null,
            // Ours.
            "key_name": self.key_name,
            "upstream_model": self.upstream_model,
            "attempts": self.attempts,
            "estimated": u.estimated,
            "ttft_ms": self.ttft_ms,
            "status": self.status,
            "error": self.error,
        });
        if let Some(data) = data.as_object_mut() {
            for part in [tokens, provenance] {
                if let Value::Object(fields) = part {
                    data.extend(fields);
                }
            }
        }
        data
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> GenerationRecord {
        GenerationRecord {
            id: "gen-1-abc".into(),
            key_hash: [7; 32],
            key_name: "alice".into(),
            model: "openai/gpt-4o-mini".into(),
            provider: "openai".into(),
            upstream_model: "gpt-4o-mini".into(),
            attempts: vec![
                Attempt {
                    provider: "groq".into(),
                    model: "openai/gpt-4o-mini".into(),
                    outcome: "429".into(),
                    status: Some(429),
                    latency_ms: 12,
                },
                Attempt {
                    provider: "openai".into(),
                    model: "openai/gpt-4o-mini".into(),
                    outcome: "ok".into(),
                    status: Some(200),
                    latency_ms: 800,
                },
            ],
            usage: Usage {
                prompt: 10,
                completion: 25,
                cached_prompt: 3,
                reasoning: 5,
                cache_write: 0,
                estimated: false,
            },
            cost: Cost(1_500_000_000),
            latency_ms: 1250,
            ttft_ms: Some(50),
            finish_reason: Some("stop".into()),
            status: 200,
            streamed: true,
            cancelled: false,
            error: None,
            created_at: 1_721_086_399_433,
        }
    }

    /// Every field OpenRouter's `GenerationResponse.data` lists under `required`.
    const REQUIRED: &[&str] = &[
        "id",
        "upstream_id",
        "total_cost",
        "cache_discount",
        "upstream_inference_cost",
        "created_at",
        "model",
        "app_id",
        "streamed",
        "cancelled",
        "provider_name",
        "latency",
        "moderation_latency",
        "generation_time",
        "finish_reason",
        "service_tier",
        "tokens_prompt",
        "tokens_completion",
        "native_tokens_prompt",
        "native_tokens_completion",
        "native_tokens_completion_images",
        "native_tokens_reasoning",
        "native_tokens_cached",
        "num_media_prompt",
        "num_input_audio_prompt",
        "num_media_completion",
        "num_search_results",
        "num_fetches",
        "web_search_engine",
        "origin",
        "usage",
        "is_byok",
        "native_finish_reason",
        "external_user",
        "api_type",
        "preset_id",
        "router",
        "provider_responses",
        "user_agent",
        "http_referer",
        "data_region",
        "workspace_id",
    ];

    #[test]
    fn openrouter_json_has_every_required_field() {
        let v = sample().to_openrouter_json();
        for field in REQUIRED {
            assert!(v.get(field).is_some(), "missing {field}");
        }
        assert_eq!(v["created_at"], "2024-07-15T23:33:19.433+00:00");
        assert_eq!(v["total_cost"], 0.0015);
        assert_eq!(v["usage"], 0.0015);
        assert_eq!(
            (v["tokens_prompt"].as_u64(), v["tokens_completion"].as_u64()),
            (Some(10), Some(25))
        );
        assert_eq!(
            (
                v["native_tokens_cached"].as_u64(),
                v["native_tokens_reasoning"].as_u64()
            ),
            (Some(3), Some(5))
        );
        assert_eq!(v["generation_time"], 1200);
        assert_eq!(v["provider_responses"][0]["status"], 429);
        assert_eq!(v["attempts"][1]["outcome"], "ok");
        assert_eq!(v["key_name"], "alice");
        assert_eq!(v["estimated"], false);
    }
}
