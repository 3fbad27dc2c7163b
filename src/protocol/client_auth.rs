//! Client authentication at the token, introspection and revocation endpoints
//! (RFC 6749 §2.3.1, OIDC Core §9).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::form::{FormParams, decode_component};
use crate::secrets::SecretString;
use crate::vocabulary::OAuthError;
use crate::vocabulary::TokenEndpointAuthMethod;

/// The credentials a request presented, and the method it used to present them. The
/// secret is wiped on drop and redacted from `Debug`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedClient {
    pub client_id: String,
    pub secret: Option<SecretString>,
    pub method: TokenEndpointAuthMethod,
}

/// Reads the client's credentials from the `Authorization` header and the form body.
///
/// RFC 6749 §2.3.1: with HTTP Basic, the id and secret are form-encoded before base64, so
/// they are form-decoded here; credentials in the body are `client_id` + `client_secret`.
/// RFC 6749 §2.3: a client must not use more than one authentication method per request.
pub fn presented_client(authorization: Option<&str>, form: &FormParams) -> Result<PresentedClient, ClientAuthError> {
    let body_id = form.get("client_id")?;
    let body_secret = form.get("client_secret")?;
    if let Some(header) = authorization {
        let (id, secret) = parse_basic(header)?;
        if body_secret.is_some() {
            return Err(OAuthError::invalid_request("the client used more than one authentication method").into());
        }
        if body_id.is_some_and(|body_id| body_id != id) {
            return Err(OAuthError::invalid_request("client_id does not match the Authorization header").into());
        }
        return Ok(PresentedClient {
            client_id: id,
            secret: Some(SecretString::new(secret)),
            method: TokenEndpointAuthMethod::ClientSecretBasic,
        });
    }
    let Some(client_id) = body_id else {
        return Err(ClientAuthError::Failed("no client credentials"));
    };
    let (secret, method) = match body_secret {
        Some(secret) => (Some(SecretString::new(secret)), TokenEndpointAuthMethod::ClientSecretPost),
        None => (None, TokenEndpointAuthMethod::None),
    };
    Ok(PresentedClient { client_id: client_id.to_owned(), secret, method })
}

/// Parses `Basic base64(urlencode(id):urlencode(secret))`.
fn parse_basic(header: &str) -> Result<(String, String), ClientAuthError> {
    let malformed = || ClientAuthError::Failed("malformed HTTP Basic credentials");
    let (scheme, encoded) = header.trim().split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(ClientAuthError::Failed("an Authorization scheme other than Basic"));
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let colon = decoded.iter().position(|b| *b == b':').ok_or_else(malformed)?;
    let id = decode_component(&decoded[..colon]).map_err(|_| malformed())?;
    let secret = decode_component(&decoded[colon + 1..]).map_err(|_| malformed())?;
    if id.is_empty() {
        return Err(malformed());
    }
    Ok((id, secret))
}

/// The one answer to every failed client authentication, so responses do not tell which
/// client ids exist, how a client authenticates, or why it was refused.
pub const AUTHENTICATION_FAILED: &str = "client authentication failed";

/// Why a request's client could not be authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientAuthError {
    /// A malformed request (RFC 6749 §2.3: two methods at once), answered as it is.
    #[error("{}", .0.description)]
    Request(OAuthError),
    /// A failed authentication: the detail is for the log only; the answer is always
    /// `invalid_client` with [`AUTHENTICATION_FAILED`].
    #[error("{0}")]
    Failed(&'static str),
}

impl From<OAuthError> for ClientAuthError {
    fn from(error: OAuthError) -> Self {
        ClientAuthError::Request(error)
    }
}

impl From<ClientAuthError> for OAuthError {
    fn from(error: ClientAuthError) -> Self {
        match error {
            ClientAuthError::Request(error) => error,
            ClientAuthError::Failed(_) => OAuthError::invalid_client(AUTHENTICATION_FAILED),
        }
    }
}

/// What authenticating a client takes once its method matched: nothing more for a public
/// client, else the presented secret checked against the stored hash. A confidential
/// client without a stored hash is refused, whatever secret it sends: fail closed.
#[derive(Debug, PartialEq, Eq)]
pub enum SecretCheck<'a> {
    /// A public client (`none`), identified by its `client_id` alone.
    Public,
    /// Verify `secret` against the stored `hash`.
    Verify { secret: &'a str, hash: &'a str },
}

