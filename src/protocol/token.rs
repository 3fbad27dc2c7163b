//! The token endpoint's shared rules (RFC 6749 §3.2, §5) and the `client_credentials`
//! grant (RFC 6749 §4.4) with RFC 9068 JWT access tokens.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::claims::{AccessTokenClaims, Audience};
use super::epoch::token_epoch;
use super::form::FormParams;
use super::pkce;
use super::scope;
use crate::model::{AuthorizationCode, ClientRecord, Grant};
use crate::vocabulary::{ErrorCode, OAuthError};
use crate::vocabulary::{GrantType, Scope};

/// A token request, typed by grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantRequest {
    /// RFC 6749 §4.1.3.
    AuthorizationCode { code: String, redirect_uri: Option<String>, code_verifier: Option<String> },
    /// RFC 6749 §6.
    RefreshToken { refresh_token: String, scope: Option<Scope> },
    /// RFC 6749 §4.4.2.
    ClientCredentials { scope: Option<Scope> },
    /// RFC 8628 §3.4.
    DeviceCode { device_code: String },
}

impl GrantRequest {
    pub fn grant_type(&self) -> GrantType {
        match self {
            GrantRequest::AuthorizationCode { .. } => GrantType::AuthorizationCode,
            GrantRequest::RefreshToken { .. } => GrantType::RefreshToken,
            GrantRequest::ClientCredentials { .. } => GrantType::ClientCredentials,
            GrantRequest::DeviceCode { .. } => GrantType::DeviceCode,
        }
    }
}

/// Reads `grant_type` and the parameters of that grant (RFC 6749 §4.1.3, §4.4.2, §6;
/// RFC 8628 §3.4).
pub fn parse_grant_request(form: &FormParams) -> Result<GrantRequest, OAuthError> {
    let owned = |name: &str| form.get(name).map(|v| v.map(str::to_owned));
    let scope = || form.get("scope")?.map(Scope::parse).transpose();
    let grant_type = form.require("grant_type")?.parse().map_err(|_| {
        OAuthError::new(ErrorCode::UnsupportedGrantType, "the grant type is not supported by this server")
    })?;
    match grant_type {
        GrantType::AuthorizationCode => Ok(GrantRequest::AuthorizationCode {
            code: form.require("code")?.to_owned(),
            redirect_uri: owned("redirect_uri")?,
            code_verifier: owned("code_verifier")?,
        }),
        GrantType::RefreshToken => {
            Ok(GrantRequest::RefreshToken { refresh_token: form.require("refresh_token")?.to_owned(), scope: scope()? })
        }
        GrantType::ClientCredentials => Ok(GrantRequest::ClientCredentials { scope: scope()? }),
        GrantType::DeviceCode => Ok(GrantRequest::DeviceCode { device_code: form.require("device_code")?.to_owned() }),
    }
}

/// RFC 6749 §5.2 `unauthorized_client`: the client is not registered for this grant type.
pub fn check_grant_allowed(client: &ClientRecord, grant: GrantType) -> Result<(), OAuthError> {
    if client.allows_grant(grant) {
        Ok(())
    } else {
        Err(OAuthError::unauthorized_client(format!("the client is not allowed to use the {grant} grant")))
    }
}

/// Scopes that only make sense with an end-user, never granted to a client acting for itself.
const USER_ONLY_SCOPES: &[&str] =
    &["openid", "offline_access", "profile", "email", "roles", "groups", "address", "phone"];

/// RFC 6749 §4.4 + §3.3: the scope a client-credentials token carries.
pub fn client_credentials_scope(client: &ClientRecord, requested: Option<&Scope>) -> Result<Scope, OAuthError> {
    let allowed = client.scopes.without(USER_ONLY_SCOPES);
    scope::grant(requested, &allowed)
}

/// What a newly issued access token says and how long it lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessTokenGrant {
    pub claims: AccessTokenClaims,
    pub expires_in: u64,
}

/// What every access token a provider issues carries besides what the grant says.
#[derive(Debug, Clone, Copy)]
pub struct Issuance<'a> {
    pub issuer: &'a str,
    /// The lifetime of tokens whose client sets none, in seconds.
    pub default_ttl: u64,
    /// The store's data epoch as the provider last saw it (see [`super::epoch`]).
    pub epoch: &'a str,
}

/// RFC 9068 §2.2 claims for a token the client obtains for itself (`sub` is the client id).
pub fn client_credentials_token(
    issuance: &Issuance<'_>,
    client: &ClientRecord,
    scope: &Scope,
    jti: String,
    now: u64,
) -> AccessTokenGrant {
    let expires_in = client.access_token_ttl.unwrap_or(issuance.default_ttl);
    let claims = AccessTokenClaims {
        iss: issuance.issuer.to_owned(),
        sub: client.client_id.clone(),
        aud: Audience(client.token_audience()),
        exp: now + expires_in,
        iat: now,
        jti,
        client_id: client.client_id.clone(),
        scope: (!scope.is_empty()).then(|| scope.to_string()),
        auth_time: None,
        sid: None,
        epoch: Some(token_epoch(issuance.epoch)),
        userinfo_claims: BTreeSet::new(),
    };
    AccessTokenGrant { claims, expires_in }
}

