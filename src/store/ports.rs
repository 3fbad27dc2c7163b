//! The store's ports: one small trait per kind of state, each written once as a list of
//! operations in [`store_ports!`]. From that one list the macro generates the traits, the
//! umbrella [`Store`], the `op` names of [`OPERATIONS`] and the forwarding of
//! [`Instrumented`], which measures every operation of the store it wraps: duration and
//! errors per operation in Prometheus, and (with OpenTelemetry on) one child span per
//! call. An operation can be neither left out of the metrics nor forwarded to another,
//! and no trait has default methods for a wrapper to fall through to.
//!
//! Adding an operation: a line in its port below, its two implementations (memory and
//! Redis) and a check in `tests/store_contract.rs`. A new `Directory` operation also goes
//! through [`super::Cached`], which decides whether to cache it (the compiler asks).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use prometheus::{Histogram, IntCounter};
use tracing::Instrument;

use super::error::StoreError;
use crate::metrics::Metrics;
use crate::model::{
    AuthorizationCode, ClientRecord, ConnectorRecord, DeviceGrant, FederatedUser, Grant, LogoutDelivery, RefreshToken,
    Session, UserRecord,
};
use crate::vocabulary::Scope;

/// The outcome of consuming a single-use value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consumed<T> {
    /// First use: the value, now marked used.
    Fresh(T),
    /// Used before: a replay, a concurrent use, or a retry of a use the store applied after
    /// its caller had given up on it. The value is returned so its grant can be revoked; the
    /// rest is what the first use recorded, for telling these apart.
    Reused {
        value: T,
        /// The fingerprint the first consumer passed (who used it).
        by: String,
        /// When it was first used, in seconds since the epoch.
        at: u64,
        /// Whether this use could be the first consumer trying again because the store timed
        /// out on its first use yet applied it later: this call comes after the store's
        /// command timeout had run out for the first one, and within a short margin of the
        /// store applying it. Always false for a store that never answers late.
        may_be_retry: bool,
    },
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

/// A token id's standing on the deny-list, with the store's data epoch read in the same
/// round trip (see [`Ephemeral::token_check`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenCheck {
    /// The token id is on the deny-list.
    pub revoked: bool,
    /// The store's data epoch; `None` when the store has none (its data was just lost).
    pub epoch: Option<String>,
}

/// [`TokenCheck`] and, in the same round trip, when the token's session ended (see
/// [`SessionEnds::session_token_check`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionTokenCheck {
    pub token: TokenCheck,
    /// When the session ended, in seconds since the epoch; `None` while it has not (or
    /// once no token of it can be alive).
    pub session_ended_at: Option<u64>,
}

/// A grant issued in a session, as [`SessionEnds::close_session_grants`] returns it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SessionGrant {
    pub grant_id: String,
    pub client_id: String,
}

/// One live SSO session of a user, as [`UserIndex::user_sessions`] lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct UserSession {
    /// The public session id (the `sid` claim).
    pub sid: String,
    /// When the user signed in (the session's `auth_time`), in seconds since the epoch.
    pub signed_in_at: u64,
    /// When the session ends by itself, in seconds since the epoch.
    pub expires_at: u64,
    /// The secret cookie value that names the session record, for ending it: never shown,
    /// sent or logged.
    pub session_id: String,
}

/// One live grant of a user, as [`UserIndex::user_grants`] lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct UserGrant {
    pub grant_id: String,
    pub client_id: String,
    /// Given `offline_access`: it outlives its session (OIDC Core §11).
    pub offline: bool,
}

/// What a user's sessions say of them, as [`UserIndex::user_activity`] reads it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserActivity {
    /// The live SSO sessions.
    pub active_sessions: u64,
    /// The latest sign-in (`auth_time`) of a session that has not expired, ended or not,
    /// in seconds since the epoch.
    pub last_sign_in: Option<u64>,
}

/// What a client holds, as [`ClientIndex::client_holdings`] lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientHoldings {
    /// The live grants issued to the client, sorted.
    pub grants: Vec<String>,
    /// The subjects whose live consent the client holds, sorted.
    pub consents: Vec<String>,
}

