//! The OpenAI chat stream the proxy would send -> Anthropic Messages SSE, in the order
//! Anthropic sends it:
//!
//! | OpenAI chat stream | Anthropic events |
//! |---|---|
//! | first chunk | `message_start` (id, model; usage still unknown: zeros) |
//! | `delta.content` | `content_block_start` text, then `text_delta`s |
//! | `delta.reasoning` (+ signature detail) | `content_block_start` thinking, `thinking_delta`s, `signature_delta` |
//! | encrypted reasoning detail | a whole `redacted_thinking` block |
//! | `delta.tool_calls[i]` | `content_block_start` tool_use (id, name), then `input_json_delta`s |
//! | `finish_reason` | `content_block_stop` of the open block; the stop reason is kept |
//! | usage chunk (`choices: []`) | kept for `message_delta` |
//! | `data: [DONE]` | `message_delta` (stop_reason, usage with cost), `message_stop` |
//! | error chunk | `event: error`, and nothing after it (Anthropic's SDKs raise on it) |
//! | `: keep-alive` | passed on as it is |
//!
//! One block is open at a time; a block closes when another kind starts. Anthropic's SDKs
//! index blocks by position, so indexes count up from 0 in the order blocks start.
//!
//! Parallel tool calls stream one after the other, as OpenAI sends them. A host that
//! interleaves them (deltas for call 0, then 1, then 0 again) still gets each call whole in
//! its own block: the open call's block stays open until its arguments are a complete JSON
//! value (scanned byte by byte), and the other calls wait, buffered, until then.

use bytes::Bytes;
use serde_json::{json, Value};

use super::chunks::{ChatChunkReader, ChatEvent, StreamUsage};
use super::{error_json, stop_reason, usage_json, write_event};
use crate::api::json_end::JsonEnd;
use crate::dialects::common::MAX_EVENT_BYTES;
use crate::metering::Usage;

/// The open block, by its Anthropic block index.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Open {
    Text(usize),
    Thinking(usize),
    Tool(usize),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    NotStarted,
    Started,
    Ended,
}

#[derive(Debug)]
pub struct ChatToMessagesStream {
    reader: ChatChunkReader,
    /// The gateway's generation id and catalog model, when the proxy gives them; otherwise
    /// the first chunk's.
    identity: Option<(String, String)>,
    phase: Phase,
    open: Option<Open>,
    next_block: usize,
    /// The tool calls seen, in the order they first came.
    tools: Vec<ToolCall>,
    finish: Option<(String, Option<String>)>,
    stop_reason: Option<String>,
    usage: Option<StreamUsage>,
    error: Option<Value>,
}

/// A tool call of the answer, by its OpenAI index.
#[derive(Debug)]
struct ToolCall {
    index: usize,
    /// Its Anthropic block, once started.
    block: Option<usize>,
    id: Option<String>,
    name: Option<String>,
    /// Arguments that came while another call's block was open.
    pending: String,
    arguments: JsonEnd,
}

impl Default for ChatToMessagesStream {
    fn default() -> Self {
        Self::new()
    }
}

impl ChatToMessagesStream {
    pub fn new() -> Self {
        ChatToMessagesStream {
            reader: ChatChunkReader::default(),
            identity: None,
            phase: Phase::NotStarted,
            open: None,
            next_block: 0,
            tools: Vec::new(),
            finish: None,
            stop_reason: None,
            usage: None,
            error: None,
        }
    }

    /// Names the message after the generation id and the catalog model in `message_start`
    /// (the upstream's chunks carry the provider's own).
    pub fn with_identity(mut self, id: &str, model: &str) -> Self {
        self.identity = Some((id.to_string(), model.to_string()));
        self
    }

    /// Anthropic events for every OpenAI event this chunk completes.
    pub fn on_chunk(&mut self, openai_sse: &[u8]) -> Bytes {
        let mut events = Vec::new();
        let fits = self.reader.feed(openai_sse, &mut events);
        let mut out = Vec::new();
        for e in events {
            self.on_event(e, &mut out);
        }
        if !fits {
            let error = json!({ "message": format!("a stream event was larger than {MAX_EVENT_BYTES} bytes") });
            self.on_event(ChatEvent::Error(error), &mut out);
        }
        Bytes::from(out)
    }

    /// The input ended. A stream that ended without `[DONE]` is still closed properly, so a
    /// client sees a whole message; one that never started stays empty.
    pub fn finish(&mut self) -> Bytes {
        let mut events = Vec::new();
        self.reader.finish(&mut events);
        let mut out = Vec::new();
        for e in events {
            self.on_event(e, &mut out);
        }
        if self.phase == Phase::Started {
            self.end(&mut out);
        }
        Bytes::from(out)
    }

