//! The other side of the flows: a tiny relying party on loopback that records what the
//! browser brings back, registered at the provider like any third-party application.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{Method, header};
use axum::response::IntoResponse;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::harness::{Pkce, TestServer};

/// The name people see on the login and consent pages.
pub const CLIENT_NAME: &str = "Acme Dashboard";

/// One request the browser made to the relying party.
#[derive(Debug, Clone)]
pub struct Visit {
    pub method: String,
    pub path: String,
    pub params: HashMap<String, String>,
}

/// A relying party: `/callback` receives the authorization response, `/` the browser
/// after logout. Both answer a small page that is itself free of console errors.
pub struct RelyingParty {
    pub origin: String,
    visits: Arc<Mutex<Vec<Visit>>>,
    _stop: oneshot::Sender<()>,
}

const RP_PAGE: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><link rel=\"icon\" href=\"data:,\"><title>Acme Dashboard</title></head><body><main><h1>Acme Dashboard</h1></main></body></html>";

impl RelyingParty {
    pub async fn start() -> Self {
        let visits = Arc::new(Mutex::new(Vec::new()));
        let (origin, stop) = serve_on_loopback(axum::Router::new().fallback(record).with_state(visits.clone())).await;
        Self { origin, visits, _stop: stop }
    }

    pub fn callback(&self) -> String {
        format!("{}/callback", self.origin)
    }

    pub fn signed_out(&self) -> String {
        format!("{}/", self.origin)
    }

    /// The last visit; panics if the browser never came back.
    pub fn last_visit(&self) -> Visit {
        self.visits.lock().expect("visits").last().cloned().expect("the browser never reached the relying party")
    }

    /// The visits after the first `count`, in order.
    pub fn visits_since(&self, count: usize) -> Vec<Visit> {
        self.visits.lock().expect("visits").iter().skip(count).cloned().collect()
    }

    pub fn visit_count(&self) -> usize {
        self.visits.lock().expect("visits").len()
    }
}

/// Serves `app` on a fresh loopback port until the returned sender is dropped; returns the
/// server's origin and that sender.
pub async fn serve_on_loopback(app: axum::Router) -> (String, oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binding a loopback port");
    let origin = format!("http://{}", listener.local_addr().expect("local address"));
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        let _ = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
    });
    (origin, stop)
}

/// Records the query parameters and, for a form post (OAuth 2.0 Form Post Response Mode),
/// the form's.
async fn record(
    State(visits): State<Arc<Mutex<Vec<Visit>>>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    body: Bytes,
) -> impl IntoResponse {
    let query = url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes());
    let posted = url::form_urlencoded::parse(if method == Method::POST { &body } else { &[] });
    let params = query.chain(posted).map(|(name, value)| (name.into_owned(), value.into_owned())).collect();
    visits.lock().expect("visits").push(Visit { method: method.to_string(), path: uri.path().to_owned(), params });
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], RP_PAGE)
}

/// A client registered for the relying party (RFC 7591, as a loopback native app).
pub struct Client {
    pub id: String,
    pub secret: String,
}

pub async fn register(server: &TestServer, rp: &RelyingParty) -> Client {
    let body = json!({
        "client_name": CLIENT_NAME,
        "application_type": "native",
        "redirect_uris": [rp.callback()],
        "post_logout_redirect_uris": [rp.signed_out()],
        "scope": "openid profile email",
    });
    let response = server.http.post(server.url("/register")).json(&body).send().await.expect("registering");
    assert_eq!(response.status(), 201, "registration");
    let client: Value = response.json().await.expect("registration response");
    let field = |name: &str| client[name].as_str().unwrap_or_else(|| panic!("no {name} in {client}")).to_owned();
    Client { id: field("client_id"), secret: field("client_secret") }
}

/// An authorization request URL for `client` (OIDC Core §3.1.2.1) with PKCE.
pub fn authorize_url(server: &TestServer, client: &Client, rp: &RelyingParty, state: &str, pkce: &Pkce) -> String {
    authorize_url_with(server, client, rp, state, pkce, &[])
}

/// [`authorize_url`] with `extra` parameters.
pub fn authorize_url_with(
    server: &TestServer,
    client: &Client,
    rp: &RelyingParty,
    state: &str,
    pkce: &Pkce,
    extra: &[(&str, &str)],
) -> String {
    let callback = rp.callback();
    let mut params = vec![
        ("client_id", client.id.as_str()),
        ("redirect_uri", &callback),
        ("response_type", "code"),
        ("scope", "openid profile email"),
        ("state", state),
        ("nonce", "n-0S6_WzA2Mj"),
        ("code_challenge", &pkce.challenge),
        ("code_challenge_method", "S256"),
    ];
    params.extend_from_slice(extra);
    url::Url::parse_with_params(&server.url("/authorize"), params).expect("authorize URL").into()
}

/// Exchanges a code at the token endpoint; returns the token response.
pub async fn exchange(server: &TestServer, client: &Client, rp: &RelyingParty, code: &str, pkce: &Pkce) -> Value {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", &rp.callback()),
        ("code_verifier", &pkce.verifier),
    ];
    let response = server
        .http
        .post(server.url("/token"))
        .basic_auth(&client.id, Some(&client.secret))
        .form(&form)
        .send()
        .await
        .expect("token request");
    assert_eq!(response.status(), 200, "token exchange");
    response.json().await.expect("token response")
}
