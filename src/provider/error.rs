//! The one place where errors become HTTP responses: [`ApiError`] for the JSON endpoints
//! (an RFC 6749 §5.2 body), [`PageError`] for the browser endpoints (an error page, or an
//! error redirect to a redirect URI verified for the client).
//!
//! Internal detail (a store or signing failure) is never shown: it travels on the response
//! as [`Unexpected`] to the request middleware, which logs it once.

use std::borrow::Cow;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::respond::{authorization_response, message_page, no_store};
use super::sealing::SealingError;
use super::state::Provider;
use super::text::ENGLISH;
use crate::keys::KeyError;
use crate::protocol::authorize::RedirectableError;
use crate::protocol::registration::RegistrationError;
use crate::secrets::SecretError;
use crate::store::StoreError;
use crate::vocabulary::AuthorizationRequest;
use crate::vocabulary::{ErrorCode, OAuthError, error_description};

/// The detail of a failure the caller is not told about, on its way to the log.
#[derive(Debug, Clone)]
pub struct Unexpected(pub String);

impl Unexpected {
    fn store(error: &StoreError) -> Self {
        Self(format!("store operation failed: {error}"))
    }
}

/// An error of a JSON endpoint.
#[derive(Debug)]
pub enum ApiError {
    /// RFC 6749 §5.2: an error of the token, introspection or revocation endpoint.
    OAuth(OAuthError),
    /// RFC 6750 §3.1: a protected resource was asked without an access token; the
    /// challenge names no error.
    TokenMissing,
    /// RFC 6750 §3.1 `invalid_request` at a protected resource.
    BearerRequest(&'static str),
    /// RFC 6750 §3.1 `invalid_token`.
    InvalidToken(&'static str),
    /// RFC 6750 §3.1 `insufficient_scope`.
    InsufficientScope(&'static str),
    /// RFC 7591 §3.2.2: the client metadata is refused.
    Registration(RegistrationError),
    /// `access_denied`: what the caller asks for is switched off.
    Forbidden(&'static str),
    /// Too many requests; the caller may retry after `retry_after` seconds.
    RateLimited { description: &'static str, retry_after: u64 },
    /// The request body is larger than the provider reads.
    TooLarge(String),
    /// The request has more header fields, or more header bytes, than the provider reads.
    HeadersTooLarge(String),
    /// The endpoint answers only the method `allow`.
    MethodNotAllowed(&'static str),
    /// No endpoint at this path.
    NotFound,
    /// The store failed: `temporarily_unavailable`, or `server_error` for corrupt data.
    Store(StoreError),
    /// A failure whose detail stays internal: `server_error`.
    Internal(String),
}

/// The RFC 6749 §5.2 error body, also used by RFC 6750 §3 and RFC 7591 §3.2.2.
#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'static str,
    error_description: &'a str,
}

/// RFC 6749 §5.2 / RFC 6750 §3.1 status for each error code.
fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidClient | ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

fn oauth(error: OAuthError) -> (StatusCode, &'static str, Cow<'static, str>) {
    (status_of(error.code), error.code.as_str(), error.description)
}

impl ApiError {
    /// The status, `error` code and public description: the status table of every JSON
    /// endpoint.
    fn answer(&self) -> (StatusCode, &'static str, Cow<'_, str>) {
        let invalid_request = "invalid_request";
        match self {
            ApiError::OAuth(error) => (status_of(error.code), error.code.as_str(), Cow::Borrowed(&error.description)),
            ApiError::TokenMissing => (StatusCode::UNAUTHORIZED, invalid_request, "an access token is required".into()),
            ApiError::BearerRequest(description) => (StatusCode::BAD_REQUEST, invalid_request, (*description).into()),
            ApiError::InvalidToken(description) => (StatusCode::UNAUTHORIZED, "invalid_token", (*description).into()),
            ApiError::InsufficientScope(description) => {
                (StatusCode::FORBIDDEN, "insufficient_scope", (*description).into())
            }
            ApiError::Registration(error) => {
                (StatusCode::BAD_REQUEST, error.code.as_str(), Cow::Borrowed(&error.description))
            }
            ApiError::Forbidden(description) => (StatusCode::FORBIDDEN, "access_denied", (*description).into()),
            ApiError::RateLimited { description, .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "temporarily_unavailable", (*description).into())
            }
            ApiError::TooLarge(description) => (StatusCode::PAYLOAD_TOO_LARGE, invalid_request, description.into()),
            ApiError::HeadersTooLarge(description) => {
                (StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, invalid_request, description.into())
            }
            ApiError::MethodNotAllowed(allow) => {
                (StatusCode::METHOD_NOT_ALLOWED, invalid_request, format!("this endpoint only accepts {allow}").into())
            }
            ApiError::NotFound => (StatusCode::NOT_FOUND, invalid_request, "not found".into()),
            ApiError::Store(StoreError::Unavailable(_)) => oauth(OAuthError::temporarily_unavailable()),
            ApiError::Store(StoreError::Corrupt(_)) | ApiError::Internal(_) => oauth(OAuthError::server_error()),
        }
    }

    /// The `error` code the caller receives (a bounded metric label).
    pub fn code(&self) -> &'static str {
        self.answer().1
    }

    fn into_unexpected(self) -> Option<Unexpected> {
        match self {
            ApiError::Store(error) => Some(Unexpected::store(&error)),
            ApiError::Internal(detail) => Some(Unexpected(detail)),
            _ => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::NotFound = self {
            // Not an endpoint at all, so no OAuth body: the plain answer of any unknown path.
            return (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "not found\n")
                .into_response();
        }
        let (status, error, description) = self.answer();
        let description = error_description(&description);
        let mut response = no_store((status, Json(ErrorBody { error, error_description: &description })));
        let headers = response.headers_mut();
        match &self {
            // RFC 6749 §5.2: a 401 names the authentication scheme the client can use.
            ApiError::OAuth(e) if e.code == ErrorCode::InvalidClient => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"portcullis\""));
            }
            ApiError::TokenMissing => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"portcullis\""));
            }
            // RFC 6750 §3: the challenge repeats the error; the description holds no `"` or `\`.
            ApiError::BearerRequest(_) | ApiError::InvalidToken(_) | ApiError::InsufficientScope(_) => {
                let challenge =
                    format!("Bearer realm=\"portcullis\", error=\"{error}\", error_description=\"{description}\"");
                if let Ok(challenge) = HeaderValue::from_str(&challenge) {
                    headers.insert(header::WWW_AUTHENTICATE, challenge);
                }
            }
            ApiError::RateLimited { retry_after, .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            ApiError::MethodNotAllowed(allow) => {
                headers.insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            _ => {}
        }
        if let Some(unexpected) = self.into_unexpected() {
            response.extensions_mut().insert(unexpected);
        }
        response
    }
}

