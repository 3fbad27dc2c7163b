//! Signing in through an upstream identity provider (an `IdentityConnector`):
//! `GET /login/upstream` sends the browser to the upstream, `GET /callback/<connector>`
//! brings it back. For a directory (LDAP) connector `GET /login/upstream` shows our
//! password form instead, and `POST /login/upstream` checks it against the directory,
//! throttled like the local password form (its username budget per connector, the
//! address budget shared with every password form).
//!
//! Nothing is stored before the upstream has vouched for the person: the interaction
//! travels sealed in a cookie (path `/callback`, `SameSite=Lax` so the upstream's
//! top-level redirect carries it), sealed with the upstream `state` as its CSRF token and
//! bound to the browser like every form. Only the callback that carries that `state`, in
//! the browser that started it, within the form lifetime, opens it: this is the `state`
//! check of RFC 6749 §10.12 and OAuth 2.0 Security BCP §4.7. The `nonce` and PKCE verifier
//! (S256) travel in it too. The person signed in is kept in the store under their derived
//! subject ([`crate::protocol::federation`]) for as long as their sessions and grants.

use std::sync::Arc;

use std::net::SocketAddr;

use aws_lc_rs::aead::NONCE_LEN;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cookie::{Cookie, SameSite};

use super::browser::{self, BROWSER_COOKIE};
use super::device::{self, DeviceSignIn, Found};
use super::error::PageError;
use super::extract::BrowserParams;
use super::flow::{Interaction, PageResult, consent_page, issue_code, needs_consent};
use super::offer::offered_connector;
use super::pages::{self, DeviceFields, DirectoryFields, LoginPage};
use super::respond::{with_cookies, with_retry_after};
use super::sign_in::{self, budget_keys, reserve_attempt, start_session};
use super::state::Provider;
use super::text::{ENGLISH, Text};
use crate::audit::{self, AuditEvent, AuditFields};
use crate::connectors::{Attempt, ConnectorError, Vouched};
use crate::metrics::LoginResult;
use crate::model::{ClientRecord, ConnectorRecord, FederatedUser, Upstream, UserRecord};
use crate::protocol::endpoints;
use crate::protocol::federation::{admit, needs_recheck, with_claimant};
use crate::protocol::form::FormParams;
use crate::protocol::pending::{LIFETIME, PendingRequest, Resume, SealError, UpstreamAttempt};
use crate::protocol::redirect as redirects;
use crate::secrets;
use crate::store::StoreError;
use crate::vocabulary::{ErrorCode, OAuthError};

/// The cookie carrying the sealed interaction to the callback.
const UPSTREAM_COOKIE: &str = "portcullis_upstream";
/// The longest cookie browsers keep (RFC 6265 §6.1 asks for at least 4096 bytes per cookie,
/// name and attributes included).
const MAX_COOKIE_VALUE: usize = 3800;
/// Upstream errors that mean the person did not (or could not) sign in there: the client
/// is told `access_denied`, as if they had refused consent here.
const DENIALS: [&str; 5] =
    ["access_denied", "login_required", "consent_required", "interaction_required", "account_selection_required"];

/// What a sign-in through a connector was started from: a login page's interaction, or the
/// device page's sign-in form (RFC 8628 §3.3), which names a device authorization.
pub(super) enum Origin {
    Authorization(Interaction),
    Device(DeviceSignIn),
}

/// What a sign-in through a connector goes on with once the upstream has vouched.
enum Continuation {
    /// To consent, or back to the client with a code.
    Authorization(PendingRequest),
    /// To the device page's consent form.
    Device(Found),
}

impl Origin {
    /// The origin a form or link names, checked (browser, CSRF token, the client still
    /// there), with its client.
    async fn of_form(
        provider: &Provider,
        headers: &HeaderMap,
        form: &FormParams,
    ) -> Result<(Self, Arc<ClientRecord>), PageError> {
        if form.get("device").ok().flatten().is_some() {
            let (signing_in, client) = DeviceSignIn::of_form(provider, headers, form).await?;
            return Ok((Self::Device(signing_in), client));
        }
        let (interaction, client) = Interaction::of_form(provider, headers, form).await?;
        Ok((Self::Authorization(interaction), client))
    }

