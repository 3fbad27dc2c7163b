//! Property tests over the real router, in process: arbitrary methods, paths (biased
//! towards the real endpoints), headers, query strings and bodies never produce a 5xx or a
//! panic, never echo a client secret or password, and every 4xx JSON body is a valid
//! RFC 6749 §5.2 error object.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, Uri};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use portcullis::provider::{self, Provider, RegistrationPolicy};
use portcullis::server::{self, ServerOptions};
use portcullis::vocabulary::Scope;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use tower::ServiceExt;

/// Secrets of the fixture manifests: client secrets and user passwords.
const SECRETS: &[&str] = &["m2m-secret", "webapp-secret", "m2m-post-secret", "alice-password", "bob-password"];

/// RFC 6749 §4.1.2.1, §5.2; RFC 6750 §3.1; RFC 7009 §2.2.1; RFC 7591 §3.2.2; OIDC Core §3.1.2.6.
const REGISTERED_ERRORS: &[&str] = &[
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "access_denied",
    "unsupported_response_type",
    "unsupported_token_type",
    "invalid_token",
    "insufficient_scope",
    "server_error",
    "temporarily_unavailable",
    "login_required",
    "consent_required",
    "interaction_required",
    "account_selection_required",
    "request_not_supported",
    "request_uri_not_supported",
    "invalid_request_uri",
    "invalid_request_object",
    "invalid_redirect_uri",
    "invalid_client_metadata",
    "invalid_software_statement",
    "unapproved_software_statement",
];

const ENDPOINTS: &[&str] = &[
    "/.well-known/openid-configuration",
    "/.well-known/oauth-authorization-server",
    "/jwks.json",
    "/.well-known/jwks.json",
    "/authorize",
    "/login",
    "/consent",
    "/userinfo",
    "/logout",
    "/assets/portcullis.css",
    "/register",
    "/register/dcr_x",
    "/register/webapp",
    "/token",
    "/introspect",
    "/revoke",
    "/health",
    "/ready",
];

const PARAMETER_NAMES: &[&str] = &[
    "grant_type",
    "client_id",
    "client_secret",
    "code",
    "redirect_uri",
    "code_verifier",
    "refresh_token",
    "scope",
    "token",
    "token_type_hint",
    "response_type",
    "state",
    "nonce",
    "prompt",
    "max_age",
    "code_challenge",
    "code_challenge_method",
    "id_token_hint",
    "post_logout_redirect_uri",
    "request",
    "request_uri",
    "interaction",
    "csrf_token",
    "username",
    "password",
    "decision",
    "access_token",
];

const PARAMETER_VALUES: &[&str] = &[
    "client_credentials",
    "authorization_code",
    "refresh_token",
    "webapp",
    "spa",
    "m2m",
    "m2m-post",
    "code",
    "openid",
    "openid profile email offline_access",
    "reports:read",
    "http://127.0.0.1:9000/callback",
    "none",
    "login",
    "S256",
    "plain",
    "0",
    "-1",
    "99999999999999999999",
    "allow",
    "deny",
    "alice",
    "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
    "%",
    "%zz",
    "%ff%fe",
    "a+b",
    "\u{0}",
];

/// One percent-encoded-or-not component: a known value, a secret, or arbitrary text.
fn component() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(PARAMETER_VALUES).prop_map(str::to_owned),
        1 => proptest::sample::select(SECRETS).prop_map(str::to_owned),
        3 => "[ -~]{0,24}".prop_map(|s| s.replace(['&', '=', '#', ' '], "")),
        1 => proptest::collection::vec(any::<u8>(), 0..16).prop_map(|bytes| {
            bytes.iter().map(|b| format!("%{b:02X}")).collect::<String>()
        }),
    ]
}

fn parameter() -> impl Strategy<Value = (String, String)> {
    let name = prop_oneof![
        5 => proptest::sample::select(PARAMETER_NAMES).prop_map(str::to_owned),
        1 => "[a-z_%0-9]{0,10}",
    ];
    (name, component())
}

