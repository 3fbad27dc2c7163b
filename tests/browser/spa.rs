//! A single-page app on another origin, built on a maintained browser OIDC library
//! (oidc-client-ts, vendored), with the browser's web security on: discovery, the code +
//! PKCE exchange, userinfo, a refresh and logout all cross origins, so each needs the
//! provider's CORS answer; and the same calls from an origin the client never registered,
//! which the browser must refuse to read.

use std::sync::{Arc, Mutex};

use axum::extract::{OriginalUri, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use fantoccini::key::Key;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::chromium::Chromium;
use crate::harness::TestServer;
use crate::parties::serve_on_loopback;

/// oidc-client-ts 3.5.0, vendored unmodified (see `vendor/oidc-client-ts/README.md`).
const OIDC_CLIENT: &str = include_str!("vendor/oidc-client-ts/oidc-client-ts.min.js");

/// The app: `window.spa.signIn()` / `signOut()` start the redirects; on `/callback` it
/// finishes the sign-in (token exchange and userinfo), then renews through the refresh
/// token. What it got, or the error it met, ends up in `window.spa`.
const APP: &str = r#""use strict";
const settings = JSON.parse(document.getElementById("settings").textContent);
const manager = new oidc.UserManager({
  authority: settings.issuer,
  client_id: settings.clientId,
  redirect_uri: location.origin + "/callback",
  post_logout_redirect_uri: location.origin + "/signed-out",
  response_type: "code",
  scope: "openid profile offline_access",
  loadUserInfo: true,
  automaticSilentRenew: false,
});
window.spa = {
  done: null,
  signIn: () => manager.signinRedirect(),
  signOut: () => manager.signoutRedirect(),
};
async function run() {
  if (location.pathname === "/callback") {
    const user = await manager.signinRedirectCallback();
    spa.user = { sub: user.profile.sub, name: user.profile.name, access: user.access_token, refresh: user.refresh_token };
    const renewed = await manager.signinSilent();
    spa.renewed = { sub: renewed.profile.sub, access: renewed.access_token, refresh: renewed.refresh_token };
    spa.done = "signed-in";
  } else if (location.pathname === "/signed-out") {
    spa.done = "signed-out";
  } else if (location.pathname === "/steal") {
    const body = new URLSearchParams({ grant_type: "refresh_token", refresh_token: "x", client_id: settings.clientId });
    try {
      await fetch(settings.issuer + "/token", { method: "POST", body });
      spa.done = "read";
    } catch (error) {
      spa.done = "blocked: " + error.name;
    }
  } else {
    spa.done = "ready";
  }
}
run().catch((error) => { spa.done = "failed: " + (error && error.message || error); });
"#;

/// A static web server on its own loopback origin, serving the app.
struct WebApp {
    origin: String,
    page: Arc<Page>,
    _stop: oneshot::Sender<()>,
}

/// What the app's page is configured with; the client id is known once the client is
/// registered, which needs the app's origin first.
struct Page {
    issuer: String,
    client_id: Mutex<String>,
}

impl WebApp {
    async fn start(issuer: &str) -> Self {
        let page = Arc::new(Page { issuer: issuer.to_owned(), client_id: Mutex::new(String::new()) });
        let (origin, stop) = serve_on_loopback(axum::Router::new().fallback(serve).with_state(Arc::clone(&page))).await;
        Self { origin, page, _stop: stop }
    }

    fn use_client(&self, client_id: &str) {
        *self.page.client_id.lock().expect("client id") = client_id.to_owned();
    }
}

async fn serve(State(page): State<Arc<Page>>, OriginalUri(uri): OriginalUri) -> Response {
    let javascript = "text/javascript; charset=utf-8";
    match uri.path() {
        "/oidc-client-ts.min.js" => ([(header::CONTENT_TYPE, javascript)], OIDC_CLIENT).into_response(),
        "/app.js" => ([(header::CONTENT_TYPE, javascript)], APP).into_response(),
        _ => {
            let client_id = page.client_id.lock().expect("client id").clone();
            let settings = json!({"issuer": page.issuer, "clientId": client_id});
            let html = format!(
                "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><link rel=\"icon\" href=\"data:,\">\
                 <title>Acme SPA</title><script id=\"settings\" type=\"application/json\">{settings}</script>\
                 <script src=\"/oidc-client-ts.min.js\"></script><script src=\"/app.js\"></script></head>\
                 <body><main><h1>Acme SPA</h1></main></body></html>"
            );
            ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
        }
    }
}

/// Registers a public browser client (RFC 7591, `token_endpoint_auth_method: none`) whose
/// redirect URIs are on `app`'s origin: its only web origin.
async fn register_spa(server: &TestServer, origin: &str) -> String {
    let metadata = json!({
        "client_name": "Acme SPA",
        // Loopback http redirect URIs are for native apps (RFC 8252 §7.3); the origins count the same.
        "application_type": "native",
        "redirect_uris": [format!("{origin}/callback")],
        "post_logout_redirect_uris": [format!("{origin}/signed-out")],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none",
        "scope": "openid profile offline_access",
    });
    let client = server.register_client(metadata).await;
    client["client_id"].as_str().expect("a client id").to_owned()
}

/// Requests of `method` to `endpoint` the provider answered with 200.
async fn served(server: &TestServer, endpoint: &str, method: &str) -> f64 {
    server
        .metric("portcullis_http_requests_total", &[("endpoint", endpoint), ("method", method), ("status", "200")])
        .await
}

/// Waits until the app has finished what it does on the current page; returns its outcome.
async fn outcome(browser: &Chromium) -> Value {
    browser.wait_for("window.spa && window.spa.done").await;
    browser.eval("return window.spa.done").await
}

#[tokio::test]
async fn an_spa_on_another_origin_signs_in_refreshes_reads_userinfo_and_signs_out_with_no_cors_error() {
    let server = TestServer::start().await;
    let app = WebApp::start(&server.base).await;
    app.use_client(&register_spa(&server, &app.origin).await);
    let browser = Chromium::start().await;

    browser.goto(&format!("{}/", app.origin)).await;
    assert_eq!(outcome(&browser).await, "ready");
    browser.eval("window.spa.signIn(); return null").await;
    browser.wait_for("document.querySelector('#username')").await;
    assert_eq!(browser.heading().await, "Sign in");
    browser.type_text("alice").await;
    browser.press(Key::Tab).await;
    browser.type_text("alice-password").await;
    browser.press_and_wait(Key::Enter).await;
    assert_eq!(browser.heading().await, "Allow access?");
    browser.press(Key::Tab).await;
    browser.assert_focus("button:Allow").await;
    browser.press(Key::Enter).await;

    browser.wait_for(&format!("location.origin === {:?}", app.origin)).await;
    assert_eq!(outcome(&browser).await, "signed-in", "the app finished its sign-in");
    let user = browser.eval("return window.spa.user").await;
    let renewed = browser.eval("return window.spa.renewed").await;
    assert!(user["sub"].as_str().is_some_and(|sub| !sub.is_empty()), "{user}");
    assert_eq!(user["name"], "Alice Liddell", "the name came from userinfo: {user}");
    assert!(user["refresh"].is_string(), "offline_access gave a refresh token: {user}");
    assert_eq!(renewed["sub"], user["sub"], "{renewed}");
    assert_ne!(renewed["access"], user["access"], "the refresh issued a new access token: {renewed}");
    assert_ne!(renewed["refresh"], user["refresh"], "and rotated the refresh token: {renewed}");
    browser.assert_console_clean("the app after sign-in", None).await;
    assert!(served(&server, "/userinfo", "GET").await >= 1.0, "the app read userinfo itself, across origins");
    assert_eq!(served(&server, "/token", "POST").await, 2.0, "the code exchange and the refresh");

    browser.eval("window.spa.signOut(); return null").await;
    browser.wait_for(&format!("location.href.startsWith({:?})", format!("{}/signed-out", app.origin))).await;
    assert_eq!(outcome(&browser).await, "signed-out");
    browser.assert_console_clean("the app after sign-out", None).await;
    browser.quit().await;
}

#[tokio::test]
async fn a_page_from_an_origin_the_client_never_registered_cannot_read_the_token_endpoint() {
    let server = TestServer::start().await;
    let app = WebApp::start(&server.base).await;
    let client_id = register_spa(&server, &app.origin).await;
    let stranger = WebApp::start(&server.base).await;
    stranger.use_client(&client_id);
    let browser = Chromium::start().await;

    browser.goto(&format!("{}/steal", stranger.origin)).await;
    assert_eq!(outcome(&browser).await, "blocked: TypeError", "the browser refused the answer to the page");
    let console = browser.console().await;
    assert!(
        console.iter().any(|entry| entry["message"].as_str().is_some_and(|m| m.contains("blocked by CORS policy"))),
        "the browser says why: {console:#?}"
    );
    browser.quit().await;

    let form = [("grant_type", "refresh_token"), ("refresh_token", "x"), ("client_id", client_id.as_str())];
    let raw = server.http.post(server.url("/token")).header("origin", &stranger.origin).form(&form).send().await;
    let raw = raw.expect("the token request");
    assert_eq!(raw.headers().get("access-control-allow-origin"), None, "no CORS answer for a stranger's origin");
    let own = server.http.post(server.url("/token")).header("origin", &app.origin).form(&form).send().await;
    let own = own.expect("the token request");
    assert_eq!(
        own.headers()["access-control-allow-origin"],
        app.origin.as_str(),
        "while the client's own origin reads it"
    );
}
