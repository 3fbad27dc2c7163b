//! `IdentityConnector`s: a connector with its client secret's Secret is `Ready` and its
//! record is in Redis (and back after a flush), a missing Secret is reported until it
//! appears, deleting the connector removes its record, and a resync of an unchanged
//! connector writes nothing.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use portcullis::crd::IdentityConnector;
use portcullis::model::Upstream;
use portcullis::store::Federation;
use serde_json::json;

use crate::harness::*;

/// An `oidc` connector whose client secret is key `clientSecret` of the Secret `corp-oidc`.
fn identity_connector(name: &str) -> IdentityConnector {
    serde_json::from_value(json!({
        "apiVersion": "portcullis.dev/v1alpha1", "kind": "IdentityConnector",
        "metadata": { "name": name, "namespace": NAMESPACE },
        "spec": {
            "type": "oidc", "displayName": "Corp",
            "oidc": { "issuer": "https://login.corp.example/v2.0", "clientId": "portcullis",
                      "clientSecretRef": { "name": "corp-oidc", "key": "clientSecret" } },
        },
    }))
    .unwrap()
}

async fn stored_client_secret(cluster: &Cluster, name: &str) -> Option<String> {
    match cluster.store.connector(name).await.unwrap()?.upstream {
        Upstream::Oidc(oidc) => Some(oidc.client_secret),
        Upstream::GitHub(github) => Some(github.client_secret),
        Upstream::Ldap(ldap) => ldap.service_account.map(|account| account.password),
    }
}

/// An `ldap` connector reading its service account's DN from Secret `ldap-dn` and its
/// password from Secret `ldap-password`.
fn ldap_connector(name: &str) -> IdentityConnector {
    serde_json::from_value(json!({
        "apiVersion": "portcullis.dev/v1alpha1", "kind": "IdentityConnector",
        "metadata": { "name": name, "namespace": NAMESPACE },
        "spec": {
            "type": "ldap",
            "ldap": { "host": "ldaps://ldap.corp.example", "startTLS": false,
                      "bindDNSecretRef": { "name": "ldap-dn", "key": "dn" },
                      "bindPasswordSecretRef": { "name": "ldap-password", "key": "password" },
                      "userSearch": { "baseDN": "ou=people,dc=corp,dc=example", "username": "uid" } },
        },
    }))
    .unwrap()
}

