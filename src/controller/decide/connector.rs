//! Deciding an `IdentityConnector`: the record the store holds for it (its client secret
//! read from its Secret) and what its status says. Its name is its `metadata.name`, which
//! never changes; two namespaces declaring the same name are a conflict the older one wins.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use url::Url;

use super::claim::{Claimant, owner, released};
use super::{Decision, Names, Readiness, Reason, Settled, is_ready, settle};
use crate::controller::reconcile::{Problem, ReconcileError, error, parse_duration, secret_value};
use crate::crd::{
    ConnectorType, GitHubConnectorSpec, IdentityConnector, IdentityConnectorStatus, LdapConnectorSpec,
    OidcConnectorSpec, SecretKeyRef,
};
use crate::model::{
    ButtonIcon, ClaimPaths, ConnectorRecord, GitHubOrg, GitHubUpstream, LdapGroupSearch, LdapServiceAccount,
    LdapUpstream, LdapUserSearch, OidcUpstream, Upstream,
};
use crate::vocabulary::Scope;

/// Connector names: lost to an older connector of another namespace.
const CONNECTOR_NAMES: Names = Names {
    conflict: Reason::ConnectorConflict,
    revoked: "ConnectorRevoked",
    revoked_message: |old| format!("connector `{old}` can no longer sign anyone in"),
};

/// The scopes asked of an upstream that declares none.
const DEFAULT_SCOPES: [&str; 3] = ["openid", "profile", "email"];

/// How often a refresh asks the upstream again, unless declared; and the longest allowed.
const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(600);
const MAX_REFRESH_INTERVAL: Duration = Duration::from_secs(7 * 24 * 3600);

/// What to do for one `IdentityConnector`.
pub type ConnectorDecision = Decision<ConnectorRecord, IdentityConnectorStatus>;

impl Claimant for IdentityConnector {
    fn applied(&self) -> Option<&str> {
        let status = self.status.as_ref()?;
        is_ready(&status.conditions).then_some(self.metadata.name.as_deref()).flatten()
    }

    fn claimed(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or_default()
    }
}

/// The record `connector` stands for, given the Secrets it reads that exist (found by name
/// among `secrets`).
pub fn plan_connector(connector: &IdentityConnector, secrets: &[&Secret]) -> Result<ConnectorRecord, ReconcileError> {
    let fail = |problem| error("IdentityConnector", connector, problem);
    let spec = &connector.spec;
    let name = connector.name_any();
    let refresh_interval = match &spec.refresh_interval {
        Some(value) => parse_duration("spec.refreshInterval", value, MAX_REFRESH_INTERVAL, "7d").map_err(fail)?,
        None => DEFAULT_REFRESH_INTERVAL,
    };
    let upstream = match spec.connector_type {
        ConnectorType::Oidc => {
            let oidc = spec.oidc.as_ref().ok_or_else(|| fail(Problem::MissingConnectorSettings("oidc")))?;
            Upstream::Oidc(plan_oidc(oidc, secrets).map_err(fail)?)
        }
        ConnectorType::Github => {
            let github = spec.github.as_ref().ok_or_else(|| fail(Problem::MissingConnectorSettings("github")))?;
            Upstream::GitHub(plan_github(github, secrets).map_err(fail)?)
        }
        ConnectorType::Ldap => {
            let ldap = spec.ldap.as_ref().ok_or_else(|| fail(Problem::MissingConnectorSettings("ldap")))?;
            Upstream::Ldap(plan_ldap(ldap, secrets).map_err(fail)?)
        }
    };
    let login_hint_domains = spec
        .login_hint_domains
        .iter()
        .map(|domain| domain_name(domain).ok_or_else(|| fail(Problem::InvalidLoginHintDomain(domain.clone()))))
        .collect::<Result<Vec<_>, _>>()?;
    let icon = spec.icon.unwrap_or(match spec.connector_type {
        ConnectorType::Oidc => ButtonIcon::OpenId,
        ConnectorType::Github => ButtonIcon::GitHub,
        ConnectorType::Ldap => ButtonIcon::Directory,
    });
    Ok(ConnectorRecord {
        display_name: spec.display_name.clone().unwrap_or_else(|| name.clone()),
        icon,
        name,
        upstream,
        group_prefix: spec.group_prefix.clone().unwrap_or_default(),
        allowed_groups: spec.allowed_groups.clone(),
        refresh_interval: refresh_interval.as_secs(),
        login_hint_domains,
    })
}

