//! The client registry and user directory in Redis, and the announcements that keep every
//! replica's [`Cached`](crate::store::Cached) copy current: each write publishes the keys
//! it changed, as a JSON [`DirectoryChange`], on `P:v1:changes`.

use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use fred::clients::SubscriberClient;
use fred::interfaces::{ClientLike, EventInterface, PubsubInterface, SetsInterface};
use fred::types::scripts::Script;
use tokio::sync::Notify;
use tokio::sync::broadcast::error::RecvError;

use super::RedisStore;
use super::connection::{Redis, encode, redis_error};
use crate::model::{ClientRecord, UserRecord};
use crate::store::cached::{DirectoryChange, Invalidations};
use crate::store::error::StoreError;
use crate::store::ports::Directory;

const CLIENTS: &str = "{clients}";
const CLIENT: &str = "{clients}:client";
const USERS: &str = "{users}";
const USER: &str = "{users}:user";
const SUBJECT: &str = "{users}:subject";
const CLAIM: &str = "{users}:claim";
const CHANGES: &str = "changes";

/// Stores client `ARGV[2]` (JSON `ARGV[1]`) in `KEYS[1]` and lists it in the set `KEYS[2]`.
static PUT_CLIENT: LazyLock<Script> =
    LazyLock::new(|| Script::from_lua("redis.call('SET', KEYS[1], ARGV[1]) redis.call('SADD', KEYS[2], ARGV[2])"));

/// Removes client `ARGV[1]` from `KEYS[1]` and from the set `KEYS[2]`.
static DELETE_CLIENT: LazyLock<Script> =
    LazyLock::new(|| Script::from_lua("redis.call('DEL', KEYS[1]) redis.call('SREM', KEYS[2], ARGV[1])"));

/// Stores user `ARGV[2]` (JSON `ARGV[1]`) in `KEYS[1]` and lists it in the set `KEYS[2]`;
/// drops the index entries it had (`KEYS[3]` up to `KEYS[2 + ARGV[3]]`: its previous subject
/// and claims) that still name it, then points the index entries it has now (the rest of
/// `KEYS`: its subject and claims) at it.
static PUT_USER: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(
        "redis.call('SET', KEYS[1], ARGV[1])
         redis.call('SADD', KEYS[2], ARGV[2])
         local previous = 2 + tonumber(ARGV[3])
         for i = 3, previous do
           if redis.call('GET', KEYS[i]) == ARGV[2] then redis.call('DEL', KEYS[i]) end
         end
         for i = previous + 1, #KEYS do redis.call('SET', KEYS[i], ARGV[2]) end",
    )
});

/// Removes user `ARGV[1]` from `KEYS[1]` and from the set `KEYS[2]`, and the index entries
/// in the rest of `KEYS` (its subject and claims) that still name it.
static DELETE_USER: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(
        "redis.call('DEL', KEYS[1])
         redis.call('SREM', KEYS[2], ARGV[1])
         for i = 3, #KEYS do
           if redis.call('GET', KEYS[i]) == ARGV[1] then redis.call('DEL', KEYS[i]) end
         end",
    )
});

/// The directory as Redis holds it, uncached.
pub(super) struct RedisDirectory {
    redis: Arc<Redis>,
}

impl RedisDirectory {
    pub(super) fn new(redis: Arc<Redis>) -> Self {
        Self { redis }
    }

    /// Tells every replica which keys changed.
    async fn announce(&self, change: DirectoryChange) -> Result<(), StoreError> {
        let message = encode(CHANGES, &change)?;
        let channel = self.redis.index_key(CHANGES);
        self.redis.pool.next().publish::<(), _, _>(channel, message).await.map_err(redis_error)
    }

    fn clients_key(&self) -> String {
        self.redis.index_key(CLIENTS)
    }

    fn users_key(&self) -> String {
        self.redis.index_key(USERS)
    }

