//! The response side: what the gateway does with each kind of upstream answer.
//!
//! - A stream passes through the metering tap untouched and ends with the gateway's usage
//!   chunk and `[DONE]`.
//! - A JSON answer is small and final, so it is buffered, stamped with the generation id,
//!   catalog model, provider and cost, and sent once.
//! - An upstream error that is not failed over is buffered and replaced by the gateway's own
//!   error (the provider's body goes into `metadata`).

use bytes::{Bytes, BytesMut};
use serde_json::{json, Value};

use super::ctx::RequestCtx;
use super::stream::ChatStream;
use crate::api::stamp::{Completion, Stamp};
use crate::api::ApiError;
use crate::catalog::Dialect;
use crate::metering::{Cost, Usage, ESTIMATED_BYTES_PER_TOKEN};

/// Largest non-stream answer the gateway buffers; bigger ones are refused as upstream errors.
pub const MAX_JSON_RESPONSE: usize = 64 * 1024 * 1024;
/// How much of an upstream error body is kept for `metadata`.
const MAX_ERROR_BODY: usize = 16 * 1024;

pub enum ResponseMode {
    /// Not proxying (local answer) or no upstream answer yet.
    None,
    Stream(Box<ChatStream>),
    /// An Anthropic client's stream from an Anthropic provider: forwarded as is, metered.
    Passthrough(Box<crate::api::messages::AnthropicStreamTap>),
    Json(BytesMut),
    UpstreamError {
        status: u16,
        /// Bedrock's `x-amzn-errortype`, which decides the client's status with `status`.
        error_type: Option<Box<str>>,
        body: BytesMut,
        retry_after: Option<u64>,
    },
}

impl ResponseMode {
    /// Whether the client gets the answer only once it is whole (JSON and upstream errors).
    pub fn is_buffered(&self) -> bool {
        matches!(
            self,
            ResponseMode::Json(_) | ResponseMode::UpstreamError { .. }
        )
    }
}

/// Appends to a bounded buffer; returns false once the bound would be passed.
pub fn buffer_bounded(buf: &mut BytesMut, chunk: &[u8], max: usize) -> bool {
    if buf.len() + chunk.len() > max {
        let room = max.saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..room.min(chunk.len())]);
        return false;
    }
    buf.extend_from_slice(chunk);
    true
}

pub fn error_body_limit() -> usize {
    MAX_ERROR_BODY
}

impl RequestCtx {
    /// The amount to charge for `usage` at the serving endpoint's price plus the fee.
    pub fn cost_of(&self, usage: &Usage) -> Cost {
        let provider_cost = self
            .current
            .as_ref()
            .map_or(0, |c| usage.cost_pico(&c.endpoint().price));
        Cost::with_fee(provider_cost, self.snapshot.billing.fee_percent)
    }

    /// The documented estimate, for providers that report no usage.
    pub fn estimate_usage(&self, completion_tokens: u64) -> Usage {
        let prompt_bytes = self
            .chat
            .as_ref()
            .map_or(0, |c| c.fields.body().len() as u64);
        Usage {
            prompt: prompt_bytes.div_ceil(ESTIMATED_BYTES_PER_TOKEN),
            completion: completion_tokens,
            estimated: true,
            ..Usage::default()
        }
    }

    fn served_model(&self) -> &str {
        self.current.as_ref().map_or("", |c| c.model.id.as_str())
    }

    fn served_provider(&self) -> &str {
        self.current
            .as_ref()
            .map_or("", |c| c.provider().id.as_str())
    }

    /// The serving provider's dialect.
    pub fn dialect(&self) -> Dialect {
        self.current
            .as_ref()
            .map_or(Dialect::OpenAi, |c| c.provider().dialect)
    }

    /// The final usage chunk every stream ends with, then `[DONE]`.
    pub fn stream_tail(&mut self, stream: &ChatStream) -> Bytes {
        let deltas = match stream {
            ChatStream::Passthrough(tap) => tap.content_deltas,
            _ => self.stream_events,
        };
        let usage = match stream.usage() {
            // Cut before the provider's final count (a client that left, a reset): the prompt
            // it reported, the completion estimated from what was relayed (DESIGN §4: it pays
            // for what was generated).
            Some(u) if !stream.usage_is_final() => Usage {
                completion: u.completion.max(deltas),
                estimated: true,
                ..u
            },
            Some(u) => u,
            None => self.estimate_usage(deltas),
        };
        self.usage = Some(usage);
        if self.finish_reason.is_none() {
            self.finish_reason = stream.finish_reason();
        }
        let chunk = json!({
            "id": self.generation_id,
            "object": "chat.completion.chunk",
            "created": self.created_unix,
            "model": self.served_model(),
            "provider": self.served_provider(),
            "choices": [],
            "usage": usage.to_openai_json(self.cost_of(&usage)),
        });
        Bytes::from(format!("data: {chunk}\n\ndata: [DONE]\n\n"))
    }

