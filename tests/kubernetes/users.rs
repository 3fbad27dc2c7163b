//! `OidcUser`s: the record follows the resource and its password Secret, a flushed Redis is
//! restored by the resync, usernames conflict, a rename revokes the old username at once,
//! a disabled or deleted user loses every session and grant, the status shows the user's
//! sessions and last sign-in.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use portcullis::crd::{OidcClient, OidcUser};
use portcullis::model::{Grant, Session};
use portcullis::secrets;
use portcullis::store::{Directory, Ephemeral, Grants, LogoutQueue, SessionEnds, UserIndex};
use portcullis::vocabulary::Scope;
use serde_json::json;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flushed_redis_is_restored_by_the_periodic_resync_and_deleted_users_are_removed() {
    let cluster = Cluster::start("t-resync").await;
    let replica = Replica::start(&cluster, "replica-a").await;
    let clients: Api<OidcClient> = cluster.api();
    let users: Api<OidcUser> = cluster.api();
    let secrets_api: Api<Secret> = cluster.api();
    clients.create(&PostParams::default(), &oidc_client("app", machine_spec())).await.unwrap();
    let hash = secrets::hash("alice-password").unwrap();
    let password: Secret = serde_json::from_value(json!({
        "metadata": { "name": "alice-password", "namespace": NAMESPACE },
        "data": { "hash": STANDARD.encode(&hash) },
    }))
    .unwrap();
    secrets_api.create(&PostParams::default(), &password).await.unwrap();
    let user: OidcUser = serde_json::from_value(json!({
        "apiVersion": "portcullis.dev/v1alpha1", "kind": "OidcUser",
        "metadata": { "name": "alice", "namespace": NAMESPACE },
        "spec": { "username": "alice", "email": "alice@example.com", "passwordSecretRef": { "name": "alice-password", "key": "hash" } },
    }))
    .unwrap();
    users.create(&PostParams::default(), &user).await.unwrap();
    eventually("both records", WAIT, || async {
        let client = cluster.store.client("app").await.unwrap();
        let user = cluster.store.user_by_username("alice").await.unwrap();
        (client.is_some() && user.is_some_and(|u| u.password_hash == hash)).then_some(())
    })
    .await;

    // Let the reconciles triggered by the resources' own status writes finish, so that only
    // the periodic resync can bring the records back.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(cluster.redis.cli(&["FLUSHALL"]), vec!["OK".to_owned()]);
    // Read Redis itself: the store's directory cache would still answer.
    let exists = |key: &str| cluster.redis.cli(&["EXISTS", key]) == vec!["1".to_owned()];
    assert!(!exists("t-resync:v1:{clients}:client:app"));
    eventually("the resync restores both records", WAIT, || async {
        (exists("t-resync:v1:{clients}:client:app") && exists("t-resync:v1:{users}:user:alice")).then_some(())
    })
    .await;

    // The password Secret changes → the user record follows.
    let first_stamp = cluster.store.user_by_username("alice").await.unwrap().unwrap().profile.updated_at;
    let new_hash = secrets::hash("new-password").unwrap();
    let patch = json!({ "data": { "hash": STANDARD.encode(&new_hash) } });
    secrets_api.patch("alice-password", &PatchParams::default(), &Patch::Merge(patch)).await.unwrap();
    eventually("the new password hash", WAIT, || async {
        cluster
            .store
            .user_by_username("alice")
            .await
            .unwrap()
            .is_some_and(|u| u.password_hash == new_hash)
            .then_some(())
    })
    .await;

    // OIDC Core §5.1 `updated_at`: a new password is not released information, a new name is.
    let stamped = cluster.store.user_by_username("alice").await.unwrap().unwrap().profile.updated_at;
    assert_eq!(stamped, first_stamp, "the new password kept the time");
    let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(stamped.is_some_and(|at| at <= started && at + 60 > started), "{stamped:?}");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let patch = json!({ "spec": { "name": "Alice Liddell" } });
    users.patch("alice", &PatchParams::default(), &Patch::Merge(patch)).await.unwrap();
    let renamed = eventually("the new name", WAIT, || async {
        let user = cluster.store.user_by_username("alice").await.unwrap()?;
        (user.name.as_deref() == Some("Alice Liddell")).then_some(user)
    })
    .await;
    assert!(renamed.profile.updated_at > stamped, "{:?} after {stamped:?}", renamed.profile.updated_at);
    assert_eq!(
        cluster.store.user_by_username("alice").await.unwrap().unwrap().profile.updated_at,
        renamed.profile.updated_at
    );

    // A second resource for the same username conflicts; deleting it leaves alice alone.
    let mut twin = user.clone();
    twin.metadata.name = Some("alice-twin".into());
    users.create(&PostParams::default(), &twin).await.unwrap();
    let (status, reason) = eventually("the username conflict", WAIT, || async {
        ready(&cluster.api.get("oidcusers", NAMESPACE, "alice-twin")?)
    })
    .await;
    assert_eq!((status.as_str(), reason.as_str()), ("False", "UsernameConflict"));
    users.delete("alice-twin", &DeleteParams::default()).await.unwrap();
    eventually("the twin is gone", WAIT, || async {
        cluster.api.get("oidcusers", NAMESPACE, "alice-twin").is_none().then_some(())
    })
    .await;
    assert!(exists("t-resync:v1:{users}:user:alice"), "the twin's deletion left alice's record");

    users.delete("alice", &DeleteParams::default()).await.unwrap();
    eventually("the user is removed", WAIT, || async {
        (cluster.api.get("oidcusers", NAMESPACE, "alice").is_none()
            && cluster.store.user_by_username("alice").await.unwrap().is_none())
        .then_some(())
    })
    .await;
    replica.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_username_is_revoked_at_once_and_the_old_one_cannot_sign_in() {
    let cluster = Cluster::start("t-user-rename").await;
    let replica = Replica::start(&cluster, "replica-a").await;
    let users: Api<OidcUser> = cluster.api();
    let hash = cluster.create_user_with_password("alice", "alice", "alice-password").await;
    eventually("alice", WAIT, || async { cluster.holds_user("alice").then_some(()) }).await;
    let object = wait_ready(&cluster, "oidcusers", "alice", ("True", "Reconciled")).await;
    assert_eq!(object["status"]["username"], "alice");
    assert_eq!(object["status"]["subject"], "alice");

    let patch = json!({ "spec": { "username": "alice.smith" } });
    users.patch("alice", &PatchParams::default(), &Patch::Merge(patch)).await.unwrap();
    eventually("the new username", WAIT, || async { cluster.holds_user("alice.smith").then_some(()) }).await;
    assert!(!cluster.holds_user("alice"), "the old username was revoked before the new one was written");
    assert!(cluster.store.user_by_username("alice.smith").await.unwrap().is_some_and(|u| u.password_hash == hash));
    eventually("the status records the new username", WAIT, || async {
        (cluster.api.get("oidcusers", NAMESPACE, "alice")?["status"]["username"] == "alice.smith").then_some(())
    })
    .await;
    assert!(cluster.store.user_by_username("alice").await.unwrap().is_none(), "the old username cannot sign in");
    replica.shutdown().await;
}

/// Seeds what `subject` holds as the provider would have written it: a session with an
/// online and an offline grant (each with a live access token) of `client_id`.
async fn seed_session_and_grants(cluster: &Cluster, subject: &str, client_id: &str, tag: &str) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let session = Session {
        id: format!("cookie-{tag}"),
        sid: format!("sid-{tag}"),
        subject: subject.into(),
        auth_time: now,
        csrf_token: "csrf".into(),
    };
    cluster.store.put_session(&session, now + 600).await.unwrap();
    for (kind, scope) in [("online", "openid"), ("offline", "openid offline_access")] {
        let grant = Grant {
            id: format!("{kind}-{tag}"),
            client_id: client_id.into(),
            subject: subject.into(),
            scope: Scope::parse(scope).unwrap(),
            auth_time: now,
            session_id: session.sid.clone(),
            expires_at: now + 600,
            access_tokens: vec![(format!("jti-{kind}-{tag}"), now + 300)],
            claims: Default::default(),
        };
        cluster.store.put_grant(&grant).await.unwrap();
        assert!(cluster.store.link_session_grant(&session.sid, &grant.id, client_id, now + 600).await.unwrap());
    }
}

