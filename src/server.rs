//! Running the provider: `portcullis dev` (one process, the in-memory store) and
//! `portcullis serve` (stateless replicas sharing a Redis store), both configured from a
//! manifests folder (or, for `dev`, the embedded examples).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use url::Url;
use zeroize::Zeroizing;

use crate::clock::Clock;
use crate::controller::folder::{ApplyError, Folder};
use crate::controller::reconcile::GeneratedCredentials;
use crate::controller::replica::{self, Intervals, LiveFolder, Replica, Source};
use crate::keys::{KeyError, Keyring, SharedKeyring};
use crate::kubernetes::key_secrets::{self, KeyWatch};
use crate::listener::{self, ConnectionLimits};
use crate::protocol::upstream_credential::CredentialKeys;
use crate::provider::{self, BackchannelSettings, Provider, ProviderConfig, RegistrationPolicy};
use crate::store::{Eviction, MemoryStore, RedisConfig, RedisStore, Store, StoreError, StoreStatus, epoch};
use crate::vocabulary::Scope;

/// The example manifests compiled into the binary, used when no folder is given.
pub const EMBEDDED_EXAMPLES: &[(&str, &str)] = &[
    ("<embedded>/clients.yaml", include_str!("../deploy/examples/clients.yaml")),
    ("<embedded>/users.yaml", include_str!("../deploy/examples/users.yaml")),
    ("<embedded>/signing-keys.yaml", include_str!("../deploy/examples/signing-keys.yaml")),
];

/// How often expired entries are purged from the in-memory store.
const PURGE_INTERVAL: Duration = Duration::from_secs(60);

/// Why the provider could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("invalid --issuer `{0}`: it must be an http or https URL without query, fragment or credentials")]
    Issuer(String),
    #[error("applying manifests: {0}")]
    Apply(Box<ApplyError>),
    #[error("connecting to the Kubernetes API: {0}")]
    Kubernetes(#[from] kube::Error),
    #[error("connecting to Redis: {0}")]
    Redis(StoreError),
    #[error("reading the store's data epoch: {0}")]
    Epoch(StoreError),
    #[error("the signing keys: {0}")]
    Keys(#[from] KeyError),
    #[error("serializing the discovery document: {0}")]
    Discovery(#[from] serde_json::Error),
    #[error("listening on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("serving: {0}")]
    Serve(std::io::Error),
    #[error("--upstream-credential-key-file {path}: {reason}")]
    CredentialKeys { path: PathBuf, reason: String },
}

/// The upstream credential keys in the file at `path` (see
/// [`crate::protocol::upstream_credential`]).
pub fn read_credential_keys(path: &Path) -> Result<CredentialKeys, ServerError> {
    let failed = |reason: String| ServerError::CredentialKeys { path: path.to_owned(), reason };
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|error| failed(error.to_string()))?);
    CredentialKeys::parse(&text).map_err(|error| failed(error.to_string()))
}

/// Which keys seal upstream credentials in the store.
enum CredentialSealing {
    /// A random key of this process: `dev`, whose store is its own.
    ProcessKey,
    /// The keys every replica of the store shares, or none (then no credential is kept).
    Shared(Option<Arc<CredentialKeys>>),
}

impl CredentialSealing {
    fn apply(self, provider: Provider) -> Provider {
        match self {
            CredentialSealing::ProcessKey => provider,
            CredentialSealing::Shared(keys) => {
                if keys.is_none() {
                    tracing::warn!(
                        "no --upstream-credential-key-file: upstream refresh tokens are not kept, so people signed in through a connector sign in again at its first re-check"
                    );
                }
                provider.with_credential_keys(keys)
            }
        }
    }
}

impl From<ApplyError> for ServerError {
    fn from(error: ApplyError) -> Self {
        Self::Apply(Box::new(error))
    }
}

/// What `dev` and `serve` are started with.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub issuer: String,
    /// A manifests folder; `None` uses [`EMBEDDED_EXAMPLES`].
    pub manifests: Option<PathBuf>,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub session_ttl: Duration,
    pub registration: RegistrationPolicy,
    pub registration_scopes: Scope,
    /// How often the store's data epoch and the shared keys are checked, and the
    /// manifests folder read again.
    pub intervals: Intervals,
    /// How back-channel logout tokens are delivered.
    pub backchannel: BackchannelSettings,
    /// Serve `/metrics` on the main port too; otherwise only `--metrics-listen` has it.
    pub metrics_on_main_port: bool,
}

