//! The upstream side of an attempt: which backend, which socket, which request head.
//!
//! The upstream request head is built from scratch rather than edited from the client's: only
//! what the provider needs goes out, so the client's `Authorization`, cookies, hop-by-hop and
//! any other headers can never leak upstream, and `Host` is always the provider's.

use http::header::{ACCEPT, ACCEPT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, HOST, USER_AGENT};
use http::{HeaderName, HeaderValue};
use pingora::http::RequestHeader;
use pingora::upstreams::peer::HttpPeer;
use pingora::{ErrorType::InvalidHTTPHeader, OrErr};
use rand::Rng;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::catalog::{Backend, Dialect, Provider, Secret};
use crate::dialects::{anthropic, bedrock, gemini};
use crate::routing::Candidate;

/// A weighted random backend of the provider (`backends:` in the config).
pub fn choose_backend(provider: &Provider) -> &Arc<Backend> {
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

/// What an attempt asks the provider for.
#[derive(Clone, Copy, Debug)]
pub enum UpstreamCall {
    Chat { stream: bool },
    Embeddings { batch: bool },
}

/// The provider path for an embeddings call.
fn embeddings_path(provider: &Provider, prefix: &str, upstream_model: &str, batch: bool) -> String {
    match provider.dialect {
        Dialect::Azure => format!(
            "{prefix}/openai/deployments/{upstream_model}/embeddings?api-version={}",
            provider.api_version.as_deref().unwrap_or_default()
        ),
        Dialect::Gemini => format!(
            "{prefix}{}",
            gemini::embeddings::path(upstream_model, batch)
        ),
        _ => format!("{prefix}/embeddings"),
    }
}

/// The request head for one attempt at this candidate.
pub fn request_head(
    candidate: &Candidate,
    backend: &Backend,
    body_len: usize,
    call: UpstreamCall,
    anthropic_beta: Option<&str>,
) -> pingora::Result<RequestHeader> {
    let provider = candidate.provider();
    let prefix = &backend.url.path_prefix;
    let upstream_model = &candidate.endpoint().upstream_model;
    let stream = matches!(call, UpstreamCall::Chat { stream: true });
    let path = match call {
        UpstreamCall::Embeddings { batch } => {
            embeddings_path(provider, prefix, upstream_model, batch)
        }
        UpstreamCall::Chat { .. } => chat_path(provider, prefix, upstream_model, stream),
    };
    build_head(provider, backend, path, body_len, stream, anthropic_beta)
}

fn chat_path(provider: &Provider, prefix: &str, upstream_model: &str, stream: bool) -> String {
    match provider.dialect {
        Dialect::Azure => format!(
            "{prefix}/openai/deployments/{upstream_model}/chat/completions?api-version={}",
            provider.api_version.as_deref().unwrap_or_default()
        ),
        Dialect::Anthropic => format!("{prefix}{}", anthropic::MESSAGES_PATH),
        Dialect::Gemini => format!("{prefix}{}", gemini::chat_path(upstream_model, stream)),
        Dialect::Bedrock => format!("{prefix}{}", bedrock::chat_path(upstream_model, stream)),
        _ => format!("{prefix}/chat/completions"),
    }
}

fn build_head(
    provider: &Provider,
    backend: &Backend,
    path: String,
    body_len: usize,
    stream: bool,
    anthropic_beta: Option<&str>,
) -> pingora::Result<RequestHeader> {
    // A plain `http` head with names known in advance, then Pingora's: its `insert_header`
    // parses every name it is given (issue 12). Without a case map, as `build_no_case`:
    // names go out lowercase, which HTTP/1.1 allows and providers accept.
    let (mut parts, ()) = http::Request::new(()).into_parts();
    parts.method = http::Method::POST;
    parts.uri = http::Uri::try_from(path).or_err(InvalidHTTPHeader, "invalid upstream path")?;
    let head = &mut parts.headers;
    head.reserve(8 + provider.headers.len());
    head.insert(HOST, backend.host_header.clone());
    head.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    head.insert(CONTENT_LENGTH, HeaderValue::from(body_len));
    let accept = match (stream, provider.dialect) {
        (true, Dialect::Bedrock) => bedrock::STREAM_CONTENT_TYPE,
        (true, _) => "text/event-stream",
        (false, _) => "application/json",
    };
    head.insert(ACCEPT, HeaderValue::from_static(accept));
    // Metering reads the body as it passes: it must not be compressed.
    head.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
    head.insert(
        USER_AGENT,
        HeaderValue::from_static(concat!("switchyard/", env!("CARGO_PKG_VERSION"))),
    );
    if let Some((name, value)) = &backend.key_header {
        head.insert(name.clone(), value.clone());
    }
    if provider.dialect == Dialect::Anthropic {
        head.insert(
            HeaderName::from_static("anthropic-version"),
            HeaderValue::from_static(anthropic::ANTHROPIC_VERSION),
        );
        if let Some(beta) = anthropic_beta {
            let beta = HeaderValue::from_str(beta)
                .or_err(InvalidHTTPHeader, "invalid anthropic-beta value")?;
            head.insert(HeaderName::from_static("anthropic-beta"), beta);
        }
    }
    for (name, value) in &provider.headers {
        head.insert(name.clone(), value.clone());
    }
    Ok(RequestHeader::from(parts))
}

/// Adds the SigV4 headers Bedrock authenticates with, over exactly the path and body sent.
/// Runs on every attempt, so each try is signed with a fresh date.
pub fn sign_bedrock(
    head: &mut RequestHeader,
    provider: &Provider,
    backend: &Backend,
    body: &[u8],
) -> pingora::Result<()> {
    let Some(credentials) = &provider.aws_credentials else {
        return Ok(());
    };
    let path_and_query = head
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let region = provider.region.as_deref().unwrap_or("us-east-1");
    let headers = bedrock::sign(
        "POST",
        &backend.url.host_header(),
        &path_and_query,
        body,
        region,
        credentials.access_key_id.expose(),
        credentials.secret_access_key.expose(),
        credentials.session_token.as_ref().map(Secret::expose),
        std::time::SystemTime::now(),
    )
    .map_err(|e| {
        pingora::Error::explain(
            pingora::ErrorType::InternalError,
            format!("signing the Bedrock request: {e}"),
        )
    })?;
    for (name, value) in headers {
        head.insert_header(name, value)?;
    }
    Ok(())
}
