//! RFC 8628 in headless Chromium: the device pages (code, sign-in, consent, done) with
//! the keyboard alone, each checked and photographed like the other pages.

use fantoccini::key::Key;
use portcullis::provider::RegistrationPolicy;
use serde_json::Value;

use crate::chromium::Chromium;
use crate::fixtures::fixtures_with_device_client;
use crate::harness::TestServer;

#[tokio::test]
async fn rfc8628_3_3_the_device_pages_by_keyboard_alone() {
    let server = TestServer::start_on(fixtures_with_device_client("browser"), RegistrationPolicy::Disabled).await;
    let form = [("client_id", "tv"), ("scope", "openid profile")];
    let started: Value =
        server.http.post(server.url("/device_authorization")).form(&form).send().await.unwrap().json().await.unwrap();
    let user_code = started["user_code"].as_str().unwrap();
    let browser = Chromium::start().await;

    browser.goto(&server.url("/device")).await;
    assert_eq!(browser.heading().await, "Connect a device");
    browser.assert_focus("#user_code").await;
    browser.inspect("device code", None).await;
    browser.type_text(&user_code.to_lowercase().replace('-', "")).await;
    browser.press(Key::Tab).await;
    browser.assert_focus("button:Continue").await;
    browser.press_and_wait(Key::Enter).await;

    assert_eq!(browser.heading().await, "Sign in");
    assert_eq!(browser.text_of(".lead").await.as_deref(), Some("to continue to Living Room TV"));
    browser.inspect("device sign-in", None).await;
    browser.assert_focus("#username").await;
    browser.type_text("alice").await;
    browser.press(Key::Tab).await;
    browser.type_text("alice-password").await;
    browser.press_and_wait(Key::Enter).await;

    assert_eq!(browser.heading().await, "Allow access?");
    assert_eq!(browser.text_of(".user-code").await.as_deref(), Some(user_code), "the consent shows the code");
    assert_eq!(browser.text_of(".lead").await.as_deref(), Some("Living Room TV on a device would like to:"));
    browser.inspect("device consent", None).await;
    browser.press(Key::Tab).await;
    browser.assert_focus("button:Allow").await;
    browser.press_and_wait(Key::Enter).await;

    assert_eq!(browser.heading().await, "Device connected");
    browser.inspect("device connected", None).await;
    let poll = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("client_id", "tv"),
        ("device_code", started["device_code"].as_str().unwrap()),
    ];
    let tokens = server.http.post(server.url("/token")).form(&poll).send().await.unwrap();
    assert_eq!(tokens.status(), 200, "the device gets its tokens");
    browser.quit().await;
}
