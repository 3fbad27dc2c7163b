//! The provider's shared state: its settings, the handles every request uses, and the
//! lifetimes of what the browser flow stores.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Weak};

use arc_swap::ArcSwapOption;
use bytes::Bytes;

use super::password_work::PasswordWork;
use super::readiness::Readiness;
use super::sealing::Sealer;
use crate::clock::Clock;
use crate::connectors::Connectors;
use crate::keys::{Keyring, SharedKeyring};
use crate::metrics::Metrics;
use crate::model::UserRecord;
use crate::protocol::discovery;
use crate::protocol::federation::with_claimant;
use crate::protocol::token::Issuance;
use crate::protocol::upstream_credential::CredentialKeys;
use crate::secrets::{self, ClientSecretVerifier};
use crate::store::{InstrumentedStore, Store, StoreError, StoreStatus};
use crate::vocabulary::Scope;

/// Authorization codes live this long (OIDC Core §3.1.3.1 asks for a short lifetime).
pub const CODE_TTL: u64 = 60;
/// A device authorization waits this long for its user (RFC 8628 §3.2 `expires_in`).
pub const DEVICE_CODE_TTL: u64 = 600;
/// Consent is remembered this long.
pub const CONSENT_TTL: u64 = 365 * 24 * 3600;

/// Who may register clients.
#[derive(Clone, PartialEq, Eq)]
pub enum RegistrationPolicy {
    /// Anyone (rate-limited per address).
    Open,
    /// Whoever presents this initial access token (RFC 7591 §3).
    Token(String),
    /// Nobody: the endpoint answers 403 and is not advertised.
    Disabled,
}

/// The initial access token is a secret: `Debug` (and so the logged configuration) hides it.
impl std::fmt::Debug for RegistrationPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegistrationPolicy::Open => f.write_str("Open"),
            RegistrationPolicy::Token(_) => f.write_str("Token(<redacted>)"),
            RegistrationPolicy::Disabled => f.write_str("Disabled"),
        }
    }
}

/// Settings of the provider that do not change while it runs. Lifetimes are in seconds.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// The issuer identifier, exactly as configured (`--issuer`).
    pub issuer: String,
    /// Default access-token (and ID token) lifetime.
    pub access_token_ttl: u64,
    /// Lifetime of a refresh-token family: the longest a grant lives without a new login.
    pub refresh_token_ttl: u64,
    /// Lifetime of an SSO session.
    pub session_ttl: u64,
    /// Who may register clients dynamically (RFC 7591).
    pub registration: RegistrationPolicy,
    /// The most a dynamically registered client may ask for.
    pub registration_scopes: Scope,
    /// Serve `/metrics` on the main port too (`--metrics-on-main-port`). Off by default:
    /// the metrics describe every user's logins, so they belong on `--metrics-listen`,
    /// inside the cluster.
    pub metrics_on_main_port: bool,
}

impl ProviderConfig {
    /// The issuer's path without a trailing slash, `""` at the root: the prefix of every
    /// URL the browser sees.
    pub fn path_prefix(&self) -> &str {
        let after_scheme = self.issuer.split_once("://").map_or("", |(_, rest)| rest);
        after_scheme.find('/').map_or("", |i| after_scheme[i..].trim_end_matches('/'))
    }

    /// The cookie path: the issuer's path, or `/`.
    pub fn base_path(&self) -> &str {
        match self.path_prefix() {
            "" => "/",
            prefix => prefix,
        }
    }

    /// Cookies are `Secure` whenever the issuer is https.
    pub fn secure_cookies(&self) -> bool {
        self.issuer.starts_with("https://")
    }

    /// A path on this provider as the browser sees it.
    pub fn browser_path(&self, path: &str) -> String {
        format!("{}{path}", self.path_prefix())
    }
}

/// The discovery document and the keyring it was built for.
struct Discovery {
    /// Held weakly, so the keyring can go; while it is here, no other keyring can take its
    /// address and pass for it.
    keyring: Weak<Keyring>,
    document: Bytes,
}

/// Shared state of every request.
pub struct Provider {
    pub config: ProviderConfig,
    pub store: Arc<dyn Store>,
    pub keys: SharedKeyring,
    pub clock: Clock,
    pub secrets: Arc<ClientSecretVerifier>,
    /// This provider's Prometheus registry.
    pub metrics: Arc<Metrics>,
    /// What `/ready` checks.
    pub readiness: Readiness,
    /// The store's data epoch as last seen (issued tokens carry it) and what `/ready`
    /// reports of the store beyond its answering.
    pub store_status: Arc<StoreStatus>,
    /// What every password check costs at least.
    pub(super) password_work: PasswordWork,
    /// The discovery document, serialized again whenever the keyring changes.
    discovery: ArcSwapOption<Discovery>,
    /// The key that seals pending authorization requests into the browser's forms.
    pub(super) sealer: Sealer,
    /// The upstreams' discovery documents, keys and HTTP clients.
    pub(super) upstreams: Connectors,
    /// The keys upstream credentials are sealed with in the store; without them none is
    /// kept, and a federated person's refresh family ends at its first re-check.
    pub(super) credential_keys: Option<Arc<CredentialKeys>>,
}

