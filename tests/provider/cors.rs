//! CORS (the Fetch Standard's CORS protocol) as the specifications allow it: discovery and
//! JWKS public, token, userinfo and revocation for the client's web origins only, never on
//! `/authorize` or `/logout` (RFC 9700 §4.13), and never with credentials.

use portcullis::provider::RegistrationPolicy;
use reqwest::Response;
use serde_json::{Value, json};

use crate::harness::{Browser, TestServer, assert_oauth_error};

/// The webapp's redirect URIs are on this origin (tests/fixtures/manifests/clients.yaml).
const WEBAPP_ORIGIN: &str = "http://127.0.0.1:9000";
const STRANGER: &str = "https://evil.example";

fn allowed_origin(response: &Response) -> Option<&str> {
    response.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap())
}

fn assert_varies_by_origin_without_credentials(response: &Response) {
    let vary: Vec<&str> = response.headers().get_all("vary").iter().map(|v| v.to_str().unwrap()).collect();
    assert!(vary.iter().any(|v| v.eq_ignore_ascii_case("origin")), "Vary: Origin, got {vary:?}");
    assert!(response.headers().get("access-control-allow-credentials").is_none());
}

async fn token_from(server: &TestServer, origin: &str, secret: &str) -> Response {
    let form = [("grant_type", "refresh_token"), ("refresh_token", "not-a-refresh-token")];
    let request = server.http.post(server.url("/token")).header("origin", origin);
    request.basic_auth("webapp", Some(secret)).form(&form).send().await.unwrap()
}

#[tokio::test]
async fn rfc8414_3_discovery_and_jwks_are_readable_from_any_origin() {
    let server = TestServer::start().await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
        "/jwks.json",
        "/.well-known/jwks.json",
    ] {
        let response = server.http.get(server.url(path)).header("origin", STRANGER).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(allowed_origin(&response), Some("*"), "{path}");
        assert!(response.headers().get("access-control-allow-credentials").is_none(), "{path}");
        let preflight = server.http.request(reqwest::Method::OPTIONS, server.url(path)).header("origin", STRANGER);
        let preflight = preflight.header("access-control-request-method", "GET").send().await.unwrap();
        assert_eq!(preflight.status(), 204, "{path}");
        assert_eq!(allowed_origin(&preflight), Some("*"), "{path}");
        assert_eq!(preflight.headers()["access-control-allow-methods"], "GET", "{path}");
    }
}

#[tokio::test]
async fn a_preflight_of_the_client_endpoints_allows_exactly_their_methods_and_headers() {
    let server = TestServer::start().await;
    for (path, methods) in [("/token", "POST"), ("/revoke", "POST"), ("/userinfo", "GET, POST")] {
        let preflight = server
            .http
            .request(reqwest::Method::OPTIONS, server.url(path))
            .header("origin", WEBAPP_ORIGIN)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization,content-type")
            .send()
            .await
            .unwrap();
        assert_eq!(preflight.status(), 204, "{path}");
        assert_eq!(allowed_origin(&preflight), Some(WEBAPP_ORIGIN), "{path}");
        assert_eq!(preflight.headers()["access-control-allow-methods"], methods, "{path}");
        assert_eq!(preflight.headers()["access-control-allow-headers"], "Authorization, Content-Type", "{path}");
        assert_eq!(preflight.headers()["access-control-max-age"], "600", "{path}");
        assert_varies_by_origin_without_credentials(&preflight);
    }
}

#[tokio::test]
async fn the_token_endpoint_answers_the_clients_origin_and_no_other() {
    let server = TestServer::start().await;
    let own = token_from(&server, WEBAPP_ORIGIN, "webapp-secret").await;
    assert_eq!(allowed_origin(&own), Some(WEBAPP_ORIGIN), "the redirect URIs' origin is the client's by default");
    assert_varies_by_origin_without_credentials(&own);
    assert_oauth_error(own, 400, "invalid_grant").await;

    let stranger = token_from(&server, STRANGER, "webapp-secret").await;
    assert_eq!(allowed_origin(&stranger), None, "an origin not registered for the client");
    assert_varies_by_origin_without_credentials(&stranger);

    let unauthenticated = token_from(&server, WEBAPP_ORIGIN, "wrong-secret").await;
    assert_eq!(allowed_origin(&unauthenticated), None, "no client known, no origin allowed");
    assert_varies_by_origin_without_credentials(&unauthenticated);
}