    /// The usage the stream's usage chunk reported.
    pub fn usage(&self) -> Option<Usage> {
        self.usage.as_ref().map(|u| u.usage)
    }

    /// The `stop_reason` sent in `message_delta`.
    pub fn stop_reason(&self) -> Option<&str> {
        self.stop_reason.as_deref()
    }

    /// The Anthropic error object sent, if the stream failed.
    pub fn error(&self) -> Option<&Value> {
        self.error.as_ref()
    }

    fn on_event(&mut self, event: ChatEvent, out: &mut Vec<u8>) {
        if let ChatEvent::Usage(u) = event {
            self.usage = Some(u);
            return;
        }
        if self.phase == Phase::Ended {
            return;
        }
        if !matches!(event, ChatEvent::Comment(_) | ChatEvent::ToolCall { .. }) {
            // Another kind of content, or the end: calls still waiting go out first.
            self.flush_tools(out);
        }
        match event {
            ChatEvent::Comment(c) => {
                out.extend_from_slice(c.as_bytes());
                out.extend_from_slice(b"\n\n");
            }
            // Anthropic has no refusal block: the refusal is the message's text.
            ChatEvent::Text(text) | ChatEvent::Refusal(text) => {
                if !matches!(self.open, Some(Open::Text(_))) {
                    let block = self.start_block(json!({ "type": "text", "text": "" }), out);
                    self.open = Some(Open::Text(block));
                }
                self.delta(json!({ "type": "text_delta", "text": text }), out);
            }
            ChatEvent::Reasoning(text) => {
                self.ensure_thinking(out);
                self.delta(json!({ "type": "thinking_delta", "thinking": text }), out);
            }
            ChatEvent::ReasoningSignature(signature) => {
                self.ensure_thinking(out);
                self.delta(
                    json!({ "type": "signature_delta", "signature": signature }),
                    out,
                );
            }
            ChatEvent::ReasoningEncrypted(data) => {
                let block =
                    self.start_block(json!({ "type": "redacted_thinking", "data": data }), out);
                write_event(
                    out,
                    &json!({ "type": "content_block_stop", "index": block }),
                );
            }
            ChatEvent::ToolCall {
                index,
                id,
                name,
                arguments,
            } => self.tool_call(index, id, name, arguments, out),
            ChatEvent::Finish { reason, native } => {
                self.finish = Some((reason, native));
                self.close(out);
            }
            ChatEvent::Error(error) => {
                self.close(out);
                let event = error_json(&error);
                write_event(out, &event);
                self.error = Some(event["error"].clone());
                self.phase = Phase::Ended;
            }
            ChatEvent::Done => self.end(out),
            ChatEvent::Usage(_) => {}
        }
    }

    fn tool_call(
        &mut self,
        index: usize,
        id: Option<String>,
        name: Option<String>,
        arguments: String,
        out: &mut Vec<u8>,
    ) {
        let at = match self.tools.iter().position(|t| t.index == index) {
            Some(at) => at,
            None => {
                self.tools.push(ToolCall {
                    index,
                    block: None,
                    id: None,
                    name: None,
                    pending: String::new(),
                    arguments: JsonEnd::default(),
                });
                self.tools.len() - 1
            }
        };
        let call = &mut self.tools[at];
        if call.id.is_none() {
            call.id = id;
        }
        if call.name.is_none() {
            call.name = name;
        }
        call.arguments.feed(&arguments);
        match call.block {
            // The open block's call, or (after other content closed it) a call already
            // started: its block is the only one these arguments can go to.
            Some(block) => {
                let open = self.open == Some(Open::Tool(block));
                // Whitespace after a closed call's complete arguments means nothing.
                let idle = !open && arguments.bytes().all(|b| b.is_ascii_whitespace());
                if !arguments.is_empty() && !idle {
                    let delta = json!({ "type": "input_json_delta", "partial_json": arguments });
                    self.delta_at(block, delta, out);
                }
                if open && self.tools[at].arguments.done {
                    // Calls that came meanwhile can start now.
                    self.start_waiting_tools(false, out);
                }
            }
            None => {
                call.pending.push_str(&arguments);
                if !self.tool_open_unfinished() {
                    self.start_waiting_tools(false, out);
                }
            }
        }
    }

    /// Whether the open block is a tool call whose arguments are still coming.
    fn tool_open_unfinished(&self) -> bool {
        let Some(Open::Tool(block)) = self.open else {
            return false;
        };
        self.tools
            .iter()
            .any(|t| t.block == Some(block) && !t.arguments.done)
    }

