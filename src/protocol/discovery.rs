//! Provider metadata: OpenID Connect Discovery 1.0 §3 and RFC 8414 §2.
//!
//! Every value advertised here is implemented; nothing unimplemented is advertised.

use serde::Serialize;

use super::endpoints;
use crate::vocabulary::{
    GrantType, PromptValue, ResponseMode, ResponseType, SigningAlgorithm, TokenEndpointAuthMethod,
};

/// Client authentication methods accepted wherever a confidential client authenticates.
pub const CLIENT_AUTH_METHODS: &[&str] =
    &[TokenEndpointAuthMethod::ClientSecretBasic.as_str(), TokenEndpointAuthMethod::ClientSecretPost.as_str()];
/// At the token endpoint public clients identify themselves with `client_id` alone.
pub const TOKEN_ENDPOINT_AUTH_METHODS: &[&str] = TokenEndpointAuthMethod::NAMES;
/// Scopes with a defined meaning here; clients may also be allowed scopes of their own.
pub const SCOPES: &[&str] = &["openid", "profile", "email", "phone", "address", "groups", "roles", "offline_access"];
/// Claims the UserInfo endpoint and ID tokens can release.
pub const CLAIMS: &[&str] = &[
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "at_hash",
    "sid",
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "picture",
    "website",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "updated_at",
    "email",
    "email_verified",
    "phone_number",
    "phone_number_verified",
    "address",
    "groups",
    "realm_access",
    "resource_access",
];

/// The provider metadata document, served at both well-known locations.
#[derive(Debug, Clone, Serialize)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub userinfo_endpoint: String,
    pub jwks_uri: String,
    pub end_session_endpoint: String,
    pub introspection_endpoint: String,
    pub revocation_endpoint: String,
    /// RFC 8628 §4.
    pub device_authorization_endpoint: String,
    /// RFC 7591 §3; absent when registration is disabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    pub scopes_supported: &'static [&'static str],
    pub response_types_supported: &'static [&'static str],
    pub response_modes_supported: &'static [&'static str],
    pub grant_types_supported: &'static [&'static str],
    pub subject_types_supported: &'static [&'static str],
    pub id_token_signing_alg_values_supported: Vec<&'static str>,
    pub token_endpoint_auth_methods_supported: &'static [&'static str],
    pub introspection_endpoint_auth_methods_supported: &'static [&'static str],
    pub revocation_endpoint_auth_methods_supported: &'static [&'static str],
    pub code_challenge_methods_supported: &'static [&'static str],
    pub claims_supported: &'static [&'static str],
    pub prompt_values_supported: &'static [&'static str],
    pub claims_parameter_supported: bool,
    pub request_parameter_supported: bool,
    pub request_uri_parameter_supported: bool,
    /// RFC 9207 §3: authorization responses carry `iss`.
    pub authorization_response_iss_parameter_supported: bool,
    /// Back-Channel Logout 1.0 §2.1: we send logout tokens to clients that registered a
    /// `backchannel_logout_uri`.
    pub backchannel_logout_supported: bool,
    /// Back-Channel Logout 1.0 §2.1: the logout tokens we send always carry `sid`.
    pub backchannel_logout_session_supported: bool,
    /// Front-Channel Logout 1.0 §3: the logged-out page frames the front-channel logout URI
    /// of each client of the ended session.
    pub frontchannel_logout_supported: bool,
    /// Front-Channel Logout 1.0 §3: those frames carry `iss` and `sid` when the client
    /// requires them.
    pub frontchannel_logout_session_supported: bool,
}

