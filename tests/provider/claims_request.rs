//! The `claims` authorization request parameter (OIDC Core §5.5).

use serde_json::{Map, Value, json};

use crate::harness::{Browser, TestServer, hidden, jwt_part, location_param, webapp_request};

/// The claims every ID token carries whatever is requested (OIDC Core §2, §3.1.3.6).
const TOKEN_CLAIMS: [&str; 9] = ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "sid"];

/// Alice signs in for `scope` with the `claims` request `claims`; returns the tokens.
async fn tokens_with_claims(server: &TestServer, scope: &str, claims: &str) -> Value {
    let mut params = webapp_request(scope, "st", "n-0S6_WzA2Mj");
    params.push(("claims", claims));
    let redirect = Browser::new(server).sign_in(&params).await;
    let code = location_param(&redirect, "code").expect("a code");
    let response = server.exchange(&code, &[]).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// The user claims of an ID token: all but the token's own, which it carries (`nonce`
/// only from the authorization request, not after a refresh: OIDC Core §12.2).
fn id_token_user_claims(tokens: &Value) -> Map<String, Value> {
    let mut claims = jwt_part(tokens["id_token"].as_str().unwrap(), 1).as_object().unwrap().clone();
    for name in TOKEN_CLAIMS {
        assert!(claims.remove(name).is_some() || name == "nonce", "the ID token carries {name}");
    }
    claims
}

async fn userinfo(server: &TestServer, tokens: &Value) -> Value {
    let token = tokens["access_token"].as_str().unwrap();
    server.http.get(server.url("/userinfo")).bearer_auth(token).send().await.unwrap().json().await.unwrap()
}

fn sub(tokens: &Value) -> Value {
    jwt_part(tokens["id_token"].as_str().unwrap(), 1)["sub"].clone()
}

fn object(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

#[tokio::test]
async fn oidc_core_5_5_id_token_member_puts_the_claim_in_the_id_token_only() {
    let server = TestServer::start().await;
    let tokens = tokens_with_claims(&server, "openid", r#"{"id_token":{"email":null}}"#).await;
    assert_eq!(id_token_user_claims(&tokens), object(json!({ "email": "alice@example.com" })));
    assert_eq!(userinfo(&server, &tokens).await, json!({ "sub": sub(&tokens) }), "not asked for UserInfo");

    let tokens = tokens_with_claims(&server, "openid email", r#"{"id_token":{"email":null}}"#).await;
    let email = json!({ "sub": sub(&tokens), "email": "alice@example.com", "email_verified": true });
    assert_eq!(userinfo(&server, &tokens).await, email, "the email scope grants it to UserInfo");
}

#[tokio::test]
async fn oidc_core_5_5_userinfo_member_releases_claims_beyond_the_scope_to_userinfo_only() {
    let server = TestServer::start().await;
    let tokens = tokens_with_claims(&server, "openid", r#"{"userinfo":{"given_name":null,"groups":null}}"#).await;
    let expected = json!({ "sub": sub(&tokens), "given_name": "Alice", "groups": ["engineering"] });
    assert_eq!(userinfo(&server, &tokens).await, expected);
    assert_eq!(id_token_user_claims(&tokens), Map::new(), "not asked for the ID token");
}

#[tokio::test]
async fn oidc_core_5_5_1_essential_claim_the_user_lacks_is_absent_without_error() {
    let server = TestServer::start().await;
    let claims = r#"{"userinfo":{"picture":{"essential":true},"given_name":{"essential":true}},
        "id_token":{"nickname":{"essential":true}}}"#;
    let tokens = tokens_with_claims(&server, "openid", claims).await;
    assert_eq!(userinfo(&server, &tokens).await, json!({ "sub": sub(&tokens), "given_name": "Alice" }));
    assert_eq!(id_token_user_claims(&tokens), Map::new());
}

#[tokio::test]
async fn oidc_core_5_5_1_value_never_replaces_the_users_real_value() {
    let server = TestServer::start().await;
    let claims = r#"{"id_token":{"email":{"value":"mallory@example.com"},"family_name":{"values":["Hatter"]}}}"#;
    let tokens = tokens_with_claims(&server, "openid", claims).await;
    assert_eq!(
        id_token_user_claims(&tokens),
        object(json!({ "email": "alice@example.com", "family_name": "Liddell" }))
    );
}

#[tokio::test]
async fn oidc_core_5_5_token_claims_are_never_taken_from_a_claims_request() {
    let server = TestServer::start().await;
    let claims = r#"{"id_token":{"sub":{"value":"admin"},"iss":{"value":"https://evil.example"},"aud":null,
        "password":null},"userinfo":{"sub":{"value":"admin"},"iss":null}}"#;
    let tokens = tokens_with_claims(&server, "openid", claims).await;
    let id_token = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!((&id_token["iss"], &id_token["aud"]), (&json!(server.base), &json!("webapp")));
    assert_eq!(sub(&tokens), "alice");
    assert_eq!(id_token_user_claims(&tokens), Map::new());
    assert_eq!(userinfo(&server, &tokens).await, json!({ "sub": "alice" }));
}

#[tokio::test]
async fn oidc_core_5_5_refreshed_id_tokens_keep_the_requested_claims() {
    let server = TestServer::start().await;
    let tokens = tokens_with_claims(&server, "openid offline_access", r#"{"id_token":{"email":null}}"#).await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
    let response = server.post_basic("/token", "webapp", "webapp-secret", &form).await;
    assert_eq!(response.status(), 200);
    let refreshed: Value = response.json().await.unwrap();
    assert_eq!(id_token_user_claims(&refreshed), object(json!({ "email": "alice@example.com" })));
}

#[tokio::test]
async fn oidc_core_5_5_claims_beyond_the_scope_are_named_on_the_consent_page() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    let mut params = webapp_request("openid email", "st", "n");
    params.push(("claims", r#"{"userinfo":{"email":null,"phone_number":null},"id_token":{"given_name":null}}"#));
    let login = browser.authorize(&params).await.text().await.unwrap();
    let consent = browser.login(&login, "alice", "alice-password").await.text().await.unwrap();
    assert!(consent.contains("See your given name, phone number"), "{consent}");
    assert!(!hidden(&consent, "csrf_token").is_empty());
    let redirect = browser.consent(&consent, "allow").await;
    assert!(location_param(&redirect, "code").is_some());
    let again = browser.authorize(&params).await;
    assert_eq!(again.status(), 200, "consent to the scope does not cover the extra claims: asked again");
}

#[tokio::test]
async fn oidc_core_5_5_malformed_or_oversized_claims_is_invalid_request_at_the_redirect_uri() {
    let server = TestServer::start().await;
    let too_long = format!(r#"{{"userinfo":{{"{}":null}}}}"#, "a".repeat(2048));
    for claims in ["{", "[\"email\"]", r#"{"userinfo":{"email":true}}"#, too_long.as_str()] {
        let mut params = webapp_request("openid", "keep-me", "n");
        params.push(("claims", claims));
        let response = Browser::new(&server).authorize(&params).await;
        assert_eq!(response.status(), 302, "{claims}");
        assert_eq!(location_param(&response, "error").as_deref(), Some("invalid_request"), "{claims}");
        assert_eq!(location_param(&response, "state").as_deref(), Some("keep-me"));
    }
}