/// `domain` lowercased, if it is a DNS name of at least two labels (RFC 1035 §2.3.1,
/// digits allowed first as RFC 1123 §2.1 does).
fn domain_name(domain: &str) -> Option<String> {
    let domain = domain.to_ascii_lowercase();
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    let labels: Vec<&str> = domain.split('.').collect();
    (domain.len() <= 253 && labels.len() >= 2 && labels.iter().all(|label| label_ok(label))).then_some(domain)
}

fn plan_oidc(oidc: &OidcConnectorSpec, secrets: &[&Secret]) -> Result<OidcUpstream, Problem> {
    if !is_issuer(&oidc.issuer) {
        return Err(Problem::InvalidIssuer(oidc.issuer.clone()));
    }
    let client_secret = secret_key(&oidc.client_secret_ref, secrets)?;
    let mut scopes: Vec<String> = if oidc.scopes.is_empty() {
        DEFAULT_SCOPES.map(str::to_owned).to_vec()
    } else {
        Scope::parse(&oidc.scopes.join(" ")).map_err(|e| Problem::InvalidScope(e.to_string()))?;
        oidc.scopes.clone()
    };
    if !scopes.iter().any(|scope| scope == "openid") {
        scopes.insert(0, "openid".into());
    }
    let mappings = &oidc.claim_mappings;
    let defaults = ClaimPaths::default();
    let or_default = |declared: &Option<String>, default: String| declared.clone().unwrap_or(default);
    Ok(OidcUpstream {
        issuer: oidc.issuer.clone(),
        client_id: oidc.client_id.clone(),
        client_secret,
        scopes,
        claims: ClaimPaths {
            username: or_default(&mappings.username, defaults.username),
            email: or_default(&mappings.email, defaults.email),
            email_verified: or_default(&mappings.email_verified, defaults.email_verified),
            name: or_default(&mappings.name, defaults.name),
            groups: or_default(&mappings.groups, defaults.groups),
        },
        skip_email_verified: oidc.insecure_skip_email_verified,
        userinfo: oidc.userinfo,
    })
}

/// The value `reference` names, from its Secret among `secrets`, trimmed.
fn secret_key(reference: &SecretKeyRef, secrets: &[&Secret]) -> Result<String, Problem> {
    let secret = secrets
        .iter()
        .find(|secret| secret.metadata.name.as_deref() == Some(reference.name.as_str()))
        .ok_or_else(|| Problem::MissingSecret(reference.name.clone()))?;
    let value = secret_value(secret, &reference.key)?
        .ok_or_else(|| Problem::MissingSecretKey { secret: reference.name.clone(), key: reference.key.clone() })?;
    Ok(value.trim().to_owned())
}

/// GitHub's web and API URLs: github.com's, or an Enterprise Server's at `hostName`.
fn plan_github(github: &GitHubConnectorSpec, secrets: &[&Secret]) -> Result<GitHubUpstream, Problem> {
    let (web_url, api_url) = match github.host_name.as_deref() {
        None => ("https://github.com".to_owned(), "https://api.github.com".to_owned()),
        Some(host) => {
            let web_url = format!("https://{host}");
            let parsed = Url::parse(&web_url).map_err(|_| Problem::InvalidHostName(host.to_owned()))?;
            if parsed.host_str() != Some(host) || parsed.port().is_some() {
                return Err(Problem::InvalidHostName(host.to_owned()));
            }
            (web_url.clone(), format!("{web_url}/api/v3"))
        }
    };
    let orgs = github.orgs.iter().map(|org| GitHubOrg { name: org.name.clone(), teams: org.teams.clone() }).collect();
    Ok(GitHubUpstream {
        client_id: github.client_id.clone(),
        client_secret: secret_key(&github.client_secret_ref, secrets)?,
        web_url,
        api_url,
        orgs,
    })
}

/// The filters used when a directory connector declares none.
const DEFAULT_USER_FILTER: &str = "(objectClass=person)";
const DEFAULT_GROUP_FILTER: &str = "(objectClass=groupOfNames)";

