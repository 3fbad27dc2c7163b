//! `portcullis controller`: competes for the leader Lease and, while it holds it, runs one
//! `kube-runtime` controller per kind, the sweep and the watch on the store's data epoch.
//!
//! The Lease is renewed by its own task; reconciles run at most
//! [`ControllerConfig::concurrency`] at a time and do their argon2 work on the blocking
//! pool, so a full reconcile of many resources never makes a renewal late.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store as Reflector};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use tokio::sync::{Semaphore, mpsc, watch};

use super::config::{ControllerConfig, WatchNamespaces};
use super::context::{
    Cache, Context, ControllerError, Memo, Shared, Watched, hashing_permits, held_names, object_key, retry_delay,
};
use super::events::Events;
use super::index::{Index, reflect_indexed};
use super::key_secrets::SIGNING_KEY_LABEL;
use super::lease;
use super::metrics::ControllerMetrics;
use super::sweep::sweep;
use super::{clients, connectors, signing_keys, users};
use crate::clock::Clock;
use crate::controller::decide::claim::Claimant;
use crate::crd::{OidcUser, SigningKey};
use crate::store::{Store, epoch};

/// How often the leader reads the store's data epoch: lost data is re-applied within
/// this plus one round of reconciles.
pub const EPOCH_POLL: Duration = Duration::from_secs(2);

