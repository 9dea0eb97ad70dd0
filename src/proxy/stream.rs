//! The streaming response, whatever the provider's dialect: OpenAI-compatible streams pass
//! through the metering tap untouched; Anthropic and Gemini streams are converted event by
//! event into OpenAI chunks.

use bytes::Bytes;
use serde_json::Value;

use crate::catalog::Dialect;
use crate::dialects::{anthropic, bedrock, gemini};
use crate::metering::{OpenAiStreamTap, Usage};

pub enum ChatStream {
    Passthrough(OpenAiStreamTap),
    Anthropic(anthropic::StreamConverter),
    Gemini(gemini::StreamConverter),
    Bedrock(bedrock::StreamConverter),
}

impl ChatStream {
    /// `generation_id` and `upstream_model` name the chunks of dialects whose streams carry
    /// neither (Bedrock: the answer has no id of its own, and AWS's request id, which the
    /// client gets as `x-upstream-request-id`, may be missing).
    pub fn new(
        dialect: Dialect,
        created_unix: u64,
        generation_id: &str,
        upstream_model: &str,
    ) -> ChatStream {
        match dialect {
            Dialect::Bedrock => ChatStream::Bedrock(
                bedrock::StreamConverter::new(created_unix)
                    .with_identity(generation_id, upstream_model),
            ),
            Dialect::Anthropic => {
                ChatStream::Anthropic(anthropic::StreamConverter::new(created_unix))
            }
            Dialect::Gemini => ChatStream::Gemini(
                gemini::StreamConverter::new(created_unix).with_generation_id(generation_id),
            ),
            _ => ChatStream::Passthrough(OpenAiStreamTap::new()),
        }
    }

    /// The bytes to send the client for one upstream chunk.
    pub fn on_chunk(&mut self, chunk: Bytes) -> Bytes {
        match self {
            ChatStream::Passthrough(tap) => tap.on_chunk(chunk),
            ChatStream::Anthropic(c) => c.on_chunk(&chunk),
            ChatStream::Gemini(c) => c.on_chunk(&chunk),
            ChatStream::Bedrock(c) => c.on_chunk(&chunk),
        }
    }

    /// What is left once the upstream stream ended (never `[DONE]` or a usage chunk).
    pub fn finish(&mut self) -> Bytes {
        match self {
            ChatStream::Passthrough(tap) => tap.finish(),
            ChatStream::Anthropic(c) => c.finish(),
            ChatStream::Gemini(c) => c.finish(),
            ChatStream::Bedrock(c) => c.finish(),
        }
    }

    /// Whether [`Self::usage`]'s completion count is the provider's final one. Anthropic
    /// reports output only at the end (`message_delta`); the others report usage once, at the
    /// end, or cumulatively.
    pub fn usage_is_final(&self) -> bool {
        match self {
            ChatStream::Anthropic(c) => c.saw_final_usage(),
            _ => true,
        }
    }

    /// The provider's reported usage, if any.
    pub fn usage(&self) -> Option<Usage> {
        match self {
            ChatStream::Passthrough(tap) => tap.usage,
            ChatStream::Anthropic(c) => c.usage().filter(|u| !u.estimated),
            ChatStream::Gemini(c) => c.usage().filter(|u| !u.estimated),
            ChatStream::Bedrock(c) => c.usage().filter(|u| !u.estimated),
        }
    }

    pub fn finish_reason(&self) -> Option<String> {
        match self {
            ChatStream::Passthrough(tap) => tap.finish_reason.clone(),
            ChatStream::Anthropic(c) => c.finish_reason().map(str::to_string),
            ChatStream::Gemini(c) => c.finish_reason().map(str::to_string),
            ChatStream::Bedrock(c) => c.finish_reason().map(str::to_string),
        }
    }

    /// Whether the provider ended its stream as a whole answer ends: an OpenAI stream with a
    /// finish reason or `[DONE]`, an Anthropic one with `message_stop`, a Gemini or Bedrock
    /// one with its finish reason (`finishReason`, `messageStop`). A stream closed cleanly
    /// without it was cut off.
    pub fn is_complete(&self) -> bool {
        match self {
            ChatStream::Passthrough(tap) => tap.saw_done || tap.finish_reason.is_some(),
            ChatStream::Anthropic(c) => c.saw_message_stop(),
            ChatStream::Gemini(c) => c.finish_reason().is_some(),
            ChatStream::Bedrock(c) => c.finish_reason().is_some(),
        }
    }

    /// Whether the provider has sent its answer's last event, after which nothing of the
    /// answer follows: OpenAI's usage-only chunk or `[DONE]`, Anthropic's `message_stop`.
    /// (Gemini and Bedrock streams end when the provider closes them.)
    pub fn has_ended(&self) -> bool {
        match self {
            ChatStream::Passthrough(tap) => {
                tap.saw_done || (tap.saw_usage_chunk && tap.finish_reason.is_some())
            }
            ChatStream::Anthropic(c) => c.saw_message_stop(),
            ChatStream::Gemini(_) | ChatStream::Bedrock(_) => false,
        }
    }

    /// An error the provider reported inside the stream.
    pub fn error(&self) -> Option<Value> {
        match self {
            ChatStream::Passthrough(tap) => tap.upstream_error.clone(),
            ChatStream::Anthropic(c) => c.error().cloned(),
            ChatStream::Gemini(c) => c.error().cloned(),
            ChatStream::Bedrock(c) => c.error().cloned(),
        }
    }
}

/// Counts the content events of converted output, the basis of the usage estimate when a
/// provider reports none (one token per delta, as for OpenAI streams).
pub fn count_events(out: &[u8]) -> u64 {
    memchr::memmem::find_iter(out, b"\n\n").count() as u64
}
