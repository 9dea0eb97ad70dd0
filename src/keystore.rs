//! Client keys for the request path: the static keys of the config snapshot, then the
//! dynamic keys created through the admin API, which live in the ledger.
//!
//! Dynamic keys are cached here and refreshed after every change made through this instance
//! and every `REFRESH_EVERY` (so a key created or revoked on another instance sharing the
//! database takes effect here within that interval). A failed refresh keeps the last good
//! cache: a database outage never locks every dynamic key out.

use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::{ApiKey, KeyRing};
use crate::config::Snapshot;
use crate::ledger::{Ledger, LedgerError};

pub const REFRESH_EVERY: Duration = Duration::from_secs(5);

pub struct KeyStore {
    dynamic: ArcSwap<KeyRing>,
    ledger: Ledger,
}

impl KeyStore {
    pub fn new(ledger: Ledger) -> KeyStore {
        KeyStore {
            dynamic: ArcSwap::from_pointee(KeyRing::default()),
            ledger,
        }
    }

    /// The key whose secret this is: the config's keys first, then the admin API's.
    pub fn find(&self, snapshot: &Snapshot, secret: &str) -> Option<Arc<ApiKey>> {
        snapshot
            .keys
            .find(secret)
            .cloned()
            .or_else(|| self.dynamic.load().find(secret).cloned())
    }

    /// Reloads the dynamic keys from the ledger.
    pub async fn refresh(&self) -> Result<usize, LedgerError> {
        let stored = self.ledger.load_keys().await?;
        let mut ring = KeyRing::default();
        for key in &stored {
            ring.insert(key.to_api_key());
        }
        let n = ring.len();
        self.dynamic.store(Arc::new(ring));
        Ok(n)
    }

    pub fn dynamic_keys(&self) -> Vec<Arc<ApiKey>> {
        self.dynamic.load().iter().cloned().collect()
    }
}

/// Refreshes the dynamic keys periodically.
pub struct KeyRefreshService {
    keys: Arc<KeyStore>,
}

impl KeyRefreshService {
    pub fn new(keys: Arc<KeyStore>) -> KeyRefreshService {
        KeyRefreshService { keys }
    }
}

#[async_trait]
impl BackgroundService for KeyRefreshService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(REFRESH_EVERY) => {
                    if let Err(e) = self.keys.refresh().await {
                        log::warn!("refreshing API keys from the ledger failed, keeping the cached ones: {e}");
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}
