//! A replica's copy of the client registry and user directory, so the hot path (client
//! authentication, token validation) costs no Redis round trip for them.
//!
//! Entries are dropped when another replica (or the controller) announces a change over
//! Redis pub/sub, all at once when the subscription reconnects (announcements may have been
//! missed), and in any case after [`MAX_AGE`], which bounds staleness should an
//! announcement be lost some other way.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use crate::model::{ClientRecord, UserRecord};

/// The longest an entry is trusted without a fresh read.
pub const MAX_AGE: Duration = Duration::from_secs(30);
/// Entries per map; a full map starts over, so memory stays bounded.
const CAPACITY: usize = 10_000;

/// Values with the time they were read.
type Entries<K, V> = HashMap<K, (Arc<V>, Instant)>;

/// Entries plus a version bumped by every clear: a read that started before a clear must
/// not put its (possibly stale) result back afterwards.
struct Map<K, V> {
    entries: RwLock<(Entries<K, V>, u64)>,
}

impl<K: Eq + Hash, V> Map<K, V> {
    fn new() -> Self {
        Self { entries: RwLock::new((HashMap::new(), 0)) }
    }

    fn version(&self) -> u64 {
        self.entries.read().unwrap_or_else(PoisonError::into_inner).1
    }

    fn get(&self, key: &K) -> Option<Arc<V>> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        entries.0.get(key).filter(|(_, at)| at.elapsed() < MAX_AGE).map(|(value, _)| Arc::clone(value))
    }

    /// Keeps a value read while the map was at `version`, unless it was cleared since.
    fn insert(&self, key: K, value: Arc<V>, version: u64) {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if entries.1 != version {
            return;
        }
        if entries.0.len() >= CAPACITY {
            entries.0.clear();
        }
        entries.0.insert(key, (value, Instant::now()));
    }

    fn clear(&self) {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        entries.0.clear();
        entries.1 = entries.1.wrapping_add(1);
    }
}

/// What changed, as announced on the invalidation channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Clients,
    Users,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Clients => "clients",
            Change::Users => "users",
        }
    }

    pub fn parse(message: &str) -> Option<Self> {
        match message {
            "clients" => Some(Change::Clients),
            "users" => Some(Change::Users),
            _ => None,
        }
    }
}

/// The cached registry and directory.
pub struct DirectoryCache {
    clients: Map<String, ClientRecord>,
    users_by_username: Map<String, UserRecord>,
    users_by_subject: Map<String, UserRecord>,
}

impl Default for DirectoryCache {
    fn default() -> Self {
        Self { clients: Map::new(), users_by_username: Map::new(), users_by_subject: Map::new() }
    }
}

impl DirectoryCache {
    pub fn client(&self, client_id: &str) -> Option<Arc<ClientRecord>> {
        self.clients.get(&client_id.to_owned())
    }

    /// The version to pass to [`DirectoryCache::remember_client`], taken before reading.
    pub fn clients_version(&self) -> u64 {
        self.clients.version()
    }

    pub fn remember_client(&self, client: Arc<ClientRecord>, version: u64) {
        self.clients.insert(client.client_id.clone(), client, version);
    }

    pub fn user_by_username(&self, username: &str) -> Option<Arc<UserRecord>> {
        self.users_by_username.get(&username.to_owned())
    }

    pub fn user_by_subject(&self, subject: &str) -> Option<Arc<UserRecord>> {
        self.users_by_subject.get(&subject.to_owned())
    }

    /// The version to pass to [`DirectoryCache::remember_user`], taken before reading.
    pub fn users_version(&self) -> u64 {
        self.users_by_username.version()
    }

    pub fn remember_user(&self, user: Arc<UserRecord>, version: u64) {
        self.users_by_username.insert(user.username.clone(), Arc::clone(&user), version);
        self.users_by_subject.insert(user.subject.clone(), user, version);
    }

    /// Forgets what a change makes stale.
    pub fn forget(&self, change: Change) {
        match change {
            Change::Clients => self.clients.clear(),
            Change::Users => {
                self.users_by_username.clear();
                self.users_by_subject.clear();
            }
        }
    }

    /// Forgets everything, e.g. after announcements may have been missed.
    pub fn forget_all(&self) {
        self.forget(Change::Clients);
        self.forget(Change::Users);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_entries_are_served_until_their_kind_changes() {
        let cache = DirectoryCache::default();
        let client = Arc::new(ClientRecord::fixture("app", &[], "openid"));
        assert!(cache.client("app").is_none());
        cache.remember_client(Arc::clone(&client), cache.clients_version());
        assert_eq!(cache.client("app"), Some(client.clone()));
        cache.forget(Change::Users);
        assert!(cache.client("app").is_some(), "a user change leaves clients alone");
        cache.forget(Change::Clients);
        assert!(cache.client("app").is_none());
    }

    #[test]
    fn a_read_that_raced_a_change_is_not_kept() {
        let cache = DirectoryCache::default();
        let version = cache.clients_version();
        cache.forget(Change::Clients);
        cache.remember_client(Arc::new(ClientRecord::fixture("app", &[], "openid")), version);
        assert!(cache.client("app").is_none(), "the value read before the change may be stale");
    }

    #[test]
    fn change_announcements_round_trip() {
        for change in [Change::Clients, Change::Users] {
            assert_eq!(Change::parse(change.as_str()), Some(change));
        }
        assert_eq!(Change::parse("other"), None);
    }
}
