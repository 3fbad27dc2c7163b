//! The contract every `Store` implementation must keep. Each check is a function over
//! `&dyn Store` and a [`Time`], so the Redis store runs the very same suite.

#[path = "support/redis_server.rs"]
mod redis_server;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use portcullis::clock::Clock;
use portcullis::crd::{GrantType, TokenEndpointAuthMethod};
use portcullis::metrics::Metrics;
use portcullis::model::{AuthorizationCode, ClientRecord, Grant, RefreshToken, Session, UserRecord};
use portcullis::protocol::scope::Scope;
use portcullis::store::{Consumed, InstrumentedStore, MemoryStore, RedisConfig, RedisStore, Store, StoreError};
use redis_server::RedisServer;

/// How a check lets time pass. Expiries in the checks are two seconds away so that waiting
/// them out for real stays cheap, yet an entry checked right after writing is still live
/// (`now` is whole seconds, so a real expiry is between one and two seconds away).
enum Time {
    /// The memory store reads this counter; passing time is a jump.
    Manual(Arc<AtomicU64>),
    /// Redis expires keys by its own clock; passing time is a sleep.
    Real,
}

impl Time {
    fn now(&self) -> u64 {
        match self {
            Time::Manual(now) => now.load(Ordering::SeqCst),
            Time::Real => Clock::system().now(),
        }
    }

    async fn advance(&self, seconds: u64) {
        match self {
            Time::Manual(now) => {
                now.fetch_add(seconds, Ordering::SeqCst);
            }
            Time::Real => tokio::time::sleep(Duration::from_secs(seconds) + Duration::from_millis(100)).await,
        }
    }
}

fn client(id: &str) -> ClientRecord {
    ClientRecord {
        client_id: id.into(),
        client_name: Some("Client".into()),
        secret_hash: None,
        auth_method: TokenEndpointAuthMethod::None,
        redirect_uris: vec!["https://app.example/cb".into()],
        post_logout_redirect_uris: vec![],
        grant_types: vec![GrantType::AuthorizationCode],
        scopes: Scope::parse("openid profile").unwrap(),
        roles: vec![],
        audience: vec![],
        access_token_ttl: None,
        require_pkce: true,
        skip_consent: false,
        registration: None,
    }
}

