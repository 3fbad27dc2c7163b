//! Every bound on request size, at its boundary: the limit itself is accepted, one more is
//! refused with an RFC 6749 error (never a 5xx). Header and chunked-body tests speak raw
//! HTTP/1.1 so the exact bytes the provider sees are under the test's control.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use portcullis::protocol::form::{MAX_PARAMETERS, MAX_VALUE_LEN};
use portcullis::protocol::registration::{MAX_STRING, MAX_URIS};
use portcullis::provider::{MAX_HEADER_BYTES, MAX_HEADERS};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;

use crate::harness::{Browser, TestServer, assert_oauth_error, hidden, webapp_request};

/// The provider's body limit (`MAX_BODY_BYTES`).
const MAX_BODY: usize = 64 * 1024;
const FORM: &str = "application/x-www-form-urlencoded";

/// `grant_type=client_credentials` padded with ignored parameters to exactly `total` bytes.
fn padded_token_form(total: usize) -> String {
    let mut body = String::from("grant_type=client_credentials");
    let mut index = 0;
    while body.len() < total {
        let name = format!("&pad{index}=");
        let room = total - body.len() - name.len();
        body.push_str(&name);
        body.push_str(&"x".repeat(room.min(MAX_VALUE_LEN)));
        index += 1;
    }
    assert_eq!(body.len(), total);
    body
}

