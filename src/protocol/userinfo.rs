//! Claims released about a user, per granted scope (OIDC Core §5.1, §5.3.2, §5.4), and the
//! plain-English scope descriptions shown on the consent page.

use serde_json::{Map, Value, json};

use std::collections::BTreeSet;

use super::discovery;
use crate::model::{ClientRecord, UserRecord};
use crate::vocabulary::{ClaimsRequest, Scope};

/// OIDC Core §5.3.2 and §5.4: the claims the client may see for this scope.
///
/// - always `sub` (OIDC Core §5.3.2);
/// - `profile`: `name`, `given_name`, `family_name`, `middle_name`, `nickname`, `picture`,
///   `website`, `gender`, `birthdate`, `zoneinfo`, `locale` and `updated_at` (a JSON
///   number of seconds, §5.1) when known, and `preferred_username`;
/// - `email`: `email` and `email_verified`, when the user has an email address;
/// - `phone`: `phone_number` and `phone_number_verified`, when the user has a number;
/// - `address`: the §5.1.1 `address` object, when the user has one;
/// - `groups`: `groups` alone, always a JSON array (empty when the user is in none), as
///   the Kubernetes API server and Argo CD read it;
/// - `roles` (Keycloak-compatible, not in OIDC Core): `resource_access.<client_id>.roles`
///   with the user's roles for this client that the client declares, `realm_access.roles`
///   and `groups`.
///
/// Absent values are omitted rather than sent as `null` (OIDC Core §5.3.2).
pub fn user_claims(user: &UserRecord, client: &ClientRecord, scope: &Scope) -> Map<String, Value> {
    let mut claims = Map::new();
    claims.insert("sub".into(), json!(user.subject));
    let profile = &user.profile;
    if scope.contains("profile") {
        insert_some(&mut claims, "name", user.name.as_deref());
        insert_some(&mut claims, "given_name", user.given_name.as_deref());
        insert_some(&mut claims, "family_name", user.family_name.as_deref());
        insert_some(&mut claims, "middle_name", profile.middle_name.as_deref());
        insert_some(&mut claims, "nickname", profile.nickname.as_deref());
        claims.insert("preferred_username".into(), json!(user.username));
        insert_some(&mut claims, "picture", profile.picture.as_deref());
        insert_some(&mut claims, "website", profile.website.as_deref());
        insert_some(&mut claims, "gender", profile.gender.as_deref());
        insert_some(&mut claims, "birthdate", profile.birthdate.as_deref());
        insert_some(&mut claims, "zoneinfo", profile.zoneinfo.as_deref());
        insert_some(&mut claims, "locale", profile.locale.as_deref());
        if let Some(updated_at) = profile.updated_at {
            claims.insert("updated_at".into(), json!(updated_at));
        }
    }
    if scope.contains("email")
        && let Some(email) = &user.email
    {
        claims.insert("email".into(), json!(email));
        claims.insert("email_verified".into(), json!(user.email_verified));
    }
    if scope.contains("phone")
        && let Some(phone_number) = &profile.phone_number
    {
        claims.insert("phone_number".into(), json!(phone_number));
        claims.insert("phone_number_verified".into(), json!(profile.phone_number_verified));
    }
    if scope.contains("address")
        && let Some(address) = &profile.address
    {
        claims.insert("address".into(), json!(address));
    }
    if scope.contains("roles") {
        let client_roles = client_roles(user, client);
        if !client_roles.is_empty() {
            claims.insert("resource_access".into(), json!({ client.client_id.as_str(): { "roles": client_roles } }));
        }
        claims.insert("realm_access".into(), json!({ "roles": user.roles }));
    }
    if scope.contains("groups") || scope.contains("roles") {
        claims.insert("groups".into(), json!(user.groups));
    }
    insert_custom_claims(&mut claims, user, client, scope);
    claims
}

