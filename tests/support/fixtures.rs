//! Records shared by the integration tests.

use portcullis::model::ClientRecord;
use portcullis::secrets;
use portcullis::vocabulary::Scope;
use portcullis::vocabulary::{GrantType, TokenEndpointAuthMethod};

/// The `m2m` machine client (secret `m2m-secret`) allowed `scopes`.
pub fn m2m_client(scopes: &str) -> ClientRecord {
    ClientRecord {
        client_id: "m2m".into(),
        client_name: None,
        secret_hash: Some(secrets::hash("m2m-secret").unwrap()),
        auth_method: TokenEndpointAuthMethod::ClientSecretBasic,
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        grant_types: vec![GrantType::ClientCredentials],
        scopes: Scope::parse(scopes).unwrap(),
        roles: vec![],
        audience: vec![],
        access_token_ttl: None,
        require_pkce: false,
        skip_consent: false,
        registration: None,
    }
}
