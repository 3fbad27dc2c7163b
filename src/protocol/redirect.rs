//! Redirection endpoints (RFC 6749 §3.1.2): which `redirect_uri` a request may use, and
//! how responses are appended to it (RFC 6749 §4.1.2, §4.1.2.1; RFC 9207 §2).
//!
//! A redirect URI that is missing or not registered is never redirected to: the error is
//! shown to the user on an error page (RFC 6749 §4.1.2.1, RFC 9700 §4.1.3).

use url::{Url, form_urlencoded};

use crate::model::ClientRecord;
use crate::vocabulary::OAuthError;

/// Why a request's redirect URI cannot be used. These errors must be rendered on an error
/// page, never sent to the (unverified) redirect URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RedirectUriError {
    /// `redirect_uri` was omitted where it is required.
    #[error("redirect_uri is required")]
    Missing,
    /// `redirect_uri` is not one of the client's registered URIs.
    #[error("redirect_uri is not registered for this client")]
    NotRegistered,
}

impl RedirectUriError {
    /// Text for the error page (RFC 6749 §4.1.2.1: inform the resource owner).
    pub fn description(self) -> &'static str {
        match self {
            RedirectUriError::Missing => "redirect_uri is required",
            RedirectUriError::NotRegistered => "redirect_uri is not registered for this client",
        }
    }
}

impl From<RedirectUriError> for OAuthError {
    fn from(err: RedirectUriError) -> Self {
        OAuthError::invalid_request(err.description())
    }
}

/// Back-Channel Logout 1.0 §2.2 and Front-Channel Logout 1.0 §2: a logout URI is
/// absolute, has no fragment and uses `https`; `http` only to a loopback address (as
/// RFC 8252 §7.3 allows for redirects), where the logout token or the session id cannot
/// cross a network.
pub fn is_logout_uri(uri: &str) -> bool {
    let Ok(url) = Url::parse(uri) else { return false };
    if url.fragment().is_some() || uri.contains('#') {
        return false;
    }
    match url.scheme() {
        "https" => true,
        "http" => match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
            None => false,
        },
        _ => false,
    }
}

/// RFC 9700 §4.1.3 and RFC 6749 §3.1.2.3: a redirect URI is accepted only if it equals a
/// registered one character for character — no prefix matching, no normalisation, no case
/// folding, no wildcard. The one exception is RFC 8252 §7.3 for native clients
/// ([`ClientRecord::is_native`]): a loopback IP redirect URI matches with any port.
pub fn is_registered(client: &ClientRecord, redirect_uri: &str) -> bool {
    let native = client.is_native();
    client
        .redirect_uris
        .iter()
        .any(|registered| registered == redirect_uri || (native && loopback_matches_any_port(registered, redirect_uri)))
}

/// The loopback IP literals of RFC 8252 §7.3, as written after `http://`. `localhost` is
/// not one: §8.3 advises against it, so it is matched exactly, port included.
const LOOPBACK_PREFIXES: [&str; 2] = ["http://127.0.0.1", "http://[::1]"];

/// RFC 8252 §7.3: `requested` is `registered` with the port replaced by any port (or none).
/// Both must be `http` on the same loopback IP literal, spelled exactly; everything after
/// the port — path and query — must be equal character for character.
fn loopback_matches_any_port(registered: &str, requested: &str) -> bool {
    LOOPBACK_PREFIXES.iter().any(|prefix| {
        match (after_loopback_port(registered, prefix), after_loopback_port(requested, prefix)) {
            (Some(registered_rest), Some(requested_rest)) => registered_rest == requested_rest,
            _ => false,
        }
    })
}

