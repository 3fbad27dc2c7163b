//! Responses of the browser endpoints: redirects and the HTML error page.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Provider;
use super::pages::{self, ErrorPage};
use super::text::ENGLISH;
use crate::protocol::endpoints;

/// A redirect that no cache keeps. A URI that cannot be a header value (only possible for a
/// registered URI with raw non-ASCII characters) gets the error page instead.
pub fn redirect(provider: &Provider, status: StatusCode, location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(location) => (
            status,
            [
                (header::LOCATION, location),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                (header::PRAGMA, HeaderValue::from_static("no-cache")),
            ],
        )
            .into_response(),
        Err(_) => error_page(provider, StatusCode::BAD_REQUEST, ENGLISH.bad_redirect_title, ENGLISH.bad_redirect),
    }
}

/// The HTML error page, for errors that must not (or cannot) go back to the client.
pub fn error_page(provider: &Provider, status: StatusCode, title: &str, description: &str) -> Response {
    let stylesheet = provider.config.browser_path(endpoints::STYLESHEET);
    pages::render(status, &ErrorPage { text: &ENGLISH, stylesheet: &stylesheet, title, description })
}

/// A form whose CSRF token (or browser binding) does not check out.
pub fn form_refused(provider: &Provider) -> Response {
    error_page(provider, StatusCode::FORBIDDEN, ENGLISH.form_refused_title, ENGLISH.form_refused)
}

/// Adds `Set-Cookie` headers to a response.
pub fn with_cookies(mut response: Response, cookies: impl IntoIterator<Item = Option<HeaderValue>>) -> Response {
    for cookie in cookies.into_iter().flatten() {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// A store failure during a browser request: logged where it happened, shown generically.
pub fn unavailable(provider: &Provider) -> Response {
    error_page(provider, StatusCode::SERVICE_UNAVAILABLE, ENGLISH.unavailable_title, ENGLISH.unavailable)
}

/// A browser endpoint's failure, already rendered: an error page or an error redirect.
/// Boxed so that `Result`s carrying it stay small.
#[derive(Debug)]
pub struct Page(Box<Response>);

impl From<Response> for Page {
    fn from(response: Response) -> Self {
        Self(Box::new(response))
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        *self.0
    }
}
