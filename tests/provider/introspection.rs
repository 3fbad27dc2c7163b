//! RFC 7662 token introspection.

use serde_json::Value;

use crate::harness::{TestServer, assert_oauth_error};

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
