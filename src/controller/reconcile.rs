//! Pure reconcile functions shared by the controller and the manifests folder: a resource
//! and the Secret it refers to in, the record to store and the actions to take out.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use url::Url;

use super::manifests::DEFAULT_NAMESPACE;
use crate::crd::{ApplicationType, OidcClient, OidcClientSpec, OidcUser, OidcUserSpec, SigningKey};
use crate::model::{Address, ClientPolicy, ClientRecord, UserProfile, UserRecord};
use crate::protocol::federation::federated_subject;
use crate::protocol::registration::CLIENT_ID_PREFIX;
use crate::protocol::userinfo::{RESERVED_CLAIMS, STANDARD_SCOPES, is_standard_user_claim};
use crate::protocol::{cors, redirect};
use crate::secrets::{self, SecretError, SecretString};
use crate::vocabulary::Scope;
use crate::vocabulary::{GrantType, SigningAlgorithm, TokenEndpointAuthMethod};

/// Secret key holding the client id.
pub const CLIENT_ID_KEY: &str = "clientId";
/// Secret key holding the client secret.
pub const CLIENT_SECRET_KEY: &str = "clientSecret";
/// Longest access-token lifetime a client may configure.
pub const MAX_ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Longest refresh-token reuse interval a client may configure.
pub const MAX_REFRESH_REUSE_INTERVAL: Duration = Duration::from_secs(60);

/// A resource that cannot be reconciled, and why.
#[derive(Debug, thiserror::Error)]
#[error("{kind} {namespace}/{name}: {problem}")]
pub struct ReconcileError {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    pub problem: Problem,
}

/// What is wrong with a resource.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    #[error("Secret {secret} has no key `{key}`")]
    MissingSecretKey { secret: String, key: String },
    #[error("Secret {0} not found")]
    MissingSecret(String),
    #[error("Secret {secret} key `{key}` is not UTF-8")]
    NotUtf8 { secret: String, key: String },
    #[error("spec.clientId `{spec}` differs from `{secret}` in the credentials Secret")]
    ConflictingClientId { spec: String, secret: String },
    #[error("invalid client id `{0}`: use 1 to 255 printable ASCII characters")]
    InvalidClientId(String),
    #[error("client id `{0}` starts with `dcr_`, which is reserved for dynamically registered clients")]
    ReservedClientId(String),
    #[error("a public client (tokenEndpointAuthMethod: none) cannot have a client secret")]
    PublicClientWithSecret,
    #[error("a public client (tokenEndpointAuthMethod: none) cannot use the client_credentials grant")]
    PublicClientCredentials,
    #[error("the authorization_code grant needs at least one redirect URI")]
    NoRedirectUri,
    #[error("{field}: `{uri}` is not an absolute URI without a fragment (RFC 6749 §3.1.2)")]
    InvalidUri { field: &'static str, uri: String },
    #[error("spec.allowedOrigins: `{0}` is not an origin (scheme://host[:port], as browsers send it in Origin)")]
    InvalidOrigin(String),
    #[error("spec.scopes: {0}")]
    InvalidScope(String),
    #[error("{field}: `{value}` is not a duration between 1s and {max}")]
    InvalidDuration { field: &'static str, value: String, max: &'static str },
    #[error("the password hash is not an argon2id PHC string (make one with `portcullis hash-password`)")]
    InvalidPasswordHash,
    #[error("spec.username must not be empty")]
    EmptyUsername,
    #[error("spec.federatedIdentities: each needs a connector and a subject")]
    EmptyFederatedIdentity,
    #[error(
        "the user has neither spec.passwordSecretRef nor spec.federatedIdentities, so nobody could sign in as them"
    )]
    NoWayToSignIn,
    #[error("{field}: `{name}` is a registered JWT or OpenID Connect claim; give the custom claim another name")]
    ReservedClaim { field: &'static str, name: String },
    #[error("spec.scopeClaims: `{0}` must be one scope token (RFC 6749 section 3.3) other than the standard scopes")]
    InvalidCustomScope(String),
    #[error("spec.idTokenClaims: `{0}` is neither a standard user claim nor a custom claim of spec.scopeClaims")]
    UnknownIdTokenClaim(String),
    #[error("spec.rsaBits must be 2048, 3072 or 4096")]
    InvalidRsaBits,
    #[error("a connector of type {0} needs its `spec.{0}` settings")]
    MissingConnectorSettings(&'static str),
    #[error("spec.oidc.issuer: `{0}` is not an https URL without query or fragment (http only on a loopback address)")]
    InvalidIssuer(String),
    #[error("spec.github.hostName: `{0}` is not a host name (such as github.example.com)")]
    InvalidHostName(String),
    #[error("spec.loginHintDomains: `{0}` is not a domain name (such as example.com)")]
    InvalidLoginHintDomain(String),
    #[error(
        "spec.ldap.host: `{0}` is not an ldaps:// or ldap:// URL of a host (plain ldap:// needs startTLS, except on a loopback address)"
    )]
    InvalidLdapHost(String),
    #[error("{field}: `{filter}` is not an LDAP filter in parentheses (RFC 4515)")]
    InvalidLdapFilter { field: &'static str, filter: String },
    #[error("Secret {secret} key `{key}` holds no PEM certificate")]
    InvalidCertificate { secret: String, key: String },
    #[error("spec.ldap: bindDNSecretRef and bindPasswordSecretRef go together")]
    HalfServiceAccount,
    #[error("{0}")]
    Secret(#[from] SecretError),
}

pub(crate) fn error(kind: &'static str, meta: &impl ResourceExt, problem: Problem) -> ReconcileError {
    ReconcileError {
        kind,
        namespace: meta.namespace().unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned()),
        name: meta.name_any(),
        problem,
    }
}