/// What follows `prefix` and an optional `:port` in `uri`, if that is a path or nothing.
/// The port must be 1–65535 written without leading zeros, so `127.0.0.1.evil.example`,
/// `127.0.0.1:80@evil.example` and `127.0.0.1:` are not loopback URIs.
fn after_loopback_port<'a>(uri: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = uri.strip_prefix(prefix)?;
    let rest = match rest.strip_prefix(':') {
        Some(with_port) => {
            let digits = with_port.bytes().take_while(u8::is_ascii_digit).count();
            let (port, rest) = with_port.split_at(digits);
            let valid = !port.starts_with('0') && port.parse::<u16>().is_ok_and(|port| port > 0);
            if !valid {
                return None;
            }
            rest
        }
        None => rest,
    };
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// RFC 9700 §4.11.2 and RP-Initiated Logout 1.0 §3: whether the provider vouches for the
/// client's redirect URIs, and so sends the browser there before the user has done anything
/// (an authorization error, a logout with no session to end). A client that registered
/// itself (RFC 7591) chose its URIs alone, and anyone may register one that phishes, so the
/// browser goes there only after the user acted: signed in, consented or refused,
/// confirmed a logout. Declared clients' URIs were vetted by whoever declared them.
pub fn vouches_for_redirect_uris(client: &ClientRecord) -> bool {
    client.registration.is_none()
}

/// RFC 6749 §3.1.2.3 and OIDC Core §3.1.2.1: the redirect URI an authorization request
/// will be answered at.
///
/// An omitted `redirect_uri` is allowed by RFC 6749 only when the client has exactly one
/// registered URI; OpenID Connect requests (`openid` in scope) must always send it.
pub fn resolve_redirect_uri(
    client: &ClientRecord,
    requested: Option<&str>,
    openid: bool,
) -> Result<String, RedirectUriError> {
    match requested {
        Some(uri) if is_registered(client, uri) => Ok(uri.to_owned()),
        Some(_) => Err(RedirectUriError::NotRegistered),
        None if openid => Err(RedirectUriError::Missing),
        None => match client.redirect_uris.as_slice() {
            [only] => Ok(only.clone()),
            _ => Err(RedirectUriError::Missing),
        },
    }
}

