//! The pool every Redis operation goes through, with the key layout and value encodings
//! that the module documentation describes.

use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fred::clients::{Client, Pipeline, Pool};
use fred::error::{Error as RedisError, ErrorKind};
use fred::interfaces::{ClientLike, KeysInterface};
use fred::types::scripts::Script;
use fred::types::{ClusterHash, CustomCommand, Expiration, FromValue, Value};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::clock::Clock;
use crate::store::error::StoreError;
use crate::store::ports::Consumed;

/// Returns the single-use value in `KEYS[1]` as it was. A fresh one (`F` + JSON) is
/// rewritten as used, keeping its expiry: `R`, the caller's time of use `ARGV[1]`, the time
/// Redis applied it (both milliseconds, 20 digits; the second from Redis's own clock, since
/// a stalled Redis may apply it long after the call), who used it (`ARGV[2]`,
/// length-prefixed), then the JSON. With `ARGV[3]`, only a value whose `client_id` it is
/// gets used.
static CONSUME: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(
        "local value = redis.call('GET', KEYS[1])
         if value and string.sub(value, 1, 1) == 'F'
            and (not ARGV[3] or cjson.decode(string.sub(value, 2)).client_id == ARGV[3]) then
           local now = redis.call('TIME')
           local applied = string.format('%020d', now[1] * 1000 + math.floor(now[2] / 1000))
           redis.call('SET', KEYS[1], 'R' .. ARGV[1] .. applied .. ARGV[2] .. string.sub(value, 2), 'KEEPTTL')
         end
         return value",
    )
});

/// How long after Redis applied a first use, late, an identical use still counts as the
/// caller's retry: a client retries within seconds of the 503 it got, or of the store
/// answering again.
const RETRY_MARGIN: Duration = Duration::from_secs(10);

/// A pool of connections that reconnect with exponential back-off for as long as the
/// process lives; while Redis is away, commands fail after the command timeout.
pub(super) struct Redis {
    pub(super) pool: Pool,
    pub(super) prefix: String,
    pub(super) clock: Clock,
    /// The command timeout the pool was built with: a use that waited longer was given up
    /// by its caller, although Redis may still apply it.
    pub(super) command_timeout: Duration,
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

    pub(super) async fn put_once<T: Serialize>(
        &self,
        kind: &str,
        id: &str,
        value: &T,
        expires_at: u64,
    ) -> Result<(), StoreError> {
        self.put_raw(kind, id, encode_fresh(kind, value)?, expires_at).await
    }

    /// Uses the single-use value under `id`; with `owner`, only if its `client_id` is that.
    pub(super) async fn consume_once<T: DeserializeOwned>(
        &self,
        kind: &str,
        id: &str,
        by: &str,
        owner: Option<&str>,
    ) -> Result<Consumed<T>, StoreError> {
        if by.len() > 999 {
            return Err(StoreError::Corrupt(format!("the fingerprint of a {kind} use is over 999 bytes")));
        }
        let now = now_millis();
        let mut args = vec![format!("{now:020}"), format!("{:03}{by}", by.len())];
        args.extend(owner.map(str::to_owned));
        let previous: Option<String> = self.run(&CONSUME, vec![self.key(kind, id)], args).await?;
        decode_once(kind, previous, now, self.command_timeout)
    }

    /// Queues `EVAL` of `lua` on the one key `key` in `pipeline`: the script travels whole,
    /// so it needs no loading (a pipeline has no `EVALSHA` with reload).
    pub(super) async fn eval_in(
        &self,
        pipeline: &Pipeline<Client>,
        lua: &'static str,
        key: &str,
        args: Vec<String>,
    ) -> Result<(), StoreError> {
        let slot = ClusterHash::Custom(fred::util::redis_keyslot(key.as_bytes()));
        let mut command = vec![lua.to_owned(), "1".to_owned(), key.to_owned()];
        command.extend(args);
        pipeline.custom::<(), _>(CustomCommand::new_static("EVAL", slot, false), command).await.map_err(redis_error)
    }

    /// A single-use value as it is now, without using it.
    pub(super) async fn peek_once<T: DeserializeOwned>(&self, kind: &str, id: &str) -> Result<Consumed<T>, StoreError> {
        let now = now_millis();
        decode_once(kind, self.get_raw(kind, id).await?, now, self.command_timeout)
    }
}