    /// A chunk that tells a streaming client the upstream failed after the first byte. Its
    /// `error.code` is the HTTP status, as OpenRouter's stream chunks carry it.
    pub fn stream_error_chunk(&self, error: &ApiError) -> Bytes {
        let mut body = error.to_json(self.door)["error"].clone();
        body["code"] = json!(error.status);
        let chunk = json!({
            "id": self.generation_id,
            "object": "chat.completion.chunk",
            "created": self.created_unix,
            "model": self.served_model(),
            "provider": self.served_provider(),
            "error": body,
            "choices": [{ "index": 0, "delta": {}, "finish_reason": "error" }],
        });
        Bytes::from(format!("data: {chunk}\n\n"))
    }

    /// Stamps a complete chat completion (converted to OpenAI's shape first if the provider
    /// speaks another dialect) with the gateway's id, catalog model, provider and cost. A body
    /// that cannot be read becomes a 502-shaped error body (the status line has already gone
    /// out with the upstream's 200).
    pub fn finish_json(&mut self, body: &[u8]) -> Bytes {
        if !crate::dialects::converts_responses(self.dialect()) {
            // OpenAI's own shape: stamped in place, the provider's bytes copied as they are.
            return match Completion::parse(body) {
                Some(completion) => {
                    let peek = completion.peek();
                    let usage = peek.usage.unwrap_or_else(|| {
                        self.estimate_usage(
                            (peek.content_bytes as u64).div_ceil(ESTIMATED_BYTES_PER_TOKEN),
                        )
                    });
                    self.usage = Some(usage);
                    self.finish_reason = peek.finish_reason;
                    completion.stamp(&Stamp {
                        id: &self.generation_id,
                        model: self.served_model(),
                        provider: self.served_provider(),
                        usage: usage.to_openai(self.cost_of(&usage)),
                    })
                }
                None => self.unreadable_answer(ApiError::bad_gateway(
                    "the provider answered with a body that is not a JSON object",
                )),
            };
        }
        let (mut value, reported) =
            match crate::dialects::chat_response(self.dialect(), body, self.created_unix) {
                Ok(parsed) => parsed,
                Err(e) => return self.unreadable_answer(e),
            };
        let usage = reported.unwrap_or_else(|| {
            let text_len = value
                .pointer("/choices/0/message/content")
                .and_then(Value::as_str)
                .map_or(0, str::len) as u64;
            self.estimate_usage(text_len.div_ceil(ESTIMATED_BYTES_PER_TOKEN))
        });
        self.usage = Some(usage);
        self.finish_reason = value
            .pointer("/choices/0/finish_reason")
            .and_then(Value::as_str)
            .map(str::to_string);
        value["id"] = json!(self.generation_id);
        value["model"] = json!(self.served_model());
        value["provider"] = json!(self.served_provider());
        value["usage"] = usage.to_openai_json(self.cost_of(&usage));
        Bytes::from(value.to_string())
    }

    /// The 502 body for a completion the gateway cannot read, recorded as the request's error.
    fn unreadable_answer(&mut self, e: ApiError) -> Bytes {
        let error = ApiError::bad_gateway(format!(
            "provider {}: {}",
            self.served_provider(),
            e.message
        ))
        .with_metadata(json!({ "provider_name": self.served_provider() }));
        let out = error.body(self.door);
        self.error = Some(error);
        self.usage = Some(self.estimate_usage(0));
        out
    }

    /// The client-facing error for an upstream error answer that is not failed over: the
    /// status its head decided (`error_status_at_head`, so the status line and the body
    /// agree), the provider's message from its body.
    pub fn upstream_error(
        &self,
        upstream_status: u16,
        error_type: Option<&str>,
        body: &[u8],
    ) -> ApiError {
        let status =
            crate::dialects::error_status_at_head(self.dialect(), upstream_status, error_type);
        let provider = self.served_provider();
        let raw: Value = serde_json::from_slice(body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()));
        let message = raw
            .pointer("/error/message")
            .or_else(|| raw.pointer("/message"))
            .and_then(Value::as_str)
            .map_or_else(
                || format!("provider {provider} answered HTTP {status}"),
                |m| format!("provider {provider}: {m}"),
            );
        let metadata = json!({ "provider_name": provider, "status": upstream_status, "raw": raw,
                               "attempts": super::failover::attempts_json(self) });
        let error = match status {
            429 => ApiError::rate_limited(message, 1),
            400 | 413 | 422 => {
                let mut e = ApiError::bad_request(message);
                e.status = status;
                e
            }
            408 | 504 => ApiError::gateway_timeout(message),
            _ => ApiError::bad_gateway(message),
        };
        error.with_metadata(metadata)
    }
}
