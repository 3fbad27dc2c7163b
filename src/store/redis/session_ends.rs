//! [`SessionEnds`] on Redis. The grants of a session are a hash `P:v1:session-grants:<sid>`
//! (grant id → client id) that lives as long as the session; ending the session adds the
//! field `!ended` (grant ids never start with `!`) in the script that reads the hash, and
//! that field refuses later links. The end marker `P:v1:{revoked}:ended:<sid>` shares the deny-list's
//! slot, so introspection reads it with the token's deny-list entry and the data epoch in
//! one `MGET`.

use std::sync::LazyLock;

use async_trait::async_trait;
use fred::interfaces::KeysInterface;
use fred::types::ExpireOptions;
use fred::types::scripts::Script;

use super::connection::redis_error;
use super::{REVOKED, RedisStore};
use crate::store::EPOCH_CLAIM;
use crate::store::error::StoreError;
use crate::store::ports::{SessionEnds, SessionGrant, SessionTokenCheck, TokenCheck};

const SESSION_GRANTS: &str = "session-grants";

/// The field that marks a session's grant hash as ended.
const ENDED_FIELD: &str = "!ended";

/// Links grant `ARGV[1]` (client `ARGV[2]`) to the session hash `KEYS[1]` unless it is
/// ended, keeping the hash until `ARGV[3]` at least (`ARGV[4]` is now); 1 when linked.
static LINK_SESSION_GRANT: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(
        "if redis.call('HEXISTS', KEYS[1], '!ended') == 1 then return 0 end
         redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
         local ttl = redis.call('TTL', KEYS[1])
         if ttl < 0 or tonumber(ARGV[4]) + ttl < tonumber(ARGV[3]) then redis.call('EXPIREAT', KEYS[1], ARGV[3]) end
         return 1",
    )
});

/// Marks the session hash `KEYS[1]` ended and returns its entries, keeping it until
/// `ARGV[1]` or its own expiry, whichever is later (`ARGV[2]` is now).
static CLOSE_SESSION_GRANTS: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(
        "local ttl = redis.call('TTL', KEYS[1])
         redis.call('HSET', KEYS[1], '!ended', '1')
         if ttl < 0 or tonumber(ARGV[2]) + ttl < tonumber(ARGV[1]) then redis.call('EXPIREAT', KEYS[1], ARGV[1]) end
         return redis.call('HGETALL', KEYS[1])",
    )
});

fn ended_id(sid: &str) -> String {
    format!("ended:{sid}")
}

#[async_trait]
impl SessionEnds for RedisStore {
    async fn link_session_grant(&self, sid: &str, grant: &str, client: &str, until: u64) -> Result<bool, StoreError> {
        let keys = vec![self.redis.key(SESSION_GRANTS, sid)];
        let now = self.redis.clock.now();
        let args = vec![grant.to_owned(), client.to_owned(), until.to_string(), now.to_string()];
        let linked: i64 = self.redis.run(&LINK_SESSION_GRANT, keys, args).await?;
        Ok(linked == 1)
    }

    async fn close_session_grants(&self, sid: &str, session_expires_at: u64) -> Result<Vec<SessionGrant>, StoreError> {
        let keys = vec![self.redis.key(SESSION_GRANTS, sid)];
        let args = vec![session_expires_at.to_string(), self.redis.clock.now().to_string()];
        let entries: Vec<String> = self.redis.run(&CLOSE_SESSION_GRANTS, keys, args).await?;
        let mut grants = Vec::new();
        for pair in entries.chunks(2) {
            let [grant_id, client_id] = pair else {
                return Err(StoreError::Corrupt("a session grant without its client".into()));
            };
            if grant_id != ENDED_FIELD {
                grants.push(SessionGrant { grant_id: grant_id.clone(), client_id: client_id.clone() });
            }
        }
        grants.sort();
        Ok(grants)
    }

    /// `EXPIREAT … GT`: only ever later, and nothing for a key that is gone.
    async fn keep_session_grants(&self, sid: &str, session_expires_at: u64) -> Result<(), StoreError> {
        let until = i64::try_from(session_expires_at).unwrap_or(i64::MAX);
        let key = self.redis.key(SESSION_GRANTS, sid);
        self.redis.pool.expire_at::<(), _>(key, until, Some(ExpireOptions::GT)).await.map_err(redis_error)
    }

    async fn remember_session_end(&self, sid: &str, ended_at: u64, expires_at: u64) -> Result<(), StoreError> {
        self.redis.put_raw(REVOKED, &ended_id(sid), ended_at.to_string(), expires_at).await
    }

    async fn session_token_check(&self, jti: &str, sid: &str) -> Result<SessionTokenCheck, StoreError> {
        let keys =
            vec![self.redis.key(REVOKED, jti), self.redis.key(REVOKED, &ended_id(sid)), self.claimed_key(EPOCH_CLAIM)];
        let values: Vec<Option<String>> = self.redis.pool.mget(keys).await.map_err(redis_error)?;
        let [revoked, ended_at, epoch] = <[Option<String>; 3]>::try_from(values)
            .map_err(|_| StoreError::Corrupt("unexpected reply to a token check".into()))?;
        let session_ended_at = ended_at
            .map(|at| at.parse::<u64>().map_err(|_| StoreError::Corrupt(format!("undecodable end of session {sid}"))))
            .transpose()?;
        Ok(SessionTokenCheck { token: TokenCheck { revoked: revoked.is_some(), epoch }, session_ended_at })
    }
}
