//! OIDC Core §5.3 UserInfo with RFC 6750 bearer tokens, and the Keycloak-compatible claims.

use serde_json::Value;

use portcullis::provider::RegistrationPolicy;

use crate::fixtures::fixtures_with_webapp;
use crate::harness::{Browser, TestServer, jwt_part};

async fn access_token(server: &TestServer, scope: &str) -> (String, Value) {
    let tokens = server.webapp_tokens(&Browser::new(server), scope).await;
    (tokens["access_token"].as_str().unwrap().to_owned(), tokens)
}

#[tokio::test]
async fn rfc6750_2_1_userinfo_with_bearer_header_get_and_post() {
    let server = TestServer::start().await;
    let (token, tokens) = access_token(&server, "openid").await;
    let get = server.http.get(server.url("/userinfo")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(get.status(), 200);
    assert_eq!(get.headers()["cache-control"], "no-store");
    let claims: Value = get.json().await.unwrap();
    assert_eq!(claims["sub"], jwt_part(tokens["id_token"].as_str().unwrap(), 1)["sub"], "sub equals the ID token's");
    let post = server.http.post(server.url("/userinfo")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(post.status(), 200);
}

#[tokio::test]
async fn rfc6750_2_2_userinfo_with_access_token_in_the_form_body() {
    let server = TestServer::start().await;
    let (token, _) = access_token(&server, "openid").await;
    let response =
        server.http.post(server.url("/userinfo")).form(&[("access_token", token.as_str())]).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let both = server
        .http
        .post(server.url("/userinfo"))
        .bearer_auth(&token)
        .form(&[("access_token", token.as_str())])
        .send()
        .await;
    assert_eq!(both.unwrap().status(), 400, "RFC 6750 §2: one method only");
}

#[tokio::test]
async fn rfc6750_3_1_missing_token_is_401_with_a_bare_bearer_challenge() {
    let server = TestServer::start().await;
    let response = server.http.get(server.url("/userinfo")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer realm=\"portcullis\"");
}

#[tokio::test]
async fn rfc6750_3_1_bad_expired_or_revoked_token_is_invalid_token() {
    let server = TestServer::start().await;
    let (token, _) = access_token(&server, "openid").await;
    let tampered = format!("{token}x");
    for bad in ["garbage", tampered.as_str()] {
        let response = server.http.get(server.url("/userinfo")).bearer_auth(bad).send().await.unwrap();
        assert_eq!(response.status(), 401);
        let challenge = response.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Bearer ") && challenge.contains("error=\"invalid_token\""), "{challenge}");
    }
    server.post_basic("/revoke", "webapp", "webapp-secret", &[("token", token.as_str())]).await;
    let revoked = server.http.get(server.url("/userinfo")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(revoked.status(), 401);
}

#[tokio::test]
async fn oidc_core_5_3_client_credentials_token_has_no_userinfo() {
    let server = TestServer::start().await;
    let token = server.m2m_token().await;
    let response = server.http.get(server.url("/userinfo")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 403);
    assert!(response.headers()["www-authenticate"].to_str().unwrap().contains("insufficient_scope"));
}

#[tokio::test]
async fn oidc_core_5_4_claims_are_released_per_scope() {
    let server = TestServer::start().await;
    let (token, _) = access_token(&server, "openid").await;
    let claims: Value =
        server.http.get(server.url("/userinfo")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(claims, serde_json::json!({"sub": "alice"}));
    let (token, _) = access_token(&server, "openid profile email").await;
    let claims: Value =
        server.http.get(server.url("/userinfo")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(claims["preferred_username"], "alice");
    assert_eq!(claims["name"], "Alice Liddell");
    assert_eq!(claims["given_name"], "Alice");
    assert_eq!(claims["family_name"], "Liddell");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["email_verified"], true);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let updated_at = claims["updated_at"].as_u64().expect("OIDC Core §5.1: updated_at is a JSON number of seconds");
    assert!(updated_at <= now && updated_at + 300 > now, "stamped when the folder was applied: {updated_at}");
    assert!(claims.get("resource_access").is_none(), "roles only with the roles scope");
}

#[tokio::test]
async fn keycloak_compatible_roles_claims_with_the_roles_scope() {
    let server = TestServer::start().await;
    let (token, _) = access_token(&server, "openid roles").await;
    let claims: Value =
        server.http.get(server.url("/userinfo")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        claims["resource_access"],
        serde_json::json!({"webapp": {"roles": ["admin", "viewer"]}}),
        "only roles the client declares"
    );
    assert_eq!(claims["realm_access"], serde_json::json!({"roles": ["staff"]}));
    assert_eq!(claims["groups"], serde_json::json!(["engineering"]));
}

#[tokio::test]
async fn id_token_carries_the_scoped_user_claims_for_relying_parties_that_read_it() {
    let server = TestServer::start().await;
    let (_, tokens) = access_token(&server, "openid profile roles").await;
    let claims = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(claims["preferred_username"], "alice");
    assert_eq!(claims["resource_access"]["webapp"]["roles"], serde_json::json!(["admin", "viewer"]));
    assert!(claims.get("email").is_none(), "email was not granted");
}

#[tokio::test]
async fn a_client_that_names_its_id_token_claims_gets_only_those_there_and_the_rest_at_userinfo() {
    let folder = fixtures_with_webapp("id-token-claims", "  idTokenClaims: [groups, email, email_verified]\n");
    let server = TestServer::start_on(folder, RegistrationPolicy::Disabled).await;
    let (token, tokens) = access_token(&server, "openid profile email groups").await;
    let claims = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    let user_claims: Vec<&str> = ["sub", "name", "preferred_username", "email", "email_verified", "groups"]
        .into_iter()
        .filter(|name| claims.get(*name).is_some())
        .collect();
    assert_eq!(user_claims, ["sub", "email", "email_verified", "groups"], "{claims}");
    assert_eq!(claims["groups"], serde_json::json!(["engineering"]));
    let at_userinfo = userinfo(&server, &token).await;
    assert_eq!(
        (at_userinfo["name"].as_str(), at_userinfo["preferred_username"].as_str()),
        (Some("Alice Liddell"), Some("alice"))
    );
}

async fn userinfo(server: &TestServer, token: &str) -> Value {
    server.http.get(server.url("/userinfo")).bearer_auth(token).send().await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn oidc_core_5_4_phone_address_and_groups_scopes_release_exactly_their_claims() {
    let server = TestServer::start().await;
    let (token, tokens) = access_token(&server, "openid phone address groups").await;
    let sub = jwt_part(tokens["id_token"].as_str().unwrap(), 1)["sub"].clone();
    assert_eq!(
        userinfo(&server, &token).await,
        serde_json::json!({
            "sub": sub,
            "phone_number": "+44 20 7946 0000",
            "phone_number_verified": false,
            "address": { "locality": "Oxford", "country": "United Kingdom" },
            "groups": ["engineering"],
        }),
        "the groups scope releases groups without roles"
    );
}

#[tokio::test]
async fn custom_scope_releases_the_custom_claims_the_client_maps_to_it_and_names_them_on_consent() {
    let folder =
        crate::fixtures::fixtures_with_webapp("scope-claims", "  scopeClaims: {org: [organization, department]}\n");
    let server = TestServer::start_on(folder, portcullis::provider::RegistrationPolicy::Open).await;
    let browser = Browser::new(&server);
    let login = browser.authorize(&crate::harness::webapp_request("openid org", "st", "n")).await.text().await.unwrap();
    let consent = browser.login(&login, "alice", "alice-password").await.text().await.unwrap();
    assert!(consent.contains("See your organization, department"), "{consent}");
    let (token, tokens) = access_token(&server, "openid org").await;
    let sub = jwt_part(tokens["id_token"].as_str().unwrap(), 1)["sub"].clone();
    let expected = serde_json::json!({ "sub": sub, "organization": "Wonderland", "department": "Tea parties" });
    assert_eq!(userinfo(&server, &token).await, expected);
    let id_token = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(
        (&id_token["organization"], &id_token["department"]),
        (&expected["organization"], &expected["department"])
    );
    let (token, _) = access_token(&server, "openid profile").await;
    assert!(userinfo(&server, &token).await.get("organization").is_none(), "only under its scope");
}
