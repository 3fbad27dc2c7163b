//! Store round trips on the hot paths, counted per operation by an instrumented store (the
//! wrapper that measures every store in production, read through its own metrics):
//! client_credentials costs none (revocation is a deny-list consulted on use, not a record
//! written on issue), validating an access token (userinfo, introspection) one deny-list
//! check, which reads the store's data epoch (and, at introspection, the end of the token's
//! session) in the same round trip; an anonymous
//! `/authorize` writes nothing. Client and user lookups are counted too: `serve` answers them
//! from each replica's directory cache (tests/replicas.rs counts the real Redis commands).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::fixtures::m2m_client;
use crate::harness::serve_store;
use portcullis::clock::Clock;
use portcullis::keys::{JwtType, SharedKeyring};
use portcullis::metrics::Metrics;
use portcullis::model::{ClientRecord, UserProfile, UserRecord};
use portcullis::protocol::claims::{AccessTokenClaims, Audience};
use portcullis::protocol::epoch::token_epoch;
use portcullis::protocol::pending::SEALED_PARAMETER_LIMITS;
use portcullis::store::{Directory, Instrumented, MemoryStore, OPERATIONS, Store};
use portcullis::vocabulary::{GrantType, Scope};

/// How often each store operation was called.
type Calls = BTreeMap<&'static str, u64>;

/// A memory store, measured by operation.
struct CountedStore {
    store: Arc<Instrumented<MemoryStore>>,
    metrics: Metrics,
}

impl CountedStore {
    fn new() -> Self {
        let metrics = Metrics::new();
        let store = Arc::new(Instrumented::new(Arc::new(MemoryStore::new(Clock::system())), &metrics));
        Self { store, metrics }
    }

    fn calls(&self) -> Calls {
        OPERATIONS.iter().map(|op| (*op, self.metrics.store_op(op).0.get_sample_count())).collect()
    }

    /// The operations called by `requests` runs of `request`, per request.
    async fn per_request<F: Future<Output = ()>>(&self, requests: u64, request: impl Fn() -> F) -> Calls {
        let before = self.calls();
        for _ in 0..requests {
            request().await;
        }
        let after = self.calls();
        let mut per = Calls::new();
        for (op, count) in after {
            let made = count - before[op];
            assert_eq!(made % requests, 0, "the same calls of {op} for every request");
            if made > 0 {
                per.insert(op, made / requests);
            }
        }
        per
    }
}

