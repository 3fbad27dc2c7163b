//! `portcullis controller`: reconciles `OidcClient`, `OidcUser` and `SigningKey` resources
//! into Secrets and Redis with `kube-runtime` controllers, while this replica holds the
//! leader Lease.
//!
//! The decisions are the pure functions of [`crate::controller::reconcile`] and
//! [`crate::controller::rotation`]; this module only reads and writes.

use crate::audit::{self, AuditEvent, AuditFields};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::ByteString;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{self, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use tokio::sync::watch;

use super::key_secrets::{self, ACTIVATED_AT_ANNOTATION, PHASE_ANNOTATION, RETIRED_AT_ANNOTATION, SIGNING_KEY_LABEL};
use super::lease::{self, LeaseConfig};
use super::metrics::ControllerMetrics;
use crate::clock::Clock;
use crate::controller::reconcile::{self, CLIENT_ID_KEY, CLIENT_SECRET_KEY};
use crate::controller::rotation::{self, KeyAction, RotationPolicy};
use crate::crd::{OidcClient, OidcUser, PublishedKey, SigningKey};
use crate::keys::{KeyError, KeyPair, KeyPhase};
use crate::secrets::{self, SecretError};
use crate::store::{Store, StoreError};

/// Finalizer that makes deletion wait until Redis no longer holds the record.
pub const FINALIZER: &str = "portcullis.dev/cleanup";
/// Annotation on a `SigningKey` asking for a rotation now; any new value triggers one.
pub const ROTATE_ANNOTATION: &str = "portcullis.dev/rotate";
/// On an activated key Secret: the `portcullis.dev/rotate` value current at activation.
pub const ROTATION_REQUEST_ANNOTATION: &str = "portcullis.dev/rotation-request";
/// Condition reason when another `OidcClient` already has the client id.
pub const CLIENT_ID_CONFLICT: &str = "ClientIdConflict";
/// Condition reason when another `OidcUser` already has the username.
pub const USERNAME_CONFLICT: &str = "UsernameConflict";
/// Longest wait between retries of a failing resource.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How soon a resource that lost a client-id conflict looks again (the winner may go).
const CONFLICT_RECHECK: Duration = Duration::from_secs(30);

/// Which namespaces hold the `OidcClient`s to reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchNamespaces {
    /// Every namespace (`*`).
    All,
    /// These namespaces.
    List(Vec<String>),
}

impl WatchNamespaces {
    /// Parses `--watch-namespaces`: `*`, or a comma-separated list; empty means `own`.
    pub fn parse(value: Option<&str>, own: &str) -> Self {
        match value.map(str::trim) {
            Some("*") => Self::All,
            Some(list) if !list.is_empty() => {
                let mut names: Vec<String> =
                    list.split(',').map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned).collect();
                names.sort();
                names.dedup();
                Self::List(names)
            }
            _ => Self::List(vec![own.to_owned()]),
        }
    }
}

/// Everything the controller is configured with.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// Holds the `SigningKey`s, the `OidcUser`s and the Lease.
    pub namespace: String,
    pub watch_namespaces: WatchNamespaces,
    /// Written into generated client Secrets (`issuer`, `discoveryUrl`).
    pub issuer: String,
    pub lease: LeaseConfig,
    /// How often every resource is reconciled even without a change (heals a flushed Redis).
    pub resync_period: Duration,
    /// How long a new key is published before it signs (at least the JWKS cache lifetime).
    pub key_publish_delay: Duration,
    /// How long a retired key stays published (at least the longest token lifetime).
    pub key_retire_after: Duration,
}

/// Why a reconciliation failed; it is retried with exponential back-off.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("finalizer: {0}")]
    Finalizer(Box<finalizer::Error<ControllerError>>),
    #[error("the Secret {0} was created by someone else meanwhile; retrying")]
    SecretRace(String),
}

impl From<finalizer::Error<ControllerError>> for ControllerError {
    fn from(error: finalizer::Error<ControllerError>) -> Self {
        Self::Finalizer(Box::new(error))
    }
}

/// Shared by every reconciliation.
pub struct Context {
    client: Client,
    store: Arc<dyn Store>,
    config: ControllerConfig,
    clock: Clock,
    recorder: Recorder,
    metrics: Arc<ControllerMetrics>,
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    async fn publish(&self, reference: k8s_openapi::api::core::v1::ObjectReference, event: Event) {
        if let Err(error) = self.recorder.publish(&event, &reference).await {
            tracing::warn!(%error, reason = %event.reason, "publishing an Event");
        }
    }

