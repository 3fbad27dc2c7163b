//! A replica's copy of the client registry and user directory, in front of any
//! [`Directory`], so the hot path (client authentication, token validation) costs no store
//! round trip for them.
//!
//! An entry is dropped when its key changes: at once when this replica writes it, and when
//! another replica (or the controller) announces the change — the store behind decides how
//! announcements travel and hands them to [`Invalidations::forget`] ([`super::RedisStore`]
//! uses Redis pub/sub). Everything is dropped when announcements may have been missed
//! ([`Invalidations::forget_all`], e.g. after a reconnect), and any entry older than
//! [`MAX_AGE`] is read again, which bounds staleness should an announcement be lost some
//! other way.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::error::StoreError;
use super::ports::Directory;
use crate::model::{ClientRecord, UserRecord};

/// The longest an entry is trusted without a fresh read.
pub const MAX_AGE: Duration = Duration::from_secs(30);
/// Entries per map, so memory stays bounded. A full map makes room gradually (see
/// [`keep`]), never by starting over, so a registry just above the bound still hits.
const CAPACITY: usize = 10_000;

/// One change to the directory: the keys every copy must drop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DirectoryChange {
    /// A client was written or removed.
    Client { client_id: String },
    /// A user was written (and has `subject` now) or removed (`subject: None`). Entries
    /// under a subject the user had before go too.
    User { username: String, subject: Option<String> },
}

struct Entry<V> {
    value: Arc<V>,
    read_at: Instant,
}

#[derive(Default)]
struct Entries {
    clients: HashMap<String, Entry<ClientRecord>>,
    users_by_username: HashMap<String, Entry<UserRecord>>,
    users_by_subject: HashMap<String, Entry<UserRecord>>,
    users_by_claim: HashMap<String, Entry<UserRecord>>,
    /// Bumped by every forget: a read that started before one must not put its (possibly
    /// stale) result back afterwards.
    version: u64,
}

fn fresh<V>(map: &HashMap<String, Entry<V>>, key: &str) -> Option<Arc<V>> {
    map.get(key).filter(|entry| entry.read_at.elapsed() < MAX_AGE).map(|entry| Arc::clone(&entry.value))
}

/// Keeps `value` under `key`. A full map first drops its expired entries (useless anyway, and
/// usually many, so the sweep is rare), else one arbitrary entry: with more keys in use than
/// [`CAPACITY`], all but a few still hit.
fn keep<V>(map: &mut HashMap<String, Entry<V>>, key: String, value: Arc<V>) {
    if map.len() >= CAPACITY && !map.contains_key(&key) {
        map.retain(|_, entry| entry.read_at.elapsed() < MAX_AGE);
        if map.len() >= CAPACITY {
            let evicted = map.keys().next().cloned();
            if let Some(evicted) = evicted {
                map.remove(&evicted);
            }
        }
    }
    map.insert(key, Entry { value, read_at: Instant::now() });
}

/// The cached entries, shared by a [`Cached`] directory and whoever delivers the changes
/// announced elsewhere.
#[derive(Clone, Default)]
pub struct Invalidations(Arc<RwLock<Entries>>);

impl Invalidations {
    fn read(&self) -> RwLockReadGuard<'_, Entries> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Entries> {
        self.0.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Drops what a change makes stale.
    pub fn forget(&self, change: &DirectoryChange) {
        let mut entries = self.write();
        match change {
            DirectoryChange::Client { client_id } => {
                entries.clients.remove(client_id);
            }
            DirectoryChange::User { username, subject } => {
                entries.users_by_username.remove(username);
                if let Some(subject) = subject {
                    entries.users_by_subject.remove(subject);
                }
                entries.users_by_subject.retain(|_, entry| entry.value.username != *username);
                entries.users_by_claim.retain(|_, entry| entry.value.username != *username);
            }
        }
        entries.version = entries.version.wrapping_add(1);
    }

