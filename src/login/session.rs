//! The pure half of `portcullis login`: the authorization request of a native app
//! (RFC 8252 §6–§8 with PKCE, RFC 7636), its loopback callback, what a token response and
//! an ID token tell the client, the device grant's polling rule (RFC 8628), and the
//! kubectl `ExecCredential` it prints.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use url::Url;
use url::form_urlencoded;

use crate::protocol::pkce;

/// The path the loopback listener answers on; any other path gets a 404.
pub const CALLBACK_PATH: &str = "/callback";
/// An ID token this close to its `exp` is treated as expired, so kubectl never presents
/// one that expires in flight.
pub const EXPIRY_LEEWAY: Duration = Duration::from_secs(30);

/// One authorization request's secrets: `state` (RFC 6749 §10.12, CSRF) and the PKCE
/// verifier (RFC 7636 §4.1), both fresh for each login.
#[derive(Debug, Clone)]
pub struct AuthorizationStart {
    pub state: String,
    pub code_verifier: String,
    pub redirect_uri: String,
}

impl AuthorizationStart {
    /// `state` and `code_verifier` are random base64url strings (the verifier must be
    /// 43–128 characters, RFC 7636 §4.1); `port` is the loopback listener's.
    pub fn new(state: String, code_verifier: String, port: u16) -> Self {
        Self { state, code_verifier, redirect_uri: format!("http://127.0.0.1:{port}{CALLBACK_PATH}") }
    }

    /// RFC 6749 §4.1.1, RFC 7636 §4.3 and RFC 8252 §7.3: the authorization request URL,
    /// with the loopback redirect URI on the listener's port and an S256 challenge.
    pub fn authorization_url(&self, authorization_endpoint: &Url, client_id: &str, scope: &str) -> Url {
        let mut url = authorization_endpoint.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("scope", scope)
            .append_pair("state", &self.state)
            .append_pair("code_challenge", &pkce::s256(&self.code_verifier))
            .append_pair("code_challenge_method", "S256");
        url
    }
}

/// Why a request to the loopback listener did not deliver a code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    /// Not `GET /callback?…`: something else on this machine, answered 404 and ignored.
    #[error("not the authorization callback")]
    NotCallback,
    /// A `state` other than ours (RFC 6749 §10.12): forged or stale, ignored.
    #[error("the callback's state does not match this login")]
    WrongState,
    /// RFC 9207 §2.4: an `iss` other than the issuer we asked: a mix-up, ignored.
    #[error("the callback's iss is not the issuer")]
    WrongIssuer,
    /// RFC 6749 §4.1.2.1: the provider refused, with its `error` and description.
    #[error("the authorization server answered {error}: {description}")]
    Refused { error: String, description: String },
}

impl CallbackError {
    /// Whether the login ends with this answer; the others leave the listener waiting for
    /// the real callback.
    pub fn is_final(&self) -> bool {
        matches!(self, CallbackError::Refused { .. })
    }
}

/// RFC 6749 §4.1.2 and RFC 9207 §2.4: the code from the request target of the callback
/// (`/callback?code=…&state=…&iss=…`), once its `state` and `iss` are ours.
pub fn code_from_callback(target: &str, start: &AuthorizationStart, issuer: &str) -> Result<String, CallbackError> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path != CALLBACK_PATH {
        return Err(CallbackError::NotCallback);
    }
    let param = |name: &str| form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v);
    let state = param("state").ok_or(CallbackError::WrongState)?;
    if !bool::from(state.as_bytes().ct_eq(start.state.as_bytes())) {
        return Err(CallbackError::WrongState);
    }
    if param("iss").is_some_and(|iss| iss != issuer) {
        return Err(CallbackError::WrongIssuer);
    }
    if let Some(error) = param("error") {
        let description = param("error_description").unwrap_or_default().into_owned();
        return Err(CallbackError::Refused { error: error.into_owned(), description });
    }
    param("code").filter(|code| !code.is_empty()).map(|code| code.into_owned()).ok_or(CallbackError::NotCallback)
}

/// RFC 6749 §5.1: the parts of a token response the login keeps.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenResponse {
    pub id_token: Option<String>,
    pub refresh_token: Option<String>,
}

/// What the cache holds for one issuer and client: the ID token kubectl presents and the
/// refresh token that renews it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedTokens {
    pub id_token: String,
    pub refresh_token: Option<String>,
}

impl CachedTokens {
    /// The tokens of a response, keeping the old refresh token when a refresh response
    /// carries no new one (RFC 6749 §6). `None` without an ID token.
    pub fn from_response(response: TokenResponse, previous_refresh: Option<String>) -> Option<Self> {
        let id_token = response.id_token?;
        Some(Self { id_token, refresh_token: response.refresh_token.or(previous_refresh) })
    }

