//! RFC 6749 §4.4 / §5 token endpoint, client authentication (§2.3.1) and RFC 9068 tokens.

use std::sync::Arc;

use portcullis::clock::Clock;
use portcullis::model::ClientRecord;
use portcullis::store::{Directory, MemoryStore};
use portcullis::vocabulary::TokenEndpointAuthMethod;
use serde_json::Value;

use crate::fixtures::m2m_client;
use crate::harness::{TestServer, assert_oauth_error, jwt_part, serve_store};

#[tokio::test]
async fn rfc6749_4_4_client_credentials_with_client_secret_basic() {
    let server = TestServer::start().await;
    let response = server.post_basic("/token", "m2m", "m2m-secret", &[("grant_type", "client_credentials")]).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "reports:read reports:write");
    assert!(body.get("refresh_token").is_none(), "RFC 6749 §4.4.3: no refresh token");
}

#[tokio::test]
async fn rfc6749_2_3_1_client_secret_post() {
    let server = TestServer::start().await;
    let form = [("grant_type", "client_credentials"), ("client_id", "m2m-post"), ("client_secret", "m2m-post-secret")];
    let response = server.http.post(server.url("/token")).form(&form).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["expires_in"], 300, "the client's accessTokenLifetime applies");
}

#[tokio::test]
async fn rfc6749_2_3_1_basic_credentials_are_form_urlencoded() {
    let server = TestServer::start().await;
    // "m2m-secret" with the hyphen percent-encoded must still authenticate.
    let response = server
        .http
        .post(server.url("/token"))
        .header("authorization", "Basic bTJtOm0ybSUyRHNlY3JldA==")
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn generated_secret_printed_by_dev_authenticates() {
    let server = TestServer::start().await;
    let secret = server.generated["generated"].clone();
    let response = server.post_basic("/token", "generated", &secret, &[("grant_type", "client_credentials")]).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn rfc6749_5_2_wrong_secret_is_401_invalid_client_with_www_authenticate() {
    let server = TestServer::start().await;
    let response = server.post_basic("/token", "m2m", "wrong", &[("grant_type", "client_credentials")]).await;
    assert_eq!(response.headers()["www-authenticate"], "Basic realm=\"portcullis\"");
    assert_oauth_error(response, 401, "invalid_client").await;
}

#[tokio::test]
async fn rfc6749_5_2_unknown_client_and_missing_credentials_are_invalid_client() {
    let server = TestServer::start().await;
    let unknown = server.post_basic("/token", "nobody", "x", &[("grant_type", "client_credentials")]).await;
    let unknown = assert_oauth_error(unknown, 401, "invalid_client").await;
    let wrong = server.post_basic("/token", "m2m", "wrong", &[("grant_type", "client_credentials")]).await;
    let wrong = assert_oauth_error(wrong, 401, "invalid_client").await;
    assert_eq!(unknown, wrong, "responses must not reveal which client ids exist");
    let anonymous = server.http.post(server.url("/token")).form(&[("grant_type", "client_credentials")]).send().await;
    assert_oauth_error(anonymous.unwrap(), 401, "invalid_client").await;
}

/// What every failed client authentication answers, whatever the reason.
const AUTHENTICATION_FAILED: &str = "client authentication failed";

#[tokio::test]
async fn oidc_core_9_client_must_use_its_declared_auth_method_and_the_refusal_tells_nothing() {
    let server = TestServer::start().await;
    let post =
        [("grant_type", "client_credentials"), ("client_id", "reports-api"), ("client_secret", "reports-api-secret")];
    let response = server.http.post(server.url("/token")).form(&post).send().await.unwrap();
    let body = assert_oauth_error(response, 401, "invalid_client").await;
    assert_eq!(body["error_description"], AUTHENTICATION_FAILED, "explicit client_secret_basic refuses post");
    let basic =
        server.post_basic("/token", "m2m-post", "m2m-post-secret", &[("grant_type", "client_credentials")]).await;
    let body = assert_oauth_error(basic, 401, "invalid_client").await;
    assert_eq!(body["error_description"], AUTHENTICATION_FAILED, "explicit client_secret_post refuses basic");
}

#[tokio::test]
async fn a_client_that_declares_no_method_authenticates_with_basic_or_post() {
    let server = TestServer::start().await;
    let basic = server.post_basic("/token", "m2m", "m2m-secret", &[("grant_type", "client_credentials")]).await;
    assert_eq!(basic.status(), 200);
    let form = [("grant_type", "client_credentials"), ("client_id", "m2m"), ("client_secret", "m2m-secret")];
    let post = server.http.post(server.url("/token")).form(&form).send().await.unwrap();
    assert_eq!(post.status(), 200);
    let id_only = server.http.post(server.url("/token")).form(&form[..2]).send().await.unwrap();
    let body = assert_oauth_error(id_only, 401, "invalid_client").await;
    assert_eq!(body["error_description"], AUTHENTICATION_FAILED, "a confidential client must send its secret");
}

#[tokio::test]
async fn every_client_authentication_failure_answers_the_same_description() {
    let server = TestServer::start().await;
    let grant = [("grant_type", "client_credentials")];
    let requests = [
        server.http.post(server.url("/token")).form(&grant),
        server.http.post(server.url("/token")).basic_auth("nobody", Some("x")).form(&grant),
        server.http.post(server.url("/token")).basic_auth("m2m", Some("wrong")).form(&grant),
        server.http.post(server.url("/token")).header("authorization", "Basic !!!").form(&grant),
        server.http.post(server.url("/token")).header("authorization", "Bearer abc").form(&grant),
        server.http.post(server.url("/introspect")).form(&[("token", "x"), ("client_id", "spa")]),
    ];
    for request in requests {
        let body = assert_oauth_error(request.send().await.unwrap(), 401, "invalid_client").await;
        assert_eq!(body["error_description"], AUTHENTICATION_FAILED, "{body}");
    }
}

#[tokio::test]
async fn rfc6749_2_3_two_authentication_methods_are_invalid_request() {
    let server = TestServer::start().await;
    let form = [("grant_type", "client_credentials"), ("client_secret", "m2m-secret")];
    let response = server.post_basic("/token", "m2m", "m2m-secret", &form).await;
    assert_oauth_error(response, 400, "invalid_request").await;
}

#[tokio::test]
async fn rfc6749_5_1_token_response_is_no_store() {
    let server = TestServer::start().await;
    let response = server.post_basic("/token", "m2m", "m2m-secret", &[("grant_type", "client_credentials")]).await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["pragma"], "no-cache");
}

#[tokio::test]
async fn rfc6749_5_2_unsupported_grant_type() {
    let server = TestServer::start().await;
    let response = server.post_basic("/token", "m2m", "m2m-secret", &[("grant_type", "password")]).await;
    assert_oauth_error(response, 400, "unsupported_grant_type").await;
}

#[tokio::test]
async fn rfc6749_5_2_missing_grant_type_is_invalid_request() {
    let server = TestServer::start().await;
    let response = server.post_basic("/token", "m2m", "m2m-secret", &[("scope", "reports:read")]).await;
    let body = assert_oauth_error(response, 400, "invalid_request").await;
    assert_eq!(body["error_description"], "missing required parameter `grant_type`");
}

#[tokio::test]
async fn rfc6749_5_2_grant_not_registered_for_the_client_is_unauthorized_client() {
    let server = TestServer::start().await;
    let response =
        server.post_basic("/token", "webapp", "webapp-secret", &[("grant_type", "client_credentials")]).await;
    assert_oauth_error(response, 400, "unauthorized_client").await;
}

#[tokio::test]
async fn rfc6749_3_3_scope_is_narrowed_to_the_clients_allowance() {
    let server = TestServer::start().await;
    let form = [("grant_type", "client_credentials"), ("scope", "reports:read admin openid")];
    let body: Value = server.post_basic("/token", "m2m", "m2m-secret", &form).await.json().await.unwrap();
    assert_eq!(body["scope"], "reports:read");
    assert_eq!(jwt_part(body["access_token"].as_str().unwrap(), 1)["scope"], "reports:read");
}

#[tokio::test]
async fn rfc6749_5_2_scope_with_nothing_grantable_is_invalid_scope() {
    let server = TestServer::start().await;
    let form = [("grant_type", "client_credentials"), ("scope", "admin")];
    let response = server.post_basic("/token", "m2m", "m2m-secret", &form).await;
    assert_oauth_error(response, 400, "invalid_scope").await;
}

#[tokio::test]
async fn rfc9068_2_access_token_header_and_claims() {
    let server = TestServer::start().await;
    let token = server.m2m_token().await;
    let header = jwt_part(&token, 0);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "RS256");
    let jwks: Value = server.http.get(server.url("/jwks.json")).send().await.unwrap().json().await.unwrap();
    assert!(jwks["keys"].as_array().unwrap().iter().any(|k| k["kid"] == header["kid"]));
    let claims = jwt_part(&token, 1);
    assert_eq!(claims["iss"], server.base);
    assert_eq!(claims["sub"], "m2m");
    assert_eq!(claims["client_id"], "m2m");
    assert_eq!(claims["aud"], "reports-api");
    assert_eq!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(), 3600);
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));
    let second = jwt_part(&server.m2m_token().await, 1);
    assert_ne!(claims["jti"], second["jti"]);
}

/// Fail closed: a confidential client whose stored record lost its secret hash is never
/// authenticated, whatever secret it presents, with either method.
#[tokio::test]
async fn rfc6749_2_3_1_a_confidential_client_without_a_stored_secret_is_refused_whatever_it_sends() {
    let store = Arc::new(MemoryStore::new(Clock::system()));
    store.put_client(ClientRecord { secret_hash: None, ..m2m_client("api") }).await.unwrap();
    let post = ClientRecord {
        client_id: "m2m-post".into(),
        auth_method: Some(TokenEndpointAuthMethod::ClientSecretPost),
        secret_hash: None,
        ..m2m_client("api")
    };
    store.put_client(post).await.unwrap();
    let (base, _, _) = serve_store(store).await;
    let http = reqwest::Client::new();
    for secret in ["", "anything", "m2m-secret"] {
        let basic = http
            .post(format!("{base}/token"))
            .basic_auth("m2m", Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_oauth_error(basic, 401, "invalid_client").await;
        let form = [("grant_type", "client_credentials"), ("client_id", "m2m-post"), ("client_secret", secret)];
        let posted = http.post(format!("{base}/token")).form(&form).send().await.unwrap();
        assert_oauth_error(posted, 401, "invalid_client").await;
    }
}
