//! The Redis store of `portcullis serve`: state shared by every replica, each short-lived
//! entry written with an absolute expiry so Redis itself forgets it.
//!
//! # Key layout
//! Every key starts with `P:v1:`, where `P` is [`RedisConfig::key_prefix`] (several
//! installations can share one Redis) and `v1` versions the value formats, so a later
//! layout can run next to this one during a rollout. Values are JSON of the records in
//! [`crate::model`] unless noted.
//!
//! | key | value | expiry |
//! |---|---|---|
//! | `P:v1:{clients}` | set of client ids | none |
//! | `P:v1:{clients}:client:<client_id>` | `ClientRecord` | none |
//! | `P:v1:{users}:user:<username>` | `UserRecord` | none |
//! | `P:v1:{users}:subject:<subject>` | username (plain string) | none |
//! | `P:v1:revoked:<jti>` | `1` | the token's own expiry |
//! | `P:v1:session:<id>`, `P:v1:interaction:<id>` | the record | as given |
//! | `P:v1:code:<hash>`, `P:v1:refresh:<hash>` | use marker + the record | as given / the token's |
//! | `P:v1:grant:<id>` | `Grant` | the grant's `expires_at` |
//! | `P:v1:consent:<subject length>:<subject>:<client_id>` | `Scope` | as given |
//! | `P:v1:loginfail:<key>` | counter | end of the window |
//!
//! `{clients}` and `{users}` are Redis Cluster hash tags: each directory lives in one slot,
//! so the scripts that change an entry and its index together stay legal on a cluster.
//! (A prefix with its own `{..}` tag moves everything into that one slot, which is legal
//! too.) Every other operation touches a single key. The length in the consent key keeps
//! `("a:b", "c")` and `("a", "b:c")` apart.
//!
//! # Single use
//! Codes and refresh tokens are stored as one marker byte, `F` (fresh) or `U` (used),
//! followed by the JSON. The `CONSUME` script returns the stored value and flips the marker to `U` in
//! place (`SETRANGE` keeps the expiry), atomically and in one round trip, so exactly one
//! caller across all replicas ever sees `F`. If the client library resends a consume after
//! a dropped connection, the resend sees `U`: a retry can only turn `Fresh` into `Reused`,
//! never hand out a second `Fresh`.

use std::fmt;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use fred::clients::Pool;
use fred::error::{Error as RedisError, ErrorKind};
use fred::interfaces::{ClientLike, KeysInterface, SetsInterface};
use fred::types::config::{Config, ReconnectPolicy};
use fred::types::scripts::Script;
use fred::types::{Builder, Expiration, FromValue};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Consumed, Store, StoreError};
use crate::clock::Clock;
use crate::model::{AuthorizationCode, ClientRecord, Grant, Interaction, RefreshToken, Session, UserRecord};
use crate::protocol::scope::Scope;

/// Connections per replica: commands are pipelined, so a few suffice.
const POOL_SIZE: usize = 4;

const CLIENTS: &str = "{clients}";
const CLIENT: &str = "{clients}:client";
const USER: &str = "{users}:user";
const SUBJECT: &str = "{users}:subject";
const REVOKED: &str = "revoked";
const SESSION: &str = "session";
const INTERACTION: &str = "interaction";
const CODE: &str = "code";
const REFRESH: &str = "refresh";
const GRANT: &str = "grant";
const CONSENT: &str = "consent";
const LOGIN_FAILURES: &str = "loginfail";

/// Returns the single-use value in `KEYS[1]` as it was, marking it used.
static CONSUME: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(
        "local value = redis.call('GET', KEYS[1])
         if value and string.sub(value, 1, 1) == 'F' then redis.call('SETRANGE', KEYS[1], 0, 'U') end
         return value",
    )
});

/// Counts a failure in `KEYS[1]`; the first one opens the window, which ends at `ARGV[1]`.
static COUNT_FAILURE: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(
        "local count = redis.call('INCR', KEYS[1])
         if count == 1 then redis.call('EXPIREAT', KEYS[1], ARGV[1]) end
         return count",
    )
});

/// Stores client `ARGV[2]` (JSON `ARGV[1]`) in `KEYS[1]` and lists it in the set `KEYS[2]`.
static PUT_CLIENT: LazyLock<Script> =
    LazyLock::new(|| Script::from_lua("redis.call('SET', KEYS[1], ARGV[1]) redis.call('SADD', KEYS[2], ARGV[2])"));

/// Removes client `ARGV[1]` from `KEYS[1]` and from the set `KEYS[2]`.
static DELETE_CLIENT: LazyLock<Script> =
    LazyLock::new(|| Script::from_lua("redis.call('DEL', KEYS[1]) redis.call('SREM', KEYS[2], ARGV[1])"));