/// Reads a key of a Secret, preferring `stringData` as the API server does on write.
pub fn secret_value(secret: &Secret, key: &str) -> Result<Option<String>, Problem> {
    if let Some(value) = secret.string_data.as_ref().and_then(|d| d.get(key)) {
        return Ok(Some(value.clone()));
    }
    match secret.data.as_ref().and_then(|d| d.get(key)) {
        None => Ok(None),
        Some(bytes) => String::from_utf8(bytes.0.clone()).map(Some).map_err(|_| Problem::NotUtf8 {
            secret: secret.metadata.name.clone().unwrap_or_default(),
            key: key.to_owned(),
        }),
    }
}

/// The name of a client's credentials Secret.
pub fn credentials_secret_name(client: &OidcClient) -> String {
    client.spec.secret_name.clone().unwrap_or_else(|| format!("{}-credentials", client.name_any()))
}

/// Credentials generated for a confidential client whose Secret has none: the controller
/// writes them to the Secret, `portcullis dev` prints them once. `Debug` redacts the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct GeneratedCredentials {
    pub namespace: String,
    pub secret_name: String,
    pub client_id: String,
    pub client_secret: String,
}

impl std::fmt::Debug for GeneratedCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedCredentials")
            .field("namespace", &self.namespace)
            .field("secret_name", &self.secret_name)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish()
    }
}

/// The outcome of reconciling a client.
#[derive(Debug, Clone)]
pub struct ClientPlan {
    pub record: ClientRecord,
    pub generated: Option<GeneratedCredentials>,
}

/// Where a client's secret comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientSecret {
    /// A public client (`tokenEndpointAuthMethod: none`) has none.
    Public,
    /// The credentials Secret's `clientSecret`.
    Provided(SecretString),
    /// A confidential client with no secret given: the Secret does not exist
    /// (`secret_exists: false`), or exists without a `clientSecret`.
    Missing { secret_exists: bool },
}

/// What a client resource asks for, before its secret is hashed: the record (with no
/// `secret_hash` yet) and where the secret comes from. Hashing is left to the caller, so a
/// reconcile that finds the secret unchanged keeps the stored hash instead of making a
/// new one (argon2 salts every hash, so re-hashing would always rewrite the record).
#[derive(Debug, Clone)]
pub struct DesiredClient {
    pub record: ClientRecord,
    pub secret: ClientSecret,
}

/// Reconciles an `OidcClient` and its credentials Secret (if it exists) into a record,
/// hashing the secret, or generating one when none is given.
pub fn plan_client(client: &OidcClient, credentials: Option<&Secret>) -> Result<ClientPlan, ReconcileError> {
    let fail = |problem| error("OidcClient", client, problem);
    let DesiredClient { mut record, secret } = desired_client(client, credentials)?;
    let generated = match secret {
        ClientSecret::Public => None,
        ClientSecret::Provided(secret) => {
            record.secret_hash = Some(secrets::hash(secret.expose()).map_err(|e| fail(e.into()))?);
            None
        }
        ClientSecret::Missing { .. } => {
            let client_secret = secrets::generate_client_secret().map_err(|e| fail(e.into()))?;
            record.secret_hash = Some(secrets::hash_generated(&client_secret));
            Some(GeneratedCredentials {
                namespace: client.namespace().unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned()),
                secret_name: credentials_secret_name(client),
                client_id: record.client_id.clone(),
                client_secret,
            })
        }
    };
    Ok(ClientPlan { record, generated })
}

/// The client id a resource asks for: `spec.clientId`, else the credentials Secret's
/// `clientId`, else `metadata.name`; the two explicit ones must agree.
pub fn desired_client_id(client: &OidcClient, credentials: Option<&Secret>) -> Result<String, Problem> {
    let secret_id = credentials.map(|s| secret_value(s, CLIENT_ID_KEY)).transpose()?.flatten();
    let client_id = match (&client.spec.client_id, secret_id) {
        (Some(spec_id), Some(secret_id)) if *spec_id != secret_id => {
            return Err(Problem::ConflictingClientId { spec: spec_id.clone(), secret: secret_id });
        }
        (Some(spec_id), _) => spec_id.clone(),
        (None, Some(secret_id)) => secret_id,
        (None, None) => client.name_any(),
    };
    if client_id.is_empty() || client_id.len() > 255 || !client_id.bytes().all(|b| (0x20..=0x7E).contains(&b)) {
        return Err(Problem::InvalidClientId(client_id));
    }
    if client_id.starts_with(CLIENT_ID_PREFIX) {
        return Err(Problem::ReservedClientId(client_id));
    }
    Ok(client_id)
}

