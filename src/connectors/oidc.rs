//! An upstream OpenID Connect provider, through the `openidconnect` relying-party library:
//! discovery (cached for an hour), the authorization code flow with PKCE S256, `state` and
//! `nonce`, and the ID token checked as OIDC Core §3.1.3.7 asks (signature by a key of the
//! upstream's JWKS, `iss`, `aud`, `exp`, `nonce`, `at_hash` when present). A token signed
//! with a key the cached JWKS lacks makes the JWKS be fetched again, at most once a
//! minute per issuer, so an upstream's key rotation is picked up without a restart.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, HttpRequest,
    HttpResponse, IssuerUrl, JsonWebKeySet, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, RefreshToken, RequestTokenError, Scope, SignatureVerificationError, TokenResponse,
};
use serde_json::{Map, Value};

use super::{Attempt, ConnectorError, Vouched};
use crate::model::OidcUpstream;
use crate::outbound::{self, HttpClient, OutboundError, with_causes};

/// How long one request to an upstream may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// How long a discovery document is used before it is fetched again.
const DISCOVERY_MAX_AGE: u64 = 3600;
/// The least time between two fetches of an issuer's JWKS for unknown keys.
const JWKS_REFETCH_FLOOR: u64 = 60;
/// The signature algorithms an upstream ID token may use: asymmetric ones only, so a
/// token cannot be forged with the client secret.
const ALGORITHMS: [CoreJwsSigningAlgorithm; 9] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];
/// Claims of the ID token that userinfo may not replace.
const ID_TOKEN_ONLY: [&str; 8] = ["iss", "sub", "aud", "exp", "iat", "nonce", "azp", "at_hash"];

/// The upstream OpenID Connect providers' discovery documents, shared by every request.
#[derive(Default)]
pub struct OidcConnectors {
    /// Made at the first sign-in through an upstream, so a provider without connectors
    /// never reads the system's root certificates.
    http: OnceLock<HttpClient>,
    discovered: Mutex<HashMap<String, Discovered>>,
}

#[derive(Clone)]
struct Discovered {
    metadata: Arc<CoreProviderMetadata>,
    fetched_at: u64,
    jwks_fetched_at: u64,
}

type Exchange = Pin<Box<dyn Future<Output = Result<HttpResponse, OutboundError>> + Send>>;

impl OidcConnectors {
    fn http(&self) -> Result<&HttpClient, ConnectorError> {
        if let Some(http) = self.http.get() {
            return Ok(http);
        }
        let made = outbound::client().map_err(|e| ConnectorError::Http(e.to_string()))?;
        Ok(self.http.get_or_init(|| made))
    }

    /// The HTTP client the library sends through: [`outbound`], no redirects followed.
    fn http_client(&self) -> Result<impl Fn(HttpRequest) -> Exchange + use<>, ConnectorError> {
        let http = self.http()?.clone();
        Ok(move |request| {
            let http = http.clone();
            Box::pin(async move { outbound::exchange(&http, request, TIMEOUT).await }) as Exchange
        })
    }

    /// The issuer's discovery document (and JWKS), from the cache while fresh.
    async fn metadata(&self, issuer: &str, now: u64) -> Result<Discovered, ConnectorError> {
        let cached = self.lock().get(issuer).cloned();
        if let Some(discovered) = cached.filter(|d| now < d.fetched_at.saturating_add(DISCOVERY_MAX_AGE)) {
            return Ok(discovered);
        }
        let fail = |detail: String| ConnectorError::Discovery { issuer: issuer.to_owned(), detail };
        let issuer_url = IssuerUrl::new(issuer.to_owned()).map_err(|e| fail(e.to_string()))?;
        let metadata = CoreProviderMetadata::discover_async(issuer_url, &self.http_client()?)
            .await
            .map_err(|e| fail(with_causes(&e)))?;
        let discovered = Discovered { metadata: Arc::new(metadata), fetched_at: now, jwks_fetched_at: now };
        self.lock().insert(issuer.to_owned(), discovered.clone());
        Ok(discovered)
    }

