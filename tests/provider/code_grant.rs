//! RFC 6749 §4.1.3 / OIDC Core §3.1.3 code exchange, RFC 7636 PKCE at the token endpoint,
//! and RFC 6749 §6 / RFC 9700 §4.14.2 refresh-token rotation.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use crate::fixtures::fixtures_with_webapp;
use crate::harness::{
    Browser, Pkce, SPA_REDIRECT, TestServer, WEBAPP_REDIRECT, assert_oauth_error, jwt_part, location_param,
    webapp_request,
};

async fn webapp_code(server: &TestServer, browser: &Browser, scope: &str) -> String {
    let _ = server;
    let redirect = browser.sign_in(&webapp_request(scope, "st", "n-0S6_WzA2Mj")).await;
    location_param(&redirect, "code").expect("a code")
}

#[tokio::test]
async fn oidc_core_3_1_3_3_token_response_has_access_id_and_refresh_tokens() {
    let server = TestServer::start().await;
    let tokens = server.webapp_tokens(&Browser::new(&server), "openid profile offline_access").await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3600);
    assert_eq!(tokens["scope"], "offline_access openid profile");
    assert!(tokens["refresh_token"].as_str().is_some_and(|t| t.len() >= 32));
    let access = jwt_part(tokens["access_token"].as_str().unwrap(), 1);
    assert_eq!(jwt_part(tokens["access_token"].as_str().unwrap(), 0)["typ"], "at+jwt");
    assert_eq!(access["sub"], "alice");
    assert_eq!(access["client_id"], "webapp");
    assert!(access["auth_time"].as_u64().is_some());
}

#[tokio::test]
async fn oidc_core_3_1_3_6_id_token_claims_and_at_hash() {
    let server = TestServer::start().await;
    let tokens = server.webapp_tokens(&Browser::new(&server), "openid").await;
    assert!(tokens.get("refresh_token").is_none(), "no offline_access, no refresh token");
    let id_token = tokens["id_token"].as_str().unwrap();
    let header = jwt_part(id_token, 0);
    assert_eq!(header["alg"], "RS256");
    let claims = jwt_part(id_token, 1);
    assert_eq!(claims["iss"], server.base);
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["aud"], "webapp");
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    assert!(claims["auth_time"].as_u64().is_some());
    assert!(claims["sid"].as_str().is_some());
    assert!(claims["exp"].as_u64().unwrap() > claims["iat"].as_u64().unwrap());
    // at_hash: left half of SHA-256 of the access token, base64url (computed independently).
    let digest =
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, tokens["access_token"].as_str().unwrap().as_bytes());
    assert_eq!(claims["at_hash"], URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16]));
}

#[tokio::test]
async fn rfc6749_4_1_2_reused_code_fails_and_revokes_the_tokens_it_issued() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    let code = webapp_code(&server, &browser, "openid offline_access").await;
    let first: Value = server.exchange(&code, &[]).await.json().await.unwrap();
    let access_token = first["access_token"].as_str().unwrap();
    assert!(server.introspect_active(access_token).await);
    let second = server.exchange(&code, &[]).await;
    assert_oauth_error(second, 400, "invalid_grant").await;
    assert!(!server.introspect_active(access_token).await, "the first access token is revoked");
    let refresh = [("grant_type", "refresh_token"), ("refresh_token", first["refresh_token"].as_str().unwrap())];
    let refreshed = server.post_basic("/token", "webapp", "webapp-secret", &refresh).await;
    assert_oauth_error(refreshed, 400, "invalid_grant").await;
}

#[tokio::test]
async fn rfc6749_4_1_3_redirect_uri_must_match_the_authorization_request() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    let code = webapp_code(&server, &browser, "openid").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "http://127.0.0.1:9000/other"),
    ];
    let response = server.post_basic("/token", "webapp", "webapp-secret", &form).await;
    assert_oauth_error(response, 400, "invalid_grant").await;
    let code = webapp_code(&server, &browser, "openid").await;
    let form = [("grant_type", "authorization_code"), ("code", code.as_str())];
    let response = server.post_basic("/token", "webapp", "webapp-secret", &form).await;
    assert_oauth_error(response, 400, "invalid_grant").await;
}

#[tokio::test]
async fn rfc6749_4_1_3_code_is_bound_to_its_client() {
    let server = TestServer::start().await;
    let code = webapp_code(&server, &Browser::new(&server), "openid").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", WEBAPP_REDIRECT),
        ("client_id", "spa"),
    ];
    let response = server.http.post(server.url("/token")).form(&form).send().await.unwrap();
    assert_oauth_error(response, 400, "invalid_grant").await;
}