/// Validates an `OidcClient` and its credentials Secret (if it exists) into the record it
/// asks for, without hashing anything.
pub fn desired_client(client: &OidcClient, credentials: Option<&Secret>) -> Result<DesiredClient, ReconcileError> {
    let fail = |problem| error("OidcClient", client, problem);
    let spec = &client.spec;
    let client_id = desired_client_id(client, credentials).map_err(fail)?;
    let provided = credentials
        .map(|s| secret_value(s, CLIENT_SECRET_KEY))
        .transpose()
        .map_err(fail)?
        .flatten()
        .filter(|s| !s.is_empty());
    let public = spec.token_endpoint_auth_method == Some(TokenEndpointAuthMethod::None);
    if public && provided.is_some() {
        return Err(fail(Problem::PublicClientWithSecret));
    }
    if public && spec.grant_types.contains(&GrantType::ClientCredentials) {
        return Err(fail(Problem::PublicClientCredentials));
    }
    if spec.grant_types.contains(&GrantType::AuthorizationCode) && spec.redirect_uris.is_empty() {
        return Err(fail(Problem::NoRedirectUri));
    }
    for uri in &spec.redirect_uris {
        check_uri("spec.redirectUris", uri).map_err(fail)?;
    }
    for uri in &spec.post_logout_redirect_uris {
        check_uri("spec.postLogoutRedirectUris", uri).map_err(fail)?;
    }
    if let Some(uri) = &spec.backchannel_logout_uri {
        check_logout_uri("spec.backchannelLogoutUri", uri).map_err(fail)?;
    }
    if let Some(uri) = &spec.frontchannel_logout_uri {
        check_logout_uri("spec.frontchannelLogoutUri", uri).map_err(fail)?;
    }
    let scopes =
        Scope::parse(&spec.scopes.join(" ")).map_err(|e| fail(Problem::InvalidScope(e.description.into_owned())))?;
    check_scope_claims(&spec.scope_claims).map_err(fail)?;
    check_id_token_claims(spec).map_err(fail)?;
    // A custom scope the client maps claims to is one it may request.
    let scopes = Scope::from_tokens(scopes.iter().chain(spec.scope_claims.keys().map(String::as_str)));
    let access_token_ttl = spec
        .access_token_lifetime
        .as_deref()
        .map(|value| parse_duration("spec.accessTokenLifetime", value, MAX_ACCESS_TOKEN_LIFETIME, "24h"))
        .transpose()
        .map_err(fail)?;
    let refresh_reuse_interval = spec
        .refresh_token_reuse_interval
        .as_deref()
        .map(|value| parse_reuse_interval(value).map_err(fail))
        .transpose()?
        .unwrap_or(0);
    let secret = match provided {
        _ if public => ClientSecret::Public,
        Some(secret) => ClientSecret::Provided(SecretString::new(secret)),
        None => ClientSecret::Missing { secret_exists: credentials.is_some() },
    };
    let record = ClientRecord {
        client_id,
        client_name: spec.client_name.clone(),
        secret_hash: None,
        auth_method: spec.token_endpoint_auth_method,
        redirect_uris: spec.redirect_uris.clone(),
        post_logout_redirect_uris: spec.post_logout_redirect_uris.clone(),
        grant_types: spec.grant_types.clone(),
        scopes,
        roles: spec.roles.clone(),
        audience: spec.audience.clone(),
        access_token_ttl: access_token_ttl.map(|d| d.as_secs()),
        require_pkce: spec.require_pkce || public,
        skip_consent: spec.skip_consent,
        web_origins: client_web_origins(spec).map_err(fail)?,
        registration: None,
        policy: ClientPolicy {
            refresh_reuse_interval,
            scope_claims: spec.scope_claims.clone(),
            id_token_claims: spec.id_token_claims.clone(),
            native_application: spec.application_type == Some(ApplicationType::Native),
            backchannel_logout_uri: spec.backchannel_logout_uri.clone(),
            frontchannel_logout_uri: spec.frontchannel_logout_uri.clone(),
            frontchannel_logout_session_required: spec.frontchannel_logout_session_required,
            connectors: spec.connectors.clone(),
            connectors_only: spec.local_users == Some(false),
        },
    };
    Ok(DesiredClient { record, secret })
}

/// The client's CORS origins; every declared one must be an exact origin.
fn client_web_origins(spec: &OidcClientSpec) -> Result<Vec<String>, Problem> {
    let allowed = spec.allowed_origins.as_deref();
    if let Some(invalid) = allowed.into_iter().flatten().find(|origin| !cors::is_origin(origin)) {
        return Err(Problem::InvalidOrigin(invalid.clone()));
    }
    Ok(cors::web_origins(&spec.redirect_uris, &spec.post_logout_redirect_uris, allowed))
}

/// RFC 6749 §3.1.2: a redirection endpoint URI is absolute and has no fragment.
fn check_uri(field: &'static str, uri: &str) -> Result<(), Problem> {
    match Url::parse(uri) {
        Ok(url) if url.fragment().is_none() && !uri.contains('#') => Ok(()),
        _ => Err(Problem::InvalidUri { field, uri: uri.to_owned() }),
    }
}

/// [`redirect::is_logout_uri`]: `https`, or `http` to a loopback address.
fn check_logout_uri(field: &'static str, uri: &str) -> Result<(), Problem> {
    if redirect::is_logout_uri(uri) { Ok(()) } else { Err(Problem::InvalidUri { field, uri: uri.to_owned() }) }
}

pub(crate) fn parse_duration(
    field: &'static str,
    value: &str,
    max: Duration,
    max_text: &'static str,
) -> Result<Duration, Problem> {
    match humantime::parse_duration(value) {
        Ok(d) if d >= Duration::from_secs(1) && d <= max => Ok(d),
        _ => Err(Problem::InvalidDuration { field, value: value.to_owned(), max: max_text }),
    }
}

