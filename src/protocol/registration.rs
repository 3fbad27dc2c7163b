//! Dynamic client registration: RFC 7591 (§2 metadata, §3.2.2 errors) and the RFC 7592
//! management of a registration. Validation is pure; the handlers store and answer.

use serde::Serialize;
use url::Url;

use super::redirect;
use crate::vocabulary::ClientMetadata;
use crate::vocabulary::{GrantType, ResponseType, Scope, TokenEndpointAuthMethod};

/// Most redirect URIs (and post-logout redirect URIs) one client may register.
pub const MAX_URIS: usize = 20;
/// Longest accepted URI or string value.
pub const MAX_STRING: usize = 2000;
/// Most contacts one client may list.
pub const MAX_CONTACTS: usize = 10;
/// Registered client ids start with this, which declared clients may not use, so the two
/// never collide.
pub const CLIENT_ID_PREFIX: &str = "dcr_";

/// RFC 7591 §3.2.2 error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationErrorCode {
    InvalidRedirectUri,
    InvalidClientMetadata,
    InvalidSoftwareStatement,
}

impl RegistrationErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            RegistrationErrorCode::InvalidRedirectUri => "invalid_redirect_uri",
            RegistrationErrorCode::InvalidClientMetadata => "invalid_client_metadata",
            RegistrationErrorCode::InvalidSoftwareStatement => "invalid_software_statement",
        }
    }
}

/// A refused registration, with a description for the developer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {description}", code.as_str())]
pub struct RegistrationError {
    pub code: RegistrationErrorCode,
    pub description: String,
}

fn metadata_error(description: impl Into<String>) -> RegistrationError {
    RegistrationError { code: RegistrationErrorCode::InvalidClientMetadata, description: description.into() }
}

fn redirect_error(description: impl Into<String>) -> RegistrationError {
    RegistrationError { code: RegistrationErrorCode::InvalidRedirectUri, description: description.into() }
}

/// Metadata that passed validation, with every default filled in: what is stored and
/// echoed back (RFC 7591 §3.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedMetadata {
    pub metadata: ClientMetadata,
    /// What the client asked for; `None` when it did not say (echoed as the RFC 7591 §2
    /// default, `client_secret_basic`, and accepting `client_secret_post` too).
    pub auth_method: Option<TokenEndpointAuthMethod>,
    pub grant_types: Vec<GrantType>,
    pub scope: Scope,
}

/// Who may register a back-channel logout URI: a URI the provider itself will POST to
/// is a request into whatever network the provider sits in, so anonymous registrants may
/// not name one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registrant {
    /// Open registration: anyone.
    Anonymous,
    /// Registration with the operator's initial access token (RFC 7591 §3).
    Trusted,
}

