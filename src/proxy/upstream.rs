//! The upstream side of an attempt: which backend, which socket, which request head.
//!
//! The upstream request head is built from scratch rather than edited from the client's: only
//! what the provider needs goes out, so the client's `Authorization`, cookies, hop-by-hop and
//! any other headers can never leak upstream, and `Host` is always the provider's.

use pingora::http::RequestHeader;
use pingora::upstreams::peer::HttpPeer;
use rand::Rng;
use std::net::SocketAddr;

use crate::catalog::{Backend, Dialect, Provider};
use crate::dialects::{anthropic, gemini};
use crate::routing::Candidate;

/// A weighted random backend of the provider (`backends:` in the config).
pub fn choose_backend(provider: &Provider) -> &Backend {
    let total: u64 = provider.backends.iter().map(|b| b.weight as u64).sum();
    if provider.backends.len() > 1 && total > 0 {
        let mut draw = rand::thread_rng().gen_range(0..total);
        for b in &provider.backends {
            if draw < b.weight as u64 {
                return b;
            }
            draw -= b.weight as u64;
        }
    }
    &provider.backends[0]
}

pub fn peer(provider: &Provider, backend: &Backend, addr: SocketAddr) -> Box<HttpPeer> {
    let mut peer = HttpPeer::new(addr, backend.url.tls, backend.url.host.clone());
    let t = provider.timeouts;
    peer.options.connection_timeout = Some(t.connect);
    peer.options.total_connection_timeout = Some(t.connect * 2);
    // Pingora has one read timeout: it bounds the wait for the response head and every
    // silence between body reads.
    peer.options.read_timeout = Some(t.first_byte.max(t.idle));
    peer.options.write_timeout = Some(t.first_byte);
    peer.options.idle_timeout = Some(std::time::Duration::from_secs(60));
    Box::new(peer)
}

/// The request head for a chat completion at this candidate.
pub fn chat_request_head(
    candidate: &Candidate,
    backend: &Backend,
    body_len: usize,
    stream: bool,
    anthropic_beta: Option<&str>,
) -> pingora::Result<RequestHeader> {
    let provider = candidate.provider();
    let prefix = &backend.url.path_prefix;
    let upstream_model = &candidate.endpoint().upstream_model;
    let path = match provider.dialect {
        Dialect::Azure => format!(
            "{prefix}/openai/deployments/{upstream_model}/chat/completions?api-version={}",
            provider.api_version.as_deref().unwrap_or_default()
        ),
        Dialect::Anthropic => format!("{prefix}{}", anthropic::MESSAGES_PATH),
        Dialect::Gemini => format!("{prefix}{}", gemini::chat_path(upstream_model, stream)),
        _ => format!("{prefix}/chat/completions"),
    };
    let mut head = RequestHeader::build("POST", path.as_bytes(), Some(8 + provider.headers.len()))?;
    head.insert_header("host", backend.url.host_header())?;
    head.insert_header("content-type", "application/json")?;
    head.insert_header("content-length", body_len.to_string())?;
    head.insert_header(
        "accept",
        if stream {
            "text/event-stream"
        } else {
            "application/json"
        },
    )?;
    // Metering reads the body as it passes: it must not be compressed.
    head.insert_header("accept-encoding", "identity")?;
    head.insert_header(
        "user-agent",
        concat!("switchyard/", env!("CARGO_PKG_VERSION")),
    )?;
    if let Some(key) = &backend.api_key {
        match provider.dialect {
            Dialect::Azure => head.insert_header("api-key", key.expose())?,
            Dialect::Anthropic => head.insert_header("x-api-key", key.expose())?,
            Dialect::Gemini => head.insert_header("x-goog-api-key", key.expose())?,
            _ => head.insert_header("authorization", format!("Bearer {}", key.expose()))?,
        }
    }
    if provider.dialect == Dialect::Anthropic {
        head.insert_header("anthropic-version", anthropic::ANTHROPIC_VERSION)?;
        if let Some(beta) = anthropic_beta {
            head.insert_header("anthropic-beta", beta)?;
        }
    }
    for (name, value) in &provider.headers {
        head.insert_header(name.clone(), value.clone())?;
    }
    Ok(head)
}
