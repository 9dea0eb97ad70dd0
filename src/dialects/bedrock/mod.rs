//! The AWS Bedrock Converse dialect behind the OpenAI front door: OpenAI chat requests become
//! Converse bodies, and Converse answers, ConverseStream event streams and errors become
//! OpenAI's.
//!
//! The model and streaming live in the URL ([`chat_path`]), appended to the provider's base URL
//! (`https://bedrock-runtime.{region}.amazonaws.com`). Requests are SigV4-signed ([`sign`]) over
//! the final body. A ConverseStream answer is binary `application/vnd.amazon.eventstream`
//! ([`STREAM_CONTENT_TYPE`]), not SSE: [`EventStreamDecoder`] frames it and
//! [`StreamConverter`] turns its events into OpenAI chunks.

mod eventstream;
#[cfg(test)]
mod eventstream_tests;
mod messages;
mod request;
mod response;
mod sign;
mod stream;
#[cfg(test)]
mod tests;

pub use eventstream::{EventStreamDecoder, FrameError, HeaderValue, Message, MAX_MESSAGE_LEN};
pub use request::{chat_request_body, convert_chat_request};
pub use response::{chat_response, chat_response_at, error_status, error_status_typed};
pub use sign::{sign, SIGNING_NAME};
pub use stream::StreamConverter;

/// The content type of a ConverseStream answer (and what a stream request should `accept`).
pub const STREAM_CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";

/// OpenRouter-style `reasoning_details[].format` for reasoning this dialect hands out. Its own
/// name, since Bedrock's thinking signatures are not valid on Anthropic's API and vice versa.
pub const REASONING_FORMAT: &str = "amazon-bedrock-converse-v1";

/// Whether a response `content-type` is Bedrock's binary event stream.
pub fn is_event_stream(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case(STREAM_CONTENT_TYPE))
}

/// `/model/{modelId}/converse`, or `/converse-stream` for a stream. The id is one path segment
/// encoded as the AWS SDKs encode it: everything but `A-Z a-z 0-9 - . _ ~` is percent-encoded,
/// so the `:` of versioned ids and the `:` and `/` of ARNs (inference profiles, provisioned
/// throughput) become `%3A` and `%2F`. Sign the path exactly as sent.
pub fn chat_path(upstream_model: &str, stream: bool) -> String {
    let mut path = String::with_capacity(upstream_model.len() * 3 + 24);
    path.push_str("/model/");
    for b in upstream_model.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            path.push(b as char);
        } else {
            path.push_str(&format!("%{b:02X}"));
        }
    }
    path.push_str(if stream {
        "/converse-stream"
    } else {
        "/converse"
    });
    path
}

/// OpenAI's `finish_reason` for a Converse `stopReason` (the raw value is kept in
/// `native_finish_reason`).
fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "tool_use" => "tool_calls",
        "max_tokens" | "model_context_window_exceeded" => "length",
        "guardrail_intervened" | "content_filtered" => "content_filter",
        // The model produced something Bedrock could not parse: no usable answer.
        "malformed_model_output" | "malformed_tool_use" => "error",
        // end_turn, stop_sequence and reasons added later.
        _ => "stop",
    }
}

/// Claude on Bedrock (foundation model ids, cross-region profiles `us.anthropic.claude-...`,
/// ARNs naming them) takes Anthropic's own fields through `additionalModelRequestFields`.
fn is_claude(upstream_model: &str) -> bool {
    let m = upstream_model.to_ascii_lowercase();
    m.contains("anthropic.") || m.contains("claude")
}