    /// The index keys (subject, then claims) of the user stored under `username` now. An
    /// undecodable entry counts as absent, so that writing the user again repairs it;
    /// lookups by a stale subject or claim are refused by [`Directory::user_by_subject`] and
    /// [`Directory::user_claiming`] anyway.
    async fn stored_index_keys(&self, username: &str) -> Result<Vec<String>, StoreError> {
        match self.redis.get_json::<UserRecord>(USER, username).await {
            Ok(user) => Ok(user.map(|user| self.index_keys(&user)).unwrap_or_default()),
            Err(StoreError::Corrupt(_)) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// The index keys naming `user`: its subject, then each subject it claims.
    fn index_keys(&self, user: &UserRecord) -> Vec<String> {
        let claims = user.claimed_subjects.iter().map(|claimed| self.redis.key(CLAIM, claimed));
        std::iter::once(self.redis.key(SUBJECT, &user.subject)).chain(claims).collect()
    }

    /// The user an index entry names, if they still hold that entry (so an entry left
    /// behind by a concurrent change never resolves to the wrong person).
    async fn indexed_user(
        &self,
        prefix: &str,
        value: &str,
        holds: impl Fn(&UserRecord) -> bool,
    ) -> Result<Option<Arc<UserRecord>>, StoreError> {
        let Some(username) = self.redis.get_raw(prefix, value).await? else { return Ok(None) };
        let user: Option<UserRecord> = self.redis.get_json(USER, &username).await?;
        Ok(user.filter(|user| holds(user)).map(Arc::new))
    }
}

#[async_trait]
impl Directory for RedisDirectory {
    async fn put_client(&self, client: ClientRecord) -> Result<(), StoreError> {
        let keys = vec![self.redis.key(CLIENT, &client.client_id), self.clients_key()];
        let json = encode(CLIENT, &client)?;
        let client_id = client.client_id;
        self.redis.run::<()>(&PUT_CLIENT, keys, vec![json, client_id.clone()]).await?;
        self.announce(DirectoryChange::Client { client_id }).await
    }

    async fn client(&self, client_id: &str) -> Result<Option<Arc<ClientRecord>>, StoreError> {
        Ok(self.redis.get_json(CLIENT, client_id).await?.map(Arc::new))
    }

    async fn delete_client(&self, client_id: &str) -> Result<(), StoreError> {
        let keys = vec![self.redis.key(CLIENT, client_id), self.clients_key()];
        self.redis.run::<()>(&DELETE_CLIENT, keys, vec![client_id.to_owned()]).await?;
        self.announce(DirectoryChange::Client { client_id: client_id.to_owned() }).await
    }

    async fn client_ids(&self) -> Result<Vec<String>, StoreError> {
        let mut ids: Vec<String> = self.redis.pool.smembers(self.clients_key()).await.map_err(redis_error)?;
        ids.sort_unstable();
        Ok(ids)
    }

    async fn put_user(&self, user: UserRecord) -> Result<(), StoreError> {
        let previous = self.stored_index_keys(&user.username).await?;
        let redis = &self.redis;
        let previous_count = previous.len().to_string();
        let mut keys = vec![redis.key(USER, &user.username), self.users_key()];
        keys.extend(previous);
        keys.extend(self.index_keys(&user));
        let json = encode(USER, &user)?;
        let change = DirectoryChange::User { username: user.username.clone(), subject: Some(user.subject) };
        redis.run::<()>(&PUT_USER, keys, vec![json, user.username, previous_count]).await?;
        self.announce(change).await
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<Arc<UserRecord>>, StoreError> {
        Ok(self.redis.get_json(USER, username).await?.map(Arc::new))
    }

    async fn user_by_subject(&self, subject: &str) -> Result<Option<Arc<UserRecord>>, StoreError> {
        self.indexed_user(SUBJECT, subject, |user| user.subject == subject).await
    }

    async fn user_claiming(&self, subject: &str) -> Result<Option<Arc<UserRecord>>, StoreError> {
        self.indexed_user(CLAIM, subject, |user| user.claimed_subjects.iter().any(|claimed| claimed == subject)).await
    }

    async fn delete_user(&self, username: &str) -> Result<(), StoreError> {
        let mut keys = vec![self.redis.key(USER, username), self.users_key()];
        keys.extend(self.stored_index_keys(username).await?);
        self.redis.run::<()>(&DELETE_USER, keys, vec![username.to_owned()]).await?;
        self.announce(DirectoryChange::User { username: username.to_owned(), subject: None }).await
    }

    async fn usernames(&self) -> Result<Vec<String>, StoreError> {
        let mut names: Vec<String> = self.redis.pool.smembers(self.users_key()).await.map_err(redis_error)?;
        names.sort_unstable();
        Ok(names)
    }
}

/// The store's directory is this replica's copy in front of [`RedisDirectory`].
#[async_trait]
impl Directory for RedisStore {
    async fn put_client(&self, client: ClientRecord) -> Result<(), StoreError> {
        self.directory.put_client(client).await
    }

    async fn client(&self, client_id: &str) -> Result<Option<Arc<ClientRecord>>, StoreError> {
        self.directory.client(client_id).await
    }

    async fn delete_client(&self, client_id: &str) -> Result<(), StoreError> {
        self.directory.delete_client(client_id).await
    }

    async fn client_ids(&self) -> Result<Vec<String>, StoreError> {
        self.directory.client_ids().await
    }

    async fn put_user(&self, user: UserRecord) -> Result<(), StoreError> {
        self.directory.put_user(user).await
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<Arc<UserRecord>>, StoreError> {
        self.directory.user_by_username(username).await
    }

    async fn user_by_subject(&self, subject: &str) -> Result<Option<Arc<UserRecord>>, StoreError> {
        self.directory.user_by_subject(subject).await
    }

    async fn user_claiming(&self, subject: &str) -> Result<Option<Arc<UserRecord>>, StoreError> {
        self.directory.user_claiming(subject).await
    }

    async fn delete_user(&self, username: &str) -> Result<(), StoreError> {
        self.directory.delete_user(username).await
    }

    async fn usernames(&self) -> Result<Vec<String>, StoreError> {
        self.directory.usernames().await
    }
}

/// Subscribes to the announcements of `prefix` and delivers them to `copy`: the changed
/// keys of each, and everything when one cannot be read or may have been missed (the
/// subscription reconnected, or messages arrived faster than they were handled). A
/// reconnect is signalled on `reconnected` too: Redis may have come back without its data.
pub(super) async fn deliver_changes(
    subscriber: &SubscriberClient,
    prefix: &str,
    copy: Invalidations,
    reconnected: Arc<Notify>,
) -> Result<(), StoreError> {
    let mut messages = subscriber.message_rx();
    let mut reconnects = subscriber.reconnect_rx();
    subscriber.init().await.map_err(redis_error)?;
    let _resubscribe = subscriber.manage_subscriptions();
    subscriber.subscribe(format!("{prefix}:v1:{CHANGES}")).await.map_err(redis_error)?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                message = messages.recv() => match message {
                    Ok(message) => {
                        let change = message.value.convert::<String>().ok().and_then(|raw| serde_json::from_str(&raw).ok());
                        match change {
                            Some(change) => copy.forget(&change),
                            None => copy.forget_all(),
                        }
                    }
                    Err(RecvError::Lagged(_)) => copy.forget_all(),
                    Err(RecvError::Closed) => break,
                },
                reconnect = reconnects.recv() => match reconnect {
                    Ok(_) | Err(RecvError::Lagged(_)) => {
                        copy.forget_all();
                        reconnected.notify_one();
                    }
                    Err(RecvError::Closed) => break,
                },
            }
        }
    });
    Ok(())
}
