//! Accepting connections for the provider's listeners, bounded so that idle or half-sent
//! connections cannot exhaust the process (issue 18.5, the slow-loris attack):
//!
//! - a request's head must arrive within the header-read timeout, counted from the
//!   connection's accept or, on a kept-alive connection, from the request's first byte;
//! - a kept-alive connection with no request is closed after the idle timeout (which also
//!   bounds a client that stops reading a response);
//! - at most `max_connections` are open, below the file-descriptor limit. At the cap a new
//!   connection is still accepted and makes room by closing the oldest connection that has
//!   no request in progress (an idle or half-sent one, the kind an attacker holds), so a
//!   real client gets in even while hundreds of half-sent connections are open; only when
//!   every connection is busy with a request is the new one closed at once. The cap leaves
//!   a reserve of descriptors, so accepting never fails with `Too many open files`.
//!
//! hyper's own header-read timer runs from the moment a connection waits for a request,
//! idle time included, so it is not used; each connection's phase (head, busy, idle) is
//! tracked here instead. Every request carries `ConnectInfo<SocketAddr>` for throttling by
//! address, and shutdown is graceful: requests in progress finish, the rest close at once.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tower::ServiceExt;

/// Descriptors kept free of connections: Redis connections, the metrics listener's,
/// files, and the accepts in flight while an old connection makes room.
pub const FD_RESERVE: u64 = 64;

/// Connections the metrics listener (`--metrics-listen`) holds at most: a few scrapers and
/// probes, with their own small cap so a flood of the main port cannot blind monitoring.
pub const METRICS_CONNECTIONS: usize = 16;

/// How long accepting pauses after the system refused an accept.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// How a listener bounds its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

impl ConnectionLimits {
    /// The default timeouts (10 s to send a request head, 30 s idle between requests) and
    /// the most connections a process with `fd_limit` descriptors can hold: the limit less
    /// [`FD_RESERVE`] and the metrics listener's [`METRICS_CONNECTIONS`].
    pub fn for_fd_limit(fd_limit: u64) -> Self {
        let spare = fd_limit.saturating_sub(FD_RESERVE + METRICS_CONNECTIONS as u64);
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            max_connections: usize::try_from(spare).unwrap_or(usize::MAX).max(1),
        }
    }
}

impl Default for ConnectionLimits {
    /// [`ConnectionLimits::for_fd_limit`] for this process's soft descriptor limit.
    fn default() -> Self {
        Self::for_fd_limit(fd_limit())
    }
}

/// The soft `RLIMIT_NOFILE` of this process (1024, the usual default, if it cannot be read).
pub fn fd_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit only writes the struct it is given, which lives on this stack.
    let read = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    if read == 0 { limit.rlim_cur } else { 1024 }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit, so the connection cap can be as high
/// as the system allows; returns the soft limit in effect afterwards.
pub fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit only read and write the struct they are given, which
    // lives on this stack; a refused raise leaves the limit as it was.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return raised.rlim_cur;
            }
        }
    }
    fd_limit()
}

/// Serves `router` on `listener` within `limits` until `shutdown` completes, then lets the
/// requests in progress finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let open = Arc::new(Open::new(limits.max_connections));
    let (stopping, stop) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "accepting a connection failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Some((id, connection)) = open.admit().await else {
            tracing::debug!(%peer, "every connection is busy: the new one is closed");
            continue;
        };
        let (router, open, stop) = (router.clone(), Arc::clone(&open), stop.clone());
        tokio::spawn(async move {
            serve_connection(stream, peer, router, limits, &connection, stop).await;
            open.remove(id);
        });
    }
    drop(stop);
    let _ = stopping.send(true);
    open.drained().await;
    Ok(())
}

/// Serves one connection until it ends, times out, is closed to make room, or the server
/// stops.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: ConnectionLimits,
    connection: &Arc<Connection>,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let io = TokioIo::new(Watched { stream, connection: Arc::clone(connection) });
    let watched = Arc::clone(connection);
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        let busy = Busy::begin(Arc::clone(&watched));
        let router = router.clone();
        async move {
            let response = router.oneshot(request).await;
            drop(busy);
            response
        }
    });
    let served = http1::Builder::new().serve_connection(io, service);
    tokio::pin!(served);
    let mut stopping = false;
    loop {
        let (phase, since) = connection.phase();
        let limit = match phase {
            Phase::Head => Some(limits.header_read_timeout),
            Phase::Idle => Some(limits.idle_timeout),
            Phase::Busy => None,
        };
        if stopping && phase != Phase::Busy {
            return;
        }
        // A busy connection is looked at again when its request ends (a phase change).
        let deadline = limit.map_or_else(far_future, |limit| since + limit);
        tokio::select! {
            result = served.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%peer, %error, "connection ended with an error");
                }
                return;
            }
            () = tokio::time::sleep_until(deadline) => {
                if connection.phase() == (phase, since) {
                    tracing::debug!(%peer, ?phase, "connection timed out");
                    return;
                }
            }
            () = connection.changed.notified() => {}
            () = connection.evicted.notified() => {
                tracing::debug!(%peer, "connection closed to make room for a new one");
                return;
            }
            _ = stop.changed(), if !stopping => {
                stopping = true;
                served.as_mut().graceful_shutdown();
            }
        }
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(24 * 3600)
}

/// What a connection is doing, for its timeouts and for choosing one to close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a request's head (from accept, or from a kept-alive request's first byte).
    Head,
    /// Serving a request.
    Busy,
    /// Between requests.
    Idle,
}

