//! Signing people in against an LDAP directory (OpenLDAP, Active Directory), with `ldap3`:
//! the person types their directory username and password on our form; the service
//! account (or an anonymous bind) finds their entry, a bind as that entry checks the
//! password (it is never compared here), and the service account reads their groups.
//!
//! Every connection is over TLS (`ldaps://`, or StartTLS before anything is sent) except
//! plain `ldap://` to a loopback address, which the plan allows for development only. An
//! empty password is refused before anything is sent: an LDAP simple bind with a DN and no
//! password is an *unauthenticated* bind (RFC 4513 §5.1.2) that many servers let succeed.
//! A refresh re-checks the person by searching them again by their username (the handle
//! kept in place of a refresh token) and re-reading their groups.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, ResultEntry, Scope, SearchOptions, ldap_escape};
use rustls::ClientConfig;
use rustls::crypto::ring;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::Map;

use super::{ConnectorError, Vouched};
use crate::model::{LdapGroupSearch, LdapUpstream, LdapUserSearch};
use crate::protocol::federation::MAX_GROUPS;
use crate::secrets::SecretString;

/// How long connecting (TCP and TLS) and each operation may take: a directory that does
/// not answer makes the form say so, rather than hold the person (and a worker) for long.
const TIMEOUT: Duration = Duration::from_secs(5);

/// LDAP result codes (RFC 4511 §4.1.9) the connector tells apart.
const INVALID_CREDENTIALS: u32 = 49;
const SIZE_LIMIT_EXCEEDED: u32 = 4;

/// The pseudo-attribute naming the entry's DN in `idAttr` and `userAttr`.
const DN: &str = "dn";

/// The TLS settings of each CA a directory connector declares (by its PEM), built once.
#[derive(Default)]
pub struct LdapConnectors {
    tls: Mutex<HashMap<String, Arc<ClientConfig>>>,
}

/// A person's entry: its DN and its attributes (names lowercased; UTF-8 values only).
struct Entry {
    dn: String,
    attributes: HashMap<String, Vec<String>>,
}

impl Entry {
    /// The values of `attribute` (`DN`, any case, for the DN).
    fn values(&self, attribute: &str) -> Vec<&str> {
        if attribute.eq_ignore_ascii_case(DN) {
            return vec![self.dn.as_str()];
        }
        let values = self.attributes.get(&attribute.to_ascii_lowercase());
        values.map(|values| values.iter().map(String::as_str).collect()).unwrap_or_default()
    }

    fn first(&self, attribute: &str) -> Option<&str> {
        self.values(attribute).into_iter().find(|value| !value.is_empty())
    }
}

impl LdapConnectors {
    /// Checks `username` and `password` against the directory: what it vouches for the
    /// person, or [`ConnectorError::WrongCredentials`] for an unknown user, an ambiguous
    /// username or a wrong (or empty) password alike.
    pub async fn authenticate(
        &self,
        ldap: &LdapUpstream,
        username: &str,
        password: &SecretString,
    ) -> Result<Vouched, ConnectorError> {
        if username.is_empty() || password.expose().is_empty() {
            return Err(ConnectorError::WrongCredentials);
        }
        let mut conn = self.connect(ldap).await?;
        let outcome = async {
            bind_service_account(&mut conn, ldap).await?;
            let entry =
                find_person(&mut conn, &ldap.user_search, username).await?.ok_or(ConnectorError::WrongCredentials)?;
            let bound = conn.simple_bind(&entry.dn, password.expose()).await.map_err(unreachable)?;
            match bound.rc {
                0 => {}
                INVALID_CREDENTIALS => return Err(ConnectorError::WrongCredentials),
                rc => {
                    return Err(ConnectorError::Directory(format!(
                        "the bind as the person answered {rc}: {}",
                        bound.text
                    )));
                }
            }
            bind_service_account(&mut conn, ldap).await?;
            vouch(&mut conn, ldap, &entry, username).await
        }
        .await;
        let _ = conn.unbind().await;
        outcome
    }

