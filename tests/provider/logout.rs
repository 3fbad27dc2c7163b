//! OpenID Connect RP-Initiated Logout 1.0.

use serde_json::{Value, json};

use crate::harness::{
    Browser, TestServer, fixtures_with, hidden, jwt_part, location_base, location_param, webapp_request,
};
use portcullis::provider::RegistrationPolicy;

async fn prompt_none(browser: &Browser) -> Option<String> {
    let mut params = webapp_request("openid", "s", "n");
    params.push(("prompt", "none"));
    location_param(&browser.authorize(&params).await, "error")
}

#[tokio::test]
async fn rp_initiated_logout_2_with_hint_ends_the_session_and_redirects_with_state() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    let tokens = server.webapp_tokens(&browser, "openid").await;
    assert_eq!(prompt_none(&browser).await, None, "signed in");
    let id_token = tokens["id_token"].as_str().unwrap();
    let params =
        [("id_token_hint", id_token), ("post_logout_redirect_uri", "http://127.0.0.1:9000/"), ("state", "bye")];
    let response = browser.http.get(server.url("/logout")).query(&params).send().await.unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(location_base(&response), "http://127.0.0.1:9000/");
    assert_eq!(location_param(&response, "state").as_deref(), Some("bye"));
    assert_eq!(prompt_none(&browser).await.as_deref(), Some("login_required"), "the session is gone");
}

#[tokio::test]
async fn rp_initiated_logout_3_unregistered_post_logout_uri_is_never_redirected_to() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    let tokens = server.webapp_tokens(&browser, "openid").await;
    let id_token = tokens["id_token"].as_str().unwrap();
    for uri in ["https://evil.example/", "http://127.0.0.1:9000", "http://127.0.0.1:9000/x"] {
        let params = [("id_token_hint", id_token), ("post_logout_redirect_uri", uri)];
        let response = browser.http.get(server.url("/logout")).query(&params).send().await.unwrap();
        assert_eq!(response.status(), 200, "{uri}");
        assert!(response.headers().get("location").is_none(), "{uri}");
        assert!(response.text().await.unwrap().contains("signed out"));
    }
    assert_eq!(prompt_none(&browser).await.as_deref(), Some("login_required"));
}

#[tokio::test]
async fn rp_initiated_logout_without_hint_asks_for_confirmation_with_csrf() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    server.webapp_tokens(&browser, "openid").await;
    let params = [("client_id", "webapp"), ("post_logout_redirect_uri", "http://127.0.0.1:9000/"), ("state", "s1")];
    let page = browser.http.get(server.url("/logout")).query(&params).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let forged = browser.post("/logout", &[("decision", "logout"), ("csrf_token", "forged")]).await;
    assert_eq!(forged.status(), 403);
    assert_eq!(prompt_none(&browser).await, None, "still signed in after a forged request");
    let csrf = hidden(&html, "csrf_token");
    let confirmed = browser
        .post(
            "/logout",
            &[
                ("decision", "logout"),
                ("csrf_token", &csrf),
                ("client_id", "webapp"),
                ("post_logout_redirect_uri", "http://127.0.0.1:9000/"),
                ("state", "s1"),
            ],
        )
        .await;
    assert_eq!(confirmed.status(), 303);
    assert_eq!(location_param(&confirmed, "state").as_deref(), Some("s1"));
    assert_eq!(prompt_none(&browser).await.as_deref(), Some("login_required"));
}

#[tokio::test]
async fn rp_initiated_logout_rejects_a_forged_hint_and_a_mismatched_client_id() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    let tokens = server.webapp_tokens(&browser, "openid").await;
    let forged = browser.http.get(server.url("/logout")).query(&[("id_token_hint", "a.b.c")]).send().await.unwrap();
    assert_eq!(forged.status(), 400);
    let params = [("id_token_hint", tokens["id_token"].as_str().unwrap()), ("client_id", "spa")];
    let mismatch = browser.http.get(server.url("/logout")).query(&params).send().await.unwrap();
    assert_eq!(mismatch.status(), 400);
    assert_eq!(prompt_none(&browser).await, None, "nothing was ended");
}

