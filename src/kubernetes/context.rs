//! What every reconciliation shares: the clients, the store, the reflector caches of the
//! peers, the memory of what was applied, the bounded pool for argon2 work, the back-off
//! counts and the typed error with its retry policy.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store as Reflector};
use kube::{Client, Resource, ResourceExt};
use tokio::sync::{Semaphore, watch};

use super::config::ControllerConfig;
use super::events::Events;
use super::index::Index;
use super::metrics::ControllerMetrics;
use crate::clock::Clock;
use crate::controller::decide::Requeue;
use crate::controller::decide::claim::Claimant;
use crate::crd::{IdentityConnector, OidcClient, OidcUser};
use crate::keys::KeyError;
use crate::secrets::SecretError;
use crate::store::{Store, StoreError};

/// Longest wait between retries of a failing resource.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Longest wait between retries while the store does not answer: it usually comes back
/// soon, and every resource waits for it.
const MAX_STORE_BACKOFF: Duration = Duration::from_secs(30);
/// How soon a resource that lost a conflict looks again (the winner may go).
const CONFLICT_RECHECK: Duration = Duration::from_secs(30);
/// Retry after an API conflict (409): someone else wrote first; read again and go on.
const CONFLICT_RETRY: Duration = Duration::from_secs(1);

/// Why a reconciliation failed. Problems an operator fixes in a resource or Secret are
/// not errors: they are reported in the status and wait for a change.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("argon2 work did not finish: {0}")]
    Hashing(String),
    #[error("adding the finalizer: {0}")]
    AddFinalizer(kube::Error),
    #[error("removing the finalizer: {0}")]
    RemoveFinalizer(kube::Error),
}

/// How a failure is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Soon, once: someone else wrote first (409).
    Shortly,
    /// 1 s doubling up to [`MAX_STORE_BACKOFF`].
    StoreBackoff,
    /// 1 s doubling up to [`MAX_BACKOFF`].
    Backoff,
}

impl ControllerError {
    pub fn retry(&self) -> Retry {
        match self {
            ControllerError::Kube(error)
            | ControllerError::AddFinalizer(error)
            | ControllerError::RemoveFinalizer(error)
                if is_conflict(error) =>
            {
                Retry::Shortly
            }
            ControllerError::Store(_) => Retry::StoreBackoff,
            _ => Retry::Backoff,
        }
    }

    /// A fixed label per kind of failure, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ControllerError::Kube(_) => "kubernetes",
            ControllerError::Store(_) => "store",
            ControllerError::Key(_) => "key",
            ControllerError::Secret(_) | ControllerError::Hashing(_) => "secret",
            ControllerError::AddFinalizer(_) | ControllerError::RemoveFinalizer(_) => "finalizer",
        }
    }
}

/// Whether the API server answered 409: a conflicting write, or a create of something that
/// exists.
pub fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}

/// The wait before retry `attempt` (1-based) of a failure retried so.
pub fn retry_delay(retry: Retry, attempt: u32) -> Duration {
    let doubling = |cap: Duration| Duration::from_secs(1u64 << (attempt.clamp(1, 16) - 1)).min(cap);
    match retry {
        Retry::Shortly => CONFLICT_RETRY,
        Retry::StoreBackoff => doubling(MAX_STORE_BACKOFF),
        Retry::Backoff => doubling(MAX_BACKOFF),
    }
}

/// The SHA-256 of a client secret and the argon2id hash it was verified against (or made
/// into): lets a reconcile that finds the same secret again skip argon2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub digest: String,
    pub hash: String,
}

/// What the controller last applied to the store for one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The client id, username or connector name held for the resource.
    pub id: String,
    /// The store's data epoch when it was applied: a different epoch now means the data
    /// may be gone, whatever a cached read says.
    pub epoch: Option<String>,
    pub secret: Option<Verified>,
}

/// What was applied per resource (by [`object_key`]), kept across leadership terms. It
/// is written before the store is, so a sweep running meanwhile counts the id as declared.
#[derive(Default)]
pub struct Memo(Mutex<HashMap<String, Applied>>);

impl Memo {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Applied>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn get(&self, key: &str) -> Option<Applied> {
        self.entries().get(key).cloned()
    }

