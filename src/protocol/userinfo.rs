//! Claims released about a user, per granted scope (OIDC Core §5.1, §5.3.2, §5.4), and the
//! plain-English scope descriptions shown on the consent page.

use serde_json::{Map, Value, json};

use crate::model::{ClientRecord, UserRecord};
use crate::vocabulary::Scope;

/// OIDC Core §5.3.2 and §5.4: the claims the client may see for this scope.
///
/// - always `sub` (OIDC Core §5.3.2);
/// - `profile`: `name`, `given_name`, `family_name` when known, and `preferred_username`;
/// - `email`: `email` and `email_verified`, when the user has an email address;
/// - `roles` (Keycloak-compatible, not in OIDC Core): `resource_access.<client_id>.roles`
///   with the user's roles for this client that the client declares, `realm_access.roles`
///   and `groups`.
///
/// Absent values are omitted rather than sent as `null` (OIDC Core §5.3.2).
pub fn user_claims(user: &UserRecord, client: &ClientRecord, scope: &Scope) -> Map<String, Value> {
    let mut claims = Map::new();
    claims.insert("sub".into(), json!(user.subject));
    if scope.contains("profile") {
        insert_some(&mut claims, "name", user.name.as_deref());
        insert_some(&mut claims, "given_name", user.given_name.as_deref());
        insert_some(&mut claims, "family_name", user.family_name.as_deref());
        claims.insert("preferred_username".into(), json!(user.username));
    }
    if scope.contains("email")
        && let Some(email) = &user.email
    {
        claims.insert("email".into(), json!(email));
        claims.insert("email_verified".into(), json!(user.email_verified));
    }
    if scope.contains("roles") {
        let client_roles = client_roles(user, client);
        if !client_roles.is_empty() {
            claims.insert("resource_access".into(), json!({ client.client_id.as_str(): { "roles": client_roles } }));
        }
        claims.insert("realm_access".into(), json!({ "roles": user.roles }));
        claims.insert("groups".into(), json!(user.groups));
    }
    claims
}

/// The user's roles for this client, limited to the roles the client declares.
fn client_roles<'a>(user: &'a UserRecord, client: &ClientRecord) -> Vec<&'a str> {
    let assigned = user.client_roles.get(&client.client_id).map(Vec::as_slice).unwrap_or_default();
    let mut roles: Vec<&str> = Vec::with_capacity(assigned.len());
    for role in assigned {
        if client.roles.contains(role) && !roles.contains(&role.as_str()) {
            roles.push(role);
        }
    }
    roles
}

fn insert_some(claims: &mut Map<String, Value>, name: &str, value: Option<&str>) {
    if let Some(value) = value {
        claims.insert(name.into(), json!(value));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn user() -> UserRecord {
        UserRecord {
            subject: "u-123".into(),
            username: "ann".into(),
            email: Some("ann@example.com".into()),
            email_verified: true,
            name: Some("Ann Example".into()),
            given_name: Some("Ann".into()),
            family_name: None,
            groups: vec!["dev".into()],
            roles: vec!["staff".into()],
            client_roles: BTreeMap::from([
                ("app".into(), vec!["admin".into(), "undeclared".into(), "viewer".into(), "admin".into()]),
                ("other".into(), vec!["root".into()]),
            ]),
            password_hash: "$argon2id$secret".into(),
            disabled: false,
        }
    }

    fn client() -> ClientRecord {
        ClientRecord {
            roles: vec!["admin".into(), "viewer".into(), "auditor".into()],
            ..ClientRecord::fixture("app", &[], "openid profile email roles")
        }
    }

    fn claims_for(user: &UserRecord, scope: &str) -> Value {
        Value::Object(user_claims(user, &client(), &Scope::parse(scope).unwrap()))
    }

    #[test]
    fn oidc_core_5_3_2_sub_is_always_released() {
        assert_eq!(claims_for(&user(), "openid"), json!({ "sub": "u-123" }));
    }

    #[test]
    fn oidc_core_5_4_profile_releases_names_and_preferred_username() {
        let claims = claims_for(&user(), "openid profile");
        assert_eq!(
            claims,
            json!({ "sub": "u-123", "name": "Ann Example", "given_name": "Ann", "preferred_username": "ann" })
        );
    }

    #[test]
    fn oidc_core_5_3_2_absent_values_are_omitted_not_null() {
        let mut bare = user();
        bare.name = None;
        bare.given_name = None;
        bare.email = None;
        let claims = claims_for(&bare, "openid profile email");
        assert_eq!(claims, json!({ "sub": "u-123", "preferred_username": "ann" }));
    }

    #[test]
    fn oidc_core_5_4_email_releases_email_and_email_verified() {
        let mut unverified = user();
        unverified.email_verified = false;
        assert_eq!(
            claims_for(&unverified, "openid email"),
            json!({ "sub": "u-123", "email": "ann@example.com", "email_verified": false })
        );
    }

    #[test]
    fn roles_scope_releases_keycloak_compatible_roles_and_groups() {
        assert_eq!(
            claims_for(&user(), "openid roles"),
            json!({
                "sub": "u-123",
                "resource_access": { "app": { "roles": ["admin", "viewer"] } },
                "realm_access": { "roles": ["staff"] },
                "groups": ["dev"],
            })
        );
    }

    #[test]
    fn roles_scope_omits_resource_access_without_declared_client_roles() {
        let mut u = user();
        u.client_roles.insert("app".into(), vec!["undeclared".into()]);
        let claims = claims_for(&u, "openid roles");
        assert!(claims.get("resource_access").is_none());
        u.client_roles.clear();
        let claims = claims_for(&u, "openid roles");
        assert!(claims.get("resource_access").is_none());
        assert_eq!(claims["groups"], json!(["dev"]));
    }

    #[test]
    fn other_clients_roles_are_never_released() {
        let claims = claims_for(&user(), "openid roles");
        assert!(!claims.to_string().contains("root"));
    }

    #[test]
    fn oidc_core_5_4_claims_follow_only_granted_scopes() {
        let claims = claims_for(&user(), "openid offline_access custom");
        assert_eq!(claims, json!({ "sub": "u-123" }));
    }
}
