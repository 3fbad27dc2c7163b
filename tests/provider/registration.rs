//! RFC 7591 dynamic client registration and RFC 7592 management.

use portcullis::provider::RegistrationPolicy;
use serde_json::{Value, json};

use crate::harness::{Browser, TestServer, location_param};

const CALLBACK: &str = "https://app.example/callback";

async fn register(server: &TestServer, body: &Value) -> reqwest::Response {
    server.http.post(server.url("/register")).json(body).send().await.unwrap()
}

async fn registered(server: &TestServer, body: Value) -> Value {
    let response = register(server, &body).await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.unwrap()
}

async fn assert_registration_error(response: reqwest::Response, status: u16, error: &str) {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].as_str().is_some_and(|d| !d.is_empty()));
}

#[tokio::test]
async fn rfc7591_3_2_1_registration_returns_credentials_and_echoes_metadata() {
    let server = TestServer::start().await;
    let client = registered(
        &server,
        json!({"redirect_uris": [CALLBACK], "client_name": "Third Party", "contacts": ["dev@app.example"], "logo_uri": "https://app.example/logo.png", "unknown_field": true}),
    )
    .await;
    assert!(client["client_id"].as_str().unwrap().starts_with("dcr_"));
    assert!(client["client_secret"].as_str().is_some_and(|s| s.len() >= 32));
    assert_eq!(client["client_secret_expires_at"], 0);
    assert!(client["client_id_issued_at"].as_u64().is_some());
    assert_eq!(client["client_name"], "Third Party");
    assert_eq!(client["contacts"], json!(["dev@app.example"]));
    assert_eq!(client["redirect_uris"], json!([CALLBACK]));
    assert_eq!(client["grant_types"], json!(["authorization_code"]));
    assert_eq!(client["response_types"], json!(["code"]));
    assert_eq!(client["token_endpoint_auth_method"], "client_secret_basic");
    assert!(client.get("unknown_field").is_none());
    assert!(client["registration_access_token"].is_string());
    let uri = client["registration_client_uri"].as_str().unwrap();
    assert_eq!(uri, server.url(&format!("/register/{}", client["client_id"].as_str().unwrap())));
    let doc: Value =
        server.http.get(server.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["registration_endpoint"], server.url("/register"));
}

#[tokio::test]
async fn rfc7591_registered_client_works_in_the_code_flow_introspection_and_revocation() {
    let server = TestServer::start().await;
    let client = registered(&server, json!({"redirect_uris": [CALLBACK], "client_name": "<b>Evil</b> & Co", "scope": "openid profile offline_access", "grant_types": ["authorization_code", "refresh_token"]})).await;
    let (id, secret) = (client["client_id"].as_str().unwrap(), client["client_secret"].as_str().unwrap());
    let browser = Browser::new(&server);
    let params = [
        ("client_id", id),
        ("redirect_uri", CALLBACK),
        ("response_type", "code"),
        ("scope", "openid profile offline_access"),
    ];
    let login = browser.authorize(&params).await.text().await.unwrap();
    assert!(login.contains("&#60;b&#62;Evil&#60;/b&#62; &#38; Co"), "client_name is escaped: {login}");
    let consent = browser.login(&login, "alice", "alice-password").await.text().await.unwrap();
    assert!(!consent.contains("<b>Evil</b>"), "client_name is escaped on the consent page");
    let redirect = browser.consent(&consent, "allow").await;
    let code = location_param(&redirect, "code").unwrap();
    let form = [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", CALLBACK)];
    let tokens: Value = server.post_basic("/token", id, secret, &form).await.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    let introspected: Value =
        server.post_basic("/introspect", id, secret, &[("token", access)]).await.json().await.unwrap();
    assert_eq!(introspected["active"], true);
    assert_eq!(server.post_basic("/revoke", id, secret, &[("token", access)]).await.status(), 200);
    let introspected: Value =
        server.post_basic("/introspect", id, secret, &[("token", access)]).await.json().await.unwrap();
    assert_eq!(introspected["active"], false);
}

#[tokio::test]
async fn rfc7591_3_2_2_invalid_metadata_gets_its_error_code() {
    let server = TestServer::start().await;
    let cases = [
        (json!({"redirect_uris": ["https://app.example/cb#frag"]}), "invalid_redirect_uri"),
        (json!({"redirect_uris": ["http://app.example/cb"]}), "invalid_redirect_uri"),
        (json!({}), "invalid_redirect_uri"),
        (json!({"redirect_uris": [CALLBACK], "response_types": ["token"]}), "invalid_client_metadata"),
        (
            json!({"redirect_uris": [CALLBACK], "token_endpoint_auth_method": "private_key_jwt"}),
            "invalid_client_metadata",
        ),
        (json!({"redirect_uris": [CALLBACK], "scope": "openid admin"}), "invalid_client_metadata"),
        (json!({"redirect_uris": [CALLBACK], "software_statement": "eyJ"}), "invalid_software_statement"),
        (json!({"redirect_uris": "not-a-list"}), "invalid_client_metadata"),
    ];
    for (body, error) in cases {
        assert_registration_error(register(&server, &body).await, 400, error).await;
    }
}

#[tokio::test]
async fn malformed_json_wrong_content_type_and_oversized_bodies_get_json_errors() {
    let server = TestServer::start().await;
    let post = |content_type: &'static str, body: String| {
        server.http.post(server.url("/register")).header("content-type", content_type).body(body).send()
    };
    assert_registration_error(
        post("application/json", "{not json".into()).await.unwrap(),
        400,
        "invalid_client_metadata",
    )
    .await;
    assert_registration_error(post("application/json", "[1,2]".into()).await.unwrap(), 400, "invalid_client_metadata")
        .await;
    assert_registration_error(
        post("application/x-www-form-urlencoded", "a=b".into()).await.unwrap(),
        400,
        "invalid_client_metadata",
    )
    .await;
    let huge = format!("{{\"client_name\": \"{}\"}}", "x".repeat(100_000));
    let response = post("application/json", huge).await.unwrap();
    assert!(response.status().is_client_error(), "{}", response.status());
}