    /// The client's `login_hint`; a device authorization has none.
    fn login_hint(&self) -> Option<&str> {
        match self {
            Self::Authorization(interaction) => interaction.request().login_hint.as_deref(),
            Self::Device(_) => None,
        }
    }

    fn continuation(&self) -> Continuation {
        match self {
            Self::Authorization(interaction) => Continuation::Authorization(interaction.pending.clone()),
            Self::Device(signing_in) => Continuation::Device(signing_in.found.clone()),
        }
    }
}

/// `GET /login/upstream?connector=…&interaction=…&csrf_token=…` (or `device=…&user_code=…`
/// in place of `interaction`): the "Continue with …" link of the login page or the device
/// page.
pub async fn start(
    State(provider): State<Arc<Provider>>,
    headers: HeaderMap,
    BrowserParams(form): BrowserParams,
) -> Response {
    begin(&provider, &headers, &form).await.unwrap_or_else(|error| error.render(&provider))
}

async fn begin(provider: &Provider, headers: &HeaderMap, form: &FormParams) -> PageResult {
    let (origin, client) = Origin::of_form(provider, headers, form).await?;
    let name = form.get("connector").ok().flatten().ok_or(PageError::BadRequest("no connector named".into()))?;
    let connector = offered_connector(provider, &client, name)
        .await?
        .ok_or(PageError::BadRequest("this application offers no such sign-in".into()))?;
    send_upstream(provider, &client, &origin, &connector).await
}