/// Validates registration metadata from `registrant` against the scopes the policy
/// allows.
pub fn validate(
    mut metadata: ClientMetadata,
    allowed_scopes: &Scope,
    registrant: Registrant,
) -> Result<ValidatedMetadata, RegistrationError> {
    if metadata.software_statement.is_some() {
        return Err(RegistrationError {
            code: RegistrationErrorCode::InvalidSoftwareStatement,
            description: "software statements are not supported".into(),
        });
    }
    let declared = auth_method(metadata.token_endpoint_auth_method.as_deref())?;
    let auth_method = declared.unwrap_or_default();
    let grant_types = grant_types(metadata.grant_types.as_deref())?;
    let response_types = metadata.response_types.clone().unwrap_or_else(|| {
        if grant_types.contains(&GrantType::AuthorizationCode) {
            vec![ResponseType::Code.as_str().to_owned()]
        } else {
            Vec::new()
        }
    });
    check_response_types(&grant_types, &response_types)?;
    if auth_method == TokenEndpointAuthMethod::None && grant_types.contains(&GrantType::ClientCredentials) {
        return Err(metadata_error("a public client (token_endpoint_auth_method none) cannot use client_credentials"));
    }
    let native = match metadata.application_type.as_deref() {
        None | Some("web") => false,
        Some("native") => true,
        Some(_) => return Err(metadata_error("application_type must be web or native")),
    };
    if grant_types.contains(&GrantType::AuthorizationCode) && metadata.redirect_uris.is_empty() {
        return Err(redirect_error("redirect_uris is required for the authorization_code grant"));
    }
    check_uris(&metadata.redirect_uris, native, "redirect_uris")?;
    check_uris(&metadata.post_logout_redirect_uris, native, "post_logout_redirect_uris")?;
    check_logout_uris(&metadata, registrant)?;
    for (name, value) in [
        ("client_uri", &metadata.client_uri),
        ("logo_uri", &metadata.logo_uri),
        ("tos_uri", &metadata.tos_uri),
        ("policy_uri", &metadata.policy_uri),
    ] {
        if let Some(value) = value {
            check_web_uri(name, value)?;
        }
    }
    if metadata.contacts.len() > MAX_CONTACTS {
        return Err(metadata_error(format!("at most {MAX_CONTACTS} contacts")));
    }
    let strings = [&metadata.client_name, &metadata.software_id, &metadata.software_version, &metadata.scope];
    if strings
        .iter()
        .filter_map(|s| s.as_deref())
        .chain(metadata.contacts.iter().map(String::as_str))
        .any(|s| s.len() > MAX_STRING)
    {
        return Err(metadata_error(format!("values are limited to {MAX_STRING} bytes")));
    }
    let scope = match metadata.scope.as_deref() {
        Some(raw) => Scope::parse(raw).map_err(|e| metadata_error(e.description.into_owned()))?,
        None => allowed_scopes.clone(),
    };
    if !scope.is_subset(allowed_scopes) {
        return Err(metadata_error(format!("scope may only contain: {allowed_scopes}")));
    }
    metadata.token_endpoint_auth_method = Some(auth_method.as_str().to_owned());
    metadata.grant_types = Some(grant_types.iter().map(|g| g.as_str().to_owned()).collect());
    metadata.response_types = Some(response_types);
    metadata.application_type = Some(if native { "native" } else { "web" }.to_owned());
    if metadata.backchannel_logout_uri.is_some() {
        metadata.backchannel_logout_session_required.get_or_insert(false);
    }
    if metadata.frontchannel_logout_uri.is_some() {
        metadata.frontchannel_logout_session_required.get_or_insert(false);
    }
    metadata.scope = Some(scope.to_string());
    Ok(ValidatedMetadata { metadata, auth_method: declared, grant_types, scope })
}

/// RFC 7591 §2: `token_endpoint_auth_method`, when the client gives one.
fn auth_method(raw: Option<&str>) -> Result<Option<TokenEndpointAuthMethod>, RegistrationError> {
    raw.map(str::parse).transpose().map_err(|_| {
        metadata_error("token_endpoint_auth_method must be client_secret_basic, client_secret_post or none")
    })
}

/// RFC 7591 §2: `grant_types` defaults to `authorization_code`.
fn grant_types(raw: Option<&[String]>) -> Result<Vec<GrantType>, RegistrationError> {
    let Some(raw) = raw else { return Ok(vec![GrantType::AuthorizationCode]) };
    let mut grants = Vec::new();
    for grant in raw {
        let grant: GrantType = grant.parse().map_err(|_| {
            metadata_error("grant_types may only contain authorization_code, refresh_token and client_credentials")
        })?;
        if !grants.contains(&grant) {
            grants.push(grant);
        }
    }
    if grants.is_empty() {
        return Err(metadata_error("grant_types must not be empty"));
    }
    Ok(grants)
}

/// RFC 7591 §2.1: `authorization_code` goes with the `code` response type, and only then.
fn check_response_types(grants: &[GrantType], response_types: &[String]) -> Result<(), RegistrationError> {
    if response_types.iter().any(|r| r.parse::<ResponseType>().is_err()) {
        return Err(metadata_error("response_types may only contain code"));
    }
    let code = response_types.iter().any(|r| r == ResponseType::Code.as_str());
    if code != grants.contains(&GrantType::AuthorizationCode) {
        return Err(metadata_error("the authorization_code grant and the code response type go together"));
    }
    Ok(())
}

