//! The controller and `serve --kubernetes`, with the real `kube::Client`, watchers and
//! `Controller`, talking HTTP to the in-process fake API server (`support/fake_apiserver.rs`)
//! and writing to a real `redis-server`.

#[path = "support/fake_apiserver.rs"]
mod fake_apiserver;
#[path = "support/redis_server.rs"]
mod redis_server;

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use fake_apiserver::FakeApiServer;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use portcullis::clock::Clock;
use portcullis::crd::{OidcClient, OidcUser, SigningKey};
use portcullis::kubernetes::controller::{self, ControllerConfig, WatchNamespaces};
use portcullis::kubernetes::lease::LeaseConfig;
use portcullis::kubernetes::metrics::ControllerMetrics;
use portcullis::secrets;
use portcullis::store::{Directory, RedisConfig, RedisStore};
use redis_server::RedisServer;
use serde_json::{Value, json};
use tokio::sync::oneshot;

const PASSWORD: &str = "kube-test";
const NAMESPACE: &str = "auth";
const ISSUER: &str = "https://id.portcullis.test";

struct Cluster {
    api: FakeApiServer,
    redis: RedisServer,
    store: Arc<RedisStore>,
    prefix: String,
}

impl Cluster {
    async fn start(prefix: &str) -> Self {
        // `RUST_LOG=portcullis=debug` shows what the controller does.
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .try_init();
        let redis = RedisServer::start(PASSWORD);
        let store = Arc::new(RedisStore::connect(redis_config(&redis, prefix)).await.unwrap());
        Self { api: FakeApiServer::start().await, redis, store, prefix: prefix.into() }
    }

    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.api.client(), NAMESPACE)
    }
}

fn redis_config(redis: &RedisServer, prefix: &str) -> RedisConfig {
    RedisConfig { url: redis.url(PASSWORD), key_prefix: prefix.into(), command_timeout: Duration::from_secs(2) }
}

