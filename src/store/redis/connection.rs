//! The pool every Redis operation goes through, with the key layout and value encodings
//! that the module documentation describes.

use std::sync::LazyLock;

use fred::clients::Pool;
use fred::error::{Error as RedisError, ErrorKind};
use fred::interfaces::KeysInterface;
use fred::types::scripts::Script;
use fred::types::{Expiration, FromValue};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::clock::Clock;
use crate::store::error::StoreError;
use crate::store::ports::Consumed;

/// Returns the single-use value in `KEYS[1]` as it was, marking it used.
static CONSUME: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(
        "local value = redis.call('GET', KEYS[1])
         if value and string.sub(value, 1, 1) == 'F' then
           redis.call('SET', KEYS[1], 'U' .. ARGV[1] .. string.sub(value, 2), 'KEEPTTL')
         end
         return value",
    )
});

/// A pool of connections that reconnect with exponential back-off for as long as the
/// process lives; while Redis is away, commands fail after the command timeout.
pub(super) struct Redis {
    pub(super) pool: Pool,
    pub(super) prefix: String,
    pub(super) clock: Clock,
}

impl Redis {
    pub(super) fn key(&self, kind: &str, id: &str) -> String {
        format!("{}:v1:{kind}:{id}", self.prefix)
    }

    /// A key of its own kind, without an id (indexes).
    pub(super) fn index_key(&self, kind: &str) -> String {
        format!("{}:v1:{kind}", self.prefix)
    }

    pub(super) async fn run<R: FromValue>(
        &self,
        script: &Script,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<R, StoreError> {
        script.evalsha_with_reload(self.pool.next(), keys, args).await.map_err(redis_error)
    }

    pub(super) async fn get_raw(&self, kind: &str, id: &str) -> Result<Option<String>, StoreError> {
        self.pool.get(self.key(kind, id)).await.map_err(redis_error)
    }

    pub(super) async fn get_json<T: DeserializeOwned>(&self, kind: &str, id: &str) -> Result<Option<T>, StoreError> {
        self.get_raw(kind, id).await?.map(|raw| decode(kind, &raw)).transpose()
    }

    /// Writes `value` until `expires_at`; like the memory store, an entry that would be
    /// born expired is not written at all (and does not replace a live one).
    pub(super) async fn put_raw(&self, kind: &str, id: &str, value: String, expires_at: u64) -> Result<(), StoreError> {
        if expires_at <= self.clock.now() {
            return Ok(());
        }
        self.pool.set(self.key(kind, id), value, Some(expire_at(expires_at)), None, false).await.map_err(redis_error)
    }

    pub(super) async fn put_json<T: Serialize>(
        &self,
        kind: &str,
        id: &str,
        value: &T,
        expires_at: u64,
    ) -> Result<(), StoreError> {
        self.put_raw(kind, id, encode(kind, value)?, expires_at).await
    }

    pub(super) async fn put_once<T: Serialize>(
        &self,
        kind: &str,
        id: &str,
        value: &T,
        expires_at: u64,
    ) -> Result<(), StoreError> {
        self.put_raw(kind, id, format!("F{}", encode(kind, value)?), expires_at).await
    }

    pub(super) async fn consume_once<T: DeserializeOwned>(
        &self,
        kind: &str,
        id: &str,
    ) -> Result<Consumed<T>, StoreError> {
        let now = format!("{:020}", self.clock.now());
        let previous: Option<String> = self.run(&CONSUME, vec![self.key(kind, id)], vec![now]).await?;
        decode_once(kind, previous)
    }

    pub(super) async fn delete(&self, kind: &str, id: &str) -> Result<(), StoreError> {
        self.pool.del(self.key(kind, id)).await.map_err(redis_error)
    }
}

pub(super) fn expire_at(expires_at: u64) -> Expiration {
    Expiration::EXAT(i64::try_from(expires_at).unwrap_or(i64::MAX))
}

/// Lost connections, timeouts and refusals are `Unavailable`; replies that do not convert
/// to what was asked for are `Corrupt`.
pub(super) fn redis_error(error: RedisError) -> StoreError {
    match error.kind() {
        ErrorKind::Parse => StoreError::Corrupt(error.to_string()),
        _ => StoreError::Unavailable(error.to_string()),
    }
}

pub(super) fn encode<T: Serialize>(kind: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(format!("cannot encode {kind}: {e}")))
}

/// Names the kind of entry, never the key: keys hold secrets such as session ids.
pub(super) fn decode<T: DeserializeOwned>(kind: &str, raw: &str) -> Result<T, StoreError> {
    serde_json::from_str(raw).map_err(|e| StoreError::Corrupt(format!("undecodable {kind}: {e}")))
}

pub(super) fn decode_once<T: DeserializeOwned>(kind: &str, raw: Option<String>) -> Result<Consumed<T>, StoreError> {
    let Some(raw) = raw else { return Ok(Consumed::Unknown) };
    match raw.split_at_checked(1) {
        Some(("F", json)) => Ok(Consumed::Fresh(decode(kind, json)?)),
        Some(("U", rest)) => {
            let (used_at, json) = rest
                .split_at_checked(20)
                .and_then(|(digits, json)| Some((digits.parse().ok()?, json)))
                .ok_or_else(|| StoreError::Corrupt(format!("{kind} has no time of use")))?;
            Ok(Consumed::Reused(decode(kind, json)?, used_at))
        }
        _ => Err(StoreError::Corrupt(format!("{kind} has no use marker"))),
    }
}
