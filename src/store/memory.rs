//! The in-memory store of `portcullis dev`: one process, nothing persisted.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;

use super::epoch::EPOCH_CLAIM;
use super::error::StoreError;
use super::ports::{
    Budget, Consumed, Coordination, Counters, DeviceGrants, Directory, Ephemeral, Eviction, Grants, PublishedKeys,
    Reservation, SingleUse, TokenCheck,
};
use super::ports::{
    ClientHoldings, ClientIndex, Federation, LogoutQueue, SessionEnds, SessionGrant, SessionTokenCheck, UserActivity,
    UserGrant, UserIndex, UserSession,
};
use crate::clock::Clock;
use crate::model::{
    AuthorizationCode, ClientRecord, ConnectorRecord, DeviceGrant, FederatedUser, Grant, LogoutDelivery, RefreshToken,
    Session, UserRecord,
};
use crate::protocol::session_end::survives_session_end;
use crate::vocabulary::Scope;

/// A map whose entries vanish at their expiry (checked on read, purged periodically).
struct Expiring<T> {
    entries: RwLock<HashMap<String, (T, u64)>>,
}

impl<T: Clone> Expiring<T> {
    fn new() -> Self {
        Self { entries: RwLock::new(HashMap::new()) }
    }

    fn put(&self, key: &str, value: T, expires_at: u64, now: u64) {
        if expires_at > now {
            write(&self.entries).insert(key.to_owned(), (value, expires_at));
        }
    }

    fn get(&self, key: &str, now: u64) -> Option<T> {
        read(&self.entries).get(key).filter(|(_, expires_at)| *expires_at > now).map(|(value, _)| value.clone())
    }

    fn delete(&self, key: &str) {
        write(&self.entries).remove(key);
    }

    /// Applies `f` to the live entry (or `None`) under the write lock: the atomic step of
    /// consume and update operations.
    fn update<R>(&self, key: &str, now: u64, f: impl FnOnce(Option<&mut (T, u64)>) -> R) -> R {
        let mut entries = write(&self.entries);
        if entries.get(key).is_some_and(|(_, expires_at)| *expires_at <= now) {
            entries.remove(key);
        }
        f(entries.get_mut(key))
    }

    /// Like [`Expiring::update`], but `f` may also create or remove the entry (set the
    /// `Option`), all under the one write lock.
    fn upsert<R>(&self, key: &str, now: u64, f: impl FnOnce(&mut Option<(T, u64)>) -> R) -> R {
        let mut entries = write(&self.entries);
        let mut entry = entries.remove(key).filter(|(_, expires_at)| *expires_at > now);
        let result = f(&mut entry);
        if let Some(entry) = entry.filter(|(_, expires_at)| *expires_at > now) {
            entries.insert(key.to_owned(), entry);
        }
        result
    }

    /// The live entries whose key starts with `prefix`, sorted by key.
    fn live_with_prefix(&self, prefix: &str, now: u64) -> Vec<(String, T)> {
        let mut live: Vec<(String, T)> = read(&self.entries)
            .iter()
            .filter(|(key, (_, expires_at))| key.starts_with(prefix) && *expires_at > now)
            .map(|(key, (value, _))| (key.clone(), value.clone()))
            .collect();
        live.sort_by(|a, b| a.0.cmp(&b.0));
        live
    }

    fn count_live(&self, now: u64) -> usize {
        read(&self.entries).values().filter(|(_, expires_at)| *expires_at > now).count()
    }

    fn purge(&self, now: u64) {
        write(&self.entries).retain(|_, (_, expires_at)| *expires_at > now);
    }
}

