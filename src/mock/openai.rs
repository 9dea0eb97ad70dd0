//! OpenAI Chat Completions / Embeddings / Models bodies and SSE events, as OpenAI sends them.

use std::ops::Range;

use super::wire::{
    ChoiceOut, ChunkOut, CompletionChoice, CompletionDetails, CompletionOut, DeltaOut,
    EmbeddingOut, EmbeddingUsage, EmbeddingsOut, ErrorInner, ErrorOut, FunctionDelta, FunctionOut,
    MessageOut, PromptDetails, ToolCallDelta, ToolCallOut, UsageOut, Vector,
};
use bytes::Bytes;

const FINGERPRINT: &str = "fp_mock";
const SERVICE_TIER: &str = "default";
/// `tool_call` arguments, split over three stream deltas the way OpenAI splits them.
const TOOL_ARGS: [&str; 3] = ["{\"location\"", ":\"Pa", "ris\"}"];
const TOOL_ARGS_WHOLE: &str = "{\"location\":\"Paris\"}";
const MALFORMED: &[u8] = b"{\"id\": \"broken";

pub const MODELS_BODY: &str = r#"{"object":"list","data":[{"id":"mock-small","object":"model","created":0,"owned_by":"mock"}]}"#;

/// Reported token counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt: u64,
    pub completion: u64,
    pub cached: u64,
    pub reasoning: u64,
    /// Prompt tokens written to the prompt cache (`usage_cache_write=N`): Anthropic's
    /// `cache_creation_input_tokens`, Bedrock's `cacheWriteInputTokens`, OpenRouter's
    /// `prompt_tokens_details.cache_write_tokens`.
    pub cache_write: u64,
}

/// What the assistant answers.
pub enum Answer {
    /// Content, and its word deltas as byte ranges into it.
    Text {
        content: String,
        spans: Vec<Range<usize>>,
    },
    /// One call to the request's first tool.
    Tool { call_id: String, name: String },
}

impl Answer {
    pub fn text(content: String) -> Answer {
        let spans = super::text::word_spans(&content);
        Answer::Text { content, spans }
    }

    /// Number of content (or tool-argument) deltas a stream sends; also completion_tokens.
    pub fn delta_count(&self) -> usize {
        match self {
            Answer::Text { spans, .. } => spans.len(),
            Answer::Tool { .. } => TOOL_ARGS.len(),
        }
    }

    fn finish_reason(&self) -> &'static str {
        match self {
            Answer::Text { .. } => "stop",
            Answer::Tool { .. } => "tool_calls",
        }
    }
}

/// One chat completion, rendered either whole or as stream events.
pub struct Chat {
    pub id: String,
    pub created: u64,
    pub model: String,
    pub answer: Answer,
    pub usage: Usage,
    /// False under `no_usage`: never report usage.
    pub send_usage: bool,
    /// `stream_options.include_usage` of the request.
    pub include_usage: bool,
    /// `xai_usage`: reasoning reported apart from `completion_tokens`.
    pub xai_usage: bool,
    /// `reasoning_deltas`: thinking deltas a stream sends before the answer.
    pub reasoning_deltas: usize,
    /// `deepseek_usage`: cache hits reported as DeepSeek reports them.
    pub deepseek_usage: bool,
    /// `choice_usage`: a stream's usage on its finishing choice, as Moonshot sends it.
    pub choice_usage: bool,
}

/// One SSE event of a chat stream; rendered lazily so `chunks=1000000` allocates nothing upfront.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    First,
    Malformed,
    Reasoning,
    Delta(usize),
    Final,
    Usage,
    Done,
}

