//! What `/ready` checks: the store answers (its answer cached briefly, so frequent probes
//! from several kubelets and load balancers cost one ping per second), a signing key is
//! loaded, — with a key watch (`serve --kubernetes`) — the watch has synced, and from what
//! the replica's own checks of the store found ([`StoreStatus`]): the declared registry is
//! not known to be missing (lost data being re-applied), and the store does not evict.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::keys::Keyring;
use crate::store::{Store, StoreStatus};

/// How long readiness waits for the store before calling it missing.
const STORE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long one store check answers for.
const STORE_CACHE: Duration = Duration::from_secs(1);

/// The readiness state of one provider.
#[derive(Debug, Default)]
pub struct Readiness {
    /// The last store check: when, and whether it answered.
    last_store_check: Mutex<Option<(Instant, bool)>>,
    /// Set by a key watch once it has listed the keys; `None` when there is no watch.
    key_watch_synced: Option<Arc<AtomicBool>>,
}

impl Readiness {
    /// Readiness that also waits for `synced` (flipped by the key watch).
    pub fn with_key_watch(synced: Arc<AtomicBool>) -> Self {
        Self { last_store_check: Mutex::default(), key_watch_synced: Some(synced) }
    }

    /// The names of what is missing; empty when ready.
    pub async fn missing(&self, store: &dyn Store, keys: &Keyring, status: &StoreStatus) -> Vec<&'static str> {
        let mut missing = Vec::new();
        if !self.store_answers(store).await {
            missing.push("store");
        }
        if status.registry_missing() {
            missing.push("registry");
        }
        if status.evicting() {
            missing.push("store_policy");
        }
        if keys.signer(None).is_none() {
            missing.push("signing_key");
        }
        if self.key_watch_synced.as_ref().is_some_and(|synced| !synced.load(Ordering::Acquire)) {
            missing.push("key_watch");
        }
        missing
    }

    async fn store_answers(&self, store: &dyn Store) -> bool {
        let cached = *self.last_store_check.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, answered)) = cached.filter(|(at, _)| at.elapsed() < STORE_CACHE) {
            return answered;
        }
        let answered = match tokio::time::timeout(STORE_TIMEOUT, store.ping()).await {
            Ok(Ok(())) => true,
            Ok(Err(error)) => {
                tracing::warn!(%error, "readiness: the store does not answer");
                false
            }
            Err(_) => {
                tracing::warn!("readiness: the store did not answer within {STORE_TIMEOUT:?}");
                false
            }
        };
        *self.last_store_check.lock().unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), answered));
        answered
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::store::MemoryStore;

    #[tokio::test]
    async fn names_each_missing_part_until_the_key_watch_syncs() {
        let store = MemoryStore::new(Clock::system());
        let no_keys = Keyring::new(Vec::new()).unwrap();
        let status = StoreStatus::new("e".into());
        assert_eq!(Readiness::default().missing(&store, &no_keys, &status).await, ["signing_key"]);
        let synced = Arc::new(AtomicBool::new(false));
        let readiness = Readiness::with_key_watch(Arc::clone(&synced));
        assert_eq!(readiness.missing(&store, &no_keys, &status).await, ["signing_key", "key_watch"]);
        synced.store(true, Ordering::Release);
        assert_eq!(readiness.missing(&store, &no_keys, &status).await, ["signing_key"]);
    }

    #[tokio::test]
    async fn lost_data_being_reapplied_and_an_evicting_store_are_named() {
        let store = MemoryStore::new(Clock::system());
        let no_keys = Keyring::new(Vec::new()).unwrap();
        let status = StoreStatus::new("e".into());
        status.set_registry_missing(true);
        status.set_evicting(true);
        let missing = Readiness::default().missing(&store, &no_keys, &status).await;
        assert_eq!(missing, ["registry", "store_policy", "signing_key"]);
        status.set_registry_missing(false);
        status.set_evicting(false);
        assert_eq!(Readiness::default().missing(&store, &no_keys, &status).await, ["signing_key"]);
    }
}
