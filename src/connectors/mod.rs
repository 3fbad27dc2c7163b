//! Upstream identity providers people sign in with instead of a local password: the I/O
//! side of federation. The rules (subjects, claim mapping, who is let in) are pure, in
//! [`crate::protocol::federation`]; the records come from the store.
//!
//! A connector that sends the browser to the upstream and gets it back on
//! `/callback/<connector>` offers three steps: the [`Attempt`]'s authorization URL, the
//! completion of a callback into upstream claims ([`Vouched`]), and a later re-check of
//! the person (on refresh): [`oidc`] for OpenID Connect providers, [`github`] for GitHub.
//! A directory ([`ldap`]) is signed in to with a username and password typed on our own
//! form instead, and re-checked with a search. [`Connectors`] sends each step to the kind
//! of the connector's upstream.

pub mod github;
pub mod ldap;
pub mod oidc;

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use crate::model::Upstream;
use crate::secrets::SecretString;

/// Every kind of upstream, with what each keeps between requests (discovery documents,
/// HTTP clients).
#[derive(Default)]
pub struct Connectors {
    oidc: oidc::OidcConnectors,
    github: github::GitHubConnectors,
    ldap: ldap::LdapConnectors,
}

impl Connectors {
    /// Where to send the browser to sign in at `upstream`.
    pub async fn authorization_url(
        &self,
        upstream: &Upstream,
        redirect_uri: &str,
        attempt: &Attempt<'_>,
        now: u64,
    ) -> Result<String, ConnectorError> {
        match upstream {
            Upstream::Oidc(oidc) => self.oidc.authorization_url(oidc, redirect_uri, attempt, now).await,
            Upstream::GitHub(github) => self.github.authorization_url(github, redirect_uri, attempt),
            Upstream::Ldap(_) => Err(ConnectorError::NoRedirect),
        }
    }

    /// The callback's `code` turned into what the upstream vouches for.
    pub async fn complete(
        &self,
        upstream: &Upstream,
        redirect_uri: &str,
        code: &str,
        attempt: &Attempt<'_>,
        now: u64,
    ) -> Result<Vouched, ConnectorError> {
        match upstream {
            Upstream::Oidc(oidc) => self.oidc.complete(oidc, redirect_uri, code, attempt, now).await,
            Upstream::GitHub(github) => self.github.complete(github, redirect_uri, code, attempt).await,
            Upstream::Ldap(_) => Err(ConnectorError::NoRedirect),
        }
    }

    /// What a directory vouches for the person who typed `username` and `password`.
    pub async fn authenticate(
        &self,
        upstream: &Upstream,
        username: &str,
        password: &SecretString,
    ) -> Result<Vouched, ConnectorError> {
        match upstream {
            Upstream::Ldap(ldap) => self.ldap.authenticate(ldap, username, password).await,
            Upstream::Oidc(_) | Upstream::GitHub(_) => Err(ConnectorError::NoPassword),
        }
    }

    /// The upstream asked again, with `refresh_token`, about the person with upstream
    /// subject `subject`.
    pub async fn recheck(
        &self,
        upstream: &Upstream,
        redirect_uri: &str,
        refresh_token: &str,
        subject: &str,
        now: u64,
    ) -> Result<Vouched, ConnectorError> {
        match upstream {
            Upstream::Oidc(oidc) => self.oidc.recheck(oidc, redirect_uri, refresh_token, subject, now).await,
            Upstream::GitHub(github) => self.github.recheck(github, refresh_token, subject).await,
            Upstream::Ldap(ldap) => self.ldap.recheck(ldap, refresh_token, subject).await,
        }
    }
}

/// RFC 7636 §4.2: the S256 `code_challenge` of `verifier`.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.as_bytes()))
}

/// What one sign-in through an upstream carries from its start to its callback (sealed in
/// the browser, never stored): `state`, `nonce` and the PKCE verifier.
#[derive(Debug, Clone)]
pub struct Attempt<'a> {
    pub state: &'a str,
    pub nonce: &'a str,
    pub code_verifier: &'a str,
    /// The client's `login_hint` (OIDC Core §3.1.2.1), passed on to an OpenID Connect
    /// upstream so it can fill in the account; what the callback is checked with has none.
    pub login_hint: Option<&'a str>,
}

/// What the upstream vouched for: its claims about the person (ID token and, when asked,
/// userinfo), and a refresh token to ask it again later, if it gave one.
#[derive(Clone)]
pub struct Vouched {
    pub claims: Map<String, Value>,
    pub refresh_token: Option<String>,
}

/// Why an upstream step failed. The detail is for the log; people see a generic page.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error("discovery of {issuer} failed: {detail}")]
    Discovery { issuer: String, detail: String },
    #[error("the upstream's token endpoint refused the code or refresh token: {0}")]
    Refused(String),
    #[error("the upstream's token endpoint could not be used: {0}")]
    Token(String),
    #[error("the upstream answered no ID token")]
    NoIdToken,
    #[error("the upstream's ID token is not valid: {0}")]
    IdToken(String),
    #[error("the upstream's userinfo answer is not usable: {0}")]
    Userinfo(String),
    #[error("{0} is not a usable URL")]
    Url(String),
    #[error("no HTTP client: {0}")]
    Http(String),
    #[error("the directory refused the username or password")]
    WrongCredentials,
    #[error("the directory no longer holds the person")]
    Gone,
    #[error("the directory cannot be reached: {0}")]
    DirectoryUnreachable(String),
    #[error("the directory answered unexpectedly: {0}")]
    Directory(String),
    #[error("a directory connector signs in with a password, not by redirecting the browser")]
    NoRedirect,
    #[error("only a directory connector takes a password")]
    NoPassword,
}