/// Runs the controller until `shutdown` completes: competes for the Lease and, while it
/// holds it, runs the resource controllers.
pub async fn run(
    client: Client,
    store: Arc<dyn Store>,
    config: ControllerConfig,
    clock: Clock,
    metrics: Arc<ControllerMetrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
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
    let shared = Arc::new(Shared {
        events: Events::new(client.clone(), config.lease.identity.clone()),
        client,
        store,
        config,
        clock,
        metrics: Arc::clone(&metrics),
        memo: Memo::default(),
        hashing: Semaphore::new(hashing_permits()),
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
        run_controllers(Arc::clone(&shared), until).await;
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

/// A stream that yields once per change of `trigger`: what `reconcile_all_on` listens to.
fn each_change(trigger: &watch::Sender<u64>) -> impl futures::Stream<Item = ()> + Send + 'static {
    futures::stream::unfold(trigger.subscribe(), |mut receiver| async move {
        receiver.changed().await.ok()?;
        Some(((), receiver))
    })
}

/// Runs the resource controllers, the sweep and the epoch watch until `until` completes,
/// then lets in-flight reconciliations finish.
async fn run_controllers(shared: Arc<Shared>, until: impl Future<Output = ()> + Send + 'static) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopper = tokio::spawn(async move {
        until.await;
        let _ = stop_tx.send(true);
    });
    let signal = {
        let stop_rx = stop_rx.clone();
        move || {
            let mut stop = stop_rx.clone();
            async move {
                let _ = stop.wait_for(|stopped| *stopped).await;
            }
        }
    };
    let (repair, _) = watch::channel(0u64);
    let client = shared.client.clone();
    let own = shared.config.namespace.clone();
    let config = controller::Config::default().concurrency(shared.config.concurrency);

    // The users, in the controller's namespace, indexed by the names they hold and by
    // their password Secret; Secret changes reach them through `user_triggers`.
    let user_names = Arc::new(Index::new(users::index_names));
    let users_by_secret = Arc::new(Index::new(users::secret_keys));
    let (users_controller, user_reader, user_triggers) = indexed_controller(
        Api::<OidcUser>::namespaced(client.clone(), &own),
        vec![Arc::clone(&user_names), Arc::clone(&users_by_secret)],
        &config,
        &repair,
        signal(),
    );
    let users_listener = {
        let (own, index, store) = (own.clone(), Arc::clone(&users_by_secret), user_reader.clone());
        listener(user_triggers, move |secret| users::owners_of(secret, &own, &index, &store))
    };

    // The clients and connectors, per watched scope, with the Secrets of that scope; the
    // scope of the controller's namespace caches the users' Secrets too.
    let scopes: Vec<(Option<&str>, bool)> = match &shared.config.watch_namespaces {
        WatchNamespaces::All => vec![(None, true)],
        WatchNamespaces::List(names) => names.iter().map(|ns| (Some(ns.as_str()), *ns == own)).collect(),
    };
    let mut secret_drivers = Vec::new();
    let mut user_secrets = None;
    let mut users_listener = Some(users_listener);
    let (mut client_controllers, mut client_watched) = (Vec::new(), Vec::new());
    let (mut connector_controllers, mut connector_watched) = (Vec::new(), Vec::new());
    for (namespace, holds_own) in scopes {
        let (clients_scope, clients_listener) = Scoped::start(
            scope_api(&client, namespace),
            (clients::secret_keys, clients::owners_of),
            &config,
            &repair,
            signal(),
        );
        let (connectors_scope, connectors_listener) = Scoped::start(
            scope_api(&client, namespace),
            (connectors::secret_keys, connectors::owners_of),
            &config,
            &repair,
            signal(),
        );
        let mut listeners = vec![clients_listener, connectors_listener];
        if holds_own {
            listeners.extend(users_listener.take());
        }
        let (secrets, driver) = secret_scope(scope_api(&client, namespace), listeners, stop_rx.clone());
        if holds_own {
            user_secrets = Some(secrets.clone());
        }
        secret_drivers.push(tokio::spawn(driver));
        let (controller, report, watched) = clients_scope.with_secrets(secrets.clone());
        client_controllers.push((controller, report));
        client_watched.push(watched);
        let (controller, report, watched) = connectors_scope.with_secrets(secrets);
        connector_controllers.push((controller, report));
        connector_watched.push(watched);
    }
    let user_secrets = match (user_secrets, users_listener) {
        (Some(secrets), _) => secrets,
        (None, listener) => {
            let (secrets, driver) =
                secret_scope(Api::namespaced(client.clone(), &own), listener.into_iter().collect(), stop_rx.clone());
            secret_drivers.push(tokio::spawn(driver));
            secrets
        }
    };
    let keys_controller =
        Controller::new(Api::<SigningKey>::namespaced(client.clone(), &own), watcher::Config::default())
            .with_config(config)
            .owns(Api::<Secret>::namespaced(client, &own), watcher::Config::default().labels(SIGNING_KEY_LABEL))
            .reconcile_all_on(each_change(&repair))
            .graceful_shutdown_on(signal());

    let (user_cache, user_report) = Cache::new(user_reader);
    let users = Watched { cache: user_cache, names: user_names, secrets: user_secrets };
    let context = Arc::new(Context::new(Arc::clone(&shared), client_watched, users, connector_watched));
    match epoch(&*shared.store).await {
        Ok(epoch) => {
            context.set_epoch(epoch.id);
        }
        Err(error) => tracing::warn!(%error, "reading the store's data epoch"),
    }

    let mut tasks = Vec::new();
    for (controller, report) in client_controllers {
        let store = controller.store();
        let run = drain(controller.run(clients::reconcile, error_policy, Arc::clone(&context)));
        tasks.push(tokio::spawn(reporting_readiness(run, store, report, stop_rx.clone())));
    }
    for (controller, report) in connector_controllers {
        let store = controller.store();
        let run = drain(controller.run(connectors::reconcile, error_policy, Arc::clone(&context)));
        tasks.push(tokio::spawn(reporting_readiness(run, store, report, stop_rx.clone())));
    }
    let users_run = drain(users_controller.run(users::reconcile, error_policy, Arc::clone(&context)));
    tasks.push(tokio::spawn(reporting_readiness(
        users_run,
        context.users.cache.store.clone(),
        user_report,
        stop_rx.clone(),
    )));
    let keys_store = keys_controller.store();
    let keys_run = drain(keys_controller.run(signing_keys::reconcile, error_policy, Arc::clone(&context)));
    tasks.push(tokio::spawn(reporting_readiness(keys_run, keys_store, watch::channel(false).0, stop_rx.clone())));
    let epoch_watch = tokio::spawn(watch_epoch(Arc::clone(&context), repair, stop_rx.clone()));
    let sweeper = tokio::spawn(sweep_periodically(Arc::clone(&context), stop_rx));

    for task in tasks {
        if let Err(error) = task.await {
            tracing::warn!(%error, "a controller task failed");
        }
    }
    for task in secret_drivers.into_iter().chain([epoch_watch, sweeper]) {
        if let Err(error) = task.await {
            tracing::warn!(%error, "a controller task failed");
        }
    }
    stopper.abort();
}