impl Expiring<u32> {
    /// [`Counters::reserve`] under the one write lock: every budget is checked, then
    /// counted in all or none.
    fn reserve(&self, budgets: &[Budget<'_>], window_ends_at: u64, now: u64) -> Reservation {
        let mut entries = write(&self.entries);
        let live = |key: &str| entries.get(key).copied().filter(|(_, expires_at)| *expires_at > now);
        let retry_after = budgets
            .iter()
            .filter_map(|budget| match live(budget.key) {
                Some((count, expires_at)) if count >= budget.limit => Some(expires_at - now),
                None if budget.limit == 0 => Some(window_ends_at.saturating_sub(now)),
                _ => None,
            })
            .max();
        if let Some(retry_after) = retry_after {
            let counts = budgets.iter().map(|budget| live(budget.key).map_or(0, |(count, _)| count)).collect();
            return Reservation { allowed: false, counts, retry_after };
        }
        let counts = budgets
            .iter()
            .map(|budget| {
                let entry = entries.entry(budget.key.to_owned()).or_insert((0, window_ends_at));
                if entry.1 <= now {
                    *entry = (0, window_ends_at);
                }
                entry.0 += 1;
                entry.0
            })
            .collect();
        Reservation { allowed: true, counts, retry_after: 0 }
    }

    /// [`Counters::refund`]: one attempt back per live key; a key back at zero is removed.
    fn refund(&self, keys: &[&str], now: u64) {
        let mut entries = write(&self.entries);
        for key in keys {
            match entries.get_mut(*key) {
                Some((count, expires_at)) if *expires_at > now && *count > 1 => *count -= 1,
                Some(_) => {
                    entries.remove(*key);
                }
                None => {}
            }
        }
    }
}

/// The grants linked to one session, and whether it is closed to more.
#[derive(Clone, Default)]
struct SessionLinks {
    grants: Vec<SessionGrant>,
    closed: bool,
}

/// A single-use value and, once used, who used it and when.
#[derive(Clone)]
struct Once<T> {
    value: T,
    used: Option<(String, u64)>,
}

impl<T: Clone> Once<T> {
    fn fresh(value: &T) -> Self {
        Self { value: value.clone(), used: None }
    }

    /// What a use finds. This store answers every call at once, so no use is ever the retry
    /// of one it applied late.
    fn state(&self) -> Consumed<T> {
        match &self.used {
            None => Consumed::Fresh(self.value.clone()),
            Some((by, at)) => {
                Consumed::Reused { value: self.value.clone(), by: by.clone(), at: *at, may_be_retry: false }
            }
        }
    }
}

/// Uses the value under `key` if `may_use` allows it, and answers what it was.
fn consume<T: Clone>(
    table: &Expiring<Once<T>>,
    key: &str,
    by: &str,
    now: u64,
    may_use: impl FnOnce(&T) -> bool,
) -> Consumed<T> {
    table.update(key, now, |entry| match entry {
        None => Consumed::Unknown,
        Some((once, _)) => {
            let state = once.state();
            if may_use(&once.value) {
                once.used.get_or_insert_with(|| (by.to_owned(), now));
            }
            state
        }
    })
}

fn peek<T: Clone>(table: &Expiring<Once<T>>, key: &str, now: u64) -> Consumed<T> {
    table.get(key, now).map_or(Consumed::Unknown, |once| once.state())
}

/// Maps behind locks that are never held across an `.await`.
pub struct MemoryStore {
    clock: Clock,
    clients: RwLock<HashMap<String, Arc<ClientRecord>>>,
    users: RwLock<Users>,
    revoked: Expiring<()>,
    sessions: Expiring<Session>,
    codes: Expiring<Once<AuthorizationCode>>,
    refresh_tokens: Expiring<Once<RefreshToken>>,
    refresh_successors: Expiring<String>,
    grants: Expiring<Grant>,
    /// The grants issued in each session, by `sid`, for as long as the session lives.
    session_grants: Expiring<SessionLinks>,
    /// When each ended session (by `sid`) ended.
    session_ends: Expiring<u64>,
    consents: Expiring<Scope>,
    /// The latest sign-in of each subject, by subject, kept as long as its latest session
    /// would live (ended or not), as the Redis user index keeps it.
    sign_ins: Expiring<u64>,
    device_grants: Expiring<DeviceGrant>,
    /// Device code hash by user code hash.
    user_codes: Expiring<String>,
    counters: Expiring<u32>,
    claims: RwLock<HashMap<String, String>>,
    /// Kept so what was published can be read back, as from Redis.
    published_keys: RwLock<Option<PublishedKeys>>,
    /// Retired public keys (JWK) by `kid`.
    retired_keys: Expiring<String>,
    /// Back-channel logout deliveries by (sid, client id), each due at its `due_at` (a
    /// claimed one at its lease's end).
    logouts: RwLock<BTreeMap<(String, String), (u64, LogoutDelivery)>>,
    connectors: RwLock<BTreeMap<String, ConnectorRecord>>,
    federated_users: Expiring<FederatedUser>,
}

#[derive(Default)]
struct Users {
    by_username: HashMap<String, Arc<UserRecord>>,
    username_by_subject: HashMap<String, String>,
    username_by_claim: HashMap<String, String>,
}

impl Users {
    /// Drops the index entries of `user` that still name them.
    fn unindex(&mut self, user: &UserRecord) {
        if self.username_by_subject.get(&user.subject) == Some(&user.username) {
            self.username_by_subject.remove(&user.subject);
        }
        for claimed in &user.claimed_subjects {
            if self.username_by_claim.get(claimed) == Some(&user.username) {
                self.username_by_claim.remove(claimed);
            }
        }
    }
}

impl MemoryStore {
    pub fn new(clock: Clock) -> Self {
        Self {
            clock,
            clients: RwLock::default(),
            users: RwLock::default(),
            revoked: Expiring::new(),
            sessions: Expiring::new(),
            codes: Expiring::new(),
            refresh_tokens: Expiring::new(),
            refresh_successors: Expiring::new(),
            grants: Expiring::new(),
            session_grants: Expiring::new(),
            session_ends: Expiring::new(),
            consents: Expiring::new(),
            sign_ins: Expiring::new(),
            device_grants: Expiring::new(),
            user_codes: Expiring::new(),
            counters: Expiring::new(),
            claims: RwLock::default(),
            published_keys: RwLock::default(),
            retired_keys: Expiring::new(),
            logouts: RwLock::default(),
            connectors: RwLock::default(),
            federated_users: Expiring::new(),
        }
    }

