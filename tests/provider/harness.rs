//! Starts a provider on a loopback port with the fixture manifests.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis::clock::Clock;
use portcullis::keys::{KeyPair, KeyPhase, Keyring, SharedKeyring};
use portcullis::provider::{BackchannelSettings, Provider, ProviderConfig, RegistrationPolicy, app};
use portcullis::server::{self, ServerOptions};
use portcullis::store::{Store, StoreStatus, epoch};
use portcullis::vocabulary::{Scope, SigningAlgorithm};
use serde_json::Value;
use tokio::sync::oneshot;

pub struct TestServer {
    pub base: String,
    /// The metrics listener (`--metrics-listen`): `/metrics`, `/health`, `/ready`.
    pub metrics_base: String,
    pub http: reqwest::Client,
    /// Secrets `dev` generated, by client id.
    pub generated: HashMap<String, String>,
    /// The provider itself, for what a test must look at behind the HTTP answers.
    pub provider: Arc<Provider>,
    _stop: [oneshot::Sender<()>; 2],
}

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/manifests")
}

/// A manifests folder with the fixtures plus the manifests of `extra` (YAML documents).
pub fn fixtures_with(name: &str, extra: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("portcullis-fixtures-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["keys.yaml", "users.yaml", "clients.yaml"] {
        std::fs::copy(fixtures().join(file), dir.join(file)).unwrap();
    }
    std::fs::write(dir.join("extra.yaml"), extra).unwrap();
    dir
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(RegistrationPolicy::Open).await
    }

    pub async fn start_with(registration: RegistrationPolicy) -> Self {
        Self::start_configured(fixtures(), registration, false).await
    }

    /// With `/metrics` on the main port too (`--metrics-on-main-port`).
    pub async fn start_with_metrics_on_main_port() -> Self {
        Self::start_configured(fixtures(), RegistrationPolicy::Open, true).await
    }

    /// A `dev` provider on the manifests of `folder`.
    pub async fn start_on(folder: PathBuf, registration: RegistrationPolicy) -> Self {
        Self::start_configured(folder, registration, false).await
    }

    async fn start_configured(
        manifests: PathBuf,
        registration: RegistrationPolicy,
        metrics_on_main_port: bool,
    ) -> Self {
        let listener = server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let metrics_listener = server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let metrics_base = format!("http://{}", metrics_listener.local_addr().unwrap());
        let options = ServerOptions {
            issuer: base.clone(),
            manifests: Some(manifests),
            access_token_ttl: Duration::from_secs(3600),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            session_ttl: Duration::from_secs(12 * 3600),
            registration,
            registration_scopes: Scope::parse("openid profile email offline_access").unwrap(),
            intervals: Default::default(),
            backchannel: BackchannelSettings {
                poll: Duration::from_millis(100),
                timeout: Duration::from_secs(2),
                give_up_after: Duration::from_secs(3),
            },
            metrics_on_main_port,
        };
        let built = server::build_dev(&options).await.unwrap();
        let generated = built.generated.iter().map(|g| (g.client_id.clone(), g.client_secret.clone())).collect();
        let (stop, stopped) = oneshot::channel::<()>();
        let (stop_metrics, metrics_stopped) = oneshot::channel::<()>();
        tokio::spawn(server::serve_metrics(metrics_listener, Arc::clone(&built.provider), Default::default(), async {
            let _ = metrics_stopped.await;
        }));
        let provider = Arc::clone(&built.provider);
        tokio::spawn(server::serve(listener, built.provider, async {
            let _ = stopped.await;
        }));
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { base, metrics_base, http, generated, provider, _stop: [stop, stop_metrics] }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POSTs a form with HTTP Basic client authentication.
    pub async fn post_basic(&self, path: &str, id: &str, secret: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http.post(self.url(path)).basic_auth(id, Some(secret)).form(form).send().await.unwrap()
    }

    /// The value of one series of the metrics listener's page (0 when absent): the sum of
    /// the lines of `name` whose labels include every one of `labels`.
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let page = self.http.get(format!("{}/metrics", self.metrics_base)).send().await.unwrap().text().await.unwrap();
        page.lines()
            .filter(|line| line.starts_with(&format!("{name}{{")) || line.starts_with(&format!("{name} ")))
            .filter(|line| labels.iter().all(|(label, value)| line.contains(&format!("{label}=\"{value}\""))))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// A client_credentials access token for the `m2m` client.
    pub async fn m2m_token(&self) -> String {
        let response = self.post_basic("/token", "m2m", "m2m-secret", &[("grant_type", "client_credentials")]).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }
}

/// A provider on a loopback port over `store` as it is, signing with one ES256 key;
/// returns its base URL, the keyring and the store's data epoch.
pub async fn serve_store(store: Arc<dyn Store>) -> (String, SharedKeyring, String) {
    serve_store_at(store, Clock::system()).await
}

/// [`serve_store`] with the provider reading `clock`, which a test may pin and advance.
pub async fn serve_store_at(store: Arc<dyn Store>, clock: Clock) -> (String, SharedKeyring, String) {
    let epoch = epoch(store.as_ref()).await.unwrap().id;
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
        metrics_on_main_port: false,
    };
    let status = Arc::new(StoreStatus::new(epoch.clone()));
    let provider = Provider::new(config, store, Arc::clone(&keys), clock, status).unwrap();
    let app = app(Arc::new(provider)).into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, keys, epoch)
}