/// Whether everything [`seed_session_and_grants`] wrote for `tag` has ended: the session
/// record gone, both grants revoked (the offline one too) and their access tokens denied.
async fn ended(cluster: &Cluster, subject: &str, tag: &str) -> bool {
    let store = &cluster.store;
    store.user_sessions(subject).await.unwrap().is_empty()
        && store.user_grants(subject).await.unwrap().is_empty()
        && store.session(&format!("cookie-{tag}")).await.unwrap().is_none()
        && store.grant(&format!("offline-{tag}")).await.unwrap().is_none()
        && store.token_check(&format!("jti-online-{tag}")).await.unwrap().revoked
        && store.token_check(&format!("jti-offline-{tag}")).await.unwrap().revoked
}

/// `spec.disabled: true` ends every session of the user with back-channel logout and
/// revokes all their grants, offline ones included, so that enabling the user again brings
/// none of it back; deleting the user does the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_or_deleted_user_loses_every_session_and_grant_with_back_channel_logout() {
    let cluster = Cluster::start("t-user-disabled").await;
    let replica = Replica::start(&cluster, "replica-a").await;
    let clients: Api<OidcClient> = cluster.api();
    let spec = json!({
        "redirectUris": ["https://rp.example/cb"],
        "backchannelLogoutUri": "https://rp.example/backchannel",
        "scopes": ["openid", "offline_access"],
        "grantTypes": ["authorization_code", "refresh_token"],
    });
    clients.create(&PostParams::default(), &oidc_client("rp", spec)).await.unwrap();
    cluster.create_user_with_password("alice", "alice", "alice-password").await;
    eventually("alice and rp", WAIT, || async {
        (cluster.holds_user("alice") && cluster.holds_client("rp")).then_some(())
    })
    .await;
    wait_ready(&cluster, "oidcusers", "alice", ("True", "Reconciled")).await;
    seed_session_and_grants(&cluster, "alice", "rp", "first").await;
    assert!(!ended(&cluster, "alice", "first").await);

    let users: Api<OidcUser> = cluster.api();
    let disable = |disabled: bool| json!({ "spec": { "disabled": disabled } });
    users.patch("alice", &PatchParams::default(), &Patch::Merge(disable(true))).await.unwrap();
    eventually("alice's sessions and grants end", WAIT, || async {
        ended(&cluster, "alice", "first").await.then_some(())
    })
    .await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let queued = cluster.store.claim_logouts(now + 1, now + 60, 10).await.unwrap();
    let queued: Vec<(&str, &str, &str)> =
        queued.iter().map(|d| (d.sid.as_str(), d.client_id.as_str(), d.subject.as_str())).collect();
    assert_eq!(queued, [("sid-first", "rp", "alice")], "one back-channel logout for the session's client");
    assert!(cluster.store.user_by_username("alice").await.unwrap().is_some_and(|u| u.disabled));

    users.patch("alice", &PatchParams::default(), &Patch::Merge(disable(false))).await.unwrap();
    eventually("alice enabled again", WAIT, || async {
        cluster.store.user_by_username("alice").await.unwrap().is_some_and(|u| !u.disabled).then_some(())
    })
    .await;
    assert!(ended(&cluster, "alice", "first").await, "enabling brings nothing back");

    seed_session_and_grants(&cluster, "alice", "rp", "second").await;
    users.delete("alice", &DeleteParams::default()).await.unwrap();
    eventually("a deleted user's sessions and grants end", WAIT, || async {
        (cluster.api.get("oidcusers", NAMESPACE, "alice").is_none() && ended(&cluster, "alice", "second").await)
            .then_some(())
    })
    .await;
    replica.shutdown().await;
}

