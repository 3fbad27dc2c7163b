//! `portcullis login`: signs the user in from a terminal as a native app (RFC 8252) —
//! the authorization code flow with PKCE and `state` on a loopback redirect — caches the
//! tokens ([`cache`]) and renews them with the refresh token, so it can serve as a kubectl
//! credential plugin ([`session::exec_credential`]). With `--device` it signs in with the
//! device authorization grant instead (RFC 8628): the user opens the verification URL on any
//! device while the command polls the token endpoint.
//!
//! It sits beside [`crate::server`] at the top: a client of the provider's HTTP
//! interface, sharing only the pure PKCE rule with it.

pub mod cache;
pub mod loopback;
pub mod session;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::Deserialize;
use url::Url;

use self::session::{
    AuthorizationStart, CachedTokens, CallbackError, DeviceAuthorization, PollStep, TokenResponse, next_poll,
};
use crate::outbound::{self, HttpClient, OutboundError};
use crate::secrets::random_token;

/// How long one request to the provider may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What `portcullis login` was asked to do.
#[derive(Debug, Clone)]
pub struct LoginOptions {
    pub issuer: String,
    pub client_id: String,
    pub scope: String,
    /// The loopback listener's port; 0 picks a free one.
    pub listen_port: u16,
    /// Try `xdg-open` on the authorization URL (it is printed either way).
    pub open_browser: bool,
    /// The token cache folder ([`cache::folder`]).
    pub cache_folder: PathBuf,
    /// How long to wait for the browser to come back (or the device code to be approved).
    pub timeout: Duration,
    /// Sign in with the device authorization grant (RFC 8628) instead of the loopback flow.
    pub device: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("fetching {url}: {source}")]
    Http { url: String, source: OutboundError },
    #[error("{url} answered what is not the JSON expected: {source}")]
    Json { url: String, source: serde_json::Error },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    /// OIDC Discovery §4.3: the document must name the issuer it was fetched for.
    #[error("the discovery document names the issuer {found}, not {expected}")]
    IssuerMismatch { expected: String, found: String },
    #[error("the discovery document's {0} is not a URL")]
    BadEndpoint(&'static str),
    #[error("the provider announces no device_authorization_endpoint")]
    NoDeviceEndpoint,
    /// RFC 8628 §3.2 errors from the device authorization endpoint.
    #[error("the device authorization endpoint answered {error}: {description}")]
    DeviceAuthorization { error: String, description: String },
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Listen { port: u16, source: std::io::Error },
    #[error("no sign-in completed within {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Callback(#[from] CallbackError),
    /// RFC 6749 §5.2 from the token endpoint.
    #[error("the token endpoint answered {error}: {description}")]
    Token { error: String, description: String },
    #[error("the token response has no id_token (is `openid` in the scope?)")]
    NoIdToken,
    #[error("cannot write the token cache {path}: {source}")]
    Cache { path: PathBuf, source: std::io::Error },
    #[error("the system random number generator failed")]
    Random,
}

/// The endpoints of OIDC Discovery §3 the login uses.
#[derive(Debug, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    device_authorization_endpoint: Option<String>,
}

/// RFC 6749 §5.2 error body.
#[derive(Debug, Deserialize)]
struct TokenError {
    error: String,
    #[serde(default)]
    error_description: String,
}

/// Valid tokens for `options`: the cached ones while the ID token is fresh at `now`,
/// else refreshed with the cached refresh token, else from a new sign-in in the browser.
/// `announce` shows the user what to open (and, for the device grant, the code to confirm).
pub async fn login(
    options: &LoginOptions,
    now: SystemTime,
    announce: impl Fn(&str),
) -> Result<CachedTokens, LoginError> {
    let path = cache::file(&options.cache_folder, &options.issuer, &options.client_id);
    let cached = cache::load(&path);
    if let Some(tokens) = cached.as_ref().filter(|tokens| tokens.is_fresh(now)) {
        return Ok(tokens.clone());
    }
    let http = outbound::client().map_err(|source| LoginError::Http { url: options.issuer.clone(), source })?;
    let discovery = discover(&http, &options.issuer).await?;
    let refreshed = match cached.and_then(|tokens| tokens.refresh_token) {
        Some(refresh_token) => refresh(&http, &discovery, options, refresh_token).await.ok(),
        None => None,
    };
    let tokens = match refreshed {
        Some(tokens) => tokens,
        None if options.device => device_sign_in(&http, &discovery, options, announce).await?,
        None => sign_in(&http, &discovery, options, announce).await?,
    };
    cache::store(&path, &tokens).map_err(|source| LoginError::Cache { path, source })?;
    Ok(tokens)
}

/// OIDC Discovery §4: the document at the issuer's well-known URL, naming that issuer.
async fn discover(http: &HttpClient, issuer: &str) -> Result<Discovery, LoginError> {
    let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
    let discovery: Discovery = get_json(http, &url).await?;
    if discovery.issuer != issuer {
        return Err(LoginError::IssuerMismatch { expected: issuer.to_owned(), found: discovery.issuer });
    }
    Ok(discovery)
}

/// RFC 6749 §6: new tokens for the refresh token; `Err` when it is no longer good.
async fn refresh(
    http: &HttpClient,
    discovery: &Discovery,
    options: &LoginOptions,
    refresh_token: String,
) -> Result<CachedTokens, LoginError> {
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token.as_str()),
        ("client_id", options.client_id.as_str()),
    ];
    let response: TokenResponse = token_request(http, &discovery.token_endpoint, &form).await?;
    CachedTokens::from_response(response, Some(refresh_token)).ok_or(LoginError::NoIdToken)
}