/// A key of this process only, for a store no other process shares (`dev`, tests); none
/// if the system's random source fails.
fn random_credential_keys() -> Option<Arc<CredentialKeys>> {
    let bytes: [u8; 32] = secrets::random_bytes(32).ok()?.try_into().ok()?;
    Some(Arc::new(CredentialKeys::random(&bytes)))
}

impl Provider {
    pub fn new(
        config: ProviderConfig,
        store: Arc<dyn Store>,
        keys: SharedKeyring,
        clock: Clock,
        store_status: Arc<StoreStatus>,
    ) -> Result<Self, serde_json::Error> {
        let metrics = Arc::new(Metrics::new());
        let store: Arc<dyn Store> = Arc::new(InstrumentedStore::new(store, &metrics));
        let readiness = Readiness::default();
        let provider = Self {
            config,
            store,
            keys,
            clock,
            secrets: Arc::default(),
            metrics,
            readiness,
            store_status,
            password_work: PasswordWork::default(),
            discovery: ArcSwapOption::empty(),
            sealer: Sealer::default(),
            upstreams: Connectors::default(),
            credential_keys: random_credential_keys(),
        };
        provider.discovery_document()?;
        Ok(provider)
    }

    /// Seals upstream credentials with `keys` (shared by every replica of a store) instead
    /// of this process's random key; `None` keeps no upstream credential at all.
    pub fn with_credential_keys(mut self, keys: Option<Arc<CredentialKeys>>) -> Self {
        self.credential_keys = keys;
        self
    }

    /// Makes `/ready` wait for a key watch (`serve --kubernetes`): not ready while `synced`
    /// is false. Without this, there is no watch to wait for.
    pub fn with_key_watch(mut self, synced: Arc<AtomicBool>) -> Self {
        self.readiness = Readiness::with_key_watch(synced);
        self
    }

    /// The discovery document of the current keyring (its ID token algorithm is the
    /// keyring's), serialized once per keyring.
    pub(super) fn discovery_document(&self) -> Result<Bytes, serde_json::Error> {
        let keyring = self.keys.load_full();
        if let Some(cached) = self.discovery.load().as_ref()
            && Weak::as_ptr(&cached.keyring) == Arc::as_ptr(&keyring)
        {
            return Ok(cached.document.clone());
        }
        let id_token_algorithm = keyring.signer(None).map(|key| key.algorithm());
        let registration = self.config.registration != RegistrationPolicy::Disabled;
        let metadata = discovery::metadata(&self.config.issuer, id_token_algorithm, registration);
        let document = Bytes::from(serde_json::to_vec(&metadata)?);
        self.discovery
            .store(Some(Arc::new(Discovery { keyring: Arc::downgrade(&keyring), document: document.clone() })));
        Ok(document)
    }

    /// The user a session, grant or token is for: a declared one, else a person signed in
    /// through a connector, while the store keeps them, with what an `OidcUser` claiming
    /// their identity adds (none while that user is disabled).
    pub(super) async fn user_by_subject(&self, subject: &str) -> Result<Option<Arc<UserRecord>>, StoreError> {
        if let Some(user) = self.store.user_by_subject(subject).await? {
            return Ok(Some(user));
        }
        let Some(federated) = self.store.federated_user(subject).await? else { return Ok(None) };
        let claimant = self.store.user_claiming(subject).await?;
        Ok(with_claimant(federated.user, claimant.as_deref()).ok().map(Arc::new))
    }

    /// What the access tokens issued now carry besides their grant's.
    pub(super) fn issuance<'a>(&'a self, epoch: &'a str) -> Issuance<'a> {
        Issuance { issuer: &self.config.issuer, default_ttl: self.config.access_token_ttl, epoch }
    }
}

#[cfg(test)]
impl Provider {
    /// A provider on an empty in-memory store, without keys, under a path-prefixed issuer.
    pub(super) fn for_tests() -> Self {
        use crate::keys::Keyring;
        use crate::store::MemoryStore;
        let config = ProviderConfig {
            issuer: "https://id.example/base".to_owned(),
            access_token_ttl: 60,
            refresh_token_ttl: 60,
            session_ttl: 60,
            registration: RegistrationPolicy::Disabled,
            registration_scopes: Scope::parse("openid").expect("a scope"),
            metrics_on_main_port: false,
        };
        let keys = Arc::new(arc_swap::ArcSwap::from_pointee(Keyring::new(Vec::new()).expect("a keyring")));
        let store = Arc::new(MemoryStore::new(Clock::system()));
        let status = Arc::new(StoreStatus::new("test-epoch".to_owned()));
        Provider::new(config, store, keys, Clock::system(), status).expect("a provider")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_policy_debug_redacts_the_initial_access_token() {
        let debug = format!("{:?}", RegistrationPolicy::Token("initial-token-value".into()));
        assert_eq!(debug, "Token(<redacted>)");
    }
}
