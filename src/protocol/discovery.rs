//! Provider metadata: OpenID Connect Discovery 1.0 §3 and RFC 8414 §2.
//!
//! Every value advertised here is implemented; nothing unimplemented is advertised.

use serde::Serialize;

use super::endpoints;
use crate::crd::SigningAlgorithm;

/// Client authentication methods accepted wherever a client authenticates.
pub const CLIENT_AUTH_METHODS: &[&str] = &["client_secret_basic", "client_secret_post"];

/// The provider metadata document, served at both well-known locations.
#[derive(Debug, Clone, Serialize)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub jwks_uri: String,
    pub token_endpoint: String,
    pub introspection_endpoint: String,
    pub revocation_endpoint: String,
    pub grant_types_supported: Vec<&'static str>,
    pub response_types_supported: Vec<&'static str>,
    pub token_endpoint_auth_methods_supported: &'static [&'static str],
    pub introspection_endpoint_auth_methods_supported: &'static [&'static str],
    pub revocation_endpoint_auth_methods_supported: &'static [&'static str],
    pub subject_types_supported: Vec<&'static str>,
    pub id_token_signing_alg_values_supported: Vec<&'static str>,
}

/// Builds the metadata for an issuer whose keys use the given algorithms.
///
/// `issuer` must be exactly the configured issuer (OIDC Discovery §4.3): endpoint URLs are
/// the issuer with the path appended, so a trailing slash is not doubled.
pub fn metadata(issuer: &str, algorithms: &[SigningAlgorithm]) -> ProviderMetadata {
    let base = issuer.trim_end_matches('/');
    let url = |path: &str| format!("{base}{path}");
    let mut algs: Vec<&'static str> = algorithms.iter().map(|a| a.as_str()).collect();
    algs.sort_unstable();
    algs.dedup();
    ProviderMetadata {
        issuer: issuer.to_owned(),
        jwks_uri: url(endpoints::JWKS),
        token_endpoint: url(endpoints::TOKEN),
        introspection_endpoint: url(endpoints::INTROSPECT),
        revocation_endpoint: url(endpoints::REVOKE),
        grant_types_supported: vec!["client_credentials"],
        response_types_supported: vec![],
        token_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS,
        introspection_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS,
        revocation_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS,
        subject_types_supported: vec!["public"],
        id_token_signing_alg_values_supported: algs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oidc_discovery_4_3_issuer_is_exactly_the_configured_value() {
        let doc = metadata("https://id.example/tenant", &[SigningAlgorithm::RS256]);
        assert_eq!(doc.issuer, "https://id.example/tenant");
        assert_eq!(doc.token_endpoint, "https://id.example/tenant/token");
        assert_eq!(doc.jwks_uri, "https://id.example/tenant/jwks.json");
    }

    #[test]
    fn trailing_slash_issuer_does_not_double_slashes() {
        let doc = metadata("https://id.example/", &[SigningAlgorithm::RS256]);
        assert_eq!(doc.issuer, "https://id.example/");
        assert_eq!(doc.introspection_endpoint, "https://id.example/introspect");
    }

    #[test]
    fn signing_algorithms_come_from_the_keys() {
        let doc = metadata(
            "https://id.example",
            &[SigningAlgorithm::ES256, SigningAlgorithm::RS256, SigningAlgorithm::RS256],
        );
        assert_eq!(doc.id_token_signing_alg_values_supported, vec!["ES256", "RS256"]);
    }
}
