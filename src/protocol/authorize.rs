//! The authorization endpoint (RFC 6749 §4.1.1, OIDC Core §3.1.2.1) as ordered stages:
//!
//! 1. [`client_id`] — which client is asking; errors go to the error page.
//! 2. [`redirect_uri`] — the caller looks the client up, then the redirect URI is verified
//!    for it (see [`super::redirect`]); errors still go to the error page.
//! 3. [`validate`] — every other rule, in order; errors are redirected to the verified URI
//!    with the client's `state`.
//!
//! Then, once the user's session is known: [`needs_login`] and, for `prompt=none`,
//! [`interaction_error_for_prompt_none`] (OIDC Core §3.1.2.3, §3.1.2.6).
//!
//! Unknown parameters are ignored (RFC 6749 §3.1); `display`, `claims_locales` and
//! `acr_values` are accepted and ignored (OIDC Core §3.1.2.1, §5.5.1.1); `ui_locales` is
//! kept for choosing the language of the pages; `claims` is read as OIDC Core §5.5 asks.

use super::form::FormParams;
use super::redirect;
use super::{pending, pkce, userinfo};
use crate::model::ClientRecord;
use crate::vocabulary::{AuthorizationRequest, ClaimsRequest};
use crate::vocabulary::{ErrorCode, OAuthError};
use crate::vocabulary::{GrantType, Prompt, ResponseMode, ResponseType, Scope};

/// A stage-3 error: sent to the verified redirect URI, echoing the client's `state`
/// (RFC 6749 §4.1.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectableError {
    pub error: OAuthError,
    pub redirect_uri: String,
    pub state: Option<String>,
    /// The mode the request asked for, when it named a supported one; errors follow it.
    pub response_mode: ResponseMode,
}

impl RedirectableError {
    /// The parameters carrying this error (RFC 6749 §4.1.2.1, RFC 9207 §2).
    pub fn params(&self, issuer: &str) -> redirect::ResponseParams {
        redirect::error_params(&self.error, self.state.as_deref(), issuer)
    }
}

/// Stage 1, RFC 6749 §4.1.1: the `client_id`. A missing or repeated `client_id` leaves no
/// client whose redirect URI could be trusted, so the error is rendered, not redirected.
pub fn client_id(params: &FormParams) -> Result<&str, OAuthError> {
    params.require("client_id")
}

/// Stage 2, RFC 6749 §3.1.2.3 and OIDC Core §3.1.2.1: the redirect URI, verified for the
/// client the caller looked up. Errors are rendered, not redirected (RFC 6749 §4.1.2.1).
pub fn redirect_uri(params: &FormParams, client: &ClientRecord) -> Result<String, OAuthError> {
    let requested = params.get("redirect_uri")?;
    redirect::resolve_redirect_uri(client, requested, is_openid_request(params)).map_err(OAuthError::from)
}

/// Whether the request asks for `openid` (OIDC Core §3.1.2.1), read leniently before the
/// scope is validated. A repeated `scope` counts as OpenID, the stricter reading.
fn is_openid_request(params: &FormParams) -> bool {
    match params.get("scope") {
        Ok(scope) => scope.unwrap_or_default().split(' ').any(|token| token == "openid"),
        Err(_) => true,
    }
}

/// Stage 3, OIDC Core §3.1.2.2: validates everything else, in order. `state` is read first
/// so that it is echoed even when a later check fails; a repeated `state` echoes none.
pub fn validate(
    params: &FormParams,
    client: &ClientRecord,
    redirect_uri: String,
) -> Result<AuthorizationRequest, RedirectableError> {
    let state = params.get("state").ok().flatten().map(str::to_owned);
    // Read leniently like `state`: an error follows the requested mode when it is one we
    // support, else the default (OAuth 2.0 Form Post Response Mode §2).
    let response_mode = params.get("response_mode").ok().flatten().and_then(|mode| mode.parse().ok());
    checks(params, client, &redirect_uri, state.as_deref()).map_err(|error| RedirectableError {
        error,
        redirect_uri,
        state,
        response_mode: response_mode.unwrap_or_default(),
    })
}