/// RFC 6749 §3.1.2 (absolute, no fragment), OIDC Registration §2 (`web` clients use https
/// and not localhost) and RFC 8252 §7 (`native` clients use loopback http, a private-use
/// scheme with a dot, or https).
fn check_uris(uris: &[String], native: bool, field: &str) -> Result<(), RegistrationError> {
    if uris.len() > MAX_URIS {
        return Err(metadata_error(format!("at most {MAX_URIS} {field}")));
    }
    for uri in uris {
        let invalid = |why: &str| redirect_error(format!("{field}: {why}"));
        if uri.len() > MAX_STRING {
            return Err(invalid("too long"));
        }
        let url = Url::parse(uri).map_err(|_| invalid("not an absolute URI"))?;
        if url.fragment().is_some() || uri.contains('#') {
            return Err(invalid("must not contain a fragment"));
        }
        let loopback = matches!(url.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"));
        let allowed = match (url.scheme(), native) {
            ("https", false) => !loopback,
            ("https", true) => true,
            ("http", true) => loopback,
            ("http", false) => false,
            (scheme, native) => native && scheme.contains('.'),
        };
        if !allowed {
            return Err(invalid(if native {
                "native clients use loopback http, https or a private-use scheme such as com.example.app:/"
            } else {
                "web clients use https and not localhost; register as application_type native for loopback"
            }));
        }
    }
    Ok(())
}

/// Back-Channel Logout 1.0 §2.2 and Front-Channel Logout 1.0 §2 (see
/// [`redirect::is_logout_uri`]); a back-channel one only from a [`Registrant::Trusted`].
fn check_logout_uris(metadata: &ClientMetadata, registrant: Registrant) -> Result<(), RegistrationError> {
    for (name, value) in [
        ("backchannel_logout_uri", &metadata.backchannel_logout_uri),
        ("frontchannel_logout_uri", &metadata.frontchannel_logout_uri),
    ] {
        if let Some(uri) = value
            && (uri.len() > MAX_STRING || !redirect::is_logout_uri(uri))
        {
            return Err(metadata_error(format!(
                "{name} must be an absolute https URI without a fragment (http only to a loopback address)"
            )));
        }
    }
    if metadata.backchannel_logout_uri.is_some() && registrant == Registrant::Anonymous {
        return Err(metadata_error(
            "backchannel_logout_uri is accepted only from a registration with an initial access token",
        ));
    }
    Ok(())
}

fn check_web_uri(name: &str, value: &str) -> Result<(), RegistrationError> {
    match Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "https" | "http") && value.len() <= MAX_STRING => Ok(()),
        _ => Err(metadata_error(format!("{name} must be an http(s) URL"))),
    }
}

/// The RFC 7591 §3.2.1 response: the metadata plus the client's credentials and the
/// RFC 7592 management credentials, which `Debug` redacts.
#[derive(Clone, Serialize)]
pub struct ClientInformation {
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    pub client_id_issued_at: u64,
    /// Only present with a secret; 0 means it never expires (RFC 7591 §3.2.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret_expires_at: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_access_token: Option<String>,
    pub registration_client_uri: String,
    #[serde(flatten)]
    pub metadata: ClientMetadata,
}

