//! Issue 21: signing in against an LDAP directory, a real OpenLDAP `slapd` started by the
//! test ([`crate::slapd`]) with a certificate from a test CA: over LDAPS and over StartTLS,
//! groups mapped and allowed, wrong and empty passwords and unknown people refused alike,
//! the directory down (a clear page, no 5xx, the password form of local users still
//! working), and group changes seen at refresh.

use std::sync::Arc;

use portcullis::clock::Clock;
use portcullis::model::{ClientRecord, ConnectorRecord};
use portcullis::protocol::federation::federated_subject;
use portcullis::store::{Directory, Federation, MemoryStore, Store};
use portcullis::vocabulary::{GrantType, Scope};
use serde_json::{Value, json};

use crate::fixtures::{m2m_client, user_with_password};
use crate::harness::{hidden, location_param, serve_store};
use crate::slapd::{Slapd, connector};

const APP_REDIRECT: &str = "https://app.example/cb";
const WRONG: &str = "Incorrect username or password.";
const UNREACHABLE: &str = "The directory cannot be reached right now";

/// A directory holding jane (in `staff` and `admins`) and bob (in `contractors` only).
async fn directory() -> Slapd {
    let slapd = Slapd::start().await;
    slapd.add_person("jane", "Jane Doe", "jane-pass").await;
    slapd.add_person("bob", "Bob Roe", "bob-pass").await;
    slapd.add_group("staff", &["jane"]).await;
    slapd.add_group("admins", &["jane"]).await;
    slapd.add_group("contractors", &["bob"]).await;
    slapd
}

/// A downstream with `connector`, a local user `alice` and an application `app` offering
/// both.
async fn downstream(connector: ConnectorRecord) -> (String, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new(Clock::system()));
    let (base, _, _) = serve_store(Arc::clone(&store) as Arc<dyn Store>).await;
    store.put_connector(connector).await.unwrap();
    store.put_user(user_with_password("alice", "alice-pass")).await.unwrap();
    let app = ClientRecord {
        client_id: "app".into(),
        redirect_uris: vec![APP_REDIRECT.into()],
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scopes: Scope::parse("openid profile email groups offline_access").unwrap(),
        skip_consent: true,
        ..m2m_client("openid")
    };
    store.put_client(app).await.unwrap();
    (base, store)
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).cookie_store(true).build().unwrap()
}

/// The directory's password form, reached through the `connector` hint.
async fn directory_form(browser: &reqwest::Client, base: &str) -> String {
    let params = [
        ("client_id", "app"),
        ("redirect_uri", APP_REDIRECT),
        ("response_type", "code"),
        ("scope", "openid profile email groups offline_access"),
        ("state", "app-state"),
        ("connector", "corp"),
    ];
    let page = browser.get(format!("{base}/authorize")).query(&params).send().await.unwrap();
    assert_eq!(page.status(), 200);
    page.text().await.unwrap()
}

/// Posts `username` and `password` on the directory form `page`.
async fn post_directory(
    browser: &reqwest::Client,
    base: &str,
    page: &str,
    username: &str,
    password: &str,
) -> reqwest::Response {
    let form = [
        ("interaction", hidden(page, "interaction")),
        ("csrf_token", hidden(page, "csrf_token")),
        ("connector", hidden(page, "connector")),
        ("username", username.to_owned()),
        ("password", password.to_owned()),
    ];
    browser.post(format!("{base}/login/upstream")).form(&form).send().await.unwrap()
}

async fn tokens(browser: &reqwest::Client, base: &str, done: &reqwest::Response) -> Value {
    assert_eq!(done.status(), 303);
    assert_eq!(location_param(done, "state").as_deref(), Some("app-state"));
    let code = location_param(done, "code").expect("a code for the app");
    let form = [("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", APP_REDIRECT)];
    let answer = browser.post(format!("{base}/token")).basic_auth("app", Some("m2m-secret")).form(&form).send();
    answer.await.unwrap().json().await.unwrap()
}

async fn refresh(browser: &reqwest::Client, base: &str, refresh_token: &str) -> reqwest::Response {
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token)];
    browser.post(format!("{base}/token")).basic_auth("app", Some("m2m-secret")).form(&form).send().await.unwrap()
}

