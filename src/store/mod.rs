//! Where state lives: the client registry and user directory the controller writes, and
//! every piece of short-lived state the provider needs, each with its expiry.
//!
//! Small ports, one per kind of state ([`ports`]: [`Directory`], [`SingleUse`],
//! [`Grants`], [`Ephemeral`], [`DeviceGrants`], [`Counters`], [`Coordination`],
//! [`SessionEnds`], [`LogoutQueue`], [`UserIndex`], [`ClientIndex`]), with small operations
//! (upsert with expiry, find, atomic consume, delete, reserve from a budget); [`Store`] is all of them at once.
//! The in-memory and Redis implementations pass the same contract suite
//! (`tests/store_contract.rs`). Times are seconds since the Unix epoch; an entry whose
//! `expires_at` has passed is gone.
//!
//! [`MemoryStore`] serves `portcullis dev`; [`RedisStore`] is shared by the replicas of
//! `portcullis serve` (its module documents the key layout) and keeps its directory behind
//! [`Cached`]. [`Instrumented`] measures any store. [`StoreStatus`] is what a replica
//! knows of its store between answers: the data epoch it last saw, whether lost data is
//! being re-applied, whether the store evicts. [`ending`] composes the ports into what
//! ending a session, everything a user holds or everything a client holds writes.

mod cached;
pub mod ending;
mod epoch;
mod error;
mod memory;
mod ports;
mod redis;
mod status;

pub use cached::{Cached, DirectoryChange, Invalidations};
pub use epoch::{EPOCH_CLAIM, Epoch, epoch};
pub use error::StoreError;
pub use memory::MemoryStore;
pub use ports::{
    Budget, Consumed, Coordination, Counters, DeviceGrants, Directory, Ephemeral, Eviction, Grants, Instrumented,
    OPERATIONS, PublishedKeys, Reservation, SingleUse, Store, TokenCheck,
};
pub use ports::{
    ClientHoldings, ClientIndex, Federation, LogoutQueue, SessionEnds, SessionGrant, SessionTokenCheck, UserActivity,
    UserGrant, UserIndex, UserSession,
};
pub use redis::{RedisConfig, RedisStore};
pub use status::StoreStatus;

/// What the provider wraps its store in.
pub type InstrumentedStore = Instrumented<dyn Store>;
