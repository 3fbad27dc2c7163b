//! RFC 7009 token revocation.

use serde_json::Value;

use crate::harness::{TestServer, assert_oauth_error};

async fn is_active(server: &TestServer, token: &str) -> bool {
    let response = server.post_basic("/introspect", "m2m", "m2m-secret", &[("token", token)]).await;
    let body: Value = response.json().await.unwrap();
    body["active"].as_bool().unwrap()
}

#[tokio::test]
async fn rfc7009_2_1_revoked_access_token_is_inactive_afterwards() {
    let server = TestServer::start().await;
    let token = server.m2m_token().await;
    let other = server.m2m_token().await;
    assert!(is_active(&server, &token).await);
    let response = server.post_basic("/revoke", "m2m", "m2m-secret", &[("token", token.as_str())]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert!(!is_active(&server, &token).await);
    assert!(is_active(&server, &other).await, "only the revoked token is affected");
}

#[tokio::test]
async fn rfc7009_2_2_unknown_or_invalid_token_is_answered_with_200() {
    let server = TestServer::start().await;
    for token in ["unknown", "a.b.c"] {
        let form = [("token", token), ("token_type_hint", "access_token")];
        let response = server.post_basic("/revoke", "m2m", "m2m-secret", &form).await;
        assert_eq!(response.status(), 200, "{token}");
    }
    let form = [("token", "x"), ("token_type_hint", "something_else")];
    assert_eq!(server.post_basic("/revoke", "m2m", "m2m-secret", &form).await.status(), 200);
}

#[tokio::test]
async fn rfc7009_2_1_revocation_requires_client_authentication() {
    let server = TestServer::start().await;
    let token = server.m2m_token().await;
    let response = server.http.post(server.url("/revoke")).form(&[("token", token.as_str())]).send().await.unwrap();
    assert_oauth_error(response, 401, "invalid_client").await;
    let response = server.post_basic("/revoke", "m2m", "wrong", &[("token", token.as_str())]).await;
    assert_oauth_error(response, 401, "invalid_client").await;
    assert!(is_active(&server, &token).await);
}

#[tokio::test]
async fn rfc7009_2_1_a_client_cannot_revoke_another_clients_token() {
    let server = TestServer::start().await;
    let token = server.m2m_token().await;
    let response =
        server.post_basic("/revoke", "reports-api", "reports-api-secret", &[("token", token.as_str())]).await;
    assert_oauth_error(response, 400, "unauthorized_client").await;
    assert!(is_active(&server, &token).await);
}

#[tokio::test]
async fn rfc7009_2_1_missing_token_is_invalid_request() {
    let server = TestServer::start().await;
    let response = server.post_basic("/revoke", "m2m", "m2m-secret", &[]).await;
    assert_oauth_error(response, 400, "invalid_request").await;
}
