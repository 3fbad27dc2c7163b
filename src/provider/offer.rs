//! Which upstream identity providers (connectors) a client offers, and what a browser
//! session signed in through one may ride into: what the login page, the device page and
//! the sign-in through a connector all ask.

use super::icons;
use super::pages::ConnectorButton;
use super::state::Provider;
use crate::model::{ClientRecord, ConnectorRecord};
use crate::protocol::endpoints;
use crate::protocol::federation::connector_for_login_hint;
use crate::store::StoreError;

/// Whether a browser session of `subject` may sign in to `client` without a new login: a
/// declared user's only where the client takes passwords; a person signed in through a
/// connector only where the client offers that connector. A session from one connector
/// (or a password) must not ride into a client that allows only another.
pub(super) async fn session_admitted(
    provider: &Provider,
    client: &ClientRecord,
    subject: &str,
) -> Result<bool, StoreError> {
    if provider.store.user_by_subject(subject).await?.is_some() {
        return Ok(!client.policy.connectors_only);
    }
    let federated = provider.store.federated_user(subject).await?;
    Ok(federated.is_some_and(|federated| client.policy.allows_connector(&federated.connector)))
}

/// Connector `name`, if it exists and `client` lets people sign in through it.
pub(super) async fn offered_connector(
    provider: &Provider,
    client: &ClientRecord,
    name: &str,
) -> Result<Option<ConnectorRecord>, StoreError> {
    Ok(provider.store.connector(name).await?.filter(|connector| client.policy.allows_connector(&connector.name)))
}

/// The connectors `client` offers, in name order: one read of the store.
pub(super) async fn offered(provider: &Provider, client: &ClientRecord) -> Result<Vec<ConnectorRecord>, StoreError> {
    let connectors = provider.store.connectors().await?;
    Ok(connectors.into_iter().filter(|connector| client.policy.allows_connector(&connector.name)).collect())
}

/// The connector of `offered` an authorization request goes straight to: the one its
/// `connector` parameter names, else the one its `login_hint`'s email domain leads to
/// ([`connector_for_login_hint`]).
pub(super) fn hinted<'a>(
    offered: &'a [ConnectorRecord],
    connector_hint: Option<&str>,
    login_hint: Option<&str>,
) -> Option<&'a ConnectorRecord> {
    let named = connector_hint.and_then(|name| offered.iter().find(|connector| connector.name == name));
    named.or_else(|| connector_for_login_hint(login_hint?, offered))
}

/// A "Continue with …" link per connector of `offered`, each starting the sign-in at
/// `/login/upstream` with `naming` (what names the interaction or device authorization).
pub(super) fn buttons(
    provider: &Provider,
    offered: Vec<ConnectorRecord>,
    naming: &[(&str, &str)],
) -> Vec<ConnectorButton> {
    let start = provider.config.browser_path(endpoints::LOGIN_UPSTREAM);
    offered
        .into_iter()
        .map(|connector| {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            query.append_pair("connector", &connector.name).extend_pairs(naming);
            let href = format!("{start}?{}", query.finish());
            ConnectorButton { href, label: connector.display_name, icon: icons::svg(connector.icon) }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connector_parameter_wins_and_an_unoffered_name_falls_back_to_the_login_hint() {
        let listing = |name: &str, domains: &[&str]| ConnectorRecord {
            login_hint_domains: domains.iter().map(|domain| domain.to_string()).collect(),
            ..ConnectorRecord::fixture(name, "https://upstream.example")
        };
        let offered = [listing("corp", &["corp.example"]), listing("partner", &[])];
        let hint = |connector, login_hint| hinted(&offered, connector, login_hint).map(|c| c.name.as_str());
        assert_eq!(hint(Some("partner"), Some("jane@corp.example")), Some("partner"));
        assert_eq!(hint(Some("elsewhere"), Some("jane@corp.example")), Some("corp"));
        assert_eq!(hint(Some("elsewhere"), None), None);
        assert_eq!(hint(None, Some("jane@other.example")), None);
    }
}
