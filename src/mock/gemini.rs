//! Gemini `generateContent` and `streamGenerateContent` as Google sends them. A stream with
//! `alt=sse` is `data: <GenerateContentResponse>\r\n\r\n` events, each holding only the new
//! parts (a thought when the request asks for thoughts, then one word or one whole function
//! call per event), the last with `finishReason` and `usageMetadata`; without `alt=sse`, the
//! same responses as one JSON array. Usage follows Gemini's split: thoughts are counted apart
//! from `candidatesTokenCount`.

use std::sync::Arc;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::Response;
use serde_json::{json, Value};

use super::body::{ConnCtl, MockBody};
use super::dialect::{gemini_error, gemini_target};
use super::faults::Fault;
use super::handler::{ok_json, reply_text, respond};
use super::openai::{Answer, Usage};
use super::sse::event_stream;
use super::{text, State};

const THOUGHT: &str = "Let me think about that.";
/// A function call's thought signature (opaque to clients).
const SIGNATURE: &str = "bW9jay1zaWduYXR1cmU=";
const MALFORMED: &str = "data: {\"candidates\": [broken\r\n\r\n";

/// `POST .../models/{model}:generateContent` and `:streamGenerateContent`.
pub fn generate(
    state: &State,
    path: &str,
    query: Option<&str>,
    json: Option<Value>,
    fault: &Fault,
    ctl: &Arc<ConnCtl>,
) -> Response<MockBody> {
    let Some((model, method)) = gemini_target(path) else {
        return gemini_error(404, "The requested URL was not found on this server.");
    };
    let Some(req) = json.filter(Value::is_object) else {
        return gemini_error(400, "Invalid JSON payload received. Expected an object.");
    };
    let Some(contents) = req
        .get("contents")
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
    else {
        return gemini_error(
            400,
            "* GenerateContentRequest.contents: contents is not specified\n",
        );
    };
    let messages = as_messages(contents);
    let n = state.next_id();
    let tool = req
        .pointer("/tools/0/functionDeclarations/0/name")
        .and_then(Value::as_str);
    let answer = match tool.filter(|_| fault.tool_call) {
        Some(name) => Answer::Tool {
            call_id: String::new(), // Gemini gives calls no id
            name: name.to_string(),
        },
        None => Answer::text(reply_text(&messages, fault)),
    };
    let thoughts =
        req.pointer("/generationConfig/thinkingConfig/includeThoughts") == Some(&Value::Bool(true));
    let mut generation = Generation {
        id: format!("mock-resp-{n}"),
        model,
        answer,
        thoughts,
        usage: Usage::default(),
        send_usage: !fault.no_usage,
    };
    let reasoning = fault.usage_reasoning.unwrap_or(0);
    generation.usage = Usage {
        prompt: fault
            .usage_prompt
            .unwrap_or_else(|| text::prompt_tokens(&messages)),
        completion: fault
            .usage_completion
            .unwrap_or(generation.deltas() as u64 + reasoning),
        cached: fault.usage_cached.unwrap_or(0),
        reasoning,
        cache_write: 0, // Gemini reports no cache writes
    };
    let events = generation.events(fault.malformed, fault.truncated);
    match method {
        "streamGenerateContent"
            if query.is_some_and(|q| q.split('&').any(|kv| kv == "alt=sse")) =>
        {
            let generation = Arc::new(generation);
            event_stream(events, move |e| generation.render(e), fault, ctl)
        }
        "streamGenerateContent" => {
            let items: Vec<String> = events.map(|e| generation.json(e)).collect();
            let body = format!("[{}]", items.join(",\r\n"));
            respond(
                200,
                &[(CONTENT_TYPE, "application/json")],
                MockBody::full(body),
            )
        }
        _ => ok_json(generation.body(), fault, ctl),
    }
}

/// Gemini contents as OpenAI-style messages, so the shared text helpers (echo, token counts)
/// read them: `model` is the assistant, parts' texts are the content.
fn as_messages(contents: &[Value]) -> Vec<Value> {
    contents
        .iter()
        .map(|c| {
            let role = match c.get("role").and_then(Value::as_str) {
                Some("model") => "assistant",
                _ => "user",
            };
            let parts = c
                .get("parts")
                .and_then(Value::as_array)
                .into_iter()
                .flatten();
            let texts: Vec<&str> = parts
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect();
            json!({ "role": role, "content": texts.join(" ") })
        })
        .collect()
}

