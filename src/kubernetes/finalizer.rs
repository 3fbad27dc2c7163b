//! The finalizer that makes a deletion wait until the store no longer holds what the
//! resource applied, in the flow of kube-runtime's `finalizer` helper — add it before the
//! first apply, clean up then remove it once the resource is deleting — with the
//! controller's field manager on its writes, which that helper does not let one set.
//!
//! Each write is a merge patch of the whole finalizer list carrying the resourceVersion it
//! was computed from, so a concurrent change to the list fails with 409 (and is retried)
//! instead of being overwritten.

use std::future::Future;
use std::sync::Arc;

use kube::api::{Api, Patch};
use kube::runtime::controller::Action;
pub use kube::runtime::finalizer::Event;
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;

use super::context::ControllerError;
use super::patch_params;

/// The finalizer on every `OidcClient`, `OidcUser` and `IdentityConnector`.
pub const FINALIZER: &str = "portcullis.dev/cleanup";

/// Runs `reconcile` with [`Event::Apply`] once the finalizer is in place, or with
/// [`Event::Cleanup`] when the resource is deleting, removing the finalizer after a
/// successful cleanup.
pub async fn finalizer<K, F, Fut>(api: &Api<K>, object: Arc<K>, reconcile: F) -> Result<Action, ControllerError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    F: FnOnce(Event<K>) -> Fut,
    Fut: Future<Output = Result<Action, ControllerError>>,
{
    let present = object.finalizers().iter().any(|f| f == FINALIZER);
    let deleting = object.meta().deletion_timestamp.is_some();
    match (present, deleting) {
        (true, false) => reconcile(Event::Apply(object)).await,
        (true, true) => {
            let remaining: Vec<&String> = object.finalizers().iter().filter(|f| *f != FINALIZER).collect();
            let patch = finalizers_patch(&*object, &remaining);
            let action = reconcile(Event::Cleanup(Arc::clone(&object))).await?;
            api.patch(&object.name_any(), &patch_params(), &Patch::Merge(patch))
                .await
                .map_err(ControllerError::RemoveFinalizer)?;
            Ok(action)
        }
        (false, false) => {
            let mut finalizers: Vec<&String> = object.finalizers().iter().collect();
            let ours = FINALIZER.to_owned();
            finalizers.push(&ours);
            let patch = finalizers_patch(&*object, &finalizers);
            api.patch(&object.name_any(), &patch_params(), &Patch::Merge(patch))
                .await
                .map_err(ControllerError::AddFinalizer)?;
            // The patch itself brings the resource back to be applied.
            Ok(Action::await_change())
        }
        (false, true) => Ok(Action::await_change()),
    }
}

fn finalizers_patch<K: Resource>(object: &K, finalizers: &[&String]) -> serde_json::Value {
    json!({ "metadata": { "finalizers": finalizers, "resourceVersion": object.resource_version() } })
}
