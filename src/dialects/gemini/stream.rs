//! Gemini `streamGenerateContent?alt=sse` -> OpenAI `chat.completion.chunk` events, one
//! upstream event at a time (a partial event waits in a carry buffer for the rest).
//!
//! Each Gemini event is a whole `GenerateContentResponse` holding the new parts only:
//! the first one also yields the `role` chunk; text parts become `content`, thought parts
//! `reasoning`, function calls whole `tool_calls` entries (Gemini does not split arguments);
//! `finishReason` (or a prompt `blockReason`) becomes the finish chunk; `usageMetadata`,
//! cumulative, is recorded from the last event that has it; an `error` object is recorded.

use bytes::{Bytes, BytesMut};
use serde_json::{json, Value};

use super::response::{call_id, call_id_prefix, finish_reason, signature_detail, usage};
use crate::dialects::common::{tool_call_json, ChunkWriter, SseCarry, MAX_EVENT_BYTES};
use crate::metering::sse::event_data;
use crate::metering::Usage;

#[derive(Debug)]
pub struct StreamConverter {
    carry: SseCarry,
    writer: ChunkWriter,
    started: bool,
    tool_calls: usize,
    /// What this answer's call ids start with (from the first event's `responseId`).
    call_prefix: String,
    /// What names the calls when the answer has no `responseId` (the generation id).
    fallback_id: String,
    reasoning_details: usize,
    finish_reason: Option<&'static str>,
    usage: Option<Usage>,
    error: Option<Value>,
}

impl StreamConverter {
    pub fn new(created_unix: u64) -> Self {
        StreamConverter {
            carry: SseCarry::default(),
            writer: ChunkWriter {
                created: created_unix,
                ..ChunkWriter::default()
            },
            started: false,
            tool_calls: 0,
            call_prefix: String::new(),
            fallback_id: String::new(),
            reasoning_details: 0,
            finish_reason: None,
            usage: None,
            error: None,
        }
    }

    /// Names tool calls after `generation_id` when Gemini gives the answer no `responseId`
    /// (unique and repeatable; without it such ids are random).
    pub fn with_generation_id(mut self, generation_id: &str) -> Self {
        self.fallback_id = generation_id.to_string();
        self
    }

    /// OpenAI events for every upstream event this chunk completes.
    pub fn on_chunk(&mut self, chunk: &[u8]) -> Bytes {
        let mut out = BytesMut::new();
        let mut carry = std::mem::take(&mut self.carry);
        let fits = carry.feed(chunk, |event| self.on_event(event, &mut out));
        self.carry = carry;
        if !fits {
            let message =
                format!("an upstream stream event was larger than {MAX_EVENT_BYTES} bytes");
            self.error = Some(json!({ "code": 502, "status": "INTERNAL", "message": message }));
        }
        out.freeze()
    }

    /// The stream ended: converts a last event that lacked its blank line. Never emits
    /// `[DONE]` or a usage chunk (the proxy ends every stream with its own).
    pub fn finish(&mut self) -> Bytes {
        let mut out = BytesMut::new();
        let mut carry = std::mem::take(&mut self.carry);
        carry.finish(|event| self.on_event(event, &mut out));
        out.freeze()
    }

    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    pub fn finish_reason(&self) -> Option<&str> {
        self.finish_reason
    }

    /// The `error` object of an error event (`{"code": 429, "status": ..., "message": ...}`).
    pub fn error(&self) -> Option<&Value> {
        self.error.as_ref()
    }

    fn on_event(&mut self, event: &[u8], out: &mut BytesMut) {
        let Some(data) = event_data(event) else {
            return;
        };
        let Ok(v @ Value::Object(_)) = serde_json::from_slice::<Value>(&data) else {
            log::debug!("gemini stream: skipping an event that is not a JSON object");
            return;
        };
        if let Some(error) = v.get("error") {
            self.error = Some(error.clone());
            return;
        }
        if !self.started {
            self.started = true;
            let s = |k: &str| {
                v.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            self.writer.id = s("responseId");
            self.call_prefix = call_id_prefix(&self.writer.id, &self.fallback_id);
            self.writer.model = s("modelVersion");
            self.writer
                .delta(out, json!({ "role": "assistant", "content": "" }));
        }
        let candidate = v.pointer("/candidates/0");
        let parts = candidate
            .and_then(|c| c.pointer("/content/parts"))
            .and_then(Value::as_array);
        for part in parts.into_iter().flatten() {
            self.part(part, out);
        }
        if let Some(meta) = v.get("usageMetadata").filter(|m| m.is_object()) {
            self.usage = Some(usage(meta));
        }
        if self.finish_reason.is_some() {
            return;
        }
        let native = candidate
            .and_then(|c| c.get("finishReason"))
            .and_then(Value::as_str);
        let blocked = v
            .pointer("/promptFeedback/blockReason")
            .and_then(Value::as_str);
        let finish = match (native, blocked) {
            (Some(native), _) => Some((finish_reason(native, self.tool_calls > 0), native)),
            (None, Some(reason)) => Some(("content_filter", reason)),
            (None, None) => None,
        };
        if let Some((reason, native)) = finish {
            self.finish_reason = Some(reason);
            self.writer.finish(out, reason, native);
        }
    }

    fn part(&mut self, part: &Value, out: &mut BytesMut) {
        if let Some(call) = part.get("functionCall") {
            let n = self.tool_calls;
            self.tool_calls += 1;
            let id = call_id(call, &self.call_prefix, n);
            let name = call.get("name").and_then(Value::as_str).unwrap_or_default();
            let args = call.get("args").cloned().unwrap_or_else(|| json!({}));
            let mut delta =
                json!({ "tool_calls": [tool_call_json(Some(n), &id, name, args.to_string())] });
            if let Some(sig) = part.get("thoughtSignature").and_then(Value::as_str) {
                delta["reasoning_details"] =
                    json!([signature_detail(sig, &id, self.reasoning_details)]);
                self.reasoning_details += 1;
            }
            self.writer.delta(out, delta);
        } else if let Some(text) = part
            .get("text")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            let key = if part.get("thought") == Some(&Value::Bool(true)) {
                "reasoning"
            } else {
                "content"
            };
            self.writer.delta(out, json!({ key: text }));
        }
    }
}
