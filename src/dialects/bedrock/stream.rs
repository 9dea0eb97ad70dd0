//! ConverseStream (binary event stream) -> OpenAI `chat.completion.chunk` events, one message
//! at a time: [`EventStreamDecoder`] holds the partial message, nothing else is kept.
//!
//! | Bedrock event (`:event-type`) | OpenAI chunk |
//! |---|---|
//! | `messageStart` | `delta: {role: assistant, content: ""}` |
//! | `contentBlockStart` with `toolUse` | `tool_calls: [{index, id, type, function: {name, arguments: ""}}]` |
//! | `contentBlockDelta` `text` | `delta.content` |
//! | `contentBlockDelta` `toolUse.input` | `tool_calls: [{index, function: {arguments}}]` |
//! | `contentBlockDelta` `reasoningContent` | `delta.reasoning` + `reasoning_details` (OpenRouter) |
//! | `messageStop` | `finish_reason` + `native_finish_reason` |
//! | `metadata` | nothing: usage recorded |
//! | exception (`:message-type: exception`) | nothing: recorded for [`StreamConverter::error`] |
//! | `contentBlockStop`, unknown | nothing |
//!
//! A framing error (bad CRC, impossible length) is recorded as an error too. The first error
//! ends the conversion: Bedrock sends nothing after an exception, and the specification
//! forbids reading on after a framing error.

use bytes::{Bytes, BytesMut};
use serde_json::{json, Value};

use super::eventstream::{EventStreamDecoder, Message};
use super::response::{type_status, usage};
use super::{finish_reason, REASONING_FORMAT};
use crate::dialects::common::{tool_call_json, ChunkWriter};
use crate::metering::Usage;

/// What a Converse `contentBlockIndex` stands for in the OpenAI stream (text blocks need no
/// entry: their deltas stand alone).
#[derive(Clone, Copy, Debug)]
enum Block {
    /// The OpenAI `tool_calls[].index` of this toolUse block.
    Tool(usize),
    /// The `reasoning_details[].index` of this reasoning block.
    Reasoning(usize),
}

#[derive(Debug)]
pub struct StreamConverter {
    decoder: EventStreamDecoder,
    writer: ChunkWriter,
    started: bool,
    /// (Converse block index, meaning); a handful per message.
    blocks: Vec<(u64, Block)>,
    tool_calls: usize,
    reasoning_blocks: usize,
    finish_reason: Option<&'static str>,
    usage: Option<Usage>,
    error: Option<Value>,
}

impl StreamConverter {
    pub fn new(created_unix: u64) -> Self {
        StreamConverter {
            decoder: EventStreamDecoder::new(),
            writer: ChunkWriter {
                created: created_unix,
                ..ChunkWriter::default()
            },
            started: false,
            blocks: Vec::new(),
            tool_calls: 0,
            reasoning_blocks: 0,
            finish_reason: None,
            usage: None,
            error: None,
        }
    }

    /// The `id` and `model` the chunks carry. ConverseStream names neither: without this they
    /// are empty (the `x-amzn-requestid` response header and the upstream model id fit).
    pub fn with_identity(mut self, id: &str, model: &str) -> Self {
        self.writer.id = id.to_string();
        self.writer.model = model.to_string();
        self
    }

    /// OpenAI events for every message this chunk completes.
    pub fn on_chunk(&mut self, chunk: &[u8]) -> Bytes {
        // An exception or a framing error ends the answer: nothing after it is converted.
        if self.error.is_some() {
            return Bytes::new();
        }
        let mut out = BytesMut::new();
        self.decoder.feed(chunk);
        while self.error.is_none() {
            match self.decoder.next_message() {
                Ok(Some(message)) => self.on_message(&message, &mut out),
                Ok(None) => break,
                Err(e) => {
                    self.fail(json!({ "type": "eventStreamError", "message": e.to_string(), "code": 502 }));
                    break;
                }
            }
        }
        out.freeze()
    }

    /// The stream ended. A message cut short is an error; nothing is emitted (never `[DONE]`
    /// or a usage chunk: the proxy ends every stream with its own).
    pub fn finish(&mut self) -> Bytes {
        if self.decoder.buffered() > 0 {
            let message = "the provider's event stream ended inside a message";
            self.fail(json!({ "type": "eventStreamError", "message": message, "code": 502 }));
        }
        Bytes::new()
    }

    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    pub fn finish_reason(&self) -> Option<&str> {
        self.finish_reason
    }

    /// The error the stream reported: `{"type": "throttlingException", "message": ..., "code": 429}`.
    pub fn error(&self) -> Option<&Value> {
        self.error.as_ref()
    }

    /// The first error wins: later ones are consequences.
    fn fail(&mut self, error: Value) {
        if self.error.is_none() {
            self.error = Some(error);
        }
    }

