//! Records and manifests shared by the integration tests.
// Each test crate that includes this uses part of it.
#![allow(dead_code)]

use portcullis::model::{ClientPolicy, ClientRecord};
use portcullis::secrets;
use portcullis::vocabulary::Scope;
use portcullis::vocabulary::{GrantType, TokenEndpointAuthMethod};

/// The `m2m` machine client (secret `m2m-secret`) allowed `scopes`.
pub fn m2m_client(scopes: &str) -> ClientRecord {
    ClientRecord {
        client_id: "m2m".into(),
        client_name: None,
        secret_hash: Some(secrets::hash("m2m-secret").unwrap()),
        auth_method: Some(TokenEndpointAuthMethod::ClientSecretBasic),
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        grant_types: vec![GrantType::ClientCredentials],
        scopes: Scope::parse(scopes).unwrap(),
        roles: vec![],
        audience: vec![],
        access_token_ttl: None,
        require_pkce: false,
        skip_consent: false,
        web_origins: vec![],
        registration: None,
        policy: ClientPolicy::default(),
    }
}

/// A `client_credentials` client with a fixed secret, as the manifests of an `OidcClient`
/// (resource `name`, client id `client_id`) and its credentials Secret.
pub fn client_manifest(name: &str, client_id: &str, secret: &str) -> String {
    format!(
        "apiVersion: portcullis.dev/v1alpha1\nkind: OidcClient\nmetadata: {{name: {name}, namespace: test}}\n\
         spec:\n  clientId: {client_id}\n  grantTypes: [client_credentials]\n  scopes: [reports:read]\n---\n\
         apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}-credentials, namespace: test}}\n\
         stringData: {{clientSecret: {secret}}}\n"
    )
}

/// A value of `len` bytes that the sealed parameter `name` accepts: `x`s, or for `claims`
/// (OIDC Core §5.5) a JSON object asking for a claim named with `x`s.
pub fn sealed_parameter_value(name: &str, len: usize) -> String {
    match name {
        "claims" => format!(r#"{{"userinfo":{{"{}":null}}}}"#, "x".repeat(len - 22)),
        _ => "x".repeat(len),
    }
}