    /// Drops expired entries so memory stays bounded by what is live; run periodically.
    pub fn purge_expired(&self) {
        let now = self.clock.now();
        self.revoked.purge(now);
        self.sessions.purge(now);
        self.codes.purge(now);
        self.refresh_tokens.purge(now);
        self.refresh_successors.purge(now);
        self.grants.purge(now);
        self.session_grants.purge(now);
        self.session_ends.purge(now);
        self.federated_users.purge(now);
        self.consents.purge(now);
        self.device_grants.purge(now);
        self.user_codes.purge(now);
        self.counters.purge(now);
        self.retired_keys.purge(now);
    }
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

fn consent_key(subject: &str, client_id: &str) -> String {
    format!("{}{client_id}", consent_prefix(subject))
}

/// What every consent key of `subject` starts with; the length keeps subjects apart.
fn consent_prefix(subject: &str) -> String {
    format!("{}:{subject}:", subject.len())
}

/// The subject and client id of a consent key ([`consent_key`]).
fn consent_of_key(key: &str) -> Option<(&str, &str)> {
    let (length, rest) = key.split_once(':')?;
    let length = length.parse::<usize>().ok()?;
    let subject = rest.get(..length)?;
    let client_id = rest.get(length..)?.strip_prefix(':')?;
    Some((subject, client_id))
}

#[async_trait]
impl Directory for MemoryStore {
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
        // Drop the old subject's and claims' entries only while they still name this user:
        // another user may have taken them since.
        if let Some(previous) = users.by_username.get(&user.username).cloned() {
            users.unindex(&previous);
        }
        users.username_by_subject.insert(user.subject.clone(), user.username.clone());
        for claimed in &user.claimed_subjects {
            users.username_by_claim.insert(claimed.clone(), user.username.clone());
        }
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

    async fn user_claiming(&self, subject: &str) -> Result<Option<Arc<UserRecord>>, StoreError> {
        let users = read(&self.users);
        Ok(users.username_by_claim.get(subject).and_then(|username| users.by_username.get(username)).cloned())
    }

    async fn delete_user(&self, username: &str) -> Result<(), StoreError> {
        let mut users = write(&self.users);
        if let Some(user) = users.by_username.remove(username) {
            users.unindex(&user);
        }
        Ok(())
    }