    pub fn set(&self, key: String, applied: Applied) {
        self.entries().insert(key, applied);
    }

    pub fn forget(&self, key: &str) {
        self.entries().remove(key);
    }

    /// The ids applied for resources of `kind`.
    pub fn ids(&self, kind: &str) -> BTreeSet<String> {
        let prefix = format!("{kind}/");
        self.entries().iter().filter(|(key, _)| key.starts_with(&prefix)).map(|(_, a)| a.id.clone()).collect()
    }

    /// Forgets the resources of `kind` that are not in `present` (deleted without their
    /// cleanup, e.g. with the finalizer stripped by hand), so their ids can be swept.
    pub fn retain(&self, kind: &str, present: &BTreeSet<String>) {
        let prefix = format!("{kind}/");
        self.entries().retain(|key, _| !key.starts_with(&prefix) || present.contains(key));
    }
}

/// `Kind/namespace/name`.
pub fn object_key<K: Resource<DynamicType = ()>>(object: &K) -> String {
    format!("{}/{}/{}", K::kind(&()), object.namespace().unwrap_or_default(), object.name_any())
}

/// A controller's reflector cache, and whether it has listed.
///
/// Readiness is not read from the cache itself: its `wait_until_ready` keeps one waker
/// only, so a second task waiting on it could take the wake-up from the controller's own
/// runner (which then never starts). The task that runs the controller waits on it
/// instead and reports here, where any number of tasks may wait.
#[derive(Clone)]
pub struct Cache<K: 'static + Resource<DynamicType = ()> + Clone> {
    pub store: Reflector<K>,
    ready: watch::Receiver<bool>,
}

impl<K: 'static + Resource<DynamicType = ()> + Clone> Cache<K> {
    /// A cache and what the controller's task reports its readiness on.
    pub fn new(store: Reflector<K>) -> (Self, watch::Sender<bool>) {
        let (report, ready) = watch::channel(false);
        (Self { store, ready }, report)
    }

    /// Waits until the cache has listed (returns at once when the controller stopped).
    pub async fn listed(&self) {
        let mut ready = self.ready.clone();
        let _ = ready.wait_for(|ready| *ready).await;
    }
}

/// What lives as long as the controller process: across leadership terms.
pub struct Shared {
    pub client: Client,
    pub store: Arc<dyn Store>,
    pub config: ControllerConfig,
    pub clock: Clock,
    pub events: Events,
    pub metrics: Arc<ControllerMetrics>,
    pub memo: Memo,
    /// Bounds the argon2 work running at once, off the async workers.
    pub hashing: Semaphore,
}

/// The resources of one kind in one watched scope: their cache, indexed by the names they
/// hold or claim, and the cached Secrets of the same scope they read.
pub struct Watched<K: 'static + Resource<DynamicType = ()> + Clone> {
    pub cache: Cache<K>,
    pub names: Arc<Index<K>>,
    pub secrets: Cache<Secret>,
}

impl<K: 'static + Resource<DynamicType = ()> + Clone + Claimant> Watched<K> {
    /// The resources that hold or claim one of `names`, once the cache listed.
    async fn concerning(&self, names: &[&str]) -> Vec<Arc<K>> {
        self.cache.listed().await;
        let mut found = self.names.get(&self.cache.store, names);
        found.retain(|resource| resource.concerns(names));
        found
    }

    /// The Secret `namespace/name`, once the Secrets listed.
    async fn secret(&self, namespace: &str, name: &str) -> Option<Arc<Secret>> {
        self.secrets.listed().await;
        self.secrets.store.get(&ObjectRef::new(name).within(namespace))
    }
}

/// Every resource of `scopes`, once they all listed: a namespace not listed yet would
/// hide a conflicting older resource.
async fn all_in<K: 'static + Resource<DynamicType = ()> + Clone>(scopes: &[Watched<K>]) -> Vec<Arc<K>> {
    let mut found = Vec::new();
    for scope in scopes {
        scope.cache.listed().await;
        found.extend(scope.cache.store.state());
    }
    found
}

/// The resources of `scopes` that hold or claim one of `names`: what a decision about
/// those names needs, looked up in the indexes once every scope listed.
async fn concerning_in<K>(scopes: &[Watched<K>], names: &[String]) -> Vec<Arc<K>>
where
    K: 'static + Resource<DynamicType = ()> + Clone + Claimant,
{
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut found = Vec::new();
    for scope in scopes {
        found.extend(scope.concerning(&names).await);
    }
    found
}