    fn on_message(&mut self, m: &Message, out: &mut BytesMut) {
        match m.message_type() {
            Some("event") => {}
            Some("exception") => {
                let kind = m.exception_type().unwrap_or("exception");
                let payload: Value = serde_json::from_slice(&m.payload).unwrap_or(Value::Null);
                let message = payload
                    .get("message")
                    .or_else(|| payload.get("Message"))
                    .and_then(Value::as_str)
                    .unwrap_or("the provider reported an error mid-stream");
                let code = type_status(kind, 500).unwrap_or(502);
                self.fail(json!({ "type": kind, "message": message, "code": code }));
                return;
            }
            Some("error") => {
                let code = m.str_header(":error-code").unwrap_or("error");
                let message = m.str_header(":error-message").unwrap_or(code);
                self.fail(json!({ "type": code, "message": message, "code": 502 }));
                return;
            }
            _ => return,
        }
        let Ok(v @ Value::Object(_)) = serde_json::from_slice::<Value>(&m.payload) else {
            log::debug!("bedrock stream: skipping an event whose payload is not a JSON object");
            return;
        };
        match m.event_type().unwrap_or_default() {
            "messageStart" => self.start(out),
            "contentBlockStart" => self.block_start(&v, out),
            "contentBlockDelta" => self.block_delta(&v, out),
            "messageStop" => {
                let native = v.get("stopReason").and_then(Value::as_str);
                if let Some(native) = native.filter(|_| self.finish_reason.is_none()) {
                    self.start(out);
                    let reason = finish_reason(native);
                    self.finish_reason = Some(reason);
                    self.writer.finish(out, reason, native);
                }
            }
            "metadata" => {
                if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
                    self.usage = Some(usage(u));
                }
            }
            _ => {} // contentBlockStop, and events added later
        }
    }

    /// The role chunk, once, even if content came first.
    fn start(&mut self, out: &mut BytesMut) {
        if !self.started {
            self.started = true;
            self.writer
                .delta(out, json!({ "role": "assistant", "content": "" }));
        }
    }

    fn block_start(&mut self, v: &Value, out: &mut BytesMut) {
        let Some(tool) = v.pointer("/start/toolUse") else {
            return;
        };
        self.start(out);
        let s = |k: &str| tool.get(k).and_then(Value::as_str).unwrap_or_default();
        let n = self.tool_calls;
        self.tool_calls += 1;
        self.blocks.push((index_of(v), Block::Tool(n)));
        let call = tool_call_json(Some(n), s("toolUseId"), s("name"), String::new());
        self.writer.delta(out, json!({ "tool_calls": [call] }));
    }

    fn block_delta(&mut self, v: &Value, out: &mut BytesMut) {
        let index = index_of(v);
        let delta = &v["delta"];
        self.start(out);
        if let Some(text) = delta.get("text").and_then(Value::as_str) {
            if !text.is_empty() {
                self.writer.delta(out, json!({ "content": text }));
            }
        } else if let Some(input) = delta.pointer("/toolUse/input").and_then(Value::as_str) {
            if let (Some(Block::Tool(n)), false) = (self.block(index), input.is_empty()) {
                let call = json!({ "index": n, "function": { "arguments": input } });
                self.writer.delta(out, json!({ "tool_calls": [call] }));
            }
        } else if let Some(r) = delta.get("reasoningContent") {
            let n = match self.block(index) {
                Some(Block::Reasoning(n)) => n,
                _ => {
                    let n = self.reasoning_blocks;
                    self.reasoning_blocks += 1;
                    self.blocks.push((index, Block::Reasoning(n)));
                    n
                }
            };
            let s = |k: &str| r.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
            let detail = |kind: &str, key: &str, value: &str| json!({ "type": kind, key: value, "format": REASONING_FORMAT, "index": n });
            if let Some(text) = s("text") {
                let d = detail("reasoning.text", "text", text);
                self.writer
                    .delta(out, json!({ "reasoning": text, "reasoning_details": [d] }));
            } else if let Some(sig) = s("signature") {
                let d = detail("reasoning.text", "signature", sig);
                self.writer.delta(out, json!({ "reasoning_details": [d] }));
            } else if let Some(data) = s("redactedContent") {
                let d = detail("reasoning.encrypted", "data", data);
                self.writer.delta(out, json!({ "reasoning_details": [d] }));
            }
        }
        // Citations and deltas of unknown kinds have no OpenAI equivalent.
    }

    fn block(&self, index: u64) -> Option<Block> {
        self.blocks
            .iter()
            .rev()
            .find(|(i, _)| *i == index)
            .map(|(_, b)| *b)
    }
}

fn index_of(v: &Value) -> u64 {
    v.get("contentBlockIndex")
        .and_then(Value::as_u64)
        .unwrap_or(0)
}