    /// Starts the calls not started yet, in the order they came, each with the arguments it
    /// has so far; stops at one whose arguments are unfinished (it stays open), unless `all`.
    fn start_waiting_tools(&mut self, all: bool, out: &mut Vec<u8>) {
        while let Some(at) = self.tools.iter().position(|t| t.block.is_none()) {
            let fallback = format!("toolu_{}_{}", self.message_id(), self.tools[at].index);
            let call = &mut self.tools[at];
            let id = call.id.take().unwrap_or(fallback);
            let name = call.name.take().unwrap_or_default();
            let pending = std::mem::take(&mut call.pending);
            let done = call.arguments.done;
            let start = json!({ "type": "tool_use", "id": id, "name": name, "input": {} });
            let block = self.start_block(start, out);
            self.open = Some(Open::Tool(block));
            self.tools[at].block = Some(block);
            if !pending.is_empty() {
                let delta = json!({ "type": "input_json_delta", "partial_json": pending });
                self.delta_at(block, delta, out);
            }
            if !done && !all {
                return;
            }
        }
    }

    /// Starts (and so closes in turn) every call still waiting, before other content or the end.
    fn flush_tools(&mut self, out: &mut Vec<u8>) {
        if self.tools.iter().any(|t| t.block.is_none()) {
            self.start_waiting_tools(true, out);
        }
    }

    fn ensure_thinking(&mut self, out: &mut Vec<u8>) {
        if !matches!(self.open, Some(Open::Thinking(_))) {
            let start = json!({ "type": "thinking", "thinking": "", "signature": "" });
            let block = self.start_block(start, out);
            self.open = Some(Open::Thinking(block));
        }
    }

    fn message_id(&self) -> String {
        match &self.identity {
            Some((id, _)) => id.clone(),
            None => self.reader.id.clone().unwrap_or_else(|| "msg".into()),
        }
    }

    fn ensure_started(&mut self, out: &mut Vec<u8>) {
        if self.phase != Phase::NotStarted {
            return;
        }
        self.phase = Phase::Started;
        let model = match &self.identity {
            Some((_, model)) => model.clone(),
            None => self.reader.model.clone().unwrap_or_default(),
        };
        let message = json!({
            "id": self.message_id(), "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": { "input_tokens": 0, "output_tokens": 0 },
        });
        write_event(out, &json!({ "type": "message_start", "message": message }));
    }

    /// Closes the open block and starts a new one; returns its index (the caller records what
    /// is open).
    fn start_block(&mut self, content_block: Value, out: &mut Vec<u8>) -> usize {
        self.ensure_started(out);
        self.close(out);
        let index = self.next_block;
        self.next_block += 1;
        let event = json!({ "type": "content_block_start", "index": index, "content_block": content_block });
        write_event(out, &event);
        index
    }

    fn delta(&mut self, delta: Value, out: &mut Vec<u8>) {
        let index = match self.open {
            Some(Open::Text(i) | Open::Thinking(i) | Open::Tool(i)) => i,
            None => return,
        };
        self.delta_at(index, delta, out);
    }

    fn delta_at(&mut self, index: usize, delta: Value, out: &mut Vec<u8>) {
        let event = json!({ "type": "content_block_delta", "index": index, "delta": delta });
        write_event(out, &event);
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if let Some(Open::Text(i) | Open::Thinking(i) | Open::Tool(i)) = self.open.take() {
            write_event(out, &json!({ "type": "content_block_stop", "index": i }));
        }
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        if self.phase == Phase::Ended {
            return;
        }
        self.ensure_started(out);
        self.close(out);
        let (reason, native) = self.finish.clone().unwrap_or(("stop".into(), None));
        let stop = stop_reason(&reason, native.as_deref(), !self.tools.is_empty());
        let usage = match &self.usage {
            Some(u) => usage_json(&u.usage, u.reports_cache_write, u.cost.as_ref()),
            None => usage_json(&Usage::default(), false, None),
        };
        let mut delta = json!({
            "type": "message_delta",
            "delta": { "stop_reason": stop, "stop_sequence": null },
            "usage": usage,
        });
        if let Some(p) = self.usage.as_ref().and_then(|u| u.provider.as_deref()) {
            delta["provider"] = json!(p);
        }
        write_event(out, &delta);
        write_event(out, &json!({ "type": "message_stop" }));
        self.stop_reason = Some(stop);
        self.phase = Phase::Ended;
    }
}
