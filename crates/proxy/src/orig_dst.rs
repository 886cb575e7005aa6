//! The original destination of a redirected connection (`SO_ORIGINAL_DST`
//! for IPv4, `IP6T_SO_ORIGINAL_DST` for IPv6), as iptables REDIRECT leaves it.

use std::net::SocketAddr;
use tokio::net::TcpStream;

const ENOENT: i32 = 2;
const ENOPROTOOPT: i32 = 92;

/// Where the client meant to connect. A connection made straight to the
/// proxy's listener (no REDIRECT rule involved) reports the listener's own
/// address, so callers compare the result with the local address.
pub(crate) fn original_destination(stream: &TcpStream) -> std::io::Result<SocketAddr> {
    let socket = socket2::SockRef::from(stream);
    let local = stream.local_addr()?;
    // An IPv4 client of a dual-stack ([::]) listener shows up as
    // ::ffff:a.b.c.d; its NAT entry is an IPv4 one.
    let original = if local.ip().to_canonical().is_ipv4() {
        socket.original_dst_v4()
    } else {
        socket.original_dst_v6()
    };
    match original {
        Ok(address) => address.as_socket().map(canonical).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "original destination is not an IP socket address",
            )
        }),
        // Without a matching conntrack entry (no REDIRECT rule, or no
        // netfilter at all) the kernel answers ENOENT or ENOPROTOOPT: the client connected
        // to the listener itself.
        Err(error) if matches!(error.raw_os_error(), Some(ENOENT) | Some(ENOPROTOOPT)) => Ok(local),
        Err(error) => Err(error),
    }
}

fn canonical(address: SocketAddr) -> SocketAddr {
    SocketAddr::new(address.ip().to_canonical(), address.port())
}

/// Whether `original` is just the listener's own address, i.e. the
/// connection was not redirected. An IPv4 client may reach a dual-stack
/// listener as `::ffff:a.b.c.d`, so mapped addresses compare equal.
pub(crate) fn is_listener_itself(original: SocketAddr, local: SocketAddr) -> bool {
    let canonical = |address: SocketAddr| (address.ip().to_canonical(), address.port());
    canonical(original) == canonical(local)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_direct_connection_reports_the_listener() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let _client = TcpStream::connect(address).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        let original = original_destination(&accepted).unwrap();
        assert!(is_listener_itself(original, accepted.local_addr().unwrap()));
    }

    #[test]
    fn mapped_addresses_are_the_same_listener() {
        let table = [
            ("[::ffff:127.0.0.1]:4140", "127.0.0.1:4140", true),
            ("127.0.0.1:4140", "127.0.0.1:4140", true),
            ("10.0.0.2:8080", "10.0.0.1:4143", false),
            ("127.0.0.1:4141", "127.0.0.1:4140", false),
        ];
        for (original, local, expected) in table {
            assert_eq!(
                is_listener_itself(original.parse().unwrap(), local.parse().unwrap()),
                expected,
                "{original} vs {local}"
            );
        }
    }
}
