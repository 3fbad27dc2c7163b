//! Issue 21: signing in with GitHub. github.com cannot be reached from here, so a
//! stand-in server implements exactly the endpoints the connector calls — the OAuth web
//! flow (`/login/oauth/authorize`, `/login/oauth/access_token`, with PKCE S256 checked)
//! and the REST API (`/user`, `/user/emails`, `/user/orgs`, `/user/teams`, paginated with
//! `Link` headers) — with the JSON shapes of GitHub's documentation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis::clock::Clock;
use portcullis::model::{ButtonIcon, ClientRecord, ConnectorRecord, GitHubOrg, GitHubUpstream, Upstream};
use portcullis::protocol::federation::federated_subject;
use portcullis::store::{Directory, Federation, MemoryStore, Store};
use portcullis::vocabulary::{GrantType, Scope};
use serde_json::{Value, json};

use crate::fixtures::m2m_client;
use crate::harness::{location_param, serve_store};

const APP_REDIRECT: &str = "https://app.example/cb";
const OAUTH_APP: &str = "Iv1.portcullis";
const OAUTH_SECRET: &str = "github-app-secret";

/// What the stand-in knows: the person, their orgs and teams (`org/slug`), the codes it
/// issued (with their PKCE challenge and redirect URI) and the tokens it accepts.
#[derive(Default)]
struct GitHub {
    orgs: Vec<&'static str>,
    teams: Vec<(&'static str, &'static str)>,
    codes: HashMap<String, (String, String)>,
    tokens: Vec<String>,
    issued: usize,
}

type Shared = Arc<Mutex<GitHub>>;

async fn authorize(State(github): State<Shared>, Query(query): Query<HashMap<String, String>>) -> Response {
    if query.get("client_id").map(String::as_str) != Some(OAUTH_APP)
        || query.get("code_challenge_method").map(String::as_str) != Some("S256")
        || query.get("scope").map(String::as_str) != Some("read:user user:email read:org")
    {
        return (StatusCode::BAD_REQUEST, "unexpected authorization request").into_response();
    }
    let mut github = github.lock().unwrap();
    github.issued += 1;
    let code = format!("code-{}", github.issued);
    github.codes.insert(code.clone(), (query["code_challenge"].clone(), query["redirect_uri"].clone()));
    let state = url::form_urlencoded::byte_serialize(query["state"].as_bytes()).collect::<String>();
    Redirect::to(&format!("{}?code={code}&state={state}", query["redirect_uri"])).into_response()
}

async fn access_token(State(github): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    assert_eq!(headers[header::ACCEPT], "application/json", "JSON asked for, not GitHub's form encoding");
    let mut github = github.lock().unwrap();
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    let verifier_matches = |challenge: &str| {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, field("code_verifier").as_bytes());
        URL_SAFE_NO_PAD.encode(digest) == challenge
    };
    let issued = github.codes.remove(field("code"));
    let valid = field("client_id") == OAUTH_APP
        && field("client_secret") == OAUTH_SECRET
        && issued.is_some_and(|(challenge, redirect_uri)| {
            verifier_matches(&challenge) && redirect_uri == field("redirect_uri")
        });
    // GitHub answers a refused code with 200 and an error member.
    if !valid {
        return axum::Json(
            json!({"error": "bad_verification_code", "error_description": "The code passed is incorrect or expired."}),
        )
        .into_response();
    }
    let token = format!("gho_{}", github.issued);
    github.tokens.push(token.clone());
    axum::Json(json!({"access_token": token, "token_type": "bearer", "scope": "read:org,read:user,user:email"}))
        .into_response()
}

/// The API's answer to a bearer of a token the stand-in issued, or 401.
fn api(github: &Shared, headers: &HeaderMap, answer: impl FnOnce(&GitHub) -> (Value, Option<String>)) -> Response {
    let github = github.lock().unwrap();
    let token =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    if !token.is_some_and(|token| github.tokens.iter().any(|t| t == token)) || headers.get(header::USER_AGENT).is_none()
    {
        return (StatusCode::UNAUTHORIZED, axum::Json(json!({"message": "Bad credentials"}))).into_response();
    }
    let (body, link) = answer(&github);
    let mut response = axum::Json(body).into_response();
    if let Some(link) = link {
        response.headers_mut().insert(header::LINK, link.parse().unwrap());
    }
    response
}