    /// The issuer's JWKS fetched again, unless it was fetched less than
    /// [`JWKS_REFETCH_FLOOR`] ago: `None` then.
    async fn refetch_jwks(&self, issuer: &str, now: u64) -> Result<Option<Discovered>, ConnectorError> {
        let Some(mut discovered) = self.lock().get(issuer).cloned() else { return Ok(None) };
        if now < discovered.jwks_fetched_at.saturating_add(JWKS_REFETCH_FLOOR) {
            return Ok(None);
        }
        let jwks = JsonWebKeySet::fetch_async(discovered.metadata.jwks_uri(), &self.http_client()?)
            .await
            .map_err(|e| ConnectorError::Discovery { issuer: issuer.to_owned(), detail: with_causes(&e) })?;
        discovered.metadata = Arc::new(discovered.metadata.as_ref().clone().set_jwks(jwks));
        discovered.jwks_fetched_at = now;
        self.lock().insert(issuer.to_owned(), discovered.clone());
        Ok(Some(discovered))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Discovered>> {
        self.discovered.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Where to send the browser: the upstream's authorization endpoint with our client
    /// id, `redirect_uri`, the scopes, `state`, `nonce` and the S256 challenge.
    pub async fn authorization_url(
        &self,
        upstream: &OidcUpstream,
        redirect_uri: &str,
        attempt: &Attempt<'_>,
        now: u64,
    ) -> Result<String, ConnectorError> {
        let discovered = self.metadata(&upstream.issuer, now).await?;
        let client = client(&discovered, upstream, redirect_uri)?;
        let verifier = PkceCodeVerifier::new(attempt.code_verifier.to_owned());
        let (state, nonce) = (attempt.state.to_owned(), attempt.nonce.to_owned());
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || CsrfToken::new(state),
                move || Nonce::new(nonce),
            )
            .add_scopes(upstream.scopes.iter().filter(|scope| *scope != "openid").cloned().map(Scope::new))
            .set_pkce_challenge(PkceCodeChallenge::from_code_verifier_sha256(&verifier));
        if let Some(login_hint) = attempt.login_hint {
            request = request.add_extra_param("login_hint", login_hint);
        }
        let (url, _, _) = request.url();
        Ok(url.into())
    }

    /// Exchanges the callback's `code` and checks the ID token it brings; with
    /// `userinfo`, adds the upstream's userinfo claims (whose `sub` must be the token's).
    pub async fn complete(
        &self,
        upstream: &OidcUpstream,
        redirect_uri: &str,
        code: &str,
        attempt: &Attempt<'_>,
        now: u64,
    ) -> Result<Vouched, ConnectorError> {
        let discovered = self.metadata(&upstream.issuer, now).await?;
        let client = client(&discovered, upstream, redirect_uri)?;
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| ConnectorError::Token(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(attempt.code_verifier.to_owned()))
            .request_async(&self.http_client()?)
            .await
            .map_err(token_error)?;
        let id_token = response.id_token().ok_or(ConnectorError::NoIdToken)?;
        let nonce = Nonce::new(attempt.nonce.to_owned());
        let discovered =
            self.verify(discovered, upstream, redirect_uri, id_token, response.access_token(), now, &nonce).await?;
        let mut claims = payload(id_token)?;
        if upstream.userinfo {
            self.add_userinfo(&discovered, response.access_token().secret(), &mut claims).await?;
        }
        Ok(Vouched { claims, refresh_token: response.refresh_token().map(|token| token.secret().clone()) })
    }

    /// Asks the upstream again about the person `refresh_token` was given for, who had
    /// upstream subject `subject`: the new ID token's (or userinfo's) claims, for the same
    /// subject. An upstream refusing the refresh token is [`ConnectorError::Refused`].
    pub async fn recheck(
        &self,
        upstream: &OidcUpstream,
        redirect_uri: &str,
        refresh_token: &str,
        subject: &str,
        now: u64,
    ) -> Result<Vouched, ConnectorError> {
        let discovered = self.metadata(&upstream.issuer, now).await?;
        let client = client(&discovered, upstream, redirect_uri)?;
        let response = client
            .exchange_refresh_token(&RefreshToken::new(refresh_token.to_owned()))
            .map_err(|e| ConnectorError::Token(e.to_string()))?
            .request_async(&self.http_client()?)
            .await
            .map_err(token_error)?;
        let mut claims = match response.id_token() {
            // OIDC Core §12.2: a refreshed ID token has no nonce to check.
            Some(id_token) => {
                let no_nonce = |_: Option<&Nonce>| Ok(());
                self.verify(
                    discovered.clone(),
                    upstream,
                    redirect_uri,
                    id_token,
                    response.access_token(),
                    now,
                    no_nonce,
                )
                .await?;
                payload(id_token)?
            }
            None => Map::from_iter([("sub".to_owned(), Value::String(subject.to_owned()))]),
        };
        if claims.get("sub").and_then(Value::as_str) != Some(subject) {
            return Err(ConnectorError::IdToken("the refreshed ID token is for another subject".into()));
        }
        if upstream.userinfo || response.id_token().is_none() {
            self.add_userinfo(&discovered, response.access_token().secret(), &mut claims).await?;
        }
        // RFC 6749 §6: without a new refresh token, the one used stays in use.
        let kept = response.refresh_token().map_or_else(|| refresh_token.to_owned(), |token| token.secret().clone());
        Ok(Vouched { claims, refresh_token: Some(kept) })
    }

    /// Checks `id_token` (and its `at_hash` against `access_token`), fetching the JWKS
    /// again once when it is signed by a key the cached one lacks.
    #[allow(clippy::too_many_arguments)]
    async fn verify(
        &self,
        discovered: Discovered,
        upstream: &OidcUpstream,
        redirect_uri: &str,
        id_token: &CoreIdToken,
        access_token: &openidconnect::AccessToken,
        now: u64,
        nonce: impl openidconnect::NonceVerifier + Clone,
    ) -> Result<Discovered, ConnectorError> {
        let first = check(&client(&discovered, upstream, redirect_uri)?, id_token, access_token, nonce.clone());
        match first {
            Err(Check::UnknownKey) => match self.refetch_jwks(&upstream.issuer, now).await? {
                Some(refetched) => {
                    let client = client(&refetched, upstream, redirect_uri)?;
                    check(&client, id_token, access_token, nonce).map_err(Check::into_error)?;
                    Ok(refetched)
                }
                None => Err(Check::UnknownKey.into_error()),
            },
            Err(other) => Err(other.into_error()),
            Ok(()) => Ok(discovered),
        }
    }

    /// Merges the upstream's userinfo claims into `claims` (OIDC Core §5.3.2: its `sub`
    /// must be the ID token's); the ID token's identity claims stay.
    async fn add_userinfo(
        &self,
        discovered: &Discovered,
        access_token: &str,
        claims: &mut Map<String, Value>,
    ) -> Result<(), ConnectorError> {
        let Some(endpoint) = discovered.metadata.userinfo_endpoint() else {
            return Err(ConnectorError::Userinfo("the upstream has no userinfo endpoint".into()));
        };
        let request = hyper::Request::get(endpoint.url().as_str())
            .header(hyper::header::AUTHORIZATION, format!("Bearer {access_token}"))
            .header(hyper::header::ACCEPT, "application/json")
            .body(Vec::new())
            .map_err(|e| ConnectorError::Userinfo(e.to_string()))?;
        let response = outbound::exchange(self.http()?, request, TIMEOUT)
            .await
            .map_err(|e| ConnectorError::Userinfo(e.to_string()))?;
        if !response.status().is_success() {
            return Err(ConnectorError::Userinfo(format!("HTTP {}", response.status())));
        }
        let userinfo: Map<String, Value> =
            serde_json::from_slice(response.body()).map_err(|e| ConnectorError::Userinfo(e.to_string()))?;
        if userinfo.get("sub") != claims.get("sub") {
            return Err(ConnectorError::Userinfo("its sub is not the ID token's".into()));
        }
        for (name, value) in userinfo {
            if !ID_TOKEN_ONLY.contains(&name.as_str()) {
                claims.insert(name, value);
            }
        }
        Ok(())
    }
}

/// How an ID token check failed: for a key the JWKS lacks, or otherwise.
enum Check {
    UnknownKey,
    Invalid(String),
}

impl Check {
    fn into_error(self) -> ConnectorError {
        match self {
            Check::UnknownKey => ConnectorError::IdToken("signed with a key the upstream's JWKS does not hold".into()),
            Check::Invalid(detail) => ConnectorError::IdToken(detail),
        }
    }
}

fn check(
    client: &UpstreamClient,
    id_token: &CoreIdToken,
    access_token: &openidconnect::AccessToken,
    nonce: impl openidconnect::NonceVerifier,
) -> Result<(), Check> {
    let verifier = client.id_token_verifier().set_allowed_algs(ALGORITHMS);
    let claims = id_token.claims(&verifier, nonce).map_err(|error| match error {
        ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey) => Check::UnknownKey,
        other => Check::Invalid(other.to_string()),
    })?;
    if let Some(expected) = claims.access_token_hash() {
        let invalid = |e: &dyn std::fmt::Display| Check::Invalid(e.to_string());
        let algorithm = id_token.signing_alg().map_err(|e| invalid(&e))?;
        let key = id_token.signing_key(&verifier).map_err(|e| invalid(&e))?;
        let actual = AccessTokenHash::from_token(access_token, algorithm, key).map_err(|e| invalid(&e))?;
        if actual != *expected {
            return Err(Check::Invalid("its at_hash does not match the access token".into()));
        }
    }
    Ok(())
}