/// OIDC Discovery §3 / RFC 8414 §2: the issuer is an URL with no query or fragment. It is
/// kept exactly as given, since relying parties compare it as a string.
pub fn validate_issuer(issuer: &str) -> Result<(), ServerError> {
    let url = Url::parse(issuer).map_err(|_| ServerError::Issuer(issuer.to_owned()))?;
    let valid = matches!(url.scheme(), "http" | "https")
        && url.host().is_some()
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none()
        && !issuer.contains(['?', '#']);
    if valid { Ok(()) } else { Err(ServerError::Issuer(issuer.to_owned())) }
}

/// A provider ready to serve, and the client secrets generated while building it.
pub struct BuiltProvider {
    pub provider: Arc<Provider>,
    pub generated: Vec<GeneratedCredentials>,
    /// `serve --kubernetes`: the watch on the signing-key Secrets (its `synced` flag is for `/ready`).
    pub key_watch: Option<KeyWatch>,
}

/// Shows a client secret generated for a client whose Secret has none, once, on stdout.
pub fn announce_generated(generated: &GeneratedCredentials) {
    println!(
        "Generated a secret for client `{}` (Secret {}/{} has none): {}",
        generated.client_id, generated.namespace, generated.secret_name, generated.client_secret
    );
}

/// `dev`: loads the manifests into a fresh in-memory store and builds the provider.
pub async fn build_dev(options: &ServerOptions) -> Result<BuiltProvider, ServerError> {
    let clock = Clock::system();
    let store = Arc::new(MemoryStore::new(clock.clone()));
    let purged = Arc::downgrade(&store);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PURGE_INTERVAL);
        loop {
            tick.tick().await;
            match purged.upgrade() {
                Some(store) => store.purge_expired(),
                None => break,
            }
        }
    });
    build(options, store, None, clock, CredentialSealing::ProcessKey).await
}

/// `serve`: connects to Redis, applies the manifests there (idempotently: every replica
/// does it at start-up, and again whenever Redis lost its data) and builds the provider.
pub async fn build_serve(
    options: &ServerOptions,
    redis: RedisConfig,
    credential_keys: Option<Arc<CredentialKeys>>,
) -> Result<BuiltProvider, ServerError> {
    let store = Arc::new(RedisStore::connect(redis).await.map_err(ServerError::Redis)?);
    let reconnected = store.reconnected();
    build(options, store, Some(reconnected), Clock::system(), CredentialSealing::Shared(credential_keys)).await
}

/// `serve --kubernetes`: clients and users come from Redis (the controller writes them),
/// signing keys from the labelled Secrets of `namespace`, watched so a rotation is picked
/// up without a restart. Waits until the Secrets hold an active key.
pub async fn build_kubernetes(
    options: &ServerOptions,
    redis: RedisConfig,
    credential_keys: Option<Arc<CredentialKeys>>,
    client: kube::Client,
    namespace: &str,
) -> Result<BuiltProvider, ServerError> {
    validate_issuer(&options.issuer)?;
    let redis = Arc::new(RedisStore::connect(redis).await.map_err(ServerError::Redis)?);
    let reconnected = redis.reconnected();
    let store: Arc<dyn Store> = redis;
    let status = store_status(store.as_ref()).await?;
    let key_watch = key_secrets::watch_signing_keys(client, namespace).await;
    let config = provider_config(options);
    let provider = Provider::new(
        config,
        Arc::clone(&store),
        Arc::clone(&key_watch.keyring),
        Clock::system(),
        Arc::clone(&status),
    )?
    .with_key_watch(Arc::clone(&key_watch.synced));
    let provider = Arc::new(CredentialSealing::Shared(credential_keys).apply(provider));
    tokio::spawn(provider::deliver_logouts(Arc::downgrade(&provider), options.backchannel));
    let replica = Replica { store, status, folder: None, reconnected: Some(reconnected), intervals: options.intervals };
    tokio::spawn(replica.run());
    Ok(BuiltProvider { provider, generated: Vec::new(), key_watch: Some(key_watch) })
}

