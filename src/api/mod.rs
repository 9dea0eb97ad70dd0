//! Client-facing wire types: request parsing per front door and the one error type.

pub mod chat;
mod cursor;
pub mod embeddings;
pub mod error;
pub mod fields;
mod json_end;
pub mod key;
pub mod messages;
pub mod models;
pub mod quote;
pub mod responses;
pub mod scan;
pub mod stamp;
pub mod strict;
mod swar;
#[cfg(test)]
mod test_streams;

pub use chat::ChatRequest;
pub use error::{ApiError, FrontDoor};
pub use fields::TopLevelFields;