/// The claims of the tokens themselves, which a `claims` request (OIDC Core §5.5) never
/// sets: Portcullis issues them.
const TOKEN_CLAIMS: &[&str] = &["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "sid"];

/// OIDC Core §5.5: whether a `claims` request may ask for `name` from `client`: a user
/// claim listed in `claims_supported`, or a custom claim one of the client's scopes
/// releases. Anything else could never be released, so it is dropped from the request.
pub fn requestable(client: &ClientRecord, name: &str) -> bool {
    is_standard_user_claim(name)
        || client.policy.scope_claims.values().any(|names| names.iter().any(|custom| custom == name))
}

/// A claim about the user that a standard scope releases (listed in `claims_supported`),
/// as opposed to the claims of the token itself.
pub fn is_standard_user_claim(name: &str) -> bool {
    discovery::CLAIMS.contains(&name) && !TOKEN_CLAIMS.contains(&name)
}

/// The user claims an ID token carries: all it was `released` (by the scope and the
/// `claims` request), or, for a client that limits them (`id_token_claims`), those it
/// names plus any the request's `id_token` member asked for by name (OIDC Core §5.5:
/// the relying party asked for that claim in that token).
pub fn id_token_user_claims(
    mut released: Map<String, Value>,
    client: &ClientRecord,
    requested: &BTreeSet<String>,
) -> Map<String, Value> {
    if let Some(names) = &client.policy.id_token_claims {
        released.retain(|name, _| name == "sub" || names.contains(name) || requested.contains(name));
    }
    released
}

/// OIDC Core §5.5: the claims the granted scope releases, plus each `requested` claim the
/// user has, even beyond the scope (that is what a `claims` request is for). A claim the
/// user lacks is simply absent, `essential` or not (§5.5.1: the request does not fail),
/// and the user's real value is released whatever `value` or `values` asked (§5.5.1: the
/// relying party compares). Claims already released, such as `sub`, are never replaced.
pub fn released_claims(
    user: &UserRecord,
    client: &ClientRecord,
    scope: &Scope,
    requested: &BTreeSet<String>,
) -> Map<String, Value> {
    let mut claims = user_claims(user, client, scope);
    if requested.is_empty() {
        return claims;
    }
    let every_scope = STANDARD_SCOPES.iter().copied().chain(client.policy.scope_claims.keys().map(String::as_str));
    let everything = user_claims(user, client, &Scope::from_tokens(every_scope));
    for name in requested {
        if requestable(client, name)
            && !claims.contains_key(name)
            && let Some(value) = everything.get(name)
        {
            claims.insert(name.clone(), value.clone());
        }
    }
    claims
}

/// OIDC Core §5.5: the requested claims the granted scope does not release already. The
/// user is asked for them on the consent page, and a consent remembered for the scopes
/// does not cover them.
pub fn claims_beyond_scope<'a>(client: &ClientRecord, scope: &Scope, claims: &'a ClaimsRequest) -> Vec<&'a str> {
    claims.names().filter(|name| !released_by_scope(client, scope, name)).collect()
}

/// Whether the granted scope releases `name`, as [`user_claims`] decides (OIDC Core §5.4).
fn released_by_scope(client: &ClientRecord, scope: &Scope, name: &str) -> bool {
    match name {
        "sub" => true,
        "name" | "given_name" | "family_name" | "middle_name" | "nickname" | "preferred_username" | "picture"
        | "website" | "gender" | "birthdate" | "zoneinfo" | "locale" | "updated_at" => scope.contains("profile"),
        "email" | "email_verified" => scope.contains("email"),
        "phone_number" | "phone_number_verified" => scope.contains("phone"),
        "address" => scope.contains("address"),
        "groups" => scope.contains("groups") || scope.contains("roles"),
        "realm_access" | "resource_access" => scope.contains("roles"),
        custom => client
            .policy
            .scope_claims
            .iter()
            .any(|(custom_scope, names)| scope.contains(custom_scope) && names.iter().any(|n| n == custom)),
    }
}

/// Claim names a custom claim may not take: registered JWT claims (RFC 7519 §4.1), the
/// ones OIDC Core gives meaning in tokens (§2, §3.1.3.6), the §5.1 standard claims, and
/// those Portcullis releases itself (`groups`, Keycloak's role claims).
pub const RESERVED_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "at_hash",
    "c_hash",
    "sid",
    "client_id",
    "scope",
    "cnf",
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "email",
    "email_verified",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "phone_number",
    "phone_number_verified",
    "address",
    "updated_at",
    "groups",
    "roles",
    "realm_access",
    "resource_access",
];

/// Scopes whose claims OIDC Core or Portcullis defines; a client cannot map them to custom
/// claims.
pub const STANDARD_SCOPES: &[&str] =
    &["openid", "profile", "email", "phone", "address", "groups", "roles", "offline_access"];

