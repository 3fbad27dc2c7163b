//! Device authorizations (RFC 8628) in Redis: `device:{devices}:code:<hash>` holds the
//! record (until a while after the authorization expires), `device:{devices}:user:<hash>`
//! the device code hash its user code points to (until it expires). The `{devices}` hash tag keeps the pair in one
//! slot, so the script that writes them together stays legal on a cluster.

use std::sync::LazyLock;

use async_trait::async_trait;
use fred::types::scripts::Script;

use super::RedisStore;
use super::connection::encode;
use crate::model::DeviceGrant;
use crate::store::error::StoreError;
use crate::store::ports::DeviceGrants;

const DEVICE_CODE: &str = "device:{devices}:code";
const USER_CODE: &str = "device:{devices}:user";

/// Points user code `KEYS[1]` to device code hash `ARGV[1]` until `ARGV[3]` and stores
/// record `ARGV[2]` in `KEYS[2]` until `ARGV[4]`, unless the user code is taken: 1 when
/// stored, 0 when taken.
static PUT: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(
        "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EXAT', ARGV[3]) then
           redis.call('SET', KEYS[2], ARGV[2], 'EXAT', ARGV[4])
           return 1
         end
         return 0",
    )
});

/// Replaces the value of `KEYS[1]` by `ARGV[2]`, keeping its expiry, when it is exactly
/// `ARGV[1]`: 1 when replaced, 0 otherwise.
static SWAP: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then
           redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
           return 1
         end
         return 0",
    )
});

#[async_trait]
impl DeviceGrants for RedisStore {
    async fn put_device_grant(
        &self,
        device_code_hash: &str,
        user_code_hash: &str,
        grant: &DeviceGrant,
        kept_until: u64,
    ) -> Result<bool, StoreError> {
        if grant.expires_at <= self.redis.clock.now() {
            return Ok(true);
        }
        let keys = vec![self.redis.key(USER_CODE, user_code_hash), self.redis.key(DEVICE_CODE, device_code_hash)];
        let args = vec![
            device_code_hash.to_owned(),
            encode(DEVICE_CODE, grant)?,
            grant.expires_at.to_string(),
            kept_until.max(grant.expires_at).to_string(),
        ];
        let stored: i64 = self.redis.run(&PUT, keys, args).await?;
        Ok(stored == 1)
    }

    async fn device_grant(&self, device_code_hash: &str) -> Result<Option<DeviceGrant>, StoreError> {
        self.redis.get_json(DEVICE_CODE, device_code_hash).await
    }

    async fn device_code_of_user_code(&self, user_code_hash: &str) -> Result<Option<String>, StoreError> {
        self.redis.get_raw(USER_CODE, user_code_hash).await
    }

    async fn swap_device_grant(
        &self,
        device_code_hash: &str,
        expected: &DeviceGrant,
        next: &DeviceGrant,
    ) -> Result<bool, StoreError> {
        let keys = vec![self.redis.key(DEVICE_CODE, device_code_hash)];
        let args = vec![encode(DEVICE_CODE, expected)?, encode(DEVICE_CODE, next)?];
        let swapped: i64 = self.redis.run(&SWAP, keys, args).await?;
        Ok(swapped == 1)
    }
}