/// One Gemini answer, rendered whole or as stream events.
pub struct Generation {
    pub id: String,
    pub model: String,
    pub answer: Answer,
    /// `includeThoughts` was asked for: a thought part comes first.
    pub thoughts: bool,
    pub usage: Usage,
    pub send_usage: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Malformed,
    Thought,
    Delta(usize),
    Final,
}

impl Generation {
    fn deltas(&self) -> usize {
        match &self.answer {
            Answer::Text { spans, .. } => spans.len(),
            Answer::Tool { .. } => 1, // Gemini sends a function call whole
        }
    }

    fn usage_metadata(&self) -> Value {
        let u = self.usage;
        let mut meta = json!({
            "promptTokenCount": u.prompt,
            "candidatesTokenCount": u.completion.saturating_sub(u.reasoning),
            "totalTokenCount": u.prompt.saturating_add(u.completion),
        });
        if u.cached > 0 {
            meta["cachedContentTokenCount"] = json!(u.cached);
        }
        if u.reasoning > 0 {
            meta["thoughtsTokenCount"] = json!(u.reasoning);
        }
        meta
    }

    fn response(&self, parts: Vec<Value>, last: bool) -> Value {
        let mut candidate = json!({ "content": { "parts": parts, "role": "model" } });
        if last {
            candidate["finishReason"] = json!("STOP");
        }
        candidate["index"] = json!(0);
        let mut v = json!({ "candidates": [candidate] });
        if last && self.send_usage {
            v["usageMetadata"] = self.usage_metadata();
        }
        v["modelVersion"] = json!(self.model);
        v["responseId"] = json!(self.id);
        v
    }

    fn call_part(name: &str) -> Value {
        json!({ "functionCall": { "name": name, "args": { "location": "Paris" } }, "thoughtSignature": SIGNATURE })
    }

    /// The non-stream response.
    pub fn body(&self) -> Vec<u8> {
        let mut parts = Vec::new();
        if self.thoughts {
            parts.push(json!({ "text": THOUGHT, "thought": true }));
        }
        parts.push(match &self.answer {
            Answer::Text { content, .. } => json!({ "text": content }),
            Answer::Tool { name, .. } => Self::call_part(name),
        });
        self.response(parts, true).to_string().into_bytes()
    }

    /// The stream's events. `truncated` drops the last one (finish reason and usage).
    pub fn events(
        &self,
        malformed: bool,
        truncated: bool,
    ) -> impl Iterator<Item = Event> + Clone + Send + 'static {
        std::iter::empty()
            .chain(malformed.then_some(Event::Malformed))
            .chain(self.thoughts.then_some(Event::Thought))
            .chain((0..self.deltas()).map(Event::Delta))
            .chain((!truncated).then_some(Event::Final))
    }

    /// One event's response JSON (the broken text itself for `Malformed`).
    pub fn json(&self, event: Event) -> String {
        let parts = match (event, &self.answer) {
            (Event::Malformed, _) => return "{\"candidates\": [broken".into(),
            (Event::Thought, _) => vec![json!({ "text": THOUGHT, "thought": true })],
            (Event::Delta(i), Answer::Text { content, spans }) => {
                vec![
                    json!({ "text": spans.get(i).and_then(|r| content.get(r.clone())).unwrap_or("") }),
                ]
            }
            (Event::Delta(_), Answer::Tool { name, .. }) => vec![Self::call_part(name)],
            (Event::Final, _) => vec![json!({ "text": "" })],
        };
        self.response(parts, event == Event::Final).to_string()
    }

    /// One event framed as Gemini frames SSE: `data: JSON\r\n\r\n`.
    pub fn render(&self, event: Event) -> Bytes {
        if event == Event::Malformed {
            return Bytes::from_static(MALFORMED.as_bytes());
        }
        Bytes::from(format!("data: {}\r\n\r\n", self.json(event)))
    }
}
