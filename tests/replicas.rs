//! `portcullis serve` replicas sharing one real Redis: any step of any flow on any replica,
//! races between replicas, every key with an expiry, and a Redis outage and recovery.

#[path = "support/fixtures.rs"]
mod fixtures;
#[path = "support/logout_rp.rs"]
mod logout_rp;
#[path = "support/redis_server.rs"]
mod redis_server;
#[path = "support/serve.rs"]
mod serve;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fixtures::{fixtures_with_device_client, fixtures_with_webapp, m2m_client};
use logout_rp::LogoutRp;
use portcullis::store::{Directory, RedisConfig, RedisStore};
use redis_server::{Monitor, RedisServer};
use serde_json::Value;
use serve::{
    REDIRECT, Replica, authorize_params, browser, finish_sign_in, hidden, param, sign_in, sign_in_with, token,
};

const PASSWORD: &str = "replica-secret";

/// A replica on the fixture manifests, `extra` flags added.
fn replica_with(redis: &RedisServer, prefix: &str, extra: &[&str]) -> Replica {
    let manifests = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/manifests");
    Replica::start(&redis.url(PASSWORD), prefix, &manifests, extra)
}

fn replica(redis: &RedisServer, prefix: &str) -> Replica {
    replica_with(redis, prefix, &[])
}

/// RFC 7662 introspection of `token` by the webapp on `replica`.
async fn introspect(replica: &Replica, token: &str) -> Value {
    let response = reqwest::Client::new()
        .post(replica.url("/introspect"))
        .basic_auth("webapp", Some("webapp-secret"))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    response.json().await.unwrap()
}

