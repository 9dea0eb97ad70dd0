//! One Bedrock Converse answer, rendered whole (`output.message`, `stopReason`, `usage`) or as
//! the events of a ConverseStream: `messageStart`, a signed reasoning block when thinking is
//! on, a `toolUse` block start, content block deltas (one word, or one third of the tool
//! input, each), `contentBlockStop`, `messageStop`, then `metadata` with usage. Each event is
//! framed by [`super::eventstream`] and padded with a `p` field, as Bedrock pads them.

use bytes::Bytes;
use serde_json::{json, Value};

use super::eventstream;
use super::openai::{Answer, Usage};

/// The tool input, split over three `toolUse` deltas.
const TOOL_ARGS: [&str; 3] = ["{\"location\"", ":\"Pa", "ris\"}"];
const THINKING: &str = "Let me think about that.";
/// A reasoning block's signature (opaque to clients; base64 of "mock-signature").
const SIGNATURE: &str = "bW9jay1zaWduYXR1cmU=";
/// Bedrock pads event payloads with a `p` field (against length side channels).
const PADDING: &str = "abcdefghijkl";

/// One Converse answer, rendered whole or as stream events.
pub struct Converse {
    pub answer: Answer,
    /// The request turned Claude's thinking on: a signed reasoning block comes first.
    pub thinking: bool,
    pub usage: Usage,
    pub send_usage: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Start,
    Malformed,
    ThinkingDelta,
    SignatureDelta,
    ThinkingStop,
    ToolStart,
    Delta(usize),
    BlockStop,
    Stop,
    Metadata,
}

impl Converse {
    fn stop_reason(&self) -> &'static str {
        match self.answer {
            Answer::Text { .. } => "end_turn",
            Answer::Tool { .. } => "tool_use",
        }
    }

    fn usage_json(&self) -> Value {
        let u = self.usage;
        let written = u.cache_write.min(u.prompt.saturating_sub(u.cached));
        let mut v = json!({
            "inputTokens": u.prompt.saturating_sub(u.cached).saturating_sub(written),
            "outputTokens": u.completion,
            "totalTokens": u.prompt.saturating_add(u.completion),
        });
        if u.cached > 0 || written > 0 {
            v["cacheReadInputTokens"] = json!(u.cached);
            v["cacheWriteInputTokens"] = json!(written);
        }
        v
    }

    /// The non-stream response.
    pub fn body(&self) -> Vec<u8> {
        let mut content = Vec::new();
        if self.thinking {
            content.push(json!({ "reasoningContent": { "reasoningText": { "text": THINKING, "signature": SIGNATURE } } }));
        }
        content.push(match &self.answer {
            Answer::Text { content, .. } => json!({ "text": content }),
            Answer::Tool { call_id, name } => json!({ "toolUse": {
                "toolUseId": call_id, "name": name, "input": { "location": "Paris" } } }),
        });
        let mut v = json!({
            "output": { "message": { "role": "assistant", "content": content } },
            "stopReason": self.stop_reason(),
            "metrics": { "latencyMs": 1 },
        });
        if self.send_usage {
            v["usage"] = self.usage_json();
        }
        v.to_string().into_bytes()
    }

    /// The stream's events. `truncated` drops `messageStop` and `metadata`; `no_usage` the
    /// `metadata` event.
    pub fn events(
        &self,
        malformed: bool,
        truncated: bool,
    ) -> impl Iterator<Item = Event> + Clone + Send + 'static {
        let tool = matches!(self.answer, Answer::Tool { .. });
        let thinking = [
            Event::ThinkingDelta,
            Event::SignatureDelta,
            Event::ThinkingStop,
        ];
        std::iter::once(Event::Start)
            .chain(malformed.then_some(Event::Malformed))
            .chain(thinking.into_iter().take(if self.thinking { 3 } else { 0 }))
            .chain(tool.then_some(Event::ToolStart))
            .chain((0..self.answer.delta_count()).map(Event::Delta))
            .chain(std::iter::once(Event::BlockStop))
            .chain((!truncated).then_some(Event::Stop))
            .chain((!truncated && self.send_usage).then_some(Event::Metadata))
    }

    /// One event, framed. `Malformed` is a well-framed event whose JSON is broken.
    pub fn render(&self, event: Event) -> Bytes {
        let index = u32::from(self.thinking);
        let (kind, mut payload) = match (event, &self.answer) {
            (Event::Malformed, _) => {
                let broken = b"{\"contentBlockIndex\": 0, \"delta\": {broken";
                return Bytes::from(eventstream::event("contentBlockDelta", broken));
            }
            (Event::Start, _) => ("messageStart", json!({ "role": "assistant" })),
            (Event::ThinkingDelta, _) => (
                "contentBlockDelta",
                json!({ "contentBlockIndex": 0,
                "delta": { "reasoningContent": { "text": THINKING } } }),
            ),
            (Event::SignatureDelta, _) => (
                "contentBlockDelta",
                json!({ "contentBlockIndex": 0,
                "delta": { "reasoningContent": { "signature": SIGNATURE } } }),
            ),
            (Event::ThinkingStop, _) => ("contentBlockStop", json!({ "contentBlockIndex": 0 })),
            (Event::ToolStart, Answer::Tool { call_id, name }) => (
                "contentBlockStart",
                json!({
                "contentBlockIndex": index, "start": { "toolUse": { "toolUseId": call_id, "name": name } } }),
            ),
            (Event::ToolStart, _) => ("contentBlockStart", json!({ "contentBlockIndex": index })),
            (Event::Delta(i), Answer::Text { content, spans }) => {
                let span = spans
                    .get(i)
                    .and_then(|r| content.get(r.clone()))
                    .unwrap_or("");
                (
                    "contentBlockDelta",
                    json!({ "contentBlockIndex": index, "delta": { "text": span } }),
                )
            }
            (Event::Delta(i), Answer::Tool { .. }) => {
                let input = TOOL_ARGS.get(i).copied().unwrap_or("");
                (
                    "contentBlockDelta",
                    json!({ "contentBlockIndex": index,
                    "delta": { "toolUse": { "input": input } } }),
                )
            }
            (Event::BlockStop, _) => ("contentBlockStop", json!({ "contentBlockIndex": index })),
            (Event::Stop, _) => ("messageStop", json!({ "stopReason": self.stop_reason() })),
            (Event::Metadata, _) => (
                "metadata",
                json!({ "usage": self.usage_json(), "metrics": { "latencyMs": 1 } }),
            ),
        };
        payload["p"] = json!(PADDING);
        Bytes::from(eventstream::event(kind, payload.to_string().as_bytes()))
    }
}