/// RFC 6749 §2.3.1: a confidential client authenticates with its secret. Call after
/// [`check_method`], which already refused a public client presenting a secret.
pub fn secret_check<'a>(
    registered: Option<TokenEndpointAuthMethod>,
    presented: &'a PresentedClient,
    stored_hash: Option<&'a str>,
) -> Result<SecretCheck<'a>, ClientAuthError> {
    if registered == Some(TokenEndpointAuthMethod::None) {
        return Ok(SecretCheck::Public);
    }
    match (presented.secret.as_ref(), stored_hash) {
        (Some(secret), Some(hash)) => Ok(SecretCheck::Verify { secret: secret.expose(), hash }),
        (None, _) => Err(ClientAuthError::Failed("a confidential client presented no secret")),
        (Some(_), None) => Err(ClientAuthError::Failed("the client has no stored secret")),
    }
}

/// Whether `presented` is a method the client may use. OIDC Core §9: a client that
/// declared a method must use it. One that declared none holds a secret (a public client
/// declares `none`), and may send it either way: `client_secret_basic` and
/// `client_secret_post` carry the same shared secret, so refusing one buys no security and
/// only breaks libraries whose default is the other (openid-client sends `post`).
pub fn method_accepted(registered: Option<TokenEndpointAuthMethod>, presented: TokenEndpointAuthMethod) -> bool {
    match registered {
        Some(registered) => registered == presented,
        None => presented != TokenEndpointAuthMethod::None,
    }
}

