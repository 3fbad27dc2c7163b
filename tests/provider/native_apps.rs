//! RFC 8252 OAuth 2.0 for native apps: loopback redirect URIs with any port (§7.3),
//! `localhost` matched exactly (§8.3), private-use schemes (§7.1), and the same for clients
//! that register as `application_type: native` (RFC 7591, OIDC Registration §2).

use portcullis::provider::RegistrationPolicy;
use serde_json::{Value, json};

use crate::harness::{Browser, Pkce, TestServer, fixtures_with, location_base, location_param};

const NATIVE_CLIENT: &str = r#"apiVersion: portcullis.dev/v1alpha1
kind: OidcClient
metadata: {name: cli, namespace: test}
spec:
  clientName: Command line
  applicationType: native
  tokenEndpointAuthMethod: none
  redirectUris: ["http://127.0.0.1/callback", "http://[::1]/callback", "http://localhost:8000/callback", "com.example.cli:/oauth2redirect"]
  grantTypes: [authorization_code]
  scopes: [openid, profile]
"#;

async fn native_server(name: &str) -> TestServer {
    TestServer::start_on(fixtures_with(name, NATIVE_CLIENT), RegistrationPolicy::Open).await
}

fn request<'a>(client_id: &'a str, redirect_uri: &'a str, pkce: &'a Pkce) -> Vec<(&'a str, &'a str)> {
    vec![
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("response_type", "code"),
        ("scope", "openid"),
        ("state", "st"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("prompt", "consent"),
    ]
}

/// Signs alice in for `redirect_uri`, checking the consent page lets its form end at that
/// URI's origin (CSP `form-action`), and returns the code from the redirect there.
async fn code_at(server: &TestServer, client_id: &str, redirect_uri: &str, pkce: &Pkce) -> String {
    let browser = Browser::new(server);
    let login = browser.authorize(&request(client_id, redirect_uri, pkce)).await;
    assert_eq!(login.status(), 200, "{redirect_uri}");
    let consent = browser.login(&login.text().await.unwrap(), "alice", "alice-password").await;
    assert_eq!(consent.status(), 200);
    let origin = url::Url::parse(redirect_uri).unwrap().origin().ascii_serialization();
    let policy = consent.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(policy.contains(&format!("form-action 'self' {origin};")), "{policy}");
    let redirect = browser.consent(&consent.text().await.unwrap(), "allow").await;
    assert_eq!(redirect.status(), 303);
    assert_eq!(location_base(&redirect), redirect_uri, "answered at the runtime port");
    location_param(&redirect, "code").unwrap()
}

async fn exchange(
    server: &TestServer,
    client_id: &str,
    code: &str,
    redirect_uri: &str,
    pkce: &Pkce,
) -> reqwest::Response {
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", client_id),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    server.http.post(server.url("/token")).form(&form).send().await.unwrap()
}

#[tokio::test]
async fn rfc8252_7_3_loopback_redirect_with_a_runtime_port_completes_the_code_flow() {
    let server = native_server("native-runtime-port").await;
    for redirect_uri in ["http://127.0.0.1:49152/callback", "http://[::1]:8123/callback"] {
        let pkce = Pkce::new("native");
        let code = code_at(&server, "cli", redirect_uri, &pkce).await;
        let tokens = exchange(&server, "cli", &code, redirect_uri, &pkce).await;
        assert_eq!(tokens.status(), 200, "{redirect_uri}");
        let tokens: Value = tokens.json().await.unwrap();
        assert!(tokens["id_token"].is_string());
    }
}

#[tokio::test]
async fn rfc6749_4_1_3_token_request_needs_the_same_port_as_the_authorization_request() {
    let server = native_server("native-same-port").await;
    let pkce = Pkce::new("native");
    let code = code_at(&server, "cli", "http://127.0.0.1:50001/callback", &pkce).await;
    let response = exchange(&server, "cli", &code, "http://127.0.0.1:50002/callback", &pkce).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn rfc8252_8_3_and_7_1_localhost_and_private_use_schemes_match_exactly() {
    let server = native_server("native-exact").await;
    let pkce = Pkce::new("native");
    code_at(&server, "cli", "http://localhost:8000/callback", &pkce).await;
    let browser = Browser::new(&server);
    let login = browser.authorize(&request("cli", "com.example.cli:/oauth2redirect", &pkce)).await;
    assert_eq!(login.status(), 200);
}

#[tokio::test]
async fn rfc8252_7_3_lookalike_loopback_redirects_get_an_error_page_not_a_redirect() {
    let server = native_server("native-negatives").await;
    let browser = Browser::new(&server);
    let pkce = Pkce::new("native");
    for uri in [
        "http://127.0.0.2:8000/callback",
        "http://localhost:1234/callback",
        "http://localhost/callback",
        "http://127.0.0.1.evil.com/callback",
        "http://127.0.0.1.evil.com:8000/callback",
        "http://127.0.0.1:8000@evil.com/callback",
        "http://evil.com@127.0.0.1:8000/callback",
        "https://127.0.0.1:8000/callback",
        "http://127.0.0.1:8000/callback/evil",
        "http://127.0.0.1:0/callback",
        "com.example.cli:/oauth2redirect/evil",
    ] {
        let response = browser.authorize(&request("cli", uri, &pkce)).await;
        assert_eq!(response.status(), 400, "{uri}");
        assert!(response.headers().get("location").is_none(), "{uri} must not be redirected to");
    }
}

#[tokio::test]
async fn rfc8252_7_3_web_clients_keep_exact_loopback_matching() {
    let server = native_server("native-web").await;
    let browser = Browser::new(&server);
    let pkce = Pkce::new("spa");
    for (client, uri) in [("webapp", "http://127.0.0.1:9999/callback"), ("spa", "http://127.0.0.1:9999/callback")] {
        let response = browser.authorize(&request(client, uri, &pkce)).await;
        assert_eq!(response.status(), 400, "{client} {uri}");
    }
}

#[tokio::test]
async fn rfc7591_native_registration_gets_any_port_loopback_and_web_registration_does_not() {
    let server = TestServer::start().await;
    let native = server
        .register_client(json!({
            "application_type": "native",
            "token_endpoint_auth_method": "none",
            "redirect_uris": ["http://127.0.0.1/cb", "com.example.tool:/cb"],
        }))
        .await;
    assert_eq!(native["application_type"], "native");
    let id = native["client_id"].as_str().unwrap();
    let pkce = Pkce::new("registered");
    let code = code_at(&server, id, "http://127.0.0.1:61000/cb", &pkce).await;
    assert_eq!(exchange(&server, id, &code, "http://127.0.0.1:61000/cb", &pkce).await.status(), 200);

    let web = server
        .register_client(json!({"token_endpoint_auth_method": "none", "redirect_uris": ["https://app.example/cb"]}))
        .await;
    assert_eq!(web["application_type"], "web");
    let refused = server
        .http
        .post(server.url("/register"))
        .json(&json!({"redirect_uris": ["http://127.0.0.1/cb"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400, "loopback http is for native clients only");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "invalid_redirect_uri");
}
