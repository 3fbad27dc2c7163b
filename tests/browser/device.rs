//! RFC 8628 in headless Chromium: the device pages (code, sign-in, consent, done) with
//! the keyboard alone, each checked and photographed like the other pages; and the device
//! approved by a person signing in through a directory connector (a real `slapd`).

use fantoccini::key::Key;
use portcullis::model::ConnectorRecord;
use portcullis::protocol::federation::federated_subject;
use portcullis::provider::RegistrationPolicy;
use serde_json::Value;

use crate::chromium::Chromium;
use crate::fixtures::fixtures_with_device_client;
use crate::harness::{TestServer, jwt_part};
use crate::slapd::{Slapd, connector};

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

/// Issue 21: the device page's sign-in offers the client's connectors beside the password
/// form; a person follows "Continue with Corp directory" by keyboard, types their directory
/// password on our form for that directory (pictured), approves, and the device gets
/// tokens for the person's federated subject.
#[tokio::test]
async fn the_device_is_approved_by_a_person_signing_in_through_a_directory_by_keyboard_alone() {
    let slapd = Slapd::start().await;
    slapd.add_person("jane", "Jane Doe", "jane-pass").await;
    slapd.add_group("staff", &["jane"]).await;
    let server = TestServer::start_on(fixtures_with_device_client("directory"), RegistrationPolicy::Disabled).await;
    let url = format!("ldaps://127.0.0.1:{}", slapd.tls_port);
    let directory =
        ConnectorRecord { display_name: "Corp directory".into(), ..connector(url, false, Some(slapd.ca_pem())) };
    server.provider.store.put_connector(directory).await.unwrap();
    let form = [("client_id", "tv"), ("scope", "openid profile")];
    let started: Value =
        server.http.post(server.url("/device_authorization")).form(&form).send().await.unwrap().json().await.unwrap();
    let browser = Chromium::start().await;

    browser.goto(started["verification_uri_complete"].as_str().unwrap()).await;
    browser.assert_focus("#user_code").await;
    browser.press_and_wait(Key::Enter).await;
    assert_eq!(browser.heading().await, "Sign in");
    assert_eq!(browser.text_of(".connectors a").await.as_deref(), Some("Continue with Corp directory"));
    assert!(browser.attribute(".connectors a svg", "aria-hidden").await.is_some(), "the directory's picture");
    browser.inspect("device-sign-in-with-connector", None).await;
    browser.assert_focus("#username").await;
    browser.press_shift_tab().await;
    browser.assert_focus("a:Continue with Corp directory").await;
    browser.press_and_wait(Key::Enter).await;

    assert_eq!(browser.heading().await, "Sign in");
    assert_eq!(browser.text_of("label[for=username]").await.as_deref(), Some("Corp username"));
    browser.inspect("directory-login", None).await;
    browser.assert_focus("#username").await;
    browser.type_text("jane").await;
    browser.press(Key::Tab).await;
    browser.type_text("jane-pass").await;
    browser.press_and_wait(Key::Enter).await;

    assert_eq!(browser.heading().await, "Allow access?");
    assert_eq!(browser.text_of(".user-code").await.as_deref(), started["user_code"].as_str());
    browser.press(Key::Tab).await;
    browser.assert_focus("button:Allow").await;
    browser.press_and_wait(Key::Enter).await;
    assert_eq!(browser.heading().await, "Device connected");

    let poll = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("client_id", "tv"),
        ("device_code", started["device_code"].as_str().unwrap()),
    ];
    let tokens: Value = server.http.post(server.url("/token")).form(&poll).send().await.unwrap().json().await.unwrap();
    let claims = jwt_part(tokens["id_token"].as_str().expect("the device gets its tokens"), 1);
    assert_eq!(claims["sub"], federated_subject("corp", "jane").as_str(), "{claims}");
    browser.quit().await;
}
