//! RFC 8628 Device Authorization Grant over HTTP: the device authorization endpoint, the
//! `/device` pages with a cookie-keeping browser, and polling the token endpoint.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use portcullis::clock::Clock;
use portcullis::model::ClientRecord;
use portcullis::store::{Directory, MemoryStore};
use portcullis::vocabulary::{GrantType, Scope, TokenEndpointAuthMethod};
use serde_json::Value;

use crate::fixtures::{fixtures_with_device_client, m2m_client, user_with_password};
use crate::harness::{Browser, TestServer, assert_oauth_error, hidden, jwt_part, serve_store_at};

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// The per-address budget of codes entered at `/device` (`MAX_CODES_PER_ADDRESS`).
const CODES_PER_ADDRESS: usize = 10;

async fn server(name: &str) -> TestServer {
    TestServer::start_on(fixtures_with_device_client(name), portcullis::provider::RegistrationPolicy::Disabled).await
}

/// `POST /device_authorization` for `tv`; the response body.
async fn start(http: &reqwest::Client, base: &str, scope: &str) -> Value {
    let response =
        http.post(format!("{base}/device_authorization")).form(&[("client_id", "tv"), ("scope", scope)]).send().await;
    let response = response.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.unwrap()
}

async fn poll(http: &reqwest::Client, base: &str, device_code: &str) -> reqwest::Response {
    let form = [("grant_type", DEVICE_GRANT), ("client_id", "tv"), ("device_code", device_code)];
    http.post(format!("{base}/token")).form(&form).send().await.unwrap()
}

/// Opens `verification_uri_complete` and submits the prefilled code form: the page after it.
async fn enter_code(browser: &Browser, uri_complete: &str) -> String {
    let page = browser.http.get(uri_complete).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("default-src 'none'") && !csp.contains("script-src"), "{csp}");
    let page = page.text().await.unwrap();
    let user_code = hidden(&page, "user_code");
    assert_eq!(user_code.len(), 9, "prefilled as shown, {user_code}");
    assert!(page.contains("<label for=\"user_code\">"), "the field is labelled");
    let form = [("csrf_token", hidden(&page, "csrf_token")), ("user_code", user_code)];
    let next = browser.post("/device", &form.each_ref().map(|(k, v)| (*k, v.as_str()))).await;
    assert_eq!(next.status(), 200);
    next.text().await.unwrap()
}

/// Signs alice in on the device login page: the consent page.
async fn sign_in(browser: &Browser, login: &str) -> String {
    let fields = ["csrf_token", "device", "user_code"].map(|name| (name, hidden(login, name)));
    let mut form: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    form.extend([("username", "alice"), ("password", "alice-password")]);
    let consent = browser.post("/device", &form).await;
    assert_eq!(consent.status(), 200);
    consent.text().await.unwrap()
}

async fn decide(browser: &Browser, consent: &str, decision: &str) -> String {
    let fields = ["csrf_token", "device", "user_code"].map(|name| (name, hidden(consent, name)));
    let mut form: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    form.push(("decision", decision));
    let done = browser.post("/device", &form).await;
    assert_eq!(done.status(), 200);
    done.text().await.unwrap()
}