/// Whether the store may drop keys before they expire, as Redis does under an evicting
/// `maxmemory-policy`: an evicted deny-list entry or epoch marker would fail open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Eviction {
    /// Keys live until they expire or are deleted (`noeviction`, or the memory store).
    Never,
    /// Keys may be evicted under memory pressure; the policy's name.
    Evicts(String),
    /// The store does not tell (e.g. a managed Redis without `CONFIG` or `INFO`).
    Unknown,
}

impl Eviction {
    /// Reads a Redis `maxmemory-policy` value: `noeviction` never evicts, the
    /// `allkeys-*` and `volatile-*` policies do.
    pub fn from_policy(policy: &str) -> Self {
        let policy = policy.trim();
        if policy.eq_ignore_ascii_case("noeviction") {
            Eviction::Never
        } else if policy.starts_with("allkeys-") || policy.starts_with("volatile-") {
            Eviction::Evicts(policy.to_owned())
        } else {
            Eviction::Unknown
        }
    }
}

/// A budget of attempts: at most `limit` counted under `key` within one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget<'a> {
    pub key: &'a str,
    pub limit: u32,
}

/// What [`Counters::reserve`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// Every budget had room: the attempt is counted in each and may go ahead.
    pub allowed: bool,
    /// The attempts counted in each budget once the reservation is settled, in the order
    /// the budgets were given (this attempt included when allowed).
    pub counts: Vec<u32>,
    /// Seconds until a refusing budget's window ends; 0 when allowed.
    pub retry_after: u64,
}