    async fn usernames(&self) -> Result<Vec<String>, StoreError> {
        let mut names: Vec<String> = read(&self.users).by_username.keys().cloned().collect();
        names.sort_unstable();
        Ok(names)
    }
}

#[async_trait]
impl SingleUse for MemoryStore {
    async fn put_code(&self, code_hash: &str, code: &AuthorizationCode, expires_at: u64) -> Result<(), StoreError> {
        self.codes.put(code_hash, Once::fresh(code), expires_at, self.clock.now());
        Ok(())
    }

    async fn consume_code(&self, code_hash: &str, by: &str) -> Result<Consumed<AuthorizationCode>, StoreError> {
        Ok(consume(&self.codes, code_hash, by, self.clock.now(), |_| true))
    }

    async fn consume_refresh_token(
        &self,
        token_hash: &str,
        by: &str,
        client_id: &str,
    ) -> Result<Consumed<RefreshToken>, StoreError> {
        let now = self.clock.now();
        Ok(consume(&self.refresh_tokens, token_hash, by, now, |token| token.client_id == client_id))
    }

    async fn peek_refresh_token(&self, token_hash: &str) -> Result<Consumed<RefreshToken>, StoreError> {
        Ok(peek(&self.refresh_tokens, token_hash, self.clock.now()))
    }

    async fn put_refresh_successor(&self, token_hash: &str, sealed: &str, expires_at: u64) -> Result<(), StoreError> {
        self.refresh_successors.put(token_hash, sealed.to_owned(), expires_at, self.clock.now());
        Ok(())
    }

    async fn refresh_successor(&self, token_hash: &str) -> Result<Option<String>, StoreError> {
        Ok(self.refresh_successors.get(token_hash, self.clock.now()))
    }
}

#[async_trait]
impl Grants for MemoryStore {
    async fn put_grant(&self, grant: &Grant) -> Result<(), StoreError> {
        self.grants.put(&grant.id, grant.clone(), grant.expires_at, self.clock.now());
        Ok(())
    }

    /// The refresh token is stored only with its grant.
    async fn update_grant(
        &self,
        grant: &Grant,
        refresh_token: Option<(&str, &RefreshToken)>,
    ) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let updated = self.grants.update(&grant.id, now, |entry| match entry {
            Some(entry) if grant.expires_at > now => {
                *entry = (grant.clone(), grant.expires_at);
                true
            }
            _ => false,
        });
        if let Some((token_hash, token)) = refresh_token.filter(|_| updated) {
            self.refresh_tokens.put(token_hash, Once::fresh(token), token.expires_at, now);
        }
        Ok(updated)
    }

    async fn grant(&self, id: &str) -> Result<Option<Grant>, StoreError> {
        Ok(self.grants.get(id, self.clock.now()))
    }

    async fn revoke_grant(&self, id: &str) -> Result<Option<Grant>, StoreError> {
        let now = self.clock.now();
        Ok(write(&self.grants.entries).remove(id).filter(|(_, expires_at)| *expires_at > now).map(|(grant, _)| grant))
    }
}

#[async_trait]
impl Ephemeral for MemoryStore {
    async fn revoke_token(&self, jti: &str, expires_at: u64) -> Result<(), StoreError> {
        self.revoked.put(jti, (), expires_at, self.clock.now());
        Ok(())
    }

    async fn token_check(&self, jti: &str) -> Result<TokenCheck, StoreError> {
        let revoked = self.revoked.get(jti, self.clock.now()).is_some();
        Ok(TokenCheck { revoked, epoch: read(&self.claims).get(EPOCH_CLAIM).cloned() })
    }

    async fn put_session(&self, session: &Session, expires_at: u64) -> Result<(), StoreError> {
        let now = self.clock.now();
        self.sessions.put(&session.id, session.clone(), expires_at, now);
        self.sign_ins.upsert(&session.subject, now, |entry| {
            let (signed_in_at, kept_until) = entry.get_or_insert((session.auth_time, expires_at));
            *signed_in_at = (*signed_in_at).max(session.auth_time);
            *kept_until = (*kept_until).max(expires_at);
        });
        Ok(())
    }

    async fn session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        Ok(self.sessions.get(id, self.clock.now()))
    }

    async fn delete_session(&self, id: &str) -> Result<(), StoreError> {
        self.sessions.delete(id);
        Ok(())
    }

    async fn active_sessions(&self) -> Result<u64, StoreError> {
        Ok(self.sessions.count_live(self.clock.now()) as u64)
    }