/// One open connection, shared by its task, its reads and its requests.
struct Connection {
    phase: Mutex<(Phase, Instant)>,
    /// Signalled at every phase change, so the connection's timer follows.
    changed: Notify,
    /// Signalled when the connection is closed to make room.
    evicted: Notify,
    /// Set when it was chosen to make room, until it is gone.
    closing: AtomicBool,
}

impl Connection {
    fn phase(&self) -> (Phase, Instant) {
        *self.phase.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn enter(&self, phase: Phase) {
        *self.phase.lock().unwrap_or_else(PoisonError::into_inner) = (phase, Instant::now());
        self.changed.notify_one();
    }

    /// Bytes arrived: on an idle connection they start the next request's head.
    fn received(&self) {
        let mut current = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        if current.0 == Phase::Idle {
            *current = (Phase::Head, Instant::now());
            drop(current);
            self.changed.notify_one();
        }
    }
}

/// Marks a connection busy while a request is served.
struct Busy(Arc<Connection>);

impl Busy {
    fn begin(connection: Arc<Connection>) -> Self {
        connection.enter(Phase::Busy);
        Self(connection)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.enter(Phase::Idle);
    }
}

/// The open connections, oldest first.
struct Open {
    connections: Mutex<BTreeMap<u64, Arc<Connection>>>,
    next_id: AtomicU64,
    max: usize,
    /// Signalled whenever a connection is gone.
    removed: Notify,
}

impl Open {
    fn new(max: usize) -> Self {
        Self { connections: Mutex::default(), next_id: AtomicU64::new(0), max, removed: Notify::new() }
    }

    /// Admits a new connection. At the cap, the oldest connection without a request in
    /// progress is closed first, and this waits until it is gone, so the descriptors in use
    /// never exceed the cap by more than the one just accepted; `None` when every open
    /// connection is busy.
    async fn admit(&self) -> Option<(u64, Arc<Connection>)> {
        loop {
            let removed = self.removed.notified();
            tokio::pin!(removed);
            removed.as_mut().enable();
            {
                let mut connections = self.connections.lock().unwrap_or_else(PoisonError::into_inner);
                if connections.len() < self.max {
                    let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                    let connection = Arc::new(Connection {
                        phase: Mutex::new((Phase::Head, Instant::now())),
                        changed: Notify::new(),
                        evicted: Notify::new(),
                        closing: AtomicBool::new(false),
                    });
                    connections.insert(id, Arc::clone(&connection));
                    return Some((id, connection));
                }
                let closing = connections.values().any(|c| c.closing.load(Ordering::Relaxed));
                let idle =
                    connections.values().find(|c| !c.closing.load(Ordering::Relaxed) && c.phase().0 != Phase::Busy);
                match idle {
                    Some(oldest) => {
                        oldest.closing.store(true, Ordering::Relaxed);
                        oldest.evicted.notify_one();
                    }
                    None if closing => {}
                    None => return None,
                }
            }
            removed.await;
        }
    }

    fn remove(&self, id: u64) {
        self.connections.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
        self.removed.notify_waiters();
    }

    /// Completes once no connection is open.
    async fn drained(&self) {
        loop {
            let removed = self.removed.notified();
            tokio::pin!(removed);
            removed.as_mut().enable();
            if self.connections.lock().unwrap_or_else(PoisonError::into_inner).is_empty() {
                return;
            }
            removed.await;
        }
    }
}

/// A connection's socket, telling the connection when bytes arrive.
struct Watched {
    stream: TcpStream,
    connection: Arc<Connection>,
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.connection.received();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_a_reserve_below_the_descriptor_limit() {
        let limits = ConnectionLimits::for_fd_limit(512);
        assert_eq!(limits.max_connections, 512 - 64 - 16);
        assert_eq!(
            (limits.header_read_timeout, limits.idle_timeout),
            (Duration::from_secs(10), Duration::from_secs(30))
        );
        assert_eq!(ConnectionLimits::for_fd_limit(10).max_connections, 1, "always at least one");
    }

    #[tokio::test]
    async fn at_the_cap_the_oldest_connection_without_a_request_makes_room() {
        let open = Arc::new(Open::new(2));
        let (first, busy) = open.admit().await.unwrap();
        let _busy = Busy::begin(Arc::clone(&busy));
        let (second, waiting) = open.admit().await.unwrap();
        let admitting = tokio::spawn({
            let open = Arc::clone(&open);
            async move { open.admit().await.map(|(id, _)| id) }
        });
        tokio::time::timeout(Duration::from_secs(1), waiting.evicted.notified()).await.expect("the waiting one closes");
        assert!(!admitting.is_finished(), "the new one waits until the closed one is gone");
        open.remove(second);
        let third = admitting.await.unwrap().expect("room was made");
        let ids: Vec<u64> = open.connections.lock().unwrap().keys().copied().collect();
        assert_eq!(ids, [first, third], "the busy one stays");
        let _also_busy = Busy::begin(open.connections.lock().unwrap()[&third].clone());
        assert!(open.admit().await.is_none(), "every connection busy: the new one is closed");
    }

    #[tokio::test]
    async fn a_request_makes_a_connection_busy_and_its_end_idle() {
        let open = Open::new(1);
        let (_, connection) = open.admit().await.unwrap();
        assert_eq!(connection.phase().0, Phase::Head);
        connection.received();
        assert_eq!(connection.phase().0, Phase::Head, "bytes of the first head change nothing");
        let busy = Busy::begin(Arc::clone(&connection));
        connection.received();
        assert_eq!(connection.phase().0, Phase::Busy, "a request's body keeps it busy");
        drop(busy);
        assert_eq!(connection.phase().0, Phase::Idle);
        connection.received();
        assert_eq!(connection.phase().0, Phase::Head, "the next request's first byte starts its head");
    }
}