impl std::fmt::Debug for ClientInformation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |value: &Option<String>| value.as_ref().map(|_| "<redacted>");
        f.debug_struct("ClientInformation")
            .field("client_id", &self.client_id)
            .field("client_secret", &redacted(&self.client_secret))
            .field("client_id_issued_at", &self.client_id_issued_at)
            .field("client_secret_expires_at", &self.client_secret_expires_at)
            .field("registration_access_token", &redacted(&self.registration_access_token))
            .field("registration_client_uri", &self.registration_client_uri)
            .field("metadata", &self.metadata)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> Scope {
        Scope::parse("openid profile email offline_access").unwrap()
    }

    fn metadata(json: serde_json::Value) -> ClientMetadata {
        serde_json::from_value(json).unwrap()
    }

    fn check(json: serde_json::Value) -> Result<ValidatedMetadata, RegistrationError> {
        validate(metadata(json), &allowed(), Registrant::Anonymous)
    }

    #[test]
    fn frontchannel_logout_2_a_registered_uri_is_https_or_loopback_http_and_echoed_with_its_default() {
        for uri in ["https://app.example/logout?x=1", "http://127.0.0.1:9000/logout", "http://localhost/logout"] {
            let valid =
                check(serde_json::json!({"redirect_uris": ["https://app.example/cb"], "frontchannel_logout_uri": uri}))
                    .unwrap();
            assert_eq!(valid.metadata.frontchannel_logout_uri.as_deref(), Some(uri));
            assert_eq!(valid.metadata.frontchannel_logout_session_required, Some(false), "§2: false when not given");
        }
        for uri in ["http://app.example/logout", "https://app.example/logout#x", "/logout", "javascript:alert(1)"] {
            let err =
                check(serde_json::json!({"redirect_uris": ["https://app.example/cb"], "frontchannel_logout_uri": uri}))
                    .unwrap_err();
            assert_eq!(err.code, RegistrationErrorCode::InvalidClientMetadata, "{uri}");
        }
        let plain = check(serde_json::json!({"redirect_uris": ["https://app.example/cb"]})).unwrap();
        assert_eq!(plain.metadata.frontchannel_logout_session_required, None, "no URI, nothing added");
    }

    #[test]
    fn backchannel_logout_2_2_a_uri_is_taken_from_trusted_registrants_only() {
        let json = serde_json::json!({
            "redirect_uris": ["https://app.example/cb"],
            "backchannel_logout_uri": "https://app.example/backchannel",
            "backchannel_logout_session_required": true,
        });
        let err = check(json.clone()).unwrap_err();
        assert_eq!(err.code, RegistrationErrorCode::InvalidClientMetadata);
        assert!(err.description.contains("initial access token"), "{}", err.description);
        let valid = validate(metadata(json), &allowed(), Registrant::Trusted).unwrap();
        assert_eq!(valid.metadata.backchannel_logout_uri.as_deref(), Some("https://app.example/backchannel"));
        assert_eq!(valid.metadata.backchannel_logout_session_required, Some(true));
        let insecure = serde_json::json!({
            "redirect_uris": ["https://app.example/cb"],
            "backchannel_logout_uri": "http://10.0.0.1/backchannel",
        });
        let err = validate(metadata(insecure), &allowed(), Registrant::Trusted).unwrap_err();
        assert_eq!(err.code, RegistrationErrorCode::InvalidClientMetadata, "http only to loopback");
    }

    #[test]
    fn rfc7591_2_defaults_are_filled_in_and_echoed() {
        let valid =
            check(serde_json::json!({"redirect_uris": ["https://app.example/cb"], "client_name": "App", "unknown": 1}))
                .unwrap();
        assert_eq!(valid.auth_method, None, "not declared: either secret method is accepted");
        assert_eq!(valid.metadata.token_endpoint_auth_method.as_deref(), Some("client_secret_basic"));
        assert_eq!(valid.grant_types, vec![GrantType::AuthorizationCode]);
        assert_eq!(valid.metadata.response_types, Some(vec!["code".to_owned()]));
        assert_eq!(valid.metadata.application_type.as_deref(), Some("web"));
        assert_eq!(valid.scope, allowed());
    }

    #[test]
    fn rfc7591_3_2_2_redirect_uris_must_be_absolute_without_fragment() {
        for uri in ["/cb", "https://app.example/cb#x", "not a uri"] {
            let err = check(serde_json::json!({"redirect_uris": [uri]})).unwrap_err();
            assert_eq!(err.code, RegistrationErrorCode::InvalidRedirectUri, "{uri}");
        }
        let err = check(serde_json::json!({})).unwrap_err();
        assert_eq!(err.code, RegistrationErrorCode::InvalidRedirectUri, "authorization_code needs a redirect URI");
    }

    #[test]
    fn oidc_registration_2_web_clients_use_https_and_no_localhost() {
        for uri in ["http://app.example/cb", "https://localhost/cb", "http://127.0.0.1:9000/cb", "com.example.app:/cb"]
        {
            let err = check(serde_json::json!({"redirect_uris": [uri]})).unwrap_err();
            assert_eq!(err.code, RegistrationErrorCode::InvalidRedirectUri, "{uri}");
        }
    }

    #[test]
    fn rfc8252_7_native_clients_use_loopback_private_use_schemes_or_https() {
        for uri in ["http://127.0.0.1:9000/cb", "http://[::1]/cb", "com.example.app:/cb", "https://app.example/cb"] {
            assert!(check(serde_json::json!({"application_type": "native", "redirect_uris": [uri]})).is_ok(), "{uri}");
        }
        for uri in ["http://app.example/cb", "myapp:/cb"] {
            let err = check(serde_json::json!({"application_type": "native", "redirect_uris": [uri]})).unwrap_err();
            assert_eq!(err.code, RegistrationErrorCode::InvalidRedirectUri, "{uri}");
        }
    }

    #[test]
    fn rfc7591_2_1_grant_and_response_types_must_agree() {
        let cases = [
            serde_json::json!({"redirect_uris": ["https://a.example/cb"], "response_types": ["token"]}),
            serde_json::json!({"grant_types": ["client_credentials"], "response_types": ["code"]}),
            serde_json::json!({"grant_types": ["implicit"], "redirect_uris": ["https://a.example/cb"]}),
            serde_json::json!({"grant_types": [], "redirect_uris": ["https://a.example/cb"]}),
        ];
        for case in cases {
            assert_eq!(check(case.clone()).unwrap_err().code, RegistrationErrorCode::InvalidClientMetadata, "{case}");
        }
        let machine = check(serde_json::json!({"grant_types": ["client_credentials"], "scope": "profile"})).unwrap();
        assert_eq!(machine.metadata.response_types, Some(vec![]));
    }

    #[test]
    fn rfc7591_2_auth_method_must_be_supported_and_public_clients_have_no_client_credentials() {
        let bad = check(
            serde_json::json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt"}),
        );
        assert_eq!(bad.unwrap_err().code, RegistrationErrorCode::InvalidClientMetadata);
        let public =
            check(serde_json::json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"}));
        assert_eq!(public.unwrap_err().code, RegistrationErrorCode::InvalidClientMetadata);
    }

    #[test]
    fn scope_is_limited_to_the_policy() {
        let wide = check(serde_json::json!({"redirect_uris": ["https://a.example/cb"], "scope": "openid admin"}));
        assert_eq!(wide.unwrap_err().code, RegistrationErrorCode::InvalidClientMetadata);
        let narrow = check(serde_json::json!({"redirect_uris": ["https://a.example/cb"], "scope": "openid"})).unwrap();
        assert_eq!(narrow.scope.to_string(), "openid");
    }

    #[test]
    fn rfc7591_3_2_2_software_statements_are_refused() {
        let err = check(serde_json::json!({"redirect_uris": ["https://a.example/cb"], "software_statement": "eyJ..."}))
            .unwrap_err();
        assert_eq!(err.code, RegistrationErrorCode::InvalidSoftwareStatement);
    }

    #[test]
    fn sizes_are_bounded() {
        let uris: Vec<String> = (0..=MAX_URIS).map(|i| format!("https://a.example/{i}")).collect();
        assert!(check(serde_json::json!({"redirect_uris": uris})).is_err());
        let long = "x".repeat(MAX_STRING + 1);
        assert!(check(serde_json::json!({"redirect_uris": ["https://a.example/cb"], "client_name": long})).is_err());
        let contacts: Vec<String> = (0..=MAX_CONTACTS).map(|i| format!("{i}@a.example")).collect();
        assert!(check(serde_json::json!({"redirect_uris": ["https://a.example/cb"], "contacts": contacts})).is_err());
        assert!(
            check(serde_json::json!({"redirect_uris": ["https://a.example/cb"], "logo_uri": "javascript:alert(1)"}))
                .is_err()
        );
    }

    #[test]
    fn client_information_debug_redacts_the_secret_and_registration_token() {
        let information = ClientInformation {
            client_id: "dcr_abc".into(),
            client_secret: Some("client-secret-value".into()),
            client_id_issued_at: 1,
            client_secret_expires_at: Some(0),
            registration_access_token: Some("registration-token-value".into()),
            registration_client_uri: "https://id.example/register/dcr_abc".into(),
            metadata: ClientMetadata::default(),
        };
        let debug = format!("{information:?}");
        assert!(debug.contains("dcr_abc") && debug.contains("<redacted>"), "{debug}");
        assert!(!debug.contains("client-secret-value") && !debug.contains("registration-token-value"), "{debug}");
    }
}
