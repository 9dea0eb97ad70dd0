//! Metering: reading usage from what providers send, without slowing or copying the stream,
//! and turning it into cost. Metering counts; it never writes anywhere.

pub mod sse;
pub mod stream_tap;
pub mod usage;

pub use sse::SseEvents;
pub use stream_tap::OpenAiStreamTap;
pub use usage::{Cost, OpenAiUsage, OpenAiUsageReader, Usage};

/// The documented estimate when a provider reports no usage: about four bytes of JSON text
/// per token for the prompt, and one token per streamed content delta (OpenAI-style streams
/// send one token per delta).
pub const ESTIMATED_BYTES_PER_TOKEN: u64 = 4;
