//! Where state lives: the client registry and user directory the controller writes, and
//! every piece of short-lived state the provider needs, each with its expiry.
//!
//! One trait, small operations per model (upsert, find, delete, deny-list with TTL); the
//! in-memory and Redis implementations pass the same contract suite (`tests/store_contract.rs`).

mod memory;

use std::sync::Arc;

use async_trait::async_trait;

pub use memory::MemoryStore;

use crate::model::{ClientRecord, UserRecord};

/// Store failures. The provider answers them with `temporarily_unavailable` or
/// `server_error` and logs the detail.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// Everything stateful goes through this trait. Times are seconds since the Unix epoch.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Inserts or replaces a client.
    async fn put_client(&self, client: ClientRecord) -> Result<(), StoreError>;
    /// Looks a client up by `client_id`.
    async fn client(&self, client_id: &str) -> Result<Option<Arc<ClientRecord>>, StoreError>;
    /// Removes a client; removing an absent one is not an error.
    async fn delete_client(&self, client_id: &str) -> Result<(), StoreError>;
    /// Every registered client id, sorted.
    async fn client_ids(&self) -> Result<Vec<String>, StoreError>;

    /// Inserts or replaces a user, indexed by username and by subject.
    async fn put_user(&self, user: UserRecord) -> Result<(), StoreError>;
    /// Looks a user up by login name.
    async fn user_by_username(&self, username: &str) -> Result<Option<Arc<UserRecord>>, StoreError>;
    /// Looks a user up by subject identifier.
    async fn user_by_subject(&self, subject: &str) -> Result<Option<Arc<UserRecord>>, StoreError>;
    /// Removes a user by username; removing an absent one is not an error.
    async fn delete_user(&self, username: &str) -> Result<(), StoreError>;

    /// Puts a token id on the deny-list until `expires_at`, when the token dies anyway.
    async fn revoke_token(&self, jti: &str, expires_at: u64) -> Result<(), StoreError>;
    /// Whether a token id is on the deny-list.
    async fn is_token_revoked(&self, jti: &str) -> Result<bool, StoreError>;
}
