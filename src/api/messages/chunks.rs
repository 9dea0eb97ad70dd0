//! Reads the OpenAI `chat.completion.chunk` stream the proxy would send an OpenAI client and
//! yields what happened in it, one typed event at a time. Both stream front doors (Messages
//! and Responses) are converters over these events (STYLE: a parser yields events; a
//! converter maps them).
//!
//! The input is SSE in arbitrary splits: complete events are read at once and a partial one
//! waits in a carry buffer (the only bytes kept). Comment events (`: keep-alive`) are handed on
//! so a long wait still reaches the client.

use serde_json::Value;

use super::CLAUDE_REASONING_FORMATS;
use crate::dialects::common::SseCarry;
use crate::metering::sse::event_data;
use crate::metering::Usage;

/// One thing the chat stream said. A chunk can say several (text and a finish reason).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ChatEvent {
    /// An SSE comment event, as its lines without the blank line.
    Comment(String),
    Text(String),
    /// A refusal (OpenAI's `delta.refusal`): the model declined, in place of the answer.
    Refusal(String),
    /// Reasoning text (OpenRouter `reasoning`, or `reasoning_content`).
    Reasoning(String),
    /// The signature of the current thinking block (Claude's, carried in `reasoning_details`).
    ReasoningSignature(String),
    /// Claude's encrypted reasoning, to be handed back as it is (`reasoning.encrypted`).
    ReasoningEncrypted(String),
    ToolCall {
        index: usize,
        id: Option<String>,
        name: Option<String>,
        arguments: String,
    },
    Finish {
        reason: String,
        /// The provider's own reason (`native_finish_reason`), when the gateway kept it.
        native: Option<String>,
    },
    /// The usage chunk the proxy ends every stream with (or a provider's own).
    Usage(StreamUsage),
    /// The `error` object of an error chunk (a failure after the first byte).
    Error(Value),
    /// `data: [DONE]`.
    Done,
}

/// The usage chunk's counts, plus what the gateway adds to it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StreamUsage {
    pub usage: Usage,
    /// Whether the usage reports `prompt_tokens_details.cache_write_tokens` (OpenRouter's
    /// name; the count is `usage.cache_write`).
    pub reports_cache_write: bool,
    /// `usage.cost` in USD, as the gateway stamped it.
    pub cost: Option<Value>,
    pub provider: Option<String>,
    pub model: Option<String>,
}

impl StreamUsage {
    pub fn from_value(usage: &Value) -> Option<StreamUsage> {
        let mut counts = Usage::from_openai(usage)?;
        counts.estimated = usage.get("estimated").and_then(Value::as_bool) == Some(true);
        Some(StreamUsage {
            usage: counts,
            reports_cache_write: usage
                .pointer("/prompt_tokens_details/cache_write_tokens")
                .is_some_and(Value::is_u64),
            cost: usage.get("cost").filter(|c| c.is_number()).cloned(),
            provider: None,
            model: None,
        })
    }
}

/// The stream's identity as its chunks state it (the first non-empty value wins, so it stays
/// the same for every event a converter writes).
#[derive(Debug, Default)]
pub(crate) struct ChatChunkReader {
    carry: SseCarry,
    pub id: Option<String>,
    pub model: Option<String>,
    pub created: Option<u64>,
}