fn user(username: &str, subject: &str) -> UserRecord {
    UserRecord {
        subject: subject.into(),
        username: username.into(),
        email: None,
        email_verified: false,
        name: None,
        given_name: None,
        family_name: None,
        groups: vec![],
        roles: vec![],
        client_roles: BTreeMap::new(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".into(),
        disabled: false,
    }
}

async fn clients_are_upserted_found_listed_and_deleted(store: &dyn Store) {
    assert!(store.client("a").await.unwrap().is_none());
    store.put_client(client("a")).await.unwrap();
    store.put_client(client("b")).await.unwrap();
    let mut changed = client("a");
    changed.client_name = Some("Renamed".into());
    store.put_client(changed.clone()).await.unwrap();
    assert_eq!(*store.client("a").await.unwrap().unwrap(), changed);
    assert_eq!(store.client_ids().await.unwrap(), vec!["a".to_owned(), "b".to_owned()]);
    store.delete_client("a").await.unwrap();
    store.delete_client("a").await.unwrap();
    assert!(store.client("a").await.unwrap().is_none());
}

async fn users_are_found_by_username_and_subject(store: &dyn Store) {
    store.put_user(user("alice", "sub-1")).await.unwrap();
    assert_eq!(store.user_by_username("alice").await.unwrap().unwrap().subject, "sub-1");
    assert_eq!(store.user_by_subject("sub-1").await.unwrap().unwrap().username, "alice");
    store.put_user(user("alice", "sub-2")).await.unwrap();
    assert!(store.user_by_subject("sub-1").await.unwrap().is_none(), "the old subject index is dropped");
    assert_eq!(store.user_by_subject("sub-2").await.unwrap().unwrap().username, "alice");
    store.delete_user("alice").await.unwrap();
    assert!(store.user_by_username("alice").await.unwrap().is_none());
    assert!(store.user_by_subject("sub-2").await.unwrap().is_none());
    store.put_user(user("ann", "s-1")).await.unwrap();
    store.put_user(user("ben", "s-2")).await.unwrap();
    store.put_user(user("ann", "s-2")).await.unwrap();
    store.put_user(user("ben", "s-1")).await.unwrap();
    assert_eq!(store.user_by_subject("s-1").await.unwrap().unwrap().username, "ben", "swapped subjects resolve");
    assert_eq!(store.user_by_subject("s-2").await.unwrap().unwrap().username, "ann");
}

async fn revoked_tokens_stay_denied_until_they_expire(store: &dyn Store, time: &Time) {
    let t = time.now();
    store.revoke_token("jti-1", t + 2).await.unwrap();
    store.revoke_token("jti-old", t).await.unwrap();
    assert!(store.is_token_revoked("jti-1").await.unwrap());
    assert!(!store.is_token_revoked("jti-2").await.unwrap());
    assert!(!store.is_token_revoked("jti-old").await.unwrap(), "an already expired token needs no entry");
    time.advance(2).await;
    assert!(!store.is_token_revoked("jti-1").await.unwrap(), "the entry lives exactly as long as the token");
}

fn code(grant_id: &str) -> AuthorizationCode {
    AuthorizationCode {
        grant_id: grant_id.into(),
        client_id: "a".into(),
        redirect_uri: "https://app.example/cb".into(),
        scope: Scope::parse("openid").unwrap(),
        nonce: Some("n".into()),
        code_challenge: None,
        subject: "sub-1".into(),
        auth_time: 1,
        session_id: "sid".into(),
    }
}

async fn codes_are_consumed_exactly_once(store: &dyn Store, time: &Time) {
    let t = time.now();
    store.put_code("h1", &code("g1"), t + 60).await.unwrap();
    assert_eq!(store.consume_code("h1").await.unwrap(), Consumed::Fresh(code("g1")));
    let replay = store.consume_code("h1").await.unwrap();
    assert!(used_since(&replay, &code("g1"), t), "a replay is recognised, with the time of first use: {replay:?}");
    assert_eq!(store.consume_code("unknown").await.unwrap(), Consumed::Unknown);
    store.put_code("h2", &code("g2"), t + 2).await.unwrap();
    time.advance(2).await;
    assert_eq!(store.consume_code("h2").await.unwrap(), Consumed::Unknown, "expired codes are gone");
}

async fn refresh_tokens_can_be_peeked_and_consumed_once(store: &dyn Store, time: &Time) {
    let t = time.now();
    let token = RefreshToken {
        grant_id: "g".into(),
        client_id: "a".into(),
        scope: Scope::parse("openid").unwrap(),
        expires_at: t + 100,
    };
    store.put_refresh_token("r1", &token).await.unwrap();
    assert_eq!(store.peek_refresh_token("r1").await.unwrap(), Consumed::Fresh(token.clone()), "peeking uses nothing");
    assert_eq!(store.consume_refresh_token("r1").await.unwrap(), Consumed::Fresh(token.clone()));
    assert!(used_since(&store.peek_refresh_token("r1").await.unwrap(), &token, t));
    assert!(used_since(&store.consume_refresh_token("r1").await.unwrap(), &token, t));
}

/// Whether `consumed` is a reuse of `value` first used at or after `since` (and not in the future).
fn used_since<T: PartialEq>(consumed: &Consumed<T>, value: &T, since: u64) -> bool {
    matches!(consumed, Consumed::Reused(v, used_at) if v == value && *used_at >= since && *used_at <= since + 1)
}

async fn claims_keep_the_first_value(store: &dyn Store) {
    assert_eq!(store.claim("client-secret:a", "first").await.unwrap(), "first");
    assert_eq!(store.claim("client-secret:a", "second").await.unwrap(), "first", "a later claim gets the kept value");
    assert_eq!(store.claim("client-secret:b", "other").await.unwrap(), "other");
    store.ping().await.unwrap();
}

async fn concurrent_consumers_get_one_fresh_code(store: Arc<dyn Store>, time: &Time) {
    store.put_code("race", &code("g"), time.now() + 60).await.unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.consume_code("race").await.unwrap() })
        })
        .collect();
    let mut fresh = 0;
    for task in tasks {
        if matches!(task.await.unwrap(), Consumed::Fresh(_)) {
            fresh += 1;
        }
    }
    assert_eq!(fresh, 1);
}

async fn grants_sessions_and_consents_expire_and_can_be_removed(store: &dyn Store, time: &Time) {
    let t = time.now();
    let grant = Grant {
        id: "g".into(),
        client_id: "a".into(),
        subject: "s".into(),
        scope: Scope::parse("openid").unwrap(),
        auth_time: t,
        session_id: "sid".into(),
        expires_at: t + 10,
        access_tokens: vec![("jti".into(), t + 5)],
    };
    store.put_grant(&grant).await.unwrap();
    assert_eq!(store.grant("g").await.unwrap(), Some(grant.clone()));
    let updated = Grant { access_tokens: vec![("jti".into(), t + 5), ("jti-2".into(), t + 6)], ..grant.clone() };
    assert!(store.update_grant(&updated).await.unwrap());
    assert_eq!(store.grant("g").await.unwrap(), Some(updated.clone()));
    assert_eq!(store.revoke_grant("g").await.unwrap(), Some(updated.clone()), "revoking hands over the tokens");
    assert_eq!(store.grant("g").await.unwrap(), None);
    assert_eq!(store.revoke_grant("g").await.unwrap(), None);
    assert!(!store.update_grant(&updated).await.unwrap(), "a revoked grant is not brought back");
    assert_eq!(store.grant("g").await.unwrap(), None);

    let session =
        Session { id: "secret".into(), sid: "sid".into(), subject: "s".into(), auth_time: t, csrf_token: "c".into() };
    store.put_session(&session, t + 10).await.unwrap();
    assert_eq!(store.session("secret").await.unwrap(), Some(session));
    store.delete_session("secret").await.unwrap();
    assert_eq!(store.session("secret").await.unwrap(), None);

    let scope = Scope::parse("openid profile").unwrap();
    store.put_consent("s", "a", &scope, t + 2).await.unwrap();
    assert_eq!(store.consent("s", "a").await.unwrap(), Some(scope));
    assert_eq!(store.consent("s", "b").await.unwrap(), None, "consent is per client");
    assert_eq!(store.consent("a", "s").await.unwrap(), None);
    time.advance(2).await;
    assert_eq!(store.consent("s", "a").await.unwrap(), None, "consent expires");
}