#[tokio::test]
async fn rfc7592_read_update_with_token_rotation_and_delete() {
    let server = TestServer::start().await;
    let client = registered(&server, json!({"redirect_uris": [CALLBACK], "client_name": "Before"})).await;
    let uri = client["registration_client_uri"].as_str().unwrap();
    let token = client["registration_access_token"].as_str().unwrap();

    let read: Value = server.http.get(uri).bearer_auth(token).send().await.unwrap().json().await.unwrap();
    assert_eq!(read["client_name"], "Before");
    assert!(read.get("client_secret").is_none(), "secrets are stored hashed and not returned again");
    let unauthorized = server.http.get(uri).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(unauthorized.status(), 401);
    assert!(unauthorized.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));

    let update = json!({"client_id": client["client_id"], "redirect_uris": [CALLBACK, "https://app.example/other"], "client_name": "After"});
    let updated = server.http.put(uri).bearer_auth(token).json(&update).send().await.unwrap();
    assert_eq!(updated.status(), 200);
    let updated: Value = updated.json().await.unwrap();
    assert_eq!(updated["client_name"], "After");
    let rotated = updated["registration_access_token"].as_str().unwrap();
    assert_ne!(rotated, token, "RFC 7592 §2.2: the registration access token rotates");
    assert_eq!(server.http.get(uri).bearer_auth(token).send().await.unwrap().status(), 401, "the old token is dead");
    let secret = client["client_secret"].as_str().unwrap();
    let m2m = server
        .post_basic(
            "/token",
            client["client_id"].as_str().unwrap(),
            secret,
            &[("grant_type", "authorization_code"), ("code", "x")],
        )
        .await;
    assert_eq!(m2m.status(), 400, "the secret still authenticates after the update (the code is just wrong)");

    let mismatched = json!({"client_id": "dcr_other", "redirect_uris": [CALLBACK]});
    assert_registration_error(
        server.http.put(uri).bearer_auth(rotated).json(&mismatched).send().await.unwrap(),
        400,
        "invalid_client_metadata",
    )
    .await;

    assert_eq!(server.http.delete(uri).bearer_auth(rotated).send().await.unwrap().status(), 204);
    assert_eq!(server.http.get(uri).bearer_auth(rotated).send().await.unwrap().status(), 401, "gone");
    let auth = server
        .post_basic(
            "/token",
            client["client_id"].as_str().unwrap(),
            secret,
            &[("grant_type", "authorization_code"), ("code", "x")],
        )
        .await;
    assert_eq!(auth.status(), 401, "a deleted client no longer authenticates");
}

#[tokio::test]
async fn rfc7592_declared_clients_cannot_be_managed() {
    let server = TestServer::start().await;
    let response = server.http.get(server.url("/register/webapp")).bearer_auth("anything").send().await.unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn rfc7591_3_initial_access_token_policy() {
    let server = TestServer::start_with(RegistrationPolicy::Token("initial-token".into())).await;
    let body = json!({"redirect_uris": [CALLBACK]});
    let missing = register(&server, &body).await;
    assert_registration_error(missing, 401, "invalid_token").await;
    let wrong = server.http.post(server.url("/register")).bearer_auth("nope").json(&body).send().await.unwrap();
    assert_registration_error(wrong, 401, "invalid_token").await;
    let accepted =
        server.http.post(server.url("/register")).bearer_auth("initial-token").json(&body).send().await.unwrap();
    assert_eq!(accepted.status(), 201);
}

#[tokio::test]
async fn disabled_registration_is_refused_and_not_advertised() {
    let server = TestServer::start_with(RegistrationPolicy::Disabled).await;
    assert_registration_error(register(&server, &json!({"redirect_uris": [CALLBACK]})).await, 403, "access_denied")
        .await;
    let doc: Value =
        server.http.get(server.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert!(doc.get("registration_endpoint").is_none());
}

/// A token request that only needs the client authenticated to get past it: an unknown
/// refresh token then answers `invalid_grant`, a refused client `invalid_client`.
async fn authenticated_with_post(server: &TestServer, client: &Value) -> Value {
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", "unknown"),
        ("client_id", client["client_id"].as_str().unwrap()),
        ("client_secret", client["client_secret"].as_str().unwrap()),
    ];
    server.http.post(server.url("/token")).form(&form).send().await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn rfc7591_2_an_omitted_auth_method_echoes_basic_and_accepts_post_too_an_explicit_one_is_strict() {
    let server = TestServer::start().await;
    let grants = json!(["authorization_code", "refresh_token"]);
    let omitted = registered(&server, json!({"redirect_uris": [CALLBACK], "grant_types": grants})).await;
    assert_eq!(omitted["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(authenticated_with_post(&server, &omitted).await["error"], "invalid_grant", "post accepted");

    let basic = json!({"redirect_uris": [CALLBACK], "grant_types": grants, "token_endpoint_auth_method": "client_secret_basic"});
    let explicit = registered(&server, basic).await;
    let refused = authenticated_with_post(&server, &explicit).await;
    assert_eq!(refused, json!({"error": "invalid_client", "error_description": "client authentication failed"}));
}
