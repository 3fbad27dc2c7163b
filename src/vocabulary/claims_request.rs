//! The `claims` authorization request parameter (OIDC Core §5.5).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::OAuthError;

/// The individual claims a request asks for, by where they go (OIDC Core §5.5). Only the
/// names are kept: `value` and `values` never change what is released (§5.5.1, the relying
/// party compares), and `essential` only asks for a claim the user may not have, which is
/// released when the user has it either way.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimsRequest {
    /// Claims asked for from the UserInfo endpoint.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub userinfo: BTreeSet<String>,
    /// Claims asked for in the ID token.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub id_token: BTreeSet<String>,
}

impl ClaimsRequest {
    /// OIDC Core §5.5: the parameter is a JSON object whose `userinfo` and `id_token`
    /// members are objects of claim names, each `null` or an object with `essential` (a
    /// boolean), `value` or `values` (an array); anything else is `invalid_request`. Other
    /// top-level members are ignored, as §5.5 allows.
    pub fn parse(raw: &str) -> Result<Self, OAuthError> {
        let malformed = |why: &str| OAuthError::invalid_request(format!("claims {why}"));
        let Ok(Value::Object(top)) = serde_json::from_str::<Value>(raw) else {
            return Err(malformed("is not a JSON object"));
        };
        let member = |name: &str| -> Result<BTreeSet<String>, OAuthError> {
            match top.get(name) {
                None | Some(Value::Null) => Ok(BTreeSet::new()),
                Some(Value::Object(claims)) => claim_names(claims).map_err(|why| malformed(&why)),
                Some(_) => Err(malformed(&format!("member {name} is not a JSON object"))),
            }
        };
        Ok(Self { userinfo: member("userinfo")?, id_token: member("id_token")? })
    }

    pub fn is_empty(&self) -> bool {
        self.userinfo.is_empty() && self.id_token.is_empty()
    }

    /// Keeps only the claims `known` accepts: the rest can never be released.
    pub fn retain(&mut self, known: impl Fn(&str) -> bool) {
        self.userinfo.retain(|name| known(name));
        self.id_token.retain(|name| known(name));
    }

    /// Every claim asked for, wherever it goes.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.userinfo.union(&self.id_token).map(String::as_str)
    }
}

/// OIDC Core §5.5.1: each requested claim is `null` or an object of its request options.
fn claim_names(claims: &Map<String, Value>) -> Result<BTreeSet<String>, String> {
    for (name, options) in claims {
        let valid = match options {
            Value::Null => true,
            Value::Object(options) => {
                options.get("essential").is_none_or(Value::is_boolean)
                    && options.get("values").is_none_or(Value::is_array)
            }
            _ => false,
        };
        if !valid {
            return Err(format!("request for {name} is not null or a valid claim request object"));
        }
    }
    Ok(claims.keys().cloned().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|name| (*name).to_owned()).collect()
    }

    #[test]
    fn oidc_core_5_5_userinfo_and_id_token_members_are_read_by_claim_name() {
        let raw = r#"{"userinfo":{"given_name":{"essential":true},"email":null},
            "id_token":{"auth_time":{"essential":true},"acr":{"values":["urn:a","urn:b"]}},"other":1}"#;
        let request = ClaimsRequest::parse(raw).unwrap();
        assert_eq!(request.userinfo, names(&["email", "given_name"]));
        assert_eq!(request.id_token, names(&["acr", "auth_time"]));
        assert_eq!(request.names().collect::<Vec<_>>(), ["acr", "auth_time", "email", "given_name"]);
    }

    #[test]
    fn oidc_core_5_5_1_value_and_essential_options_do_not_change_the_names() {
        let request = ClaimsRequest::parse(r#"{"id_token":{"email":{"value":"x@y","essential":false}}}"#).unwrap();
        assert_eq!(request, ClaimsRequest { userinfo: BTreeSet::new(), id_token: names(&["email"]) });
    }

    #[test]
    fn oidc_core_5_5_malformed_json_or_a_non_object_is_invalid_request() {
        for raw in ["{", "[]", "\"claims\"", "null", r#"{"userinfo":[]}"#, r#"{"id_token":{"email":true}}"#] {
            let error = ClaimsRequest::parse(raw).unwrap_err();
            assert_eq!(error.code, super::super::ErrorCode::InvalidRequest, "{raw}");
        }
        let bad_options = [r#"{"userinfo":{"email":{"essential":"yes"}}}"#, r#"{"userinfo":{"email":{"values":"a"}}}"#];
        for raw in bad_options {
            assert!(ClaimsRequest::parse(raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn oidc_core_5_5_empty_members_ask_for_nothing() {
        assert!(ClaimsRequest::parse(r#"{"userinfo":null,"id_token":{}}"#).unwrap().is_empty());
    }

    #[test]
    fn unknown_claims_can_be_dropped() {
        let mut request = ClaimsRequest::parse(r#"{"userinfo":{"email":null,"shoe_size":null}}"#).unwrap();
        request.retain(|name| name == "email");
        assert_eq!(request.userinfo, names(&["email"]));
    }
}
