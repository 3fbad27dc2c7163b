//! Issue 21: what the callback does with the upstream's ID token, against a stand-in
//! upstream whose token endpoint answers exactly the ID token a test builds — valid, or
//! tampered, for another audience, with the wrong nonce, signed by a key it does not
//! publish, or by a key it has just rotated in.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis::clock::Clock;
use portcullis::keys::{JwtType, KeyPair, KeyPhase, Keyring};
use portcullis::model::{ButtonIcon, ClaimPaths, ClientRecord, ConnectorRecord, OidcUpstream, Upstream};
use portcullis::protocol::federation::federated_subject;
use portcullis::store::{Directory, Federation, MemoryStore, Store};
use portcullis::vocabulary::{GrantType, Scope, SigningAlgorithm};
use serde_json::{Value, json};

use crate::fixtures::m2m_client;
use crate::harness::{location_param, serve_store_at};

const APP_REDIRECT: &str = "https://app.example/cb";
const UPSTREAM_CLIENT: &str = "downstream";

/// The stand-in upstream: discovery, a JWKS of `published`, and a token endpoint that
/// answers `answer`'s ID token.
#[derive(Clone)]
struct StandIn {
    published: Arc<ArcSwap<Keyring>>,
    answer: Arc<Mutex<Option<String>>>,
    base: String,
}

async fn discovery(State(upstream): State<StandIn>) -> axum::Json<Value> {
    let base = &upstream.base;
    axum::Json(json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "jwks_uri": format!("{base}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
    }))
}

async fn jwks(State(upstream): State<StandIn>) -> ([(&'static str, &'static str); 1], Vec<u8>) {
    ([("content-type", "application/json")], upstream.published.load().jwks_json().to_vec())
}

async fn token(State(upstream): State<StandIn>) -> axum::Json<Value> {
    let id_token = upstream.answer.lock().unwrap().take();
    axum::Json(
        json!({"access_token": "upstream-access", "token_type": "Bearer", "expires_in": 300, "id_token": id_token}),
    )
}

struct Setup {
    base: String,
    upstream: StandIn,
    store: Arc<MemoryStore>,
    clock: Arc<AtomicU64>,
    /// The key the upstream signs with and publishes.
    signing: Arc<ArcSwap<Keyring>>,
}

fn es256_keyring() -> Keyring {
    Keyring::new(vec![(KeyPair::generate(SigningAlgorithm::ES256, None).unwrap().0, KeyPhase::Active)]).unwrap()
}

/// The stand-in upstream and a downstream (on a pinned clock) with connector `corp` to it.
async fn setup() -> Setup {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_base = format!("http://{}", listener.local_addr().unwrap());
    let signing = Arc::new(ArcSwap::from_pointee(es256_keyring()));
    let upstream = StandIn { published: Arc::clone(&signing), answer: Arc::default(), base: upstream_base.clone() };
    let app = Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/token", post(token))
        .with_state(upstream.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let clock = Arc::new(AtomicU64::new(now));
    let store = Arc::new(MemoryStore::new(Clock::manual(Arc::clone(&clock))));
    let (base, _, _) = serve_store_at(Arc::clone(&store) as Arc<dyn Store>, Clock::manual(Arc::clone(&clock))).await;
    let connector = ConnectorRecord {
        name: "corp".into(),
        display_name: "Corp SSO".into(),
        icon: ButtonIcon::OpenId,
        upstream: Upstream::Oidc(OidcUpstream {
            issuer: upstream_base,
            client_id: UPSTREAM_CLIENT.into(),
            client_secret: "upstream-secret".into(),
            scopes: vec!["openid".into()],
            claims: ClaimPaths::default(),
            skip_email_verified: false,
            userinfo: false,
        }),
        group_prefix: String::new(),
        allowed_groups: vec![],
        refresh_interval: 600,
        login_hint_domains: vec![],
    };
    store.put_connector(connector).await.unwrap();
    let app = ClientRecord {
        client_id: "app".into(),
        redirect_uris: vec![APP_REDIRECT.into()],
        grant_types: vec![GrantType::AuthorizationCode],
        scopes: Scope::parse("openid").unwrap(),
        skip_consent: true,
        ..m2m_client("openid")
    };
    store.put_client(app).await.unwrap();
    Setup { base, upstream, store, clock, signing }
}

/// A sign-in through `corp` up to the upstream's redirect back: the browser, and the
/// `state` and `nonce` the downstream sent upstream.
async fn begin(setup: &Setup) -> (reqwest::Client, String, String) {
    let browser =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).cookie_store(true).build().unwrap();
    let params = [
        ("client_id", "app"),
        ("redirect_uri", APP_REDIRECT),
        ("response_type", "code"),
        ("scope", "openid"),
        ("state", "app-state"),
        ("connector", "corp"),
    ];
    let to_upstream = browser.get(format!("{}/authorize", setup.base)).query(&params).send().await.unwrap();
    assert_eq!(to_upstream.status(), 303);
    let state = location_param(&to_upstream, "state").unwrap();
    let nonce = location_param(&to_upstream, "nonce").unwrap();
    (browser, state, nonce)
}

/// The ID token claims a well-behaved upstream sends for `nonce`.
fn claims(setup: &Setup, nonce: &str) -> Value {
    let now = setup.clock.load(Ordering::SeqCst);
    json!({
        "iss": setup.upstream.base, "sub": "u-1", "aud": UPSTREAM_CLIENT,
        "iat": now, "exp": now + 300, "nonce": nonce, "email": "u1@corp.example", "email_verified": true,
    })
}

fn sign(keyring: &Keyring, claims: &Value) -> String {
    keyring.sign(None, JwtType::Jwt, claims).unwrap()
}

