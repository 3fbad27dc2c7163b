//! The custom resources of group `portcullis.dev`: the desired configuration that the
//! controller (and, in `dev` mode, the manifests folder) reconciles into the store.
//!
//! These Rust types are the single source of truth: `portcullis crds` and `crds/*.yaml`
//! are generated from them, and the manifests folder deserializes into them. The values
//! their fields take (grant types, authentication methods, algorithms) are the protocol's
//! vocabulary, [`crate::vocabulary`], re-exported here.

mod client;
mod connector;
mod signing_key;
mod user;

pub use client::{ApplicationType, OidcClient, OidcClientSpec, OidcClientStatus};
pub use connector::{
    ClaimMappings, ConnectorType, GitHubConnectorSpec, GitHubOrgSpec, IdentityConnector, IdentityConnectorSpec,
    IdentityConnectorStatus, LdapConnectorSpec, LdapGroupSearch, LdapUserMatcher, LdapUserSearch, OidcConnectorSpec,
};
pub use signing_key::{PublishedKey, SigningKey, SigningKeySpec, SigningKeyStatus};
pub use user::{FederatedIdentity, OidcUser, OidcUserSpec, OidcUserStatus, SecretKeyRef};

pub use crate::vocabulary::{GrantType, SigningAlgorithm, TokenEndpointAuthMethod};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// API group of every Portcullis resource.
pub const GROUP: &str = "portcullis.dev";
/// API version of every Portcullis resource.
pub const VERSION: &str = "v1alpha1";

/// The CustomResourceDefinitions, in the order `portcullis crds` prints them.
pub fn definitions() -> Vec<CustomResourceDefinition> {
    vec![OidcClient::crd(), OidcUser::crd(), SigningKey::crd(), IdentityConnector::crd()]
}

/// Renders the definitions as one multi-document YAML stream.
pub fn definitions_yaml() -> Result<String, serde_yaml_ng::Error> {
    let mut out = String::new();
    for crd in definitions() {
        out.push_str("---\n");
        out.push_str(&serde_yaml_ng::to_string(&crd)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `crds/` is generated from these types; regenerate with
    /// `cargo run -- crds > crds/portcullis.dev.yaml` when this fails.
    #[test]
    fn checked_in_crds_match_the_rust_types() {
        let checked_in = include_str!("../../crds/portcullis.dev.yaml");
        assert!(definitions_yaml().unwrap() == checked_in, "crds/portcullis.dev.yaml is out of date");
    }

    #[test]
    fn crds_are_namespaced_in_group_portcullis_dev_with_status() {
        for crd in definitions() {
            assert_eq!(crd.spec.group, GROUP);
            assert_eq!(crd.spec.scope, "Namespaced");
            assert_eq!(crd.spec.names.categories.as_deref(), Some(&["portcullis".to_owned()][..]));
            let version = &crd.spec.versions[0];
            assert_eq!(version.name, VERSION);
            assert!(version.subresources.as_ref().and_then(|s| s.status.as_ref()).is_some());
        }
    }
}