    async fn put_consent(
        &self,
        subject: &str,
        client_id: &str,
        scope: &Scope,
        expires_at: u64,
    ) -> Result<(), StoreError> {
        self.consents.put(&consent_key(subject, client_id), scope.clone(), expires_at, self.clock.now());
        Ok(())
    }

    async fn consent(&self, subject: &str, client_id: &str) -> Result<Option<Scope>, StoreError> {
        Ok(self.consents.get(&consent_key(subject, client_id), self.clock.now()))
    }

    /// A scan of the consents under the subject's key prefix: the memory store's index.
    async fn user_consents(&self, subject: &str) -> Result<Vec<(String, Scope)>, StoreError> {
        let prefix = consent_prefix(subject);
        let live = self.consents.live_with_prefix(&prefix, self.clock.now());
        Ok(live.into_iter().map(|(key, scope)| (key[prefix.len()..].to_owned(), scope)).collect())
    }

    async fn delete_consent(&self, subject: &str, client_id: &str) -> Result<(), StoreError> {
        self.consents.delete(&consent_key(subject, client_id));
        Ok(())
    }
}

#[async_trait]
impl SessionEnds for MemoryStore {
    async fn link_session_grant(&self, sid: &str, grant: &str, client: &str, until: u64) -> Result<bool, StoreError> {
        let link = SessionGrant { grant_id: grant.to_owned(), client_id: client.to_owned() };
        Ok(self.session_grants.upsert(sid, self.clock.now(), |entry| {
            let (links, expires_at) = entry.get_or_insert_with(|| (SessionLinks::default(), until));
            if links.closed {
                return false;
            }
            links.grants.push(link);
            *expires_at = (*expires_at).max(until);
            true
        }))
    }

    async fn close_session_grants(&self, sid: &str, session_expires_at: u64) -> Result<Vec<SessionGrant>, StoreError> {
        let mut grants = self.session_grants.upsert(sid, self.clock.now(), |entry| {
            let (links, expires_at) = entry.get_or_insert_with(|| (SessionLinks::default(), session_expires_at));
            links.closed = true;
            *expires_at = (*expires_at).max(session_expires_at);
            links.grants.clone()
        });
        grants.sort();
        Ok(grants)
    }

    async fn keep_session_grants(&self, sid: &str, session_expires_at: u64) -> Result<(), StoreError> {
        self.session_grants.upsert(sid, self.clock.now(), |entry| {
            if let Some((_, expires_at)) = entry {
                *expires_at = (*expires_at).max(session_expires_at);
            }
        });
        Ok(())
    }

    async fn remember_session_end(&self, sid: &str, ended_at: u64, expires_at: u64) -> Result<(), StoreError> {
        self.session_ends.put(sid, ended_at, expires_at, self.clock.now());
        Ok(())
    }

    async fn session_token_check(&self, jti: &str, sid: &str) -> Result<SessionTokenCheck, StoreError> {
        let token = self.token_check(jti).await?;
        Ok(SessionTokenCheck { token, session_ended_at: self.session_ends.get(sid, self.clock.now()) })
    }
}

/// Reads the live sessions and grants themselves: one process holds few enough that a
/// scan per call costs less than an index to keep in step.
#[async_trait]
impl UserIndex for MemoryStore {
    async fn user_sessions(&self, subject: &str) -> Result<Vec<UserSession>, StoreError> {
        let now = self.clock.now();
        let mut sessions: Vec<UserSession> = read(&self.sessions.entries)
            .values()
            .filter(|(session, expires_at)| session.subject == subject && *expires_at > now)
            .map(|(session, expires_at)| UserSession {
                sid: session.sid.clone(),
                signed_in_at: session.auth_time,
                expires_at: *expires_at,
                session_id: session.id.clone(),
            })
            .collect();
        sessions.sort();
        Ok(sessions)
    }

    async fn user_grants(&self, subject: &str) -> Result<Vec<UserGrant>, StoreError> {
        let now = self.clock.now();
        let mut grants: Vec<UserGrant> = read(&self.grants.entries)
            .values()
            .filter(|(grant, expires_at)| grant.subject == subject && *expires_at > now)
            .map(|(grant, _)| UserGrant {
                grant_id: grant.id.clone(),
                client_id: grant.client_id.clone(),
                offline: survives_session_end(grant),
            })
            .collect();
        grants.sort();
        Ok(grants)
    }