async fn post_token(server: &TestServer, body: String) -> reqwest::Response {
    server
        .http
        .post(server.url("/token"))
        .basic_auth("m2m", Some("m2m-secret"))
        .header("content-type", FORM)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// A raw response: status and body.
struct Raw {
    status: u16,
    body: String,
}

impl Raw {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// Sends `head` (request line and headers, without the blank line) and `body` verbatim.
async fn raw_request(server: &TestServer, head: &str, body: &[u8]) -> Raw {
    let address = server.base.trim_start_matches("http://").to_owned();
    let mut request = format!("{head}\r\n").into_bytes();
    request.extend_from_slice(body);
    let response = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(address).unwrap();
        // The server may answer and close before reading a refused body: a failed write is fine.
        let _ = stream.write_all(&request);
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        response
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{text}"));
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Raw { status, body }
}

/// A GET of the discovery document with `Host`, `Connection` and `extra` headers, returned
/// with the number of header fields and header bytes (names + values) the server sees.
fn discovery_head(extra: &[(String, String)]) -> (String, usize, usize) {
    let mut fields = vec![("host".to_owned(), "localhost".to_owned()), ("connection".to_owned(), "close".to_owned())];
    fields.extend_from_slice(extra);
    let bytes = fields.iter().map(|(n, v)| n.len() + v.len()).sum();
    let mut head = "GET /.well-known/openid-configuration HTTP/1.1\r\n".to_owned();
    for (name, value) in &fields {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    (head, fields.len(), bytes)
}

fn assert_raw_oauth_error(raw: &Raw, status: u16, error: &str) {
    assert_eq!(raw.status, status, "{}", raw.body);
    assert_eq!(raw.json()["error"], error);
}

#[tokio::test]
async fn request_body_of_exactly_64_kib_is_read_and_one_byte_more_is_413_invalid_request() {
    let server = TestServer::start().await;
    assert_eq!(post_token(&server, padded_token_form(MAX_BODY)).await.status(), 200);
    let refused = post_token(&server, padded_token_form(MAX_BODY + 1)).await;
    let body = assert_oauth_error(refused, 413, "invalid_request").await;
    assert!(body["error_description"].as_str().unwrap().contains("65536"));
}

#[tokio::test]
async fn chunked_request_body_is_bounded_while_streaming() {
    let server = TestServer::start().await;
    let basic = STANDARD.encode("m2m:m2m-secret");
    for (size, status) in [(MAX_BODY, 200), (MAX_BODY + 1, 413)] {
        let form = padded_token_form(size);
        let head = format!(
            "POST /token HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\nauthorization: Basic {basic}\r\n\
             content-type: {FORM}\r\ntransfer-encoding: chunked\r\n"
        );
        let mut chunked = Vec::new();
        for chunk in form.as_bytes().chunks(4096) {
            chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            chunked.extend_from_slice(chunk);
            chunked.extend_from_slice(b"\r\n");
        }
        chunked.extend_from_slice(b"0\r\n\r\n");
        let raw = raw_request(&server, &head, &chunked).await;
        assert_eq!(raw.status, status, "{size} bytes: {}", raw.body);
        if status == 413 {
            assert_raw_oauth_error(&raw, 413, "invalid_request");
        }
    }
}

#[tokio::test]
async fn registration_body_over_64_kib_is_413_even_when_declared_far_larger() {
    let server = TestServer::start().await;
    let head = format!(
        "POST /register HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n",
        10 * 1024 * 1024
    );
    let raw = raw_request(&server, &head, b"{}").await;
    assert_raw_oauth_error(&raw, 413, "invalid_request");
}

#[tokio::test]
async fn at_most_64_header_fields() {
    let server = TestServer::start().await;
    let pad = |count: usize| (0..count).map(|i| (format!("x-pad-{i}"), "1".to_owned())).collect::<Vec<_>>();
    let (head, fields, _) = discovery_head(&pad(MAX_HEADERS - 2));
    assert_eq!(fields, MAX_HEADERS);
    assert_eq!(raw_request(&server, &head, b"").await.status, 200);
    let (head, fields, _) = discovery_head(&pad(MAX_HEADERS - 1));
    assert_eq!(fields, MAX_HEADERS + 1);
    assert_raw_oauth_error(&raw_request(&server, &head, b"").await, 431, "invalid_request");
}

#[tokio::test]
async fn at_most_16_kib_of_header_bytes() {
    let server = TestServer::start().await;
    let (_, _, base) = discovery_head(&[]);
    let name = "x-large".to_owned();
    let value_len = MAX_HEADER_BYTES - base - name.len();
    let (head, _, bytes) = discovery_head(&[(name.clone(), "v".repeat(value_len))]);
    assert_eq!(bytes, MAX_HEADER_BYTES);
    assert_eq!(raw_request(&server, &head, b"").await.status, 200);
    let (head, _, bytes) = discovery_head(&[(name, "v".repeat(value_len + 1))]);
    assert_eq!(bytes, MAX_HEADER_BYTES + 1);
    assert_raw_oauth_error(&raw_request(&server, &head, b"").await, 431, "invalid_request");
}

#[tokio::test]
async fn at_most_64_form_parameters() {
    let server = TestServer::start().await;
    let form = |count: usize| {
        let mut params = vec!["grant_type=client_credentials".to_owned()];
        params.extend((1..count).map(|i| format!("p{i}=1")));
        params.join("&")
    };
    assert_eq!(post_token(&server, form(MAX_PARAMETERS)).await.status(), 200);
    let body = assert_oauth_error(post_token(&server, form(MAX_PARAMETERS + 1)).await, 400, "invalid_request").await;
    assert_eq!(body["error_description"], "too many parameters");
}

#[tokio::test]
async fn scope_parameter_of_at_most_8_kib() {
    let server = TestServer::start().await;
    let scope = |len: usize| {
        let mut scope = "reports:read".to_owned();
        while scope.len() < len {
            scope.push_str(&format!(" {}", "u".repeat((len - scope.len() - 1).clamp(1, 50))));
        }
        assert_eq!(scope.len(), len);
        scope
    };
    let granted = server
        .post_basic(
            "/token",
            "m2m",
            "m2m-secret",
            &[("grant_type", "client_credentials"), ("scope", &scope(MAX_VALUE_LEN))],
        )
        .await;
    assert_eq!(granted.status(), 200);
    let body: Value = granted.json().await.unwrap();
    assert_eq!(body["scope"], "reports:read", "unknown scope tokens are dropped");
    let refused = server
        .post_basic(
            "/token",
            "m2m",
            "m2m-secret",
            &[("grant_type", "client_credentials"), ("scope", &scope(MAX_VALUE_LEN + 1))],
        )
        .await;
    assert_oauth_error(refused, 400, "invalid_request").await;
}

async fn register(server: &TestServer, body: &Value) -> reqwest::Response {
    server.http.post(server.url("/register")).json(body).send().await.unwrap()
}

async fn assert_registration_error(response: reqwest::Response, error: &str) {
    assert_eq!(response.status(), 400);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
}

#[tokio::test]
async fn rfc7591_at_most_20_redirect_uris() {
    let server = TestServer::start().await;
    let uris = |count: usize| (0..count).map(|i| format!("https://app.example/cb/{i}")).collect::<Vec<_>>();
    assert_eq!(register(&server, &json!({"redirect_uris": uris(MAX_URIS)})).await.status(), 201);
    assert_registration_error(
        register(&server, &json!({"redirect_uris": uris(MAX_URIS + 1)})).await,
        "invalid_client_metadata",
    )
    .await;
}

#[tokio::test]
async fn rfc7591_redirect_uri_of_at_most_2000_bytes() {
    let server = TestServer::start().await;
    let uri = |len: usize| {
        let base = "https://app.example/";
        format!("{base}{}", "p".repeat(len - base.len()))
    };
    assert_eq!(register(&server, &json!({"redirect_uris": [uri(MAX_STRING)]})).await.status(), 201);
    assert_registration_error(
        register(&server, &json!({"redirect_uris": [uri(MAX_STRING + 1)]})).await,
        "invalid_redirect_uri",
    )
    .await;
}

#[tokio::test]
async fn rfc7591_registered_scope_of_at_most_2000_bytes() {
    let server = TestServer::start().await;
    let scope = |len: usize| {
        let mut scope = "openid".to_owned();
        while scope.len() + " openid".len() <= len {
            scope.push_str(" openid");
        }
        scope.push_str(&" ".repeat(len - scope.len()));
        scope
    };
    let machine = |scope: String| json!({"grant_types": ["client_credentials"], "scope": scope});
    assert_eq!(register(&server, &machine(scope(MAX_STRING))).await.status(), 201);
    assert_registration_error(register(&server, &machine(scope(MAX_STRING + 1))).await, "invalid_client_metadata")
        .await;
}

#[tokio::test]
async fn registration_rate_allows_exactly_20_per_address() {
    let server = TestServer::start().await;
    let body = json!({"grant_types": ["client_credentials"], "scope": "profile"});
    for _ in 0..20 {
        assert_eq!(register(&server, &body).await.status(), 201);
    }
    let limited = register(&server, &body).await;
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "600");
    let error: Value = limited.json().await.unwrap();
    assert_eq!(error["error"], "temporarily_unavailable");
}

#[tokio::test]
async fn login_is_throttled_per_address_after_exactly_20_failures() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    let page = browser.authorize(&webapp_request("openid", "s", "n")).await.text().await.unwrap();
    for attempt in 0..20 {
        let response = browser.login(&page, &format!("nobody-{attempt}"), "wrong").await;
        assert_eq!(response.status(), 200, "attempt {attempt} is answered, not throttled");
    }
    let throttled = browser.login(&page, "alice", "alice-password").await;
    assert_eq!(throttled.status(), 429, "the address is throttled whatever the username");
}

/// The `value` of a `Set-Cookie` for `name` in a response.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}="))?.split(';').next().map(str::to_owned))
}