impl ChatChunkReader {
    /// Appends the events that the complete SSE events of this chunk hold. Returns false when
    /// an event grew past the carry bound (it was thrown away).
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<ChatEvent>) -> bool {
        let mut carry = std::mem::take(&mut self.carry);
        let fits = carry.feed(chunk, |event| self.read_event(event, out));
        self.carry = carry;
        fits
    }

    /// The input ended: a last event without its blank line is still an event.
    pub fn finish(&mut self, out: &mut Vec<ChatEvent>) {
        let mut carry = std::mem::take(&mut self.carry);
        carry.finish(|event| self.read_event(event, out));
    }

    fn read_event(&mut self, event: &[u8], out: &mut Vec<ChatEvent>) {
        let Some(data) = event_data(event) else {
            let text = String::from_utf8_lossy(event);
            let comment: Vec<&str> = text
                .lines()
                .map(|l| l.trim_end_matches('\r'))
                .filter(|l| l.starts_with(':'))
                .collect();
            if !comment.is_empty() {
                out.push(ChatEvent::Comment(comment.join("\n")));
            }
            return;
        };
        if data.trim_ascii() == b"[DONE]" {
            out.push(ChatEvent::Done);
            return;
        }
        let Ok(chunk) = serde_json::from_slice::<Value>(&data) else {
            log::debug!("front door stream: skipping an event that is not JSON");
            return;
        };
        if !chunk.is_object() {
            return;
        }
        self.learn_identity(&chunk);
        chunk_events(&chunk, out);
    }

    fn learn_identity(&mut self, chunk: &Value) {
        let text = |k: &str| {
            chunk
                .get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(String::from)
        };
        if self.id.is_none() {
            self.id = text("id");
        }
        if self.model.is_none() {
            self.model = text("model");
        }
        if self.created.is_none() {
            self.created = chunk.get("created").and_then(Value::as_u64);
        }
    }
}

/// The events of one chunk, in the order a reader meets them: reasoning, text, tool calls,
/// finish, then the error and usage a final chunk carries.
fn chunk_events(chunk: &Value, out: &mut Vec<ChatEvent>) {
    let choice = chunk.pointer("/choices/0");
    if let Some(delta) = choice.and_then(|c| c.get("delta")) {
        delta_events(delta, out);
    }
    // Some hosts (older Ollama, SGLang) put `"finish_reason": ""` on every chunk: no finish.
    if let Some(reason) = choice
        .and_then(|c| c.get("finish_reason"))
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty() && *r != "error")
    {
        let native = choice
            .and_then(|c| c.get("native_finish_reason"))
            .and_then(Value::as_str)
            .map(String::from);
        out.push(ChatEvent::Finish {
            reason: reason.to_string(),
            native,
        });
    }
    if let Some(error) = chunk.get("error").filter(|e| !e.is_null()) {
        out.push(ChatEvent::Error(error.clone()));
    }
    if let Some(mut usage) = chunk.get("usage").and_then(StreamUsage::from_value) {
        let text = |k: &str| chunk.get(k).and_then(Value::as_str).map(String::from);
        usage.provider = text("provider");
        usage.model = text("model");
        out.push(ChatEvent::Usage(usage));
    }
}

