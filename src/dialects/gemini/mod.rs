//! The Google Gemini dialect (`generateContent`) behind the OpenAI front door: OpenAI chat
//! requests become Gemini bodies, and Gemini responses, SSE streams and errors become OpenAI's.
//!
//! The model and streaming live in the URL ([`chat_path`]), appended to the provider's base
//! URL (`https://generativelanguage.googleapis.com/v1beta`). The key goes in the
//! `x-goog-api-key` header (never in the query string, where it would reach access logs).

mod contents;
pub mod embeddings;
mod request;
mod response;
mod stream;
#[cfg(test)]
mod tests;

pub use request::{chat_request_body, convert_chat_request};
pub use response::{chat_response, chat_response_at, error_status};
pub use stream::StreamConverter;

/// OpenRouter's `reasoning_details[].format` for Gemini thought signatures.
const REASONING_FORMAT: &str = "google-gemini-v1";

/// `/models/{model}:generateContent`, or `:streamGenerateContent?alt=sse` for a stream (without
/// `alt=sse` Gemini streams one JSON array instead of events). A `models/` prefix on the id is
/// accepted; characters that cannot stand in a path segment are percent-encoded.
pub fn chat_path(upstream_model: &str, stream: bool) -> String {
    let model = upstream_model
        .strip_prefix("models/")
        .unwrap_or(upstream_model);
    let mut path = String::with_capacity(model.len() + 48);
    path.push_str("/models/");
    for b in model.bytes() {
        // RFC 3986 pchar: unreserved, sub-delims, ':' and '@' stand as they are.
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b) {
            path.push(b as char);
        } else {
            path.push_str(&format!("%{b:02X}"));
        }
    }
    path.push_str(if stream {
        ":streamGenerateContent?alt=sse"
    } else {
        ":generateContent"
    });
    path
}
