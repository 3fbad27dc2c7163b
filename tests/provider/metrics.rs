//! `/metrics` (Prometheus text exposition format), `/health`, `/ready` and request ids.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::harness::{Browser, TestServer, location_param, webapp_request};

/// One sample line of the text exposition format.
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A parsed `/metrics` page: HELP texts, TYPEs and samples.
struct Scrape {
    help: BTreeMap<String, String>,
    types: BTreeMap<String, String>,
    samples: Vec<Sample>,
}

/// A strict parser of the Prometheus text format (0.0.4): every line must be a HELP, a
/// TYPE or a well-formed sample with escaped label values, else the test fails. (The
/// Python client's parser checks the same page in `tests/rp/test_metrics.py`.)
fn parse(text: &str) -> Scrape {
    let mut scrape = Scrape { help: BTreeMap::new(), types: BTreeMap::new(), samples: Vec::new() };
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or_else(|| panic!("bad HELP: {line}"));
            scrape.help.insert(name.to_owned(), help.to_owned());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or_else(|| panic!("bad TYPE: {line}"));
            assert!(["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind), "{line}");
            scrape.types.insert(name.to_owned(), kind.to_owned());
        } else {
            scrape.samples.push(parse_sample(line));
        }
    }
    scrape
}

fn parse_sample(line: &str) -> Sample {
    let bad = || -> ! { panic!("not a valid sample line: {line}") };
    let mut chars = line.chars().peekable();
    let mut name = String::new();
    while let Some(&c) = chars.peek() {
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            name.push(c);
            chars.next();
        } else {
            break;
        }
    }
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        bad();
    }
    let mut labels = BTreeMap::new();
    if chars.peek() == Some(&'{') {
        chars.next();
        loop {
            if chars.peek() == Some(&'}') {
                chars.next();
                break;
            }
            let mut label = String::new();
            for c in chars.by_ref() {
                if c == '=' {
                    break;
                }
                if !(c.is_ascii_alphanumeric() || c == '_') {
                    bad();
                }
                label.push(c);
            }
            if label.is_empty() || chars.next() != Some('"') {
                bad();
            }
            let mut value = String::new();
            loop {
                match chars.next() {
                    Some('\\') => match chars.next() {
                        Some('n') => value.push('\n'),
                        Some(escaped @ ('\\' | '"')) => value.push(escaped),
                        _ => bad(),
                    },
                    Some('"') => break,
                    Some(c) => value.push(c),
                    None => bad(),
                }
            }
            labels.insert(label, value);
            match chars.next() {
                Some(',') => {}
                Some('}') => break,
                _ => bad(),
            }
        }
    }
    if chars.next() != Some(' ') {
        bad();
    }
    let value: String = chars.collect();
    let value = match value.as_str() {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().unwrap_or_else(|_| bad()),
    };
    Sample { name, labels, value }
}

/// Fetches `/metrics` from the main port (where these tests ask for it, so their scrapes are
/// counted like any request) and parses it.
async fn scrape(server: &TestServer) -> Scrape {
    scrape_from(server, &server.url("/metrics")).await
}

async fn scrape_from(server: &TestServer, url: &str) -> Scrape {
    let response = server.http.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    parse(&response.text().await.unwrap())
}

fn matches(sample: &Sample, name: &str, labels: &[(&str, &str)]) -> bool {
    sample.name == name && labels.iter().all(|(k, v)| sample.labels.get(*k).map(String::as_str) == Some(*v))
}

/// The sum of the matching series (0 when absent). For a histogram name, its `_count`.
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let name = match scrape.types.get(name).map(String::as_str) {
        Some("histogram") => format!("{name}_count"),
        _ => name.to_owned(),
    };
    scrape.samples.iter().filter(|s| matches(s, &name, labels)).map(|s| s.value).sum()
}

fn label_values(scrape: &Scrape, name: &str, label: &str) -> BTreeSet<String> {
    scrape.samples.iter().filter(|s| s.name == name).filter_map(|s| s.labels.get(label).cloned()).collect()
}

