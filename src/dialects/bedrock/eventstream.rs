//! The `application/vnd.amazon.eventstream` framing that ConverseStream answers in, decoded
//! incrementally: bytes go in as the network splits them, whole messages come out.
//!
//! A message is `total_length: u32 | headers_length: u32 | prelude_crc: u32 | headers |
//! payload | message_crc: u32`, big-endian, each CRC a CRC32 (IEEE) of every byte before it.
//! Both CRCs are checked; a bad CRC or an impossible length poisons the decoder (the
//! specification says the stream MUST then be terminated), so it never resynchronises on
//! garbage and never buffers more than one message of at most [`MAX_MESSAGE_LEN`] bytes.

use std::fmt;

use bytes::{Bytes, BytesMut};

const PRELUDE_LEN: usize = 12;
/// Prelude plus message CRC: a message with no headers and no payload.
const MIN_MESSAGE_LEN: usize = 16;
/// The largest message a service may send: a 24 MiB payload, 128 KiB of headers and the
/// framing. A longer one can only be corruption, so buffering stops there.
pub const MAX_MESSAGE_LEN: usize = 24 * 1024 * 1024 + 128 * 1024 + MIN_MESSAGE_LEN;

/// A header value, one variant per wire type (0..=9).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderValue {
    Bool(bool),
    Byte(i8),
    Short(i16),
    Int(i32),
    Long(i64),
    Bytes(Bytes),
    String(String),
    /// Milliseconds since the Unix epoch.
    Timestamp(i64),
    Uuid([u8; 16]),
}

/// One decoded message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub headers: Vec<(String, HeaderValue)>,
    pub payload: Bytes,
}

impl Message {
    pub fn header(&self, name: &str) -> Option<&HeaderValue> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// A string header's value (`None` when absent or of another type).
    pub fn str_header(&self, name: &str) -> Option<&str> {
        match self.header(name) {
            Some(HeaderValue::String(s)) => Some(s),
            _ => None,
        }
    }

    /// `event`, `exception` (a modeled error) or `error` (an unmodeled one).
    pub fn message_type(&self) -> Option<&str> {
        self.str_header(":message-type")
    }

    pub fn event_type(&self) -> Option<&str> {
        self.str_header(":event-type")
    }

    pub fn exception_type(&self) -> Option<&str> {
        self.str_header(":exception-type")
    }
}

/// Why the stream cannot be read further.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The prelude's lengths cannot describe a message.
    Length {
        total: u32,
        headers: u32,
    },
    PreludeCrc {
        expected: u32,
        computed: u32,
    },
    MessageCrc {
        expected: u32,
        computed: u32,
    },
    /// The headers do not parse (truncated, unknown type, name not UTF-8...).
    Header(String),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Length { total, headers } => write!(
                f,
                "event-stream message with impossible lengths (total {total}, headers {headers})"
            ),
            FrameError::PreludeCrc { expected, computed } => write!(
                f,
                "event-stream prelude CRC mismatch (sent {expected:08x}, computed {computed:08x})"
            ),
            FrameError::MessageCrc { expected, computed } => write!(
                f,
                "event-stream message CRC mismatch (sent {expected:08x}, computed {computed:08x})"
            ),
            FrameError::Header(why) => write!(f, "event-stream headers unreadable: {why}"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Holds the bytes of the message being received, and nothing else.
#[derive(Debug, Default)]
pub struct EventStreamDecoder {
    buf: BytesMut,
    failed: Option<FrameError>,
}

impl EventStreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes; call [`EventStreamDecoder::next_message`] until it yields
    /// `None`. After a framing error input is ignored.
    pub fn feed(&mut self, chunk: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(chunk);
        }
    }

    /// The next complete message, `None` until more bytes arrive, or the error that ended the
    /// stream (returned again on every later call).
    pub fn next_message(&mut self) -> Result<Option<Message>, FrameError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match self.decode() {
            Err(e) => {
                self.buf = BytesMut::new();
                self.failed = Some(e.clone());
                Err(e)
            }
            ok => ok,
        }
    }

    /// Bytes of an incomplete message held back (non-zero at the end: the stream was cut).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    fn decode(&mut self) -> Result<Option<Message>, FrameError> {
        if self.buf.len() < PRELUDE_LEN {
            return Ok(None);
        }
        let total = be_u32(&self.buf[0..4]);
        let headers = be_u32(&self.buf[4..8]);
        // The CRC first: it vouches for the lengths read before it.
        check_crc(&self.buf[..8], be_u32(&self.buf[8..12]), true)?;
        let (total_len, headers_len) = (total as usize, headers as usize);
        if !(MIN_MESSAGE_LEN..=MAX_MESSAGE_LEN).contains(&total_len)
            || headers_len > total_len - MIN_MESSAGE_LEN
        {
            return Err(FrameError::Length { total, headers });
        }
        if self.buf.len() < total_len {
            return Ok(None);
        }
        let frame = self.buf.split_to(total_len).freeze();
        let crc_at = total_len - 4;
        check_crc(&frame[..crc_at], be_u32(&frame[crc_at..]), false)?;
        let headers_end = PRELUDE_LEN + headers_len;
        Ok(Some(Message {
            headers: parse_headers(&frame[PRELUDE_LEN..headers_end])?,
            payload: frame.slice(headers_end..crc_at),
        }))
    }
}