    /// Asks the directory again about the person found by `username` whose upstream
    /// subject was `subject`: gone, or now another entry, is [`ConnectorError::Gone`].
    pub async fn recheck(&self, ldap: &LdapUpstream, username: &str, subject: &str) -> Result<Vouched, ConnectorError> {
        let mut conn = self.connect(ldap).await?;
        let outcome = async {
            bind_service_account(&mut conn, ldap).await?;
            let entry = find_person(&mut conn, &ldap.user_search, username).await?.ok_or(ConnectorError::Gone)?;
            if entry.first(&ldap.user_search.id_attr) != Some(subject) {
                return Err(ConnectorError::Gone);
            }
            vouch(&mut conn, ldap, &entry, username).await
        }
        .await;
        let _ = conn.unbind().await;
        outcome
    }

    /// A connection to the directory, over TLS unless plain `ldap://` on loopback.
    async fn connect(&self, ldap: &LdapUpstream) -> Result<Ldap, ConnectorError> {
        let mut settings = LdapConnSettings::new().set_conn_timeout(TIMEOUT).set_starttls(ldap.start_tls);
        if ldap.start_tls || ldap.url.starts_with("ldaps:") {
            settings = settings.set_config(self.tls(ldap.root_ca_pem.as_deref().unwrap_or_default())?);
        }
        let (driver, mut conn) = LdapConnAsync::with_settings(settings, &ldap.url).await.map_err(unreachable)?;
        ldap3::drive!(driver);
        conn.with_timeout(TIMEOUT);
        Ok(conn)
    }

    /// The TLS settings trusting `pem`'s certificates (empty: the system's roots).
    fn tls(&self, pem: &str) -> Result<Arc<ClientConfig>, ConnectorError> {
        let mut cache = self.tls.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(config) = cache.get(pem) {
            return Ok(Arc::clone(config));
        }
        let mut roots = rustls::RootCertStore::empty();
        let certificates: Vec<CertificateDer<'static>> = if pem.is_empty() {
            rustls_native_certs::load_native_certs().certs
        } else {
            CertificateDer::pem_slice_iter(pem.as_bytes())
                .collect::<Result<_, _>>()
                .map_err(|error| ConnectorError::Directory(format!("the CA certificate is not PEM: {error}")))?
        };
        let (_, ignored) = roots.add_parsable_certificates(certificates);
        if roots.is_empty() {
            return Err(ConnectorError::Directory(format!("no usable CA certificate ({ignored} unparsable)")));
        }
        let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|error| ConnectorError::Directory(error.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let config = Arc::new(config);
        cache.insert(pem.to_owned(), Arc::clone(&config));
        Ok(config)
    }
}

/// Binds as the service account, if the connector has one (else the searches are
/// anonymous: an empty simple bind, which also undoes a bind as the person).
async fn bind_service_account(conn: &mut Ldap, ldap: &LdapUpstream) -> Result<(), ConnectorError> {
    let (dn, password) = match &ldap.service_account {
        Some(account) => (account.dn.as_str(), account.password.as_str()),
        None => ("", ""),
    };
    let bound = conn.simple_bind(dn, password).await.map_err(unreachable)?;
    if bound.rc != 0 {
        return Err(ConnectorError::Directory(format!(
            "the service account's bind answered {}: {}",
            bound.rc, bound.text
        )));
    }
    Ok(())
}

/// The one entry under the user search whose username attribute is `username`; `None`
/// when there is none, or more than one.
async fn find_person(
    conn: &mut Ldap,
    search: &LdapUserSearch,
    username: &str,
) -> Result<Option<Entry>, ConnectorError> {
    let filter = person_filter(search, username);
    let mut attributes = vec![search.username_attr.as_str(), search.email_attr.as_str(), search.name_attr.as_str()];
    attributes.extend([search.id_attr.as_str()].into_iter().filter(|attribute| !attribute.eq_ignore_ascii_case(DN)));
    let found = conn
        .with_search_options(SearchOptions::new().sizelimit(2))
        .search(&search.base_dn, Scope::Subtree, &filter, attributes)
        .await
        .map_err(unreachable)?;
    if found.1.rc != 0 && found.1.rc != SIZE_LIMIT_EXCEEDED {
        return Err(ConnectorError::Directory(format!("the person search answered {}: {}", found.1.rc, found.1.text)));
    }
    let mut entries: Vec<Entry> = found.0.into_iter().filter_map(entry_of).collect();
    if entries.len() != 1 {
        if entries.len() > 1 {
            tracing::warn!(base = %search.base_dn, "more than one directory entry matches a username; none signs in");
        }
        return Ok(None);
    }
    Ok(entries.pop())
}

