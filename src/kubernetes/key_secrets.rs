//! How a signing key lives in a Secret, shared by the controller (which writes them) and
//! `serve --kubernetes` (which watches them and swaps its keyring).
//!
//! A key Secret carries the label [`SIGNING_KEY_LABEL`] (value: the `SigningKey`'s name),
//! the PKCS#8 DER private key under [`PRIVATE_KEY`] and its lifecycle in annotations.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use futures::StreamExt;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::{WatchStreamExt, reflector, watcher};

use kube::{Api, Client, ResourceExt};
use tokio::sync::watch;

use crate::controller::rotation::KeyState;
use crate::keys::{KeyPair, KeyPhase, Keyring, SharedKeyring};
use crate::vocabulary::SigningAlgorithm;

/// Label on every key Secret; its value is the owning `SigningKey`'s name.
pub const SIGNING_KEY_LABEL: &str = "portcullis.dev/signing-key";
/// Secret data key of the PKCS#8 (DER) private key.
pub const PRIVATE_KEY: &str = "private.pk8";
pub const PHASE_ANNOTATION: &str = "portcullis.dev/phase";
pub const ALGORITHM_ANNOTATION: &str = "portcullis.dev/algorithm";
pub const KID_ANNOTATION: &str = "portcullis.dev/kid";
pub const CREATED_AT_ANNOTATION: &str = "portcullis.dev/created-at";
pub const ACTIVATED_AT_ANNOTATION: &str = "portcullis.dev/activated-at";
pub const RETIRED_AT_ANNOTATION: &str = "portcullis.dev/retired-at";

/// Why a Secret is not a usable key.
#[derive(Debug, thiserror::Error)]
pub enum KeySecretError {
    #[error("Secret {0}: annotation {1} is missing or invalid")]
    Annotation(String, &'static str),
    #[error("Secret {0}: no `{PRIVATE_KEY}` data")]
    NoKey(String),
    #[error("Secret {0}: {1}")]
    Key(String, crate::keys::KeyError),
}

/// The lifecycle state recorded on a key Secret.
pub fn key_state(secret: &Secret) -> Result<(KeyState, SigningAlgorithm), KeySecretError> {
    let name = secret.name_any();
    let annotations = secret.annotations();
    let get = |key: &'static str| annotations.get(key).map(String::as_str);
    let time = |key: &'static str| {
        get(key).map(|v| v.parse::<u64>().map_err(|_| KeySecretError::Annotation(name.clone(), key)))
    };
    let phase: KeyPhase = get(PHASE_ANNOTATION)
        .and_then(|value| value.parse().ok())
        .ok_or_else(|| KeySecretError::Annotation(name.clone(), PHASE_ANNOTATION))?;
    let algorithm: SigningAlgorithm = get(ALGORITHM_ANNOTATION)
        .and_then(|value| value.parse().ok())
        .ok_or_else(|| KeySecretError::Annotation(name.clone(), ALGORITHM_ANNOTATION))?;
    let created_at = time(CREATED_AT_ANNOTATION)
        .ok_or_else(|| KeySecretError::Annotation(name.clone(), CREATED_AT_ANNOTATION))??;
    let activated_at = time(ACTIVATED_AT_ANNOTATION).transpose()?;
    let retired_at = time(RETIRED_AT_ANNOTATION).transpose()?;
    Ok((KeyState { name, phase, created_at, activated_at, retired_at }, algorithm))
}

/// Parses the key pair held by a key Secret, with its phase.
pub fn key_pair(secret: &Secret) -> Result<(KeyPair, KeyPhase), KeySecretError> {
    let (state, algorithm) = key_state(secret)?;
    let der = secret
        .data
        .as_ref()
        .and_then(|d| d.get(PRIVATE_KEY))
        .ok_or_else(|| KeySecretError::NoKey(state.name.clone()))?;
    let pair = KeyPair::from_pkcs8(algorithm, &der.0).map_err(|e| KeySecretError::Key(state.name.clone(), e))?;
    Ok((pair, state.phase))
}

/// A new key Secret (without owner; the controller adds one).
pub fn new_key_secret(
    signing_key: &str,
    name: String,
    pair: &KeyPair,
    pkcs8: Vec<u8>,
    phase: KeyPhase,
    now: u64,
) -> Secret {
    let mut annotations = BTreeMap::from([
        (PHASE_ANNOTATION.to_owned(), phase.as_str().to_owned()),
        (ALGORITHM_ANNOTATION.to_owned(), pair.algorithm().as_str().to_owned()),
        (KID_ANNOTATION.to_owned(), pair.kid().to_owned()),
        (CREATED_AT_ANNOTATION.to_owned(), now.to_string()),
    ]);
    if phase == KeyPhase::Active {
        annotations.insert(ACTIVATED_AT_ANNOTATION.to_owned(), now.to_string());
    }
    let mut secret = Secret {
        data: Some(BTreeMap::from([(PRIVATE_KEY.to_owned(), ByteString(pkcs8))])),
        type_: Some("Opaque".into()),
        ..Default::default()
    };
    secret.metadata.name = Some(name);
    secret.metadata.labels = Some(BTreeMap::from([(SIGNING_KEY_LABEL.to_owned(), signing_key.to_owned())]));
    secret.metadata.annotations = Some(annotations);
    secret
}

