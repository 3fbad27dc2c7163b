//! Small builders for the decision tests: `OidcClient::test("app").machine().applied_as("app")`,
//! `secret("app-credentials").with("clientSecret", "s3cret")`, `OidcUser::test("alice")`.
//! Every resource lives in namespace `team`, was created at second 100 with generation 1,
//! and has the uid `uid-<name>`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;

use super::{Readiness, ready_condition};
use crate::crd::{
    FederatedIdentity, OidcClient, OidcClientSpec, OidcClientStatus, OidcUser, OidcUserSpec, OidcUserStatus,
    SecretKeyRef,
};
use crate::vocabulary::{GrantType, TokenEndpointAuthMethod};

/// The namespace of every fixture.
pub const NAMESPACE: &str = "team";
/// A well-formed argon2id PHC string (its password is irrelevant to the decisions).
pub const PASSWORD_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$5sXdnJp6rC0R8Bsc0bo9dZv3wDxMQvYcqL3mU9mDdaw";

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(NAMESPACE.into()),
        uid: Some(format!("uid-{name}")),
        generation: Some(1),
        creation_timestamp: Some(Time(Timestamp::from_second(100).unwrap_or(Timestamp::UNIX_EPOCH))),
        ..ObjectMeta::default()
    }
}

fn set_created(meta: &mut ObjectMeta, seconds: i64) {
    meta.creation_timestamp = Some(Time(Timestamp::from_second(seconds).unwrap_or(Timestamp::UNIX_EPOCH)));
}

fn set_deleting(meta: &mut ObjectMeta) {
    meta.deletion_timestamp = Some(Time(Timestamp::from_second(500).unwrap_or(Timestamp::UNIX_EPOCH)));
}

impl OidcClient {
    /// A confidential web client with one redirect URI.
    pub fn test(name: &str) -> Self {
        let spec: OidcClientSpec =
            serde_json::from_value(serde_json::json!({ "redirectUris": ["https://app.example/cb"] }))
                .unwrap_or_else(|e| panic!("{e}"));
        OidcClient { metadata: meta(name), spec, status: None }
    }

    /// A public client (PKCE, no secret).
    pub fn public(mut self) -> Self {
        self.spec.token_endpoint_auth_method = Some(TokenEndpointAuthMethod::None);
        self
    }

    /// A machine client (client_credentials, no redirect URI).
    pub fn machine(mut self) -> Self {
        self.spec.grant_types = vec![GrantType::ClientCredentials];
        self.spec.redirect_uris.clear();
        self
    }

    pub fn client_id(mut self, client_id: &str) -> Self {
        self.spec.client_id = Some(client_id.into());
        self
    }

    pub fn redirect_uri(mut self, uri: &str) -> Self {
        self.spec.redirect_uris = vec![uri.into()];
        self
    }

    pub fn created_at(mut self, seconds: i64) -> Self {
        set_created(&mut self.metadata, seconds);
        self
    }

    pub fn generation(mut self, generation: i64) -> Self {
        self.metadata.generation = Some(generation);
        self
    }

    pub fn deleting(mut self) -> Self {
        set_deleting(&mut self.metadata);
        self
    }

    /// As the controller left it after applying `client_id`: status with that id, `Ready`.
    pub fn applied_as(mut self, client_id: &str) -> Self {
        let readiness = Readiness::ready(format!("client `{client_id}` is registered"));
        let condition = ready_condition(&[], &readiness, self.metadata.generation, 100);
        self.status = Some(OidcClientStatus {
            client_id: Some(client_id.into()),
            observed_generation: self.metadata.generation,
            conditions: vec![condition],
        });
        self
    }
}

/// An empty Secret in the fixtures' namespace.
pub fn secret(name: &str) -> Secret {
    Secret { metadata: meta(name), ..Secret::default() }
}

/// Filling a fixture Secret.
pub trait SecretData {
    /// Adds a `stringData` entry.
    fn with(self, key: &str, value: &str) -> Self;
}

impl SecretData for Secret {
    fn with(mut self, key: &str, value: &str) -> Self {
        self.string_data.get_or_insert_with(BTreeMap::new).insert(key.into(), value.into());
        self
    }
}

impl OidcUser {
    /// A user whose username is its name and whose hash is under `hash` in `<name>-password`.
    pub fn test(name: &str) -> Self {
        let spec = OidcUserSpec {
            username: name.into(),
            subject: None,
            email: Some(format!("{name}@example.com")),
            email_verified: true,
            name: None,
            given_name: None,
            family_name: None,
            middle_name: None,
            nickname: None,
            picture: None,
            website: None,
            gender: None,
            birthdate: None,
            zoneinfo: None,
            locale: None,
            phone_number: None,
            phone_number_verified: false,
            address: None,
            groups: vec![],
            roles: vec![],
            client_roles: BTreeMap::new(),
            claims: BTreeMap::new(),
            password_secret_ref: Some(SecretKeyRef { name: format!("{name}-password"), key: "hash".into() }),
            federated_identities: vec![],
            disabled: false,
        };
        OidcUser { metadata: meta(name), spec, status: None }
    }

    pub fn username(mut self, username: &str) -> Self {
        self.spec.username = username.into();
        self
    }

    pub fn created_at(mut self, seconds: i64) -> Self {
        set_created(&mut self.metadata, seconds);
        self
    }

    pub fn deleting(mut self) -> Self {
        set_deleting(&mut self.metadata);
        self
    }

    /// Claiming the upstream identity `subject` of connector `connector`.
    pub fn claiming(mut self, connector: &str, subject: &str) -> Self {
        let identity = FederatedIdentity { connector: connector.into(), subject: subject.into() };
        self.spec.federated_identities.push(identity);
        self
    }

    /// As the controller left it after applying `username`: status with it, `Ready`.
    pub fn applied_as(mut self, username: &str) -> Self {
        let readiness = Readiness::ready(format!("user `{username}` can sign in"));
        let condition = ready_condition(&[], &readiness, self.metadata.generation, 100);
        self.status = Some(OidcUserStatus {
            username: Some(username.into()),
            subject: Some(username.into()),
            observed_generation: self.metadata.generation,
            revoked_sessions: None,
            active_sessions: None,
            last_login: None,
            conditions: vec![condition],
        });
        self
    }

    /// As a controller from before `status.username` existed left a ready user.
    pub fn ready_without_username(self) -> Self {
        let username = self.spec.username.clone();
        let mut user = self.applied_as(&username);
        if let Some(status) = &mut user.status {
            status.username = None;
            status.subject = None;
        }
        user
    }
}

/// The password Secret [`OidcUser::test`] refers to, holding a valid hash.
pub fn password_secret(user: &OidcUser) -> Secret {
    let reference = user
        .spec
        .password_secret_ref
        .clone()
        .unwrap_or_else(|| SecretKeyRef { name: format!("{}-password", user.spec.username), key: "hash".into() });
    secret(&reference.name).with(&reference.key, PASSWORD_HASH)
}