#[tokio::test]
async fn rfc8628_3_2_device_authorization_response() {
    let server = server("response").await;
    let body = start(&server.http, &server.base, "openid profile email").await;
    let user_code = body["user_code"].as_str().unwrap();
    assert!(
        user_code.len() == 9
            && user_code.chars().enumerate().all(|(i, c)| if i == 4 {
                c == '-'
            } else {
                "BCDFGHJKLMNPQRSTVWXZ".contains(c)
            })
    );
    assert_eq!(body["verification_uri"], server.url("/device"));
    assert_eq!(body["verification_uri_complete"], server.url(&format!("/device?user_code={user_code}")));
    assert_eq!((body["expires_in"].as_u64(), body["interval"].as_u64()), (Some(600), Some(5)));
    assert!(body["device_code"].as_str().unwrap().len() >= 43, "256 bits");
    let discovery: Value =
        server.http.get(server.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(discovery["device_authorization_endpoint"], server.url("/device_authorization"));
}

#[tokio::test]
async fn rfc8628_3_1_clients_without_the_grant_and_unknown_scopes_are_refused() {
    let server = server("refused").await;
    let form = [("scope", "openid")];
    let webapp = server.post_basic("/device_authorization", "webapp", "webapp-secret", &form).await;
    assert_oauth_error(webapp, 400, "unauthorized_client").await;
    let wrong_secret = server.post_basic("/device_authorization", "webapp", "wrong", &form).await;
    assert_oauth_error(wrong_secret, 401, "invalid_client").await;
    let scope = [("client_id", "tv"), ("scope", "admin")];
    let unknown = server.http.post(server.url("/device_authorization")).form(&scope).send().await.unwrap();
    assert_oauth_error(unknown, 400, "invalid_scope").await;
}

#[tokio::test]
async fn rfc8628_3_5_pending_then_slow_down_then_tokens_once_then_invalid_grant() {
    let server = server("flow").await;
    let body = start(&server.http, &server.base, "openid profile offline_access").await;
    let device_code = body["device_code"].as_str().unwrap();
    assert_oauth_error(poll(&server.http, &server.base, device_code).await, 400, "authorization_pending").await;
    assert_oauth_error(poll(&server.http, &server.base, device_code).await, 400, "slow_down").await;

    let browser = Browser::new(&server);
    let login = enter_code(&browser, body["verification_uri_complete"].as_str().unwrap()).await;
    assert!(login.contains("Living Room TV"), "the sign-in names the client");
    let consent = sign_in(&browser, &login).await;
    assert!(consent.contains("Living Room TV"), "the consent names the client");
    assert!(consent.contains(body["user_code"].as_str().unwrap()), "and shows the code");
    assert_oauth_error(poll(&server.http, &server.base, device_code).await, 400, "slow_down").await;
    let done = decide(&browser, &consent, "allow").await;
    assert!(done.contains("Device connected"), "{done}");

    let tokens = poll(&server.http, &server.base, device_code).await;
    assert_eq!(tokens.status(), 200);
    let tokens: Value = tokens.json().await.unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "offline_access openid profile");
    let id_token = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!((id_token["sub"].as_str(), id_token["aud"].as_str()), (Some("alice"), Some("tv")));
    assert_eq!(jwt_part(tokens["access_token"].as_str().unwrap(), 1)["client_id"], "tv");
    let refresh = [
        ("grant_type", "refresh_token"),
        ("client_id", "tv"),
        ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
    ];
    let refreshed = server.http.post(server.url("/token")).form(&refresh).send().await.unwrap();
    assert_eq!(refreshed.status(), 200, "the refresh token works as the code grant's does");

    assert_oauth_error(poll(&server.http, &server.base, device_code).await, 400, "invalid_grant").await;
}

#[tokio::test]
async fn rfc8628_3_5_a_denied_request_is_access_denied() {
    let server = server("denied").await;
    let body = start(&server.http, &server.base, "openid").await;
    let browser = Browser::new(&server);
    let login = enter_code(&browser, body["verification_uri_complete"].as_str().unwrap()).await;
    let done = decide(&browser, &sign_in(&browser, &login).await, "deny").await;
    assert!(done.contains("Device not connected"), "{done}");
    let device_code = body["device_code"].as_str().unwrap();
    assert_oauth_error(poll(&server.http, &server.base, device_code).await, 400, "access_denied").await;
}

#[tokio::test]
async fn rfc8628_3_3_a_signed_in_browser_goes_straight_to_consent_and_a_stale_form_is_refused() {
    let server = server("signed-in").await;
    let browser = Browser::new(&server);
    let first = start(&server.http, &server.base, "openid").await;
    let login = enter_code(&browser, first["verification_uri_complete"].as_str().unwrap()).await;
    let consent = sign_in(&browser, &login).await;
    decide(&browser, &consent, "allow").await;
    let (status, again) = decide_raw(&browser, &consent, "deny").await;
    assert_eq!(status, 400, "an authorization decided once takes no second decision");
    assert!(again.contains("This page has expired"), "{again}");

    let second = start(&server.http, &server.base, "openid").await;
    let page = enter_code(&browser, second["verification_uri_complete"].as_str().unwrap()).await;
    assert!(page.contains(second["user_code"].as_str().unwrap()) && page.contains("decision"), "consent at once");
    let forged = [
        ("csrf_token", "forged"),
        ("device", &hidden(&page, "device")),
        ("user_code", &hidden(&page, "user_code")),
        ("decision", "allow"),
    ];
    let refused = browser.post("/device", &forged).await;
    assert_eq!(refused.status(), 403, "the consent form needs the session's CSRF token");
}

