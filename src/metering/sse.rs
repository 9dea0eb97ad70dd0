//! Server-sent events framing: where each event ends in a buffer, and what its `data` is.
//! A parser yields events; converters and meters decide what they mean (STYLE: stream parsing
//! apart from conversion).

use memchr::memchr_iter;
use std::borrow::Cow;
use std::ops::Range;

/// `chunk` after the partial event `carry` holds from the last chunk: the chunk itself (no
/// copy) when nothing is carried, else both in one buffer, taken out of `carry`.
pub fn after_carry(carry: &mut bytes::BytesMut, chunk: bytes::Bytes) -> bytes::Bytes {
    if carry.is_empty() {
        return chunk;
    }
    carry.extend_from_slice(&chunk);
    carry.split().freeze()
}

/// The complete events of a buffer, as ranges that include their terminating blank line.
/// Bytes after the last complete event are a partial event the caller must carry over.
pub struct SseEvents<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> SseEvents<'a> {
    pub fn new(buf: &'a [u8]) -> SseEvents<'a> {
        SseEvents { buf, pos: 0 }
    }

    /// Where the unconsumed (partial) tail starts, once iteration has stopped.
    pub fn consumed(&self) -> usize {
        self.pos
    }
}

impl Iterator for SseEvents<'_> {
    type Item = Range<usize>;

    fn next(&mut self) -> Option<Range<usize>> {
        let start = self.pos;
        let rest = &self.buf[start..];
        // An event ends at a blank line: "\n\n", "\n\r\n" (and so "\r\n\r\n").
        for nl in memchr_iter(b'\n', rest) {
            let after = &rest[nl + 1..];
            let end = if after.first() == Some(&b'\n') {
                nl + 2
            } else if after.starts_with(b"\r\n") {
                nl + 3
            } else {
                continue;
            };
            self.pos = start + end;
            return Some(start..start + end);
        }
        None
    }
}

/// The event's data: its `data:` lines joined by newlines (borrowed when there is one line).
/// `None` when the event has no data line (comments such as `: keep-alive`, `event:` only).
pub fn event_data(event: &[u8]) -> Option<Cow<'_, [u8]>> {
    let mut found: Option<Cow<'_, [u8]>> = None;
    for line in lines(event) {
        let Some(value) = line.strip_prefix(b"data:") else {
            continue;
        };
        let value = value.strip_prefix(b" ").unwrap_or(value);
        found = Some(match found {
            None => Cow::Borrowed(value),
            Some(prev) => {
                let mut joined = prev.into_owned();
                joined.push(b'\n');
                joined.extend_from_slice(value);
                Cow::Owned(joined)
            }
        });
    }
    found
}

/// The lines of an event without their line ends (`\n` or `\r\n`), found with `memchr`
/// rather than byte by byte (the line split was half of the tap's cost per event).
fn lines(event: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    let mut ends = memchr_iter(b'\n', event).chain(std::iter::once(event.len()));
    std::iter::from_fn(move || {
        let end = ends.next()?;
        let line = &event[start.min(end)..end];
        start = end + 1;
        Some(line.strip_suffix(b"\r").unwrap_or(line))
    })
}

/// The `event:` name of an event, if it has one (Anthropic names every event).
pub fn event_name(event: &[u8]) -> Option<&[u8]> {
    lines(event).find_map(|line| {
        line.strip_prefix(b"event:")
            .map(|v| v.strip_prefix(b" ").unwrap_or(v))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_events_and_leaves_the_partial_tail() {
        let buf = b"data: a\n\ndata: b\r\n\r\n: ping\n\ndata: par";
        let mut events = SseEvents::new(buf);
        let ranges: Vec<_> = events.by_ref().collect();
        assert_eq!(ranges.len(), 3);
        assert_eq!(&buf[ranges[0].clone()], b"data: a\n\n");
        assert_eq!(&buf[ranges[1].clone()], b"data: b\r\n\r\n");
        assert_eq!(&buf[events.consumed()..], b"data: par");
    }

    #[test]
    fn lines_split_like_a_byte_split() {
        for event in [
            &b""[..],
            b"data: a",
            b"data: a\n\n",
            b"\r\n\r\n",
            b"event: x\r\ndata: 1\ndata:2\r\n\r\n",
            b"\n\n\n",
        ] {
            let reference: Vec<&[u8]> = event
                .split(|b| *b == b'\n')
                .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
                .collect();
            assert_eq!(lines(event).collect::<Vec<_>>(), reference, "{event:?}");
        }
    }

    #[test]
    fn reads_data_and_names() {
        assert_eq!(
            event_data(b"data: {\"a\":1}\n\n").as_deref(),
            Some(&b"{\"a\":1}"[..])
        );
        assert_eq!(
            event_data(b"event: x\ndata:1\ndata: 2\n\n").as_deref(),
            Some(&b"1\n2"[..])
        );
        assert_eq!(event_data(b": keep-alive\n\n"), None);
        assert_eq!(
            event_name(b"event: message_start\ndata: {}\n\n"),
            Some(&b"message_start"[..])
        );
    }
}
