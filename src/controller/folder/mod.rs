//! Applying a manifests folder to a store, through the same reconcile functions the
//! Kubernetes controller uses: at start-up, on every change of the folder, and again
//! whenever the store lost its data ([`crate::controller::replica`] decides when).
//!
//! A folder is validated whole ([`Folder::plan`]) before anything is written, so an edit
//! that fails leaves the last good state in force; then every declared client and user is
//! written and what the folder no longer declares is swept from the store ([`super::sweep`]),
//! renamed ids included; a disabled or removed user's sessions and grants end with it, and
//! so do those of a user with a new `portcullis.dev/revoke-sessions` annotation value
//! ([`super::ending`]; the values acted on are kept in memory, so a process that starts
//! with the annotation in the folder acts on it once more). [`connectors`] writes and
//! sweeps the upstream identity providers, [`keys`] keeps the signing keys.

mod connectors;
mod keys;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use kube::ResourceExt;

use self::keys::{KeyChange, KeyPlan, Keys};
use super::ending::{REVOKE_SESSIONS_ANNOTATION, end_users, revocation_to_handle, subjects_to_end};
use super::manifests::{DEFAULT_NAMESPACE, ManifestError, ManifestSet, Origin};
use super::reconcile::{self, GeneratedCredentials, ReconcileError};
use super::sweep::{undeclared_clients, undeclared_names};
use crate::clock::Clock;
use crate::keys::{KeyError, SharedKeyring};
use crate::model::{ClientRecord, ConnectorRecord, UserRecord};
use crate::protocol::federation::federated_subject;
use crate::secrets::{self, token_digest};
use crate::store::{Store, StoreError, ending};

/// Why a folder could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Manifests(Box<ManifestError>),
    #[error("{origin}: {source}")]
    Reconcile { origin: Origin, source: Box<ReconcileError> },
    #[error("{origin}: client id `{client_id}` is already used by {first}")]
    DuplicateClientId { origin: Origin, first: Origin, client_id: String },
    #[error("{origin}: username `{username}` is already used by {first}")]
    DuplicateUsername { origin: Origin, first: Origin, username: String },
    #[error("{origin}: the identity `{subject}` of connector `{connector}` is already claimed by {first}")]
    DuplicateFederatedIdentity { origin: Origin, first: Origin, connector: String, subject: String },
    #[error("{origin}: connector `{name}` is already declared by {first}")]
    DuplicateConnector { origin: Origin, first: Origin, name: String },
    #[error("{origin}: {source}")]
    Key { origin: Origin, source: KeyError },
    #[error("{origin}: field `spec.privateKeySecretRef`: {problem}")]
    PrivateKey { origin: Origin, problem: String },
    #[error("the signing keys: {0}")]
    Keyring(KeyError),
    #[error("{origin}: cannot compare the resource with the last applied one: {source}")]
    Fingerprint { origin: Origin, source: serde_json::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no random value to claim a revoke-sessions annotation with: {0}")]
    Random(secrets::SecretError),
}

impl From<ManifestError> for ApplyError {
    fn from(error: ManifestError) -> Self {
        Self::Manifests(Box::new(error))
    }
}

impl ApplyError {
    /// A resource of `origin` that does not reconcile.
    fn reconcile(origin: &Origin) -> impl FnOnce(ReconcileError) -> Self {
        move |source| Self::Reconcile { origin: origin.clone(), source: Box::new(source) }
    }
}

/// One change the folder made, logged as one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Client(Verb, String),
    User(Verb, String),
    Connector(Verb, String),
    Key(KeyChange),
}

/// What happened to a declared resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Added,
    Updated,
    Removed,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verb = |verb: &Verb| match verb {
            Verb::Added => "added",
            Verb::Updated => "updated",
            Verb::Removed => "removed",
        };
        match self {
            Change::Client(v, id) => write!(f, "client {} {id}", verb(v)),
            Change::User(v, name) => write!(f, "user {} {name}", verb(v)),
            Change::Connector(v, name) => write!(f, "connector {} {name}", verb(v)),
            Change::Key(change) => write!(f, "{change}"),
        }
    }
}

