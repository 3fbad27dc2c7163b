//! Where state lives: the client registry and user directory the controller writes, and
//! every piece of short-lived state the provider needs, each with its expiry.
//!
//! Small ports, one per kind of state ([`ports`]: [`Directory`], [`SingleUse`],
//! [`Grants`], [`Ephemeral`], [`Counters`], [`Coordination`]), with small operations
//! (upsert with expiry, find, atomic consume, delete); [`Store`] is all of them at once.
//! The in-memory and Redis implementations pass the same contract suite
//! (`tests/store_contract.rs`). Times are seconds since the Unix epoch; an entry whose
//! `expires_at` has passed is gone.
//!
//! [`MemoryStore`] serves `portcullis dev`; [`RedisStore`] is shared by the replicas of
//! `portcullis serve` (its module documents the key layout) and keeps its directory behind
//! [`Cached`]. [`Instrumented`] measures any store.

mod cached;
mod memory;
mod ports;
mod redis;

pub use cached::{Cached, DirectoryChange, Invalidations};
pub use memory::MemoryStore;
pub use ports::{Coordination, Counters, Directory, Ephemeral, Grants, Instrumented, OPERATIONS, SingleUse, Store};
pub use redis::{RedisConfig, RedisStore};

/// What the provider wraps its store in.
pub type InstrumentedStore = Instrumented<dyn Store>;

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

/// The public key set and active key ids last published (see
/// [`Coordination::publish_keys`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedKeys {
    /// A JWKS document (RFC 7517 §5).
    pub jwks: String,
    /// The active `kid` per algorithm, as a JSON object.
    pub active_kids: String,
}