/// Builds the metadata for an issuer whose ID tokens are signed with `id_token_algorithm`.
///
/// `issuer` must be exactly the configured issuer (OIDC Discovery §4.3): endpoint URLs are
/// the issuer with the path appended, so a trailing slash is not doubled.
pub fn metadata(issuer: &str, id_token_algorithm: Option<SigningAlgorithm>, registration: bool) -> ProviderMetadata {
    let base = issuer.trim_end_matches('/');
    let url = |path: &str| format!("{base}{path}");
    ProviderMetadata {
        issuer: issuer.to_owned(),
        authorization_endpoint: url(endpoints::AUTHORIZE),
        token_endpoint: url(endpoints::TOKEN),
        userinfo_endpoint: url(endpoints::USERINFO),
        jwks_uri: url(endpoints::JWKS),
        end_session_endpoint: url(endpoints::LOGOUT),
        introspection_endpoint: url(endpoints::INTROSPECT),
        revocation_endpoint: url(endpoints::REVOKE),
        device_authorization_endpoint: url(endpoints::DEVICE_AUTHORIZATION),
        registration_endpoint: registration.then(|| url(endpoints::REGISTER)),
        scopes_supported: SCOPES,
        response_types_supported: ResponseType::NAMES,
        response_modes_supported: ResponseMode::NAMES,
        grant_types_supported: GrantType::NAMES,
        subject_types_supported: &["public"],
        id_token_signing_alg_values_supported: id_token_algorithm.map(SigningAlgorithm::as_str).into_iter().collect(),
        token_endpoint_auth_methods_supported: TOKEN_ENDPOINT_AUTH_METHODS,
        introspection_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS,
        revocation_endpoint_auth_methods_supported: TOKEN_ENDPOINT_AUTH_METHODS,
        code_challenge_methods_supported: &["S256"],
        claims_supported: CLAIMS,
        prompt_values_supported: PromptValue::NAMES,
        claims_parameter_supported: true,
        request_parameter_supported: false,
        request_uri_parameter_supported: false,
        authorization_response_iss_parameter_supported: true,
        backchannel_logout_supported: true,
        backchannel_logout_session_supported: true,
        frontchannel_logout_supported: true,
        frontchannel_logout_session_supported: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oidc_discovery_4_3_issuer_is_exactly_the_configured_value() {
        let doc = metadata("https://id.example/tenant", Some(SigningAlgorithm::RS256), false);
        assert_eq!(doc.issuer, "https://id.example/tenant");
        assert_eq!(doc.token_endpoint, "https://id.example/tenant/token");
        assert_eq!(doc.jwks_uri, "https://id.example/tenant/jwks.json");
    }

    #[test]
    fn rfc8628_4_device_endpoint_and_grant_type_are_advertised() {
        let doc = metadata("https://id.example", None, false);
        assert_eq!(doc.device_authorization_endpoint, "https://id.example/device_authorization");
        assert!(doc.grant_types_supported.contains(&"urn:ietf:params:oauth:grant-type:device_code"));
    }

    #[test]
    fn trailing_slash_issuer_does_not_double_slashes() {
        let doc = metadata("https://id.example/", Some(SigningAlgorithm::RS256), false);
        assert_eq!(doc.issuer, "https://id.example/");
        assert_eq!(doc.introspection_endpoint, "https://id.example/introspect");
    }

    #[test]
    fn rfc7591_registration_endpoint_is_advertised_only_when_enabled() {
        assert_eq!(metadata("https://id.example", None, false).registration_endpoint, None);
        let doc = metadata("https://id.example", None, true);
        assert_eq!(doc.registration_endpoint.as_deref(), Some("https://id.example/register"));
    }

    #[test]
    fn id_token_algorithm_is_the_one_that_signs() {
        let doc = metadata("https://id.example", Some(SigningAlgorithm::ES256), false);
        assert_eq!(doc.id_token_signing_alg_values_supported, vec!["ES256"]);
    }

    #[test]
    fn rfc7636_and_rfc9207_capabilities_are_advertised() {
        let doc = metadata("https://id.example", Some(SigningAlgorithm::RS256), false);
        assert_eq!(doc.code_challenge_methods_supported, ["S256"]);
        assert!(doc.authorization_response_iss_parameter_supported);
        assert_eq!(doc.response_types_supported, ["code"]);
    }
}
