//! The Anthropic Messages dialect behind the OpenAI front door: OpenAI chat requests become
//! `POST {base}/messages` bodies, and Anthropic messages, streams and errors become OpenAI's.
//!
//! The upstream request needs the headers `x-api-key: <key>`, `anthropic-version:`
//! [`ANTHROPIC_VERSION`] and `content-type: application/json` (and `anthropic-beta` when a
//! client asks for a beta). The client's `Authorization` never goes upstream.

mod messages;
mod request;
mod response;
mod stream;
#[cfg(test)]
mod tests;

pub use request::{chat_request_body, convert_chat_request};
pub use response::{chat_response, chat_response_at, error_status};
pub use stream::StreamConverter;

/// Appended to the provider's base URL (`https://api.anthropic.com/v1`).
pub const MESSAGES_PATH: &str = "/messages";
/// The API version every request declares; Anthropic refuses requests without one.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// OpenRouter's `reasoning_details[].format` for Claude's signed thinking.
pub const REASONING_FORMAT: &str = "anthropic-claude-v1";

/// OpenAI's `finish_reason` for an Anthropic `stop_reason` (the raw value is kept in
/// `native_finish_reason`).
fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        // end_turn, stop_sequence, pause_turn and reasons added later.
        _ => "stop",
    }
}