/// `spec.scopeClaims`: custom scope tokens, each mapped to claim names that are not
/// registered ones.
fn check_scope_claims(scope_claims: &BTreeMap<String, Vec<String>>) -> Result<(), Problem> {
    for (scope, names) in scope_claims {
        let single = Scope::parse(scope).is_ok_and(|parsed| parsed.iter().eq([scope.as_str()]));
        if !single || STANDARD_SCOPES.contains(&scope.as_str()) {
            return Err(Problem::InvalidCustomScope(scope.clone()));
        }
        check_claim_names("spec.scopeClaims", names.iter())?;
    }
    Ok(())
}

/// `spec.idTokenClaims`: each name is a claim some scope of this client can release.
fn check_id_token_claims(spec: &OidcClientSpec) -> Result<(), Problem> {
    let custom = |name: &str| spec.scope_claims.values().any(|names| names.iter().any(|n| n == name));
    match spec.id_token_claims.iter().flatten().find(|name| !is_standard_user_claim(name) && !custom(name)) {
        Some(name) => Err(Problem::UnknownIdTokenClaim(name.clone())),
        None => Ok(()),
    }
}

/// Refuses a custom claim named like a registered one.
fn check_claim_names<'a>(field: &'static str, mut names: impl Iterator<Item = &'a String>) -> Result<(), Problem> {
    match names.find(|name| RESERVED_CLAIMS.contains(&name.as_str())) {
        Some(name) => Err(Problem::ReservedClaim { field, name: name.clone() }),
        None => Ok(()),
    }
}

/// `spec.refreshTokenReuseInterval`: `0s` (strict) up to [`MAX_REFRESH_REUSE_INTERVAL`].
fn parse_reuse_interval(value: &str) -> Result<u64, Problem> {
    match humantime::parse_duration(value) {
        Ok(d) if d.is_zero() => Ok(0),
        _ => parse_duration("spec.refreshTokenReuseInterval", value, MAX_REFRESH_REUSE_INTERVAL, "60s")
            .map(|d| d.as_secs()),
    }
}

/// Reconciles an `OidcUser` and its password Secret into a directory record.
pub fn plan_user(user: &OidcUser, password_secret: Option<&Secret>) -> Result<UserRecord, ReconcileError> {
    let fail = |problem| error("OidcUser", user, problem);
    let spec = &user.spec;
    if spec.username.trim().is_empty() {
        return Err(fail(Problem::EmptyUsername));
    }
    check_claim_names("spec.claims", spec.claims.keys()).map_err(fail)?;
    if spec.password_secret_ref.is_none() && spec.federated_identities.is_empty() {
        return Err(fail(Problem::NoWayToSignIn));
    }
    let password_hash = match &spec.password_secret_ref {
        Some(reference) => {
            let secret = password_secret.ok_or_else(|| fail(Problem::MissingSecret(reference.name.clone())))?;
            let password_hash = secret_value(secret, &reference.key).map_err(fail)?.ok_or_else(|| {
                fail(Problem::MissingSecretKey { secret: reference.name.clone(), key: reference.key.clone() })
            })?;
            let password_hash = password_hash.trim().to_owned();
            if !secrets::is_argon2id_phc(&password_hash) {
                return Err(fail(Problem::InvalidPasswordHash));
            }
            password_hash
        }
        None => String::new(),
    };
    let mut claimed_subjects = Vec::with_capacity(spec.federated_identities.len());
    for identity in &spec.federated_identities {
        if identity.connector.trim().is_empty() || identity.subject.is_empty() {
            return Err(fail(Problem::EmptyFederatedIdentity));
        }
        claimed_subjects.push(federated_subject(&identity.connector, &identity.subject));
    }
    claimed_subjects.sort_unstable();
    claimed_subjects.dedup();
    Ok(UserRecord {
        subject: spec.subject.clone().unwrap_or_else(|| spec.username.clone()),
        username: spec.username.clone(),
        email: spec.email.clone(),
        email_verified: spec.email_verified,
        name: spec.name.clone(),
        given_name: spec.given_name.clone(),
        family_name: spec.family_name.clone(),
        groups: spec.groups.clone(),
        roles: spec.roles.clone(),
        client_roles: spec.client_roles.clone(),
        password_hash,
        disabled: spec.disabled,
        profile: user_profile(spec),
        custom_claims: spec.claims.clone(),
        claimed_subjects,
    })
}

/// The OIDC Core §5.1 claims of a user beyond names and email.
fn user_profile(spec: &OidcUserSpec) -> UserProfile {
    UserProfile {
        middle_name: spec.middle_name.clone(),
        nickname: spec.nickname.clone(),
        picture: spec.picture.clone(),
        website: spec.website.clone(),
        gender: spec.gender.clone(),
        birthdate: spec.birthdate.clone(),
        zoneinfo: spec.zoneinfo.clone(),
        locale: spec.locale.clone(),
        phone_number: spec.phone_number.clone(),
        phone_number_verified: spec.phone_number_verified,
        address: spec.address.as_ref().map(|a| Address {
            formatted: a.formatted.clone(),
            street_address: a.street_address.clone(),
            locality: a.locality.clone(),
            region: a.region.clone(),
            postal_code: a.postal_code.clone(),
            country: a.country.clone(),
        }),
        updated_at: None,
    }
}