    /// Counts a result for the metrics and the back-off.
    fn finish(&self, kind: &str, key: String, started: Instant, ok: bool) {
        self.metrics.observe(kind, ok, started.elapsed());
        let mut failures = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if ok {
            failures.remove(&key);
        } else {
            *failures.entry(key).or_insert(0) += 1;
        }
    }

    /// Exponential back-off: 1s, 2s, 4s, ... up to [`MAX_BACKOFF`].
    fn backoff(&self, key: &str) -> Duration {
        let failures = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let attempts = failures.get(key).copied().unwrap_or(1).clamp(1, 16);
        Duration::from_secs(1u64 << (attempts - 1)).min(MAX_BACKOFF)
    }
}

fn object_key<K: Resource<DynamicType = ()>>(object: &K) -> String {
    format!("{}/{}/{}", K::kind(&()), object.namespace().unwrap_or_default(), object.name_any())
}

fn rfc3339(seconds: u64) -> String {
    i64::try_from(seconds)
        .ok()
        .and_then(|s| Timestamp::from_second(s).ok())
        .map_or_else(|| seconds.to_string(), |t| t.to_string())
}

/// The `Ready` condition, keeping the transition time when the status did not change.
pub fn ready_condition(
    previous: &[Condition],
    ready: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    now: u64,
) -> Condition {
    let status = if ready { "True" } else { "False" };
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| {
            Time(i64::try_from(now).ok().and_then(|s| Timestamp::from_second(s).ok()).unwrap_or(Timestamp::UNIX_EPOCH))
        });
    Condition {
        type_: "Ready".into(),
        status: status.into(),
        reason: reason.into(),
        message,
        observed_generation: generation,
        last_transition_time,
    }
}

fn was_ready(conditions: &[Condition]) -> bool {
    conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True")
}

async fn patch_status<K>(api: &Api<K>, name: &str, status: serde_json::Value) -> Result<(), kube::Error>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(json!({ "status": status }))).await.map(|_| ())
}

/// Runs the controller until `shutdown` completes: competes for the Lease and, while it
/// holds it, runs the three resource controllers.
pub async fn run(
    client: Client,
    store: Arc<dyn Store>,
    config: ControllerConfig,
    clock: Clock,
    metrics: Arc<ControllerMetrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let (leader_tx, mut leader_rx) = watch::channel(false);
    let leases: Api<Lease> = Api::namespaced(client.clone(), &config.namespace);
    let reachable_metrics = Arc::clone(&metrics);
    let election = tokio::spawn(lease::run(
        leases,
        config.lease.clone(),
        leader_tx,
        move || reachable_metrics.api_reachable.store(true, std::sync::atomic::Ordering::SeqCst),
        stop_rx.clone(),
    ));
    let reporter =
        Reporter { controller: "portcullis-controller".into(), instance: Some(config.lease.identity.clone()) };
    let context = Arc::new(Context {
        recorder: Recorder::new(client.clone(), reporter),
        client,
        store,
        config,
        clock,
        metrics: Arc::clone(&metrics),
        failures: Mutex::default(),
    });
    loop {
        let mut stop = stop_rx.clone();
        tokio::select! {
            _ = leader_rx.wait_for(|leader| *leader) => {}
            _ = stop.wait_for(|stopped| *stopped) => break,
        }
        metrics.leader.set(1);
        tracing::info!("leading: reconciling");
        let mut lost = leader_rx.clone();
        let mut stopped = stop_rx.clone();
        let until = async move {
            tokio::select! {
                _ = lost.wait_for(|leader| !*leader) => {}
                _ = stopped.wait_for(|stopped| *stopped) => {}
            }
        };
        run_controllers(Arc::clone(&context), until).await;
        metrics.leader.set(0);
        if *stop_rx.borrow() {
            break;
        }
        tracing::warn!("lost the leader Lease: stopped reconciling");
    }
    if let Err(error) = election.await {
        tracing::warn!(%error, "leader election task failed");
    }
}