/// RP-Initiated Logout §3 and RFC 9700 §4.11.2: a self-registered client's
/// `post_logout_redirect_uri` is not followed when there is no session to end — not even
/// with an ID token of its own as a hint, which any registrant can get — while a declared
/// client's is, as before.
#[tokio::test]
async fn rp_initiated_logout_3_a_self_registered_client_is_not_redirected_to_without_a_session_to_end() {
    let server = TestServer::start().await;
    let (client, tokens) = self_registered_sign_in(&server, &Browser::new(&server)).await;
    let client_id = client["client_id"].as_str().unwrap();
    let id_token = tokens["id_token"].as_str().unwrap();
    let stranger = Browser::new(&server);
    for params in [
        vec![("client_id", client_id), ("post_logout_redirect_uri", SIGNED_OUT_ELSEWHERE), ("state", "s")],
        vec![("id_token_hint", id_token), ("post_logout_redirect_uri", SIGNED_OUT_ELSEWHERE), ("state", "s")],
    ] {
        let response = stranger.http.get(server.url("/logout")).query(&params).send().await.unwrap();
        assert_eq!(response.status(), 200, "{params:?}");
        assert!(response.headers().get("location").is_none(), "{params:?} must not be redirected");
        assert!(response.text().await.unwrap().contains("You are signed out."));
    }
    let params = [("client_id", "webapp"), ("post_logout_redirect_uri", "http://127.0.0.1:9000/"), ("state", "s")];
    let declared = stranger.http.get(server.url("/logout")).query(&params).send().await.unwrap();
    assert_eq!(declared.status(), 303, "a declared client's URI is followed as before");
    assert_eq!(location_base(&declared), "http://127.0.0.1:9000/");
}

/// RFC 9700 §4.11.2: with a session, a self-registered client's logout redirect follows
/// the user's confirmation, or a hint for this very session.
#[tokio::test]
async fn rp_initiated_logout_3_a_self_registered_client_is_redirected_to_after_the_user_confirmed() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    let (client, _) = self_registered_sign_in(&server, &browser).await;
    let client_id = client["client_id"].as_str().unwrap();
    let params = [("client_id", client_id), ("post_logout_redirect_uri", SIGNED_OUT_ELSEWHERE), ("state", "s1")];
    let page = browser.http.get(server.url("/logout")).query(&params).send().await.unwrap();
    assert_eq!(page.status(), 200, "asked first");
    let csrf = hidden(&page.text().await.unwrap(), "csrf_token");
    let mut confirmed = vec![("decision", "logout"), ("csrf_token", csrf.as_str())];
    confirmed.extend_from_slice(&params);
    let confirmed = browser.post("/logout", &confirmed).await;
    assert_eq!(confirmed.status(), 303);
    assert_eq!(location_base(&confirmed), SIGNED_OUT_ELSEWHERE);
    assert_eq!(location_param(&confirmed, "state").as_deref(), Some("s1"));

    let (_, tokens) = self_registered_sign_in_as(&server, &browser, &client).await;
    let hint =
        [("id_token_hint", tokens["id_token"].as_str().unwrap()), ("post_logout_redirect_uri", SIGNED_OUT_ELSEWHERE)];
    let ended = browser.http.get(server.url("/logout")).query(&hint).send().await.unwrap();
    assert_eq!(ended.status(), 303, "a hint for this session ends it at once");
    assert_eq!(location_base(&ended), SIGNED_OUT_ELSEWHERE);
}

const REGISTERED_ELSEWHERE: &str = "https://elsewhere.example/cb";
const SIGNED_OUT_ELSEWHERE: &str = "https://elsewhere.example/signed-out";

/// Registers a client of its own and signs alice in to it; returns the registration and
/// the token response.
async fn self_registered_sign_in(server: &TestServer, browser: &Browser) -> (Value, Value) {
    let metadata =
        json!({"redirect_uris": [REGISTERED_ELSEWHERE], "post_logout_redirect_uris": [SIGNED_OUT_ELSEWHERE]});
    let client = server.register_client(metadata).await;
    self_registered_sign_in_as(server, browser, &client).await
}

