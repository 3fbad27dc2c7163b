//! A `portcullis serve --manifests` process for the tests that drive real replicas: killed
//! when dropped, its log kept in a file the test can read; and the browser steps that
//! sign a user in through replicas.
// Each test crate that includes this uses part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use reqwest::Url;

pub const ISSUER: &str = "http://id.portcullis.test";
/// The fixture `webapp` client's redirect URI.
pub const REDIRECT: &str = "http://127.0.0.1:9000/callback";

/// A `portcullis serve` process, killed when dropped.
pub struct Replica {
    child: Child,
    pub base: String,
    /// Secrets this replica generated and printed, by client id.
    pub generated: Vec<(String, String)>,
    /// Its metrics listener, when started with `--metrics-listen`.
    pub metrics: Option<String>,
    log: PathBuf,
}

impl Replica {
    /// Starts a replica on `redis_url` with the manifests of `folder`, `extra` flags added.
    pub fn start(redis_url: &str, prefix: &str, folder: &Path, extra: &[&str]) -> Self {
        let log = std::env::temp_dir().join(format!(
            "portcullis-replica-{}-{}.log",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
        ));
        let child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["serve", "--listen", "127.0.0.1:0", "--issuer", ISSUER, "--redis-timeout", "500ms"])
            .args(["--redis-url", redis_url, "--redis-key-prefix", prefix])
            .args(extra)
            .arg("--manifests")
            .arg(folder)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        // Owned by the guard from here on, so a failed start still kills the process.
        let mut replica = Replica { child, base: String::new(), generated: Vec::new(), metrics: None, log };
        let stdout = BufReader::new(replica.child.stdout.take().unwrap());
        for line in stdout.lines() {
            let line = line.unwrap();
            if let Some(rest) = line.strip_prefix("Metrics on ") {
                replica.metrics = Some(rest.trim_end_matches("/metrics").to_owned());
            }
            if let Some(rest) = line.strip_prefix("Generated a secret for client `") {
                let (client_id, rest) = rest.split_once('`').unwrap();
                replica.generated.push((client_id.to_owned(), rest.rsplit(' ').next().unwrap().to_owned()));
            }
            if let Some(rest) = line.strip_prefix("Portcullis serve listening on ") {
                replica.base = rest.split_whitespace().next().unwrap().to_owned();
                return replica;
            }
        }
        panic!("portcullis serve did not start: {}", replica.log());
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The sum of the series of `name` with the label `label`, from the metrics listener.
    pub async fn metric(&self, name: &str, label: &str) -> f64 {
        let metrics = self.metrics.as_ref().expect("started with a metrics listener");
        let page = reqwest::get(format!("{metrics}/metrics")).await.unwrap().text().await.unwrap();
        page.lines()
            .filter(|line| line.starts_with(&format!("{name}{{")) && line.contains(label))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// What the replica logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The `value` of the hidden input named `name` in a page.
pub fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).unwrap() + marker.len();
    page[start..].split('"').next().unwrap().to_owned()
}

/// A query parameter of a redirect's `Location`.
pub fn param(response: &reqwest::Response, name: &str) -> Option<String> {
    let location = Url::parse(response.headers().get("location")?.to_str().unwrap()).unwrap();
    location.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// A browser: keeps cookies, does not follow redirects.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).cookie_store(true).build().unwrap()
}

/// A `webapp` authorization request for `scope`.
pub fn authorize_params(scope: &str) -> Vec<(&str, &str)> {
    vec![
        ("client_id", "webapp"),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("scope", scope),
        ("state", "s"),
    ]
}

/// Signs `alice` in to `webapp`: starts the login on `first`, posts the password to `second`, consents on `first`.
pub async fn sign_in(browser: &reqwest::Client, first: &Replica, second: &Replica, scope: &str) -> String {
    sign_in_with(browser, first, second, &authorize_params(scope)).await
}

/// [`sign_in`] with the given authorization request.
pub async fn sign_in_with(
    browser: &reqwest::Client,
    first: &Replica,
    second: &Replica,
    params: &[(&str, &str)],
) -> String {
    let page = browser.get(first.url("/authorize")).query(params).send().await.unwrap();
    assert_eq!(page.status(), 200);
    finish_sign_in(browser, page, second, first).await
}

/// Signs `alice` in from a login `page` already served: posts the password to `login`,
/// consents on `consent`, and returns the code.
pub async fn finish_sign_in(
    browser: &reqwest::Client,
    page: reqwest::Response,
    login: &Replica,
    consent: &Replica,
) -> String {
    let page = page.text().await.unwrap();
    let form = [
        ("interaction", hidden(&page, "interaction")),
        ("csrf_token", hidden(&page, "csrf_token")),
        ("username", "alice".into()),
        ("password", "alice-password".into()),
    ];
    let consent_page = browser.post(login.url("/login")).form(&form).send().await.unwrap();
    assert_eq!(consent_page.status(), 200, "the other replica knows the interaction");
    let consent_page = consent_page.text().await.unwrap();
    let form = [
        ("interaction", hidden(&consent_page, "interaction")),
        ("csrf_token", hidden(&consent_page, "csrf_token")),
        ("decision", "allow".into()),
    ];
    let redirect = browser.post(consent.url("/consent")).form(&form).send().await.unwrap();
    assert_eq!(redirect.status(), 303);
    assert_eq!(param(&redirect, "iss").as_deref(), Some(ISSUER));
    param(&redirect, "code").unwrap()
}

/// Calls the token endpoint as the fixture `webapp` client.
pub async fn token(replica: &Replica, form: &[(&str, &str)]) -> reqwest::Response {
    reqwest::Client::new()
        .post(replica.url("/token"))
        .basic_auth("webapp", Some("webapp-secret"))
        .form(form)
        .send()
        .await
        .unwrap()
}
