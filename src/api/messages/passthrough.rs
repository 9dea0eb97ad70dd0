//! An Anthropic client in front of an Anthropic provider: nothing is converted. The request
//! is the client's own body with the model rewritten, and the answer goes back as the provider
//! sent it; the gateway only reads usage and the stop reason on the way through, and stamps
//! what every answer of the door carries (generation id, catalog model, provider, cost).

use bytes::{Bytes, BytesMut};
use serde_json::{json, Value};

use crate::api::{ApiError, TopLevelFields};
use crate::catalog::Price;
use crate::dialects::common::MAX_EVENT_BYTES;
use crate::metering::sse::{event_data, event_name, SseEvents};
use crate::metering::{Cost, Usage};

/// The client's Messages body for `upstream_model`: `model` rewritten and the gateway's own
/// fields (`models`, `provider`, `session_id`, ...) removed; every other value is copied as the
/// raw bytes the client sent. (The OpenAI dialect's rewrite does exactly this when it is not
/// asked to add stream options.)
pub fn passthrough_body(fields: &TopLevelFields, upstream_model: &str) -> Bytes {
    crate::dialects::openai::chat_request_body(fields, upstream_model, false)
}

/// Anthropic's counts; `input_tokens` excludes cache reads and writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counts {
    input: u64,
    output: u64,
    cache_read: u64,
    cache_creation: u64,
}

impl Counts {
    /// Stream events repeat counts cumulatively: the latest of each wins.
    fn merge(&mut self, usage: &Value) {
        for (key, slot) in [
            ("input_tokens", &mut self.input),
            ("output_tokens", &mut self.output),
            ("cache_read_input_tokens", &mut self.cache_read),
            ("cache_creation_input_tokens", &mut self.cache_creation),
        ] {
            if let Some(n) = usage.get(key).and_then(Value::as_u64) {
                *slot = n;
            }
        }
    }

    fn normalised(&self) -> Usage {
        Usage {
            prompt: self
                .input
                .saturating_add(self.cache_read)
                .saturating_add(self.cache_creation),
            completion: self.output,
            cached_prompt: self.cache_read,
            cache_write: self.cache_creation,
            reasoning: 0,
            estimated: false,
        }
    }
}

/// OpenAI's `finish_reason` for an Anthropic `stop_reason` (what the ledger records).
fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop",
    }
}

/// What the gateway writes into a relayed stream, as the converted Messages stream and the
/// whole passthrough message carry it (DESIGN §3): the generation id and catalog model in
/// `message_start`, the provider and `usage.cost` (USD) in `message_delta`.
#[derive(Clone, Debug)]
pub struct StreamStamp {
    pub id: String,
    pub model: String,
    pub provider: String,
    /// The serving endpoint's price and the gateway's fee: the cost the record is charged.
    pub price: Price,
    pub fee_percent: f64,
}

/// Reads an Anthropic stream as it passes. Whole events go on as the provider sent them (the
/// chunk itself when it ends on an event boundary), but for the two the stamp rewrites; a
/// partial event waits for its end, so an event is never sent half as it came.
#[derive(Debug, Default)]
pub struct AnthropicStreamTap {
    /// A partial event, held back until its end arrives.
    carry: BytesMut,
    stamp: Option<StreamStamp>,
    counts: Option<Counts>,
    /// A `message_delta` carried usage: its `output_tokens` is the answer's count, where
    /// `message_start`'s is a placeholder (1).
    final_counts: bool,
    stop_reason: Option<String>,
    error: Option<Value>,
    content_deltas: u64,
    saw_message_stop: bool,
}

impl AnthropicStreamTap {
    pub fn new() -> AnthropicStreamTap {
        AnthropicStreamTap::default()
    }

    /// A tap that stamps the stream it relays.
    pub fn stamped(stamp: StreamStamp) -> AnthropicStreamTap {
        AnthropicStreamTap {
            stamp: Some(stamp),
            ..AnthropicStreamTap::default()
        }
    }

    /// Meters one upstream chunk; returns its whole events for the client.
    pub fn on_chunk(&mut self, chunk: Bytes) -> Bytes {
        let data = crate::metering::sse::after_carry(&mut self.carry, chunk);
        let mut events = SseEvents::new(&data);
        // Built only once an event is rewritten; until then the output is a slice of `data`.
        let mut rebuilt: Option<BytesMut> = None;
        let mut copied = 0;
        for range in events.by_ref() {
            if let Some(stamped) = self.inspect(&data[range.clone()]) {
                let out = rebuilt.get_or_insert_with(|| BytesMut::with_capacity(data.len() + 64));
                out.extend_from_slice(&data[copied..range.start]);
                out.extend_from_slice(&stamped);
                copied = range.end;
            }
        }
        let mut end = events.consumed();
        // An event past the bound is not metered; its bytes go on as they came.
        if data.len() - end > MAX_EVENT_BYTES {
            end = data.len();
        } else {
            self.carry.extend_from_slice(&data[end..]);
        }
        match rebuilt {
            None => data.slice(..end),
            Some(mut out) => {
                out.extend_from_slice(&data[copied..end]);
                out.freeze()
            }
        }
    }

    /// The stream ended: a last event without its blank line is still read, and sent.
    pub fn finish(&mut self) -> Bytes {
        let rest = self.carry.split().freeze();
        if rest.iter().all(u8::is_ascii_whitespace) {
            return rest;
        }
        self.inspect(&rest).map_or(rest, Bytes::from)
    }

