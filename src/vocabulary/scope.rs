//! Scopes (RFC 6749 §3.3): space-delimited, case-sensitive, order-insensitive sets.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::error::OAuthError;

/// A set of scope tokens, kept sorted so equal sets print equally.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope(BTreeSet<String>);

impl Scope {
    /// Parses a `scope` parameter. RFC 6749 §3.3:
    /// `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`, separated by single spaces.
    pub fn parse(raw: &str) -> Result<Self, OAuthError> {
        let mut set = BTreeSet::new();
        for token in raw.split(' ') {
            if token.is_empty() {
                continue;
            }
            if !token.bytes().all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b)) {
                return Err(OAuthError::invalid_scope("scope contains characters RFC 6749 §3.3 does not allow"));
            }
            set.insert(token.to_owned());
        }
        Ok(Self(set))
    }

    pub fn from_tokens<I: IntoIterator<Item = S>, S: Into<String>>(tokens: I) -> Self {
        Self(tokens.into_iter().map(Into::into).collect())
    }

    pub fn contains(&self, token: &str) -> bool {
        self.0.contains(token)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// The tokens present in both sets.
    pub fn intersection(&self, other: &Scope) -> Scope {
        Scope(self.0.intersection(&other.0).cloned().collect())
    }

    /// The tokens present in either set.
    pub fn union(&self, other: &Scope) -> Scope {
        Scope(self.0.union(&other.0).cloned().collect())
    }

    /// The set without the given tokens.
    pub fn without(&self, tokens: &[&str]) -> Scope {
        Scope(self.0.iter().filter(|t| !tokens.contains(&t.as_str())).cloned().collect())
    }

    /// Whether every token of `self` is in `other`.
    pub fn is_subset(&self, other: &Scope) -> bool {
        self.0.is_subset(&other.0)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for token in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(token)?;
            first = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocabulary::error::ErrorCode;

    #[test]
    fn rfc6749_3_3_order_and_repetition_do_not_matter() {
        assert_eq!(Scope::parse("b a  b").unwrap(), Scope::parse("a b").unwrap());
        assert_eq!(Scope::parse("b a").unwrap().to_string(), "a b");
    }

    #[test]
    fn rfc6749_3_3_scope_tokens_are_case_sensitive() {
        assert_ne!(Scope::parse("Read").unwrap(), Scope::parse("read").unwrap());
    }

    #[test]
    fn rfc6749_3_3_forbidden_characters_are_invalid_scope() {
        for raw in ["a\"b", "a\\b", "caf\u{e9}", "tab\there"] {
            assert_eq!(Scope::parse(raw).unwrap_err().code, ErrorCode::InvalidScope, "{raw}");
        }
    }
}