/// The ordered checks of stage 3; each line is one rule.
fn checks(
    params: &FormParams,
    client: &ClientRecord,
    redirect_uri: &str,
    state: Option<&str>,
) -> Result<AuthorizationRequest, OAuthError> {
    // RFC 6749 §3.1: a repeated `state` is refused like any other repeated parameter.
    params.get("state")?;
    pending::check_sizes(params)?;
    check_no_request_object(params)?;
    check_response_type(params)?;
    check_grant_allowed(client)?;
    let response_mode = check_response_mode(params)?;
    let scope = check_scope(params, client)?;
    let prompt = Prompt::parse(params.get("prompt")?)?;
    let max_age = check_max_age(params.get("max_age")?)?;
    let code_challenge = pkce::check_challenge(
        params.get("code_challenge")?,
        params.get("code_challenge_method")?,
        client.require_pkce,
    )?;
    let claims = check_claims(params, client)?;
    let owned = |name: &str| params.get(name).map(|v| v.map(str::to_owned));
    Ok(AuthorizationRequest {
        client_id: client.client_id.clone(),
        redirect_uri: redirect_uri.to_owned(),
        scope,
        state: state.map(str::to_owned),
        nonce: owned("nonce")?,
        prompt,
        max_age,
        code_challenge,
        login_hint: owned("login_hint")?,
        ui_locales: owned("ui_locales")?,
        id_token_hint: owned("id_token_hint")?,
        response_mode,
        claims,
    })
}

/// OIDC Core §5.5: the `claims` request, malformed JSON being `invalid_request`; the claims
/// that could never be released to this client are dropped.
fn check_claims(params: &FormParams, client: &ClientRecord) -> Result<ClaimsRequest, OAuthError> {
    let Some(raw) = params.get("claims")? else {
        return Ok(ClaimsRequest::default());
    };
    let mut claims = ClaimsRequest::parse(raw)?;
    claims.retain(|name| userinfo::requestable(client, name));
    Ok(claims)
}

/// Whether a parameter was sent with a value (a repeated one counts).
fn present(params: &FormParams, name: &str) -> bool {
    !matches!(params.get(name), Ok(None))
}

/// OIDC Core §6.1, §6.2 and §3.1.2.6: request objects are not supported.
fn check_no_request_object(params: &FormParams) -> Result<(), OAuthError> {
    if present(params, "request") {
        return Err(OAuthError::new(ErrorCode::RequestNotSupported, "the request parameter is not supported"));
    }
    if present(params, "request_uri") {
        return Err(OAuthError::new(ErrorCode::RequestUriNotSupported, "the request_uri parameter is not supported"));
    }
    Ok(())
}

/// RFC 6749 §4.1.1 and §4.1.2.1: `response_type` is required and only `code` is supported.
fn check_response_type(params: &FormParams) -> Result<(), OAuthError> {
    match params.require("response_type")?.parse() {
        Ok(ResponseType::Code) => Ok(()),
        Err(_) => Err(OAuthError::new(ErrorCode::UnsupportedResponseType, "only response_type=code is supported")),
    }
}

/// RFC 6749 §4.1.2.1 `unauthorized_client`: the client must be registered for the
/// authorization code grant (RFC 7591 §2 `grant_types`).
fn check_grant_allowed(client: &ClientRecord) -> Result<(), OAuthError> {
    if client.allows_grant(GrantType::AuthorizationCode) {
        Ok(())
    } else {
        Err(OAuthError::unauthorized_client("the client is not allowed to use the authorization_code grant"))
    }
}

