//! Applying a manifests folder to a store, through the same reconcile functions the
//! Kubernetes controller uses. Used by `portcullis dev`.

use std::collections::HashMap;

use kube::ResourceExt;

use super::manifests::{DEFAULT_NAMESPACE, ManifestSet, Origin};
use super::reconcile::{self, GeneratedCredentials, ReconcileError};
use crate::crd::SigningAlgorithm;
use crate::keys::{KeyError, KeyPair, KeyPhase, Keyring};
use crate::store::{Store, StoreError};

/// Why a folder could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{origin}: {source}")]
    Reconcile { origin: Origin, source: ReconcileError },
    #[error("{origin}: client id `{client_id}` is already used by {first}")]
    DuplicateClientId { origin: Origin, first: Origin, client_id: String },
    #[error("{origin}: username `{username}` is already used by {first}")]
    DuplicateUsername { origin: Origin, first: Origin, username: String },
    #[error("{origin}: {source}")]
    Key { origin: Origin, source: KeyError },
    #[error("generating the default signing key: {0}")]
    DefaultKey(KeyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What applying a folder produced besides the store's contents.
#[derive(Debug)]
pub struct Applied {
    /// Secrets generated for confidential clients whose Secret holds none.
    pub generated: Vec<GeneratedCredentials>,
    /// The signing keys, one active key per `SigningKey` (an RS256 key when there is none).
    pub keyring: Keyring,
}

/// Reconciles every resource of the set into the store and builds the keyring.
pub async fn apply(set: &ManifestSet, store: &dyn Store) -> Result<Applied, ApplyError> {
    let mut generated = Vec::new();
    let mut client_ids: HashMap<String, Origin> = HashMap::new();
    for located in &set.clients {
        let client = &located.resource;
        let namespace = client.namespace().unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
        let secret = set.secret(&namespace, &reconcile::credentials_secret_name(client));
        let plan = reconcile::plan_client(client, secret)
            .map_err(|source| ApplyError::Reconcile { origin: located.origin.clone(), source })?;
        if let Some(first) = client_ids.insert(plan.record.client_id.clone(), located.origin.clone()) {
            return Err(ApplyError::DuplicateClientId {
                origin: located.origin.clone(),
                first,
                client_id: plan.record.client_id,
            });
        }
        generated.extend(plan.generated);
        store.put_client(plan.record).await?;
    }

    let mut usernames: HashMap<String, Origin> = HashMap::new();
    for located in &set.users {
        let user = &located.resource;
        let namespace = user.namespace().unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
        let secret = set.secret(&namespace, &user.spec.password_secret_ref.name);
        let record = reconcile::plan_user(user, secret)
            .map_err(|source| ApplyError::Reconcile { origin: located.origin.clone(), source })?;
        if let Some(first) = usernames.insert(record.username.clone(), located.origin.clone()) {
            return Err(ApplyError::DuplicateUsername {
                origin: located.origin.clone(),
                first,
                username: record.username,
            });
        }
        store.put_user(record).await?;
    }

    let mut keys = Vec::new();
    for located in &set.signing_keys {
        let plan = reconcile::plan_signing_key(&located.resource)
            .map_err(|source| ApplyError::Reconcile { origin: located.origin.clone(), source })?;
        let (pair, _) = KeyPair::generate(plan.algorithm, plan.rsa_bits)
            .map_err(|source| ApplyError::Key { origin: located.origin.clone(), source })?;
        keys.push((pair, KeyPhase::Active));
    }
    if keys.is_empty() {
        tracing::info!("no SigningKey in the manifests; generating an RS256 key for this run");
        let (pair, _) = KeyPair::generate(SigningAlgorithm::RS256, None).map_err(ApplyError::DefaultKey)?;
        keys.push((pair, KeyPhase::Active));
    }
    let keyring = Keyring::new(keys).map_err(ApplyError::DefaultKey)?;
    Ok(Applied { generated, keyring })
}
