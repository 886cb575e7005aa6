//! The two data-path listeners, one struct per traffic direction: each is
//! bound up front (so a taken port fails start-up) and then run until drain.
//!
//! ```text
//! accept ─► limit ─► SO_ORIGINAL_DST ─► the direction's entry point, in its own task
//!                                        (inbound::accept, outbound::accept)
//! ```
//!
//! The listener knows its direction only as a label (metrics, logs): what a
//! connection goes through is the entry point's business.
//!
//! Each direction has a connection limit: beyond it an accepted connection
//! is closed at once and counted (`tcp_connections_refused_total`). Each
//! listener keeps one spare file descriptor: out of descriptors, it frees
//! the spare to accept and close the waiting connection instead of leaving
//! it in the backlog. Log lines of these paths go through the log budget.

use crate::direction::Direction;
use crate::drain::DrainWatch;
use crate::metrics::limits::RefusedReason;
use crate::orig_dst;
use crate::proxy::Proxy;
use crate::resources::ConnectionLimit;
use futures::future::BoxFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// An accepted connection and where it was headed.
pub(crate) struct Accepted {
    /// The connection.
    pub stream: TcpStream,
    /// The client's address.
    pub client_addr: SocketAddr,
    /// The address the connection reached (the listener's).
    pub local: SocketAddr,
    /// Its original destination (`SO_ORIGINAL_DST`; the local address when
    /// not redirected).
    pub original: SocketAddr,
    /// Whether it was redirected to the listener (iptables), rather than
    /// made to the listener itself.
    pub redirected: bool,
}

/// A direction's entry point: serves an accepted connection to completion.
pub(crate) type AcceptFn = fn(Accepted, Arc<Proxy>, DrainWatch) -> BoxFuture<'static, ()>;

/// A bound data-path listener.
pub(crate) struct Listener {
    /// Its direction, as a metric and log label.
    direction: Direction,
    listener: TcpListener,
    /// The direction's entry point.
    accept: AcceptFn,
    /// Connections of this direction open at once (shared by a direction's
    /// listeners).
    limit: Arc<ConnectionLimit>,
    /// Freed to accept and close a connection when descriptors run out.
    spare_fd: Option<std::fs::File>,
}

/// The file kept open as a spare descriptor.
const SPARE_FD_PATH: &str = "/dev/null";
/// How long accepting pauses after an error it cannot handle.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

impl Listener {
    /// Binds a listener of `direction` whose connections go to `accept`
    /// (`inbound::accept`, `outbound::accept`), at most `limit` at once.
    pub(crate) async fn bind(
        addr: SocketAddr,
        direction: Direction,
        limit: Arc<ConnectionLimit>,
        accept: AcceptFn,
    ) -> std::io::Result<Listener> {
        Ok(Listener {
            direction,
            listener: TcpListener::bind(addr).await?,
            accept,
            limit,
            spare_fd: std::fs::File::open(SPARE_FD_PATH).ok(),
        })
    }

    /// The bound address.
    pub(crate) fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts connections until a drain starts; each connection runs in
    /// its own task holding a drain watch.
    pub(crate) async fn run(mut self, proxy: Arc<Proxy>, drain: DrainWatch) {
        loop {
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                _ = drain.signaled() => break,
            };
            match accepted {
                Ok((stream, client_addr)) => {
                    let Some(permit) = self.limit.try_acquire() else {
                        drop(stream);
                        self.refused(&proxy, RefusedReason::Limit);
                        continue;
                    };
                    if let Some(accepted) = self.accepted(stream, client_addr, &proxy) {
                        let serve = (self.accept)(accepted, proxy.clone(), drain.clone());
                        tokio::spawn(async move {
                            serve.await;
                            drop(permit);
                        });
                    }
                }
                Err(error) if is_out_of_fds(&error) && self.spare_fd.is_some() => {
                    self.accept_with_spare_fd(&proxy).await;
                }
                Err(error) => {
                    // Back off briefly rather than spin.
                    if let Some(allowed) = proxy.log_limit.allow() {
                        tracing::warn!(
                            direction = self.direction.as_str(),
                            held_back = allowed.held_back,
                            %error,
                            "accept failed"
                        );
                    }
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            }
        }
        tracing::debug!(
            direction = self.direction.as_str(),
            "listener closed for drain"
        );
    }

    /// Out of file descriptors: frees the spare one to accept the waiting
    /// connection and close it, then takes a spare again.
    async fn accept_with_spare_fd(&mut self, proxy: &Proxy) {
        self.spare_fd = None;
        let accepted = tokio::time::timeout(ACCEPT_ERROR_PAUSE, self.listener.accept()).await;
        if let Ok(Ok((stream, _))) = accepted {
            drop(stream);
            self.refused(proxy, RefusedReason::FdLimit);
        }
        self.spare_fd = std::fs::File::open(SPARE_FD_PATH).ok();
        if self.spare_fd.is_none() {
            tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
        }
    }

    /// Counts and logs (within the log budget) a connection closed at once.
    fn refused(&self, proxy: &Proxy, reason: RefusedReason) {
        proxy.metrics.limits.refused(self.direction, reason);
        if let Some(allowed) = proxy.log_limit.allow() {
            tracing::warn!(
                direction = self.direction.as_str(),
                reason = reason.as_str(),
                limit = self.limit.max(),
                held_back = allowed.held_back,
                "refused a connection"
            );
        }
    }

    /// Where an accepted connection was headed. `None` closes it.
    fn accepted(
        &self,
        stream: TcpStream,
        client_addr: SocketAddr,
        proxy: &Proxy,
    ) -> Option<Accepted> {
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().ok()?;
        let original = match orig_dst::original_destination(&stream) {
            Ok(original) => original,
            Err(error) => {
                proxy.log_traffic_error(
                    self.direction,
                    client_addr,
                    "cannot read the original destination",
                    &error,
                );
                proxy
                    .metrics
                    .tcp_errors
                    .record(self.direction, "no original destination");
                return None;
            }
        };
        Some(Accepted {
            stream,
            client_addr,
            local,
            original,
            redirected: !orig_dst::is_listener_itself(original, local),
        })
    }
}

/// Whether accepting failed for want of file descriptors (EMFILE, ENFILE).
fn is_out_of_fds(error: &std::io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(code) if code == rustix::io::Errno::MFILE.raw_os_error()
            || code == rustix::io::Errno::NFILE.raw_os_error()
    )
}