/// Builds a keyring from key Secrets, skipping (and logging) unusable ones. `None` when no
/// key is active: the provider keeps its current keyring rather than stop signing.
pub fn keyring_from_secrets<'a>(secrets: impl IntoIterator<Item = &'a Secret>) -> Option<Keyring> {
    let mut keys = Vec::new();
    let mut created = Vec::new();
    for secret in secrets {
        match key_pair(secret).and_then(|key| Ok((key, key_state(secret)?.0.created_at))) {
            Ok(((pair, phase), created_at)) => {
                created.push((pair.kid().to_owned(), created_at));
                keys.push((pair, phase));
            }
            Err(error) => tracing::warn!(%error, "ignoring an unusable signing-key Secret"),
        }
    }
    if !keys.iter().any(|(_, phase)| *phase == KeyPhase::Active) {
        return None;
    }
    match Keyring::new(keys) {
        // The key-age metric then counts from the key's creation, not from this process's start.
        Ok(keyring) => Some(created.iter().fold(keyring, |keyring, (kid, at)| keyring.with_created_at(kid, *at))),
        Err(error) => {
            tracing::warn!(%error, "cannot build a keyring from the signing-key Secrets");
            None
        }
    }
}

/// The provider's view of the key Secrets: the keyring it signs with, swapped on every
/// change, and whether the watch has delivered a usable key set yet (for `/ready`).
#[derive(Clone)]
pub struct KeyWatch {
    pub keyring: SharedKeyring,
    /// `true` once the Secrets were listed and held an active key; stays `true`.
    pub synced: Arc<AtomicBool>,
    /// Receives the same as `synced`, for whoever wants to await it.
    pub synced_rx: watch::Receiver<bool>,
}

/// Watches the labelled Secrets of `namespace` and waits for the first usable key set,
/// then keeps swapping the keyring in the background. Needs only get/list/watch on Secrets.
pub async fn watch_signing_keys(client: Client, namespace: &str) -> KeyWatch {
    let api: Api<Secret> = Api::namespaced(client, namespace);
    let (reader, writer) = reflector::store();
    let config = watcher::Config::default().labels(SIGNING_KEY_LABEL);
    // One item per settled view of the Secrets: after the initial list and after each change.
    let mut events = Box::pin(watcher(api, config).default_backoff().reflect(writer).filter_map(|event| async move {
        match event {
            Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => None,
            Ok(_) => Some(()),
            Err(error) => {
                tracing::warn!(%error, "watching signing-key Secrets");
                None
            }
        }
    }));
    let synced = Arc::new(AtomicBool::new(false));
    let (synced_tx, synced_rx) = watch::channel(false);
    let namespace = namespace.to_owned();
    let first = loop {
        if events.next().await.is_none() {
            // The watcher stream never ends while its task is alive; stay unready.
            std::future::pending::<()>().await;
        }
        if let Some(keyring) = keyring_from_secrets(reader.state().iter().map(AsRef::as_ref)) {
            break keyring;
        }
        tracing::info!(%namespace, "waiting for an active signing key Secret (labelled {SIGNING_KEY_LABEL})");
    };
    let keyring: SharedKeyring = Arc::new(ArcSwap::from_pointee(first));
    synced.store(true, Ordering::SeqCst);
    let _ = synced_tx.send(true);
    let shared = Arc::clone(&keyring);
    tokio::spawn(async move {
        let mut current: Vec<String> = Vec::new();
        while events.next().await.is_some() {
            let secrets = reader.state();
            let mut versions: Vec<String> = secrets
                .iter()
                .map(|s| format!("{}@{}", s.name_any(), s.resource_version().unwrap_or_default()))
                .collect();
            versions.sort();
            if versions == current {
                continue;
            }
            if let Some(keyring) = keyring_from_secrets(secrets.iter().map(AsRef::as_ref)) {
                tracing::info!(keys = versions.len(), "signing keys changed; keyring swapped");
                shared.store(Arc::new(keyring));
                current = versions;
            }
        }
        drop(synced_tx);
    });
    KeyWatch { keyring, synced, synced_rx }
}
