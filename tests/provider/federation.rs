//! Issue 21: signing in through an upstream OpenID Connect provider — here another
//! Portcullis over real HTTP, so every check of the upstream side (discovery, PKCE S256,
//! `state`, `nonce`, the ID token's signature and claims) runs against a real provider.

use std::sync::Arc;

use portcullis::clock::Clock;
use portcullis::model::{ButtonIcon, ClaimPaths, ClientRecord, ConnectorRecord, OidcUpstream, Upstream, UserRecord};
use portcullis::protocol::federation::federated_subject;
use portcullis::store::{Directory, Federation, MemoryStore, Store};
use portcullis::vocabulary::{GrantType, Scope, TokenEndpointAuthMethod};
use serde_json::{Value, json};

use crate::fixtures::m2m_client;
use crate::harness::{TestServer, hidden, jwt_part, location_param, serve_store};

const APP_REDIRECT: &str = "https://app.example/cb";

/// A downstream provider (on a memory store) with connector `corp` to `upstream`, which
/// registered it as a client, and an application `app` (secret `m2m-secret`).
async fn downstream(upstream: &TestServer, adjust: impl FnOnce(&mut ConnectorRecord)) -> (String, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new(Clock::system()));
    let (base, _, _) = serve_store(Arc::clone(&store) as Arc<dyn Store>).await;
    let registered = upstream
        .register_client(json!({
            "redirect_uris": [format!("{base}/callback/corp")],
            "client_name": "Downstream",
            // A loopback http redirect URI, as a test downstream has.
            "application_type": "native",
            "grant_types": ["authorization_code", "refresh_token"],
            "scope": "openid profile email offline_access",
        }))
        .await;
    let client_id = registered["client_id"].as_str().unwrap();
    // Registration offers no `groups`; the upstream's operator grants it to this client.
    let mut registered_client = upstream.provider.store.client(client_id).await.unwrap().unwrap().as_ref().clone();
    registered_client.scopes = Scope::parse("openid profile email groups offline_access").unwrap();
    upstream.provider.store.put_client(registered_client).await.unwrap();
    let mut connector = ConnectorRecord {
        name: "corp".into(),
        display_name: "Corp SSO".into(),
        icon: ButtonIcon::OpenId,
        upstream: Upstream::Oidc(OidcUpstream {
            issuer: upstream.url(""),
            client_id: client_id.into(),
            client_secret: registered["client_secret"].as_str().unwrap().into(),
            scopes: ["openid", "profile", "email", "groups", "offline_access"].map(String::from).to_vec(),
            claims: ClaimPaths::default(),
            skip_email_verified: false,
            userinfo: false,
        }),
        group_prefix: "corp:".into(),
        allowed_groups: vec![],
        refresh_interval: 600,
        login_hint_domains: vec![],
    };
    adjust(&mut connector);
    store.put_connector(connector).await.unwrap();
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

fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// The href of the login page's "Continue with …" link.
fn continue_link(page: &str) -> String {
    let start = page.find("href=\"/login/upstream?").map(|i| i + 6).expect("a connector link");
    let href = page[start..].split('"').next().unwrap();
    html_unescape(href)
}

/// Undoes the page's HTML escaping of an attribute (`&amp;`, `&#38;`, `&#x3D;` …).
fn html_unescape(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find('&') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find(';').map(|i| start + i).unwrap();
        let entity = &rest[start + 1..end];
        let code = match entity {
            "amp" => '&' as u32,
            hex if hex.starts_with("#x") => u32::from_str_radix(&hex[2..], 16).unwrap(),
            decimal => decimal[1..].parse().unwrap(),
        };
        out.push(char::from_u32(code).unwrap());
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The app's authorization request at the downstream, then its login page's link to the
/// upstream: answers the redirect to the upstream.
async fn start_upstream_sign_in(browser: &reqwest::Client, base: &str) -> reqwest::Response {
    start_upstream_sign_in_for(browser, base, "openid profile email").await
}

/// [`start_upstream_sign_in`] for `scope`.
async fn start_upstream_sign_in_for(browser: &reqwest::Client, base: &str, scope: &str) -> reqwest::Response {
    let params = [
        ("client_id", "app"),
        ("redirect_uri", APP_REDIRECT),
        ("response_type", "code"),
        ("scope", scope),
        ("state", "app-state"),
        ("nonce", "app-nonce"),
    ];
    let page = browser.get(format!("{base}/authorize")).query(&params).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("Continue with Corp SSO"), "{page}");
    browser.get(format!("{base}{}", continue_link(&page))).send().await.unwrap()
}

