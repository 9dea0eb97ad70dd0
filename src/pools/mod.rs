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
use rand::Rng;
use rustc_hash::FxHashMap as HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::catalog::Provider;
use crate::config::Snapshot;
use check::ProviderCheck;
use discovery::{Members, ProviderDiscovery};

/// One provider's load balancer.
pub struct ProviderPool {
    /// The provider the pool was built from; a reload keeps the pool for a provider that is
    /// the same in everything the pool uses (`same_pool`).
    pub provider: Arc<Provider>,
    lb: LoadBalancer<Random>,
    /// Each backend's own health-check verdict, by index: backends that share an address are
    /// one Pingora backend (`discovery::Members`), healthy while one of them is.
    member_up: Arc<[AtomicBool]>,
    pub(crate) next_check: std::sync::Mutex<Instant>,
}

/// A backend picked for one attempt: which of the provider's backends, and where it is.
#[derive(Clone, Copy, Debug)]
pub struct PickedBackend {
    pub index: usize,
    pub addr: SocketAddr,
}

/// Whether a pool built for `a` serves `b` as it is: the same backends (URL, key, weight, in
/// order, so indexes mean the same), and the same health check, with the same dialect and
/// connect timeout it checks with. A key rotated in place is a new pool: its checks must
/// use the new key.
fn same_pool(a: &Provider, b: &Provider) -> bool {
    a.dialect == b.dialect
        && a.health_check == b.health_check
        && a.timeouts.connect == b.timeouts.connect
        && a.backends.len() == b.backends.len()
        && a.backends.iter().zip(&b.backends).all(|(x, y)| {
            Arc::ptr_eq(x, y) || (x.url == y.url && x.api_key == y.api_key && x.weight == y.weight)
        })
}

impl ProviderPool {
    fn new(provider: Arc<Provider>) -> ProviderPool {
        let member_up: Arc<[AtomicBool]> = provider
            .backends
            .iter()
            .map(|_| AtomicBool::new(true))
            .collect();
        let mut backends = Backends::new(Box::new(ProviderDiscovery::new(provider.clone())));
        if let Some(hc) = &provider.health_check {
            backends.set_health_check(Box::new(ProviderCheck::new(
                provider.clone(),
                hc.path.clone(),
                member_up.clone(),
            )));
        }
        ProviderPool {
            lb: LoadBalancer::from_backends(backends),
            provider,
            member_up,
            next_check: std::sync::Mutex::new(Instant::now()),
        }
    }

    /// Whether this pool's indexes and health are `provider`'s: false for a request that
    /// began before a reload rebuilt the pool (its provider's backends may differ).
    pub fn serves(&self, provider: &Provider) -> bool {
        std::ptr::eq(Arc::as_ptr(&self.provider), provider) || same_pool(&self.provider, provider)
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
            // One address, the usual case: nothing to draw, only its health to check. The
            // balancer's draw clones the backend and tracks what it has tried in a hash set
            // (~1.2k instructions a request, issue 12).
            let only = all.iter().next()?;
            return backends.ready(only).then(|| self.member_of(only)).flatten();
        }
        self.member_of(&self.lb.select(b"", 64)?)
    }

    /// One of the provider's backends at `address`.
    fn member_of(&self, address: &Backend) -> Option<PickedBackend> {
        let members = &address.ext.get::<Members>()?.0;
        let addr = *address.addr.as_inet()?;
        let index = match &members[..] {
            [(only, _)] => *only,
            _ => self.draw_member(members)?,
        };
        Some(PickedBackend { index, addr })
    }

    /// One of an address's backends that passes its check, drawn by weight.
    fn draw_member(&self, members: &[(usize, u32)]) -> Option<usize> {
        let up = |index: usize| {
            self.member_up
                .get(index)
                .is_some_and(|u| u.load(Ordering::Relaxed))
        };
        let total: u64 = members
            .iter()
            .filter(|(i, _)| up(*i))
            .map(|(_, w)| u64::from(*w))
            .sum();
        if total == 0 {
            return None;
        }
        let mut at = rand::thread_rng().gen_range(0..total);
        for &(index, weight) in members.iter().filter(|(i, _)| up(*i)) {
            match at.checked_sub(u64::from(weight)) {
                Some(rest) => at = rest,
                None => return Some(index),
            }
        }
        None
    }

    /// Whether discovery has produced any backend yet.
    pub fn is_discovered(&self) -> bool {
        !self.lb.backends().get_backend().is_empty()
    }

    /// Health of each discovered backend (index, address, healthy).
    pub fn backend_health(&self) -> Vec<(usize, SocketAddr, bool)> {
        let backends = self.lb.backends();
        let mut health = Vec::new();
        for address in backends.get_backend().iter() {
            let (Some(members), Some(addr)) =
                (address.ext.get::<Members>(), address.addr.as_inet())
            else {
                continue;
            };
            let ready = backends.ready(address);
            for &(index, _) in members.0.iter() {
                let up = self
                    .member_up
                    .get(index)
                    .is_some_and(|u| u.load(Ordering::Relaxed));
                health.push((index, *addr, ready && up));
            }
        }
        health.sort_by_key(|(index, _, _)| *index);
        health
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
            let pool = match old.get(id) {
                Some(p) if same_pool(&p.provider, provider) => p.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The provider `p` of a config whose backends are `backends` (YAML flow list), with
    /// KEY_A/KEY_B/KEY_C set to same-length keys.
    fn provider(backends: &str) -> Arc<Provider> {
        let text = format!(
            "providers:\n  p:\n    dialect: openai\n    backends: {backends}\nmodels:\n  t/m:\n    endpoints:\n      - {{ provider: p, model: m }}\n"
        );
        let env = |name: &str| match name {
            "KEY_A" => Some("key-a".to_string()),
            "KEY_B" => Some("key-b".to_string()),
            _ => None,
        };
        let loaded = crate::config::load_str(&text, "t.yaml", &env).unwrap();
        loaded.snapshot.catalog.providers["p"].clone()
    }

    #[test]
    fn a_pool_serves_a_provider_with_the_same_backends_and_keys_only() {
        let a = "[{ base_url: \"http://127.0.0.1:9/v1\", api_key_env: KEY_A }, { base_url: \"http://127.0.0.1:9/v1\", api_key_env: KEY_B }]";
        let pool = ProviderPool::new(provider(a));
        assert!(pool.serves(&pool.provider.clone()));
        // A reload that changed nothing the pool uses: another `Provider`, the same pool.
        assert!(pool.serves(&provider(a)));
        // The same URLs, the keys swapped (same length): index 0 is another key now.
        let swapped = "[{ base_url: \"http://127.0.0.1:9/v1\", api_key_env: KEY_B }, { base_url: \"http://127.0.0.1:9/v1\", api_key_env: KEY_A }]";
        assert!(!pool.serves(&provider(swapped)));
        // One backend fewer, or another weight.
        assert!(!pool.serves(&provider(
            "[{ base_url: \"http://127.0.0.1:9/v1\", api_key_env: KEY_A }]"
        )));
        let weighted = "[{ base_url: \"http://127.0.0.1:9/v1\", api_key_env: KEY_A, weight: 2 }, { base_url: \"http://127.0.0.1:9/v1\", api_key_env: KEY_B }]";
        assert!(!pool.serves(&provider(weighted)));
    }
}
