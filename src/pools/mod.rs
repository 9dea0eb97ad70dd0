//! Provider backends as `pingora-load-balancing` pools: each provider's backends (base URL +
//! key + weight) are drawn weighted at random among the healthy ones, with DNS resolved by
//! async discovery and, when the provider configures `health_check`, active checks.
//!
//! Pools live outside the config snapshot: a reload keeps the pool (and so the health state)
//! of every provider whose backends did not change, and builds new ones for the rest.

mod check;
mod discovery;

pub use check::HealthCheckService;

use arc_swap::ArcSwap;
use pingora::lb::selection::Random;
use pingora::lb::{Backend, Backends, LoadBalancer};
use rustc_hash::FxHashMap as HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use crate::catalog::Provider;
use crate::config::Snapshot;
use check::ProviderCheck;
use discovery::ProviderDiscovery;

/// One provider's load balancer.
pub struct ProviderPool {
    pub provider: Arc<Provider>,
    lb: LoadBalancer<Random>,
    /// What identifies "the same backends" across reloads.
    fingerprint: String,
    pub(crate) next_check: std::sync::Mutex<Instant>,
}

/// A backend picked for one attempt: which of the provider's backends, and where it is.
#[derive(Clone, Copy, Debug)]
pub struct PickedBackend {
    pub index: usize,
    pub addr: SocketAddr,
}

fn picked(b: &Backend) -> Option<PickedBackend> {
    let index = *b.ext.get::<usize>()?;
    let addr = b.addr.as_inet().copied()?;
    Some(PickedBackend { index, addr })
}

fn fingerprint(p: &Provider) -> String {
    let backends: Vec<String> = p
        .backends
        .iter()
        .map(|b| {
            format!(
                "{}:{}{}|{}|{}",
                b.url.host,
                b.url.port,
                b.url.path_prefix,
                b.weight,
                b.api_key.as_ref().map_or(0, |k| k.expose().len())
            )
        })
        .collect();
    format!(
        "{:?}|{}|{:?}",
        p.dialect,
        backends.join(","),
        p.health_check
    )
}

impl ProviderPool {
    fn new(provider: Arc<Provider>) -> ProviderPool {
        let mut backends = Backends::new(Box::new(ProviderDiscovery::new(provider.clone())));
        if let Some(hc) = &provider.health_check {
            backends.set_health_check(Box::new(ProviderCheck::new(
                provider.clone(),
                hc.path.clone(),
            )));
        }
        ProviderPool {
            fingerprint: fingerprint(&provider),
            lb: LoadBalancer::from_backends(backends),
            provider,
            next_check: std::sync::Mutex::new(Instant::now()),
        }
    }

    /// Re-resolves the backends and, if configured, runs one round of health checks.
    pub async fn refresh(&self) {
        if let Err(e) = self.lb.update().await {
            log::warn!(
                "provider {}: resolving backends failed: {e}",
                self.provider.id
            );
        }
        if self.provider.health_check.is_some() {
            self.lb.backends().run_health_check(true).await;
        }
    }

    /// A healthy backend, weighted; `None` when discovery has not run yet or every backend
    /// failed its health check.
    pub fn pick(&self) -> Option<PickedBackend> {
        let backends = self.lb.backends();
        let all = backends.get_backend();
        if all.len() == 1 {
            // One backend, the usual case: nothing to draw, only its health to check. The
            // balancer's draw clones the backend and tracks what it has tried in a hash set
            // (~1.2k instructions a request, issue 12).
            let only = all.iter().next()?;
            return backends.ready(only).then(|| picked(only)).flatten();
        }
        picked(&self.lb.select(b"", 64)?)
    }

    /// Whether discovery has produced any backend yet.
    pub fn is_discovered(&self) -> bool {
        !self.lb.backends().get_backend().is_empty()
    }

    /// Health of each discovered backend (index, address, healthy).
    pub fn backend_health(&self) -> Vec<(usize, SocketAddr, bool)> {
        let backends = self.lb.backends();
        backends
            .get_backend()
            .iter()
            .filter_map(|b| {
                Some((
                    *b.ext.get::<usize>()?,
                    *b.addr.as_inet()?,
                    backends.ready(b),
                ))
            })
            .collect()
    }
}

/// Every provider's pool, swapped as a whole on reload.
#[derive(Default)]
pub struct ProviderPools {
    pools: ArcSwap<HashMap<String, Arc<ProviderPool>>>,
}

impl ProviderPools {
    /// Pools for `snapshot`'s providers, reusing the current pool of each unchanged provider.
    pub fn sync(&self, snapshot: &Snapshot) {
        let old = self.pools.load();
        let mut next = HashMap::default();
        for (id, provider) in &snapshot.catalog.providers {
            let fp = fingerprint(provider);
            let pool = match old.get(id) {
                Some(p) if p.fingerprint == fp => p.clone(),
                _ => Arc::new(ProviderPool::new(provider.clone())),
            };
            next.insert(id.clone(), pool);
        }
        self.pools.store(Arc::new(next));
    }

    pub fn get(&self, provider: &str) -> Option<Arc<ProviderPool>> {
        self.pools.load().get(provider).cloned()
    }

    pub fn all(&self) -> Vec<Arc<ProviderPool>> {
        self.pools.load().values().cloned().collect()
    }
}
