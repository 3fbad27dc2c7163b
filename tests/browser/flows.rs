//! The flows a person goes through, with the keyboard alone, in headless Chromium. Every
//! page on the way is checked (console, CSP, axe-core, light and dark) and photographed.

use fantoccini::key::Key;

use crate::chromium::Chromium;
use crate::harness::{Pkce, TestServer};
use crate::parties::{self, CLIENT_NAME, Client, RelyingParty};

const PASSWORD: &str = "alice-password";

/// A provider, a registered relying party and a fresh browser.
struct World {
    server: TestServer,
    rp: RelyingParty,
    client: Client,
    browser: Chromium,
    pkce: Pkce,
}

impl World {
    async fn new() -> Self {
        let server = TestServer::start().await;
        let rp = RelyingParty::start().await;
        let client = parties::register(&server, &rp).await;
        let browser = Chromium::start().await;
        Self { server, rp, client, browser, pkce: Pkce::new("browser") }
    }

    async fn authorize(&self, state: &str) {
        self.browser.goto(&parties::authorize_url(&self.server, &self.client, &self.rp, state, &self.pkce)).await;
    }

    /// On the login page: types the credentials and submits, by keyboard, checking the
    /// tab order username → password → submit on the way.
    async fn sign_in_by_keyboard(&self, password: &str) {
        let browser = &self.browser;
        assert_eq!(browser.heading().await, "Sign in");
        browser.assert_focus("#username").await;
        browser.type_text("alice").await;
        browser.press(Key::Tab).await;
        browser.assert_focus("#password").await;
        browser.type_text(password).await;
        browser.press(Key::Tab).await;
        browser.assert_focus("button:Sign in").await;
        browser.press_and_wait(Key::Enter).await;
    }

    /// From the authorization request to the relying party's callback, allowing access.
    async fn sign_in_and_allow(&self, state: &str) {
        self.authorize(state).await;
        self.sign_in_by_keyboard(PASSWORD).await;
        assert_eq!(self.browser.heading().await, "Allow access?");
        self.browser.press(Key::Tab).await;
        self.browser.assert_focus("button:Allow").await;
        self.browser.press_and_wait(Key::Enter).await;
        self.assert_at_callback(state).await;
    }

    /// The browser is at the relying party's callback, which received `state`.
    async fn assert_at_callback(&self, state: &str) -> std::collections::HashMap<String, String> {
        let url = self.browser.url().await;
        assert!(url.as_str().starts_with(&self.rp.callback()), "expected the callback, at {url}");
        self.browser.assert_console_clean("callback", None).await;
        let visit = self.rp.last_visit();
        assert_eq!(visit.path, "/callback");
        assert_eq!(visit.params.get("state").map(String::as_str), Some(state), "{visit:?}");
        assert_eq!(visit.params.get("iss"), Some(&self.server.base), "RFC 9207 iss: {visit:?}");
        visit.params
    }

    async fn finish(self) {
        self.browser.quit().await;
    }
}

#[tokio::test]
async fn login_consent_and_callback_with_a_code_by_keyboard_alone() {
    let world = World::new().await;
    let browser = &world.browser;
    world.authorize("first").await;
    assert_eq!(browser.text_of(".lead").await.as_deref(), Some(format!("to continue to {CLIENT_NAME}").as_str()));
    browser.inspect("login", None).await;

    world.sign_in_by_keyboard(PASSWORD).await;
    assert_eq!(browser.heading().await, "Allow access?");
    assert_eq!(browser.text_of(".lead").await, Some(format!("{CLIENT_NAME} would like to:")));
    let scopes = browser.eval("return [...document.querySelectorAll('.scopes li')].map(li => li.textContent)").await;
    assert_eq!(
        scopes,
        serde_json::json!([
            "Confirm who you are openid",
            "See your email address email",
            "See your name and username profile"
        ])
    );
    let return_to = world.rp.origin.trim_start_matches("http://");
    assert!(browser.text_of(".note").await.is_some_and(|note| note.contains(return_to)), "the destination is shown");
    browser.inspect("consent", None).await;

    browser.press(Key::Tab).await;
    browser.assert_focus("button:Allow").await;
    browser.press_and_wait(Key::Enter).await;
    let params = world.assert_at_callback("first").await;
    let code = params.get("code").expect("a code at the callback");
    let tokens = parties::exchange(&world.server, &world.client, &world.rp, code, &world.pkce).await;
    assert!(tokens["id_token"].is_string(), "{tokens}");
    world.finish().await;
}