async fn decide_raw(browser: &Browser, consent: &str, decision: &str) -> (u16, String) {
    let fields = ["csrf_token", "device", "user_code"].map(|name| (name, hidden(consent, name)));
    let mut form: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    form.push(("decision", decision));
    let response = browser.post("/device", &form).await;
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn rfc8628_5_1_user_codes_are_throttled_per_address_and_a_wrong_code_costs_as_a_right_one() {
    let server = server("throttle").await;
    let body = start(&server.http, &server.base, "openid").await;
    let browser = Browser::new(&server);
    let page = browser.http.get(server.url("/device")).send().await.unwrap().text().await.unwrap();
    let csrf = hidden(&page, "csrf_token");
    for attempt in 1..CODES_PER_ADDRESS {
        let wrong = browser.post("/device", &[("csrf_token", csrf.as_str()), ("user_code", "BBBB-BBBB")]).await;
        assert_eq!(wrong.status(), 200, "attempt {attempt}");
        assert!(wrong.text().await.unwrap().contains("not valid or has expired"));
    }
    let right = [("csrf_token", csrf.as_str()), ("user_code", body["user_code"].as_str().unwrap())];
    let last = browser.post("/device", &right).await;
    assert_eq!(last.status(), 200, "attempt {CODES_PER_ADDRESS} is within the budget");
    assert!(last.text().await.unwrap().contains("Living Room TV"));
    let throttled = browser.post("/device", &right).await;
    assert_eq!(throttled.status(), 429, "attempt {} is not, the right code neither", CODES_PER_ADDRESS + 1);
    assert!(throttled.headers().contains_key("retry-after"));
    let forged = browser.post("/device", &[("csrf_token", "forged"), ("user_code", "BBBB-BBBB")]).await;
    assert_eq!(forged.status(), 403, "the code form needs its CSRF token");
}

#[tokio::test]
async fn rfc8628_3_5_past_expires_in_the_device_code_is_expired_token() {
    let now = Arc::new(AtomicU64::new(Clock::system().now()));
    let clock = Clock::manual(Arc::clone(&now));
    let store = Arc::new(MemoryStore::new(clock.clone()));
    let tv = ClientRecord {
        client_id: "tv".into(),
        secret_hash: None,
        auth_method: Some(TokenEndpointAuthMethod::None),
        grant_types: vec![GrantType::DeviceCode],
        scopes: Scope::parse("openid").unwrap(),
        ..m2m_client("openid")
    };
    store.put_client(tv).await.unwrap();
    store.put_user(user_with_password("alice", "alice-password")).await.unwrap();
    let (base, _, _) = serve_store_at(store, clock).await;
    let http = reqwest::Client::new();
    let body = start(&http, &base, "openid").await;
    let device_code = body["device_code"].as_str().unwrap();
    now.fetch_add(599, Ordering::SeqCst);
    assert_oauth_error(poll(&http, &base, device_code).await, 400, "authorization_pending").await;
    now.fetch_add(1, Ordering::SeqCst);
    assert_oauth_error(poll(&http, &base, device_code).await, 400, "expired_token").await;
}

/// Issue 21: a client whose `localUsers` is false is not approved with a password session:
/// an open consent form is refused, a new code gets a sign-in page without the password
/// form, and a password posted anyway is refused.
#[tokio::test]
async fn a_client_taking_no_passwords_is_not_approved_by_a_password_session_on_the_device_page() {
    let server = server("connectors-only").await;
    let browser = Browser::new(&server);
    let first = start(&server.http, &server.base, "openid").await;
    let login = enter_code(&browser, first["verification_uri_complete"].as_str().unwrap()).await;
    let consent = sign_in(&browser, &login).await;
    let mut tv = server.provider.store.client("tv").await.unwrap().unwrap().as_ref().clone();
    tv.policy.connectors_only = true;
    server.provider.store.put_client(tv).await.unwrap();
    let (status, _) = decide_raw(&browser, &consent, "allow").await;
    assert_eq!(status, 403, "the password session cannot approve it");
    let pending = poll(&server.http, &server.base, first["device_code"].as_str().unwrap()).await;
    assert_oauth_error(pending, 400, "authorization_pending").await;

    let second = start(&server.http, &server.base, "openid").await;
    let page = browser.http.get(second["verification_uri_complete"].as_str().unwrap()).send().await.unwrap();
    let page = page.text().await.unwrap();
    let form = [("csrf_token", hidden(&page, "csrf_token")), ("user_code", hidden(&page, "user_code"))];
    let second_login = browser.post("/device", &form.each_ref().map(|(k, v)| (*k, v.as_str()))).await;
    assert_eq!(second_login.status(), 200);
    let second_login = second_login.text().await.unwrap();
    assert!(second_login.contains("Living Room TV") && !second_login.contains("name=\"password\""), "{second_login}");
    let fields = ["csrf_token", "device", "user_code"].map(|name| (name, hidden(&login, name)));
    let mut form: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    form.extend([("username", "alice"), ("password", "alice-password")]);
    assert_eq!(browser.post("/device", &form).await.status(), 403, "a password posted anyway");
}