    async fn user_activity(&self, subject: &str) -> Result<UserActivity, StoreError> {
        let now = self.clock.now();
        let active_sessions = read(&self.sessions.entries)
            .values()
            .filter(|(session, expires_at)| session.subject == subject && *expires_at > now)
            .count() as u64;
        Ok(UserActivity { active_sessions, last_sign_in: self.sign_ins.get(subject, now) })
    }
}

/// Scans the live grants and consents, like [`UserIndex`] here.
#[async_trait]
impl ClientIndex for MemoryStore {
    async fn client_holdings(&self, client_id: &str) -> Result<ClientHoldings, StoreError> {
        let now = self.clock.now();
        let mut grants: Vec<String> = read(&self.grants.entries)
            .values()
            .filter(|(grant, expires_at)| grant.client_id == client_id && *expires_at > now)
            .map(|(grant, _)| grant.id.clone())
            .collect();
        let mut consents: Vec<String> = read(&self.consents.entries)
            .iter()
            .filter(|(_, (_, expires_at))| *expires_at > now)
            .filter_map(|(key, _)| consent_of_key(key))
            .filter(|(_, consented_to)| *consented_to == client_id)
            .map(|(subject, _)| subject.to_owned())
            .collect();
        grants.sort();
        consents.sort();
        Ok(ClientHoldings { grants, consents })
    }
}

#[async_trait]
impl LogoutQueue for MemoryStore {
    async fn queue_logout(&self, delivery: &LogoutDelivery) -> Result<bool, StoreError> {
        let mut logouts = self.logouts.write().unwrap_or_else(PoisonError::into_inner);
        let key = (delivery.sid.clone(), delivery.client_id.clone());
        if logouts.contains_key(&key) {
            return Ok(false);
        }
        logouts.insert(key, (delivery.due_at, delivery.clone()));
        Ok(true)
    }

    async fn claim_logouts(&self, now: u64, lease_until: u64, limit: u64) -> Result<Vec<LogoutDelivery>, StoreError> {
        let mut logouts = self.logouts.write().unwrap_or_else(PoisonError::into_inner);
        let mut due: Vec<(u64, (String, String))> = logouts
            .iter()
            .filter(|(_, (due_at, _))| *due_at <= now)
            .map(|(key, (due_at, _))| (*due_at, key.clone()))
            .collect();
        due.sort();
        let mut claimed = Vec::new();
        for (_, key) in due.into_iter().take(usize::try_from(limit).unwrap_or(usize::MAX)) {
            if let Some((due_at, delivery)) = logouts.get_mut(&key) {
                *due_at = lease_until;
                claimed.push(delivery.clone());
            }
        }
        Ok(claimed)
    }

    async fn requeue_logout(&self, delivery: &LogoutDelivery) -> Result<(), StoreError> {
        let mut logouts = self.logouts.write().unwrap_or_else(PoisonError::into_inner);
        logouts.insert((delivery.sid.clone(), delivery.client_id.clone()), (delivery.due_at, delivery.clone()));
        Ok(())
    }

    async fn finish_logout(&self, sid: &str, client_id: &str) -> Result<(), StoreError> {
        let mut logouts = self.logouts.write().unwrap_or_else(PoisonError::into_inner);
        logouts.remove(&(sid.to_owned(), client_id.to_owned()));
        Ok(())
    }
}

#[async_trait]
impl Federation for MemoryStore {
    async fn put_connector(&self, connector: ConnectorRecord) -> Result<(), StoreError> {
        write(&self.connectors).insert(connector.name.clone(), connector);
        Ok(())
    }

    async fn connector(&self, name: &str) -> Result<Option<ConnectorRecord>, StoreError> {
        Ok(read(&self.connectors).get(name).cloned())
    }

    async fn connectors(&self) -> Result<Vec<ConnectorRecord>, StoreError> {
        Ok(read(&self.connectors).values().cloned().collect())
    }

    async fn delete_connector(&self, name: &str) -> Result<(), StoreError> {
        write(&self.connectors).remove(name);
        Ok(())
    }

