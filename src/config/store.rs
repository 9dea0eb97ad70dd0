//! The live snapshot. Requests take an `Arc` at their start and keep it to the end; a reload
//! swaps the whole snapshot atomically, so no request ever sees half of a config.

use arc_swap::ArcSwap;
use std::sync::Arc;

use super::Snapshot;

pub struct SnapshotStore {
    current: ArcSwap<Snapshot>,
}

impl SnapshotStore {
    pub fn new(snapshot: Snapshot) -> SnapshotStore {
        SnapshotStore {
            current: ArcSwap::from_pointee(snapshot),
        }
    }

    pub fn current(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    pub fn replace(&self, snapshot: Snapshot) {
        self.current.store(Arc::new(snapshot));
    }
}