/// Runs the resource controllers until `until` completes, then lets in-flight
/// reconciliations finish.
async fn run_controllers(context: Arc<Context>, until: impl std::future::Future<Output = ()> + Send + 'static) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopper = tokio::spawn(async move {
        until.await;
        let _ = stop_tx.send(true);
    });
    let signal = move || {
        let mut stop = stop_rx.clone();
        async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        }
    };
    let client = context.client.clone();
    let own = context.config.namespace.clone();
    let mut tasks = Vec::new();
    let client_apis: Vec<(Api<OidcClient>, Api<Secret>)> = match &context.config.watch_namespaces {
        WatchNamespaces::All => vec![(Api::all(client.clone()), Api::all(client.clone()))],
        WatchNamespaces::List(names) => {
            names.iter().map(|ns| (Api::namespaced(client.clone(), ns), Api::namespaced(client.clone(), ns))).collect()
        }
    };
    for (clients, secrets) in client_apis {
        let controller = Controller::new(clients, watcher::Config::default());
        let store = controller.store();
        let controller = controller
            .watches(secrets, watcher::Config::default(), move |secret: Secret| {
                let namespace = secret.namespace().unwrap_or_default();
                let name = secret.name_any();
                store
                    .state()
                    .into_iter()
                    .filter(|c| {
                        c.namespace().as_deref() == Some(namespace.as_str())
                            && reconcile::credentials_secret_name(c) == name
                    })
                    .map(|c| ObjectRef::from_obj(&*c))
                    .collect::<Vec<_>>()
            })
            .graceful_shutdown_on(signal());
        let context = Arc::clone(&context);
        tasks.push(tokio::spawn(drain(controller.run(reconcile_client, error_policy, context))));
    }

    let users = Controller::new(Api::<OidcUser>::namespaced(client.clone(), &own), watcher::Config::default());
    let store = users.store();
    let users = users
        .watches(Api::<Secret>::namespaced(client.clone(), &own), watcher::Config::default(), move |secret: Secret| {
            let name = secret.name_any();
            store
                .state()
                .into_iter()
                .filter(|u| u.spec.password_secret_ref.name == name)
                .map(|u| ObjectRef::from_obj(&*u))
                .collect::<Vec<_>>()
        })
        .graceful_shutdown_on(signal());
    tasks.push(tokio::spawn(drain(users.run(reconcile_user, error_policy, Arc::clone(&context)))));

    let keys = Controller::new(Api::<SigningKey>::namespaced(client.clone(), &own), watcher::Config::default())
        .owns(Api::<Secret>::namespaced(client, &own), watcher::Config::default().labels(SIGNING_KEY_LABEL))
        .graceful_shutdown_on(signal());
    tasks.push(tokio::spawn(drain(keys.run(reconcile_signing_key, error_policy, context))));

    for task in tasks {
        if let Err(error) = task.await {
            tracing::warn!(%error, "a controller task failed");
        }
    }
    stopper.abort();
}

async fn drain<T, E: std::fmt::Display>(stream: impl futures::Stream<Item = Result<T, E>>) {
    stream
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "reconcile");
            }
        })
        .await;
}

/// Retries a failed resource with exponential back-off (counted in [`Context::finish`]).
fn error_policy<K: Resource<DynamicType = ()>>(
    object: Arc<K>,
    error: &ControllerError,
    context: Arc<Context>,
) -> Action {
    let key = object_key(&*object);
    let delay = context.backoff(&key);
    tracing::warn!(resource = %key, %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

async fn reconcile_client(client: Arc<OidcClient>, context: Arc<Context>) -> Result<Action, ControllerError> {
    let started = Instant::now();
    let key = object_key(&*client);
    let namespace = client.namespace().unwrap_or_else(|| context.config.namespace.clone());
    let api: Api<OidcClient> = Api::namespaced(context.client.clone(), &namespace);
    let result = finalizer(&api, FINALIZER, client, |event| async {
        match event {
            finalizer::Event::Apply(client) => apply_client(&client, &context).await,
            finalizer::Event::Cleanup(client) => cleanup_client(&client, &context).await,
        }
    })
    .await
    .map_err(ControllerError::from);
    context.finish("OidcClient", key, started, result.is_ok());
    result
}

/// The client id another resource holds or will ask for.
fn declared_client_id(client: &OidcClient) -> String {
    client
        .status
        .as_ref()
        .and_then(|s| s.client_id.clone())
        .or_else(|| client.spec.client_id.clone())
        .unwrap_or_else(|| client.name_any())
}

/// The resource that owns `client_id` instead of `client`: the oldest other live resource
/// declaring it (ties broken by namespace/name), if it is older than `client`.
pub fn client_id_owner<'a>(client: &OidcClient, client_id: &str, all: &'a [OidcClient]) -> Option<&'a OidcClient> {
    let order = |c: &OidcClient| (c.creation_timestamp().map(|t| t.0), c.namespace(), c.name_any());
    all.iter()
        .filter(|other| other.uid() != client.uid() && other.metadata.deletion_timestamp.is_none())
        .filter(|other| declared_client_id(other) == client_id)
        .filter(|other| order(other) < order(client))
        .min_by_key(|other| order(other))
}

