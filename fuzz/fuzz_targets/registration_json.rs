//! Registration JSON (RFC 7591 §2).
//!
//! Invariants: accepted metadata respects every bound, carries no fragment in its redirect
//! URIs, asks for no scope beyond the policy, and its echo validates again to the same
//! result, the echoed method then declared (an omitted method is echoed as RFC 7591 §2's
//! default); a back-channel logout URI only ever from a trusted registrant.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::protocol::registration::{MAX_STRING, MAX_URIS, Registrant, validate};
use portcullis::vocabulary::ClientMetadata;
use portcullis::vocabulary::Scope;

fuzz_target!(|data: &[u8]| {
    let Ok(metadata) = serde_json::from_slice::<ClientMetadata>(data) else { return };
    let allowed = Scope::parse("openid profile email offline_access").unwrap_or_default();
    let registrant = if data.len() % 2 == 0 { Registrant::Trusted } else { Registrant::Anonymous };
    let Ok(valid) = validate(metadata, &allowed, registrant) else { return };
    assert!(registrant == Registrant::Trusted || valid.metadata.backchannel_logout_uri.is_none());
    for uri in [&valid.metadata.backchannel_logout_uri, &valid.metadata.frontchannel_logout_uri].into_iter().flatten() {
        assert!(uri.len() <= MAX_STRING && !uri.contains('#'));
    }
    for uris in [&valid.metadata.redirect_uris, &valid.metadata.post_logout_redirect_uris] {
        assert!(uris.len() <= MAX_URIS);
        assert!(uris.iter().all(|u| u.len() <= MAX_STRING && !u.contains('#')));
    }
    assert!(valid.scope.is_subset(&allowed));
    let again = validate(valid.metadata.clone(), &allowed, registrant).expect("validated metadata validates again");
    assert_eq!(
        (&again.metadata, &again.grant_types, &again.scope),
        (&valid.metadata, &valid.grant_types, &valid.scope)
    );
    assert_eq!(again.auth_method, Some(valid.auth_method.unwrap_or_default()));
    let echoed = serde_json::to_vec(&valid.metadata).expect("metadata serializes");
    let reparsed: ClientMetadata = serde_json::from_slice(&echoed).expect("echoed metadata parses");
    assert_eq!(reparsed, valid.metadata);
});