#[tokio::test]
async fn wrong_password_is_reported_on_the_fields_then_the_right_one_signs_in() {
    let world = World::new().await;
    let browser = &world.browser;
    world.authorize("retry").await;
    world.sign_in_by_keyboard("not-the-password").await;

    assert_eq!(browser.heading().await, "Sign in");
    assert_eq!(browser.text_of("#login-error").await.as_deref(), Some("Incorrect username or password."));
    assert_eq!(browser.attribute("#login-error", "role").await.as_deref(), Some("alert"));
    for field in ["#username", "#password"] {
        assert_eq!(browser.attribute(field, "aria-invalid").await.as_deref(), Some("true"), "{field}");
        assert_eq!(browser.attribute(field, "aria-describedby").await.as_deref(), Some("login-error"), "{field}");
    }
    assert_eq!(browser.eval("return document.querySelector('#username').value").await, "alice");
    browser.inspect("login error", None).await;

    browser.assert_focus("#password").await;
    browser.type_text(PASSWORD).await;
    browser.press_and_wait(Key::Enter).await;
    assert_eq!(browser.heading().await, "Allow access?");
    browser.assert_console_clean("consent after a retry", None).await;
    world.finish().await;
}

#[tokio::test]
async fn deny_returns_access_denied_to_the_client() {
    let world = World::new().await;
    let browser = &world.browser;
    world.authorize("deny").await;
    world.sign_in_by_keyboard(PASSWORD).await;
    browser.press(Key::Tab).await;
    browser.assert_focus("button:Allow").await;
    browser.press(Key::Tab).await;
    browser.assert_focus("button:Deny").await;
    browser.press_and_wait(Key::Enter).await;
    let params = world.assert_at_callback("deny").await;
    assert_eq!(params.get("error").map(String::as_str), Some("access_denied"), "RFC 6749 §4.1.2.1: {params:?}");
    assert!(!params.contains_key("code"), "{params:?}");
    world.finish().await;
}

#[tokio::test]
async fn oidc_core_3_1_2_3_a_second_authorize_rides_the_session_without_pages() {
    let world = World::new().await;
    world.sign_in_and_allow("first").await;
    world.authorize("second").await;
    let params = world.assert_at_callback("second").await;
    assert!(params.contains_key("code"), "{params:?}");
    assert_eq!(world.rp.visit_count(), 2, "no page in between");
    world.finish().await;
}

#[tokio::test]
async fn rp_initiated_logout_with_id_token_hint_returns_to_the_client() {
    let world = World::new().await;
    let browser = &world.browser;
    world.sign_in_and_allow("in").await;
    let code = world.rp.last_visit().params["code"].clone();
    let tokens = parties::exchange(&world.server, &world.client, &world.rp, &code, &world.pkce).await;
    let id_token = tokens["id_token"].as_str().expect("an ID token");

    let params = [("id_token_hint", id_token), ("post_logout_redirect_uri", &world.rp.signed_out()), ("state", "bye")];
    browser.goto(url::Url::parse_with_params(&world.server.url("/logout"), params).expect("logout URL").as_str()).await;
    let url = browser.url().await;
    assert_eq!(url.as_str(), format!("{}?state=bye", world.rp.signed_out()));
    assert_eq!(world.rp.last_visit().params.get("state").map(String::as_str), Some("bye"));
    browser.assert_console_clean("after logout", None).await;

    world.authorize("again").await;
    assert_eq!(browser.heading().await, "Sign in", "the session has ended");
    world.finish().await;
}

#[tokio::test]
async fn rp_initiated_logout_without_hint_asks_first_then_signs_out() {
    let world = World::new().await;
    let browser = &world.browser;
    world.sign_in_and_allow("in").await;
    let params = [
        ("client_id", world.client.id.as_str()),
        ("post_logout_redirect_uri", &world.rp.signed_out()),
        ("state", "s1"),
    ];
    browser.goto(url::Url::parse_with_params(&world.server.url("/logout"), params).expect("logout URL").as_str()).await;
    assert_eq!(browser.heading().await, "Sign out of Portcullis?");
    assert_eq!(browser.text_of(".lead").await, Some(format!("{CLIENT_NAME} asked to sign you out.")));
    browser.inspect("logout", None).await;

    browser.press(Key::Tab).await;
    browser.assert_focus("button:Sign out").await;
    browser.press(Key::Tab).await;
    browser.assert_focus("button:Stay signed in").await;
    browser.press_shift_tab().await;
    browser.assert_focus("button:Sign out").await;
    browser.press_and_wait(Key::Enter).await;
    assert_eq!(browser.url().await.as_str(), format!("{}?state=s1", world.rp.signed_out()));
    browser.assert_console_clean("after logout", None).await;

    browser.goto(&world.server.url("/logout")).await;
    assert_eq!(browser.heading().await, "You are signed out.");
    browser.inspect("signed out", None).await;
    world.finish().await;
}

