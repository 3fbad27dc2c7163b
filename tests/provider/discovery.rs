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
    assert_eq!(doc["authorization_endpoint"], server.url("/authorize"));
    assert_eq!(doc["userinfo_endpoint"], server.url("/userinfo"));
    assert_eq!(doc["end_session_endpoint"], server.url("/logout"));
}

#[tokio::test]
async fn oidc_discovery_3_metadata_lists_what_is_implemented() {
    use serde_json::json;
    let server = TestServer::start().await;
    let doc: Value =
        server.http.get(server.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        doc["grant_types_supported"],
        json!([
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:device_code"
        ])
    );
    assert_eq!(doc["device_authorization_endpoint"], server.url("/device_authorization"));
    assert_eq!(doc["response_types_supported"], json!(["code"]));
    assert_eq!(doc["response_modes_supported"], json!(["query", "form_post"]));
    let methods = json!(["client_secret_basic", "client_secret_post", "none"]);
    assert_eq!(doc["token_endpoint_auth_methods_supported"], methods);
    assert_eq!(
        doc["introspection_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post"])
    );
    assert_eq!(doc["subject_types_supported"], json!(["public"]));
    assert_eq!(doc["id_token_signing_alg_values_supported"], json!(["RS256"]), "the algorithm that signs ID tokens");
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]), "RFC 7636: plain is not supported");
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    assert_eq!(doc["request_parameter_supported"], false);
    assert_eq!(doc["request_uri_parameter_supported"], false);
    assert_eq!(doc["claims_parameter_supported"], true, "OIDC Core 5.5");
    assert_eq!(doc["backchannel_logout_supported"], true, "Back-Channel Logout 1.0 section 2.1");
    assert_eq!(doc["backchannel_logout_session_supported"], true, "logout tokens always carry sid");
    assert_eq!(doc["frontchannel_logout_supported"], true, "Front-Channel Logout 1.0 section 3");
    assert_eq!(doc["frontchannel_logout_session_supported"], true, "frames carry iss and sid when required");
    for scope in ["openid", "profile", "email", "phone", "address", "groups", "roles", "offline_access"] {
        assert!(doc["scopes_supported"].as_array().unwrap().contains(&scope.into()), "{scope}");
    }
    let claims = doc["claims_supported"].as_array().unwrap();
    for claim in ["picture", "locale", "zoneinfo", "phone_number", "phone_number_verified", "address", "groups"] {
        assert!(claims.contains(&claim.into()), "OIDC Discovery 3 claims_supported lists {claim}");
    }
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

#[tokio::test]
async fn ready_when_the_store_answers_and_a_key_is_loaded() {
    let server = TestServer::start().await;
    let response = server.http.get(server.url("/ready")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), r#"{"status":"ready"}"#);
}
