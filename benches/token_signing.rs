//! The token hot paths without HTTP: building the RFC 9068 claims, signing them with each
//! algorithm, and verifying the result (introspection, userinfo), next to bare aws-lc-rs
//! signatures and verifications over a message of the same size — the floor these paths
//! should sit on. `cargo bench --bench token_signing`.

use std::hint::black_box;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256,
    RSA_PKCS1_SHA256, RsaKeyPair,
};
use criterion::{Criterion, criterion_group, criterion_main};
use portcullis::keys::{JwtType, KeyPair, KeyPhase, Keyring};
use portcullis::model::{ClientPolicy, ClientRecord};
use portcullis::protocol::claims::AccessTokenClaims;
use portcullis::protocol::token;
use portcullis::vocabulary::Scope;
use portcullis::vocabulary::{GrantType, SigningAlgorithm, TokenEndpointAuthMethod};

const ISSUER: &str = "https://id.example.com";
const NOW: u64 = 1_800_000_000;

fn m2m_client() -> ClientRecord {
    ClientRecord {
        client_id: "batch-job".into(),
        client_name: None,
        secret_hash: None,
        auth_method: Some(TokenEndpointAuthMethod::ClientSecretBasic),
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        grant_types: vec![GrantType::ClientCredentials],
        scopes: Scope::parse("reports:read reports:write").unwrap(),
        roles: vec![],
        audience: vec!["https://reports.example.com".into()],
        access_token_ttl: None,
        require_pkce: false,
        skip_consent: false,
        web_origins: vec![],
        registration: None,
        policy: ClientPolicy::default(),
    }
}

fn keyring(algorithm: SigningAlgorithm) -> Keyring {
    let (key, _) = KeyPair::generate(algorithm, None).unwrap();
    Keyring::new(vec![(key, KeyPhase::Active)]).unwrap()
}

fn claims(client: &ClientRecord) -> token::AccessTokenGrant {
    let scope = token::client_credentials_scope(client, None).unwrap();
    let issuance = token::Issuance { issuer: ISSUER, default_ttl: 3600, epoch: "hV0Qq8uW2x7Yb1cR5gk3JX" };
    token::client_credentials_token(&issuance, client, &scope, "k3JXhLq0Q8uW2x7Yb1cR5g".into(), NOW)
}

fn bench(c: &mut Criterion) {
    let client = m2m_client();
    c.bench_function("claims/client_credentials", |b| b.iter(|| claims(black_box(&client))));

    let grant = claims(&client);
    for algorithm in [SigningAlgorithm::RS256, SigningAlgorithm::ES256] {
        let ring = keyring(algorithm);
        c.bench_function(&format!("sign/{algorithm}"), |b| {
            b.iter(|| ring.sign(None, JwtType::AccessToken, black_box(&grant.claims)).unwrap())
        });
        c.bench_function(&format!("issue/{algorithm}"), |b| {
            b.iter(|| ring.sign(None, JwtType::AccessToken, &claims(black_box(&client)).claims).unwrap())
        });
        let token = ring.sign(None, JwtType::AccessToken, &grant.claims).unwrap();
        c.bench_function(&format!("verify/{algorithm}"), |b| {
            b.iter(|| ring.verify::<AccessTokenClaims>(black_box(&token), JwtType::AccessToken, ISSUER, NOW).unwrap())
        });
    }

    // The floor: one bare signature over a signing input of a typical token's size.
    let message = vec![b'a'; 400];
    let rng = SystemRandom::new();
    let rsa = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let mut signature = vec![0; rsa.public_modulus_len()];
    c.bench_function("aws-lc-rs/RS256", |b| {
        b.iter(|| rsa.sign(&RSA_PKCS1_SHA256, &rng, black_box(&message), &mut signature).unwrap())
    });
    rsa.sign(&RSA_PKCS1_SHA256, &rng, &message, &mut signature).unwrap();
    let public = ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, rsa.public_key().as_ref()).unwrap();
    c.bench_function("aws-lc-rs/RS256-verify", |b| {
        b.iter(|| public.verify_sig(black_box(&message), &signature).unwrap())
    });
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let ec = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    c.bench_function("aws-lc-rs/ES256", |b| b.iter(|| ec.sign(&rng, black_box(&message)).unwrap()));
}

criterion_group!(benches, bench);
criterion_main!(benches);
