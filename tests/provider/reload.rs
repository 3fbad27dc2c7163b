//! `portcullis dev` applies its manifests folder live: a change is picked up within
//! seconds, validated whole, and a broken edit leaves the last good state in force.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use portcullis::provider::RegistrationPolicy;

use crate::fixtures::client_manifest;
use crate::harness::{TestServer, fixtures};

/// A copy of the fixture manifests, removed when dropped.
struct Folder(PathBuf);

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn folder() -> Folder {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let dir = std::env::temp_dir().join(format!("portcullis-reload-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    Folder(dir)
}

async fn status_within(server: &TestServer, client_id: &str, secret: &str, status: u16) -> Duration {
    let started = Instant::now();
    loop {
        let response = server.post_basic("/token", client_id, secret, &[("grant_type", "client_credentials")]).await;
        if response.status() == status {
            return started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(5), "{client_id}: not {status} within 5 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn dev_applies_folder_changes_live_and_never_half_applies_a_broken_edit() {
    let folder = folder();
    let server = TestServer::start_on(folder.0.clone(), RegistrationPolicy::Disabled).await;
    let file = folder.0.join("live.yaml");

    std::fs::write(&file, client_manifest("live", "live", "live-secret")).unwrap();
    status_within(&server, "live", "live-secret", 200).await;

    let broken = format!(
        "{}---\napiVersion: portcullis.dev/v1alpha1\nkind: OidcUser\nmetadata: {{name: nobody}}\nspec: {{username: nobody}}\n",
        client_manifest("live", "live-renamed", "live-secret")
    );
    std::fs::write(&file, broken).unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    status_within(&server, "live", "live-secret", 200).await;
    status_within(&server, "live-renamed", "live-secret", 401).await;

    std::fs::remove_file(&file).unwrap();
    status_within(&server, "live", "live-secret", 401).await;
    status_within(&server, "m2m", "m2m-secret", 200).await;
}

async fn id_token_algorithms(server: &TestServer) -> serde_json::Value {
    let discovery: serde_json::Value =
        server.http.get(server.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    discovery["id_token_signing_alg_values_supported"].clone()
}

/// OIDC Discovery §3: `id_token_signing_alg_values_supported` says what signs now, so it
/// follows the keyring when the folder's keys change; a removed key keeps verifying.
#[tokio::test]
async fn oidc_discovery_3_signing_keys_changed_in_the_folder_swap_the_keyring_and_discovery_live() {
    let folder = folder();
    let server = TestServer::start_on(folder.0.clone(), RegistrationPolicy::Disabled).await;
    assert_eq!(id_token_algorithms(&server).await, serde_json::json!(["RS256"]));
    let before: serde_json::Value =
        server.http.get(server.url("/jwks.json")).send().await.unwrap().json().await.unwrap();
    let rsa_kid = before["keys"].as_array().unwrap().iter().find(|k| k["alg"] == "RS256").unwrap()["kid"].clone();
    let signed_before = server.m2m_token().await;

    let without_rsa = "apiVersion: portcullis.dev/v1alpha1\nkind: SigningKey\nmetadata: {name: ec, namespace: test}\n\
                       spec: {algorithm: ES256}\n---\napiVersion: portcullis.dev/v1alpha1\nkind: SigningKey\n\
                       metadata: {name: ed, namespace: test}\nspec: {algorithm: EdDSA}\n";
    std::fs::write(folder.0.join("keys.yaml"), without_rsa).unwrap();
    let started = Instant::now();
    while id_token_algorithms(&server).await != serde_json::json!(["ES256"]) {
        assert!(started.elapsed() < Duration::from_secs(5), "discovery still names RS256");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let token = server.m2m_token().await;
    assert_eq!(crate::harness::jwt_part(&token, 0)["alg"], "ES256", "ES256 signs once no RS256 key is active");
    let after: serde_json::Value =
        server.http.get(server.url("/jwks.json")).send().await.unwrap().json().await.unwrap();
    assert!(after["keys"].as_array().unwrap().iter().any(|k| k["kid"] == rsa_kid), "the removed key still verifies");
    let introspected = server.post_basic("/introspect", "m2m", "m2m-secret", &[("token", &signed_before)]).await;
    let introspected: serde_json::Value = introspected.json().await.unwrap();
    assert_eq!(introspected["active"], true, "a token the removed key signed is still valid");
}
