//! What a replica knows of its store between answers, kept current by the replica's
//! periodic checks and read by issuance and `/ready`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;

/// The data epoch this replica last saw (stamped into every access token it issues),
/// whether the store is known to have lost what was declared and not had it re-applied
/// yet, and whether the store evicts keys.
#[derive(Debug)]
pub struct StoreStatus {
    epoch: ArcSwap<String>,
    registry_missing: AtomicBool,
    evicting: AtomicBool,
}

impl StoreStatus {
    /// The status of a store whose data epoch is `epoch`, its declared state in place.
    pub fn new(epoch: String) -> Self {
        Self {
            epoch: ArcSwap::from_pointee(epoch),
            registry_missing: AtomicBool::new(false),
            evicting: AtomicBool::new(false),
        }
    }

    /// The data epoch last seen.
    pub fn epoch(&self) -> Arc<String> {
        self.epoch.load_full()
    }

    pub fn set_epoch(&self, epoch: String) {
        self.epoch.store(Arc::new(epoch));
    }

    /// Lost data was detected and what is declared is not applied again yet.
    pub fn registry_missing(&self) -> bool {
        self.registry_missing.load(Ordering::Acquire)
    }

    pub fn set_registry_missing(&self, missing: bool) {
        self.registry_missing.store(missing, Ordering::Release);
    }

    /// The store may evict keys before they expire.
    pub fn evicting(&self) -> bool {
        self.evicting.load(Ordering::Acquire)
    }

    pub fn set_evicting(&self, evicting: bool) {
        self.evicting.store(evicting, Ordering::Release);
    }
}
