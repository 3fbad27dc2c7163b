//! Declared state that converges, against real `portcullis serve --manifests` replicas and
//! a real `redis-server`: what Redis loses is applied again within seconds without a
//! restart, replicas keep one key set, tokens from before a loss fail closed, an evicting
//! Redis is refused, and the folder is applied live — exactly what it declares.

#[path = "support/fixtures.rs"]
mod fixtures;
#[path = "support/redis_server.rs"]
mod redis_server;
#[path = "support/serve.rs"]
mod serve;

use std::collections::BTreeSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fixtures::client_manifest;
use redis_server::RedisServer;
use serde_json::Value;
use serve::{REDIRECT, Replica, browser, sign_in, token};

const PASSWORD: &str = "convergence-secret";

/// A copy of the fixture manifests that a test may edit, removed when dropped.
struct Folder(PathBuf);

impl Folder {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("portcullis-convergence-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/manifests");
        for entry in std::fs::read_dir(fixtures).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
        Self(dir)
    }

    fn write(&self, file: &str, text: &str) {
        // Written aside and renamed, as editors and ConfigMap updates do: never half a file.
        let staged = self.0.join(format!(".{file}.tmp"));
        std::fs::write(&staged, text).unwrap();
        std::fs::rename(staged, self.0.join(file)).unwrap();
    }

    fn remove(&self, file: &str) {
        std::fs::remove_file(self.0.join(file)).unwrap();
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn replica(redis: &RedisServer, prefix: &str, folder: &Folder, extra: &[&str]) -> Replica {
    Replica::start(&redis.url(PASSWORD), prefix, &folder.0, extra)
}

fn prefix(test: &str) -> String {
    format!("convergence-{}-{test}", std::process::id())
}

/// Waits until `check` holds, for at most `limit`; returns how long it took.
async fn within<F: Future<Output = bool>>(limit: Duration, what: &str, check: impl Fn() -> F) -> Duration {
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    started.elapsed()
}

/// A client_credentials request.
async fn issue(replica: &Replica, client_id: &str, secret: &str) -> reqwest::Result<reqwest::Response> {
    reqwest::Client::new()
        .post(replica.url("/token"))
        .basic_auth(client_id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
}

/// The status of a client_credentials request, 0 when the replica does not answer.
async fn issue_status(replica: &Replica, client_id: &str, secret: &str) -> u16 {
    issue(replica, client_id, secret).await.map_or(0, |response| response.status().as_u16())
}

async fn m2m_token(replica: &Replica) -> String {
    let response = issue(replica, "m2m", "m2m-secret").await.unwrap();
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
}

/// Whether `replica` says the token is active (asked by its own client, `m2m`).
async fn active(replica: &Replica, token: &str) -> bool {
    let response = reqwest::Client::new()
        .post(replica.url("/introspect"))
        .basic_auth("m2m", Some("m2m-secret"))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.unwrap()["active"] == true
}

async fn jwks(replica: &Replica) -> Value {
    reqwest::get(replica.url("/jwks.json")).await.unwrap().json().await.unwrap()
}

fn kids(jwks: &Value) -> BTreeSet<String> {
    jwks["keys"].as_array().unwrap().iter().map(|key| key["kid"].as_str().unwrap().to_owned()).collect()
}

async fn ready(replica: &Replica) -> (u16, Value) {
    match reqwest::get(replica.url("/ready")).await {
        Ok(response) => (response.status().as_u16(), response.json().await.unwrap_or_default()),
        Err(_) => (0, Value::Null),
    }
}

/// The members of a directory index in Redis (`{clients}` or `{users}`).
fn index(redis: &RedisServer, prefix: &str, name: &str) -> BTreeSet<String> {
    redis.cli(&["SMEMBERS", &format!("{prefix}:v1:{{{name}}}")]).into_iter().filter(|m| !m.is_empty()).collect()
}

const DECLARED_CLIENTS: [&str; 6] = ["generated", "m2m", "m2m-post", "reports-api", "spa", "webapp"];

/// Everything the fixture folder declares is in Redis again: clients, the user, and the
/// claimed signing keys and generated secret.
fn declared_state_is_in_redis(redis: &RedisServer, prefix: &str) -> bool {
    let claimed = redis.cli(&["--scan", "--pattern", &format!("{prefix}:v1:claimed:*")]);
    index(redis, prefix, "clients") == DECLARED_CLIENTS.iter().map(|id| (*id).to_owned()).collect()
        && index(redis, prefix, "users") == BTreeSet::from(["alice".to_owned()])
        && claimed.iter().filter(|key| key.contains(":claimed:signing-key:")).count() == 3
        && claimed.iter().any(|key| key.ends_with(":claimed:client-secret:generated"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_restarted_empty_or_flushed_is_repaired_on_both_replicas_and_old_tokens_fail_closed() {
    let mut redis = RedisServer::start(PASSWORD);
    let prefix = prefix("repair");
    let folder = Folder::new("repair");
    let (a, b) = (replica(&redis, &prefix, &folder, &[]), replica(&redis, &prefix, &folder, &[]));
    assert!(declared_state_is_in_redis(&redis, &prefix));
    let generated = a.generated.iter().chain(&b.generated).find(|(id, _)| id == "generated").unwrap().1.clone();
    let keys_before = kids(&jwks(&a).await);
    assert_eq!(jwks(&a).await, jwks(&b).await);

    let before_loss = m2m_token(&a).await;
    let revoked = m2m_token(&b).await;
    let revocation = reqwest::Client::new()
        .post(b.url("/revoke"))
        .basic_auth("m2m", Some("m2m-secret"))
        .form(&[("token", revoked.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revocation.status(), 200);
    assert!(active(&b, &before_loss).await && !active(&a, &revoked).await);

    // A restart without persistence: the replicas are not ready while Redis is away, and
    // everything is back soon after it returns, with neither replica restarted.
    redis.stop();
    within(Duration::from_secs(5), "not ready while Redis is away", || async {
        ready(&a).await.0 == 503 && ready(&b).await.0 == 503
    })
    .await;
    redis.restart_empty();
    assert!(!declared_state_is_in_redis(&redis, &prefix), "Redis came back empty");
    let took = within(Duration::from_secs(10), "the declared state applied again", || async {
        declared_state_is_in_redis(&redis, &prefix)
            && ready(&a).await.0 == 200
            && ready(&b).await.0 == 200
            && [&a, &b].iter().all(|replica| replica.log().contains("the store lost its data"))
    })
    .await;
    eprintln!("repaired {took:?} after Redis came back empty");
    for replica in [&a, &b] {
        assert!(!active(replica, &before_loss).await, "a token from before the loss fails closed");
        assert!(!active(replica, &revoked).await, "a revocation lost with the data still holds");
        assert_eq!(issue_status(replica, "generated", &generated).await, 200, "the generated secret survives");
        assert!(replica.log().contains("the store lost its data"), "{}", replica.log());
    }
    assert_eq!(kids(&jwks(&a).await), keys_before, "the survivors claimed their keys again");
    assert_eq!(jwks(&a).await, jwks(&b).await);

    // FLUSHALL while both run.
    let before_flush = m2m_token(&b).await;
    assert!(active(&a, &before_flush).await);
    redis.cli(&["FLUSHALL"]);
    let took = within(Duration::from_secs(10), "the declared state applied again after FLUSHALL", || async {
        declared_state_is_in_redis(&redis, &prefix)
    })
    .await;
    eprintln!("repaired {took:?} after FLUSHALL");
    within(Duration::from_secs(10), "both replicas take up the new epoch", || async {
        let (fresh_a, fresh_b) = (m2m_token(&a).await, m2m_token(&b).await);
        active(&a, &fresh_b).await && active(&b, &fresh_a).await
    })
    .await;
    for replica in [&a, &b] {
        assert!(!active(replica, &before_flush).await, "a token from before the flush fails closed");
        assert_eq!(ready(replica).await.0, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_a_flush_and_a_replica_restart_both_replicas_serve_one_key_set() {
    let redis = RedisServer::start(PASSWORD);
    let prefix = prefix("keys");
    let folder = Folder::new("keys");
    // The survivor checks slowly, so the restarted replica claims its new keys first and
    // the survivor has to adopt them.
    let a = replica(&redis, &prefix, &folder, &["--store-check-interval", "5s"]);
    let b = replica(&redis, &prefix, &folder, &[]);
    let signed_before = kids(&jwks(&a).await);

    redis.cli(&["FLUSHALL"]);
    drop(b);
    let b = replica(&redis, &prefix, &folder, &[]);
    let took = within(Duration::from_secs(15), "identical JWKS on both replicas", || async {
        jwks(&a).await == jwks(&b).await
    })
    .await;
    eprintln!("one key set {took:?} after the restart");
    let published = kids(&jwks(&b).await);
    assert!(signed_before.is_subset(&published), "keys either replica signed with stay published: {published:?}");

    within(Duration::from_secs(10), "tokens valid across replicas", || async {
        let (from_a, from_b) = (m2m_token(&a).await, m2m_token(&b).await);
        active(&b, &from_a).await && active(&a, &from_b).await
    })
    .await;
    // Another scope each way: a remembered consent would skip the consent page.
    for (first, second, scope) in [(&a, &b, "openid profile"), (&b, &a, "openid email")] {
        let code = sign_in(&browser(), first, second, scope).await;
        let tokens: Value =
            token(first, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)])
                .await
                .json()
                .await
                .unwrap();
        let access_token = tokens["access_token"].as_str().unwrap();
        let userinfo = reqwest::Client::new().get(second.url("/userinfo")).bearer_auth(access_token).send().await;
        assert_eq!(userinfo.unwrap().status(), 200, "a user's token from one replica works at the other");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_evicting_redis_makes_replicas_not_ready_with_a_warning() {
    let redis = RedisServer::start(PASSWORD);
    let prefix = prefix("policy");
    let folder = Folder::new("policy");
    let a = replica(&redis, &prefix, &folder, &["--store-check-interval", "500ms"]);
    assert_eq!(ready(&a).await.0, 200);
    redis.cli(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]);
    within(Duration::from_secs(10), "not ready naming the store policy", || async {
        let (status, body) = ready(&a).await;
        status == 503 && body["missing"].as_array().is_some_and(|m| m.contains(&"store_policy".into()))
    })
    .await;
    assert!(a.log().contains("maxmemory-policy allkeys-lru"), "{}", a.log());
    redis.cli(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    within(Duration::from_secs(10), "ready again", || async { ready(&a).await.0 == 200 }).await;

    // A replica started against an evicting Redis says so at once.
    redis.cli(&["CONFIG", "SET", "maxmemory-policy", "volatile-lru"]);
    let b = replica(&redis, &prefix, &folder, &[]);
    let (status, body) = ready(&b).await;
    assert_eq!((status, body["missing"].clone()), (503, serde_json::json!(["store_policy"])));
    assert!(b.log().contains("maxmemory-policy volatile-lru"), "{}", b.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn folder_changes_apply_live_on_both_replicas_and_a_broken_edit_changes_nothing() {
    let redis = RedisServer::start(PASSWORD);
    let prefix = prefix("live");
    let folder = Folder::new("live");
    let (a, b) = (replica(&redis, &prefix, &folder, &[]), replica(&redis, &prefix, &folder, &[]));
    let on_both = |client_id: &'static str, secret: &'static str, status: u16| {
        let (a, b) = (&a, &b);
        move || async move {
            issue_status(a, client_id, secret).await == status && issue_status(b, client_id, secret).await == status
        }
    };

    folder.write("added.yaml", &client_manifest("batch", "batch", "batch-secret"));
    let took = within(Duration::from_secs(5), "an added client works", on_both("batch", "batch-secret", 200)).await;
    eprintln!("added in {took:?}");

    folder.write("added.yaml", &client_manifest("batch", "batch-v2", "batch-secret"));
    within(Duration::from_secs(5), "a renamed client works under its new id", on_both("batch-v2", "batch-secret", 200))
        .await;
    within(Duration::from_secs(5), "and not under its old one", on_both("batch", "batch-secret", 401)).await;

    // Half of this edit is good, half is broken: none of it applies.
    let broken = format!(
        "{}---\napiVersion: portcullis.dev/v1alpha1\nkind: OidcClient\nmetadata: {{name: bad, namespace: test}}\n\
         spec:\n  grantTypes: [implicit]\n",
        client_manifest("other", "other", "other-secret")
    );
    folder.write("added.yaml", &broken);
    within(Duration::from_secs(5), "the broken edit is reported with file, document and field", || async {
        [&a, &b].iter().all(|replica| {
            let log = replica.log();
            log.contains("added.yaml, document 3") && log.contains("spec.grantTypes")
        })
    })
    .await;
    assert_eq!(issue_status(&a, "other", "other-secret").await, 401, "never half-applied");
    assert_eq!(issue_status(&b, "batch-v2", "batch-secret").await, 200, "the last good state stays");

    folder.remove("added.yaml");
    within(Duration::from_secs(5), "a removed client is refused", on_both("batch-v2", "batch-secret", 401)).await;
    assert_eq!(issue_status(&a, "m2m", "m2m-secret").await, 200);
    assert!(!index(&redis, &prefix, "clients").contains("batch-v2"), "swept from Redis");
    assert!(a.log().contains("client removed batch-v2"), "{}", a.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_removed_while_everything_was_stopped_is_refused_after_the_restart() {
    let redis = RedisServer::start(PASSWORD);
    let prefix = prefix("stopped");
    let folder = Folder::new("stopped");
    folder.write("extra.yaml", &client_manifest("legacy", "legacy", "legacy-secret"));
    let a = replica(&redis, &prefix, &folder, &[]);
    assert_eq!(issue_status(&a, "legacy", "legacy-secret").await, 200);
    drop(a);
    folder.remove("extra.yaml");
    let a = replica(&redis, &prefix, &folder, &[]);
    assert_eq!(issue_status(&a, "legacy", "legacy-secret").await, 401);
    assert!(!index(&redis, &prefix, "clients").contains("legacy"));
    assert_eq!(issue_status(&a, "m2m", "m2m-secret").await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keys_supplied_by_the_folder_sign_on_every_replica_and_never_touch_redis() {
    use base64::Engine;
    let (pair, der) =
        portcullis::keys::KeyPair::generate(portcullis::vocabulary::SigningAlgorithm::RS256, None).unwrap();
    let redis = RedisServer::start(PASSWORD);
    let prefix = prefix("supplied");
    let folder = Folder::new("supplied");
    folder.write(
        "keys.yaml",
        &format!(
            "apiVersion: portcullis.dev/v1alpha1\nkind: SigningKey\nmetadata: {{name: rsa, namespace: test}}\n\
             spec: {{algorithm: RS256, privateKeySecretRef: {{name: signing-keys, key: rsa.der}}}}\n---\n\
             apiVersion: v1\nkind: Secret\nmetadata: {{name: signing-keys, namespace: test}}\ndata: {{rsa.der: {}}}\n",
            base64::engine::general_purpose::STANDARD.encode(&der)
        ),
    );
    let a = replica(&redis, &prefix, &folder, &[]);
    let b = replica(&redis, &prefix, &folder, &[]);
    let only_the_supplied_key = BTreeSet::from([pair.kid().to_owned()]);
    assert_eq!(kids(&jwks(&a).await), only_the_supplied_key);
    assert_eq!(jwks(&a).await, jwks(&b).await);
    let signing_keys_in_redis = || redis.cli(&["--scan", "--pattern", &format!("{prefix}:v1:claimed:signing-key:*")]);
    assert!(signing_keys_in_redis().is_empty(), "nothing of the key is kept in Redis");

    redis.cli(&["FLUSHALL"]);
    drop(b);
    let b = replica(&redis, &prefix, &folder, &[]);
    assert_eq!(kids(&jwks(&b).await), only_the_supplied_key);
    let token = m2m_token(&b).await;
    within(Duration::from_secs(10), "a token from the restarted replica works at the other", || async {
        active(&a, &token).await || active(&a, &m2m_token(&b).await).await
    })
    .await;
    assert!(signing_keys_in_redis().is_empty());
}
