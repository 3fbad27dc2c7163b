//! GitHub (or GitHub Enterprise Server) as an upstream: the OAuth app web flow with
//! `state` and PKCE S256 (GitHub has no ID token and no `nonce`), then the REST API for
//! the person (`/user`), their primary verified email (`/user/emails`), organisations
//! (`/user/orgs`) and teams (`/user/teams`). The person's claims are put under the standard
//! names (and [`GITHUB_ORGS`]/[`GITHUB_TEAMS`]) for [`crate::protocol::federation::admit`].
//!
//! GitHub OAuth app tokens do not expire, so the access token is what a refresh asks
//! GitHub again with; a token the person or an organisation revoked answers 401, which
//! ends the refresh family.

use std::sync::OnceLock;
use std::time::Duration;

use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, LINK, USER_AGENT};
use serde::Deserialize;
use serde_json::{Map, Value};
use url::Url;

use super::{Attempt, ConnectorError, Vouched, pkce_challenge};
use crate::model::GitHubUpstream;
use crate::outbound::{self, HttpClient};
use crate::protocol::federation::{GITHUB_ORGS, GITHUB_TEAMS};

/// How long one request to GitHub may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The OAuth scopes asked: the profile, the email addresses, organisation and team
/// memberships (read only).
const SCOPES: &str = "read:user user:email read:org";
/// The most pages of 100 read of one list (emails, organisations, teams).
const MAX_PAGES: usize = 10;
/// The REST API version the answers are read as.
const API_VERSION: &str = "2022-11-28";

/// The HTTP client for GitHub, made at the first sign-in through it.
#[derive(Default)]
pub struct GitHubConnectors {
    http: OnceLock<HttpClient>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

#[derive(Deserialize)]
struct User {
    id: u64,
    login: String,
    name: Option<String>,
}

#[derive(Deserialize)]
struct Email {
    email: String,
    primary: bool,
    verified: bool,
}

#[derive(Deserialize)]
struct Org {
    login: String,
}

#[derive(Deserialize)]
struct Team {
    slug: String,
    organization: Org,
}

impl GitHubConnectors {
    fn http(&self) -> Result<&HttpClient, ConnectorError> {
        if let Some(http) = self.http.get() {
            return Ok(http);
        }
        let made = outbound::client().map_err(|e| ConnectorError::Http(e.to_string()))?;
        Ok(self.http.get_or_init(|| made))
    }

    /// Where to send the browser: GitHub's authorize page with our client id,
    /// `redirect_uri`, the scopes, `state` and the S256 challenge.
    pub fn authorization_url(
        &self,
        upstream: &GitHubUpstream,
        redirect_uri: &str,
        attempt: &Attempt<'_>,
    ) -> Result<String, ConnectorError> {
        let endpoint = format!("{}/login/oauth/authorize", upstream.web_url);
        let mut url = Url::parse(&endpoint).map_err(|_| ConnectorError::Url(endpoint.clone()))?;
        url.query_pairs_mut()
            .append_pair("client_id", &upstream.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", SCOPES)
            .append_pair("state", attempt.state)
            .append_pair("code_challenge", &pkce_challenge(attempt.code_verifier))
            .append_pair("code_challenge_method", "S256")
            .append_pair("allow_signup", "false");
        Ok(url.into())
    }

    /// The callback's `code` exchanged (with the PKCE verifier) for an access token, then
    /// the person as GitHub's API describes them.
    pub async fn complete(
        &self,
        upstream: &GitHubUpstream,
        redirect_uri: &str,
        code: &str,
        attempt: &Attempt<'_>,
    ) -> Result<Vouched, ConnectorError> {
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &upstream.client_id)
            .append_pair("client_secret", &upstream.client_secret)
            .append_pair("code", code)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("code_verifier", attempt.code_verifier)
            .finish();
        let endpoint = format!("{}/login/oauth/access_token", upstream.web_url);
        let request = hyper::Request::post(&endpoint)
            .header(ACCEPT, "application/json")
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(USER_AGENT, "portcullis")
            .body(form.into_bytes())
            .map_err(|_| ConnectorError::Url(endpoint.clone()))?;
        let answer = outbound::exchange(self.http()?, request, TIMEOUT)
            .await
            .map_err(|e| ConnectorError::Token(e.to_string()))?;
        let parsed: TokenAnswer = serde_json::from_slice(answer.body())
            .map_err(|e| ConnectorError::Token(format!("HTTP {}: {e}", answer.status())))?;
        // GitHub answers a refused code with 200 and an `error` member.
        let token = match (parsed.access_token, parsed.error) {
            (Some(token), None) => token,
            (_, error) => {
                let detail = parsed.error_description.or(error).unwrap_or_else(|| "no access token".into());
                return Err(ConnectorError::Refused(detail));
            }
        };
        let claims = self.person(upstream, &token).await?;
        Ok(Vouched { claims, refresh_token: Some(token) })
    }