/// A directory: its URL checked (TLS, or plain only on loopback), its filters at least
/// parenthesised, its service account and CA read from their Secrets.
fn plan_ldap(ldap: &LdapConnectorSpec, secrets: &[&Secret]) -> Result<LdapUpstream, Problem> {
    if !is_ldap_url(&ldap.host, ldap.start_tls) {
        return Err(Problem::InvalidLdapHost(ldap.host.clone()));
    }
    let root_ca_pem = match &ldap.root_ca_secret_ref {
        Some(reference) => {
            let pem = secret_key(reference, secrets)?;
            if !holds_certificate(&pem) {
                return Err(Problem::InvalidCertificate { secret: reference.name.clone(), key: reference.key.clone() });
            }
            Some(pem)
        }
        None => None,
    };
    let service_account = match (&ldap.bind_dn_secret_ref, &ldap.bind_password_secret_ref) {
        (Some(dn), Some(password)) => {
            Some(LdapServiceAccount { dn: secret_key(dn, secrets)?, password: secret_key(password, secrets)? })
        }
        (None, None) => None,
        _ => return Err(Problem::HalfServiceAccount),
    };
    let filter = |field, declared: &Option<String>, default: &str| {
        let filter = declared.clone().unwrap_or_else(|| default.to_owned());
        if is_filter(&filter) { Ok(filter) } else { Err(Problem::InvalidLdapFilter { field, filter }) }
    };
    let users = &ldap.user_search;
    let or = |declared: &Option<String>, default: &str| declared.clone().unwrap_or_else(|| default.to_owned());
    let user_search = LdapUserSearch {
        base_dn: users.base_dn.clone(),
        filter: filter("spec.ldap.userSearch.filter", &users.filter, DEFAULT_USER_FILTER)?,
        username_attr: users.username.clone(),
        id_attr: or(&users.id_attr, "uid"),
        email_attr: or(&users.email_attr, "mail"),
        name_attr: or(&users.name_attr, "cn"),
    };
    let group_search = match &ldap.group_search {
        Some(groups) => Some(LdapGroupSearch {
            base_dn: groups.base_dn.clone(),
            filter: filter("spec.ldap.groupSearch.filter", &groups.filter, DEFAULT_GROUP_FILTER)?,
            user_matchers: if groups.user_matchers.is_empty() {
                vec![("DN".into(), "member".into())]
            } else {
                groups.user_matchers.iter().map(|m| (m.user_attr.clone(), m.group_attr.clone())).collect()
            },
            name_attr: or(&groups.name_attr, "cn"),
        }),
        None => None,
    };
    Ok(LdapUpstream {
        url: ldap.host.clone(),
        start_tls: ldap.start_tls,
        root_ca_pem,
        service_account,
        username_prompt: ldap.username_prompt.clone(),
        user_search,
        group_search,
    })
}

/// An `ldaps://` or `ldap://` URL naming a host and nothing more; plain `ldap://` (which
/// would carry passwords in clear) only with StartTLS or on a loopback address.
fn is_ldap_url(host: &str, start_tls: bool) -> bool {
    let Ok(url) = Url::parse(host) else { return false };
    let bare = url.host().is_some()
        && matches!(url.path(), "" | "/")
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none();
    match url.scheme() {
        "ldaps" => bare && !start_tls,
        "ldap" => bare && (start_tls || is_loopback(&url)),
        _ => false,
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        // URLs of schemes the URL standard does not know (ldap) keep an address as text.
        Some(url::Host::Domain(domain)) => {
            domain == "localhost"
                || domain
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        None => false,
    }
}

/// RFC 4515 §3: a filter is parenthesised, with balanced parentheses (a closer check is
/// the directory's, at the first search).
fn is_filter(filter: &str) -> bool {
    let mut depth = 0usize;
    for (i, c) in filter.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return false,
            ')' => {
                depth -= 1;
                if depth == 0 && i + 1 != filter.len() {
                    return false;
                }
            }
            _ if depth == 0 => return false,
            _ => {}
        }
    }
    depth == 0 && filter.len() > 2
}

/// Whether `pem` holds at least one certificate.
fn holds_certificate(pem: &str) -> bool {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut certificates = CertificateDer::pem_slice_iter(pem.as_bytes()).peekable();
    certificates.peek().is_some() && certificates.all(|certificate| certificate.is_ok())
}