#[tokio::test]
async fn login_issues_a_fresh_session_id_and_never_adopts_a_planted_one() {
    let server = TestServer::start().await;
    let planted = "attacker-chosen-session-id";
    let authorize = server
        .http
        .get(server.url("/authorize"))
        .query(&webapp_request("openid", "s", "n"))
        .header("cookie", format!("portcullis_session={planted}"))
        .send()
        .await
        .unwrap();
    let browser_id = set_cookie(&authorize, "portcullis_browser").expect("a browser-binding cookie");
    let page = authorize.text().await.unwrap();
    let login = server
        .http
        .post(server.url("/login"))
        .header("cookie", format!("portcullis_browser={browser_id}; portcullis_session={planted}"))
        .form(&[
            ("interaction", hidden(&page, "interaction").as_str()),
            ("csrf_token", hidden(&page, "csrf_token").as_str()),
            ("username", "alice"),
            ("password", "alice-password"),
        ])
        .send()
        .await
        .unwrap();
    assert!(login.status().is_success() || login.status().is_redirection(), "{}", login.status());
    let session = set_cookie(&login, "portcullis_session").expect("a new session cookie");
    assert_ne!(session, planted);
    assert!(session.len() >= 43, "256 bits of randomness");
}

/// Posts the login form of `page` as alice, sending `cookies`.
async fn login_with_cookies(server: &TestServer, page: &str, cookies: &str) -> reqwest::Response {
    server
        .http
        .post(server.url("/login"))
        .header("cookie", cookies)
        .form(&[
            ("interaction", hidden(page, "interaction").as_str()),
            ("csrf_token", hidden(page, "csrf_token").as_str()),
            ("username", "alice"),
            ("password", "alice-password"),
        ])
        .send()
        .await
        .unwrap()
}

/// The `error` a silent authorization request (`prompt=none`) with `cookies` is answered with.
async fn silent_error(server: &TestServer, cookies: &str) -> Option<String> {
    let mut params = webapp_request("openid", "s", "n");
    params.push(("prompt", "none"));
    let response =
        server.http.get(server.url("/authorize")).query(&params).header("cookie", cookies).send().await.unwrap();
    crate::harness::location_param(&response, "error")
}

/// OIDC Core §3.1.2.1 `prompt=login`: the user signs in again, in a new session, and the
/// session id the browser had before ends (it may have been planted or stolen).
#[tokio::test]
async fn oidc_core_3_1_2_1_prompt_login_re_authentication_ends_the_previous_session() {
    let server = TestServer::start().await;
    let authorize = server.http.get(server.url("/authorize")).query(&webapp_request("openid", "s", "n")).send();
    let authorize = authorize.await.unwrap();
    let browser = format!("portcullis_browser={}", set_cookie(&authorize, "portcullis_browser").unwrap());
    let first = login_with_cookies(&server, &authorize.text().await.unwrap(), &browser).await;
    let first = set_cookie(&first, "portcullis_session").expect("a session");
    let with_first = format!("{browser}; portcullis_session={first}");
    assert_eq!(silent_error(&server, &with_first).await.as_deref(), Some("consent_required"), "signed in");

    let mut again = webapp_request("openid", "s", "n");
    again.push(("prompt", "login"));
    let page = server.http.get(server.url("/authorize")).query(&again).header("cookie", &with_first).send().await;
    let page = page.unwrap().text().await.unwrap();
    let second = login_with_cookies(&server, &page, &with_first).await;
    let second = set_cookie(&second, "portcullis_session").expect("a new session");
    assert_ne!(second, first);
    let with_second = format!("{browser}; portcullis_session={second}");
    assert_eq!(silent_error(&server, &with_second).await.as_deref(), Some("consent_required"));
    assert_eq!(
        silent_error(&server, &with_first).await.as_deref(),
        Some("login_required"),
        "the old session id no longer signs anyone in"
    );
}
