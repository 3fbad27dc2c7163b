//! OpenID Connect RP-Initiated Logout 1.0.

use crate::harness::{Browser, TestServer, hidden, location_base, location_param, webapp_request};

async fn prompt_none(browser: &Browser) -> Option<String> {
    let mut params = webapp_request("openid", "s", "n");
    params.push(("prompt", "none"));
    location_param(&browser.authorize(&params).await, "error")
}

#[tokio::test]
async fn rp_initiated_logout_2_with_hint_ends_the_session_and_redirects_with_state() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    let tokens = server.webapp_tokens(&browser, "openid").await;
    assert_eq!(prompt_none(&browser).await, None, "signed in");
    let id_token = tokens["id_token"].as_str().unwrap();
    let params =
        [("id_token_hint", id_token), ("post_logout_redirect_uri", "http://127.0.0.1:9000/"), ("state", "bye")];
    let response = browser.http.get(server.url("/logout")).query(&params).send().await.unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(location_base(&response), "http://127.0.0.1:9000/");
    assert_eq!(location_param(&response, "state").as_deref(), Some("bye"));
    assert_eq!(prompt_none(&browser).await.as_deref(), Some("login_required"), "the session is gone");
}

#[tokio::test]
async fn rp_initiated_logout_3_unregistered_post_logout_uri_is_never_redirected_to() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    let tokens = server.webapp_tokens(&browser, "openid").await;
    let id_token = tokens["id_token"].as_str().unwrap();
    for uri in ["https://evil.example/", "http://127.0.0.1:9000", "http://127.0.0.1:9000/x"] {
        let params = [("id_token_hint", id_token), ("post_logout_redirect_uri", uri)];
        let response = browser.http.get(server.url("/logout")).query(&params).send().await.unwrap();
        assert_eq!(response.status(), 200, "{uri}");
        assert!(response.headers().get("location").is_none(), "{uri}");
        assert!(response.text().await.unwrap().contains("signed out"));
    }
    assert_eq!(prompt_none(&browser).await.as_deref(), Some("login_required"));
}

#[tokio::test]
async fn rp_initiated_logout_without_hint_asks_for_confirmation_with_csrf() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    server.webapp_tokens(&browser, "openid").await;
    let params = [("client_id", "webapp"), ("post_logout_redirect_uri", "http://127.0.0.1:9000/"), ("state", "s1")];
    let page = browser.http.get(server.url("/logout")).query(&params).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let forged = browser.post("/logout", &[("decision", "logout"), ("csrf_token", "forged")]).await;
    assert_eq!(forged.status(), 403);
    assert_eq!(prompt_none(&browser).await, None, "still signed in after a forged request");
    let csrf = hidden(&html, "csrf_token");
    let confirmed = browser
        .post(
            "/logout",
            &[
                ("decision", "logout"),
                ("csrf_token", &csrf),
                ("client_id", "webapp"),
                ("post_logout_redirect_uri", "http://127.0.0.1:9000/"),
                ("state", "s1"),
            ],
        )
        .await;
    assert_eq!(confirmed.status(), 303);
    assert_eq!(location_param(&confirmed, "state").as_deref(), Some("s1"));
    assert_eq!(prompt_none(&browser).await.as_deref(), Some("login_required"));
}

#[tokio::test]
async fn rp_initiated_logout_rejects_a_forged_hint_and_a_mismatched_client_id() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    let tokens = server.webapp_tokens(&browser, "openid").await;
    let forged = browser.http.get(server.url("/logout")).query(&[("id_token_hint", "a.b.c")]).send().await.unwrap();
    assert_eq!(forged.status(), 400);
    let params = [("id_token_hint", tokens["id_token"].as_str().unwrap()), ("client_id", "spa")];
    let mismatch = browser.http.get(server.url("/logout")).query(&params).send().await.unwrap();
    assert_eq!(mismatch.status(), 400);
    assert_eq!(prompt_none(&browser).await, None, "nothing was ended");
}
