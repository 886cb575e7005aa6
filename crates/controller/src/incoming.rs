//! Accepted gRPC connections with `TCP_NODELAY` set: Destination updates and
//! Certify answers are small, and without it each waits out a delayed ACK
//! (about 40 ms on Linux).

use futures::Stream;
use tokio::net::{TcpListener, TcpStream};

/// The connections `listener` accepts, each with `TCP_NODELAY`.
pub fn incoming(listener: TcpListener) -> impl Stream<Item = std::io::Result<TcpStream>> {
    use futures::StreamExt;
    tokio_stream::wrappers::TcpListenerStream::new(listener).map(|stream| {
        stream.inspect(|stream| {
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(%error, "cannot set TCP_NODELAY");
            }
        })
    })
}
