//! The token endpoint's shared rules (RFC 6749 §3.2, §5) and the `client_credentials`
//! grant (RFC 6749 §4.4) with RFC 9068 JWT access tokens.

use serde::Serialize;

use super::claims::{AccessTokenClaims, Audience};
use super::form::FormParams;
use super::scope::{self, Scope};
use super::{ErrorCode, OAuthError};
use crate::crd::GrantType;
use crate::model::ClientRecord;

/// A token request, typed by grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantRequest {
    /// RFC 6749 §4.4.2.
    ClientCredentials { scope: Option<Scope> },
}

impl GrantRequest {
    pub fn grant_type(&self) -> GrantType {
        match self {
            GrantRequest::ClientCredentials { .. } => GrantType::ClientCredentials,
        }
    }
}

/// Reads `grant_type` and the parameters of that grant (RFC 6749 §4.4.2).
pub fn parse_grant_request(form: &FormParams) -> Result<GrantRequest, OAuthError> {
    match form.require("grant_type")? {
        "client_credentials" => {
            let scope = form.get("scope")?.map(Scope::parse).transpose()?;
            Ok(GrantRequest::ClientCredentials { scope })
        }
        _ => Err(OAuthError::new(ErrorCode::UnsupportedGrantType, "the grant type is not supported by this server")),
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
const USER_ONLY_SCOPES: &[&str] = &["openid", "offline_access", "profile", "email", "roles", "address", "phone"];

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

/// RFC 9068 §2.2 claims for a token the client obtains for itself (`sub` is the client id).
pub fn client_credentials_token(
    issuer: &str,
    client: &ClientRecord,
    scope: &Scope,
    jti: String,
    now: u64,
    default_ttl: u64,
) -> AccessTokenGrant {
    let expires_in = client.access_token_ttl.unwrap_or(default_ttl);
    let claims = AccessTokenClaims {
        iss: issuer.to_owned(),
        sub: client.client_id.clone(),
        aud: Audience(client.token_audience()),
        exp: now + expires_in,
        iat: now,
        jti,
        client_id: client.client_id.clone(),
        scope: (!scope.is_empty()).then(|| scope.to_string()),
    };
    AccessTokenGrant { claims, expires_in }
}

/// The successful token response (RFC 6749 §5.1).
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::TokenEndpointAuthMethod;

    fn client(grants: &[GrantType], scopes: &str) -> ClientRecord {
        ClientRecord {
            client_id: "batch-job".into(),
            client_name: None,
            secret_hash: None,
            auth_method: TokenEndpointAuthMethod::ClientSecretBasic,
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            grant_types: grants.to_vec(),
            scopes: Scope::parse(scopes).unwrap(),
            roles: vec![],
            audience: vec![],
            access_token_ttl: None,
            require_pkce: false,
            skip_consent: false,
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
        for grant in ["password", "implicit", "urn:ietf:params:oauth:grant-type:device_code"] {
            assert_eq!(parse(&format!("grant_type={grant}")).unwrap_err().code, ErrorCode::UnsupportedGrantType);
        }
    }

    #[test]
    fn rfc6749_4_4_2_client_credentials_reads_optional_scope() {
        assert_eq!(parse("grant_type=client_credentials").unwrap(), GrantRequest::ClientCredentials { scope: None });
        let GrantRequest::ClientCredentials { scope } = parse("grant_type=client_credentials&scope=b+a").unwrap();
        assert_eq!(scope.unwrap().to_string(), "a b");
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

    #[test]
    fn rfc9068_2_2_client_credentials_claims() {
        let mut c = client(&[GrantType::ClientCredentials], "api:read");
        let grant = client_credentials_token(
            "https://id.example",
            &c,
            &Scope::parse("api:read").unwrap(),
            "j1".into(),
            1000,
            300,
        );
        let claims = grant.claims;
        assert_eq!(
            (claims.iss.as_str(), claims.sub.as_str(), claims.client_id.as_str()),
            ("https://id.example", "batch-job", "batch-job")
        );
        assert_eq!(claims.aud, Audience(vec!["batch-job".into()]));
        assert_eq!((claims.iat, claims.exp, grant.expires_in), (1000, 1300, 300));
        assert_eq!(claims.scope.as_deref(), Some("api:read"));

        c.access_token_ttl = Some(60);
        c.audience = vec!["https://api.example".into()];
        let grant = client_credentials_token("https://id.example", &c, &Scope::default(), "j2".into(), 1000, 300);
        assert_eq!((grant.claims.exp, grant.claims.scope), (1060, None));
        assert_eq!(grant.claims.aud, Audience(vec!["https://api.example".into()]));
    }
}
