//! The OpenAI chat stream the proxy would send -> Responses SSE events, each
//! `event: <type>\ndata: {..., "sequence_number": n}\n\n`:
//!
//! | OpenAI chat stream | Responses events |
//! |---|---|
//! | first chunk | `response.created`, `response.in_progress` (status in_progress) |
//! | `delta.content` | `output_item.added` (message), `content_part.added`, `output_text.delta`s |
//! | `delta.refusal` | `output_item.added` (message), `content_part.added` (refusal), `refusal.delta`s |
//! | `delta.reasoning` | `output_item.added` (reasoning), `reasoning_text.delta`s |
//! | `delta.tool_calls[i]` | `output_item.added` (function_call), `function_call_arguments.delta`s |
//! | another kind starts, or `finish_reason` | the open item's `*.done` events and `output_item.done` |
//! | usage chunk | kept for the final response |
//! | `data: [DONE]` | `response.completed`, or `response.incomplete` (length, content filter) |
//! | error chunk | `error`, then `response.failed`; nothing after |
//! | `: keep-alive` | passed on as it is |
//!
//! Item ids are fixed when an item is added and repeated in every later event and in the
//! final response (the SDK refuses a stream whose identities change).

use bytes::Bytes;
use serde_json::{json, Value};

use super::items::{error_code, item_id, status_of, usage_json, Envelope, Item};
use crate::api::json_end::JsonEnd;
use crate::api::messages::chunks::{ChatChunkReader, ChatEvent, StreamUsage};
use crate::dialects::common::{now_unix, MAX_EVENT_BYTES};
use crate::metering::Usage;

/// What a text delta adds to: a message's output text, its refusal, or reasoning.
#[derive(Clone, Copy, Debug, PartialEq)]
enum TextKind {
    Output,
    Refusal,
    Reasoning,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    NotStarted,
    Started,
    Ended,
}

#[derive(Debug)]
pub struct ChatToResponsesStream {
    reader: ChatChunkReader,
    identity: Option<(String, String)>,
    created_at: u64,
    phase: Phase,
    sequence: u64,
    items: Vec<Item>,
    /// Position in `items` of the item still streaming.
    open: Option<usize>,
    /// The tool calls seen, in the order they first came.
    calls: Vec<Call>,
    finish_reason: Option<String>,
    usage: Option<StreamUsage>,
    error: Option<Value>,
}

/// A tool call of the answer, by its OpenAI index. A host that interleaves parallel calls
/// (deltas for call 0, then 1, then 0 again) still gets each call whole in its own item: the
/// open call's item stays open until its arguments are complete JSON, and the other calls
/// wait, buffered, until then.
#[derive(Debug)]
struct Call {
    index: usize,
    /// Its position in `items`, once added.
    item: Option<usize>,
    id: Option<String>,
    name: Option<String>,
    /// Arguments that came while another item was open.
    pending: String,
    arguments: JsonEnd,
}

impl Default for ChatToResponsesStream {
    fn default() -> Self {
        Self::new()
    }
}

impl ChatToResponsesStream {
    pub fn new() -> Self {
        ChatToResponsesStream {
            reader: ChatChunkReader::default(),
            identity: None,
            created_at: 0,
            phase: Phase::NotStarted,
            sequence: 0,
            items: Vec::new(),
            open: None,
            calls: Vec::new(),
            finish_reason: None,
            usage: None,
            error: None,
        }
    }

    /// Names the response after the generation id and the catalog model (the upstream's chunks
    /// carry the provider's own).
    pub fn with_identity(mut self, id: &str, model: &str) -> Self {
        self.identity = Some((id.to_string(), model.to_string()));
        self
    }

    /// Responses events for every OpenAI event this chunk completes.
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

    /// The input ended: a stream that ended without `[DONE]` is still completed, so a client
    /// sees a terminal event; one that never started stays empty.
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

    pub fn usage(&self) -> Option<Usage> {
        self.usage.as_ref().map(|u| u.usage)
    }

