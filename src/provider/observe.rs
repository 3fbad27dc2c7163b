//! What every request goes through first: a request id (`x-request-id`, taken from the
//! caller when sane, generated otherwise, echoed back), a `request` span carrying it so every
//! log line of the request names it, the caller's W3C `traceparent` when OpenTelemetry is
//! on, the request limits ([`super::limits`]), the security headers of every response, the
//! HTTP metrics, one access-log line (not for probes and scrapes), and the one log line of
//! any failure whose detail the caller was not told ([`Unexpected`]).

use std::borrow::Cow;
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;
use tracing::field::Empty;

use super::error::Unexpected;
use super::state::Provider;
use crate::context::{self, RequestContext};
use crate::metrics::UNMATCHED;
use crate::protocol::endpoints;

/// The request id header (de facto standard; also what most proxies set).
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A caller's request id longer than this is replaced rather than logged.
const MAX_REQUEST_ID_LEN: usize = 128;

/// The caller's request id when it is short and made of safe characters (it ends up in
/// logs, so nothing that could forge a log line), otherwise a fresh one.
fn request_id(headers: &HeaderMap) -> String {
    let given = headers.get(&REQUEST_ID).and_then(|v| v.to_str().ok()).filter(|id| {
        !id.is_empty()
            && id.len() <= MAX_REQUEST_ID_LEN
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'/' | b'+' | b'='))
    });
    match given {
        Some(id) => id.to_owned(),
        None => generated_id(),
    }
}

/// 128 bits that are unique per request and unguessable from the outside: a keyed hash
/// (SipHash, keys drawn from the OS at start) of a per-process sequence. Cheaper than the
/// CSPRNG on every request, and it cannot fail.
fn generated_id() -> String {
    static KEYS: LazyLock<(RandomState, RandomState)> = LazyLock::new(|| (RandomState::new(), RandomState::new()));
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    format!("{:016x}{:016x}", KEYS.0.hash_one(sequence), KEYS.1.hash_one(sequence))
}

/// Methods outside this set share one label, so made-up methods cannot add series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// The most bytes of a request path a log line carries: a path is the caller's to choose,
/// up to hyper's limits, and each request's lines repeat it.
const MAX_LOGGED_PATH: usize = 256;

/// The path as logged: cut at [`MAX_LOGGED_PATH`] bytes, with a marker saying how long it was.
fn logged_path(path: &str) -> Cow<'_, str> {
    if path.len() <= MAX_LOGGED_PATH {
        return Cow::Borrowed(path);
    }
    let mut end = MAX_LOGGED_PATH;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…[{} bytes]", &path[..end], path.len()))
}

/// Probes and scrapes run every few seconds: logging them would drown the rest.
fn is_quiet(path: &str) -> bool {
    matches!(path, endpoints::HEALTH | endpoints::READY | endpoints::METRICS)
}

/// The route template a request matched, handed from [`record_route`] (inside routing) to
/// [`observe`] (outside it) through the response.
#[derive(Clone)]
struct Route(MatchedPath);

/// Runs inside routing, where the matched route is known.
pub async fn record_route(matched: MatchedPath, request: Request, next: Next) -> Response {
    tracing::Span::current().record("endpoint", matched.as_str());
    let mut response = next.run(request).await;
    response.extensions_mut().insert(Route(matched));
    response
}

/// The outermost layer of the provider's router.
pub async fn observe(State(provider): State<Arc<Provider>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = request_id(request.headers());
    let source_ip = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string());
    let method = method_label(request.method());
    let quiet = is_quiet(request.uri().path());
    let path = logged_path(request.uri().path());
    let path = path.as_ref();
    let span = if crate::telemetry::otel_enabled() {
        tracing::info_span!(
            "request",
            request_id = %request_id,
            method,
            path,
            endpoint = Empty,
            otel.kind = "server",
            otel.status_code = Empty,
            http.response.status_code = Empty,
        )
    } else {
        tracing::info_span!("request", request_id = %request_id, method, path, endpoint = Empty)
    };
    crate::telemetry::set_remote_parent(&span, request.headers());
    let context = RequestContext { request_id: request_id.clone(), source_ip };
    let admitted = async move {
        match super::limits::admit(request).await {
            Ok(request) => next.run(request).await,
            Err(refused) => refused.into_response(),
        }
    };
    let mut response = context::scope(context, admitted).instrument(span.clone()).await;
    super::headers::secure(&mut response);
    if let Some(Unexpected(detail)) = response.extensions_mut().remove::<Unexpected>() {
        span.in_scope(|| tracing::error!(error = %detail, "request failed"));
    }
    let elapsed = started.elapsed();
    let route = response.extensions_mut().remove::<Route>();
    let endpoint = route.as_ref().map_or(UNMATCHED, |Route(matched)| matched.as_str());
    let status = response.status();
    provider.metrics.observe_request(endpoint, method, status.as_str(), elapsed.as_secs_f64());
    if crate::telemetry::otel_enabled() {
        crate::telemetry::rename_span(&span, format!("{method} {endpoint}"));
        span.record("http.response.status_code", status.as_u16());
        if status.is_server_error() {
            span.record("otel.status_code", "error");
        }
    }
    if !quiet {
        span.in_scope(|| access_log(status.as_u16(), elapsed));
    }
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID.clone(), value);
    }
    response
}

