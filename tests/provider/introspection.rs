//! RFC 7662 token introspection.

use portcullis::model::UserRecord;
use serde_json::Value;

use crate::harness::{Browser, TestServer, assert_oauth_error};

async fn introspect(server: &TestServer, id: &str, secret: &str, token: &str) -> Value {
    let response = server.post_basic("/introspect", id, secret, &[("token", token)]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.unwrap()
}

#[tokio::test]
async fn rfc7662_2_2_valid_token_is_active_with_its_claims() {
    let server = TestServer::start().await;
    let token = server.m2m_token().await;
    let body = introspect(&server, "m2m", "m2m-secret", &token).await;
    assert_eq!(body["active"], true);
    assert_eq!(body["client_id"], "m2m");
    assert_eq!(body["scope"], "reports:read reports:write");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["iss"], server.base);
    assert!(body["exp"].as_u64().is_some());
}

#[tokio::test]
async fn rfc7662_4_the_audience_resource_server_may_introspect() {
    let server = TestServer::start().await;
    let token = server.m2m_token().await;
    let body = introspect(&server, "reports-api", "reports-api-secret", &token).await;
    assert_eq!(body["active"], true);
}

#[tokio::test]
async fn rfc7662_4_an_unrelated_client_learns_nothing() {
    let server = TestServer::start().await;
    let token = server.m2m_token().await;
    let response = server
        .http
        .post(server.url("/introspect"))
        .form(&[("token", token.as_str()), ("client_id", "m2m-post"), ("client_secret", "m2m-post-secret")])
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"active": false}));
}

#[tokio::test]
async fn rfc7662_2_2_garbage_and_tampered_tokens_are_inactive() {
    let server = TestServer::start().await;
    let token = server.m2m_token().await;
    let tampered = format!("{}x", token);
    for candidate in ["garbage", "a.b.c", tampered.as_str(), "eyJhbGciOiJub25lIn0.e30."] {
        let body = introspect(&server, "m2m", "m2m-secret", candidate).await;
        assert_eq!(body, serde_json::json!({"active": false}), "{candidate}");
    }
}

#[tokio::test]
async fn rfc7662_2_1_introspection_requires_client_authentication() {
    let server = TestServer::start().await;
    let token = server.m2m_token().await;
    let response = server.http.post(server.url("/introspect")).form(&[("token", token.as_str())]).send().await.unwrap();
    assert_oauth_error(response, 401, "invalid_client").await;
    let response = server.post_basic("/introspect", "m2m", "wrong", &[("token", token.as_str())]).await;
    assert_oauth_error(response, 401, "invalid_client").await;
}

#[tokio::test]
async fn rfc7662_2_1_public_clients_cannot_introspect() {
    let server = TestServer::start().await;
    let token = server.m2m_token().await;
    let response = server
        .http
        .post(server.url("/introspect"))
        .form(&[("token", token.as_str()), ("client_id", "spa")])
        .send()
        .await;
    assert_oauth_error(response.unwrap(), 401, "invalid_client").await;
}

#[tokio::test]
async fn rfc7662_2_1_missing_token_is_invalid_request() {
    let server = TestServer::start().await;
    let response = server.post_basic("/introspect", "m2m", "m2m-secret", &[]).await;
    assert_oauth_error(response, 400, "invalid_request").await;
}

/// RFC 7662 §2.2 with the directory: a user's access token is inactive from the moment
/// the directory says the user is disabled, before anything of theirs is revoked.
#[tokio::test]
async fn rfc7662_2_2_a_disabled_users_access_token_is_inactive_at_once() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    let tokens = server.webapp_tokens(&browser, "openid profile").await;
    let access_token = tokens["access_token"].as_str().unwrap();
    assert!(server.introspect_active(access_token).await);
    let alice = server.provider.store.user_by_username("alice").await.unwrap().unwrap();
    server.provider.store.put_user(UserRecord { disabled: true, ..(*alice).clone() }).await.unwrap();
    assert!(!server.introspect_active(access_token).await, "disabled");
    server.provider.store.delete_user("alice").await.unwrap();
    assert!(!server.introspect_active(access_token).await, "deleted");
}
