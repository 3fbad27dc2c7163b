//! The pure rules of signing people in through an upstream identity provider: the subject
//! our tokens give them, how our claims are read from the upstream's, who is let in, and
//! when a refresh asks the upstream again.
//!
//! **Subjects.** A person signed in through connector `c` with upstream subject `s` gets
//! `sub = base64url(SHA-256("portcullis federation" ‖ 0x00 ‖ c ‖ 0x00 ‖ s))` (43 characters,
//! no padding): stable across logins, replicas, restarts and Redis flushes, stored
//! nowhere, distinct per connector (the same person through two connectors is two
//! subjects), and never derived from the email, which upstreams let people change. The
//! upstream subject is the ID token's `sub` (for GitHub, the numeric user id, which —
//! unlike the login — never changes).
//!
//! **GitHub groups.** A connector listing organisations lets in only their members (and,
//! for an organisation listing teams, only members of one of those teams); the person's
//! groups are each allowed organisation (`org`) and each of their teams in it (`org:team`,
//! by slug; for an organisation listing teams, only those). A connector listing none lets
//! everyone in with all their organisations and teams as groups.
//!
//! **LDAP subjects.** For a directory the upstream subject is the value of the connector's
//! `idAttr` in the person's entry (`uid` by default; the entry's DN for `DN`).

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use crate::model::{ClaimPaths, ConnectorRecord, GitHubOrg, Upstream, UserRecord};

/// The most groups kept from an upstream, and the longest claim value kept: an upstream
/// is trusted, but what it sends is stored and signed into every token.
pub const MAX_GROUPS: usize = 256;
pub const MAX_CLAIM_LEN: usize = 1024;

/// The subject of a person signed in through `connector` as `upstream_subject`.
pub fn federated_subject(connector: &str, upstream_subject: &str) -> String {
    let mut input = Vec::with_capacity(24 + connector.len() + upstream_subject.len());
    input.extend_from_slice(b"portcullis federation\0");
    input.extend_from_slice(connector.as_bytes());
    input.push(0);
    input.extend_from_slice(upstream_subject.as_bytes());
    URL_SAFE_NO_PAD.encode(digest(&SHA256, &input))
}

/// The value at `path` in `claims`: a claim of that very name first (names such as
/// `https://example.com/groups` hold dots), else the dotted path into nested objects.
pub fn claim_at<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(value) = claims.get(path) {
        return Some(value);
    }
    let mut parts = path.split('.');
    let mut value = claims.get(parts.next()?)?;
    for part in parts {
        value = value.as_object()?.get(part)?;
    }
    Some(value)
}

/// Why a person the upstream vouched for is not let in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the upstream's ID token has no subject")]
    NoSubject,
    #[error(
        "the upstream does not say the email address {0} is verified (set insecureSkipEmailVerified on the connector to accept it unverified)"
    )]
    EmailNotVerified(String),
    #[error("the person is in none of the groups this connector allows")]
    NotInAllowedGroups,
    #[error("the person is in none of the GitHub organisations or teams this connector allows")]
    NotInAllowedOrganisations,
    #[error("the upstream's claim `{0}` is longer than {MAX_CLAIM_LEN} bytes")]
    ClaimTooLong(String),
    #[error("the account claiming this identity is disabled")]
    Disabled,
}

/// What our claims say of a person the upstream vouched for, before it is a user record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedIdentity {
    pub upstream_subject: String,
    pub username: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    /// The upstream's group names, prefixed.
    pub groups: Vec<String>,
}

/// A string claim, bounded.
fn string_at(claims: &Map<String, Value>, path: &str) -> Result<Option<String>, Refusal> {
    match claim_at(claims, path).and_then(Value::as_str) {
        Some(value) if value.len() > MAX_CLAIM_LEN => Err(Refusal::ClaimTooLong(path.to_owned())),
        Some(value) if !value.is_empty() => Ok(Some(value.to_owned())),
        _ => Ok(None),
    }
}