/// Sends the browser to `connector`'s upstream to sign in there for `origin`, with a fresh
/// `state`, `nonce` and PKCE verifier sealed into the callback's cookie; for a directory,
/// shows its password form.
pub(super) async fn send_upstream(
    provider: &Provider,
    client: &ClientRecord,
    origin: &Origin,
    connector: &ConnectorRecord,
) -> PageResult {
    if let Upstream::Ldap(_) = connector.upstream {
        let username = origin.login_hint().unwrap_or_default();
        return Ok(directory_page(provider, client, origin, connector, username, None, StatusCode::OK));
    }
    let now = provider.clock.now();
    let (browser, resume) = match origin {
        Origin::Authorization(interaction) => {
            (interaction.pending.browser.clone(), Resume::Authorization(Box::new(interaction.pending.clone())))
        }
        Origin::Device(signing_in) => {
            let Found { key, user_code, .. } = signing_in.found.clone();
            (signing_in.browser_id.clone(), Resume::Device { key, user_code })
        }
    };
    let attempt = UpstreamAttempt {
        browser,
        state: secrets::random_token(32)?,
        issued_at: now,
        connector: connector.name.clone(),
        nonce: secrets::random_token(32)?,
        code_verifier: secrets::random_token(32)?,
        resume,
    };
    let sealed = match provider.sealer.seal_any(provider.store.as_ref(), now, &attempt).await? {
        Ok(sealed) if sealed.len() <= MAX_COOKIE_VALUE => sealed,
        Ok(_) | Err(SealError::TooLarge) => {
            let error = OAuthError::invalid_request("the request is too large to sign in through an identity provider");
            return Err(match origin {
                Origin::Authorization(interaction) => {
                    PageError::redirect(StatusCode::FOUND, interaction.request(), error)
                }
                Origin::Device(_) => PageError::Internal(error.description.into_owned()),
            });
        }
        Err(error @ SealError::Crypto) => return Err(PageError::Internal(error.to_string())),
    };
    let steps = Attempt {
        state: &attempt.state,
        nonce: &attempt.nonce,
        code_verifier: &attempt.code_verifier,
        login_hint: origin.login_hint(),
    };
    let url = provider
        .upstreams
        .authorization_url(&connector.upstream, &callback_uri(provider, &connector.name), &steps, now)
        .await
        .map_err(|error| upstream_failure(connector, &error))?;
    let location =
        HeaderValue::from_str(&url).map_err(|_| PageError::Upstream("an unusable authorization URL".into()))?;
    let response = (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
    Ok(with_cookies(response, [upstream_cookie(provider, &sealed, LIFETIME)]))
}

/// `GET /callback/<connector>`: the upstream's answer.
pub async fn callback(
    State(provider): State<Arc<Provider>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    BrowserParams(form): BrowserParams,
) -> Response {
    let response = finish(&provider, &name, &headers, &form).await.unwrap_or_else(|error| error.render(&provider));
    with_cookies(response, [upstream_cookie(&provider, "", 0)])
}

async fn finish(provider: &Provider, name: &str, headers: &HeaderMap, form: &FormParams) -> PageResult {
    let field = |name| form.get(name).ok().flatten();
    let sealed = browser::cookie(headers, UPSTREAM_COOKIE).ok_or(PageError::Expired)?;
    let state = field("state").ok_or(PageError::FormRefused)?;
    let browser_id = browser::cookie(headers, BROWSER_COOKIE);
    let now = provider.clock.now();
    let attempt: UpstreamAttempt =
        provider.sealer.open(provider.store.as_ref(), now, &sealed, browser_id.as_deref(), state).await?;
    if attempt.connector != name {
        return Err(PageError::FormRefused);
    }
    let (continuation, client) = match attempt.resume {
        Resume::Authorization(pending) => {
            let client = provider.store.client(&pending.request.client_id).await?.ok_or(PageError::Expired)?;
            if !redirects::is_registered(&client, &pending.request.redirect_uri) {
                return Err(PageError::Expired);
            }
            (Continuation::Authorization(*pending), client)
        }
        Resume::Device { key, user_code } => {
            let found = device::find_pending(provider, &user_code, &key).await?;
            let client = provider.store.client(&found.grant.client_id).await?.ok_or(PageError::Expired)?;
            (Continuation::Device(found), client)
        }
    };
    if let Some(error) = field("error") {
        tracing::info!(connector = name, upstream_error = error, "the upstream did not sign the person in");
        if DENIALS.contains(&error) {
            return Err(match &continuation {
                Continuation::Authorization(pending) => {
                    let denied =
                        OAuthError::new(ErrorCode::AccessDenied, "the identity provider did not sign the user in");
                    PageError::redirect(StatusCode::SEE_OTHER, &pending.request, denied)
                }
                Continuation::Device(_) => PageError::Refused(ENGLISH.upstream_denied.into()),
            });
        }
        return Err(PageError::Upstream(format!("connector {name}: the upstream answered error {error}")));
    }
    let code = field("code").ok_or(PageError::BadRequest("the identity provider sent no code".into()))?;
    let connector = provider.store.connector(name).await?.ok_or(PageError::Expired)?;
    let steps = Attempt { state, nonce: &attempt.nonce, code_verifier: &attempt.code_verifier, login_hint: None };
    let vouched = provider
        .upstreams
        .complete(&connector.upstream, &callback_uri(provider, name), code, &steps, now)
        .await
        .map_err(|error| upstream_failure(&connector, &error))?;
    sign_in_vouched(provider, headers, continuation, &client, &connector, vouched, now).await
}

/// Lets the person `connector` vouched for in (or not, with a page saying why), keeps them
/// under their derived subject, starts their session and goes on: to consent, back to the
/// client with a code, or to the device's consent form. How they proved themselves
/// upstream (a callback, a directory bind) is done.
async fn sign_in_vouched(
    provider: &Provider,
    headers: &HeaderMap,
    continuation: Continuation,
    client: &ClientRecord,
    connector: &ConnectorRecord,
    vouched: Vouched,
    now: u64,
) -> PageResult {
    let name = connector.name.as_str();
    let fields = AuditFields { client_id: Some(&client.client_id), ..AuditFields::default() };
    let mapped = admit(connector, &vouched.claims)
        .inspect_err(|refusal| {
            let reason = refusal.to_string();
            audit::emit(AuditEvent::LoginFailed, AuditFields { reason: Some(&reason), ..fields });
        })
        .map_err(|refusal| PageError::Refused(refusal.to_string()))?;
    let upstream_user = mapped.user_record(name);
    // A declared user keeps their own subject: nobody signs in as them through a connector.
    if provider.store.user_by_subject(&upstream_user.subject).await?.is_some() {
        return Err(PageError::Refused("this identity is already taken by a local user".into()));
    }
    let claimant = provider.store.user_claiming(&upstream_user.subject).await?;
    let user = with_claimant(upstream_user.clone(), claimant.as_deref())
        .inspect_err(|refusal| {
            let reason = refusal.to_string();
            audit::emit(AuditEvent::LoginFailed, AuditFields { reason: Some(&reason), ..fields });
        })
        .map_err(|refusal| PageError::Refused(refusal.to_string()))?;
    let federated = FederatedUser {
        upstream_credential: sealed_credential(provider, &upstream_user.subject, vouched.refresh_token),
        user: upstream_user,
        connector: name.to_owned(),
        upstream_subject: mapped.upstream_subject.clone(),
        checked_at: now,
    };
    provider.store.put_federated_user(&federated, now + kept_for(provider)).await?;
    let (session, cookie) = start_session(provider, headers, &user.subject, Some(&client.client_id), now).await?;
    let response = match continuation {
        Continuation::Authorization(pending) => {
            let request = pending.request.clone();
            if needs_consent(provider, client, &request, &session.subject).await? {
                let pending = PendingRequest { sid: Some(session.sid.clone()), issued_at: now, ..pending };
                consent_page(provider, client, &Interaction::seal(provider, pending).await?, &user)
            } else {
                issue_code(provider, StatusCode::SEE_OTHER, &request, &session).await?
            }
        }
        Continuation::Device(found) => device::consent_page(provider, &found, &session, &user).await?,
    };
    Ok(with_cookies(response, [cookie]))
}

/// `POST /login/upstream`: a directory connector's password form.
pub async fn directory(
    State(provider): State<Arc<Provider>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    BrowserParams(form): BrowserParams,
) -> Response {
    let address = browser::client_ip(peer);
    let result = async {
        let (origin, client) = Origin::of_form(&provider, &headers, &form).await?;
        let name = form.get("connector").ok().flatten().ok_or(PageError::FormRefused)?;
        let connector = offered_connector(&provider, &client, name)
            .await?
            .filter(|connector| matches!(connector.upstream, Upstream::Ldap(_)))
            .ok_or(PageError::FormRefused)?;
        check_directory(&provider, &headers, &origin, &client, &connector, &form, &address).await
    };
    result.await.unwrap_or_else(|error| error.render(&provider))
}

/// Checks the form's username and password against `connector`'s directory, throttled,
/// then signs the person in as [`sign_in_vouched`] does. A wrong password, an unknown user
/// and an ambiguous one get the same answer; a directory that cannot be reached gets the
/// form again saying so (and the other ways to sign in keep working).
async fn check_directory(
    provider: &Provider,
    headers: &HeaderMap,
    origin: &Origin,
    client: &ClientRecord,
    connector: &ConnectorRecord,
    form: &FormParams,
    address: &str,
) -> PageResult {
    let username = sign_in::username(form);
    let again = |error, status| directory_page(provider, client, origin, connector, &username, Some(error), status);
    let keys = budget_keys(Some(&connector.name), &username, address);
    let client_id = Some(client.client_id.as_str());
    if let Some(retry_after) = reserve_attempt(provider, &keys, client_id).await? {
        return Ok(with_retry_after(again(ENGLISH.throttled, StatusCode::TOO_MANY_REQUESTS), retry_after));
    }
    let password = secrets::SecretString::new(form.get("password").ok().flatten().unwrap_or(""));
    let failed = |reason: &str| {
        provider.metrics.login(LoginResult::Failure);
        audit::emit(AuditEvent::LoginFailed, AuditFields { client_id, reason: Some(reason), ..AuditFields::default() });
    };
    let vouched = match provider.upstreams.authenticate(&connector.upstream, &username, &password).await {
        Ok(vouched) => vouched,
        Err(ConnectorError::WrongCredentials) => {
            failed("bad_credentials");
            return Ok(again(ENGLISH.wrong_credentials, StatusCode::OK));
        }
        Err(error) => {
            tracing::warn!(connector = %connector.name, %error, "a directory sign-in could not be checked");
            failed("directory_unavailable");
            return Ok(again(ENGLISH.directory_unavailable, StatusCode::OK));
        }
    };
    provider.store.refund(&keys.each_ref().map(String::as_str)).await?;
    let now = provider.clock.now();
    sign_in_vouched(provider, headers, origin.continuation(), client, connector, vouched, now).await
}

/// The password form of directory `connector` for `origin`, with `username` filled in and
/// `error` said after a failed attempt.
fn directory_page(
    provider: &Provider,
    client: &ClientRecord,
    origin: &Origin,
    connector: &ConnectorRecord,
    username: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let stylesheet = provider.config.browser_path(endpoints::STYLESHEET);
    let action = provider.config.browser_path(endpoints::LOGIN_UPSTREAM);
    let username_prompt = match &connector.upstream {
        Upstream::Ldap(ldap) => ldap.username_prompt.as_deref(),
        Upstream::Oidc(_) | Upstream::GitHub(_) => None,
    };
    let page = LoginPage {
        text: &ENGLISH,
        stylesheet: &stylesheet,
        action: &action,
        client_name: client.client_name.as_deref().unwrap_or(&client.client_id),
        interaction: "",
        csrf_token: "",
        username,
        error,
        device: None,
        connectors: Vec::new(),
        local_users: true,
        directory: Some(DirectoryFields {
            connector: &connector.name,
            label: &connector.display_name,
            username_prompt,
        }),
    };
    match origin {
        Origin::Authorization(interaction) => {
            let page = LoginPage {
                text: Text::for_ui_locales(interaction.request().ui_locales.as_deref()),
                interaction: &interaction.sealed,
                csrf_token: &interaction.pending.csrf_token,
                ..page
            };
            pages::render_with_form_target(status, &page, &interaction.request().redirect_uri)
        }
        Origin::Device(signing_in) => {
            let (csrf_token, user_code) = signing_in.fields();
            let device = DeviceFields { key: &signing_in.found.key, user_code: &user_code };
            pages::render(status, &LoginPage { csrf_token: &csrf_token, device: Some(device), ..page })
        }
    }
}

/// The person a refresh for `subject` acts for: a declared user as they are; a person
/// signed in through a connector as the upstream vouches for them now. Once the
/// connector's `refreshInterval` has passed since the upstream last vouched, it is asked
/// again with its refresh token (userinfo too when the connector reads groups there) and
/// the claims are mapped afresh. `None`: the person, their connector or the upstream's
/// refresh token is gone, or the upstream no longer vouches for them (or cannot be asked):
/// the refresh family ends and the person signs in again. Failing closed is the point: a
/// person removed upstream, or out of the allowed groups, keeps no tokens here.
pub(super) async fn refreshed_user(provider: &Provider, subject: &str) -> Result<Option<Arc<UserRecord>>, StoreError> {
    if let Some(user) = provider.store.user_by_subject(subject).await? {
        return Ok(Some(user));
    }
    let Some(federated) = provider.store.federated_user(subject).await? else { return Ok(None) };
    let Some(connector) = provider.store.connector(&federated.connector).await? else {
        tracing::info!(connector = %federated.connector, "the connector of a refreshing person is gone; the refresh family ends");
        return Ok(None);
    };
    let lapsed = |reason: &str| {
        tracing::info!(connector = %connector.name, reason, "the upstream no longer vouches for a refreshing person; the refresh family ends");
        let fields = AuditFields { subject: Some(subject), reason: Some(reason), ..AuditFields::default() };
        audit::emit(AuditEvent::LoginFailed, fields);
        Ok(None)
    };
    let claimant = provider.store.user_claiming(subject).await?;
    let claimed = |user: UserRecord| with_claimant(user, claimant.as_deref()).map(Arc::new);
    let now = provider.clock.now();
    if !needs_recheck(federated.checked_at, connector.refresh_interval, now) {
        return match claimed(federated.user) {
            Ok(user) => Ok(Some(user)),
            Err(refusal) => lapsed(&refusal.to_string()),
        };
    }
    let credential = federated
        .upstream_credential
        .as_deref()
        .and_then(|sealed| provider.credential_keys.as_ref()?.open(sealed, subject));
    let Some(credential) = credential else {
        return lapsed("no upstream credential to ask the upstream again with");
    };
    let redirect_uri = callback_uri(provider, &connector.name);
    let vouched = match provider
        .upstreams
        .recheck(&connector.upstream, &redirect_uri, &credential, &federated.upstream_subject, now)
        .await
    {
        Ok(vouched) => vouched,
        Err(error) => return lapsed(&error.to_string()),
    };
    let mapped = match admit(&connector, &vouched.claims) {
        Ok(mapped) => mapped,
        Err(refusal) => return lapsed(&refusal.to_string()),
    };
    let upstream_user = mapped.user_record(&connector.name);
    let user = match claimed(upstream_user.clone()) {
        Ok(user) => user,
        Err(refusal) => return lapsed(&refusal.to_string()),
    };
    // An upstream that does not rotate its refresh token keeps the one it gave.
    let credential = vouched.refresh_token.or_else(|| Some(credential.to_string()));
    let renewed = FederatedUser {
        upstream_credential: sealed_credential(provider, subject, credential),
        user: upstream_user,
        checked_at: now,
        ..federated
    };
    provider.store.put_federated_user(&renewed, now + kept_for(provider)).await?;
    Ok(Some(user))
}

/// `credential` sealed for the store as the credential of `subject`; nothing without keys
/// (or should sealing fail): an upstream credential is never kept in the clear.
fn sealed_credential(provider: &Provider, subject: &str, credential: Option<String>) -> Option<String> {
    let credential = secrets::SecretString::new(credential?);
    let keys = provider.credential_keys.as_ref()?;
    let nonce = secrets::random_bytes(NONCE_LEN).ok()?.try_into().ok()?;
    keys.seal(credential.expose(), subject, nonce)
        .inspect_err(|error| tracing::warn!(%error, "an upstream credential is not kept"))
        .ok()
}

/// How long a person signed in through a connector is kept after the upstream last vouched
/// for them: as long as a session or a refresh family started then may live.
fn kept_for(provider: &Provider) -> u64 {
    provider.config.session_ttl.max(provider.config.refresh_token_ttl)
}

/// Where the upstream sends the browser back for `connector`: what is registered there.
pub fn callback_uri(provider: &Provider, connector: &str) -> String {
    format!("{}{}/{connector}", provider.config.issuer.trim_end_matches('/'), endpoints::CALLBACK)
}

/// The cookie carrying `sealed` to the callback path only, for `max_age` seconds (0
/// deletes it).
fn upstream_cookie(provider: &Provider, sealed: &str, max_age: u64) -> Option<HeaderValue> {
    let cookie = Cookie::build((UPSTREAM_COOKIE, sealed))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(provider.config.secure_cookies())
        .path(provider.config.browser_path(endpoints::CALLBACK))
        .max_age(cookie::time::Duration::seconds(i64::try_from(max_age).unwrap_or(i64::MAX)))
        .build();
    HeaderValue::from_str(&cookie.to_string()).ok()
}

/// An upstream step failed: logged with its detail, a generic page for the person.
fn upstream_failure(connector: &ConnectorRecord, error: &ConnectorError) -> PageError {
    PageError::Upstream(format!("connector {}: {error}", connector.name))
}
