//! The `portcullis` binary as operators observe it: its log output over a full flow (no
//! secret in it, audit events, request ids), `/ready` following Redis, JSON logs by default
//! in `serve`, the separate metrics port, and OTLP span export to a stand-in collector.

#[path = "support/redis_server.rs"]
mod redis_server;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use redis_server::RedisServer;
use reqwest::cookie::{CookieStore, Jar};
use serde_json::Value;
use tokio::sync::mpsc;

/// A `portcullis` process whose stderr (its logs) goes to a file; killed when dropped.
struct Running {
    child: Child,
    base: String,
    metrics: Option<String>,
    log: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/manifests")
}

/// Starts `portcullis ARGS` and waits for its "listening" line.
fn start(args: &[&str], env: &[(&str, &str)], name: &str) -> Running {
    let log = std::env::temp_dir().join(format!("portcullis-observability-{}-{name}.log", std::process::id()));
    let stderr = std::fs::File::create(&log).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    command.args(args).stdout(Stdio::piped()).stderr(stderr).env_remove("RUST_LOG");
    for variable in ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] {
        command.env_remove(variable);
    }
    command.envs(env.iter().copied());
    let mut running = Running { child: command.spawn().unwrap(), base: String::new(), metrics: None, log };
    let stdout = BufReader::new(running.child.stdout.take().unwrap());
    for line in stdout.lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("Metrics on ") {
            running.metrics = Some(rest.trim_end_matches("/metrics").to_owned());
        }
        if let Some(rest) = line.split_once(" listening on ").map(|(_, rest)| rest) {
            running.base = rest.split_whitespace().next().unwrap().to_owned();
            return running;
        }
    }
    panic!("portcullis did not start: {}", std::fs::read_to_string(&running.log).unwrap_or_default());
}

impl Running {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn log_lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log).unwrap().lines().map(str::to_owned).collect()
    }
}

fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).unwrap_or_else(|| panic!("no {name} in {page}")) + marker.len();
    page[start..].split('"').next().unwrap().to_owned()
}

