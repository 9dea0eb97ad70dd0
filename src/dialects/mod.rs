//! Provider API formats. Each dialect module holds its request, response and stream
//! conversions; they are pure functions over bytes and types (no session, no I/O).

pub mod anthropic;
pub mod bedrock;
pub mod common;
pub mod gemini;
pub mod openai;

use bytes::Bytes;
use serde_json::Value;

use crate::api::{ApiError, TopLevelFields};
use crate::catalog::Dialect;
use crate::metering::Usage;

pub use common::OutputLimit;

/// A chat request as one provider's dialect wants it.
#[derive(Debug)]
pub struct UpstreamChat {
    pub body: Bytes,
    /// What of the client's request the dialect could not express (for a response header).
    pub dropped: Vec<String>,
}

/// The client's OpenAI chat request in `dialect`, for `upstream_model`, whose output `limit`
/// the dialects that must send one work within.
pub fn chat_request(
    dialect: Dialect,
    fields: &TopLevelFields,
    upstream_model: &str,
    stream: bool,
    limit: impl Into<OutputLimit>,
) -> Result<UpstreamChat, ApiError> {
    let limit = limit.into();
    let converted = match dialect {
        Dialect::OpenAi | Dialect::Azure => {
            openai::convert_chat_request(dialect, fields, upstream_model, stream)
        }
        Dialect::Anthropic => {
            anthropic::convert_chat_request(fields, upstream_model, stream, limit)?
        }
        Dialect::Gemini => gemini::convert_chat_request(fields, upstream_model, stream, limit)?,
        Dialect::Bedrock => bedrock::convert_chat_request(fields, upstream_model, stream, limit)?,
    };
    Ok(UpstreamChat {
        body: converted.body,
        dropped: converted.dropped,
    })
}

/// A provider's complete (non-stream) chat answer as an OpenAI `chat.completion` and its
/// usage (`None` when the provider reported none).
/// Whether a dialect's chat answers need converting to OpenAI's shape (the others are
/// OpenAI's shape already and are stamped in place).
pub fn converts_responses(dialect: Dialect) -> bool {
    matches!(
        dialect,
        Dialect::Anthropic | Dialect::Gemini | Dialect::Bedrock
    )
}

pub fn chat_response(
    dialect: Dialect,
    body: &[u8],
    created: u64,
) -> Result<(Value, Option<Usage>), ApiError> {
    let (value, usage) = match dialect {
        Dialect::Anthropic => anthropic::chat_response_at(body, created)?,
        Dialect::Gemini => gemini::chat_response_at(body, created)?,
        Dialect::Bedrock => bedrock::chat_response_at(body, created)?,
        _ => {
            let value: Value = serde_json::from_slice(body)
                .ok()
                .filter(Value::is_object)
                .ok_or_else(|| {
                    ApiError::bad_gateway(
                        "the provider answered with a body that is not a JSON object",
                    )
                })?;
            let usage = value.get("usage").and_then(Usage::from_openai);
            return Ok((value, usage));
        }
    };
    Ok((value, (!usage.estimated).then_some(usage)))
}

/// The status an upstream error answer stands for, in the gateway's terms: each dialect
/// says some errors its own way (Anthropic's 529 overload, Gemini's 400 for a bad key).
/// The client's status for an upstream error as its head tells it: the status, and for
/// Bedrock the error type in `x-amzn-errortype` (a quota error comes as 400
/// `ServiceQuotaExceededException`). The client's head goes out before the error body is
/// read, so failover and the client's status line are decided on this, and the error body
/// the client gets says the same status.
pub fn error_status_at_head(dialect: Dialect, status: u16, error_type: Option<&str>) -> u16 {
    match dialect {
        Dialect::Bedrock => bedrock::error_status_typed(status, error_type, b"").0,
        _ => error_status(dialect, status, b""),
    }
}

pub fn error_status(dialect: Dialect, status: u16, body: &[u8]) -> u16 {
    match dialect {
        Dialect::Anthropic => anthropic::error_status(status, body).0,
        Dialect::Gemini => gemini::error_status(status, body).0,
        Dialect::Bedrock => bedrock::error_status(status, body).0,
        _ => status,
    }
}