/// Sends a pipeline and answers its replies, failing with the first command that failed.
pub(super) async fn replies(pipeline: &Pipeline<Client>) -> Result<Vec<Value>, StoreError> {
    pipeline.try_all::<Value>().await.into_iter().map(|reply| reply.map_err(redis_error)).collect()
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

/// A single-use value as stored before its use: `F` + JSON.
pub(super) fn encode_fresh<T: Serialize>(kind: &str, value: &T) -> Result<String, StoreError> {
    Ok(format!("F{}", encode(kind, value)?))
}

/// Names the kind of entry, never the key: keys hold secrets such as session ids.
pub(super) fn decode<T: DeserializeOwned>(kind: &str, raw: &str) -> Result<T, StoreError> {
    serde_json::from_str(raw).map_err(|e| StoreError::Corrupt(format!("undecodable {kind}: {e}")))
}

/// Milliseconds since the Unix epoch, the resolution at which a retry is told from a
/// concurrent use.
fn now_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Whether a use at `now` could be a retry of the first use, called at `first_call` and
/// applied by Redis at `first_applied` (all milliseconds): it comes after the caller of the
/// first use gave up on it, and soon after Redis applied it.
fn may_be_retry(first_call: u64, first_applied: u64, now: u64, command_timeout: Duration) -> bool {
    let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    now > first_call.saturating_add(millis(command_timeout))
        && now <= first_applied.saturating_add(millis(RETRY_MARGIN))
}

/// Reads a single-use value: `F` + JSON when fresh; `R` + the times and fingerprint of its
/// first use (see [`CONSUME`]) + JSON when used; `U` + the time of use in seconds + JSON
/// for one used before fingerprints were recorded (nobody's, never a retry).
pub(super) fn decode_once<T: DeserializeOwned>(
    kind: &str,
    raw: Option<String>,
    now: u64,
    command_timeout: Duration,
) -> Result<Consumed<T>, StoreError> {
    let Some(raw) = raw else { return Ok(Consumed::Unknown) };
    let no_record = || StoreError::Corrupt(format!("{kind} has an unreadable record of its use"));
    match raw.split_at_checked(1) {
        Some(("F", json)) => Ok(Consumed::Fresh(decode(kind, json)?)),
        Some(("R", rest)) => {
            let number = |digits: &str| digits.parse::<u64>().ok();
            let (call, rest) =
                rest.split_at_checked(20).and_then(|(d, rest)| Some((number(d)?, rest))).ok_or_else(no_record)?;
            let (applied, rest) =
                rest.split_at_checked(20).and_then(|(d, rest)| Some((number(d)?, rest))).ok_or_else(no_record)?;
            let (length, rest) =
                rest.split_at_checked(3).and_then(|(d, rest)| Some((number(d)?, rest))).ok_or_else(no_record)?;
            let (by, json) =
                usize::try_from(length).ok().and_then(|n| rest.split_at_checked(n)).ok_or_else(no_record)?;
            Ok(Consumed::Reused {
                value: decode(kind, json)?,
                by: by.to_owned(),
                at: call / 1000,
                may_be_retry: may_be_retry(call, applied, now, command_timeout),
            })
        }
        Some(("U", rest)) => {
            let (at, json) = rest
                .split_at_checked(20)
                .and_then(|(digits, json)| Some((digits.parse().ok()?, json)))
                .ok_or_else(no_record)?;
            Ok(Consumed::Reused { value: decode(kind, json)?, by: String::new(), at, may_be_retry: false })
        }
        _ => Err(StoreError::Corrupt(format!("{kind} has no use marker"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_millis(500);

    #[test]
    fn a_use_is_a_possible_retry_only_after_the_first_callers_timeout_and_soon_after_redis_applied_it() {
        assert!(!may_be_retry(1_000, 1_001, 1_400, TIMEOUT), "concurrent: the first caller is still waiting");
        assert!(!may_be_retry(1_000, 1_001, 1_500, TIMEOUT), "at the timeout exactly, still waiting");
        assert!(may_be_retry(1_000, 1_001, 1_501, TIMEOUT));
        assert!(may_be_retry(1_000, 4_000, 14_000, TIMEOUT), "applied late: measured from the application");
        assert!(!may_be_retry(1_000, 4_000, 14_001, TIMEOUT), "long after: a replay");
    }

    #[test]
    fn use_records_are_read_in_both_formats() {
        let json = r#"{"n":1}"#;
        let recorded = format!("R{:020}{:020}005ab cd{json}", 1_000_000, 1_000_100);
        let read: Consumed<serde_json::Value> = decode_once("code", Some(recorded), 1_000_600, TIMEOUT).unwrap();
        let value = serde_json::json!({"n": 1});
        assert_eq!(read, Consumed::Reused { value: value.clone(), by: "ab cd".into(), at: 1_000, may_be_retry: true });
        let legacy = format!("U{:020}{json}", 1_000);
        let read: Consumed<serde_json::Value> = decode_once("code", Some(legacy), 1_000_600, TIMEOUT).unwrap();
        assert_eq!(read, Consumed::Reused { value, by: String::new(), at: 1_000, may_be_retry: false });
        for corrupt in ["R123", "U12", "X{}", &format!("R{:020}{:020}009ab{json}", 1, 2)] {
            let read = decode_once::<serde_json::Value>("code", Some(corrupt.to_owned()), 0, TIMEOUT);
            assert!(matches!(read, Err(StoreError::Corrupt(_))), "{corrupt}");
        }
    }
}