/// `portcullis.dev/revoke-sessions: <value>` ends every session and grant of the user once
/// per value: the value is recorded in `status.revokedSessions`, a later reconcile and a
/// restarted controller leave what was issued since alone, a new value acts again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_revoke_sessions_annotation_value_ends_the_users_sessions_once() {
    let cluster = Cluster::start("t-user-revoke").await;
    let replica = Replica::start(&cluster, "replica-a").await;
    let clients: Api<OidcClient> = cluster.api();
    clients
        .create(&PostParams::default(), &oidc_client("rp", json!({ "redirectUris": ["https://rp.example/cb"] })))
        .await
        .unwrap();
    cluster.create_user_with_password("alice", "alice", "alice-password").await;
    wait_ready(&cluster, "oidcusers", "alice", ("True", "Reconciled")).await;
    seed_session_and_grants(&cluster, "alice", "rp", "first").await;

    let users: Api<OidcUser> = cluster.api();
    let annotate = |value: &str| json!({ "metadata": { "annotations": { "portcullis.dev/revoke-sessions": value } } });
    users.patch("alice", &PatchParams::default(), &Patch::Merge(annotate("monday"))).await.unwrap();
    eventually("the revocation is done and recorded", WAIT, || async {
        let recorded = cluster.api.get("oidcusers", NAMESPACE, "alice")?["status"]["revokedSessions"] == "monday";
        (recorded && ended(&cluster, "alice", "first").await).then_some(())
    })
    .await;
    assert!(cluster.store.user_by_username("alice").await.unwrap().is_some_and(|u| !u.disabled), "alice may sign in");

    seed_session_and_grants(&cluster, "alice", "rp", "second").await;
    let patch = json!({ "spec": { "name": "Alice Liddell" } });
    users.patch("alice", &PatchParams::default(), &Patch::Merge(patch)).await.unwrap();
    eventually("the next reconcile", WAIT, || async {
        cluster.store.user_by_username("alice").await.unwrap()?.name.clone().filter(|name| name == "Alice Liddell")
    })
    .await;
    replica.shutdown().await;
    let restarted = Replica::start(&cluster, "replica-b").await;
    wait_ready(&cluster, "oidcusers", "alice", ("True", "Reconciled")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!ended(&cluster, "alice", "second").await, "handled once: neither a reconcile nor a restart redoes it");

    users.patch("alice", &PatchParams::default(), &Patch::Merge(annotate("tuesday"))).await.unwrap();
    eventually("a new value acts again", WAIT, || async { ended(&cluster, "alice", "second").await.then_some(()) })
        .await;
    restarted.shutdown().await;
}

