//! Issue 21 in Chromium: the login page offers "Continue with …" for a connector, and a
//! person signs in through an upstream Portcullis with the keyboard alone — our login
//! page, the upstream's login and consent pages, then our consent page — every page
//! checked (console, CSP, axe-core) and photographed.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use fantoccini::key::Key;
use portcullis::protocol::federation::federated_subject;
use portcullis::provider::RegistrationPolicy;
use serde_json::json;

use crate::chromium::Chromium;
use crate::harness::{Pkce, TestServer, fixtures, jwt_part};
use crate::parties::{self, RelyingParty};

/// A copy of the fixture manifests, removed when dropped.
struct Folder(PathBuf);

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn folder() -> Folder {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let dir = std::env::temp_dir().join(format!("portcullis-federation-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    Folder(dir)
}

/// Types alice's credentials on a login page whose username field has the focus.
async fn sign_in_as_alice(browser: &Chromium) {
    browser.assert_focus("#username").await;
    browser.type_text("alice").await;
    browser.press(Key::Tab).await;
    browser.type_text("alice-password").await;
    browser.press(Key::Tab).await;
    browser.assert_focus("button:Sign in").await;
    browser.press_and_wait(Key::Enter).await;
}

async fn allow(browser: &Chromium) {
    assert_eq!(browser.heading().await, "Allow access?");
    browser.press(Key::Tab).await;
    browser.assert_focus("button:Allow").await;
    browser.press_and_wait(Key::Enter).await;
}

#[tokio::test]
async fn a_person_signs_in_through_a_connector_by_keyboard_alone() {
    let manifests = folder();
    let server = TestServer::start_on(manifests.0.clone(), RegistrationPolicy::Open).await;
    let upstream = TestServer::start().await;
    let registered = upstream
        .register_client(json!({
            "redirect_uris": [server.url("/callback/corp")],
            "client_name": "Downstream Portcullis",
            "application_type": "native",
            "scope": "openid profile email",
        }))
        .await;
    // Declared in the folder `dev` watches, as an operator would.
    let connector = format!(
        "apiVersion: portcullis.dev/v1alpha1\nkind: IdentityConnector\nmetadata: {{name: corp, namespace: test}}\n\
         spec:\n  type: oidc\n  displayName: Corp SSO\n  oidc:\n    issuer: {}\n    clientId: {}\n    \
         clientSecretRef: {{name: corp-oidc, key: clientSecret}}\n---\n\
         apiVersion: v1\nkind: Secret\nmetadata: {{name: corp-oidc, namespace: test}}\nstringData:\n  clientSecret: {}\n",
        upstream.base,
        registered["client_id"].as_str().unwrap(),
        registered["client_secret"].as_str().unwrap()
    );
    std::fs::write(manifests.0.join("connectors.yaml"), connector).unwrap();
    let started = Instant::now();
    while server.provider.store.connector("corp").await.unwrap().is_none() {
        assert!(started.elapsed() < Duration::from_secs(10), "the connector was not applied within 10 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let rp = RelyingParty::start().await;
    let client = parties::register(&server, &rp).await;
    let pkce = Pkce::new("browser");
    let browser = Chromium::start().await;
    browser.goto(&parties::authorize_url(&server, &client, &rp, "federated", &pkce)).await;
    assert_eq!(browser.heading().await, "Sign in");
    assert_eq!(browser.text_of(".connectors a").await.as_deref(), Some("Continue with Corp SSO"));
    assert_eq!(browser.text_of(".separator").await.as_deref(), Some("or sign in with a password"));
    browser.inspect("login-with-connector", None).await;
    browser.press_shift_tab().await;
    browser.assert_focus("a:Continue with Corp SSO").await;
    browser.press_and_wait(Key::Enter).await;

    assert!(browser.url().await.as_str().starts_with(&upstream.base), "at the upstream: {}", browser.url().await);
    assert_eq!(browser.heading().await, "Sign in");
    sign_in_as_alice(&browser).await;
    allow(&browser).await;

    assert!(browser.url().await.as_str().starts_with(&server.base), "back here: {}", browser.url().await);
    browser.inspect("consent-after-connector", None).await;
    allow(&browser).await;
    let url = browser.url().await;
    assert!(url.as_str().starts_with(&rp.callback()), "at the relying party: {url}");
    let visit = rp.last_visit();
    assert_eq!(visit.params.get("state").map(String::as_str), Some("federated"));
    let tokens = parties::exchange(&server, &client, &rp, &visit.params["code"], &pkce).await;
    let claims = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    let subject = federated_subject("corp", "alice");
    assert_eq!(claims["sub"], subject.as_str(), "{claims}");
    assert!(server.provider.store.federated_user(&subject).await.unwrap().is_some());
    browser.quit().await;
}