/// RFC 6749 §4.1.3 and RFC 7636 §4.6: a consumed code is only good for the client it was
/// issued to, with the very redirect URI of the authorization request and, when a PKCE
/// challenge was sent, the matching verifier.
pub fn check_code(
    code: &AuthorizationCode,
    client_id: &str,
    redirect_uri: Option<&str>,
    code_verifier: Option<&str>,
) -> Result<(), OAuthError> {
    if code.client_id != client_id {
        return Err(OAuthError::invalid_grant("the code was issued to another client"));
    }
    if redirect_uri != Some(code.redirect_uri.as_str()) {
        return Err(OAuthError::invalid_grant("redirect_uri does not match the authorization request"));
    }
    pkce::verify(code_verifier, code.code_challenge.as_deref())
}

/// RFC 6749 §6: a refreshed token's scope may be narrowed, never widened.
pub fn refresh_scope(requested: Option<&Scope>, granted: &Scope) -> Result<Scope, OAuthError> {
    match requested {
        None => Ok(granted.clone()),
        Some(requested) if requested.is_subset(granted) && !requested.is_empty() => Ok(requested.clone()),
        Some(_) => Err(OAuthError::invalid_scope("the requested scope exceeds the scope originally granted")),
    }
}

/// RFC 9068 §2.2 claims for a token a user's grant authorizes.
pub fn user_access_token(
    issuance: &Issuance<'_>,
    client: &ClientRecord,
    grant: &Grant,
    scope: &Scope,
    jti: String,
    now: u64,
) -> AccessTokenGrant {
    let mut token = client_credentials_token(issuance, client, scope, jti, now);
    token.claims.sub = grant.subject.clone();
    token.claims.auth_time = Some(grant.auth_time);
    token.claims.sid = Some(grant.session_id.clone());
    token.claims.userinfo_claims = grant.claims.userinfo.clone();
    token
}