/// RFC 8252 §7.3 and RFC 7636: the code flow through the browser and the loopback listener.
async fn sign_in(
    http: &HttpClient,
    discovery: &Discovery,
    options: &LoginOptions,
    announce: impl Fn(&str),
) -> Result<CachedTokens, LoginError> {
    let endpoint =
        Url::parse(&discovery.authorization_endpoint).map_err(|_| LoginError::BadEndpoint("authorization_endpoint"))?;
    let listener = loopback::bind(options.listen_port)
        .await
        .map_err(|source| LoginError::Listen { port: options.listen_port, source })?;
    let port = listener.local_addr().map_err(|source| LoginError::Listen { port: options.listen_port, source })?.port();
    let secret = || random_token(32).map_err(|_| LoginError::Random);
    let start = AuthorizationStart::new(secret()?, secret()?, port);
    let url = start.authorization_url(&endpoint, &options.client_id, &options.scope);
    announce(&format!("Open this URL in your browser to sign in:\n\n    {url}\n"));
    if options.open_browser {
        open_browser(url.as_str());
    }
    let code = tokio::time::timeout(options.timeout, loopback::wait_for_code(&listener, &start, &discovery.issuer))
        .await
        .map_err(|_| LoginError::Timeout(options.timeout))??;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", start.redirect_uri.as_str()),
        ("client_id", options.client_id.as_str()),
        ("code_verifier", start.code_verifier.as_str()),
    ];
    let response: TokenResponse = token_request(http, &discovery.token_endpoint, &form).await?;
    CachedTokens::from_response(response, None).ok_or(LoginError::NoIdToken)
}

/// RFC 8628 §3.1–§3.5: a device code for the client, the verification URL and user code
/// shown to the user, then the token endpoint polled at the server's interval (5 seconds
/// longer after each `slow_down`) until the user approves, denies, or the code expires.
async fn device_sign_in(
    http: &HttpClient,
    discovery: &Discovery,
    options: &LoginOptions,
    announce: impl Fn(&str),
) -> Result<CachedTokens, LoginError> {
    let endpoint = discovery.device_authorization_endpoint.as_deref().ok_or(LoginError::NoDeviceEndpoint)?;
    let form = [("client_id", options.client_id.as_str()), ("scope", options.scope.as_str())];
    let authorization: DeviceAuthorization = match token_request(http, endpoint, &form).await {
        Ok(response) => response,
        Err(LoginError::Token { error, description }) => {
            return Err(LoginError::DeviceAuthorization { error, description });
        }
        Err(error) => return Err(error),
    };
    let open = authorization.verification_uri_complete.as_deref().unwrap_or(&authorization.verification_uri);
    announce(&format!(
        "On any device, open this URL and confirm the code:\n\n    {open}\n\nCode: {}\n",
        authorization.user_code
    ));
    let limit = options.timeout.min(Duration::from_secs(authorization.expires_in));
    let form = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", authorization.device_code.as_str()),
        ("client_id", options.client_id.as_str()),
    ];
    let poll = async {
        let mut interval = authorization.interval;
        loop {
            tokio::time::sleep(Duration::from_secs(interval)).await;
            match token_request(http, &discovery.token_endpoint, &form).await {
                Ok(response) => return CachedTokens::from_response(response, None).ok_or(LoginError::NoIdToken),
                Err(LoginError::Token { error, description }) => match next_poll(&error, interval) {
                    PollStep::Wait(next) => interval = next,
                    PollStep::Stop => return Err(LoginError::Token { error, description }),
                },
                Err(error) => return Err(error),
            }
        }
    };
    tokio::time::timeout(limit, poll).await.map_err(|_| LoginError::Timeout(limit))?
}

/// A public client's token request (RFC 6749 §2.3: `client_id` in the body, no secret).
/// Also the device authorization request, which answers errors the same way (RFC 8628 §3.2).
async fn token_request<T: serde::de::DeserializeOwned>(
    http: &HttpClient,
    endpoint: &str,
    form: &[(&str, &str)],
) -> Result<T, LoginError> {
    let http_error = |source| LoginError::Http { url: endpoint.to_owned(), source };
    let answer = outbound::post_form(http, endpoint, form, REQUEST_TIMEOUT).await.map_err(http_error)?;
    if answer.is_success() {
        return json(&answer, endpoint);
    }
    match serde_json::from_slice::<TokenError>(&answer.body) {
        Ok(error) => Err(LoginError::Token { error: error.error, description: error.error_description }),
        Err(_) => Err(LoginError::Status { url: endpoint.to_owned(), status: answer.status }),
    }
}

async fn get_json<T: serde::de::DeserializeOwned>(http: &HttpClient, url: &str) -> Result<T, LoginError> {
    let answer = outbound::get(http, url, REQUEST_TIMEOUT)
        .await
        .map_err(|source| LoginError::Http { url: url.to_owned(), source })?;
    if !answer.is_success() {
        return Err(LoginError::Status { url: url.to_owned(), status: answer.status });
    }
    json(&answer, url)
}

fn json<T: serde::de::DeserializeOwned>(answer: &outbound::Answer, url: &str) -> Result<T, LoginError> {
    serde_json::from_slice(&answer.body).map_err(|source| LoginError::Json { url: url.to_owned(), source })
}

/// Best effort: a desktop session opens the URL; without one the printed URL is the way.
fn open_browser(url: &str) {
    let spawned = std::process::Command::new("xdg-open")
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Ok(mut child) = spawned {
        std::thread::spawn(move || child.wait());
    }
}