/// OIDC Discovery §2: an issuer is an https URL with no query or fragment; plain http is
/// allowed on loopback addresses only, for a local upstream in development.
fn is_issuer(issuer: &str) -> bool {
    let Ok(url) = Url::parse(issuer) else { return false };
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && is_loopback(&url));
    scheme_ok && url.host().is_some() && url.query().is_none() && url.fragment().is_none() && !issuer.contains('#')
}

/// Decides `connector`, given the Secrets it reads that exist, the connectors
/// of the same name in other namespaces (`peers`; `connector` itself may be among them)
/// and the time.
pub fn decide_connector(
    connector: &IdentityConnector,
    secrets: &[&Secret],
    peers: &[Arc<IdentityConnector>],
    now: u64,
) -> ConnectorDecision {
    let previous = connector.status.clone().unwrap_or_default();
    let name = connector.name_any();
    let outcome = match plan_connector(connector, secrets) {
        Err(error) => Err(Readiness::not_ready(Reason::of(&error.problem), error.problem.to_string())),
        Ok(record) => match owner(connector, &name, peers) {
            Some(owner) => Err(Readiness::not_ready(
                Reason::ConnectorConflict,
                format!(
                    "connector `{name}` is already declared in namespace {}",
                    owner.namespace().unwrap_or_default()
                ),
            )),
            None => Ok(record),
        },
    };
    let (apply, readiness) = match outcome {
        Ok(record) => (Some(record), Readiness::ready(format!("people can sign in through connector `{name}`"))),
        Err(readiness) => (None, readiness),
    };
    let kept = apply.as_ref().map(|record| record.name.clone());
    let Settled { delete, events, condition, requeue } =
        settle(connector, kept.as_deref(), &readiness, &previous.conditions, peers, &CONNECTOR_NAMES, now);
    let status =
        IdentityConnectorStatus { observed_generation: connector.metadata.generation, conditions: vec![condition] };
    Decision { apply, delete, readiness, status, events, requeue }
}