#[tokio::test]
async fn over_ldaps_a_staff_member_signs_in_with_directory_attributes_and_prefixed_groups() {
    let slapd = directory().await;
    let url = format!("ldaps://127.0.0.1:{}", slapd.tls_port);
    let (base, store) = downstream(connector(url, false, Some(slapd.ca_pem()))).await;
    let browser = browser();
    let page = directory_form(&browser, &base).await;
    assert!(page.contains("<strong>Corp directory</strong>") && page.contains("Corp username"), "{page}");
    let done = post_directory(&browser, &base, &page, "jane", "jane-pass").await;
    let tokens = tokens(&browser, &base, &done).await;
    let userinfo: Value = browser
        .get(format!("{base}/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let subject = federated_subject("corp", "jane");
    assert_eq!(userinfo["sub"], subject.as_str(), "derived from the connector and the uid");
    assert_eq!((&userinfo["preferred_username"], &userinfo["name"]), (&json!("jane"), &json!("Jane Doe")));
    assert_eq!((&userinfo["email"], &userinfo["email_verified"]), (&json!("jane@example.org"), &json!(true)));
    assert_eq!(userinfo["groups"], json!(["ldap:admins", "ldap:staff"]));
    let kept = store.federated_user(&subject).await.unwrap().unwrap();
    assert_eq!((kept.connector.as_str(), kept.upstream_subject.as_str()), ("corp", "jane"));
}

#[tokio::test]
async fn wrong_or_empty_passwords_and_unknown_people_are_refused_alike_and_outsiders_get_a_page_saying_why() {
    let slapd = directory().await;
    let url = format!("ldaps://127.0.0.1:{}", slapd.tls_port);
    let (base, _) = downstream(connector(url, false, Some(slapd.ca_pem()))).await;
    let browser = browser();
    let page = directory_form(&browser, &base).await;
    for (username, password) in [("jane", "wrong"), ("nobody", "jane-pass"), ("jane", ""), ("*", "jane-pass")] {
        let refused = post_directory(&browser, &base, &page, username, password).await;
        assert_eq!(refused.status(), 200, "{username}/{password}: the form again");
        let text = refused.text().await.unwrap();
        assert!(text.contains(WRONG) && text.contains(r#"name="connector" value="corp""#), "{username}: {text}");
    }
    let outsider = post_directory(&browser, &base, &page, "bob", "bob-pass").await;
    assert_eq!(outsider.status(), 403);
    assert!(outsider.text().await.unwrap().contains("none of the groups this connector allows"));
}

#[tokio::test]
async fn a_directory_password_form_is_throttled_per_username_like_the_local_one() {
    let slapd = directory().await;
    let url = format!("ldaps://127.0.0.1:{}", slapd.tls_port);
    let (base, _) = downstream(connector(url, false, Some(slapd.ca_pem()))).await;
    let browser = browser();
    let page = directory_form(&browser, &base).await;
    for attempt in 1..=5 {
        let refused = post_directory(&browser, &base, &page, "jane", "wrong").await;
        assert_eq!(refused.status(), 200, "attempt {attempt} is checked");
    }
    let throttled = post_directory(&browser, &base, &page, "jane", "jane-pass").await;
    assert_eq!(throttled.status(), 429, "the sixth, even with the right password, is not");
    assert!(throttled.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn over_starttls_sign_in_works_and_a_directory_down_or_untrusted_gets_a_clear_page_while_local_logins_work() {
    let mut slapd = directory().await;
    let url = format!("ldap://127.0.0.1:{}", slapd.port);
    let (base, store) = downstream(connector(url.clone(), true, Some(slapd.ca_pem()))).await;
    let browser = browser();
    let page = directory_form(&browser, &base).await;
    let done = post_directory(&browser, &base, &page, "jane", "jane-pass").await;
    assert_eq!(done.status(), 303, "signed in over StartTLS");

    slapd.stop();
    let fresh = self::browser();
    let page = directory_form(&fresh, &base).await;
    let down = post_directory(&fresh, &base, &page, "jane", "jane-pass").await;
    assert_eq!(down.status(), 200, "no 5xx: the form again, saying why");
    assert!(down.text().await.unwrap().contains(UNREACHABLE));
    let params = [
        ("client_id", "app"),
        ("redirect_uri", APP_REDIRECT),
        ("response_type", "code"),
        ("scope", "openid"),
        ("state", "app-state"),
    ];
    let login = fresh.get(format!("{base}/authorize")).query(&params).send().await.unwrap().text().await.unwrap();
    let form = [
        ("interaction", hidden(&login, "interaction")),
        ("csrf_token", hidden(&login, "csrf_token")),
        ("username", "alice".to_owned()),
        ("password", "alice-pass".to_owned()),
    ];
    let local = fresh.post(format!("{base}/login")).form(&form).send().await.unwrap();
    assert_eq!(local.status(), 303, "a local user still signs in");

    slapd.restart();
    store.put_connector(connector(url, true, None)).await.unwrap();
    let other = self::browser();
    let page = directory_form(&other, &base).await;
    let untrusted = post_directory(&other, &base, &page, "jane", "jane-pass").await;
    assert_eq!(untrusted.status(), 200);
    assert!(untrusted.text().await.unwrap().contains(UNREACHABLE), "a certificate from an untrusted CA is refused");
}

/// A refresh searches the person again: once they leave the allowed group, the refresh
/// family ends.
#[tokio::test]
async fn a_refresh_re_reads_the_directory_and_a_person_who_left_the_allowed_group_loses_the_family() {
    let slapd = directory().await;
    let url = format!("ldaps://127.0.0.1:{}", slapd.tls_port);
    let (base, _) = downstream(connector(url, false, Some(slapd.ca_pem()))).await;
    let browser = browser();
    let page = directory_form(&browser, &base).await;
    let done = post_directory(&browser, &base, &page, "jane", "jane-pass").await;
    let tokens = tokens(&browser, &base, &done).await;
    let refreshed = refresh(&browser, &base, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(refreshed.status(), 200, "still in staff");
    let refreshed: Value = refreshed.json().await.unwrap();

    slapd.leave_group("staff", "jane").await;
    let refused = refresh(&browser, &base, refreshed["refresh_token"].as_str().unwrap()).await;
    assert_eq!(refused.status(), 400);
    assert_eq!(refused.json::<Value>().await.unwrap()["error"], "invalid_grant");
}