/// The resource that owns `user`'s username instead of it: the oldest other live user
/// with that username, if older (ties broken by name).
pub fn username_owner<'a>(user: &OidcUser, all: &'a [OidcUser]) -> Option<&'a OidcUser> {
    let order = |u: &OidcUser| (u.creation_timestamp().map(|t| t.0), u.name_any());
    all.iter()
        .filter(|other| other.uid() != user.uid() && other.metadata.deletion_timestamp.is_none())
        .filter(|other| other.spec.username == user.spec.username)
        .filter(|other| order(other) < order(user))
        .min_by_key(|other| order(other))
}

async fn all_clients(context: &Context) -> Result<Vec<OidcClient>, kube::Error> {
    let client = context.client.clone();
    match &context.config.watch_namespaces {
        WatchNamespaces::All => Ok(Api::<OidcClient>::all(client).list(&ListParams::default()).await?.items),
        WatchNamespaces::List(names) => {
            let mut all = Vec::new();
            for ns in names {
                all.extend(Api::<OidcClient>::namespaced(client.clone(), ns).list(&ListParams::default()).await?.items);
            }
            Ok(all)
        }
    }
}

async fn apply_client(client: &OidcClient, context: &Context) -> Result<Action, ControllerError> {
    let namespace = client.namespace().unwrap_or_else(|| context.config.namespace.clone());
    let name = client.name_any();
    let api: Api<OidcClient> = Api::namespaced(context.client.clone(), &namespace);
    let secrets: Api<Secret> = Api::namespaced(context.client.clone(), &namespace);
    let secret_name = reconcile::credentials_secret_name(client);
    let previous = client.status.clone().unwrap_or_default();
    let generation = client.metadata.generation;
    let now = context.clock.now();
    let reference = client.object_ref(&());
    let credentials = secrets.get_opt(&secret_name).await?;

    let plan = match reconcile::plan_client(client, credentials.as_ref()) {
        Ok(plan) => plan,
        Err(error) => {
            // A client that became invalid must not keep working with its last valid settings.
            if let (true, Some(client_id)) = (was_ready(&previous.conditions), previous.client_id.as_deref()) {
                context.store.delete_client(client_id).await?;
            }
            let message = error.problem.to_string();
            let condition = ready_condition(&previous.conditions, false, "Invalid", message.clone(), generation, now);
            patch_status(&api, &name, json!({ "observedGeneration": generation, "conditions": [condition] })).await?;
            if was_ready(&previous.conditions) || previous.observed_generation != generation {
                context.publish(reference, warning("Invalid", "Reconcile", message)).await;
            }
            return Ok(Action::requeue(context.config.resync_period));
        }
    };
    let client_id = plan.record.client_id.clone();
    let all = all_clients(context).await?;
    if let Some(owner) = client_id_owner(client, &client_id, &all) {
        let message = format!(
            "client id `{client_id}` is already used by OidcClient {}/{}",
            owner.namespace().unwrap_or_default(),
            owner.name_any()
        );
        let condition =
            ready_condition(&previous.conditions, false, CLIENT_ID_CONFLICT, message.clone(), generation, now);
        patch_status(&api, &name, json!({ "observedGeneration": generation, "conditions": [condition] })).await?;
        let known = previous.conditions.iter().any(|c| c.reason == CLIENT_ID_CONFLICT);
        if !known {
            context.publish(reference, warning(CLIENT_ID_CONFLICT, "Reconcile", message)).await;
        }
        return Ok(Action::requeue(CONFLICT_RECHECK.min(context.config.resync_period)));
    }
    if let Some(generated) = &plan.generated {
        let secret =
            credentials_secret(client, &secret_name, &client_id, &generated.client_secret, &context.config.issuer);
        match secrets.create(&PostParams::default(), &secret).await {
            Ok(_) => {
                tracing::info!(client_id = %client_id, secret = %secret_name, "generated client credentials");
                context
                    .publish(
                        reference.clone(),
                        normal("SecretCreated", "Reconcile", format!("generated credentials in Secret {secret_name}")),
                    )
                    .await;
            }
            Err(kube::Error::Api(status)) if status.code == 409 => {
                return Err(ControllerError::SecretRace(secret_name));
            }
            Err(error) => return Err(error.into()),
        }
    }
    context.store.put_client(plan.record).await?;
    let condition = ready_condition(
        &previous.conditions,
        true,
        "Reconciled",
        format!("client `{client_id}` is registered"),
        generation,
        now,
    );
    patch_status(
        &api,
        &name,
        json!({ "clientId": client_id, "observedGeneration": generation, "conditions": [condition] }),
    )
    .await?;
    if !was_ready(&previous.conditions) {
        tracing::info!(target: "portcullis::audit", audit = true, event = "client_registered", client_id = %client_id);
        context.publish(reference, normal("Ready", "Reconcile", format!("client `{client_id}` is registered"))).await;
    }
    Ok(Action::requeue(context.config.resync_period))
}

