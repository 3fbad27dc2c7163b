//! The `portcullis` binary as a user runs it.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn portcullis() -> Command {
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
}

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Kills the child when the test ends, however it ends.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn dev_serves_the_examples_and_prints_generated_secrets_once() {
    let child = portcullis()
        .args(["dev", "--listen", "127.0.0.1:0", "--manifests"])
        .arg(repo("deploy/examples"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut running = Running(child);
    let stdout = BufReader::new(running.0.stdout.take().unwrap());
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    for line in stdout.lines() {
        let line = line.unwrap();
        let done = line.starts_with("Portcullis dev listening on");
        lines.push(line);
        if done || Instant::now() > deadline {
            break;
        }
    }
    let generated: Vec<&String> =
        lines.iter().filter(|l| l.starts_with("Generated a secret for client `batch-job`")).collect();
    assert_eq!(generated.len(), 1, "{lines:?}");
    let listening = lines.last().unwrap();
    assert!(listening.contains("issuer http://127.0.0.1:"), "{listening}");
    let address = listening.split_whitespace().nth(4).unwrap().trim_start_matches("http://").to_owned();
    assert_ne!(address, "127.0.0.1:0", "the real port is printed");
}

#[test]
fn dev_without_manifests_uses_the_embedded_examples() {
    let child = portcullis()
        .args(["dev", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut running = Running(child);
    let stdout = BufReader::new(running.0.stdout.take().unwrap());
    let listening = stdout.lines().map(Result::unwrap).find(|l| l.starts_with("Portcullis dev listening")).unwrap();
    assert!(listening.contains("manifests from the embedded examples"), "{listening}");
}

#[test]
fn bad_manifest_fails_start_up_naming_file_document_and_field() {
    let dir = std::env::temp_dir().join(format!("portcullis-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("bad.yaml"),
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n---\napiVersion: portcullis.dev/v1alpha1\nkind: OidcClient\nmetadata: {name: c}\nspec:\n  tokenEndpointAuthMethod: private_key_jwt\n",
    )
    .unwrap();
    let output = portcullis().args(["dev", "--listen", "127.0.0.1:0", "--manifests"]).arg(&dir).output().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("bad.yaml, document 2"), "{stderr}");
    assert!(stderr.contains("spec.tokenEndpointAuthMethod"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn invalid_issuer_is_refused() {
    let output =
        portcullis().args(["dev", "--listen", "127.0.0.1:0", "--issuer", "https://id.example/?x=1"]).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8(output.stderr).unwrap().contains("invalid --issuer"));
}

#[test]
fn serve_kubernetes_refuses_manifests_and_controller_needs_redis_and_issuer() {
    let output = portcullis()
        .args(["serve", "--redis-url", "redis://127.0.0.1:1", "--kubernetes", "--manifests", "deploy/examples"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8(output.stderr).unwrap().contains("--manifests cannot be combined with --kubernetes"));
    let output = portcullis()
        .arg("controller")
        .env_remove("PORTCULLIS_REDIS_URL")
        .env_remove("PORTCULLIS_ISSUER")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("--redis-url") && stderr.contains("--issuer"), "{stderr}");
}

#[test]
fn serve_requires_a_redis_url_and_manifests() {
    let output = portcullis()
        .args(["serve", "--manifests", "deploy/examples"])
        .env_remove("PORTCULLIS_REDIS_URL")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8(output.stderr).unwrap().contains("--redis-url (or PORTCULLIS_REDIS_URL) is required"));
    let output = portcullis().args(["serve", "--redis-url", "redis://127.0.0.1:1"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8(output.stderr).unwrap().contains("--manifests DIR or --kubernetes is required"));
}

#[test]
fn serve_fails_start_up_when_redis_is_unreachable() {
    let output = portcullis()
        .args(["serve", "--listen", "127.0.0.1:0", "--redis-url", "redis://127.0.0.1:1", "--manifests"])
        .arg(repo("deploy/examples"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("connecting to Redis"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn hash_password_prints_a_verifiable_argon2id_hash() {
    let mut child = portcullis().arg("hash-password").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"correct horse\n").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let hash = String::from_utf8(output.stdout).unwrap();
    let hash = hash.trim();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(portcullis::secrets::verify("correct horse", hash), "the trailing newline is not part of the password");
}

#[test]
fn hash_password_refuses_an_empty_password() {
    let mut child = portcullis().arg("hash-password").stdin(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"\n").unwrap();
    assert!(!child.wait_with_output().unwrap().status.success());
}

#[test]
fn crds_prints_the_checked_in_definitions() {
    let output = portcullis().arg("crds").output().unwrap();
    assert!(output.status.success());
    let checked_in = std::fs::read_to_string(repo("crds/portcullis.dev.yaml")).unwrap();
    assert!(String::from_utf8(output.stdout).unwrap() == checked_in);
}
