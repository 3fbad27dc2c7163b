//! `portcullis login`: signs the user in from a terminal as a native app (RFC 8252) —
//! the authorization code flow with PKCE and `state` on a loopback redirect — caches the
//! tokens ([`cache`]) and renews them with the refresh token, so it can serve as a kubectl
//! credential plugin ([`session::exec_credential`]).
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

use self::session::{AuthorizationStart, CachedTokens, CallbackError, TokenResponse};
use crate::secrets::random_token;

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
    /// How long to wait for the browser to come back.
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("fetching {url}: {source}")]
    Http { url: String, source: reqwest::Error },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    /// OIDC Discovery §4.3: the document must name the issuer it was fetched for.
    #[error("the discovery document names the issuer {found}, not {expected}")]
    IssuerMismatch { expected: String, found: String },
    #[error("the discovery document's {0} is not a URL")]
    BadEndpoint(&'static str),
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
/// `announce` shows the user the URL to open.
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
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|source| LoginError::Http { url: options.issuer.clone(), source })?;
    let discovery = discover(&http, &options.issuer).await?;
    let refreshed = match cached.and_then(|tokens| tokens.refresh_token) {
        Some(refresh_token) => refresh(&http, &discovery, options, refresh_token).await.ok(),
        None => None,
    };
    let tokens = match refreshed {
        Some(tokens) => tokens,
        None => sign_in(&http, &discovery, options, announce).await?,
    };
    cache::store(&path, &tokens).map_err(|source| LoginError::Cache { path, source })?;
    Ok(tokens)
}

/// OIDC Discovery §4: the document at the issuer's well-known URL, naming that issuer.
async fn discover(http: &reqwest::Client, issuer: &str) -> Result<Discovery, LoginError> {
    let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
    let discovery: Discovery = get_json(http.get(&url), &url).await?;
    if discovery.issuer != issuer {
        return Err(LoginError::IssuerMismatch { expected: issuer.to_owned(), found: discovery.issuer });
    }
    Ok(discovery)
}

/// RFC 6749 §6: new tokens for the refresh token; `Err` when it is no longer good.
async fn refresh(
    http: &reqwest::Client,
    discovery: &Discovery,
    options: &LoginOptions,
    refresh_token: String,
) -> Result<CachedTokens, LoginError> {
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token.as_str()),
        ("client_id", options.client_id.as_str()),
    ];
    let response = token_request(http, &discovery.token_endpoint, &form).await?;
    CachedTokens::from_response(response, Some(refresh_token)).ok_or(LoginError::NoIdToken)
}

/// RFC 8252 §7.3 and RFC 7636: the code flow through the browser and the loopback listener.
async fn sign_in(
    http: &reqwest::Client,
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
    announce(url.as_str());
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
    let response = token_request(http, &discovery.token_endpoint, &form).await?;
    CachedTokens::from_response(response, None).ok_or(LoginError::NoIdToken)
}

/// A public client's token request (RFC 6749 §2.3: `client_id` in the body, no secret).
async fn token_request(
    http: &reqwest::Client,
    endpoint: &str,
    form: &[(&str, &str)],
) -> Result<TokenResponse, LoginError> {
    let http_error = |source| LoginError::Http { url: endpoint.to_owned(), source };
    let response = http.post(endpoint).form(form).send().await.map_err(http_error)?;
    if response.status().is_success() {
        return response.json().await.map_err(http_error);
    }
    let status = response.status().as_u16();
    match response.json::<TokenError>().await {
        Ok(error) => Err(LoginError::Token { error: error.error, description: error.error_description }),
        Err(_) => Err(LoginError::Status { url: endpoint.to_owned(), status }),
    }
}

async fn get_json<T: serde::de::DeserializeOwned>(
    request: reqwest::RequestBuilder,
    url: &str,
) -> Result<T, LoginError> {
    let http_error = |source| LoginError::Http { url: url.to_owned(), source };
    let response = request.send().await.map_err(http_error)?;
    if !response.status().is_success() {
        return Err(LoginError::Status { url: url.to_owned(), status: response.status().as_u16() });
    }
    response.json().await.map_err(http_error)
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