/// OIDC Core §5.1 `updated_at` for a planned record: kept from `previous` (the record
/// last applied or stored for the same username) when nothing a relying party can see has
/// changed since, otherwise `now`. The password is not released, so changing it alone
/// keeps the time; a record never stamped before (written by an older version, or lost
/// with the store's data) is stamped `now`, which tells relying parties to read again
/// rather than to keep what they have.
pub fn stamp_updated_at(mut record: UserRecord, previous: Option<&UserRecord>, now: u64) -> UserRecord {
    let kept = previous.filter(|previous| same_released_information(previous, &record));
    record.profile.updated_at = Some(kept.and_then(|previous| previous.profile.updated_at).unwrap_or(now));
    record
}

/// Whether two records differ only in what [`stamp_updated_at`] does not count.
fn same_released_information(a: &UserRecord, b: &UserRecord) -> bool {
    let comparable = |record: &UserRecord| UserRecord {
        password_hash: String::new(),
        profile: UserProfile { updated_at: None, ..record.profile.clone() },
        ..record.clone()
    };
    comparable(a) == comparable(b)
}

/// Default time a key signs before the next one takes over.
pub const DEFAULT_ROTATION_PERIOD: Duration = Duration::from_secs(30 * 24 * 3600);

/// What a `SigningKey` asks for, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPlan {
    pub algorithm: SigningAlgorithm,
    pub rsa_bits: Option<u32>,
    pub rotation_period: Duration,
}

