//! What a sweep removes: the records the store holds that nothing declares any more.
//!
//! The declared source (custom resources, or the manifests folder) is the truth, so a
//! client, user or connector that was deleted, or renamed, while no reconcile saw it go
//! must still stop working. Clients that registered themselves (RFC 7591, `dcr_…`) are
//! not declared anywhere and are never swept.

use std::collections::BTreeSet;

use crate::protocol::registration::CLIENT_ID_PREFIX;

/// The stored client ids that no resource declares, dynamically registered ones excepted.
pub fn undeclared_clients<'a>(declared: &BTreeSet<&str>, stored: &'a [String]) -> Vec<&'a str> {
    stored.iter().map(String::as_str).filter(|id| !id.starts_with(CLIENT_ID_PREFIX) && !declared.contains(id)).collect()
}

/// The stored names (usernames, connector names) that no resource declares.
pub fn undeclared_names<'a>(declared: &BTreeSet<&str>, stored: &'a [String]) -> Vec<&'a str> {
    stored.iter().map(String::as_str).filter(|name| !declared.contains(name)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|id| (*id).to_owned()).collect()
    }

    #[test]
    fn a_client_no_longer_declared_is_swept() {
        let declared = BTreeSet::from(["webapp"]);
        assert_eq!(undeclared_clients(&declared, &stored(&["old-app", "webapp"])), ["old-app"]);
    }

    #[test]
    fn a_renamed_client_leaves_its_old_id_to_the_sweep() {
        let declared = BTreeSet::from(["webapp-v2"]);
        assert_eq!(undeclared_clients(&declared, &stored(&["webapp", "webapp-v2"])), ["webapp"]);
    }

    #[test]
    fn dynamically_registered_clients_are_never_swept() {
        let declared = BTreeSet::new();
        assert!(undeclared_clients(&declared, &stored(&["dcr_abc", "dcr_"])).is_empty());
    }

    #[test]
    fn users_no_longer_declared_are_swept_and_declared_ones_kept() {
        let declared = BTreeSet::from(["alice"]);
        assert_eq!(undeclared_names(&declared, &stored(&["alice", "bob"])), ["bob"]);
        assert!(undeclared_names(&declared, &stored(&["alice"])).is_empty());
    }
}