    /// Asks GitHub again about the person `token` was given for, who had user id
    /// `subject`: their claims now. A revoked token is [`ConnectorError::Refused`].
    pub async fn recheck(
        &self,
        upstream: &GitHubUpstream,
        token: &str,
        subject: &str,
    ) -> Result<Vouched, ConnectorError> {
        let claims = self.person(upstream, token).await?;
        if claims.get("sub").and_then(Value::as_str) != Some(subject) {
            return Err(ConnectorError::Userinfo("the token is now for another GitHub user".into()));
        }
        Ok(Vouched { claims, refresh_token: Some(token.to_owned()) })
    }

    /// The person `token` is for, as claims.
    async fn person(&self, upstream: &GitHubUpstream, token: &str) -> Result<Map<String, Value>, ConnectorError> {
        let user: User = self.get_one(upstream, token, "/user").await?;
        let emails: Vec<Email> = self.get_all(upstream, token, "/user/emails").await?;
        let orgs: Vec<Org> = self.get_all(upstream, token, "/user/orgs").await?;
        let teams: Vec<Team> = self.get_all(upstream, token, "/user/teams").await?;
        let mut claims = Map::new();
        claims.insert("sub".into(), Value::from(user.id.to_string()));
        claims.insert("preferred_username".into(), Value::from(user.login));
        if let Some(name) = user.name.filter(|name| !name.is_empty()) {
            claims.insert("name".into(), Value::from(name));
        }
        if let Some(primary) = emails.into_iter().find(|email| email.primary && email.verified) {
            claims.insert("email".into(), Value::from(primary.email));
            claims.insert("email_verified".into(), Value::Bool(true));
        }
        claims.insert(GITHUB_ORGS.into(), orgs.into_iter().map(|org| Value::from(org.login)).collect());
        let teams = teams.into_iter().map(|team| Value::from(format!("{}/{}", team.organization.login, team.slug)));
        claims.insert(GITHUB_TEAMS.into(), teams.collect());
        Ok(claims)
    }

    async fn get_one<T: for<'de> Deserialize<'de>>(
        &self,
        upstream: &GitHubUpstream,
        token: &str,
        path: &str,
    ) -> Result<T, ConnectorError> {
        let (body, _) = self.get(token, &format!("{}{path}", upstream.api_url)).await?;
        serde_json::from_slice(&body).map_err(|e| ConnectorError::Userinfo(format!("{path}: {e}")))
    }

    /// Every page of the list at `path`, following the `Link` header's `next` (within the
    /// API only) up to [`MAX_PAGES`].
    async fn get_all<T: for<'de> Deserialize<'de>>(
        &self,
        upstream: &GitHubUpstream,
        token: &str,
        path: &str,
    ) -> Result<Vec<T>, ConnectorError> {
        let mut items = Vec::new();
        let mut next = Some(format!("{}{path}?per_page=100", upstream.api_url));
        for _ in 0..MAX_PAGES {
            let Some(url) = next.take() else { break };
            let (body, link) = self.get(token, &url).await?;
            let page: Vec<T> =
                serde_json::from_slice(&body).map_err(|e| ConnectorError::Userinfo(format!("{path}: {e}")))?;
            items.extend(page);
            next = link.as_deref().and_then(next_link).filter(|url| url.starts_with(&format!("{}/", upstream.api_url)));
        }
        Ok(items)
    }

    /// A GET of the API with the person's token: the body and the `Link` header.
    async fn get(&self, token: &str, url: &str) -> Result<(Vec<u8>, Option<String>), ConnectorError> {
        let request = hyper::Request::get(url)
            .header(ACCEPT, "application/vnd.github+json")
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .header(USER_AGENT, "portcullis")
            .header("x-github-api-version", API_VERSION)
            .body(Vec::new())
            .map_err(|_| ConnectorError::Url(url.to_owned()))?;
        let answer = outbound::exchange(self.http()?, request, TIMEOUT)
            .await
            .map_err(|e| ConnectorError::Userinfo(e.to_string()))?;
        match answer.status().as_u16() {
            200 => {}
            401 => return Err(ConnectorError::Refused("GitHub no longer accepts the token".into())),
            status => return Err(ConnectorError::Userinfo(format!("{url} answered HTTP {status}"))),
        }
        let link = answer.headers().get(LINK).and_then(|value| value.to_str().ok()).map(str::to_owned);
        Ok((answer.into_body(), link))
    }
}

/// The `rel="next"` URL of a `Link` header (RFC 8288), as GitHub paginates.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|link| {
        let (target, params) = link.split_once(';')?;
        let next = params.split(';').any(|param| param.trim() == "rel=\"next\"");
        next.then(|| target.trim().trim_start_matches('<').trim_end_matches('>').to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8288_the_next_link_is_read_from_githubs_link_header() {
        let header = r#"<https://api.github.com/user/teams?page=2>; rel="next", <https://api.github.com/user/teams?page=5>; rel="last""#;
        assert_eq!(next_link(header).as_deref(), Some("https://api.github.com/user/teams?page=2"));
        assert_eq!(next_link(r#"<https://api.github.com/x?page=1>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
    }
}
