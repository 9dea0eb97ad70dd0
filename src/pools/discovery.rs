//! Service discovery for a provider: its backends' host names resolved asynchronously (never
//! on a worker thread's critical path), grouped by the address they resolve to.

use async_trait::async_trait;
use pingora::lb::discovery::ServiceDiscovery;
use pingora::lb::Backend;
use pingora::protocols::l4::socket::SocketAddr;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::catalog::Provider;

/// The provider's backends (index in its list, weight) behind one Pingora backend.
///
/// Pingora knows a backend by its address and weight alone (`ext` is ignored when backends
/// are compared), so two of ours on one address — two keys on one URL, the usual way to
/// spread a provider's rate limits — would collapse into the first. Grouped, the address is
/// drawn by the sum of their weights, then one of them by its own.
#[derive(Clone, Debug)]
pub(super) struct Members(pub Arc<[(usize, u32)]>);

pub struct ProviderDiscovery {
    provider: Arc<Provider>,
}

impl ProviderDiscovery {
    pub fn new(provider: Arc<Provider>) -> ProviderDiscovery {
        ProviderDiscovery { provider }
    }
}

#[async_trait]
impl ServiceDiscovery for ProviderDiscovery {
    async fn discover(&self) -> pingora::Result<(BTreeSet<Backend>, HashMap<u64, bool>)> {
        let mut by_addr: BTreeMap<std::net::SocketAddr, Vec<(usize, u32)>> = BTreeMap::new();
        for (index, b) in self.provider.backends.iter().enumerate() {
            let addr = match b.url.host.parse::<std::net::IpAddr>() {
                Ok(ip) => Some(std::net::SocketAddr::new(ip, b.url.port)),
                Err(_) => match tokio::net::lookup_host((b.url.host.as_str(), b.url.port)).await {
                    Ok(mut addrs) => addrs.next(),
                    Err(e) => {
                        log::warn!(
                            "provider {}: cannot resolve {}: {e}",
                            self.provider.id,
                            b.url.host
                        );
                        None
                    }
                },
            };
            if let Some(addr) = addr {
                by_addr
                    .entry(addr)
                    .or_default()
                    .push((index, b.weight.max(1)));
            }
        }
        let found = by_addr
            .into_iter()
            .map(|(addr, members)| {
                let weight = members.iter().map(|(_, w)| *w as usize).sum();
                let mut backend = Backend {
                    addr: SocketAddr::Inet(addr),
                    weight,
                    ext: Default::default(),
                };
                backend.ext.insert(Members(members.into()));
                backend
            })
            .collect();
        Ok((found, HashMap::new()))
    }
}