/// A declared client as planned: the record to write, and what it was planned from.
#[derive(Clone)]
struct DeclaredClient {
    /// Digest of the resource and its Secret: an unchanged input keeps its record, so a
    /// secret is not hashed again (nor a generated one generated again) on every change.
    input: String,
    record: ClientRecord,
    /// The client secret was generated: claimed in the store under this name, so every
    /// replica (and a re-apply after lost data) keeps the first one.
    claim: Option<String>,
    /// Generated by this plan, to be shown if this replica's claim wins.
    generated: Option<GeneratedCredentials>,
}

/// A validated folder, nothing written yet.
pub struct Plan {
    clients: BTreeMap<String, DeclaredClient>,
    users: BTreeMap<String, UserRecord>,
    /// The `portcullis.dev/revoke-sessions` value of each user that has one, by username.
    revocations: BTreeMap<String, String>,
    connectors: BTreeMap<String, ConnectorRecord>,
    keys: Vec<KeyPlan>,
}

/// The folder as last applied, and the keys it signs with.
pub struct Folder {
    clients: BTreeMap<String, DeclaredClient>,
    /// As applied: stamped with their `updated_at`.
    users: BTreeMap<String, UserRecord>,
    /// The `portcullis.dev/revoke-sessions` values seen handled, by username, so that a
    /// look asks the store about each value once.
    revocations_handled: BTreeMap<String, String>,
    /// This process's claim to handle a `revoke-sessions` value (see
    /// [`Folder::first_to_revoke`]), made at the first value it sees.
    revocation_claim: Option<String>,
    connectors: BTreeMap<String, ConnectorRecord>,
    keys: Keys,
    clock: Clock,
}

/// What applying produced besides the store's contents.
pub struct Applied {
    /// Secrets generated for confidential clients whose Secret holds none, and kept.
    pub generated: Vec<GeneratedCredentials>,
    /// Every change, in the order made.
    pub changes: Vec<Change>,
}

impl Folder {
    /// Nothing applied yet; `keys_retire_after` is how long a key this replica stops
    /// signing with keeps verifying (the longest token lifetime), in seconds.
    pub fn new(keyring: SharedKeyring, keys_retire_after: u64, clock: Clock) -> Self {
        Self {
            clients: BTreeMap::new(),
            users: BTreeMap::new(),
            revocations_handled: BTreeMap::new(),
            revocation_claim: None,
            connectors: BTreeMap::new(),
            keys: Keys::new(keyring, keys_retire_after, clock.clone()),
            clock,
        }
    }

    /// Whether this process acts on `value` of `username`'s `revoke-sessions` annotation:
    /// a claim in the store, shared by every replica reading the folder and outliving each,
    /// names the process that acts on it, so a second replica or a restart does not end
    /// the sessions made since all over again. The claim is this process's for its whole
    /// life, so an ending that failed is redone by the next look.
    async fn first_to_revoke(&mut self, store: &dyn Store, username: &str, value: &str) -> Result<bool, ApplyError> {
        let mine = match &self.revocation_claim {
            Some(mine) => mine.clone(),
            None => self.revocation_claim.insert(secrets::random_token(16).map_err(ApplyError::Random)?).clone(),
        };
        let name = format!("revoke-sessions:{}", token_digest(&format!("{username}\0{value}")));
        Ok(store.claim(&name, &mine).await? == mine)
    }