#[tokio::test]
async fn unknown_code_is_invalid_grant() {
    let server = TestServer::start().await;
    assert_oauth_error(server.exchange("not-a-code", &[]).await, 400, "invalid_grant").await;
}

async fn spa_code(server: &TestServer, pkce: &Pkce) -> String {
    let browser = Browser::new(server);
    let params = [
        ("client_id", "spa"),
        ("redirect_uri", SPA_REDIRECT),
        ("response_type", "code"),
        ("scope", "openid offline_access"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    location_param(&browser.sign_in(&params).await, "code").expect("a code")
}

async fn spa_exchange(server: &TestServer, code: &str, verifier: Option<&str>) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", SPA_REDIRECT),
        ("client_id", "spa"),
    ];
    if let Some(verifier) = verifier {
        form.push(("code_verifier", verifier));
    }
    server.http.post(server.url("/token")).form(&form).send().await.unwrap()
}

#[tokio::test]
async fn rfc7636_4_6_public_client_exchanges_with_client_id_and_verifier() {
    let server = TestServer::start().await;
    let pkce = Pkce::new("good");
    let code = spa_code(&server, &pkce).await;
    let response = spa_exchange(&server, &code, Some(&pkce.verifier)).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(body["id_token"].is_string() && body["refresh_token"].is_string());
}

#[tokio::test]
async fn rfc7636_4_6_wrong_or_missing_verifier_is_invalid_grant() {
    let server = TestServer::start().await;
    let pkce = Pkce::new("right");
    let code = spa_code(&server, &pkce).await;
    let wrong = Pkce::new("wrong");
    assert_oauth_error(spa_exchange(&server, &code, Some(&wrong.verifier)).await, 400, "invalid_grant").await;
    let code = spa_code(&server, &pkce).await;
    assert_oauth_error(spa_exchange(&server, &code, None).await, 400, "invalid_grant").await;
}

async fn refresh(server: &TestServer, token: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", token)];
    form.extend_from_slice(extra);
    server.post_basic("/token", "webapp", "webapp-secret", &form).await
}

#[tokio::test]
async fn rfc6749_6_refresh_rotates_the_refresh_token() {
    let server = TestServer::start().await;
    let tokens = server.webapp_tokens(&Browser::new(&server), "openid profile offline_access").await;
    let first = tokens["refresh_token"].as_str().unwrap();
    let response = refresh(&server, first, &[]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let rotated: Value = response.json().await.unwrap();
    let second = rotated["refresh_token"].as_str().unwrap();
    assert_ne!(first, second);
    assert_eq!(rotated["scope"], "offline_access openid profile");
    assert_eq!(jwt_part(rotated["id_token"].as_str().unwrap(), 1)["sub"], "alice");
    assert_eq!(refresh(&server, second, &[]).await.status(), 200, "the new token works");
}

#[tokio::test]
async fn rfc9700_4_14_2_reusing_a_rotated_refresh_token_revokes_the_family() {
    let server = TestServer::start().await;
    let tokens = server.webapp_tokens(&Browser::new(&server), "openid offline_access").await;
    let first = tokens["refresh_token"].as_str().unwrap();
    let rotated: Value = refresh(&server, first, &[]).await.json().await.unwrap();
    let second = rotated["refresh_token"].as_str().unwrap();
    let latest_access = rotated["access_token"].as_str().unwrap();
    // Strict by default: even an immediate reuse is a replay.
    let reused = assert_oauth_error(refresh(&server, first, &[]).await, 400, "invalid_grant").await;
    assert_eq!(reused["error_description"], "the refresh token was already used; the grant is revoked");
    assert_oauth_error(refresh(&server, second, &[]).await, 400, "invalid_grant").await;
    assert!(!server.introspect_active(latest_access).await, "access tokens of the family are revoked too");
}

#[tokio::test]
async fn rfc9700_4_14_2_concurrent_refreshes_under_the_strict_default_revoke_the_family() {
    let server = TestServer::start().await;
    let tokens = server.webapp_tokens(&Browser::new(&server), "openid offline_access").await;
    let token = tokens["refresh_token"].as_str().unwrap();
    let (a, b) = tokio::join!(refresh(&server, token, &[]), refresh(&server, token, &[]));
    assert!(a.status() != 200 || b.status() != 200, "the reuse is refused");
    let winner = [a, b].into_iter().find(|r| r.status() == 200);
    if let Some(winner) = winner {
        let winner: Value = winner.json().await.unwrap();
        let next = winner["refresh_token"].as_str().unwrap();
        assert_oauth_error(refresh(&server, next, &[]).await, 400, "invalid_grant").await;
    }
    assert_oauth_error(refresh(&server, token, &[]).await, 400, "invalid_grant").await;
}

async fn server_with_reuse_interval(name: &str) -> TestServer {
    let folder = fixtures_with_webapp(name, "  refreshTokenReuseInterval: 3s\n");
    TestServer::start_on(folder, portcullis::provider::RegistrationPolicy::Open).await
}

#[tokio::test]
async fn refresh_token_reuse_interval_gives_concurrent_refreshes_the_same_successor() {
    let server = server_with_reuse_interval("reuse-concurrent").await;
    let tokens = server.webapp_tokens(&Browser::new(&server), "openid offline_access").await;
    let token = tokens["refresh_token"].as_str().unwrap();
    let (a, b) = tokio::join!(refresh(&server, token, &[]), refresh(&server, token, &[]));
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (200, 200), "both concurrent refreshes succeed");
    let (a, b): (Value, Value) = (a.json().await.unwrap(), b.json().await.unwrap());
    assert_eq!(a["refresh_token"], b["refresh_token"], "the same successor refresh token");
    assert_eq!(a["access_token"], b["access_token"], "the same access token");
    assert_eq!(a["id_token"], b["id_token"], "the same ID token");
    assert_ne!(a["refresh_token"], tokens["refresh_token"]);
    let again: Value = refresh(&server, token, &[]).await.json().await.unwrap();
    assert_eq!(again["refresh_token"], a["refresh_token"], "a third use within the interval too");
    let next = a["refresh_token"].as_str().unwrap();
    assert_eq!(refresh(&server, next, &[]).await.status(), 200, "the family lives on");
}

