//! The connectors of a manifests folder: each `IdentityConnector` planned with the Secrets
//! it reads from the folder's by [`plan_connector`], as the controller plans it;
//! written when it changed (every one again after the store lost its data); and the
//! connectors the store holds that the folder no longer declares removed.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use kube::ResourceExt;

use super::{ApplyError, Change, Verb};
use crate::controller::decide::connector::plan_connector;
use crate::controller::manifests::{DEFAULT_NAMESPACE, ManifestSet, Origin};
use crate::controller::sweep::undeclared_names;
use crate::model::ConnectorRecord;
use crate::store::{Store, StoreError};

/// The folder's connectors by name. One that does not plan (its Secret missing, a bad
/// issuer…) fails the whole plan, as a user does, so the last good state stays in force.
pub fn plan(set: &ManifestSet) -> Result<BTreeMap<String, ConnectorRecord>, ApplyError> {
    let mut connectors = BTreeMap::new();
    let mut origins: HashMap<String, Origin> = HashMap::new();
    for located in &set.connectors {
        let connector = &located.resource;
        let namespace = connector.namespace().unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
        let secrets: Vec<_> = connector
            .secret_refs()
            .into_iter()
            .filter_map(|reference| set.secret(&namespace, &reference.name))
            .collect();
        let record = plan_connector(connector, &secrets).map_err(ApplyError::reconcile(&located.origin))?;
        let name = record.name.clone();
        if let Some(first) = origins.insert(name.clone(), located.origin.clone()) {
            return Err(ApplyError::DuplicateConnector { origin: located.origin.clone(), first, name });
        }
        connectors.insert(name, record);
    }
    Ok(connectors)
}