/// A connector reading two Secrets waits for both, and a change to either reaches its record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ldap_connector_reads_both_its_secrets_and_follows_a_change_to_the_second() {
    let cluster = Cluster::start("t-connector-ldap").await;
    let replica = Replica::start(&cluster, "replica-a").await;
    cluster.create_secret("ldap-dn", &[("dn", "cn=portcullis,dc=corp,dc=example")]).await;
    let connectors: Api<IdentityConnector> = cluster.api();
    connectors.create(&PostParams::default(), &ldap_connector("corp-ldap")).await.unwrap();
    let object = wait_ready(&cluster, "identityconnectors", "corp-ldap", ("False", "SecretMissing")).await;
    let message = object["status"]["conditions"][0]["message"].as_str().unwrap_or_default().to_owned();
    assert!(message.contains("ldap-password"), "{message}");

    cluster.create_secret("ldap-password", &[("password", "bind-1")]).await;
    wait_ready(&cluster, "identityconnectors", "corp-ldap", ("True", "Reconciled")).await;
    assert_eq!(stored_client_secret(&cluster, "corp-ldap").await.as_deref(), Some("bind-1"));
    let secrets: Api<Secret> = cluster.api();
    let patch = json!({ "stringData": { "password": "bind-2" } });
    secrets.patch("ldap-password", &PatchParams::default(), &Patch::Merge(patch)).await.unwrap();
    eventually("the new bind password is stored", WAIT, || async {
        (stored_client_secret(&cluster, "corp-ldap").await.as_deref() == Some("bind-2")).then_some(())
    })
    .await;
    replica.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_with_its_secret_is_ready_stored_restored_after_a_flush_and_removed_when_deleted() {
    let cluster = Cluster::start("t-connector").await;
    let replica = Replica::start(&cluster, "replica-a").await;
    cluster.create_secret("corp-oidc", &[("clientSecret", "upstream-secret")]).await;
    let connectors: Api<IdentityConnector> = cluster.api();
    connectors.create(&PostParams::default(), &identity_connector("corp")).await.unwrap();

    let object = wait_ready(&cluster, "identityconnectors", "corp", ("True", "Reconciled")).await;
    assert_eq!(object["status"]["observedGeneration"], 1);
    assert_eq!(object["metadata"]["finalizers"], json!(["portcullis.dev/cleanup"]));
    assert_eq!(stored_client_secret(&cluster, "corp").await.as_deref(), Some("upstream-secret"));
    assert_eq!(cluster.store.connector("corp").await.unwrap().unwrap().display_name, "Corp");

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(cluster.redis.cli(&["FLUSHALL"]), vec!["OK".to_owned()]);
    assert!(!cluster.holds_connector("corp"));
    eventually("the record is back after the flush", WAIT, || async { cluster.holds_connector("corp").then_some(()) })
        .await;

    connectors.delete("corp", &DeleteParams::default()).await.unwrap();
    eventually("the connector and its record are gone", WAIT, || async {
        (cluster.api.get("identityconnectors", NAMESPACE, "corp").is_none() && !cluster.holds_connector("corp"))
            .then_some(())
    })
    .await;
    assert_only_granted_verbs(&cluster.api.requests());
    replica.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_is_reported_as_secret_missing_until_the_secret_is_created() {
    let cluster = Cluster::start("t-connector-secret").await;
    let replica = Replica::start(&cluster, "replica-a").await;
    let connectors: Api<IdentityConnector> = cluster.api();
    connectors.create(&PostParams::default(), &identity_connector("corp")).await.unwrap();
    let object = wait_ready(&cluster, "identityconnectors", "corp", ("False", "SecretMissing")).await;
    let message = object["status"]["conditions"][0]["message"].as_str().unwrap_or_default().to_owned();
    assert!(message.contains("corp-oidc"), "{message}");
    assert!(!cluster.holds_connector("corp"), "nothing is stored for a connector that cannot sign anyone in");

    cluster.create_secret("corp-oidc", &[("clientSecret", "upstream-secret")]).await;
    wait_ready(&cluster, "identityconnectors", "corp", ("True", "Reconciled")).await;
    assert_eq!(stored_client_secret(&cluster, "corp").await.as_deref(), Some("upstream-secret"));
    replica.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resync_of_an_unchanged_connector_writes_nothing() {
    let cluster = Cluster::start("t-connector-quiet").await;
    let mut config = config("replica-a");
    config.resync_period = Duration::from_secs(1);
    let replica = Replica::start_with(&cluster, config).await;
    cluster.create_secret("corp-oidc", &[("clientSecret", "upstream-secret")]).await;
    let connectors: Api<IdentityConnector> = cluster.api();
    connectors.create(&PostParams::default(), &identity_connector("corp")).await.unwrap();
    wait_ready(&cluster, "identityconnectors", "corp", ("True", "Reconciled")).await;
    eventually("the record", WAIT, || async { cluster.holds_connector("corp").then_some(()) }).await;
    // Let the reconciles that the controller's own writes triggered pass.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let (mark, redis) = (cluster.api.mark(), cluster.redis_writes());
    let before = replica.reconciles("IdentityConnector");
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let after = replica.reconciles("IdentityConnector");
    assert!(after >= before + 2, "the connector was resynced: {before} → {after}");
    let since = cluster.api.requests_since(mark);
    for resource in ["identityconnectors", "secrets", "events"] {
        assert_eq!(since.writes(resource), 0, "no {resource} write");
    }
    assert_eq!(since.lists("identityconnectors"), 0, "reconciles read the connectors from the reflector");
    assert_eq!(cluster.redis_writes(), redis, "no Redis write, no cache invalidation");
    replica.shutdown().await;
}
