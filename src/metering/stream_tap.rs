//! Zero-copy metering of an OpenAI-dialect stream.
//!
//! Each upstream chunk is forwarded as the same `Bytes` (or a slice of it) whenever it holds
//! whole events, which is how providers send them. Only two kinds of event are taken out: the
//! provider's usage-only chunk (`choices: []`) and `data: [DONE]`, because the gateway ends
//! every stream with its own usage chunk (catalog model, provider, cost) and its own `[DONE]`.
//! An event split across chunks is held in a small carry buffer until it is whole; that carry
//! is the only copy made. Only events that mention usage, a finish reason or an error are
//! parsed as JSON.

use bytes::{Bytes, BytesMut};
use memchr::memmem::Finder;
use once_cell::sync::Lazy;
use serde_json::Value;
use std::ops::Range;

use super::sse::{event_data, SseEvents};
use super::Usage;

/// An event that never ends must not grow memory without bound: past this size the carry is
/// forwarded as it is.
const MAX_CARRY: usize = 1 << 20;

static USAGE: Lazy<Finder<'static>> = Lazy::new(|| Finder::new(b"\"usage\""));
static FINISH: Lazy<Finder<'static>> = Lazy::new(|| Finder::new(b"\"finish_reason\""));
static ERROR: Lazy<Finder<'static>> = Lazy::new(|| Finder::new(b"\"error\""));
/// The keys whose text is generated tokens, for the estimate: `content"` is the answer's
/// `"content"` and, by its end, `"reasoning_content"` (DeepSeek, vLLM, xAI stream a reasoning
/// model's thinking so); `"reasoning"` is OpenRouter's and Ollama's name for it. Thinking left
/// out was unbilled when a stream was cut before the provider's usage came.
static CONTENT: Lazy<Finder<'static>> = Lazy::new(|| Finder::new(b"content\""));
static ARGUMENTS: Lazy<Finder<'static>> = Lazy::new(|| Finder::new(b"\"arguments\""));
static REASONING: Lazy<Finder<'static>> = Lazy::new(|| Finder::new(b"\"reasoning\""));

#[derive(Debug, Default)]
pub struct OpenAiStreamTap {
    carry: BytesMut,
    /// The provider's reported usage, from whichever event carried it.
    pub usage: Option<Usage>,
    pub finish_reason: Option<String>,
    /// An `error` object the provider sent inside the stream.
    pub upstream_error: Option<Value>,
    /// Events with non-empty content or tool-call arguments (the estimate's basis).
    pub content_deltas: u64,
    pub saw_done: bool,
    /// The provider's usage-only chunk (`choices: []`) went by: by OpenAI's contract the
    /// last event before `[DONE]`, so the answer is whole.
    pub saw_usage_chunk: bool,
}

/// What to do with one event.
enum Disposition {
    Forward,
    Drop,
}

impl OpenAiStreamTap {
    pub fn new() -> OpenAiStreamTap {
        OpenAiStreamTap::default()
    }

    /// Meters one upstream chunk; returns the bytes to forward to the client.
    pub fn on_chunk(&mut self, chunk: Bytes) -> Bytes {
        let data = crate::metering::sse::after_carry(&mut self.carry, chunk);
        let mut events = SseEvents::new(&data);
        let mut kept: Vec<Range<usize>> = Vec::new();
        let mut dropped_any = false;
        for range in events.by_ref() {
            match self.inspect(&data[range.clone()]) {
                Disposition::Forward => push_range(&mut kept, range),
                Disposition::Drop => dropped_any = true,
            }
        }
        let consumed = events.consumed();
        if consumed < data.len() {
            if data.len() - consumed > MAX_CARRY {
                push_range(&mut kept, consumed..data.len());
            } else {
                self.carry.extend_from_slice(&data[consumed..]);
            }
        }
        if !dropped_any && kept.len() <= 1 {
            return kept
                .first()
                .map_or_else(Bytes::new, |r| data.slice(r.clone()));
        }
        match kept.as_slice() {
            [] => Bytes::new(),
            [only] => data.slice(only.clone()),
            many => {
                let mut out = BytesMut::with_capacity(many.iter().map(|r| r.len()).sum());
                for r in many {
                    out.extend_from_slice(&data[r.clone()]);
                }
                out.freeze()
            }
        }
    }