/// Validates a `SigningKey`.
pub fn plan_signing_key(key: &SigningKey) -> Result<KeyPlan, ReconcileError> {
    let fail = |problem| error("SigningKey", key, problem);
    let spec = &key.spec;
    if let Some(bits) = spec.rsa_bits
        && !matches!(bits, 2048 | 3072 | 4096)
    {
        return Err(fail(Problem::InvalidRsaBits));
    }
    let rotation_period = spec
        .rotation_period
        .as_deref()
        .map(|value| parse_duration("spec.rotationPeriod", value, Duration::from_secs(366 * 24 * 3600), "366d"))
        .transpose()
        .map_err(fail)?
        .unwrap_or(DEFAULT_ROTATION_PERIOD);
    Ok(KeyPlan { algorithm: spec.algorithm, rsa_bits: spec.rsa_bits, rotation_period })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;
    use crate::crd::{OidcClientSpec, SigningKeySpec};

    fn meta(name: &str) -> ObjectMeta {
        ObjectMeta { name: Some(name.into()), namespace: Some("team".into()), ..Default::default() }
    }

    fn client(f: impl FnOnce(&mut OidcClientSpec)) -> OidcClient {
        let mut spec: OidcClientSpec =
            serde_json::from_value(serde_json::json!({"redirectUris": ["https://app.example/cb"]})).unwrap();
        f(&mut spec);
        OidcClient { metadata: meta("app"), spec, status: None }
    }

    fn secret(pairs: &[(&str, &str)]) -> Secret {
        let data: BTreeMap<String, String> = pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        Secret { metadata: meta("app-credentials"), string_data: Some(data), ..Default::default() }
    }

    #[test]
    fn client_id_defaults_to_the_resource_name_then_secret_then_spec() {
        assert_eq!(plan_client(&client(|_| {}), None).unwrap().record.client_id, "app");
        let s = secret(&[("clientId", "from-secret"), ("clientSecret", "x")]);
        assert_eq!(plan_client(&client(|_| {}), Some(&s)).unwrap().record.client_id, "from-secret");
        let err = plan_client(&client(|c| c.client_id = Some("spec".into())), Some(&s)).unwrap_err();
        assert!(matches!(err.problem, Problem::ConflictingClientId { .. }));
        assert_eq!(
            err.to_string(),
            "OidcClient team/app: spec.clientId `spec` differs from `from-secret` in the credentials Secret"
        );
    }

    #[test]
    fn rfc7591_declared_clients_cannot_take_a_registered_client_id() {
        let err = plan_client(&client(|c| c.client_id = Some("dcr_abc".into())), None).unwrap_err();
        assert!(matches!(err.problem, Problem::ReservedClientId(_)));
    }

    #[test]
    fn secret_from_the_credentials_secret_is_stored_hashed() {
        let plan = plan_client(&client(|_| {}), Some(&secret(&[("clientSecret", "s3cret")]))).unwrap();
        let hash = plan.record.secret_hash.unwrap();
        assert!(plan.generated.is_none());
        assert!(!hash.contains("s3cret"));
        assert!(secrets::verify("s3cret", &hash));
    }

    #[test]
    fn confidential_client_without_secret_gets_a_generated_one() {
        let plan = plan_client(&client(|_| {}), None).unwrap();
        let generated = plan.generated.unwrap();
        assert_eq!((generated.namespace.as_str(), generated.secret_name.as_str()), ("team", "app-credentials"));
        let hash = plan.record.secret_hash.unwrap();
        assert_eq!(
            hash,
            secrets::hash_generated(&generated.client_secret),
            "its digest: 256 random bits need no argon2"
        );
        assert!(secrets::verify_client_secret(&generated.client_secret, &hash));
    }

    #[test]
    fn public_client_has_no_secret_requires_pkce_and_no_client_credentials() {
        let public = |c: &mut OidcClientSpec| c.token_endpoint_auth_method = Some(TokenEndpointAuthMethod::None);
        let plan = plan_client(&client(public), None).unwrap();
        assert!(plan.record.secret_hash.is_none() && plan.generated.is_none() && plan.record.require_pkce);
        let err = plan_client(&client(public), Some(&secret(&[("clientSecret", "x")]))).unwrap_err();
        assert!(matches!(err.problem, Problem::PublicClientWithSecret));
        let err = plan_client(
            &client(|c| {
                public(c);
                c.grant_types = vec![GrantType::ClientCredentials];
            }),
            None,
        )
        .unwrap_err();
        assert!(matches!(err.problem, Problem::PublicClientCredentials));
    }

    #[test]
    fn web_origins_come_from_the_redirect_uris_plus_allowed_origins_which_must_be_origins() {
        let plan = plan_client(&client(|_| {}), None).unwrap();
        assert_eq!(plan.record.web_origins, vec!["https://app.example".to_owned()]);
        let extra = client(|c| c.allowed_origins = Some(vec!["http://localhost:3000".into()]));
        let plan = plan_client(&extra, None).unwrap();
        assert_eq!(plan.record.web_origins, vec!["http://localhost:3000".to_owned(), "https://app.example".to_owned()]);
        let none = plan_client(&client(|c| c.allowed_origins = Some(vec![])), None).unwrap();
        assert!(none.record.web_origins.is_empty(), "allowedOrigins: [] turns the default off");
        let err = plan_client(&client(|c| c.allowed_origins = Some(vec!["https://spa.example/app".into()])), None);
        assert!(
            matches!(err.unwrap_err().problem, Problem::InvalidOrigin(origin) if origin == "https://spa.example/app")
        );
    }

    #[test]
    fn backchannel_logout_2_2_the_uri_is_https_or_http_to_a_loopback_address() {
        for good in
            ["https://rp.example/logout?x=1", "http://127.0.0.1:8080/bcl", "http://[::1]/bcl", "http://localhost/bcl"]
        {
            let plan = plan_client(&client(|c| c.backchannel_logout_uri = Some(good.into())), None).unwrap();
            assert_eq!(plan.record.policy.backchannel_logout_uri.as_deref(), Some(good));
        }
        for bad in ["http://rp.example/logout", "https://rp.example/logout#frag", "/logout", "ftp://127.0.0.1/x"] {
            let err = plan_client(&client(|c| c.backchannel_logout_uri = Some(bad.into())), None).unwrap_err();
            assert!(
                matches!(&err.problem, Problem::InvalidUri { field: "spec.backchannelLogoutUri", .. }),
                "{bad}: {err:?}"
            );
        }
        assert_eq!(plan_client(&client(|_| {}), None).unwrap().record.policy.backchannel_logout_uri, None);
    }

    #[test]
    fn frontchannel_logout_2_the_uri_is_https_or_http_to_a_loopback_address_and_session_required_is_kept() {
        for good in ["https://rp.example/fc?x=1", "http://127.0.0.1:8080/fc", "http://[::1]/fc", "http://localhost/fc"]
        {
            let spec = client(|c| {
                c.frontchannel_logout_uri = Some(good.into());
                c.frontchannel_logout_session_required = true;
            });
            let policy = plan_client(&spec, None).unwrap().record.policy;
            assert_eq!(policy.frontchannel_logout_uri.as_deref(), Some(good));
            assert!(policy.frontchannel_logout_session_required);
        }
        for bad in ["http://rp.example/fc", "https://rp.example/fc#frag", "/fc", "javascript:alert(1)"] {
            let err = plan_client(&client(|c| c.frontchannel_logout_uri = Some(bad.into())), None).unwrap_err();
            assert!(
                matches!(&err.problem, Problem::InvalidUri { field: "spec.frontchannelLogoutUri", .. }),
                "{bad}: {err:?}"
            );
        }
        let policy = plan_client(&client(|_| {}), None).unwrap().record.policy;
        assert_eq!((policy.frontchannel_logout_uri, policy.frontchannel_logout_session_required), (None, false));
    }

    #[test]
    fn an_unset_auth_method_is_kept_apart_from_an_explicit_basic() {
        assert_eq!(plan_client(&client(|_| {}), None).unwrap().record.auth_method, None);
        let basic = client(|c| c.token_endpoint_auth_method = Some(TokenEndpointAuthMethod::ClientSecretBasic));
        assert_eq!(
            plan_client(&basic, None).unwrap().record.auth_method,
            Some(TokenEndpointAuthMethod::ClientSecretBasic)
        );
    }

    #[test]
    fn rfc6749_3_1_2_redirect_uris_are_absolute_without_fragment() {
        for bad in ["/relative", "https://app.example/cb#frag", "not a uri"] {
            let err = plan_client(&client(|c| c.redirect_uris = vec![bad.into()]), None).unwrap_err();
            assert!(matches!(err.problem, Problem::InvalidUri { .. }), "{bad}");
        }
        let err = plan_client(&client(|c| c.redirect_uris.clear()), None).unwrap_err();
        assert!(matches!(err.problem, Problem::NoRedirectUri));
        let machine = client(|c| {
            c.redirect_uris.clear();
            c.grant_types = vec![GrantType::ClientCredentials];
        });
        assert!(plan_client(&machine, None).is_ok());
    }

    #[test]
    fn refresh_token_reuse_interval_is_strict_by_default_and_bounded() {
        let interval = |value: Option<&str>| {
            plan_client(&client(|c| c.refresh_token_reuse_interval = value.map(Into::into)), None)
                .map(|plan| plan.record.policy.refresh_reuse_interval)
        };
        assert_eq!(interval(None).unwrap(), 0);
        assert_eq!(interval(Some("0s")).unwrap(), 0);
        assert_eq!(interval(Some("3s")).unwrap(), 3);
        assert_eq!(interval(Some("1m")).unwrap(), 60);
        for bad in ["61s", "-1s", "soon", "500ms"] {
            let error = interval(Some(bad)).unwrap_err().to_string();
            assert!(error.contains("spec.refreshTokenReuseInterval"), "{bad}: {error}");
        }
    }

    #[test]
    fn access_token_lifetime_is_parsed_and_bounded() {
        let plan = plan_client(&client(|c| c.access_token_lifetime = Some("15m".into())), None).unwrap();
        assert_eq!(plan.record.access_token_ttl, Some(900));
        for bad in ["0s", "25h", "soon"] {
            assert!(plan_client(&client(|c| c.access_token_lifetime = Some(bad.into())), None).is_err(), "{bad}");
        }
    }

    fn user(secret_ref_key: &str) -> OidcUser {
        let mut user = OidcUser::test("alice");
        if let Some(reference) = user.spec.password_secret_ref.as_mut() {
            reference.key = secret_ref_key.into();
        }
        user
    }

    #[test]
    fn custom_claims_named_like_registered_claims_are_refused() {
        let hash = secrets::hash("pw").unwrap();
        let password = secret(&[("passwordHash", &hash)]);
        let mut alice = user("passwordHash");
        alice.spec.claims = BTreeMap::from([("organization".into(), serde_json::json!("Acme"))]);
        let record = plan_user(&alice, Some(&password)).unwrap();
        assert_eq!(record.custom_claims["organization"], "Acme");
        for reserved in ["sub", "email", "groups", "resource_access", "auth_time", "phone_number"] {
            alice.spec.claims.insert(reserved.into(), serde_json::json!("x"));
            let error = plan_user(&alice, Some(&password)).unwrap_err().to_string();
            assert!(error.contains(&format!("spec.claims: `{reserved}` is a registered")), "{error}");
            alice.spec.claims.remove(reserved);
        }
    }

    #[test]
    fn scope_claims_map_custom_scopes_to_unreserved_claim_names() {
        let org = BTreeMap::from([("org".to_owned(), vec!["organization".to_owned(), "department".to_owned()])]);
        let plan = plan_client(&client(|c| c.scope_claims = org.clone()), None).unwrap();
        assert_eq!(plan.record.policy.scope_claims, org);
        assert!(plan.record.scopes.contains("org"), "a mapped scope may be requested");
        let refused = |mapping: (&str, &str)| {
            let scope_claims = BTreeMap::from([(mapping.0.to_owned(), vec![mapping.1.to_owned()])]);
            plan_client(&client(|c| c.scope_claims = scope_claims), None).unwrap_err().to_string()
        };
        assert!(refused(("org", "iss")).contains("spec.scopeClaims: `iss` is a registered"));
        for scope in ["profile", "two words", "", "bad\\scope"] {
            assert!(refused((scope, "organization")).contains("must be one scope token"), "{scope}");
        }
    }

    #[test]
    fn id_token_claims_name_standard_user_claims_or_the_clients_custom_claims() {
        let org = BTreeMap::from([("org".to_owned(), vec!["organization".to_owned()])]);
        let names = |names: &[&str]| Some(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>());
        let plan = plan_client(
            &client(|c| {
                c.scope_claims = org.clone();
                c.id_token_claims = names(&["groups", "email_verified", "organization"]);
            }),
            None,
        )
        .unwrap();
        assert_eq!(plan.record.policy.id_token_claims, names(&["groups", "email_verified", "organization"]));
        assert_eq!(plan_client(&client(|_| {}), None).unwrap().record.policy.id_token_claims, None);
        for unknown in ["iss", "nonce", "department", "favourite_colour"] {
            let error = plan_client(&client(|c| c.id_token_claims = names(&[unknown])), None).unwrap_err().to_string();
            assert!(error.contains(&format!("spec.idTokenClaims: `{unknown}` is neither")), "{error}");
        }
    }

    #[test]
    fn user_profile_claims_are_taken_from_the_spec() {
        let hash = secrets::hash("pw").unwrap();
        let mut alice = user("passwordHash");
        alice.spec.picture = Some("https://img.example/a.png".into());
        alice.spec.locale = Some("en-GB".into());
        alice.spec.phone_number = Some("+44 20 7946 0000".into());
        alice.spec.phone_number_verified = true;
        alice.spec.address =
            serde_json::from_value(serde_json::json!({"streetAddress": "1 Main St", "postalCode": "N1"})).unwrap();
        let record = plan_user(&alice, Some(&secret(&[("passwordHash", &hash)]))).unwrap();
        let profile = record.profile;
        assert_eq!(profile.picture.as_deref(), Some("https://img.example/a.png"));
        assert_eq!(profile.locale.as_deref(), Some("en-GB"));
        assert_eq!((profile.phone_number.as_deref(), profile.phone_number_verified), (Some("+44 20 7946 0000"), true));
        let address = profile.address.unwrap();
        assert_eq!(
            (address.street_address.as_deref(), address.postal_code.as_deref()),
            (Some("1 Main St"), Some("N1"))
        );
        assert_eq!(address.country, None);
    }

    #[test]
    fn oidc_core_5_1_updated_at_moves_only_when_released_information_changes() {
        let planned = || {
            let mut record = UserRecord::fixture("alice", "alice");
            record.name = Some("Alice".into());
            record.password_hash = "$argon2id$first".into();
            record
        };
        let first = stamp_updated_at(planned(), None, 100);
        assert_eq!(first.profile.updated_at, Some(100), "never stamped: now");

        let unchanged = stamp_updated_at(planned(), Some(&first), 200);
        assert_eq!(unchanged, first, "nothing changed: the same record, so nothing is written");

        let new_password =
            stamp_updated_at(UserRecord { password_hash: "$argon2id$second".into(), ..planned() }, Some(&first), 300);
        assert_eq!(new_password.profile.updated_at, Some(100), "the password is not released information");

        for (changed, what) in [
            (UserRecord { name: Some("Alice B".into()), ..planned() }, "a name"),
            (UserRecord { groups: vec!["dev".into()], ..planned() }, "groups"),
            (
                UserRecord {
                    profile: UserProfile { locale: Some("fr".into()), ..UserProfile::default() },
                    ..planned()
                },
                "a profile claim",
            ),
            (
                UserRecord { custom_claims: BTreeMap::from([("org".into(), serde_json::json!("Acme"))]), ..planned() },
                "a custom claim",
            ),
        ] {
            assert_eq!(stamp_updated_at(changed, Some(&first), 400).profile.updated_at, Some(400), "{what}");
        }

        let unstamped =
            UserRecord { profile: UserProfile { updated_at: None, ..first.profile.clone() }, ..first.clone() };
        assert_eq!(
            stamp_updated_at(planned(), Some(&unstamped), 500).profile.updated_at,
            Some(500),
            "stored by an older version"
        );
    }

    #[test]
    fn user_needs_an_argon2id_hash_in_its_secret() {
        let hash = secrets::hash("pw").unwrap();
        let record = plan_user(&user("passwordHash"), Some(&secret(&[("passwordHash", &hash)]))).unwrap();
        assert_eq!((record.subject.as_str(), record.password_hash.as_str()), ("alice", hash.as_str()));
        assert!(matches!(plan_user(&user("passwordHash"), None).unwrap_err().problem, Problem::MissingSecret(_)));
        assert!(matches!(
            plan_user(&user("other"), Some(&secret(&[("passwordHash", &hash)]))).unwrap_err().problem,
            Problem::MissingSecretKey { .. }
        ));
        assert!(matches!(
            plan_user(&user("passwordHash"), Some(&secret(&[("passwordHash", "plain")]))).unwrap_err().problem,
            Problem::InvalidPasswordHash
        ));
    }

    #[test]
    fn a_user_claiming_upstream_identities_needs_no_password_and_gets_their_derived_subjects() {
        let identity = |connector: &str, subject: &str| crate::crd::FederatedIdentity {
            connector: connector.into(),
            subject: subject.into(),
        };
        let mut claiming = user("passwordHash");
        claiming.spec.password_secret_ref = None;
        claiming.spec.federated_identities =
            vec![identity("corp", "jane"), identity("github", "42"), identity("corp", "jane")];
        let record = plan_user(&claiming, None).unwrap();
        assert!(!record.has_password(), "no password: no password sign-in");
        let mut expected = vec![federated_subject("corp", "jane"), federated_subject("github", "42")];
        expected.sort_unstable();
        assert_eq!(record.claimed_subjects, expected, "sorted, each once");
        assert_eq!(record.subject, "alice", "its own subject stays its own");

        claiming.spec.federated_identities = vec![identity(" ", "jane")];
        assert!(matches!(plan_user(&claiming, None).unwrap_err().problem, Problem::EmptyFederatedIdentity));
        claiming.spec.federated_identities = vec![identity("corp", "")];
        assert!(matches!(plan_user(&claiming, None).unwrap_err().problem, Problem::EmptyFederatedIdentity));
        claiming.spec.federated_identities = vec![];
        assert!(matches!(plan_user(&claiming, None).unwrap_err().problem, Problem::NoWayToSignIn));
    }

    #[test]
    fn signing_key_plan_validates_size_and_rotation() {
        let key = |rsa_bits, rotation: &str| SigningKey {
            metadata: meta("main"),
            spec: SigningKeySpec {
                algorithm: SigningAlgorithm::RS256,
                rotation_period: Some(rotation.into()),
                rsa_bits,
                private_key_secret_ref: None,
            },
            status: None,
        };
        assert_eq!(plan_signing_key(&key(None, "720h")).unwrap().rotation_period, Duration::from_secs(720 * 3600));
        assert!(matches!(plan_signing_key(&key(Some(1024), "720h")).unwrap_err().problem, Problem::InvalidRsaBits));
        assert!(plan_signing_key(&key(None, "forever")).is_err());
    }

    #[test]
    fn generated_credentials_debug_redacts_the_secret() {
        let generated = GeneratedCredentials {
            namespace: "ns".into(),
            secret_name: "app-credentials".into(),
            client_id: "app".into(),
            client_secret: "generated-secret-value".into(),
        };
        let debug = format!("{generated:?}");
        assert!(debug.contains("app-credentials") && !debug.contains("generated-secret-value"), "{debug}");
    }
}