#[tokio::test]
async fn rfc6749_4_1_2_1_unregistered_redirect_uri_gets_an_error_page_not_a_redirect() {
    let world = World::new().await;
    let browser = &world.browser;
    let params = [
        ("client_id", world.client.id.as_str()),
        ("redirect_uri", &format!("{}/elsewhere", world.rp.origin)),
        ("response_type", "code"),
        ("scope", "openid"),
        ("state", "x"),
    ];
    browser.goto(url::Url::parse_with_params(&world.server.url("/authorize"), params).expect("URL").as_str()).await;
    assert!(browser.url().await.as_str().starts_with(&world.server.url("/authorize")), "stayed at the provider");
    assert_eq!(browser.heading().await, "Invalid request");
    assert_eq!(browser.attribute(".error", "role").await.as_deref(), Some("alert"));
    browser.inspect("error", Some(400)).await;
    assert_eq!(world.rp.visit_count(), 0, "nothing went to the unregistered URI");
    world.finish().await;
}

/// The console check itself: an inline style the CSP refuses must show up in the log, or
/// the other tests' "no CSP violations" would prove nothing.
#[tokio::test]
async fn the_console_check_sees_a_csp_violation() {
    let world = World::new().await;
    let browser = &world.browser;
    world.authorize("csp").await;
    browser.assert_console_clean("login", None).await;
    browser
        .eval("const s = document.createElement('style'); s.textContent = 'body{color:red}'; document.head.append(s);")
        .await;
    let log = browser.console().await;
    assert!(
        log.iter().any(|entry| entry["level"] == "SEVERE"
            && entry["message"].as_str().is_some_and(|m| m.contains("Content Security Policy"))),
        "the refused inline style is not in the console log: {log:#?}"
    );
    world.finish().await;
}

/// OAuth 2.0 Form Post Response Mode §2 under the pages' strict CSP: the response page's own
/// script submits its form to the relying party, which receives code, state and iss by
/// POST, with no CSP violation or console error on the way.
#[tokio::test]
async fn oauth_form_post_2_posts_the_code_to_the_relying_party_under_the_strict_csp() {
    let world = World::new().await;
    let browser = &world.browser;
    let extra = [("response_mode", "form_post")];
    browser
        .goto(&parties::authorize_url_with(&world.server, &world.client, &world.rp, "posted", &world.pkce, &extra))
        .await;
    world.sign_in_by_keyboard(PASSWORD).await;
    assert_eq!(browser.heading().await, "Allow access?");
    browser.press(Key::Tab).await;
    browser.assert_focus("button:Allow").await;
    browser.press(Key::Enter).await;
    browser.wait_for_url(&world.rp.callback()).await;
    let params = world.assert_at_callback("posted").await;
    assert_eq!(world.rp.last_visit().method, "POST", "the response came by form post");
    let code = params.get("code").expect("a code posted to the callback");
    let tokens = parties::exchange(&world.server, &world.client, &world.rp, code, &world.pkce).await;
    assert!(tokens["id_token"].is_string(), "{tokens}");
    world.finish().await;
}