    /// The provider's usage, normalised as OpenAI counts it (prompt includes cache reads).
    /// A stream cut off before Anthropic's final count (the client left, the provider reset
    /// or failed) keeps its reported prompt, and its output is estimated from the content
    /// deltas that went by: DESIGN §4, a client that leaves pays for what was generated.
    pub fn usage(&self) -> Option<Usage> {
        let mut usage = self.counts?.normalised();
        if !self.final_counts {
            usage.completion = usage.completion.max(self.content_deltas);
            usage.estimated = true;
        }
        Some(usage)
    }

    /// The stop reason in OpenAI's terms.
    pub fn finish_reason(&self) -> Option<&'static str> {
        self.stop_reason.as_deref().map(finish_reason)
    }

    /// Anthropic's own `stop_reason`.
    pub fn stop_reason(&self) -> Option<&str> {
        self.stop_reason.as_deref()
    }

    /// The `error` object of an `error` event.
    pub fn error(&self) -> Option<&Value> {
        self.error.as_ref()
    }

    /// `content_block_delta` events seen: the estimate's basis when no usage came.
    pub fn content_deltas(&self) -> u64 {
        self.content_deltas
    }

    /// Whether the stream ended as Anthropic ends a whole message.
    pub fn saw_message_stop(&self) -> bool {
        self.saw_message_stop
    }

    /// Reads one whole event; returns it rewritten when the stamp changes it.
    fn inspect(&mut self, event: &[u8]) -> Option<Vec<u8>> {
        let name = event_name(event).map(<[u8]>::trim_ascii);
        match name {
            Some(b"content_block_delta") => self.content_deltas += 1,
            Some(b"message_stop") => self.saw_message_stop = true,
            // Only these carry what metering needs; the rest are not parsed.
            Some(b"message_start" | b"message_delta" | b"error") | None => {}
            Some(_) => return None,
        }
        let data = event_data(event)?;
        let mut v = serde_json::from_slice::<Value>(&data).ok()?;
        match v.get("type").and_then(Value::as_str) {
            Some("message_start") => {
                if let Some(u) = v.pointer("/message/usage").filter(|u| u.is_object()) {
                    self.counts.get_or_insert_default().merge(u);
                }
                let stamp = self.stamp.as_ref()?;
                let message = v.get_mut("message").filter(|m| m.is_object())?;
                message["id"] = json!(stamp.id);
                message["model"] = json!(stamp.model);
                return Some(event_bytes(&v));
            }
            Some("message_delta") => {
                if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
                    self.counts.get_or_insert_default().merge(u);
                    self.final_counts = true;
                }
                if let Some(r) = v.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.stop_reason = Some(r.to_string());
                }
                let stamp = self.stamp.as_ref()?;
                let usage = self.usage().filter(|_| v["usage"].is_object())?;
                let cost = Cost::with_fee(usage.cost_pico(&stamp.price), stamp.fee_percent);
                v["usage"]["cost"] = json!(cost.usd());
                v["provider"] = json!(stamp.provider);
                return Some(event_bytes(&v));
            }
            Some("error") => self.error = Some(v.get("error").cloned().unwrap_or(v)),
            Some("content_block_delta") if name.is_none() => self.content_deltas += 1,
            Some("message_stop") => self.saw_message_stop = true,
            _ => {}
        }
        None
    }
}

/// An Anthropic event, named after its `type`.
fn event_bytes(data: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    super::write_event(&mut out, data);
    out
}

/// A whole (non-stream) Anthropic message from an Anthropic provider.
#[derive(Debug)]
pub struct AnthropicMessage {
    value: Value,
    /// `None` when the provider reported no usage (the proxy estimates).
    pub usage: Option<Usage>,
    /// In OpenAI's terms, for the ledger.
    pub finish_reason: Option<&'static str>,
}

impl AnthropicMessage {
    /// The body for the client: the provider's message with the generation id, the catalog
    /// model, the provider and `usage.cost` (USD) stamped on; all else as the provider sent it.
    pub fn stamp(mut self, id: &str, model: &str, provider: &str, cost: Cost) -> Bytes {
        self.value["id"] = json!(id);
        self.value["model"] = json!(model);
        self.value["provider"] = json!(provider);
        if !self.value["usage"].is_object() {
            self.value["usage"] = json!({});
        }
        self.value["usage"]["cost"] = json!(cost.usd());
        Bytes::from(self.value.to_string())
    }
}

/// Reads an Anthropic provider's 200 answer. A body that is not a message is a 502.
pub fn passthrough_message(body: &[u8]) -> Result<AnthropicMessage, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .ok()
        .filter(|v: &Value| v.get("type").and_then(Value::as_str) == Some("message"))
        .ok_or_else(|| {
            ApiError::bad_gateway(
                "the provider answered with a body that is not an Anthropic message",
            )
        })?;
    let usage = value.get("usage").filter(|u| u.is_object()).map(|u| {
        let mut c = Counts::default();
        c.merge(u);
        c.normalised()
    });
    let finish_reason = value
        .get("stop_reason")
        .and_then(Value::as_str)
        .map(finish_reason);
    Ok(AnthropicMessage {
        value,
        usage,
        finish_reason,
    })
}
