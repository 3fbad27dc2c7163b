//! `SigningKey`s: the key Secrets' lifecycle as [`rotation::plan_rotation`] decides it,
//! the public keys published to the store when they changed, and the status.
//!
//! The key Secrets are read live (a LIST by label) rather than from a cache: a rotation
//! must see its own writes of a moment ago, or it would generate or activate twice.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, Patch};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::context::{Context, ControllerError, object_key};
use super::key_secrets::{self, ACTIVATED_AT_ANNOTATION, PHASE_ANNOTATION, RETIRED_AT_ANNOTATION, SIGNING_KEY_LABEL};
use super::status::{apply_status, publish, report_unavailable};
use super::{create_params, patch_params};
use crate::audit::{self, AuditEvent, AuditFields};
use crate::controller::decide::{Note, NoteKind, Readiness, Reason, ready_condition, transition, with_readiness};
use crate::controller::reconcile;
use crate::controller::rotation::{self, KeyAction, RotationPolicy};
use crate::crd::{PublishedKey, SigningKey, SigningKeyStatus};
use crate::keys::{KeyError, KeyPair, KeyPhase};
use crate::secrets;
use crate::store::StoreError;

/// The kind, for metrics and keys.
pub const KIND: &str = "SigningKey";
/// Annotation on a `SigningKey` asking for a rotation now; any new value triggers one.
pub const ROTATE_ANNOTATION: &str = "portcullis.dev/rotate";
/// On an activated key Secret: the `portcullis.dev/rotate` value current at activation.
pub const ROTATION_REQUEST_ANNOTATION: &str = "portcullis.dev/rotation-request";

/// Reconciles one `SigningKey` (its Secrets are owned by it, so no finalizer is needed).
pub async fn reconcile(key: Arc<SigningKey>, context: Arc<Context>) -> Result<Action, ControllerError> {
    let started = Instant::now();
    let object = object_key(&*key);
    let api: Api<SigningKey> = Api::namespaced(context.shared.client.clone(), &context.shared.config.namespace);
    let result = match apply(&key, &api, &context).await {
        Err(ControllerError::Store(error)) => {
            report_unavailable(&api, &*key, key.status.as_ref(), &context).await;
            Err(error.into())
        }
        other => other,
    };
    context.finish(KIND, object, started, result.is_ok());
    result
}

fn rfc3339(seconds: u64) -> String {
    i64::try_from(seconds)
        .ok()
        .and_then(|s| Timestamp::from_second(s).ok())
        .map_or_else(|| seconds.to_string(), |t| t.to_string())
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

async fn apply(key: &SigningKey, api: &Api<SigningKey>, context: &Context) -> Result<Action, ControllerError> {
    let config = &context.shared.config;
    let secrets: Api<Secret> = Api::namespaced(context.shared.client.clone(), &config.namespace);
    let name = key.name_any();
    let previous = key.status.clone().unwrap_or_default();
    let generation = key.metadata.generation;
    let reference = key.object_ref(&());
    let plan = match reconcile::plan_signing_key(key) {
        Ok(plan) => plan,
        Err(error) => {
            let readiness = Readiness::not_ready(Reason::of(&error.problem), error.problem.to_string());
            let mut status = with_readiness(key.status.as_ref(), &readiness, generation, context.shared.clock.now());
            status.observed_generation = generation;
            apply_status(api, key, key.status.as_ref(), &status).await?;
            let notes: Vec<Note> = transition(&previous.conditions, &readiness).into_iter().collect();
            publish(context, &reference, &notes, "Reconcile").await;
            return Ok(context.requeue(crate::controller::decide::Requeue::AtResync));
        }
    };
    let policy = RotationPolicy {
        rotation_period: plan.rotation_period.as_secs(),
        publish_delay: config.key_publish_delay.as_secs(),
        retire_after: config.key_retire_after.as_secs(),
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
        let now = context.shared.clock.now();
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
                    secrets.create(&create_params(), &secret).await?;
                    tracing::info!(kid = %pair.kid(), phase = phase.as_str(), "generated a signing key");
                }
                KeyAction::Activate(secret_name) => {
                    // Whatever rotation request exists now is satisfied by this activation.
                    set_phase(&secrets, &secret_name, KeyPhase::Active, ACTIVATED_AT_ANNOTATION, now).await?;
                    if let Some(request) = &rotate_request {
                        let patch = json!({ "metadata": { "annotations": { ROTATION_REQUEST_ANNOTATION: request } } });
                        secrets.patch(&secret_name, &patch_params(), &Patch::Merge(patch)).await?;
                    }
                    let kid = kid_of(&listed, &secret_name);
                    audit::emit(
                        AuditEvent::KeyRotated,
                        AuditFields { kid: Some(kid.as_str()), ..AuditFields::default() },
                    );
                    let note =
                        Note { kind: NoteKind::Normal, reason: "KeyRotated", message: format!("key {kid} now signs") };
                    publish(context, &reference, &[note], "Rotate").await;
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
    let now = context.shared.clock.now();
    let readiness = match &active_kid {
        Some(kid) => Readiness::ready(format!("key {kid} signs")),
        None => Readiness::not_ready(Reason::NoActiveKey, "no key signs yet".into()),
    };
    let status = SigningKeyStatus {
        active_kid,
        next_rotation: plan_now.next_rotation.map(rfc3339),
        keys: published,
        rotation_request: handled_request,
        observed_generation: generation,
        conditions: vec![ready_condition(&previous.conditions, &readiness, generation, now)],
    };
    apply_status(api, key, key.status.as_ref(), &status).await?;
    let notes: Vec<Note> = transition(&previous.conditions, &readiness).into_iter().collect();
    publish(context, &reference, &notes, "Reconcile").await;
    let wait = Duration::from_secs(plan_now.next_check.saturating_sub(now).max(1));
    Ok(Action::requeue(wait.min(config.resync_period)))
}

/// Writes the JWKS and the active kids of every `SigningKey` of the namespace to the store
/// (each SigningKey's reconcile writes the union, so the last writer is always complete),
/// unless the store holds exactly that already.
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
    let store = &context.shared.store;
    let published = store.published_keys().await?;
    if published.is_some_and(|p| p.jwks == jwks && p.active_kids == active) {
        return Ok(());
    }
    store.publish_keys(&jwks, &active).await.map_err(StoreError::into)
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
    secrets.patch(name, &patch_params(), &Patch::Merge(patch)).await.map(|_| ())
}