type UpstreamClient = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

fn client(
    discovered: &Discovered,
    upstream: &OidcUpstream,
    redirect_uri: &str,
) -> Result<UpstreamClient, ConnectorError> {
    let redirect = RedirectUrl::new(redirect_uri.to_owned()).map_err(|_| ConnectorError::Url(redirect_uri.into()))?;
    Ok(CoreClient::from_provider_metadata(
        discovered.metadata.as_ref().clone(),
        ClientId::new(upstream.client_id.clone()),
        Some(ClientSecret::new(upstream.client_secret.clone())),
    )
    .set_redirect_uri(redirect))
}

/// The claims of a checked ID token, as JSON: the mappings read any claim by path.
fn payload(id_token: &CoreIdToken) -> Result<Map<String, Value>, ConnectorError> {
    let compact = id_token.to_string();
    let part = compact.split('.').nth(1).ok_or_else(|| ConnectorError::IdToken("not a compact JWS".into()))?;
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|e| ConnectorError::IdToken(e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| ConnectorError::IdToken(e.to_string()))
}

fn token_error<E: std::error::Error + 'static>(
    error: RequestTokenError<E, openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>>,
) -> ConnectorError {
    match error {
        RequestTokenError::ServerResponse(response) => ConnectorError::Refused(response.to_string()),
        other => ConnectorError::Token(with_causes(&other)),
    }
}
