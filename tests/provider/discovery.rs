//! OpenID Connect Discovery 1.0, RFC 8414 and the JWKS (RFC 7517).

use serde_json::Value;

use crate::harness::TestServer;

#[tokio::test]
async fn oidc_discovery_4_3_issuer_equals_the_configured_issuer_exactly() {
    let server = TestServer::start().await;
    let response = server.http.get(server.url("/.well-known/openid-configuration")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let doc: Value = response.json().await.unwrap();
    assert_eq!(doc["issuer"], server.base);
    assert_eq!(doc["jwks_uri"], server.url("/jwks.json"));
    assert_eq!(doc["token_endpoint"], server.url("/token"));
    assert_eq!(doc["introspection_endpoint"], server.url("/introspect"));
    assert_eq!(doc["revocation_endpoint"], server.url("/revoke"));
}

#[tokio::test]
async fn oidc_discovery_3_metadata_lists_what_is_implemented() {
    let server = TestServer::start().await;
    let doc: Value =
        server.http.get(server.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert!(doc["grant_types_supported"].as_array().unwrap().contains(&"client_credentials".into()));
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post"])
    );
    assert_eq!(doc["subject_types_supported"], serde_json::json!(["public"]));
    assert_eq!(doc["id_token_signing_alg_values_supported"], serde_json::json!(["ES256", "EdDSA", "RS256"]));
}

#[tokio::test]
async fn rfc8414_3_oauth_authorization_server_metadata_matches_openid_configuration() {
    let server = TestServer::start().await;
    let oidc: Value =
        server.http.get(server.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    let oauth: Value = server
        .http
        .get(server.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(oidc, oauth);
}

#[tokio::test]
async fn every_advertised_endpoint_is_served() {
    let server = TestServer::start().await;
    let doc: Value =
        server.http.get(server.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    for (name, value) in doc.as_object().unwrap() {
        if !(name.ends_with("_endpoint") || name.ends_with("_uri")) {
            continue;
        }
        let url = value.as_str().unwrap();
        assert!(url.starts_with(&server.base), "{name} = {url}");
        let status = server.http.get(url).send().await.unwrap().status();
        assert_ne!(status, 404, "{name} = {url} is not served");
    }
}

#[tokio::test]
async fn rfc7517_jwks_is_public_cacheable_and_has_no_private_members() {
    let server = TestServer::start().await;
    let response = server.http.get(server.url("/jwks.json")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let cache = response.headers()["cache-control"].to_str().unwrap().to_owned();
    assert!(cache.starts_with("public, max-age="), "{cache}");
    let jwks: Value = response.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 3);
    for key in keys {
        for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            assert!(key.get(private).is_none(), "private member {private} published: {key}");
        }
        assert_eq!(key["use"], "sig");
        assert!(key["kid"].as_str().is_some_and(|k| !k.is_empty()));
    }
    let well_known: Value =
        server.http.get(server.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(jwks, well_known);
}

#[tokio::test]
async fn health_answers_while_the_process_is_alive() {
    let server = TestServer::start().await;
    let response = server.http.get(server.url("/health")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), r#"{"status":"ok"}"#);
}
