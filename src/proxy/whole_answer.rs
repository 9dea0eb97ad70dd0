//! A non-stream answer finished before its head is written goes out with `Content-Length`.
//!
//! The gateway buffers and stamps non-stream answers, so when Pingora hands it the upstream's
//! head the length of what the client will get is unknown, and the answer goes out chunked.
//! Pingora flushes a head without a length, each chunk, and the last chunk: three writes per
//! answer where a passthrough makes one (issue 12, `strace`: 5 `sendto` per request against
//! bare Pingora's 3). Pingora runs its downstream modules on a batch of response tasks after
//! the proxy's own filters have run on the whole batch; when the upstream's head and its whole
//! body arrive in one batch (the usual case for an answer of a few KB) the body filter has
//! finished the answer before this module sees the head, which then carries the exact length.
//! Otherwise the answer stays chunked, as before.

use async_trait::async_trait;
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use pingora::http::ResponseHeader;
use pingora::modules::http::{HttpModule, HttpModuleBuilder, Module};
use pingora::proxy::Session;
use pingora::Result;
use std::any::Any;

/// Per request: the length of the finished answer, until the head takes it.
#[derive(Default)]
pub struct WholeAnswer {
    length: Option<usize>,
    head_passed: bool,
}

impl WholeAnswer {
    /// Tells the head the answer's final length, if the head has not gone yet.
    pub fn set_length(session: &mut Session, length: usize) {
        if let Some(m) = session.downstream_modules_ctx.get_mut::<WholeAnswer>() {
            if !m.head_passed {
                m.length = Some(length);
            }
        }
    }
}

#[async_trait]
impl HttpModule for WholeAnswer {
    async fn response_header_filter(
        &mut self,
        resp: &mut ResponseHeader,
        _end_of_stream: bool,
    ) -> Result<()> {
        // An informational head (100 Continue) is not the answer's.
        if resp.status.is_informational() {
            return Ok(());
        }
        self.head_passed = true;
        if let Some(length) = self.length.take() {
            resp.remove_header(&TRANSFER_ENCODING);
            resp.insert_header(CONTENT_LENGTH, length)?;
        }
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

pub struct WholeAnswerBuilder;

impl HttpModuleBuilder for WholeAnswerBuilder {
    fn init(&self) -> Module {
        Box::new(WholeAnswer::default())
    }
}