/// Decodes a JWT part without verifying it (verification is tested separately).
pub fn jwt_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// Asserts an RFC 6749 §5.2 error response and returns its body.
pub async fn assert_oauth_error(response: reqwest::Response, status: u16, error: &str) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].as_str().is_some_and(|d| !d.is_empty()), "{body}");
    body
}

/// The webapp fixture client's registered redirect URI.
pub const WEBAPP_REDIRECT: &str = "http://127.0.0.1:9000/callback";
pub const SPA_REDIRECT: &str = "http://127.0.0.1:9001/callback";

/// A browser: keeps cookies, does not follow redirects.
pub struct Browser {
    pub http: reqwest::Client,
    base: String,
}

/// A PKCE pair (RFC 7636 §4.1–4.2), computed here independently of the provider.
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn new(seed: &str) -> Self {
        let verifier = format!("{seed}-{}", "v".repeat(43));
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
        Self { challenge: URL_SAFE_NO_PAD.encode(digest.as_ref()), verifier }
    }
}

impl Browser {
    pub fn new(server: &TestServer) -> Self {
        let http =
            reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).cookie_store(true).build().unwrap();
        Self { http, base: server.base.clone() }
    }

    pub async fn authorize(&self, params: &[(&str, &str)]) -> reqwest::Response {
        self.http.get(format!("{}/authorize", self.base)).query(params).send().await.unwrap()
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http.post(format!("{}{path}", self.base)).form(form).send().await.unwrap()
    }

    /// Submits the login form of `page` (the HTML of a login page).
    pub async fn login(&self, page: &str, username: &str, password: &str) -> reqwest::Response {
        let (interaction, csrf) = (hidden(page, "interaction"), hidden(page, "csrf_token"));
        let form = [
            ("interaction", interaction.as_str()),
            ("csrf_token", csrf.as_str()),
            ("username", username),
            ("password", password),
        ];
        self.post("/login", &form).await
    }

    /// Submits the consent form of `page` with `decision` (`allow` or `deny`).
    pub async fn consent(&self, page: &str, decision: &str) -> reqwest::Response {
        let (interaction, csrf) = (hidden(page, "interaction"), hidden(page, "csrf_token"));
        self.post("/consent", &[("interaction", &interaction), ("csrf_token", &csrf), ("decision", decision)]).await
    }

    /// Logs alice in through the pages and consents (or rides the existing session):
    /// returns the redirect to the client.
    pub async fn sign_in(&self, params: &[(&str, &str)]) -> reqwest::Response {
        let page = self.authorize(params).await;
        if page.status() == 302 {
            return page;
        }
        assert_eq!(page.status(), 200, "expected the login page");
        let after_login = self.login(&page.text().await.unwrap(), "alice", "alice-password").await;
        if after_login.status() == 303 {
            return after_login;
        }
        assert_eq!(after_login.status(), 200, "expected the consent page");
        self.consent(&after_login.text().await.unwrap(), "allow").await
    }
}

/// The `value` of the hidden input named `name` in a page.
pub fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).unwrap_or_else(|| panic!("no hidden field {name} in {page}")) + marker.len();
    page[start..].split('"').next().unwrap().to_owned()
}

/// A query parameter of a redirect's `Location`.
pub fn location_param(response: &reqwest::Response, name: &str) -> Option<String> {
    let location = response.headers().get("location")?.to_str().unwrap();
    let url = reqwest::Url::parse(location).unwrap();
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// The redirect target without its query.
pub fn location_base(response: &reqwest::Response) -> String {
    let location = response.headers()["location"].to_str().unwrap();
    location.split('?').next().unwrap().to_owned()
}

/// Standard parameters of a webapp authorization request.
pub fn webapp_request<'a>(scope: &'a str, state: &'a str, nonce: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("client_id", "webapp"),
        ("redirect_uri", WEBAPP_REDIRECT),
        ("response_type", "code"),
        ("scope", scope),
        ("state", state),
        ("nonce", nonce),
    ]
}

impl TestServer {
    /// Exchanges a webapp code at the token endpoint.
    pub async fn exchange(&self, code: &str, extra: &[(&str, &str)]) -> reqwest::Response {
        let mut form = vec![("grant_type", "authorization_code"), ("code", code), ("redirect_uri", WEBAPP_REDIRECT)];
        form.extend_from_slice(extra);
        self.post_basic("/token", "webapp", "webapp-secret", &form).await
    }

    /// Full webapp login with `scope`; returns the token response body.
    pub async fn webapp_tokens(&self, browser: &Browser, scope: &str) -> Value {
        let redirect = browser.sign_in(&webapp_request(scope, "st", "n-0S6_WzA2Mj")).await;
        let code = location_param(&redirect, "code").expect("a code");
        let response = self.exchange(&code, &[]).await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// Registers a client through RFC 7591 (open registration); returns the registration
    /// response.
    pub async fn register_client(&self, metadata: Value) -> Value {
        let response = self.http.post(self.url("/register")).json(&metadata).send().await.unwrap();
        assert_eq!(response.status(), 201);
        response.json().await.unwrap()
    }

    pub async fn introspect_active(&self, token: &str) -> bool {
        let response = self.post_basic("/introspect", "webapp", "webapp-secret", &[("token", token)]).await;
        let body: Value = response.json().await.unwrap();
        body["active"].as_bool().unwrap()
    }
}
