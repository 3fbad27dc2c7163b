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
