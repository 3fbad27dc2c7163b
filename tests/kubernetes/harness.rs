//! What every scenario needs: a fake API server with a real Redis, controller replicas
//! running in this process, resource builders, and ways to read Redis itself (the store's
//! per-replica cache would still answer after a flush) and count what was written.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use portcullis::clock::Clock;
use portcullis::crd::{OidcClient, OidcUser};
use portcullis::kubernetes::metrics::ControllerMetrics;
use portcullis::kubernetes::{self, ControllerConfig, LeaseConfig, WatchNamespaces};
use portcullis::secrets;
use portcullis::store::{Directory, RedisConfig, RedisStore};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::fake_apiserver::FakeApiServer;
use crate::redis_server::RedisServer;

pub const PASSWORD: &str = "kube-test";
pub const NAMESPACE: &str = "auth";
pub const ISSUER: &str = "https://id.portcullis.test";
pub const WAIT: Duration = Duration::from_secs(20);

pub struct Cluster {
    pub api: FakeApiServer,
    pub redis: RedisServer,
    pub store: Arc<RedisStore>,
    pub prefix: String,
}

impl Cluster {
    pub async fn start(prefix: &str) -> Self {
        // `RUST_LOG=portcullis=debug` shows what the controller does.
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .try_init();
        let redis = RedisServer::start(PASSWORD);
        let store = Arc::new(RedisStore::connect(redis_config(&redis, prefix)).await.unwrap());
        Self { api: FakeApiServer::start().await, redis, store, prefix: prefix.into() }
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.api.client(), NAMESPACE)
    }

    /// Whether Redis itself holds the client record (read past every cache).
    pub fn holds_client(&self, client_id: &str) -> bool {
        self.exists(&format!("{}:v1:{{clients}}:client:{client_id}", self.prefix))
    }

    /// Whether Redis itself holds the user record.
    pub fn holds_user(&self, username: &str) -> bool {
        self.exists(&format!("{}:v1:{{users}}:user:{username}", self.prefix))
    }

    /// Whether Redis itself holds the connector record.
    pub fn holds_connector(&self, name: &str) -> bool {
        let key = format!("{}:v1:connectors", self.prefix);
        self.redis.cli(&["HEXISTS", &key, name]) == vec!["1".to_owned()]
    }

    /// Whether Redis itself holds the published JWKS.
    pub fn holds_jwks(&self) -> bool {
        self.exists(&format!("{}:v1:keys:jwks", self.prefix))
    }

    fn exists(&self, key: &str) -> bool {
        self.redis.cli(&["EXISTS", key]) == vec!["1".to_owned()]
    }

    /// Changes to Redis's data so far and `PUBLISH`es (cache invalidations) so far: a
    /// command that leaves the data as it was (a `SET NX` on an existing key, a read)
    /// counts in neither.
    pub fn redis_writes(&self) -> RedisWrites {
        let changes = self
            .redis
            .cli(&["INFO", "persistence"])
            .iter()
            .find_map(|line| line.strip_prefix("rdb_changes_since_last_save:")?.trim().parse().ok())
            .unwrap();
        let publishes = self
            .redis
            .cli(&["INFO", "commandstats"])
            .iter()
            .find_map(|line| line.strip_prefix("cmdstat_publish:calls=")?.split(',').next()?.parse().ok())
            .unwrap_or(0);
        RedisWrites { changes, publishes }
    }

    /// Redis commands served so far, by command (`INFO commandstats`).
    pub fn redis_commands(&self) -> BTreeMap<String, u64> {
        self.redis.commands_served()
    }

    pub async fn create_user_with_password(&self, name: &str, username: &str, password: &str) -> String {
        let hash = secrets::hash(password).unwrap();
        let secret: Secret = serde_json::from_value(json!({
            "metadata": { "name": format!("{name}-password"), "namespace": NAMESPACE },
            "data": { "hash": STANDARD.encode(&hash) },
        }))
        .unwrap();
        self.api::<Secret>().create(&PostParams::default(), &secret).await.unwrap();
        self.api::<OidcUser>().create(&PostParams::default(), &oidc_user(name, username)).await.unwrap();
        hash
    }

    /// Creates a Secret with these `data` entries.
    pub async fn create_secret(&self, name: &str, data: &[(&str, &str)]) -> Secret {
        let data: BTreeMap<&str, String> = data.iter().map(|(k, v)| (*k, STANDARD.encode(v))).collect();
        let secret: Secret =
            serde_json::from_value(json!({ "metadata": { "name": name, "namespace": NAMESPACE }, "data": data }))
                .unwrap();
        self.api::<Secret>().create(&PostParams::default(), &secret).await.unwrap()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisWrites {
    pub changes: u64,
    pub publishes: u64,
}

pub fn redis_config(redis: &RedisServer, prefix: &str) -> RedisConfig {
    RedisConfig { url: redis.url(PASSWORD), key_prefix: prefix.into(), command_timeout: Duration::from_secs(2) }
}

/// A controller replica running in this process, stopped gracefully when dropped.
pub struct Replica {
    pub metrics: Arc<ControllerMetrics>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// The configuration of a test replica: a 2-second resync, quick keys and Lease.
pub fn config(identity: &str) -> ControllerConfig {
    ControllerConfig {
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
        concurrency: 8,
    }
}

impl Replica {
    pub async fn start(cluster: &Cluster, identity: &str) -> Self {
        Self::start_with(cluster, config(identity)).await
    }

    pub async fn start_with(cluster: &Cluster, config: ControllerConfig) -> Self {
        let store = Arc::new(RedisStore::connect(redis_config(&cluster.redis, &cluster.prefix)).await.unwrap());
        let metrics = Arc::new(ControllerMetrics::new().unwrap());
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(kubernetes::run::run(
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

    pub fn is_leader(&self) -> bool {
        self.metrics.leader.get() == 1
    }

    /// Reconciliations of `kind` so far, whatever their result.
    pub fn reconciles(&self, kind: &str) -> u64 {
        let text = self.metrics.render().unwrap();
        text.lines()
            .filter(|line| line.starts_with(&format!("portcullis_reconcile_total{{kind=\"{kind}\"")))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    pub async fn shutdown(mut self) {
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
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
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

pub fn secret_value(secret: &Value, key: &str) -> Option<String> {
    let encoded = secret.pointer(&format!("/data/{key}"))?.as_str()?;
    String::from_utf8(STANDARD.decode(encoded).ok()?).ok()
}

/// The `Ready` condition's status and reason.
pub fn ready(object: &Value) -> Option<(String, String)> {
    let conditions = object.pointer("/status/conditions")?.as_array()?;
    let ready = conditions.iter().find(|c| c["type"] == "Ready")?;
    Some((ready["status"].as_str()?.to_owned(), ready["reason"].as_str()?.to_owned()))
}

/// Waits until the resource shows `Ready` with this status and reason; returns it.
pub async fn wait_ready(cluster: &Cluster, resource: &str, name: &str, expected: (&str, &str)) -> Value {
    eventually(&format!("{resource}/{name} Ready={expected:?}"), WAIT, || async {
        let object = cluster.api.get(resource, NAMESPACE, name)?;
        let (status, reason) = ready(&object)?;
        ((status.as_str(), reason.as_str()) == expected).then_some(object)
    })
    .await
}

pub fn oidc_client(name: &str, spec: Value) -> OidcClient {
    serde_json::from_value(json!({
        "apiVersion": "portcullis.dev/v1alpha1", "kind": "OidcClient",
        "metadata": { "name": name, "namespace": NAMESPACE },
        "spec": spec,
    }))
    .unwrap()
}

pub fn oidc_user(name: &str, username: &str) -> OidcUser {
    serde_json::from_value(json!({
        "apiVersion": "portcullis.dev/v1alpha1", "kind": "OidcUser",
        "metadata": { "name": name, "namespace": NAMESPACE },
        "spec": { "username": username, "email": format!("{username}@example.com"),
                  "passwordSecretRef": { "name": format!("{name}-password"), "key": "hash" } },
    }))
    .unwrap()
}

pub fn machine_spec() -> Value {
    json!({ "grantTypes": ["client_credentials"], "scopes": ["api"] })
}

/// A machine client whose credentials are in the Secret `secret`.
pub fn machine_spec_with_secret(secret: &str) -> Value {
    let mut spec = machine_spec();
    spec["secretName"] = json!(secret);
    spec
}

pub async fn verifies(store: &RedisStore, client_id: &str, secret: &str) -> bool {
    match store.client(client_id).await.unwrap() {
        Some(record) => record.secret_hash.as_deref().is_some_and(|hash| secrets::verify_client_secret(secret, hash)),
        None => false,
    }
}

/// The controller stays within the RBAC the Helm chart grants
/// (`charts/portcullis/templates/rbac-controller.yaml`, asserted by
/// `tests/chart/test_chart_rbac.py`).
pub fn assert_only_granted_verbs(requests: &[String]) {
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
        ("identityconnectors", "get"),
        ("identityconnectors", "list"),
        ("identityconnectors", "watch"),
        ("identityconnectors", "patch"),
        ("oidcclients/status", "patch"),
        ("oidcusers/status", "patch"),
        ("signingkeys/status", "patch"),
        ("identityconnectors/status", "patch"),
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
        let by_test = matches!((resource.as_str(), verb), ("oidcclients" | "identityconnectors", "create" | "delete"));
        assert!(
            by_test || allowed.contains(&(resource.as_str(), verb)),
            "{verb} {resource} is not in the RBAC contract"
        );
    }
}
