//! The front doors: what a client speaks (OpenAI chat, Anthropic Messages, OpenAI Responses,
//! embeddings) and how its request enters the pipeline and its answer leaves it.
//!
//! Messages and Responses requests become OpenAI chat requests, so routing, dialects,
//! metering, limits and the ledger work unchanged; the OpenAI answer is translated back as a
//! last stage over the bytes. An Anthropic client served by an Anthropic provider is passed
//! through (model rewritten), answer and errors included.

use bytes::Bytes;
use serde_json::Value;

use crate::api::embeddings::{self, EmbeddingsRequest};
use crate::api::{messages, responses, ApiError, ChatRequest, FrontDoor, TopLevelFields};
use crate::routing::ProviderPrefs;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrontEnd {
    Chat,
    Messages,
    Responses,
    Embeddings,
}

impl FrontEnd {
    /// The error shape this front door speaks.
    pub fn door(self) -> FrontDoor {
        match self {
            FrontEnd::Messages => FrontDoor::Anthropic,
            _ => FrontDoor::OpenAi,
        }
    }
}

/// A request as the pipeline routes it.
pub enum Admitted {
    Chat {
        chat: ChatRequest,
        /// The client's own body, when it is not OpenAI chat (Anthropic passthrough).
        original: Option<TopLevelFields>,
        /// What the front door could not express in OpenAI chat.
        dropped: Vec<String>,
    },
    Embeddings(EmbeddingsRequest),
}

/// What routing needs, whatever the door.
pub struct RouteInputs<'a> {
    pub model: &'a str,
    pub fallbacks: &'a [String],
    pub prefs: &'a ProviderPrefs,
    pub parameters: &'a [&'static str],
}

impl Admitted {
    pub fn parse(front: FrontEnd, body: Bytes) -> Result<Admitted, ApiError> {
        match front {
            FrontEnd::Chat => Ok(Admitted::Chat {
                chat: ChatRequest::parse(body)?,
                original: None,
                dropped: Vec::new(),
            }),
            FrontEnd::Messages => {
                let converted = messages::to_chat_request(&body)?;
                Ok(Admitted::Chat {
                    chat: ChatRequest::parse(converted.chat_body)?,
                    original: Some(TopLevelFields::parse(body)?),
                    dropped: converted.dropped,
                })
            }
            FrontEnd::Responses => {
                let converted = responses::to_chat_request(&body)?;
                Ok(Admitted::Chat {
                    chat: ChatRequest::parse(converted.chat_body)?,
                    original: None,
                    dropped: converted.dropped,
                })
            }
            FrontEnd::Embeddings => Ok(Admitted::Embeddings(embeddings::parse(&body)?)),
        }
    }

    pub fn route_inputs(&self) -> RouteInputs<'_> {
        match self {
            Admitted::Chat { chat, .. } => RouteInputs {
                model: &chat.model,
                fallbacks: &chat.fallbacks,
                prefs: &chat.prefs,
                parameters: &chat.parameters,
            },
            Admitted::Embeddings(e) => RouteInputs {
                model: &e.model,
                fallbacks: &e.fallbacks,
                prefs: &e.prefs,
                parameters: &[],
            },
        }
    }
}

/// The last stage of a streamed answer for doors that do not speak OpenAI chat chunks.
pub enum FrontStream {
    Messages(messages::ChatToMessagesStream),
    Responses(responses::ChatToResponsesStream),
}

impl FrontStream {
    pub fn new(front: FrontEnd, generation_id: &str, model: &str) -> Option<FrontStream> {
        match front {
            FrontEnd::Messages => Some(FrontStream::Messages(
                messages::ChatToMessagesStream::new().with_identity(generation_id, model),
            )),
            FrontEnd::Responses => Some(FrontStream::Responses(
                responses::ChatToResponsesStream::new().with_identity(generation_id, model),
            )),
            _ => None,
        }
    }

    /// OpenAI chunk bytes in, the door's events out; `end` flushes the stream's closing events.
    pub fn convert(&mut self, openai_sse: &[u8], end: bool) -> Bytes {
        let (mut out, tail) = match self {
            FrontStream::Messages(c) => (
                c.on_chunk(openai_sse),
                if end { c.finish() } else { Bytes::new() },
            ),
            FrontStream::Responses(c) => (
                c.on_chunk(openai_sse),
                if end { c.finish() } else { Bytes::new() },
            ),
        };
        if !tail.is_empty() {
            let mut joined = bytes::BytesMut::from(&out[..]);
            joined.extend_from_slice(&tail);
            out = joined.freeze();
        }
        out
    }
}

/// A stamped OpenAI `chat.completion` in the door's own shape.
pub fn convert_completion(front: FrontEnd, completion: Bytes) -> Bytes {
    let converter: fn(&Value) -> Value = match front {
        FrontEnd::Messages => messages::from_chat_completion,
        FrontEnd::Responses => responses::from_chat_completion,
        _ => return completion,
    };
    match serde_json::from_slice::<Value>(&completion) {
        // An error body (the provider's answer was unreadable) stays an error.
        Ok(v) if v.get("error").is_none() => Bytes::from(converter(&v).to_string()),
        _ => completion,
    }
}