async fn self_registered_sign_in_as(server: &TestServer, browser: &Browser, client: &Value) -> (Value, Value) {
    let (id, secret) = (client["client_id"].as_str().unwrap(), client["client_secret"].as_str().unwrap());
    let params =
        [("client_id", id), ("redirect_uri", REGISTERED_ELSEWHERE), ("response_type", "code"), ("scope", "openid")];
    let code = location_param(&browser.sign_in(&params).await, "code").expect("a code");
    let form = [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", REGISTERED_ELSEWHERE)];
    let tokens = server.post_basic("/token", id, secret, &form).await.json().await.unwrap();
    (client.clone(), tokens)
}

pub async fn logout_with_hint(server: &TestServer, browser: &Browser, id_token: &str) {
    let params = [("id_token_hint", id_token), ("post_logout_redirect_uri", "http://127.0.0.1:9000/")];
    let response = browser.http.get(server.url("/logout")).query(&params).send().await.unwrap();
    assert_eq!(response.status(), 303, "logged out");
}

async fn userinfo_status(server: &TestServer, access_token: &str) -> u16 {
    server.http.get(server.url("/userinfo")).bearer_auth(access_token).send().await.unwrap().status().as_u16()
}

async fn refresh(server: &TestServer, refresh_token: &str) -> reqwest::Response {
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token)];
    server.post_basic("/token", "webapp", "webapp-secret", &form).await
}

/// Issue 22.3: ending the session revokes the grants issued in it, their access tokens and
/// the codes not yet redeemed — except a grant of `offline_access`, whose refresh token
/// keeps working (OIDC Core §11); every access token of the session answers
/// `active: false` at introspection, the offline grant's too (RFC 7662 §2.2).
#[tokio::test]
async fn oidc_core_11_logout_revokes_the_sessions_grants_but_offline_access_survives() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    let offline = server.webapp_tokens(&browser, "openid offline_access").await;
    let online = server.webapp_tokens(&browser, "openid").await;
    let pending = browser.sign_in(&webapp_request("openid", "s", "n")).await;
    let pending_code = location_param(&pending, "code").expect("a code issued in the session");
    let (online_access, offline_access) =
        (online["access_token"].as_str().unwrap(), offline["access_token"].as_str().unwrap());
    let offline_refresh = offline["refresh_token"].as_str().unwrap();
    assert!(server.introspect_active(online_access).await && server.introspect_active(offline_access).await);
    assert_eq!(userinfo_status(&server, online_access).await, 200);

    logout_with_hint(&server, &browser, online["id_token"].as_str().unwrap()).await;

    assert!(!server.introspect_active(online_access).await, "the online grant's access token is revoked");
    assert_eq!(userinfo_status(&server, online_access).await, 401, "revoked everywhere, not only at introspection");
    assert!(!server.introspect_active(offline_access).await, "an access token of the ended session is inactive");
    assert_eq!(userinfo_status(&server, offline_access).await, 200, "yet valid until it expires (documented)");
    let exchange = server.exchange(&pending_code, &[]).await;
    assert_eq!(exchange.status(), 400, "a code of the ended session is no longer redeemable");
    assert_eq!(exchange.json::<Value>().await.unwrap()["error"], "invalid_grant");
    assert!(server.introspect_active(offline_refresh).await, "offline access survives logout");
    let refreshed = refresh(&server, offline_refresh).await;
    assert_eq!(refreshed.status(), 200, "the offline refresh token still works");
    let refreshed: Value = refreshed.json().await.unwrap();
    assert!(refreshed["refresh_token"].is_string(), "and rotates as before");
}

/// Issue 22.3: a logout ends only its own session; the same user's other session (another
/// browser) keeps its grants and its tokens stay active.
#[tokio::test]
async fn logout_leaves_the_grants_of_the_users_other_sessions_alone() {
    let server = TestServer::start().await;
    let (laptop, phone) = (Browser::new(&server), Browser::new(&server));
    let on_laptop = server.webapp_tokens(&laptop, "openid").await;
    let on_phone = server.webapp_tokens(&phone, "openid").await;
    logout_with_hint(&server, &laptop, on_laptop["id_token"].as_str().unwrap()).await;
    assert!(!server.introspect_active(on_laptop["access_token"].as_str().unwrap()).await);
    assert!(server.introspect_active(on_phone["access_token"].as_str().unwrap()).await, "the other session lives");
    assert_eq!(prompt_none(&phone).await, None, "and stays signed in");
}

