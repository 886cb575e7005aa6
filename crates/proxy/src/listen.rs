//! The two data-path listeners, one struct per traffic direction: each is
//! bound up front (so a taken port fails start-up) and then run until drain.
//!
//! ```text
//! inbound:  accept ─► target = WEFT_PROXY_INBOUND_FORWARD_ADDR or SO_ORIGINAL_DST ─► dispatch
//! outbound: accept ─► SO_ORIGINAL_DST; not redirected ⇒ explicit proxy requests  ─► dispatch
//! ```

use crate::dispatch::{self, ConnectionContext, Proxy, Target, accept_tls};
use crate::drain::DrainWatch;
use crate::io::MeteredIo;
use crate::metrics::labels::{Direction, Peer, TargetLabels, TcpLabels};
use crate::orig_dst;
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
}

impl Listener {
    /// Binds the inbound listener.
    pub async fn bind_inbound(
        addr: SocketAddr,
        forward_addr: Option<SocketAddr>,
    ) -> std::io::Result<Listener> {
        Ok(Listener {
            direction: Direction::Inbound,
            listener: TcpListener::bind(addr).await?,
            forward_addr,
        })
    }

    /// Binds the outbound listener.
    pub async fn bind_outbound(addr: SocketAddr) -> std::io::Result<Listener> {
        Ok(Listener {
            direction: Direction::Outbound,
            listener: TcpListener::bind(addr).await?,
            forward_addr: None,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts connections until a drain starts; each connection runs in
    /// its own task holding a drain watch.
    pub async fn run(self, proxy: Arc<Proxy>, drain: DrainWatch) {
        loop {
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                _ = drain.signaled() => break,
            };
            match accepted {
                Ok((stream, client_addr)) => {
                    let context = self.connection_context(&stream, client_addr, &proxy, &drain);
                    if let Some((context, label_target)) = context {
                        tokio::spawn(serve(stream, context, label_target));
                    }
                }
                Err(error) => {
                    // Out of file descriptors and the like: back off briefly
                    // rather than spin.
                    tracing::warn!(direction = self.direction.as_str(), %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        tracing::debug!(
            direction = self.direction.as_str(),
            "listener closed for drain"
        );
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
                tracing::warn!(%client_addr, %error, "cannot read the original destination");
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

async fn serve(stream: TcpStream, mut context: ConnectionContext, label_target: SocketAddr) {
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
}
