//! Upstream identity providers people sign in with instead of a local password: the I/O
//! side of federation. The rules (subjects, claim mapping, who is let in) are pure, in
//! [`crate::protocol::federation`]; the records come from the store.
//!
//! A connector that sends the browser to the upstream and gets it back on
//! `/callback/<connector>` offers three steps: the [`Attempt`]'s authorization URL, the
//! completion of a callback into upstream claims ([`Vouched`]), and a later re-check of
//! the person (on refresh). [`oidc`] is the one kind so far.

pub mod oidc;

use serde_json::{Map, Value};

/// What one sign-in through an upstream carries from its start to its callback (sealed in
/// the browser, never stored): `state`, `nonce` and the PKCE verifier.
#[derive(Debug, Clone)]
pub struct Attempt<'a> {
    pub state: &'a str,
    pub nonce: &'a str,
    pub code_verifier: &'a str,
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
}
