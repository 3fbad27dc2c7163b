//! The provider's Prometheus metrics: one registry per provider (so tests running several
//! providers in one process never share counters), rendered in the text exposition format.
//!
//! Every label takes its value from a fixed set — route templates, grant types, error
//! codes, configured client ids — so that no request can grow the number of series.

use std::collections::HashMap;
use std::sync::Mutex;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

use crate::keys::Keyring;
use crate::model::ClientRecord;
use crate::protocol::endpoints;
use crate::vocabulary::{ErrorCode, GrantType};

/// The `client_id` label of dynamically registered clients (RFC 7591): anyone may create
/// those under the open policy, so one label stands for all of them.
pub const DYNAMIC_CLIENT: &str = "dynamic";
/// The `endpoint` label of requests that matched no route.
pub const UNMATCHED: &str = "unmatched";
/// The `grant_type` label of a token request whose `grant_type` we do not know.
pub const UNSUPPORTED_GRANT: &str = "unsupported";
/// The `grant_type` label of a token request without a `grant_type`.
pub const NO_GRANT: &str = "none";

/// The routes and the method each mostly answers, whose request series exist from the start.
const ROUTES: &[(&str, &str)] = &[
    (endpoints::OPENID_CONFIGURATION, "GET"),
    (endpoints::OAUTH_AUTHORIZATION_SERVER, "GET"),
    (endpoints::JWKS, "GET"),
    (endpoints::WELL_KNOWN_JWKS, "GET"),
    (endpoints::AUTHORIZE, "GET"),
    (endpoints::LOGIN, "POST"),
    (endpoints::CONSENT, "POST"),
    (endpoints::TOKEN, "POST"),
    (endpoints::USERINFO, "GET"),
    (endpoints::INTROSPECT, "POST"),
    (endpoints::REVOKE, "POST"),
    (endpoints::LOGOUT, "GET"),
    (endpoints::REGISTER, "POST"),
    (endpoints::DEVICE_AUTHORIZATION, "POST"),
    (endpoints::DEVICE, "GET"),
];

/// The errors the token endpoint answers (RFC 6749 §5.2, RFC 8628 §3.5, and its 5xx and
/// 503 answers).
const TOKEN_ERRORS: [ErrorCode; 12] = [
    ErrorCode::InvalidRequest,
    ErrorCode::InvalidClient,
    ErrorCode::InvalidGrant,
    ErrorCode::UnauthorizedClient,
    ErrorCode::UnsupportedGrantType,
    ErrorCode::InvalidScope,
    ErrorCode::ServerError,
    ErrorCode::TemporarilyUnavailable,
    ErrorCode::AccessDenied,
    ErrorCode::AuthorizationPending,
    ErrorCode::SlowDown,
    ErrorCode::ExpiredToken,
];

/// Latency buckets (seconds): from a cached JWKS answer to an argon2 password check.
const HTTP_BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
/// Store buckets (seconds): a memory lookup to a Redis command at its timeout.
const STORE_BUCKETS: &[f64] = &[0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.0];

/// How a login attempt ended (`portcullis_logins_total{result}`). Anyone who can read the
/// metrics could tell from finer results whether a username exists, or that a disabled
/// user's password was right, so why a login failed is only in the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginResult {
    Success,
    /// A wrong password, an unknown user or a disabled one.
    Failure,
    /// Refused before any check: the username's or the address's budget is spent.
    Throttled,
}

impl LoginResult {
    const ALL: [LoginResult; 3] = [LoginResult::Success, LoginResult::Failure, LoginResult::Throttled];

    pub fn as_str(self) -> &'static str {
        match self {
            LoginResult::Success => "success",
            LoginResult::Failure => "failure",
            LoginResult::Throttled => "throttled",
        }
    }
}

/// How a back-channel logout delivery attempt ended
/// (`portcullis_backchannel_logout_total{result}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackchannelLogoutResult {
    /// The relying party answered 2xx.
    Delivered,
    /// It failed (an error, a timeout or another status) and is tried again later.
    Retried,
    /// It failed and the retry bound is spent, or the client no longer takes logout tokens.
    GivenUp,
}

impl BackchannelLogoutResult {
    const ALL: [BackchannelLogoutResult; 3] =
        [BackchannelLogoutResult::Delivered, BackchannelLogoutResult::Retried, BackchannelLogoutResult::GivenUp];