/// Signs in again in `browser` as `username` through `prompt=login` (consenting if asked)
/// and exchanges the code; returns the token response.
async fn sign_in_again_as(server: &TestServer, browser: &Browser, username: &str) -> Value {
    let mut params = webapp_request("openid", "s2", "n2");
    params.push(("prompt", "login"));
    let page = browser.authorize(&params).await;
    assert_eq!(page.status(), 200, "prompt=login shows the login form");
    let mut redirect = browser.login(&page.text().await.unwrap(), username, "alice-password").await;
    if redirect.status() == 200 {
        redirect = browser.consent(&redirect.text().await.unwrap(), "allow").await;
    }
    let code = location_param(&redirect, "code").expect("a code");
    let response = server.exchange(&code, &[]).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// OIDC Core §11 and Back-Channel Logout 1.0 §2.4 (`sid`): signing in again in the same
/// browser (`prompt=login`) continues the SSO session under its `sid`, so the grants issued
/// before stay linked to it and the logout that ends it revokes them too; the cookie is
/// new all the same.
#[tokio::test]
async fn oidc_core_11_signing_in_again_keeps_the_sid_so_the_logout_revokes_what_was_issued_before() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    let before = server.webapp_tokens(&browser, "openid").await;
    let alice = server.provider.store.user_by_username("alice").await.unwrap().unwrap();
    let sessions_before = server.provider.store.user_sessions(&alice.subject).await.unwrap();
    let again = sign_in_again_as(&server, &browser, "alice").await;
    let sessions_after = server.provider.store.user_sessions(&alice.subject).await.unwrap();
    let sid = |tokens: &Value| jwt_part(tokens["id_token"].as_str().unwrap(), 1)["sid"].clone();
    assert!(sid(&before).is_string());
    assert_eq!(sid(&again), sid(&before), "the same SSO session");
    let [before_session] = &sessions_before[..] else { panic!("one session: {sessions_before:?}") };
    let [after_session] = &sessions_after[..] else { panic!("still one session: {sessions_after:?}") };
    assert_ne!(after_session.session_id, before_session.session_id, "under a new cookie value");
    let (first_access, second_access) =
        (before["access_token"].as_str().unwrap(), again["access_token"].as_str().unwrap());
    assert!(server.introspect_active(first_access).await, "signing in again ends nothing");

    logout_with_hint(&server, &browser, again["id_token"].as_str().unwrap()).await;

    assert!(!server.introspect_active(first_access).await, "the grant from before the second sign-in is revoked");
    assert!(!server.introspect_active(second_access).await);
    assert_eq!(userinfo_status(&server, first_access).await, 401);
}

/// OIDC Core §11: another user signing in in the same browser ends the previous user's
/// session as a logout would (its grants revoked), since no browser can reach it any more.
#[tokio::test]
async fn oidc_core_11_another_user_signing_in_in_the_same_browser_ends_the_previous_users_session() {
    let folder = fixtures_with("second-user", BOB);
    let server = TestServer::start_on(folder, RegistrationPolicy::Open).await;
    let browser = Browser::new(&server);
    let alices = server.webapp_tokens(&browser, "openid").await;
    let bobs = sign_in_again_as(&server, &browser, "bob").await;
    let subject = |tokens: &Value| jwt_part(tokens["id_token"].as_str().unwrap(), 1)["sub"].clone();
    assert_ne!(subject(&bobs), subject(&alices), "bob signed in");
    assert!(!server.introspect_active(alices["access_token"].as_str().unwrap()).await, "alice's session ended");
    assert!(server.introspect_active(bobs["access_token"].as_str().unwrap()).await);
    let alice = server.provider.store.user_by_username("alice").await.unwrap().unwrap();
    assert_eq!(server.provider.store.user_sessions(&alice.subject).await.unwrap(), [], "alice has no session left");
}

/// A second user, with alice's password.
const BOB: &str = r#"apiVersion: portcullis.dev/v1alpha1
kind: OidcUser
metadata: {name: bob, namespace: test}
spec:
  username: bob
  passwordSecretRef: {name: alice-password, key: passwordHash}
"#;

/// Back-Channel Logout 1.0 §2.5: a client without a `backchannel_logout_uri` is sent no
/// logout token.
#[tokio::test]
async fn backchannel_logout_2_5_a_client_without_a_uri_gets_no_logout_token() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    let tokens = server.webapp_tokens(&browser, "openid").await;
    logout_with_hint(&server, &browser, tokens["id_token"].as_str().unwrap()).await;
    let now = server.provider.clock.now();
    assert_eq!(server.provider.store.claim_logouts(now + 60, now + 90, 10).await.unwrap(), []);
}
