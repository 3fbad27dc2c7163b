//! Issue 22.5: `/account`, where the signed-in user sees the applications they allowed and
//! their sessions, revokes an application's access and signs sessions out.

use serde_json::Value;

use crate::harness::{Browser, TestServer, hidden, location_param, webapp_request};

async fn prompt_none(browser: &Browser) -> Option<String> {
    let mut params = webapp_request("openid", "s", "n");
    params.push(("prompt", "none"));
    location_param(&browser.authorize(&params).await, "error")
}

async fn account(browser: &Browser, server: &TestServer) -> String {
    let response = browser.http.get(server.url("/account")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let policy = response.headers()["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("frame-ancestors 'none'") && !policy.contains("script-src"), "{policy}");
    response.text().await.unwrap()
}

/// The `value` of every button named `name` on the page.
fn button_values(page: &str, name: &str) -> Vec<String> {
    let marker = format!("name=\"{name}\" value=\"");
    page.match_indices(&marker).map(|(at, _)| page[at + marker.len()..].split('"').next().unwrap().to_owned()).collect()
}

async fn refresh(server: &TestServer, refresh_token: &str) -> u16 {
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token)];
    server.post_basic("/token", "webapp", "webapp-secret", &form).await.status().as_u16()
}

#[tokio::test]
async fn account_page_signs_in_first_then_lists_the_allowed_applications_and_the_session() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    let form = account(&browser, &server).await;
    assert!(form.contains("<h1>Sign in</h1>") && form.contains("<strong>your account</strong>"), "{form}");
    assert!(form.contains(r#"<form method="post" action="/account">"#), "the form comes back here");
    let forged = [("csrf_token", "forged"), ("username", "alice"), ("password", "alice-password")];
    assert_eq!(browser.post("/account", &forged).await.status(), 403, "the sign-in form's CSRF token is checked");
    let csrf = hidden(&form, "csrf_token");
    let wrong = browser.post("/account", &[("csrf_token", &csrf), ("username", "alice"), ("password", "no")]).await;
    assert!(wrong.text().await.unwrap().contains("Incorrect username or password."));
    let signed_in =
        browser.post("/account", &[("csrf_token", &csrf), ("username", "alice"), ("password", "alice-password")]).await;
    assert_eq!(signed_in.status(), 303);
    assert_eq!(signed_in.headers()["location"], "/account", "then back to the page");

    let page = account(&browser, &server).await;
    assert!(page.contains("<h1>Your account</h1>") && page.contains("Signed in as <strong>alice</strong>"), "{page}");
    assert!(page.contains("You have not allowed any application yet."), "{page}");
    assert_eq!(button_values(&page, "sign_out").len(), 1, "this browser's session");
    assert!(page.contains("This browser"));

    server.webapp_tokens(&browser, "openid email").await;
    let page = account(&browser, &server).await;
    assert_eq!(button_values(&page, "revoke"), ["webapp"], "{page}");
    assert!(page.contains("<strong>Web App</strong>"), "{page}");
    assert!(page.contains("See your email address"), "what it may do, in words: {page}");
}

#[tokio::test]
async fn account_revoke_access_forgets_the_consent_and_revokes_the_clients_grants_offline_ones_too() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    let offline = server.webapp_tokens(&browser, "openid offline_access").await;
    let online = server.webapp_tokens(&browser, "openid").await;
    let page = account(&browser, &server).await;
    let csrf = hidden(&page, "csrf_token");

    let forged = browser.post("/account", &[("csrf_token", "forged"), ("revoke", "webapp")]).await;
    assert_eq!(forged.status(), 403, "a form without the session's CSRF token is refused");
    assert_eq!(button_values(&account(&browser, &server).await, "revoke"), ["webapp"], "nothing changed");

    let revoked = browser.post("/account", &[("csrf_token", &csrf), ("revoke", "webapp")]).await;
    assert_eq!((revoked.status().as_u16(), revoked.headers()["location"].to_str().unwrap()), (303, "/account"));
    let page = account(&browser, &server).await;
    assert!(button_values(&page, "revoke").is_empty(), "the application is gone: {page}");
    for tokens in [&offline, &online] {
        assert!(!server.introspect_active(tokens["access_token"].as_str().unwrap()).await, "access tokens revoked");
    }
    let offline_refresh = offline["refresh_token"].as_str().unwrap();
    assert!(!server.introspect_active(offline_refresh).await, "the offline family too");
    assert_eq!(refresh(&server, offline_refresh).await, 400);
    let mut params = webapp_request("openid", "s", "n");
    params.push(("prompt", "none"));
    let asked = browser.authorize(&params).await;
    assert_eq!(location_param(&asked, "error").as_deref(), Some("consent_required"), "the consent is forgotten");
}

#[tokio::test]
async fn account_sign_out_ends_another_session_of_the_user_and_keeps_this_one() {
    let server = TestServer::start().await;
    let (laptop, phone) = (Browser::new(&server), Browser::new(&server));
    server.webapp_tokens(&laptop, "openid").await;
    let on_phone = server.webapp_tokens(&phone, "openid").await;
    let page = account(&laptop, &server).await;
    let sids = button_values(&page, "sign_out");
    assert_eq!(sids.len(), 2, "both sessions are listed: {page}");
    assert!(page.contains("This browser") && page.contains("Another browser or device"));
    let phone_sid =
        crate::harness::jwt_part(on_phone["id_token"].as_str().unwrap(), 1)["sid"].as_str().unwrap().to_owned();
    assert_eq!(sids[1], phone_sid, "this browser's session first, then the other");
    let csrf = hidden(&page, "csrf_token");

    let unknown = laptop.post("/account", &[("csrf_token", &csrf), ("sign_out", "not-a-session-of-alice")]).await;
    assert_eq!(unknown.status(), 400, "only the user's own sessions");
    let ended = laptop.post("/account", &[("csrf_token", &csrf), ("sign_out", &phone_sid)]).await;
    assert_eq!((ended.status().as_u16(), ended.headers()["location"].to_str().unwrap()), (303, "/account"));
    assert_eq!(prompt_none(&phone).await.as_deref(), Some("login_required"), "the phone is signed out");
    assert!(!server.introspect_active(on_phone["access_token"].as_str().unwrap()).await, "as at logout");
    assert_eq!(prompt_none(&laptop).await, None, "the laptop stays signed in");
    assert_eq!(button_values(&account(&laptop, &server).await, "sign_out").len(), 1);
}

#[tokio::test]
async fn account_sign_out_of_this_session_signs_the_browser_out() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    let tokens: Value = server.webapp_tokens(&browser, "openid").await;
    let page = account(&browser, &server).await;
    let (csrf, sid) = (hidden(&page, "csrf_token"), button_values(&page, "sign_out").remove(0));
    let ended = browser.post("/account", &[("csrf_token", &csrf), ("sign_out", &sid)]).await;
    assert_eq!(ended.status(), 200);
    let cleared = ended.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cleared.starts_with("portcullis_session=;") && cleared.contains("Max-Age=0"), "{cleared}");
    assert!(ended.text().await.unwrap().contains("You are signed out."));
    assert_eq!(prompt_none(&browser).await.as_deref(), Some("login_required"));
    assert!(!server.introspect_active(tokens["access_token"].as_str().unwrap()).await);
    let again = account(&browser, &server).await;
    assert!(again.contains("<h1>Sign in</h1>"), "signed out: the sign-in form again");
}