/// OpenID Connect Front-Channel Logout 1.0 §3 in a real browser: after an RP-initiated
/// logout the provider's page frames the relying party's front-channel logout URI, which
/// receives `iss` and `sid` (§2), with no CSP violation under a `frame-src` naming only the
/// relying party; the page's own script then goes on to the `post_logout_redirect_uri`.
#[tokio::test]
async fn frontchannel_logout_3_frames_load_under_the_csp_then_the_browser_lands_on_the_redirect_uri() {
    let rp = RelyingParty::start().await;
    let origin = &rp.origin;
    let manifest = format!(
        "apiVersion: portcullis.dev/v1alpha1
kind: OidcClient
metadata: {{name: framed, namespace: test}}
spec:
  clientName: {CLIENT_NAME}
  redirectUris: [\"{origin}/callback\"]
  postLogoutRedirectUris: [\"{origin}/\"]
  grantTypes: [authorization_code]
  scopes: [openid, profile, email]
  frontchannelLogoutUri: {origin}/frontchannel
  frontchannelLogoutSessionRequired: true
---
apiVersion: v1
kind: Secret
metadata: {{name: framed-credentials, namespace: test}}
stringData: {{clientSecret: framed-secret}}
"
    );
    let folder = crate::harness::fixtures_with("browser-frontchannel", &manifest);
    let server = TestServer::start_on(folder, portcullis::provider::RegistrationPolicy::Open).await;
    let client = Client { id: "framed".into(), secret: "framed-secret".into() };
    let world = World { server, rp, client, browser: Chromium::start().await, pkce: Pkce::new("framed") };
    let browser = &world.browser;
    world.sign_in_and_allow("in").await;
    let code = world.rp.last_visit().params["code"].clone();
    let tokens = parties::exchange(&world.server, &world.client, &world.rp, &code, &world.pkce).await;
    let id_token = tokens["id_token"].as_str().expect("an ID token");
    let sid = crate::harness::jwt_part(id_token, 1)["sid"].as_str().expect("sid").to_owned();
    let visits_before = world.rp.visit_count();

    let signed_out = world.rp.signed_out();
    let params = [("id_token_hint", id_token), ("post_logout_redirect_uri", &signed_out), ("state", "bye")];
    browser.goto(url::Url::parse_with_params(&world.server.url("/logout"), params).expect("logout URL").as_str()).await;
    browser.wait_for_url(&format!("{signed_out}?state=bye")).await;
    browser.assert_console_clean("front-channel logout", None).await;

    let visits = world.rp.visits_since(visits_before);
    let paths: Vec<&str> = visits.iter().map(|visit| visit.path.as_str()).collect();
    assert_eq!(paths, ["/frontchannel", "/"], "the frame loaded, then the browser went on: {visits:?}");
    let frame = &visits[0];
    assert_eq!(frame.method, "GET");
    assert_eq!(frame.params.get("iss"), Some(&world.server.base), "§2 iss: {frame:?}");
    assert_eq!(frame.params.get("sid"), Some(&sid), "§2 sid, the ID token's: {frame:?}");
    assert_eq!(visits[1].params.get("state").map(String::as_str), Some("bye"));

    world.authorize("again").await;
    assert_eq!(browser.heading().await, "Sign in", "the session has ended");
    world.finish().await;
}

/// Issue 22.5: `/account` by keyboard alone. Not signed in, it is the sign-in form, then
/// the page: the application allowed and this browser's session, each with its button in
/// the tab order; "Revoke access" removes the application, "Sign out" signs the browser out.
#[tokio::test]
async fn account_page_by_keyboard_lists_revokes_and_signs_out() {
    let world = World::new().await;
    let browser = &world.browser;
    world.sign_in_and_allow("in").await;
    let code = world.rp.last_visit().params["code"].clone();
    parties::exchange(&world.server, &world.client, &world.rp, &code, &world.pkce).await;
    browser.goto(&world.server.url("/account")).await;
    assert_eq!(browser.heading().await, "Your account");
    assert_eq!(browser.text_of(".account-item strong").await.as_deref(), Some(CLIENT_NAME));
    browser.inspect("account", None).await;

    browser.press(Key::Tab).await;
    browser.assert_focus("button:Revoke access").await;
    browser.press(Key::Tab).await;
    browser.assert_focus("button:Sign out").await;
    browser.press_shift_tab().await;
    browser.assert_focus("button:Revoke access").await;
    browser.press_and_wait(Key::Enter).await;
    assert_eq!(browser.heading().await, "Your account");
    assert_eq!(
        browser.text_of(".muted").await.as_deref(),
        Some("You have not allowed any application yet."),
        "the application is gone"
    );
    browser.assert_console_clean("account after revoking", None).await;

    browser.press(Key::Tab).await;
    browser.assert_focus("button:Sign out").await;
    browser.press_and_wait(Key::Enter).await;
    assert_eq!(browser.heading().await, "You are signed out.");
    browser.assert_console_clean("signed out from the account page", None).await;

    browser.goto(&world.server.url("/account")).await;
    assert_eq!(browser.heading().await, "Sign in", "signed out: the sign-in form, which comes back here");
    world.sign_in_by_keyboard(PASSWORD).await;
    assert_eq!(browser.heading().await, "Your account");
    assert!(browser.url().await.as_str().ends_with("/account"));
    world.finish().await;
}