fn location_param(response: &reqwest::Response, name: &str) -> Option<String> {
    let location = response.headers().get("location")?.to_str().unwrap();
    let url = reqwest::Url::parse(location).unwrap();
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

const REDIRECT: &str = "http://127.0.0.1:9000/callback";

/// Everything secret the flow handled, to look for in the logs afterwards.
#[derive(Default)]
struct Secrets(Vec<String>);

impl Secrets {
    fn add(&mut self, value: &str) {
        assert!(value.len() >= 8, "too short to search for reliably: {value}");
        self.0.push(value.to_owned());
    }

    fn add_json(&mut self, body: &Value, fields: &[&str]) {
        for field in fields {
            if let Some(value) = body[*field].as_str() {
                self.add(value);
            }
        }
    }
}

/// A browser that keeps cookies (so their values can be collected too).
struct Browser {
    http: reqwest::Client,
    jar: Arc<Jar>,
}

impl Browser {
    fn new() -> Self {
        let jar = Arc::new(Jar::default());
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_provider(Arc::clone(&jar))
            .build()
            .unwrap();
        Self { http, jar }
    }

    async fn authorize(&self, server: &Running, scope: &str) -> reqwest::Response {
        let params = [
            ("client_id", "webapp"),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", scope),
            ("state", "state-value"),
            ("nonce", "nonce-value"),
        ];
        self.http.get(server.url("/authorize")).query(&params).send().await.unwrap()
    }

    async fn submit(&self, server: &Running, path: &str, page: &str, extra: &[(&str, &str)]) -> reqwest::Response {
        let mut form = vec![("interaction", hidden(page, "interaction")), ("csrf_token", hidden(page, "csrf_token"))];
        form.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        self.http.post(server.url(path)).header("x-request-id", "flow-request-1").form(&form).send().await.unwrap()
    }

    fn cookie_values(&self, server: &Running, secrets: &mut Secrets) {
        let url = reqwest::Url::parse(&server.base).unwrap();
        if let Some(header) = self.jar.cookies(&url) {
            for pair in header.to_str().unwrap().split("; ") {
                secrets.add(pair.split_once('=').unwrap().1);
            }
        }
    }
}

async fn token(server: &Running, id: &str, secret: &str, form: &[(&str, &str)]) -> reqwest::Response {
    reqwest::Client::new().post(server.url("/token")).basic_auth(id, Some(secret)).form(form).send().await.unwrap()
}

/// Every flow the provider serves, with the secrets it handled; the logs must name none of
/// them, and must carry one audit event of each kind the provider emits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_flow_logs_carry_audit_events_and_request_ids_but_no_secret() {
    let manifests = fixtures();
    let args = [
        "dev",
        "--listen",
        "127.0.0.1:0",
        "--metrics-on-main-port",
        "--log-format",
        "json",
        "--manifests",
        manifests.to_str().unwrap(),
    ];
    let server = start(&args, &[("RUST_LOG", "debug,portcullis=trace")], "flow");
    let mut secrets = Secrets::default();
    for value in ["alice-password", "wrong-password-1", "webapp-secret", "m2m-secret"] {
        secrets.add(value);
    }
    let http = reqwest::Client::new();
    let browser = Browser::new();

    // Login: one wrong password, then success; consent denied, then granted.
    let page = browser.authorize(&server, "openid offline_access").await.text().await.unwrap();
    secrets.add(&hidden(&page, "csrf_token"));
    secrets.add(&hidden(&page, "interaction"));
    let wrong = [("username", "alice"), ("password", "wrong-password-1")];
    let page = browser.submit(&server, "/login", &page, &wrong).await.text().await.unwrap();
    let right = [("username", "alice"), ("password", "alice-password")];
    let consent = browser.submit(&server, "/login", &page, &right).await.text().await.unwrap();
    browser.submit(&server, "/consent", &consent, &[("decision", "deny")]).await;
    let consent = browser.authorize(&server, "openid offline_access").await.text().await.unwrap();
    let redirect = browser.submit(&server, "/consent", &consent, &[("decision", "allow")]).await;
    let code = location_param(&redirect, "code").expect("a code");
    secrets.add(&code);
    browser.cookie_values(&server, &mut secrets);

    // Code exchange, refresh, and a replay of the rotated-out refresh token.
    let form = [("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)];
    let tokens: Value = token(&server, "webapp", "webapp-secret", &form).await.json().await.unwrap();
    secrets.add_json(&tokens, &["access_token", "refresh_token", "id_token"]);
    let first_refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let form = [("grant_type", "refresh_token"), ("refresh_token", &first_refresh)];
    let refreshed: Value = token(&server, "webapp", "webapp-secret", &form).await.json().await.unwrap();
    secrets.add_json(&refreshed, &["access_token", "refresh_token", "id_token"]);
    // Past the grace for concurrent refreshes (whole seconds), it is a replay.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let replay = token(&server, "webapp", "webapp-secret", &form).await;
    assert_eq!(replay.status(), 400, "a replayed refresh token is refused");

    // Client credentials, introspection, revocation.
    let m2m: Value =
        token(&server, "m2m", "m2m-secret", &[("grant_type", "client_credentials")]).await.json().await.unwrap();
    let m2m_token = m2m["access_token"].as_str().unwrap();
    secrets.add(m2m_token);
    let introspected =
        http.post(server.url("/introspect")).basic_auth("m2m", Some("m2m-secret")).form(&[("token", m2m_token)]);
    assert_eq!(introspected.send().await.unwrap().status(), 200);
    // From a browser on an origin that is none of m2m's web origins: no CORS answer, audited.
    let revoked = http.post(server.url("/revoke")).header("origin", "https://evil.example");
    let revoked = revoked.basic_auth("m2m", Some("m2m-secret")).form(&[("token", m2m_token)]).send().await.unwrap();
    assert_eq!(revoked.status(), 200);
    assert!(revoked.headers().get("access-control-allow-origin").is_none());

    // Dynamic registration (RFC 7591) and deletion (RFC 7592).
    let metadata = serde_json::json!({"redirect_uris": ["https://rp.example/cb"], "client_name": "Logged"});
    let registered: Value =
        http.post(server.url("/register")).json(&metadata).send().await.unwrap().json().await.unwrap();
    secrets.add_json(&registered, &["client_secret", "registration_access_token"]);
    let client_id = registered["client_id"].as_str().unwrap();
    let deleted = http
        .delete(server.url(&format!("/register/{client_id}")))
        .bearer_auth(registered["registration_access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);

    // Logout with the ID token as hint, then failed logins until throttled.
    let id_token = refreshed["id_token"].as_str().unwrap();
    let logout = browser.http.get(server.url("/logout")).query(&[("id_token_hint", id_token)]).send().await.unwrap();
    assert_eq!(logout.status(), 200);
    let mut page = browser.authorize(&server, "openid").await.text().await.unwrap();
    let mut throttled = false;
    for _ in 0..6 {
        let response = browser.submit(&server, "/login", &page, &wrong).await;
        throttled = response.status() == 429;
        page = response.text().await.unwrap();
    }
    assert!(throttled, "the sixth failure in a row is throttled");
    for probe in ["/health", "/ready", "/metrics"] {
        http.get(server.url(probe)).send().await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    let lines = server.log_lines();
    let log = lines.join("\n");
    for secret in &secrets.0 {
        assert!(!log.contains(secret.as_str()), "a secret value appears in the logs: {secret}");
    }
    let entries: Vec<Value> =
        lines.iter().map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}"))).collect();
    let audits: Vec<&Value> = entries.iter().filter(|e| e["fields"]["audit"] == true).collect();
    let names: BTreeSet<&str> = audits.iter().filter_map(|e| e["fields"]["event"].as_str()).collect();
    let expected = BTreeSet::from([
        "login_succeeded",
        "login_failed",
        "login_throttled",
        "consent_granted",
        "consent_denied",
        "token_issued",
        "token_refreshed",
        "refresh_reuse_detected",
        "token_revoked",
        "client_registered",
        "client_deleted",
        "logout",
        "cors_origin_refused",
    ]);
    assert_eq!(names, expected, "one of each provider audit event (key_rotated is the controller's)");
    for audit in &audits {
        assert_eq!(audit["target"], "portcullis::audit");
        assert_eq!(audit["level"], "INFO");
        assert!(audit["fields"]["request_id"].as_str().is_some_and(|id| !id.is_empty()), "{audit}");
        assert_eq!(audit["fields"]["source_ip"], "127.0.0.1", "{audit}");
    }
    let refused = audits.iter().find(|e| e["fields"]["event"] == "cors_origin_refused").unwrap();
    assert_eq!(refused["fields"]["client_id"], "m2m");
    assert_eq!(refused["fields"]["origin"], "https://evil.example");
    let succeeded = audits.iter().find(|e| e["fields"]["event"] == "login_succeeded").unwrap();
    assert_eq!(succeeded["fields"]["client_id"], "webapp");
    assert_eq!(succeeded["fields"]["subject"].as_str().map(str::is_empty), Some(false));
    assert_eq!(succeeded["fields"]["request_id"], "flow-request-1", "the caller's x-request-id");
    let reasons: BTreeSet<&str> = audits
        .iter()
        .filter(|e| e["fields"]["event"] == "login_failed")
        .filter_map(|e| e["fields"]["reason"].as_str())
        .collect();
    assert_eq!(reasons, BTreeSet::from(["bad_password"]), "why a login failed is in the audit log (only)");
    let in_request: Vec<&Value> = entries.iter().filter(|e| e["span"]["request_id"] == "flow-request-1").collect();
    assert!(in_request.iter().any(|e| e["fields"]["message"] == "request finished"), "the access log names it");
    let paths: BTreeSet<&str> = entries.iter().filter_map(|e| e["span"]["path"].as_str()).collect();
    for probe in ["/health", "/ready", "/metrics"] {
        assert!(!paths.contains(probe), "{probe} is not access-logged");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_logs_json_by_default_serves_metrics_on_its_own_port_and_ready_follows_redis() {
    let mut redis = RedisServer::start("observability-secret");
    let url = redis.url("observability-secret");
    let manifests = fixtures();
    let args = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
        "--redis-url",
        &url,
        "--redis-timeout",
        "300ms",
        "--manifests",
        manifests.to_str().unwrap(),
    ];
    let server = start(&args, &[], "serve");
    let metrics = server.metrics.clone().expect("the metrics address is printed");
    let http = reqwest::Client::new();
    assert_eq!(http.get(server.url("/ready")).send().await.unwrap().status(), 200);
    for path in ["/metrics", "/health", "/ready"] {
        assert_eq!(http.get(format!("{metrics}{path}")).send().await.unwrap().status(), 200, "{path}");
    }
    assert_eq!(http.get(format!("{metrics}/token")).send().await.unwrap().status(), 404, "only the probes");
    assert_eq!(
        http.get(server.url("/metrics")).send().await.unwrap().status(),
        404,
        "not on the main port unless asked"
    );

    redis.stop();
    let missing = wait_for_ready(&http, &server, 503).await;
    assert_eq!(missing["missing"], serde_json::json!(["store"]));
    assert_eq!(http.get(server.url("/health")).send().await.unwrap().status(), 200, "liveness needs no store");
    let page = http.get(format!("{metrics}/metrics")).send().await.unwrap().text().await.unwrap();
    let ping_errors = page
        .lines()
        .find(|l| l.starts_with("portcullis_store_errors_total{op=\"ping\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap();
    assert!(ping_errors >= 1.0, "the failed pings are counted: {ping_errors}");
    redis.restart();
    wait_for_ready(&http, &server, 200).await;

    let lines = server.log_lines();
    assert!(!lines.is_empty());
    for line in &lines {
        let entry: Value = serde_json::from_str(line).unwrap_or_else(|_| panic!("serve logs JSON by default: {line}"));
        assert!(entry["level"].is_string() && entry["timestamp"].is_string(), "{line}");
    }
    assert!(lines.iter().any(|l| l.contains("readiness: the store")), "the outage is logged");
}

/// Polls `/ready` until it answers `status`; returns the body.
async fn wait_for_ready(http: &reqwest::Client, server: &Running, status: u16) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let response = http.get(server.url("/ready")).send().await.unwrap();
        if response.status() == status {
            assert_eq!(response.headers()["content-type"], "application/json");
            return response.json().await.unwrap();
        }
        assert!(Instant::now() < deadline, "/ready did not become {status} within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A stand-in OTLP/HTTP collector: decodes every `/v1/traces` export and hands the spans over.
async fn collector() -> (String, mpsc::UnboundedReceiver<(Span, Vec<String>)>) {
    let (sender, receiver) = mpsc::unbounded_channel();
    let export = move |body: Bytes| {
        let sender = sender.clone();
        async move {
            let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf export");
            for resource in request.resource_spans {
                let service: Vec<String> = resource
                    .resource
                    .iter()
                    .flat_map(|r| &r.attributes)
                    .filter(|a| a.key == "service.name")
                    .map(|a| format!("{:?}", a.value))
                    .collect();
                for span in resource.scope_spans.into_iter().flat_map(|s| s.spans) {
                    let _ = sender.send((span, service.clone()));
                }
            }
            ([("content-type", "application/x-protobuf")], Vec::<u8>::new())
        }
    };
    let app = axum::Router::new().route("/v1/traces", axum::routing::post(export));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}"), receiver)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_spans_arrive_as_children_of_the_callers_traceparent() {
    let (endpoint, mut spans) = collector().await;
    let manifests = fixtures();
    let env = [("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()), ("OTEL_BSP_SCHEDULE_DELAY", "100")];
    let args = ["dev", "--listen", "127.0.0.1:0", "--manifests", manifests.to_str().unwrap()];
    let server = start(&args, &env, "otlp");
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let response = reqwest::Client::new()
        .post(server.url("/token"))
        .header("traceparent", format!("00-{trace_id}-{caller_span}-01"))
        .basic_auth("m2m", Some("m2m-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let mut received: Vec<(Span, Vec<String>)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let has_request = |received: &[(Span, Vec<String>)]| received.iter().any(|(s, _)| s.name == "POST /token");
    while !has_request(&received) {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining, spans.recv()).await {
            Ok(Some(span)) => received.push(span),
            _ => panic!(
                "no request span exported within 20 s: {:?}",
                received.iter().map(|(s, _)| &s.name).collect::<Vec<_>>()
            ),
        }
    }
    let (request, service) = received.iter().find(|(s, _)| s.name == "POST /token").unwrap();
    assert_eq!(hex(&request.trace_id), trace_id, "the caller's trace");
    assert_eq!(hex(&request.parent_span_id), caller_span, "the caller's span is the parent");
    assert!(service.iter().any(|s| s.contains("portcullis")), "service.name: {service:?}");
    let status = request.attributes.iter().find(|a| a.key == "http.response.status_code");
    assert!(status.is_some_and(|a| format!("{:?}", a.value).contains("200")), "{:?}", request.attributes);
    // Children are exported as they end, before the request span.
    let children: Vec<&Span> =
        received.iter().map(|(s, _)| s).filter(|s| s.parent_span_id == request.span_id).collect();
    assert!(
        children.iter().any(|s| s.name == "sign"),
        "a signing span: {:?}",
        children.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    assert!(children.iter().any(|s| s.name == "client"), "a store span for the client lookup");
    assert!(children.iter().all(|s| hex(&s.trace_id) == trace_id));
}
