//! The controller's Events (`kubectl describe`), one per note of a decision.

use std::sync::atomic::{AtomicU64, Ordering};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::Api;

use super::{MANAGER, create_params};
use crate::controller::decide::{Note, NoteKind};

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

    pub async fn publish(&self, note: &Note, reference: &ObjectReference, action: &str) -> Result<(), kube::Error> {
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