/// OIDC Core §9: the client authenticates with a method it may use ([`method_accepted`]).
pub fn check_method(
    registered: Option<TokenEndpointAuthMethod>,
    presented: &PresentedClient,
) -> Result<(), ClientAuthError> {
    if method_accepted(registered, presented.method) {
        Ok(())
    } else {
        Err(ClientAuthError::Failed("the client used an authentication method it did not register"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocabulary::ErrorCode;

    fn code_of(error: ClientAuthError) -> OAuthError {
        OAuthError::from(error)
    }

    fn form(body: &str) -> FormParams {
        FormParams::parse(body.as_bytes()).unwrap()
    }

    fn basic(credentials: &str) -> String {
        format!("Basic {}", STANDARD.encode(credentials))
    }

    #[test]
    fn rfc6749_2_3_1_basic_credentials_are_form_decoded() {
        let header = basic("my%3Aclient:p%40ss+word");
        let client = presented_client(Some(&header), &form("")).unwrap();
        assert_eq!(client.client_id, "my:client");
        assert_eq!(client.secret.as_ref().map(SecretString::expose), Some("p@ss word"));
        assert_eq!(client.method, TokenEndpointAuthMethod::ClientSecretBasic);
    }

    #[test]
    fn rfc6749_2_3_1_body_credentials_are_client_secret_post() {
        let client = presented_client(None, &form("client_id=app&client_secret=s")).unwrap();
        assert_eq!(client.method, TokenEndpointAuthMethod::ClientSecretPost);
        assert_eq!(client.secret.as_ref().map(SecretString::expose), Some("s"));
    }

    #[test]
    fn client_id_alone_is_a_public_client() {
        let client = presented_client(None, &form("client_id=spa")).unwrap();
        assert_eq!(client.method, TokenEndpointAuthMethod::None);
        assert!(client.secret.is_none());
    }

    #[test]
    fn rfc6749_2_3_more_than_one_method_is_invalid_request() {
        let header = basic("app:s");
        let err = code_of(presented_client(Some(&header), &form("client_secret=s")).unwrap_err());
        assert_eq!(err.code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn body_client_id_must_match_basic() {
        let header = basic("app:s");
        assert_eq!(
            code_of(presented_client(Some(&header), &form("client_id=other")).unwrap_err()).code,
            ErrorCode::InvalidRequest
        );
        assert!(presented_client(Some(&header), &form("client_id=app")).is_ok());
    }

    #[test]
    fn missing_credentials_are_invalid_client() {
        assert_eq!(code_of(presented_client(None, &form("")).unwrap_err()).code, ErrorCode::InvalidClient);
    }

    #[test]
    fn malformed_basic_is_invalid_client() {
        for header in ["Basic !!!", "Basic", "Bearer abc", &basic("no-colon"), &basic(":secret")] {
            assert_eq!(
                code_of(presented_client(Some(header), &form("")).unwrap_err()).code,
                ErrorCode::InvalidClient,
                "{header}"
            );
        }
    }

    #[test]
    fn presented_client_debug_redacts_the_secret() {
        let header = basic("app:basic-secret-value");
        let basic_client = presented_client(Some(&header), &form("")).unwrap();
        let post_client = presented_client(None, &form("client_id=app&client_secret=post-secret-value")).unwrap();
        for client in [basic_client, post_client] {
            let debug = format!("{client:?}");
            assert!(!debug.contains("secret-value") && debug.contains("app"), "{debug}");
        }
    }

    #[test]
    fn rfc6749_2_3_1_a_confidential_client_without_a_stored_hash_is_refused_whatever_it_sends() {
        for (method, body) in [
            (TokenEndpointAuthMethod::ClientSecretPost, "client_id=app&client_secret=anything"),
            (TokenEndpointAuthMethod::ClientSecretPost, "client_id=app&client_secret="),
        ] {
            let presented = presented_client(None, &form(body)).unwrap();
            assert_eq!(
                code_of(secret_check(Some(method), &presented, None).unwrap_err()).code,
                ErrorCode::InvalidClient,
                "{body}"
            );
        }
        let header = basic("app:anything");
        let presented = presented_client(Some(&header), &form("")).unwrap();
        let refused =
            code_of(secret_check(Some(TokenEndpointAuthMethod::ClientSecretBasic), &presented, None).unwrap_err());
        assert_eq!(refused, OAuthError::invalid_client(AUTHENTICATION_FAILED));
    }

    #[test]
    fn rfc6749_2_3_1_a_confidential_client_verifies_its_secret_and_a_public_one_needs_none() {
        let presented = presented_client(None, &form("client_id=app&client_secret=s")).unwrap();
        assert_eq!(
            secret_check(Some(TokenEndpointAuthMethod::ClientSecretPost), &presented, Some("hash")).unwrap(),
            SecretCheck::Verify { secret: "s", hash: "hash" }
        );
        let public = presented_client(None, &form("client_id=spa")).unwrap();
        assert_eq!(secret_check(Some(TokenEndpointAuthMethod::None), &public, None).unwrap(), SecretCheck::Public);
        let without_secret = PresentedClient { secret: None, ..presented };
        assert!(secret_check(Some(TokenEndpointAuthMethod::ClientSecretPost), &without_secret, Some("hash")).is_err());
    }

    #[test]
    fn oidc_core_9_a_declared_method_must_be_used_and_every_refusal_says_the_same() {
        let post = presented_client(None, &form("client_id=app&client_secret=s")).unwrap();
        assert!(check_method(Some(TokenEndpointAuthMethod::ClientSecretPost), &post).is_ok());
        let err = check_method(Some(TokenEndpointAuthMethod::ClientSecretBasic), &post).unwrap_err();
        assert_eq!(code_of(err), OAuthError::invalid_client(AUTHENTICATION_FAILED), "nothing about the method");
        let header = basic("app:s");
        let basic_client = presented_client(Some(&header), &form("")).unwrap();
        assert!(check_method(Some(TokenEndpointAuthMethod::ClientSecretPost), &basic_client).is_err());
    }

    #[test]
    fn a_client_that_declared_no_method_may_send_its_secret_either_way_but_not_none() {
        use TokenEndpointAuthMethod::{ClientSecretBasic, ClientSecretPost};
        assert!(method_accepted(None, ClientSecretBasic));
        assert!(method_accepted(None, ClientSecretPost));
        assert!(!method_accepted(None, TokenEndpointAuthMethod::None), "a confidential client must send its secret");
        assert!(!method_accepted(Some(TokenEndpointAuthMethod::None), ClientSecretPost));
    }

    #[test]
    fn every_failed_authentication_answers_the_same_description() {
        let failures = [
            presented_client(None, &form("")).unwrap_err(),
            presented_client(Some("Bearer abc"), &form("")).unwrap_err(),
            presented_client(Some(&basic("no-colon")), &form("")).unwrap_err(),
        ];
        for failure in failures {
            assert_eq!(code_of(failure), OAuthError::invalid_client(AUTHENTICATION_FAILED));
        }
    }
}
