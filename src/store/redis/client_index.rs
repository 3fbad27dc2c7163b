//! [`ClientIndex`] on Redis: per client, one sorted set `P:v1:client-index:<client_id>` of
//! what it holds, its grants (member `g:<grant id>`) and the subjects whose consent it
//! holds (member `c:<subject>`), each scored by its expiry. A member is written in the
//! pipeline that writes what it indexes ([`super::INDEX_BY_EXPIRY`]), so it costs no round
//! trip of its own, and a write drops only the members expired by then (`ZREMRANGEBYSCORE`,
//! never a walk of the whole set: a busy client holds many grants). A deleted consent
//! leaves the index with it; a revoked grant keeps its member until it expires, so a read
//! checks that each grant still exists (one more round trip, on the read only).

use std::sync::LazyLock;

use async_trait::async_trait;
use fred::clients::{Client, Pipeline};
use fred::types::scripts::Script;

use super::connection::Redis;
use super::{GRANT, INDEX_BY_EXPIRY, RedisStore, UNINDEX_MEMBER};
use crate::model::Grant;
use crate::store::error::StoreError;
use crate::store::ports::{ClientHoldings, ClientIndex};

const CLIENT_INDEX: &str = "client-index";

/// The member prefixes of grants and of consents in a client's index.
const GRANT_MEMBER: &str = "g:";
const CONSENT_MEMBER: &str = "c:";

/// The members of the sorted set `KEYS[1]` scored after `ARGV[1]` (now).
static LIVE_MEMBERS: LazyLock<Script> =
    LazyLock::new(|| Script::from_lua("return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')"));

impl Redis {
    /// Queues the index entry of `grant` (living until its `expires_at`) in `pipeline`.
    pub(super) async fn index_client_grant(
        &self,
        pipeline: &Pipeline<Client>,
        grant: &Grant,
        now: u64,
    ) -> Result<(), StoreError> {
        let args = vec![grant.expires_at.to_string(), format!("{GRANT_MEMBER}{}", grant.id), now.to_string()];
        self.eval_in(pipeline, INDEX_BY_EXPIRY, &self.key(CLIENT_INDEX, &grant.client_id), args).await
    }

    /// Queues the index entry of `subject`'s consent to `client_id` (living until
    /// `expires_at`) in `pipeline`.
    pub(super) async fn index_client_consent(
        &self,
        pipeline: &Pipeline<Client>,
        client_id: &str,
        subject: &str,
        expires_at: u64,
        now: u64,
    ) -> Result<(), StoreError> {
        let args = vec![expires_at.to_string(), format!("{CONSENT_MEMBER}{subject}"), now.to_string()];
        self.eval_in(pipeline, INDEX_BY_EXPIRY, &self.key(CLIENT_INDEX, client_id), args).await
    }

    /// Queues the removal of `subject`'s consent from `client_id`'s index in `pipeline`.
    pub(super) async fn unindex_client_consent(
        &self,
        pipeline: &Pipeline<Client>,
        client_id: &str,
        subject: &str,
    ) -> Result<(), StoreError> {
        let args = vec![format!("{CONSENT_MEMBER}{subject}")];
        self.eval_in(pipeline, UNINDEX_MEMBER, &self.key(CLIENT_INDEX, client_id), args).await
    }
}

#[async_trait]
impl ClientIndex for RedisStore {
    async fn client_holdings(&self, client_id: &str) -> Result<ClientHoldings, StoreError> {
        let now = self.redis.clock.now().to_string();
        let key = self.redis.key(CLIENT_INDEX, client_id);
        let members: Vec<String> = self.redis.run(&LIVE_MEMBERS, vec![key], vec![now]).await?;
        let mut holdings = ClientHoldings::default();
        let mut grants = Vec::new();
        for member in members {
            if let Some(grant_id) = member.strip_prefix(GRANT_MEMBER) {
                grants.push(grant_id.to_owned());
            } else if let Some(subject) = member.strip_prefix(CONSENT_MEMBER) {
                holdings.consents.push(subject.to_owned());
            } else {
                return Err(StoreError::Corrupt(format!("an undecodable member in the index of client {client_id}")));
            }
        }
        let live = self.redis.exist(GRANT, grants.iter().map(String::as_str)).await?;
        holdings.grants =
            grants.into_iter().zip(live).filter_map(|(grant_id, live)| live.then_some(grant_id)).collect();
        holdings.grants.sort();
        holdings.consents.sort();
        Ok(holdings)
    }
}