    pub fn as_str(self) -> &'static str {
        match self {
            BackchannelLogoutResult::Delivered => "delivered",
            BackchannelLogoutResult::Retried => "retried",
            BackchannelLogoutResult::GivenUp => "given_up",
        }
    }
}

/// What an argon2 verification was for (`portcullis_argon2_verifications_total{purpose}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Argon2Purpose {
    /// A login's password (an unknown user's check included).
    Password,
    /// A client secret the in-memory memo could not answer.
    ClientSecret,
}

impl Argon2Purpose {
    const ALL: [Argon2Purpose; 2] = [Argon2Purpose::Password, Argon2Purpose::ClientSecret];

    pub fn as_str(self) -> &'static str {
        match self {
            Argon2Purpose::Password => "password",
            Argon2Purpose::ClientSecret => "client_secret",
        }
    }
}

/// Every metric of one provider.
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    tokens_issued: IntCounterVec,
    tokens_revoked: IntCounter,
    token_errors: IntCounterVec,
    logins: [IntCounter; LoginResult::ALL.len()],
    argon2_verifications: [IntCounter; Argon2Purpose::ALL.len()],
    backchannel_logouts: [IntCounter; BackchannelLogoutResult::ALL.len()],
    client_auth_throttled: IntCounterVec,
    active_sessions: IntGauge,
    clients_registered: IntCounter,
    signing_key_age: prometheus::GaugeVec,
    store_duration: HistogramVec,
    store_errors: IntCounterVec,
    /// When this process first saw each key that carries no creation time.
    key_first_seen: Mutex<HashMap<String, u64>>,
}

/// Registers a collector built by `make`; registration only fails on a programming error
/// (a duplicate name), which the unit test below catches.
fn register<T: prometheus::core::Collector + Clone + 'static>(registry: &Registry, metric: T) -> T {
    if let Err(error) = registry.register(Box::new(metric.clone())) {
        tracing::error!(%error, "cannot register a metric");
    }
    metric
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let vec = IntCounterVec::new(Opts::new(name, help), labels).unwrap_or_else(|_| unreachable_metric(name));
    register(registry, vec)
}

fn histogram_vec(registry: &Registry, name: &str, help: &str, labels: &[&str], buckets: &[f64]) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    let vec = HistogramVec::new(opts, labels).unwrap_or_else(|_| unreachable_metric(name));
    register(registry, vec)
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    register(registry, IntCounter::new(name, help).unwrap_or_else(|_| unreachable_metric(name)))
}

