//! The serde shapes of OpenAI's JSON, declared in OpenAI's field order: structs rather than
//! `json!` because `serde_json::Value` would sort the keys.

use serde::Serialize;

#[derive(Serialize)]
pub struct UsageOut {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    /// Left out by DeepSeek, which counts cache hits in the two fields after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptDetails>,
    pub completion_tokens_details: CompletionDetails,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_cache_hit_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_cache_miss_tokens: Option<u64>,
}

#[derive(Serialize)]
pub struct PromptDetails {
    pub cached_tokens: u64,
    pub audio_tokens: u64,
    /// OpenRouter's count of prompt tokens written to the cache, when there were any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_write_tokens: Option<u64>,
}

#[derive(Serialize)]
pub struct CompletionDetails {
    pub reasoning_tokens: u64,
    pub audio_tokens: u64,
    pub accepted_prediction_tokens: u64,
    pub rejected_prediction_tokens: u64,
}

#[derive(Serialize)]
pub struct CompletionOut<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created: u64,
    pub model: &'a str,
    pub choices: [CompletionChoice<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageOut>,
    pub service_tier: &'static str,
    pub system_fingerprint: &'static str,
}

#[derive(Serialize)]
pub struct CompletionChoice<'a> {
    pub index: u32,
    pub message: MessageOut<'a>,
    pub logprobs: Option<()>,
    pub finish_reason: &'static str,
}

#[derive(Serialize)]
pub struct MessageOut<'a> {
    pub role: &'static str,
    pub content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<[ToolCallOut<'a>; 1]>,
    pub refusal: Option<()>,
    pub annotations: [(); 0],
}

#[derive(Serialize)]
pub struct ToolCallOut<'a> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: FunctionOut<'a>,
}

#[derive(Serialize)]
pub struct FunctionOut<'a> {
    pub name: &'a str,
    pub arguments: &'a str,
}

#[derive(Serialize)]
pub struct ChunkOut<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created: u64,
    pub model: &'a str,
    pub service_tier: &'static str,
    pub system_fingerprint: &'static str,
    pub choices: Vec<ChoiceOut<'a>>,
    /// `None`: absent; `Some(None)`: `"usage": null`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Option<UsageOut>>,
}

#[derive(Serialize)]
pub struct ChoiceOut<'a> {
    pub index: u32,
    pub delta: DeltaOut<'a>,
    pub logprobs: Option<()>,
    pub finish_reason: Option<&'static str>,
    /// Moonshot's place for a stream's usage: on the finishing choice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageOut>,
}

#[derive(Serialize, Default)]
pub struct DeltaOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    /// `Some(None)`: `"content": null` (first delta of a tool call).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<Option<&'a str>>,
    /// A reasoning model's thinking, as DeepSeek and vLLM stream it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<[ToolCallDelta<'a>; 1]>,
}

#[derive(Serialize)]
pub struct ToolCallDelta<'a> {
    pub index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    pub function: FunctionDelta<'a>,
}

#[derive(Serialize)]
pub struct FunctionDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    pub arguments: &'a str,
}

#[derive(Serialize)]
pub struct ErrorOut<'a> {
    pub error: ErrorInner<'a>,
}

#[derive(Serialize)]
pub struct ErrorInner<'a> {
    pub message: &'a str,
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub param: Option<&'a str>,
    pub code: Option<&'a str>,
}

#[derive(Serialize)]
pub struct EmbeddingsOut<'a> {
    pub object: &'static str,
    pub data: Vec<EmbeddingOut>,
    pub model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<EmbeddingUsage>,
}

#[derive(Serialize)]
pub struct EmbeddingOut {
    pub object: &'static str,
    pub index: usize,
    pub embedding: Vector,
}

#[derive(Serialize)]
#[serde(untagged)]
pub enum Vector {
    Floats([f32; 8]),
    Base64(String),
}

#[derive(Serialize)]
pub struct EmbeddingUsage {
    pub prompt_tokens: u64,
    pub total_tokens: u64,
}
