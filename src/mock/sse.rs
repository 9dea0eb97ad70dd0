//! An event-stream answer from a lazy sequence of events, with the stream faults every
//! dialect shares: `reset=mid` (half the events, then a cut connection) and `chunk_delay_ms`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::Response;

use super::body::{pump, ConnCtl, MockBody};
use super::faults::{Fault, Reset};
use super::handler::respond;

/// Each event becomes its own HTTP chunk, rendered only when sent (`chunks=1000000` allocates
/// nothing upfront). `events` is cloned once to count them for `reset=mid`.
pub fn event_stream<E, I, R>(
    events: I,
    render: R,
    fault: &Fault,
    ctl: &Arc<ConnCtl>,
) -> Response<MockBody>
where
    I: Iterator<Item = E> + Clone + Send + 'static,
    R: Fn(E) -> Bytes + Send + 'static,
{
    let total = events.clone().count();
    let (limit, abort) = match fault.reset {
        Some(Reset::Mid) => (total / 2, Some(ctl.clone())),
        _ => (total, None),
    };
    let frames = events.take(limit).map(render);
    let (tx, body) = MockBody::channel();
    tokio::spawn(pump(
        tx,
        frames,
        Duration::from_millis(fault.chunk_delay_ms),
        abort,
    ));
    respond(
        200,
        &[
            (CONTENT_TYPE, "text/event-stream"),
            (CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}
