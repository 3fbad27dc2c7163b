//! The in-memory store of `portcullis dev`: one process, nothing persisted.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;

use super::{Store, StoreError};
use crate::clock::Clock;
use crate::model::{ClientRecord, UserRecord};

/// Maps behind locks that are never held across an `.await`.
pub struct MemoryStore {
    clock: Clock,
    clients: RwLock<HashMap<String, Arc<ClientRecord>>>,
    users: RwLock<Users>,
    revoked: RwLock<HashMap<String, u64>>,
}

#[derive(Default)]
struct Users {
    by_username: HashMap<String, Arc<UserRecord>>,
    username_by_subject: HashMap<String, String>,
}

impl MemoryStore {
    pub fn new(clock: Clock) -> Self {
        Self { clock, clients: RwLock::default(), users: RwLock::default(), revoked: RwLock::default() }
    }

    /// Drops expired entries so memory stays bounded by what is live; run periodically.
    pub fn purge_expired(&self) {
        let now = self.clock.now();
        write(&self.revoked).retain(|_, expires_at| *expires_at > now);
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

#[async_trait]
impl Store for MemoryStore {
    async fn put_client(&self, client: ClientRecord) -> Result<(), StoreError> {
        write(&self.clients).insert(client.client_id.clone(), Arc::new(client));
        Ok(())
    }

    async fn client(&self, client_id: &str) -> Result<Option<Arc<ClientRecord>>, StoreError> {
        Ok(read(&self.clients).get(client_id).cloned())
    }

    async fn delete_client(&self, client_id: &str) -> Result<(), StoreError> {
        write(&self.clients).remove(client_id);
        Ok(())
    }

    async fn client_ids(&self) -> Result<Vec<String>, StoreError> {
        let mut ids: Vec<String> = read(&self.clients).keys().cloned().collect();
        ids.sort_unstable();
        Ok(ids)
    }

    async fn put_user(&self, user: UserRecord) -> Result<(), StoreError> {
        let mut users = write(&self.users);
        if let Some(previous) = users.by_username.get(&user.username) {
            let previous_subject = previous.subject.clone();
            users.username_by_subject.remove(&previous_subject);
        }
        users.username_by_subject.insert(user.subject.clone(), user.username.clone());
        users.by_username.insert(user.username.clone(), Arc::new(user));
        Ok(())
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<Arc<UserRecord>>, StoreError> {
        Ok(read(&self.users).by_username.get(username).cloned())
    }

    async fn user_by_subject(&self, subject: &str) -> Result<Option<Arc<UserRecord>>, StoreError> {
        let users = read(&self.users);
        Ok(users.username_by_subject.get(subject).and_then(|username| users.by_username.get(username)).cloned())
    }

    async fn delete_user(&self, username: &str) -> Result<(), StoreError> {
        let mut users = write(&self.users);
        if let Some(user) = users.by_username.remove(username) {
            users.username_by_subject.remove(&user.subject);
        }
        Ok(())
    }

    async fn revoke_token(&self, jti: &str, expires_at: u64) -> Result<(), StoreError> {
        if expires_at > self.clock.now() {
            write(&self.revoked).insert(jti.to_owned(), expires_at);
        }
        Ok(())
    }

    async fn is_token_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        let now = self.clock.now();
        Ok(read(&self.revoked).get(jti).is_some_and(|expires_at| *expires_at > now))
    }
}
