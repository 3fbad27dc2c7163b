//! Manifests YAML (`--manifests` folders, the embedded examples).
//!
//! Invariants: any text loads or fails with an error, never a panic; loading is
//! deterministic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::controller::manifests::ManifestSet;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let first = ManifestSet::load_texts(&[("fuzz.yaml", text)]);
    let second = ManifestSet::load_texts(&[("fuzz.yaml", text)]);
    assert_eq!(first.is_ok(), second.is_ok());
    if let (Ok(a), Ok(b)) = (first, second) {
        assert_eq!(a.clients.len(), b.clients.len());
        assert_eq!(a.users.len(), b.users.len());
        assert_eq!(a.signing_keys.len(), b.signing_keys.len());
    }
});
