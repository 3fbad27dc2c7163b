//! `IdentityConnector`s (in the watched namespaces, like the clients): reads the Secrets
//! it names (a client secret; a directory's service account and CA) and the connectors of the same name, asks [`decide_connector`] what to
//! do and does exactly that — remove the name it no longer holds, write the record only
//! when the stored one differs (or the store lost its data), then status and events. A
//! deleted connector's record goes with it, unless another namespace's connector holds
//! the name.

use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::reflector::Store as Reflector;

use super::context::{Context, ControllerError, object_key};
use super::finalizer::{Event, finalizer};
use super::index::{Index, secret_key, secret_readers};
use super::status::conclude;
use crate::controller::decide::connector::{ConnectorDecision, connector_cleanup, decide_connector};
use crate::crd::IdentityConnector;

/// The kind, for metrics and keys.
pub const KIND: &str = "IdentityConnector";

/// Reconciles one `IdentityConnector`: the finalizer, then [`apply`] or [`cleanup`].
pub async fn reconcile(connector: Arc<IdentityConnector>, context: Arc<Context>) -> Result<Action, ControllerError> {
    let started = Instant::now();
    let key = object_key(&*connector);
    let api: Api<IdentityConnector> = Api::namespaced(context.shared.client.clone(), &namespace(&connector, &context));
    let result = finalizer(&api, connector, |event| async {
        match event {
            Event::Apply(connector) => apply(&connector, &api, &context).await,
            Event::Cleanup(connector) => cleanup(&connector, &context).await,
        }
    })
    .await;
    context.finish(KIND, key, started, result.is_ok());
    result
}

fn namespace(connector: &IdentityConnector, context: &Context) -> String {
    connector.namespace().unwrap_or_else(|| context.shared.config.namespace.clone())
}

async fn apply(
    connector: &IdentityConnector,
    api: &Api<IdentityConnector>,
    context: &Context,
) -> Result<Action, ControllerError> {
    let mut names: Vec<&str> = connector.secret_refs().into_iter().map(|reference| reference.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let mut found = Vec::with_capacity(names.len());
    for name in names {
        found.extend(context.connector_secret(&namespace(connector, context), name).await);
    }
    let secrets: Vec<&Secret> = found.iter().map(AsRef::as_ref).collect();
    let peers = context.connectors_concerning(&[connector.name_any()]).await;
    let decision = decide_connector(connector, &secrets, &peers, context.shared.clock.now());
    let carried_out = carry_out(connector, &decision, context).await;
    conclude(api, connector, connector.status.as_ref(), carried_out, &decision, context).await
}

/// Carries out the store side of a decision.
async fn carry_out(
    connector: &IdentityConnector,
    decision: &ConnectorDecision,
    context: &Context,
) -> Result<(), ControllerError> {
    let shared = &context.shared;
    let key = object_key(connector);
    for name in &decision.delete {
        shared.store.delete_connector(name).await?;
        tracing::info!(%name, connector = %key, "removed a connector the resource no longer holds");
    }
    let Some(record) = &decision.apply else {
        shared.memo.forget(&key);
        return Ok(());
    };
    let stored = shared.store.connector(&record.name).await?;
    if context.applying(key, &record.name, None, stored.as_ref(), record) {
        shared.store.put_connector(record.clone()).await?;
    }
    Ok(())
}

/// Removes the connector's record unless a connector of another namespace holds the name.
async fn cleanup(connector: &IdentityConnector, context: &Context) -> Result<Action, ControllerError> {
    let peers = context.connectors_concerning(&[connector.name_any()]).await;
    for name in connector_cleanup(connector, &peers) {
        context.shared.store.delete_connector(&name).await?;
    }
    context.shared.memo.forget(&object_key(connector));
    Ok(Action::await_change())
}

/// The keys a connector is indexed under for the Secret watch: the Secrets it reads.
pub fn secret_keys(connector: &IdentityConnector) -> Vec<String> {
    let namespace = connector.namespace();
    let mut keys: Vec<String> = connector
        .secret_refs()
        .into_iter()
        .map(|reference| secret_key(namespace.as_deref(), &reference.name))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// The `IdentityConnector`s reading `secret`, for the Secret watch.
pub fn owners_of(
    secret: &Secret,
    index: &Index<IdentityConnector>,
    connectors: &Reflector<IdentityConnector>,
) -> Vec<Arc<IdentityConnector>> {
    secret_readers(secret, index, connectors, |connector, name| {
        connector.secret_refs().iter().any(|reference| reference.name == name)
    })
}
