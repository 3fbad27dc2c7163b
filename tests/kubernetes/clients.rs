//! `OidcClient`s: generated and provided credentials, conflicts, renames that revoke the
//! old client id at once, a Secret without `clientSecret`, deletion (which ends every grant
//! and consent the client held), and status written by server-side apply.

use std::time::Duration;

use argon2::password_hash::PasswordHasher;
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use portcullis::controller::reconcile::plan_client;
use portcullis::crd::OidcClient;
use portcullis::model::Grant;
use portcullis::secrets;
use portcullis::store::{Directory, Ephemeral, Grants};
use portcullis::vocabulary::Scope;
use serde_json::{Value, json};

use crate::fake_apiserver::Verb;
use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_client_lifecycle_secret_generated_edited_deleted_and_finalized() {
    let cluster = Cluster::start("t-client").await;
    let replica = Replica::start(&cluster, "replica-a").await;
    let clients: Api<OidcClient> = cluster.api();
    let secrets_api: Api<Secret> = cluster.api();
    clients.create(&PostParams::default(), &oidc_client("app", machine_spec())).await.unwrap();

    // Apply → a Secret with generated credentials, owned by the OidcClient.
    let secret =
        eventually("the generated Secret", WAIT, || async { cluster.api.get("secrets", NAMESPACE, "app-credentials") })
            .await;
    let generated = secret_value(&secret, "clientSecret").unwrap();
    assert_eq!(URL_SAFE_NO_PAD.decode(&generated).unwrap().len(), 32, "a 256-bit secret");
    assert_eq!(secret_value(&secret, "clientId").as_deref(), Some("app"));
    assert_eq!(secret_value(&secret, "issuer").as_deref(), Some(ISSUER));
    assert_eq!(
        secret_value(&secret, "discoveryUrl").as_deref(),
        Some("https://id.portcullis.test/.well-known/openid-configuration")
    );
    let owner = &secret["metadata"]["ownerReferences"][0];
    assert_eq!(
        (owner["kind"].as_str(), owner["name"].as_str(), owner["controller"].as_bool()),
        (Some("OidcClient"), Some("app"), Some(true))
    );

    // → the Redis record (secret hashed) and Ready with the observed generation.
    eventually("the client record", WAIT, || async { verifies(&cluster.store, "app", &generated).await.then_some(()) })
        .await;
    let stored_hash = || async { cluster.store.client("app").await.unwrap().unwrap().secret_hash.clone().unwrap() };
    assert_eq!(stored_hash().await, secrets::hash_generated(&generated), "a generated secret is kept as its digest");
    let object = eventually("Ready=True", WAIT, || async {
        let object = cluster.api.get("oidcclients", NAMESPACE, "app")?;
        (ready(&object)? == ("True".into(), "Reconciled".into())).then_some(object)
    })
    .await;
    assert_eq!(object["status"]["observedGeneration"], 1);
    assert_eq!(object["status"]["clientId"], "app");
    assert_eq!(object["metadata"]["finalizers"], json!(["portcullis.dev/cleanup"]));

    // Secret edited → the new secret works, the old one no longer does.
    let patch = json!({ "data": { "clientSecret": STANDARD.encode("rotated-by-hand") } });
    secrets_api.patch("app-credentials", &PatchParams::default(), &Patch::Merge(patch)).await.unwrap();
    eventually("the edited secret", WAIT, || async {
        verifies(&cluster.store, "app", "rotated-by-hand").await.then_some(())
    })
    .await;
    assert!(!verifies(&cluster.store, "app", &generated).await);
    let chosen = stored_hash().await;
    assert!(chosen.starts_with("$argon2id$"), "a secret set by hand was not generated here: {chosen}");

    // Secret deleted → re-created with a new generated secret.
    secrets_api.delete("app-credentials", &DeleteParams::default()).await.unwrap();
    let recreated = eventually("the re-created Secret", WAIT, || async {
        let secret = cluster.api.get("secrets", NAMESPACE, "app-credentials")?;
        secret_value(&secret, "clientSecret").filter(|s| s != "rotated-by-hand")
    })
    .await;
    eventually("the re-created secret works", WAIT, || async {
        verifies(&cluster.store, "app", &recreated).await.then_some(())
    })
    .await;
    assert!(!verifies(&cluster.store, "app", "rotated-by-hand").await);
    assert_eq!(stored_hash().await, secrets::hash_generated(&recreated));

    // Delete → the finalizer removes the Redis record, then lets the resource (and its Secret) go.
    clients.delete("app", &DeleteParams::default()).await.unwrap();
    eventually("the resource is gone", WAIT, || async {
        cluster.api.get("oidcclients", NAMESPACE, "app").is_none().then_some(())
    })
    .await;
    assert!(cluster.store.client("app").await.unwrap().is_none(), "the finalizer removed the record first");
    assert!(cluster.api.get("secrets", NAMESPACE, "app-credentials").is_none(), "owned Secret garbage-collected");

    assert!(
        replica.metrics.render().unwrap().contains("portcullis_reconcile_total{kind=\"OidcClient\",result=\"ok\"}")
    );
    replica.shutdown().await;
    assert_only_granted_verbs(&cluster.api.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_provided_secret_is_used_and_a_second_claim_on_the_client_id_conflicts() {
    let cluster = Cluster::start("t-conflict").await;
    let replica = Replica::start(&cluster, "replica-a").await;
    let clients: Api<OidcClient> = cluster.api();
    let secrets_api: Api<Secret> = cluster.api();
    let provided: Secret = serde_json::from_value(json!({
        "metadata": { "name": "provided", "namespace": NAMESPACE },
        "stringData": {},
        "data": { "clientId": STANDARD.encode("shared-id"), "clientSecret": STANDARD.encode("provided-secret") },
    }))
    .unwrap();
    let created = secrets_api.create(&PostParams::default(), &provided).await.unwrap();
    let mut spec = machine_spec();
    spec["secretName"] = json!("provided");
    clients.create(&PostParams::default(), &oidc_client("first", spec)).await.unwrap();
    eventually("the provided secret is used", WAIT, || async {
        verifies(&cluster.store, "shared-id", "provided-secret").await.then_some(())
    })
    .await;
    let secret = cluster.api.get("secrets", NAMESPACE, "provided").unwrap();
    assert_eq!(
        secret["metadata"]["resourceVersion"].as_str(),
        created.metadata.resource_version.as_deref(),
        "the provided Secret is left alone"
    );

    let mut spec = machine_spec();
    spec["clientId"] = json!("shared-id");
    clients.create(&PostParams::default(), &oidc_client("second", spec)).await.unwrap();
    let (status, reason) = eventually("the conflict is reported", WAIT, || async {
        ready(&cluster.api.get("oidcclients", NAMESPACE, "second")?)
    })
    .await;
    assert_eq!((status.as_str(), reason.as_str()), ("False", "ClientIdConflict"));
    assert!(cluster.api.get("secrets", NAMESPACE, "second-credentials").is_none(), "the loser creates nothing");
    assert!(verifies(&cluster.store, "shared-id", "provided-secret").await, "nothing is overwritten");

    // Deleting the loser must not remove the winner's record.
    clients.delete("second", &DeleteParams::default()).await.unwrap();
    eventually("the loser is gone", WAIT, || async {
        cluster.api.get("oidcclients", NAMESPACE, "second").is_none().then_some(())
    })
    .await;
    assert!(verifies(&cluster.store, "shared-id", "provided-secret").await);
    replica.shutdown().await;
}

/// The `managedFields` entry of `manager` for `operation` (and `subresource`, if any).
fn managed_entry<'a>(
    object: &'a Value,
    manager: &str,
    operation: &str,
    subresource: Option<&str>,
) -> Option<&'a Value> {
    object["metadata"]["managedFields"].as_array()?.iter().find(|entry| {
        entry["manager"] == manager && entry["operation"] == operation && entry["subresource"].as_str() == subresource
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_is_applied_server_side_under_one_field_manager_with_the_observed_generation() {
    let cluster = Cluster::start("t-ssa").await;
    let start = cluster.api.mark();
    let replica = Replica::start(&cluster, "replica-a").await;
    let clients: Api<OidcClient> = cluster.api();
    clients.create(&PostParams::default(), &oidc_client("app", machine_spec())).await.unwrap();
    let object = wait_ready(&cluster, "oidcclients", "app", ("True", "Reconciled")).await;
    let status = managed_entry(&object, "portcullis-controller", "Apply", Some("status")).expect("status applied");
    for field in ["f:clientId", "f:observedGeneration", "f:conditions"] {
        assert!(status["fieldsV1"]["f:status"].get(field).is_some(), "{field} owned: {status}");
    }
    let finalizer = managed_entry(&object, "portcullis-controller", "Update", None).expect("finalizer patched");
    assert!(finalizer["fieldsV1"]["f:metadata"]["f:finalizers"].is_object(), "{finalizer}");
    let secret = cluster.api.get("secrets", NAMESPACE, "app-credentials").unwrap();
    assert!(managed_entry(&secret, "portcullis-controller", "Update", None).is_some(), "created by the controller");
    let event_managers: Vec<Option<String>> = cluster
        .api
        .requests_since(start)
        .iter()
        .filter(|request| request.resource == "events" && request.verb == Verb::Create)
        .map(|request| request.field_manager.clone())
        .collect();
    assert!(!event_managers.is_empty(), "SecretCreated was published");
    assert!(
        event_managers.iter().all(|manager| manager.as_deref() == Some("portcullis-controller")),
        "Events are created under the field manager too: {event_managers:?}"
    );
    let managers: Vec<&str> = object["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["subresource"] == "status")
        .filter_map(|entry| entry["manager"].as_str())
        .collect();
    assert_eq!(managers, ["portcullis-controller"], "one field manager writes the status");

    // A spec change → a new generation, observed in the status and its condition.
    let patch = json!({ "spec": { "scopes": ["api", "reports"] } });
    clients.patch("app", &PatchParams::default(), &Patch::Merge(patch)).await.unwrap();
    let object = eventually("generation 2 observed", WAIT, || async {
        let object = cluster.api.get("oidcclients", NAMESPACE, "app")?;
        (object["status"]["observedGeneration"] == 2).then_some(object)
    })
    .await;
    assert_eq!(object["metadata"]["generation"], 2);
    assert_eq!(object["status"]["conditions"][0]["observedGeneration"], 2);
    assert_eq!(ready(&object), Some(("True".into(), "Reconciled".into())));
    replica.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_client_id_is_revoked_at_once_and_the_new_one_works() {
    let cluster = Cluster::start("t-rename").await;
    let replica = Replica::start(&cluster, "replica-a").await;
    let clients: Api<OidcClient> = cluster.api();
    let secrets_api: Api<Secret> = cluster.api();
    cluster.create_secret("m2m", &[("clientSecret", "m2m-secret")]).await;
    let mut spec = machine_spec_with_secret("m2m");
    spec["clientId"] = json!("first-id");
    clients.create(&PostParams::default(), &oidc_client("m2m", spec)).await.unwrap();
    eventually("the first id", WAIT, || async { cluster.holds_client("first-id").then_some(()) }).await;

    // spec.clientId renamed: by the time the new id is registered, the old one is gone.
    let patch = json!({ "spec": { "clientId": "second-id" } });
    clients.patch("m2m", &PatchParams::default(), &Patch::Merge(patch)).await.unwrap();
    eventually("the second id", WAIT, || async { cluster.holds_client("second-id").then_some(()) }).await;
    assert!(!cluster.holds_client("first-id"), "the old client id was revoked before the new one was written");
    assert!(verifies(&cluster.store, "second-id", "m2m-secret").await);
    let object = wait_ready(&cluster, "oidcclients", "m2m", ("True", "Reconciled")).await;
    assert_eq!(object["status"]["clientId"], "second-id");

    // The id moves to the Secret's `clientId` (while the spec still names the second one,
    // the two disagree and nothing is registered): the same again.
    let patch = json!({ "data": { "clientId": STANDARD.encode("third-id") } });
    secrets_api.patch("m2m", &PatchParams::default(), &Patch::Merge(patch)).await.unwrap();
    let patch = json!({ "spec": { "clientId": null } });
    clients.patch("m2m", &PatchParams::default(), &Patch::Merge(patch)).await.unwrap();
    eventually("the third id", WAIT, || async { cluster.holds_client("third-id").then_some(()) }).await;
    assert!(!cluster.holds_client("second-id") && !cluster.holds_client("first-id"));
    eventually("the status records the third id", WAIT, || async {
        (cluster.api.get("oidcclients", NAMESPACE, "m2m")?["status"]["clientId"] == "third-id").then_some(())
    })
    .await;
    // The recorder folds repeats of a reason into one Event with a `series` count: one per
    // revoked id. Under load a reconcile can run again on a cached copy from before its own
    // status write and repeat a revocation (which changes nothing), so the count is a floor.
    let revoked: u64 = cluster
        .api
        .list("events", NAMESPACE)
        .into_iter()
        .filter(|event| event["reason"] == "ClientIdRevoked")
        .map(|event| event["series"]["count"].as_u64().unwrap_or(1))
        .sum();
    assert!(revoked >= 2, "an event for each revoked id: {revoked}");
    replica.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_without_client_secret_is_reported_once_without_a_hot_loop_until_it_is_fixed() {
    let cluster = Cluster::start("t-missing-key").await;
    let mut config = config("replica-a");
    config.resync_period = Duration::from_secs(60);
    let replica = Replica::start_with(&cluster, config).await;
    let clients: Api<OidcClient> = cluster.api();
    let secrets_api: Api<Secret> = cluster.api();
    cluster.create_secret("provided", &[("clientId", "provided-id")]).await;
    let mark = cluster.api.mark();
    clients.create(&PostParams::default(), &oidc_client("app", machine_spec_with_secret("provided"))).await.unwrap();
    let object = wait_ready(&cluster, "oidcclients", "app", ("False", "SecretMissingKey")).await;
    let message = object["status"]["conditions"][0]["message"].as_str().unwrap();
    assert!(message.contains("Secret provided has no key `clientSecret`"), "{message}");
    assert!(object["status"].get("clientId").is_none(), "nothing is registered");
    assert!(!cluster.holds_client("provided-id"));
    assert_eq!(cluster.api.requests_since(mark).count(Verb::Create, "secrets"), 0, "no Secret is generated");

    // Settled: no reconcile, no write, no second event while nothing changes.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (mark, reconciles) = (cluster.api.mark(), replica.reconciles("OidcClient"));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(replica.reconciles("OidcClient"), reconciles, "no hot loop");
    let since = cluster.api.requests_since(mark);
    for resource in ["oidcclients", "secrets", "events"] {
        assert_eq!(since.writes(resource), 0, "no {resource} write while nothing changes");
    }
    let warnings: Vec<Value> = cluster
        .api
        .list("events", NAMESPACE)
        .into_iter()
        .filter(|event| event["reason"] == "SecretMissingKey")
        .collect();
    assert_eq!(warnings.len(), 1, "one Warning event: {warnings:?}");
    assert_eq!(warnings[0]["type"], "Warning");
    assert!(warnings[0].get("series").is_none(), "not repeated: {}", warnings[0]);

    // The Secret is fixed → the Secret watch brings the client back at once.
    let patch = json!({ "data": { "clientSecret": STANDARD.encode("now-present") } });
    secrets_api.patch("provided", &PatchParams::default(), &Patch::Merge(patch)).await.unwrap();
    wait_ready(&cluster, "oidcclients", "app", ("True", "Reconciled")).await;
    assert!(verifies(&cluster.store, "provided-id", "now-present").await);
    replica.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_client_removes_both_the_applied_and_the_current_client_id() {
    let cluster = Cluster::start("t-finalize-both").await;
    let replica = Replica::start(&cluster, "replica-a").await;
    let clients: Api<OidcClient> = cluster.api();
    let secrets_api: Api<Secret> = cluster.api();
    cluster.create_secret("creds", &[("clientId", "applied-id"), ("clientSecret", "s3cret")]).await;
    clients.create(&PostParams::default(), &oidc_client("app", machine_spec_with_secret("creds"))).await.unwrap();
    let object = wait_ready(&cluster, "oidcclients", "app", ("True", "Reconciled")).await;
    assert_eq!(object["status"]["clientId"], "applied-id");
    replica.shutdown().await;

    // While no controller runs: the Secret names another id, which a reconcile that did not
    // get to update the status had registered already; then the client is deleted.
    let patch = json!({ "data": { "clientId": STANDARD.encode("current-id") } });
    secrets_api.patch("creds", &PatchParams::default(), &Patch::Merge(patch)).await.unwrap();
    let mut record = cluster.store.client("applied-id").await.unwrap().unwrap().as_ref().clone();
    record.client_id = "current-id".into();
    cluster.store.put_client(record).await.unwrap();
    clients.delete("app", &DeleteParams::default()).await.unwrap();
    assert!(cluster.api.get("oidcclients", NAMESPACE, "app").is_some(), "the finalizer holds it");

    let replica = Replica::start(&cluster, "replica-a").await;
    eventually("the resource is gone", WAIT, || async {
        cluster.api.get("oidcclients", NAMESPACE, "app").is_none().then_some(())
    })
    .await;
    assert!(!cluster.holds_client("applied-id"), "the applied id is removed");
    assert!(!cluster.holds_client("current-id"), "the current id is removed");
    replica.shutdown().await;
}

/// Seeds, as the provider would have written them, a grant of `client_id` to alice (with a
/// live access token) and alice's consent to it.
async fn seed_grant_and_consent(cluster: &Cluster, client_id: &str) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let scope = Scope::parse("openid offline_access").unwrap();
    let grant = Grant {
        id: format!("grant-{client_id}"),
        client_id: client_id.into(),
        subject: "alice".into(),
        scope: scope.clone(),
        auth_time: now,
        session_id: "sid".into(),
        expires_at: now + 600,
        access_tokens: vec![(format!("jti-{client_id}"), now + 300)],
        claims: Default::default(),
    };
    cluster.store.put_grant(&grant).await.unwrap();
    cluster.store.put_consent("alice", client_id, &scope, now + 600).await.unwrap();
}

/// Whether the grant and consent [`seed_grant_and_consent`] wrote for `client_id` have
/// ended: the grant (offline, so its refresh tokens too) revoked, its access token denied,
/// the consent gone.
async fn client_ended(cluster: &Cluster, client_id: &str) -> bool {
    let store = &cluster.store;
    store.grant(&format!("grant-{client_id}")).await.unwrap().is_none()
        && store.token_check(&format!("jti-{client_id}")).await.unwrap().revoked
        && store.consent("alice", client_id).await.unwrap().is_none()
}

/// Deleting an `OidcClient` revokes every grant it holds (offline ones too, with their
/// access tokens) and deletes every consent given to it, so that declaring it again under
/// the same client id starts from nothing; another client keeps what it holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_client_ends_each_of_its_grants_and_consents_and_no_other_clients() {
    let cluster = Cluster::start("t-client-ends").await;
    let replica = Replica::start(&cluster, "replica-a").await;
    let clients: Api<OidcClient> = cluster.api();
    let spec = json!({ "redirectUris": ["https://rp.example/cb"], "scopes": ["openid", "offline_access"] });
    for name in ["rp", "other"] {
        clients.create(&PostParams::default(), &oidc_client(name, spec.clone())).await.unwrap();
        wait_ready(&cluster, "oidcclients", name, ("True", "Reconciled")).await;
        seed_grant_and_consent(&cluster, name).await;
    }
    assert!(!client_ended(&cluster, "rp").await);

    clients.delete("rp", &DeleteParams::default()).await.unwrap();
    eventually("rp's grants and consents end", WAIT, || async {
        (cluster.api.get("oidcclients", NAMESPACE, "rp").is_none() && client_ended(&cluster, "rp").await).then_some(())
    })
    .await;
    assert!(!cluster.holds_client("rp"));
    assert!(!client_ended(&cluster, "other").await, "another client keeps its grant and consent");

    clients.create(&PostParams::default(), &oidc_client("rp", spec)).await.unwrap();
    wait_ready(&cluster, "oidcclients", "rp", ("True", "Reconciled")).await;
    assert!(client_ended(&cluster, "rp").await, "declared again, the client holds nothing of before");
    replica.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_hash_made_with_other_argon2_parameters_is_made_again_under_the_policy() {
    let cluster = Cluster::start("t-rehash").await;
    cluster.create_secret("creds", &[("clientSecret", "s3cret")]).await;
    let mut record = plan_client(&oidc_client("app", machine_spec_with_secret("creds")), None).unwrap().record;
    // Another tool's parameters (a smaller one, so the test stays quick) for the same secret.
    let params = Params::new(4096, 1, 1, None).unwrap();
    let foreign =
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params).hash_password(b"s3cret").unwrap().to_string();
    assert!(portcullis::secrets::needs_rehash(&foreign));
    record.secret_hash = Some(foreign.clone());
    cluster.store.put_client(record).await.unwrap();

    let replica = Replica::start(&cluster, "replica-a").await;
    cluster
        .api::<OidcClient>()
        .create(&PostParams::default(), &oidc_client("app", machine_spec_with_secret("creds")))
        .await
        .unwrap();
    wait_ready(&cluster, "oidcclients", "app", ("True", "Reconciled")).await;
    let rehashed = eventually("the hash made again", WAIT, || async {
        let hash = cluster.store.client("app").await.unwrap()?.secret_hash.clone()?;
        (hash != foreign).then_some(hash)
    })
    .await;
    assert!(!portcullis::secrets::needs_rehash(&rehashed), "{rehashed}");
    assert!(verifies(&cluster.store, "app", "s3cret").await);
    replica.shutdown().await;
}