async fn user(State(github): State<Shared>, headers: HeaderMap) -> Response {
    api(&github, &headers, |_| {
        (json!({"login": "octocat", "id": 583231, "name": "The Octocat", "email": null, "type": "User"}), None)
    })
}

async fn emails(State(github): State<Shared>, headers: HeaderMap) -> Response {
    api(&github, &headers, |_| {
        let emails = json!([
            {"email": "octocat@old.example", "primary": false, "verified": true, "visibility": null},
            {"email": "octocat@github.example", "primary": true, "verified": true, "visibility": "private"},
        ]);
        (emails, None)
    })
}

async fn orgs(State(github): State<Shared>, headers: HeaderMap) -> Response {
    api(&github, &headers, |github| (github.orgs.iter().map(|org| json!({"login": org, "id": 1})).collect(), None))
}

/// Teams one per page, so the connector must follow the `Link` header.
async fn teams(
    State(github): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let base = headers[header::HOST].to_str().unwrap().to_owned();
    api(&github, &headers, |github| {
        let page: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
        let Some((org, slug)) = github.teams.get(page - 1) else { return (json!([]), None) };
        let team = json!([{"slug": slug, "name": slug.to_uppercase(), "organization": {"login": org, "id": 1}}]);
        let next = (page < github.teams.len())
            .then(|| format!("<http://{base}/api/v3/user/teams?per_page=1&page={}>; rel=\"next\"", page + 1));
        (team, next)
    })
}

async fn stand_in(github: Shared) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/login/oauth/authorize", get(authorize))
        .route("/login/oauth/access_token", post(access_token))
        .route("/api/v3/user", get(user))
        .route("/api/v3/user/emails", get(emails))
        .route("/api/v3/user/orgs", get(orgs))
        .route("/api/v3/user/teams", get(teams))
        .with_state(github);
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

/// A downstream with connector `gh` to the stand-in (allowing organisation `acme`'s team
/// `sre`, re-checked at every refresh) and an application `app`.
async fn setup(
    person_orgs: Vec<&'static str>,
    person_teams: Vec<(&'static str, &'static str)>,
) -> (String, Arc<MemoryStore>, Shared) {
    let github: Shared = Arc::new(Mutex::new(GitHub { orgs: person_orgs, teams: person_teams, ..GitHub::default() }));
    let web_url = stand_in(Arc::clone(&github)).await;
    let store = Arc::new(MemoryStore::new(Clock::system()));
    let (base, _, _) = serve_store(Arc::clone(&store) as Arc<dyn Store>).await;
    let connector = ConnectorRecord {
        name: "gh".into(),
        display_name: "GitHub".into(),
        icon: ButtonIcon::GitHub,
        upstream: Upstream::GitHub(GitHubUpstream {
            client_id: OAUTH_APP.into(),
            client_secret: OAUTH_SECRET.into(),
            api_url: format!("{web_url}/api/v3"),
            web_url,
            orgs: vec![GitHubOrg { name: "acme".into(), teams: vec!["sre".into()] }],
        }),
        group_prefix: "github:".into(),
        allowed_groups: vec![],
        refresh_interval: 0,
        login_hint_domains: vec![],
    };
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
    (base, store, github)
}

/// The app's sign-in through GitHub, from its authorization request to our last answer.
async fn sign_in(browser: &reqwest::Client, base: &str) -> reqwest::Response {
    let params = [
        ("client_id", "app"),
        ("redirect_uri", APP_REDIRECT),
        ("response_type", "code"),
        ("scope", "openid profile email groups offline_access"),
        ("state", "app-state"),
        ("connector", "gh"),
    ];
    let mut answer = browser.get(format!("{base}/authorize")).query(&params).send().await.unwrap();
    // Our redirect to GitHub, GitHub's back to our callback, then ours to the app.
    for _ in 0..2 {
        assert!(answer.status().is_redirection(), "{}: {}", answer.status(), answer.text().await.unwrap());
        let next = answer.headers()["location"].to_str().unwrap().to_owned();
        answer = browser.get(next).send().await.unwrap();
    }
    answer
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).cookie_store(true).build().unwrap()
}