    /// The chat finish reason the response ended with.
    pub fn finish_reason(&self) -> Option<&str> {
        self.finish_reason.as_deref()
    }

    /// The `error` event's object, if the stream failed.
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
            self.start_waiting_calls(true, out);
        }
        match event {
            ChatEvent::Comment(c) => {
                out.extend_from_slice(c.as_bytes());
                out.extend_from_slice(b"\n\n");
            }
            ChatEvent::Text(text) => {
                let at = self.open_text_item(TextKind::Output, out);
                self.append_text(at, &text, out);
            }
            // A refusal streams as the `refusal` part a whole answer has, not as output text:
            // the SDKs parse output text as the structured output the request asked for.
            ChatEvent::Refusal(text) => {
                let at = self.open_text_item(TextKind::Refusal, out);
                self.append_text(at, &text, out);
            }
            ChatEvent::Reasoning(text) => {
                let at = self.open_text_item(TextKind::Reasoning, out);
                self.append_text(at, &text, out);
            }
            // Signed or encrypted reasoning belongs to another API; Responses input drops it.
            ChatEvent::ReasoningSignature(_) | ChatEvent::ReasoningEncrypted(_) => {}
            ChatEvent::ToolCall {
                index,
                id,
                name,
                arguments,
            } => self.tool_call(index, id, name, arguments, out),
            ChatEvent::Finish { reason, .. } => {
                self.finish_reason = Some(reason);
                self.close(out);
            }
            ChatEvent::Error(error) => self.fail(&error, out),
            ChatEvent::Done => self.end(out),
            ChatEvent::Usage(_) => {}
        }
    }

    /// The open message (or reasoning) item's position; another open item is closed first.
    fn open_text_item(&mut self, kind: TextKind, out: &mut Vec<u8>) -> usize {
        let same_kind = |item: &Item| match item {
            Item::Reasoning { .. } => kind == TextKind::Reasoning,
            Item::Message { refusal, .. } => {
                kind == (if *refusal {
                    TextKind::Refusal
                } else {
                    TextKind::Output
                })
            }
            Item::FunctionCall { .. } => false,
        };
        if let Some(at) = self.open.filter(|at| same_kind(&self.items[*at])) {
            return at;
        }
        self.ensure_started(out);
        self.close(out);
        let prefix = if kind == TextKind::Reasoning {
            "rs"
        } else {
            "msg"
        };
        let id = item_id(prefix, &self.response_id(), self.items.len());
        let text = String::new();
        let item = match kind {
            TextKind::Reasoning => Item::Reasoning { id, text },
            _ => Item::Message {
                id,
                text,
                refusal: kind == TextKind::Refusal,
            },
        };
        self.add_item(item, out)
    }

    fn add_item(&mut self, item: Item, out: &mut Vec<u8>) -> usize {
        let at = self.items.len();
        self.emit(out, json!({ "type": "response.output_item.added", "output_index": at, "item": item.to_json("in_progress") }));
        if let Item::Message { id, refusal, .. } = &item {
            self.emit(
                out,
                json!({ "type": "response.content_part.added", "item_id": id, "output_index": at,
                                   "content_index": 0, "part": Item::part("", *refusal) }),
            );
        }
        self.items.push(item);
        self.open = Some(at);
        at
    }

    fn append_text(&mut self, at: usize, delta: &str, out: &mut Vec<u8>) {
        let (kind, id) = match &mut self.items[at] {
            Item::Message { id, text, refusal } => {
                text.push_str(delta);
                let kind = match refusal {
                    true => "response.refusal.delta",
                    false => "response.output_text.delta",
                };
                (kind, id.clone())
            }
            Item::Reasoning { id, text } => {
                text.push_str(delta);
                ("response.reasoning_text.delta", id.clone())
            }
            Item::FunctionCall { .. } => return,
        };
        let mut event = json!({ "type": kind, "item_id": id, "output_index": at, "content_index": 0, "delta": delta });
        if kind == "response.output_text.delta" {
            event["logprobs"] = json!([]);
        }
        self.emit(out, event);
    }

    fn tool_call(
        &mut self,
        index: usize,
        id: Option<String>,
        name: Option<String>,
        arguments: String,
        out: &mut Vec<u8>,
    ) {
        let at = match self.calls.iter().position(|c| c.index == index) {
            Some(at) => at,
            None => {
                self.calls.push(Call {
                    index,
                    item: None,
                    id: None,
                    name: None,
                    pending: String::new(),
                    arguments: JsonEnd::default(),
                });
                self.calls.len() - 1
            }
        };
        let call = &mut self.calls[at];
        call.id = call.id.take().or(id);
        call.name = call.name.take().or(name);
        call.arguments.feed(&arguments);
        match call.item {
            // The open item's call, or (after other content closed it) a call already added:
            // its item is the only one these arguments can go to.
            Some(item) => {
                let open = self.open == Some(item);
                // Whitespace after a closed call's complete arguments means nothing.
                let idle = !open && arguments.bytes().all(|b| b.is_ascii_whitespace());
                if !idle {
                    self.append_arguments(item, &arguments, out);
                }
                if open && self.calls[at].arguments.done {
                    // Calls that came meanwhile can start now.
                    self.start_waiting_calls(false, out);
                }
            }
            None => {
                call.pending.push_str(&arguments);
                if !self.open_call_unfinished() {
                    self.start_waiting_calls(false, out);
                }
            }
        }
    }

    /// Whether the open item is a function call whose arguments are still coming.
    fn open_call_unfinished(&self) -> bool {
        let Some(open) = self.open else { return false };
        self.calls
            .iter()
            .any(|c| c.item == Some(open) && !c.arguments.done)
    }

    /// Adds the calls not added yet, in the order they came, each with the arguments it has
    /// so far; stops at one whose arguments are unfinished (it stays open), unless `all`.
    fn start_waiting_calls(&mut self, all: bool, out: &mut Vec<u8>) {
        while let Some(at) = self.calls.iter().position(|c| c.item.is_none()) {
            self.ensure_started(out);
            self.close(out);
            let response_id = self.response_id();
            let position = self.items.len();
            let call = &mut self.calls[at];
            let call_id = call.id.take();
            let call_id = call_id.unwrap_or_else(|| format!("call_{response_id}_{}", call.index));
            let item = Item::FunctionCall {
                id: item_id("fc", &response_id, position),
                call_id,
                name: call.name.take().unwrap_or_default(),
                arguments: String::new(),
            };
            let pending = std::mem::take(&mut call.pending);
            let done = call.arguments.done;
            call.item = Some(position);
            let item = self.add_item(item, out);
            self.append_arguments(item, &pending, out);
            if !done && !all {
                return;
            }
        }
    }

    fn append_arguments(&mut self, at: usize, arguments: &str, out: &mut Vec<u8>) {
        if arguments.is_empty() {
            return;
        }
        let Item::FunctionCall {
            id, arguments: all, ..
        } = &mut self.items[at]
        else {
            return;
        };
        all.push_str(arguments);
        let id = id.clone();
        self.emit(
            out,
            json!({ "type": "response.function_call_arguments.delta", "item_id": id,
                               "output_index": at, "delta": arguments }),
        );
    }

    /// Ends the open item with its `done` events.
    fn close(&mut self, out: &mut Vec<u8>) {
        let Some(at) = self.open.take() else { return };
        let item = self.items[at].clone();
        let status = self.item_status();
        match &item {
            Item::Message { id, text, refusal } => {
                if *refusal {
                    self.emit(
                        out,
                        json!({ "type": "response.refusal.done", "item_id": id, "output_index": at,
                                           "content_index": 0, "refusal": text }),
                    );
                } else {
                    self.emit(out, json!({ "type": "response.output_text.done", "item_id": id, "output_index": at,
                                           "content_index": 0, "text": text, "logprobs": [] }));
                }
                self.emit(
                    out,
                    json!({ "type": "response.content_part.done", "item_id": id, "output_index": at,
                                       "content_index": 0, "part": Item::part(text, *refusal) }),
                );
            }
            Item::Reasoning { id, text } => {
                self.emit(out, json!({ "type": "response.reasoning_text.done", "item_id": id, "output_index": at,
                                       "content_index": 0, "text": text }));
            }
            Item::FunctionCall {
                id,
                name,
                arguments,
                ..
            } => {
                self.emit(
                    out,
                    json!({ "type": "response.function_call_arguments.done", "item_id": id,
                                       "output_index": at, "name": name, "arguments": arguments }),
                );
            }
        }
        self.emit(out, json!({ "type": "response.output_item.done", "output_index": at, "item": item.to_json(status) }));
    }

    fn item_status(&self) -> &'static str {
        match (
            self.finish_reason.as_deref(),
            status_of(self.finish_reason.as_deref()).0,
        ) {
            (Some("error"), _) | (_, "incomplete") => "incomplete",
            _ => "completed",
        }
    }

    fn response_id(&self) -> String {
        match &self.identity {
            Some((id, _)) => id.clone(),
            None => self.reader.id.clone().unwrap_or_else(|| "resp".into()),
        }
    }

    /// The `response` object in its current state.
    fn response(&self, status: &str, output: Vec<Value>) -> Value {
        let id = self.response_id();
        let model = match &self.identity {
            Some((_, m)) => m.clone(),
            None => self.reader.model.clone().unwrap_or_default(),
        };
        let provider = self.usage.as_ref().and_then(|u| u.provider.clone());
        let envelope = Envelope {
            id: &id,
            created_at: self.created_at,
            model: &model,
            provider: provider.as_deref(),
        };
        envelope.response(status, output, self.usage.as_ref().map(usage_json))
    }

    fn ensure_started(&mut self, out: &mut Vec<u8>) {
        if self.phase != Phase::NotStarted {
            return;
        }
        self.phase = Phase::Started;
        self.created_at = self.reader.created.unwrap_or_else(now_unix);
        let response = self.response("in_progress", Vec::new());
        self.emit(
            out,
            json!({ "type": "response.created", "response": response }),
        );
        self.emit(
            out,
            json!({ "type": "response.in_progress", "response": response }),
        );
    }

    fn output(&self, status: &str) -> Vec<Value> {
        self.items.iter().map(|i| i.to_json(status)).collect()
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        self.ensure_started(out);
        self.close(out);
        let (status, incomplete) = status_of(self.finish_reason.as_deref());
        let mut response = self.response(status, self.output(self.item_status()));
        response["incomplete_details"] = incomplete;
        let kind = format!("response.{status}");
        self.emit(out, json!({ "type": kind, "response": response }));
        self.phase = Phase::Ended;
    }

    fn fail(&mut self, error: &Value, out: &mut Vec<u8>) {
        self.ensure_started(out);
        // Items cut short by the failure are incomplete (the chat stream's own word: `error`).
        self.finish_reason = Some("error".into());
        self.close(out);
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("the upstream stream failed");
        let code = error_code(error);
        self.emit(
            out,
            json!({ "type": "error", "code": code, "message": message, "param": null }),
        );
        let mut response = self.response("failed", self.output(self.item_status()));
        response["error"] = json!({ "code": code, "message": message });
        self.emit(
            out,
            json!({ "type": "response.failed", "response": response }),
        );
        self.error = Some(json!({ "code": code, "message": message }));
        self.phase = Phase::Ended;
    }

    fn emit(&mut self, out: &mut Vec<u8>, mut data: Value) {
        data["sequence_number"] = json!(self.sequence);
        self.sequence += 1;
        let kind = data["type"].as_str().unwrap_or("message").to_string();
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\ndata: ");
        out.extend_from_slice(data.to_string().as_bytes());
        out.extend_from_slice(b"\n\n");
    }
}