/// What the directory vouches for the person of `entry`, who typed `username`: their
/// attributes under the standard claim names, and their groups.
async fn vouch(conn: &mut Ldap, ldap: &LdapUpstream, entry: &Entry, username: &str) -> Result<Vouched, ConnectorError> {
    let search = &ldap.user_search;
    let subject = entry
        .first(&search.id_attr)
        .ok_or_else(|| ConnectorError::Directory(format!("the person's entry has no `{}`", search.id_attr)))?;
    let groups = match &ldap.group_search {
        Some(groups) => find_groups(conn, groups, entry).await?,
        None => Vec::new(),
    };
    let mut claims = Map::new();
    claims.insert("sub".into(), subject.into());
    claims.insert("preferred_username".into(), entry.first(&search.username_attr).unwrap_or(username).into());
    if let Some(email) = entry.first(&search.email_attr) {
        claims.insert("email".into(), email.into());
        claims.insert("email_verified".into(), true.into());
    }
    if let Some(name) = entry.first(&search.name_attr) {
        claims.insert("name".into(), name.into());
    }
    claims.insert("groups".into(), groups.into());
    let handle = entry.first(&search.username_attr).unwrap_or(username);
    Ok(Vouched { claims, refresh_token: Some(handle.to_owned()) })
}

/// The names of the groups naming `entry` as a member under any of the matchers.
async fn find_groups(conn: &mut Ldap, search: &LdapGroupSearch, entry: &Entry) -> Result<Vec<String>, ConnectorError> {
    let Some(filter) = group_filter(search, entry) else { return Ok(Vec::new()) };
    let found = conn
        .with_search_options(SearchOptions::new().sizelimit(i32::try_from(MAX_GROUPS).unwrap_or(i32::MAX)))
        .search(&search.base_dn, Scope::Subtree, &filter, vec![search.name_attr.as_str()])
        .await
        .map_err(unreachable)?;
    if found.1.rc != 0 && found.1.rc != SIZE_LIMIT_EXCEEDED {
        return Err(ConnectorError::Directory(format!("the group search answered {}: {}", found.1.rc, found.1.text)));
    }
    let groups = found.0.into_iter().filter_map(entry_of);
    Ok(groups.filter_map(|group| group.first(&search.name_attr).map(str::to_owned)).collect())
}

/// RFC 4515: `(&<filter>(<username attribute>=<username, escaped>))`.
fn person_filter(search: &LdapUserSearch, username: &str) -> String {
    format!("(&{}({}={}))", search.filter, search.username_attr, ldap_escape(username))
}

/// RFC 4515: `(&<filter>(|(<group attribute>=<the person's value, escaped>)…))` over every
/// matcher and every value the person has of its attribute; `None` when they have none.
fn group_filter(search: &LdapGroupSearch, entry: &Entry) -> Option<String> {
    let clauses: String = search
        .user_matchers
        .iter()
        .flat_map(|(user_attr, group_attr)| {
            entry.values(user_attr).into_iter().map(move |value| format!("({group_attr}={})", ldap_escape(value)))
        })
        .collect();
    (!clauses.is_empty()).then(|| format!("(&{}(|{clauses}))", search.filter))
}

