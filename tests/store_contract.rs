//! The contract every `Store` implementation must keep. Each check is a function over
//! `&dyn Store`, so the Redis store runs the very same suite.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use portcullis::clock::Clock;
use portcullis::crd::{GrantType, TokenEndpointAuthMethod};
use portcullis::model::{ClientRecord, UserRecord};
use portcullis::protocol::scope::Scope;
use portcullis::store::{MemoryStore, Store};

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
}

async fn revoked_tokens_stay_denied_until_they_expire(store: &dyn Store, now: &AtomicU64) {
    let t = now.load(Ordering::SeqCst);
    store.revoke_token("jti-1", t + 10).await.unwrap();
    store.revoke_token("jti-old", t).await.unwrap();
    assert!(store.is_token_revoked("jti-1").await.unwrap());
    assert!(!store.is_token_revoked("jti-2").await.unwrap());
    assert!(!store.is_token_revoked("jti-old").await.unwrap(), "an already expired token needs no entry");
    now.store(t + 10, Ordering::SeqCst);
    assert!(!store.is_token_revoked("jti-1").await.unwrap(), "the entry lives exactly as long as the token");
}

#[tokio::test]
async fn memory_store_keeps_the_contract() {
    let now = Arc::new(AtomicU64::new(1_000_000));
    let store = MemoryStore::new(Clock::manual(Arc::clone(&now)));
    clients_are_upserted_found_listed_and_deleted(&store).await;
    users_are_found_by_username_and_subject(&store).await;
    revoked_tokens_stay_denied_until_they_expire(&store, &now).await;
    store.purge_expired();
}
