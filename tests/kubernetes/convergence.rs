//! What is declared is what Redis holds, and nothing more: lost data comes back within
//! seconds, undeclared records are swept, and a resync of unchanged resources writes
//! nothing anywhere.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use portcullis::controller::reconcile::plan_client;
use portcullis::crd::{OidcClient, SigningKey};
use portcullis::kubernetes::WatchNamespaces;
use portcullis::model::UserRecord;
use portcullis::store::Directory;
use serde_json::json;

use crate::fake_apiserver::Verb;
use crate::harness::*;

/// Redis commands that write unconditionally: none may run on a resync of unchanged
/// resources.
const WRITE_COMMANDS: [&str; 13] =
    ["del", "unlink", "hset", "hdel", "sadd", "srem", "expire", "publish", "eval", "multi", "exec", "zadd", "zrem"];

fn signing_key(name: &str) -> SigningKey {
    serde_json::from_value(json!({
        "apiVersion": "portcullis.dev/v1alpha1", "kind": "SigningKey",
        "metadata": { "name": name, "namespace": NAMESPACE },
        "spec": { "algorithm": "EdDSA", "rotationPeriod": "1h" },
    }))
    .unwrap()
}

/// A client, a user and a signing key, applied and `Ready`; returns the generated secret.
async fn declare_one_of_each(cluster: &Cluster) -> String {
    cluster.api::<OidcClient>().create(&PostParams::default(), &oidc_client("app", machine_spec())).await.unwrap();
    cluster.create_user_with_password("alice", "alice", "alice-password").await;
    cluster.api::<SigningKey>().create(&PostParams::default(), &signing_key("main")).await.unwrap();
    for (resource, name) in [("oidcclients", "app"), ("oidcusers", "alice"), ("signingkeys", "main")] {
        wait_ready(cluster, resource, name, ("True", "Reconciled")).await;
    }
    eventually("the records", WAIT, || async {
        (cluster.holds_client("app") && cluster.holds_user("alice") && cluster.holds_jwks()).then_some(())
    })
    .await;
    let secret = cluster.api.get("secrets", NAMESPACE, "app-credentials").unwrap();
    secret_value(&secret, "clientSecret").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_redis_data_is_applied_again_within_10_seconds_without_waiting_for_the_resync() {
    let cluster = Cluster::start("t-lost").await;
    let mut config = config("replica-a");
    config.resync_period = Duration::from_secs(300);
    let replica = Replica::start_with(&cluster, config).await;
    let generated = declare_one_of_each(&cluster).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    assert_eq!(cluster.redis.cli(&["FLUSHALL"]), vec!["OK".to_owned()]);
    assert!(!cluster.holds_client("app") && !cluster.holds_user("alice") && !cluster.holds_jwks());
    let flushed = Instant::now();
    eventually("client, user and keys back", Duration::from_secs(10), || async {
        (cluster.holds_client("app") && cluster.holds_user("alice") && cluster.holds_jwks()).then_some(())
    })
    .await;
    let repaired = flushed.elapsed();
    assert!(repaired < Duration::from_secs(10), "repaired in {repaired:?}");
    assert!(verifies(&cluster.store, "app", &generated).await, "with the secret of its Secret");
    replica.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resync_of_unchanged_resources_writes_nothing_and_lists_nothing() {
    let cluster = Cluster::start("t-quiet").await;
    let start = cluster.api.mark();
    let mut config = config("replica-a");
    config.resync_period = Duration::from_secs(1);
    let replica = Replica::start_with(&cluster, config).await;
    declare_one_of_each(&cluster).await;
    cluster.create_secret("provided", &[("clientSecret", "provided-secret")]).await;
    let provided = oidc_client("provided", machine_spec_with_secret("provided"));
    cluster.api::<OidcClient>().create(&PostParams::default(), &provided).await.unwrap();
    wait_ready(&cluster, "oidcclients", "provided", ("True", "Reconciled")).await;
    // Let the reconciles that the controller's own writes triggered pass.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let (mark, redis, commands) = (cluster.api.mark(), cluster.redis_writes(), cluster.redis_commands());
    let reconciles = |replica: &Replica| ["OidcClient", "OidcUser", "SigningKey"].map(|kind| replica.reconciles(kind));
    let before = reconciles(&replica);
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let after = reconciles(&replica);
    for ((kind, before), after) in ["OidcClient", "OidcUser", "SigningKey"].iter().zip(before).zip(after) {
        assert!(after >= before + 2, "{kind} was resynced: {before} → {after}");
    }
    let since = cluster.api.requests_since(mark);
    for resource in ["oidcclients", "oidcusers", "signingkeys", "secrets", "events"] {
        assert_eq!(since.writes(resource), 0, "no {resource} write");
    }
    assert_eq!(cluster.redis_writes(), redis, "no Redis write, no cache invalidation");
    // Nor a command that writes whatever it finds. The only scripts run are the leader's
    // epoch polls: a claim, whose one `SET NX` changes nothing while the epoch is there.
    let after = cluster.redis_commands();
    let delta: BTreeMap<&str, u64> = after
        .iter()
        .map(|(name, calls)| (name.as_str(), calls - commands.get(name).copied().unwrap_or(0)))
        .filter(|(_, calls)| *calls > 0)
        .collect();
    for command in WRITE_COMMANDS {
        assert_eq!(delta.get(command), None, "no `{command}` while nothing changed: {delta:?}");
    }
    assert!(delta.get("set") <= delta.get("evalsha"), "no SET but the claims' `SET NX`: {delta:?}");
    for resource in ["oidcclients", "oidcusers"] {
        assert_eq!(since.lists(resource), 0, "reconciles read {resource} from the reflector");
    }
    assert_eq!(since.count(Verb::Get, "secrets"), 0, "reconciles read the Secrets from their cache");
    let all = cluster.api.requests_since(start);
    assert_eq!(all.lists("oidcclients"), 1, "the reflector's initial LIST only");
    assert_eq!(all.lists("oidcusers"), 1, "the reflector's initial LIST only");
    replica.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_no_resource_declares_are_swept_in_every_watched_namespace_but_registered_clients_stay() {
    let cluster = Cluster::start("t-sweep").await;
    let record = |client_id: &str| {
        let mut record = plan_client(&oidc_client("stray", machine_spec()), None).unwrap().record;
        record.client_id = client_id.into();
        record
    };
    cluster.store.put_client(record("stray")).await.unwrap();
    cluster.store.put_client(record("dcr_registered")).await.unwrap();
    let ghost: UserRecord = serde_json::from_value(json!({
        "subject": "ghost", "username": "ghost", "email": null, "email_verified": false, "name": null,
        "given_name": null, "family_name": null, "groups": [], "roles": [], "client_roles": {},
        "password_hash": "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$aGFzaA", "disabled": false,
    }))
    .unwrap();
    cluster.store.put_user(ghost).await.unwrap();
    cluster.api::<OidcClient>().create(&PostParams::default(), &oidc_client("app", machine_spec())).await.unwrap();
    let mut far = oidc_client("far", machine_spec());
    far.metadata.namespace = Some("other".into());
    Api::<OidcClient>::namespaced(cluster.api.client(), "other").create(&PostParams::default(), &far).await.unwrap();

    let mut config = config("replica-a");
    config.watch_namespaces = WatchNamespaces::List(vec![NAMESPACE.into(), "other".into()]);
    config.resync_period = Duration::from_secs(1);
    let replica = Replica::start_with(&cluster, config).await;
    eventually("the undeclared records are swept", WAIT, || async {
        (!cluster.holds_client("stray") && !cluster.holds_user("ghost")).then_some(())
    })
    .await;
    eventually("both declared clients", WAIT, || async {
        (cluster.holds_client("app") && cluster.holds_client("far")).then_some(())
    })
    .await;
    // Several sweeps later, what is declared in either namespace, and what registered
    // itself, are still there.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(cluster.holds_client("app") && cluster.holds_client("far"));
    assert!(cluster.holds_client("dcr_registered"), "dynamically registered clients are never swept");
    assert!(
        Api::<Secret>::namespaced(cluster.api.client(), "other").get_opt("far-credentials").await.unwrap().is_some()
    );
    replica.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_does_not_answer_is_reported_and_retried_with_back_off_then_the_change_lands() {
    let mut cluster = Cluster::start("t-outage").await;
    let mut config = config("replica-a");
    config.resync_period = Duration::from_secs(300);
    let replica = Replica::start_with(&cluster, config).await;
    let clients: Api<OidcClient> = cluster.api();
    clients.create(&PostParams::default(), &oidc_client("app", machine_spec())).await.unwrap();
    wait_ready(&cluster, "oidcclients", "app", ("True", "Reconciled")).await;

    cluster.redis.stop();
    let patch = json!({ "spec": { "scopes": ["api", "reports"] } });
    clients.patch("app", &PatchParams::default(), &Patch::Merge(patch)).await.unwrap();
    let object = wait_ready(&cluster, "oidcclients", "app", ("False", "StoreUnavailable")).await;
    assert_eq!(object["status"]["clientId"], "app", "what it held before is still shown");
    // Retried 1 s, 2 s, 4 s … apart (each try waits for the store's timeout too), not in a loop.
    let before = replica.reconciles("OidcClient");
    tokio::time::sleep(Duration::from_secs(6)).await;
    let retries = replica.reconciles("OidcClient") - before;
    assert!((1..=4).contains(&retries), "{retries} retries in 6 s");

    cluster.redis.restart();
    let key = format!("{}:v1:{{clients}}:client:app", cluster.prefix);
    eventually("the change applied once the store answers", Duration::from_secs(40), || async {
        cluster.redis.cli(&["GET", &key]).concat().contains("reports").then_some(())
    })
    .await;
    wait_ready(&cluster, "oidcclients", "app", ("True", "Reconciled")).await;
    replica.shutdown().await;
}