async fn build(
    options: &ServerOptions,
    store: Arc<dyn Store>,
    reconnected: Option<Arc<tokio::sync::Notify>>,
    clock: Clock,
    sealing: CredentialSealing,
) -> Result<BuiltProvider, ServerError> {
    validate_issuer(&options.issuer)?;
    let status = store_status(store.as_ref()).await?;
    let source = match &options.manifests {
        Some(dir) => Source::Dir(dir.clone()),
        None => Source::Texts(EMBEDDED_EXAMPLES),
    };
    let keys: SharedKeyring = Arc::new(ArcSwap::from_pointee(Keyring::new(Vec::new())?));
    let retire_after = Folder::longest_token_lifetime(options.access_token_ttl.as_secs());
    let folder = Folder::new(Arc::clone(&keys), retire_after, clock.clone());
    let (folder, generated) = LiveFolder::start(source, folder, store.as_ref(), announce_generated).await?;
    let config = provider_config(options);
    let provider = Provider::new(config, Arc::clone(&store), keys, clock, Arc::clone(&status))?;
    let provider = Arc::new(sealing.apply(provider));
    tokio::spawn(provider::deliver_logouts(Arc::downgrade(&provider), options.backchannel));
    let replica = Replica { store, status, folder: Some(folder), reconnected, intervals: options.intervals };
    tokio::spawn(replica.run());
    Ok(BuiltProvider { provider, generated, key_watch: None })
}

/// The store's data epoch (created if it has none) and eviction policy, checked before the
/// first request: an evicting store is reported loudly and keeps the replica not ready.
async fn store_status(store: &dyn Store) -> Result<Arc<StoreStatus>, ServerError> {
    let current = epoch(store).await.map_err(ServerError::Epoch)?;
    let status = Arc::new(StoreStatus::new(current.id));
    if replica::check_eviction(store, &status).await == Some(Eviction::Unknown) {
        tracing::warn!(
            "cannot tell whether the store evicts keys (neither CONFIG GET maxmemory-policy nor INFO memory says): \
             make sure its maxmemory-policy is noeviction, or revocations may fail open"
        );
    }
    Ok(status)
}

fn provider_config(options: &ServerOptions) -> ProviderConfig {
    ProviderConfig {
        issuer: options.issuer.clone(),
        access_token_ttl: options.access_token_ttl.as_secs(),
        refresh_token_ttl: options.refresh_token_ttl.as_secs(),
        session_ttl: options.session_ttl.as_secs(),
        registration: options.registration.clone(),
        registration_scopes: options.registration_scopes.clone(),
        metrics_on_main_port: options.metrics_on_main_port,
    }
}

/// Binds the address.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr).await.map_err(|source| ServerError::Listen { addr, source })
}

/// Serves until `shutdown` completes, then finishes in-flight requests, within the default
/// [`ConnectionLimits`] of this process.
pub async fn serve(
    listener: TcpListener,
    provider: Arc<Provider>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    serve_with(listener, provider, ConnectionLimits::default(), shutdown).await
}

/// [`serve`] within `limits` (`--header-read-timeout`, `--idle-timeout`, `--max-connections`).
pub async fn serve_with(
    listener: TcpListener,
    provider: Arc<Provider>,
    limits: ConnectionLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    listener::serve(listener, provider::app(provider), limits, shutdown).await.map_err(ServerError::Serve)
}

/// Serves `/metrics`, `/health` and `/ready` on a separate listener (`--metrics-listen`)
/// until `shutdown` completes, with the timeouts of `limits` and at most
/// [`listener::METRICS_CONNECTIONS`] connections.
pub async fn serve_metrics(
    listener: TcpListener,
    provider: Arc<Provider>,
    limits: ConnectionLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let limits = ConnectionLimits { max_connections: listener::METRICS_CONNECTIONS, ..limits };
    listener::serve(listener, provider::metrics_app(provider), limits, shutdown).await.map_err(ServerError::Serve)
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::manifests::ManifestSet;

    #[test]
    fn oidc_discovery_3_issuer_has_no_query_or_fragment() {
        for good in ["http://127.0.0.1:8080", "https://id.example", "https://id.example/tenant/"] {
            assert!(validate_issuer(good).is_ok(), "{good}");
        }
        for bad in [
            "id.example",
            "ftp://id.example",
            "https://id.example/?a=b",
            "https://id.example#x",
            "https://u:p@id.example",
            "https://id.example/?",
        ] {
            assert!(validate_issuer(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn embedded_examples_load() {
        let set = ManifestSet::load_texts(EMBEDDED_EXAMPLES).unwrap();
        assert!(!set.clients.is_empty() && !set.users.is_empty() && !set.signing_keys.is_empty());
    }
}
