//! The request a task is serving, at the bottom layer so that audit events (from the
//! provider and the controller alike) can name it without knowing about HTTP. The
//! provider's request middleware sets it; everything else only reads it.

use std::future::Future;

/// The request a task is serving, for log and audit fields.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: String,
    pub source_ip: Option<String>,
}

tokio::task_local! {
    static CURRENT: RequestContext;
}

/// Runs `future` as the serving of `context`.
pub async fn scope<F: Future>(context: RequestContext, future: F) -> F::Output {
    CURRENT.scope(context, future).await
}

/// Runs `f` on the request being served by the current task, without copying it; `None`
/// outside a request.
pub fn with_request_context<R>(f: impl FnOnce(&RequestContext) -> R) -> Option<R> {
    CURRENT.try_with(f).ok()
}