#[tokio::test]
async fn metrics_page_parses_and_lists_every_documented_metric_with_help() {
    let server = TestServer::start_with_metrics_on_main_port().await;
    server.m2m_token().await;
    server.post_basic("/token", "m2m", "m2m-secret", &[("grant_type", "password")]).await;
    let scrape = scrape(&server).await;
    for name in [
        "portcullis_http_requests_total",
        "portcullis_http_request_duration_seconds",
        "portcullis_tokens_issued_total",
        "portcullis_tokens_revoked_total",
        "portcullis_token_errors_total",
        "portcullis_logins_total",
        "portcullis_argon2_verifications_total",
        "portcullis_active_sessions",
        "portcullis_clients_registered_total",
        "portcullis_signing_key_age_seconds",
        "portcullis_store_operation_duration_seconds",
        "portcullis_store_errors_total",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
    ] {
        assert!(scrape.help.contains_key(name) && scrape.types.contains_key(name), "{name} has no HELP or TYPE");
    }
    assert!(value(&scrape, "process_resident_memory_bytes", &[]) > 0.0);
    let kids = label_values(&scrape, "portcullis_signing_key_age_seconds", "kid");
    assert!(!kids.is_empty(), "every published key has an age");
    let phases = label_values(&scrape, "portcullis_signing_key_age_seconds", "phase");
    assert!(phases.contains("active"), "{phases:?}");
}

/// The route templates whose request series exist from the start.
const ROUTES: &[&str] = &[
    "/.well-known/openid-configuration",
    "/.well-known/oauth-authorization-server",
    "/jwks.json",
    "/.well-known/jwks.json",
    "/authorize",
    "/login",
    "/consent",
    "/token",
    "/userinfo",
    "/introspect",
    "/revoke",
    "/logout",
    "/register",
    "/device_authorization",
    "/device",
];

/// Every `grant_type` label: the grants, a made-up one, none.
const GRANT_LABELS: &[&str] = &[
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "urn:ietf:params:oauth:grant-type:device_code",
    "unsupported",
    "none",
];

/// Prometheus instrumentation guidance: a series that appears only once it moves breaks
/// `rate()` and alerts, so every series with known labels is there, at 0, before anything.
#[tokio::test]
async fn a_fresh_metrics_page_lists_every_known_series_at_zero() {
    let server = TestServer::start().await;
    let scrape = scrape_from(&server, &format!("{}/metrics", server.metrics_base)).await;
    let at_zero =
        |name: &str, labels: &[(&str, &str)]| scrape.samples.iter().any(|s| matches(s, name, labels) && s.value == 0.0);
    for route in ROUTES {
        assert!(at_zero("portcullis_http_requests_total", &[("endpoint", route), ("status", "200")]), "{route}");
        assert!(at_zero("portcullis_http_request_duration_seconds_count", &[("endpoint", route)]), "{route}");
    }
    let zeros = |name: &str, label: &str| -> BTreeSet<String> {
        let samples = scrape.samples.iter().filter(|s| s.name == name && s.value == 0.0);
        samples.filter_map(|s| s.labels.get(label).cloned()).collect()
    };
    let grants: BTreeSet<String> = GRANT_LABELS.iter().map(|g| g.to_string()).collect();
    assert_eq!(zeros("portcullis_token_errors_total", "grant_type"), grants);
    let errors = zeros("portcullis_token_errors_total", "error");
    for error in [
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
        "server_error",
        "temporarily_unavailable",
        "access_denied",
        "authorization_pending",
        "slow_down",
        "expired_token",
    ] {
        assert!(errors.contains(error), "{error} missing: {errors:?}");
    }
    let issued = zeros("portcullis_tokens_issued_total", "grant_type");
    assert_eq!(issued, grants.iter().filter(|g| !["unsupported", "none"].contains(&g.as_str())).cloned().collect());
    assert_eq!(zeros("portcullis_tokens_issued_total", "client_id"), BTreeSet::from(["dynamic".to_owned()]));
    let results = zeros("portcullis_logins_total", "result");
    assert_eq!(results, ["success", "failure", "throttled"].iter().map(|r| r.to_string()).collect());
    assert_eq!(zeros("portcullis_argon2_verifications_total", "purpose").len(), 2);
    assert_eq!(zeros("portcullis_client_auth_throttled_total", "client_id"), BTreeSet::from(["dynamic".to_owned()]));
    for counter in ["portcullis_tokens_revoked_total", "portcullis_clients_registered_total"] {
        assert!(at_zero(counter, &[]), "{counter}");
    }
}