/// The Secret `namespace/name`, from the cached Secrets of `scopes`.
async fn secret_in<K: 'static + Resource<DynamicType = ()> + Clone + Claimant>(
    scopes: &[Watched<K>],
    namespace: &str,
    name: &str,
) -> Option<Arc<Secret>> {
    for scope in scopes {
        if let Some(secret) = scope.secret(namespace, name).await {
            return Some(secret);
        }
    }
    None
}

/// The keys of [`Watched::names`]: the name a resource applied and the one it claims.
pub fn held_names<K: Claimant>(resource: &K) -> Vec<String> {
    resource.applied().into_iter().chain([resource.claimed()]).map(str::to_owned).collect()
}

/// What a reconciliation gets: the shared parts and this leadership term's reflectors.
pub struct Context {
    pub shared: Arc<Shared>,
    /// One scope per watched namespace (one for all with `*`).
    pub clients: Vec<Watched<OidcClient>>,
    pub users: Watched<OidcUser>,
    /// One scope per watched namespace, as for the clients.
    pub connectors: Vec<Watched<IdentityConnector>>,
    /// The store's data epoch as last read (see [`crate::store::epoch`]).
    pub epoch: RwLock<Option<String>>,
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    pub fn new(
        shared: Arc<Shared>,
        clients: Vec<Watched<OidcClient>>,
        users: Watched<OidcUser>,
        connectors: Vec<Watched<IdentityConnector>>,
    ) -> Self {
        Self { shared, clients, users, connectors, epoch: RwLock::new(None), failures: Mutex::default() }
    }