    /// Validates a whole set: every resource reconciles, ids, usernames and connector
    /// names are unique, keys parse. Unchanged clients keep their records from the last apply.
    pub fn plan(&self, set: &ManifestSet) -> Result<Plan, ApplyError> {
        let mut clients = BTreeMap::new();
        let mut origins: HashMap<String, Origin> = HashMap::new();
        // Found by input, not by client id: an unchanged resource keeps its record (and its
        // hash) even when the id it declares moved; one map, so a reload stays linear.
        let applied: HashMap<&str, &DeclaredClient> =
            self.clients.values().map(|declared| (declared.input.as_str(), declared)).collect();
        for located in &set.clients {
            let client = &located.resource;
            let namespace = client.namespace().unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
            let secret = set.secret(&namespace, &reconcile::credentials_secret_name(client));
            let input = fingerprint(&(client, secret))
                .map_err(|source| ApplyError::Fingerprint { origin: located.origin.clone(), source })?;
            let declared = match applied.get(input.as_str()) {
                Some(unchanged) => DeclaredClient { generated: None, ..(*unchanged).clone() },
                None => {
                    let plan =
                        reconcile::plan_client(client, secret).map_err(ApplyError::reconcile(&located.origin))?;
                    let claim = plan.generated.as_ref().map(|g| format!("client-secret:{}", g.client_id));
                    DeclaredClient { input, record: plan.record, claim, generated: plan.generated }
                }
            };
            let client_id = declared.record.client_id.clone();
            if let Some(first) = origins.insert(client_id.clone(), located.origin.clone()) {
                return Err(ApplyError::DuplicateClientId { origin: located.origin.clone(), first, client_id });
            }
            clients.insert(client_id, declared);
        }

        let mut users = BTreeMap::new();
        let mut revocations = BTreeMap::new();
        let mut origins: HashMap<String, Origin> = HashMap::new();
        let mut claimants: HashMap<String, Origin> = HashMap::new();
        for located in &set.users {
            let user = &located.resource;
            let namespace = user.namespace().unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
            let secret =
                user.spec.password_secret_ref.as_ref().and_then(|reference| set.secret(&namespace, &reference.name));
            let record = reconcile::plan_user(user, secret).map_err(ApplyError::reconcile(&located.origin))?;
            let username = record.username.clone();
            if let Some(first) = origins.insert(username.clone(), located.origin.clone()) {
                return Err(ApplyError::DuplicateUsername { origin: located.origin.clone(), first, username });
            }
            // Which user's roles an identity gets must not depend on the order of the files.
            for identity in &user.spec.federated_identities {
                let subject = federated_subject(&identity.connector, &identity.subject);
                if let Some(first) = claimants.insert(subject, located.origin.clone()) {
                    return Err(ApplyError::DuplicateFederatedIdentity {
                        origin: located.origin.clone(),
                        first,
                        connector: identity.connector.clone(),
                        subject: identity.subject.clone(),
                    });
                }
            }
            if let Some(value) = user.annotations().get(REVOKE_SESSIONS_ANNOTATION) {
                revocations.insert(username.clone(), value.clone());
            }
            users.insert(username, record);
        }

        Ok(Plan { clients, users, revocations, connectors: connectors::plan(set)?, keys: self.keys.plan(set)? })
    }