impl Chat {
    /// The non-stream `chat.completion` object.
    pub fn completion_body(&self) -> Vec<u8> {
        let (content, tool_calls) = match &self.answer {
            Answer::Text { content, .. } => (Some(content.as_str()), None),
            Answer::Tool { call_id, name } => (
                None,
                Some([ToolCallOut {
                    id: call_id,
                    kind: "function",
                    function: FunctionOut {
                        name,
                        arguments: TOOL_ARGS_WHOLE,
                    },
                }]),
            ),
        };
        let out = CompletionOut {
            id: &self.id,
            object: "chat.completion",
            created: self.created,
            model: &self.model,
            choices: [CompletionChoice {
                index: 0,
                message: MessageOut {
                    role: "assistant",
                    content,
                    tool_calls,
                    refusal: None,
                    annotations: [],
                },
                logprobs: None,
                finish_reason: self.answer.finish_reason(),
            }],
            usage: self
                .send_usage
                .then(|| usage_out(self.usage, self.xai_usage, self.deepseek_usage)),
            service_tier: SERVICE_TIER,
            system_fingerprint: FINGERPRINT,
        };
        serde_json::to_vec(&out).unwrap_or_default()
    }

    /// The stream's event sequence. `truncated` drops the final, usage and `[DONE]` events.
    pub fn events(&self, malformed: bool, truncated: bool) -> impl Iterator<Item = Event> + Send {
        let usage = self.include_usage && self.send_usage && !truncated && !self.choice_usage;
        std::iter::once(Event::First)
            .chain(malformed.then_some(Event::Malformed))
            .chain(std::iter::repeat_n(Event::Reasoning, self.reasoning_deltas))
            .chain((0..self.answer.delta_count()).map(Event::Delta))
            .chain((!truncated).then_some(Event::Final))
            .chain(usage.then_some(Event::Usage))
            .chain((!truncated).then_some(Event::Done))
    }

    /// One event, framed as `data: <json>\n\n`.
    pub fn render(&self, event: Event) -> Bytes {
        let mut delta = DeltaOut::default();
        let mut finish_reason = None;
        match (event, &self.answer) {
            (Event::Done, _) => return Bytes::from_static(b"data: [DONE]\n\n"),
            (Event::Malformed, _) => return sse(MALFORMED),
            (Event::Usage, _) => {
                let usage = usage_out(self.usage, self.xai_usage, self.deepseek_usage);
                return self.chunk(Vec::new(), Some(Some(usage)));
            }
            (Event::First, Answer::Text { .. }) => {
                delta.role = Some("assistant");
                delta.content = Some(Some(""));
            }
            (Event::First, Answer::Tool { call_id, name }) => {
                delta.role = Some("assistant");
                delta.content = Some(None);
                delta.tool_calls = Some([ToolCallDelta {
                    index: 0,
                    id: Some(call_id),
                    kind: Some("function"),
                    function: FunctionDelta {
                        name: Some(name),
                        arguments: "",
                    },
                }]);
            }
            (Event::Reasoning, _) => delta.reasoning_content = Some("hmm "),
            (Event::Delta(i), Answer::Text { content, spans }) => {
                delta.content = Some(spans.get(i).and_then(|r| content.get(r.clone())));
            }
            (Event::Delta(i), Answer::Tool { .. }) => {
                delta.tool_calls = Some([ToolCallDelta {
                    index: 0,
                    id: None,
                    kind: None,
                    function: FunctionDelta {
                        name: None,
                        arguments: TOOL_ARGS.get(i).copied().unwrap_or(""),
                    },
                }]);
            }
            (Event::Final, answer) => finish_reason = Some(answer.finish_reason()),
        }
        let usage = (self.choice_usage && self.send_usage && finish_reason.is_some())
            .then(|| usage_out(self.usage, self.xai_usage, self.deepseek_usage));
        let choice = ChoiceOut {
            index: 0,
            delta,
            logprobs: None,
            finish_reason,
            usage,
        };
        // With include_usage on, OpenAI puts `"usage": null` on every non-usage chunk.
        self.chunk(vec![choice], self.include_usage.then_some(None))
    }