impl From<OAuthError> for ApiError {
    fn from(error: OAuthError) -> Self {
        Self::OAuth(error)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl From<KeyError> for ApiError {
    fn from(error: KeyError) -> Self {
        Self::Internal(format!("signing failed: {error}"))
    }
}

impl From<SecretError> for ApiError {
    fn from(error: SecretError) -> Self {
        Self::Internal(format!("secret generation failed: {error}"))
    }
}

/// An error of a browser endpoint.
#[derive(Debug)]
pub enum PageError {
    /// The request or form is malformed.
    BadRequest(Cow<'static, str>),
    /// RP-Initiated Logout §2: the logout request is malformed or inconsistent.
    BadLogoutRequest(Cow<'static, str>),
    /// No client is registered with the `client_id`.
    UnknownClient,
    /// The client's redirect URI cannot be put in a `Location` header.
    BadRedirectUri,
    /// The interaction is over, or no longer this browser's.
    Expired,
    /// A form whose CSRF token (or browser binding) does not check out.
    FormRefused,
    /// The store failed: "unavailable", or a server error for corrupt data.
    Store(StoreError),
    /// A failure whose detail stays internal.
    Internal(String),
    /// An upstream identity provider failed to sign the person in (detail logged only).
    Upstream(String),
    /// The upstream vouched for the person, but the connector does not let them in; the
    /// reason is shown.
    Refused(String),
    /// An OAuth error sent back to the client's redirect URI, with `state` and `iss`
    /// (RFC 6749 §4.1.2.1, RFC 9207 §2).
    Redirect(StatusCode, Box<RedirectableError>),
}

impl PageError {
    /// `error` for the client of `request`, whose redirect URI was verified with it: the
    /// only errors that go back to the client instead of onto a page.
    pub fn redirect(status: StatusCode, request: &AuthorizationRequest, error: OAuthError) -> Self {
        let redirectable = RedirectableError {
            error,
            redirect_uri: request.redirect_uri.clone(),
            state: request.state.clone(),
            response_mode: request.response_mode,
        };
        Self::Redirect(status, Box::new(redirectable))
    }

    /// The error page, or the error redirect.
    pub fn render(self, provider: &Provider) -> Response {
        let (status, title, description) = match &self {
            PageError::BadRequest(description) => {
                (StatusCode::BAD_REQUEST, ENGLISH.invalid_request_title, &**description)
            }
            PageError::BadLogoutRequest(description) => {
                (StatusCode::BAD_REQUEST, ENGLISH.invalid_logout_title, &**description)
            }
            PageError::UnknownClient => (StatusCode::BAD_REQUEST, ENGLISH.unknown_client_title, ENGLISH.unknown_client),
            PageError::BadRedirectUri => (StatusCode::BAD_REQUEST, ENGLISH.bad_redirect_title, ENGLISH.bad_redirect),
            PageError::Expired => (StatusCode::BAD_REQUEST, ENGLISH.expired_title, ENGLISH.expired),
            PageError::FormRefused => (StatusCode::FORBIDDEN, ENGLISH.form_refused_title, ENGLISH.form_refused),
            PageError::Store(StoreError::Unavailable(_)) => {
                (StatusCode::SERVICE_UNAVAILABLE, ENGLISH.unavailable_title, ENGLISH.unavailable)
            }
            PageError::Store(StoreError::Corrupt(_)) | PageError::Internal(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, ENGLISH.server_error_title, ENGLISH.server_error)
            }
            PageError::Upstream(_) => (StatusCode::BAD_GATEWAY, ENGLISH.upstream_failed_title, ENGLISH.upstream_failed),
            PageError::Refused(reason) => (StatusCode::FORBIDDEN, ENGLISH.upstream_refused_title, reason.as_str()),
            PageError::Redirect(status, error) => {
                let params = error.params(&provider.config.issuer);
                return authorization_response(provider, *status, error.response_mode, &error.redirect_uri, &params)
                    .unwrap_or_else(|| PageError::BadRedirectUri.render(provider));
            }
        };
        let mut response = message_page(provider, status, title, description);
        let unexpected = match self {
            PageError::Store(error) => Some(Unexpected::store(&error)),
            PageError::Internal(detail) | PageError::Upstream(detail) => Some(Unexpected(detail)),
            _ => None,
        };
        if let Some(unexpected) = unexpected {
            response.extensions_mut().insert(unexpected);
        }
        response
    }
}

impl From<StoreError> for PageError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl From<SealingError> for PageError {
    fn from(error: SealingError) -> Self {
        match error {
            SealingError::TooLarge(redirectable) => PageError::Redirect(StatusCode::FOUND, redirectable),
            SealingError::Expired => PageError::Expired,
            SealingError::Forged => PageError::FormRefused,
            SealingError::Crypto(detail) => PageError::Internal(detail),
            SealingError::Secret(error) => error.into(),
            SealingError::Store(error) => error.into(),
        }
    }
}

impl From<SecretError> for PageError {
    fn from(error: SecretError) -> Self {
        Self::Internal(format!("random generation failed: {error}"))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderMap;

    use super::*;
    use crate::protocol::registration::RegistrationErrorCode;
    use crate::vocabulary::ResponseMode;

    /// The status, headers and body of a response.
    async fn parts(response: Response) -> (StatusCode, HeaderMap, String, Option<Unexpected>) {
        let unexpected = response.extensions().get::<Unexpected>().cloned();
        let (head, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.expect("body");
        (head.status, head.headers, String::from_utf8(bytes.to_vec()).expect("utf-8"), unexpected)
    }

    async fn json(error: ApiError) -> (StatusCode, HeaderMap, serde_json::Value) {
        let (status, headers, body, _) = parts(error.into_response()).await;
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert_eq!(headers[header::PRAGMA], "no-cache");
        (status, headers, serde_json::from_str(&body).expect("JSON"))
    }

    #[tokio::test]
    async fn rfc6749_5_2_every_json_error_has_its_status_code_and_description() {
        let registration = RegistrationError {
            code: RegistrationErrorCode::InvalidRedirectUri,
            description: "redirect_uris must be absolute".to_owned(),
        };
        let cases = [
            (ApiError::OAuth(OAuthError::invalid_grant("used")), 400, "invalid_grant", "used"),
            (ApiError::OAuth(OAuthError::invalid_client("who")), 401, "invalid_client", "who"),
            (ApiError::TokenMissing, 401, "invalid_request", "an access token is required"),
            (ApiError::BearerRequest("twice"), 400, "invalid_request", "twice"),
            (ApiError::InvalidToken("expired"), 401, "invalid_token", "expired"),
            (ApiError::InsufficientScope("no openid"), 403, "insufficient_scope", "no openid"),
            (ApiError::Registration(registration), 400, "invalid_redirect_uri", "redirect_uris must be absolute"),
            (ApiError::Forbidden("off"), 403, "access_denied", "off"),
            (
                ApiError::RateLimited { description: "slow down", retry_after: 600 },
                429,
                "temporarily_unavailable",
                "slow down",
            ),
            (ApiError::TooLarge("big".to_owned()), 413, "invalid_request", "big"),
            (ApiError::HeadersTooLarge("many".to_owned()), 431, "invalid_request", "many"),
            (ApiError::MethodNotAllowed("POST"), 405, "invalid_request", "this endpoint only accepts POST"),
        ];
        for (error, status, code, description) in cases {
            assert_eq!(error.code(), code);
            let (got_status, _, body) = json(error).await;
            assert_eq!(got_status, status, "{code}");
            assert_eq!(body, serde_json::json!({"error": code, "error_description": description}));
        }
    }

    #[tokio::test]
    async fn rfc6749_5_2_invalid_client_names_basic_and_rfc6750_3_bearer_errors_name_bearer() {
        let (_, headers, _) = json(OAuthError::invalid_client("who").into()).await;
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Basic realm=\"portcullis\"");
        let (_, headers, _) = json(OAuthError::invalid_grant("used").into()).await;
        assert!(!headers.contains_key(header::WWW_AUTHENTICATE), "only a 401 carries a challenge");
        let (_, headers, _) = json(ApiError::TokenMissing).await;
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer realm=\"portcullis\"");
        let (_, headers, _) = json(ApiError::InsufficientScope("no openid")).await;
        assert_eq!(
            headers[header::WWW_AUTHENTICATE],
            "Bearer realm=\"portcullis\", error=\"insufficient_scope\", error_description=\"no openid\""
        );
    }

    #[tokio::test]
    async fn rate_limits_say_when_to_retry_and_405_says_what_is_allowed() {
        let (_, headers, _) = json(ApiError::RateLimited { description: "slow down", retry_after: 600 }).await;
        assert_eq!(headers[header::RETRY_AFTER], "600");
        let (_, headers, _) = json(ApiError::MethodNotAllowed("POST")).await;
        assert_eq!(headers[header::ALLOW], "POST");
    }

    #[tokio::test]
    async fn rfc6749_5_2_descriptions_are_cleaned_in_the_body_and_the_challenge() {
        let error = ApiError::Registration(RegistrationError {
            code: RegistrationErrorCode::InvalidClientMetadata,
            description: "bad \"x\\y\"\n".to_owned(),
        });
        let (_, _, body) = json(error).await;
        assert_eq!(body["error_description"], "bad ?x?y??");
    }

    #[tokio::test]
    async fn an_unknown_path_is_a_plain_404() {
        let (status, headers, body, _) = parts(ApiError::NotFound.into_response()).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(headers[header::CONTENT_TYPE], "text/plain; charset=utf-8");
        assert_eq!(body, "not found\n");
    }

    #[tokio::test]
    async fn store_failures_are_unavailable_or_server_errors_and_their_detail_is_never_sent() {
        let cases = [
            (
                ApiError::Store(StoreError::Unavailable("redis at 10.0.0.7 refused".into())),
                503,
                "temporarily_unavailable",
            ),
            (ApiError::Store(StoreError::Corrupt("undecodable grant g-17".into())), 500, "server_error"),
            (ApiError::from(KeyError::Signing), 500, "server_error"),
            (ApiError::Internal("a request handler panicked".to_owned()), 500, "server_error"),
        ];
        for (error, status, code) in cases {
            let (got_status, _, body, unexpected) = parts(error.into_response()).await;
            assert_eq!(got_status, status);
            let body: serde_json::Value = serde_json::from_str(&body).expect("JSON");
            assert_eq!(body["error"], code);
            let Some(Unexpected(detail)) = unexpected else { panic!("{code}: no detail for the log") };
            assert!(!body.to_string().contains(&detail), "{detail} is sent");
            assert!(["10.0.0.7", "g-17", "signing", "panicked"].iter().any(|part| detail.contains(part)), "{detail}");
        }
        let (_, _, _, unexpected) = parts(ApiError::from(OAuthError::invalid_grant("used")).into_response()).await;
        assert!(unexpected.is_none(), "a protocol error is the caller's, not ours to log");
    }

    #[tokio::test]
    async fn page_errors_render_the_error_page_with_their_status() {
        let provider = Provider::for_tests();
        let cases = [
            (PageError::BadRequest("client_id is missing".into()), 400, "client_id is missing"),
            (PageError::BadLogoutRequest("no".into()), 400, ENGLISH.invalid_logout_title),
            (PageError::UnknownClient, 400, ENGLISH.unknown_client_title),
            (PageError::BadRedirectUri, 400, ENGLISH.bad_redirect_title),
            (PageError::Expired, 400, ENGLISH.expired_title),
            (PageError::FormRefused, 403, ENGLISH.form_refused_title),
            (PageError::Store(StoreError::Unavailable("down".into())), 503, ENGLISH.unavailable_title),
            (PageError::Store(StoreError::Corrupt("g-17".into())), 500, ENGLISH.server_error_title),
            (PageError::from(SecretError::Random), 500, ENGLISH.server_error_title),
        ];
        for (error, status, shown) in cases {
            let (got_status, headers, html, _) = parts(error.render(&provider)).await;
            assert_eq!(got_status, status, "{shown}");
            assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
            assert!(html.contains(shown), "{shown} not in {html}");
            assert!(html.contains("/base/assets/portcullis.css"), "the stylesheet under the issuer's path");
        }
    }

    #[tokio::test]
    async fn a_failed_browser_request_keeps_its_detail_for_the_log() {
        let provider = Provider::for_tests();
        let error = PageError::Store(StoreError::Corrupt("undecodable session s-9".into()));
        let (_, _, html, unexpected) = parts(error.render(&provider)).await;
        let Some(Unexpected(detail)) = unexpected else { panic!("no detail for the log") };
        assert!(detail.contains("s-9") && !html.contains("s-9"), "{detail}");
        let (_, _, _, unexpected) = parts(PageError::Expired.render(&provider)).await;
        assert!(unexpected.is_none());
    }

    #[tokio::test]
    async fn rfc6749_4_1_2_1_and_rfc9207_2_redirected_errors_carry_state_and_iss() {
        let provider = Provider::for_tests();
        let error = PageError::Redirect(
            StatusCode::SEE_OTHER,
            Box::new(RedirectableError {
                error: OAuthError::new(ErrorCode::AccessDenied, "the user denied the request"),
                redirect_uri: "https://app.example/cb".to_owned(),
                state: Some("s 1".to_owned()),
                response_mode: ResponseMode::Query,
            }),
        );
        let (status, headers, _, _) = parts(error.render(&provider)).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        let location = headers[header::LOCATION].to_str().expect("ASCII");
        let url = url::Url::parse(location).expect("a URL");
        let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert!(location.starts_with("https://app.example/cb?"), "{location}");
        for (name, value) in [("error", "access_denied"), ("state", "s 1"), ("iss", "https://id.example/base")] {
            assert!(query.contains(&(name.to_owned(), value.to_owned())), "{name} in {location}");
        }
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    }

    #[tokio::test]
    async fn oauth_form_post_2_errors_are_posted_in_form_post_mode() {
        let provider = Provider::for_tests();
        let error = PageError::Redirect(
            StatusCode::SEE_OTHER,
            Box::new(RedirectableError {
                error: OAuthError::new(ErrorCode::AccessDenied, "the user denied the request"),
                redirect_uri: "https://app.example/cb".to_owned(),
                state: Some("s1".to_owned()),
                response_mode: ResponseMode::FormPost,
            }),
        );
        let (status, headers, html, _) = parts(error.render(&provider)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(!headers.contains_key(header::LOCATION));
        assert!(
            headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap().contains("form-action https://app.example;")
        );
        assert!(html.contains("<form method=\"post\" action=\"https://app.example/cb\">"), "{html}");
        for (name, value) in [("error", "access_denied"), ("state", "s1"), ("iss", "https://id.example/base")] {
            assert!(html.contains(&format!("name=\"{name}\" value=\"{value}\"")), "{name} in {html}");
        }
    }

    #[tokio::test]
    async fn a_redirect_uri_that_cannot_be_a_header_gets_the_error_page() {
        let provider = Provider::for_tests();
        let error = PageError::Redirect(
            StatusCode::FOUND,
            Box::new(RedirectableError {
                error: OAuthError::invalid_request("bad"),
                redirect_uri: "https://app.example/\u{7f}".to_owned(),
                state: None,
                response_mode: ResponseMode::Query,
            }),
        );
        let (status, _, html, _) = parts(error.render(&provider)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(html.contains(ENGLISH.bad_redirect_title));
    }
}
