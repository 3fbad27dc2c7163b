//! Store round trips on the hot paths, counted through a store wrapper: client_credentials
//! costs none (revocation is a deny-list consulted on use, not a record written on issue),
//! validating an access token (userinfo, introspection) one deny-list check. Client and
//! user lookups are counted apart: `serve` answers them from each replica's directory
//! cache (tests/replicas.rs counts the real Redis commands).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::fixtures::m2m_client;
use arc_swap::ArcSwap;
use async_trait::async_trait;
use portcullis::clock::Clock;
use portcullis::crd::SigningAlgorithm;
use portcullis::keys::{JwtType, KeyPair, KeyPhase, Keyring, SharedKeyring};
use portcullis::model::{AuthorizationCode, ClientRecord, Grant, Interaction, RefreshToken, Session, UserRecord};
use portcullis::protocol::claims::{AccessTokenClaims, Audience};
use portcullis::protocol::scope::Scope;
use portcullis::provider::{Provider, ProviderConfig, RegistrationPolicy, app};
use portcullis::store::{Consumed, MemoryStore, Store, StoreError};

/// Delegates to a memory store and counts every call: writes, reads of short-lived state
/// (each a Redis round trip in `serve`), and directory lookups (clients, users).
struct CountingStore {
    inner: MemoryStore,
    writes: AtomicUsize,
    state_reads: AtomicUsize,
    directory_reads: AtomicUsize,
}

/// What a run of requests cost the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Calls {
    writes: usize,
    state_reads: usize,
    directory_reads: usize,
}

impl CountingStore {
    fn new() -> Self {
        Self {
            inner: MemoryStore::new(Clock::system()),
            writes: AtomicUsize::new(0),
            state_reads: AtomicUsize::new(0),
            directory_reads: AtomicUsize::new(0),
        }
    }

    fn wrote(&self) {
        self.writes.fetch_add(1, Ordering::SeqCst);
    }

    fn read_state(&self) {
        self.state_reads.fetch_add(1, Ordering::SeqCst);
    }

    fn looked_up(&self) {
        self.directory_reads.fetch_add(1, Ordering::SeqCst);
    }

    fn calls(&self) -> Calls {
        Calls {
            writes: self.writes.load(Ordering::SeqCst),
            state_reads: self.state_reads.load(Ordering::SeqCst),
            directory_reads: self.directory_reads.load(Ordering::SeqCst),
        }
    }

    /// The calls made by `requests` runs of `request`, per request.
    async fn per_request<F: Future<Output = ()>>(&self, requests: usize, request: impl Fn() -> F) -> Calls {
        let before = self.calls();
        for _ in 0..requests {
            request().await;
        }
        let after = self.calls();
        let per = |a: usize, b: usize| {
            assert_eq!((b - a) % requests, 0, "the same calls for every request");
            (b - a) / requests
        };
        Calls {
            writes: per(before.writes, after.writes),
            state_reads: per(before.state_reads, after.state_reads),
            directory_reads: per(before.directory_reads, after.directory_reads),
        }
    }
}

#[async_trait]
impl Store for CountingStore {
    async fn put_client(&self, client: ClientRecord) -> Result<(), StoreError> {
        self.wrote();
        self.inner.put_client(client).await
    }
    async fn client(&self, client_id: &str) -> Result<Option<Arc<ClientRecord>>, StoreError> {
        self.looked_up();
        self.inner.client(client_id).await
    }
    async fn delete_client(&self, client_id: &str) -> Result<(), StoreError> {
        self.wrote();
        self.inner.delete_client(client_id).await
    }
    async fn client_ids(&self) -> Result<Vec<String>, StoreError> {
        self.read_state();
        self.inner.client_ids().await
    }
    async fn put_user(&self, user: UserRecord) -> Result<(), StoreError> {
        self.wrote();
        self.inner.put_user(user).await
    }
    async fn user_by_username(&self, username: &str) -> Result<Option<Arc<UserRecord>>, StoreError> {
        self.looked_up();
        self.inner.user_by_username(username).await
    }
    async fn user_by_subject(&self, subject: &str) -> Result<Option<Arc<UserRecord>>, StoreError> {
        self.looked_up();
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
        self.read_state();
        self.inner.is_token_revoked(jti).await
    }
    async fn put_session(&self, session: &Session, expires_at: u64) -> Result<(), StoreError> {
        self.wrote();
        self.inner.put_session(session, expires_at).await
    }
    async fn session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        self.read_state();
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
        self.read_state();
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
        self.read_state();
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
        self.read_state();
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
        self.read_state();
        self.inner.consent(subject, client_id).await
    }
    async fn claim(&self, name: &str, value: &str) -> Result<String, StoreError> {
        self.wrote();
        self.inner.claim(name, value).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.read_state();
        self.inner.ping().await
    }
    async fn increment_counter(&self, key: &str, expires_at: u64) -> Result<u32, StoreError> {
        self.wrote();
        self.inner.increment_counter(key, expires_at).await
    }
    async fn counter(&self, key: &str) -> Result<u32, StoreError> {
        self.read_state();
        self.inner.counter(key).await
    }
    async fn clear_counter(&self, key: &str) -> Result<(), StoreError> {
        self.wrote();
        self.inner.clear_counter(key).await
    }
}