    /// Drops everything, e.g. after announcements may have been missed.
    pub fn forget_all(&self) {
        let mut entries = self.write();
        entries.clients.clear();
        entries.users_by_username.clear();
        entries.users_by_subject.clear();
        entries.users_by_claim.clear();
        entries.version = entries.version.wrapping_add(1);
    }

    /// The version to hand back with a value read from the directory, taken before reading.
    fn version(&self) -> u64 {
        self.read().version
    }

    /// Keeps values read while the entries were at `version`, unless something was
    /// forgotten since.
    fn remember(&self, version: u64, keep_read: impl FnOnce(&mut Entries)) {
        let mut entries = self.write();
        if entries.version == version {
            keep_read(&mut entries);
        }
    }

    fn remember_user(&self, version: u64, user: &Arc<UserRecord>) {
        self.remember(version, |entries| {
            keep(&mut entries.users_by_username, user.username.clone(), Arc::clone(user));
            keep(&mut entries.users_by_subject, user.subject.clone(), Arc::clone(user));
            for claimed in &user.claimed_subjects {
                keep(&mut entries.users_by_claim, claimed.clone(), Arc::clone(user));
            }
        });
    }
}

/// A directory with this replica's copy in front of it.
pub struct Cached<D> {
    inner: D,
    entries: Invalidations,
}

impl<D> Cached<D> {
    pub fn new(inner: D) -> Self {
        Self { inner, entries: Invalidations::default() }
    }

    /// Where the changes announced by other replicas are to be delivered.
    pub fn invalidations(&self) -> Invalidations {
        self.entries.clone()
    }

    /// Runs a write, then drops what it changed: also when it failed, since a write that
    /// timed out may still have happened.
    async fn changing<T>(
        &self,
        change: DirectoryChange,
        write: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let result = write.await;
        self.entries.forget(&change);
        result
    }

    /// A user looked up by `key` in `map`, else read from the directory and kept.
    async fn user<F>(
        &self,
        map: impl Fn(&Entries) -> &HashMap<String, Entry<UserRecord>>,
        key: &str,
        read: impl FnOnce() -> F,
    ) -> Result<Option<Arc<UserRecord>>, StoreError>
    where
        F: Future<Output = Result<Option<Arc<UserRecord>>, StoreError>>,
    {
        if let Some(user) = fresh(map(&self.entries.read()), key) {
            return Ok(Some(user));
        }
        let version = self.entries.version();
        let user = read().await?;
        if let Some(user) = &user {
            self.entries.remember_user(version, user);
        }
        Ok(user)
    }
}

#[async_trait]
impl<D: Directory> Directory for Cached<D> {
    async fn put_client(&self, client: ClientRecord) -> Result<(), StoreError> {
        let change = DirectoryChange::Client { client_id: client.client_id.clone() };
        self.changing(change, self.inner.put_client(client)).await
    }

    async fn client(&self, client_id: &str) -> Result<Option<Arc<ClientRecord>>, StoreError> {
        if let Some(client) = fresh(&self.entries.read().clients, client_id) {
            return Ok(Some(client));
        }
        let version = self.entries.version();
        let client = self.inner.client(client_id).await?;
        if let Some(client) = &client {
            self.entries.remember(version, |entries| {
                keep(&mut entries.clients, client.client_id.clone(), Arc::clone(client));
            });
        }
        Ok(client)
    }

    async fn delete_client(&self, client_id: &str) -> Result<(), StoreError> {
        let change = DirectoryChange::Client { client_id: client_id.to_owned() };
        self.changing(change, self.inner.delete_client(client_id)).await
    }

    /// Not cached: listing is for reconciling, not for the hot path.
    async fn client_ids(&self) -> Result<Vec<String>, StoreError> {
        self.inner.client_ids().await
    }

