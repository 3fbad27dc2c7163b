//! Starts a provider on a loopback port with the fixture manifests.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis::dev::{self, DevOptions};
use serde_json::Value;
use tokio::sync::oneshot;

pub struct TestServer {
    pub base: String,
    pub http: reqwest::Client,
    /// Secrets `dev` generated, by client id.
    pub generated: HashMap<String, String>,
    _stop: oneshot::Sender<()>,
}

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/manifests")
}

impl TestServer {
    pub async fn start() -> Self {
        let listener = dev::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let options = DevOptions {
            issuer: base.clone(),
            manifests: Some(fixtures()),
            access_token_ttl: Duration::from_secs(3600),
        };
        let built = dev::build(&options).await.unwrap();
        let generated = built.generated.iter().map(|g| (g.client_id.clone(), g.client_secret.clone())).collect();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(dev::serve(listener, built.provider, async {
            let _ = stopped.await;
        }));
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { base, http, generated, _stop: stop }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POSTs a form with HTTP Basic client authentication.
    pub async fn post_basic(&self, path: &str, id: &str, secret: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http.post(self.url(path)).basic_auth(id, Some(secret)).form(form).send().await.unwrap()
    }

    /// A client_credentials access token for the `m2m` client.
    pub async fn m2m_token(&self) -> String {
        let response = self.post_basic("/token", "m2m", "m2m-secret", &[("grant_type", "client_credentials")]).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }
}

/// Decodes a JWT part without verifying it (verification is tested separately).
pub fn jwt_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// Asserts an RFC 6749 §5.2 error response and returns its body.
pub async fn assert_oauth_error(response: reqwest::Response, status: u16, error: &str) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].as_str().is_some_and(|d| !d.is_empty()), "{body}");
    body
}