    /// The stream ended: a trailing event without its blank line is still read and forwarded.
    pub fn finish(&mut self) -> Bytes {
        if self.carry.is_empty() {
            return Bytes::new();
        }
        let rest = self.carry.split().freeze();
        match self.inspect(&rest) {
            Disposition::Forward => rest,
            Disposition::Drop => Bytes::new(),
        }
    }

    fn inspect(&mut self, event: &[u8]) -> Disposition {
        let Some(payload) = event_data(event) else {
            return Disposition::Forward;
        };
        let payload = payload.as_ref();
        if payload.trim_ascii() == b"[DONE]" {
            self.saw_done = true;
            return Disposition::Drop;
        }
        if has_text_after(&CONTENT, payload)
            || has_text_after(&ARGUMENTS, payload)
            || has_text_after(&REASONING, payload)
        {
            self.content_deltas += 1;
        }
        let usage_present = USAGE
            .find(payload)
            .is_some_and(|at| !value_is_null(&payload[at + 7..]));
        // `""` as well as null: some hosts (older Ollama, SGLang) send it on every chunk.
        let finish_present = FINISH.find(payload).is_some_and(|at| {
            let value = value_after(&payload[at + 15..]);
            !(value.starts_with(b"null") || value.starts_with(b"\"\""))
        });
        let error_present = ERROR.find(payload).is_some();
        if !(usage_present || finish_present || error_present) {
            return Disposition::Forward;
        }
        let Ok(json) = serde_json::from_slice::<Value>(payload) else {
            return Disposition::Forward;
        };
        if let Some(reason) = json
            .pointer("/choices/0/finish_reason")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty())
        {
            self.finish_reason = Some(reason.to_string());
        }
        if let Some(err) = json.get("error").filter(|e| !e.is_null()) {
            self.upstream_error = Some(err.clone());
        }
        // Moonshot (Kimi) puts a stream's usage on its finishing choice, not beside `choices`.
        let usage = json
            .get("usage")
            .filter(|u| !u.is_null())
            .or_else(|| json.pointer("/choices/0/usage"));
        if let Some(usage) = usage.and_then(Usage::from_openai) {
            self.usage = Some(usage);
            let no_choices = json
                .get("choices")
                .is_none_or(|c| c.as_array().is_some_and(Vec::is_empty));
            if no_choices {
                self.saw_usage_chunk = true;
                return Disposition::Drop;
            }
        }
        Disposition::Forward
    }
}

/// Merges adjacent ranges so a run of kept events is one slice.
fn push_range(kept: &mut Vec<Range<usize>>, range: Range<usize>) {
    match kept.last_mut() {
        Some(last) if last.end == range.start => last.end = range.end,
        _ => kept.push(range),
    }
}

/// After a `"key"` match: the bytes from its value on.
fn value_after(after_key: &[u8]) -> &[u8] {
    let rest = after_key.trim_ascii_start();
    rest.strip_prefix(b":").unwrap_or(rest).trim_ascii_start()
}

/// After a `"key"` match: is the value `null`?
fn value_is_null(after_key: &[u8]) -> bool {
    value_after(after_key).starts_with(b"null")
}

/// Is any of the `"key"` matches a key (a colon follows, with or without spaces) whose value
/// is a non-empty string? Every match is tried: `"content":""` often comes beside the
/// `"reasoning_content"` that holds the text.
fn has_text_after(finder: &Finder<'_>, payload: &[u8]) -> bool {
    finder.find_iter(payload).any(|at| {
        let rest = payload[at + finder.needle().len()..].trim_ascii_start();
        rest.strip_prefix(b":")
            .map(<[u8]>::trim_ascii_start)
            .is_some_and(|value| value.starts_with(b"\"") && value.get(1) != Some(&b'"'))
    })
}

#[cfg(test)]
mod tests;