    async fn put_federated_user(&self, user: &FederatedUser, expires_at: u64) -> Result<(), StoreError> {
        self.federated_users.put(&user.user.subject, user.clone(), expires_at, self.clock.now());
        Ok(())
    }

    async fn federated_user(&self, subject: &str) -> Result<Option<FederatedUser>, StoreError> {
        Ok(self.federated_users.get(subject, self.clock.now()))
    }
}

#[async_trait]
impl DeviceGrants for MemoryStore {
    async fn put_device_grant(
        &self,
        device_code_hash: &str,
        user_code_hash: &str,
        grant: &DeviceGrant,
        kept_until: u64,
    ) -> Result<bool, StoreError> {
        let now = self.clock.now();
        if grant.expires_at <= now {
            return Ok(true);
        }
        {
            let mut user_codes = write(&self.user_codes.entries);
            if user_codes.get(user_code_hash).is_some_and(|(_, expires_at)| *expires_at > now) {
                return Ok(false);
            }
            user_codes.insert(user_code_hash.to_owned(), (device_code_hash.to_owned(), grant.expires_at));
        }
        self.device_grants.put(device_code_hash, grant.clone(), kept_until.max(grant.expires_at), now);
        Ok(true)
    }

    async fn device_grant(&self, device_code_hash: &str) -> Result<Option<DeviceGrant>, StoreError> {
        Ok(self.device_grants.get(device_code_hash, self.clock.now()))
    }

    async fn device_code_of_user_code(&self, user_code_hash: &str) -> Result<Option<String>, StoreError> {
        Ok(self.user_codes.get(user_code_hash, self.clock.now()))
    }

    async fn swap_device_grant(
        &self,
        device_code_hash: &str,
        expected: &DeviceGrant,
        next: &DeviceGrant,
    ) -> Result<bool, StoreError> {
        Ok(self.device_grants.update(device_code_hash, self.clock.now(), |entry| match entry {
            Some((stored, _)) if stored == expected => {
                *stored = next.clone();
                true
            }
            _ => false,
        }))
    }
}

#[async_trait]
impl Counters for MemoryStore {
    async fn reserve(&self, budgets: &[Budget<'_>], window_ends_at: u64) -> Result<Reservation, StoreError> {
        Ok(self.counters.reserve(budgets, window_ends_at, self.clock.now()))
    }

    async fn refund(&self, keys: &[&str]) -> Result<(), StoreError> {
        self.counters.refund(keys, self.clock.now());
        Ok(())
    }
}

#[async_trait]
impl Coordination for MemoryStore {
    async fn claim(&self, name: &str, value: &str) -> Result<String, StoreError> {
        Ok(write(&self.claims).entry(name.to_owned()).or_insert_with(|| value.to_owned()).clone())
    }

    async fn publish_keys(&self, jwks: &str, active_kids: &str) -> Result<(), StoreError> {
        let published = PublishedKeys { jwks: jwks.to_owned(), active_kids: active_kids.to_owned() };
        *write(&self.published_keys) = Some(published);
        Ok(())
    }

    async fn published_keys(&self) -> Result<Option<PublishedKeys>, StoreError> {
        Ok(read(&self.published_keys).clone())
    }

    async fn publish_retired_key(&self, kid: &str, jwk: &str, expires_at: u64) -> Result<(), StoreError> {
        if expires_at > self.clock.now() {
            let mut entries = write(&self.retired_keys.entries);
            let entry = entries.entry(kid.to_owned()).or_insert_with(|| (jwk.to_owned(), expires_at));
            if entry.1 < expires_at {
                *entry = (jwk.to_owned(), expires_at);
            }
        }
        Ok(())
    }

    async fn retired_keys(&self) -> Result<Vec<String>, StoreError> {
        let now = self.clock.now();
        let entries = read(&self.retired_keys.entries);
        let mut keys: Vec<(&String, &String)> =
            entries.iter().filter(|(_, (_, expires_at))| *expires_at > now).map(|(kid, (jwk, _))| (kid, jwk)).collect();
        keys.sort_unstable();
        Ok(keys.into_iter().map(|(_, jwk)| jwk.clone()).collect())
    }

    async fn eviction(&self) -> Result<Eviction, StoreError> {
        Ok(Eviction::Never)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