/// Signs alice in at the upstream and consents: answers the upstream's redirect back.
async fn upstream_sign_in(browser: &reqwest::Client, upstream: &TestServer, to_upstream: &str) -> reqwest::Response {
    let consent = upstream_login(browser, upstream, to_upstream).await;
    assert_eq!(consent.status(), 200, "the upstream's consent page");
    let page = consent.text().await.unwrap();
    let form = [
        ("interaction", hidden(&page, "interaction")),
        ("csrf_token", hidden(&page, "csrf_token")),
        ("decision", "allow".to_owned()),
    ];
    browser.post(upstream.url("/consent")).form(&form).send().await.unwrap()
}

/// Signs alice in at the upstream: answers its consent page, or its redirect back when
/// alice has consented before.
async fn upstream_login(browser: &reqwest::Client, upstream: &TestServer, to_upstream: &str) -> reqwest::Response {
    let page = browser.get(to_upstream).send().await.unwrap().text().await.unwrap();
    let form = [
        ("interaction", hidden(&page, "interaction")),
        ("csrf_token", hidden(&page, "csrf_token")),
        ("username", "alice".to_owned()),
        ("password", "alice-password".to_owned()),
    ];
    browser.post(upstream.url("/login")).form(&form).send().await.unwrap()
}

#[tokio::test]
async fn a_person_signs_in_through_an_upstream_portcullis_and_gets_a_stable_federated_subject() {
    let upstream = TestServer::start().await;
    let (base, store) = downstream(&upstream, |_| {}).await;
    let browser = browser();
    let to_upstream = start_upstream_sign_in(&browser, &base).await;
    assert_eq!(to_upstream.status(), 303);
    let cookie = to_upstream.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("portcullis_upstream=") && cookie.contains("Path=/callback"), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
    let target = location(&to_upstream);
    assert!(target.starts_with(&upstream.url("/authorize?")), "{target}");
    let query: std::collections::HashMap<String, String> =
        url::Url::parse(&target).unwrap().query_pairs().into_owned().collect();
    assert_eq!(query["code_challenge_method"], "S256", "PKCE S256 upstream");
    assert!(query["state"].len() >= 43 && query["nonce"].len() >= 43, "{query:?}");
    assert_eq!(query["redirect_uri"], format!("{base}/callback/corp"));

    let back = upstream_sign_in(&browser, &upstream, &target).await;
    assert_eq!(back.status(), 303);
    assert!(location(&back).starts_with(&format!("{base}/callback/corp?")), "{}", location(&back));
    let done = browser.get(location(&back)).send().await.unwrap();
    assert_eq!(done.status(), 303, "{}", done.text().await.unwrap());
    assert!(location(&done).starts_with(APP_REDIRECT));
    assert_eq!(location_param(&done, "state").as_deref(), Some("app-state"));
    assert_eq!(location_param(&done, "iss").as_deref(), Some(base.as_str()));
    let code = location_param(&done, "code").unwrap();

    let tokens: Value = browser
        .post(format!("{base}/token"))
        .basic_auth("app", Some("m2m-secret"))
        .form(&[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", APP_REDIRECT)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let claims = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    let expected = federated_subject("corp", "alice");
    assert_eq!(claims["sub"], expected.as_str(), "{claims}");
    assert_eq!(claims["nonce"], "app-nonce");
    assert_eq!(claims["preferred_username"], "alice");
    assert_eq!((&claims["email"], &claims["email_verified"]), (&json!("alice@example.com"), &json!(true)));
    assert_eq!(claims["name"], "Alice Liddell");
    let federated = store.federated_user(&expected).await.unwrap().expect("kept in the store");
    assert_eq!((federated.connector.as_str(), federated.upstream_subject.as_str()), ("corp", "alice"));

    let userinfo: Value = browser
        .get(format!("{base}/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(userinfo["sub"], expected.as_str(), "userinfo serves the federated user: {userinfo}");
    assert_eq!(userinfo["email"], "alice@example.com");
}

#[tokio::test]
async fn rfc6749_10_12_a_callback_whose_state_is_not_the_browsers_signs_nobody_in() {
    let upstream = TestServer::start().await;
    let (base, _) = downstream(&upstream, |_| {}).await;
    let browser = browser();
    let to_upstream = start_upstream_sign_in(&browser, &base).await;
    let back = upstream_sign_in(&browser, &upstream, &location(&to_upstream)).await;
    let callback = location(&back);
    let code = url::Url::parse(&callback).unwrap().query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    let forged = browser
        .get(format!("{base}/callback/corp"))
        .query(&[("code", code.as_str()), ("state", "forged-state")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403, "a state other than the sealed one is refused");
    let stranger = self::browser();
    let elsewhere = stranger.get(&callback).send().await.unwrap();
    assert_eq!(elsewhere.status(), 400, "another browser carries no sign-in to complete");
    assert!(elsewhere.headers().get("location").is_none());
}

#[tokio::test]
async fn a_replayed_callback_does_not_sign_in_twice() {
    let upstream = TestServer::start().await;
    let (base, _) = downstream(&upstream, |_| {}).await;
    let browser = browser();
    let to_upstream = start_upstream_sign_in(&browser, &base).await;
    let sealed = to_upstream.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let back = upstream_sign_in(&browser, &upstream, &location(&to_upstream)).await;
    let callback = location(&back);
    assert_eq!(browser.get(&callback).send().await.unwrap().status(), 303, "the first callback signs in");
    let replay = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let browser_cookie = "portcullis_browser=unknown";
    let replayed = replay.get(&callback).header("cookie", format!("{sealed}; {browser_cookie}")).send().await.unwrap();
    assert!(replayed.status().is_client_error() || replayed.status() == 502, "{}", replayed.status());
    assert!(replayed.headers().get("location").is_none(), "no code for a replay");
}

#[tokio::test]
async fn people_outside_the_allowed_groups_are_refused_with_a_page_saying_why() {
    let upstream = TestServer::start().await;
    let (base, store) = downstream(&upstream, |connector| connector.allowed_groups = vec!["admins".into()]).await;
    let browser = browser();
    let to_upstream = start_upstream_sign_in(&browser, &base).await;
    let back = upstream_sign_in(&browser, &upstream, &location(&to_upstream)).await;
    let refused = browser.get(location(&back)).send().await.unwrap();
    assert_eq!(refused.status(), 403);
    assert!(refused.text().await.unwrap().contains("none of the groups this connector allows"));
    assert!(store.federated_user(&federated_subject("corp", "alice")).await.unwrap().is_none(), "nobody kept");
}

#[tokio::test]
async fn an_upstream_access_denied_goes_back_to_the_client_with_its_state_and_our_issuer() {
    let upstream = TestServer::start().await;
    let (base, _) = downstream(&upstream, |_| {}).await;
    let browser = browser();
    let to_upstream = start_upstream_sign_in(&browser, &base).await;
    let state = url::Url::parse(&location(&to_upstream))
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let denied = browser
        .get(format!("{base}/callback/corp"))
        .query(&[("error", "access_denied"), ("state", state.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 303);
    assert!(location(&denied).starts_with(APP_REDIRECT));
    assert_eq!(location_param(&denied, "error").as_deref(), Some("access_denied"));
    assert_eq!(location_param(&denied, "state").as_deref(), Some("app-state"));
    assert_eq!(location_param(&denied, "iss").as_deref(), Some(base.as_str()));
}

#[tokio::test]
async fn a_client_that_allows_no_connector_shows_no_link_and_refuses_the_start() {
    let upstream = TestServer::start().await;
    let (base, store) = downstream(&upstream, |_| {}).await;
    let mut app = store.client("app").await.unwrap().unwrap().as_ref().clone();
    app.policy.connectors = Some(vec![]);
    store.put_client(app).await.unwrap();
    let params = [("client_id", "app"), ("redirect_uri", APP_REDIRECT), ("response_type", "code"), ("scope", "openid")];
    let browser = browser();
    let page = browser.get(format!("{base}/authorize")).query(&params).send().await.unwrap().text().await.unwrap();
    assert!(!page.contains("Continue with"), "{page}");
    let form = [
        ("connector", "corp".to_owned()),
        ("interaction", hidden(&page, "interaction")),
        ("csrf_token", hidden(&page, "csrf_token")),
    ];
    let start = browser.get(format!("{base}/login/upstream")).query(&form).send().await.unwrap();
    assert_eq!(start.status(), 400);
}

/// The app's tokens for the code in `done`, the downstream's redirect to it.
async fn redeem(browser: &reqwest::Client, base: &str, done: &reqwest::Response) -> Value {
    let code = location_param(done, "code").expect("a code");
    let form = [("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", APP_REDIRECT)];
    let answer = browser.post(format!("{base}/token")).basic_auth("app", Some("m2m-secret")).form(&form).send().await;
    answer.unwrap().json().await.unwrap()
}

async fn refresh(browser: &reqwest::Client, base: &str, refresh_token: &str) -> reqwest::Response {
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token)];
    browser.post(format!("{base}/token")).basic_auth("app", Some("m2m-secret")).form(&form).send().await.unwrap()
}

/// Issue 21: a refresh asks the upstream again (here at every refresh: `refreshInterval`
/// 0) with its refresh token and maps the person afresh; once the upstream drops them
/// from the allowed group, the refresh is refused and the family ends.
#[tokio::test]
async fn a_refresh_asks_the_upstream_again_and_a_person_who_lost_the_allowed_group_loses_the_family() {
    let upstream = TestServer::start().await;
    let (base, store) = downstream(&upstream, |connector| {
        connector.allowed_groups = vec!["engineering".into()];
        connector.refresh_interval = 0;
        if let Upstream::Oidc(oidc) = &mut connector.upstream {
            oidc.userinfo = true;
        }
    })
    .await;
    let browser = browser();
    let to_upstream = start_upstream_sign_in_for(&browser, &base, "openid groups offline_access").await;
    let back = upstream_sign_in(&browser, &upstream, &location(&to_upstream)).await;
    let done = browser.get(location(&back)).send().await.unwrap();
    assert_eq!(done.status(), 303);
    let tokens = redeem(&browser, &base, &done).await;
    let subject = federated_subject("corp", "alice");
    let first = store.federated_user(&subject).await.unwrap().unwrap();
    let first_credential = first.upstream_credential.clone().expect("the upstream gave a refresh token");
    assert!(first_credential.starts_with("1."), "kept sealed at rest, not as the upstream's token: {first_credential}");
    assert_eq!(first.user.groups, ["corp:engineering"]);

    let refreshed = refresh(&browser, &base, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(refreshed.status(), 200);
    let refreshed: Value = refreshed.json().await.unwrap();
    let again = store.federated_user(&subject).await.unwrap().unwrap();
    assert_ne!(again.upstream_credential.as_deref(), Some(first_credential.as_str()), "the upstream rotated it");
    assert_eq!(jwt_part(refreshed["id_token"].as_str().unwrap(), 1)["sub"], subject.as_str());

    let alice = upstream.provider.store.user_by_username("alice").await.unwrap().unwrap();
    let moved = UserRecord { groups: vec!["sales".into()], ..alice.as_ref().clone() };
    upstream.provider.store.put_user(moved).await.unwrap();
    let refused = refresh(&browser, &base, refreshed["refresh_token"].as_str().unwrap()).await;
    assert_eq!(refused.status(), 400);
    assert_eq!(refused.json::<Value>().await.unwrap()["error"], "invalid_grant");
    let introspected: Value = browser
        .post(format!("{base}/introspect"))
        .basic_auth("app", Some("m2m-secret"))
        .form(&[("token", refreshed["access_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(introspected["active"], false, "the family's access tokens are revoked with it");
}

/// Issue 21: an `OidcUser` claiming an upstream identity adds its roles and groups to the
/// person signing in through it, whose subject and claims stay the upstream's; disabling
/// it refuses their refresh, their access token at userinfo and a new sign-in (a page).
#[tokio::test]
async fn a_claiming_user_adds_its_roles_and_disabling_it_cuts_the_upstream_identity_off() {
    let upstream = TestServer::start().await;
    let (base, store) = downstream(&upstream, |_| {}).await;
    let mut app = store.client("app").await.unwrap().unwrap().as_ref().clone();
    app.scopes = Scope::parse("openid profile email groups roles offline_access").unwrap();
    store.put_client(app).await.unwrap();
    let subject = federated_subject("corp", "alice");
    let claimant = UserRecord {
        roles: vec!["admin".into()],
        groups: vec!["platform".into()],
        ..crate::fixtures::claimant("alice-declared", &[&subject])
    };
    store.put_user(claimant.clone()).await.unwrap();

    let browser = browser();
    let to_upstream = start_upstream_sign_in_for(&browser, &base, "openid profile groups roles offline_access").await;
    let back = upstream_sign_in(&browser, &upstream, &location(&to_upstream)).await;
    let done = browser.get(location(&back)).send().await.unwrap();
    assert_eq!(done.status(), 303);
    let tokens = redeem(&browser, &base, &done).await;
    let claims = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(claims["sub"], subject.as_str(), "the subject stays the federated one");
    assert_eq!(claims["preferred_username"], "alice", "claims stay the upstream's");
    assert_eq!(claims["realm_access"], json!({"roles": ["admin"]}), "{claims}");
    assert_eq!(claims["groups"], json!(["corp:engineering", "platform"]), "{claims}");
    let access_token = tokens["access_token"].as_str().unwrap();
    let userinfo = browser.get(format!("{base}/userinfo")).bearer_auth(access_token).send().await.unwrap();
    assert_eq!(userinfo.json::<Value>().await.unwrap()["realm_access"], json!({"roles": ["admin"]}));

    store.put_user(UserRecord { disabled: true, ..claimant }).await.unwrap();
    let refused = refresh(&browser, &base, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(refused.status(), 400);
    assert_eq!(refused.json::<Value>().await.unwrap()["error"], "invalid_grant");
    let userinfo = browser.get(format!("{base}/userinfo")).bearer_auth(access_token).send().await.unwrap();
    assert_eq!(userinfo.status(), 401, "the access token of a disabled claimant no longer answers");
    let again = self::browser();
    let to_upstream = start_upstream_sign_in(&again, &base).await;
    let back = upstream_login(&again, &upstream, &location(&to_upstream)).await;
    assert_eq!(back.status(), 303, "alice consented before");
    let page = again.get(location(&back)).send().await.unwrap();
    assert_eq!(page.status(), 403);
    assert!(page.text().await.unwrap().contains("the account claiming this identity is disabled"));
}

/// Issue 21: the `connector` authorization-request hint skips the login page for a
/// connector the client offers; any other name is ignored and the login page shown.
#[tokio::test]
async fn the_connector_hint_goes_straight_to_an_offered_upstream_and_is_ignored_otherwise() {
    let upstream = TestServer::start().await;
    let (base, _) = downstream(&upstream, |_| {}).await;
    let authorize = |connector: &'static str| {
        let params = [
            ("client_id", "app"),
            ("redirect_uri", APP_REDIRECT),
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "app-state"),
            ("connector", connector),
        ];
        let browser = browser();
        let base = base.clone();
        async move { (browser.get(format!("{base}/authorize")).query(&params).send().await.unwrap(), browser) }
    };
    let (hinted, browser) = authorize("corp").await;
    assert_eq!(hinted.status(), 303);
    assert!(location(&hinted).starts_with(&upstream.url("/authorize?")), "{}", location(&hinted));
    let back = upstream_sign_in(&browser, &upstream, &location(&hinted)).await;
    let done = browser.get(location(&back)).send().await.unwrap();
    assert_eq!(location_param(&done, "state").as_deref(), Some("app-state"), "the hinted sign-in completes");
    let (ignored, _) = authorize("elsewhere").await;
    assert_eq!(ignored.status(), 200);
    assert!(ignored.text().await.unwrap().contains("Continue with Corp SSO"), "the login page");
}

/// Issue 21's `login_hint` domain rules (OIDC Core §3.1.2.1): a hint at a domain the
/// connector lists goes straight to it, the hint passed on upstream; another domain, or a
/// client that does not offer the connector, shows the login page with the hint filled in.
#[tokio::test]
async fn a_login_hint_at_a_listed_domain_goes_straight_to_its_connector_with_the_hint() {
    let upstream = TestServer::start().await;
    let (base, store) =
        downstream(&upstream, |connector| connector.login_hint_domains = vec!["example.com".into()]).await;
    let mut elsewhere = store.client("app").await.unwrap().unwrap().as_ref().clone();
    elsewhere.client_id = "elsewhere".into();
    elsewhere.policy.connectors = Some(vec![]);
    store.put_client(elsewhere).await.unwrap();
    let authorize = |client_id: &'static str, login_hint: &'static str| {
        let params = [
            ("client_id", client_id),
            ("redirect_uri", APP_REDIRECT),
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "app-state"),
            ("login_hint", login_hint),
        ];
        let browser = browser();
        let base = base.clone();
        async move { (browser.get(format!("{base}/authorize")).query(&params).send().await.unwrap(), browser) }
    };
    let (hinted, browser) = authorize("app", "alice@Example.COM").await;
    assert_eq!(hinted.status(), 303, "straight to the upstream");
    let target = location(&hinted);
    assert!(target.starts_with(&upstream.url("/authorize?")), "{target}");
    let query: std::collections::HashMap<String, String> =
        url::Url::parse(&target).unwrap().query_pairs().into_owned().collect();
    assert_eq!(query["login_hint"], "alice@Example.COM", "the hint is passed on");
    let back = upstream_sign_in(&browser, &upstream, &target).await;
    let done = browser.get(location(&back)).send().await.unwrap();
    assert_eq!(location_param(&done, "state").as_deref(), Some("app-state"), "the sign-in completes");
    for (client_id, login_hint) in
        [("app", "alice@eu.example.com"), ("app", "alice"), ("elsewhere", "alice@example.com")]
    {
        let (page, _) = authorize(client_id, login_hint).await;
        assert_eq!(page.status(), 200, "{client_id} {login_hint}: the login page");
        let page = page.text().await.unwrap();
        assert!(page.contains(&format!("value=\"{login_hint}\"")), "the hint fills in the username: {page}");
    }
}

/// A browser session rides only into clients that would have let it sign in: a session
/// from connector `corp` reaches a client offering `corp` (even one taking no passwords)
/// without a page, but a client offering only another connector shows its login page,
/// and a password session shows a connectors-only client's login page too.
#[tokio::test]
async fn a_session_rides_only_into_clients_that_offer_how_it_signed_in() {
    let upstream = TestServer::start().await;
    let (base, store) = downstream(&upstream, |_| {}).await;
    let app = store.client("app").await.unwrap().unwrap().as_ref().clone();
    let with_policy = |id: &str, connectors: Option<Vec<String>>, connectors_only: bool| {
        let mut client = app.clone();
        client.client_id = id.into();
        client.policy.connectors = connectors;
        client.policy.connectors_only = connectors_only;
        client
    };
    store.put_client(with_policy("corp-only", Some(vec!["corp".into()]), true)).await.unwrap();
    store.put_client(with_policy("other-only", Some(vec!["other".into()]), false)).await.unwrap();
    store.put_user(crate::fixtures::user_with_password("carol", "carol-password")).await.unwrap();
    let authorize = |browser: &reqwest::Client, client_id: &str| {
        let params =
            [("client_id", client_id), ("redirect_uri", APP_REDIRECT), ("response_type", "code"), ("scope", "openid")];
        browser.get(format!("{base}/authorize")).query(&params).send()
    };

    let federated = browser();
    let to_upstream = start_upstream_sign_in(&federated, &base).await;
    let back = upstream_sign_in(&federated, &upstream, &location(&to_upstream)).await;
    assert_eq!(federated.get(location(&back)).send().await.unwrap().status(), 303, "signed in through corp");
    let rides = authorize(&federated, "corp-only").await.unwrap();
    assert_eq!(rides.status(), 302, "corp's session rides into a client offering corp");
    assert!(location_param(&rides, "code").is_some());
    let other = authorize(&federated, "other-only").await.unwrap();
    assert_eq!(other.status(), 200, "a client offering only another connector asks again");
    assert!(other.text().await.unwrap().contains("name=\"password\""), "its login page");

    let local = browser();
    let page = authorize(&local, "app").await.unwrap().text().await.unwrap();
    let form = [
        ("interaction", hidden(&page, "interaction")),
        ("csrf_token", hidden(&page, "csrf_token")),
        ("username", "carol".to_owned()),
        ("password", "carol-password".to_owned()),
    ];
    let signed_in = local.post(format!("{base}/login")).form(&form).send().await.unwrap();
    assert_eq!(signed_in.status(), 303, "carol signs in with her password");
    let refused = authorize(&local, "corp-only").await.unwrap();
    assert_eq!(refused.status(), 200, "a password session does not ride into a client taking no passwords");
    let page = refused.text().await.unwrap();
    assert!(page.contains("Continue with Corp SSO") && !page.contains("name=\"password\""), "{page}");
}

/// RFC 8628 §3.3 through a connector: the device page's sign-in offers the client's
/// connectors (a client taking no passwords shows no password form); the upstream's
/// callback goes on to the device's consent form, and the device is issued tokens for the
/// federated subject. An upstream cancellation lands on a page (there is no client to
/// send `access_denied` to), and the device keeps waiting.
#[tokio::test]
async fn the_device_page_signs_in_through_a_connector_and_the_device_gets_the_federated_subject() {
    let upstream = TestServer::start().await;
    let (base, store) = downstream(&upstream, |_| {}).await;
    let mut tv = ClientRecord {
        client_id: "tv".into(),
        client_name: Some("Living Room TV".into()),
        secret_hash: None,
        auth_method: Some(TokenEndpointAuthMethod::None),
        grant_types: vec![GrantType::DeviceCode],
        scopes: Scope::parse("openid profile").unwrap(),
        ..m2m_client("openid")
    };
    tv.policy.connectors_only = true;
    store.put_client(tv).await.unwrap();
    let http = reqwest::Client::new();
    let device_grant = "urn:ietf:params:oauth:grant-type:device_code";
    let start = || async {
        let form = [("client_id", "tv"), ("scope", "openid profile")];
        let started = http.post(format!("{base}/device_authorization")).form(&form).send().await.unwrap();
        started.json::<Value>().await.unwrap()
    };
    let poll = |device_code: String| {
        let form = [("grant_type", device_grant.to_owned()), ("client_id", "tv".into()), ("device_code", device_code)];
        http.post(format!("{base}/token")).form(&form).send()
    };

    let started = start().await;
    let browser = browser();
    let login = device_sign_in_page(&browser, &base, &started).await;
    assert!(login.contains("Continue with Corp SSO") && !login.contains("name=\"password\""), "{login}");
    assert!(login.contains("<svg class=\"icon\""), "the connector's picture: {login}");
    let link = continue_link(&login);
    assert!(link.contains("device=") && link.contains("user_code=") && !link.contains("interaction="), "{link}");
    let to_upstream = browser.get(format!("{base}{link}")).send().await.unwrap();
    assert_eq!(to_upstream.status(), 303);
    let back = upstream_sign_in(&browser, &upstream, &location(&to_upstream)).await;
    let consent = browser.get(location(&back)).send().await.unwrap();
    assert_eq!(consent.status(), 200, "the device's consent form");
    let consent = consent.text().await.unwrap();
    assert!(consent.contains("Living Room TV") && consent.contains(started["user_code"].as_str().unwrap()));
    let fields = ["csrf_token", "device", "user_code"].map(|name| (name, hidden(&consent, name)));
    let mut decision: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    decision.push(("decision", "allow"));
    let done = browser.post(format!("{base}/device")).form(&decision).send().await.unwrap();
    assert_eq!(done.status(), 200);
    let tokens: Value = poll(started["device_code"].as_str().unwrap().into()).await.unwrap().json().await.unwrap();
    let claims = jwt_part(tokens["id_token"].as_str().expect("tokens for the device"), 1);
    assert_eq!(claims["sub"], federated_subject("corp", "alice").as_str(), "{claims}");
    assert_eq!(claims["preferred_username"], "alice");

    // A cancellation at the upstream: a page, and the device still waits.
    let cancelled = start().await;
    let other = self::browser();
    let login = device_sign_in_page(&other, &base, &cancelled).await;
    let to_upstream = other.get(format!("{base}{}", continue_link(&login))).send().await.unwrap();
    let state = url::Url::parse(&location(&to_upstream))
        .unwrap()
        .query_pairs()
        .find(|(name, _)| name == "state")
        .map(|(_, value)| value.into_owned())
        .unwrap();
    let denied = other
        .get(format!("{base}/callback/corp"))
        .query(&[("error", "access_denied"), ("state", &state)])
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 403);
    assert!(denied.text().await.unwrap().contains("did not sign you in"));
    let waiting = poll(cancelled["device_code"].as_str().unwrap().into()).await.unwrap();
    assert_eq!(waiting.status(), 400);
    assert_eq!(waiting.json::<Value>().await.unwrap()["error"], "authorization_pending");
}

/// Opens the device authorization `started`'s `verification_uri_complete` and submits the
/// prefilled code: the sign-in page.
async fn device_sign_in_page(browser: &reqwest::Client, base: &str, started: &Value) -> String {
    let uri = started["verification_uri_complete"].as_str().unwrap();
    let page = browser.get(uri).send().await.unwrap().text().await.unwrap();
    let form = [("csrf_token", hidden(&page, "csrf_token")), ("user_code", hidden(&page, "user_code"))];
    let login = browser.post(format!("{base}/device")).form(&form).send().await.unwrap();
    assert_eq!(login.status(), 200);
    login.text().await.unwrap()
}