/// RFC 6749 §3.1.2 and §4.1.2: adds `params` to the query component of `redirect_uri`,
/// keeping any query it already has (which "MUST be retained") and encoding the values as
/// `application/x-www-form-urlencoded` (RFC 6749 Appendix B).
///
/// The URI is otherwise left exactly as registered, so custom schemes and unusual but
/// registered spellings survive. A fragment, which RFC 6749 §3.1.2 forbids anyway, stays
/// after the query.
pub fn append_query(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    let (base, fragment) = match redirect_uri.split_once('#') {
        Some((base, fragment)) => (base, Some(fragment)),
        None => (redirect_uri, None),
    };
    let encoded = form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
    let mut out = String::with_capacity(redirect_uri.len() + encoded.len() + 2);
    out.push_str(base);
    if !encoded.is_empty() {
        match base.find('?') {
            None => out.push('?'),
            Some(i) if i + 1 == base.len() || base.ends_with('&') => {}
            Some(_) => out.push('&'),
        }
        out.push_str(&encoded);
    }
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

/// The parameters of an authorization response, whatever the response mode carries them.
pub type ResponseParams = Vec<(&'static str, String)>;

/// RFC 6749 §4.1.2.1 and RFC 9207 §2: `error`, `error_description`, `state` when the
/// client sent one, and `iss`.
pub fn error_params(error: &OAuthError, state: Option<&str>, issuer: &str) -> ResponseParams {
    let description = crate::vocabulary::error_description(&error.description);
    let params = vec![("error", error.code.as_str().to_owned()), ("error_description", description.into_owned())];
    with_state_and_issuer(params, state, issuer)
}

/// RFC 6749 §4.1.2 and RFC 9207 §2: `code`, `state` when the client sent one, and `iss`.
pub fn code_params(code: &str, state: Option<&str>, issuer: &str) -> ResponseParams {
    with_state_and_issuer(vec![("code", code.to_owned())], state, issuer)
}

fn with_state_and_issuer(mut params: ResponseParams, state: Option<&str>, issuer: &str) -> ResponseParams {
    if let Some(state) = state {
        params.push(("state", state.to_owned()));
    }
    params.push(("iss", issuer.to_owned()));
    params
}

/// OAuth 2.0 Multiple Response Type Encoding Practices §2.1: `params` in the query of
/// `redirect_uri`.
pub fn query_redirect(redirect_uri: &str, params: &[(&'static str, String)]) -> String {
    let pairs: Vec<(&str, &str)> = params.iter().map(|(name, value)| (*name, value.as_str())).collect();
    append_query(redirect_uri, &pairs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocabulary::ErrorCode;

    fn client(uris: &[&str]) -> ClientRecord {
        ClientRecord::fixture("app", uris, "openid")
    }

    #[test]
    fn rfc9700_4_11_2_only_declared_clients_redirect_uris_are_vouched_for() {
        assert!(vouches_for_redirect_uris(&client(&["https://app.example/cb"])));
        let registered = ClientRecord {
            registration: Some(crate::model::Registration {
                metadata: Default::default(),
                access_token_hash: "h".into(),
                client_id_issued_at: 1,
            }),
            ..client(&["https://evil.example/cb"])
        };
        assert!(!vouches_for_redirect_uris(&registered));
    }

    #[test]
    fn rfc9700_4_1_3_exact_match_is_registered() {
        let c = client(&["https://app.example/cb", "http://127.0.0.1:8080/cb"]);
        assert!(is_registered(&c, "https://app.example/cb"));
        assert!(is_registered(&c, "http://127.0.0.1:8080/cb"));
    }

    #[test]
    fn rfc9700_4_1_3_no_prefix_normalisation_or_case_folding() {
        let c = client(&["https://app.example/cb"]);
        for near_miss in [
            "https://app.example/cb/",
            "https://app.example/cb/evil",
            "https://app.example/cb?x=1",
            "https://app.example/cb#x",
            "https://APP.example/cb",
            "HTTPS://app.example/cb",
            "https://app.example:443/cb",
            "https://app.example/%63b",
            "https://app.example/./cb",
            "https://app.example.evil/cb",
            "https://app.example/c",
            "",
        ] {
            assert!(!is_registered(&c, near_miss), "{near_miss}");
        }
    }

    fn native(uris: &[&str]) -> ClientRecord {
        let c = client(uris);
        ClientRecord { policy: crate::model::ClientPolicy { native_application: true, ..c.policy.clone() }, ..c }
    }

    fn confidential(uris: &[&str]) -> ClientRecord {
        ClientRecord {
            secret_hash: Some("hash".into()),
            auth_method: Some(crate::vocabulary::TokenEndpointAuthMethod::ClientSecretBasic),
            ..client(uris)
        }
    }

    fn registered(uris: &[&str], application_type: &str) -> ClientRecord {
        let metadata =
            crate::vocabulary::ClientMetadata { application_type: Some(application_type.into()), ..Default::default() };
        ClientRecord {
            registration: Some(crate::model::Registration {
                metadata,
                access_token_hash: "h".into(),
                client_id_issued_at: 1,
            }),
            ..client(uris)
        }
    }

    #[test]
    fn rfc8252_7_3_ipv4_loopback_matches_any_port() {
        let c = native(&["http://127.0.0.1/callback"]);
        for uri in [
            "http://127.0.0.1/callback",
            "http://127.0.0.1:8000/callback",
            "http://127.0.0.1:1/callback",
            "http://127.0.0.1:65535/callback",
        ] {
            assert!(is_registered(&c, uri), "{uri}");
        }
    }

    #[test]
    fn rfc8252_7_3_ipv6_loopback_matches_any_port() {
        let c = native(&["http://[::1]/callback"]);
        assert!(is_registered(&c, "http://[::1]:53123/callback"));
        assert!(is_registered(&c, "http://[::1]/callback"));
        assert!(!is_registered(&c, "http://127.0.0.1:53123/callback"), "the IP literal must be the registered one");
    }

    #[test]
    fn rfc8252_7_3_registered_port_is_replaced_by_any_port() {
        let c = native(&["http://127.0.0.1:8000/cb"]);
        assert!(is_registered(&c, "http://127.0.0.1:18000/cb"));
        assert!(is_registered(&c, "http://127.0.0.1/cb"));
    }

    #[test]
    fn rfc8252_7_3_registered_without_path_matches_without_path() {
        let c = native(&["http://127.0.0.1"]);
        assert!(is_registered(&c, "http://127.0.0.1:4000"));
        assert!(!is_registered(&c, "http://127.0.0.1:4000/"), "path is compared exactly");
    }

    #[test]
    fn rfc8252_7_3_path_and_query_stay_exact() {
        let c = native(&["http://127.0.0.1/cb?x=1"]);
        assert!(is_registered(&c, "http://127.0.0.1:9000/cb?x=1"));
        for near_miss in [
            "http://127.0.0.1:9000/cb",
            "http://127.0.0.1:9000/cb?x=2",
            "http://127.0.0.1:9000/cb?x=1&y=2",
            "http://127.0.0.1:9000/CB?x=1",
            "http://127.0.0.1:9000/cb/?x=1",
            "http://127.0.0.1:9000/cb?x=1#f",
            "http://127.0.0.1:9000//cb?x=1",
        ] {
            assert!(!is_registered(&c, near_miss), "{near_miss}");
        }
    }

    #[test]
    fn rfc8252_7_3_other_loopback_addresses_and_lookalike_hosts_do_not_match() {
        let c = native(&["http://127.0.0.1/cb", "http://[::1]/cb"]);
        for uri in [
            "http://127.0.0.2/cb",
            "http://127.0.0.2:8000/cb",
            "http://127.0.0.1.evil.com/cb",
            "http://127.0.0.1.evil.com:8000/cb",
            "http://127.1/cb",
            "http://2130706433/cb",
            "http://0x7f000001/cb",
            "http://[0:0:0:0:0:0:0:1]:8000/cb",
            "http://[::ffff:127.0.0.1]:8000/cb",
            "http://[::1].evil.com/cb",
        ] {
            assert!(!is_registered(&c, uri), "{uri}");
        }
    }

    #[test]
    fn rfc8252_7_3_userinfo_tricks_do_not_match() {
        let c = native(&["http://127.0.0.1/cb"]);
        for uri in [
            "http://127.0.0.1:8000@evil.com/cb",
            "http://127.0.0.1@evil.com/cb",
            "http://evil.com@127.0.0.1/cb",
            "http://evil.com@127.0.0.1:8000/cb",
            "http://127.0.0.1:8000\\@evil.com/cb",
            "http://user:pass@127.0.0.1:8000/cb",
        ] {
            assert!(!is_registered(&c, uri), "{uri}");
        }
    }

    #[test]
    fn rfc8252_7_3_ports_must_be_valid_decimal_ports() {
        let c = native(&["http://127.0.0.1/cb"]);
        for uri in [
            "http://127.0.0.1:/cb",
            "http://127.0.0.1:0/cb",
            "http://127.0.0.1:08000/cb",
            "http://127.0.0.1:65536/cb",
            "http://127.0.0.1:99999999999999999999/cb",
            "http://127.0.0.1:+80/cb",
            "http://127.0.0.1:80a/cb",
            "http://127.0.0.1: 80/cb",
        ] {
            assert!(!is_registered(&c, uri), "{uri}");
        }
    }

    #[test]
    fn rfc8252_7_3_only_http_loopback_gets_any_port() {
        let c = native(&["https://127.0.0.1/cb", "HTTP://127.0.0.1/up"]);
        assert!(is_registered(&c, "https://127.0.0.1/cb"));
        assert!(!is_registered(&c, "https://127.0.0.1:8443/cb"), "https loopback is matched exactly");
        assert!(!is_registered(&c, "http://127.0.0.1:8000/cb"), "scheme must be the registered one");
        assert!(!is_registered(&c, "HTTP://127.0.0.1:8000/up"), "the scheme is compared as written");
        assert!(!is_registered(&c, "http://127.0.0.1:8000/up"));
    }

    #[test]
    fn rfc8252_8_3_localhost_is_matched_exactly() {
        let c = native(&["http://localhost/cb", "http://localhost:8000/cb"]);
        assert!(is_registered(&c, "http://localhost/cb"));
        assert!(is_registered(&c, "http://localhost:8000/cb"));
        assert!(!is_registered(&c, "http://localhost:1234/cb"));
        assert!(!is_registered(&native(&["http://localhost/cb"]), "http://localhost:8000/cb"));
        assert!(!is_registered(&c, "http://127.0.0.1:8000/cb"), "localhost is not the loopback literal");
    }

    #[test]
    fn rfc8252_7_1_private_use_schemes_are_matched_exactly() {
        let c = native(&["com.example.app:/oauth2redirect"]);
        assert!(is_registered(&c, "com.example.app:/oauth2redirect"));
        for near_miss in
            ["com.example.app:/oauth2redirect/", "com.example.app://oauth2redirect", "com.example.apps:/oauth2redirect"]
        {
            assert!(!is_registered(&c, near_miss), "{near_miss}");
        }
    }

    #[test]
    fn rfc8252_7_3_declared_web_clients_keep_exact_loopback_matching_even_when_public() {
        let public_web = client(&["http://127.0.0.1:8080/cb"]);
        assert!(public_web.is_public() && !public_web.is_native(), "a public SPA is not native");
        assert!(!is_registered(&public_web, "http://127.0.0.1:8081/cb"));
        let c = confidential(&["http://127.0.0.1:8080/cb"]);
        assert!(is_registered(&c, "http://127.0.0.1:8080/cb"));
        assert!(!is_registered(&c, "http://127.0.0.1:8081/cb"));
        assert!(!is_registered(&c, "http://127.0.0.1/cb"));
    }

    #[test]
    fn rfc8252_7_3_registered_clients_get_any_port_only_as_application_type_native() {
        let native_client = registered(&["http://127.0.0.1/cb"], "native");
        assert!(native_client.is_native());
        assert!(is_registered(&native_client, "http://127.0.0.1:40000/cb"));
        let web_client = registered(&["http://127.0.0.1/cb"], "web");
        assert!(!web_client.is_native(), "a public web client (an SPA) is not native");
        assert!(!is_registered(&web_client, "http://127.0.0.1:40000/cb"));
    }

    #[test]
    fn rfc8252_7_3_resolved_uri_is_the_requested_one_with_its_runtime_port() {
        let c = native(&["http://127.0.0.1/cb"]);
        assert_eq!(
            resolve_redirect_uri(&c, Some("http://127.0.0.1:43210/cb"), true).unwrap(),
            "http://127.0.0.1:43210/cb"
        );
        assert_eq!(
            resolve_redirect_uri(&c, Some("http://127.0.0.2:43210/cb"), true),
            Err(RedirectUriError::NotRegistered)
        );
    }

    #[test]
    fn rfc6749_3_1_2_3_registered_uri_is_used() {
        let c = client(&["https://a.example/cb", "https://b.example/cb"]);
        assert_eq!(resolve_redirect_uri(&c, Some("https://b.example/cb"), true).unwrap(), "https://b.example/cb");
    }

    #[test]
    fn rfc6749_3_1_2_3_unregistered_uri_is_refused() {
        let c = client(&["https://a.example/cb"]);
        let err = resolve_redirect_uri(&c, Some("https://evil.example/cb"), false).unwrap_err();
        assert_eq!(err, RedirectUriError::NotRegistered);
        assert_eq!(err.description(), "redirect_uri is not registered for this client");
    }

    #[test]
    fn rfc6749_3_1_2_3_omitted_uri_defaults_to_the_only_registered_one() {
        let c = client(&["https://a.example/cb"]);
        assert_eq!(resolve_redirect_uri(&c, None, false).unwrap(), "https://a.example/cb");
    }

    #[test]
    fn rfc6749_3_1_2_3_omitted_uri_with_several_registered_is_missing() {
        let c = client(&["https://a.example/cb", "https://b.example/cb"]);
        assert_eq!(resolve_redirect_uri(&c, None, false), Err(RedirectUriError::Missing));
        assert_eq!(resolve_redirect_uri(&client(&[]), None, false), Err(RedirectUriError::Missing));
    }

    #[test]
    fn oidc_core_3_1_2_1_redirect_uri_is_required_for_openid_requests() {
        let c = client(&["https://a.example/cb"]);
        let err = resolve_redirect_uri(&c, None, true).unwrap_err();
        assert_eq!(err, RedirectUriError::Missing);
        assert_eq!(err.description(), "redirect_uri is required");
    }

    #[test]
    fn redirect_uri_errors_become_invalid_request_for_the_error_page() {
        let err = OAuthError::from(RedirectUriError::NotRegistered);
        assert_eq!(err.code, ErrorCode::InvalidRequest);
        assert_eq!(err.description, "redirect_uri is not registered for this client");
    }

    #[test]
    fn rfc6749_4_1_2_parameters_are_added_as_a_query() {
        assert_eq!(append_query("https://a.example/cb", &[("code", "abc")]), "https://a.example/cb?code=abc");
    }

    #[test]
    fn rfc6749_3_1_2_existing_query_is_retained() {
        assert_eq!(append_query("https://a.example/cb?x=1", &[("code", "c")]), "https://a.example/cb?x=1&code=c");
        assert_eq!(append_query("https://a.example/cb?", &[("code", "c")]), "https://a.example/cb?code=c");
        assert_eq!(append_query("https://a.example/cb?x=1&", &[("code", "c")]), "https://a.example/cb?x=1&code=c");
    }

    #[test]
    fn rfc6749_appendix_b_values_are_form_urlencoded() {
        let uri = append_query("https://a.example/cb", &[("state", "a b&c=d/é?#+")]);
        assert_eq!(uri, "https://a.example/cb?state=a+b%26c%3Dd%2F%C3%A9%3F%23%2B");
        let query = url::Url::parse(&uri).unwrap();
        let pairs: Vec<_> = query.query_pairs().collect();
        assert_eq!(pairs, [("state".into(), "a b&c=d/é?#+".into())]);
    }

    #[test]
    fn rfc6749_3_1_2_fragment_stays_after_the_query() {
        assert_eq!(append_query("https://a.example/cb#f", &[("code", "c")]), "https://a.example/cb?code=c#f");
    }

    #[test]
    fn custom_scheme_and_loopback_uris_are_kept_verbatim() {
        assert_eq!(append_query("com.example.app:/cb", &[("code", "c")]), "com.example.app:/cb?code=c");
        assert_eq!(append_query("http://[::1]:53000/", &[("code", "c")]), "http://[::1]:53000/?code=c");
    }

    #[test]
    fn no_parameters_leaves_the_uri_unchanged() {
        assert_eq!(append_query("https://a.example/cb?x=1", &[]), "https://a.example/cb?x=1");
    }

    #[test]
    fn rfc6749_4_1_2_and_rfc9207_2_code_redirect_carries_code_state_and_iss() {
        let uri = query_redirect("https://a.example/cb", &code_params("c0de", Some("xyz"), "https://id.example"));
        assert_eq!(uri, "https://a.example/cb?code=c0de&state=xyz&iss=https%3A%2F%2Fid.example");
    }

    #[test]
    fn rfc6749_4_1_2_state_is_omitted_when_the_client_sent_none() {
        let uri = query_redirect("https://a.example/cb", &code_params("c0de", None, "https://id.example"));
        assert_eq!(uri, "https://a.example/cb?code=c0de&iss=https%3A%2F%2Fid.example");
    }

    #[test]
    fn rfc6749_4_1_2_1_and_rfc9207_2_error_redirect_carries_error_state_and_iss() {
        let err = OAuthError::invalid_scope("scope must include openid");
        let uri = query_redirect("https://a.example/cb?x=1", &error_params(&err, Some("s t"), "https://id.example"));
        assert_eq!(
            uri,
            "https://a.example/cb?x=1&error=invalid_scope&error_description=scope+must+include+openid\
             &state=s+t&iss=https%3A%2F%2Fid.example"
        );
        let without_state = query_redirect("https://a.example/cb", &error_params(&err, None, "https://id.example"));
        assert!(!without_state.contains("state="));
    }
}