    fn chunk(&self, choices: Vec<ChoiceOut<'_>>, usage: Option<Option<UsageOut>>) -> Bytes {
        let out = ChunkOut {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            service_tier: SERVICE_TIER,
            system_fingerprint: FINGERPRINT,
            choices,
            usage,
        };
        sse(&serde_json::to_vec(&out).unwrap_or_default())
    }
}

fn sse(data: &[u8]) -> Bytes {
    let mut v = Vec::with_capacity(data.len() + 8);
    v.extend_from_slice(b"data: ");
    v.extend_from_slice(data);
    v.extend_from_slice(b"\n\n");
    Bytes::from(v)
}

/// The body a non-stream `malformed` fault sends with status 200.
pub fn malformed_body() -> Vec<u8> {
    MALFORMED.to_vec()
}

/// `{"error": {message, type, param, code}}`, OpenAI's error shape.
pub fn error_body(message: &str, kind: &str, param: Option<&str>, code: Option<&str>) -> Vec<u8> {
    let out = ErrorOut {
        error: ErrorInner {
            message,
            kind,
            param,
            code,
        },
    };
    serde_json::to_vec(&out).unwrap_or_default()
}

/// The error a `status=N` fault answers with: (message, type, code).
pub fn status_error(status: u16) -> (String, &'static str, Option<&'static str>) {
    match status {
        429 => (
            "Rate limit reached for requests (mock fault). Please try again later.".into(),
            "rate_limit_exceeded",
            Some("rate_limit_exceeded"),
        ),
        500..=599 => (
            "The server had an error while processing your request (mock fault).".into(),
            "server_error",
            None,
        ),
        _ => (
            format!("Mock fault: status {status}."),
            "invalid_request_error",
            None,
        ),
    }
}

/// An embeddings `list` body; one entry per input text.
pub fn embeddings_body(
    model: &str,
    inputs: &[String],
    tokens: Option<u64>,
    base64: bool,
) -> Vec<u8> {
    let data = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let v = super::text::embedding(text);
            EmbeddingOut {
                object: "embedding",
                index,
                embedding: if base64 {
                    Vector::Base64(super::text::embedding_base64(&v))
                } else {
                    Vector::Floats(v)
                },
            }
        })
        .collect();
    let out = EmbeddingsOut {
        object: "list",
        data,
        model,
        usage: tokens.map(|t| EmbeddingUsage {
            prompt_tokens: t,
            total_tokens: t,
        }),
    };
    serde_json::to_vec(&out).unwrap_or_default()
}

/// `completion` is what `completion_tokens` says: with `xai_usage`, the answer without its
/// reasoning, which only `total_tokens` adds.
/// With `deepseek_usage`, cache hits are `prompt_cache_hit_tokens` (and the rest
/// `prompt_cache_miss_tokens`), with no `prompt_tokens_details`, as DeepSeek documents them.
fn usage_out(u: Usage, xai_usage: bool, deepseek_usage: bool) -> UsageOut {
    let apart = if xai_usage { u.reasoning } else { 0 };
    UsageOut {
        prompt_tokens: u.prompt,
        completion_tokens: u.completion,
        total_tokens: u.prompt.saturating_add(u.completion).saturating_add(apart),
        prompt_tokens_details: (!deepseek_usage).then_some(PromptDetails {
            cached_tokens: u.cached,
            audio_tokens: 0,
            cache_write_tokens: (u.cache_write > 0).then_some(u.cache_write),
        }),
        prompt_cache_hit_tokens: deepseek_usage.then_some(u.cached),
        prompt_cache_miss_tokens: deepseek_usage.then(|| u.prompt.saturating_sub(u.cached)),
        completion_tokens_details: CompletionDetails {
            reasoning_tokens: u.reasoning,
            audio_tokens: 0,
            accepted_prediction_tokens: 0,
            rejected_prediction_tokens: 0,
        },
    }
}