/// The DN and attributes of a search result entry (RFC 4511 §4.5.2 SearchResultEntry),
/// or `None` when it is not one: read without the panics of `SearchEntry::construct`.
fn entry_of(result: ResultEntry) -> Option<Entry> {
    let mut parts = result.0.match_id(4)?.expect_constructed()?.into_iter();
    let dn = String::from_utf8(parts.next()?.expect_primitive()?).ok()?;
    let mut attributes = HashMap::new();
    for attribute in parts.next()?.expect_constructed()? {
        let mut pair = attribute.expect_constructed()?.into_iter();
        let name = String::from_utf8(pair.next()?.expect_primitive()?).ok()?.to_ascii_lowercase();
        let values = pair.next()?.expect_constructed()?;
        let values = values.into_iter().filter_map(|value| String::from_utf8(value.expect_primitive()?).ok()).collect();
        attributes.insert(name, values);
    }
    Some(Entry { dn, attributes })
}

/// The directory could not be reached or did not answer in time.
fn unreachable(error: ldap3::LdapError) -> ConnectorError {
    ConnectorError::DirectoryUnreachable(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> LdapUserSearch {
        LdapUserSearch {
            base_dn: "ou=people,dc=example,dc=org".into(),
            filter: "(objectClass=person)".into(),
            username_attr: "uid".into(),
            id_attr: "uid".into(),
            email_attr: "mail".into(),
            name_attr: "cn".into(),
        }
    }

    #[test]
    fn rfc_4515_a_typed_username_is_escaped_into_the_person_filter() {
        assert_eq!(person_filter(&users(), "jane"), "(&(objectClass=person)(uid=jane))");
        assert_eq!(
            person_filter(&users(), "*)(uid=*"),
            "(&(objectClass=person)(uid=\\2a\\29\\28uid=\\2a))",
            "no filter injection: a wildcard or parenthesis typed is a literal"
        );
    }

    #[test]
    fn rfc_4515_the_group_filter_names_every_value_of_every_matcher_escaped() {
        let entry = Entry {
            dn: "uid=jane,ou=people,dc=example,dc=org".into(),
            attributes: HashMap::from([("uid".into(), vec!["jane(1)".into()])]),
        };
        let search = LdapGroupSearch {
            base_dn: "ou=groups,dc=example,dc=org".into(),
            filter: "(objectClass=groupOfNames)".into(),
            user_matchers: vec![("DN".into(), "member".into()), ("uid".into(), "memberUid".into())],
            name_attr: "cn".into(),
        };
        assert_eq!(
            group_filter(&search, &entry).as_deref(),
            Some(
                "(&(objectClass=groupOfNames)(|(member=uid=jane,ou=people,dc=example,dc=org)(memberUid=jane\\281\\29)))"
            )
        );
        let nobody = Entry { dn: "cn=x".into(), attributes: HashMap::new() };
        let only_uid = LdapGroupSearch { user_matchers: vec![("uid".into(), "memberUid".into())], ..search };
        assert_eq!(group_filter(&only_uid, &nobody), None, "no values: no groups, not every group");
    }

    #[test]
    fn attributes_compare_ignoring_case_and_dn_names_the_entry() {
        let entry = Entry {
            dn: "uid=jane,dc=example".into(),
            attributes: HashMap::from([("entryuuid".into(), vec!["".into(), "6f1c".into()])]),
        };
        assert_eq!(entry.first("entryUUID"), Some("6f1c"), "empty values skipped");
        assert_eq!(entry.first("DN"), Some("uid=jane,dc=example"));
        assert_eq!(entry.first("mail"), None);
    }

    #[tokio::test]
    async fn an_empty_password_is_refused_before_anything_is_sent() {
        let unreachable = LdapUpstream {
            url: "ldap://127.0.0.1:1".into(),
            start_tls: false,
            root_ca_pem: None,
            service_account: None,
            username_prompt: None,
            user_search: users(),
            group_search: None,
        };
        let connectors = LdapConnectors::default();
        let empty = connectors.authenticate(&unreachable, "jane", &SecretString::new("")).await;
        assert!(matches!(empty, Err(ConnectorError::WrongCredentials)), "refused without connecting");
        let tried = connectors.authenticate(&unreachable, "jane", &SecretString::new("pw")).await;
        assert!(matches!(tried, Err(ConnectorError::DirectoryUnreachable(_))), "a password is tried");
    }
}
