//! Malformed requests get 4xx with an RFC 6749 error body, never a 5xx or a panic.

use crate::harness::{TestServer, assert_oauth_error};

const FORM_ENDPOINTS: [&str; 3] = ["/token", "/introspect", "/revoke"];

async fn post_raw(
    server: &TestServer,
    path: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    server
        .http
        .post(server.url(path))
        .basic_auth("m2m", Some("m2m-secret"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn bad_percent_encoding_is_invalid_request() {
    let server = TestServer::start().await;
    for path in FORM_ENDPOINTS {
        for body in ["grant_type=client%ZZcredentials&token=x", "token=%", "token=%E2%82"] {
            let response = post_raw(&server, path, "application/x-www-form-urlencoded", body).await;
            assert_oauth_error(response, 400, "invalid_request").await;
        }
    }
}

#[tokio::test]
async fn json_body_instead_of_form_is_invalid_request() {
    let server = TestServer::start().await;
    for path in FORM_ENDPOINTS {
        let response = post_raw(&server, path, "application/json", r#"{"grant_type":"client_credentials"}"#).await;
        let body = assert_oauth_error(response, 400, "invalid_request").await;
        assert!(body["error_description"].as_str().unwrap().contains("x-www-form-urlencoded"));
    }
}

#[tokio::test]
async fn missing_content_type_is_invalid_request() {
    let server = TestServer::start().await;
    let response = server
        .http
        .post(server.url("/token"))
        .basic_auth("m2m", Some("m2m-secret"))
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_oauth_error(response, 400, "invalid_request").await;
}

#[tokio::test]
async fn content_type_with_charset_is_accepted() {
    let server = TestServer::start().await;
    let response = post_raw(
        &server,
        "/token",
        "application/x-www-form-urlencoded; charset=UTF-8",
        "grant_type=client_credentials",
    )
    .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn huge_bodies_and_values_are_invalid_request() {
    let server = TestServer::start().await;
    for path in FORM_ENDPOINTS {
        let huge_value = format!("grant_type=client_credentials&token={}", "a".repeat(20_000));
        let response = post_raw(&server, path, "application/x-www-form-urlencoded", huge_value).await;
        assert_oauth_error(response, 400, "invalid_request").await;
        let huge_body = "a=b&".repeat(100_000);
        let response = post_raw(&server, path, "application/x-www-form-urlencoded", huge_body).await;
        assert_oauth_error(response, 413, "invalid_request").await;
    }
}

#[tokio::test]
async fn rfc6749_3_2_repeated_parameters_are_invalid_request() {
    let server = TestServer::start().await;
    let response =
        post_raw(&server, "/token", "application/x-www-form-urlencoded", "grant_type=client_credentials&grant_type=x")
            .await;
    assert_oauth_error(response, 400, "invalid_request").await;
}

#[tokio::test]
async fn rfc6749_3_2_token_endpoint_requires_post() {
    let server = TestServer::start().await;
    for path in FORM_ENDPOINTS {
        let response = server.http.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.headers()["allow"], "POST");
        assert_oauth_error(response, 405, "invalid_request").await;
    }
}

#[tokio::test]
async fn garbage_authorization_headers_are_invalid_client() {
    let server = TestServer::start().await;
    for header in ["Basic", "Basic %%%", "Bearer abc", "Basic Og=="] {
        let response = server
            .http
            .post(server.url("/token"))
            .header("authorization", header)
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_oauth_error(response, 401, "invalid_client").await;
    }
}

#[tokio::test]
async fn unknown_paths_are_404() {
    let server = TestServer::start().await;
    assert_eq!(server.http.get(server.url("/nope")).send().await.unwrap().status(), 404);
}

/// RFC 6749 §5.2 descriptions are ours: a parameter name the caller made up never comes back.
#[tokio::test]
async fn rfc6749_5_2_error_descriptions_never_echo_a_parameter_name_the_caller_chose() {
    let server = TestServer::start().await;
    let name = "caller_chosen_name_7f3a";
    for path in FORM_ENDPOINTS {
        let body = format!("grant_type=client_credentials&token=t&{name}={}", "x".repeat(8 * 1024 + 1));
        let response = post_raw(&server, path, "application/x-www-form-urlencoded", body).await;
        let body = assert_oauth_error(response, 400, "invalid_request").await;
        assert_eq!(body["error_description"], "a parameter value is too long", "{path}");
    }
}