fn unique_prefix() -> String {
    format!("replicas-{}", std::process::id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_share_every_step_of_the_browser_flow() {
    let redis = RedisServer::start(PASSWORD);
    let prefix = unique_prefix();
    let (a, b) = (replica(&redis, &prefix), replica(&redis, &prefix));
    let browser = browser();

    let code = sign_in(&browser, &a, &b, "openid profile offline_access").await;
    let tokens: Value = token(&b, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)])
        .await
        .json()
        .await
        .unwrap();
    let id_token = tokens["id_token"].as_str().expect("tokens from the other replica").to_owned();
    let refreshed: Value =
        token(&a, &[("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())])
            .await
            .json()
            .await
            .unwrap();
    let access_token = refreshed["access_token"].as_str().expect("refresh on the first replica");
    let userinfo = reqwest::Client::new().get(b.url("/userinfo")).bearer_auth(access_token).send().await.unwrap();
    assert_eq!(userinfo.status(), 200, "both replicas sign with the same keys");
    assert_eq!(userinfo.json::<Value>().await.unwrap()["preferred_username"], "alice");

    let logout = browser.get(a.url("/logout")).query(&[("id_token_hint", id_token.as_str())]).send().await.unwrap();
    assert_eq!(logout.status(), 200);
    let mut silent = authorize_params("openid");
    silent.push(("prompt", "none"));
    let after = browser.get(b.url("/authorize")).query(&silent).send().await.unwrap();
    assert_eq!(param(&after, "error").as_deref(), Some("login_required"), "the session ended on every replica");
    assert_eq!(introspect(&b, access_token).await["active"], false, "its access tokens are inactive on every replica");
    let offline = refreshed["refresh_token"].as_str().unwrap();
    assert_eq!(introspect(&b, offline).await["active"], true, "offline access survives logout (OIDC Core §11)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_agree_on_generated_secrets_and_redeem_a_raced_code_once() {
    let redis = RedisServer::start(PASSWORD);
    let prefix = unique_prefix();
    let (a, b) = (replica(&redis, &prefix), replica(&redis, &prefix));
    let printed: Vec<&String> =
        a.generated.iter().chain(&b.generated).filter(|(id, _)| id == "generated").map(|(_, secret)| secret).collect();
    assert_eq!(printed.len(), 1, "exactly one replica generated and printed the secret");
    for replica in [&a, &b] {
        let response = reqwest::Client::new()
            .post(replica.url("/token"))
            .basic_auth("generated", Some(printed[0].as_str()))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "the printed secret works on every replica");
    }

    let browser = browser();
    for round in 0..5 {
        let code = if round == 0 {
            sign_in(&browser, &a, &b, "openid").await
        } else {
            let again = browser.get(a.url("/authorize")).query(&authorize_params("openid")).send().await.unwrap();
            param(&again, "code").expect("signed in and consented: straight back with a code")
        };
        let form = [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", REDIRECT)];
        let (first, second) = tokio::join!(token(&a, &form), token(&b, &form));
        let mut statuses = [first.status().as_u16(), second.status().as_u16()];
        statuses.sort_unstable();
        assert!(statuses == [200, 400] || statuses == [400, 400], "never two redemptions: {statuses:?}");
        // The losing redemption is a reuse, which revokes what the code issued: whatever
        // the interleaving, no token from a raced code stays usable.
        for response in [first, second] {
            if response.status() == 200 {
                let body: Value = response.json().await.unwrap();
                let introspection = introspect(&b, body["access_token"].as_str().unwrap()).await;
                assert_eq!(introspection["active"], false, "round {round}: a token from a replayed code is revoked");
            }
        }
    }
}

/// Signs in on `a` and `b` and refreshes the first refresh token on both at once.
async fn parallel_refreshes(a: &Replica, b: &Replica) -> (reqwest::Response, reqwest::Response) {
    let code = sign_in(&browser(), a, b, "openid offline_access").await;
    let tokens: Value =
        crate::token(a, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)])
            .await
            .json()
            .await
            .unwrap();
    let form = [("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())];
    tokio::join!(token(a, &form), token(b, &form))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rfc9700_4_14_2_parallel_refreshes_on_two_replicas_revoke_the_family_by_default() {
    let redis = RedisServer::start(PASSWORD);
    let prefix = unique_prefix();
    let (a, b) = (replica(&redis, &prefix), replica(&redis, &prefix));
    let (first, second) = parallel_refreshes(&a, &b).await;
    assert!(first.status() != 200 || second.status() != 200, "the reuse is refused");
    for winner in [first, second].into_iter().filter(|response| response.status() == 200) {
        let next: Value = winner.json().await.unwrap();
        let form = [("grant_type", "refresh_token"), ("refresh_token", next["refresh_token"].as_str().unwrap())];
        assert_eq!(token(&b, &form).await.status(), 400, "the family is revoked");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_refreshes_on_two_replicas_within_the_reuse_interval_get_the_same_successor() {
    let redis = RedisServer::start(PASSWORD);
    let prefix = format!("{}-reuse", unique_prefix());
    let manifests = std::env::temp_dir().join(format!("portcullis-replicas-reuse-{}", std::process::id()));
    std::fs::create_dir_all(&manifests).unwrap();
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/manifests");
    for file in ["keys.yaml", "users.yaml"] {
        std::fs::copy(fixtures.join(file), manifests.join(file)).unwrap();
    }
    let clients = std::fs::read_to_string(fixtures.join("clients.yaml")).unwrap();
    let roles = "  roles: [admin, viewer, editor]\n";
    let clients = clients.replace(roles, &format!("{roles}  refreshTokenReuseInterval: 3s\n"));
    std::fs::write(manifests.join("clients.yaml"), clients).unwrap();
    let start = || Replica::start(&redis.url(PASSWORD), &prefix, &manifests, &[]);
    let (a, b) = (start(), start());
    let (first, second) = parallel_refreshes(&a, &b).await;
    assert_eq!((first.status().as_u16(), second.status().as_u16()), (200, 200));
    let (first, second): (Value, Value) = (first.json().await.unwrap(), second.json().await.unwrap());
    assert_eq!(first["refresh_token"], second["refresh_token"], "one successor, through Redis");
    assert_eq!(first["access_token"], second["access_token"]);
    assert_eq!(keys_of(&redis, &prefix, "successor"), 1, "kept sealed for the interval");
    let form = [("grant_type", "refresh_token"), ("refresh_token", first["refresh_token"].as_str().unwrap())];
    assert_eq!(token(&b, &form).await.status(), 200, "the family lives on");
}

/// How many keys of `kind` this installation holds.
fn keys_of(redis: &RedisServer, prefix: &str, kind: &str) -> usize {
    redis.cli(&["--scan", "--pattern", &format!("{prefix}:v1:{kind}:*")]).len()
}

/// RFC 6749 §4.1.2 with a stalled store: Redis holds the code's consume past the 500 ms
/// command timeout (the client gets a 503) and applies it when it wakes. The client's retry
/// with the same verifier is refused without revoking the grant; a replay with another
/// verifier revokes it. A refresh stalled the same way keeps its family.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retry_after_a_stalled_store_is_refused_without_revoking_and_a_replay_still_revokes() {
    let redis = RedisServer::start(PASSWORD);
    let prefix = unique_prefix();
    let (a, b) = (replica(&redis, &prefix), replica(&redis, &prefix));
    let verifier = "a-verifier-of-the-webapp-".repeat(3);
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    let challenge = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, digest.as_ref());
    let mut params = authorize_params("openid offline_access");
    params.extend([("code_challenge", challenge.as_str()), ("code_challenge_method", "S256")]);
    // A first exchange loads the consume script, as in any running installation.
    let browser = browser();
    let warm = sign_in_with(&browser, &a, &b, &params).await;
    let warm = [
        ("grant_type", "authorization_code"),
        ("code", &warm),
        ("redirect_uri", REDIRECT),
        ("code_verifier", &verifier),
    ];
    let tokens: Value = token(&a, &warm).await.json().await.unwrap();

    let again = browser.get(a.url("/authorize")).query(&params).send().await.unwrap();
    let code = param(&again, "code").expect("signed in and consented: straight back with a code");
    let exchange = |verifier: &str| {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ];
        form.map(|(name, value)| (name, value.to_owned()))
    };
    let grants = keys_of(&redis, &prefix, "grant");
    let paused = Instant::now();
    redis.cli(&["CLIENT", "PAUSE", "3000", "WRITE"]);
    let stalled = reqwest::Client::new()
        .post(a.url("/token"))
        .basic_auth("webapp", Some("webapp-secret"))
        .form(&exchange(&verifier))
        .send()
        .await
        .unwrap();
    assert_eq!(stalled.status(), 503, "the client gives up after the store timeout");
    tokio::time::sleep(Duration::from_millis(3300).saturating_sub(paused.elapsed())).await;
    let retry = reqwest::Client::new().post(b.url("/token")).basic_auth("webapp", Some("webapp-secret"));
    let retry = retry.form(&exchange(&verifier)).send().await.unwrap();
    assert_eq!(retry.status(), 400);
    assert_eq!(retry.json::<Value>().await.unwrap()["error"], "invalid_grant");
    assert_eq!(keys_of(&redis, &prefix, "grant"), grants, "the retry revoked nothing");
    let replay = reqwest::Client::new().post(a.url("/token")).basic_auth("webapp", Some("webapp-secret"));
    let replay = replay.form(&exchange("another-verifier-of-43-characters-or-more-xyz")).send().await.unwrap();
    assert_eq!(replay.json::<Value>().await.unwrap()["error"], "invalid_grant");
    assert_eq!(keys_of(&redis, &prefix, "grant"), grants - 1, "a replay with another verifier revokes the grant");

    let refresh = [("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())];
    let paused = Instant::now();
    redis.cli(&["CLIENT", "PAUSE", "3000", "WRITE"]);
    assert_eq!(token(&a, &refresh).await.status(), 503);
    tokio::time::sleep(Duration::from_millis(3300).saturating_sub(paused.elapsed())).await;
    let retry = token(&b, &refresh).await;
    assert_eq!(retry.json::<Value>().await.unwrap()["error"], "invalid_grant");
    let introspection = introspect(&b, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(introspection["active"], true, "the refresh retry kept the family");
}

/// Issue 18.2: a thousand anonymous `/authorize` requests to two replicas — every sealed
/// parameter at its limit (a login page each), or at 8 KiB (refused) — leave Redis with
/// exactly the keys it had; a login started before finishes after, and a new one works.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn anonymous_authorizes_write_nothing_to_redis_and_logins_keep_working() {
    let redis = RedisServer::start(PASSWORD);
    let prefix = unique_prefix();
    let (a, b) = (replica(&redis, &prefix), replica(&redis, &prefix));
    let stranger = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let anonymous = |replica: &Replica, size: Option<usize>| {
        let mut params: Vec<(&str, String)> = authorize_params("openid")
            .into_iter()
            .filter(|(name, _)| *name != "state")
            .map(|(name, value)| (name, value.to_owned()))
            .collect();
        for (name, limit) in portcullis::protocol::pending::SEALED_PARAMETER_LIMITS {
            params.push((name, fixtures::sealed_parameter_value(name, size.unwrap_or(limit))));
        }
        stranger.get(replica.url("/authorize")).query(&params).send()
    };
    // The first requests claim the sealing key, once for the installation.
    assert_eq!(anonymous(&a, None).await.unwrap().status(), 200);
    assert_eq!(anonymous(&b, None).await.unwrap().status(), 200);
    let user = browser();
    let in_flight = user.get(a.url("/authorize")).query(&authorize_params("openid")).send().await.unwrap();
    let dbsize = || redis.cli(&["DBSIZE"]);
    let before = dbsize();
    for round in 0..250 {
        let (replica, other) = if round % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let (page, refused, page_elsewhere, refused_elsewhere) = tokio::join!(
            anonymous(replica, None),
            anonymous(replica, Some(8 * 1024)),
            anonymous(other, None),
            anonymous(other, Some(8 * 1024)),
        );
        for response in [page.unwrap(), page_elsewhere.unwrap()] {
            assert_eq!(response.status(), 200);
        }
        for response in [refused.unwrap(), refused_elsewhere.unwrap()] {
            assert_eq!(param(&response, "error").as_deref(), Some("invalid_request"));
        }
    }
    assert_eq!(dbsize(), before, "1,000 anonymous requests wrote nothing");
    assert_eq!(in_flight.status(), 200);
    // A login started before the flood finishes after it, across the replicas.
    finish_sign_in(&user, in_flight, &b, &a).await;
    sign_in(&browser(), &b, &a, "openid profile").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_short_lived_key_the_flows_write_has_an_expiry() {
    let redis = RedisServer::start(PASSWORD);
    let prefix = unique_prefix();
    let (a, b) = (replica(&redis, &prefix), replica(&redis, &prefix));
    let browser = browser();
    let code = sign_in(&browser, &a, &b, "openid offline_access").await;
    let tokens: Value =
        crate::token(&a, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)])
            .await
            .json()
            .await
            .unwrap();
    let access_token = tokens["access_token"].as_str().unwrap();
    reqwest::Client::new()
        .post(b.url("/revoke"))
        .basic_auth("webapp", Some("webapp-secret"))
        .form(&[("token", access_token)])
        .send()
        .await
        .unwrap();
    let page = browser
        .get(a.url("/authorize"))
        .query(&[
            ("client_id", "webapp"),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", "openid email"),
            ("prompt", "login"),
        ])
        .send()
        .await
        .unwrap();
    let page = page.text().await.unwrap();
    let wrong = [
        ("interaction", hidden(&page, "interaction")),
        ("csrf_token", hidden(&page, "csrf_token")),
        ("username", "alice".into()),
        ("password", "wrong".into()),
    ];
    browser.post(b.url("/login")).form(&wrong).send().await.unwrap();

    let keys = redis.cli(&["--scan", "--pattern", &format!("{prefix}:*")]);
    let kinds = ["session", "code", "refresh", "grant", "session-grants", "consent", "{revoked}", "counter"];
    for kind in kinds {
        assert!(
            keys.iter().any(|k| k.starts_with(&format!("{prefix}:v1:{kind}:"))),
            "the flows wrote a {kind} key: {keys:?}"
        );
    }
    assert!(
        !keys.iter().any(|k| k.contains(":interaction:")),
        "pending authorization requests travel sealed in the browser, never stored: {keys:?}"
    );
    for key in &keys {
        let ttl: i64 = redis.cli(&["TTL", key])[0].parse().unwrap();
        let registry = key.contains("{clients}") || key.contains("{users}") || key.contains(":claimed:");
        if registry {
            assert_eq!(ttl, -1, "{key} is desired configuration and does not expire");
        } else {
            assert!(ttl > 0, "{key} has no expiry");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_outage_answers_503_and_not_ready_then_recovers_without_a_restart() {
    let mut redis = RedisServer::start(PASSWORD);
    let prefix = unique_prefix();
    let a = replica(&redis, &prefix);
    let http = reqwest::Client::new();
    let m2m = || {
        http.post(a.url("/token"))
            .basic_auth("m2m", Some("m2m-secret"))
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    let issued: Value = m2m().await.unwrap().json().await.unwrap();
    let access_token = issued["access_token"].as_str().unwrap().to_owned();
    let introspect = || {
        http.post(a.url("/introspect"))
            .basic_auth("m2m", Some("m2m-secret"))
            .form(&[("token", access_token.as_str())])
            .send()
    };
    assert_eq!(introspect().await.unwrap().status(), 200);

    redis.stop();
    let started = Instant::now();
    let down = introspect().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered within the command timeout, took {:?}",
        started.elapsed()
    );
    assert_eq!(down.status(), 503, "the deny-list cannot be checked");
    assert_eq!(down.json::<Value>().await.unwrap()["error"], "temporarily_unavailable");
    assert_eq!(m2m().await.unwrap().status(), 200, "issuing needs no Redis while the client is cached");
    let ready = http.get(a.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(ready.json::<Value>().await.unwrap()["missing"], serde_json::json!(["store"]));
    let login = http.get(a.url("/authorize")).query(&authorize_params("openid")).send().await.unwrap();
    assert_eq!(login.status(), 503, "browser endpoints show an error page");
    assert!(login.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    for path in ["/.well-known/openid-configuration", "/jwks.json", "/health"] {
        assert_eq!(http.get(a.url(path)).send().await.unwrap().status(), 200, "{path} answers from memory");
    }

    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = http.get(a.url("/ready")).send().await.unwrap().status();
        if ready == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "not ready 30 s after Redis came back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let recovered: Value = introspect().await.unwrap().json().await.unwrap();
    assert_eq!(recovered["active"], true, "recovered without a restart, state intact");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_changed_in_the_registry_is_seen_by_every_replica_within_a_second() {
    let redis = RedisServer::start(PASSWORD);
    let prefix = unique_prefix();
    let (a, b) = (replica(&redis, &prefix), replica(&redis, &prefix));
    let store =
        RedisStore::connect(RedisConfig { key_prefix: prefix.clone(), ..RedisConfig::new(redis.url(PASSWORD)) })
            .await
            .unwrap();
    let http = reqwest::Client::new();
    let issue = |replica: &Replica| {
        http.post(replica.url("/token"))
            .basic_auth("m2m", Some("m2m-secret"))
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    assert_eq!(issue(&a).await.unwrap().json::<Value>().await.unwrap()["scope"], "reports:read reports:write");
    store.put_client(m2m_client("reports:read")).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    for replica in [&a, &b] {
        assert_eq!(issue(replica).await.unwrap().json::<Value>().await.unwrap()["scope"], "reports:read");
    }
}

fn calls_between(
    before: &std::collections::BTreeMap<String, u64>,
    after: &std::collections::BTreeMap<String, u64>,
) -> u64 {
    after.iter().map(|(name, calls)| calls - before.get(name).copied().unwrap_or(0)).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hot_path_issuing_costs_no_redis_round_trip_and_validation_and_userinfo_one() {
    let redis = RedisServer::start(PASSWORD);
    // The replica's periodic checks of the store (a few commands every 2 s, whatever the
    // traffic) are put off, so the count is the requests' own.
    let a = replica_with(&redis, &unique_prefix(), &["--store-check-interval", "1h"]);
    let http = reqwest::Client::new();
    let issue = || {
        http.post(a.url("/token"))
            .basic_auth("m2m", Some("m2m-secret"))
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    let warm: Value = issue().await.unwrap().json().await.unwrap();
    let token = warm["access_token"].as_str().unwrap().to_owned();
    let introspect = || {
        http.post(a.url("/introspect")).basic_auth("m2m", Some("m2m-secret")).form(&[("token", token.as_str())]).send()
    };
    assert_eq!(introspect().await.unwrap().status(), 200);

    let before = redis.commands_served();
    for _ in 0..20 {
        assert_eq!(issue().await.unwrap().status(), 200);
    }
    let after_issuing = redis.commands_served();
    assert_eq!(calls_between(&before, &after_issuing), 0, "issuing: {before:?} -> {after_issuing:?}");
    for _ in 0..10 {
        assert_eq!(introspect().await.unwrap().json::<Value>().await.unwrap()["active"], true);
    }
    let after_validating = redis.commands_served();
    assert_eq!(calls_between(&after_issuing, &after_validating), 10, "one deny-list check per validation");

    let code = sign_in(&browser(), &a, &a, "openid profile").await;
    let tokens: Value =
        crate::token(&a, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)])
            .await
            .json()
            .await
            .unwrap();
    let user_token = tokens["access_token"].as_str().unwrap().to_owned();
    let userinfo = || http.get(a.url("/userinfo")).bearer_auth(&user_token).send();
    assert_eq!(userinfo().await.unwrap().status(), 200, "warms the user into the replica's directory cache");
    let before = redis.commands_served();
    for _ in 0..10 {
        assert_eq!(userinfo().await.unwrap().status(), 200);
    }
    let after_userinfo = redis.commands_served();
    assert_eq!(calls_between(&before, &after_userinfo), 10, "one deny-list check per userinfo: {after_userinfo:?}");
    let introspect_user_token = || {
        http.post(a.url("/introspect"))
            .basic_auth("webapp", Some("webapp-secret"))
            .form(&[("token", user_token.as_str())])
            .send()
    };
    assert_eq!(introspect_user_token().await.unwrap().json::<Value>().await.unwrap()["active"], true);
    let before = redis.commands_served();
    for _ in 0..10 {
        assert_eq!(introspect_user_token().await.unwrap().json::<Value>().await.unwrap()["active"], true);
    }
    let after = redis.commands_served();
    assert_eq!(calls_between(&before, &after), 10, "the session's end is read with the deny-list entry: {after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crowd_of_wrong_passwords_across_two_replicas_gets_five_checks_in_all() {
    let redis = RedisServer::start(PASSWORD);
    let prefix = unique_prefix();
    let (a, b) = (
        replica_with(&redis, &prefix, &["--metrics-listen", "127.0.0.1:0"]),
        replica_with(&redis, &prefix, &["--metrics-listen", "127.0.0.1:0"]),
    );
    let browser = browser();
    let page = browser.get(a.url("/authorize")).query(&authorize_params("openid")).send().await.unwrap();
    let page = page.text().await.unwrap();
    let form = |password: String| {
        [
            ("interaction", hidden(&page, "interaction")),
            ("csrf_token", hidden(&page, "csrf_token")),
            ("username", "alice".to_owned()),
            ("password", password),
        ]
    };
    let attempts = (0..150).map(|i| {
        let (replica, form) = (if i % 2 == 0 { &a } else { &b }, form(format!("wrong-{i}")));
        let browser = &browser;
        async move { browser.post(replica.url("/login")).form(&form).send().await.unwrap().status().as_u16() }
    });
    let statuses = futures::future::join_all(attempts).await;
    let checked = statuses.iter().filter(|status| **status == 200).count();
    assert_eq!((checked, statuses.len() - checked), (5, 145), "{statuses:?}");
    assert!(statuses.iter().all(|status| [200, 429].contains(status)), "{statuses:?}");
    let name = "portcullis_argon2_verifications_total";
    let checks = a.metric(name, "purpose=\"password\"").await + b.metric(name, "purpose=\"password\"").await;
    assert_eq!(checks, 5.0, "five argon2 checks on both replicas together");

    let right = browser.post(b.url("/login")).form(&form("alice-password".to_owned())).send().await.unwrap();
    assert_eq!(right.status(), 429, "the right password waits on every replica");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_share_one_budget_of_client_authentication_failures() {
    let redis = RedisServer::start(PASSWORD);
    let prefix = unique_prefix();
    let (a, b) = (replica(&redis, &prefix), replica(&redis, &prefix));
    let http = reqwest::Client::new();
    let attempt = |replica: &Replica, secret: &str| {
        http.post(replica.url("/token"))
            .basic_auth("reports-api", Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    for i in 0..10 {
        let replica = if i % 2 == 0 { &a } else { &b };
        assert_eq!(attempt(replica, "wrong").await.unwrap().status(), 401, "failure {i}");
    }
    for replica in [&a, &b] {
        let throttled = attempt(replica, "wrong").await.unwrap();
        assert_eq!(throttled.status(), 429, "the budget spent across both replicas");
        assert!(throttled.headers().contains_key("retry-after"));
        let right = attempt(replica, "reports-api-secret").await.unwrap();
        assert_eq!(right.status(), 429, "a secret not verified on this replica yet waits too");
    }
    let m2m =
        http.post(a.url("/token")).basic_auth("m2m", Some("m2m-secret")).form(&[("grant_type", "client_credentials")]);
    assert_eq!(m2m.send().await.unwrap().status(), 200, "other clients are not affected");
}

/// The most commands a `serve` replica sends to Redis for each operation once it runs
/// (each script loaded, the client secret memoised). Each is a round trip of its own,
/// except those sent together as one pipeline: writing a session with its entries in the
/// session index and in its user's index (3 commands), writing a grant with its entries in
/// its user's and its client's index (3), updating a grant with the refresh token it
/// issues and its entries in both indexes (4), and a consent with its entries in the
/// user's consent index and the client's index (3). A rise fails here, whatever the
/// timing. Today: the sign-in is the password step's budget reservation, refund and
/// session (3 round trips, 5 commands), then the consent step's reads of the session and of
/// the consent given before, its consent, grant and code writes, and the grant's link to
/// its session, which logout revokes it through (6 round trips, 10 commands); a code
/// exchange is the code's use and the grant's update (2 round trips, 5 commands); a refresh
/// is the token's use, the grant's read and its update (3 round trips, 6 commands). The
/// per-user index (what disabling a user or `portcullis.dev/revoke-sessions` ends, what
/// `/account` lists) and the per-client index (what deleting a client ends) each added one
/// command to the writes they index, inside pipelines that were sent anyway: no round trip
/// was added. The login page's list of the connectors to offer (issue 21) is one script
/// (1 round trip, 1 command) on the sign-in.
const REDIS_COMMAND_BUDGETS: &[(&str, usize)] = &[
    ("sign-in (authorize page, password, consent)", 16),
    ("authorize with a session and consent", 7),
    ("code exchange", 5),
    ("refresh", 6),
    ("introspection", 1),
    ("userinfo", 1),
];

/// Runs each operation of [`REDIS_COMMAND_BUDGETS`] once on `replica`, in order, and
/// returns the commands each sent.
async fn commands_per_operation(redis: &RedisServer, monitor: &Monitor, replica: &Replica) -> Vec<Vec<String>> {
    let browser = browser();
    let scope = "openid profile offline_access";
    let _ = monitor.commands_since(redis);
    let mut spent = Vec::new();
    // Asks for consent again, as the operation measured includes it.
    let mut params = authorize_params(scope);
    params.push(("prompt", "consent"));
    let code = sign_in_with(&browser, replica, replica, &params).await;
    spent.push(monitor.commands_since(redis));
    let again = browser.get(replica.url("/authorize")).query(&authorize_params(scope)).send().await.unwrap();
    assert!(param(&again, "code").is_some(), "signed in and consented: a code straight away");
    spent.push(monitor.commands_since(redis));
    let exchange = [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", REDIRECT)];
    let tokens: Value = token(replica, &exchange).await.json().await.unwrap();
    spent.push(monitor.commands_since(redis));
    let refresh = [("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())];
    let refreshed: Value = token(replica, &refresh).await.json().await.unwrap();
    let access_token = refreshed["access_token"].as_str().expect("refreshed").to_owned();
    spent.push(monitor.commands_since(redis));
    assert_eq!(introspect(replica, &access_token).await["active"], true);
    spent.push(monitor.commands_since(redis));
    let userinfo = reqwest::Client::new().get(replica.url("/userinfo")).bearer_auth(&access_token).send().await;
    assert_eq!(userinfo.unwrap().status(), 200);
    spent.push(monitor.commands_since(redis));
    spent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_commands_per_operation_stay_within_their_budgets() {
    let redis = RedisServer::start(PASSWORD);
    // The periodic store checks are put off, so every command counted is the request's own.
    let a = replica_with(&redis, &unique_prefix(), &["--store-check-interval", "1h"]);
    let monitor = redis.monitor();
    commands_per_operation(&redis, &monitor, &a).await;
    let spent = commands_per_operation(&redis, &monitor, &a).await;
    let over: Vec<_> = REDIS_COMMAND_BUDGETS
        .iter()
        .zip(&spent)
        .filter(|((_, budget), commands)| commands.len() > *budget)
        .map(|((operation, budget), commands)| format!("{operation}: {commands:?} (budget {budget})"))
        .collect();
    assert!(over.is_empty(), "over budget: {over:#?}");
}

/// The most Redis memory (`MEMORY USAGE`, key and overhead included) one SSO session, one
/// refresh family, one remembered consent and the index of a user holding one of each may
/// take. The aim is 512 bytes each (a million sessions in 512 MB); a refresh family, two
/// JSON records (the grant, and the refresh token repeating its client and scope), takes
/// some 700 today. The user index is per user and the client index per client: each key
/// costs most while it lists one or two entries, each further entry only its own bytes (a
/// client index member, a grant id scored by its expiry, some 36 bytes while the client
/// holds up to 128, some 130 beyond, where Redis keeps a skip list).
const RECORD_MEMORY_BUDGETS: [u64; 5] = [512, 768, 512, 512, 512];

/// The fixture manifests with alice's subject a UUID, 36 characters, as directories issue.
fn manifests_with_uuid_subject() -> PathBuf {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/manifests");
    let folder = std::env::temp_dir().join(format!("portcullis-uuid-subject-{}", std::process::id()));
    std::fs::create_dir_all(&folder).unwrap();
    for entry in std::fs::read_dir(&fixtures).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let text =
            text.replace("  username: alice\n", "  username: alice\n  subject: 4f0c1a52-9d3e-4b7a-8c61-2e5f9a7b3d10\n");
        std::fs::write(folder.join(path.file_name().unwrap()), text).unwrap();
    }
    folder
}

/// `MEMORY USAGE` of every key of `kind`.
fn memory_of(redis: &RedisServer, prefix: &str, kind: &str) -> Vec<u64> {
    let keys = redis.cli(&["--scan", "--pattern", &format!("{prefix}:v1:{kind}:*")]);
    keys.iter().map(|key| redis.cli(&["MEMORY", "USAGE", key])[0].parse().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_memory_per_session_refresh_family_and_consent_stays_within_budget() {
    let redis = RedisServer::start(PASSWORD);
    let prefix = unique_prefix();
    let a = Replica::start(&redis.url(PASSWORD), &prefix, &manifests_with_uuid_subject(), &[]);
    let code = sign_in(&browser(), &a, &a, "openid profile email offline_access").await;
    let exchange = [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", REDIRECT)];
    let tokens: Value = token(&a, &exchange).await.json().await.unwrap();
    assert_eq!(tokens["token_type"], "Bearer");

    let [session, grant, refresh, consent] =
        ["session", "grant", "refresh", "consent"].map(|kind| memory_of(&redis, &prefix, kind));
    assert_eq!([session.len(), grant.len(), refresh.len(), consent.len()], [1, 1, 1, 1], "one of each");
    let index: u64 = redis.cli(&["MEMORY", "USAGE", &format!("{prefix}:v1:sessions")])[0].parse().unwrap();
    let consent_index = memory_of(&redis, &prefix, "user-consents");
    assert_eq!(consent_index.len(), 1, "the user's consent index");
    let user_index = memory_of(&redis, &prefix, "user-index");
    assert_eq!(user_index.len(), 1, "alice's index");
    let client_index = memory_of(&redis, &prefix, "client-index");
    assert_eq!(client_index.len(), 1, "the client's index");
    let figures = [
        ("SSO session, its share of the session index included", session[0] + index),
        ("refresh family (grant and live refresh token)", grant[0] + refresh[0]),
        ("remembered consent, the user's consent index included", consent[0] + consent_index[0]),
        ("a user's index of one session and one grant", user_index[0]),
        ("a client's index of one grant and one consent", client_index[0]),
    ];
    for (record, bytes) in figures {
        eprintln!("{record}: {bytes} bytes, so {bytes} MB for 1,000,000 of them");
    }
    let over: Vec<_> =
        figures.iter().zip(RECORD_MEMORY_BUDGETS).filter(|((_, bytes), budget)| bytes > budget).collect();
    assert!(over.is_empty(), "over budget: {over:?}");
}

/// RFC 8628 across replicas: each step on another replica than the one before, the poll
/// state (its interval, the approval, the one redemption) shared through Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rfc8628_a_device_flow_runs_across_two_replicas() {
    let redis = RedisServer::start(PASSWORD);
    let prefix = unique_prefix();
    let folder = fixtures_with_device_client("replicas");
    let a = Replica::start(&redis.url(PASSWORD), &prefix, &folder, &[]);
    let b = Replica::start(&redis.url(PASSWORD), &prefix, &folder, &[]);
    let http = reqwest::Client::new();
    let started: Value = http
        .post(a.url("/device_authorization"))
        .form(&[("client_id", "tv"), ("scope", "openid offline_access")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let device_code = started["device_code"].as_str().unwrap();
    let poll = |replica: &Replica| {
        let form = [
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", "tv"),
            ("device_code", device_code),
        ];
        http.post(replica.url("/token")).form(&form).send()
    };
    let error = |response: reqwest::Response| async move { response.json::<Value>().await.unwrap()["error"].clone() };
    assert_eq!(error(poll(&a).await.unwrap()).await, "authorization_pending");
    assert_eq!(error(poll(&b).await.unwrap()).await, "slow_down", "b saw a's poll");

    let browser = browser();
    let user_code = started["user_code"].as_str().unwrap();
    let page = browser.get(b.url("/device")).query(&[("user_code", user_code)]).send().await.unwrap();
    let page = page.text().await.unwrap();
    let form = [("csrf_token", hidden(&page, "csrf_token")), ("user_code", user_code.to_owned())];
    let login = browser.post(a.url("/device")).form(&form).send().await.unwrap().text().await.unwrap();
    let mut form: Vec<(&str, String)> =
        ["csrf_token", "device", "user_code"].iter().map(|name| (*name, hidden(&login, name))).collect();
    form.extend([("username", "alice".to_owned()), ("password", "alice-password".to_owned())]);
    let consent = browser.post(b.url("/device")).form(&form).send().await.unwrap().text().await.unwrap();
    let mut form: Vec<(&str, String)> =
        ["csrf_token", "device", "user_code"].iter().map(|name| (*name, hidden(&consent, name))).collect();
    form.push(("decision", "allow".to_owned()));
    let done = browser.post(a.url("/device")).form(&form).send().await.unwrap();
    assert_eq!(done.status(), 200);

    let (on_a, on_b) = tokio::join!(poll(&a), poll(&b));
    let statuses = [on_a.unwrap().status().as_u16(), on_b.unwrap().status().as_u16()];
    assert!(statuses == [200, 400] || statuses == [400, 200], "one redemption in all: {statuses:?}");
}

/// The claims of a JWT, unverified.
fn jwt_claims(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// Signs a new browser in (password on `login`, the rest on `rest`), redeems the code on
/// `rest`, logs out there and returns the ID token's `sid`.
async fn session_signed_in_and_out(login: &Replica, rest: &Replica) -> String {
    let browser = browser();
    let mut params = authorize_params("openid");
    params.push(("prompt", "consent"));
    let code = sign_in_with(&browser, rest, login, &params).await;
    let tokens: Value =
        token(rest, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)])
            .await
            .json()
            .await
            .unwrap();
    let id_token = tokens["id_token"].as_str().unwrap();
    let logout = browser.get(rest.url("/logout")).query(&[("id_token_hint", id_token)]).send().await.unwrap();
    assert_eq!(logout.status(), 200);
    jwt_claims(id_token)["sid"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backchannel_logout_2_8_two_replicas_deliver_each_session_once_even_after_a_retry() {
    let redis = RedisServer::start(PASSWORD);
    let prefix = unique_prefix();
    // The relying party answers 500 to the first attempt, so one delivery is retried while
    // both replicas poll the queue every 50 ms.
    let rp = LogoutRp::start(1).await;
    let folder = fixtures_with_webapp("replicas-bcl", &format!("  backchannelLogoutUri: {}\n", rp.uri));
    let flags = ["--backchannel-logout-poll-interval", "50ms", "--metrics-listen", "127.0.0.1:0"];
    let start = |_| Replica::start(&redis.url(PASSWORD), &prefix, &folder, &flags);
    let (a, b) = (start(0), start(1));

    let mut sids = vec![session_signed_in_and_out(&b, &a).await, session_signed_in_and_out(&a, &b).await];
    let delivered = rp.wait_for(2).await;
    // Long enough for every replica to poll the queue many times over.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let delivered_after = rp.delivered();
    assert_eq!(delivered_after.len(), 2, "one delivery per session, by one replica: {delivered:?}");
    assert_eq!(rp.attempts(), 3, "the failed attempt was retried once, not once per replica");
    let mut delivered_sids: Vec<String> =
        delivered_after.iter().map(|token| jwt_claims(token)["sid"].as_str().unwrap().to_owned()).collect();
    sids.sort_unstable();
    delivered_sids.sort_unstable();
    assert_eq!(delivered_sids, sids, "each logout token names the session its ID token did");
    let (name, delivered_label) = ("portcullis_backchannel_logout_total", "result=\"delivered\"");
    let total = a.metric(name, delivered_label).await + b.metric(name, delivered_label).await;
    assert_eq!(total, 2.0, "counted once, by the replica that delivered");
}

/// The fixture manifests in a folder of their own, to edit while replicas watch it.
fn editable_fixtures(name: &str) -> PathBuf {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/manifests");
    let folder = std::env::temp_dir().join(format!("portcullis-editable-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&folder).unwrap();
    for file in ["keys.yaml", "users.yaml", "clients.yaml"] {
        std::fs::copy(fixtures.join(file), folder.join(file)).unwrap();
    }
    folder
}

/// Whether on `replica` the browser's SSO session is gone (a `prompt=none` authorization
/// answers `login_required`) and both tokens are inactive at introspection.
async fn lost_everything(
    browser: &reqwest::Client,
    replica: &Replica,
    access_token: &str,
    refresh_token: &str,
) -> bool {
    let mut silent = authorize_params("openid");
    silent.push(("prompt", "none"));
    let session = browser.get(replica.url("/authorize")).query(&silent).send().await.unwrap();
    param(&session, "error").as_deref() == Some("login_required")
        && introspect(replica, access_token).await["active"] == false
        && introspect(replica, refresh_token).await["active"] == false
}

/// `spec.disabled: true` in the folder both replicas watch: within 2 s, on both, the
/// user's access token is inactive at introspection, their refresh token (offline access,
/// which a logout keeps) is refused and their SSO session is gone; enabling the user again
/// brings none of it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_disabled_user_loses_every_session_and_token_within_two_seconds_on_both_replicas() {
    let redis = RedisServer::start(PASSWORD);
    let prefix = unique_prefix();
    let folder = editable_fixtures("disable");
    let a = Replica::start(&redis.url(PASSWORD), &prefix, &folder, &[]);
    let b = Replica::start(&redis.url(PASSWORD), &prefix, &folder, &[]);
    let browser = browser();
    let code = sign_in(&browser, &a, &b, "openid profile offline_access").await;
    let exchange = [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", REDIRECT)];
    let tokens: Value = token(&b, &exchange).await.json().await.unwrap();
    let access_token = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
    for replica in [&a, &b] {
        assert_eq!(introspect(replica, &access_token).await["active"], true);
        assert_eq!(introspect(replica, &refresh_token).await["active"], true);
    }

    let users = folder.join("users.yaml");
    let declared = std::fs::read_to_string(&users).unwrap();
    let disabled = declared.replace("  username: alice\n", "  username: alice\n  disabled: true\n");
    assert_ne!(disabled, declared);
    std::fs::write(&users, &disabled).unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        if lost_everything(&browser, &a, &access_token, &refresh_token).await
            && lost_everything(&browser, &b, &access_token, &refresh_token).await
        {
            break;
        }
        assert!(Instant::now() < deadline, "alice still holds something 2 s after being disabled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    std::fs::write(&users, &declared).unwrap();
    let store =
        RedisStore::connect(RedisConfig { key_prefix: prefix.clone(), ..RedisConfig::new(redis.url(PASSWORD)) })
            .await
            .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while store.user_by_username("alice").await.unwrap().is_none_or(|user| user.disabled) {
        assert!(Instant::now() < deadline, "alice is enabled again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut again = authorize_params("openid");
    again.push(("prompt", "consent"));
    assert!(!sign_in_with(&browser, &b, &a, &again).await.is_empty(), "alice signs in again");
    let refresh = [("grant_type", "refresh_token"), ("refresh_token", refresh_token.as_str())];
    for replica in [&a, &b] {
        let refused: Value = token(replica, &refresh).await.json().await.unwrap();
        assert_eq!(refused["error"], "invalid_grant", "the revoked refresh family stays revoked");
        assert_eq!(introspect(replica, &access_token).await["active"], false, "and so does the access token");
    }
}