async fn counters_count_within_their_window(store: &dyn Store, time: &Time) {
    let t = time.now();
    assert_eq!(store.counter("user:alice").await.unwrap(), 0);
    assert_eq!(store.increment_counter("user:alice", t + 10).await.unwrap(), 1);
    assert_eq!(store.increment_counter("user:alice", t + 10).await.unwrap(), 2);
    assert_eq!(store.counter("user:alice").await.unwrap(), 2);
    store.clear_counter("user:alice").await.unwrap();
    assert_eq!(store.counter("user:alice").await.unwrap(), 0);
    store.increment_counter("user:bob", t + 2).await.unwrap();
    time.advance(2).await;
    assert_eq!(store.counter("user:bob").await.unwrap(), 0, "the window ends");
    assert_eq!(store.increment_counter("user:bob", t + 20).await.unwrap(), 1, "a new window starts at 1");
}

async fn active_sessions_counts_live_sessions_only(store: &dyn Store, time: &Time) {
    let t = time.now();
    assert_eq!(store.active_sessions().await.unwrap(), 0);
    let session = |id: &str| Session {
        id: id.into(),
        sid: format!("sid-{id}"),
        subject: "s".into(),
        auth_time: t,
        csrf_token: "c".into(),
    };
    store.put_session(&session("short"), t + 2).await.unwrap();
    store.put_session(&session("long"), t + 10).await.unwrap();
    store.put_session(&session("gone"), t + 10).await.unwrap();
    store.put_session(&session("born-expired"), t).await.unwrap();
    assert_eq!(store.active_sessions().await.unwrap(), 3);
    store.delete_session("gone").await.unwrap();
    assert_eq!(store.active_sessions().await.unwrap(), 2, "a logout ends the count");
    time.advance(2).await;
    assert_eq!(store.active_sessions().await.unwrap(), 1, "an expired session no longer counts");
    store.delete_session("long").await.unwrap();
    assert_eq!(store.active_sessions().await.unwrap(), 0);
}

/// Every contract check, in order, against one store.
async fn keeps_the_contract(store: &dyn Store, time: &Time) {
    clients_are_upserted_found_listed_and_deleted(store).await;
    users_are_found_by_username_and_subject(store).await;
    revoked_tokens_stay_denied_until_they_expire(store, time).await;
    codes_are_consumed_exactly_once(store, time).await;
    refresh_tokens_can_be_peeked_and_consumed_once(store, time).await;
    claims_keep_the_first_value(store).await;
    grants_sessions_and_consents_expire_and_can_be_removed(store, time).await;
    counters_count_within_their_window(store, time).await;
    active_sessions_counts_live_sessions_only(store, time).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_keeps_the_contract() {
    let now = Arc::new(AtomicU64::new(1_000_000));
    let store = Arc::new(MemoryStore::new(Clock::manual(Arc::clone(&now))));
    let time = Time::Manual(now);
    keeps_the_contract(store.as_ref(), &time).await;
    store.purge_expired();
    concurrent_consumers_get_one_fresh_code(store, &time).await;
}

/// The metrics wrapper the provider puts around every store changes no behaviour.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instrumented_store_keeps_the_contract() {
    let now = Arc::new(AtomicU64::new(1_000_000));
    let inner: Arc<dyn Store> = Arc::new(MemoryStore::new(Clock::manual(Arc::clone(&now))));
    let metrics = Metrics::new();
    let store: Arc<dyn Store> = Arc::new(InstrumentedStore::new(inner, &metrics));
    let time = Time::Manual(now);
    keeps_the_contract(store.as_ref(), &time).await;
    concurrent_consumers_get_one_fresh_code(store, &time).await;
}

const REDIS_PASSWORD: &str = "contract-secret";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_store_keeps_the_contract() {
    let server = RedisServer::start(REDIS_PASSWORD);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    let config = RedisConfig {
        key_prefix: format!("contract-{}-{nanos}", std::process::id()),
        ..RedisConfig::new(server.url(REDIS_PASSWORD))
    };
    let wrong_password = RedisConfig { url: server.url("wrong"), ..config.clone() };
    assert!(
        matches!(RedisStore::connect(wrong_password).await, Err(StoreError::Unavailable(_))),
        "refused credentials fail the connect"
    );
    let store: Arc<dyn Store> = Arc::new(RedisStore::connect(config).await.unwrap());
    let time = Time::Real;
    keeps_the_contract(store.as_ref(), &time).await;
    concurrent_consumers_get_one_fresh_code(store, &time).await;
}
