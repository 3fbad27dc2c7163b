//! Scope narrowing (RFC 6749 §3.3): what a client is granted of what it asked for.

use crate::vocabulary::{OAuthError, Scope};

/// RFC 6749 §3.3: the granted scope is the requested scope narrowed to what the client may
/// have; an omitted scope means the client's whole allowance (the pre-defined default). A
/// request of which nothing can be granted is refused with `invalid_scope`.
pub fn grant(requested: Option<&Scope>, allowed: &Scope) -> Result<Scope, OAuthError> {
    let Some(requested) = requested else {
        return Ok(allowed.clone());
    };
    let granted = requested.intersection(allowed);
    if granted.is_empty() && !requested.is_empty() {
        return Err(OAuthError::invalid_scope("none of the requested scopes is allowed for this client"));
    }
    Ok(granted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocabulary::ErrorCode;

    #[test]
    fn rfc6749_3_3_requested_scope_is_narrowed_to_the_allowance() {
        let allowed = Scope::parse("read write").unwrap();
        let granted = grant(Some(&Scope::parse("read admin").unwrap()), &allowed).unwrap();
        assert_eq!(granted.to_string(), "read");
    }

    #[test]
    fn rfc6749_3_3_omitted_scope_defaults_to_the_allowance() {
        let allowed = Scope::parse("read write").unwrap();
        assert_eq!(grant(None, &allowed).unwrap(), allowed);
    }

    #[test]
    fn rfc6749_3_3_nothing_grantable_is_invalid_scope() {
        let allowed = Scope::parse("read").unwrap();
        let err = grant(Some(&Scope::parse("admin").unwrap()), &allowed).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidScope);
    }
}
