//! The client_credentials hot path writes nothing to the store: revocation is a deny-list
//! consulted on use, not a record written on issue.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::fixtures::m2m_client;
use arc_swap::ArcSwap;
use async_trait::async_trait;
use portcullis::clock::Clock;
use portcullis::crd::SigningAlgorithm;
use portcullis::keys::{KeyPair, KeyPhase, Keyring};
use portcullis::model::{AuthorizationCode, ClientRecord, Grant, Interaction, RefreshToken, Session, UserRecord};
use portcullis::protocol::scope::Scope;
use portcullis::provider::{Provider, ProviderConfig, RegistrationPolicy, app};
use portcullis::store::{Consumed, MemoryStore, Store, StoreError};

/// Delegates to a memory store and counts every write.
struct CountingStore {
    inner: MemoryStore,
    writes: AtomicUsize,
}

impl CountingStore {
    fn wrote(&self) {
        self.writes.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl Store for CountingStore {
    async fn put_client(&self, client: ClientRecord) -> Result<(), StoreError> {
        self.wrote();
        self.inner.put_client(client).await
    }
    async fn client(&self, client_id: &str) -> Result<Option<Arc<ClientRecord>>, StoreError> {
        self.inner.client(client_id).await
    }
    async fn delete_client(&self, client_id: &str) -> Result<(), StoreError> {
        self.wrote();
        self.inner.delete_client(client_id).await
    }
    async fn client_ids(&self) -> Result<Vec<String>, StoreError> {
        self.inner.client_ids().await
    }
    async fn put_user(&self, user: UserRecord) -> Result<(), StoreError> {
        self.wrote();
        self.inner.put_user(user).await
    }
    async fn user_by_username(&self, username: &str) -> Result<Option<Arc<UserRecord>>, StoreError> {
        self.inner.user_by_username(username).await
    }
    async fn user_by_subject(&self, subject: &str) -> Result<Option<Arc<UserRecord>>, StoreError> {
        self.inner.user_by_subject(subject).await
    }
    async fn delete_user(&self, username: &str) -> Result<(), StoreError> {
        self.wrote();
        self.inner.delete_user(username).await
    }
    async fn revoke_token(&self, jti: &str, expires_at: u64) -> Result<(), StoreError> {
        self.wrote();
        self.inner.revoke_token(jti, expires_at).await
    }
    async fn is_token_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        self.inner.is_token_revoked(jti).await
    }
    async fn put_session(&self, session: &Session, expires_at: u64) -> Result<(), StoreError> {
        self.wrote();
        self.inner.put_session(session, expires_at).await
    }
    async fn session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        self.inner.session(id).await
    }
    async fn delete_session(&self, id: &str) -> Result<(), StoreError> {
        self.wrote();
        self.inner.delete_session(id).await
    }
    async fn active_sessions(&self) -> Result<u64, StoreError> {
        self.inner.active_sessions().await
    }
    async fn put_interaction(&self, interaction: &Interaction, expires_at: u64) -> Result<(), StoreError> {
        self.wrote();
        self.inner.put_interaction(interaction, expires_at).await
    }
    async fn interaction(&self, id: &str) -> Result<Option<Interaction>, StoreError> {
        self.inner.interaction(id).await
    }
    async fn delete_interaction(&self, id: &str) -> Result<(), StoreError> {
        self.wrote();
        self.inner.delete_interaction(id).await
    }
    async fn put_code(&self, code_hash: &str, code: &AuthorizationCode, expires_at: u64) -> Result<(), StoreError> {
        self.wrote();
        self.inner.put_code(code_hash, code, expires_at).await
    }
    async fn consume_code(&self, code_hash: &str) -> Result<Consumed<AuthorizationCode>, StoreError> {
        self.wrote();
        self.inner.consume_code(code_hash).await
    }
    async fn put_refresh_token(&self, token_hash: &str, token: &RefreshToken) -> Result<(), StoreError> {
        self.wrote();
        self.inner.put_refresh_token(token_hash, token).await
    }
    async fn consume_refresh_token(&self, token_hash: &str) -> Result<Consumed<RefreshToken>, StoreError> {
        self.wrote();
        self.inner.consume_refresh_token(token_hash).await
    }
    async fn peek_refresh_token(&self, token_hash: &str) -> Result<Consumed<RefreshToken>, StoreError> {
        self.inner.peek_refresh_token(token_hash).await
    }
    async fn put_grant(&self, grant: &Grant) -> Result<(), StoreError> {
        self.wrote();
        self.inner.put_grant(grant).await
    }
    async fn update_grant(&self, grant: &Grant) -> Result<bool, StoreError> {
        self.wrote();
        self.inner.update_grant(grant).await
    }
    async fn grant(&self, id: &str) -> Result<Option<Grant>, StoreError> {
        self.inner.grant(id).await
    }
    async fn revoke_grant(&self, id: &str) -> Result<Option<Grant>, StoreError> {
        self.wrote();
        self.inner.revoke_grant(id).await
    }
    async fn put_consent(
        &self,
        subject: &str,
        client_id: &str,
        scope: &Scope,
        expires_at: u64,
    ) -> Result<(), StoreError> {
        self.wrote();
        self.inner.put_consent(subject, client_id, scope, expires_at).await
    }
    async fn consent(&self, subject: &str, client_id: &str) -> Result<Option<Scope>, StoreError> {
        self.inner.consent(subject, client_id).await
    }
    async fn claim(&self, name: &str, value: &str) -> Result<String, StoreError> {
        self.wrote();
        self.inner.claim(name, value).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
    async fn increment_counter(&self, key: &str, expires_at: u64) -> Result<u32, StoreError> {
        self.wrote();
        self.inner.increment_counter(key, expires_at).await
    }
    async fn counter(&self, key: &str) -> Result<u32, StoreError> {
        self.inner.counter(key).await
    }
    async fn clear_counter(&self, key: &str) -> Result<(), StoreError> {
        self.wrote();
        self.inner.clear_counter(key).await
    }
}

#[tokio::test]
async fn issuing_client_credentials_tokens_writes_nothing_to_the_store() {
    let store = Arc::new(CountingStore { inner: MemoryStore::new(Clock::system()), writes: AtomicUsize::new(0) });
    store.put_client(m2m_client("api")).await.unwrap();
    let keyring =
        Keyring::new(vec![(KeyPair::generate(SigningAlgorithm::ES256, None).unwrap().0, KeyPhase::Active)]).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let config = ProviderConfig {
        issuer: base.clone(),
        access_token_ttl: 60,
        refresh_token_ttl: 3600,
        session_ttl: 3600,
        registration: RegistrationPolicy::Disabled,
        registration_scopes: Scope::default(),
    };
    let shared: Arc<dyn Store> = store.clone();
    let provider = Provider::new(config, shared, Arc::new(ArcSwap::from_pointee(keyring)), Clock::system()).unwrap();
    tokio::spawn(async move { axum::serve(listener, app(Arc::new(provider))).await });
    let writes_before = store.writes.load(Ordering::SeqCst);
    let http = reqwest::Client::new();
    for _ in 0..20 {
        let response = http
            .post(format!("{base}/token"))
            .basic_auth("m2m", Some("m2m-secret"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    assert_eq!(store.writes.load(Ordering::SeqCst), writes_before, "no store write per issued token");
}
