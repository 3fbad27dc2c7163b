//! Building blocks of responses: uncacheable bodies, redirects, cookies, and the message
//! page that errors and notices are shown on.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::pages::{self, ErrorPage, FormPostPage, FrontchannelLogoutPage, LoggedOutPage};
use super::state::Provider;
use super::text::{ENGLISH, Text};
use crate::protocol::endpoints;
use crate::protocol::frontchannel_logout::LogoutFrames;
use crate::protocol::redirect::{self as redirects, ResponseParams};
use crate::vocabulary::ResponseMode;

/// RFC 6749 §5.1: responses carrying tokens (or errors about them) must not be cached.
pub fn no_store(body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// A redirect that no cache keeps; `None` when the location cannot be a header value (only
/// possible for a registered URI with raw non-ASCII characters).
pub fn redirect(status: StatusCode, location: &str) -> Option<Response> {
    let location = HeaderValue::from_str(location).ok()?;
    Some(no_store((status, [(header::LOCATION, location)])))
}

/// RFC 6749 §4.1.2 and §4.1.2.1: sends the authorization response `params` to the client's
/// verified `redirect_uri` in the response mode it asked for: a redirect with `status`
/// (`query`), or a page whose form posts them (`form_post`). `None` when the redirect URI
/// cannot carry them (not a header value, or no origin to allow the form to post to).
pub fn authorization_response(
    provider: &Provider,
    status: StatusCode,
    mode: ResponseMode,
    redirect_uri: &str,
    params: &ResponseParams,
) -> Option<Response> {
    match mode {
        ResponseMode::Query => redirect(status, &redirects::query_redirect(redirect_uri, params)),
        ResponseMode::FormPost => {
            let stylesheet = provider.config.browser_path(endpoints::STYLESHEET);
            let script = provider.config.browser_path(endpoints::FORM_POST_SCRIPT);
            let destination = pages::destination(redirect_uri);
            pages::render_form_post(&FormPostPage {
                text: &ENGLISH,
                stylesheet: &stylesheet,
                script: &script,
                redirect_uri,
                destination: &destination,
                params,
            })
        }
    }
}

/// Adds `Set-Cookie` headers to a response.
pub fn with_cookies(mut response: Response, cookies: impl IntoIterator<Item = Option<HeaderValue>>) -> Response {
    for cookie in cookies.into_iter().flatten() {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// A page that tells the person one thing: an error, or that there is nothing left to do.
pub fn message_page(provider: &Provider, status: StatusCode, title: &str, description: &str) -> Response {
    let stylesheet = provider.config.browser_path(endpoints::STYLESHEET);
    pages::render(status, &ErrorPage { text: &ENGLISH, stylesheet: &stylesheet, title, description })
}

/// The page after a session ended: the signed-out page, or, when clients of the session
/// are to be told in the browser, the page framing them (Front-Channel Logout 1.0 §3),
/// which goes on to `continue_to` (a verified `post_logout_redirect_uri`, or one of our
/// pages) once they have loaded. `None` when the frames' origins cannot be named in a CSP.
pub fn signed_out(
    provider: &Provider,
    text: &Text,
    frames: &LogoutFrames,
    continue_to: Option<&str>,
) -> Option<Response> {
    let stylesheet = provider.config.browser_path(endpoints::STYLESHEET);
    if frames.is_empty() {
        return Some(pages::render(StatusCode::OK, &LoggedOutPage { text, stylesheet: &stylesheet }));
    }
    let script = provider.config.browser_path(endpoints::FRONTCHANNEL_LOGOUT_SCRIPT);
    let page =
        FrontchannelLogoutPage { text, stylesheet: &stylesheet, script: &script, frames: &frames.frames, continue_to };
    pages::render_frontchannel_logout(&page, &frames.sources)
}

/// RFC 6585 §4: a 429 says when to try again.
pub fn with_retry_after(mut response: Response, seconds: u64) -> Response {
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}
