//! Writing what the decisions ask: the status, by server-side apply under [`MANAGER`]
//! (skipped when it would change nothing), and the events.

use std::sync::atomic::{AtomicU64, Ordering};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::context::Context;
use super::{MANAGER, create_params};
use crate::controller::decide::{
    Note, NoteKind, OwnedStatus, Readiness, Reason, status_unchanged, transition, with_readiness,
};

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

/// Creates `events.k8s.io/v1` Events for the controller, one per note.
///
/// Not kube's `Recorder`: to count repeats it keeps every Event of the last six minutes
/// and scans them all at each publish, which at a start-up that reconciles 10,000 resources
/// is tens of megabytes and a scan per Event. The decisions publish on transitions only, so
/// a repeat is rare, and it is an Event of its own.
pub struct Events {
    client: Client,
    /// `reportingController` and `reportingInstance`.
    controller: String,
    instance: String,
    /// Makes the names of Events made in the same nanosecond differ.
    sequence: AtomicU64,
}

impl Events {
    pub fn new(client: Client, instance: String) -> Self {
        Self { client, controller: MANAGER.to_owned(), instance, sequence: AtomicU64::new(0) }
    }

    async fn publish(&self, note: &Note, reference: &ObjectReference, action: &str) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        let about = reference.name.as_deref().unwrap_or(&self.controller);
        let event = K8sEvent {
            action: Some(action.to_owned()),
            reason: Some(note.reason.to_owned()),
            note: Some(note.message.clone()),
            type_: Some(match note.kind {
                NoteKind::Normal => "Normal".to_owned(),
                NoteKind::Warning => "Warning".to_owned(),
            }),
            event_time: Some(MicroTime(now)),
            regarding: Some(reference.clone()),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            metadata: ObjectMeta {
                namespace: reference.namespace.clone(),
                name: Some(format!("{about}.{:x}{sequence:x}", now.as_nanosecond())),
                ..ObjectMeta::default()
            },
            ..K8sEvent::default()
        };
        let namespace = reference.namespace.as_deref().unwrap_or("default");
        Api::<K8sEvent>::namespaced(self.client.clone(), namespace).create(&create_params(), &event).await.map(|_| ())
    }
}