fn credentials_secret(client: &OidcClient, name: &str, client_id: &str, client_secret: &str, issuer: &str) -> Secret {
    let discovery = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
    let data = BTreeMap::from([
        (CLIENT_ID_KEY.to_owned(), ByteString(client_id.as_bytes().to_vec())),
        (CLIENT_SECRET_KEY.to_owned(), ByteString(client_secret.as_bytes().to_vec())),
        ("issuer".to_owned(), ByteString(issuer.as_bytes().to_vec())),
        ("discoveryUrl".to_owned(), ByteString(discovery.into_bytes())),
    ]);
    let mut secret = Secret { data: Some(data), type_: Some("Opaque".into()), ..Default::default() };
    secret.metadata.name = Some(name.to_owned());
    secret.metadata.namespace = client.namespace();
    secret.metadata.labels =
        Some(BTreeMap::from([("app.kubernetes.io/managed-by".to_owned(), "portcullis".to_owned())]));
    secret.metadata.owner_references = client.controller_owner_ref(&()).map(|owner| vec![owner]);
    secret
}

async fn cleanup_client(client: &OidcClient, context: &Context) -> Result<Action, ControllerError> {
    let status = client.status.clone().unwrap_or_default();
    let held = was_ready(&status.conditions);
    if let (Some(client_id), true) = (status.client_id.as_deref(), held) {
        let all = all_clients(context).await?;
        let taken_over = all.iter().any(|other| {
            other.uid() != client.uid()
                && other.metadata.deletion_timestamp.is_none()
                && other.status.as_ref().and_then(|s| s.client_id.as_deref()) == Some(client_id)
                && other.status.as_ref().is_some_and(|s| was_ready(&s.conditions))
        });
        if !taken_over {
            // Its refresh tokens die with it: refreshing authenticates the client first.
            context.store.delete_client(client_id).await?;
            audit::emit(AuditEvent::ClientDeleted, AuditFields::client(client_id));
        }
    }
    Ok(Action::await_change())
}

async fn reconcile_user(user: Arc<OidcUser>, context: Arc<Context>) -> Result<Action, ControllerError> {
    let started = Instant::now();
    let key = object_key(&*user);
    let api: Api<OidcUser> = Api::namespaced(context.client.clone(), &context.config.namespace);
    let result = finalizer(&api, FINALIZER, user, |event| async {
        match event {
            finalizer::Event::Apply(user) => apply_user(&user, &context).await,
            finalizer::Event::Cleanup(user) => {
                // Only the resource that holds the username removes it. Deleting the record
                // ends the user's sessions: each request re-reads the user.
                if user.status.as_ref().is_some_and(|s| was_ready(&s.conditions)) {
                    context.store.delete_user(&user.spec.username).await?;
                }
                Ok(Action::await_change())
            }
        }
    })
    .await
    .map_err(ControllerError::from);
    context.finish("OidcUser", key, started, result.is_ok());
    result
}

