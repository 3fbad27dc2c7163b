//! The `portcullis` binary as a user runs it.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/certificates.rs"]
mod certificates;
#[path = "support/serve.rs"]
mod serve;

use serve::hidden;

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

/// Starts `portcullis dev` on a free port with `args`; returns it and its "listening" line.
fn start_dev(args: &[&std::ffi::OsStr]) -> (Running, String) {
    let child = portcullis()
        .args(["dev", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut running = Running(child);
    let stdout = BufReader::new(running.0.stdout.take().unwrap());
    let listening = stdout.lines().map(Result::unwrap).find(|l| l.starts_with("Portcullis dev listening")).unwrap();
    (running, listening)
}

#[test]
fn dev_without_manifests_uses_the_embedded_examples() {
    let (_running, listening) = start_dev(&[]);
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

/// Issue 21: a key file that cannot seal upstream credentials stops `serve` before it
/// connects to anything, with the file and the reason; a good one gets past it.
#[test]
fn serve_refuses_an_upstream_credential_key_file_it_cannot_use() {
    let dir = std::env::temp_dir().join(format!("portcullis-credential-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let serve_with = |keys: &std::path::Path| {
        let output = portcullis()
            .args(["serve", "--listen", "127.0.0.1:0", "--redis-url", "redis://127.0.0.1:1", "--manifests"])
            .arg(repo("deploy/examples"))
            .arg("--upstream-credential-key-file")
            .arg(keys)
            .output()
            .unwrap();
        (output.status.code(), String::from_utf8(output.stderr).unwrap())
    };
    let (code, stderr) = serve_with(&dir.join("missing"));
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--upstream-credential-key-file") && stderr.contains("missing"), "{stderr}");
    let short = dir.join("short");
    std::fs::write(&short, format!("{}\nshort\n", "k".repeat(40))).unwrap();
    let (code, stderr) = serve_with(&short);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("line 2 of the upstream credential key file is shorter than 32 bytes"), "{stderr}");
    let empty = dir.join("empty");
    std::fs::write(&empty, "\n\n").unwrap();
    let (code, stderr) = serve_with(&empty);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("holds no key"), "{stderr}");
    let good = dir.join("good");
    std::fs::write(&good, format!("{}\n", "k".repeat(64))).unwrap();
    let (_, stderr) = serve_with(&good);
    assert!(stderr.contains("connecting to Redis") && !stderr.contains("credential"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
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

/// A `portcullis dev` on the test fixtures plus the documented kubectl client; returns it
/// with its issuer.
fn dev_with_kubectl_client(name: &str) -> (Running, String) {
    let dir = std::env::temp_dir().join(format!("portcullis-login-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["keys.yaml", "users.yaml", "clients.yaml"] {
        std::fs::copy(repo("tests/fixtures/manifests").join(file), dir.join(file)).unwrap();
    }
    std::fs::copy(repo("docs/examples/kubectl-oidcclient.yaml"), dir.join("kubectl.yaml")).unwrap();
    let (running, listening) = start_dev(&["--manifests".as_ref(), dir.as_os_str()]);
    let issuer = listening.split("(issuer ").nth(1).unwrap().split(',').next().unwrap().to_owned();
    (running, issuer)
}

/// `portcullis login` for the kubectl client with its cache under `cache`.
fn login_command(issuer: &str, cache: &std::path::Path) -> Command {
    let mut command = portcullis();
    command
        .args(["login", "--issuer", issuer, "--client-id", "kubectl", "--no-browser", "--exec-credential"])
        .env("XDG_CACHE_HOME", cache)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Plays the browser: opens the authorization URL, signs alice in and consents; returns
/// the provider's redirect to the login command's loopback listener.
async fn sign_in_as_alice(issuer: &str, authorization_url: &str) -> String {
    let browser = serve::browser();
    let login = browser.get(authorization_url).send().await.unwrap();
    assert_eq!(login.status(), 200);
    let page = login.text().await.unwrap();
    let form = [
        ("interaction", hidden(&page, "interaction")),
        ("csrf_token", hidden(&page, "csrf_token")),
        ("username", "alice".into()),
        ("password", "alice-password".into()),
    ];
    let consent = browser.post(format!("{issuer}/login")).form(&form).send().await.unwrap();
    assert_eq!(consent.status(), 200);
    let page = consent.text().await.unwrap();
    let form = [
        ("interaction", hidden(&page, "interaction")),
        ("csrf_token", hidden(&page, "csrf_token")),
        ("decision", "allow".into()),
    ];
    let redirect = browser.post(format!("{issuer}/consent")).form(&form).send().await.unwrap();
    assert_eq!(redirect.status(), 303);
    redirect.headers()["location"].to_str().unwrap().to_owned()
}

fn jwt_claims(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn exec_credential_token(output: &std::process::Output) -> String {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let credential: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(credential["apiVersion"], "client.authentication.k8s.io/v1");
    assert_eq!(credential["kind"], "ExecCredential");
    let token = credential["status"]["token"].as_str().unwrap().to_owned();
    let exp = jwt_claims(&token)["exp"].as_u64().unwrap();
    let expected = humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs(exp)).to_string();
    assert_eq!(credential["status"]["expirationTimestamp"], expected.as_str());
    token
}

#[tokio::test]
async fn rfc8252_login_signs_in_on_a_loopback_port_caches_privately_and_refreshes() {
    use std::os::unix::fs::PermissionsExt;
    let (_dev, issuer) = dev_with_kubectl_client("loopback");
    let cache = std::env::temp_dir().join(format!("portcullis-login-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);

    let mut login = Running(login_command(&issuer, &cache).spawn().unwrap());
    let stderr = BufReader::new(login.0.stderr.take().unwrap());
    let url = tokio::task::spawn_blocking(move || {
        stderr.lines().map(Result::unwrap).map(|l| l.trim().to_owned()).find(|l| l.starts_with("http")).unwrap()
    })
    .await
    .unwrap();
    let authorization = reqwest::Url::parse(&url).unwrap();
    let param = |name: &str| authorization.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
    assert_eq!(param("code_challenge_method").as_deref(), Some("S256"));
    assert!(param("state").is_some_and(|s| s.len() >= 32));
    let redirect_uri = param("redirect_uri").unwrap();
    assert!(redirect_uri.starts_with("http://127.0.0.1:") && redirect_uri.ends_with("/callback"), "{redirect_uri}");
    assert_ne!(redirect_uri, "http://127.0.0.1:0/callback");

    let callback = sign_in_as_alice(&issuer, &url).await;
    assert!(callback.starts_with(&format!("{redirect_uri}?code=")), "{callback}");
    let forged = callback.replace(&param("state").unwrap(), "forged-state");
    let ignored = reqwest::get(&forged).await.unwrap();
    assert_eq!(ignored.status(), 400, "a request with another state does not end the login");
    let answer = reqwest::get(&callback).await.unwrap();
    assert_eq!(answer.status(), 200);
    let output = tokio::task::spawn_blocking(move || {
        let mut child = login;
        let mut stdout = Vec::new();
        std::io::Read::read_to_end(child.0.stdout.as_mut().unwrap(), &mut stdout).unwrap();
        let status = child.0.wait().unwrap();
        std::process::Output { status, stdout, stderr: Vec::new() }
    })
    .await
    .unwrap();
    let first = exec_credential_token(&output);
    let claims = jwt_claims(&first);
    assert_eq!(claims["iss"], issuer.as_str());
    assert_eq!(claims["aud"], "kubectl");
    assert_eq!(claims["groups"], serde_json::json!(["engineering"]));

    let files: Vec<_> = std::fs::read_dir(cache.join("portcullis")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(cache.join("portcullis")).unwrap().permissions().mode() & 0o777, 0o700);

    let cached = login_command(&issuer, &cache).output().unwrap();
    assert_eq!(exec_credential_token(&cached), first, "a fresh cached ID token is reused without a browser");

    let mut stored: serde_json::Value = serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
    let refresh_token = stored["refresh_token"].as_str().unwrap().to_owned();
    let parts: Vec<&str> = first.split('.').collect();
    let expired_payload = {
        use base64::Engine;
        let mut expired = claims.clone();
        expired["exp"] = serde_json::json!(claims["iat"].as_u64().unwrap() - 1);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(expired.to_string())
    };
    stored["id_token"] = format!("{}.{expired_payload}.{}", parts[0], parts[2]).into();
    std::fs::write(&files[0], stored.to_string()).unwrap();
    let refreshed = login_command(&issuer, &cache).output().unwrap();
    let renewed = exec_credential_token(&refreshed);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(jwt_claims(&renewed)["exp"].as_u64().unwrap() > now, "an expired ID token is renewed");
    assert_eq!(jwt_claims(&renewed)["sub"], claims["sub"]);
    let stored: serde_json::Value = serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
    assert_ne!(stored["refresh_token"], refresh_token.as_str(), "the rotated refresh token is cached");
    std::fs::remove_dir_all(&cache).unwrap();
}

type Stderr = BufReader<std::process::ChildStderr>;

/// `portcullis login --device` for the kubectl client, started; returns it with the user
/// code it printed and the rest of its stderr.
async fn start_device_login(issuer: &str, cache: &std::path::Path) -> (Running, String, Stderr) {
    let mut login = Running(login_command(issuer, cache).arg("--device").spawn().unwrap());
    let mut stderr = BufReader::new(login.0.stderr.take().unwrap());
    let issuer = issuer.to_owned();
    let (user_code, stderr) = tokio::task::spawn_blocking(move || {
        let mut next_line = || {
            let mut line = String::new();
            assert_ne!(stderr.read_line(&mut line).unwrap(), 0, "stderr ended early");
            line.trim().to_owned()
        };
        let url = std::iter::repeat_with(&mut next_line).find(|l| l.starts_with("http")).unwrap();
        assert!(url.starts_with(&format!("{issuer}/device?user_code=")), "verification_uri_complete: {url}");
        let code = std::iter::repeat_with(&mut next_line).find_map(|l| l.strip_prefix("Code: ").map(str::to_owned));
        (code.unwrap(), stderr)
    })
    .await
    .unwrap();
    (login, user_code, stderr)
}

/// Plays the user on another device: enters `user_code` at `/device`, signs alice in and
/// answers the consent with `decision`; returns the last page.
async fn confirm_device_as_alice(issuer: &str, user_code: &str, decision: &str) -> String {
    let browser = serve::browser();
    let entry = browser.get(format!("{issuer}/device")).query(&[("user_code", user_code)]).send().await.unwrap();
    assert_eq!(entry.status(), 200);
    let page = entry.text().await.unwrap();
    let form = [("csrf_token", hidden(&page, "csrf_token")), ("user_code", hidden(&page, "user_code"))];
    let login = browser.post(format!("{issuer}/device")).form(&form).send().await.unwrap();
    assert_eq!(login.status(), 200);
    let page = login.text().await.unwrap();
    let mut form: Vec<(&str, String)> = ["csrf_token", "device", "user_code"].map(|n| (n, hidden(&page, n))).into();
    form.extend([("username", "alice".into()), ("password", "alice-password".into())]);
    let consent = browser.post(format!("{issuer}/device")).form(&form).send().await.unwrap();
    assert_eq!(consent.status(), 200);
    let page = consent.text().await.unwrap();
    assert!(page.contains(user_code), "the consent shows the code");
    let mut form: Vec<(&str, String)> = ["csrf_token", "device", "user_code"].map(|n| (n, hidden(&page, n))).into();
    form.push(("decision", decision.into()));
    let done = browser.post(format!("{issuer}/device")).form(&form).send().await.unwrap();
    assert_eq!(done.status(), 200);
    done.text().await.unwrap()
}

/// Waits for the login command to end; its output, with the rest of its stderr.
async fn finish(login: Running, mut stderr: Stderr) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        let mut child = login;
        let mut stdout = Vec::new();
        std::io::Read::read_to_end(child.0.stdout.as_mut().unwrap(), &mut stdout).unwrap();
        let mut rest = Vec::new();
        std::io::Read::read_to_end(&mut stderr, &mut rest).unwrap();
        let status = child.0.wait().unwrap();
        std::process::Output { status, stdout, stderr: rest }
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn rfc8628_login_device_polls_until_approved_and_caches_like_the_loopback_flow() {
    let (_dev, issuer) = dev_with_kubectl_client("device");
    let cache = std::env::temp_dir().join(format!("portcullis-login-device-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);

    let (login, user_code, stderr) = start_device_login(&issuer, &cache).await;
    assert_eq!(user_code.len(), 9, "{user_code}");
    let done = confirm_device_as_alice(&issuer, &user_code, "allow").await;
    assert!(done.contains("Device connected"), "{done}");
    let token = exec_credential_token(&finish(login, stderr).await);
    let claims = jwt_claims(&token);
    assert_eq!(claims["iss"], issuer.as_str());
    assert_eq!(claims["aud"], "kubectl");
    assert_eq!(claims["sub"], "alice");

    let cached = login_command(&issuer, &cache).arg("--device").output().unwrap();
    assert_eq!(exec_credential_token(&cached), token, "the cached ID token is reused without a new device code");
    std::fs::remove_dir_all(&cache).unwrap();
}

#[tokio::test]
async fn rfc8628_3_5_login_device_denied_ends_with_access_denied_and_a_failure() {
    let (_dev, issuer) = dev_with_kubectl_client("device-denied");
    let cache = std::env::temp_dir().join(format!("portcullis-login-denied-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);

    let (login, user_code, stderr) = start_device_login(&issuer, &cache).await;
    let done = confirm_device_as_alice(&issuer, &user_code, "deny").await;
    assert!(done.contains("Device not connected"), "{done}");
    let output = finish(login, stderr).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty(), "no credential is printed");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("portcullis login: the token endpoint answered access_denied"), "{stderr}");
    assert!(!cache.join("portcullis").exists(), "nothing is cached");
}

/// Terminates TLS on `listener` with `certificate` and `key`, forwarding each connection to
/// `backend` (plain http), as an Ingress in front of the provider does.
fn tls_front(listener: tokio::net::TcpListener, certificate: &std::path::Path, key: &std::path::Path, backend: String) {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(certificate).unwrap().map(Result::unwrap).collect();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, backend) = (acceptor.clone(), backend.clone());
            tokio::spawn(async move {
                let (Ok(mut tls), Ok(mut plain)) =
                    (acceptor.accept(tcp).await, tokio::net::TcpStream::connect(&backend).await)
                else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
}

// Two workers: the TLS front runs while the test waits on a child process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_reaches_an_https_issuer_verified_against_the_system_roots() {
    let dir = std::env::temp_dir().join(format!("portcullis-login-https-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (ca, certificate, key) = certificates::test_certificates(&dir.join("tls"));
    let front = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("https://127.0.0.1:{}", front.local_addr().unwrap().port());
    let manifests = dir.join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    for file in ["keys.yaml", "users.yaml", "clients.yaml"] {
        std::fs::copy(repo("tests/fixtures/manifests").join(file), manifests.join(file)).unwrap();
    }
    std::fs::copy(repo("docs/examples/kubectl-oidcclient.yaml"), manifests.join("kubectl.yaml")).unwrap();
    let (_dev, listening) =
        start_dev(&["--issuer".as_ref(), issuer.as_ref(), "--manifests".as_ref(), manifests.as_os_str()]);
    let backend = listening.split_whitespace().nth(4).unwrap().trim_start_matches("http://").to_owned();
    tls_front(front, &certificate, &key, backend.clone());
    let cache = dir.join("cache");

    // Not trusted: the roots (the server's own certificate) do not include the CA that signed it.
    let untrusted = login_command(&issuer, &cache).arg("--device").env("SSL_CERT_FILE", &certificate).output().unwrap();
    assert_eq!(untrusted.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&untrusted.stderr);
    assert!(stderr.contains("invalid peer certificate: UnknownIssuer"), "{stderr}");
    assert!(untrusted.stdout.is_empty());

    // Trusted through SSL_CERT_FILE: the device flow over https, the user on the provider's
    // plain port (the test's HTTP client speaks no TLS).
    let mut command = login_command(&issuer, &cache);
    command.arg("--device").env("SSL_CERT_FILE", &ca);
    let mut login = Running(command.spawn().unwrap());
    let mut stderr = BufReader::new(login.0.stderr.take().unwrap());
    let user_code = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        loop {
            line.clear();
            assert_ne!(stderr.read_line(&mut line).unwrap(), 0, "stderr ended early");
            if let Some(code) = line.trim().strip_prefix("Code: ") {
                return (code.to_owned(), stderr);
            }
        }
    })
    .await
    .unwrap();
    let (user_code, stderr) = user_code;
    let done = confirm_device_as_alice(&format!("http://{backend}"), &user_code, "allow").await;
    assert!(done.contains("Device connected"), "{done}");
    let token = exec_credential_token(&finish(login, stderr).await);
    assert_eq!(jwt_claims(&token)["iss"], issuer.as_str(), "issued for the https issuer");
    std::fs::remove_dir_all(&dir).unwrap();
}
