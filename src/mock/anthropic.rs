//! Anthropic Messages (`POST .../messages`), whole and as SSE, as Anthropic sends them:
//! `message_start` (usage so far), content blocks (`thinking` when the request turns it on,
//! then `text` or `tool_use`), a `ping`, `message_delta` (stop reason, output usage) and
//! `message_stop`. Usage follows Anthropic's split: `input_tokens` excludes cache reads.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Response};
use serde_json::{json, Value};

use super::body::{ConnCtl, MockBody};
use super::dialect::anthropic_error;
use super::faults::Fault;
use super::handler::{ok_json, reply_text};
use super::openai::{Answer, Usage};
use super::sse::event_stream;
use super::{text, State};

/// The tool input, split over three `input_json_delta` events as Anthropic splits it.
const TOOL_ARGS: [&str; 3] = ["{\"location\"", ":\"Pa", "ris\"}"];
const THINKING: &str = "Let me think about that.";
/// A thinking block's signature (opaque to clients; base64 of "mock-signature").
const SIGNATURE: &str = "bW9jay1zaWduYXR1cmU=";
const MALFORMED: &str = "event: content_block_delta\ndata: {\"type\": \"broken\n\n";

/// `POST .../messages`.
pub fn messages(
    state: &State,
    json: Option<Value>,
    headers: &HeaderMap,
    fault: &Fault,
    ctl: &Arc<ConnCtl>,
) -> Response<MockBody> {
    let invalid = |message: &str| anthropic_error(400, "invalid_request_error", message);
    if headers.get("anthropic-version").is_none() {
        return invalid("anthropic-version: header is required");
    }
    let Some(req) = json.filter(Value::is_object) else {
        return invalid("There was an issue with the request body: it is not a JSON object.");
    };
    let Some(messages) = req.get("messages").and_then(Value::as_array) else {
        return invalid("messages: Field required");
    };
    if !req.get("max_tokens").is_some_and(Value::is_u64) {
        return invalid("max_tokens: Field required");
    }
    let n = state.next_id();
    let tool = req.pointer("/tools/0/name").and_then(Value::as_str);
    let answer = match tool.filter(|_| fault.tool_call) {
        Some(name) => Answer::Tool {
            call_id: format!("toolu_mock_{n}"),
            name: name.to_string(),
        },
        None => Answer::text(reply_text(messages, fault)),
    };
    let thinking = matches!(
        req.pointer("/thinking/type").and_then(Value::as_str),
        Some("enabled" | "adaptive")
    );
    let mut message = Message {
        id: format!("msg_mock_{n}"),
        model: req
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("mock-small")
            .to_string(),
        answer,
        thinking,
        usage: Usage::default(),
        send_usage: !fault.no_usage,
    };
    message.usage = Usage {
        prompt: fault
            .usage_prompt
            .unwrap_or_else(|| text::prompt_tokens(messages)),
        completion: fault.usage_completion.unwrap_or(message.deltas() as u64),
        cached: fault.usage_cached.unwrap_or(0),
        reasoning: 0, // Anthropic does not report thinking tokens apart
        cache_write: fault.usage_cache_write.unwrap_or(0),
    };
    if req.get("stream") == Some(&Value::Bool(true)) {
        let events = message.events(fault.malformed, fault.truncated);
        let message = Arc::new(message);
        event_stream(events, move |e| message.render(e), fault, ctl)
    } else {
        ok_json(message.body(), fault, ctl)
    }
}

/// One Anthropic message, rendered whole or as stream events.
pub struct Message {
    pub id: String,
    pub model: String,
    pub answer: Answer,
    /// The request turned thinking on: a signed thinking block comes first.
    pub thinking: bool,
    pub usage: Usage,
    pub send_usage: bool,
}

/// One SSE event, rendered lazily.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Start,
    Malformed,
    ThinkingStart,
    ThinkingDelta,
    SignatureDelta,
    ThinkingStop,
    BlockStart,
    Ping,
    Delta(usize),
    BlockStop,
    MessageDelta,
    MessageStop,
}

impl Message {
    fn deltas(&self) -> usize {
        match &self.answer {
            Answer::Text { spans, .. } => spans.len(),
            Answer::Tool { .. } => TOOL_ARGS.len(),
        }
    }

