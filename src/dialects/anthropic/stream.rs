//! Anthropic Messages SSE -> OpenAI `chat.completion.chunk` events, one upstream event at a
//! time: a chunk's complete events are converted at once, a partial event waits in a carry
//! buffer for the rest, and nothing else of the stream is kept.
//!
//! | Anthropic event | OpenAI chunk |
//! |---|---|
//! | `message_start` | `delta: {role: assistant, content: ""}` (id, model and usage recorded) |
//! | `content_block_start` tool_use | `tool_calls: [{index, id, type, function: {name, arguments: ""}}]` |
//! | `text_delta` | `delta.content` |
//! | `input_json_delta` | `tool_calls: [{index, function: {arguments}}]` |
//! | `thinking_delta` / `signature_delta` | `delta.reasoning` + `reasoning_details` (OpenRouter) |
//! | `message_delta` | `finish_reason` + `native_finish_reason` (usage recorded) |
//! | `error` | nothing: recorded for [`StreamConverter::error`]; the proxy ends the stream |
//! | `message_stop` | nothing: recorded for [`StreamConverter::saw_message_stop`] |
//! | `ping` | `: keep-alive` (an SSE comment: the provider's sign of life reaches the client) |
//! | `content_block_stop`, unknown | nothing |

use bytes::{Bytes, BytesMut};
use serde_json::{json, Value};

use super::response::AnthropicUsage;
use super::{finish_reason, REASONING_FORMAT};
use crate::dialects::common::{tool_call_json, ChunkWriter, SseCarry, MAX_EVENT_BYTES};
use crate::metering::sse::{event_data, event_name};
use crate::metering::Usage;

/// What an Anthropic content block index stands for in the OpenAI stream.
#[derive(Clone, Copy, Debug)]
enum Block {
    Text,
    /// The OpenAI `tool_calls[].index` of this tool_use.
    Tool(usize),
    /// The `reasoning_details[].index` of this thinking block.
    Thinking(usize),
    Other,
}

#[derive(Debug)]
pub struct StreamConverter {
    carry: SseCarry,
    writer: ChunkWriter,
    usage: Option<AnthropicUsage>,
    /// (Anthropic block index, meaning); a handful per message.
    blocks: Vec<(u64, Block)>,
    tool_calls: usize,
    reasoning_blocks: usize,
    finish_reason: Option<&'static str>,
    error: Option<Value>,
    saw_message_stop: bool,
    /// A `message_delta` carried usage: the output count is the provider's final one
    /// (`message_start` says 1 output token whatever follows).
    saw_final_usage: bool,
}

impl StreamConverter {
    pub fn new(created_unix: u64) -> Self {
        StreamConverter {
            carry: SseCarry::default(),
            writer: ChunkWriter {
                created: created_unix,
                ..ChunkWriter::default()
            },
            usage: None,
            blocks: Vec::new(),
            tool_calls: 0,
            reasoning_blocks: 0,
            finish_reason: None,
            error: None,
            saw_message_stop: false,
            saw_final_usage: false,
        }
    }