/// A controller of `K` fed by its own indexed reflector ([`reflect_indexed`]), the
/// reflector, and where to send the resources it is to reconcile besides (a changed
/// Secret's owners).
fn indexed_controller<K>(
    api: Api<K>,
    indexes: Vec<Arc<Index<K>>>,
    config: &controller::Config,
    repair: &watch::Sender<u64>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> (Controller<K>, Reflector<K>, mpsc::UnboundedSender<ObjectRef<K>>)
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let (reader, events) = reflect_indexed(api, watcher::Config::default(), indexes);
    let (triggers, triggered) = mpsc::unbounded_channel();
    let controller = Controller::for_stream(events.applied_objects(), reader.clone())
        .with_config(config.clone())
        .reconcile_on(received(triggered))
        .reconcile_all_on(each_change(repair))
        .graceful_shutdown_on(shutdown);
    (controller, reader, triggers)
}

/// The resources of `K` in one watched scope (a namespace, or all with `None`).
fn scope_api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
{
    match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

/// How a kind's resources are found from a Secret they read: the keys they are indexed
/// under, and which of those indexed under a Secret's key read it.
type SecretReaders<K> = (fn(&K) -> Vec<String>, fn(&Secret, &Index<K>, &Reflector<K>) -> Vec<Arc<K>>);

/// One kind's controller in one watched scope, before the scope's Secrets are cached.
struct Scoped<K: 'static + Resource<DynamicType = ()> + Clone + std::fmt::Debug> {
    controller: Controller<K>,
    cache: Cache<K>,
    names: Arc<Index<K>>,
    report: watch::Sender<bool>,
}

impl<K> Scoped<K>
where
    K: Resource<DynamicType = ()> + Claimant + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync,
{
    /// The controller of `api`'s resources, indexed by the names they hold and by the
    /// Secret they read, and the listener that reconciles the readers of a changed Secret.
    fn start(
        api: Api<K>,
        (secret_keys, readers): SecretReaders<K>,
        config: &controller::Config,
        repair: &watch::Sender<u64>,
        shutdown: impl Future<Output = ()> + Send + Sync + 'static,
    ) -> (Self, SecretListener) {
        let names = Arc::new(Index::new(held_names::<K>));
        let by_secret = Arc::new(Index::new(secret_keys));
        let indexes = vec![Arc::clone(&names), Arc::clone(&by_secret)];
        let (controller, reader, triggers) = indexed_controller(api, indexes, config, repair, shutdown);
        let (cache, report) = Cache::new(reader.clone());
        let listener = listener(triggers, move |secret| readers(secret, &by_secret, &reader));
        (Self { controller, cache, names, report }, listener)
    }

    /// The controller, where it reports its cache listed, and what reconciles read.
    fn with_secrets(self, secrets: Cache<Secret>) -> (Controller<K>, watch::Sender<bool>, Watched<K>) {
        (self.controller, self.report, Watched { cache: self.cache, names: self.names, secrets })
    }
}

/// What a Secret change is handed to: it asks for the reconciles the change calls for.
type SecretListener = Box<dyn Fn(&Secret) + Send + Sync>;

/// A listener that asks for the reconcile of each resource `owners` finds for a Secret.
fn listener<K>(
    triggers: mpsc::UnboundedSender<ObjectRef<K>>,
    owners: impl Fn(&Secret) -> Vec<Arc<K>> + Send + Sync + 'static,
) -> SecretListener
where
    K: Resource<DynamicType = ()> + Send + Sync + 'static,
{
    Box::new(move |secret| {
        for owner in owners(secret) {
            let _ = triggers.send(ObjectRef::from_obj(&*owner));
        }
    })
}

/// The reconciles asked for on a channel, as a stream for `reconcile_on`.
fn received<K>(
    triggered: mpsc::UnboundedReceiver<ObjectRef<K>>,
) -> impl futures::Stream<Item = ObjectRef<K>> + Send + 'static
where
    K: Resource<DynamicType = ()> + Send + 'static,
{
    futures::stream::unfold(triggered, |mut triggered| async move { triggered.recv().await.map(|r| (r, triggered)) })
}