/// The upstream answers `id_token`; the browser comes back with `state`: the downstream's
/// answer.
async fn finish(setup: &Setup, browser: &reqwest::Client, state: &str, id_token: String) -> reqwest::Response {
    *setup.upstream.answer.lock().unwrap() = Some(id_token);
    let callback = format!("{}/callback/corp", setup.base);
    browser.get(callback).query(&[("code", "upstream-code"), ("state", state)]).send().await.unwrap()
}

fn signed_in(response: &reqwest::Response) -> bool {
    response.status() == 303 && location_param(response, "code").is_some()
}

#[tokio::test]
async fn oidc_core_3_1_3_7_a_valid_upstream_id_token_signs_the_person_in() {
    let setup = setup().await;
    let (browser, state, nonce) = begin(&setup).await;
    let answer = finish(&setup, &browser, &state, sign(&setup.signing.load(), &claims(&setup, &nonce))).await;
    assert!(signed_in(&answer), "{}", answer.status());
    assert!(setup.store.federated_user(&federated_subject("corp", "u-1")).await.unwrap().is_some());
}

/// Every ID token check of OIDC Core §3.1.3.7 (and §3.2.2.11's nonce), one bad token each:
/// nobody is signed in, nobody is kept, and the person sees our error page (no redirect).
#[tokio::test]
async fn oidc_core_3_1_3_7_a_tampered_or_misdirected_upstream_id_token_signs_nobody_in() {
    let setup = setup().await;
    let stranger = es256_keyring();
    let cases: Vec<(&str, BadToken)> = vec![
        ("wrong nonce", Box::new(|s, _| sign(&s.signing.load(), &claims(s, "another-nonce")))),
        (
            "no nonce",
            Box::new(|s, nonce| {
                let mut c = claims(s, nonce);
                c.as_object_mut().unwrap().remove("nonce");
                sign(&s.signing.load(), &c)
            }),
        ),
        (
            "another audience",
            Box::new(|s, nonce| sign(&s.signing.load(), &with(claims(s, nonce), "aud", json!("someone-else")))),
        ),
        (
            "another issuer",
            Box::new(|s, nonce| sign(&s.signing.load(), &with(claims(s, nonce), "iss", json!("https://evil.example")))),
        ),
        (
            "expired",
            Box::new(|s, nonce| {
                let past = s.clock.load(Ordering::SeqCst) - 600;
                sign(&s.signing.load(), &with(claims(s, nonce), "exp", json!(past)))
            }),
        ),
        (
            "wrong at_hash",
            Box::new(|s, nonce| {
                sign(&s.signing.load(), &with(claims(s, nonce), "at_hash", json!("AAAAAAAAAAAAAAAAAAAAAA")))
            }),
        ),
        (
            "tampered payload",
            Box::new(|s, nonce| {
                let token = sign(&s.signing.load(), &claims(s, nonce));
                let forged = URL_SAFE_NO_PAD.encode(with(claims(s, nonce), "sub", json!("admin")).to_string());
                let parts: Vec<&str> = token.split('.').collect();
                format!("{}.{forged}.{}", parts[0], parts[2])
            }),
        ),
        (
            "alg none",
            Box::new(|s, nonce| {
                let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
                format!("{header}.{}.", URL_SAFE_NO_PAD.encode(claims(s, nonce).to_string()))
            }),
        ),
        ("a key the upstream does not publish", Box::new(move |s, nonce| sign(&stranger, &claims(s, nonce)))),
    ];
    for (case, id_token) in cases {
        let (browser, state, nonce) = begin(&setup).await;
        let answer = finish(&setup, &browser, &state, id_token(&setup, &nonce)).await;
        assert!(!signed_in(&answer), "{case}: signed in");
        assert_eq!(answer.status(), 502, "{case}: the error page");
        assert!(answer.headers().get("location").is_none(), "{case}");
        assert!(setup.store.federated_user(&federated_subject("corp", "u-1")).await.unwrap().is_none(), "{case}");
        assert!(setup.store.federated_user(&federated_subject("corp", "admin")).await.unwrap().is_none(), "{case}");
    }
}

/// Builds a bad ID token for the sign-in that sent `nonce` upstream.
type BadToken = Box<dyn Fn(&Setup, &str) -> String>;

fn with(mut claims: Value, name: &str, value: Value) -> Value {
    claims[name] = value;
    claims
}

/// A key the upstream rotates in is fetched on its first unknown `kid`, but the JWKS is
/// refetched at most once a minute, so a flood of tokens with made-up `kid`s cannot make us
/// hammer the upstream.
#[tokio::test]
async fn an_upstream_key_rotation_is_picked_up_with_a_floor_on_jwks_refetches() {
    let setup = setup().await;
    let (browser, state, nonce) = begin(&setup).await;
    let first = finish(&setup, &browser, &state, sign(&setup.signing.load(), &claims(&setup, &nonce))).await;
    assert!(signed_in(&first), "the JWKS is fetched");
    setup.signing.store(Arc::new(es256_keyring()));
    let (browser, state, nonce) = begin(&setup).await;
    let early = finish(&setup, &browser, &state, sign(&setup.signing.load(), &claims(&setup, &nonce))).await;
    assert_eq!(early.status(), 502, "within the floor the JWKS is not fetched again");
    setup.clock.fetch_add(61, Ordering::SeqCst);
    let (browser, state, nonce) = begin(&setup).await;
    let later = finish(&setup, &browser, &state, sign(&setup.signing.load(), &claims(&setup, &nonce))).await;
    assert!(signed_in(&later), "after the floor the rotated key is fetched: {}", later.status());
}