/// A boolean claim; the string `"true"` counts too (some upstreams send strings).
fn bool_at(claims: &Map<String, Value>, path: &str) -> bool {
    match claim_at(claims, path) {
        Some(Value::Bool(value)) => *value,
        Some(Value::String(value)) => value == "true",
        _ => false,
    }
}

/// The group names at `path`: a list of strings (other entries skipped) or one string.
fn groups_at(claims: &Map<String, Value>, path: &str) -> Vec<String> {
    let names: Vec<&str> = match claim_at(claims, path) {
        Some(Value::Array(values)) => values.iter().filter_map(Value::as_str).collect(),
        Some(Value::String(name)) => vec![name.as_str()],
        _ => Vec::new(),
    };
    let mut groups: Vec<String> =
        names.into_iter().filter(|name| !name.is_empty() && name.len() <= MAX_CLAIM_LEN).map(str::to_owned).collect();
    groups.sort_unstable();
    groups.dedup();
    groups.truncate(MAX_GROUPS);
    groups
}

/// Reads our claims from the upstream's `claims` (the verified ID token's, merged with
/// userinfo's when asked) under `connector`'s mappings and lets the person in or not.
///
/// The username falls back to the email and then to the upstream subject; an email the
/// upstream does not call verified refuses the person unless the connector accepts it
/// (as unverified); `allowed_groups`, when any, are matched against the upstream's names
/// before the prefix.
pub fn map_identity(
    connector: &ConnectorRecord,
    paths: &ClaimPaths,
    skip_email_verified: bool,
    claims: &Map<String, Value>,
) -> Result<MappedIdentity, Refusal> {
    let upstream_subject = string_at(claims, "sub")?.ok_or(Refusal::NoSubject)?;
    let email = string_at(claims, &paths.email)?;
    let email_verified = email.is_some() && bool_at(claims, &paths.email_verified);
    if let Some(email) = &email
        && !email_verified
        && !skip_email_verified
    {
        return Err(Refusal::EmailNotVerified(email.clone()));
    }
    let groups = groups_at(claims, &paths.groups);
    if !connector.allowed_groups.is_empty() && !groups.iter().any(|group| connector.allowed_groups.contains(group)) {
        return Err(Refusal::NotInAllowedGroups);
    }
    let username =
        string_at(claims, &paths.username)?.or_else(|| email.clone()).unwrap_or_else(|| upstream_subject.clone());
    Ok(MappedIdentity {
        username,
        email,
        email_verified,
        name: string_at(claims, &paths.name)?,
        groups: groups.iter().map(|group| format!("{}{group}", connector.group_prefix)).collect(),
        upstream_subject,
    })
}

/// The claim names a GitHub connector puts the person's organisations (logins) and teams
/// (`org/slug`) under, for [`admit`].
pub const GITHUB_ORGS: &str = "github_orgs";
pub const GITHUB_TEAMS: &str = "github_teams";

/// Lets the person `claims` describe in through `connector`, or not: [`map_identity`]
/// under the connector's mappings, after, for GitHub, its organisation rules.
pub fn admit(connector: &ConnectorRecord, claims: &Map<String, Value>) -> Result<MappedIdentity, Refusal> {
    match &connector.upstream {
        Upstream::Oidc(oidc) => map_identity(connector, &oidc.claims, oidc.skip_email_verified, claims),
        // The directory connector puts the entry's attributes under the standard names.
        Upstream::Ldap(_) => map_identity(connector, &ClaimPaths::default(), false, claims),
        Upstream::GitHub(github) => {
            let strings = |name| groups_at(claims, name);
            let teams: Vec<(String, String)> = strings(GITHUB_TEAMS)
                .iter()
                .filter_map(|team| team.split_once('/'))
                .map(|(org, slug)| (org.to_owned(), slug.to_owned()))
                .collect();
            let groups =
                github_groups(&github.orgs, &strings(GITHUB_ORGS), &teams).ok_or(Refusal::NotInAllowedOrganisations)?;
            let mut claims = claims.clone();
            claims.insert("groups".into(), Value::from(groups));
            map_identity(connector, &ClaimPaths::default(), false, &claims)
        }
    }
}

