//! Service discovery for a provider: its backends' host names resolved asynchronously (never
//! on a worker thread's critical path), each tagged with its index in the provider's list.

use async_trait::async_trait;
use pingora::lb::discovery::ServiceDiscovery;
use pingora::lb::Backend;
use pingora::protocols::l4::socket::SocketAddr;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::catalog::Provider;

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
        let mut found = BTreeSet::new();
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
                let mut backend = Backend {
                    addr: SocketAddr::Inet(addr),
                    weight: b.weight.max(1) as usize,
                    ext: Default::default(),
                };
                backend.ext.insert(index);
                found.insert(backend);
            }
        }
        Ok((found, HashMap::new()))
    }
}