fn calls(expected: &[(&'static str, u64)]) -> Calls {
    expected.iter().copied().collect()
}

/// A provider on a loopback port over the counted store, holding the `m2m` client and a
/// user; returns its base URL, the keyring it signs with and the store's data epoch.
async fn start(counted: &CountedStore) -> (String, SharedKeyring, String) {
    counted.store.put_client(m2m_client("api")).await.unwrap();
    counted.store.put_user(user()).await.unwrap();
    let shared: Arc<dyn Store> = counted.store.clone();
    serve_store(shared).await
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
        profile: UserProfile::default(),
        custom_claims: Default::default(),
        claimed_subjects: Vec::new(),
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
    let store = CountedStore::new();
    let (base, _, _) = start(&store).await;
    let http = reqwest::Client::new();
    client_credentials_token(&http, &base).await;
    let made = store.per_request(20, || async { drop(client_credentials_token(&http, &base).await) }).await;
    assert_eq!(
        made,
        calls(&[("client", 1)]),
        "no write and no state read per issued token; the client lookup is cached per replica"
    );
}

/// Introspects `token` as the `m2m` client and asserts it is active.
async fn assert_active(http: &reqwest::Client, base: &str, token: &str) {
    let response =
        http.post(format!("{base}/introspect")).basic_auth("m2m", Some("m2m-secret")).form(&[("token", token)]).send();
    assert_eq!(response.await.unwrap().json::<serde_json::Value>().await.unwrap()["active"], true);
}

#[tokio::test]
async fn validating_an_access_token_costs_one_deny_list_check() {
    let store = CountedStore::new();
    let (base, keys, epoch) = start(&store).await;
    let http = reqwest::Client::new();
    let token = client_credentials_token(&http, &base).await;
    let made = store.per_request(10, || assert_active(&http, &base, &token)).await;
    assert_eq!(
        made,
        calls(&[("token_check", 1), ("client", 2)]),
        "introspection: the deny-list (with the data epoch), and the caller's and the token's client from the directory"
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
        sid: None,
        epoch: Some(token_epoch(&epoch)),
        userinfo_claims: Default::default(),
    };
    let user_token = keys.load().sign(None, JwtType::AccessToken, &claims).unwrap();
    let userinfo = || async {
        let response = http.get(format!("{base}/userinfo")).bearer_auth(&user_token).send().await.unwrap();
        assert_eq!(response.status(), 200);
    };
    let made = store.per_request(10, userinfo).await;
    assert_eq!(
        made,
        calls(&[("token_check", 1), ("user_by_subject", 1), ("client", 1)]),
        "userinfo: the deny-list (with the data epoch), and the user and the client from the directory"
    );

    let session_claims = AccessTokenClaims { jti: "session-jti".into(), sid: Some("sid-1".into()), ..claims };
    let session_token = keys.load().sign(None, JwtType::AccessToken, &session_claims).unwrap();
    let made = store.per_request(10, || assert_active(&http, &base, &session_token)).await;
    assert_eq!(
        made,
        calls(&[("session_token_check", 1), ("user_by_subject", 1), ("client", 2)]),
        "introspecting a session's token: the deny-list, the session's end and the data epoch in one round trip, \
         and the user (disabled or gone: inactive) and the clients from the directory"
    );
}

/// A browser client whose login page an anonymous request reaches.
fn browser_client() -> ClientRecord {
    ClientRecord {
        client_id: "app".into(),
        redirect_uris: vec!["https://app.example/cb".into()],
        grant_types: vec![GrantType::AuthorizationCode],
        scopes: Scope::parse("openid profile").unwrap(),
        require_pkce: false,
        ..m2m_client("openid")
    }
}

/// Issue 18.2: an anonymous `/authorize` stores nothing, whatever it sends — the pending
/// request travels sealed in the login page. A thousand requests with every sealed
/// parameter at its limit (a login page) or at 8 KiB (refused with `invalid_request`) call
/// no store operation but the client lookup and, for the login page, the list of
/// connectors to offer; the first one claimed the sealing key.
#[tokio::test]
async fn an_anonymous_authorize_writes_nothing_to_the_store() {
    let store = CountedStore::new();
    let (base, _, _) = start(&store).await;
    store.store.put_client(browser_client()).await.unwrap();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let request = |size: Option<usize>| {
        let mut params = vec![
            ("client_id", "app".to_owned()),
            ("redirect_uri", "https://app.example/cb".to_owned()),
            ("response_type", "code".to_owned()),
            ("scope", "openid".to_owned()),
        ];
        for (name, limit) in SEALED_PARAMETER_LIMITS {
            params.push((name, crate::fixtures::sealed_parameter_value(name, size.unwrap_or(limit))));
        }
        http.get(format!("{base}/authorize")).query(&params).send()
    };
    assert_eq!(request(None).await.unwrap().status(), 200, "the login page");
    let made = store
        .per_request(500, || async {
            assert_eq!(request(None).await.unwrap().status(), 200, "every parameter at its limit");
            let over = request(Some(8 * 1024)).await.unwrap();
            assert_eq!(over.status(), 302);
            let location = over.headers()["location"].to_str().unwrap().to_owned();
            assert!(location.contains("error=invalid_request"), "{location}");
        })
        .await;
    assert_eq!(
        made,
        calls(&[("client", 2), ("connectors", 1)]),
        "two anonymous requests read the client twice, the login page reads the connectors, nothing is written"
    );
}