async fn apply_user(user: &OidcUser, context: &Context) -> Result<Action, ControllerError> {
    let api: Api<OidcUser> = Api::namespaced(context.client.clone(), &context.config.namespace);
    let secrets: Api<Secret> = Api::namespaced(context.client.clone(), &context.config.namespace);
    let name = user.name_any();
    let previous = user.status.clone().unwrap_or_default();
    let generation = user.metadata.generation;
    let now = context.clock.now();
    let all = api.list(&ListParams::default()).await?.items;
    if let Some(owner) = username_owner(user, &all) {
        let message = format!("username `{}` is already used by OidcUser {}", user.spec.username, owner.name_any());
        let condition =
            ready_condition(&previous.conditions, false, USERNAME_CONFLICT, message.clone(), generation, now);
        if !previous.conditions.iter().any(|c| c.reason == USERNAME_CONFLICT) {
            context.publish(user.object_ref(&()), warning(USERNAME_CONFLICT, "Reconcile", message)).await;
        }
        patch_status(&api, &name, json!({ "observedGeneration": generation, "conditions": [condition] })).await?;
        return Ok(Action::requeue(CONFLICT_RECHECK.min(context.config.resync_period)));
    }
    let secret = secrets.get_opt(&user.spec.password_secret_ref.name).await?;
    let (condition, record) = match reconcile::plan_user(user, secret.as_ref()) {
        Ok(record) => {
            let message = format!("user `{}` can sign in", record.username);
            (ready_condition(&previous.conditions, true, "Reconciled", message, generation, now), Some(record))
        }
        Err(error) => {
            let message = error.problem.to_string();
            (ready_condition(&previous.conditions, false, "Invalid", message, generation, now), None)
        }
    };
    match record {
        Some(record) => context.store.put_user(record).await?,
        // An invalid user must not keep signing in with what Redis still holds.
        None => context.store.delete_user(&user.spec.username).await?,
    }
    if condition.status == "False" && (was_ready(&previous.conditions) || previous.observed_generation != generation) {
        context.publish(user.object_ref(&()), warning("Invalid", "Reconcile", condition.message.clone())).await;
    }
    patch_status(&api, &name, json!({ "observedGeneration": generation, "conditions": [condition] })).await?;
    Ok(Action::requeue(context.config.resync_period))
}

async fn reconcile_signing_key(key: Arc<SigningKey>, context: Arc<Context>) -> Result<Action, ControllerError> {
    let started = Instant::now();
    let object = object_key(&*key);
    let result = apply_signing_key(&key, &context).await;
    context.finish("SigningKey", object, started, result.is_ok());
    result
}

fn key_secret_name(signing_key: &str, kid: &str) -> String {
    let digest: String = secrets::token_digest(kid)
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .take(10)
        .collect();
    format!("{signing_key}-{digest}")
}

