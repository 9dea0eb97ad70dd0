//! A minimal HTTP/1.1 keep-alive client over raw TCP: write a request, read one response
//! (Content-Length or chunked). It does almost nothing per request, so the load generator
//! takes as little of the shared CPU as possible, and it sees each body read as it arrives,
//! which the stream phase needs for time-to-first-token and inter-chunk gaps.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// No single read may take longer: a wedged target fails the request instead of the run.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A response head larger than this is refused (no target sends one).
const MAX_HEAD: usize = 64 * 1024;

pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Start of unread bytes in `buf`.
    pos: usize,
    /// The server said `Connection: close`, or the stream ended: reconnect before reuse.
    pub closed: bool,
}

/// What the load generator keeps of a response.
pub struct Response {
    pub status: u16,
    pub body_bytes: usize,
    /// When the first body byte arrived (None for an empty body).
    pub first_body_at: Option<Instant>,
    /// The longest wait between two reads that carried body bytes.
    pub max_gap: Duration,
    /// The wait before the last body read (where a stream's closing events arrive).
    pub last_gap: Duration,
    /// The last body bytes (enough to see `data: [DONE]`).
    pub tail: Vec<u8>,
}

enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> io::Result<Conn> {
        let stream = tokio::time::timeout(READ_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
        // Requests are one write each; without this a small write can wait for an ACK.
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(16 * 1024),
            pos: 0,
            closed: false,
        })
    }

    /// Sends `request` (a complete HTTP/1.1 request) and reads the whole response.
    pub async fn exchange(&mut self, request: &[u8]) -> io::Result<Response> {
        self.stream.write_all(request).await?;
        self.read_response().await
    }

    /// Reads more bytes into `buf` (into spare capacity: nothing is zero-filled per read).
    async fn fill(&mut self) -> io::Result<usize> {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 8 * 1024 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.reserve(8 * 1024);
        let n = tokio::time::timeout(READ_TIMEOUT, self.stream.read_buf(&mut self.buf))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "read timed out"))??;
        if n == 0 {
            self.closed = true;
        }
        Ok(n)
    }

    async fn read_response(&mut self) -> io::Result<Response> {
        let head_end = loop {
            if let Some(at) = find(&self.buf[self.pos..], b"\r\n\r\n") {
                break self.pos + at + 4;
            }
            if self.buf.len() - self.pos > MAX_HEAD {
                return Err(io::Error::other("response head too large"));
            }
            if self.fill().await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed before the response head",
                ));
            }
        };
        let head = &self.buf[self.pos..head_end];
        let status = parse_status(head)?;
        let framing = if header_has(head, b"transfer-encoding", b"chunked") {
            Framing::Chunked
        } else if let Some(len) = header_value(head, b"content-length") {
            let len = std::str::from_utf8(len)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .ok_or_else(|| io::Error::other("bad content-length"))?;
            Framing::Length(len)
        } else if status == 204 || status == 304 {
            Framing::Length(0)
        } else {
            Framing::UntilClose
        };
        if header_has(head, b"connection", b"close") {
            self.closed = true;
        }
        self.pos = head_end;
        let mut resp = Response {
            status,
            body_bytes: 0,
            first_body_at: None,
            max_gap: Duration::ZERO,
            last_gap: Duration::ZERO,
            tail: Vec::new(),
        };
        let mut last_data: Option<Instant> = None;
        match framing {
            Framing::Length(len) => {
                let mut left = len;
                while left > 0 {
                    if self.pos == self.buf.len() && self.fill().await? == 0 {
                        return Err(eof());
                    }
                    let take = left.min(self.buf.len() - self.pos);
                    self.body(take, &mut resp, &mut last_data);
                    left -= take;
                }
            }
            Framing::Chunked => loop {
                let line_end = loop {
                    if let Some(at) = find(&self.buf[self.pos..], b"\r\n") {
                        break self.pos + at;
                    }
                    if self.fill().await? == 0 {
                        return Err(eof());
                    }
                };
                let size_text = &self.buf[self.pos..line_end];
                let size_text = size_text.split(|b| *b == b';').next().unwrap_or(b"");
                let size = std::str::from_utf8(size_text)
                    .ok()
                    .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
                    .ok_or_else(|| io::Error::other("bad chunk size"))?;
                self.pos = line_end + 2;
                if size == 0 {
                    // No trailers are sent by any target: the last chunk ends with one CRLF.
                    while self.buf.len() - self.pos < 2 {
                        if self.fill().await? == 0 {
                            return Err(eof());
                        }
                    }
                    self.pos += 2;
                    break;
                }
                let mut left = size;
                while left > 0 {
                    if self.pos == self.buf.len() && self.fill().await? == 0 {
                        return Err(eof());
                    }
                    let take = left.min(self.buf.len() - self.pos);
                    self.body(take, &mut resp, &mut last_data);
                    left -= take;
                }
                while self.buf.len() - self.pos < 2 {
                    if self.fill().await? == 0 {
                        return Err(eof());
                    }
                }
                self.pos += 2;
            },
            Framing::UntilClose => loop {
                if self.pos == self.buf.len() && self.fill().await? == 0 {
                    break;
                }
                let take = self.buf.len() - self.pos;
                self.body(take, &mut resp, &mut last_data);
            },
        }
        Ok(resp)
    }

    /// Consumes `take` body bytes that are in `buf` now, timing their arrival.
    fn body(&mut self, take: usize, resp: &mut Response, last_data: &mut Option<Instant>) {
        if take == 0 {
            return;
        }
        // Bytes already buffered with the previous ones arrived at the same time; timing per
        // consumption is a slight over-count of arrivals, never of gaps.
        let now = Instant::now();
        if resp.first_body_at.is_none() {
            resp.first_body_at = Some(now);
        }
        if let Some(prev) = *last_data {
            resp.last_gap = now - prev;
            resp.max_gap = resp.max_gap.max(resp.last_gap);
        }
        *last_data = Some(now);
        let data = &self.buf[self.pos..self.pos + take];
        resp.tail.extend_from_slice(data);
        if resp.tail.len() > 256 {
            resp.tail.drain(..resp.tail.len() - 64);
        }
        resp.body_bytes += take;
        self.pos += take;
    }
}

fn eof() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed mid-body")
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

fn parse_status(head: &[u8]) -> io::Result<u16> {
    let line = head.split(|b| *b == b'\n').next().unwrap_or(b"");
    line.split(|b| *b == b' ')
        .nth(1)
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other("bad status line"))
}

fn header_value<'a>(head: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    head.split(|b| *b == b'\n').skip(1).find_map(|line| {
        let colon = line.iter().position(|b| *b == b':')?;
        line[..colon]
            .eq_ignore_ascii_case(name)
            .then(|| line[colon + 1..].trim_ascii())
    })
}

fn header_has(head: &[u8], name: &[u8], token: &[u8]) -> bool {
    header_value(head, name).is_some_and(|v| {
        v.split(|b| *b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
    })
}