    /// OpenAI events for every upstream event this chunk completes.
    pub fn on_chunk(&mut self, chunk: &[u8]) -> Bytes {
        let mut out = BytesMut::new();
        let mut carry = std::mem::take(&mut self.carry);
        let fits = carry.feed(chunk, |event| self.on_event(event, &mut out));
        self.carry = carry;
        if !fits {
            self.error = Some(oversized());
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
        self.usage.map(|u| u.normalised())
    }

    pub fn finish_reason(&self) -> Option<&str> {
        self.finish_reason
    }

    /// Whether the stream ended as Anthropic ends a whole message (`message_stop`).
    /// Whether the output count in [`Self::usage`] is the provider's final one (a stream cut
    /// before its `message_delta` has only `message_start`'s placeholder).
    pub fn saw_final_usage(&self) -> bool {
        self.saw_final_usage
    }

    pub fn saw_message_stop(&self) -> bool {
        self.saw_message_stop
    }

    /// The `error` object of an `error` event (`{"type": "overloaded_error", "message": ...}`).
    pub fn error(&self) -> Option<&Value> {
        self.error.as_ref()
    }

    fn on_event(&mut self, event: &[u8], out: &mut BytesMut) {
        let Some(data) = event_data(event) else {
            return;
        };
        let Ok(v) = serde_json::from_slice::<Value>(&data) else {
            log::debug!("anthropic stream: skipping an event that is not JSON");
            return;
        };
        let name = event_name(event).and_then(|n| std::str::from_utf8(n).ok());
        match v
            .get("type")
            .and_then(Value::as_str)
            .or(name)
            .unwrap_or_default()
        {
            "message_start" => self.message_start(&v["message"], out),
            "content_block_start" => self.block_start(index_of(&v), &v["content_block"], out),
            "content_block_delta" => self.block_delta(index_of(&v), &v["delta"], out),
            "message_delta" => {
                if v["usage"].is_object() {
                    self.usage.get_or_insert_default().merge(&v["usage"]);
                    self.saw_final_usage = true;
                }
                let stop_reason = v.pointer("/delta/stop_reason").and_then(Value::as_str);
                if let Some(native) = stop_reason.filter(|_| self.finish_reason.is_none()) {
                    let reason = finish_reason(native);
                    self.finish_reason = Some(reason);
                    self.writer.finish(out, reason, native);
                }
            }
            "error" => self.error = Some(v.get("error").cloned().unwrap_or(v)),
            "message_stop" => self.saw_message_stop = true,
            // Anthropic pings during long waits; a client (or a load balancer's idle
            // timeout) between them should see the stream alive too (DESIGN §3).
            "ping" => out.extend_from_slice(b": keep-alive\n\n"),
            _ => {} // content_block_stop, and types added later
        }
    }

    fn message_start(&mut self, message: &Value, out: &mut BytesMut) {
        let s = |k: &str| {
            message
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        self.writer.id = s("id");
        self.writer.model = s("model");
        if message["usage"].is_object() {
            self.usage.get_or_insert_default().merge(&message["usage"]);
        }
        self.writer
            .delta(out, json!({ "role": "assistant", "content": "" }));
    }

    fn block_start(&mut self, index: u64, block: &Value, out: &mut BytesMut) {
        let s = |k: &str| block.get(k).and_then(Value::as_str).unwrap_or_default();
        let kind = match s("type") {
            "text" => {
                if !s("text").is_empty() {
                    self.writer.delta(out, json!({ "content": s("text") }));
                }
                Block::Text
            }
            "tool_use" => {
                let n = self.tool_calls;
                self.tool_calls += 1;
                let call = tool_call_json(Some(n), s("id"), s("name"), String::new());
                self.writer.delta(out, json!({ "tool_calls": [call] }));
                Block::Tool(n)
            }
            "thinking" => {
                let n = self.next_reasoning_index();
                if !s("thinking").is_empty() {
                    self.writer.delta(out, reasoning_text(s("thinking"), n));
                }
                Block::Thinking(n)
            }
            "redacted_thinking" => {
                let n = self.next_reasoning_index();
                let detail = json!({ "type": "reasoning.encrypted", "data": s("data"), "format": REASONING_FORMAT, "index": n });
                self.writer
                    .delta(out, json!({ "reasoning_details": [detail] }));
                Block::Other
            }
            _ => Block::Other,
        };
        self.blocks.push((index, kind));
    }

    fn block_delta(&mut self, index: u64, delta: &Value, out: &mut BytesMut) {
        let block = self
            .blocks
            .iter()
            .rev()
            .find(|(i, _)| *i == index)
            .map(|(_, b)| *b);
        let s = |k: &str| delta.get(k).and_then(Value::as_str).unwrap_or_default();
        match (s("type"), block) {
            ("text_delta", _) if !s("text").is_empty() => {
                self.writer.delta(out, json!({ "content": s("text") }))
            }
            ("input_json_delta", Some(Block::Tool(n))) if !s("partial_json").is_empty() => {
                let call = json!({ "index": n, "function": { "arguments": s("partial_json") } });
                self.writer.delta(out, json!({ "tool_calls": [call] }));
            }
            ("thinking_delta", Some(Block::Thinking(n))) if !s("thinking").is_empty() => {
                self.writer.delta(out, reasoning_text(s("thinking"), n));
            }
            ("signature_delta", Some(Block::Thinking(n))) => {
                let detail = json!({ "type": "reasoning.text", "signature": s("signature"), "format": REASONING_FORMAT, "index": n });
                self.writer
                    .delta(out, json!({ "reasoning_details": [detail] }));
            }
            _ => {} // citations and deltas of blocks the client cannot see
        }
    }

    fn next_reasoning_index(&mut self) -> usize {
        self.reasoning_blocks += 1;
        self.reasoning_blocks - 1
    }
}

fn index_of(v: &Value) -> u64 {
    v.get("index").and_then(Value::as_u64).unwrap_or(0)
}

/// OpenRouter streams thinking both as plain `reasoning` and as a detail that a client
/// merges by `index` (with the signature) to send the block back next turn.
fn reasoning_text(text: &str, index: usize) -> Value {
    let detail = json!({ "type": "reasoning.text", "text": text, "format": REASONING_FORMAT, "index": index });
    json!({ "reasoning": text, "reasoning_details": [detail] })
}

fn oversized() -> Value {
    json!({ "type": "api_error", "message": format!("an upstream stream event was larger than {MAX_EVENT_BYTES} bytes") })
}
