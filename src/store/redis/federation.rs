//! [`Federation`] on Redis: the connectors in one hash `P:v1:connectors` (field: name,
//! value: the JSON record), read whole for the login page in one round trip, and each
//! person signed in through a connector under `P:v1:federated:<subject>` until their
//! sessions and grants may need them no more.

use std::sync::LazyLock;

use async_trait::async_trait;
use fred::types::scripts::Script;

use super::RedisStore;
use super::connection::{decode, encode};
use crate::model::{ConnectorRecord, FederatedUser};
use crate::store::error::StoreError;
use crate::store::ports::Federation;

const CONNECTORS: &str = "connectors";
const CONNECTOR: &str = "connector";
const FEDERATED: &str = "federated";

/// Sets field `ARGV[1]` of the hash `KEYS[1]` to `ARGV[2]`.
static SET_FIELD: LazyLock<Script> =
    LazyLock::new(|| Script::from_lua("redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])"));

/// Field `ARGV[1]` of the hash `KEYS[1]`, or nil.
static GET_FIELD: LazyLock<Script> = LazyLock::new(|| Script::from_lua("return redis.call('HGET', KEYS[1], ARGV[1])"));

/// Removes field `ARGV[1]` of the hash `KEYS[1]`.
static DELETE_FIELD: LazyLock<Script> = LazyLock::new(|| Script::from_lua("redis.call('HDEL', KEYS[1], ARGV[1])"));

/// The values of the hash `KEYS[1]`.
static VALUES: LazyLock<Script> = LazyLock::new(|| Script::from_lua("return redis.call('HVALS', KEYS[1])"));

#[async_trait]
impl Federation for RedisStore {
    async fn put_connector(&self, connector: ConnectorRecord) -> Result<(), StoreError> {
        let args = vec![connector.name.clone(), encode(CONNECTOR, &connector)?];
        self.redis.run::<()>(&SET_FIELD, vec![self.redis.index_key(CONNECTORS)], args).await
    }

    async fn connector(&self, name: &str) -> Result<Option<ConnectorRecord>, StoreError> {
        let raw: Option<String> =
            self.redis.run(&GET_FIELD, vec![self.redis.index_key(CONNECTORS)], vec![name.to_owned()]).await?;
        raw.map(|raw| decode(CONNECTOR, &raw)).transpose()
    }

    async fn connectors(&self) -> Result<Vec<ConnectorRecord>, StoreError> {
        let raw: Vec<String> = self.redis.run(&VALUES, vec![self.redis.index_key(CONNECTORS)], vec![]).await?;
        let mut connectors =
            raw.iter().map(|raw| decode(CONNECTOR, raw)).collect::<Result<Vec<ConnectorRecord>, _>>()?;
        connectors.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        Ok(connectors)
    }

    async fn delete_connector(&self, name: &str) -> Result<(), StoreError> {
        self.redis.run::<()>(&DELETE_FIELD, vec![self.redis.index_key(CONNECTORS)], vec![name.to_owned()]).await
    }

    async fn put_federated_user(&self, user: &FederatedUser, expires_at: u64) -> Result<(), StoreError> {
        self.redis.put_raw(FEDERATED, &user.user.subject, encode(FEDERATED, user)?, expires_at).await
    }

    async fn federated_user(&self, subject: &str) -> Result<Option<FederatedUser>, StoreError> {
        self.redis.get_json(FEDERATED, subject).await
    }
}