/// Metric names and label names here are constants checked by the unit tests, so
/// construction cannot fail at run time.
fn unreachable_metric(name: &str) -> ! {
    panic!("invalid metric definition {name}")
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        #[cfg(target_os = "linux")]
        if let Err(error) = registry.register(Box::new(prometheus::process_collector::ProcessCollector::for_self())) {
            tracing::error!(%error, "cannot register the process metrics");
        }
        let logins = counter_vec(
            &registry,
            "portcullis_logins_total",
            "Login attempts at the login form, by result.",
            &["result"],
        );
        let argon2_verifications = counter_vec(
            &registry,
            "portcullis_argon2_verifications_total",
            "argon2 verifications run, by purpose: every one that is not refused by a throttle first.",
            &["purpose"],
        );
        let backchannel_logouts = counter_vec(
            &registry,
            "portcullis_backchannel_logout_total",
            "Back-channel logout delivery attempts (OpenID Connect Back-Channel Logout 1.0), by result.",
            &["result"],
        );
        let metrics = Self {
            http_requests: counter_vec(
                &registry,
                "portcullis_http_requests_total",
                "HTTP requests answered, by route template, method and status.",
                &["endpoint", "method", "status"],
            ),
            http_duration: histogram_vec(
                &registry,
                "portcullis_http_request_duration_seconds",
                "Time to answer an HTTP request, by route template.",
                &["endpoint"],
                HTTP_BUCKETS,
            ),
            tokens_issued: counter_vec(
                &registry,
                "portcullis_tokens_issued_total",
                "Token responses issued at the token endpoint, by grant type and client.",
                &["grant_type", "client_id"],
            ),
            tokens_revoked: counter(
                &registry,
                "portcullis_tokens_revoked_total",
                "Tokens revoked at the revocation endpoint.",
            ),
            token_errors: counter_vec(
                &registry,
                "portcullis_token_errors_total",
                "Error responses of the token endpoint, by grant type and OAuth error code.",
                &["grant_type", "error"],
            ),
            logins: LoginResult::ALL.map(|result| logins.with_label_values(&[result.as_str()])),
            argon2_verifications: Argon2Purpose::ALL
                .map(|purpose| argon2_verifications.with_label_values(&[purpose.as_str()])),
            backchannel_logouts: BackchannelLogoutResult::ALL
                .map(|result| backchannel_logouts.with_label_values(&[result.as_str()])),
            client_auth_throttled: counter_vec(
                &registry,
                "portcullis_client_auth_throttled_total",
                "Client authentications refused with 429 before any secret check: the client's or the \
                 address's budget of failures is spent.",
                &["client_id"],
            ),
            active_sessions: register(
                &registry,
                IntGauge::new("portcullis_active_sessions", "Single sign-on sessions that have not expired.")
                    .unwrap_or_else(|_| unreachable_metric("portcullis_active_sessions")),
            ),
            clients_registered: counter(
                &registry,
                "portcullis_clients_registered_total",
                "Clients registered through dynamic client registration (RFC 7591).",
            ),
            signing_key_age: register(
                &registry,
                prometheus::GaugeVec::new(
                    Opts::new(
                        "portcullis_signing_key_age_seconds",
                        "Age of each published signing key, by key id and phase (active, next, retired).",
                    ),
                    &["kid", "phase"],
                )
                .unwrap_or_else(|_| unreachable_metric("portcullis_signing_key_age_seconds")),
            ),
            store_duration: histogram_vec(
                &registry,
                "portcullis_store_operation_duration_seconds",
                "Duration of store operations, by operation.",
                &["op"],
                STORE_BUCKETS,
            ),
            store_errors: counter_vec(
                &registry,
                "portcullis_store_errors_total",
                "Store operations that failed, by operation.",
                &["op"],
            ),
            key_first_seen: Mutex::default(),
            registry,
        };
        metrics.create_known_series();
        metrics
    }

    /// Creates at 0 every series whose labels are known before anything happens, so that a
    /// fresh scrape lists them and `rate()` and alerts see them from the start (Prometheus
    /// instrumentation guidance: avoid missing metrics). Series named by a declared client
    /// appear when that client first acts; dynamically registered clients share one label.
    fn create_known_series(&self) {
        for (endpoint, method) in ROUTES {
            self.http_requests.with_label_values(&[endpoint, method, "200"]);
            self.http_duration.with_label_values(&[endpoint]);
        }
        let grant_labels = GrantType::NAMES.iter().copied().chain([UNSUPPORTED_GRANT, NO_GRANT]);
        for grant_type in grant_labels {
            for error in TOKEN_ERRORS {
                self.token_errors.with_label_values(&[grant_type, error.as_str()]);
            }
        }
        for grant_type in GrantType::NAMES {
            self.tokens_issued.with_label_values(&[grant_type, DYNAMIC_CLIENT]);
        }
        self.client_auth_throttled.with_label_values(&[DYNAMIC_CLIENT]);
    }

    /// Counts one answered request.
    pub fn observe_request(&self, endpoint: &str, method: &str, status: &str, seconds: f64) {
        self.http_requests.with_label_values(&[endpoint, method, status]).inc();
        self.http_duration.with_label_values(&[endpoint]).observe(seconds);
    }

    pub fn token_issued(&self, grant_type: &str, client: &ClientRecord) {
        self.tokens_issued.with_label_values(&[grant_type, client_label(client)]).inc();
    }

    pub fn token_error(&self, grant_type: &str, error: &str) {
        self.token_errors.with_label_values(&[grant_type, error]).inc();
    }

    pub fn token_revoked(&self) {
        self.tokens_revoked.inc();
    }

    pub fn login(&self, result: LoginResult) {
        if let Some(counter) = LoginResult::ALL.iter().position(|r| *r == result).and_then(|i| self.logins.get(i)) {
            counter.inc();
        }
    }

    pub fn argon2_verification(&self, purpose: Argon2Purpose) {
        let index = Argon2Purpose::ALL.iter().position(|p| *p == purpose);
        if let Some(counter) = index.and_then(|i| self.argon2_verifications.get(i)) {
            counter.inc();
        }
    }

    pub fn backchannel_logout(&self, result: BackchannelLogoutResult) {
        let index = BackchannelLogoutResult::ALL.iter().position(|r| *r == result);
        if let Some(counter) = index.and_then(|i| self.backchannel_logouts.get(i)) {
            counter.inc();
        }
    }

    /// A client authentication refused by its throttle; only clients that exist reach it.
    pub fn client_auth_throttled(&self, client: &ClientRecord) {
        self.client_auth_throttled.with_label_values(&[client_label(client)]).inc();
    }

    pub fn client_registered(&self) {
        self.clients_registered.inc();
    }

    /// The per-operation histogram and error counter of a store operation, resolved once.
    pub fn store_op(&self, op: &'static str) -> (Histogram, IntCounter) {
        (self.store_duration.with_label_values(&[op]), self.store_errors.with_label_values(&[op]))
    }

    /// Sets the values read at scrape time, then renders every metric.
    pub fn render(&self, active_sessions: Option<u64>, keyring: &Keyring, now: u64) -> String {
        if let Some(sessions) = active_sessions {
            self.active_sessions.set(i64::try_from(sessions).unwrap_or(i64::MAX));
        }
        self.update_key_ages(keyring, now);
        let mut buffer = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::error!(%error, "cannot encode the metrics");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }

    /// One series per key currently published; keys that left the keyring disappear.
    fn update_key_ages(&self, keyring: &Keyring, now: u64) {
        self.signing_key_age.reset();
        let mut first_seen = self.key_first_seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        first_seen.retain(|kid, _| keyring.entries().any(|(k, _, _)| k == kid));
        for (kid, phase, created_at) in keyring.entries() {
            let created_at = created_at.unwrap_or_else(|| *first_seen.entry(kid.to_owned()).or_insert(now));
            let age = now.saturating_sub(created_at) as f64;
            self.signing_key_age.with_label_values(&[kid, phase.as_str()]).set(age);
        }
    }
}