    /// Whether the ID token is still good at `now`, leeway included.
    pub fn is_fresh(&self, now: SystemTime) -> bool {
        id_token_expiry(&self.id_token).is_some_and(|exp| now + EXPIRY_LEEWAY < exp)
    }
}

/// The `exp` of an ID token (OIDC Core §2), read without verifying the signature: the
/// client only needs to know when to renew; the API server verifies the token.
pub fn id_token_expiry(id_token: &str) -> Option<SystemTime> {
    #[derive(Deserialize)]
    struct Expiry {
        exp: u64,
    }
    let payload = id_token.split('.').nth(1)?;
    let json = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: Expiry = serde_json::from_slice(&json).ok()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(claims.exp))
}

/// RFC 8628 §3.2: the device authorization response the client shows and polls with.
#[derive(Debug, Clone, Deserialize)]
pub struct DeviceAuthorization {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    pub expires_in: u64,
    /// RFC 8628 §3.2: 5 seconds when the server names none.
    #[serde(default = "default_interval")]
    pub interval: u64,
}

fn default_interval() -> u64 {
    5
}

/// RFC 8628 §3.5: what a poll's error tells the device to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollStep {
    /// Poll again after this many seconds.
    Wait(u64),
    /// The login ends with this error.
    Stop,
}

/// RFC 8628 §3.5: `authorization_pending` keeps the interval, `slow_down` lengthens it by
/// 5 seconds for every later poll; any other error (`access_denied`, `expired_token`, …)
/// ends the login.
pub fn next_poll(error: &str, interval: u64) -> PollStep {
    match error {
        "authorization_pending" => PollStep::Wait(interval),
        "slow_down" => PollStep::Wait(interval + 5),
        _ => PollStep::Stop,
    }
}