fn be_u32(b: &[u8]) -> u32 {
    b.iter()
        .take(4)
        .fold(0, |n, &byte| (n << 8) | u32::from(byte))
}

fn check_crc(data: &[u8], expected: u32, prelude: bool) -> Result<(), FrameError> {
    let computed = crc32fast::hash(data);
    match (computed == expected, prelude) {
        (true, _) => Ok(()),
        (false, true) => Err(FrameError::PreludeCrc { expected, computed }),
        (false, false) => Err(FrameError::MessageCrc { expected, computed }),
    }
}

fn parse_headers(mut b: &[u8]) -> Result<Vec<(String, HeaderValue)>, FrameError> {
    let mut headers = Vec::new();
    while !b.is_empty() {
        let name_len = take(&mut b, 1)?[0] as usize;
        let name = utf8(take(&mut b, name_len)?, "header name")?;
        let kind = take(&mut b, 1)?[0];
        let int = |b: &mut &[u8], n: usize| -> Result<i64, FrameError> {
            let raw = take(b, n)?;
            // Sign-extend from the value's own width.
            let unsigned = raw.iter().fold(0u64, |v, &x| (v << 8) | u64::from(x));
            let shift = 64 - 8 * n as u32;
            Ok(((unsigned << shift) as i64) >> shift)
        };
        let value = match kind {
            0 => HeaderValue::Bool(true),
            1 => HeaderValue::Bool(false),
            2 => HeaderValue::Byte(int(&mut b, 1)? as i8),
            3 => HeaderValue::Short(int(&mut b, 2)? as i16),
            4 => HeaderValue::Int(int(&mut b, 4)? as i32),
            5 => HeaderValue::Long(int(&mut b, 8)?),
            6 | 7 => {
                let len = int(&mut b, 2)? as u16 as usize;
                let raw = take(&mut b, len)?;
                match kind {
                    6 => HeaderValue::Bytes(Bytes::copy_from_slice(raw)),
                    _ => HeaderValue::String(utf8(raw, "string header")?),
                }
            }
            8 => HeaderValue::Timestamp(int(&mut b, 8)?),
            9 => {
                let mut uuid = [0u8; 16];
                uuid.copy_from_slice(take(&mut b, 16)?);
                HeaderValue::Uuid(uuid)
            }
            other => return Err(FrameError::Header(format!("unknown value type {other}"))),
        };
        headers.push((name, value));
    }
    Ok(headers)
}

fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], FrameError> {
    if b.len() < n {
        return Err(FrameError::Header(
            "a header runs past the header block".into(),
        ));
    }
    let (head, rest) = b.split_at(n);
    *b = rest;
    Ok(head)
}

fn utf8(raw: &[u8], what: &str) -> Result<String, FrameError> {
    String::from_utf8(raw.to_vec()).map_err(|_| FrameError::Header(format!("{what} is not UTF-8")))
}
