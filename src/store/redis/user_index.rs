//! [`UserIndex`] on Redis: per subject, one hash `P:v1:user-index:<subject>` of what it
//! holds, its sessions (field `s:<sid>`, value `<expires_at> <signed_in_at> <session id>`)
//! and its grants (field `g:<grant id>`, value `<expires_at> <offline 0|1> <client id>`):
//! one key per user, not two, since a key's overhead is most of a small hash's size. An
//! entry is written in the pipeline that writes what it indexes, so it costs no round trip
//! of its own; each write drops the entries expired by then and keeps the hash as long as
//! its latest entry, so the hash never outlives what it lists. An ended session or revoked
//! grant keeps its entry until it expires: a read checks that the session or grant still
//! exists (one more round trip, on the read only).

use async_trait::async_trait;
use fred::clients::{Client, Pipeline};
use fred::interfaces::KeysInterface;
use fred::types::Value;

use super::connection::{Redis, redis_error, replies};
use super::{GRANT, READ_HASH, RedisStore, SESSION};
use crate::model::{Grant, Session};
use crate::protocol::session_end::survives_session_end;
use crate::store::error::StoreError;
use crate::store::ports::{UserActivity, UserGrant, UserIndex, UserSession};

const USER_INDEX: &str = "user-index";

/// The field prefixes of sessions and of grants in a user's index.
const SESSION_FIELD: &str = "s:";
const GRANT_FIELD: &str = "g:";

/// Sets field `ARGV[1]` of the index hash `KEYS[1]` to `ARGV[2]` (its expiry) and
/// `ARGV[3]`, drops the entries expired by `ARGV[4]` (now) and keeps the hash alive as long
/// as its latest entry. Sent whole in the pipeline of the write it indexes, like
/// `INDEX_SESSION`.
const INDEX_USER_ENTRY: &str =
    concat!("redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ' ' .. ARGV[3])", prune_expired_hash_entries!());

impl Redis {
    /// Queues the index entry of `session` (living until `expires_at`) in `pipeline`.
    pub(super) async fn index_user_session(
        &self,
        pipeline: &Pipeline<Client>,
        session: &Session,
        expires_at: u64,
        now: u64,
    ) -> Result<(), StoreError> {
        let entry = format!("{} {}", session.auth_time, session.id);
        let field = format!("{SESSION_FIELD}{}", session.sid);
        let args = vec![field, expires_at.to_string(), entry, now.to_string()];
        self.eval_in(pipeline, INDEX_USER_ENTRY, &self.key(USER_INDEX, &session.subject), args).await
    }

    /// Queues the index entry of `grant` (living until its `expires_at`) in `pipeline`.
    pub(super) async fn index_user_grant(
        &self,
        pipeline: &Pipeline<Client>,
        grant: &Grant,
        now: u64,
    ) -> Result<(), StoreError> {
        let entry = format!("{} {}", u8::from(survives_session_end(grant)), grant.client_id);
        let field = format!("{GRANT_FIELD}{}", grant.id);
        let args = vec![field, grant.expires_at.to_string(), entry, now.to_string()];
        self.eval_in(pipeline, INDEX_USER_ENTRY, &self.key(USER_INDEX, &grant.subject), args).await
    }

    /// The unexpired entries of `subject`'s index whose field starts with `prefix`: the
    /// field without it, then the value after its expiry, split once more at its first
    /// space.
    async fn user_entries(&self, subject: &str, prefix: &str) -> Result<Vec<IndexEntry>, StoreError> {
        let now = self.clock.now();
        let raw: Vec<String> = self.run(&READ_HASH, vec![self.key(USER_INDEX, subject)], vec![]).await?;
        let mut entries = Vec::new();
        for pair in raw.chunks(2) {
            let [field, value] = pair else { return Err(corrupt(subject)) };
            let Some(field) = field.strip_prefix(prefix) else { continue };
            let mut parts = value.splitn(3, ' ');
            let (Some(expires_at), Some(first), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
                return Err(corrupt(subject));
            };
            let expires_at = expires_at.parse::<u64>().map_err(|_| corrupt(subject))?;
            if expires_at > now {
                let (field, first, rest) = (field.to_owned(), first.to_owned(), rest.to_owned());
                entries.push(IndexEntry { field, expires_at, first, rest });
            }
        }
        Ok(entries)
    }

    /// Whether each key of `kind` named by `ids` exists, in one pipeline.
    pub(super) async fn exist(&self, kind: &str, ids: impl Iterator<Item = &str>) -> Result<Vec<bool>, StoreError> {
        let pipeline = self.pool.next().pipeline();
        let mut count = 0;
        for id in ids {
            pipeline.exists::<(), _>(self.key(kind, id)).await.map_err(redis_error)?;
            count += 1;
        }
        if count == 0 {
            return Ok(Vec::new());
        }
        let found = replies(&pipeline).await?;
        Ok(found.iter().map(|reply| matches!(reply, Value::Integer(n) if *n > 0)).collect())
    }
}

/// One unexpired entry of a user's index hash.
struct IndexEntry {
    field: String,
    expires_at: u64,
    first: String,
    rest: String,
}

fn corrupt(subject: &str) -> StoreError {
    StoreError::Corrupt(format!("an undecodable entry in the index of subject {subject}"))
}

#[async_trait]
impl UserIndex for RedisStore {
    async fn user_sessions(&self, subject: &str) -> Result<Vec<UserSession>, StoreError> {
        let entries = self.redis.user_entries(subject, SESSION_FIELD).await?;
        let live = self.redis.exist(SESSION, entries.iter().map(|entry| entry.rest.as_str())).await?;
        let mut sessions = Vec::new();
        for (entry, live) in entries.into_iter().zip(live) {
            let signed_in_at = entry.first.parse::<u64>().map_err(|_| corrupt(subject))?;
            if live {
                let IndexEntry { field: sid, expires_at, rest: session_id, .. } = entry;
                sessions.push(UserSession { sid, signed_in_at, expires_at, session_id });
            }
        }
        sessions.sort();
        Ok(sessions)
    }

    async fn user_grants(&self, subject: &str) -> Result<Vec<UserGrant>, StoreError> {
        let entries = self.redis.user_entries(subject, GRANT_FIELD).await?;
        let live = self.redis.exist(GRANT, entries.iter().map(|entry| entry.field.as_str())).await?;
        let mut grants = Vec::new();
        for (entry, live) in entries.into_iter().zip(live) {
            let offline = match entry.first.as_str() {
                "1" => true,
                "0" => false,
                _ => return Err(corrupt(subject)),
            };
            if live {
                grants.push(UserGrant { grant_id: entry.field, client_id: entry.rest, offline });
            }
        }
        grants.sort();
        Ok(grants)
    }

    /// The index keeps an ended session's entry until the session would have expired, so
    /// its sign-in still counts as the latest.
    async fn user_activity(&self, subject: &str) -> Result<UserActivity, StoreError> {
        let entries = self.redis.user_entries(subject, SESSION_FIELD).await?;
        let mut last_sign_in = None;
        for entry in &entries {
            let signed_in_at = entry.first.parse::<u64>().map_err(|_| corrupt(subject))?;
            last_sign_in = last_sign_in.max(Some(signed_in_at));
        }
        let live = self.redis.exist(SESSION, entries.iter().map(|entry| entry.rest.as_str())).await?;
        let active_sessions = live.into_iter().filter(|live| *live).count() as u64;
        Ok(UserActivity { active_sessions, last_sign_in })
    }
}