async fn apply_signing_key(key: &SigningKey, context: &Context) -> Result<Action, ControllerError> {
    let namespace = &context.config.namespace;
    let api: Api<SigningKey> = Api::namespaced(context.client.clone(), namespace);
    let secrets: Api<Secret> = Api::namespaced(context.client.clone(), namespace);
    let name = key.name_any();
    let previous = key.status.clone().unwrap_or_default();
    let generation = key.metadata.generation;
    let reference = key.object_ref(&());
    let plan = match reconcile::plan_signing_key(key) {
        Ok(plan) => plan,
        Err(error) => {
            let message = error.problem.to_string();
            let now = context.clock.now();
            let condition = ready_condition(&previous.conditions, false, "Invalid", message.clone(), generation, now);
            patch_status(&api, &name, json!({ "observedGeneration": generation, "conditions": [condition] })).await?;
            if previous.observed_generation != generation {
                context.publish(reference, warning("Invalid", "Reconcile", message)).await;
            }
            return Ok(Action::requeue(context.config.resync_period));
        }
    };
    let policy = RotationPolicy {
        rotation_period: plan.rotation_period.as_secs(),
        publish_delay: context.config.key_publish_delay.as_secs(),
        retire_after: context.config.key_retire_after.as_secs(),
    };
    let rotate_request = key.annotations().get(ROTATE_ANNOTATION).cloned();
    let selector = ListParams::default().labels(&format!("{SIGNING_KEY_LABEL}={name}"));

    // Apply the plan until it has nothing left to do now (bootstrap takes two rounds).
    // Which `portcullis.dev/rotate` value was acted on is kept on the key Secrets (read
    // live), not in the status: a reconcile working from a cached, older resource would
    // otherwise forget it and rotate twice.
    let mut handled_request;
    let mut rounds = 0;
    let (listed, plan_now) = loop {
        let now = context.clock.now();
        let listed = secrets.list(&selector).await?.items;
        let states: Vec<_> = listed
            .iter()
            .filter_map(|s| match key_secrets::key_state(s) {
                Ok((state, _)) => Some(state),
                Err(error) => {
                    tracing::warn!(%error, "ignoring a signing-key Secret");
                    None
                }
            })
            .collect();
        handled_request = listed
            .iter()
            .filter_map(|s| s.annotations().get(ROTATION_REQUEST_ANNOTATION).cloned())
            .find(|value| Some(value) == rotate_request.as_ref());
        let rotate = rotate_request.is_some() && handled_request.is_none();
        let rotation = rotation::plan_rotation(now, &states, policy, rotate);
        rounds += 1;
        if rotation.actions.is_empty() || rounds > 4 {
            break (listed, rotation);
        }
        for action in rotation.actions {
            match action {
                KeyAction::Generate(phase) => {
                    let (pair, pkcs8) = KeyPair::generate(plan.algorithm, plan.rsa_bits)?;
                    let secret_name = key_secret_name(&name, pair.kid());
                    let mut secret =
                        key_secrets::new_key_secret(&name, secret_name.clone(), &pair, pkcs8.to_vec(), phase, now);
                    secret.metadata.owner_references = key.controller_owner_ref(&()).map(|owner| vec![owner]);
                    secrets.create(&PostParams::default(), &secret).await?;
                    tracing::info!(kid = %pair.kid(), phase = phase.as_str(), "generated a signing key");
                }
                KeyAction::Activate(secret_name) => {
                    // Whatever rotation request exists now is satisfied by this activation.
                    set_phase(&secrets, &secret_name, KeyPhase::Active, ACTIVATED_AT_ANNOTATION, now).await?;
                    if let Some(request) = &rotate_request {
                        let patch = json!({ "metadata": { "annotations": { ROTATION_REQUEST_ANNOTATION: request } } });
                        secrets.patch(&secret_name, &PatchParams::default(), &Patch::Merge(patch)).await?;
                    }
                    let kid = kid_of(&listed, &secret_name);
                    audit::emit(
                        AuditEvent::KeyRotated,
                        AuditFields { kid: Some(kid.as_str()), ..AuditFields::default() },
                    );
                    context
                        .publish(reference.clone(), normal("KeyRotated", "Rotate", format!("key {kid} now signs")))
                        .await;
                }
                KeyAction::Retire(secret_name) => {
                    set_phase(&secrets, &secret_name, KeyPhase::Retired, RETIRED_AT_ANNOTATION, now).await?;
                }
                KeyAction::Delete(secret_name) => {
                    match secrets.delete(&secret_name, &DeleteParams::default()).await {
                        Ok(_) => {}
                        Err(kube::Error::Api(status)) if status.code == 404 => {}
                        Err(error) => return Err(error.into()),
                    }
                    tracing::info!(secret = %secret_name, "deleted a retired signing key");
                }
            }
        }
    };

    publish_keys(&secrets, context).await?;
    let mut published: Vec<PublishedKey> = listed
        .iter()
        .filter_map(|secret| {
            let (state, _) = key_secrets::key_state(secret).ok()?;
            Some(PublishedKey {
                kid: kid_of(std::slice::from_ref(secret), &state.name),
                phase: state.phase.as_str().to_owned(),
                secret_name: state.name,
                created: rfc3339(state.created_at),
                activated: state.activated_at.map(rfc3339),
                retired: state.retired_at.map(rfc3339),
            })
        })
        .collect();
    published.sort_by(|a, b| (a.phase.as_str(), &a.created).cmp(&(b.phase.as_str(), &b.created)));
    let active_kid = published.iter().find(|k| k.phase == "active").map(|k| k.kid.clone());
    let now = context.clock.now();
    let condition = match &active_kid {
        Some(kid) => {
            ready_condition(&previous.conditions, true, "Reconciled", format!("key {kid} signs"), generation, now)
        }
        None => ready_condition(&previous.conditions, false, "NoActiveKey", "no key signs yet".into(), generation, now),
    };
    patch_status(
        &api,
        &name,
        json!({
            "activeKid": active_kid,
            "nextRotation": plan_now.next_rotation.map(rfc3339),
            "keys": published,
            "rotationRequest": handled_request,
            "observedGeneration": generation,
            "conditions": [condition],
        }),
    )
    .await?;
    let wait = Duration::from_secs(plan_now.next_check.saturating_sub(now).max(1));
    Ok(Action::requeue(wait.min(context.config.resync_period)))
}

/// Writes the JWKS and the active kids of every `SigningKey` of the namespace to Redis
/// (each SigningKey's reconcile writes the union, so the last writer is always complete).
async fn publish_keys(secrets: &Api<Secret>, context: &Context) -> Result<(), ControllerError> {
    let all = secrets.list(&ListParams::default().labels(SIGNING_KEY_LABEL)).await?.items;
    let Some(keyring) = key_secrets::keyring_from_secrets(&all) else { return Ok(()) };
    let active: BTreeMap<String, String> = keyring
        .algorithms()
        .into_iter()
        .filter_map(|alg| keyring.signer(Some(alg)).map(|key| (alg.as_str().to_owned(), key.kid().to_owned())))
        .collect();
    let jwks = String::from_utf8_lossy(&keyring.jwks_json()).into_owned();
    let active = serde_json::to_string(&active).map_err(KeyError::from)?;
    context.store.publish_keys(&jwks, &active).await?;
    Ok(())
}

