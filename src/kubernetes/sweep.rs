//! The sweep of the controller world: the clients and users the store holds that no
//! resource declares any more (deleted or renamed while no reconcile saw it, or with the
//! finalizer stripped by hand) are removed, by the rules of [`crate::controller::sweep`]
//! that the manifests folder follows too. The leader runs it once its reflectors listed,
//! then at every resync.
//!
//! Declared means applied: an id a resource's status records, or one a reconcile of this
//! process remembered before writing it. The store is listed first and the declared ids
//! are read after, so an id written in between is already remembered.

use std::collections::BTreeSet;

use super::context::{Context, object_key};
use super::{clients, users};
use crate::audit::{self, AuditEvent, AuditFields};
use crate::controller::decide::claim::Claimant;
use crate::controller::sweep::{undeclared_clients, undeclared_names};
use crate::store::{StoreError, ending};

/// What one sweep removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub clients: Vec<String>,
    pub users: Vec<String>,
}

/// Removes every stored client and user that no watched resource declares.
pub async fn sweep(context: &Context) -> Result<Swept, StoreError> {
    let store = &context.shared.store;
    let memo = &context.shared.memo;
    let stored_clients = store.client_ids().await?;
    let stored_users = store.usernames().await?;

    let clients = context.all_clients().await;
    memo.retain(clients::KIND, &clients.iter().map(|c| object_key(&**c)).collect());
    let mut declared_clients = memo.ids(clients::KIND);
    declared_clients.extend(clients.iter().filter_map(|c| c.applied().map(str::to_owned)));
    let users = context.all_users().await;
    memo.retain(users::KIND, &users.iter().map(|u| object_key(&**u)).collect());
    let mut declared_users = memo.ids(users::KIND);
    declared_users.extend(users.iter().filter_map(|u| u.applied().map(str::to_owned)));

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
    Ok(swept)
}

fn borrowed(ids: &BTreeSet<String>) -> BTreeSet<&str> {
    ids.iter().map(String::as_str).collect()
}
