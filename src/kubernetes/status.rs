//! Writing what the decisions ask: the status, by server-side apply under [`MANAGER`]
//! (skipped when it would change nothing), and the events.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::MANAGER;
use super::context::{Context, ControllerError};
use crate::controller::decide::{
    Decision, Note, OwnedStatus, Readiness, Reason, status_unchanged, transition, with_readiness,
};

/// Ends the apply of `object` once the store side of its `decision` was carried out
/// (`carried_out`): the decision's status and events, and when to look again. A store that
/// did not answer is shown in the status instead (what the resource holds is unknown until
/// it answers) and retried.
pub async fn conclude<K, A, S>(
    api: &Api<K>,
    object: &K,
    current: Option<&S>,
    carried_out: Result<(), ControllerError>,
    decision: &Decision<A, S>,
    context: &Context,
) -> Result<Action, ControllerError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    S: OwnedStatus + Serialize,
{
    match carried_out {
        Ok(()) => {}
        Err(ControllerError::Store(error)) => {
            report_unavailable(api, object, current, context).await;
            return Err(error.into());
        }
        Err(error) => return Err(error),
    }
    apply_status(api, object, current, &decision.status).await?;
    publish(context, &object.object_ref(&()), &decision.events, "Reconcile").await;
    Ok(context.requeue(decision.requeue))
}

/// Applies `desired` as the status of `object`, unless `current` already says it all:
/// an unchanged resource costs no API write.
pub async fn apply_status<K, S>(api: &Api<K>, object: &K, current: Option<&S>, desired: &S) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    S: OwnedStatus + Serialize,
{
    if status_unchanged(current, desired) {
        return Ok(());
    }
    let body = json!({ "apiVersion": K::api_version(&()), "kind": K::kind(&()), "status": desired });
    api.patch_status(&object.name_any(), &PatchParams::apply(MANAGER).force(), &Patch::Apply(&body)).await.map(|_| ())
}

/// Shows `Ready=False`, reason `StoreUnavailable`, on a resource whose reconcile could not
/// reach the store; the fixed message keeps repeated failures from rewriting the status.
pub async fn report_unavailable<K, S>(api: &Api<K>, object: &K, current: Option<&S>, context: &Context)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    S: OwnedStatus + Serialize,
{
    let readiness = Readiness::not_ready(Reason::StoreUnavailable, "the store did not answer; retrying".into());
    let status = with_readiness(current, &readiness, object.meta().generation, context.shared.clock.now());
    if let Err(error) = apply_status(api, object, current, &status).await {
        tracing::warn!(%error, "reporting the store as unavailable in the status");
    }
    let notes: Vec<Note> =
        transition(current.map(OwnedStatus::conditions).unwrap_or_default(), &readiness).into_iter().collect();
    publish(context, &object.object_ref(&()), &notes, "Reconcile").await;
}

/// Publishes the events of a decision about `reference`; a failure is logged, not fatal.
pub async fn publish(context: &Context, reference: &ObjectReference, notes: &[Note], action: &str) {
    for note in notes {
        if let Err(error) = context.shared.events.publish(note, reference, action).await {
            tracing::warn!(%error, reason = note.reason, "publishing an Event");
        }
    }
}