fn delta_events(delta: &Value, out: &mut Vec<ChatEvent>) {
    let text = |k: &str| {
        delta
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let details = delta.get("reasoning_details").and_then(Value::as_array);
    let detail_text = || -> Option<String> {
        let joined: String = details?
            .iter()
            .filter(|d| d["type"] == "reasoning.text")
            .filter_map(|d| d.get("text").and_then(Value::as_str))
            .collect();
        (!joined.is_empty()).then_some(joined)
    };
    // A provider sends reasoning as plain text, as details, or both (OpenRouter): one of them.
    let reasoning = text("reasoning")
        .or_else(|| text("reasoning_content"))
        .map(String::from)
        .or_else(detail_text);
    if let Some(r) = reasoning {
        out.push(ChatEvent::Reasoning(r));
    }
    // Claude's signed thinking only, as the whole answer's conversion reads it: a client sends
    // these blocks back to Claude, which refuses another provider's signature (Gemini's).
    let claude = |d: &&Value| {
        d.get("format")
            .and_then(Value::as_str)
            .is_some_and(|f| CLAUDE_REASONING_FORMATS.contains(&f))
    };
    for d in details.into_iter().flatten().filter(claude) {
        let field = |k: &str| d.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
        match (d["type"].as_str(), field("signature"), field("data")) {
            (Some("reasoning.text"), Some(sig), _) => {
                out.push(ChatEvent::ReasoningSignature(sig.to_string()))
            }
            (Some("reasoning.encrypted"), _, Some(data)) => {
                out.push(ChatEvent::ReasoningEncrypted(data.to_string()))
            }
            _ => {}
        }
    }
    if let Some(t) = text("content") {
        out.push(ChatEvent::Text(t.to_string()));
    }
    if let Some(r) = text("refusal") {
        out.push(ChatEvent::Refusal(r.to_string()));
    }
    for (position, call) in delta
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let s = |p: &str| {
            call.pointer(p)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(String::from)
        };
        let index = call
            .get("index")
            .and_then(Value::as_u64)
            .map_or(position, |i| i as usize);
        out.push(ChatEvent::ToolCall {
            index,
            id: s("/id"),
            name: s("/function/name"),
            arguments: s("/function/arguments").unwrap_or_default(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(input: &[u8]) -> Vec<ChatEvent> {
        let mut reader = ChatChunkReader::default();
        let mut out = Vec::new();
        assert!(reader.feed(input, &mut out));
        reader.finish(&mut out);
        out
    }

    #[test]
    fn reads_each_kind_of_chunk() {
        let input = concat!(
            ": keep-alive\n\n",
            r#"data: {"id":"g1","model":"m","choices":[{"index":0,"delta":{"reasoning":"hm","reasoning_details":[{"type":"reasoning.text","text":"hm","signature":"sig","format":"anthropic-claude-v1"}]}}]}"#,
            "\n\n",
            r#"data: {"choices":[{"delta":{"content":"Hi"},"finish_reason":null}]}"#,
            "\n\n",
            r#"data: {"choices":[{"delta":{"tool_calls":[{"index":1,"id":"c","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls","native_finish_reason":"tool_use"}]}"#,
            "\n\n",
            r#"data: {"choices":[],"provider":"p","model":"a/b","usage":{"prompt_tokens":3,"completion_tokens":2,"cost":0.5}}"#,
            "\n\ndata: [DONE]"
        );
        let events = read(input.as_bytes());
        assert_eq!(events[0], ChatEvent::Comment(": keep-alive".into()));
        assert_eq!(events[1], ChatEvent::Reasoning("hm".into()));
        assert_eq!(events[2], ChatEvent::ReasoningSignature("sig".into()));
        assert_eq!(events[3], ChatEvent::Text("Hi".into()));
        assert_eq!(
            events[4],
            ChatEvent::ToolCall {
                index: 1,
                id: Some("c".into()),
                name: Some("f".into()),
                arguments: "{}".into()
            }
        );
        assert_eq!(
            events[5],
            ChatEvent::Finish {
                reason: "tool_calls".into(),
                native: Some("tool_use".into())
            }
        );
        let ChatEvent::Usage(u) = &events[6] else {
            panic!("{:?}", events[6])
        };
        assert_eq!((u.usage.prompt, u.usage.completion), (3, 2));
        assert_eq!(u.provider.as_deref(), Some("p"));
        assert_eq!(events[7], ChatEvent::Done);
    }

    #[test]
    fn only_claudes_signed_thinking_is_read_as_such() {
        let input = concat!(
            r#"data: {"choices":[{"delta":{"reasoning":"hm","reasoning_details":[{"type":"reasoning.text","text":"hm","signature":"gsig","format":"google-gemini-v1"},{"type":"reasoning.encrypted","data":"genc","format":"google-gemini-v1"},{"type":"reasoning.encrypted","data":"oenc","format":"openai-responses-v1"},{"type":"reasoning.encrypted","data":"noformat"},{"type":"reasoning.text","text":"","signature":"bsig","format":"amazon-bedrock-converse-v1"},{"type":"reasoning.encrypted","data":"aenc","format":"anthropic-claude-v1"}]}}]}"#,
            "\n\n"
        );
        assert_eq!(
            read(input.as_bytes()),
            [
                ChatEvent::Reasoning("hm".into()),
                ChatEvent::ReasoningSignature("bsig".into()),
                ChatEvent::ReasoningEncrypted("aenc".into()),
            ]
        );
    }

    #[test]
    fn error_chunks_are_errors_not_finishes() {
        let input = br#"data: {"error":{"message":"boom","code":502},"choices":[{"index":0,"delta":{},"finish_reason":"error"}]}

"#;
        let events = read(input);
        assert_eq!(events.len(), 1);
        assert!(matches!(&events[0], ChatEvent::Error(e) if e["message"] == "boom"));
    }

    #[test]
    fn garbage_is_skipped() {
        assert!(read(b"data: {nope\n\ndata: [1]\n\ndata: 5\n\n\xff\n\n").is_empty());
    }
}