/// Declares the ports. Each operation is written as it reads in the trait,
/// `async fn name(&self, arg: Type, ..) -> Result<T, StoreError>;`, with its doc comment.
macro_rules! store_ports {
    ($(
        $(#[$port_meta:meta])*
        pub trait $port:ident {
            $(
                $(#[$op_meta:meta])*
                async fn $op:ident(&self $(, $arg:ident: $ty:ty)*) -> Result<$ret:ty, StoreError>;
            )*
        }
    )*) => {
        $(
            $(#[$port_meta])*
            #[async_trait]
            pub trait $port: Send + Sync + 'static {
                $( $(#[$op_meta])* async fn $op(&self $(, $arg: $ty)*) -> Result<$ret, StoreError>; )*
            }

            #[async_trait]
            impl<S: $port + ?Sized> $port for Instrumented<S> {
                $(
                    async fn $op(&self $(, $arg: $ty)*) -> Result<$ret, StoreError> {
                        self.observe(stringify!($op), self.inner.$op($($arg),*)).await
                    }
                )*
            }

            #[cfg(test)]
            #[async_trait]
            impl $port for tests::Recording {
                $(
                    async fn $op(&self $(, _: $ty)*) -> Result<$ret, StoreError> {
                        Err(self.record(stringify!($op)))
                    }
                )*
            }
        )*

        /// Every port at once: what [`super::MemoryStore`] and [`super::RedisStore`]
        /// implement and the provider holds as `Arc<dyn Store>`.
        pub trait Store: $($port +)* {}

        impl<T: $($port +)*> Store for T {}

        /// Every operation's name: the `op` label of the store metrics.
        pub const OPERATIONS: &[&str] = &[$($(stringify!($op)),*),*];

        /// Calls every operation once, in the order of [`OPERATIONS`], with sample arguments.
        #[cfg(test)]
        async fn call_every_operation(store: &dyn Store) {
            $($( let _ = store.$op($(tests::sample::<$ty>()),*).await; )*)*
        }
    };
}

store_ports! {
    /// The client registry and the user directory the controller (or the manifests folder)
    /// writes and every request reads; they live until changed. [`super::Cached`] keeps a
    /// per-replica copy.
    pub trait Directory {
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
        /// The user claiming the upstream identity whose derived subject is `subject` (one of
        /// its `claimed_subjects`).
        async fn user_claiming(&self, subject: &str) -> Result<Option<Arc<UserRecord>>, StoreError>;
        /// Removes a user by username; removing an absent one is not an error.
        async fn delete_user(&self, username: &str) -> Result<(), StoreError>;
        /// Every stored username, sorted: what a sweep compares with the declared users.
        async fn usernames(&self) -> Result<Vec<String>, StoreError>;
    }

    /// Values that may be used once, stored under the hash of their secret value and
    /// consumed atomically: authorization codes and refresh tokens.
    pub trait SingleUse {
        /// Stores an authorization code until `expires_at`.
        async fn put_code(&self, code_hash: &str, code: &AuthorizationCode, expires_at: u64) -> Result<(), StoreError>;
        /// Atomically marks a code used, recording `by` (a fingerprint of who redeems it) and
        /// when; exactly one caller ever gets [`Consumed::Fresh`].
        async fn consume_code(&self, code_hash: &str, by: &str) -> Result<Consumed<AuthorizationCode>, StoreError>;
        /// Atomically marks a refresh token used (rotation), recording `by` and when, if it
        /// was issued to `client_id`; exactly one caller gets `Fresh`. A token of another
        /// client is answered as it is and stays unused, so presenting it burns nothing.
        async fn consume_refresh_token(
            &self, token_hash: &str, by: &str, client_id: &str
        ) -> Result<Consumed<RefreshToken>, StoreError>;
        /// Reads a refresh token without using it; `Reused` means already rotated out.
        async fn peek_refresh_token(&self, token_hash: &str) -> Result<Consumed<RefreshToken>, StoreError>;
        /// Keeps the sealed successor response of a rotated-out refresh token until
        /// `expires_at` (the end of its client's reuse interval), for the client's
        /// concurrent requests (see [`crate::protocol::refresh_reuse`]).
        async fn put_refresh_successor(&self, token_hash: &str, sealed: &str, expires_at: u64) -> Result<(), StoreError>;
        /// The sealed successor of a rotated-out refresh token, while its interval lasts.
        async fn refresh_successor(&self, token_hash: &str) -> Result<Option<String>, StoreError>;
    }

    /// Grants: what one user allowed one client, shared by the tokens of one code.
    pub trait Grants {
        /// Stores a grant until its `expires_at`.
        async fn put_grant(&self, grant: &Grant) -> Result<(), StoreError>;
        /// Replaces a grant only while it still exists; `false` means it was revoked (or
        /// expired) meanwhile and must not be brought back. `refresh_token`, the hash and
        /// record of a refresh token the update issues, is stored in the same round trip,
        /// until its `expires_at`; whether it is kept when the grant is gone is left open,
        /// since a refresh token without its grant is refused anyway.
        async fn update_grant(
            &self, grant: &Grant, refresh_token: Option<(&str, &RefreshToken)>
        ) -> Result<bool, StoreError>;
        async fn grant(&self, id: &str) -> Result<Option<Grant>, StoreError>;
        /// Removes a grant and returns what it held, in one atomic step: a concurrent
        /// [`Grants::update_grant`] either lands before (and its tokens are returned here)
        /// or fails.
        async fn revoke_grant(&self, id: &str) -> Result<Option<Grant>, StoreError>;
    }

    /// Records that expire by themselves: the deny-list of revoked tokens, SSO sessions and
    /// remembered consents.
    pub trait Ephemeral {
        /// Puts a token id on the deny-list until `expires_at`, when the token dies anyway.
        async fn revoke_token(&self, jti: &str, expires_at: u64) -> Result<(), StoreError>;
        /// Whether a token id is on the deny-list, and the store's data epoch, read in one
        /// round trip: a deny-list that lost its data reads as empty, the epoch tells.
        async fn token_check(&self, jti: &str) -> Result<TokenCheck, StoreError>;
        /// Stores an SSO session until `expires_at`.
        async fn put_session(&self, session: &Session, expires_at: u64) -> Result<(), StoreError>;
        async fn session(&self, id: &str) -> Result<Option<Session>, StoreError>;
        /// Ends a session, for every replica at once.
        async fn delete_session(&self, id: &str) -> Result<(), StoreError>;
        /// How many sessions are stored and unexpired (`portcullis_active_sessions`); cheap
        /// enough to call at every metrics scrape.
        async fn active_sessions(&self) -> Result<u64, StoreError>;
        /// Remembers that a user consented to scopes for a client, until `expires_at`.
        async fn put_consent(&self, subject: &str, client_id: &str, scope: &Scope, expires_at: u64) -> Result<(), StoreError>;
        async fn consent(&self, subject: &str, client_id: &str) -> Result<Option<Scope>, StoreError>;
        /// The user's live consents as (client id, scope), sorted by client id: what the
        /// `/account` page lists. The index behind it expires with the consents.
        async fn user_consents(&self, subject: &str) -> Result<Vec<(String, Scope)>, StoreError>;
        /// Forgets the user's consent for a client (and its index entry), so the next
        /// authorization asks again.
        async fn delete_consent(&self, subject: &str, client_id: &str) -> Result<(), StoreError>;
    }

    /// Device authorizations (RFC 8628), stored under the hash of their device code until
    /// they expire, and found by the hash of their user code. Every change is a swap of the
    /// whole record that only lands on the one it was decided from, so a poll, the user's
    /// decision and a concurrent poll on another replica never both apply.
    pub trait DeviceGrants {
        /// Stores a new authorization until `kept_until` (past its `expires_at`, so a late
        /// poll learns it expired), with its user code pointing to it until `expires_at`;
        /// `false` (and nothing stored) when that user code is live already.
        async fn put_device_grant(&self, device_code_hash: &str, user_code_hash: &str, grant: &DeviceGrant, kept_until: u64) -> Result<bool, StoreError>;
        async fn device_grant(&self, device_code_hash: &str) -> Result<Option<DeviceGrant>, StoreError>;
        /// The device code hash a user code hash points to, while its authorization lives.
        async fn device_code_of_user_code(&self, user_code_hash: &str) -> Result<Option<String>, StoreError>;
        /// Replaces `expected` by `next`, keeping the expiry, only when `expected` is what
        /// is stored; `false` when it changed meanwhile or is gone.
        async fn swap_device_grant(&self, device_code_hash: &str, expected: &DeviceGrant, next: &DeviceGrant) -> Result<bool, StoreError>;
    }

    /// Budgets of attempts within a time window, for throttling (logins, client
    /// authentication, registrations). Every attempt is reserved before the work it stands
    /// for (an argon2 check, a registration), so concurrent attempts can never overrun a
    /// budget, on one replica or many.
    pub trait Counters {
        /// Reserves one attempt from every budget (distinct keys) in one step: counted in
        /// all of them when each has room, in none when any is spent. A key's window opens
        /// with its first counted attempt and ends at `window_ends_at`; a window already
        /// over counts nothing.
        async fn reserve(&self, budgets: &[Budget<'_>], window_ends_at: u64) -> Result<Reservation, StoreError>;
        /// Gives one reserved attempt back to each key (the attempt turned out not to be
        /// one the budget counts, such as a successful login); a key back at zero is gone.
        async fn refund(&self, keys: &[&str]) -> Result<(), StoreError>;
    }

    /// What replicas and the controller agree on through the store.
    pub trait Coordination {
        /// Keeps `value` under `name` unless a value is kept there already, and returns the
        /// kept one: replicas starting together agree on one generated client secret or
        /// signing key this way.
        async fn claim(&self, name: &str, value: &str) -> Result<String, StoreError>;
        /// Publishes the public key set (a JWKS document) and the active `kid` per
        /// algorithm (a JSON object), written by the Kubernetes controller for anyone
        /// reading the store; the provider itself watches the key Secrets.
        async fn publish_keys(&self, jwks: &str, active_kids: &str) -> Result<(), StoreError>;
        /// What [`Coordination::publish_keys`] last published, if anything.
        async fn published_keys(&self) -> Result<Option<PublishedKeys>, StoreError>;
        /// Publishes the public key (a JWK) of a key this replica signed with and no longer
        /// does, until `expires_at`, when every token it may have signed has expired: every
        /// replica verifies with it and lists it in its JWKS. A later `expires_at` wins.
        async fn publish_retired_key(&self, kid: &str, jwk: &str, expires_at: u64) -> Result<(), StoreError>;
        /// The retired public keys published and not expired, as JWK documents.
        async fn retired_keys(&self) -> Result<Vec<String>, StoreError>;
        /// Whether the store may evict keys before they expire.
        async fn eviction(&self) -> Result<Eviction, StoreError>;
        /// Whether the store answers (readiness).
        async fn ping(&self) -> Result<(), StoreError>;
    }

    /// What ending an SSO session reaches (see [`crate::protocol::session_end`]): the
    /// grants issued in it, and a marker that makes its access tokens inactive at
    /// introspection. Sessions are named by their public `sid`.
    pub trait SessionEnds {
        /// Records that grant `grant_id` of client `client_id` was issued in session `sid`,
        /// until `session_expires_at`. `false` when the session has ended already (see
        /// [`SessionEnds::close_session_grants`]): the grant must then not be issued.
        async fn link_session_grant(&self, sid: &str, grant_id: &str, client_id: &str, session_expires_at: u64) -> Result<bool, StoreError>;
        /// Closes session `sid` to new links and returns every grant linked to it, sorted,
        /// keeping the list until `session_expires_at`. Atomic: a grant links either
        /// before (and is returned here) or not at all. A second call returns the same
        /// grants, so an ending that failed halfway can be done again.
        async fn close_session_grants(&self, sid: &str, session_expires_at: u64) -> Result<Vec<SessionGrant>, StoreError>;
        /// Keeps the grants linked to session `sid` listed until `session_expires_at` at
        /// least: the session was signed in to again and lives on past its first expiry,
        /// so ending it must still reach what was issued before. Nothing when none are.
        async fn keep_session_grants(&self, sid: &str, session_expires_at: u64) -> Result<(), StoreError>;
        /// Remembers that session `sid` ended at `ended_at`, until `expires_at` (when the
        /// last access token issued in it expires).
        async fn remember_session_end(&self, sid: &str, ended_at: u64, expires_at: u64) -> Result<(), StoreError>;
        /// [`Ephemeral::token_check`] of `jti` and when session `sid` ended, in one round
        /// trip: the introspection of a user's access token.
        async fn session_token_check(&self, jti: &str, sid: &str) -> Result<SessionTokenCheck, StoreError>;
    }

    /// What a user holds: their live sessions and grants, indexed by subject where they are
    /// written ([`Ephemeral::put_session`], [`Grants::put_grant`] and
    /// [`Grants::update_grant`]), so ending all of a user's sessions, or listing them, needs
    /// no scan. An entry lives as long as what it indexes; an ended session or revoked grant
    /// is not listed.
    pub trait UserIndex {
        /// The live sessions of `subject`, sorted by `sid`.
        async fn user_sessions(&self, subject: &str) -> Result<Vec<UserSession>, StoreError>;
        /// The live grants of `subject`, sorted by grant id.
        async fn user_grants(&self, subject: &str) -> Result<Vec<UserGrant>, StoreError>;
        /// How many live sessions `subject` has and when they last signed in.
        async fn user_activity(&self, subject: &str) -> Result<UserActivity, StoreError>;
    }

    /// What a client holds, indexed by client where it is written ([`Grants::put_grant`],
    /// [`Grants::update_grant`], [`Ephemeral::put_consent`]), so that deleting the client
    /// ends each grant and consent without a scan. A revoked grant, a deleted consent and
    /// an expired one are not listed.
    pub trait ClientIndex {
        /// The live grants and consents of `client_id`.
        async fn client_holdings(&self, client_id: &str) -> Result<ClientHoldings, StoreError>;
    }

    /// The queue of back-channel logout tokens to deliver (Back-Channel Logout 1.0 §2.5),
    /// shared by every replica; an entry is named by its (session, client).
    pub trait LogoutQueue {
        /// Queues `delivery`, due at its `due_at`, unless one for the same session and client
        /// is queued already; `true` when queued.
        async fn queue_logout(&self, delivery: &LogoutDelivery) -> Result<bool, StoreError>;
        /// Claims up to `limit` deliveries due at `now`, atomically: each is lent to this
        /// caller until `lease_until` (no other caller claims it before), after which an
        /// unfinished one is due again.
        async fn claim_logouts(&self, now: u64, lease_until: u64, limit: u64) -> Result<Vec<LogoutDelivery>, StoreError>;
        /// Puts a claimed delivery back, due at its (new) `due_at`.
        async fn requeue_logout(&self, delivery: &LogoutDelivery) -> Result<(), StoreError>;
        /// Removes the delivery of session `sid` to client `client_id` (delivered or given up).
        async fn finish_logout(&self, sid: &str, client_id: &str) -> Result<(), StoreError>;
    }

    /// Upstream identity: the connectors the controller (or the manifests folder) writes,
    /// and the people signed in through them, kept while their sessions and grants live.
    pub trait Federation {
        /// Inserts or replaces a connector.
        async fn put_connector(&self, connector: ConnectorRecord) -> Result<(), StoreError>;
        /// Looks a connector up by name.
        async fn connector(&self, name: &str) -> Result<Option<ConnectorRecord>, StoreError>;
        /// Every connector, sorted by name: the login page's buttons, and what a sweep
        /// compares with the declared connectors.
        async fn connectors(&self) -> Result<Vec<ConnectorRecord>, StoreError>;
        /// Removes a connector; removing an absent one is not an error.
        async fn delete_connector(&self, name: &str) -> Result<(), StoreError>;
        /// Keeps a person signed in through a connector until `expires_at`, replacing what
        /// was kept under their subject.
        async fn put_federated_user(&self, user: &FederatedUser, expires_at: u64) -> Result<(), StoreError>;
        /// The person signed in through a connector under `subject`, while kept.
        async fn federated_user(&self, subject: &str) -> Result<Option<FederatedUser>, StoreError>;
    }
}

/// Wraps a store and measures it; the metric children of every operation are resolved
/// once, up front.
pub struct Instrumented<S: ?Sized> {
    inner: Arc<S>,
    ops: HashMap<&'static str, (Histogram, IntCounter)>,
}

impl<S: ?Sized> Instrumented<S> {
    pub fn new(inner: Arc<S>, metrics: &Metrics) -> Self {
        let ops = OPERATIONS.iter().map(|op| (*op, metrics.store_op(op))).collect();
        Self { inner, ops }
    }

    /// Runs operation `op` of the inner store, timing it and counting its failure.
    async fn observe<T>(
        &self,
        op: &'static str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let result = if crate::telemetry::otel_enabled() {
            call.instrument(tracing::info_span!("store", otel.name = op, op)).await
        } else {
            call.await
        };
        if let Some((duration, errors)) = self.ops.get(op) {
            duration.observe(started.elapsed().as_secs_f64());
            if result.is_err() {
                errors.inc();
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// A store that only records which operation was called, and fails it.
    #[derive(Default)]
    pub(super) struct Recording {
        calls: Mutex<Vec<&'static str>>,
    }

    impl Recording {
        pub(super) fn record(&self, op: &'static str) -> StoreError {
            self.calls.lock().unwrap().push(op);
            StoreError::Unavailable(op.to_owned())
        }
    }

    /// A value of an argument type, for calling an operation whose answer does not matter.
    pub(super) trait Sample {
        fn sample() -> Self;
    }

    pub(super) fn sample<T: Sample>() -> T {
        T::sample()
    }

    /// Arguments taken by reference live as long as the test process.
    fn leak<T>(value: T) -> &'static T {
        Box::leak(Box::new(value))
    }

    impl<T: Sample> Sample for Option<T> {
        fn sample() -> Self {
            Some(T::sample())
        }
    }

    impl<A: Sample, B: Sample> Sample for (A, B) {
        fn sample() -> Self {
            (A::sample(), B::sample())
        }
    }

    impl Sample for &str {
        fn sample() -> Self {
            "sample"
        }
    }

    impl Sample for &[&str] {
        fn sample() -> Self {
            &["sample"]
        }
    }

    impl Sample for &[Budget<'_>] {
        fn sample() -> Self {
            &[Budget { key: "sample", limit: 1 }]
        }
    }

    impl Sample for u64 {
        fn sample() -> Self {
            1
        }
    }

    impl Sample for ClientRecord {
        fn sample() -> Self {
            ClientRecord::fixture("app", &[], "openid")
        }
    }

    impl Sample for ConnectorRecord {
        fn sample() -> Self {
            ConnectorRecord::fixture("sample", "https://upstream.example")
        }
    }

    impl Sample for &FederatedUser {
        fn sample() -> Self {
            leak(FederatedUser {
                user: UserRecord::fixture("user", "sub"),
                connector: "sample".into(),
                upstream_subject: "upstream".into(),
                upstream_credential: None,
                checked_at: 1,
            })
        }
    }

    impl Sample for UserRecord {
        fn sample() -> Self {
            UserRecord::fixture("user", "sub")
        }
    }

    impl Sample for &Session {
        fn sample() -> Self {
            leak(Session {
                id: "id".into(),
                sid: "sid".into(),
                subject: "sub".into(),
                auth_time: 1,
                csrf_token: "c".into(),
            })
        }
    }

    impl Sample for &AuthorizationCode {
        fn sample() -> Self {
            leak(AuthorizationCode {
                grant_id: "g".into(),
                client_id: "app".into(),
                redirect_uri: "https://app.example/cb".into(),
                scope: Scope::default(),
                nonce: None,
                code_challenge: None,
                subject: "sub".into(),
                auth_time: 1,
                session_id: "sid".into(),
                claims: Default::default(),
            })
        }
    }

    impl Sample for &RefreshToken {
        fn sample() -> Self {
            leak(RefreshToken { grant_id: "g".into(), client_id: "app".into(), scope: Scope::default(), expires_at: 1 })
        }
    }

    impl Sample for &Grant {
        fn sample() -> Self {
            leak(Grant {
                id: "g".into(),
                client_id: "app".into(),
                subject: "sub".into(),
                scope: Scope::default(),
                auth_time: 1,
                session_id: "sid".into(),
                expires_at: 1,
                access_tokens: vec![],
                claims: Default::default(),
            })
        }
    }

    impl Sample for &DeviceGrant {
        fn sample() -> Self {
            leak(crate::protocol::device::new_grant("app", Scope::default(), 1, 1))
        }
    }

    impl Sample for &LogoutDelivery {
        fn sample() -> Self {
            leak(LogoutDelivery {
                sid: "sid".into(),
                client_id: "app".into(),
                subject: "sub".into(),
                first_due_at: 1,
                due_at: 1,
                failed_attempts: 0,
            })
        }
    }

    impl Sample for &Scope {
        fn sample() -> Self {
            leak(Scope::default())
        }
    }

    #[tokio::test]
    async fn the_instrumented_store_forwards_and_measures_every_operation_of_every_port() {
        let inner = Arc::new(Recording::default());
        let metrics = Metrics::new();
        let store = Instrumented::new(Arc::clone(&inner), &metrics);
        call_every_operation(&store).await;
        assert_eq!(*inner.calls.lock().unwrap(), OPERATIONS, "each call reached the same operation, once");
        for op in OPERATIONS {
            let (duration, errors) = metrics.store_op(op);
            assert_eq!((duration.get_sample_count(), errors.get()), (1, 1), "{op} is measured under its own name");
        }
    }

    #[test]
    fn noeviction_never_evicts_and_the_allkeys_and_volatile_policies_do() {
        assert_eq!(Eviction::from_policy("noeviction"), Eviction::Never);
        for policy in ["allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-lru", "volatile-ttl"] {
            assert_eq!(Eviction::from_policy(policy), Eviction::Evicts(policy.to_owned()), "{policy}");
        }
        assert_eq!(Eviction::from_policy(""), Eviction::Unknown);
        assert_eq!(Eviction::from_policy("something-new"), Eviction::Unknown);
    }

    #[test]
    fn operation_names_are_unique() {
        let mut names = OPERATIONS.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), OPERATIONS.len());
    }
}