    fn stop_reason(&self) -> &'static str {
        match self.answer {
            Answer::Text { .. } => "end_turn",
            Answer::Tool { .. } => "tool_use",
        }
    }

    /// The answer's block index: after the thinking block, when there is one.
    fn block_index(&self) -> u32 {
        u32::from(self.thinking)
    }

    /// `usage` as `message_start` and the whole message carry it.
    fn usage_json(&self, output: u64) -> Value {
        let cached = self.usage.cached.min(self.usage.prompt);
        let written = self.usage.cache_write.min(self.usage.prompt - cached);
        json!({
            "input_tokens": self.usage.prompt - cached - written,
            "cache_creation_input_tokens": written,
            "cache_read_input_tokens": cached,
            "output_tokens": output,
        })
    }

    fn answer_block(&self, whole: bool) -> Value {
        match &self.answer {
            Answer::Text { content, .. } => {
                json!({ "type": "text", "text": if whole { content.as_str() } else { "" } })
            }
            Answer::Tool { call_id, name } => {
                let input = if whole {
                    json!({ "location": "Paris" })
                } else {
                    json!({})
                };
                json!({ "type": "tool_use", "id": call_id, "name": name, "input": input })
            }
        }
    }

    /// The non-stream message.
    pub fn body(&self) -> Vec<u8> {
        let mut content = Vec::new();
        if self.thinking {
            content
                .push(json!({ "type": "thinking", "thinking": THINKING, "signature": SIGNATURE }));
        }
        content.push(self.answer_block(true));
        let mut body = json!({
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": self.stop_reason(),
            "stop_sequence": null,
        });
        if self.send_usage {
            body["usage"] = self.usage_json(self.usage.completion);
        }
        body.to_string().into_bytes()
    }

    /// The stream's events. `truncated` stops after the last delta (no block stop, no
    /// `message_delta` with the final usage, no `message_stop`).
    pub fn events(
        &self,
        malformed: bool,
        truncated: bool,
    ) -> impl Iterator<Item = Event> + Clone + Send + 'static {
        let thinking = [
            Event::ThinkingStart,
            Event::ThinkingDelta,
            Event::SignatureDelta,
            Event::ThinkingStop,
        ];
        let end = [Event::BlockStop, Event::MessageDelta, Event::MessageStop];
        std::iter::once(Event::Start)
            .chain(malformed.then_some(Event::Malformed))
            .chain(self.thinking.then_some(thinking).into_iter().flatten())
            .chain([Event::BlockStart, Event::Ping])
            .chain((0..self.deltas()).map(Event::Delta))
            .chain((!truncated).then_some(end).into_iter().flatten())
    }

    /// One event, framed as `event: NAME\ndata: JSON\n\n`.
    pub fn render(&self, event: Event) -> Bytes {
        let index = self.block_index();
        let data = match event {
            Event::Malformed => return Bytes::from_static(MALFORMED.as_bytes()),
            Event::Start => {
                let mut message = json!({
                    "id": self.id, "type": "message", "role": "assistant", "model": self.model,
                    "content": [], "stop_reason": null, "stop_sequence": null,
                });
                if self.send_usage {
                    message["usage"] = self.usage_json(1);
                }
                json!({ "type": "message_start", "message": message })
            }
            Event::ThinkingStart => block_start(0, json!({ "type": "thinking", "thinking": "" })),
            Event::ThinkingDelta => {
                block_delta(0, json!({ "type": "thinking_delta", "thinking": THINKING }))
            }
            Event::SignatureDelta => block_delta(
                0,
                json!({ "type": "signature_delta", "signature": SIGNATURE }),
            ),
            Event::ThinkingStop => json!({ "type": "content_block_stop", "index": 0 }),
            Event::BlockStart => block_start(index, self.answer_block(false)),
            Event::Ping => json!({ "type": "ping" }),
            Event::Delta(i) => match &self.answer {
                Answer::Text { content, spans } => {
                    let text = spans
                        .get(i)
                        .and_then(|r| content.get(r.clone()))
                        .unwrap_or("");
                    block_delta(index, json!({ "type": "text_delta", "text": text }))
                }
                Answer::Tool { .. } => {
                    let part = TOOL_ARGS.get(i).copied().unwrap_or("");
                    block_delta(
                        index,
                        json!({ "type": "input_json_delta", "partial_json": part }),
                    )
                }
            },
            Event::BlockStop => json!({ "type": "content_block_stop", "index": index }),
            Event::MessageDelta => {
                let mut delta = json!({
                    "type": "message_delta",
                    "delta": { "stop_reason": self.stop_reason(), "stop_sequence": null },
                });
                if self.send_usage {
                    delta["usage"] = json!({ "output_tokens": self.usage.completion });
                }
                delta
            }
            Event::MessageStop => json!({ "type": "message_stop" }),
        };
        let name = data["type"].as_str().unwrap_or("error");
        Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
    }
}

fn block_start(index: u32, block: Value) -> Value {
    json!({ "type": "content_block_start", "index": index, "content_block": block })
}

fn block_delta(index: u32, delta: Value) -> Value {
    json!({ "type": "content_block_delta", "index": index, "delta": delta })
}
