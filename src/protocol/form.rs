//! Strict `application/x-www-form-urlencoded` parsing for OAuth requests.
//!
//! RFC 6749 §3.1 and §3.2: parameters sent without a value are treated as omitted, and a
//! parameter must not be included more than once. Malformed percent-encoding and invalid
//! UTF-8 are refused instead of being silently repaired, and sizes are bounded.

use std::collections::HashMap;
use std::fmt;

use zeroize::Zeroize;

use crate::vocabulary::OAuthError;

/// Longest accepted value of a single parameter, in bytes after decoding.
pub const MAX_VALUE_LEN: usize = 8 * 1024;
/// Most parameters accepted in one request.
pub const MAX_PARAMETERS: usize = 64;

/// Decoded parameters of one request, each name mapped to every value it was sent with.
/// Values include passwords and client secrets: they are wiped on drop, and `Debug` shows
/// the parameter names only.
#[derive(Default, Clone)]
pub struct FormParams {
    values: HashMap<String, Vec<String>>,
}

impl fmt::Debug for FormParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> = self.values.keys().map(String::as_str).collect();
        names.sort_unstable();
        f.debug_struct("FormParams").field("names", &names).finish_non_exhaustive()
    }
}

impl Drop for FormParams {
    fn drop(&mut self) {
        for values in self.values.values_mut() {
            values.zeroize();
        }
    }
}

impl FormParams {
    /// Parses a form body or a query string.
    pub fn parse(input: &[u8]) -> Result<Self, OAuthError> {
        let mut values: HashMap<String, Vec<String>> = HashMap::new();
        let mut count = 0usize;
        for pair in input.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            count += 1;
            if count > MAX_PARAMETERS {
                return Err(OAuthError::invalid_request("too many parameters"));
            }
            let (name, value) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            let name = decode_component(name)?;
            let value = decode_component(value)?;
            // The name is the caller's own: a fixed description never echoes it.
            if value.len() > MAX_VALUE_LEN {
                return Err(OAuthError::invalid_request("a parameter value is too long"));
            }
            values.entry(name).or_default().push(value);
        }
        Ok(Self { values })
    }

    /// The value of a parameter that may appear at most once; empty counts as absent (RFC 6749 §3.1).
    /// `name` is one the provider asks for, never one a caller sent, so an error may name it.
    pub fn get(&self, name: &str) -> Result<Option<&str>, OAuthError> {
        match self.values.get(name).map(Vec::as_slice) {
            None => Ok(None),
            Some([single]) => Ok((!single.is_empty()).then_some(single.as_str())),
            Some(_) => Err(OAuthError::invalid_request(format!("parameter `{name}` is included more than once"))),
        }
    }

    /// Like [`FormParams::get`], but the parameter is required.
    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)?.ok_or_else(|| OAuthError::invalid_request(format!("missing required parameter `{name}`")))
    }

    /// Whether the parameter was sent at all, even empty.
    pub fn contains(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }
}

/// Decodes one `application/x-www-form-urlencoded` component: `+` is a space and `%XX` a byte.
pub fn decode_component(raw: &[u8]) -> Result<String, OAuthError> {
    // Tokens, codes and secrets are base64url or similar: nothing to decode, one copy.
    let bytes = if raw.iter().any(|b| matches!(b, b'+' | b'%')) { percent_decode(raw)? } else { raw.to_vec() };
    String::from_utf8(bytes).map_err(|_| OAuthError::invalid_request("parameters must be UTF-8"))
}

fn percent_decode(raw: &[u8]) -> Result<Vec<u8>, OAuthError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let byte = raw
                    .get(i + 1..i + 3)
                    .filter(|hex| hex.iter().all(u8::is_ascii_hexdigit))
                    .and_then(|hex| std::str::from_utf8(hex).ok())
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                    .ok_or_else(|| OAuthError::invalid_request("malformed percent-encoding"))?;
                out.push(byte);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocabulary::ErrorCode;

    #[test]
    fn decodes_plus_and_percent_escapes() {
        let form = FormParams::parse(b"a=hello+world&b=%2F%3a%20x").unwrap();
        assert_eq!(form.get("a").unwrap(), Some("hello world"));
        assert_eq!(form.get("b").unwrap(), Some("/: x"));
    }

    #[test]
    fn rfc6749_3_1_empty_value_is_treated_as_omitted() {
        let form = FormParams::parse(b"scope=&state").unwrap();
        assert_eq!(form.get("scope").unwrap(), None);
        assert_eq!(form.get("state").unwrap(), None);
        assert!(form.contains("scope"));
    }

    #[test]
    fn rfc6749_3_2_repeated_parameter_is_invalid_request() {
        let form = FormParams::parse(b"grant_type=a&grant_type=b").unwrap();
        let err = form.get("grant_type").unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRequest);
        assert!(err.description.contains("more than once"));
    }

    #[test]
    fn malformed_percent_encoding_is_invalid_request() {
        for body in [&b"a=%zz"[..], b"a=%4", b"a=%", b"%G0=1", b"a=%+1", b"a=%-1", b"a=x%+f"] {
            let err = FormParams::parse(body).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidRequest, "{body:?}");
        }
    }

    #[test]
    fn values_without_escapes_are_taken_verbatim() {
        let form = FormParams::parse(b"token=eyJh.eyJz-_~.sig&a=%41+b").unwrap();
        assert_eq!(form.get("token").unwrap(), Some("eyJh.eyJz-_~.sig"));
        assert_eq!(form.get("a").unwrap(), Some("A b"));
        assert_eq!(FormParams::parse(b"a=\xff").unwrap_err().description, "parameters must be UTF-8");
    }

    #[test]
    fn invalid_utf8_is_invalid_request() {
        let err = FormParams::parse(b"a=%ff%fe").unwrap_err();
        assert_eq!(err.description, "parameters must be UTF-8");
    }

    #[test]
    fn oversized_value_is_invalid_request() {
        let body = format!("a={}", "x".repeat(MAX_VALUE_LEN + 1));
        assert_eq!(FormParams::parse(body.as_bytes()).unwrap_err().code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn rfc6749_5_2_descriptions_never_echo_a_parameter_name_the_caller_chose() {
        let body = format!("caller-chosen-name={}", "x".repeat(MAX_VALUE_LEN + 1));
        let err = FormParams::parse(body.as_bytes()).unwrap_err();
        assert_eq!(err.description, "a parameter value is too long");
    }

    #[test]
    fn too_many_parameters_is_invalid_request() {
        let body: Vec<String> = (0..=MAX_PARAMETERS).map(|i| format!("p{i}=1")).collect();
        assert!(FormParams::parse(body.join("&").as_bytes()).is_err());
    }

    #[test]
    fn debug_shows_names_but_no_values() {
        let form = FormParams::parse(b"client_secret=s3cr3t-value&password=pa55-value&username=alice").unwrap();
        let debug = format!("{form:?}");
        assert!(debug.contains("client_secret") && debug.contains("password"), "{debug}");
        assert!(!debug.contains("s3cr3t") && !debug.contains("pa55") && !debug.contains("alice"), "{debug}");
    }

    #[test]
    fn require_names_the_missing_parameter() {
        let form = FormParams::parse(b"").unwrap();
        assert_eq!(form.require("token").unwrap_err().description, "missing required parameter `token`");
    }
}
