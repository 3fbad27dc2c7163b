//! The web origins of a client: the browser origins whose scripts may read the answers of
//! the token, userinfo and revocation endpoints (Fetch Standard CORS protocol; OIDC Core
//! §5.3 for userinfo, RFC 7009 §2.3 for revocation, RFC 9700 §4.13 for what never gets CORS).

use url::Url;

/// The origin of an absolute `http`/`https` URI exactly as a browser sends it in `Origin`
/// (`scheme://host[:port]`, the default port left out); `None` for any other scheme, whose
/// origin is opaque (a native app's `com.example.app:/cb` has no web origin).
pub fn origin_of(uri: &str) -> Option<String> {
    let url = Url::parse(uri).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    Some(url.origin().ascii_serialization())
}

/// Whether `value` is an origin and nothing more: no path, query, fragment or user info,
/// spelled as browsers spell it (lowercase host, no default port, no trailing slash).
pub fn is_origin(value: &str) -> bool {
    origin_of(value).as_deref() == Some(value)
}

/// The web origins of a client: the origins of its redirect URIs and post-logout redirect
/// URIs (the rule of Keycloak's `+` web origin), plus the `allowed` ones; an explicit empty
/// `allowed` list turns the default off, leaving the client no web origin at all. Sorted
/// and without duplicates, computed once when the client record is built.
pub fn web_origins(
    redirect_uris: &[String],
    post_logout_redirect_uris: &[String],
    allowed: Option<&[String]>,
) -> Vec<String> {
    let derived = redirect_uris.iter().chain(post_logout_redirect_uris).filter_map(|uri| origin_of(uri));
    let mut origins: Vec<String> = match allowed {
        Some([]) => Vec::new(),
        Some(allowed) => derived.chain(allowed.iter().cloned()).collect(),
        None => derived.collect(),
    };
    origins.sort();
    origins.dedup();
    origins
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    #[test]
    fn the_origin_is_what_a_browser_sends() {
        assert_eq!(origin_of("https://App.Example:443/cb?x=1").as_deref(), Some("https://app.example"));
        assert_eq!(origin_of("http://127.0.0.1:4610/callback").as_deref(), Some("http://127.0.0.1:4610"));
        assert_eq!(origin_of("com.example.app:/cb"), None);
        assert_eq!(origin_of("not a uri"), None);
    }

    #[test]
    fn an_allowed_origin_is_an_origin_and_nothing_more() {
        assert!(is_origin("https://spa.example"));
        assert!(is_origin("http://localhost:3000"));
        for value in [
            "https://spa.example/",
            "https://spa.example/app",
            "https://SPA.example",
            "https://spa.example:443",
            "*",
            "null",
            "file:///x",
        ] {
            assert!(!is_origin(value), "{value}");
        }
    }

    #[test]
    fn by_default_the_origins_of_the_redirect_uris_count() {
        let redirects = strings(&["https://app.example/cb", "https://app.example/other", "com.example.app:/cb"]);
        let logout = strings(&["https://www.example/bye"]);
        assert_eq!(web_origins(&redirects, &logout, None), strings(&["https://app.example", "https://www.example"]));
    }

    #[test]
    fn allowed_origins_add_to_the_default_and_an_empty_list_turns_it_off() {
        let redirects = strings(&["https://app.example/cb"]);
        let allowed = strings(&["https://spa.example"]);
        assert_eq!(
            web_origins(&redirects, &[], Some(&allowed)),
            strings(&["https://app.example", "https://spa.example"])
        );
        assert_eq!(web_origins(&redirects, &[], Some(&[])), Vec::<String>::new());
    }
}
