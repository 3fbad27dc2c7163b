//! The protocol's vocabulary, at the bottom of the tree: the values that travel on the
//! wire (grant types, client authentication methods, signing algorithms, response types
//! and modes, `prompt`, scopes), the OAuth 2.0 error codes, the validated authorization
//! request and RFC 7591 client metadata.
//!
//! Everything above builds on these types: the records of [`crate::model`], the rules of
//! [`crate::protocol`], the custom resources of [`crate::crd`] (which re-use them, so their
//! schemas list the same names) and the keys. This module imports nothing else of the
//! crate.

mod claims_request;
mod error;
mod scope;

pub use claims_request::ClaimsRequest;
pub use error::{ErrorCode, OAuthError, error_description};
pub use scope::Scope;

use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A string that is none of an enum's wire names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not one of {}", expected.join(", "))]
pub struct UnknownName {
    pub value: String,
    pub expected: &'static [&'static str],
}

/// Declares an enum whose variants travel as fixed strings. Each wire name is written once,
/// beside its variant: serde (and so schemars) read it through a generated
/// `#[serde(rename)]`, and `as_str`, `Display`, `FromStr` and `NAMES` are generated from it.
/// The enum must derive `Serialize` and `Deserialize`.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident = $wire:literal, )+
        }
    ) => {
        $(#[$meta])*
        pub enum $name {
            $( $(#[$variant_meta])* #[serde(rename = $wire)] $variant, )+
        }

        impl $name {
            /// Every wire name, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($wire),+];

            /// The wire name.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $wire, )+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::vocabulary::UnknownName;

            /// Exactly the wire names, case-sensitively.
            fn from_str(value: &str) -> Result<Self, Self::Err> {
                match value {
                    $( $wire => Ok($name::$variant), )+
                    _ => Err($crate::vocabulary::UnknownName { value: value.to_owned(), expected: Self::NAMES }),
                }
            }
        }
    };
}
pub(crate) use wire_enum;

wire_enum! {
    /// OAuth 2.0 grant types Portcullis implements (RFC 7591 §2 names).
    #[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
    pub enum GrantType {
        /// RFC 6749 §4.1.
        AuthorizationCode = "authorization_code",
        /// RFC 6749 §6.
        RefreshToken = "refresh_token",
        /// RFC 6749 §4.4.
        ClientCredentials = "client_credentials",
        /// RFC 8628 §3.4.
        DeviceCode = "urn:ietf:params:oauth:grant-type:device_code",
    }
}

wire_enum! {
    /// Client authentication methods (RFC 7591 §2 `token_endpoint_auth_method`).
    #[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
    pub enum TokenEndpointAuthMethod {
        /// HTTP Basic with the form-encoded id and secret (RFC 6749 §2.3.1).
        #[default]
        ClientSecretBasic = "client_secret_basic",
        /// `client_id` and `client_secret` in the form body (RFC 6749 §2.3.1).
        ClientSecretPost = "client_secret_post",
        /// A public client: no secret (RFC 7591 §2).
        None = "none",
    }
}

wire_enum! {
    /// JWS signature algorithms Portcullis signs with (RFC 7518 §3.1, RFC 8037).
    #[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
    pub enum SigningAlgorithm {
        /// RSASSA-PKCS1-v1_5 with SHA-256.
        RS256 = "RS256",
        /// ECDSA P-256 with SHA-256.
        ES256 = "ES256",
        /// Ed25519 (RFC 8037).
        EdDSA = "EdDSA",
    }
}

wire_enum! {
    /// Authorization response types (RFC 6749 §3.1.1): only the code flow.
    #[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
    pub enum ResponseType {
        /// RFC 6749 §4.1.1.
        Code = "code",
    }
}

wire_enum! {
    /// How the authorization response is returned (OAuth 2.0 Multiple Response Type
    /// Encoding Practices §2.1): in the query, the default for `code`, or posted by an HTML
    /// form (OAuth 2.0 Form Post Response Mode §2).
    #[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
    pub enum ResponseMode {
        Query = "query",
        FormPost = "form_post",
    }
}

/// `query`, the default response mode of the code flow (OAuth 2.0 Multiple Response Type
/// Encoding Practices §5).
impl Default for ResponseMode {
    fn default() -> Self {
        ResponseMode::Query
    }
}

wire_enum! {
    /// One value of the `prompt` parameter (OIDC Core §3.1.2.1).
    #[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
    pub enum PromptValue {
        None = "none",
        Login = "login",
        Consent = "consent",
        SelectAccount = "select_account",
    }
}

/// The `prompt` parameter (OIDC Core §3.1.2.1). `select_account` is treated like `login`:
/// there is one account per login.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
}

impl Prompt {
    /// OIDC Core §3.1.2.1: a space-delimited list of `none`, `login`, `consent` and
    /// `select_account`; `none` with any other value is an error.
    pub fn parse(raw: Option<&str>) -> Result<Self, OAuthError> {
        let mut prompt = Prompt::default();
        let mut others = false;
        for value in raw.unwrap_or_default().split(' ').filter(|v| !v.is_empty()) {
            let value = PromptValue::from_str(value)
                .map_err(|_| OAuthError::invalid_request("prompt contains an unsupported value"))?;
            match value {
                PromptValue::None => prompt.none = true,
                PromptValue::Login | PromptValue::SelectAccount => prompt.login = true,
                PromptValue::Consent => prompt.consent = true,
            }
            others |= value != PromptValue::None;
        }
        if prompt.none && others {
            return Err(OAuthError::invalid_request("prompt=none must not be combined with other values"));
        }
        Ok(prompt)
    }
}

/// A validated authentication request (OIDC Core §3.1.2.1), as
/// [`super::authorize::validate`] builds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    pub client_id: String,
    /// Verified for the client.
    pub redirect_uri: String,
    /// The requested scope narrowed to the client's allowance; always contains `openid`.
    pub scope: Scope,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub prompt: Prompt,
    pub max_age: Option<u64>,
    /// The S256 `code_challenge` to store with the code.
    pub code_challenge: Option<String>,
    pub login_hint: Option<String>,
    pub id_token_hint: Option<String>,
    /// The preferred languages of the pages, as given (OIDC Core §3.1.2.1).
    #[serde(default)]
    pub ui_locales: Option<String>,
    /// How the response goes back to the client.
    #[serde(default)]
    pub response_mode: ResponseMode,
    /// The individual claims asked for (OIDC Core §5.5), limited to those that can be
    /// released.
    #[serde(default, skip_serializing_if = "ClaimsRequest::is_empty")]
    pub claims: ClaimsRequest,
}