/// The `client.authentication.k8s.io/v1` `ExecCredential` a kubectl credential plugin
/// prints: the ID token as the bearer token, and when it expires so kubectl asks again.
pub fn exec_credential(id_token: &str) -> serde_json::Value {
    let mut status = serde_json::json!({ "token": id_token });
    if let Some(exp) = id_token_expiry(id_token) {
        status["expirationTimestamp"] = humantime::format_rfc3339_seconds(exp).to_string().into();
    }
    serde_json::json!({
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start() -> AuthorizationStart {
        AuthorizationStart::new("s7at3".into(), "v".repeat(43), 41234)
    }

    fn token_expiring_at(exp: u64) -> String {
        let payload = URL_SAFE_NO_PAD.encode(format!(r#"{{"sub":"alice","exp":{exp}}}"#));
        format!("eyJhbGciOiJSUzI1NiJ9.{payload}.c2ln")
    }

    #[test]
    fn rfc8252_7_3_redirect_uri_is_loopback_ip_on_the_listeners_port() {
        assert_eq!(start().redirect_uri, "http://127.0.0.1:41234/callback");
    }

    #[test]
    fn rfc7636_4_3_authorization_url_carries_state_and_an_s256_challenge() {
        let endpoint = Url::parse("https://id.example/authorize").unwrap();
        let url = start().authorization_url(&endpoint, "kubectl", "openid groups");
        let pairs: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(pairs["response_type"], "code");
        assert_eq!(pairs["client_id"], "kubectl");
        assert_eq!(pairs["redirect_uri"], "http://127.0.0.1:41234/callback");
        assert_eq!(pairs["scope"], "openid groups");
        assert_eq!(pairs["state"], "s7at3");
        assert_eq!(pairs["code_challenge"], pkce::s256(&"v".repeat(43)));
        assert_eq!(pairs["code_challenge_method"], "S256");
        assert!(!url.as_str().contains(&"v".repeat(43)), "the verifier never leaves the client");
    }

    #[test]
    fn rfc6749_4_1_2_callback_with_our_state_and_issuer_yields_the_code() {
        let code = code_from_callback(
            "/callback?code=abc&state=s7at3&iss=https%3A%2F%2Fid.example",
            &start(),
            "https://id.example",
        );
        assert_eq!(code.unwrap(), "abc");
        assert_eq!(
            code_from_callback("/callback?state=s7at3&code=abc", &start(), "https://id.example").unwrap(),
            "abc"
        );
    }

    #[test]
    fn rfc6749_10_12_callback_with_another_or_no_state_is_ignored() {
        for target in ["/callback?code=abc&state=other", "/callback?code=abc", "/callback?code=abc&state=s7at"] {
            let err = code_from_callback(target, &start(), "https://id.example").unwrap_err();
            assert_eq!(err, CallbackError::WrongState, "{target}");
            assert!(!err.is_final());
        }
    }

    #[test]
    fn rfc9207_2_4_callback_from_another_issuer_is_ignored() {
        let err = code_from_callback(
            "/callback?code=abc&state=s7at3&iss=https%3A%2F%2Fevil.example",
            &start(),
            "https://id.example",
        );
        assert_eq!(err.unwrap_err(), CallbackError::WrongIssuer);
    }

    #[test]
    fn other_paths_and_empty_codes_are_not_the_callback() {
        for target in ["/", "/favicon.ico", "/callback/x?code=a&state=s7at3", "/callback?state=s7at3&code="] {
            assert_eq!(code_from_callback(target, &start(), "i"), Err(CallbackError::NotCallback), "{target}");
        }
    }

    #[test]
    fn rfc6749_4_1_2_1_error_response_ends_the_login() {
        let err =
            code_from_callback("/callback?error=access_denied&error_description=no+thanks&state=s7at3", &start(), "i")
                .unwrap_err();
        assert_eq!(err, CallbackError::Refused { error: "access_denied".into(), description: "no thanks".into() });
        assert!(err.is_final());
    }

    #[test]
    fn oidc_core_2_expiry_is_read_from_the_id_token() {
        assert_eq!(
            id_token_expiry(&token_expiring_at(1_800_000_000)),
            Some(UNIX_EPOCH + Duration::from_secs(1_800_000_000))
        );
        for broken in ["", "a.b.c", "a.e30.c", "only-one-part"] {
            assert_eq!(id_token_expiry(broken), None, "{broken}");
        }
    }

    #[test]
    fn cached_id_token_is_fresh_until_the_leeway_before_exp() {
        let tokens = CachedTokens { id_token: token_expiring_at(1_000), refresh_token: None };
        assert!(tokens.is_fresh(UNIX_EPOCH + Duration::from_secs(900)));
        assert!(!tokens.is_fresh(UNIX_EPOCH + Duration::from_secs(970)), "within the leeway");
        assert!(!tokens.is_fresh(UNIX_EPOCH + Duration::from_secs(2_000)));
        assert!(!CachedTokens { id_token: "garbage".into(), refresh_token: None }.is_fresh(UNIX_EPOCH));
    }

    #[test]
    fn rfc6749_6_refresh_without_a_new_refresh_token_keeps_the_old_one() {
        let response = TokenResponse { id_token: Some("id".into()), refresh_token: None };
        let tokens = CachedTokens::from_response(response, Some("old".into())).unwrap();
        assert_eq!(tokens.refresh_token.as_deref(), Some("old"));
        let rotated = TokenResponse { id_token: Some("id".into()), refresh_token: Some("new".into()) };
        assert_eq!(
            CachedTokens::from_response(rotated, Some("old".into())).unwrap().refresh_token.as_deref(),
            Some("new")
        );
        assert!(CachedTokens::from_response(TokenResponse { id_token: None, refresh_token: None }, None).is_none());
    }

    #[test]
    fn rfc8628_3_5_pending_keeps_the_interval_slow_down_adds_5_seconds_others_stop() {
        assert_eq!(next_poll("authorization_pending", 5), PollStep::Wait(5));
        assert_eq!(next_poll("slow_down", 5), PollStep::Wait(10));
        assert_eq!(next_poll("slow_down", 10), PollStep::Wait(15));
        for error in ["access_denied", "expired_token", "invalid_grant", "invalid_client", ""] {
            assert_eq!(next_poll(error, 5), PollStep::Stop, "{error}");
        }
    }

    #[test]
    fn rfc8628_3_2_a_response_without_interval_polls_every_5_seconds() {
        let response: DeviceAuthorization = serde_json::from_str(
            r#"{"device_code":"d","user_code":"WDJB-MJHT","verification_uri":"https://id.example/device","expires_in":600}"#,
        )
        .unwrap();
        assert_eq!((response.interval, response.verification_uri_complete), (5, None));
    }

    #[test]
    fn exec_credential_is_client_authentication_v1_with_the_id_token_and_its_expiry() {
        let token = token_expiring_at(1_800_000_000);
        let credential = exec_credential(&token);
        assert_eq!(credential["apiVersion"], "client.authentication.k8s.io/v1");
        assert_eq!(credential["kind"], "ExecCredential");
        assert_eq!(credential["status"]["token"], token.as_str());
        assert_eq!(credential["status"]["expirationTimestamp"], "2027-01-15T08:00:00Z");
    }
}