/// OAuth 2.0 Multiple Response Type Encoding Practices §2.1 and Form Post Response Mode §2:
/// `query` (the default for `code`) or `form_post`. `fragment` is refused: it would hand the
/// code to scripts of the client's page and is never needed for `code`.
fn check_response_mode(params: &FormParams) -> Result<ResponseMode, OAuthError> {
    match params.get("response_mode")?.map(str::parse) {
        None => Ok(ResponseMode::default()),
        Some(Ok(mode)) => Ok(mode),
        Some(Err(_)) => Err(OAuthError::invalid_request("response_mode must be query or form_post")),
    }
}

/// OIDC Core §3.1.2.1 (`openid` is required) and RFC 6749 §3.3 (the server may ignore
/// scopes it does not grant): unknown and disallowed scopes are dropped.
fn check_scope(params: &FormParams, client: &ClientRecord) -> Result<Scope, OAuthError> {
    let requested = Scope::parse(params.get("scope")?.unwrap_or_default())?;
    if !requested.contains("openid") {
        return Err(OAuthError::invalid_scope("scope must include openid"));
    }
    let granted = requested.intersection(&client.scopes);
    if !granted.contains("openid") {
        return Err(OAuthError::invalid_scope("the client is not allowed the openid scope"));
    }
    Ok(granted)
}

/// OIDC Core §3.1.2.1: `max_age` is a non-negative integer number of seconds.
fn check_max_age(raw: Option<&str>) -> Result<Option<u64>, OAuthError> {
    let Some(raw) = raw else { return Ok(None) };
    if !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(OAuthError::invalid_request("max_age must be a non-negative integer"));
    }
    raw.parse().map(Some).map_err(|_| OAuthError::invalid_request("max_age must be a non-negative integer"))
}

/// OIDC Core §3.1.2.1 (`prompt=login`, `max_age`) and §3.1.2.3: whether the user must
/// (re-)authenticate. True without a session (`auth_time` is `None`), for `prompt=login`,
/// for `max_age=0` (equivalent to `prompt=login`), and when more than `max_age` seconds
/// have passed since `auth_time`.
///
/// `prompt=login` and `max_age=0` are satisfied by one login: the caller skips this check
/// once the user has authenticated for this very request, or the user would loop.
pub fn needs_login(prompt: &Prompt, max_age: Option<u64>, auth_time: Option<u64>, now: u64) -> bool {
    let Some(auth_time) = auth_time else { return true };
    if prompt.login {
        return true;
    }
    match max_age {
        None => false,
        Some(0) => true,
        Some(max_age) => now.saturating_sub(auth_time) > max_age,
    }
}

