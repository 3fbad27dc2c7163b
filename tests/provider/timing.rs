//! A failed login takes as long for an unknown user as for a user with our hash or with
//! another argon2 tool's costlier one, so its time does not tell who exists; and a hash
//! made outside the policy is made again under it at the user's next successful login.
//! These are behaviour tests with a generous margin, not benchmarks.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use argon2::password_hash::PasswordHasher;
use argon2::{Algorithm, Argon2, Params, Version};
use portcullis::provider::RegistrationPolicy;
use portcullis::secrets;

use crate::harness::{TestServer, fixtures, hidden, webapp_request};

/// argon2-cffi's `PasswordHasher` defaults (and so many tools'): 64 MiB, 3 passes, 4 lanes.
fn foreign_hash(password: &str) -> String {
    let params = Params::new(65536, 3, 4, None).unwrap();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params).hash_password(password.as_bytes()).unwrap().to_string()
}

fn user_manifest(username: &str, hash: &str) -> String {
    format!(
        "apiVersion: portcullis.dev/v1alpha1\nkind: OidcUser\nmetadata: {{name: {username}, namespace: test}}\n\
         spec:\n  username: {username}\n  passwordSecretRef: {{name: {username}-password, key: passwordHash}}\n---\n\
         apiVersion: v1\nkind: Secret\nmetadata: {{name: {username}-password, namespace: test}}\n\
         stringData:\n  passwordHash: \"{hash}\"\n---\n"
    )
}

/// A manifests folder with the fixture clients and keys, and these users.
fn manifests_with(name: &str, users: &[(&str, String)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("portcullis-timing-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["clients.yaml", "keys.yaml"] {
        std::fs::copy(fixtures().join(file), dir.join(file)).unwrap();
    }
    let users: String = users.iter().map(|(username, hash)| user_manifest(username, hash)).collect();
    std::fs::write(dir.join("users.yaml"), users).unwrap();
    dir
}

/// A browser calling from its own loopback address, so the address budget (20 failures per
/// 15 minutes) does not end the sampling.
fn browser_from(address: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, address)))
        .build()
        .unwrap()
}

/// Fetches the login page, then posts `username` and `password` to it: the answer, and how
/// long the post took.
async fn login(
    server: &TestServer,
    browser: &reqwest::Client,
    username: &str,
    password: &str,
) -> (reqwest::Response, Duration) {
    let page = browser.get(server.url("/authorize")).query(&webapp_request("openid", "s", "n")).send().await.unwrap();
    let page = page.text().await.unwrap();
    let form = [
        ("interaction", hidden(&page, "interaction")),
        ("csrf_token", hidden(&page, "csrf_token")),
        ("username", username.to_owned()),
        ("password", password.to_owned()),
    ];
    let started = Instant::now();
    let response = browser.post(server.url("/login")).form(&form).send().await.unwrap();
    (response, started.elapsed())
}

/// How long one failed login takes.
async fn failed_login(server: &TestServer, browser: &reqwest::Client, username: &str) -> Duration {
    let (response, elapsed) = login(server, browser, username, "not the password").await;
    assert_eq!(response.status(), 200, "{username} is answered, not throttled");
    elapsed
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn remove(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn failed_logins_take_the_same_time_for_unknown_users_our_hashes_and_foreign_ones() {
    const SAMPLES: usize = 15;
    /// Users per kind: each takes at most 5 failures (its budget) from the 15 samples.
    const USERS: usize = 3;
    let mut users = Vec::new();
    for i in 0..USERS {
        users.push((format!("ours-{i}"), secrets::hash("the password").unwrap()));
        users.push((format!("foreign-{i}"), foreign_hash("the password")));
    }
    users.push(("ours-warm-up".to_owned(), secrets::hash("the password").unwrap()));
    users.push(("foreign-warm-up".to_owned(), foreign_hash("the password")));
    let named: Vec<(&str, String)> = users.iter().map(|(name, hash)| (name.as_str(), hash.clone())).collect();
    let dir = manifests_with("medians", &named);
    let server = TestServer::start_on(dir.clone(), RegistrationPolicy::Open).await;
    let warm_up = browser_from(2);
    for username in ["nobody-warm-up", "ours-warm-up", "foreign-warm-up"] {
        failed_login(&server, &warm_up, username).await;
    }

    // Interleaved, each round starting with another kind, so a slower stretch of the
    // machine falls on every kind alike; three attempts per address.
    let mut samples: [Vec<Duration>; 3] = Default::default();
    for round in 0..SAMPLES {
        let browser = browser_from(10 + u8::try_from(round).unwrap());
        for kind in (0..3).map(|k| (k + round) % 3) {
            let username = match kind {
                0 => format!("nobody-{round}"),
                1 => format!("ours-{}", round % USERS),
                _ => format!("foreign-{}", round % USERS),
            };
            samples[kind].push(failed_login(&server, &browser, &username).await);
        }
    }
    remove(&dir);
    let medians = samples.map(median);
    let (fastest, slowest) = (medians.iter().min().unwrap(), medians.iter().max().unwrap());
    assert!(
        slowest.as_secs_f64() <= 1.5 * fastest.as_secs_f64(),
        "medians (unknown, ours, foreign) differ by more than 1.5x: {medians:?}"
    );
}

#[tokio::test]
async fn a_foreign_hash_is_made_again_under_the_policy_at_the_next_successful_login() {
    let dir = manifests_with("rehash", &[("foreign", foreign_hash("the password"))]);
    let server = TestServer::start_on(dir.clone(), RegistrationPolicy::Open).await;
    remove(&dir);
    let stored =
        || async { server.provider.store.user_by_username("foreign").await.unwrap().unwrap().password_hash.clone() };
    assert!(secrets::needs_rehash(&stored().await));
    let (signed_in, _) = login(&server, &browser_from(3), "foreign", "the password").await;
    assert!([200, 303].contains(&signed_in.status().as_u16()), "{}", signed_in.status());
    let upgraded = stored().await;
    assert!(!secrets::needs_rehash(&upgraded), "{upgraded}");
    assert!(secrets::verify("the password", &upgraded), "the same password, under the policy");
}