#[tokio::test]
async fn allowed_origins_add_to_the_redirect_uris_origins() {
    let server = TestServer::start().await;
    for origin in ["http://127.0.0.1:9001", "http://localhost:9001"] {
        let form = [("grant_type", "refresh_token"), ("refresh_token", "x"), ("client_id", "spa")];
        let response =
            server.http.post(server.url("/token")).header("origin", origin).form(&form).send().await.unwrap();
        assert_eq!(allowed_origin(&response), Some(origin));
    }
}

#[tokio::test]
async fn oidc_core_5_3_userinfo_answers_the_origins_of_the_tokens_client() {
    let server = TestServer::start().await;
    let tokens = server.webapp_tokens(&Browser::new(&server), "openid").await;
    let token = tokens["access_token"].as_str().unwrap();
    for (origin, expected) in [(WEBAPP_ORIGIN, Some(WEBAPP_ORIGIN)), ("http://127.0.0.1:9001", None)] {
        let response = server.http.get(server.url("/userinfo")).bearer_auth(token).header("origin", origin);
        let response = response.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(allowed_origin(&response), expected, "{origin}");
        assert_varies_by_origin_without_credentials(&response);
    }
}

#[tokio::test]
async fn rfc7009_2_3_revocation_answers_the_clients_origin() {
    let server = TestServer::start().await;
    let request = server.http.post(server.url("/revoke")).header("origin", WEBAPP_ORIGIN);
    let response = request.basic_auth("webapp", Some("webapp-secret")).form(&[("token", "unknown")]).send().await;
    let response = response.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(allowed_origin(&response), Some(WEBAPP_ORIGIN));
}

#[tokio::test]
async fn rfc9700_4_13_no_cors_on_authorize_the_pages_or_logout() {
    let server = TestServer::start().await;
    for path in ["/authorize?client_id=webapp", "/logout", "/login", "/consent"] {
        for method in [reqwest::Method::GET, reqwest::Method::OPTIONS] {
            let response = server.http.request(method.clone(), server.url(path)).header("origin", WEBAPP_ORIGIN);
            let response = response.header("access-control-request-method", "POST").send().await.unwrap();
            assert_eq!(allowed_origin(&response), None, "{method} {path}");
            assert_ne!(response.status(), 204, "{method} {path}");
        }
    }
}

#[tokio::test]
async fn rfc7591_open_registration_is_readable_from_any_origin_and_registered_clients_get_their_redirect_origins() {
    let server = TestServer::start().await;
    let metadata =
        json!({"redirect_uris": ["https://dyn.example/cb"], "grant_types": ["authorization_code", "refresh_token"]});
    let response = server.http.post(server.url("/register")).header("origin", STRANGER).json(&metadata).send().await;
    let response = response.unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(allowed_origin(&response), Some("*"));
    let client: Value = response.json().await.unwrap();
    let (id, secret) = (client["client_id"].as_str().unwrap(), client["client_secret"].as_str().unwrap());
    let form = [("grant_type", "refresh_token"), ("refresh_token", "x")];
    let request = server.http.post(server.url("/token")).header("origin", "https://dyn.example");
    let response = request.basic_auth(id, Some(secret)).form(&form).send().await.unwrap();
    assert_eq!(allowed_origin(&response), Some("https://dyn.example"));

    let closed = TestServer::start_with(RegistrationPolicy::Disabled).await;
    let response = closed.http.post(closed.url("/register")).header("origin", STRANGER).json(&metadata).send().await;
    assert_eq!(allowed_origin(&response.unwrap()), None);
}
