//! The response body, chunk by chunk, in each response mode (see `response.rs`): what the
//! client gets, and what the gateway learns (usage, finish reason, errors) on the way.

use bytes::{Bytes, BytesMut};
use serde_json::json;
use std::time::Instant;

use super::ctx::{AttemptOutcome, RequestCtx};
use super::frontdoor::{self, FrontEnd};
use super::response::{buffer_bounded, error_body_limit, ResponseMode, MAX_JSON_RESPONSE};
use super::stream::{self, ChatStream};
use crate::api::{embeddings, messages, ApiError};
use crate::catalog::Dialect;
use crate::dialects::gemini;

fn join(parts: &[&[u8]]) -> Bytes {
    let mut out = BytesMut::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        out.extend_from_slice(p);
    }
    out.freeze()
}

impl RequestCtx {
    /// One upstream body chunk in; what to send the client out. `Err` when a non-stream
    /// answer is larger than the gateway buffers.
    pub fn filter_body(
        &mut self,
        chunk: Option<Bytes>,
        end: bool,
    ) -> Result<Option<Bytes>, &'static str> {
        if self.first_byte_at.is_none() && chunk.as_ref().is_some_and(|b| !b.is_empty()) {
            self.first_byte_at = Some(Instant::now());
        }
        let mut mode = std::mem::replace(&mut self.response, ResponseMode::None);
        let out = match &mut mode {
            ResponseMode::None => Ok(chunk),
            ResponseMode::Stream(stream) => Ok(Some(self.stream_chunk(stream, chunk, end))),
            ResponseMode::Passthrough(tap) => {
                let mut out = chunk.map(|b| tap.on_chunk(b)).unwrap_or_default();
                if end {
                    let rest = tap.finish();
                    if !rest.is_empty() {
                        out = join(&[&out, &rest]);
                    }
                    let usage = tap
                        .usage()
                        .unwrap_or_else(|| self.estimate_usage(tap.content_deltas()));
                    self.usage = Some(usage);
                    self.finish_reason = tap.finish_reason().map(str::to_string);
                    if !tap.saw_message_stop() {
                        let error = ApiError::bad_gateway(
                            "the provider's stream ended before message_stop",
                        );
                        out = join(&[&out, &messages::error_event(&error)]);
                        self.error = Some(error);
                    }
                    self.finish_attempt();
                }
                Ok(Some(out))
            }
            ResponseMode::Json(buf) => match chunk {
                Some(b) if !buffer_bounded(buf, &b, MAX_JSON_RESPONSE) => {
                    Err("upstream response too large")
                }
                _ if !end => Ok(None),
                _ => {
                    let out = self.finish_body(buf);
                    self.finish_attempt();
                    Ok(Some(out))
                }
            },
            ResponseMode::UpstreamError {
                status,
                error_type,
                body,
                ..
            } => {
                if let Some(b) = chunk {
                    buffer_bounded(body, &b, error_body_limit());
                }
                Ok(end.then(|| {
                    let error = self.upstream_error(*status, error_type.as_deref(), body);
                    // An Anthropic client of an Anthropic provider gets the provider's own
                    // error body (agents decide how to retry from it).
                    let out = if self.passthrough {
                        body.clone().freeze()
                    } else {
                        error.body(self.door)
                    };
                    self.error = Some(error);
                    out
                }))
            }
        };
        self.response = mode;
        out
    }

    /// The upstream answer is complete: the attempt succeeded, unless the answer turned out
    /// unreadable, cut short or an error (then it counts against the provider's health).
    fn finish_attempt(&mut self) {
        self.finished_at = Some(Instant::now());
        self.end_attempt(if self.error.is_some() {
            AttemptOutcome::Failed
        } else {
            AttemptOutcome::Succeeded
        });
    }

    /// A converted or passed-through OpenAI stream, then the front door's last stage.
    fn stream_chunk(&mut self, stream: &mut ChatStream, chunk: Option<Bytes>, end: bool) -> Bytes {
        if self.stream_finished {
            // The answer already ended with the gateway's tail; a provider sends nothing
            // after its own end marker, and anything it does is not the client's.
            return Bytes::new();
        }
        let mut out = chunk.map(|b| stream.on_chunk(b)).unwrap_or_default();
        if !matches!(stream, ChatStream::Passthrough(_)) {
            self.stream_events += stream::count_events(&out);
        }
        // The tail goes out as soon as the provider marks its answer's end (`[DONE]`,
        // `message_stop`), not when it gets round to closing the response.
        let end = end || stream.has_ended();
        if end {
            self.stream_finished = true;
            let mut parts = vec![out.clone(), stream.finish()];
            if let Some(raw) = stream.error() {
                // The provider reported an error inside its 200 stream.
                let message = raw
                    .pointer("/message")
                    .or_else(|| raw.pointer("/error/message"))
                    .and_then(|m| m.as_str())
                    .unwrap_or("the provider reported an error mid-stream")
                    .to_string();
                let error = ApiError::bad_gateway(message).with_metadata(json!({ "raw": raw }));
                parts.push(self.stream_error_chunk(&error));
                self.error = Some(error);
            } else if !stream.is_complete() {
                // The provider closed its stream cleanly, but before the answer ended.
                let error = ApiError::bad_gateway(format!(
                    "provider {}: the stream ended before the answer finished",
                    self.served().1
                ));
                parts.push(self.stream_error_chunk(&error));
                self.error = Some(error);
            }
            parts.push(self.stream_tail(stream));
            out = join(&parts.iter().map(|p| &p[..]).collect::<Vec<_>>());
            self.finish_attempt();
        }
        self.front_stage(out, end)
    }

    /// OpenAI chunks to the front door's events (Messages, Responses); others unchanged.
    pub fn front_stage(&mut self, openai_sse: Bytes, end: bool) -> Bytes {
        match self.front_stream.as_mut() {
            Some(front) => front.convert(&openai_sse, end),
            None => openai_sse,
        }
    }

    /// A complete non-stream answer, in the client's format.
    fn finish_body(&mut self, body: &[u8]) -> Bytes {
        if self.embeddings.is_some() {
            return self.finish_embeddings(body);
        }
        if self.passthrough {
            return match messages::passthrough_message(body) {
                Ok(message) => {
                    let usage = message.usage.unwrap_or_else(|| self.estimate_usage(0));
                    self.usage = Some(usage);
                    self.finish_reason = message.finish_reason.map(str::to_string);
                    let cost = self.cost_of(&usage);
                    let (model, provider) = self.served();
                    message.stamp(&self.generation_id, &model, &provider, cost)
                }
                Err(e) => {
                    let out = e.body(self.door);
                    self.error = Some(e);
                    out
                }
            };
        }
        let completion = self.finish_json(body);
        frontdoor::convert_completion(self.front, completion)
    }

    fn finish_embeddings(&mut self, body: &[u8]) -> Bytes {
        let Some(req) = self.embeddings.as_ref() else {
            return Bytes::copy_from_slice(body);
        };
        let parsed = match self.dialect() {
            Dialect::Gemini => gemini::embeddings::response_to_openai(body, req),
            _ => serde_json::from_slice::<serde_json::Value>(body)
                .map_err(|_| ApiError::bad_gateway("the provider's embeddings answer is not JSON"))
                .map(|v| {
                    let usage = embeddings::usage(&v).unwrap_or_else(|| req.estimated_usage());
                    (v, usage)
                }),
        };
        match parsed {
            Ok((value, usage)) => {
                self.usage = Some(usage);
                let cost = self.cost_of(&usage);
                let (model, provider) = self.served();
                let stamped =
                    embeddings::stamp(&value, &self.generation_id, &model, &provider, &usage, cost);
                Bytes::from(stamped.to_string())
            }
            Err(e) => {
                self.usage = Some(req.estimated_usage());
                let out = e.body(self.door);
                self.error = Some(e);
                out
            }
        }
    }

    /// The catalog model and provider that served.
    pub fn served(&self) -> (String, String) {
        self.current
            .as_ref()
            .map_or((String::new(), String::new()), |c| {
                (c.model.id.clone(), c.provider().id.clone())
            })
    }

    /// What a passed-through Anthropic stream is stamped with: the served model's identity and
    /// what its usage costs (`cost_of`'s price and fee).
    pub fn stream_stamp(&self) -> messages::StreamStamp {
        let (model, provider) = self.served();
        messages::StreamStamp {
            id: self.generation_id.clone(),
            model,
            provider,
            price: self
                .current
                .as_ref()
                .map_or_else(Default::default, |c| c.endpoint().price),
            fee_percent: self.snapshot.billing.fee_percent,
        }
    }

    /// Whether the answer should be converted for the client's door.
    pub fn needs_front_stream(&self) -> bool {
        !self.passthrough && matches!(self.front, FrontEnd::Messages | FrontEnd::Responses)
    }
}