    /// Writes a validated plan and sweeps what it no longer declares. `again` writes every
    /// record, also the unchanged ones: after the store lost its data.
    pub async fn apply(&mut self, plan: Plan, store: &dyn Store, again: bool) -> Result<Applied, ApplyError> {
        let mut applied = Applied { generated: Vec::new(), changes: Vec::new() };
        let mut clients = plan.clients;
        for declared in clients.values_mut() {
            let previous = self.clients.get(&declared.record.client_id);
            let verb = match previous {
                None => Some(Verb::Added),
                Some(previous) if previous.input != declared.input => Some(Verb::Updated),
                Some(_) => None,
            };
            if verb.is_none() && !again {
                continue;
            }
            if let (Some(name), Some(hash)) = (&declared.claim, declared.record.secret_hash.clone()) {
                let kept = store.claim(name, &hash).await?;
                match declared.generated.take() {
                    Some(generated) if kept == hash => applied.generated.push(generated),
                    _ => declared.record.secret_hash = Some(kept),
                }
            }
            store.put_client(declared.record.clone()).await?;
            if let Some(verb) = verb {
                applied.changes.push(Change::Client(verb, declared.record.client_id.clone()));
            }
        }
        let declared: BTreeSet<&str> = clients.keys().map(String::as_str).collect();
        let mut removed: BTreeSet<String> =
            self.clients.keys().filter(|id| !declared.contains(id.as_str())).cloned().collect();
        let stored = store.client_ids().await?;
        for client_id in undeclared_clients(&declared, &stored) {
            ending::remove_client(store, client_id).await?;
            removed.insert(client_id.to_owned());
        }
        applied.changes.extend(removed.into_iter().map(|id| Change::Client(Verb::Removed, id)));

        let mut users = BTreeMap::new();
        let now = self.clock.now();
        for (username, planned) in plan.users {
            let applied_before = self.users.get(&username);
            let stored = match applied_before {
                Some(_) => None,
                None => store.user_by_username(&username).await?,
            };
            let previous = applied_before.or(stored.as_deref());
            let record = reconcile::stamp_updated_at(planned, previous, now);
            let verb = match applied_before {
                None => Some(Verb::Added),
                Some(applied) if *applied != record => Some(Verb::Updated),
                Some(_) => None,
            };
            if verb.is_some() || again {
                store.put_user(record.clone()).await?;
            }
            end_users(store, &subjects_to_end(Some(&record), previous), now, "user disabled or its subject changed")
                .await?;
            if let Some(verb) = verb {
                applied.changes.push(Change::User(verb, username.clone()));
            }
            users.insert(username, record);
        }
        let declared: BTreeSet<&str> = users.keys().map(String::as_str).collect();
        let mut removed: BTreeSet<String> =
            self.users.keys().filter(|name| !declared.contains(name.as_str())).cloned().collect();
        let stored = store.usernames().await?;
        for username in undeclared_names(&declared, &stored) {
            let gone = store.user_by_username(username).await?;
            store.delete_user(username).await?;
            end_users(store, &subjects_to_end(None, gone.as_deref()), now, "user no longer declared").await?;
            removed.insert(username.to_owned());
        }
        applied.changes.extend(removed.into_iter().map(|name| Change::User(Verb::Removed, name)));
        for (username, value) in &plan.revocations {
            let handled = self.revocations_handled.get(username).map(String::as_str);
            if revocation_to_handle(Some(value), handled).is_some()
                && let Some(record) = users.get(username)
            {
                if self.first_to_revoke(store, username, value).await? {
                    end_users(store, &[&record.subject], now, REVOKE_SESSIONS_ANNOTATION).await?;
                }
                self.revocations_handled.insert(username.clone(), value.clone());
            }
        }
        self.revocations_handled.retain(|username, _| plan.revocations.contains_key(username));
        applied.changes.extend(connectors::apply(&self.connectors, &plan.connectors, store, again).await?);

        self.clients = clients;
        self.users = users;
        self.connectors = plan.connectors;
        let key_changes = self.keys.apply(plan.keys, store, again).await?;
        applied.changes.extend(key_changes.into_iter().map(Change::Key));
        Ok(applied)
    }

    /// Reads the keys other replicas keep and publish, and adopts theirs where they differ
    /// from ours: run periodically, so replicas never sign with different keys for long.
    pub async fn sync_keys(&mut self, store: &dyn Store) -> Result<Vec<Change>, ApplyError> {
        Ok(self.keys.sync(store).await?.into_iter().map(Change::Key).collect())
    }

    /// The longest any access token or ID token issued now can live, in seconds: how long
    /// a key we stop signing with must keep verifying.
    pub fn longest_token_lifetime(default_ttl: u64) -> u64 {
        default_ttl.max(reconcile::MAX_ACCESS_TOKEN_LIFETIME.as_secs())
    }
}

