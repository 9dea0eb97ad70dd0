//! Provider API formats. Each dialect module holds its request, response and stream
//! conversions; they are pure functions over bytes and types (no session, no I/O).

pub mod anthropic;
pub mod common;
pub mod gemini;
pub mod openai;
