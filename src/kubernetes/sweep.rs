//! The sweep of the controller world: the clients, users and connectors the store holds that no
//! resource declares any more (deleted or renamed while no reconcile saw it, or with the
//! finalizer stripped by hand) are removed, by the rules of [`crate::controller::sweep`]
//! that the manifests folder follows too. The leader runs it once its reflectors listed,
//! then at every resync.
//!
//! Declared means applied: an id a resource's status records, or one a reconcile of this
//! process remembered before writing it. The store is listed first and the declared ids
//! are read after, so an id written in between is already remembered.

use std::collections::BTreeSet;
use std::sync::Arc;

use kube::Resource;

use super::context::{Context, Memo, object_key};
use super::{clients, connectors, users};
use crate::audit::{self, AuditEvent, AuditFields};
use crate::controller::decide::claim::Claimant;
use crate::controller::sweep::{undeclared_clients, undeclared_names};
use crate::store::{StoreError, ending};

/// What one sweep removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub clients: Vec<String>,
    pub users: Vec<String>,
    pub connectors: Vec<String>,
}

impl Swept {
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty() && self.users.is_empty() && self.connectors.is_empty()
    }
}

/// Removes every stored client, user and connector that no watched resource declares.
pub async fn sweep(context: &Context) -> Result<Swept, StoreError> {
    let store = &context.shared.store;
    let memo = &context.shared.memo;
    let stored_clients = store.client_ids().await?;
    let stored_users = store.usernames().await?;
    let stored_connectors: Vec<String> = store.connectors().await?.into_iter().map(|c| c.name).collect();

    let declared_clients = declared(memo, clients::KIND, &context.all_clients().await);
    let declared_users = declared(memo, users::KIND, &context.all_users().await);
    let declared_connectors = declared(memo, connectors::KIND, &context.all_connectors().await);

    let mut swept = Swept::default();
    for client_id in undeclared_clients(&borrowed(&declared_clients), &stored_clients) {
        ending::remove_client(&**store, client_id).await?;
        audit::emit(AuditEvent::ClientDeleted, AuditFields::client(client_id));
        tracing::info!(%client_id, "swept a client no resource declares");
        swept.clients.push(client_id.to_owned());
    }
    for username in undeclared_names(&borrowed(&declared_users), &stored_users) {
        store.delete_user(username).await?;
        tracing::info!(%username, "swept a user no resource declares");
        swept.users.push(username.to_owned());
    }
    for name in undeclared_names(&borrowed(&declared_connectors), &stored_connectors) {
        store.delete_connector(name).await?;
        tracing::info!(%name, "swept a connector no resource declares");
        swept.connectors.push(name.to_owned());
    }
    Ok(swept)
}

/// The names the `resources` of `kind` declare: the ones their statuses record and the
/// ones remembered as applied, after forgetting the resources no longer present.
fn declared<K: Claimant + Resource<DynamicType = ()>>(
    memo: &Memo,
    kind: &str,
    resources: &[Arc<K>],
) -> BTreeSet<String> {
    memo.retain(kind, &resources.iter().map(|resource| object_key(&**resource)).collect());
    let mut names = memo.ids(kind);
    names.extend(resources.iter().filter_map(|resource| resource.applied().map(str::to_owned)));
    names
}

fn borrowed(ids: &BTreeSet<String>) -> BTreeSet<&str> {
    ids.iter().map(String::as_str).collect()
}
