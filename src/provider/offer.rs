//! Which upstream identity providers (connectors) a client offers, and what a browser
//! session signed in through one may ride into: what the login page, the device page and
//! the sign-in through a connector all ask.

use super::icons;
use super::pages::ConnectorButton;
use super::state::Provider;
use crate::model::{ClientRecord, ConnectorRecord};
use crate::protocol::endpoints;
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

/// A "Continue with …" link per connector `client` allows, each starting the sign-in at
/// `/login/upstream` with `naming` (what names the interaction or device authorization).
pub(super) async fn buttons(
    provider: &Provider,
    client: &ClientRecord,
    naming: &[(&str, &str)],
) -> Result<Vec<ConnectorButton>, StoreError> {
    let start = provider.config.browser_path(endpoints::LOGIN_UPSTREAM);
    let connectors = provider.store.connectors().await?;
    let offered = connectors.into_iter().filter(|connector| client.policy.allows_connector(&connector.name));
    Ok(offered
        .map(|connector| {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            query.append_pair("connector", &connector.name).extend_pairs(naming);
            let href = format!("{start}?{}", query.finish());
            ConnectorButton { href, label: connector.display_name, icon: icons::svg(connector.icon) }
        })
        .collect())
}
