//! The Bearer header and JWT verification (RFC 6750 §2.1, RFC 7515, RFC 9068).
//!
//! Inputs are raw tokens, our own tokens with one segment replaced, `alg`-confusion forgeries
//! (HS256/384/512 keyed with our public JWKS, `none`, another asymmetric algorithm, under
//! our `kid`s) and arbitrary headers over our payloads and signatures.
//!
//! Invariant: a token that verifies was signed by one of our keys — its signing input
//! (`header.payload`) is byte-equal to one we signed.
#![no_main]

use std::collections::HashSet;
use std::sync::OnceLock;

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;
use portcullis::crd::SigningAlgorithm;
use portcullis::keys::{JwtType, KeyPair, KeyPhase, Keyring};
use portcullis::provider::bearer_header;

const ISSUER: &str = "https://id.example";
/// Between the fixture tokens' `iat` and `exp`.
const NOW: u64 = 1_800_000_000;
const ALGORITHMS: [SigningAlgorithm; 3] = [SigningAlgorithm::RS256, SigningAlgorithm::ES256, SigningAlgorithm::EdDSA];
const HEADER_ALGS: [&str; 9] = ["HS256", "HS384", "HS512", "none", "RS256", "ES256", "EdDSA", "PS256", "ES384"];

struct Fixture {
    keyring: Keyring,
    kids: Vec<String>,
    /// Every token we signed.
    tokens: Vec<String>,
    /// Their signing inputs: what a verified token must be.
    signed: HashSet<String>,
    jwks: Vec<u8>,
}

fn signing_input(token: &str) -> &str {
    token.rsplit_once('.').map_or(token, |(input, _)| input)
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let pairs: Vec<KeyPair> = ALGORITHMS.iter().map(|a| KeyPair::generate(*a, None).expect("a key").0).collect();
        let kids = pairs.iter().map(|k| k.kid().to_owned()).collect();
        let keyring = Keyring::new(pairs.into_iter().map(|k| (k, KeyPhase::Active)).collect()).expect("a keyring");
        let claims = serde_json::json!({
            "iss": ISSUER, "sub": "alice", "aud": "api", "exp": 4_000_000_000u64, "iat": 1_700_000_000u64,
            "jti": "j1", "client_id": "app", "scope": "openid"
        });
        let mut tokens = Vec::new();
        for algorithm in ALGORITHMS {
            for typ in [JwtType::AccessToken, JwtType::Jwt] {
                tokens.push(keyring.sign(Some(algorithm), typ, &claims).expect("a token"));
            }
        }
        let signed = tokens.iter().map(|t| signing_input(t).to_owned()).collect();
        let jwks = keyring.jwks_json().to_vec();
        Fixture { keyring, kids, tokens, signed, jwks }
    })
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A candidate token built from the input.
fn candidate(fixture: &Fixture, data: &[u8]) -> Option<String> {
    let (&mode, rest) = data.split_first()?;
    let (&pick, rest) = rest.split_first().unwrap_or((&0, &[]));
    let ours = &fixture.tokens[usize::from(pick) % fixture.tokens.len()];
    let segments: Vec<&str> = ours.split('.').collect();
    let text = String::from_utf8_lossy(rest).into_owned();
    Some(match mode % 5 {
        0 => text,
        1 => {
            let mut segments: Vec<String> = segments.iter().map(|s| (*s).to_owned()).collect();
            segments[usize::from(pick / 16) % 3] = text;
            segments.join(".")
        }
        2 => {
            let alg = HEADER_ALGS[usize::from(pick) % HEADER_ALGS.len()];
            let kid = &fixture.kids[usize::from(pick / 16) % fixture.kids.len()];
            let header = serde_json::json!({"alg": alg, "kid": kid, "typ": "at+jwt"});
            let input = format!("{}.{}", b64(header.to_string().as_bytes()), segments[1]);
            let algorithm = match alg {
                "HS384" => hmac::HMAC_SHA384,
                "HS512" => hmac::HMAC_SHA512,
                _ => hmac::HMAC_SHA256,
            };
            let secret: &[u8] = if rest.is_empty() { &fixture.jwks } else { rest };
            let signature = hmac::sign(&hmac::Key::new(algorithm, secret), input.as_bytes());
            let signature = if alg == "none" { String::new() } else { b64(signature.as_ref()) };
            format!("{input}.{signature}")
        }
        3 => format!("{}.{}.{}", b64(rest), segments[1], segments[2]),
        _ => format!("Bearer {text}"),
    })
}

fuzz_target!(|data: &[u8]| {
    let fixture = fixture();
    let Some(token) = candidate(fixture, data) else { return };
    let token = if let Some(header_value) = token.strip_prefix("Bearer ").map(|_| token.as_str()) {
        let mut headers = HeaderMap::new();
        let Ok(value) = HeaderValue::from_str(header_value) else { return };
        headers.insert(header::AUTHORIZATION, value);
        match bearer_header(&headers) {
            Ok(Some(token)) => {
                assert!(!token.is_empty() && token == token.trim());
                token.to_owned()
            }
            _ => return,
        }
    } else {
        token
    };
    for typ in [JwtType::AccessToken, JwtType::Jwt] {
        if fixture.keyring.verify::<serde_json::Value>(&token, typ, ISSUER, NOW).is_ok() {
            assert!(fixture.signed.contains(signing_input(&token)), "forged token verified: {token}");
        }
    }
    if fixture.keyring.verify_hint::<serde_json::Value>(&token, ISSUER).is_ok() {
        assert!(fixture.signed.contains(signing_input(&token)), "forged hint verified: {token}");
    }
});