/// A query string or form body of arbitrary parameters.
fn parameters() -> impl Strategy<Value = String> {
    proptest::collection::vec(parameter(), 0..8)
        .prop_map(|pairs| pairs.iter().map(|(name, value)| format!("{name}={value}")).collect::<Vec<_>>().join("&"))
}

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => proptest::sample::select(&["/token", "/introspect", "/revoke", "/register", "/authorize"][..]).prop_map(str::to_owned),
        6 => proptest::sample::select(ENDPOINTS).prop_map(str::to_owned),
        1 => "(/[a-zA-Z0-9._~%-]{0,12}){1,4}",
        1 => proptest::sample::select(ENDPOINTS).prop_flat_map(|e| "[a-zA-Z0-9/.%-]{0,8}".prop_map(move |s| format!("{e}{s}"))),
    ]
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        6 => Just(Method::GET),
        10 => Just(Method::POST),
        1 => Just(Method::PUT),
        1 => Just(Method::DELETE),
        1 => Just(Method::PATCH),
        1 => Just(Method::HEAD),
        1 => Just(Method::OPTIONS),
        1 => "[A-Z]{1,8}".prop_filter_map("a method token", |m| Method::from_bytes(m.as_bytes()).ok()),
    ]
}

fn content_type() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        5 => Just(Some("application/x-www-form-urlencoded".to_owned())),
        3 => Just(Some("application/json".to_owned())),
        1 => Just(Some("application/x-www-form-urlencoded; charset=UTF-8".to_owned())),
        1 => Just(Some("text/plain".to_owned())),
        1 => Just(None),
        1 => "[ -~]{0,30}".prop_map(Some),
    ]
}

fn authorization() -> impl Strategy<Value = Option<String>> {
    let basic = (proptest::sample::select(&["m2m", "webapp", "spa", "m2m-post", "nobody", ""][..]), component())
        .prop_map(|(id, secret)| format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))));
    let known = proptest::sample::select(&[("m2m", "m2m-secret"), ("webapp", "webapp-secret")][..])
        .prop_map(|(id, secret)| format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))));
    prop_oneof![
        3 => Just(None),
        3 => basic.prop_map(Some),
        2 => known.prop_map(Some),
        1 => "[ -~]{0,40}".prop_map(|s| Some(format!("Bearer {s}"))),
        1 => "[ -~]{0,40}".prop_map(Some),
    ]
}

fn cookie() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        3 => Just(None),
        1 => "[a-zA-Z0-9_-]{0,43}".prop_map(|v| Some(format!("portcullis_session={v}"))),
        1 => "[a-zA-Z0-9_-]{0,43}".prop_map(|v| Some(format!("portcullis_browser={v}; portcullis_session=x"))),
        1 => "[ -~]{0,60}".prop_map(Some),
    ]
}

fn json_body() -> impl Strategy<Value = Vec<u8>> {
    let value = prop_oneof![
        Just(serde_json::json!("https://app.example/cb")),
        Just(serde_json::json!(["https://app.example/cb"])),
        Just(serde_json::json!(["client_credentials"])),
        Just(serde_json::json!(["http://127.0.0.1/cb", "com.example.app:/cb"])),
        Just(serde_json::json!(null)),
        Just(serde_json::json!(1)),
        Just(serde_json::json!({"a": [1, {"b": "c"}]})),
        "[ -~]{0,20}".prop_map(serde_json::Value::String),
    ];
    let key = prop_oneof![
        proptest::sample::select(
            &[
                "redirect_uris",
                "grant_types",
                "response_types",
                "token_endpoint_auth_method",
                "application_type",
                "scope",
                "client_name",
                "logo_uri",
                "jwks_uri",
                "contacts",
                "client_id",
                "client_secret",
                "software_statement",
            ][..]
        )
        .prop_map(str::to_owned),
        "[a-z_]{0,10}",
    ];
    proptest::collection::vec((key, value), 0..6).prop_map(|fields| {
        let map: serde_json::Map<String, serde_json::Value> = fields.into_iter().collect();
        serde_json::to_vec(&map).unwrap_or_default()
    })
}