    pub fn epoch(&self) -> Option<String> {
        self.epoch.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Records the epoch just read; whether it differs from the one known before.
    pub fn set_epoch(&self, epoch: String) -> bool {
        let mut known = self.epoch.write().unwrap_or_else(PoisonError::into_inner);
        let changed = known.as_deref() != Some(epoch.as_str());
        *known = Some(epoch);
        changed
    }

    /// Every watched `OidcClient`, from the reflectors, once they all listed.
    pub async fn all_clients(&self) -> Vec<Arc<OidcClient>> {
        all_in(&self.clients).await
    }

    /// The watched `OidcClient`s that hold or claim one of `names`.
    pub async fn clients_concerning(&self, names: &[String]) -> Vec<Arc<OidcClient>> {
        concerning_in(&self.clients, names).await
    }

    /// A client's credentials Secret, from the cached Secrets of the watched namespaces.
    pub async fn client_secret(&self, namespace: &str, name: &str) -> Option<Arc<Secret>> {
        secret_in(&self.clients, namespace, name).await
    }

    /// Every watched `IdentityConnector`, from the reflectors, once they all listed.
    pub async fn all_connectors(&self) -> Vec<Arc<IdentityConnector>> {
        all_in(&self.connectors).await
    }

    /// The watched `IdentityConnector`s that hold or claim one of `names`.
    pub async fn connectors_concerning(&self, names: &[String]) -> Vec<Arc<IdentityConnector>> {
        concerning_in(&self.connectors, names).await
    }

    /// A connector's client secret Secret, from the cached Secrets of the watched
    /// namespaces (the ones the clients read).
    pub async fn connector_secret(&self, namespace: &str, name: &str) -> Option<Arc<Secret>> {
        secret_in(&self.connectors, namespace, name).await
    }

    /// Every `OidcUser`, from the reflector, once it listed.
    pub async fn all_users(&self) -> Vec<Arc<OidcUser>> {
        self.users.cache.listed().await;
        self.users.cache.store.state()
    }

    /// The `OidcUser`s that hold or claim one of `names`.
    pub async fn users_concerning(&self, names: &[String]) -> Vec<Arc<OidcUser>> {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        self.users.concerning(&names).await
    }

    /// A user's password Secret (in the controller's namespace), from the cached Secrets.
    pub async fn user_secret(&self, name: &str) -> Option<Arc<Secret>> {
        self.users.secret(&self.shared.config.namespace, name).await
    }

    /// Runs argon2 work on the blocking pool, a bounded number at a time, so a full
    /// reconcile of many clients never holds up the async workers (which renew the Lease).
    pub async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ControllerError> {
        let _permit = self.shared.hashing.acquire().await.map_err(|e| ControllerError::Hashing(e.to_string()))?;
        tokio::task::spawn_blocking(work).await.map_err(|e| ControllerError::Hashing(e.to_string()))
    }

    /// Remembers that `id` is applied for the resource `key`, and says whether `record`
    /// is to be written: it differs from the `stored` one, or the store lost its data
    /// since the resource was last applied (a cached read may still show the record).
    pub fn applying<T: PartialEq>(
        &self,
        key: String,
        id: &str,
        secret: Option<Verified>,
        stored: Option<&T>,
        record: &T,
    ) -> bool {
        let epoch = self.epoch();
        let data_lost = self.shared.memo.get(&key).is_some_and(|applied| applied.epoch != epoch);
        self.shared.memo.set(key, Applied { id: id.to_owned(), epoch, secret });
        data_lost || stored != Some(record)
    }

    /// The action that looks at a resource again when the decision asks.
    pub fn requeue(&self, requeue: Requeue) -> Action {
        let resync = self.shared.config.resync_period;
        Action::requeue(match requeue {
            Requeue::AtResync => resync,
            Requeue::ConflictRecheck => CONFLICT_RECHECK.min(resync),
        })
    }

    /// Counts a result for the metrics and the back-off; returns the failures in a row.
    pub fn finish(&self, kind: &str, key: String, started: Instant, ok: bool) -> u32 {
        self.shared.metrics.observe(kind, ok, started.elapsed());
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        if ok {
            failures.remove(&key);
            0
        } else {
            let count = failures.entry(key).or_insert(0);
            *count = count.saturating_add(1);
            *count
        }
    }

    /// How many times in a row the resource failed.
    pub fn failures(&self, key: &str) -> u32 {
        self.failures.lock().unwrap_or_else(PoisonError::into_inner).get(key).copied().unwrap_or(1)
    }
}

/// The argon2 work allowed at once: one core is left to the async workers.
pub fn hashing_permits() -> usize {
    std::thread::available_parallelism().map_or(1, |cores| cores.get().saturating_sub(1)).clamp(1, 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts_retry_shortly_store_failures_back_off_to_30_seconds_others_to_5_minutes() {
        assert_eq!(retry_delay(Retry::Shortly, 7), Duration::from_secs(1));
        let store: Vec<u64> = (1..=7).map(|n| retry_delay(Retry::StoreBackoff, n).as_secs()).collect();
        assert_eq!(store, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(retry_delay(Retry::Backoff, 9), Duration::from_secs(256));
        assert_eq!(retry_delay(Retry::Backoff, 30), MAX_BACKOFF);
    }

    #[test]
    fn a_409_is_retried_shortly_and_a_store_failure_with_store_backoff() {
        let conflict =
            kube::Error::Api(Box::new(kube::core::Status::failure("exists", "AlreadyExists").with_code(409)));
        assert_eq!(ControllerError::Kube(conflict).retry(), Retry::Shortly);
        assert_eq!(ControllerError::Store(StoreError::Unavailable("down".into())).retry(), Retry::StoreBackoff);
        let gone = kube::Error::Api(Box::new(kube::core::Status::failure("gone", "NotFound").with_code(404)));
        assert_eq!(ControllerError::Kube(gone).retry(), Retry::Backoff);
    }

    #[test]
    fn the_memo_forgets_resources_no_longer_present() {
        let memo = Memo::default();
        let applied = |id: &str| Applied { id: id.into(), epoch: None, secret: None };
        memo.set("OidcClient/a/one".into(), applied("one"));
        memo.set("OidcClient/a/gone".into(), applied("gone"));
        memo.set("OidcUser/a/alice".into(), applied("alice"));
        memo.retain("OidcClient", &BTreeSet::from(["OidcClient/a/one".to_owned()]));
        assert_eq!(memo.ids("OidcClient"), BTreeSet::from(["one".to_owned()]));
        assert_eq!(memo.ids("OidcUser"), BTreeSet::from(["alice".to_owned()]));
    }
}
