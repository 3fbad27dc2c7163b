//! [`LogoutQueue`] on Redis: a sorted set `P:v1:{logouts}:due` of delivery names
//! (`<sid>\n<client id>`; client ids are printable ASCII, so never hold a newline) scored
//! by when each is due, and a hash `P:v1:{logouts}:deliveries` of their payloads. Both
//! share a hash slot, so one script claims atomically: it re-scores what it returns to the
//! lease's end, and no other replica sees those as due before then.

use std::sync::LazyLock;

use async_trait::async_trait;
use fred::types::scripts::Script;

use super::RedisStore;
use super::connection::{decode, encode};
use crate::model::LogoutDelivery;
use crate::store::error::StoreError;
use crate::store::ports::LogoutQueue;

const DUE: &str = "{logouts}:due";
const DELIVERIES: &str = "{logouts}:deliveries";
const DELIVERY: &str = "logout delivery";

/// Queues payload `ARGV[2]` under name `ARGV[1]`, due at `ARGV[3]`, unless the name is
/// queued (`KEYS[1]` the due set, `KEYS[2]` the payloads); 1 when queued.
static QUEUE: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(
        "if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 0 then return 0 end
         redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
         return 1",
    )
});

/// Claims up to `ARGV[3]` names due at `ARGV[1]`, re-scoring each to `ARGV[2]`, and
/// returns their payloads.
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(
        "local names = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[3]))
         local payloads = {}
         for _, name in ipairs(names) do
           local payload = redis.call('HGET', KEYS[2], name)
           if payload then
             redis.call('ZADD', KEYS[1], ARGV[2], name)
             table.insert(payloads, payload)
           else
             redis.call('ZREM', KEYS[1], name)
           end
         end
         return payloads",
    )
});

/// Sets payload `ARGV[2]` of name `ARGV[1]`, due at `ARGV[3]`.
static REQUEUE: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(
        "redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
         redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])",
    )
});

/// Removes name `ARGV[1]`.
static FINISH: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(
        "redis.call('HDEL', KEYS[2], ARGV[1])
         redis.call('ZREM', KEYS[1], ARGV[1])",
    )
});

fn name(sid: &str, client_id: &str) -> String {
    format!("{sid}\n{client_id}")
}

impl RedisStore {
    fn logout_keys(&self) -> Vec<String> {
        vec![self.redis.index_key(DUE), self.redis.index_key(DELIVERIES)]
    }
}

#[async_trait]
impl LogoutQueue for RedisStore {
    async fn queue_logout(&self, delivery: &LogoutDelivery) -> Result<bool, StoreError> {
        let args =
            vec![name(&delivery.sid, &delivery.client_id), encode(DELIVERY, delivery)?, delivery.due_at.to_string()];
        let queued: i64 = self.redis.run(&QUEUE, self.logout_keys(), args).await?;
        Ok(queued == 1)
    }

    async fn claim_logouts(&self, now: u64, lease_until: u64, limit: u64) -> Result<Vec<LogoutDelivery>, StoreError> {
        let args = vec![now.to_string(), lease_until.to_string(), limit.to_string()];
        let payloads: Vec<String> = self.redis.run(&CLAIM, self.logout_keys(), args).await?;
        payloads.iter().map(|payload| decode(DELIVERY, payload)).collect()
    }

    async fn requeue_logout(&self, delivery: &LogoutDelivery) -> Result<(), StoreError> {
        let args =
            vec![name(&delivery.sid, &delivery.client_id), encode(DELIVERY, delivery)?, delivery.due_at.to_string()];
        self.redis.run::<()>(&REQUEUE, self.logout_keys(), args).await
    }

    async fn finish_logout(&self, sid: &str, client_id: &str) -> Result<(), StoreError> {
        self.redis.run::<()>(&FINISH, self.logout_keys(), vec![name(sid, client_id)]).await
    }
}