/// Bodies that get past the first checks of the token, introspection and revocation
/// endpoints, with arbitrary parameters added.
const FORM_TEMPLATES: &[&str] = &[
    "grant_type=client_credentials",
    "grant_type=client_credentials&scope=reports:read",
    "grant_type=refresh_token&refresh_token=x",
    "grant_type=authorization_code&code=x&redirect_uri=http://127.0.0.1:9000/callback",
    "token=x",
    "token=x&token_type_hint=refresh_token",
];

fn body() -> impl Strategy<Value = Vec<u8>> {
    let templated = (proptest::sample::select(FORM_TEMPLATES), parameters())
        .prop_map(|(template, extra)| format!("{template}&{extra}").into_bytes());
    prop_oneof![
        2 => Just(Vec::new()),
        3 => templated,
        5 => parameters().prop_map(String::into_bytes),
        2 => json_body(),
        1 => proptest::collection::vec(any::<u8>(), 0..64),
    ]
}

#[derive(Debug, Clone)]
struct ArbitraryRequest {
    method: Method,
    path: String,
    query: Option<String>,
    content_type: Option<String>,
    authorization: Option<String>,
    cookie: Option<String>,
    extra_headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The client address, so per-address limits do not hide the endpoints behind them.
    peer: [u8; 4],
}

