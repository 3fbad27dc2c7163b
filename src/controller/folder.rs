//! Applying a manifests folder to a store, through the same reconcile functions the
//! Kubernetes controller uses. Used by `portcullis dev`.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kube::ResourceExt;
use zeroize::Zeroizing;

use super::manifests::{DEFAULT_NAMESPACE, ManifestSet, Origin};
use super::reconcile::{self, GeneratedCredentials, ReconcileError};
use crate::keys::{KeyError, KeyPair, KeyPhase, Keyring};
use crate::store::{Store, StoreError};
use crate::vocabulary::SigningAlgorithm;

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
        let mut record = plan.record;
        if let (Some(new), Some(hash)) = (plan.generated, record.secret_hash.as_deref()) {
            // Replicas applying the same folder agree on the first generated secret.
            let kept = store.claim(&format!("client-secret:{}", record.client_id), hash).await?;
            if kept == hash {
                generated.push(new);
            } else {
                tracing::info!(client_id = %record.client_id, "using the client secret generated earlier");
                record.secret_hash = Some(kept);
            }
        }
        store.put_client(record).await?;
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
        let key = &located.resource;
        let plan = reconcile::plan_signing_key(key)
            .map_err(|source| ApplyError::Reconcile { origin: located.origin.clone(), source })?;
        let namespace = key.namespace().unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
        let name =
            format!("signing-key:{namespace}/{}:{}:{}", key.name_any(), plan.algorithm, plan.rsa_bits.unwrap_or(0));
        let pair = shared_key(store, &name, plan.algorithm, plan.rsa_bits)
            .await
            .map_err(|source| ApplyError::Key { origin: located.origin.clone(), source })?;
        keys.push((pair, KeyPhase::Active));
    }
    if keys.is_empty() {
        tracing::info!("no SigningKey in the manifests; using a default RS256 key");
        let pair = shared_key(store, "signing-key:default:RS256", SigningAlgorithm::RS256, None)
            .await
            .map_err(ApplyError::DefaultKey)?;
        keys.push((pair, KeyPhase::Active));
    }
    let keyring = Keyring::new(keys).map_err(ApplyError::DefaultKey)?;
    Ok(Applied { generated, keyring })
}

/// A key pair every replica sharing the store agrees on: the first replica's generated key
/// is kept in the store (as base64 PKCS#8) and the others load it. With the memory store
/// this is simply a new key.
async fn shared_key(
    store: &dyn Store,
    name: &str,
    algorithm: SigningAlgorithm,
    rsa_bits: Option<u32>,
) -> Result<KeyPair, KeyError> {
    let (candidate, pkcs8) = KeyPair::generate(algorithm, rsa_bits)?;
    let encoded = Zeroizing::new(STANDARD.encode(&pkcs8));
    let kept = Zeroizing::new(store.claim(name, &encoded).await.map_err(|e| KeyError::Store(e.to_string()))?);
    if kept == encoded {
        return Ok(candidate);
    }
    let pkcs8 = Zeroizing::new(STANDARD.decode(kept.as_bytes()).map_err(|_| KeyError::InvalidPrivateKey(algorithm))?);
    KeyPair::from_pkcs8(algorithm, &pkcs8)
}
