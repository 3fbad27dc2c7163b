//! Bounds on what one request can make the provider read or hold, checked before any
//! handler runs: the number and total size of headers, and the body size (declared or
//! streamed). Parameter counts and lengths are bounded by [`crate::protocol::form`],
//! registration metadata by [`crate::protocol::registration`].

use axum::body::{Body, HttpBody};
use axum::extract::Request;
use axum::http::header;

use super::error::ApiError;
use super::extract::MAX_BODY_BYTES;
use crate::vocabulary::OAuthError;

/// Most header fields one request may carry (hyper itself stops at 100).
pub const MAX_HEADERS: usize = 64;
/// Most bytes of header names and values together in one request.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

fn body_too_large() -> ApiError {
    ApiError::TooLarge(format!("the request body exceeds {MAX_BODY_BYTES} bytes"))
}

/// The request, when it is within the limits (a streamed body of unknown length read into
/// memory on the way); otherwise the refusal, an RFC 6749 `invalid_request` body.
pub async fn admit(request: Request) -> Result<Request, ApiError> {
    let headers = request.headers();
    if headers.len() > MAX_HEADERS {
        return Err(ApiError::HeadersTooLarge(format!("the request has more than {MAX_HEADERS} header fields")));
    }
    let header_bytes: usize = headers.iter().map(|(name, value)| name.as_str().len() + value.len()).sum();
    if header_bytes > MAX_HEADER_BYTES {
        return Err(ApiError::HeadersTooLarge(format!("the request headers exceed {MAX_HEADER_BYTES} bytes")));
    }
    let declared = match headers.get(header::CONTENT_LENGTH) {
        None => None,
        Some(value) => match value.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok()) {
            Some(length) => Some(length),
            None => return Err(OAuthError::invalid_request("malformed Content-Length").into()),
        },
    };
    match declared {
        Some(length) if length > MAX_BODY_BYTES as u64 => Err(body_too_large()),
        // hyper delivers exactly the declared length, and an empty body needs no care.
        Some(_) => Ok(request),
        None if request.body().size_hint().exact() == Some(0) => Ok(request),
        // A streamed body of unknown length is read here, up to the limit.
        None => {
            let (parts, body) = request.into_parts();
            match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
                Ok(bytes) => Ok(Request::from_parts(parts, Body::from(bytes))),
                Err(_) => Err(body_too_large()),
            }
        }
    }
}
