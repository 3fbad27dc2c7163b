//! Where state lives: the client registry and user directory the controller writes, and
//! every piece of short-lived state the provider needs, each with its expiry.
//!
//! One trait, small operations per model (upsert with expiry, find, atomic consume,
//! delete); the in-memory and Redis implementations pass the same contract suite
//! (`tests/store_contract.rs`). Times are seconds since the Unix epoch; an entry whose
//! `expires_at` has passed is gone.
//!
//! [`MemoryStore`] serves `portcullis dev`; [`RedisStore`] is shared by the replicas of
//! `portcullis serve` (its module documents the key layout).

mod cache;
mod instrumented;
mod memory;
mod redis;

use std::sync::Arc;

use async_trait::async_trait;

pub use instrumented::InstrumentedStore;
pub use memory::MemoryStore;
pub use redis::{RedisConfig, RedisStore};

use crate::model::{AuthorizationCode, ClientRecord, Grant, Interaction, RefreshToken, Session, UserRecord};
use crate::protocol::scope::Scope;

/// Store failures. The provider answers them with `temporarily_unavailable` or
/// `server_error` and logs the detail.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// The outcome of consuming a single-use value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consumed<T> {
    /// First use: the value, now marked used.
    Fresh(T),
    /// Used before, at the given time: a replay (or a concurrent use). The value is
    /// returned so its grant can be revoked.
    Reused(T, u64),
    /// Never stored, or expired.
    Unknown,
}

/// Everything stateful goes through this trait.
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

    /// Stores an SSO session until `expires_at`.
    async fn put_session(&self, session: &Session, expires_at: u64) -> Result<(), StoreError>;
    async fn session(&self, id: &str) -> Result<Option<Session>, StoreError>;
    /// Ends a session, for every replica at once.
    async fn delete_session(&self, id: &str) -> Result<(), StoreError>;
    /// How many sessions are stored and unexpired (`portcullis_active_sessions`); cheap
    /// enough to call at every metrics scrape.
    async fn active_sessions(&self) -> Result<u64, StoreError>;

    /// Stores a browser interaction until `expires_at`.
    async fn put_interaction(&self, interaction: &Interaction, expires_at: u64) -> Result<(), StoreError>;
    async fn interaction(&self, id: &str) -> Result<Option<Interaction>, StoreError>;
    async fn delete_interaction(&self, id: &str) -> Result<(), StoreError>;

    /// Stores an authorization code under the hash of its value.
    async fn put_code(&self, code_hash: &str, code: &AuthorizationCode, expires_at: u64) -> Result<(), StoreError>;
    /// Atomically marks a code used; exactly one caller ever gets [`Consumed::Fresh`].
    async fn consume_code(&self, code_hash: &str) -> Result<Consumed<AuthorizationCode>, StoreError>;

    /// Stores a refresh token under the hash of its value.
    async fn put_refresh_token(&self, token_hash: &str, token: &RefreshToken) -> Result<(), StoreError>;
    /// Atomically marks a refresh token used (rotation); exactly one caller gets `Fresh`.
    async fn consume_refresh_token(&self, token_hash: &str) -> Result<Consumed<RefreshToken>, StoreError>;
    /// Reads a refresh token without using it; `Reused` means already rotated out.
    async fn peek_refresh_token(&self, token_hash: &str) -> Result<Consumed<RefreshToken>, StoreError>;

    /// Stores a grant until its `expires_at`.
    async fn put_grant(&self, grant: &Grant) -> Result<(), StoreError>;
    /// Replaces a grant only while it still exists; `false` means it was revoked (or
    /// expired) meanwhile and must not be brought back.
    async fn update_grant(&self, grant: &Grant) -> Result<bool, StoreError>;
    async fn grant(&self, id: &str) -> Result<Option<Grant>, StoreError>;
    /// Removes a grant and returns what it held, in one atomic step: a concurrent
    /// [`Store::update_grant`] either lands before (and its tokens are returned here) or
    /// fails.
    async fn revoke_grant(&self, id: &str) -> Result<Option<Grant>, StoreError>;

    /// Remembers that a user consented to scopes for a client.
    async fn put_consent(
        &self,
        subject: &str,
        client_id: &str,
        scope: &Scope,
        expires_at: u64,
    ) -> Result<(), StoreError>;
    async fn consent(&self, subject: &str, client_id: &str) -> Result<Option<Scope>, StoreError>;

    /// Keeps `value` under `name` unless a value is kept there already, and returns the
    /// kept one: replicas starting together agree on one generated client secret or
    /// signing key this way.
    async fn claim(&self, name: &str, value: &str) -> Result<String, StoreError>;

    /// Whether the store answers (readiness).
    async fn ping(&self) -> Result<(), StoreError>;

    /// Publishes the public key set (a JWKS document) and the active `kid` per algorithm
    /// (a JSON object), written by the Kubernetes controller for anyone reading Redis. The
    /// provider does not read them (it watches the key Secrets); stores without readers
    /// keep nothing.
    async fn publish_keys(&self, _jwks: &str, _active_kids: &str) -> Result<(), StoreError> {
        Ok(())
    }

    /// Counts an event (a failed login, a registration) for a throttle key within a window
    /// ending at `expires_at` (the window opens with the first event); returns the count.
    async fn increment_counter(&self, key: &str, expires_at: u64) -> Result<u32, StoreError>;
    async fn counter(&self, key: &str) -> Result<u32, StoreError>;
    async fn clear_counter(&self, key: &str) -> Result<(), StoreError>;
}