/// Stores user `ARGV[2]` (JSON `ARGV[1]`) in `KEYS[1]`, points its subject `KEYS[2]` at it
/// and drops its previous subject `KEYS[3]` unless another user has taken that over.
static PUT_USER: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(
        "redis.call('SET', KEYS[1], ARGV[1])
         if KEYS[3] ~= KEYS[2] and redis.call('GET', KEYS[3]) == ARGV[2] then redis.call('DEL', KEYS[3]) end
         redis.call('SET', KEYS[2], ARGV[2])",
    )
});

/// Removes user `ARGV[1]` from `KEYS[1]` and its subject `KEYS[2]` if that still names it.
static DELETE_USER: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(
        "redis.call('DEL', KEYS[1])
         if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end",
    )
});

/// How to reach Redis.
#[derive(Clone)]
pub struct RedisConfig {
    /// `redis://[[username]:password@]host[:port][/db]`, or `rediss://` for TLS (system
    /// roots, ring provider).
    pub url: String,
    /// First segment of every key.
    pub key_prefix: String,
    /// The longest one command may take, queueing during a reconnect included, before the
    /// store answers [`StoreError::Unavailable`] rather than hold the request.
    pub command_timeout: Duration,
}

impl RedisConfig {
    /// The URL with the default prefix `portcullis` and a two-second command timeout.
    pub fn new(url: impl Into<String>) -> Self {
        Self { url: url.into(), key_prefix: "portcullis".into(), command_timeout: Duration::from_secs(2) }
    }
}

/// Hides the password, so the config can be logged.
impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = match url::Url::parse(&self.url) {
            Ok(mut url) if url.password().is_some() => {
                let _ = url.set_password(Some("REDACTED"));
                url.to_string()
            }
            Ok(url) => url.to_string(),
            Err(_) => "(unparsable)".to_owned(),
        };
        f.debug_struct("RedisConfig")
            .field("url", &url)
            .field("key_prefix", &self.key_prefix)
            .field("command_timeout", &self.command_timeout)
            .finish()
    }
}

/// A pool of connections that reconnect with exponential back-off for as long as the
/// process lives; while Redis is away, commands fail after the command timeout.
pub struct RedisStore {
    pool: Pool,
    prefix: String,
    clock: Clock,
}

