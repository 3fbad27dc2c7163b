//! Headers every response carries, and the safety net that turns a panic into a generic
//! `server_error` instead of a dropped connection.

use std::any::Any;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;

use super::error::ProtocolError;
use crate::protocol::OAuthError;

fn panic_response(_: Box<dyn Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    ProtocolError(OAuthError::server_error()).into_response()
}

/// `nosniff` and `no-referrer` on everything; panics answered as `server_error`.
pub fn apply(router: Router) -> Router {
    router
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
}
