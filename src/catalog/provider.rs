//! Providers as the router and proxy see them: a dialect, one or more backends, a data policy
//! and timeouts. Secrets are resolved from the environment at load time and never printed.

use std::fmt;
use std::time::Duration;

/// The API format a provider speaks (DESIGN §1: conversions are per dialect, not per vendor).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dialect {
    OpenAi,
    Anthropic,
    Gemini,
    Bedrock,
    Azure,
}

impl Dialect {
    pub fn parse(s: &str) -> Option<Dialect> {
        Some(match s {
            "openai" => Dialect::OpenAi,
            "anthropic" => Dialect::Anthropic,
            "gemini" => Dialect::Gemini,
            "bedrock" => Dialect::Bedrock,
            "azure" => Dialect::Azure,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::OpenAi => "openai",
            Dialect::Anthropic => "anthropic",
            Dialect::Gemini => "gemini",
            Dialect::Bedrock => "bedrock",
            Dialect::Azure => "azure",
        }
    }

    /// Dialects the proxy can send chat requests to today; the router skips the others and
    /// says why, rather than sending a provider a format it does not speak.
    pub fn is_served(self) -> bool {
        true
    }

    /// Dialects whose chat requests and streams the gateway forwards byte for byte.
    pub fn is_openai_compatible(self) -> bool {
        matches!(self, Dialect::OpenAi | Dialect::Azure)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataCollection {
    Allow,
    Deny,
}

/// A secret from the environment. Its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    /// Longest wait for the response head after the request was sent.
    pub first_byte: Duration,
    /// Longest silence between two reads of a response body (a stalled stream).
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            first_byte: Duration::from_secs(60),
            idle: Duration::from_secs(60),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthCheck {
    pub interval: Duration,
    pub path: String,
}

/// A provider base URL split into what a connection needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamUrl {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// The path before the API's own paths, without a trailing slash (`/v1`, or empty).
    pub path_prefix: String,
}

impl UpstreamUrl {
    pub fn parse(url: &str) -> Result<UpstreamUrl, String> {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| format!("`{url}` is not a URL: {e}"))?;
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            Some(other) => return Err(format!("scheme `{other}` is not http or https")),
            None => return Err(format!("`{url}` has no scheme (http:// or https://)")),
        };
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("`{url}` has no host"))?;
        if uri.query().is_some() {
            return Err(format!("`{url}` must not have a query string"));
        }
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let path_prefix = uri.path().trim_end_matches('/').to_string();
        Ok(UpstreamUrl {
            tls,
            host,
            port,
            path_prefix,
        })
    }

    /// The `Host` header value: the port only when it is not the scheme's default.
    pub fn host_header(&self) -> String {
        let default_port = if self.tls { 443 } else { 80 };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == default_port {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

#[derive(Clone, Debug)]
pub struct Backend {
    pub url: UpstreamUrl,
    pub api_key: Option<Secret>,
    pub weight: u32,
    /// Header values every request to this backend carries, built once per config rather
    /// than once per request (issue 12): `Host`, and the key in its dialect's header.
    pub host_header: http::HeaderValue,
    pub key_header: Option<(http::HeaderName, http::HeaderValue)>,
}

impl Backend {
    /// Fails when the key cannot be sent as a header value (a control character, say).
    pub fn new(
        url: UpstreamUrl,
        api_key: Option<Secret>,
        weight: u32,
        dialect: Dialect,
    ) -> Result<Backend, String> {
        let host_header = http::HeaderValue::try_from(url.host_header())
            .map_err(|_| format!("host `{}` is not a valid Host header", url.host))?;
        let key_header = match &api_key {
            Some(key) => key_header(dialect, key)?,
            None => None,
        };
        Ok(Backend {
            url,
            api_key,
            weight,
            host_header,
            key_header,
        })
    }
}

/// The header a dialect authenticates with and its value, marked sensitive so that the http
/// crate's Debug output (and any debug log of a request head) shows `Sensitive`. Bedrock
/// signs each request instead (SigV4), so it has none.
fn key_header(
    dialect: Dialect,
    key: &Secret,
) -> Result<Option<(http::HeaderName, http::HeaderValue)>, String> {
    use http::HeaderName;
    let (name, value) = match dialect {
        Dialect::Azure => (HeaderName::from_static("api-key"), key.expose().to_string()),
        Dialect::Anthropic => (
            HeaderName::from_static("x-api-key"),
            key.expose().to_string(),
        ),
        Dialect::Gemini => (
            HeaderName::from_static("x-goog-api-key"),
            key.expose().to_string(),
        ),
        Dialect::Bedrock => return Ok(None),
        Dialect::OpenAi => (
            http::header::AUTHORIZATION,
            format!("Bearer {}", key.expose()),
        ),
    };
    let mut value = http::HeaderValue::try_from(value)
        .map_err(|_| "the API key has characters a header value cannot carry".to_string())?;
    value.set_sensitive(true);
    Ok(Some((name, value)))
}

/// An AWS identity: long-term keys, or temporary ones (a role's, SSO's, an instance
/// profile's), which also need their session token.
#[derive(Debug)]
pub struct AwsCredentials {
    pub access_key_id: Secret,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
}

#[derive(Debug)]
pub struct Provider {
    pub id: String,
    pub dialect: Dialect,
    /// Shared: the proxy keeps the chosen one for the request (issue 12: no copy of its strings).
    pub backends: Vec<std::sync::Arc<Backend>>,
    pub data_collection: DataCollection,
    pub zdr: bool,
    pub timeouts: Timeouts,
    pub health_check: Option<HealthCheck>,
    /// Static headers for every upstream request, already validated as header names/values.
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    pub api_version: Option<String>,
    pub region: Option<String>,
    /// What SigV4-signed providers (Bedrock) sign with.
    pub aws_credentials: Option<AwsCredentials>,
    /// Why the provider cannot be used (e.g. its key's environment variable is unset); the
    /// router skips it and says so instead of sending unauthenticated requests.
    pub unavailable: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_base_urls() {
        let u = UpstreamUrl::parse("https://api.openai.com/v1").unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port, u.path_prefix.as_str()),
            (true, "api.openai.com", 443, "/v1")
        );
        assert_eq!(u.host_header(), "api.openai.com");
        let u = UpstreamUrl::parse("http://127.0.0.1:9999/").unwrap();
        assert_eq!((u.tls, u.port, u.path_prefix.as_str()), (false, 9999, ""));
        assert_eq!(u.host_header(), "127.0.0.1:9999");
        assert!(UpstreamUrl::parse("ftp://x").is_err());
        assert!(UpstreamUrl::parse("api.openai.com/v1").is_err());
        assert!(UpstreamUrl::parse("http://h/v1?x=1").is_err());
    }

    #[test]
    fn a_backend_carries_its_host_and_key_headers_ready_made() {
        let url = || UpstreamUrl::parse("http://127.0.0.1:9999/v1").unwrap();
        let key = || Some(Secret::new("sk-test".to_string()));
        let header = |dialect| {
            let b = Backend::new(url(), key(), 1, dialect).unwrap();
            assert_eq!(b.host_header, "127.0.0.1:9999");
            b.key_header.map(|(name, value)| {
                (
                    name.as_str().to_string(),
                    value.to_str().unwrap().to_string(),
                    value.is_sensitive(),
                )
            })
        };
        let sensitive = |name: &str, value: &str| Some((name.to_string(), value.to_string(), true));
        assert_eq!(
            header(Dialect::OpenAi),
            sensitive("authorization", "Bearer sk-test")
        );
        assert_eq!(header(Dialect::Azure), sensitive("api-key", "sk-test"));
        assert_eq!(
            header(Dialect::Anthropic),
            sensitive("x-api-key", "sk-test")
        );
        assert_eq!(
            header(Dialect::Gemini),
            sensitive("x-goog-api-key", "sk-test")
        );
        assert_eq!(header(Dialect::Bedrock), None);
        assert!(Backend::new(url(), None, 1, Dialect::OpenAi)
            .unwrap()
            .key_header
            .is_none());
        let bad = Some(Secret::new("sk-one\nline-two".to_string()));
        let err = Backend::new(url(), bad, 1, Dialect::OpenAi).unwrap_err();
        assert!(err.contains("header value"), "{err}");
    }
}