/// Method, path, content type, `Authorization` and body of a well-formed form request.
type FormTemplate = (Method, &'static str, Option<&'static str>, Option<String>, &'static str);

/// A well-formed request to an endpoint, with arbitrary parameters added: reaches the
/// deeper stages (client authentication, grant handling, registration, the login page).
fn plausible() -> impl Strategy<Value = ArbitraryRequest> {
    let m2m = format!("Basic {}", STANDARD.encode("m2m:m2m-secret"));
    let webapp = format!("Basic {}", STANDARD.encode("webapp:webapp-secret"));
    let form = "application/x-www-form-urlencoded";
    let templates: Vec<FormTemplate> = vec![
        (Method::POST, "/token", Some(form), Some(m2m.clone()), "grant_type=client_credentials"),
        (Method::POST, "/token", Some(form), Some(webapp.clone()), "grant_type=authorization_code&code=x"),
        (Method::POST, "/token", Some(form), Some(webapp.clone()), "grant_type=refresh_token&refresh_token=x"),
        (
            Method::POST,
            "/token",
            Some(form),
            None,
            "grant_type=client_credentials&client_id=m2m-post&client_secret=m2m-post-secret",
        ),
        (Method::POST, "/introspect", Some(form), Some(webapp.clone()), "token=x"),
        (Method::POST, "/revoke", Some(form), Some(m2m), "token=x"),
        (Method::POST, "/userinfo", Some(form), None, "access_token=x"),
        (Method::POST, "/login", Some(form), None, "interaction=x&csrf_token=y&username=alice&password=alice-password"),
        (Method::POST, "/logout", Some(form), None, "csrf_token=x"),
    ];
    const QUERY_TEMPLATES: &[&str] = &[
        "/authorize?client_id=webapp&response_type=code&redirect_uri=http://127.0.0.1:9000/callback&scope=openid&state=s",
        "/authorize?client_id=spa&response_type=code&redirect_uri=http://127.0.0.1:9001/callback&scope=openid&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGjSstw-cM&code_challenge_method=S256",
        "/logout?client_id=webapp&post_logout_redirect_uri=http://127.0.0.1:9000/",
        "/userinfo?access_token=x",
    ];
    let form_requests = (proptest::sample::select(templates), parameters(), proptest::option::of(parameters()))
        .prop_map(|((method, path, content_type, authorization, body), extra, query)| ArbitraryRequest {
            method,
            path: path.to_owned(),
            query,
            content_type: content_type.map(str::to_owned),
            authorization,
            cookie: None,
            extra_headers: Vec::new(),
            body: format!("{body}&{extra}").into_bytes(),
            peer: [192, 0, 2, 1],
        });
    let query_requests =
        (proptest::sample::select(QUERY_TEMPLATES), parameters(), cookie()).prop_map(|(template, extra, cookie)| {
            let (path, query) = template.split_once('?').unwrap_or((template, ""));
            ArbitraryRequest {
                method: Method::GET,
                path: path.to_owned(),
                query: Some(format!("{query}&{extra}")),
                content_type: None,
                authorization: None,
                cookie,
                extra_headers: Vec::new(),
                body: Vec::new(),
                peer: [192, 0, 2, 1],
            }
        });
    let registrations = (json_body(), any::<[u8; 4]>()).prop_map(|(body, peer)| ArbitraryRequest {
        method: Method::POST,
        path: "/register".to_owned(),
        query: None,
        content_type: Some("application/json".to_owned()),
        authorization: None,
        cookie: None,
        extra_headers: Vec::new(),
        body,
        peer,
    });
    prop_oneof![3 => form_requests, 2 => query_requests, 1 => registrations]
}

fn request() -> impl Strategy<Value = ArbitraryRequest> {
    prop_oneof![1 => arbitrary(), 1 => plausible()]
}

fn arbitrary() -> impl Strategy<Value = ArbitraryRequest> {
    let query = proptest::option::weighted(0.6, parameters());
    let extra_headers = proptest::collection::vec(("x-[a-z]{1,8}", "[ -~]{0,20}"), 0..3);
    let peer = any::<[u8; 4]>();
    (method(), path(), query, content_type(), authorization(), cookie(), extra_headers, body(), peer).prop_map(
        |(method, path, query, content_type, authorization, cookie, extra_headers, body, peer)| ArbitraryRequest {
            method,
            path,
            query,
            content_type,
            authorization,
            cookie,
            extra_headers,
            body,
            peer,
        },
    )
}

impl ArbitraryRequest {
    /// The HTTP request, or `None` when the generated URI or a header is not valid HTTP at
    /// all (a real client could not send it; hyper refuses it before the router).
    fn build(&self) -> Option<Request<Body>> {
        let uri = match &self.query {
            Some(query) => format!("{}?{}", self.path, uri_safe(query)),
            None => self.path.clone(),
        };
        let uri: Uri = uri.parse().ok()?;
        let mut builder = Request::builder().method(self.method.clone()).uri(uri);
        for (name, value) in
            [("content-type", &self.content_type), ("authorization", &self.authorization), ("cookie", &self.cookie)]
        {
            if let Some(value) = value {
                builder = builder.header(name, value.as_str());
            }
        }
        for (name, value) in &self.extra_headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let mut request = builder.body(Body::from(self.body.clone())).ok()?;
        request.extensions_mut().insert(ConnectInfo(SocketAddr::from((self.peer, 40000))));
        Some(request)
    }
}

/// Percent-encodes the bytes a URI query cannot carry, keeping `%` as it is so malformed
/// escapes reach the provider.
fn uri_safe(query: &str) -> String {
    query
        .bytes()
        .map(|b| match b {
            b'a'..=b'z'
            | b'A'..=b'Z'
            | b'0'..=b'9'
            | b'-'
            | b'.'
            | b'_'
            | b'~'
            | b'!'
            | b'$'
            | b'&'
            | b'\''
            | b'('
            | b')'
            | b'*'
            | b'+'
            | b','
            | b';'
            | b'='
            | b':'
            | b'@'
            | b'/'
            | b'?'
            | b'%' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn fixtures() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/manifests")
}

async fn provider() -> Arc<Provider> {
    let options = ServerOptions {
        issuer: "http://127.0.0.1:8080".to_owned(),
        manifests: Some(fixtures()),
        access_token_ttl: Duration::from_secs(3600),
        refresh_token_ttl: Duration::from_secs(3600),
        session_ttl: Duration::from_secs(3600),
        registration: RegistrationPolicy::Open,
        registration_scopes: Scope::parse("openid profile email offline_access").unwrap(),
        intervals: Default::default(),
        backchannel: Default::default(),
        metrics_on_main_port: false,
    };
    server::build_dev(&options).await.unwrap().provider
}

/// RFC 6749 §5.2: `error_description` uses `%x20-21 / %x23-5B / %x5D-7E`.
fn valid_description(description: &str) -> bool {
    description.bytes().all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

/// Parameters that carry credentials. Other parameters are the caller's own data, which
/// some endpoints echo by design (`state` on redirects), whatever their value.
const CREDENTIAL_PARAMETERS: &[&str] = &["client_secret", "password"];

/// The secrets the request presents as credentials: what must never come back.
fn secrets_sent(request: &ArbitraryRequest) -> Vec<&'static str> {
    let query = request.query.as_deref().unwrap_or("");
    let mut sent: String = [query.as_bytes(), &request.body]
        .iter()
        .flat_map(|form| form.split(|b| *b == b'&'))
        .filter_map(|pair| {
            let pair = String::from_utf8_lossy(pair);
            let (name, value) = pair.split_once('=')?;
            CREDENTIAL_PARAMETERS.contains(&name).then(|| value.to_owned())
        })
        .collect();
    if let Some(decoded) = request.authorization.as_deref().and_then(|a| a.strip_prefix("Basic ")) {
        sent.push_str(&String::from_utf8_lossy(&STANDARD.decode(decoded).unwrap_or_default()));
    }
    SECRETS.iter().copied().filter(|secret| sent.contains(secret)).collect()
}

async fn check(router: axum::Router, arbitrary: ArbitraryRequest) -> Result<(), TestCaseError> {
    let Some(request) = arbitrary.build() else { return Ok(()) };
    let response = router.oneshot(request).await.map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap_or_default();
    // `/ready` answers 503 by design while the store has not answered within a second,
    // which a starved test machine can make happen; any other 5xx is a failure.
    let not_ready = arbitrary.path == "/ready"
        && status == StatusCode::SERVICE_UNAVAILABLE
        && String::from_utf8_lossy(&body).contains("\"not ready\"");
    prop_assert!(
        !status.is_server_error() || not_ready,
        "{status} for {arbitrary:?}: {}",
        String::from_utf8_lossy(&body)
    );
    let text = String::from_utf8_lossy(&body);
    let header_text: String = headers.values().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect();
    for secret in secrets_sent(&arbitrary) {
        prop_assert!(!text.contains(secret) && !header_text.contains(secret), "{secret} echoed for {arbitrary:?}");
    }
    let json =
        headers.get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("application/json"));
    // A response to HEAD has the headers of a GET and no body.
    if status.is_client_error() && json && arbitrary.method != Method::HEAD {
        let value: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
        let error = value["error"].as_str().unwrap_or("");
        prop_assert!(REGISTERED_ERRORS.contains(&error), "unregistered error {text} for {arbitrary:?}");
        if let Some(description) = value.get("error_description") {
            let description = description.as_str().unwrap_or("\"");
            prop_assert!(valid_description(description), "description {description:?} for {arbitrary:?}");
        }
    }
    Ok(())
}

#[test]
fn arbitrary_requests_never_fail_the_server_leak_secrets_or_break_rfc6749_5_2() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let router = provider::app(runtime.block_on(provider()));
    let mut runner = TestRunner::new(Config { cases: 4000, failure_persistence: None, ..Config::default() });
    let result = runner.run(&request(), |arbitrary| runtime.block_on(check(router.clone(), arbitrary)));
    if let Err(failure) = result {
        panic!("{failure}");
    }
}
