//! Records and manifests shared by the integration tests.
// Each test crate that includes this uses part of it.
#![allow(dead_code)]

use std::path::PathBuf;

use portcullis::model::{ClientPolicy, ClientRecord, UserRecord};
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

/// A manifests folder with the fixtures, the webapp client's spec extended with `spec_lines`
/// (YAML lines indented by two spaces).
pub fn fixtures_with_webapp(name: &str, spec_lines: &str) -> PathBuf {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/manifests");
    let dir = std::env::temp_dir().join(format!("portcullis-fixtures-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["keys.yaml", "users.yaml"] {
        std::fs::copy(fixtures.join(file), dir.join(file)).unwrap();
    }
    let clients = std::fs::read_to_string(fixtures.join("clients.yaml")).unwrap();
    let webapp_roles = "  roles: [admin, viewer, editor]\n";
    assert!(clients.contains(webapp_roles));
    std::fs::write(dir.join("clients.yaml"), clients.replace(webapp_roles, &format!("{webapp_roles}{spec_lines}")))
        .unwrap();
    dir
}

/// A manifests folder with the fixtures and `tv`, a public RFC 8628 device client allowed
/// refresh tokens.
pub fn fixtures_with_device_client(name: &str) -> PathBuf {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/manifests");
    let dir = std::env::temp_dir().join(format!("portcullis-device-fixtures-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["keys.yaml", "users.yaml", "clients.yaml"] {
        std::fs::copy(fixtures.join(file), dir.join(file)).unwrap();
    }
    let tv = "apiVersion: portcullis.dev/v1alpha1\nkind: OidcClient\nmetadata: {name: tv, namespace: test}\n\
              spec:\n  clientName: Living Room TV\n  tokenEndpointAuthMethod: none\n  \
              grantTypes: [\"urn:ietf:params:oauth:grant-type:device_code\", refresh_token]\n  \
              scopes: [openid, profile, offline_access]\n";
    std::fs::write(dir.join("device.yaml"), tv).unwrap();
    dir
}

/// An enabled user whose password is `password`, with no claims.
pub fn user_with_password(username: &str, password: &str) -> UserRecord {
    UserRecord {
        subject: username.into(),
        username: username.into(),
        email: None,
        email_verified: false,
        name: None,
        given_name: None,
        family_name: None,
        groups: vec![],
        roles: vec![],
        client_roles: Default::default(),
        password_hash: secrets::hash(password).unwrap(),
        disabled: false,
        profile: Default::default(),
        custom_claims: Default::default(),
        claimed_subjects: Vec::new(),
    }
}

/// A user without a password who claims the upstream identities of `claimed_subjects`
/// (federated subjects), with no claims of their own.
pub fn claimant(username: &str, claimed_subjects: &[&str]) -> UserRecord {
    UserRecord {
        password_hash: String::new(),
        claimed_subjects: claimed_subjects.iter().map(|subject| subject.to_string()).collect(),
        ..user_with_password(username, "unused")
    }
}
