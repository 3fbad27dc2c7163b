//! OpenID Connect Front-Channel Logout 1.0: the page the browser sees after logout frames
//! each relying party's front-channel logout URI, under a policy naming exactly those
//! origins.

use portcullis::provider::RegistrationPolicy;

use crate::fixtures::fixtures_with_webapp;
use crate::harness::{Browser, TestServer, hidden, jwt_part};

const LOGOUT_URI: &str = "https://webapp.example/frontchannel?tenant=a";

async fn signed_in(name: &str, session_required: bool) -> (TestServer, Browser, String) {
    let lines =
        format!("  frontchannelLogoutUri: {LOGOUT_URI}\n  frontchannelLogoutSessionRequired: {session_required}\n");
    let server = TestServer::start_on(fixtures_with_webapp(name, &lines), RegistrationPolicy::Open).await;
    let browser = Browser::new(&server);
    let tokens = server.webapp_tokens(&browser, "openid").await;
    let id_token = tokens["id_token"].as_str().unwrap().to_owned();
    (server, browser, id_token)
}

async fn logout(server: &TestServer, browser: &Browser, id_token: &str) -> reqwest::Response {
    let params =
        [("id_token_hint", id_token), ("post_logout_redirect_uri", "http://127.0.0.1:9000/"), ("state", "bye")];
    browser.http.get(server.url("/logout")).query(&params).send().await.unwrap()
}

#[tokio::test]
async fn frontchannel_logout_3_the_logged_out_page_frames_the_client_with_iss_and_sid_then_continues() {
    let (server, browser, id_token) = signed_in("fcl-session", true).await;
    let response = logout(&server, &browser, &id_token).await;
    assert_eq!(response.status(), 200, "a page, not a redirect: the frames must load first");
    let policy = response.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(policy.contains("; frame-src https://webapp.example;"), "exactly the client's origin: {policy}");
    assert!(policy.contains("script-src 'self';") && policy.contains("frame-ancestors 'none'"), "{policy}");
    let html = response.text().await.unwrap();
    let sid = jwt_part(&id_token, 1)["sid"].as_str().unwrap().to_owned();
    let iss = url::form_urlencoded::byte_serialize(server.base.as_bytes()).collect::<String>();
    let frame = format!(r#"<iframe src="{LOGOUT_URI}&#38;iss={iss}&#38;sid={sid}""#);
    assert!(html.contains(&frame), "§2: iss and sid on the URI, its query kept: {html}");
    assert_eq!(html.matches("<iframe ").count(), 1);
    assert!(html.contains(r#"href="http://127.0.0.1:9000/?state=bye""#), "continues to the redirect URI: {html}");
    assert!(html.contains("<script src=\"/assets/frontchannel-logout.js\"></script>"));
    let script = server.http.get(server.url("/assets/frontchannel-logout.js")).send().await.unwrap();
    assert_eq!(script.headers()["content-type"], "text/javascript; charset=utf-8");
    assert!(script.text().await.unwrap().contains("addEventListener('load'"));
}

#[tokio::test]
async fn frontchannel_logout_2_without_session_required_the_uri_is_framed_as_registered() {
    let (server, browser, id_token) = signed_in("fcl-plain", false).await;
    let html = logout(&server, &browser, &id_token).await.text().await.unwrap();
    assert!(html.contains(&format!(r#"<iframe src="{}""#, LOGOUT_URI.replace('&', "&#38;"))), "{html}");
    assert!(!html.contains("sid="), "{html}");
}

#[tokio::test]
async fn frontchannel_logout_3_the_confirmed_logout_frames_the_client_too_and_without_a_redirect_stays() {
    let (server, browser, _) = signed_in("fcl-confirm", true).await;
    let page = browser.http.get(server.url("/logout")).send().await.unwrap().text().await.unwrap();
    let csrf = hidden(&page, "csrf_token");
    let response = browser.post("/logout", &[("decision", "logout"), ("csrf_token", &csrf)]).await;
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert_eq!(html.matches("<iframe ").count(), 1, "{html}");
    assert!(!html.contains("id=\"continue\"") && !html.contains("<script"), "nowhere to go on to: {html}");
    assert!(html.contains("You are signed out."));
}

/// Issue 22.5: "Sign out" on `/account` ends the session as logout does, so the clients of
/// another session are framed too, and the page goes on back to `/account`.
#[tokio::test]
async fn frontchannel_logout_3_signing_out_another_session_on_the_account_page_frames_its_clients() {
    let (server, phone, _) = signed_in("fcl-account", true).await;
    let laptop = Browser::new(&server);
    server.webapp_tokens(&laptop, "openid").await;
    let page = laptop.http.get(server.url("/account")).send().await.unwrap().text().await.unwrap();
    let csrf = hidden(&page, "csrf_token");
    let marker = "name=\"sign_out\" value=\"";
    let other = page.match_indices(marker).nth(1).map(|(at, _)| page[at + marker.len()..].split('"').next().unwrap());
    let other = other.expect("the phone's session is listed second").to_owned();
    let response = laptop.post("/account", &[("csrf_token", &csrf), ("sign_out", &other)]).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-security-policy"].to_str().unwrap().contains("frame-src https://webapp.example;")
    );
    assert!(response.headers().get("set-cookie").is_none(), "this browser stays signed in");
    let html = response.text().await.unwrap();
    assert!(html.contains(&format!("&#38;sid={other}\"")), "the ended session's sid: {html}");
    assert!(html.contains(r#"<a id="continue" class="button primary" href="/account">"#), "{html}");
    let mut params = crate::harness::webapp_request("openid", "s", "n");
    params.push(("prompt", "none"));
    let asked = phone.authorize(&params).await;
    assert_eq!(crate::harness::location_param(&asked, "error").as_deref(), Some("login_required"));
}
