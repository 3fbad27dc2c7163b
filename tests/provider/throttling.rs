//! Throttles that hold under concurrency: every attempt is reserved from its budgets before
//! the argon2 check it stands for, so a crowd of simultaneous attempts gets no more checks
//! than one attempt after another. Logins: 5 per username and 20 per address per 15
//! minutes; client authentication: 10 failures per client id and 60 per address per minute.

use futures::future::join_all;
use portcullis::secrets;

use crate::harness::{Browser, TestServer, assert_oauth_error, webapp_request};

const CLIENT_CREDENTIALS: [(&str, &str); 1] = [("grant_type", "client_credentials")];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crowd_of_wrong_passwords_for_one_username_gets_five_checks_and_the_right_one_waits() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    let page = browser.authorize(&webapp_request("openid", "s", "n")).await.text().await.unwrap();
    let attempts = (0..150).map(|i| {
        let (browser, page) = (&browser, &page);
        async move { browser.login(page, "alice", &format!("wrong-{i}")).await.status().as_u16() }
    });
    let statuses = join_all(attempts).await;
    let checked = statuses.iter().filter(|status| **status == 200).count();
    let throttled = statuses.iter().filter(|status| **status == 429).count();
    assert_eq!((checked, throttled), (5, 145), "{statuses:?}");
    assert_eq!(server.metric("portcullis_argon2_verifications_total", &[("purpose", "password")]).await, 5.0);
    assert_eq!(server.metric("portcullis_logins_total", &[("result", "throttled")]).await, 145.0);

    let right = browser.login(&page, "alice", "alice-password").await;
    assert_eq!(right.status(), 429, "the right password waits too once the username is throttled");
    let retry_after: u64 = right.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    assert_eq!(server.metric("portcullis_argon2_verifications_total", &[("purpose", "password")]).await, 5.0);
}

#[tokio::test]
async fn a_successful_login_is_not_counted_against_the_username_or_the_address() {
    let server = TestServer::start().await;
    for round in 0..25 {
        let browser = Browser::new(&server);
        let page = browser.authorize(&webapp_request("openid", "s", "n")).await.text().await.unwrap();
        let signed_in = browser.login(&page, "alice", "alice-password").await;
        assert!([200, 303].contains(&signed_in.status().as_u16()), "login {round}: {}", signed_in.status());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wrong_secret_flood_gets_429_after_its_budget_and_other_clients_keep_their_tokens() {
    let server = TestServer::start().await;
    server.m2m_token().await;
    for attempt in 0..10 {
        let refused =
            server.post_basic("/token", "reports-api", &format!("wrong-{attempt}"), &CLIENT_CREDENTIALS).await;
        assert_oauth_error(refused, 401, "invalid_client").await;
    }
    let throttled = server.post_basic("/token", "reports-api", "wrong", &CLIENT_CREDENTIALS).await;
    let retry_after: u64 = throttled.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_oauth_error(throttled, 429, "temporarily_unavailable").await;

    let flood =
        join_all((0..100).map(|i| {
            let server = &server;
            async move {
                server.post_basic("/token", "reports-api", &format!("flood-{i}"), &CLIENT_CREDENTIALS).await.status()
            }
        }));
    let others = async {
        for _ in 0..10 {
            assert_eq!(server.post_basic("/token", "m2m", "m2m-secret", &CLIENT_CREDENTIALS).await.status(), 200);
            let form =
                [("grant_type", "client_credentials"), ("client_id", "m2m-post"), ("client_secret", "m2m-post-secret")];
            assert_eq!(server.http.post(server.url("/token")).form(&form).send().await.unwrap().status(), 200);
        }
    };
    let (flood, ()) = tokio::join!(flood, others);
    assert!(flood.iter().all(|status| *status == 429), "{flood:?}");
    assert_eq!(
        server.metric("portcullis_argon2_verifications_total", &[("purpose", "client_secret")]).await,
        12.0,
        "m2m and m2m-post once each, the flood only until its budget was spent"
    );
    let counted = server.metric("portcullis_client_auth_throttled_total", &[("client_id", "reports-api")]).await;
    assert_eq!(counted, 101.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_requests_of_a_client_share_one_argon2_check_and_no_budget() {
    let server = TestServer::start().await;
    let first = join_all((0..40).map(|_| server.post_basic("/token", "m2m", "m2m-secret", &CLIENT_CREDENTIALS))).await;
    assert!(first.iter().all(|response| response.status() == 200), "none is throttled");
    assert_eq!(server.metric("portcullis_argon2_verifications_total", &[("purpose", "client_secret")]).await, 1.0);
}

#[tokio::test]
async fn client_authentication_failures_are_throttled_per_address_across_client_ids() {
    let server = TestServer::start().await;
    let mut clients = Vec::new();
    for _ in 0..7 {
        let metadata = serde_json::json!({"grant_types": ["client_credentials"], "scope": "profile"});
        let registered = server.http.post(server.url("/register")).json(&metadata).send().await.unwrap();
        let registered: serde_json::Value = registered.json().await.unwrap();
        clients.push(registered["client_id"].as_str().unwrap().to_owned());
    }
    for attempt in 0..60 {
        let client = &clients[attempt % clients.len()];
        let refused = server.post_basic("/token", client, "wrong", &CLIENT_CREDENTIALS).await;
        assert_oauth_error(refused, 401, "invalid_client").await;
    }
    let throttled = server.post_basic("/token", &clients[0], "wrong", &CLIENT_CREDENTIALS).await;
    assert_eq!(throttled.status(), 429, "no client id has spent its 10, but the address has spent its 60");
}

#[tokio::test]
async fn a_generated_secret_is_checked_against_its_digest_without_argon2_and_its_failures_still_count() {
    let server = TestServer::start().await;
    let metadata = serde_json::json!({"grant_types": ["client_credentials"], "scope": "profile"});
    let registered = server.http.post(server.url("/register")).json(&metadata).send().await.unwrap();
    let registered: serde_json::Value = registered.json().await.unwrap();
    let (id, secret) = (registered["client_id"].as_str().unwrap(), registered["client_secret"].as_str().unwrap());
    let stored = server.provider.store.client(id).await.unwrap().unwrap();
    assert_eq!(stored.secret_hash, Some(secrets::hash_generated(secret)), "stored as its digest, never in clear");
    for _ in 0..3 {
        assert_eq!(server.post_basic("/token", id, secret, &CLIENT_CREDENTIALS).await.status(), 200);
    }
    for attempt in 0..10 {
        let refused = server.post_basic("/token", id, &format!("{secret}{attempt}"), &CLIENT_CREDENTIALS).await;
        assert_oauth_error(refused, 401, "invalid_client").await;
    }
    let throttled = server.post_basic("/token", id, "wrong", &CLIENT_CREDENTIALS).await;
    assert_eq!(throttled.status(), 429, "the client id's 10 failures are spent, as with an argon2 hash");
    let argon2 = server.metric("portcullis_argon2_verifications_total", &[("purpose", "client_secret")]).await;
    assert_eq!(argon2, 0.0, "no argon2 for a secret Portcullis generated");
}
