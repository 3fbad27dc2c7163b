//! Whole processes: two controllers electing one leader, and the `controller` and `serve
//! --kubernetes` binaries against the fake API server.

use std::time::Duration;

use kube::api::PostParams;
use portcullis::crd::{OidcClient, SigningKey};
use serde_json::{Value, json};

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_controllers_elect_one_leader_and_the_standby_takes_over() {
    let cluster = Cluster::start("t-lease").await;
    let a = Replica::start(&cluster, "replica-a").await;
    let b = Replica::start(&cluster, "replica-b").await;
    eventually("a leader", WAIT, || async { (a.is_leader() || b.is_leader()).then_some(()) }).await;
    // Several renewals later, still exactly one.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(a.is_leader() != b.is_leader(), "exactly one leader");
    let (leader, standby, standby_name) = if a.is_leader() { (a, b, "replica-b") } else { (b, a, "replica-a") };
    let lease = cluster.api.get("leases", NAMESPACE, "portcullis-controller").unwrap();
    assert_ne!(lease["spec"]["holderIdentity"], standby_name);

    leader.shutdown().await;
    eventually("the standby leads", WAIT, || async { standby.is_leader().then_some(()) }).await;
    let lease = cluster.api.get("leases", NAMESPACE, "portcullis-controller").unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], standby_name);
    standby.shutdown().await;
}

/// A `portcullis` process, killed when dropped.
struct Process(std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binaries_controller_and_serve_kubernetes_work_against_the_api_server() {
    let cluster = Cluster::start("t-binary").await;
    let dir = std::env::temp_dir().join(format!("portcullis-kubeconfig-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("config");
    std::fs::write(&kubeconfig, cluster.api.kubeconfig(NAMESPACE)).unwrap();
    let metrics_port = free_port();
    let redis_url = cluster.redis.url(PASSWORD);
    let binary = env!("CARGO_BIN_EXE_portcullis");
    let controller = Process(
        std::process::Command::new(binary)
            .args(["controller", "--namespace", NAMESPACE, "--issuer", ISSUER, "--redis-url", &redis_url])
            .args(["--redis-key-prefix", "t-binary", "--metrics-listen", &format!("127.0.0.1:{metrics_port}")])
            .args(["--lease-duration", "3s", "--resync-period", "2s", "--key-publish-delay", "1s"])
            .env("KUBECONFIG", &kubeconfig)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env("POD_NAME", "binary-controller")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let http = reqwest::Client::new();
    let metrics = format!("http://127.0.0.1:{metrics_port}");
    eventually("/ready", WAIT, || async {
        let response = http.get(format!("{metrics}/ready")).send().await.ok()?;
        (response.status() == 200).then_some(())
    })
    .await;
    assert_eq!(http.get(format!("{metrics}/health")).send().await.unwrap().status(), 200);

    let key: SigningKey = serde_json::from_value(json!({
        "apiVersion": "portcullis.dev/v1alpha1", "kind": "SigningKey",
        "metadata": { "name": "main", "namespace": NAMESPACE },
        "spec": { "algorithm": "EdDSA" },
    }))
    .unwrap();
    cluster.api::<SigningKey>().create(&PostParams::default(), &key).await.unwrap();
    cluster.api::<OidcClient>().create(&PostParams::default(), &oidc_client("bin", machine_spec())).await.unwrap();
    let secret = eventually("the generated Secret", WAIT, || async {
        secret_value(&cluster.api.get("secrets", NAMESPACE, "bin-credentials")?, "clientSecret")
    })
    .await;
    let text = eventually("the reconcile metrics", WAIT, || async {
        let text = http.get(format!("{metrics}/metrics")).send().await.ok()?.text().await.ok()?;
        text.contains("portcullis_reconcile_total{kind=\"OidcClient\",result=\"ok\"}").then_some(text)
    })
    .await;
    for name in ["portcullis_leader 1", "portcullis_reconcile_duration_seconds_bucket", "process_cpu_seconds_total"] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }

    let port = free_port();
    let provider = Process(
        std::process::Command::new(binary)
            .args(["serve", "--kubernetes", "--namespace", NAMESPACE, "--issuer", ISSUER, "--redis-url", &redis_url])
            .args(["--redis-key-prefix", "t-binary", "--listen", &format!("127.0.0.1:{port}")])
            .env("KUBECONFIG", &kubeconfig)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let response: Value = eventually("a token from serve --kubernetes", WAIT, || async {
        let response = http
            .post(format!("http://127.0.0.1:{port}/token"))
            .basic_auth("bin", Some(secret.as_str()))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .ok()?;
        (response.status() == 200).then_some(response.json().await.ok()?)
    })
    .await;
    assert_eq!(response["token_type"], "Bearer");
    drop(provider);

    // SIGTERM: the controller stops gracefully and releases the Lease.
    let status = std::process::Command::new("kill").args(["-TERM", &controller.0.id().to_string()]).status().unwrap();
    assert!(status.success());
    let mut controller = controller;
    let exit = eventually("the controller exits", WAIT, || {
        let exit = controller.0.try_wait().unwrap();
        async move { exit }
    })
    .await;
    assert!(exit.success(), "{exit:?}");
    let lease = cluster.api.get("leases", NAMESPACE, "portcullis-controller").unwrap();
    assert!(lease["spec"]["holderIdentity"].is_null(), "released: {lease}");
}
