//! Cookie and CSRF-token decoding.
//!
//! Invariants: a cookie value found is one the `Cookie` header really carried under that
//! name; the constant-time token comparison agrees with byte equality.
#![no_main]

use http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;
use portcullis::provider::{cookie, tokens_match};

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else { return };
    let split = usize::from(split).min(rest.len());
    let (left, right) = rest.split_at(split);
    let (a, b) = (String::from_utf8_lossy(left), String::from_utf8_lossy(right));
    assert_eq!(tokens_match(&a, &b), a == b);
    assert!(tokens_match(&a, &a));

    let mut headers = HeaderMap::new();
    for line in rest.split(|b| *b == b'\n') {
        if let Ok(value) = HeaderValue::from_bytes(line) {
            headers.append(header::COOKIE, value);
        }
    }
    for name in ["portcullis_session", "portcullis_browser"] {
        if let Some(value) = cookie(&headers, name) {
            assert!(!value.contains(';'), "a value never spans cookies");
            let carried = headers
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| v.contains(name) && v.contains(value.trim_matches('"')));
            assert!(carried, "{name}={value} was sent");
        }
    }
});