/// One of each flow; every counter moves by exactly what the flow did.
#[tokio::test]
async fn counters_move_by_exactly_the_flow_and_histograms_observe_it() {
    let server = TestServer::start_with_metrics_on_main_port().await;
    let before = scrape(&server).await;

    server.m2m_token().await;
    server.m2m_token().await;
    let browser = Browser::new(&server);
    let page = browser.authorize(&webapp_request("openid offline_access", "st", "n")).await.text().await.unwrap();
    let wrong = browser.login(&page, "alice", "not-her-password").await.text().await.unwrap();
    let unknown = browser.login(&wrong, "nobody", "whatever").await.text().await.unwrap();
    let after_login = browser.login(&unknown, "alice", "alice-password").await;
    let redirect = if after_login.status() == 303 {
        after_login
    } else {
        browser.consent(&after_login.text().await.unwrap(), "allow").await
    };
    let code = location_param(&redirect, "code").unwrap();
    let tokens: Value = server.exchange(&code, &[]).await.json().await.unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
    let refreshed = server.post_basic("/token", "webapp", "webapp-secret", &form).await;
    assert_eq!(refreshed.status(), 200);
    let refreshed: Value = refreshed.json().await.unwrap();
    let access = refreshed["access_token"].as_str().unwrap();
    let revoked = server.post_basic("/revoke", "webapp", "webapp-secret", &[("token", access)]).await;
    assert_eq!(revoked.status(), 200);
    let registered = server
        .http
        .post(server.url("/register"))
        .json(&serde_json::json!({"redirect_uris": ["https://rp.example/cb"], "client_name": "Metrics"}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    assert_eq!(server.exchange(&code, &[]).await.status(), 400, "a reused code is invalid_grant");

    let after = scrape(&server).await;
    let delta = |name: &str, labels: &[(&str, &str)]| value(&after, name, labels) - value(&before, name, labels);
    let issued = "portcullis_tokens_issued_total";
    assert_eq!(delta(issued, &[("grant_type", "client_credentials"), ("client_id", "m2m")]), 2.0);
    assert_eq!(delta(issued, &[("grant_type", "authorization_code"), ("client_id", "webapp")]), 1.0);
    assert_eq!(delta(issued, &[("grant_type", "refresh_token"), ("client_id", "webapp")]), 1.0);
    assert_eq!(delta(issued, &[]), 4.0);
    let errors = "portcullis_token_errors_total";
    assert_eq!(delta(errors, &[("grant_type", "authorization_code"), ("error", "invalid_grant")]), 1.0);
    assert_eq!(delta(errors, &[]), 1.0);
    assert_eq!(delta("portcullis_logins_total", &[("result", "success")]), 1.0);
    assert_eq!(delta("portcullis_logins_total", &[("result", "failure")]), 2.0, "a wrong password, an unknown user");
    assert_eq!(delta("portcullis_logins_total", &[("result", "throttled")]), 0.0);
    assert_eq!(delta("portcullis_argon2_verifications_total", &[("purpose", "password")]), 3.0);
    assert_eq!(delta("portcullis_tokens_revoked_total", &[]), 1.0);
    assert_eq!(delta("portcullis_clients_registered_total", &[]), 1.0);
    assert_eq!(value(&after, "portcullis_active_sessions", &[]), 1.0, "alice's session");
    let token_requests = [("endpoint", "/token"), ("method", "POST")];
    assert_eq!(
        delta("portcullis_http_requests_total", &[("status", "200"), token_requests[0], token_requests[1]]),
        4.0
    );
    assert_eq!(
        delta("portcullis_http_requests_total", &[("status", "400"), token_requests[0], token_requests[1]]),
        1.0
    );
    assert_eq!(
        delta("portcullis_http_request_duration_seconds", &[("endpoint", "/token")]),
        5.0,
        "one observation per token request"
    );
    assert_eq!(delta("portcullis_http_requests_total", &[("endpoint", "/metrics")]), 1.0, "the first scrape");
    assert!(delta("portcullis_store_operation_duration_seconds", &[("op", "consume_code")]) == 2.0);
    assert!(delta("portcullis_store_operation_duration_seconds", &[("op", "put_session")]) == 1.0);
    assert_eq!(delta("portcullis_store_errors_total", &[]), 0.0);
}

/// Labels come from fixed sets: random paths, methods and client ids add no series.
#[tokio::test]
async fn label_cardinality_stays_bounded_under_random_paths_and_client_ids() {
    let server = TestServer::start_with_metrics_on_main_port().await;
    server.m2m_token().await;
    let baseline = scrape(&server).await.samples.len();
    for i in 0..40 {
        let path = format!("/random-{i}/{}", i * 7919);
        server.http.get(server.url(&path)).send().await.unwrap();
        let client = format!("client-{i}");
        server.post_basic("/token", &client, "nope", &[("grant_type", "client_credentials")]).await;
        let grant = format!("urn:made-up:{i}");
        server.post_basic("/token", "m2m", "m2m-secret", &[("grant_type", &grant)]).await;
        server.http.get(server.url("/authorize")).query(&[("client_id", &client)]).send().await.unwrap();
        server.http.get(server.url(&format!("/register/{client}"))).send().await.unwrap();
        let method = reqwest::Method::from_bytes(format!("X{i}").as_bytes()).unwrap();
        server.http.request(method, server.url("/token")).send().await.unwrap();
    }
    let scrape = scrape(&server).await;
    let endpoints = label_values(&scrape, "portcullis_http_requests_total", "endpoint");
    let expected: BTreeSet<String> =
        ROUTES.iter().chain(&["/register/{client_id}", "unmatched", "/metrics"]).map(|s| s.to_string()).collect();
    assert_eq!(endpoints, expected, "the routes (created at start) and the ones these requests reached");
    let methods = label_values(&scrape, "portcullis_http_requests_total", "method");
    assert!(methods.iter().all(|m| ["GET", "POST", "other"].contains(&m.as_str())), "{methods:?}");
    let clients = label_values(&scrape, "portcullis_tokens_issued_total", "client_id");
    assert_eq!(clients, BTreeSet::from(["m2m".to_owned(), "dynamic".to_owned()]));
    let grants = label_values(&scrape, "portcullis_token_errors_total", "grant_type");
    assert_eq!(grants, GRANT_LABELS.iter().map(|g| g.to_string()).collect(), "made-up grants are `unsupported`");
    let grown = scrape.samples.len() - baseline;
    assert!(grown < 120, "240 random requests added {grown} samples: labels are not bounded");
}

#[tokio::test]
async fn request_id_is_echoed_or_generated() {
    let server = TestServer::start().await;
    let given = server.http.get(server.url("/health")).header("x-request-id", "abc-123").send().await.unwrap();
    assert_eq!(given.headers()["x-request-id"], "abc-123");
    let forged = server.http.get(server.url("/jwks.json")).header("x-request-id", "a\"b c").send().await.unwrap();
    let replaced = forged.headers()["x-request-id"].to_str().unwrap();
    assert!(!replaced.is_empty() && replaced != "a\"b c");
    let first = server.http.get(server.url("/nowhere")).send().await.unwrap();
    let second = server.http.get(server.url("/nowhere")).send().await.unwrap();
    let (a, b) = (&first.headers()["x-request-id"], &second.headers()["x-request-id"]);
    assert!(a.len() >= 16, "generated ids are long enough to be unique");
    assert_ne!(a, b);
}

#[tokio::test]
async fn health_and_ready_answer_json_and_are_not_cached() {
    let server = TestServer::start().await;
    for (path, status) in [("/health", "ok"), ("/ready", "ready")] {
        let response = server.http.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["cache-control"], "no-store");
        assert_eq!(response.json::<Value>().await.unwrap()["status"], status);
    }
}

/// Every `portcullis_*` metric the shipped dashboard and alert rules query, as exported.
fn queried_metrics(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("portcullis_") {
        let tail = &rest[start..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        let name = &tail[..end];
        let family = ["_bucket", "_count", "_sum"].iter().fold(name, |n, suffix| n.strip_suffix(suffix).unwrap_or(n));
        names.insert(family.to_owned());
        rest = &tail[end..];
    }
    names
}

#[tokio::test]
async fn the_shipped_dashboard_and_alert_rules_query_only_exported_metrics() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/monitoring");
    let dashboard = std::fs::read_to_string(root.join("grafana-dashboard.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&dashboard).expect("the dashboard is JSON");
    let exprs: Vec<&str> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|panel| panel["targets"].as_array().into_iter().flatten())
        .map(|target| target["expr"].as_str().unwrap())
        .collect();
    assert!(exprs.len() >= 15, "requests, latency, tokens, logins, store, keys, process");
    let rules = std::fs::read_to_string(root.join("prometheus-rules.yaml")).unwrap();
    let rules: serde_yaml_ng::Value = serde_yaml_ng::from_str(&rules).expect("the rules are YAML");
    let rule_exprs: Vec<String> = rules["groups"][0]["rules"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|rule| {
            assert!(rule["alert"].as_str().is_some() && rule["annotations"]["summary"].as_str().is_some());
            rule["expr"].as_str().unwrap().to_owned()
        })
        .collect();
    let queried = queried_metrics(&format!("{}\n{}", exprs.join("\n"), rule_exprs.join("\n")));

    let server = TestServer::start_with_metrics_on_main_port().await;
    server.m2m_token().await;
    server.post_basic("/token", "m2m", "m2m-secret", &[("grant_type", "password")]).await;
    let exported = scrape(&server).await;
    for name in &queried {
        assert!(exported.types.contains_key(name), "{name} is queried but not exported");
    }
    assert!(queried.len() >= 10, "{queried:?}");
}

/// Anyone may register clients under the open policy, so they must not each get a series.
#[tokio::test]
async fn dynamically_registered_clients_share_one_client_id_label() {
    let server = TestServer::start_with_metrics_on_main_port().await;
    for _ in 0..3 {
        let metadata = serde_json::json!({"grant_types": ["client_credentials"], "scope": "profile"});
        let registered: Value =
            server.http.post(server.url("/register")).json(&metadata).send().await.unwrap().json().await.unwrap();
        let (id, secret) = (registered["client_id"].as_str().unwrap(), registered["client_secret"].as_str().unwrap());
        let issued = server.post_basic("/token", id, secret, &[("grant_type", "client_credentials")]).await;
        assert_eq!(issued.status(), 200);
    }
    let scrape = scrape(&server).await;
    let clients = label_values(&scrape, "portcullis_tokens_issued_total", "client_id");
    assert_eq!(clients, BTreeSet::from(["dynamic".to_owned()]));
    let issued = [("grant_type", "client_credentials"), ("client_id", "dynamic")];
    assert_eq!(value(&scrape, "portcullis_tokens_issued_total", &issued), 3.0);
    assert_eq!(value(&scrape, "portcullis_clients_registered_total", &[]), 3.0);
}

/// By default `/metrics` is only on the metrics listener (`--metrics-listen`): the main port,
/// which faces users, answers it like any unknown path.
#[tokio::test]
async fn metrics_are_on_the_metrics_listener_and_on_the_main_port_only_when_asked() {
    let server = TestServer::start().await;
    let main = server.http.get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(main.status(), 404);
    assert_eq!(main.text().await.unwrap(), "not found\n");
    let scrape = scrape_from(&server, &format!("{}/metrics", server.metrics_base)).await;
    assert!(scrape.types.contains_key("portcullis_logins_total"));
    let opted_in = TestServer::start_with_metrics_on_main_port().await;
    assert_eq!(opted_in.http.get(opted_in.url("/metrics")).send().await.unwrap().status(), 200);
}

/// Whether a username exists, or whether a disabled user's password was right, cannot be
/// read from the counters: failures are one result (the reason is in the audit log only).
#[tokio::test]
async fn login_results_are_only_success_failure_and_throttled() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    let page = browser.authorize(&webapp_request("openid", "st", "n")).await.text().await.unwrap();
    let page = browser.login(&page, "alice", "not-her-password").await.text().await.unwrap();
    let page = browser.login(&page, "nobody", "whatever").await.text().await.unwrap();
    browser.login(&page, "alice", "alice-password").await;
    let scrape = scrape_from(&server, &format!("{}/metrics", server.metrics_base)).await;
    let results = label_values(&scrape, "portcullis_logins_total", "result");
    let public: BTreeSet<String> = ["success", "failure", "throttled"].iter().map(|s| s.to_string()).collect();
    assert_eq!(results, public);
    assert_eq!(value(&scrape, "portcullis_logins_total", &[("result", "failure")]), 2.0);
}
