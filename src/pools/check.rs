//! Active health checks: `GET <base path><health_check.path>` on each backend with the
//! provider's own credentials, at the provider's `health_check.interval`. Healthy means the
//! backend answered below 500 and did not refuse the key (401/403). One failure marks a
//! backend down; one success brings it back. Backends that share an address (two keys on one
//! URL) are checked each with its own key and judged each on its own.

use async_trait::async_trait;
use pingora::connectors::http::Connector;
use pingora::http::RequestHeader;
use pingora::lb::health_check::HealthCheck;
use pingora::lb::Backend;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorType};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::discovery::Members;
use super::ProviderPools;
use crate::catalog::{Dialect, Provider};

pub struct ProviderCheck {
    provider: Arc<Provider>,
    path: String,
    connector: Connector,
    /// Each of the provider's backends' own verdict, by index (see `ProviderPool::pick`).
    member_up: Arc<[AtomicBool]>,
}

impl ProviderCheck {
    pub fn new(
        provider: Arc<Provider>,
        path: String,
        member_up: Arc<[AtomicBool]>,
    ) -> ProviderCheck {
        ProviderCheck {
            provider,
            path,
            connector: Connector::new(None),
            member_up,
        }
    }

    /// One backend of the provider (URL and key) at `addr`.
    async fn check_member(&self, index: usize, addr: std::net::SocketAddr) -> pingora::Result<()> {
        let backend = self
            .provider
            .backends
            .get(index)
            .ok_or_else(|| fail("unknown backend".into()))?;
        let mut peer = HttpPeer::new(addr, backend.url.tls, backend.url.host.clone());
        let timeout = self.provider.timeouts.connect.max(Duration::from_secs(1));
        peer.options.connection_timeout = Some(timeout);
        peer.options.read_timeout = Some(timeout * 2);
        let path = format!("{}{}", backend.url.path_prefix, self.path);
        let mut req = RequestHeader::build("GET", path.as_bytes(), None)?;
        req.insert_header("host", backend.url.host_header())?;
        req.insert_header(
            "user-agent",
            concat!("switchyard-health/", env!("CARGO_PKG_VERSION")),
        )?;
        if let Some(key) = &backend.api_key {
            match self.provider.dialect {
                Dialect::Azure => req.insert_header("api-key", key.expose())?,
                Dialect::Anthropic => {
                    req.insert_header("x-api-key", key.expose())?;
                    req.insert_header(
                        "anthropic-version",
                        crate::dialects::anthropic::ANTHROPIC_VERSION,
                    )?;
                }
                Dialect::Gemini => req.insert_header("x-goog-api-key", key.expose())?,
                _ => req.insert_header("authorization", format!("Bearer {}", key.expose()))?,
            }
        }
        let (mut session, _) = self.connector.get_http_session(&peer).await?;
        session.write_request_header(Box::new(req)).await?;
        session.finish_request_body().await?;
        session.read_response_header().await?;
        let status = session.response_header().map_or(0, |h| h.status.as_u16());
        if status == 0 || status >= 500 || status == 401 || status == 403 {
            return Err(fail(format!("health check answered {status}")));
        }
        Ok(())
    }
}

fn fail(why: String) -> Box<Error> {
    Error::explain(ErrorType::HTTPStatus(502), why)
}

#[async_trait]
impl HealthCheck for ProviderCheck {
    /// Every backend of the provider behind `target`'s address, each with its own key: the
    /// address is healthy while one of them is, and each keeps its own verdict for the draw.
    async fn check(&self, target: &Backend) -> pingora::Result<()> {
        let members = target
            .ext
            .get::<Members>()
            .ok_or_else(|| fail("backend without members".into()))?;
        let addr = target
            .addr
            .as_inet()
            .copied()
            .ok_or_else(|| fail("not an inet backend".into()))?;
        let mut verdict = Err(fail("no backend to check".into()));
        for &(index, _) in members.0.iter() {
            let result = self.check_member(index, addr).await;
            if let Some(up) = self.member_up.get(index) {
                up.store(result.is_ok(), Ordering::Relaxed);
            }
            if verdict.is_err() {
                verdict = result;
            }
        }
        verdict
    }

    fn health_threshold(&self, _success: bool) -> usize {
        1
    }
}

/// The background service that refreshes every pool: DNS every `DISCOVERY_EVERY`, active
/// checks at each provider's own interval.
pub struct HealthCheckService {
    pools: Arc<ProviderPools>,
}

const TICK: Duration = Duration::from_millis(100);
const DISCOVERY_EVERY: Duration = Duration::from_secs(30);

impl HealthCheckService {
    pub fn new(pools: Arc<ProviderPools>) -> HealthCheckService {
        HealthCheckService { pools }
    }
}

#[async_trait]
impl BackgroundService for HealthCheckService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        loop {
            for pool in self.pools.all() {
                let due = {
                    let Ok(mut next) = pool.next_check.lock() else {
                        continue;
                    };
                    if Instant::now() < *next {
                        false
                    } else {
                        let every = pool
                            .provider
                            .health_check
                            .as_ref()
                            .map_or(DISCOVERY_EVERY, |h| h.interval);
                        *next = Instant::now() + every;
                        true
                    }
                };
                if due {
                    pool.refresh().await;
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(TICK) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}