/// Caches the Secrets `api` sees and hands each change to `listeners`, in its own task
/// until `stop`: not in a controller's streams, because a controller whose reconcile slots
/// are full stops polling those, and its reconciles wait for this cache to list. (The
/// channel to the controllers is unbounded so that this task never waits on them; it holds
/// object references only.)
fn secret_scope(
    api: Api<Secret>,
    listeners: Vec<SecretListener>,
    mut stop: watch::Receiver<bool>,
) -> (Cache<Secret>, impl Future<Output = ()> + Send + 'static) {
    let (reader, events) = reflect_indexed(api, watcher::Config::default(), Vec::new());
    let (cache, report) = Cache::new(reader.clone());
    let driver = async move {
        let changes = events.default_backoff().touched_objects().for_each(|secret| {
            match secret {
                Ok(secret) => listeners.iter().for_each(|listener| listener(&secret)),
                Err(error) => tracing::warn!(%error, "watching Secrets"),
            }
            std::future::ready(())
        });
        let listed = async {
            if reader.wait_until_ready().await.is_ok() {
                report.send_replace(true);
            }
            std::future::pending::<()>().await;
        };
        tokio::select! {
            _ = futures::future::join(changes, listed) => {}
            _ = stop.wait_for(|stopped| *stopped) => {}
        }
    };
    (cache, driver)
}

/// Runs a controller and, in the same task, reports when its cache has listed: waiting on
/// the cache from this task cannot take the wake-up of the controller's runner (see
/// [`Cache`]).
///
/// A controller stopped before its cache listed is dropped instead of shut down
/// gracefully: its runner waits for the first LIST, which a shutdown no longer reads, so
/// it would wait forever; and it has reconciled nothing yet, so there is nothing to let
/// finish.
async fn reporting_readiness<K>(
    run: impl Future<Output = ()>,
    store: Reflector<K>,
    report: watch::Sender<bool>,
    mut stop: watch::Receiver<bool>,
) where
    K: 'static + Resource<DynamicType = ()> + Clone,
{
    let listed = report.subscribe();
    let ready = async move {
        if store.wait_until_ready().await.is_ok() {
            report.send_replace(true);
        }
    };
    let stopped_unlisted = async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
        if *listed.borrow() {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        _ = futures::future::join(run, ready) => {}
        () = stopped_unlisted => tracing::debug!("stopped before the first LIST: nothing to finish"),
    }
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

/// Retries a failed resource as its kind of failure asks (counted in [`Context::finish`]).
fn error_policy<K: Resource<DynamicType = ()>>(
    object: Arc<K>,
    error: &ControllerError,
    context: Arc<Context>,
) -> Action {
    let key = object_key(&*object);
    let delay = retry_delay(error.retry(), context.failures(&key));
    tracing::warn!(resource = %key, kind = error.kind(), %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// Reads the store's data epoch every [`EPOCH_POLL`]; when it changed — the store lost
/// its data, so a new one was made — every resource is reconciled at once, which writes
/// what the reconciles remembered as applied under the old epoch, whatever a cached read
/// says.
async fn watch_epoch(context: Arc<Context>, repair: watch::Sender<u64>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(EPOCH_POLL) => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
        match epoch(&*context.shared.store).await {
            Ok(epoch) => {
                if context.set_epoch(epoch.id) {
                    tracing::warn!("the store's data epoch changed (its data was lost): applying every resource again");
                    repair.send_modify(|count| *count = count.wrapping_add(1));
                }
            }
            Err(error) => tracing::debug!(%error, "reading the store's data epoch"),
        }
    }
}

/// Sweeps once the reflectors listed, then every resync period.
async fn sweep_periodically(context: Arc<Context>, mut stop: watch::Receiver<bool>) {
    let period = context.shared.config.resync_period;
    loop {
        tokio::select! {
            result = sweep(&context) => match result {
                Ok(swept) if swept.is_empty() => {}
                Ok(swept) => tracing::info!(
                    clients = ?swept.clients,
                    users = ?swept.users,
                    connectors = ?swept.connectors,
                    "swept undeclared records"
                ),
                Err(error) => tracing::warn!(%error, "sweeping undeclared records"),
            },
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_namespaces_default_to_the_own_namespace() {
        assert_eq!(WatchNamespaces::parse(None, "auth"), WatchNamespaces::List(vec!["auth".into()]));
        assert_eq!(WatchNamespaces::parse(Some("*"), "auth"), WatchNamespaces::All);
        assert_eq!(
            WatchNamespaces::parse(Some("b, a,,b"), "auth"),
            WatchNamespaces::List(vec!["a".into(), "b".into()])
        );
    }
}