/// Clients from the registry (manifests or the controller) are named; dynamically
/// registered ones share [`DYNAMIC_CLIENT`]. Only authenticated clients are ever counted,
/// so an unknown `client_id` can never become a label.
pub fn client_label(client: &ClientRecord) -> &str {
    if client.registration.is_some() { DYNAMIC_CLIENT } else { &client.client_id }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_registry_lists_every_family_with_its_known_series_at_zero() {
        let text = Metrics::new().render(None, &Keyring::new(Vec::new()).unwrap(), 100);
        for series in [
            "portcullis_http_requests_total{endpoint=\"/token\",method=\"POST\",status=\"200\"} 0",
            "portcullis_http_request_duration_seconds_count{endpoint=\"/userinfo\"} 0",
            "portcullis_tokens_issued_total{client_id=\"dynamic\",grant_type=\"client_credentials\"} 0",
            "portcullis_token_errors_total{error=\"invalid_grant\",grant_type=\"refresh_token\"} 0",
            "portcullis_token_errors_total{error=\"unsupported_grant_type\",grant_type=\"unsupported\"} 0",
            "portcullis_logins_total{result=\"failure\"} 0",
            "portcullis_argon2_verifications_total{purpose=\"client_secret\"} 0",
            "portcullis_client_auth_throttled_total{client_id=\"dynamic\"} 0",
            "portcullis_tokens_revoked_total 0",
            "portcullis_clients_registered_total 0",
        ] {
            assert!(text.contains(series), "{series} missing from\n{text}");
        }
    }

    #[test]
    fn every_metric_registers_and_renders() {
        let metrics = Metrics::new();
        metrics.login(LoginResult::Throttled);
        metrics.observe_request("/token", "POST", "200", 0.01);
        let keyring = Keyring::new(Vec::new()).unwrap();
        let text = metrics.render(Some(3), &keyring, 100);
        for name in [
            "portcullis_http_requests_total",
            "portcullis_http_request_duration_seconds_bucket",
            "portcullis_logins_total{result=\"throttled\"} 1",
            "portcullis_active_sessions 3",
        ] {
            assert!(text.contains(name), "{name} missing from\n{text}");
        }
    }
}