fn kid_of(secrets: &[Secret], secret_name: &str) -> String {
    secrets
        .iter()
        .find(|s| s.name_any() == secret_name)
        .and_then(|s| s.annotations().get(key_secrets::KID_ANNOTATION).cloned())
        .unwrap_or_else(|| secret_name.to_owned())
}

async fn set_phase(
    secrets: &Api<Secret>,
    name: &str,
    phase: KeyPhase,
    time_annotation: &str,
    now: u64,
) -> Result<(), kube::Error> {
    let patch = json!({ "metadata": { "annotations": {
        PHASE_ANNOTATION: phase.as_str(),
        time_annotation: now.to_string(),
    }}});
    secrets.patch(name, &PatchParams::default(), &Patch::Merge(patch)).await.map(|_| ())
}

fn normal(reason: &str, action: &str, note: String) -> Event {
    Event { type_: EventType::Normal, reason: reason.into(), note: Some(note), action: action.into(), secondary: None }
}

fn warning(reason: &str, action: &str, note: String) -> Event {
    Event { type_: EventType::Warning, reason: reason.into(), note: Some(note), action: action.into(), secondary: None }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn client(name: &str, uid: &str, created: i64, client_id: Option<&str>) -> OidcClient {
        let spec = serde_json::from_value(json!({ "clientId": client_id, "redirectUris": ["https://a.example/cb"] }))
            .unwrap_or_else(|e| panic!("{e}"));
        OidcClient {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("team".into()),
                uid: Some(uid.into()),
                creation_timestamp: Some(Time(Timestamp::from_second(created).unwrap_or(Timestamp::UNIX_EPOCH))),
                ..Default::default()
            },
            spec,
            status: None,
        }
    }

    #[test]
    fn the_older_resource_keeps_a_client_id_the_later_one_conflicts() {
        let first = client("first", "1", 100, Some("shared"));
        let second = client("second", "2", 200, Some("shared"));
        let all = vec![first.clone(), second.clone()];
        assert_eq!(client_id_owner(&second, "shared", &all).map(ResourceExt::name_any), Some("first".into()));
        assert!(client_id_owner(&first, "shared", &all).is_none());
        assert!(client_id_owner(&second, "other", &all).is_none());
    }

    #[test]
    fn a_deleting_resource_releases_its_client_id() {
        let mut first = client("first", "1", 100, Some("shared"));
        first.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
        let second = client("second", "2", 200, Some("shared"));
        assert!(client_id_owner(&second, "shared", &[first, second.clone()]).is_none());
    }

    #[test]
    fn the_older_user_keeps_a_username() {
        let user = |name: &str, uid: &str, created: i64| -> OidcUser {
            let mut user: OidcUser = serde_json::from_value(json!({
                "metadata": { "name": name, "uid": uid },
                "spec": { "username": "alice", "passwordSecretRef": { "name": "s", "key": "k" } },
            }))
            .unwrap_or_else(|e| panic!("{e}"));
            user.metadata.creation_timestamp =
                Some(Time(Timestamp::from_second(created).unwrap_or(Timestamp::UNIX_EPOCH)));
            user
        };
        let (first, twin) = (user("alice", "1", 100), user("alice-twin", "2", 200));
        let all = vec![first.clone(), twin.clone()];
        assert_eq!(username_owner(&twin, &all).map(ResourceExt::name_any), Some("alice".into()));
        assert!(username_owner(&first, &all).is_none());
    }

    #[test]
    fn watch_namespaces_default_to_the_own_namespace() {
        assert_eq!(WatchNamespaces::parse(None, "auth"), WatchNamespaces::List(vec!["auth".into()]));
        assert_eq!(WatchNamespaces::parse(Some("*"), "auth"), WatchNamespaces::All);
        assert_eq!(
            WatchNamespaces::parse(Some("b, a,,b"), "auth"),
            WatchNamespaces::List(vec!["a".into(), "b".into()])
        );
    }

    #[test]
    fn ready_condition_keeps_its_transition_time_while_unchanged() {
        let first = ready_condition(&[], true, "Reconciled", "ok".into(), Some(1), 100);
        let again = ready_condition(std::slice::from_ref(&first), true, "Reconciled", "ok".into(), Some(2), 200);
        assert_eq!(first.last_transition_time, again.last_transition_time);
        let flipped = ready_condition(std::slice::from_ref(&first), false, "Invalid", "bad".into(), Some(2), 200);
        assert_ne!(first.last_transition_time, flipped.last_transition_time);
    }
}
