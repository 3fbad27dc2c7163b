//! Why a store operation failed.

/// Store failures. The provider answers them with `temporarily_unavailable` or
/// `server_error` and logs the detail.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}