    async fn put_user(&self, user: UserRecord) -> Result<(), StoreError> {
        let change = DirectoryChange::User { username: user.username.clone(), subject: Some(user.subject.clone()) };
        self.changing(change, self.inner.put_user(user)).await
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<Arc<UserRecord>>, StoreError> {
        self.user(|entries| &entries.users_by_username, username, || self.inner.user_by_username(username)).await
    }

    async fn user_by_subject(&self, subject: &str) -> Result<Option<Arc<UserRecord>>, StoreError> {
        self.user(|entries| &entries.users_by_subject, subject, || self.inner.user_by_subject(subject)).await
    }

    /// Cached like the other lookups; a claim the copy does not hold is read, since a new
    /// claim is announced only under its user's name.
    async fn user_claiming(&self, subject: &str) -> Result<Option<Arc<UserRecord>>, StoreError> {
        self.user(|entries| &entries.users_by_claim, subject, || self.inner.user_claiming(subject)).await
    }

    async fn delete_user(&self, username: &str) -> Result<(), StoreError> {
        let change = DirectoryChange::User { username: username.to_owned(), subject: None };
        self.changing(change, self.inner.delete_user(username)).await
    }

    /// Not cached: listing is for reconciling, not for the hot path.
    async fn usernames(&self) -> Result<Vec<String>, StoreError> {
        self.inner.usernames().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::store::MemoryStore;

    fn client(id: &str, name: &str) -> ClientRecord {
        ClientRecord { client_name: Some(name.into()), ..ClientRecord::fixture(id, &[], "openid") }
    }

    /// A cached memory directory; writes to `.inner` bypass the copy, as another
    /// replica's writes do.
    fn cached() -> Cached<MemoryStore> {
        Cached::new(MemoryStore::new(Clock::system()))
    }

    async fn client_name(directory: &Cached<MemoryStore>, id: &str) -> Option<String> {
        directory.client(id).await.unwrap().and_then(|client| client.client_name.clone())
    }

    async fn username_of(directory: &Cached<MemoryStore>, subject: &str) -> Option<String> {
        directory.user_by_subject(subject).await.unwrap().map(|user| user.username.clone())
    }

    #[tokio::test]
    async fn a_client_change_drops_that_client_only() {
        let directory = cached();
        directory.put_client(client("a", "A")).await.unwrap();
        directory.put_client(client("b", "B")).await.unwrap();
        assert_eq!(client_name(&directory, "a").await.as_deref(), Some("A"));
        assert_eq!(client_name(&directory, "b").await.as_deref(), Some("B"));
        directory.inner.put_client(client("a", "A2")).await.unwrap();
        directory.inner.put_client(client("b", "B2")).await.unwrap();
        assert_eq!(client_name(&directory, "a").await.as_deref(), Some("A"), "served from the copy");
        directory.invalidations().forget(&DirectoryChange::Client { client_id: "a".into() });
        assert_eq!(client_name(&directory, "a").await.as_deref(), Some("A2"));
        assert_eq!(client_name(&directory, "b").await.as_deref(), Some("B"), "another client's entry stays");
        directory.invalidations().forget_all();
        assert_eq!(client_name(&directory, "b").await.as_deref(), Some("B2"));
    }

    #[tokio::test]
    async fn writes_through_the_copy_are_read_back_at_once() {
        let directory = cached();
        directory.put_client(client("a", "A")).await.unwrap();
        assert_eq!(client_name(&directory, "a").await.as_deref(), Some("A"));
        directory.put_client(client("a", "A2")).await.unwrap();
        assert_eq!(client_name(&directory, "a").await.as_deref(), Some("A2"));
        directory.delete_client("a").await.unwrap();
        assert_eq!(client_name(&directory, "a").await, None);
    }

    #[tokio::test]
    async fn a_user_change_drops_the_username_and_every_subject_of_that_user() {
        let directory = cached();
        directory.put_user(UserRecord::fixture("ann", "s-1")).await.unwrap();
        directory.put_user(UserRecord::fixture("ben", "s-2")).await.unwrap();
        assert_eq!(username_of(&directory, "s-1").await.as_deref(), Some("ann"));
        assert_eq!(username_of(&directory, "s-2").await.as_deref(), Some("ben"));
        // Elsewhere, ann and ben swap subjects; the copy hears of ann's change only.
        directory.inner.put_user(UserRecord::fixture("ann", "s-2")).await.unwrap();
        directory.inner.put_user(UserRecord::fixture("ben", "s-1")).await.unwrap();
        let ann = DirectoryChange::User { username: "ann".into(), subject: Some("s-2".into()) };
        directory.invalidations().forget(&ann);
        assert_eq!(username_of(&directory, "s-1").await.as_deref(), Some("ben"), "ann's old subject is dropped");
        assert_eq!(username_of(&directory, "s-2").await.as_deref(), Some("ann"), "so is her new one");
        assert_eq!(directory.user_by_username("ann").await.unwrap().unwrap().subject, "s-2");
        directory.put_user(UserRecord::fixture("cat", "s-3")).await.unwrap();
        assert_eq!(username_of(&directory, "s-3").await.as_deref(), Some("cat"));
        directory.inner.delete_user("cat").await.unwrap();
        directory.invalidations().forget(&DirectoryChange::User { username: "cat".into(), subject: None });
        assert_eq!(username_of(&directory, "s-3").await, None, "a removed user's subject goes too");
    }

    #[test]
    fn a_read_that_raced_a_change_is_not_kept() {
        let entries = Invalidations::default();
        let version = entries.version();
        entries.forget(&DirectoryChange::Client { client_id: "other".into() });
        entries.remember_user(version, &Arc::new(UserRecord::fixture("ann", "s-1")));
        assert!(entries.read().users_by_username.is_empty(), "the value read before the change may be stale");
    }

    #[test]
    fn one_client_more_than_the_capacity_keeps_all_but_one_cached() {
        let entries = Invalidations::default();
        let ids: Vec<String> = (0..=CAPACITY).map(|i| format!("client-{i}")).collect();
        for id in &ids {
            let client = Arc::new(ClientRecord::fixture(id, &[], "openid"));
            entries.remember(entries.version(), |entries| keep(&mut entries.clients, id.clone(), client));
        }
        let cached = entries.read();
        assert_eq!(cached.clients.len(), CAPACITY, "one entry made room, not the whole map");
        assert!(cached.clients.contains_key(&ids[CAPACITY]), "the newest entry is kept");
        let missing = ids.iter().filter(|id| !cached.clients.contains_key(*id)).count();
        assert_eq!(missing, 1);
    }

    #[test]
    fn a_full_map_drops_its_expired_entries_first() {
        let mut map = HashMap::new();
        let expired = Instant::now().checked_sub(MAX_AGE).expect("the clock is past MAX_AGE");
        for i in 0..CAPACITY {
            let read_at = if i % 2 == 0 { expired } else { Instant::now() };
            map.insert(format!("client-{i}"), Entry { value: Arc::new(i), read_at });
        }
        keep(&mut map, "new".into(), Arc::new(CAPACITY));
        assert_eq!(map.len(), CAPACITY / 2 + 1, "every expired entry went, every fresh one stayed");
        assert!(map.values().all(|entry| entry.read_at.elapsed() < MAX_AGE));
    }

    #[test]
    fn rewriting_a_key_of_a_full_map_evicts_nothing() {
        let mut map = HashMap::new();
        for i in 0..CAPACITY {
            map.insert(format!("client-{i}"), Entry { value: Arc::new(i), read_at: Instant::now() });
        }
        keep(&mut map, "client-0".into(), Arc::new(0));
        assert_eq!(map.len(), CAPACITY);
    }

    #[test]
    fn changes_travel_as_json() {
        let change = DirectoryChange::User { username: "ann".into(), subject: Some("s-1".into()) };
        let json = serde_json::to_string(&change).unwrap();
        assert_eq!(json, r#"{"kind":"user","username":"ann","subject":"s-1"}"#);
        assert_eq!(serde_json::from_str::<DirectoryChange>(&json).unwrap(), change);
    }
}
