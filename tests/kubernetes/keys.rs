//! `SigningKey`s: rotation end to end, with the provider (`serve --kubernetes`) following
//! without a restart.

use std::collections::BTreeSet;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use portcullis::crd::{OidcClient, SigningKey};
use portcullis::store::Directory;
use serde_json::{Value, json};

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_keys_rotate_next_before_active_and_the_provider_follows_without_restart() {
    let cluster = Cluster::start("t-keys").await;
    let replica = Replica::start(&cluster, "replica-a").await;
    let keys: Api<SigningKey> = cluster.api();
    let clients: Api<OidcClient> = cluster.api();
    let key: SigningKey = serde_json::from_value(json!({
        "apiVersion": "portcullis.dev/v1alpha1", "kind": "SigningKey",
        "metadata": { "name": "main", "namespace": NAMESPACE },
        "spec": { "algorithm": "ES256", "rotationPeriod": "1h" },
    }))
    .unwrap();
    keys.create(&PostParams::default(), &key).await.unwrap();
    let provided: Secret = serde_json::from_value(json!({
        "metadata": { "name": "m2m", "namespace": NAMESPACE },
        "data": { "clientSecret": STANDARD.encode("m2m-secret") },
    }))
    .unwrap();
    Api::<Secret>::namespaced(cluster.api.client(), NAMESPACE).create(&PostParams::default(), &provided).await.unwrap();
    let mut spec = machine_spec();
    spec["secretName"] = json!("m2m");
    clients.create(&PostParams::default(), &oidc_client("m2m", spec)).await.unwrap();

    // The provider, built as `serve --kubernetes` builds it, waits for the first active key.
    let options = portcullis::server::ServerOptions {
        issuer: ISSUER.into(),
        manifests: None,
        access_token_ttl: Duration::from_secs(300),
        refresh_token_ttl: Duration::from_secs(3600),
        session_ttl: Duration::from_secs(3600),
        registration: portcullis::provider::RegistrationPolicy::Disabled,
        registration_scopes: portcullis::vocabulary::Scope::parse("openid").unwrap(),
        intervals: Default::default(),
        backchannel: Default::default(),
        metrics_on_main_port: false,
    };
    let built = tokio::time::timeout(
        WAIT,
        portcullis::server::build_kubernetes(
            &options,
            redis_config(&cluster.redis, &cluster.prefix),
            None,
            cluster.api.client(),
            NAMESPACE,
        ),
    )
    .await
    .expect("the provider starts once a key is active")
    .unwrap();
    let key_watch = built.key_watch.clone().unwrap();
    assert!(key_watch.synced.load(std::sync::atomic::Ordering::SeqCst));
    let listener = portcullis::server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(portcullis::server::serve(listener, built.provider, std::future::pending()));
    let http = reqwest::Client::new();

    let status = eventually("an active and a next key", WAIT, || async {
        let object = cluster.api.get("signingkeys", NAMESPACE, "main")?;
        let keys = object.pointer("/status/keys")?.as_array()?.clone();
        (keys.len() == 2).then_some(object["status"].clone())
    })
    .await;
    let active = status["activeKid"].as_str().unwrap().to_owned();
    let next = status["keys"].as_array().unwrap().iter().find(|k| k["phase"] == "next").unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        ready(&cluster.api.get("signingkeys", NAMESPACE, "main").unwrap()),
        Some(("True".into(), "Reconciled".into()))
    );
    let jwks_kids = || async {
        let jwks: Value = http.get(format!("{base}/jwks.json")).send().await.unwrap().json().await.unwrap();
        jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect::<BTreeSet<_>>()
    };
    eventually("the JWKS shows the next key before it signs", WAIT, || async {
        jwks_kids().await.contains(&next).then_some(())
    })
    .await;
    let token_kid = || async {
        let response: Value = http
            .post(format!("{base}/token"))
            .basic_auth("m2m", Some("m2m-secret"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = response["access_token"].as_str().unwrap_or_else(|| panic!("{response}")).to_owned();
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
        (token, header["kid"].as_str().unwrap().to_owned())
    };
    let (old_token, kid) = eventually("the m2m client is registered", WAIT, || async {
        cluster.store.client("m2m").await.unwrap()?;
        Some(token_kid().await)
    })
    .await;
    assert_eq!(kid, active, "tokens are signed by the active key");

    // Rotate on demand; the next key has been published for the publish delay by then.
    let patch = json!({ "metadata": { "annotations": { "portcullis.dev/rotate": "now" } } });
    keys.patch("main", &PatchParams::default(), &Patch::Merge(patch)).await.unwrap();
    eventually("the next key becomes active", WAIT, || async {
        let object = cluster.api.get("signingkeys", NAMESPACE, "main")?;
        (object["status"]["activeKid"] == next.as_str()).then_some(())
    })
    .await;
    eventually("the provider signs with the new key, without a restart", WAIT, || async {
        (token_kid().await.1 == next).then_some(())
    })
    .await;
    let kids = jwks_kids().await;
    assert!(kids.contains(&active), "the retired key stays published while its tokens live");
    let in_redis = |key: &str| cluster.redis.cli(&["GET", &format!("t-keys:v1:keys:{key}")]).concat();
    eventually("Redis holds the JWKS and the active kid", WAIT, || async {
        (serde_json::from_str::<Value>(&in_redis("active")).ok() == Some(json!({ "ES256": next }))
            && in_redis("jwks").contains(&next)
            && in_redis("jwks").contains(&active))
        .then_some(())
    })
    .await;
    let introspection: Value = http
        .post(format!("{base}/introspect"))
        .basic_auth("m2m", Some("m2m-secret"))
        .form(&[("token", old_token.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(introspection["active"], true, "a token signed before the rotation still verifies");

    // After the retirement period the old key is unpublished and its Secret deleted.
    eventually("the retired key goes", WAIT, || async { (!jwks_kids().await.contains(&active)).then_some(()) }).await;
    let remaining = cluster
        .api
        .list("secrets", NAMESPACE)
        .into_iter()
        .filter(|s| s["metadata"]["labels"]["portcullis.dev/signing-key"] == "main")
        .count();
    assert_eq!(remaining, 2, "one active and one next key remain");
    replica.shutdown().await;
}