/// Writes the `planned` connectors that differ from the `applied` ones (every one when
/// `again`), removes the stored ones not planned, and names each change.
pub async fn apply(
    applied: &BTreeMap<String, ConnectorRecord>,
    planned: &BTreeMap<String, ConnectorRecord>,
    store: &dyn Store,
    again: bool,
) -> Result<Vec<Change>, StoreError> {
    let mut changes = Vec::new();
    for (name, record) in planned {
        let verb = match applied.get(name) {
            None => Some(Verb::Added),
            Some(before) if before != record => Some(Verb::Updated),
            Some(_) => None,
        };
        if verb.is_some() || again {
            store.put_connector(record.clone()).await?;
        }
        changes.extend(verb.map(|verb| Change::Connector(verb, name.clone())));
    }
    let declared: BTreeSet<&str> = planned.keys().map(String::as_str).collect();
    let mut removed: BTreeSet<String> =
        applied.keys().filter(|name| !declared.contains(name.as_str())).cloned().collect();
    let stored: Vec<String> = store.connectors().await?.into_iter().map(|connector| connector.name).collect();
    for name in undeclared_names(&declared, &stored) {
        store.delete_connector(name).await?;
        removed.insert(name.to_owned());
    }
    changes.extend(removed.into_iter().map(|name| Change::Connector(Verb::Removed, name)));
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arc_swap::ArcSwap;

    use super::super::Folder;
    use super::*;
    use crate::clock::Clock;
    use crate::keys::Keyring;
    use crate::model::Upstream;
    use crate::store::{Federation, MemoryStore};

    /// An `IdentityConnector` named `name` and, unless `with_secret` is false, the Secret
    /// holding its client secret.
    fn connector(name: &str, with_secret: bool) -> String {
        let resource = format!(
            "apiVersion: portcullis.dev/v1alpha1\nkind: IdentityConnector\nmetadata: {{name: {name}}}\nspec:\n  \
             type: oidc\n  displayName: {name} login\n  oidc:\n    issuer: https://{name}.example\n    \
             clientId: portcullis\n    clientSecretRef: {{name: {name}-oidc, key: clientSecret}}\n"
        );
        let secret = format!(
            "---\napiVersion: v1\nkind: Secret\nmetadata: {{name: {name}-oidc}}\nstringData: {{clientSecret: {name}-secret}}\n"
        );
        if with_secret { resource + &secret } else { resource }
    }

    fn set(documents: &[String]) -> ManifestSet {
        let files: Vec<(String, &str)> =
            documents.iter().enumerate().map(|(i, text)| (format!("{i}.yaml"), text.as_str())).collect();
        let files: Vec<(&str, &str)> = files.iter().map(|(name, text)| (name.as_str(), *text)).collect();
        ManifestSet::load_texts(&files).unwrap()
    }

    fn folder() -> Folder {
        Folder::new(Arc::new(ArcSwap::from_pointee(Keyring::new(Vec::new()).unwrap())), 60, Clock::system())
    }

    fn connector_changes(changes: &[Change]) -> Vec<Change> {
        changes.iter().filter(|change| matches!(change, Change::Connector(..))).cloned().collect()
    }

    async fn client_secret(store: &MemoryStore, name: &str) -> Option<String> {
        let record = store.connector(name).await.unwrap()?;
        match record.upstream {
            Upstream::Oidc(oidc) => Some(oidc.client_secret),
            Upstream::GitHub(github) => Some(github.client_secret),
            Upstream::Ldap(ldap) => ldap.service_account.map(|account| account.password),
        }
    }

    #[tokio::test]
    async fn a_declared_connector_is_written_with_its_secret_and_again_after_lost_data() {
        let store = MemoryStore::new(Clock::system());
        let mut folder = folder();
        let plan = folder.plan(&set(&[connector("corp", true)])).unwrap();
        let applied = folder.apply(plan, &store, true).await.unwrap();
        assert_eq!(connector_changes(&applied.changes), [Change::Connector(Verb::Added, "corp".into())]);
        assert_eq!(client_secret(&store, "corp").await.as_deref(), Some("corp-secret"));
        assert_eq!(store.connector("corp").await.unwrap().unwrap().display_name, "corp login");

        store.delete_connector("corp").await.unwrap();
        let plan = folder.plan(&set(&[connector("corp", true)])).unwrap();
        let applied = folder.apply(plan, &store, false).await.unwrap();
        assert!(connector_changes(&applied.changes).is_empty(), "unchanged: nothing to write");
        assert_eq!(store.connector("corp").await.unwrap(), None);
        let plan = folder.plan(&set(&[connector("corp", true)])).unwrap();
        folder.apply(plan, &store, true).await.unwrap();
        assert_eq!(client_secret(&store, "corp").await.as_deref(), Some("corp-secret"), "written again");
    }

    #[tokio::test]
    async fn a_connector_the_folder_no_longer_declares_is_swept_even_one_it_never_applied() {
        let store = MemoryStore::new(Clock::system());
        let mut folder = folder();
        let plan = folder.plan(&set(&[connector("corp", true), connector("old", true)])).unwrap();
        folder.apply(plan, &store, true).await.unwrap();
        let mut stray = store.connector("old").await.unwrap().unwrap();
        stray.name = "stray".into();
        store.put_connector(stray).await.unwrap();

        let plan = folder.plan(&set(&[connector("corp", true)])).unwrap();
        let applied = folder.apply(plan, &store, false).await.unwrap();
        assert_eq!(
            connector_changes(&applied.changes),
            [Change::Connector(Verb::Removed, "old".into()), Change::Connector(Verb::Removed, "stray".into())]
        );
        let names: Vec<String> = store.connectors().await.unwrap().into_iter().map(|c| c.name).collect();
        assert_eq!(names, ["corp"]);
    }

    #[tokio::test]
    async fn a_connector_that_does_not_plan_fails_the_folder_naming_its_document_and_nothing_is_applied() {
        let store = MemoryStore::new(Clock::system());
        let mut folder = folder();
        let plan = folder.plan(&set(&[connector("corp", true)])).unwrap();
        folder.apply(plan, &store, true).await.unwrap();

        let broken = set(&[connector("corp", true), connector("next", false)]);
        let error = folder.plan(&broken).err().unwrap();
        assert!(matches!(error, ApplyError::Reconcile { .. }), "{error}");
        let message = error.to_string();
        assert!(message.contains("1.yaml, document 1") && message.contains("next-oidc"), "{message}");
        assert_eq!(store.connector("next").await.unwrap(), None);
        assert!(store.connector("corp").await.unwrap().is_some(), "the last good state stays");
    }

    #[test]
    fn one_connector_name_in_two_namespaces_is_refused_naming_both_documents() {
        let twin = connector("corp", false).replace("metadata: {name: corp}", "metadata: {name: corp, namespace: b}");
        let twin_secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: corp-oidc, namespace: b}\n\
                           stringData: {clientSecret: x}\n"
            .to_owned();
        let error = folder().plan(&set(&[connector("corp", true), twin, twin_secret])).err().unwrap();
        assert!(matches!(error, ApplyError::DuplicateConnector { .. }), "{error}");
        let message = error.to_string();
        assert!(message.contains("1.yaml, document 1") && message.contains("0.yaml, document 1"), "{message}");
    }
}