async fn token(browser: &reqwest::Client, base: &str, form: &[(&str, &str)]) -> reqwest::Response {
    browser.post(format!("{base}/token")).basic_auth("app", Some("m2m-secret")).form(form).send().await.unwrap()
}

#[tokio::test]
async fn a_member_of_an_allowed_github_team_signs_in_with_org_and_team_groups_and_the_primary_verified_email() {
    let (base, store, _) = setup(vec!["acme"], vec![("acme", "web"), ("other", "x"), ("acme", "sre")]).await;
    let browser = browser();
    let done = sign_in(&browser, &base).await;
    assert_eq!(done.status(), 303);
    assert_eq!(location_param(&done, "state").as_deref(), Some("app-state"));
    let code = location_param(&done, "code").expect("a code for the app");
    let tokens: Value = token(
        &browser,
        &base,
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", APP_REDIRECT)],
    )
    .await
    .json()
    .await
    .unwrap();
    let subject = federated_subject("gh", "583231");
    let userinfo: Value = browser
        .get(format!("{base}/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(userinfo["sub"], subject.as_str(), "derived from GitHub's numeric id, not the login");
    assert_eq!(userinfo["preferred_username"], "octocat");
    assert_eq!(userinfo["name"], "The Octocat");
    assert_eq!((&userinfo["email"], &userinfo["email_verified"]), (&json!("octocat@github.example"), &json!(true)));
    let only_listed = "only the allowed org's listed team, found on the third page";
    assert_eq!(userinfo["groups"], json!(["github:acme", "github:acme:sre"]), "{only_listed}");
    let kept = store.federated_user(&subject).await.unwrap().unwrap();
    assert_eq!(kept.upstream_subject, "583231");
}

#[tokio::test]
async fn a_github_user_outside_the_allowed_teams_is_refused_with_a_page_saying_why() {
    let (base, store, _) = setup(vec!["acme"], vec![("acme", "web")]).await;
    let refused = sign_in(&browser(), &base).await;
    assert_eq!(refused.status(), 403);
    assert!(refused.text().await.unwrap().contains("none of the GitHub organisations or teams this connector allows"));
    assert!(store.federated_user(&federated_subject("gh", "583231")).await.unwrap().is_none());
}

/// A refresh asks GitHub again: once the person leaves the allowed team, or GitHub stops
/// accepting the token, the refresh family ends.
#[tokio::test]
async fn a_refresh_re_queries_github_and_a_person_who_left_the_team_loses_the_family() {
    let (base, _, github) = setup(vec!["acme"], vec![("acme", "sre")]).await;
    let browser = browser();
    let done = sign_in(&browser, &base).await;
    let code = location_param(&done, "code").unwrap();
    let tokens: Value = token(
        &browser,
        &base,
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", APP_REDIRECT)],
    )
    .await
    .json()
    .await
    .unwrap();
    let refreshed = token(
        &browser,
        &base,
        &[("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())],
    )
    .await;
    assert_eq!(refreshed.status(), 200, "still in the team");
    let refreshed: Value = refreshed.json().await.unwrap();
    github.lock().unwrap().teams.clear();
    let refused = token(
        &browser,
        &base,
        &[("grant_type", "refresh_token"), ("refresh_token", refreshed["refresh_token"].as_str().unwrap())],
    )
    .await;
    assert_eq!(refused.status(), 400);
    assert_eq!(refused.json::<Value>().await.unwrap()["error"], "invalid_grant");

    github.lock().unwrap().teams.push(("acme", "sre"));
    let done = sign_in(&self::browser(), &base).await;
    let code = location_param(&done, "code").unwrap();
    let tokens: Value = token(
        &browser,
        &base,
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", APP_REDIRECT)],
    )
    .await
    .json()
    .await
    .unwrap();
    github.lock().unwrap().tokens.clear();
    let revoked = token(
        &browser,
        &base,
        &[("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())],
    )
    .await;
    assert_eq!(revoked.status(), 400, "GitHub no longer accepts the token");
}
