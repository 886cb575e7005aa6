//! The two data-path listeners, one struct per traffic direction: each is
//! bound up front (so a taken port fails start-up) and then run until drain.
//!
//! ```text
//! inbound:  accept ─► target = WEFT_PROXY_INBOUND_FORWARD_ADDR or SO_ORIGINAL_DST ─► dispatch
//! outbound: accept ─► SO_ORIGINAL_DST; not redirected ⇒ explicit proxy requests  ─► dispatch
//! ```
//!
//! Each direction has a connection limit: beyond it an accepted connection
//! is closed at once and counted (`tcp_connections_refused_total`). Each
//! listener keeps one spare file descriptor: out of descriptors, it frees
//! the spare to accept and close the waiting connection instead of leaving
//! it in the backlog. Log lines of these paths go through the log budget.

use crate::direction::Direction;
use crate::dispatch::{self, ConnectionContext, Proxy, Target, accept_tls};
use crate::drain::DrainWatch;
use crate::io::MeteredIo;
use crate::metrics::labels::{Peer, TargetLabels, TcpLabels};
use crate::metrics::limits::RefusedReason;
use crate::orig_dst;
use crate::resources::{ConnectionLimit, ConnectionPermit};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// A bound data-path listener.
pub struct Listener {
    direction: Direction,
    listener: TcpListener,
    /// Inbound explicit mode: every connection goes here.
    forward_addr: Option<SocketAddr>,
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
    /// Binds the inbound listener.
    pub async fn bind_inbound(
        addr: SocketAddr,
        forward_addr: Option<SocketAddr>,
        limit: Arc<ConnectionLimit>,
    ) -> std::io::Result<Listener> {
        Ok(Listener {
            direction: Direction::Inbound,
            listener: TcpListener::bind(addr).await?,
            forward_addr,
            limit,
            spare_fd: std::fs::File::open(SPARE_FD_PATH).ok(),
        })
    }

    /// Binds an outbound listener.
    pub async fn bind_outbound(
        addr: SocketAddr,
        limit: Arc<ConnectionLimit>,
    ) -> std::io::Result<Listener> {
        Ok(Listener {
            direction: Direction::Outbound,
            listener: TcpListener::bind(addr).await?,
            forward_addr: None,
            limit,
            spare_fd: std::fs::File::open(SPARE_FD_PATH).ok(),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts connections until a drain starts; each connection runs in
    /// its own task holding a drain watch.
    pub async fn run(mut self, proxy: Arc<Proxy>, drain: DrainWatch) {
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
                    let context = self.connection_context(&stream, client_addr, &proxy, &drain);
                    if let Some((context, label_target)) = context {
                        tokio::spawn(serve(stream, context, label_target, permit));
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

    /// Decides where an accepted connection goes. `None` closes it.
    fn connection_context(
        &self,
        stream: &TcpStream,
        client_addr: SocketAddr,
        proxy: &Arc<Proxy>,
        drain: &DrainWatch,
    ) -> Option<(ConnectionContext, SocketAddr)> {
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().ok()?;
        let original = match orig_dst::original_destination(stream) {
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
        let redirected = !orig_dst::is_listener_itself(original, local);
        let target = match (self.direction, self.forward_addr, redirected) {
            (Direction::Inbound, Some(forward), _) => Target::Addr(forward),
            (_, _, true) => Target::Addr(original),
            (Direction::Outbound, _, false) => Target::Explicit,
            // A direct connection to the inbound port: only mutual TLS with
            // a transport header (which names the port) is served; anything
            // else would loop back here and is refused.
            (Direction::Inbound, None, false) => Target::Addr(local),
        };
        let label_target = match target {
            Target::Addr(addr) => addr,
            Target::Explicit => original,
        };
        Some((
            ConnectionContext::new(
                proxy.clone(),
                self.direction,
                client_addr,
                target,
                drain.clone(),
            ),
            label_target,
        ))
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

async fn serve(
    stream: TcpStream,
    mut context: ConnectionContext,
    label_target: SocketAddr,
    permit: ConnectionPermit,
) {
    let labels = TcpLabels {
        direction: context.direction,
        peer: Peer::Source,
        target: TargetLabels::new(label_target, accept_tls(context.direction)),
    };
    let tcp = &context.proxy.metrics.tcp;
    // Inbound, the TLS status is known only once the first bytes are read
    // (and, for mutual TLS, the client's identity after the handshake).
    let metrics = Arc::new(match context.direction {
        Direction::Inbound => tcp.open_unsettled(labels),
        Direction::Outbound => tcp.open(labels),
    });
    context.accept_metrics = Some(metrics.clone());
    dispatch::serve(MeteredIo::shared(stream, metrics), context).await;
    drop(permit);
}