/// RFC 7591 §2 client metadata as sent. Unknown fields are ignored (§2). Values stay
/// strings here: [`super::registration::validate`] answers unknown ones with the RFC 7591
/// §3.2.2 error rather than a parse failure.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientMetadata {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redirect_uris: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post_logout_redirect_uris: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_types: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_version: Option<String>,
    /// Back-Channel Logout 1.0 §2.2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_session_required: Option<bool>,
    /// Front-Channel Logout 1.0 §2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frontchannel_logout_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frontchannel_logout_session_required: Option<bool>,
    /// Not supported: its presence is refused (RFC 7591 §3.2.2).
    #[serde(default, skip_serializing)]
    pub software_statement: Option<serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip_through_serde_display_and_from_str() {
        for grant in
            [GrantType::AuthorizationCode, GrantType::RefreshToken, GrantType::ClientCredentials, GrantType::DeviceCode]
        {
            assert_eq!(serde_json::to_value(grant).unwrap(), grant.as_str());
            assert_eq!(grant.to_string().parse::<GrantType>(), Ok(grant));
        }
        assert_eq!(
            GrantType::NAMES,
            [
                "authorization_code",
                "refresh_token",
                "client_credentials",
                "urn:ietf:params:oauth:grant-type:device_code"
            ]
        );
        assert_eq!(serde_json::from_str::<SigningAlgorithm>("\"EdDSA\"").unwrap(), SigningAlgorithm::EdDSA);
        assert_eq!(TokenEndpointAuthMethod::default().as_str(), "client_secret_basic");
    }

    #[test]
    fn wire_names_are_case_sensitive_and_exact() {
        for raw in ["Authorization_Code", "authorization_code ", "implicit", ""] {
            let unknown = raw.parse::<GrantType>().unwrap_err();
            assert_eq!((unknown.value.as_str(), unknown.expected), (raw, GrantType::NAMES));
        }
        assert!("rs256".parse::<SigningAlgorithm>().is_err());
    }

    #[test]
    fn serde_refuses_unknown_names_listing_the_known_ones() {
        let error = serde_json::from_str::<GrantType>("\"implicit\"").unwrap_err().to_string();
        assert!(
            error.contains("unknown variant `implicit`, expected one of `authorization_code`, `refresh_token`, `client_credentials`"),
            "{error}"
        );
    }

    #[test]
    fn oidc_core_3_1_2_1_prompt_values_are_parsed() {
        assert_eq!(Prompt::parse(None).unwrap(), Prompt::default());
        assert_eq!(Prompt::parse(Some("none")).unwrap(), Prompt { none: true, login: false, consent: false });
        assert_eq!(Prompt::parse(Some("login consent")).unwrap(), Prompt { none: false, login: true, consent: true });
        assert_eq!(Prompt::parse(Some("select_account")).unwrap(), Prompt { none: false, login: true, consent: false });
    }
}
