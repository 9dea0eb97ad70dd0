//! `POST /v1/responses`: the OpenAI Responses front door, stateless.
//!
//! The gateway's pipeline speaks OpenAI chat, so this door converts at both ends:
//! - in: [`to_chat_request`] turns a Responses request (`input` items, `instructions`,
//!   function tools, `text.format`, ...) into an OpenAI chat request body;
//! - out: [`from_chat_completion`] and [`ChatToResponsesStream`] turn the chat answer the proxy
//!   would send an OpenAI client into a `response` object or Responses SSE events.
//!
//! The gateway stores nothing, so what needs a stored response (`store: true`,
//! `previous_response_id`, `conversation`, `background`, `item_reference`) is a 400 that says
//! so. Errors keep the OpenAI shape (`FrontDoor::OpenAi`), which the official SDKs parse.

mod input;
mod items;
mod request;
mod response;
mod stream;
#[cfg(test)]
mod tests;

pub use request::{to_chat_request, ResponsesRequest};
pub use response::from_chat_completion;
pub use stream::ChatToResponsesStream;