#[tokio::test]
async fn refresh_token_reuse_after_the_interval_revokes_the_family() {
    let server = server_with_reuse_interval("reuse-late").await;
    let tokens = server.webapp_tokens(&Browser::new(&server), "openid offline_access").await;
    let first = tokens["refresh_token"].as_str().unwrap();
    let rotated: Value = refresh(&server, first, &[]).await.json().await.unwrap();
    let second = rotated["refresh_token"].as_str().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(4100)).await;
    assert_oauth_error(refresh(&server, first, &[]).await, 400, "invalid_grant").await;
    assert_oauth_error(refresh(&server, second, &[]).await, 400, "invalid_grant").await;
    assert!(!server.introspect_active(rotated["access_token"].as_str().unwrap()).await);
}

#[tokio::test]
async fn rfc6749_6_refresh_token_is_bound_to_its_client() {
    let server = TestServer::start().await;
    let tokens = server.webapp_tokens(&Browser::new(&server), "openid offline_access").await;
    let token = tokens["refresh_token"].as_str().unwrap();
    let form = [("grant_type", "refresh_token"), ("refresh_token", token), ("client_id", "spa")];
    let stolen = server.http.post(server.url("/token")).form(&form).send().await.unwrap();
    assert_oauth_error(stolen, 400, "invalid_grant").await;
    assert_eq!(refresh(&server, token, &[]).await.status(), 200, "the owner can still use it");
}

#[tokio::test]
async fn rfc6749_6_refresh_scope_may_narrow_but_never_widen() {
    let server = TestServer::start().await;
    let tokens = server.webapp_tokens(&Browser::new(&server), "openid profile offline_access").await;
    let token = tokens["refresh_token"].as_str().unwrap();
    let widened = refresh(&server, token, &[("scope", "openid email")]).await;
    assert_oauth_error(widened, 400, "invalid_scope").await;
    let narrowed: Value = refresh(&server, token, &[("scope", "openid")]).await.json().await.unwrap();
    assert_eq!(narrowed["scope"], "openid");
    let next = narrowed["refresh_token"].as_str().unwrap();
    let again: Value = refresh(&server, next, &[]).await.json().await.unwrap();
    assert_eq!(again["scope"], "offline_access openid profile", "RFC 6749 §6: the refresh token keeps its scope");
}

#[tokio::test]
async fn rfc7009_2_1_revoking_a_refresh_token_revokes_its_grant() {
    let server = TestServer::start().await;
    let tokens = server.webapp_tokens(&Browser::new(&server), "openid offline_access").await;
    let token = tokens["refresh_token"].as_str().unwrap();
    assert!(server.introspect_active(token).await, "RFC 7662: live refresh tokens are active");
    let response = server
        .post_basic("/revoke", "webapp", "webapp-secret", &[("token", token), ("token_type_hint", "refresh_token")])
        .await;
    assert_eq!(response.status(), 200);
    assert!(!server.introspect_active(token).await);
    assert!(!server.introspect_active(tokens["access_token"].as_str().unwrap()).await);
    assert_oauth_error(refresh(&server, token, &[]).await, 400, "invalid_grant").await;
}
