//! Opaque TCP forwarding: connect to the target (with the connect timeout
//! and `TCP_NODELAY`), then copy bytes both ways with half-close until both
//! sides are done. Bytes are counted as they flow (see [`MeteredIo`]).

use crate::connect;
use crate::dispatch::{Proxy, connect_tls};
use crate::io::{Io, MeteredIo};
use crate::metrics::labels::{Direction, Peer, TargetLabels, TcpLabels};
use std::net::SocketAddr;

/// Size of the copy buffer in each direction.
const COPY_BUFFER_SIZE: usize = 8 * 1024;

/// Forwards `client` to `target` until both directions have closed.
pub async fn forward<I: Io>(
    proxy: &Proxy,
    mut client: I,
    target: SocketAddr,
    direction: Direction,
) {
    if proxy.is_own_listener(target) {
        tracing::warn!(%target, "refusing to forward a connection to the proxy itself");
        proxy.metrics.tcp_errors.record(direction, "loop");
        return;
    }
    let stream = match connect::connect(target, proxy.connect_timeout(direction)).await {
        Ok(stream) => stream,
        Err(error) => {
            proxy.log_traffic_error(direction, target, "TCP forward failed", &error);
            proxy
                .metrics
                .tcp_errors
                .record(direction, error.metric_label());
            return;
        }
    };
    let mut server = MeteredIo::new(
        stream,
        proxy.metrics.tcp.open(TcpLabels {
            direction,
            peer: Peer::Destination,
            target: TargetLabels::new(target, connect_tls(direction)),
        }),
    );
    if let Err(error) = tokio::io::copy_bidirectional_with_sizes(
        &mut client,
        &mut server,
        COPY_BUFFER_SIZE,
        COPY_BUFFER_SIZE,
    )
    .await
    {
        tracing::debug!(%target, %error, "TCP forward ended with an error");
    }
}
