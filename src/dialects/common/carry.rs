//! Upstream SSE events split across chunks: complete events are handed on at once, the
//! partial tail waits for the rest (the only bytes a converter keeps).

use bytes::BytesMut;

use crate::metering::sse::SseEvents;

/// Bounds one upstream event so a stream that never ends an event cannot grow memory.
pub const MAX_EVENT_BYTES: usize = 4 << 20;

/// Holds the partial event at the end of a chunk until the rest arrives.
#[derive(Debug, Default)]
pub struct SseCarry {
    buf: BytesMut,
}

impl SseCarry {
    /// Calls `each` for every complete event of carry + chunk and keeps the tail. Returns
    /// false when the tail passed [`MAX_EVENT_BYTES`] and was thrown away.
    pub fn feed(&mut self, chunk: &[u8], mut each: impl FnMut(&[u8])) -> bool {
        let mut data = std::mem::take(&mut self.buf);
        let input: &[u8] = if data.is_empty() {
            chunk
        } else {
            data.extend_from_slice(chunk);
            &data
        };
        let mut events = SseEvents::new(input);
        for range in events.by_ref() {
            each(&input[range]);
        }
        let tail = &input[events.consumed()..];
        if tail.len() > MAX_EVENT_BYTES {
            return false;
        }
        let mut kept = BytesMut::with_capacity(tail.len());
        kept.extend_from_slice(tail);
        self.buf = kept;
        true
    }

    /// The stream ended: a last event without its blank line is still an event.
    pub fn finish(&mut self, mut each: impl FnMut(&[u8])) {
        let rest = std::mem::take(&mut self.buf);
        if !rest.iter().all(u8::is_ascii_whitespace) {
            each(&rest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carry_joins_split_events_and_bounds_the_tail() {
        let mut carry = SseCarry::default();
        let mut seen = Vec::new();
        assert!(carry.feed(b"data: 1\n\ndata: ", |e| seen.push(e.to_vec())));
        assert!(carry.feed(b"2\n", |e| seen.push(e.to_vec())));
        assert!(carry.feed(b"\ndata: 3", |e| seen.push(e.to_vec())));
        carry.finish(|e| seen.push(e.to_vec()));
        assert_eq!(seen, [&b"data: 1\n\n"[..], b"data: 2\n\n", b"data: 3"]);
        let huge = vec![b'x'; MAX_EVENT_BYTES + 1];
        assert!(!carry.feed(&huge, |_| {}));
        carry.finish(|_| panic!("the oversized tail was dropped"));
    }
}