/// A controller replica running in this process, stopped gracefully when dropped.
struct Replica {
    metrics: Arc<ControllerMetrics>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Replica {
    async fn start(cluster: &Cluster, identity: &str) -> Self {
        let config = ControllerConfig {
            namespace: NAMESPACE.into(),
            watch_namespaces: WatchNamespaces::List(vec![NAMESPACE.into()]),
            issuer: ISSUER.into(),
            lease: LeaseConfig {
                name: "portcullis-controller".into(),
                identity: identity.into(),
                duration: Duration::from_secs(3),
            },
            resync_period: Duration::from_secs(2),
            key_publish_delay: Duration::from_secs(2),
            key_retire_after: Duration::from_secs(4),
        };
        let store = Arc::new(RedisStore::connect(redis_config(&cluster.redis, &cluster.prefix)).await.unwrap());
        let metrics = Arc::new(ControllerMetrics::new().unwrap());
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(controller::run(
            cluster.api.client(),
            store,
            config,
            Clock::system(),
            Arc::clone(&metrics),
            async move {
                let _ = stopped.await;
            },
        ));
        Self { metrics, stop: Some(stop), task: Some(task) }
    }

    fn is_leader(&self) -> bool {
        self.metrics.leader.get() == 1
    }

    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task).await.expect("graceful shutdown").unwrap();
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Polls `check` until it yields a value, or fails after `limit`.
async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn secret_value(secret: &Value, key: &str) -> Option<String> {
    let encoded = secret.pointer(&format!("/data/{key}"))?.as_str()?;
    String::from_utf8(STANDARD.decode(encoded).ok()?).ok()
}

fn ready(object: &Value) -> Option<(String, String)> {
    let conditions = object.pointer("/status/conditions")?.as_array()?;
    let ready = conditions.iter().find(|c| c["type"] == "Ready")?;
    Some((ready["status"].as_str()?.to_owned(), ready["reason"].as_str()?.to_owned()))
}

fn oidc_client(name: &str, spec: Value) -> OidcClient {
    serde_json::from_value(json!({
        "apiVersion": "portcullis.dev/v1alpha1", "kind": "OidcClient",
        "metadata": { "name": name, "namespace": NAMESPACE },
        "spec": spec,
    }))
    .unwrap()
}

fn machine_spec() -> Value {
    json!({ "grantTypes": ["client_credentials"], "scopes": ["api"] })
}

async fn verifies(store: &RedisStore, client_id: &str, secret: &str) -> bool {
    match store.client(client_id).await.unwrap() {
        Some(record) => record.secret_hash.as_deref().is_some_and(|hash| secrets::verify(secret, hash)),
        None => false,
    }
}

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_client_lifecycle_secret_generated_edited_deleted_and_finalized() {
    let cluster = Cluster::start("t-client").await;
    let replica = Replica::start(&cluster, "replica-a").await;
    let clients: Api<OidcClient> = cluster.api();
    let secrets_api: Api<Secret> = cluster.api();
    clients.create(&PostParams::default(), &oidc_client("app", machine_spec())).await.unwrap();

    // Apply → a Secret with generated credentials, owned by the OidcClient.
    let secret =
        eventually("the generated Secret", WAIT, || async { cluster.api.get("secrets", NAMESPACE, "app-credentials") })
            .await;
    let generated = secret_value(&secret, "clientSecret").unwrap();
    assert_eq!(URL_SAFE_NO_PAD.decode(&generated).unwrap().len(), 32, "a 256-bit secret");
    assert_eq!(secret_value(&secret, "clientId").as_deref(), Some("app"));
    assert_eq!(secret_value(&secret, "issuer").as_deref(), Some(ISSUER));
    assert_eq!(
        secret_value(&secret, "discoveryUrl").as_deref(),
        Some("https://id.portcullis.test/.well-known/openid-configuration")
    );
    let owner = &secret["metadata"]["ownerReferences"][0];
    assert_eq!(
        (owner["kind"].as_str(), owner["name"].as_str(), owner["controller"].as_bool()),
        (Some("OidcClient"), Some("app"), Some(true))
    );

    // → the Redis record (secret hashed) and Ready with the observed generation.
    eventually("the client record", WAIT, || async { verifies(&cluster.store, "app", &generated).await.then_some(()) })
        .await;
    let object = eventually("Ready=True", WAIT, || async {
        let object = cluster.api.get("oidcclients", NAMESPACE, "app")?;
        (ready(&object)? == ("True".into(), "Reconciled".into())).then_some(object)
    })
    .await;
    assert_eq!(object["status"]["observedGeneration"], 1);
    assert_eq!(object["status"]["clientId"], "app");
    assert_eq!(object["metadata"]["finalizers"], json!(["portcullis.dev/cleanup"]));

    // Secret edited → the new secret works, the old one no longer does.
    let patch = json!({ "data": { "clientSecret": STANDARD.encode("rotated-by-hand") } });
    secrets_api.patch("app-credentials", &PatchParams::default(), &Patch::Merge(patch)).await.unwrap();
    eventually("the edited secret", WAIT, || async {
        verifies(&cluster.store, "app", "rotated-by-hand").await.then_some(())
    })
    .await;
    assert!(!verifies(&cluster.store, "app", &generated).await);

    // Secret deleted → re-created with a new generated secret.
    secrets_api.delete("app-credentials", &DeleteParams::default()).await.unwrap();
    let recreated = eventually("the re-created Secret", WAIT, || async {
        let secret = cluster.api.get("secrets", NAMESPACE, "app-credentials")?;
        secret_value(&secret, "clientSecret").filter(|s| s != "rotated-by-hand")
    })
    .await;
    eventually("the re-created secret works", WAIT, || async {
        verifies(&cluster.store, "app", &recreated).await.then_some(())
    })
    .await;
    assert!(!verifies(&cluster.store, "app", "rotated-by-hand").await);

    // Delete → the finalizer removes the Redis record, then lets the resource (and its Secret) go.
    clients.delete("app", &DeleteParams::default()).await.unwrap();
    eventually("the resource is gone", WAIT, || async {
        cluster.api.get("oidcclients", NAMESPACE, "app").is_none().then_some(())
    })
    .await;
    assert!(cluster.store.client("app").await.unwrap().is_none(), "the finalizer removed the record first");
    assert!(cluster.api.get("secrets", NAMESPACE, "app-credentials").is_none(), "owned Secret garbage-collected");

    assert!(
        replica.metrics.render().unwrap().contains("portcullis_reconcile_total{kind=\"OidcClient\",result=\"ok\"}")
    );
    replica.shutdown().await;
    assert_only_granted_verbs(&cluster.api.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_provided_secret_is_used_and_a_second_claim_on_the_client_id_conflicts() {
    let cluster = Cluster::start("t-conflict").await;
    let replica = Replica::start(&cluster, "replica-a").await;
    let clients: Api<OidcClient> = cluster.api();
    let secrets_api: Api<Secret> = cluster.api();
    let provided: Secret = serde_json::from_value(json!({
        "metadata": { "name": "provided", "namespace": NAMESPACE },
        "stringData": {},
        "data": { "clientId": STANDARD.encode("shared-id"), "clientSecret": STANDARD.encode("provided-secret") },
    }))
    .unwrap();
    let created = secrets_api.create(&PostParams::default(), &provided).await.unwrap();
    let mut spec = machine_spec();
    spec["secretName"] = json!("provided");
    clients.create(&PostParams::default(), &oidc_client("first", spec)).await.unwrap();
    eventually("the provided secret is used", WAIT, || async {
        verifies(&cluster.store, "shared-id", "provided-secret").await.then_some(())
    })
    .await;
    let secret = cluster.api.get("secrets", NAMESPACE, "provided").unwrap();
    assert_eq!(
        secret["metadata"]["resourceVersion"].as_str(),
        created.metadata.resource_version.as_deref(),
        "the provided Secret is left alone"
    );

    let mut spec = machine_spec();
    spec["clientId"] = json!("shared-id");
    clients.create(&PostParams::default(), &oidc_client("second", spec)).await.unwrap();
    let (status, reason) = eventually("the conflict is reported", WAIT, || async {
        ready(&cluster.api.get("oidcclients", NAMESPACE, "second")?)
    })
    .await;
    assert_eq!((status.as_str(), reason.as_str()), ("False", "ClientIdConflict"));
    assert!(cluster.api.get("secrets", NAMESPACE, "second-credentials").is_none(), "the loser creates nothing");
    assert!(verifies(&cluster.store, "shared-id", "provided-secret").await, "nothing is overwritten");

    // Deleting the loser must not remove the winner's record.
    clients.delete("second", &DeleteParams::default()).await.unwrap();
    eventually("the loser is gone", WAIT, || async {
        cluster.api.get("oidcclients", NAMESPACE, "second").is_none().then_some(())
    })
    .await;
    assert!(verifies(&cluster.store, "shared-id", "provided-secret").await);
    replica.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flushed_redis_is_restored_by_the_periodic_resync_and_deleted_users_are_removed() {
    let cluster = Cluster::start("t-resync").await;
    let replica = Replica::start(&cluster, "replica-a").await;
    let clients: Api<OidcClient> = cluster.api();
    let users: Api<OidcUser> = cluster.api();
    let secrets_api: Api<Secret> = cluster.api();
    clients.create(&PostParams::default(), &oidc_client("app", machine_spec())).await.unwrap();
    let hash = secrets::hash("alice-password").unwrap();
    let password: Secret = serde_json::from_value(json!({
        "metadata": { "name": "alice-password", "namespace": NAMESPACE },
        "data": { "hash": STANDARD.encode(&hash) },
    }))
    .unwrap();
    secrets_api.create(&PostParams::default(), &password).await.unwrap();
    let user: OidcUser = serde_json::from_value(json!({
        "apiVersion": "portcullis.dev/v1alpha1", "kind": "OidcUser",
        "metadata": { "name": "alice", "namespace": NAMESPACE },
        "spec": { "username": "alice", "email": "alice@example.com", "passwordSecretRef": { "name": "alice-password", "key": "hash" } },
    }))
    .unwrap();
    users.create(&PostParams::default(), &user).await.unwrap();
    eventually("both records", WAIT, || async {
        let client = cluster.store.client("app").await.unwrap();
        let user = cluster.store.user_by_username("alice").await.unwrap();
        (client.is_some() && user.is_some_and(|u| u.password_hash == hash)).then_some(())
    })
    .await;

    // Let the reconciles triggered by the resources' own status writes finish, so that only
    // the periodic resync can bring the records back.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(cluster.redis.cli(&["FLUSHALL"]), vec!["OK".to_owned()]);
    // Read Redis itself: the store's directory cache would still answer.
    let exists = |key: &str| cluster.redis.cli(&["EXISTS", key]) == vec!["1".to_owned()];
    assert!(!exists("t-resync:v1:{clients}:client:app"));
    eventually("the resync restores both records", WAIT, || async {
        (exists("t-resync:v1:{clients}:client:app") && exists("t-resync:v1:{users}:user:alice")).then_some(())
    })
    .await;

    // The password Secret changes → the user record follows.
    let new_hash = secrets::hash("new-password").unwrap();
    let patch = json!({ "data": { "hash": STANDARD.encode(&new_hash) } });
    secrets_api.patch("alice-password", &PatchParams::default(), &Patch::Merge(patch)).await.unwrap();
    eventually("the new password hash", WAIT, || async {
        cluster
            .store
            .user_by_username("alice")
            .await
            .unwrap()
            .is_some_and(|u| u.password_hash == new_hash)
            .then_some(())
    })
    .await;

    // A second resource for the same username conflicts; deleting it leaves alice alone.
    let mut twin = user.clone();
    twin.metadata.name = Some("alice-twin".into());
    users.create(&PostParams::default(), &twin).await.unwrap();
    let (status, reason) = eventually("the username conflict", WAIT, || async {
        ready(&cluster.api.get("oidcusers", NAMESPACE, "alice-twin")?)
    })
    .await;
    assert_eq!((status.as_str(), reason.as_str()), ("False", "UsernameConflict"));
    users.delete("alice-twin", &DeleteParams::default()).await.unwrap();
    eventually("the twin is gone", WAIT, || async {
        cluster.api.get("oidcusers", NAMESPACE, "alice-twin").is_none().then_some(())
    })
    .await;
    assert!(exists("t-resync:v1:{users}:user:alice"), "the twin's deletion left alice's record");

    users.delete("alice", &DeleteParams::default()).await.unwrap();
    eventually("the user is removed", WAIT, || async {
        (cluster.api.get("oidcusers", NAMESPACE, "alice").is_none()
            && cluster.store.user_by_username("alice").await.unwrap().is_none())
        .then_some(())
    })
    .await;
    replica.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_controllers_elect_one_leader_and_the_standby_takes_over() {
    let cluster = Cluster::start("t-lease").await;
    let a = Replica::start(&cluster, "replica-a").await;
    let b = Replica::start(&cluster, "replica-b").await;
    eventually("a leader", WAIT, || async { (a.is_leader() || b.is_leader()).then_some(()) }).await;
    // Several renewals later, still exactly one.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(a.is_leader() != b.is_leader(), "exactly one leader");
    let (leader, standby, standby_name) = if a.is_leader() { (a, b, "replica-b") } else { (b, a, "replica-a") };
    let lease = cluster.api.get("leases", NAMESPACE, "portcullis-controller").unwrap();
    assert_ne!(lease["spec"]["holderIdentity"], standby_name);

    leader.shutdown().await;
    eventually("the standby leads", WAIT, || async { standby.is_leader().then_some(()) }).await;
    let lease = cluster.api.get("leases", NAMESPACE, "portcullis-controller").unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], standby_name);
    standby.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_keys_rotate_next_before_active_and_the_provider_follows_without_restart() {
    let cluster = Cluster::start("t-keys").await;
    let replica = Replica::start(&cluster, "replica-a").await;
    let keys: Api<SigningKey> = cluster.api();
    let clients: Api<OidcClient> = cluster.api();
    let key: SigningKey = serde_json::from_value(json!({
        "apiVersion": "portcullis.dev/v1alpha1", "kind": "SigningKey",
        "metadata": { "name": "main", "namespace": NAMESPACE },
        "spec": { "algorithm": "ES256", "rotationPeriod": "1h" },
    }))
    .unwrap();
    keys.create(&PostParams::default(), &key).await.unwrap();
    let provided: Secret = serde_json::from_value(json!({
        "metadata": { "name": "m2m", "namespace": NAMESPACE },
        "data": { "clientSecret": STANDARD.encode("m2m-secret") },
    }))
    .unwrap();
    Api::<Secret>::namespaced(cluster.api.client(), NAMESPACE).create(&PostParams::default(), &provided).await.unwrap();
    let mut spec = machine_spec();
    spec["secretName"] = json!("m2m");
    clients.create(&PostParams::default(), &oidc_client("m2m", spec)).await.unwrap();

    // The provider, built as `serve --kubernetes` builds it, waits for the first active key.
    let options = portcullis::server::ServerOptions {
        issuer: ISSUER.into(),
        manifests: None,
        access_token_ttl: Duration::from_secs(300),
        refresh_token_ttl: Duration::from_secs(3600),
        session_ttl: Duration::from_secs(3600),
        registration: portcullis::provider::RegistrationPolicy::Disabled,
        registration_scopes: portcullis::vocabulary::Scope::parse("openid").unwrap(),
        intervals: Default::default(),
    };
    let built = tokio::time::timeout(
        WAIT,
        portcullis::server::build_kubernetes(
            &options,
            redis_config(&cluster.redis, &cluster.prefix),
            cluster.api.client(),
            NAMESPACE,
        ),
    )
    .await
    .expect("the provider starts once a key is active")
    .unwrap();
    let key_watch = built.key_watch.clone().unwrap();
    assert!(key_watch.synced.load(std::sync::atomic::Ordering::SeqCst));
    let listener = portcullis::server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(portcullis::server::serve(listener, built.provider, std::future::pending()));
    let http = reqwest::Client::new();

    let status = eventually("an active and a next key", WAIT, || async {
        let object = cluster.api.get("signingkeys", NAMESPACE, "main")?;
        let keys = object.pointer("/status/keys")?.as_array()?.clone();
        (keys.len() == 2).then_some(object["status"].clone())
    })
    .await;
    let active = status["activeKid"].as_str().unwrap().to_owned();
    let next = status["keys"].as_array().unwrap().iter().find(|k| k["phase"] == "next").unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        ready(&cluster.api.get("signingkeys", NAMESPACE, "main").unwrap()),
        Some(("True".into(), "Reconciled".into()))
    );
    let jwks_kids = || async {
        let jwks: Value = http.get(format!("{base}/jwks.json")).send().await.unwrap().json().await.unwrap();
        jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect::<BTreeSet<_>>()
    };
    eventually("the JWKS shows the next key before it signs", WAIT, || async {
        jwks_kids().await.contains(&next).then_some(())
    })
    .await;
    let token_kid = || async {
        let response: Value = http
            .post(format!("{base}/token"))
            .basic_auth("m2m", Some("m2m-secret"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = response["access_token"].as_str().unwrap_or_else(|| panic!("{response}")).to_owned();
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
        (token, header["kid"].as_str().unwrap().to_owned())
    };
    let (old_token, kid) = eventually("the m2m client is registered", WAIT, || async {
        cluster.store.client("m2m").await.unwrap()?;
        Some(token_kid().await)
    })
    .await;
    assert_eq!(kid, active, "tokens are signed by the active key");

    // Rotate on demand; the next key has been published for the publish delay by then.
    let patch = json!({ "metadata": { "annotations": { "portcullis.dev/rotate": "now" } } });
    keys.patch("main", &PatchParams::default(), &Patch::Merge(patch)).await.unwrap();
    eventually("the next key becomes active", WAIT, || async {
        let object = cluster.api.get("signingkeys", NAMESPACE, "main")?;
        (object["status"]["activeKid"] == next.as_str()).then_some(())
    })
    .await;
    eventually("the provider signs with the new key, without a restart", WAIT, || async {
        (token_kid().await.1 == next).then_some(())
    })
    .await;
    let kids = jwks_kids().await;
    assert!(kids.contains(&active), "the retired key stays published while its tokens live");
    let in_redis = |key: &str| cluster.redis.cli(&["GET", &format!("t-keys:v1:keys:{key}")]).concat();
    eventually("Redis holds the JWKS and the active kid", WAIT, || async {
        (serde_json::from_str::<Value>(&in_redis("active")).ok() == Some(json!({ "ES256": next }))
            && in_redis("jwks").contains(&next)
            && in_redis("jwks").contains(&active))
        .then_some(())
    })
    .await;
    let introspection: Value = http
        .post(format!("{base}/introspect"))
        .basic_auth("m2m", Some("m2m-secret"))
        .form(&[("token", old_token.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(introspection["active"], true, "a token signed before the rotation still verifies");

    // After the retirement period the old key is unpublished and its Secret deleted.
    eventually("the retired key goes", WAIT, || async { (!jwks_kids().await.contains(&active)).then_some(()) }).await;
    let remaining = cluster
        .api
        .list("secrets", NAMESPACE)
        .into_iter()
        .filter(|s| s["metadata"]["labels"]["portcullis.dev/signing-key"] == "main")
        .count();
    assert_eq!(remaining, 2, "one active and one next key remain");
    replica.shutdown().await;
}

/// The controller stays within the RBAC the Helm chart grants (`charts/portcullis/templates/rbac-controller.yaml`,
/// asserted by `tests/chart/test_chart_rbac.py`).
fn assert_only_granted_verbs(requests: &[String]) {
    let allowed: BTreeSet<(&str, &str)> = [
        ("oidcclients", "get"),
        ("oidcclients", "list"),
        ("oidcclients", "watch"),
        ("oidcclients", "patch"),
        ("oidcusers", "get"),
        ("oidcusers", "list"),
        ("oidcusers", "watch"),
        ("oidcusers", "patch"),
        ("signingkeys", "get"),
        ("signingkeys", "list"),
        ("signingkeys", "watch"),
        ("signingkeys", "patch"),
        ("oidcclients/status", "patch"),
        ("oidcusers/status", "patch"),
        ("signingkeys/status", "patch"),
        ("secrets", "get"),
        ("secrets", "list"),
        ("secrets", "watch"),
        ("secrets", "create"),
        ("secrets", "patch"),
        ("secrets", "delete"),
        ("events", "create"),
        ("events", "patch"),
        ("leases", "get"),
        ("leases", "create"),
        ("leases", "update"),
    ]
    .into_iter()
    .collect();
    for request in requests {
        let (method, path) = request.split_once(' ').unwrap();
        let watch = path.ends_with("?watch");
        let segments: Vec<&str> = path.trim_end_matches("?watch").trim_matches('/').split('/').collect();
        let rest = if segments[0] == "api" { &segments[2..] } else { &segments[3..] };
        let rest = if rest.first() == Some(&"namespaces") { &rest[2..] } else { rest };
        let (resource, named) = match rest {
            [resource] => ((*resource).to_owned(), false),
            [resource, _] => ((*resource).to_owned(), true),
            [resource, _, sub] => (format!("{resource}/{sub}"), true),
            _ => panic!("unexpected path {path}"),
        };
        let verb = match (method, named, watch) {
            ("GET", false, true) => "watch",
            ("GET", false, false) => "list",
            ("GET", true, _) => "get",
            ("POST", _, _) => "create",
            ("PUT", _, _) => "update",
            ("PATCH", _, _) => "patch",
            ("DELETE", _, _) => "delete",
            _ => panic!("unexpected request {request}"),
        };
        // The test itself creates and deletes resources; only the controller's verbs count.
        let by_test = matches!((resource.as_str(), verb), ("oidcclients", "create" | "delete"));
        assert!(
            by_test || allowed.contains(&(resource.as_str(), verb)),
            "{verb} {resource} is not in the RBAC contract"
        );
    }
}

/// A `portcullis` process, killed when dropped.
struct Process(std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binaries_controller_and_serve_kubernetes_work_against_the_api_server() {
    let cluster = Cluster::start("t-binary").await;
    let dir = std::env::temp_dir().join(format!("portcullis-kubeconfig-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("config");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: fake, cluster: {{server: '{}'}}}}]\n\
             contexts: [{{name: fake, context: {{cluster: fake, user: fake, namespace: {NAMESPACE}}}}}]\n\
             current-context: fake\nusers: [{{name: fake, user: {{}}}}]\n",
            cluster.api.url
        ),
    )
    .unwrap();
    let metrics_port = free_port();
    let redis_url = cluster.redis.url(PASSWORD);
    let binary = env!("CARGO_BIN_EXE_portcullis");
    let controller = Process(
        std::process::Command::new(binary)
            .args(["controller", "--namespace", NAMESPACE, "--issuer", ISSUER, "--redis-url", &redis_url])
            .args(["--redis-key-prefix", "t-binary", "--metrics-listen", &format!("127.0.0.1:{metrics_port}")])
            .args(["--lease-duration", "3s", "--resync-period", "2s", "--key-publish-delay", "1s"])
            .env("KUBECONFIG", &kubeconfig)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env("POD_NAME", "binary-controller")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let http = reqwest::Client::new();
    let metrics = format!("http://127.0.0.1:{metrics_port}");
    eventually("/ready", WAIT, || async {
        let response = http.get(format!("{metrics}/ready")).send().await.ok()?;
        (response.status() == 200).then_some(())
    })
    .await;
    assert_eq!(http.get(format!("{metrics}/health")).send().await.unwrap().status(), 200);

    let key: SigningKey = serde_json::from_value(json!({
        "apiVersion": "portcullis.dev/v1alpha1", "kind": "SigningKey",
        "metadata": { "name": "main", "namespace": NAMESPACE },
        "spec": { "algorithm": "EdDSA" },
    }))
    .unwrap();
    cluster.api::<SigningKey>().create(&PostParams::default(), &key).await.unwrap();
    cluster.api::<OidcClient>().create(&PostParams::default(), &oidc_client("bin", machine_spec())).await.unwrap();
    let secret = eventually("the generated Secret", WAIT, || async {
        secret_value(&cluster.api.get("secrets", NAMESPACE, "bin-credentials")?, "clientSecret")
    })
    .await;
    let text = eventually("the reconcile metrics", WAIT, || async {
        let text = http.get(format!("{metrics}/metrics")).send().await.ok()?.text().await.ok()?;
        text.contains("portcullis_reconcile_total{kind=\"OidcClient\",result=\"ok\"}").then_some(text)
    })
    .await;
    for name in ["portcullis_leader 1", "portcullis_reconcile_duration_seconds_bucket", "process_cpu_seconds_total"] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }

    let port = free_port();
    let provider = Process(
        std::process::Command::new(binary)
            .args(["serve", "--kubernetes", "--namespace", NAMESPACE, "--issuer", ISSUER, "--redis-url", &redis_url])
            .args(["--redis-key-prefix", "t-binary", "--listen", &format!("127.0.0.1:{port}")])
            .env("KUBECONFIG", &kubeconfig)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let response: Value = eventually("a token from serve --kubernetes", WAIT, || async {
        let response = http
            .post(format!("http://127.0.0.1:{port}/token"))
            .basic_auth("bin", Some(secret.as_str()))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .ok()?;
        (response.status() == 200).then_some(response.json().await.ok()?)
    })
    .await;
    assert_eq!(response["token_type"], "Bearer");
    drop(provider);

    // SIGTERM: the controller stops gracefully and releases the Lease.
    let status = std::process::Command::new("kill").args(["-TERM", &controller.0.id().to_string()]).status().unwrap();
    assert!(status.success());
    let mut controller = controller;
    let exit = eventually("the controller exits", WAIT, || {
        let exit = controller.0.try_wait().unwrap();
        async move { exit }
    })
    .await;
    assert!(exit.success(), "{exit:?}");
    let lease = cluster.api.get("leases", NAMESPACE, "portcullis-controller").unwrap();
    assert!(lease["spec"]["holderIdentity"].is_null(), "released: {lease}");
}