/// The groups of a GitHub user in organisations `member_of` and `teams` (organisation,
/// team slug) under the connector's `allowed` organisations (see the module's doc); `None`
/// when they are in none of them. Organisation names compare as GitHub's do, ignoring case.
pub fn github_groups(allowed: &[GitHubOrg], member_of: &[String], teams: &[(String, String)]) -> Option<Vec<String>> {
    let team_group = |(org, slug): &(String, String)| format!("{org}:{slug}");
    if allowed.is_empty() {
        return Some(member_of.iter().cloned().chain(teams.iter().map(team_group)).collect());
    }
    let mut groups = Vec::new();
    for org in allowed {
        let in_org: Vec<&(String, String)> =
            teams.iter().filter(|(team_org, _)| team_org.eq_ignore_ascii_case(&org.name)).collect();
        let member = member_of.iter().any(|name| name.eq_ignore_ascii_case(&org.name)) || !in_org.is_empty();
        let admitted: Vec<&(String, String)> = if org.teams.is_empty() {
            in_org
        } else {
            in_org
                .into_iter()
                .filter(|(_, slug)| org.teams.iter().any(|team| team.eq_ignore_ascii_case(slug)))
                .collect()
        };
        if !member || (!org.teams.is_empty() && admitted.is_empty()) {
            continue;
        }
        groups.push(org.name.clone());
        groups.extend(admitted.into_iter().map(|(_, slug)| format!("{}:{slug}", org.name)));
    }
    (!groups.is_empty()).then_some(groups)
}

impl MappedIdentity {
    /// The user record our tokens are built from: no password, no roles (an `OidcUser`
    /// claiming the identity adds those).
    pub fn user_record(&self, connector: &str) -> UserRecord {
        UserRecord {
            subject: federated_subject(connector, &self.upstream_subject),
            username: self.username.clone(),
            email: self.email.clone(),
            email_verified: self.email_verified,
            name: self.name.clone(),
            given_name: None,
            family_name: None,
            groups: self.groups.clone(),
            roles: Vec::new(),
            client_roles: Default::default(),
            password_hash: String::new(),
            disabled: false,
            profile: Default::default(),
            custom_claims: Default::default(),
            claimed_subjects: Vec::new(),
        }
    }
}

/// The record of a person signed in through a connector, as the `OidcUser` claiming their
/// identity (if any) makes it: the subject and claims stay the upstream's, and the
/// claimant's roles, client roles and groups are added (its groups unprefixed: they are
/// declared here). Refused while the claimant is disabled, so disabling an `OidcUser` cuts
/// off the upstream identities it claims as well.
pub fn with_claimant(mut user: UserRecord, claimant: Option<&UserRecord>) -> Result<UserRecord, Refusal> {
    let Some(claimant) = claimant else { return Ok(user) };
    if claimant.disabled {
        return Err(Refusal::Disabled);
    }
    add_sorted(&mut user.groups, &claimant.groups);
    add_sorted(&mut user.roles, &claimant.roles);
    for (client, roles) in &claimant.client_roles {
        add_sorted(user.client_roles.entry(client.clone()).or_default(), roles);
    }
    Ok(user)
}

/// `held` with `added` too, sorted and each once.
fn add_sorted(held: &mut Vec<String>, added: &[String]) {
    held.extend(added.iter().cloned());
    held.sort_unstable();
    held.dedup();
}

/// Whether a refresh at `now` must ask the upstream again about a person it last vouched
/// for at `checked_at`.
pub fn needs_recheck(checked_at: u64, refresh_interval: u64, now: u64) -> bool {
    now >= checked_at.saturating_add(refresh_interval)
}