/// OIDC Core §3.1.2.1 and §3.1.2.6: with `prompt=none` the OP must not show any page, so a
/// needed login is `login_required` and a needed consent `consent_required`.
pub fn interaction_error_for_prompt_none(needs_login: bool, needs_consent: bool) -> Option<OAuthError> {
    if needs_login {
        Some(OAuthError::new(ErrorCode::LoginRequired, "the user must log in, which prompt=none does not allow"))
    } else if needs_consent {
        Some(OAuthError::new(ErrorCode::ConsentRequired, "the user must consent, which prompt=none does not allow"))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CB: &str = "https://app.example/cb";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    const PKCE: &str = "code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256";

    fn client() -> ClientRecord {
        ClientRecord::fixture("app", &[CB], "openid profile email")
    }

    fn parse(body: &str) -> FormParams {
        FormParams::parse(body.as_bytes()).unwrap()
    }

    /// A valid request with `extra` appended.
    fn form(extra: &str) -> FormParams {
        parse(&format!("client_id=app&response_type=code&scope=openid&state=st&{PKCE}&{extra}"))
    }

    fn accepted(params: &FormParams, client: &ClientRecord) -> AuthorizationRequest {
        validate(params, client, CB.into()).unwrap()
    }

    /// The error of a refused request, checking it goes to the verified URI.
    fn refused(params: &FormParams, client: &ClientRecord) -> (ErrorCode, String, Option<String>) {
        let err = validate(params, client, CB.into()).unwrap_err();
        assert_eq!(err.redirect_uri, CB);
        (err.error.code, err.error.description.into_owned(), err.state)
    }

    /// `extra` makes an otherwise valid request fail with `code` and `description`, echoing state.
    fn assert_refused(extra: &str, code: ErrorCode, description: &str) {
        assert_eq!(refused(&form(extra), &client()), (code, description.into(), Some("st".into())), "{extra}");
    }

    #[test]
    fn oidc_core_5_5_claims_keeps_the_releasable_names_and_refuses_malformed_json() {
        let request =
            accepted(&form("claims=%7B%22id_token%22%3A%7B%22email%22%3Anull%2C%22iss%22%3Anull%7D%7D"), &client());
        assert_eq!(request.claims.id_token.iter().collect::<Vec<_>>(), ["email"]);
        assert!(request.claims.userinfo.is_empty());
        assert!(accepted(&form(""), &client()).claims.is_empty());
        assert_refused("claims=%7B", ErrorCode::InvalidRequest, "claims is not a JSON object");
        let too_long = format!("claims={}", "a".repeat(2049));
        assert_refused(&too_long, ErrorCode::InvalidRequest, "claims is longer than 2048 bytes");
    }

    #[test]
    fn rfc6749_4_1_1_client_id_is_required_and_single() {
        assert_eq!(client_id(&form("")).unwrap(), "app");
        for body in ["response_type=code", "client_id=a&client_id=b"] {
            assert_eq!(client_id(&parse(body)).unwrap_err().code, ErrorCode::InvalidRequest);
        }
    }

    #[test]
    fn oidc_core_3_1_2_1_openid_request_without_redirect_uri_is_refused() {
        assert_eq!(redirect_uri(&form(""), &client()).unwrap_err().description, "redirect_uri is required");
        assert_eq!(redirect_uri(&parse("scope=profile"), &client()).unwrap(), CB);
        let dup = form(&format!("redirect_uri={CB}&redirect_uri={CB}"));
        assert_eq!(redirect_uri(&dup, &client()).unwrap_err().code, ErrorCode::InvalidRequest);
        let evil = form("redirect_uri=https://evil.example/cb");
        assert_eq!(
            redirect_uri(&evil, &client()).unwrap_err().description,
            "redirect_uri is not registered for this client"
        );
    }

    #[test]
    fn oidc_core_3_1_2_1_valid_request_is_accepted() {
        let req = accepted(&form("nonce=n&prompt=consent&max_age=300&login_hint=ann&id_token_hint=h"), &client());
        assert_eq!((req.client_id.as_str(), req.redirect_uri.as_str()), ("app", CB));
        assert_eq!((req.state.as_deref(), req.nonce.as_deref()), (Some("st"), Some("n")));
        assert_eq!(req.prompt, Prompt { none: false, login: false, consent: true });
        assert_eq!((req.max_age, req.code_challenge.as_deref()), (Some(300), Some(CHALLENGE)));
        assert_eq!((req.login_hint.as_deref(), req.id_token_hint.as_deref()), (Some("ann"), Some("h")));
        assert_eq!(req.scope.to_string(), "openid");
    }

    #[test]
    fn rfc6749_4_1_2_1_state_is_echoed_when_a_later_check_fails() {
        assert_refused(
            "prompt=none+login",
            ErrorCode::InvalidRequest,
            "prompt=none must not be combined with other values",
        );
        let params = parse(&format!("response_type=code&scope=openid&{PKCE}"));
        assert_eq!(accepted(&params, &client()).state, None);
    }

    #[test]
    fn rfc6749_3_1_repeated_state_is_invalid_request_without_state() {
        let (code, description, state) = refused(&form("state=other"), &client());
        assert_eq!(
            (code, description.as_str(), state),
            (ErrorCode::InvalidRequest, "parameter `state` is included more than once", None)
        );
    }

    #[test]
    fn oidc_core_6_request_objects_are_not_supported_and_checked_first() {
        assert_refused(
            "request=eyJ&response_type=token",
            ErrorCode::RequestNotSupported,
            "the request parameter is not supported",
        );
        assert_refused(
            "request_uri=https://x",
            ErrorCode::RequestUriNotSupported,
            "the request_uri parameter is not supported",
        );
    }

    #[test]
    fn rfc6749_4_1_1_response_type_is_required() {
        let (code, description, _) = refused(&parse("scope=openid&state=st"), &client());
        assert_eq!(
            (code, description.as_str()),
            (ErrorCode::InvalidRequest, "missing required parameter `response_type`")
        );
    }

    #[test]
    fn rfc6749_4_1_2_1_other_response_types_are_unsupported_response_type() {
        for rt in ["token", "id_token", "code+id_token", "CODE"] {
            let (code, description, _) = refused(&parse(&format!("response_type={rt}&scope=openid")), &client());
            assert_eq!(
                (code, description.as_str()),
                (ErrorCode::UnsupportedResponseType, "only response_type=code is supported")
            );
        }
    }

    #[test]
    fn rfc6749_4_1_2_1_client_without_the_code_grant_is_unauthorized_client() {
        let mut c = client();
        c.grant_types = vec![GrantType::ClientCredentials];
        let (code, description, _) = refused(&form(""), &c);
        assert_eq!(
            (code, description.as_str()),
            (ErrorCode::UnauthorizedClient, "the client is not allowed to use the authorization_code grant")
        );
    }

    #[test]
    fn oauth_response_modes_2_1_query_and_form_post_are_supported() {
        for mode in ["fragment", "Form_Post", "web_message"] {
            assert_refused(
                &format!("response_mode={mode}"),
                ErrorCode::InvalidRequest,
                "response_mode must be query or form_post",
            );
        }
        assert_eq!(accepted(&form(""), &client()).response_mode, ResponseMode::Query);
        assert_eq!(accepted(&form("response_mode=query"), &client()).response_mode, ResponseMode::Query);
        assert_eq!(accepted(&form("response_mode=form_post"), &client()).response_mode, ResponseMode::FormPost);
    }

    #[test]
    fn oauth_form_post_2_errors_follow_the_requested_mode() {
        let error = validate(&form("response_mode=form_post&prompt=bogus"), &client(), CB.into()).unwrap_err();
        assert_eq!(error.response_mode, ResponseMode::FormPost);
        let error = validate(&form("response_mode=fragment"), &client(), CB.into()).unwrap_err();
        assert_eq!(error.response_mode, ResponseMode::Query, "an unsupported mode falls back to the default");
    }

    #[test]
    fn oidc_core_3_1_2_1_scope_must_include_openid() {
        for scope in ["", "&scope=profile+email", "&scope=OpenID"] {
            let (code, description, _) = refused(&parse(&format!("response_type=code&{PKCE}{scope}")), &client());
            assert_eq!((code, description.as_str()), (ErrorCode::InvalidScope, "scope must include openid"), "{scope}");
        }
    }

    #[test]
    fn rfc6749_3_3_unknown_and_disallowed_scopes_are_dropped() {
        let params = parse(&format!("response_type=code&scope=openid+email+admin+roles&{PKCE}"));
        assert_eq!(accepted(&params, &client()).scope.to_string(), "email openid");
    }

    #[test]
    fn rfc6749_3_3_client_not_allowed_openid_is_invalid_scope() {
        let mut c = client();
        c.scopes = Scope::parse("profile").unwrap();
        assert_eq!(refused(&form(""), &c).1, "the client is not allowed the openid scope");
    }

    #[test]
    fn oidc_core_3_1_2_1_prompt_none_with_other_values_is_invalid_request() {
        for prompt in ["none+login", "consent+none", "none+select_account"] {
            let description = "prompt=none must not be combined with other values";
            assert_refused(&format!("prompt={prompt}"), ErrorCode::InvalidRequest, description);
        }
    }

    #[test]
    fn oidc_core_3_1_2_1_unknown_prompt_value_is_invalid_request() {
        assert_refused("prompt=create", ErrorCode::InvalidRequest, "prompt contains an unsupported value");
    }

    #[test]
    fn oidc_core_3_1_2_1_max_age_must_be_a_non_negative_integer() {
        for bad in ["-1", "abc", "1.5", "%2B5", "1e3", "99999999999999999999999"] {
            let description = "max_age must be a non-negative integer";
            assert_refused(&format!("max_age={bad}"), ErrorCode::InvalidRequest, description);
        }
        assert_eq!(accepted(&form("max_age=0"), &client()).max_age, Some(0));
    }

    #[test]
    fn rfc9700_2_1_1_pkce_is_checked_with_the_client_requirement() {
        let params = parse("response_type=code&scope=openid");
        assert_eq!(refused(&params, &client()).1, "PKCE code_challenge is required for this client");
        let mut optional = client();
        optional.require_pkce = false;
        assert_eq!(accepted(&params, &optional).code_challenge, None);
        let plain =
            parse(&format!("response_type=code&scope=openid&code_challenge={CHALLENGE}&code_challenge_method=plain"));
        assert_eq!(refused(&plain, &optional).1, "code_challenge_method plain is not supported; use S256");
    }

    #[test]
    fn oidc_core_3_1_2_1_ignored_and_unknown_parameters_are_accepted() {
        let request = accepted(
            &form("display=popup&ui_locales=fr-CA%20en&claims_locales=fr&acr_values=urn:x&claims=%7B%7D&x=1&x=2"),
            &client(),
        );
        assert_eq!(request.ui_locales.as_deref(), Some("fr-CA en"), "kept for the pages' language");
    }

    #[test]
    fn oidc_core_3_1_2_3_login_is_needed_without_a_session_or_with_prompt_login() {
        let login = Prompt { login: true, ..Prompt::default() };
        assert!(needs_login(&Prompt::default(), None, None, 1000));
        assert!(needs_login(&login, None, Some(1000), 1000));
        assert!(!needs_login(&Prompt::default(), None, Some(0), 1000));
    }

    #[test]
    fn oidc_core_3_1_2_1_max_age_elapsed_forces_reauthentication() {
        let p = Prompt::default();
        assert!(!needs_login(&p, Some(60), Some(1000), 1060));
        assert!(needs_login(&p, Some(60), Some(1000), 1061));
        assert!(!needs_login(&p, Some(60), Some(2000), 1000), "auth_time in the future counts as fresh");
    }

    #[test]
    fn oidc_core_3_1_2_1_max_age_zero_always_reauthenticates() {
        assert!(needs_login(&Prompt::default(), Some(0), Some(1000), 1000));
    }

    #[test]
    fn oidc_core_3_1_2_6_prompt_none_errors() {
        let login = interaction_error_for_prompt_none(true, true).unwrap();
        let description = "the user must log in, which prompt=none does not allow";
        assert_eq!((login.code.as_str(), login.description.as_ref()), ("login_required", description));
        let consent = interaction_error_for_prompt_none(false, true).unwrap();
        let description = "the user must consent, which prompt=none does not allow";
        assert_eq!((consent.code.as_str(), consent.description.as_ref()), ("consent_required", description));
        assert_eq!(interaction_error_for_prompt_none(false, false), None);
    }

    #[test]
    fn rfc9207_2_redirectable_error_redirects_with_state_and_iss() {
        let error = validate(&form("prompt=bogus"), &client(), CB.into()).unwrap_err();
        let uri = redirect::query_redirect(&error.redirect_uri, &error.params("https://id.example"));
        assert!(uri.starts_with("https://app.example/cb?error=invalid_request&error_description="), "{uri}");
        assert!(uri.ends_with("&state=st&iss=https%3A%2F%2Fid.example"), "{uri}");
    }
}