/// `status.activeSessions` counts the user's live sessions and `status.lastLogin` shows
/// their latest sign-in (RFC 3339), read at each reconcile; the last login stays once the
/// session ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_shows_the_users_live_sessions_and_last_login() {
    let cluster = Cluster::start("t-user-activity").await;
    let replica = Replica::start(&cluster, "replica-a").await;
    cluster.create_user_with_password("alice", "alice", "alice-password").await;
    let object = wait_ready(&cluster, "oidcusers", "alice", ("True", "Reconciled")).await;
    assert_eq!(object["status"]["activeSessions"], 0);
    assert!(object["status"].get("lastLogin").is_none(), "never signed in");

    let signed_in_at = 1_893_456_000; // 2030-01-01T00:00:00Z
    let session = |id: &str| Session {
        id: id.into(),
        sid: format!("sid-{id}"),
        subject: "alice".into(),
        auth_time: signed_in_at,
        csrf_token: "csrf".into(),
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    for id in ["cookie-1", "cookie-2"] {
        cluster.store.put_session(&session(id), now + 600).await.unwrap();
    }
    let users: Api<OidcUser> = cluster.api();
    let touch = |name: &str| json!({ "spec": { "name": name } });
    users.patch("alice", &PatchParams::default(), &Patch::Merge(touch("Alice"))).await.unwrap();
    eventually("two sessions and the sign-in shown", WAIT, || async {
        let status = cluster.api.get("oidcusers", NAMESPACE, "alice")?["status"].clone();
        (status["activeSessions"] == 2 && status["lastLogin"] == "2030-01-01T00:00:00Z").then_some(())
    })
    .await;

    cluster.store.delete_session("cookie-1").await.unwrap();
    cluster.store.delete_session("cookie-2").await.unwrap();
    users.patch("alice", &PatchParams::default(), &Patch::Merge(touch("Alice Liddell"))).await.unwrap();
    eventually("no session left, the last login kept", WAIT, || async {
        let status = cluster.api.get("oidcusers", NAMESPACE, "alice")?["status"].clone();
        (status["activeSessions"] == 0 && status["lastLogin"] == "2030-01-01T00:00:00Z").then_some(())
    })
    .await;
    replica.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_claiming_one_upstream_identity_the_older_keeps_it_until_it_goes() {
    let cluster = Cluster::start("t-user-claims").await;
    let replica = Replica::start(&cluster, "replica-a").await;
    let users: Api<OidcUser> = cluster.api();
    let claiming = |name: &str| -> OidcUser {
        serde_json::from_value(json!({
            "apiVersion": "portcullis.dev/v1alpha1", "kind": "OidcUser",
            "metadata": { "name": name, "namespace": NAMESPACE },
            "spec": { "username": name, "roles": [name], "federatedIdentities": [{ "connector": "corp", "subject": "jane" }] },
        }))
        .unwrap()
    };
    let subject = portcullis::protocol::federation::federated_subject("corp", "jane");
    let claimant = |expected: &'static str| {
        let subject = subject.clone();
        let store = &cluster.store;
        async move { store.user_claiming(&subject).await.unwrap().filter(|user| user.username == expected) }
    };
    users.create(&PostParams::default(), &claiming("jane-admin")).await.unwrap();
    wait_ready(&cluster, "oidcusers", "jane-admin", ("True", "Reconciled")).await;
    users.create(&PostParams::default(), &claiming("jane-viewer")).await.unwrap();
    let object = wait_ready(&cluster, "oidcusers", "jane-viewer", ("False", "FederatedIdentityConflict")).await;
    let message = object["status"]["conditions"][0]["message"].as_str().unwrap_or_default().to_owned();
    assert!(message.contains("OidcUser jane-admin"), "{message}");
    assert!(cluster.holds_user("jane-viewer"), "the younger user is applied, without the identity");
    assert!(claimant("jane-admin").await.is_some(), "the identity gets the older user's roles");

    users.delete("jane-admin", &DeleteParams::default()).await.unwrap();
    wait_ready(&cluster, "oidcusers", "jane-viewer", ("True", "Reconciled")).await;
    let user = eventually("the identity moves to the remaining user", WAIT, || claimant("jane-viewer")).await;
    assert_eq!(user.roles, ["jane-viewer"]);
    replica.shutdown().await;
}
