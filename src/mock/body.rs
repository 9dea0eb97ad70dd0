//! Response bodies (whole, or fed frame by frame from a task) and the per-connection abort switch.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::{mpsc, Notify};

/// How many frames a pump may queue ahead of the socket.
const QUEUE: usize = 16;

pub enum MockBody {
    Full(Option<Bytes>),
    /// Each received `Bytes` becomes its own HTTP chunk; the sender dropping ends the body cleanly.
    Channel(mpsc::Receiver<Bytes>),
}

impl MockBody {
    pub fn full(data: impl Into<Bytes>) -> MockBody {
        MockBody::Full(Some(data.into()))
    }

    pub fn channel() -> (mpsc::Sender<Bytes>, MockBody) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (tx, MockBody::Channel(rx))
    }
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            MockBody::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            MockBody::Channel(rx) => rx.poll_recv(cx).map(|d| d.map(|d| Ok(Frame::data(d)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, MockBody::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            MockBody::Full(Some(d)) => SizeHint::with_exact(d.len() as u64),
            MockBody::Full(None) => SizeHint::with_exact(0),
            MockBody::Channel(_) => SizeHint::default(),
        }
    }
}

/// Lets a handler cut its own connection. hyper can only end a response cleanly, so the
/// connection task listens here and drops the connection with SO_LINGER 0 (an RST).
#[derive(Default)]
pub struct ConnCtl {
    abort: Notify,
}

impl ConnCtl {
    pub fn abort(&self) {
        // notify_one keeps a permit, so an abort before the connection task waits is not lost.
        self.abort.notify_one();
    }

    pub async fn aborted(&self) {
        self.abort.notified().await;
    }
}

/// Feeds `frames` into a channel body, `gap` apart. With `abort`, the connection is cut after
/// the last frame instead of ending the body (no terminating chunk, no full content-length).
pub async fn pump<I>(tx: mpsc::Sender<Bytes>, frames: I, gap: Duration, abort: Option<Arc<ConnCtl>>)
where
    I: Iterator<Item = Bytes>,
{
    for (i, frame) in frames.enumerate() {
        if i > 0 && !gap.is_zero() {
            tokio::time::sleep(gap).await;
        }
        if tx.send(frame).await.is_err() {
            return; // the client went away
        }
    }
    let Some(ctl) = abort else { return };
    // Let hyper take and flush every queued frame first, so the client sees exactly the prefix.
    while tx.capacity() < tx.max_capacity() && !tx.is_closed() {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    ctl.abort();
    // Keep the sender alive until the connection is gone so the body never ends cleanly.
    let _ = tokio::time::timeout(Duration::from_secs(5), tx.closed()).await;
}