/// The custom claims the granted custom scopes of `client` release, as the user has them.
fn insert_custom_claims(claims: &mut Map<String, Value>, user: &UserRecord, client: &ClientRecord, scope: &Scope) {
    for (custom_scope, names) in &client.policy.scope_claims {
        if !scope.contains(custom_scope) {
            continue;
        }
        for name in names {
            if let Some(value) = user.custom_claims.get(name) {
                claims.insert(name.clone(), value.clone());
            }
        }
    }
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
    use crate::model::{Address, UserProfile};

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
            profile: UserProfile::default(),
            custom_claims: BTreeMap::from([
                ("organization".into(), json!("Acme")),
                ("department".into(), json!("R&D")),
                ("badge".into(), json!({ "level": 3 })),
            ]),
            claimed_subjects: Vec::new(),
        }
    }

    fn full_profile() -> UserProfile {
        UserProfile {
            middle_name: Some("Q.".into()),
            nickname: Some("annie".into()),
            picture: Some("https://img.example/ann.png".into()),
            website: Some("https://ann.example".into()),
            gender: Some("female".into()),
            birthdate: Some("0000-04-01".into()),
            zoneinfo: Some("Europe/Paris".into()),
            locale: Some("fr-FR".into()),
            phone_number: Some("+33 1 23 45 67 89".into()),
            phone_number_verified: true,
            address: Some(Address {
                street_address: Some("1 rue de la Paix".into()),
                locality: Some("Paris".into()),
                postal_code: Some("75002".into()),
                country: Some("France".into()),
                ..Address::default()
            }),
            updated_at: Some(1_700_000_000),
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
    fn id_tokens_carry_every_released_claim_unless_the_client_names_the_ones_they_carry() {
        let scope = Scope::parse("openid profile email groups").unwrap();
        let released = || user_claims(&user(), &client(), &scope);
        let none = BTreeSet::new();
        assert_eq!(id_token_user_claims(released(), &client(), &none), released(), "unset: all of them");

        let mut limited = client();
        limited.policy.id_token_claims = Some(vec!["groups".into(), "email".into(), "locale".into()]);
        assert_eq!(
            Value::Object(id_token_user_claims(released(), &limited, &none)),
            json!({ "sub": "u-123", "groups": ["dev"], "email": "ann@example.com" }),
            "only the named ones the scope released (ann has no locale)"
        );
        let asked = BTreeSet::from(["name".to_owned()]);
        assert_eq!(
            id_token_user_claims(released(), &limited, &asked).get("name"),
            Some(&json!("Ann Example")),
            "OIDC Core §5.5: a claim the id_token member asks for by name is kept"
        );
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
    fn oidc_core_5_4_profile_releases_every_standard_profile_claim_the_user_has() {
        let ann = UserRecord { profile: full_profile(), ..user() };
        assert_eq!(
            claims_for(&ann, "openid profile"),
            json!({
                "sub": "u-123",
                "name": "Ann Example",
                "given_name": "Ann",
                "middle_name": "Q.",
                "nickname": "annie",
                "preferred_username": "ann",
                "picture": "https://img.example/ann.png",
                "website": "https://ann.example",
                "gender": "female",
                "birthdate": "0000-04-01",
                "zoneinfo": "Europe/Paris",
                "locale": "fr-FR",
                "updated_at": 1_700_000_000,
            })
        );
    }

    #[test]
    fn oidc_core_5_4_phone_and_address_scopes_release_their_claims() {
        let ann = UserRecord { profile: full_profile(), ..user() };
        assert_eq!(
            claims_for(&ann, "openid phone"),
            json!({ "sub": "u-123", "phone_number": "+33 1 23 45 67 89", "phone_number_verified": true })
        );
        assert_eq!(
            claims_for(&ann, "openid address"),
            json!({
                "sub": "u-123",
                "address": {
                    "street_address": "1 rue de la Paix",
                    "locality": "Paris",
                    "postal_code": "75002",
                    "country": "France",
                },
            })
        );
        assert_eq!(claims_for(&user(), "openid phone address"), json!({ "sub": "u-123" }), "absent: omitted");
    }

    #[test]
    fn groups_scope_releases_groups_alone_always_as_an_array() {
        assert_eq!(claims_for(&user(), "openid groups"), json!({ "sub": "u-123", "groups": ["dev"] }));
        let loner = UserRecord { groups: vec![], ..user() };
        assert_eq!(claims_for(&loner, "openid groups"), json!({ "sub": "u-123", "groups": [] }));
    }

    #[test]
    fn custom_scopes_release_the_custom_claims_the_client_maps_to_them() {
        let mut app = client();
        app.policy.scope_claims = BTreeMap::from([
            ("org".into(), vec!["organization".into(), "department".into(), "missing".into()]),
            ("security".into(), vec!["badge".into()]),
        ]);
        let claims = |scope: &str| Value::Object(user_claims(&user(), &app, &Scope::parse(scope).unwrap()));
        assert_eq!(claims("openid org"), json!({ "sub": "u-123", "organization": "Acme", "department": "R&D" }));
        assert_eq!(claims("openid security"), json!({ "sub": "u-123", "badge": { "level": 3 } }));
        assert_eq!(claims("openid"), json!({ "sub": "u-123" }), "nothing custom without its scope");
        assert_eq!(claims_for(&user(), "openid org"), json!({ "sub": "u-123" }), "nor for a client that maps none");
    }

    fn requested(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    fn released(user: &UserRecord, client: &ClientRecord, scope: &str, names: &[&str]) -> Value {
        Value::Object(released_claims(user, client, &Scope::parse(scope).unwrap(), &requested(names)))
    }

    #[test]
    fn oidc_core_5_5_a_claims_request_releases_claims_beyond_the_scope() {
        assert_eq!(
            released(&user(), &client(), "openid", &["email", "given_name"]),
            json!({ "sub": "u-123", "email": "ann@example.com", "given_name": "Ann" })
        );
        assert_eq!(released(&user(), &client(), "openid email", &[]), claims_for(&user(), "openid email"));
    }

    #[test]
    fn oidc_core_5_5_1_a_claim_the_user_lacks_is_absent_without_error() {
        assert_eq!(released(&user(), &client(), "openid", &["family_name", "phone_number"]), json!({ "sub": "u-123" }));
    }

    #[test]
    fn oidc_core_5_5_token_claims_and_unknown_names_are_never_released_from_a_request() {
        let app = client();
        for name in ["sub", "iss", "aud", "exp", "nonce", "sid", "password_hash", "organization"] {
            assert!(!requestable(&app, name), "{name}");
        }
        assert_eq!(released(&user(), &app, "openid", &["iss", "aud", "password_hash"]), json!({ "sub": "u-123" }));
    }

    #[test]
    fn oidc_core_5_5_custom_claims_are_requestable_only_when_the_client_maps_them() {
        let mut app = client();
        app.policy.scope_claims = BTreeMap::from([("org".into(), vec!["organization".into()])]);
        assert!(requestable(&app, "organization") && !requestable(&app, "department"));
        assert_eq!(
            released(&user(), &app, "openid", &["organization", "department"]),
            json!({ "sub": "u-123", "organization": "Acme" })
        );
    }

    #[test]
    fn oidc_core_5_5_claims_beyond_scope_are_those_its_scopes_do_not_release() {
        let mut app = client();
        app.policy.scope_claims = BTreeMap::from([("org".into(), vec!["organization".into()])]);
        let request = ClaimsRequest { userinfo: requested(&["email", "organization"]), id_token: requested(&["name"]) };
        let beyond = |scope: &str| claims_beyond_scope(&app, &Scope::parse(scope).unwrap(), &request);
        assert_eq!(beyond("openid"), ["email", "name", "organization"]);
        assert_eq!(beyond("openid profile email org"), Vec::<&str>::new());
    }

    #[test]
    fn released_by_scope_agrees_with_the_claims_each_scope_releases() {
        let mut app = client();
        app.policy.scope_claims = BTreeMap::from([("org".into(), vec!["organization".into(), "department".into()])]);
        let ann = UserRecord { profile: full_profile(), ..user() };
        for scope in STANDARD_SCOPES.iter().chain(&["org"]) {
            let scope = Scope::parse(&format!("openid {scope}")).unwrap();
            for name in user_claims(&ann, &app, &scope).keys() {
                assert!(released_by_scope(&app, &scope, name), "{name} under {scope:?}");
            }
            let other = Scope::parse("openid").unwrap();
            for name in user_claims(&ann, &app, &scope).keys().filter(|name| *name != "sub") {
                assert!(!released_by_scope(&app, &other, name), "{name} without {scope:?}");
            }
        }
    }

    #[test]
    fn oidc_core_5_4_claims_follow_only_granted_scopes() {
        let claims = claims_for(&user(), "openid offline_access custom");
        assert_eq!(claims, json!({ "sub": "u-123" }));
    }
}