fn access_log(status: u16, elapsed: Duration) {
    let duration_ms = elapsed.as_secs_f64() * 1000.0;
    if status >= 500 {
        tracing::warn!(status, duration_ms, "request finished");
    } else {
        tracing::info!(status, duration_ms, "request finished");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sane_caller_request_id_is_kept_and_anything_else_replaced() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(&REQUEST_ID, HeaderValue::from_str(value).unwrap());
            request_id(&headers)
        };
        assert_eq!(with("abc-123_x.y:z"), "abc-123_x.y:z");
        for forged in ["a b", "x\"}", &"a".repeat(MAX_REQUEST_ID_LEN + 1), ""] {
            let replaced = with(forged);
            assert_ne!(replaced, forged);
            assert!(!replaced.is_empty());
        }
        assert_ne!(request_id(&HeaderMap::new()), request_id(&HeaderMap::new()));
    }

    #[test]
    fn long_paths_are_logged_cut_with_a_marker() {
        assert_eq!(logged_path("/token"), "/token");
        let exact = format!("/{}", "a".repeat(MAX_LOGGED_PATH - 1));
        assert_eq!(logged_path(&exact), exact);
        let long = format!("/{}", "b".repeat(10_000));
        let logged = logged_path(&long);
        assert!(logged.starts_with(&long[..MAX_LOGGED_PATH]), "{logged}");
        assert!(logged.ends_with("…[10001 bytes]"), "{logged}");
        assert!(logged.len() < MAX_LOGGED_PATH + 20);
        let multibyte = format!("/{}é", "c".repeat(MAX_LOGGED_PATH - 2));
        assert!(logged_path(&multibyte).starts_with(&multibyte[..MAX_LOGGED_PATH - 1]), "cut on a character boundary");
    }

    #[test]
    fn generated_request_ids_are_128_bit_hex_and_never_repeat() {
        let ids: std::collections::HashSet<String> = (0..10_000).map(|_| generated_id()).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(ids.iter().all(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())));
    }

    /// Everything logged while it is the subscriber, as text.
    #[derive(Clone, Default)]
    struct Logs(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Logs {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_failure_detail_is_logged_once_in_the_request_span_and_never_sent() {
        use axum::body::Body;
        use tower::ServiceExt;
        use tracing::instrument::WithSubscriber;

        use crate::provider::error::ApiError;
        use crate::store::StoreError;

        let provider = Arc::new(Provider::for_tests());
        let failing = || async { ApiError::Store(StoreError::Unavailable("redis at 10.0.0.7 refused".into())) };
        let router = axum::Router::new()
            .route("/fail", axum::routing::get(failing))
            .layer(axum::middleware::from_fn_with_state(provider, observe));
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish();
        let request = Request::get("/fail").header(&REQUEST_ID, "req-42").body(Body::empty()).unwrap();
        let response = router.oneshot(request).with_subscriber(subscriber).await.unwrap();

        assert_eq!(response.status(), 503);
        assert!(response.extensions().get::<Unexpected>().is_none(), "the detail stops at the middleware");
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        assert!(!String::from_utf8_lossy(&body).contains("10.0.0.7"));
        let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        let failures: Vec<&str> = logs.lines().filter(|line| line.contains("10.0.0.7")).collect();
        assert_eq!(failures.len(), 1, "{logs}");
        assert!(failures[0].contains("ERROR") && failures[0].contains("req-42"), "{logs}");
    }

    #[tokio::test]
    async fn the_access_line_carries_a_long_path_cut() {
        use axum::body::Body;
        use tower::ServiceExt;
        use tracing::instrument::WithSubscriber;

        let provider = Arc::new(Provider::for_tests());
        let router = axum::Router::new()
            .fallback(|| async { "ok" })
            .layer(axum::middleware::from_fn_with_state(provider, observe));
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish();
        let path = format!("/{}", "p".repeat(4000));
        let request = Request::get(path.as_str()).body(Body::empty()).unwrap();
        router.oneshot(request).with_subscriber(subscriber).await.unwrap();

        let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        let access = logs.lines().find(|line| line.contains("request finished")).expect("an access line");
        assert!(access.contains(&format!("{}…[4001 bytes]", &path[..MAX_LOGGED_PATH])), "{access}");
        assert!(!logs.contains(&path[..MAX_LOGGED_PATH + 1]), "{logs}");
    }
}
