//! The values of the gateway's own response headers, written into one buffer and handed out
//! as slices of it. `HeaderValue::from_str` and `From<u64>` allocate a buffer each, and every
//! answer's head carries up to eight such values (issue 12: the head was 16 allocations).

use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};
use http::HeaderValue;
use pingora::{ErrorType, OrErr, Result};

/// Where one value sits in the buffer.
pub type Mark = Range<usize>;

pub struct HeadText {
    buf: BytesMut,
}

impl HeadText {
    pub fn with_capacity(bytes: usize) -> HeadText {
        HeadText {
            buf: BytesMut::with_capacity(bytes),
        }
    }

    pub fn text(&mut self, text: &str) -> Mark {
        self.write(|buf| buf.put_slice(text.as_bytes()))
    }

    pub fn number(&mut self, n: u64) -> Mark {
        self.text(itoa::Buffer::new().format(n))
    }

    /// A value written in several pieces.
    pub fn write(&mut self, write: impl FnOnce(&mut BytesMut)) -> Mark {
        let start = self.buf.len();
        write(&mut self.buf);
        start..self.buf.len()
    }

    pub fn freeze(self) -> FrozenHeadText {
        FrozenHeadText(self.buf.freeze())
    }
}

pub struct FrozenHeadText(Bytes);

impl FrozenHeadText {
    /// The value at `mark`, refused as Pingora refuses an invalid header value (a name from
    /// the config with a control character, say).
    pub fn value(&self, mark: Mark) -> Result<HeaderValue> {
        HeaderValue::from_maybe_shared(self.0.slice(mark))
            .or_err(ErrorType::InvalidHTTPHeader, "invalid header value")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_the_pieces_written() {
        let mut text = HeadText::with_capacity(8);
        let id = text.text("gen-1");
        let n = text.number(1_700_000_000_123);
        let log = text.write(|b| {
            b.put_slice(b"openai;200;");
            b.put_slice(b"12");
        });
        let empty = text.text("");
        let bad = text.text("a\nb");
        let frozen = text.freeze();
        assert_eq!(frozen.value(id).unwrap(), "gen-1");
        assert_eq!(frozen.value(n).unwrap(), "1700000000123");
        assert_eq!(frozen.value(log).unwrap(), "openai;200;12");
        assert_eq!(frozen.value(empty).unwrap(), "");
        assert!(frozen.value(bad).is_err(), "a newline is refused");
    }
}