/// A digest of what a resource was planned from (the Secret's values included, so only
/// their hash is kept).
fn fingerprint(input: &impl serde::Serialize) -> Result<String, serde_json::Error> {
    Ok(token_digest(&serde_json::to_string(input)?))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arc_swap::ArcSwap;

    use super::*;
    use crate::keys::Keyring;
    use crate::model::{ClientRecord, Grant, Session};
    use crate::store::{Directory, Ephemeral, Grants, MemoryStore, SessionEnds, UserIndex};
    use crate::vocabulary::Scope;

    fn public_client(name: &str, client_name: &str) -> String {
        format!(
            "apiVersion: portcullis.dev/v1alpha1\nkind: OidcClient\nmetadata: {{name: {name}}}\nspec:\n  \
             clientName: {client_name}\n  tokenEndpointAuthMethod: none\n  redirectUris: [\"https://app.example/cb\"]\n"
        )
    }

    fn set(clients: &[(&str, &str)]) -> ManifestSet {
        let texts: Vec<String> = clients.iter().map(|(name, client_name)| public_client(name, client_name)).collect();
        let files: Vec<(String, &str)> =
            texts.iter().enumerate().map(|(i, text)| (format!("{i}.yaml"), text.as_str())).collect();
        let files: Vec<(&str, &str)> = files.iter().map(|(name, text)| (name.as_str(), *text)).collect();
        ManifestSet::load_texts(&files).unwrap()
    }

    fn folder() -> Folder {
        let keyring = Arc::new(ArcSwap::from_pointee(Keyring::new(Vec::new()).unwrap()));
        Folder::new(keyring, 60, Clock::system())
    }

    fn client_changes(applied: &Applied) -> Vec<Change> {
        applied.changes.iter().filter(|change| matches!(change, Change::Client(..))).cloned().collect()
    }

    fn client(verb: Verb, id: &str) -> Change {
        Change::Client(verb, id.to_owned())
    }

    #[tokio::test]
    async fn each_change_is_named_and_what_is_no_longer_declared_is_swept_but_registered_clients_stay() {
        let store = MemoryStore::new(Clock::system());
        store.put_client(ClientRecord::fixture("dcr_registered", &[], "openid")).await.unwrap();
        let mut folder = folder();
        let first = folder.plan(&set(&[("a", "A"), ("b", "B")])).unwrap();
        let applied = folder.apply(first, &store, true).await.unwrap();
        assert_eq!(client_changes(&applied), [client(Verb::Added, "a"), client(Verb::Added, "b")]);

        let second = folder.plan(&set(&[("a", "A, renamed"), ("c", "C")])).unwrap();
        let applied = folder.apply(second, &store, false).await.unwrap();
        assert_eq!(
            client_changes(&applied),
            [client(Verb::Updated, "a"), client(Verb::Added, "c"), client(Verb::Removed, "b")]
        );
        assert_eq!(store.client_ids().await.unwrap(), ["a", "c", "dcr_registered"]);

        let unchanged = folder.plan(&set(&[("a", "A, renamed"), ("c", "C")])).unwrap();
        assert!(client_changes(&folder.apply(unchanged, &store, false).await.unwrap()).is_empty());
    }

    #[tokio::test]
    async fn a_client_removed_while_nothing_ran_is_swept_at_start_up() {
        let store = MemoryStore::new(Clock::system());
        let mut before = folder();
        let plan = before.plan(&set(&[("a", "A"), ("gone", "Gone")])).unwrap();
        before.apply(plan, &store, true).await.unwrap();
        let mut restarted = folder();
        let plan = restarted.plan(&set(&[("a", "A")])).unwrap();
        let applied = restarted.apply(plan, &store, true).await.unwrap();
        assert!(client_changes(&applied).contains(&client(Verb::Removed, "gone")));
        assert_eq!(store.client_ids().await.unwrap(), ["a"]);
    }

    #[tokio::test]
    async fn a_client_removed_from_the_folder_loses_its_grants_and_consents() {
        let store = MemoryStore::new(Clock::system());
        let mut folder = folder();
        let plan = folder.plan(&set(&[("a", "A"), ("b", "B")])).unwrap();
        folder.apply(plan, &store, true).await.unwrap();
        let now = Clock::system().now();
        let scope = Scope::parse("openid").unwrap();
        for client_id in ["a", "b"] {
            let grant = Grant {
                id: format!("grant-{client_id}"),
                client_id: client_id.into(),
                subject: "alice".into(),
                scope: scope.clone(),
                auth_time: now,
                session_id: "sid".into(),
                expires_at: now + 600,
                access_tokens: vec![(format!("jti-{client_id}"), now + 300)],
                claims: Default::default(),
            };
            store.put_grant(&grant).await.unwrap();
            store.put_consent("alice", client_id, &scope, now + 600).await.unwrap();
        }
        let plan = folder.plan(&set(&[("a", "A")])).unwrap();
        folder.apply(plan, &store, false).await.unwrap();
        assert_eq!(store.grant("grant-b").await.unwrap(), None, "the removed client's grant is revoked");
        assert!(store.token_check("jti-b").await.unwrap().revoked, "and its access token denied");
        assert_eq!(store.consent("alice", "b").await.unwrap(), None, "its consent is deleted");
        assert!(store.grant("grant-a").await.unwrap().is_some(), "the client still declared keeps its grant");
        assert_eq!(store.consent("alice", "a").await.unwrap(), Some(scope));
    }

    fn users(names: &[(&str, &str)]) -> ManifestSet {
        let hash = crate::controller::decide::fixtures::PASSWORD_HASH;
        let texts: Vec<String> = names
            .iter()
            .map(|(username, name)| {
                format!(
                    "apiVersion: portcullis.dev/v1alpha1\nkind: OidcUser\nmetadata: {{name: {username}}}\nspec:\n  \
                     username: {username}\n  name: {name}\n  passwordSecretRef: {{name: {username}-pw, key: hash}}\n\
                     ---\napiVersion: v1\nkind: Secret\nmetadata: {{name: {username}-pw}}\nstringData: {{hash: \"{hash}\"}}\n"
                )
            })
            .collect();
        let files: Vec<(String, &str)> =
            texts.iter().enumerate().map(|(i, text)| (format!("{i}.yaml"), text.as_str())).collect();
        let files: Vec<(&str, &str)> = files.iter().map(|(name, text)| (name.as_str(), *text)).collect();
        ManifestSet::load_texts(&files).unwrap()
    }

    async fn updated_at(store: &MemoryStore, username: &str) -> Option<u64> {
        store.user_by_username(username).await.unwrap().unwrap().profile.updated_at
    }

    #[tokio::test]
    async fn oidc_core_5_1_updated_at_is_the_time_a_users_claims_last_changed_in_the_folder() {
        let now = Arc::new(std::sync::atomic::AtomicU64::new(1_000));
        let clock = Clock::manual(now.clone());
        let store = MemoryStore::new(clock.clone());
        let keyring = || Arc::new(ArcSwap::from_pointee(Keyring::new(Vec::new()).unwrap()));
        let mut folder = Folder::new(keyring(), 60, clock.clone());
        let plan = folder.plan(&users(&[("ann", "Ann"), ("bob", "Bob")])).unwrap();
        folder.apply(plan, &store, true).await.unwrap();
        assert_eq!((updated_at(&store, "ann").await, updated_at(&store, "bob").await), (Some(1_000), Some(1_000)));

        now.store(2_000, std::sync::atomic::Ordering::SeqCst);
        let plan = folder.plan(&users(&[("ann", "Ann Changed"), ("bob", "Bob")])).unwrap();
        let applied = folder.apply(plan, &store, false).await.unwrap();
        assert_eq!(applied.changes, [Change::User(Verb::Updated, "ann".into())], "bob is not rewritten");
        assert_eq!((updated_at(&store, "ann").await, updated_at(&store, "bob").await), (Some(2_000), Some(1_000)));

        now.store(3_000, std::sync::atomic::Ordering::SeqCst);
        let mut restarted = Folder::new(keyring(), 60, clock);
        let plan = restarted.plan(&users(&[("ann", "Ann Changed"), ("bob", "Bob")])).unwrap();
        restarted.apply(plan, &store, true).await.unwrap();
        assert_eq!(
            (updated_at(&store, "ann").await, updated_at(&store, "bob").await),
            (Some(2_000), Some(1_000)),
            "a restart (or another replica) keeps the stored times"
        );
    }

    /// A session of `subject` (named by `tag`) with an offline grant in it, as a sign-in
    /// and a code exchange leave them.
    async fn signed_in(store: &MemoryStore, subject: &str, tag: &str, now: u64) {
        let sid = format!("sid-{subject}-{tag}");
        let session = Session {
            id: format!("cookie-{sid}"),
            sid: sid.clone(),
            subject: subject.into(),
            auth_time: now,
            csrf_token: "c".into(),
        };
        store.put_session(&session, now + 600).await.unwrap();
        let grant = Grant {
            id: format!("grant-{sid}"),
            client_id: "app".into(),
            subject: subject.into(),
            scope: Scope::parse("openid offline_access").unwrap(),
            auth_time: now,
            session_id: sid.clone(),
            expires_at: now + 600,
            access_tokens: vec![(format!("jti-{subject}"), now + 300)],
            claims: Default::default(),
        };
        store.put_grant(&grant).await.unwrap();
        assert!(store.link_session_grant(&sid, &grant.id, "app", now + 600).await.unwrap());
    }

    /// Whether `subject` holds a session or grant still.
    async fn holds_something(store: &MemoryStore, subject: &str) -> bool {
        !store.user_sessions(subject).await.unwrap().is_empty() || !store.user_grants(subject).await.unwrap().is_empty()
    }

    #[tokio::test]
    async fn a_user_disabled_in_the_folder_or_removed_from_it_loses_every_session_and_grant() {
        let now = Arc::new(std::sync::atomic::AtomicU64::new(1_000));
        let clock = Clock::manual(now.clone());
        let store = MemoryStore::new(clock.clone());
        let keyring = Arc::new(ArcSwap::from_pointee(Keyring::new(Vec::new()).unwrap()));
        let mut folder = Folder::new(keyring, 60, clock);
        let plan = folder.plan(&users(&[("ann", "Ann"), ("bob", "Bob"), ("cat", "Cat")])).unwrap();
        folder.apply(plan, &store, true).await.unwrap();
        for subject in ["ann", "bob", "cat"] {
            signed_in(&store, subject, "first", 1_000).await;
        }

        // `users` writes the name on a line of its own, so this adds `disabled` to ann.
        let plan = folder.plan(&users(&[("ann", "Ann\n  disabled: true"), ("bob", "Bob")])).unwrap();
        folder.apply(plan, &store, false).await.unwrap();
        assert!(store.user_by_username("ann").await.unwrap().is_some_and(|ann| ann.disabled));
        assert!(!holds_something(&store, "ann").await, "disabled: the offline grant goes too");
        assert!(store.token_check("jti-ann").await.unwrap().revoked);
        assert!(store.session("cookie-sid-ann-first").await.unwrap().is_none());
        assert!(!holds_something(&store, "cat").await, "no longer declared");
        assert!(holds_something(&store, "bob").await, "the others keep theirs");

        let plan = folder.plan(&users(&[("ann", "Ann"), ("bob", "Bob")])).unwrap();
        folder.apply(plan, &store, false).await.unwrap();
        assert!(!holds_something(&store, "ann").await, "enabled again, with nothing back");
        assert!(holds_something(&store, "bob").await);
    }

    /// `users` with `portcullis.dev/revoke-sessions: <value>` on ann.
    fn users_with_revocation(value: &str) -> ManifestSet {
        let hash = crate::controller::decide::fixtures::PASSWORD_HASH;
        let text = format!(
            "apiVersion: portcullis.dev/v1alpha1\nkind: OidcUser\nmetadata:\n  name: ann\n  annotations:\n    \
             portcullis.dev/revoke-sessions: \"{value}\"\nspec:\n  username: ann\n  \
             passwordSecretRef: {{name: ann-pw, key: hash}}\n---\napiVersion: v1\nkind: Secret\n\
             metadata: {{name: ann-pw}}\nstringData: {{hash: \"{hash}\"}}\n"
        );
        ManifestSet::load_texts(&[("ann.yaml", text.as_str())]).unwrap()
    }

    #[tokio::test]
    async fn each_revoke_sessions_value_in_the_folder_ends_the_users_sessions_once() {
        let store = MemoryStore::new(Clock::system());
        let now = Clock::system().now();
        let mut folder = folder();
        let plan = folder.plan(&users(&[("ann", "Ann")])).unwrap();
        folder.apply(plan, &store, true).await.unwrap();
        signed_in(&store, "ann", "first", now).await;

        let plan = folder.plan(&users_with_revocation("first")).unwrap();
        folder.apply(plan, &store, false).await.unwrap();
        assert!(!holds_something(&store, "ann").await, "the first value ends everything");
        assert!(store.user_by_username("ann").await.unwrap().is_some_and(|ann| !ann.disabled), "ann may sign in");

        signed_in(&store, "ann", "second", now).await;
        let plan = folder.plan(&users_with_revocation("first")).unwrap();
        folder.apply(plan, &store, true).await.unwrap();
        assert!(holds_something(&store, "ann").await, "a value is acted on once, even when all is written again");

        let plan = folder.plan(&users_with_revocation("second")).unwrap();
        folder.apply(plan, &store, false).await.unwrap();
        assert!(!holds_something(&store, "ann").await, "a new value acts again");
    }

    /// A second replica reading the same folder, or this one restarted, finds the value
    /// handled in the store: the sessions made since it was handled stay.
    #[tokio::test]
    async fn a_revoke_sessions_value_handled_by_one_process_is_not_acted_on_by_the_next() {
        let store = MemoryStore::new(Clock::system());
        let now = Clock::system().now();
        let mut first = folder();
        let plan = first.plan(&users_with_revocation("once")).unwrap();
        first.apply(plan, &store, true).await.unwrap();
        signed_in(&store, "ann", "after", now).await;

        let mut restarted = folder();
        let plan = restarted.plan(&users_with_revocation("once")).unwrap();
        restarted.apply(plan, &store, true).await.unwrap();
        assert!(holds_something(&store, "ann").await, "handled before this process started");

        let plan = restarted.plan(&users_with_revocation("twice")).unwrap();
        restarted.apply(plan, &store, false).await.unwrap();
        assert!(!holds_something(&store, "ann").await, "a new value is acted on by whoever sees it first");
        signed_in(&store, "ann", "after-twice", now).await;
        let plan = first.plan(&users_with_revocation("twice")).unwrap();
        first.apply(plan, &store, false).await.unwrap();
        assert!(holds_something(&store, "ann").await, "and by nobody else");
    }

    #[test]
    fn two_users_claiming_one_upstream_identity_are_refused_naming_both_documents() {
        let claiming = |name: &str, subject: &str| {
            format!(
                "apiVersion: portcullis.dev/v1alpha1\nkind: OidcUser\nmetadata: {{name: {name}}}\n\
                 spec:\n  username: {name}\n  federatedIdentities: [{{connector: corp, subject: {subject}}}]\n"
            )
        };
        let distinct = format!("{}---\n{}", claiming("a", "jane"), claiming("b", "bob"));
        let set = ManifestSet::load_texts(&[("users.yaml", distinct.as_str())]).unwrap();
        assert!(folder().plan(&set).is_ok(), "one identity each");
        let twice = format!("{}---\n{}", claiming("a", "jane"), claiming("b", "jane"));
        let set = ManifestSet::load_texts(&[("users.yaml", twice.as_str())]).unwrap();
        let error = folder().plan(&set).err().unwrap();
        assert!(matches!(error, ApplyError::DuplicateFederatedIdentity { .. }), "{error}");
        let message = error.to_string();
        assert!(message.contains("users.yaml, document 2") && message.contains("users.yaml, document 1"), "{message}");
        assert!(message.contains("`jane` of connector `corp`"), "{message}");
    }

    #[test]
    fn two_clients_with_one_id_are_refused_naming_both_documents() {
        let duplicate = format!("{}---\n{}", public_client("a", "A"), public_client("b", "B"))
            .replace("clientName: B", "clientName: B\n  clientId: a");
        let set = ManifestSet::load_texts(&[("dup.yaml", duplicate.as_str())]).unwrap();
        let error = folder().plan(&set).err().unwrap();
        assert!(matches!(error, ApplyError::DuplicateClientId { .. }));
        let message = error.to_string();
        assert!(message.contains("dup.yaml, document 2") && message.contains("dup.yaml, document 1"), "{message}");
    }
}