/// The connector names to remove when `connector` is deleted: its own, unless a
/// connector of another namespace holds it.
pub fn connector_cleanup(connector: &IdentityConnector, peers: &[Arc<IdentityConnector>]) -> Vec<String> {
    released(connector, Some(connector.name_any()), peers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::decide::fixtures::{SecretData, secret};
    use crate::crd::{ClaimMappings, IdentityConnectorSpec, SecretKeyRef};
    use kube::api::ObjectMeta;

    fn connector(namespace: &str, created: i64) -> IdentityConnector {
        let spec = IdentityConnectorSpec {
            connector_type: ConnectorType::Oidc,
            display_name: Some("Corp".into()),
            icon: None,
            oidc: Some(OidcConnectorSpec {
                issuer: "https://login.example.com/tenant/v2.0".into(),
                client_id: "portcullis".into(),
                client_secret_ref: SecretKeyRef { name: "corp-oidc".into(), key: "clientSecret".into() },
                scopes: vec![],
                claim_mappings: ClaimMappings { groups: Some("roles".into()), ..ClaimMappings::default() },
                insecure_skip_email_verified: false,
                userinfo: false,
            }),
            github: None,
            ldap: None,
            group_prefix: Some("corp:".into()),
            allowed_groups: vec!["staff".into()],
            refresh_interval: None,
            login_hint_domains: vec![],
        };
        let metadata = ObjectMeta {
            name: Some("corp".into()),
            namespace: Some(namespace.into()),
            uid: Some(format!("uid-{namespace}")),
            generation: Some(1),
            creation_timestamp: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::from_second(created).unwrap(),
            )),
            ..ObjectMeta::default()
        };
        IdentityConnector { metadata, spec, status: None }
    }

    fn client_secret() -> Secret {
        secret("corp-oidc").with("clientSecret", "s3cret\n")
    }

    #[test]
    fn a_connector_with_its_secret_is_applied_with_the_defaults_filled_in() {
        let decision = decide_connector(&connector("default", 1), &[&client_secret()], &[], 100);
        let record = decision.apply.unwrap();
        assert_eq!((record.name.as_str(), record.display_name.as_str()), ("corp", "Corp"));
        assert_eq!(record.refresh_interval, 600);
        assert_eq!(record.icon, ButtonIcon::OpenId, "an oidc connector's picture by default");
        assert_eq!((record.group_prefix.as_str(), &record.allowed_groups[..]), ("corp:", &["staff".to_owned()][..]));
        let Upstream::Oidc(oidc) = record.upstream else { panic!("an oidc upstream") };
        assert_eq!(oidc.client_secret, "s3cret");
        assert_eq!(oidc.scopes, ["openid", "profile", "email"]);
        assert_eq!((oidc.claims.groups.as_str(), oidc.claims.username.as_str()), ("roles", "preferred_username"));
        assert!(decision.readiness.is_ready());
    }

    #[test]
    fn login_hint_domains_are_dns_names_kept_lowercase() {
        let mut declared = connector("default", 1);
        declared.spec.login_hint_domains = vec!["Corp.Example".into(), "xn--bcher-kva.example".into()];
        let record = decide_connector(&declared, &[&client_secret()], &[], 100).apply.unwrap();
        assert_eq!(record.login_hint_domains, ["corp.example", "xn--bcher-kva.example"]);
        for bad in ["example", "@corp.example", "corp..example", "-corp.example", "corp.example.", "a b.example", ""] {
            declared.spec.login_hint_domains = vec![bad.into()];
            let planned = plan_connector(&declared, &[&client_secret()]);
            assert!(matches!(planned.unwrap_err().problem, Problem::InvalidLoginHintDomain(d) if d == bad), "{bad}");
        }
    }

    #[test]
    fn a_declared_picture_replaces_the_types_default() {
        let mut declared = connector("default", 1);
        declared.spec.icon = Some(ButtonIcon::Microsoft);
        let decision = decide_connector(&declared, &[&client_secret()], &[], 100);
        assert_eq!(decision.apply.unwrap().icon, ButtonIcon::Microsoft);
    }

    #[test]
    fn declared_scopes_always_ask_for_openid() {
        let mut declared = connector("default", 1);
        if let Some(oidc) = &mut declared.spec.oidc {
            oidc.scopes = vec!["email".into(), "groups".into()];
        }
        let record = plan_connector(&declared, &[&client_secret()]).unwrap();
        let Upstream::Oidc(oidc) = record.upstream else { panic!("an oidc upstream") };
        assert_eq!(oidc.scopes, ["openid", "email", "groups"]);
    }

    fn github_connector(host_name: Option<&str>) -> IdentityConnector {
        let mut declared = connector("default", 1);
        declared.spec.connector_type = ConnectorType::Github;
        declared.spec.oidc = None;
        declared.spec.github = Some(GitHubConnectorSpec {
            client_id: "Iv1.abc".into(),
            client_secret_ref: SecretKeyRef { name: "corp-oidc".into(), key: "clientSecret".into() },
            orgs: vec![crate::crd::GitHubOrgSpec { name: "acme".into(), teams: vec!["sre".into()] }],
            host_name: host_name.map(str::to_owned),
        });
        declared
    }

    #[test]
    fn a_github_connector_reads_github_com_or_an_enterprise_host_and_its_orgs() {
        let record = plan_connector(&github_connector(None), &[&client_secret()]).unwrap();
        let Upstream::GitHub(github) = record.upstream else { panic!("a github upstream") };
        assert_eq!(
            (github.web_url.as_str(), github.api_url.as_str()),
            ("https://github.com", "https://api.github.com")
        );
        assert_eq!((github.client_id.as_str(), github.client_secret.as_str()), ("Iv1.abc", "s3cret"));
        assert_eq!(github.orgs, [GitHubOrg { name: "acme".into(), teams: vec!["sre".into()] }]);
        let enterprise = plan_connector(&github_connector(Some("github.example.com")), &[&client_secret()]).unwrap();
        let Upstream::GitHub(github) = enterprise.upstream else { panic!("a github upstream") };
        assert_eq!(github.api_url, "https://github.example.com/api/v3");
        for bad in ["https://github.example.com", "github.example.com/path", "github.example.com:8443", "a b"] {
            let planned = plan_connector(&github_connector(Some(bad)), &[&client_secret()]);
            assert!(matches!(planned.unwrap_err().problem, Problem::InvalidHostName(host) if host == bad), "{bad}");
        }
        let mut missing = github_connector(None);
        missing.spec.github = None;
        let planned = plan_connector(&missing, &[&client_secret()]);
        assert!(matches!(planned.unwrap_err().problem, Problem::MissingConnectorSettings("github")));
    }

    fn ldap_connector(host: &str, start_tls: bool) -> IdentityConnector {
        let mut declared = connector("default", 1);
        declared.spec.connector_type = ConnectorType::Ldap;
        declared.spec.oidc = None;
        let reference = |name: &str, key: &str| Some(SecretKeyRef { name: name.into(), key: key.into() });
        declared.spec.ldap = Some(LdapConnectorSpec {
            host: host.into(),
            start_tls,
            root_ca_secret_ref: reference("ldap-ca", "ca.crt"),
            bind_dn_secret_ref: reference("ldap-bind", "dn"),
            bind_password_secret_ref: reference("ldap-bind", "password"),
            username_prompt: None,
            user_search: crate::crd::LdapUserSearch {
                base_dn: "ou=people,dc=example,dc=org".into(),
                filter: None,
                username: "uid".into(),
                id_attr: Some("entryUUID".into()),
                email_attr: None,
                name_attr: None,
            },
            group_search: Some(crate::crd::LdapGroupSearch {
                base_dn: "ou=groups,dc=example,dc=org".into(),
                filter: Some("(|(objectClass=groupOfNames)(objectClass=posixGroup))".into()),
                user_matchers: vec![],
                name_attr: None,
            }),
        });
        declared
    }

    const TEST_CA: &str = "-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n";

    fn ldap_secrets() -> [Secret; 2] {
        [
            secret("ldap-ca").with("ca.crt", TEST_CA),
            secret("ldap-bind").with("dn", "cn=portcullis,dc=example,dc=org").with("password", "bind-secret\n"),
        ]
    }

    #[test]
    fn an_ldap_connector_reads_its_service_account_and_ca_from_two_secrets_and_fills_in_the_defaults() {
        let [ca, bind] = ldap_secrets();
        let record = plan_connector(&ldap_connector("ldaps://ldap.example.org:636", false), &[&ca, &bind]).unwrap();
        let Upstream::Ldap(ldap) = record.upstream else { panic!("an ldap upstream") };
        assert_eq!(ldap.url, "ldaps://ldap.example.org:636");
        assert_eq!(ldap.root_ca_pem.as_deref(), Some(TEST_CA.trim()));
        let account = ldap.service_account.unwrap();
        assert_eq!(
            (account.dn.as_str(), account.password.as_str()),
            ("cn=portcullis,dc=example,dc=org", "bind-secret")
        );
        let users = &ldap.user_search;
        assert_eq!(users.filter, "(objectClass=person)");
        assert_eq!(
            (users.username_attr.as_str(), users.id_attr.as_str(), users.email_attr.as_str(), users.name_attr.as_str()),
            ("uid", "entryUUID", "mail", "cn")
        );
        let groups = ldap.group_search.unwrap();
        assert_eq!(groups.user_matchers, [("DN".to_owned(), "member".to_owned())]);
        assert_eq!(groups.name_attr, "cn");
        let planned = plan_connector(&ldap_connector("ldaps://ldap.example.org", false), &[&bind]);
        assert!(matches!(planned.unwrap_err().problem, Problem::MissingSecret(name) if name == "ldap-ca"));
    }

    #[test]
    fn an_ldap_host_carries_passwords_over_tls_plain_ldap_only_on_loopback() {
        let [ca, bind] = ldap_secrets();
        for (host, start_tls) in [
            ("ldaps://ldap.example.org", false),
            ("ldap://ldap.example.org:389", true),
            ("ldap://127.0.0.1:3890", false),
            ("ldap://localhost:3890/", false),
        ] {
            assert!(plan_connector(&ldap_connector(host, start_tls), &[&ca, &bind]).is_ok(), "{host}");
        }
        for (host, start_tls) in [
            ("ldap://ldap.example.org", false),
            ("ldaps://ldap.example.org", true),
            ("https://ldap.example.org", false),
            ("ldaps://ldap.example.org/dc=example", false),
            ("ldaps://user:pw@ldap.example.org", false),
            ("ldap.example.org:636", false),
        ] {
            let planned = plan_connector(&ldap_connector(host, start_tls), &[&ca, &bind]);
            assert!(matches!(planned.unwrap_err().problem, Problem::InvalidLdapHost(_)), "{host}");
        }
    }

    #[test]
    fn rfc_4515_ldap_filters_must_be_one_parenthesised_filter() {
        for good in ["(objectClass=person)", "(&(a=b)(|(c=d)(e=f)))"] {
            assert!(is_filter(good), "{good}");
        }
        for bad in ["objectClass=person", "(a=b)(c=d)", "(a=b", "a=b)", "()", "", "(a=b))"] {
            assert!(!is_filter(bad), "{bad}");
        }
        let [ca, bind] = ldap_secrets();
        let mut declared = ldap_connector("ldaps://ldap.example.org", false);
        if let Some(ldap) = &mut declared.spec.ldap {
            ldap.user_search.filter = Some("objectClass=person".into());
        }
        let planned = plan_connector(&declared, &[&ca, &bind]);
        assert!(matches!(planned.unwrap_err().problem, Problem::InvalidLdapFilter { .. }));
    }

    #[test]
    fn an_ldap_service_account_needs_both_its_dn_and_password_and_a_ca_needs_a_certificate() {
        let [_, bind] = ldap_secrets();
        let mut half = ldap_connector("ldaps://ldap.example.org", false);
        if let Some(ldap) = &mut half.spec.ldap {
            ldap.bind_password_secret_ref = None;
            ldap.root_ca_secret_ref = None;
        }
        assert!(matches!(plan_connector(&half, &[&bind]).unwrap_err().problem, Problem::HalfServiceAccount));
        let not_pem = secret("ldap-ca").with("ca.crt", "not a certificate");
        let planned = plan_connector(&ldap_connector("ldaps://ldap.example.org", false), &[&not_pem, &bind]);
        assert!(matches!(planned.unwrap_err().problem, Problem::InvalidCertificate { .. }));
    }

    #[test]
    fn a_missing_secret_or_key_is_reported_under_its_own_reason() {
        let decision = decide_connector(&connector("default", 1), &[], &[], 100);
        assert!(decision.apply.is_none());
        assert_eq!(decision.readiness.reason, Reason::SecretMissing);
        let wrong_key = secret("corp-oidc").with("other", "x");
        let decision = decide_connector(&connector("default", 1), &[&wrong_key], &[], 100);
        assert_eq!(decision.readiness.reason, Reason::SecretMissingKey);
    }

    #[test]
    fn oidc_discovery_2_an_issuer_is_https_without_query_or_fragment() {
        for good in ["https://accounts.google.com", "https://login.example.com/t/v2.0", "http://127.0.0.1:8081"] {
            assert!(is_issuer(good), "{good}");
        }
        for bad in ["http://idp.example.com", "https://idp.example.com?x=1", "https://idp.example.com#f", "idp", ""] {
            assert!(!is_issuer(bad), "{bad}");
        }
        let mut declared = connector("default", 1);
        if let Some(oidc) = &mut declared.spec.oidc {
            oidc.issuer = "http://idp.example.com".into();
        }
        let decision = decide_connector(&declared, &[&client_secret()], &[], 100);
        assert_eq!(decision.readiness.reason, Reason::InvalidSpec);
    }

    #[test]
    fn a_refresh_interval_is_a_duration_up_to_a_week() {
        let mut declared = connector("default", 1);
        declared.spec.refresh_interval = Some("1h".into());
        assert_eq!(plan_connector(&declared, &[&client_secret()]).unwrap().refresh_interval, 3600);
        declared.spec.refresh_interval = Some("30d".into());
        assert!(plan_connector(&declared, &[&client_secret()]).is_err());
    }

    #[test]
    fn the_older_of_two_namespaces_declaring_a_name_keeps_it() {
        let older = Arc::new(connector("team-a", 1));
        let newer = connector("team-b", 2);
        let peers = vec![Arc::clone(&older), Arc::new(newer.clone())];
        let decision = decide_connector(&newer, &[&client_secret()], &peers, 100);
        assert!(decision.apply.is_none());
        assert_eq!(decision.readiness.reason, Reason::ConnectorConflict);
        assert!(decide_connector(&older, &[&client_secret()], &peers, 100).apply.is_some());
    }
}
