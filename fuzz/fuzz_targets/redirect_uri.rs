//! `redirect_uri` matching (RFC 6749 §3.1.2.3, RFC 9700 §4.1.3).
//!
//! Invariants: a redirect URI that matches is byte-equal to a registered one or, for a
//! native client (RFC 8252 §7.3; inputs of even length), is a registered `http` loopback
//! IP URI with another port and nothing else changed; a requested URI is never replaced by
//! another; appended parameters keep the URI as its prefix.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::crd::{GrantType, TokenEndpointAuthMethod};
use portcullis::model::{ClientPolicy, ClientRecord};
use portcullis::protocol::redirect::{code_params, is_registered, query_redirect, resolve_redirect_uri};
use portcullis::vocabulary::Scope;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let Some(first) = lines.next() else { return };
    let openid = first.starts_with('o');
    let requested = (!first.starts_with('-')).then(|| first.get(1..).unwrap_or(""));
    let client = ClientRecord {
        client_id: "app".into(),
        client_name: None,
        secret_hash: None,
        auth_method: Some(TokenEndpointAuthMethod::None),
        redirect_uris: lines.map(str::to_owned).collect(),
        post_logout_redirect_uris: vec![],
        grant_types: vec![GrantType::AuthorizationCode],
        scopes: Scope::default(),
        roles: vec![],
        audience: vec![],
        access_token_ttl: None,
        require_pkce: true,
        skip_consent: false,
        web_origins: vec![],
        registration: None,
        policy: ClientPolicy { native_application: data.len() % 2 == 0, ..Default::default() },
    };
    if let Some(uri) = requested {
        let exact = client.redirect_uris.iter().any(|r| r.as_bytes() == uri.as_bytes());
        if exact {
            assert!(is_registered(&client, uri));
        } else if is_registered(&client, uri) {
            assert!(client.is_native(), "only native clients match beyond the exact string");
            assert!(client.redirect_uris.iter().any(|r| same_loopback_but_port(r, uri)), "{uri}");
        }
    }
    if let Ok(resolved) = resolve_redirect_uri(&client, requested, openid) {
        assert!(
            client
                .redirect_uris
                .iter()
                .any(|r| r.as_bytes() == resolved.as_bytes() || same_loopback_but_port(r, &resolved)),
            "a registered URI, or a loopback one with another port"
        );
        if let Some(uri) = requested {
            assert_eq!(resolved, uri);
        } else {
            assert!(!openid && client.redirect_uris.len() == 1);
        }
        let redirect = query_redirect(&resolved, &code_params("code", Some("state"), "https://id.example"));
        let base = resolved.split('#').next().unwrap_or("");
        assert!(redirect.starts_with(base), "the registered URI is kept as it is");
    }
});

/// Whether two URIs are the same `http` loopback IP URI up to the port, as a URL parser
/// sees them: no user info, the same literal, path, query and fragment.
fn same_loopback_but_port(registered: &str, requested: &str) -> bool {
    let (Ok(registered), Ok(requested)) = (url::Url::parse(registered), url::Url::parse(requested)) else {
        return false;
    };
    [&registered, &requested].iter().all(|url| {
        url.scheme() == "http"
            && matches!(url.host_str(), Some("127.0.0.1" | "[::1]"))
            && url.username().is_empty()
            && url.password().is_none()
    }) && registered.host_str() == requested.host_str()
        && registered.path() == requested.path()
        && registered.query() == requested.query()
        && registered.fragment() == requested.fragment()
}