/// A provider on a loopback port over the counting store, holding the `m2m` client and a
/// user; returns its base URL and the keyring it signs with.
async fn start(store: &Arc<CountingStore>) -> (String, SharedKeyring) {
    store.put_client(m2m_client("api")).await.unwrap();
    store.put_user(user()).await.unwrap();
    let keyring =
        Keyring::new(vec![(KeyPair::generate(SigningAlgorithm::ES256, None).unwrap().0, KeyPhase::Active)]).unwrap();
    let keys: SharedKeyring = Arc::new(ArcSwap::from_pointee(keyring));
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
    let provider = Provider::new(config, shared, Arc::clone(&keys), Clock::system()).unwrap();
    tokio::spawn(async move { axum::serve(listener, app(Arc::new(provider))).await });
    (base, keys)
}

fn user() -> UserRecord {
    UserRecord {
        subject: "user-1".into(),
        username: "alice".into(),
        email: None,
        email_verified: false,
        name: Some("Alice".into()),
        given_name: None,
        family_name: None,
        groups: vec![],
        roles: vec![],
        client_roles: Default::default(),
        password_hash: String::new(),
        disabled: false,
    }
}

async fn client_credentials_token(http: &reqwest::Client, base: &str) -> String {
    let response = http
        .post(format!("{base}/token"))
        .basic_auth("m2m", Some("m2m-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json::<serde_json::Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn issuing_client_credentials_tokens_costs_no_store_round_trip() {
    let store = Arc::new(CountingStore::new());
    let (base, _) = start(&store).await;
    let http = reqwest::Client::new();
    client_credentials_token(&http, &base).await;
    let calls = store.per_request(20, || async { drop(client_credentials_token(&http, &base).await) }).await;
    assert_eq!(
        calls,
        Calls { writes: 0, state_reads: 0, directory_reads: 1 },
        "no write and no state read per issued token; the client lookup is cached per replica"
    );
}

#[tokio::test]
async fn validating_an_access_token_costs_one_deny_list_check() {
    let store = Arc::new(CountingStore::new());
    let (base, keys) = start(&store).await;
    let http = reqwest::Client::new();
    let token = client_credentials_token(&http, &base).await;
    let introspect = || async {
        let response = http
            .post(format!("{base}/introspect"))
            .basic_auth("m2m", Some("m2m-secret"))
            .form(&[("token", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(response.json::<serde_json::Value>().await.unwrap()["active"], true);
    };
    let calls = store.per_request(10, introspect).await;
    assert_eq!(
        calls,
        Calls { writes: 0, state_reads: 1, directory_reads: 2 },
        "introspection: the deny-list, and the caller's and the token's client from the directory"
    );

    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims = AccessTokenClaims {
        iss: base.clone(),
        sub: user().subject,
        aud: Audience(vec!["m2m".into()]),
        exp: now + 60,
        iat: now,
        jti: "userinfo-jti".into(),
        client_id: "m2m".into(),
        scope: Some("openid profile".into()),
        auth_time: Some(now),
    };
    let user_token = keys.load().sign(None, JwtType::AccessToken, &claims).unwrap();
    let userinfo = || async {
        let response = http.get(format!("{base}/userinfo")).bearer_auth(&user_token).send().await.unwrap();
        assert_eq!(response.status(), 200);
    };
    let calls = store.per_request(10, userinfo).await;
    assert_eq!(
        calls,
        Calls { writes: 0, state_reads: 1, directory_reads: 2 },
        "userinfo: the deny-list, and the user and the client from the directory"
    );
}
