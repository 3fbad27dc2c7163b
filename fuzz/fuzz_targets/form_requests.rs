//! Form and query decoding of the token, authorize, introspection and revocation requests.
//!
//! Invariants: a parsed form respects the size limits, never yields an empty value, and
//! survives a re-encoding round trip; an authorization request that validates uses a
//! registered redirect URI; the token-request parser never accepts a repeated parameter.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::crd::{GrantType, TokenEndpointAuthMethod};
use portcullis::model::ClientRecord;
use portcullis::protocol::authorize;
use portcullis::protocol::form::{FormParams, MAX_PARAMETERS, MAX_VALUE_LEN};
use portcullis::protocol::token::parse_grant_request;
use portcullis::vocabulary::Scope;

const NAMES: &[&str] = &[
    "grant_type",
    "code",
    "redirect_uri",
    "code_verifier",
    "refresh_token",
    "scope",
    "client_id",
    "client_secret",
    "token",
    "token_type_hint",
    "response_type",
    "state",
    "nonce",
    "prompt",
    "max_age",
    "code_challenge",
    "code_challenge_method",
    "request",
    "request_uri",
    "id_token_hint",
    "login_hint",
];
const REGISTERED: &str = "https://app.example/cb";

fn client() -> ClientRecord {
    ClientRecord {
        client_id: "app".into(),
        client_name: None,
        secret_hash: None,
        auth_method: Some(TokenEndpointAuthMethod::None),
        redirect_uris: vec![REGISTERED.into(), "com.example.app:/cb".into()],
        post_logout_redirect_uris: vec![],
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scopes: Scope::parse("openid profile email offline_access").unwrap_or_default(),
        roles: vec![],
        audience: vec![],
        access_token_ttl: None,
        require_pkce: true,
        skip_consent: false,
        web_origins: vec![],
        registration: None,
        policy: Default::default(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(form) = FormParams::parse(data) else { return };
    let pairs = data.split(|b| *b == b'&').filter(|p| !p.is_empty()).count();
    assert!(pairs <= MAX_PARAMETERS);
    let mut reencoded = url::form_urlencoded::Serializer::new(String::new());
    for name in NAMES {
        match form.get(name) {
            Ok(Some(value)) => {
                assert!(!value.is_empty(), "an empty value counts as omitted");
                assert!(value.len() <= MAX_VALUE_LEN);
                reencoded.append_pair(name, value);
            }
            Ok(None) => {}
            Err(_) => {
                if *name == "grant_type" {
                    assert!(parse_grant_request(&form).is_err(), "a repeated grant_type is refused");
                }
                return;
            }
        }
    }
    let again = FormParams::parse(reencoded.finish().as_bytes()).expect("a re-encoded form parses");
    for name in NAMES {
        assert_eq!(form.get(name).ok().flatten(), again.get(name).ok().flatten(), "{name} survives a round trip");
    }
    let _ = parse_grant_request(&form);
    let _ = form.require("token");
    let client = client();
    if authorize::client_id(&form).is_ok()
        && let Ok(redirect_uri) = authorize::redirect_uri(&form, &client)
    {
        assert!(client.redirect_uris.contains(&redirect_uri));
        if let Ok(request) = authorize::validate(&form, &client, redirect_uri.clone()) {
            assert_eq!(request.redirect_uri, redirect_uri);
            assert!(request.scope.is_subset(&client.scopes));
        }
    }
});