/// The successful token response (RFC 6749 §5.1, OIDC Core §3.1.3.3).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocabulary::TokenEndpointAuthMethod;

    fn client(grants: &[GrantType], scopes: &str) -> ClientRecord {
        ClientRecord {
            auth_method: Some(TokenEndpointAuthMethod::ClientSecretBasic),
            grant_types: grants.to_vec(),
            require_pkce: false,
            ..ClientRecord::fixture("batch-job", &[], scopes)
        }
    }

    fn parse(body: &str) -> Result<GrantRequest, OAuthError> {
        parse_grant_request(&FormParams::parse(body.as_bytes()).unwrap())
    }

    #[test]
    fn rfc6749_5_2_missing_grant_type_is_invalid_request() {
        assert_eq!(parse("scope=a").unwrap_err().code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn rfc6749_5_2_unknown_grant_type_is_unsupported_grant_type() {
        for grant in ["password", "implicit", "urn:ietf:params:oauth:grant-type:jwt-bearer", "Authorization_Code"] {
            assert_eq!(parse(&format!("grant_type={grant}")).unwrap_err().code, ErrorCode::UnsupportedGrantType);
        }
    }

    #[test]
    fn rfc6749_4_4_2_client_credentials_reads_optional_scope() {
        assert_eq!(parse("grant_type=client_credentials").unwrap(), GrantRequest::ClientCredentials { scope: None });
        let parsed = parse("grant_type=client_credentials&scope=b+a").unwrap();
        assert_eq!(parsed, GrantRequest::ClientCredentials { scope: Some(Scope::parse("a b").unwrap()) });
    }

    #[test]
    fn rfc6749_5_2_unregistered_grant_is_unauthorized_client() {
        let c = client(&[GrantType::AuthorizationCode], "");
        assert_eq!(
            check_grant_allowed(&c, GrantType::ClientCredentials).unwrap_err().code,
            ErrorCode::UnauthorizedClient
        );
        assert!(check_grant_allowed(&c, GrantType::AuthorizationCode).is_ok());
    }

    #[test]
    fn rfc6749_4_4_user_scopes_are_never_granted_to_a_client_alone() {
        let c = client(&[GrantType::ClientCredentials], "openid offline_access api:read");
        assert_eq!(client_credentials_scope(&c, None).unwrap().to_string(), "api:read");
        let err = client_credentials_scope(&c, Some(&Scope::parse("openid").unwrap())).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidScope);
    }

    const ISSUANCE: Issuance<'static> = Issuance { issuer: "https://id.example", default_ttl: 300, epoch: "e1" };

    #[test]
    fn rfc9068_2_2_client_credentials_claims() {
        let mut c = client(&[GrantType::ClientCredentials], "api:read");
        let grant = client_credentials_token(&ISSUANCE, &c, &Scope::parse("api:read").unwrap(), "j1".into(), 1000);
        let claims = grant.claims;
        assert_eq!(
            (claims.iss.as_str(), claims.sub.as_str(), claims.client_id.as_str()),
            ("https://id.example", "batch-job", "batch-job")
        );
        assert_eq!(claims.aud, Audience(vec!["batch-job".into()]));
        assert_eq!((claims.iat, claims.exp, grant.expires_in), (1000, 1300, 300));
        assert_eq!(claims.scope.as_deref(), Some("api:read"));
        assert_eq!(claims.epoch, Some(token_epoch("e1")), "bound to the store's data epoch");

        c.access_token_ttl = Some(60);
        c.audience = vec!["https://api.example".into()];
        let grant = client_credentials_token(&ISSUANCE, &c, &Scope::default(), "j2".into(), 1000);
        assert_eq!((grant.claims.exp, grant.claims.scope), (1060, None));
        assert_eq!(grant.claims.aud, Audience(vec!["https://api.example".into()]));
    }

    fn code() -> AuthorizationCode {
        AuthorizationCode {
            grant_id: "g".into(),
            client_id: "webapp".into(),
            redirect_uri: "https://app.example/cb".into(),
            scope: Scope::parse("openid").unwrap(),
            nonce: None,
            code_challenge: Some(pkce::s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")),
            subject: "alice".into(),
            auth_time: 1,
            session_id: "s".into(),
            claims: Default::default(),
        }
    }

    #[test]
    fn rfc6749_4_1_3_code_grant_reads_code_redirect_uri_and_verifier() {
        let parsed =
            parse("grant_type=authorization_code&code=c&redirect_uri=https%3A%2F%2Fa%2Fcb&code_verifier=v").unwrap();
        let expected = GrantRequest::AuthorizationCode {
            code: "c".into(),
            redirect_uri: Some("https://a/cb".into()),
            code_verifier: Some("v".into()),
        };
        assert_eq!(parsed, expected);
        assert_eq!(parse("grant_type=authorization_code").unwrap_err().code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn rfc8628_3_4_device_grant_reads_the_device_code() {
        let parsed = parse("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=d").unwrap();
        assert_eq!(parsed, GrantRequest::DeviceCode { device_code: "d".into() });
        let missing = parse("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code").unwrap_err();
        assert_eq!(missing.code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn rfc6749_6_refresh_grant_reads_token_and_scope() {
        assert_eq!(
            parse("grant_type=refresh_token&refresh_token=r&scope=openid").unwrap(),
            GrantRequest::RefreshToken { refresh_token: "r".into(), scope: Some(Scope::parse("openid").unwrap()) }
        );
        assert_eq!(parse("grant_type=refresh_token").unwrap_err().code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn rfc6749_4_1_3_code_is_bound_to_client_and_redirect_uri() {
        let verifier = Some("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert!(check_code(&code(), "webapp", Some("https://app.example/cb"), verifier).is_ok());
        let other_client = check_code(&code(), "other", Some("https://app.example/cb"), verifier).unwrap_err();
        assert_eq!(other_client.code, ErrorCode::InvalidGrant);
        for uri in [None, Some("https://app.example/cb/"), Some("https://app.example/other")] {
            assert_eq!(check_code(&code(), "webapp", uri, verifier).unwrap_err().code, ErrorCode::InvalidGrant);
        }
    }

    #[test]
    fn rfc7636_4_6_code_needs_the_matching_verifier() {
        let wrong = check_code(&code(), "webapp", Some("https://app.example/cb"), Some(&"a".repeat(43))).unwrap_err();
        assert_eq!(wrong.code, ErrorCode::InvalidGrant);
        let missing = check_code(&code(), "webapp", Some("https://app.example/cb"), None).unwrap_err();
        assert_eq!(missing.code, ErrorCode::InvalidGrant);
    }

    #[test]
    fn rfc6749_6_refresh_scope_may_narrow_but_not_widen() {
        let granted = Scope::parse("openid profile offline_access").unwrap();
        assert_eq!(refresh_scope(None, &granted).unwrap(), granted);
        let narrowed = Scope::parse("openid").unwrap();
        assert_eq!(refresh_scope(Some(&narrowed), &granted).unwrap(), narrowed);
        let wider = Scope::parse("openid email").unwrap();
        assert_eq!(refresh_scope(Some(&wider), &granted).unwrap_err().code, ErrorCode::InvalidScope);
    }
}
