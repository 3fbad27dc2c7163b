//! HTTP Basic client credentials (RFC 6749 §2.3.1).
//!
//! Invariants: any header either fails or yields a non-empty client id; credentials
//! encoded the RFC 6749 way (form-encode, then base64) always come back exactly.
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use portcullis::crd::TokenEndpointAuthMethod;
use portcullis::protocol::client_auth::presented_client;
use portcullis::protocol::form::FormParams;

fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fuzz_target!(|data: &[u8]| {
    let empty = FormParams::parse(b"").expect("the empty form");
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode % 2 == 0 {
        let header = String::from_utf8_lossy(rest);
        if let Ok(client) = presented_client(Some(&header), &empty) {
            assert!(!client.client_id.is_empty());
            assert_eq!(client.method, TokenEndpointAuthMethod::ClientSecretBasic);
            assert!(client.secret.is_some());
        }
    } else {
        let text = String::from_utf8_lossy(rest);
        let (id, secret) = text.split_once('\u{0}').unwrap_or((&text, ""));
        let header = format!("Basic {}", STANDARD.encode(format!("{}:{}", form_encode(id), form_encode(secret))));
        match presented_client(Some(&header), &empty) {
            Ok(client) => {
                assert_eq!(client.client_id, id);
                assert_eq!(client.secret.as_ref().map(|s| s.expose()), Some(secret));
            }
            Err(_) => assert!(id.is_empty(), "well-encoded credentials with a client id are accepted"),
        }
    }
});
