//! Resolving provider host names without blocking a worker thread.
//!
//! `HttpPeer::new` with a host name resolves synchronously; the gateway instead resolves
//! through tokio (getaddrinfo on the blocking pool), caches answers for a short time, and
//! hands Pingora a socket address. IP literals never touch the resolver.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::RwLock;
use std::time::{Duration, Instant};

const TTL: Duration = Duration::from_secs(30);

#[derive(Default)]
pub struct Resolver {
    cache: RwLock<HashMap<(String, u16), (SocketAddr, Instant)>>,
}

impl Resolver {
    pub async fn resolve(&self, host: &str, port: u16) -> std::io::Result<SocketAddr> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(SocketAddr::new(ip, port));
        }
        let key = (host.to_string(), port);
        if let Some((addr, at)) = self.cache.read().ok().and_then(|c| c.get(&key).copied()) {
            if at.elapsed() < TTL {
                return Ok(addr);
            }
        }
        let addr = tokio::net::lookup_host((host, port))
            .await?
            .next()
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{host} has no address"),
                )
            })?;
        if let Ok(mut cache) = self.cache.write() {
            cache.insert(key, (addr, Instant::now()));
        }
        Ok(addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn resolves_literals_and_localhost() {
        let r = Resolver::default();
        assert_eq!(
            r.resolve("127.0.0.1", 80).await.unwrap(),
            "127.0.0.1:80".parse().unwrap()
        );
        assert_eq!(
            r.resolve("::1", 81).await.unwrap(),
            "[::1]:81".parse().unwrap()
        );
        assert!(r.resolve("localhost", 82).await.unwrap().ip().is_loopback());
    }
}
