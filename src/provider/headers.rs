//! Headers every response carries, and the safety net that turns a panic into a generic
//! `server_error` instead of a dropped connection.

use std::any::Any;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;

use super::error::ApiError;

fn panic_response(_: Box<dyn Any + Send + 'static>) -> Response {
    ApiError::Internal("a request handler panicked".to_owned()).into_response()
}

/// Answers a panicking handler with `server_error` (and the panic is logged).
pub fn catch_panics() -> CatchPanicLayer<fn(Box<dyn Any + Send + 'static>) -> Response> {
    CatchPanicLayer::custom(panic_response)
}

/// `nosniff` and `no-referrer` on every response, whatever produced it.
pub fn secure(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
}
