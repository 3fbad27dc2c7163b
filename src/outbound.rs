//! The one outbound HTTP client: plain http, or https verified against the system's roots
//! with rustls on ring, the crypto provider kube and fred already build. A second provider
//! (reqwest's rustls brings aws-lc-rs) would leave rustls unable to pick a process default,
//! and every TLS client of the process would fail. Used by the back-channel logout worker
//! and by `portcullis login`.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper::header::{ACCEPT, CONTENT_TYPE};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::crypto::ring;

/// An HTTP/1.1 client for http and https URLs.
pub type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The most of an answer's body that is read: discovery documents and token responses
/// are a few KiB.
const MAX_BODY_BYTES: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("the system's TLS root certificates cannot be read: {0}")]
    Roots(std::io::Error),
    #[error("not a usable request: {0}")]
    Request(#[from] hyper::http::Error),
    /// The error and its causes, which name what failed (a refused connection, a
    /// certificate not trusted), where the client's own message says only "client error".
    #[error("{0}")]
    Send(String),
    #[error("reading the answer: {0}")]
    Body(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// A client verifying https servers against the system's root certificates.
pub fn client() -> Result<HttpClient, OutboundError> {
    let connector = HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(ring::default_provider())
        .map_err(OutboundError::Roots)?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

/// An answer: its status and (at most [`MAX_BODY_BYTES`] of) its body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
}

impl Answer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// `GET url`, asking for JSON.
pub async fn get(http: &HttpClient, url: &str, timeout: Duration) -> Result<Answer, OutboundError> {
    let request = Request::get(url).header(ACCEPT, "application/json").body(Full::new(Bytes::new()))?;
    send(http, request, timeout).await
}

/// `POST url` with `form` as `application/x-www-form-urlencoded`.
pub async fn post_form(
    http: &HttpClient,
    url: &str,
    form: &[(&str, &str)],
    timeout: Duration,
) -> Result<Answer, OutboundError> {
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
    let request = Request::post(url)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(ACCEPT, "application/json")
        .body(Full::new(Bytes::from(body)))?;
    send(http, request, timeout).await
}

/// Sends `request` as it is (headers included) and answers with the whole response, all
/// within `timeout`: the HTTP client of the upstream relying-party library
/// ([`crate::connectors`]). Redirects are not followed, so an upstream cannot bounce the
/// request elsewhere.
pub async fn exchange(
    http: &HttpClient,
    request: hyper::Request<Vec<u8>>,
    timeout: Duration,
) -> Result<hyper::Response<Vec<u8>>, OutboundError> {
    let (parts, body) = request.into_parts();
    let exchange = async {
        let response = http
            .request(Request::from_parts(parts, Full::new(Bytes::from(body))))
            .await
            .map_err(|error| OutboundError::Send(with_causes(&error)))?;
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, MAX_BODY_BYTES)
            .collect()
            .await
            .map_err(|error| OutboundError::Body(error.to_string()))?
            .to_bytes();
        Ok(hyper::Response::from_parts(parts, body.to_vec()))
    };
    tokio::time::timeout(timeout, exchange).await.map_err(|_| OutboundError::Timeout(timeout))?
}

/// Sends `request` and reads its answer, all within `timeout`. Redirects are not followed.
async fn send(http: &HttpClient, request: Request<Full<Bytes>>, timeout: Duration) -> Result<Answer, OutboundError> {
    let exchange = async {
        let response = http.request(request).await.map_err(|error| OutboundError::Send(with_causes(&error)))?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), MAX_BODY_BYTES)
            .collect()
            .await
            .map_err(|error| OutboundError::Body(error.to_string()))?
            .to_bytes();
        Ok(Answer { status, body })
    };
    tokio::time::timeout(timeout, exchange).await.map_err(|_| OutboundError::Timeout(timeout))?
}

/// `error: cause: cause…`.
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        text.push_str(": ");
        text.push_str(&error.to_string());
        cause = error.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn a_send_error_names_its_causes() {
        let error = Outer(std::io::Error::other("invalid peer certificate: UnknownIssuer"));
        assert_eq!(with_causes(&error), "outer: invalid peer certificate: UnknownIssuer");
    }
}