/// The connector an authorization request's `login_hint` (OIDC Core §3.1.2.1) leads to by
/// its email domain: the first of `offered` (in their order) listing the domain after the
/// hint's last `@`, compared without case. Only an exact domain matches (`example.com` is not
/// `eu.example.com`); a hint without `@` leads nowhere.
pub fn connector_for_login_hint<'a>(login_hint: &str, offered: &'a [ConnectorRecord]) -> Option<&'a ConnectorRecord> {
    let (_, domain) = login_hint.rsplit_once('@')?;
    if domain.is_empty() {
        return None;
    }
    offered
        .iter()
        .find(|connector| connector.login_hint_domains.iter().any(|listed| listed.eq_ignore_ascii_case(domain)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    fn connector() -> ConnectorRecord {
        ConnectorRecord::fixture("corp", "https://idp.example.com")
    }

    fn map(connector: &ConnectorRecord, value: Value) -> Result<MappedIdentity, Refusal> {
        map_identity(connector, &ClaimPaths::default(), false, &claims(value))
    }

    #[test]
    fn the_subject_is_stable_per_connector_and_upstream_subject_and_never_the_email() {
        let subject = federated_subject("corp", "248289761001");
        assert_eq!(subject, federated_subject("corp", "248289761001"));
        assert_eq!(subject.len(), 43);
        assert!(subject.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_ne!(subject, federated_subject("other", "248289761001"), "distinct per connector");
        // The separator keeps ("a", "b:c") and ("a:b", "c") apart.
        assert_ne!(federated_subject("a", "bc"), federated_subject("ab", "c"));
        let mapped =
            map(&connector(), json!({"sub": "248289761001", "email": "a@example.com", "email_verified": true}));
        assert_eq!(mapped.unwrap().user_record("corp").subject, subject);
    }

    #[test]
    fn claim_paths_read_names_with_dots_first_then_nested_objects() {
        let claims = claims(json!({
            "https://example.com/groups": ["a"],
            "realm_access": {"roles": ["admin"]},
            "plain": "x"
        }));
        assert_eq!(claim_at(&claims, "https://example.com/groups"), Some(&json!(["a"])));
        assert_eq!(claim_at(&claims, "realm_access.roles"), Some(&json!(["admin"])));
        assert_eq!(claim_at(&claims, "plain"), Some(&json!("x")));
        assert_eq!(claim_at(&claims, "plain.deeper"), None);
        assert_eq!(claim_at(&claims, "missing"), None);
    }

    #[test]
    fn claims_are_mapped_and_groups_prefixed_sorted_and_deduplicated() {
        let connector = ConnectorRecord { group_prefix: "corp:".into(), ..connector() };
        let paths = ClaimPaths { groups: "realm_access.roles".into(), username: "upn".into(), ..ClaimPaths::default() };
        let upstream = claims(json!({
            "sub": "u1", "upn": "ann@corp", "email": "ann@corp.example", "email_verified": "true",
            "name": "Ann", "realm_access": {"roles": ["ops", "dev", "ops", 7, ""]}
        }));
        let mapped = map_identity(&connector, &paths, false, &upstream).unwrap();
        assert_eq!(mapped.username, "ann@corp");
        assert_eq!((mapped.email.as_deref(), mapped.email_verified), (Some("ann@corp.example"), true));
        assert_eq!(mapped.name.as_deref(), Some("Ann"));
        assert_eq!(mapped.groups, ["corp:dev", "corp:ops"]);
        let single = claims(json!({"sub": "u1", "groups": "ops"}));
        assert_eq!(map_identity(&connector, &ClaimPaths::default(), false, &single).unwrap().groups, ["corp:ops"]);
    }

    #[test]
    fn the_username_falls_back_to_the_email_then_the_upstream_subject() {
        let with_email = map(&connector(), json!({"sub": "u1", "email": "a@x.example", "email_verified": true}));
        assert_eq!(with_email.unwrap().username, "a@x.example");
        assert_eq!(map(&connector(), json!({"sub": "u1"})).unwrap().username, "u1");
    }

    #[test]
    fn an_unverified_email_refuses_the_person_unless_the_connector_accepts_it_unverified() {
        let upstream = json!({"sub": "u1", "email": "a@x.example"});
        assert_eq!(map(&connector(), upstream.clone()), Err(Refusal::EmailNotVerified("a@x.example".into())));
        let lenient = map_identity(&connector(), &ClaimPaths::default(), true, &claims(upstream)).unwrap();
        assert_eq!((lenient.email.as_deref(), lenient.email_verified), (Some("a@x.example"), false));
    }

    #[test]
    fn allowed_groups_are_matched_before_the_prefix() {
        let connector =
            ConnectorRecord { group_prefix: "corp:".into(), allowed_groups: vec!["staff".into()], ..connector() };
        assert!(map(&connector, json!({"sub": "u1", "groups": ["staff", "x"]})).is_ok());
        assert_eq!(map(&connector, json!({"sub": "u1", "groups": ["corp:staff"]})), Err(Refusal::NotInAllowedGroups));
        assert_eq!(map(&connector, json!({"sub": "u1"})), Err(Refusal::NotInAllowedGroups));
    }

    #[test]
    fn a_token_without_a_subject_or_with_oversized_claims_is_refused() {
        assert_eq!(map(&connector(), json!({"email": "a@x.example"})), Err(Refusal::NoSubject));
        let long = "x".repeat(MAX_CLAIM_LEN + 1);
        assert_eq!(map(&connector(), json!({"sub": "u1", "name": long})), Err(Refusal::ClaimTooLong("name".into())));
        let many: Vec<String> = (0..MAX_GROUPS + 10).map(|i| format!("g{i:04}")).collect();
        assert_eq!(map(&connector(), json!({"sub": "u1", "groups": many})).unwrap().groups.len(), MAX_GROUPS);
    }

    fn orgs(declared: &[(&str, &[&str])]) -> Vec<GitHubOrg> {
        declared
            .iter()
            .map(|(name, teams)| GitHubOrg { name: (*name).into(), teams: teams.iter().map(|t| (*t).into()).collect() })
            .collect()
    }

    fn teams(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(org, slug)| ((*org).into(), (*slug).into())).collect()
    }

    #[test]
    fn github_without_declared_orgs_lets_everyone_in_with_all_their_orgs_and_teams() {
        let groups = github_groups(&[], &["acme".into()], &teams(&[("acme", "ops"), ("other", "x")]));
        assert_eq!(groups.unwrap(), ["acme", "acme:ops", "other:x"]);
        assert_eq!(github_groups(&[], &[], &[]), Some(vec![]), "no organisation at all is still let in");
    }

    #[test]
    fn github_declared_orgs_admit_members_only_and_declared_teams_narrow_the_org() {
        let allowed = orgs(&[("Acme", &[]), ("corp", &["platform", "sre"])]);
        let admitted = github_groups(&allowed, &["acme".into()], &teams(&[("acme", "ops")]));
        assert_eq!(admitted.unwrap(), ["Acme", "Acme:ops"], "the declared name, every team of an org without a list");
        let only_listed = github_groups(&allowed, &["corp".into()], &teams(&[("corp", "sre"), ("corp", "sales")]));
        assert_eq!(only_listed.unwrap(), ["corp", "corp:sre"]);
        assert_eq!(github_groups(&allowed, &["corp".into()], &teams(&[("corp", "sales")])), None, "no listed team");
        assert_eq!(github_groups(&allowed, &["elsewhere".into()], &[]), None, "no declared org");
        let hidden_membership = github_groups(&allowed, &[], &teams(&[("corp", "platform")]));
        assert_eq!(hidden_membership.unwrap(), ["corp", "corp:platform"], "a team membership shows the org's");
    }

    #[test]
    fn github_people_are_admitted_with_their_org_groups_under_the_prefix_and_allowed_groups() {
        let mut connector = connector();
        connector.upstream = Upstream::GitHub(crate::model::GitHubUpstream {
            client_id: "id".into(),
            client_secret: "secret".into(),
            web_url: "https://github.com".into(),
            api_url: "https://api.github.com".into(),
            orgs: orgs(&[("acme", &[])]),
        });
        connector.group_prefix = "gh:".into();
        let person = |orgs: Value| {
            claims(json!({"sub": "42", "preferred_username": "octocat", GITHUB_ORGS: orgs, GITHUB_TEAMS: ["acme/ops"]}))
        };
        let mapped = admit(&connector, &person(json!(["acme"]))).unwrap();
        assert_eq!((mapped.upstream_subject.as_str(), mapped.username.as_str()), ("42", "octocat"));
        assert_eq!(mapped.groups, ["gh:acme", "gh:acme:ops"]);
        assert_eq!(admit(&connector, &person(json!(["other"]))).unwrap().groups, ["gh:acme", "gh:acme:ops"]);
        connector.upstream = Upstream::GitHub(crate::model::GitHubUpstream {
            orgs: orgs(&[("acme", &["sre"])]),
            ..match connector.upstream {
                Upstream::GitHub(github) => github,
                Upstream::Oidc(_) | Upstream::Ldap(_) => unreachable!(),
            }
        });
        assert_eq!(admit(&connector, &person(json!(["acme"]))), Err(Refusal::NotInAllowedOrganisations));
        connector.upstream = Upstream::GitHub(crate::model::GitHubUpstream {
            orgs: vec![],
            ..match connector.upstream {
                Upstream::GitHub(github) => github,
                Upstream::Oidc(_) | Upstream::Ldap(_) => unreachable!(),
            }
        });
        connector.allowed_groups = vec!["acme:sre".into()];
        assert_eq!(admit(&connector, &person(json!(["acme"]))), Err(Refusal::NotInAllowedGroups));
    }

    #[test]
    fn a_claiming_user_adds_roles_client_roles_and_groups_and_keeps_the_upstream_subject() {
        let connector = connector();
        let person = map(
            &connector,
            json!({ "sub": "u-1", "email": "ann@example.com", "email_verified": true, "groups": ["dev"] }),
        )
        .unwrap()
        .user_record("corp");
        let claimant = UserRecord {
            subject: "ann-local".into(),
            username: "ann".into(),
            groups: vec!["cluster-admins".into(), "dev".into()],
            roles: vec!["admin".into()],
            client_roles: [("grafana".to_owned(), vec!["editor".to_owned()])].into(),
            claimed_subjects: vec![person.subject.clone()],
            ..person.clone()
        };
        let merged = with_claimant(person.clone(), Some(&claimant)).unwrap();
        assert_eq!(merged.subject, federated_subject("corp", "u-1"), "the subject stays derived");
        assert_eq!(merged.email.as_deref(), Some("ann@example.com"));
        assert_eq!(merged.groups, ["cluster-admins", "dev"], "sorted, without duplicates");
        assert_eq!(merged.roles, ["admin"]);
        assert_eq!(merged.client_roles["grafana"], ["editor"]);
        assert_eq!(with_claimant(person.clone(), None).unwrap(), person, "nobody claims: the upstream's record");
        let disabled = UserRecord { disabled: true, ..claimant };
        assert_eq!(with_claimant(person, Some(&disabled)), Err(Refusal::Disabled));
    }

    #[test]
    fn a_refresh_asks_the_upstream_again_once_the_interval_has_passed() {
        assert!(!needs_recheck(1000, 600, 1599));
        assert!(needs_recheck(1000, 600, 1600));
        assert!(needs_recheck(u64::MAX, 600, u64::MAX), "no overflow");
    }

    #[test]
    fn oidc_core_3_1_2_1_a_login_hint_leads_to_the_first_connector_listing_its_email_domain() {
        let listing = |name: &str, domains: &[&str]| ConnectorRecord {
            login_hint_domains: domains.iter().map(|domain| domain.to_string()).collect(),
            ..ConnectorRecord::fixture(name, "https://upstream.example")
        };
        let offered =
            [listing("none", &[]), listing("corp", &["corp.example", "corp.test"]), listing("late", &["corp.example"])];
        let led = |hint: &str| connector_for_login_hint(hint, &offered).map(|connector| connector.name.as_str());
        assert_eq!(led("jane@corp.example"), Some("corp"));
        assert_eq!(led("Jane@CORP.Test"), Some("corp"), "the domain without case");
        assert_eq!(led("\"odd@name\"@corp.example"), Some("corp"), "after the last @");
        for nowhere in ["jane@eu.corp.example", "jane@example", "jane", "jane@", "corp.example", ""] {
            assert_eq!(led(nowhere), None, "{nowhere}");
        }
    }
}