impl RedisStore {
    /// Connects every connection of the pool, failing fast when Redis cannot be reached or
    /// refuses the credentials, so a misconfigured replica never becomes ready.
    pub async fn connect(config: RedisConfig) -> Result<Self, StoreError> {
        let redis = Config::from_url(&config.url)
            .map_err(|e| StoreError::Unavailable(format!("invalid Redis URL: {}", e.details())))?;
        let pool = Builder::from_config(redis)
            .with_performance_config(|performance| performance.default_command_timeout = config.command_timeout)
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 10_000, 2))
            .build_pool(POOL_SIZE)
            .map_err(redis_error)?;
        pool.init().await.map_err(redis_error)?;
        Ok(Self { pool, prefix: config.key_prefix, clock: Clock::system() })
    }

    fn key(&self, kind: &str, id: &str) -> String {
        format!("{}:v1:{kind}:{id}", self.prefix)
    }

    fn clients_key(&self) -> String {
        format!("{}:v1:{CLIENTS}", self.prefix)
    }

    async fn run<R: FromValue>(&self, script: &Script, keys: Vec<String>, args: Vec<String>) -> Result<R, StoreError> {
        script.evalsha_with_reload(self.pool.next(), keys, args).await.map_err(redis_error)
    }

    async fn get_raw(&self, kind: &str, id: &str) -> Result<Option<String>, StoreError> {
        self.pool.get(self.key(kind, id)).await.map_err(redis_error)
    }

    async fn get_json<T: DeserializeOwned>(&self, kind: &str, id: &str) -> Result<Option<T>, StoreError> {
        self.get_raw(kind, id).await?.map(|raw| decode(kind, &raw)).transpose()
    }

    /// Writes `value` until `expires_at`; like the memory store, an entry that would be
    /// born expired is not written at all (and does not replace a live one).
    async fn put_raw(&self, kind: &str, id: &str, value: String, expires_at: u64) -> Result<(), StoreError> {
        if expires_at <= self.clock.now() {
            return Ok(());
        }
        let expiry = Expiration::EXAT(i64::try_from(expires_at).unwrap_or(i64::MAX));
        self.pool.set(self.key(kind, id), value, Some(expiry), None, false).await.map_err(redis_error)
    }

    async fn put_json<T: Serialize>(&self, kind: &str, id: &str, value: &T, expires_at: u64) -> Result<(), StoreError> {
        self.put_raw(kind, id, encode(kind, value)?, expires_at).await
    }

    async fn put_once<T: Serialize>(&self, kind: &str, id: &str, value: &T, expires_at: u64) -> Result<(), StoreError> {
        self.put_raw(kind, id, format!("F{}", encode(kind, value)?), expires_at).await
    }

    async fn consume_once<T: DeserializeOwned>(&self, kind: &str, id: &str) -> Result<Consumed<T>, StoreError> {
        let previous: Option<String> = self.run(&CONSUME, vec![self.key(kind, id)], vec![]).await?;
        decode_once(kind, previous)
    }

    async fn delete(&self, kind: &str, id: &str) -> Result<(), StoreError> {
        self.pool.del(self.key(kind, id)).await.map_err(redis_error)
    }

    /// The subject a user is stored with now. An undecodable entry counts as absent, so
    /// that writing the user again repairs it; lookups by a stale subject are refused by
    /// [`Store::user_by_subject`] anyway.
    async fn stored_subject(&self, username: &str) -> Result<Option<String>, StoreError> {
        match self.get_json::<UserRecord>(USER, username).await {
            Ok(user) => Ok(user.map(|user| user.subject)),
            Err(StoreError::Corrupt(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Lost connections, timeouts and refusals are `Unavailable`; replies that do not convert
/// to what was asked for are `Corrupt`.
fn redis_error(error: RedisError) -> StoreError {
    match error.kind() {
        ErrorKind::Parse => StoreError::Corrupt(error.to_string()),
        _ => StoreError::Unavailable(error.to_string()),
    }
}

fn encode<T: Serialize>(kind: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(format!("cannot encode {kind}: {e}")))
}

/// Names the kind of entry, never the key: keys hold secrets such as session ids.
fn decode<T: DeserializeOwned>(kind: &str, raw: &str) -> Result<T, StoreError> {
    serde_json::from_str(raw).map_err(|e| StoreError::Corrupt(format!("undecodable {kind}: {e}")))
}

fn decode_once<T: DeserializeOwned>(kind: &str, raw: Option<String>) -> Result<Consumed<T>, StoreError> {
    let Some(raw) = raw else { return Ok(Consumed::Unknown) };
    match raw.split_at_checked(1) {
        Some(("F", json)) => Ok(Consumed::Fresh(decode(kind, json)?)),
        Some(("U", json)) => Ok(Consumed::Reused(decode(kind, json)?)),
        _ => Err(StoreError::Corrupt(format!("{kind} has no use marker"))),
    }
}

fn consent_id(subject: &str, client_id: &str) -> String {
    format!("{}:{subject}:{client_id}", subject.len())
}

#[async_trait]
impl Store for RedisStore {
    async fn put_client(&self, client: ClientRecord) -> Result<(), StoreError> {
        let keys = vec![self.key(CLIENT, &client.client_id), self.clients_key()];
        let json = encode(CLIENT, &client)?;
        self.run(&PUT_CLIENT, keys, vec![json, client.client_id]).await
    }

    async fn client(&self, client_id: &str) -> Result<Option<Arc<ClientRecord>>, StoreError> {
        Ok(self.get_json(CLIENT, client_id).await?.map(Arc::new))
    }

    async fn delete_client(&self, client_id: &str) -> Result<(), StoreError> {
        let keys = vec![self.key(CLIENT, client_id), self.clients_key()];
        self.run(&DELETE_CLIENT, keys, vec![client_id.to_owned()]).await
    }

    async fn client_ids(&self) -> Result<Vec<String>, StoreError> {
        let mut ids: Vec<String> = self.pool.smembers(self.clients_key()).await.map_err(redis_error)?;
        ids.sort_unstable();
        Ok(ids)
    }

    async fn put_user(&self, user: UserRecord) -> Result<(), StoreError> {
        let previous = self.stored_subject(&user.username).await?.unwrap_or_else(|| user.subject.clone());
        let keys = vec![self.key(USER, &user.username), self.key(SUBJECT, &user.subject), self.key(SUBJECT, &previous)];
        let json = encode(USER, &user)?;
        self.run(&PUT_USER, keys, vec![json, user.username]).await
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<Arc<UserRecord>>, StoreError> {
        Ok(self.get_json(USER, username).await?.map(Arc::new))
    }

    /// Checks the user still has this subject, so an index entry left behind by a
    /// concurrent rename never resolves to the wrong person.
    async fn user_by_subject(&self, subject: &str) -> Result<Option<Arc<UserRecord>>, StoreError> {
        let Some(username) = self.get_raw(SUBJECT, subject).await? else { return Ok(None) };
        let user: Option<UserRecord> = self.get_json(USER, &username).await?;
        Ok(user.filter(|user| user.subject == subject).map(Arc::new))
    }

    async fn delete_user(&self, username: &str) -> Result<(), StoreError> {
        match self.stored_subject(username).await? {
            Some(subject) => {
                let keys = vec![self.key(USER, username), self.key(SUBJECT, &subject)];
                self.run(&DELETE_USER, keys, vec![username.to_owned()]).await
            }
            None => self.delete(USER, username).await,
        }
    }

    async fn revoke_token(&self, jti: &str, expires_at: u64) -> Result<(), StoreError> {
        self.put_raw(REVOKED, jti, "1".to_owned(), expires_at).await
    }

    async fn is_token_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        self.pool.exists(self.key(REVOKED, jti)).await.map_err(redis_error)
    }

    async fn put_session(&self, session: &Session, expires_at: u64) -> Result<(), StoreError> {
        self.put_json(SESSION, &session.id, session, expires_at).await
    }

    async fn session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        self.get_json(SESSION, id).await
    }

    async fn delete_session(&self, id: &str) -> Result<(), StoreError> {
        self.delete(SESSION, id).await
    }

    async fn put_interaction(&self, interaction: &Interaction, expires_at: u64) -> Result<(), StoreError> {
        self.put_json(INTERACTION, &interaction.id, interaction, expires_at).await
    }

    async fn interaction(&self, id: &str) -> Result<Option<Interaction>, StoreError> {
        self.get_json(INTERACTION, id).await
    }

    async fn delete_interaction(&self, id: &str) -> Result<(), StoreError> {
        self.delete(INTERACTION, id).await
    }

    async fn put_code(&self, code_hash: &str, code: &AuthorizationCode, expires_at: u64) -> Result<(), StoreError> {
        self.put_once(CODE, code_hash, code, expires_at).await
    }

    async fn consume_code(&self, code_hash: &str) -> Result<Consumed<AuthorizationCode>, StoreError> {
        self.consume_once(CODE, code_hash).await
    }

    async fn put_refresh_token(&self, token_hash: &str, token: &RefreshToken) -> Result<(), StoreError> {
        self.put_once(REFRESH, token_hash, token, token.expires_at).await
    }

    async fn consume_refresh_token(&self, token_hash: &str) -> Result<Consumed<RefreshToken>, StoreError> {
        self.consume_once(REFRESH, token_hash).await
    }

    async fn peek_refresh_token(&self, token_hash: &str) -> Result<Consumed<RefreshToken>, StoreError> {
        decode_once(REFRESH, self.get_raw(REFRESH, token_hash).await?)
    }

    async fn put_grant(&self, grant: &Grant) -> Result<(), StoreError> {
        self.put_json(GRANT, &grant.id, grant, grant.expires_at).await
    }

    async fn grant(&self, id: &str) -> Result<Option<Grant>, StoreError> {
        self.get_json(GRANT, id).await
    }

    async fn revoke_grant(&self, id: &str) -> Result<(), StoreError> {
        self.delete(GRANT, id).await
    }

    async fn put_consent(
        &self,
        subject: &str,
        client_id: &str,
        scope: &Scope,
        expires_at: u64,
    ) -> Result<(), StoreError> {
        self.put_json(CONSENT, &consent_id(subject, client_id), scope, expires_at).await
    }

    async fn consent(&self, subject: &str, client_id: &str) -> Result<Option<Scope>, StoreError> {
        self.get_json(CONSENT, &consent_id(subject, client_id)).await
    }

    /// An `expires_at` already past still counts 1 and leaves nothing behind (`EXPIREAT`
    /// in the past deletes), as in the memory store.
    async fn record_login_failure(&self, key: &str, expires_at: u64) -> Result<u32, StoreError> {
        let keys = vec![self.key(LOGIN_FAILURES, key)];
        let count: i64 = self.run(&COUNT_FAILURE, keys, vec![expires_at.to_string()]).await?;
        Ok(saturate(count))
    }

    async fn login_failures(&self, key: &str) -> Result<u32, StoreError> {
        let count: Option<i64> = self.pool.get(self.key(LOGIN_FAILURES, key)).await.map_err(redis_error)?;
        Ok(count.map_or(0, saturate))
    }

    async fn clear_login_failures(&self, key: &str) -> Result<(), StoreError> {
        self.delete(LOGIN_FAILURES, key).await
    }
}

fn saturate(count: i64) -> u32 {
    u32::try_from(count.max(0)).unwrap_or(u32::MAX)
}
