//! The `typ` header values of the tokens we sign (RFC 7515 §4.1.9).

/// The `typ` header of a token, which keeps one kind of token from passing for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtType {
    /// RFC 9068 §2.1: JWT access tokens carry `typ: at+jwt`.
    AccessToken,
    /// Plain `JWT`, used by ID tokens.
    Jwt,
    /// Back-Channel Logout 1.0 §2.4: logout tokens carry `typ: logout+jwt`, so that no
    /// other kind of token passes for one.
    LogoutToken,
}

impl JwtType {
    pub fn as_str(self) -> &'static str {
        match self {
            JwtType::AccessToken => "at+jwt",
            JwtType::Jwt => "JWT",
            JwtType::LogoutToken => "logout+jwt",
        }
    }

    /// RFC 9068 §4 / RFC 7515 §4.1.9: `typ` compares case-insensitively and may carry the
    /// `application/` prefix.
    pub(super) fn matches(self, typ: Option<&str>) -> bool {
        let Some(typ) = typ else { return false };
        let typ = typ.strip_prefix("application/").unwrap_or(typ);
        typ.eq_ignore_ascii_case(self.as_str())
    }
}
