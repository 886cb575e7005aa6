//! The first-byte decision (pure), and the adapter end to end in process:
//! TLS with the controller's own certificate, plaintext on the same port,
//! client certificates verified when presented, renewal on a new issuer.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use rcgen::{CertificateParams, KeyPair};
use rustls::ClientConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use time::OffsetDateTime;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::*;
use crate::identity::IdentityDomain;
use crate::identity::authority::{
    CertificateAuthority, IssuerCredentials, ValidityPolicy, leaf_validity,
};
use crate::identity::csr::parse_csr;
use crate::identity::init::{GeneratedCa, generate_issuer, generate_root};
use crate::identity::issuer_files::AuthorityHandle;
use crate::identity::serving::{ServingCertificate, controller_name};

const DAY: Duration = Duration::from_secs(24 * 60 * 60);
const WEB: &str = "web.shop.serviceaccount.identity.weft.cluster.local";

#[test]
fn the_first_byte_and_the_peer_decide() {
    use PlaintextPolicy::{Any, LoopbackOnly};
    // (case, first byte, TLS configured, peer on loopback, policy, expected)
    let cases = [
        (
            "TLS record, TLS on",
            0x16,
            true,
            false,
            LoopbackOnly,
            Transport::Tls,
        ),
        (
            "TLS record, TLS off",
            0x16,
            false,
            false,
            LoopbackOnly,
            Transport::Plaintext,
        ),
        (
            "h2 preface from loopback",
            b'P',
            true,
            true,
            LoopbackOnly,
            Transport::Plaintext,
        ),
        (
            "h2 preface from afar",
            b'P',
            true,
            false,
            LoopbackOnly,
            Transport::Refused,
        ),
        (
            "h2 preface from afar, allowed",
            b'P',
            true,
            false,
            Any,
            Transport::Plaintext,
        ),
        (
            "h2 preface from afar, no TLS",
            b'P',
            false,
            false,
            LoopbackOnly,
            Transport::Plaintext,
        ),
        (
            "HTTP/1 request from loopback",
            b'G',
            true,
            true,
            LoopbackOnly,
            Transport::Plaintext,
        ),
        (
            "TLS alert record from afar",
            0x15,
            true,
            false,
            LoopbackOnly,
            Transport::Refused,
        ),
        (
            "zero from loopback",
            0x00,
            true,
            true,
            LoopbackOnly,
            Transport::Plaintext,
        ),
    ];
    for (name, byte, tls, loopback, policy, expected) in cases {
        assert_eq!(
            transport_for(byte, tls, loopback, policy),
            expected,
            "{name}"
        );
    }
}

/// A root and an issuer loaded into an authority.
fn authority(root: &GeneratedCa) -> (CertificateAuthority, GeneratedCa) {
    let domain = IdentityDomain::default();
    let issuer = generate_issuer(root, &domain, OffsetDateTime::now_utc(), 30 * DAY).unwrap();
    let loaded = CertificateAuthority::load(
        &IssuerCredentials {
            certificate_pem: issuer.certificate_pem.as_bytes(),
            key_pem: issuer.key_pem.as_bytes(),
            trust_anchors_pem: root.certificate_pem.as_bytes(),
        },
        OffsetDateTime::now_utc(),
    )
    .unwrap();
    (loaded, issuer)
}

fn new_root() -> GeneratedCa {
    generate_root(
        &IdentityDomain::default(),
        OffsetDateTime::now_utc(),
        365 * DAY,
    )
    .unwrap()
}

fn anchor_der(root: &GeneratedCa) -> CertificateDer<'static> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(root.certificate_pem.as_bytes()).unwrap();
    CertificateDer::from(pem.contents)
}

/// A client verifying the controller against `root`, presenting `identity`
/// (a leaf from `authority`) when given.
fn client(
    root: &GeneratedCa,
    identity: Option<(&CertificateAuthority, &str)>,
) -> Arc<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(anchor_der(root)).unwrap();
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots);
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some((authority, name)) => {
            let key = KeyPair::generate().unwrap();
            let request = CertificateParams::new(vec![name.to_string()])
                .unwrap()
                .serialize_request(&key)
                .unwrap();
            let csr = parse_csr(request.der()).unwrap();
            let validity = leaf_validity(
                OffsetDateTime::now_utc(),
                &ValidityPolicy::default(),
                authority.chain_not_after(),
            )
            .unwrap();
            let leaf = authority
                .issue(
                    &csr,
                    name,
                    "spiffe://cluster.local/ns/shop/sa/web",
                    validity,
                )
                .unwrap();
            let chain = leaf.chain();
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
            builder.with_client_auth_cert(chain, key).unwrap()
        }
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

/// The next connection the adapter hands to tonic.
/// A fresh root, an issuer under it serving through a handle, and the
/// controller's own certificate from that issuer.
fn serving_under_new_root(
    domain: &IdentityDomain,
    registry: &mut Registry,
) -> (GeneratedCa, AuthorityHandle, ServingCertificate) {
    let root = new_root();
    let (first, _) = authority(&root);
    let handle = AuthorityHandle::default();
    handle.replace(first);
    let serving =
        ServingCertificate::issue_first(&handle, domain, ValidityPolicy::default(), registry)
            .unwrap();
    (root, handle, serving)
}

async fn next(incoming: &mut (impl Stream<Item = io::Result<ServerIo>> + Unpin)) -> ServerIo {
    tokio::time::timeout(Duration::from_secs(5), incoming.next())
        .await
        .expect("a connection")
        .expect("the stream goes on")
        .expect("no error")
}

async fn connect_tls(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
) -> io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let name = ServerName::try_from(controller_name(&IdentityDomain::default())).unwrap();
    let tcp = TcpStream::connect(addr).await?;
    let mut stream = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await?;
    // The server finishes its side (and checks a client certificate) once
    // the client's first flight arrives.
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await?;
    stream.flush().await?;
    Ok(stream)
}

#[tokio::test]
async fn tls_and_plaintext_share_the_port_and_follow_the_issuer() {
    let domain = IdentityDomain::default();
    let mut registry = Registry::default();
    let (root, handle, serving) = serving_under_new_root(&domain, &mut registry);
    let metrics = IncomingMetrics::new(&mut registry);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut incoming = Box::pin(
        GrpcListener {
            listener,
            server: Server::Destination,
            tls: Some(serving.tls()),
            plaintext: PlaintextPolicy::LoopbackOnly,
            metrics,
        }
        .incoming(),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let renewal = tokio::spawn(serving.run(async {
        let _ = stopped.await;
    }));
    // TLS without a client certificate: the controller's name, ALPN h2.
    let client_stream = connect_tls(addr, client(&root, None)).await.unwrap();
    let served: ServerIo = next(&mut incoming).await;
    let info = served.connect_info();
    assert!(info.tls && info.client_identity.is_none(), "{info:?}");
    let session = client_stream.get_ref().1;
    assert_eq!(session.alpn_protocol(), Some(&b"h2"[..]));
    let first_chain: Vec<Vec<u8>> = session
        .peer_certificates()
        .unwrap()
        .iter()
        .map(|der| der.to_vec())
        .collect();

    // Plaintext HTTP/2 on the same port.
    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    assert!(!next(&mut incoming).await.connect_info().tls);

    // A client certificate from the mesh names the client.
    let mtls = connect_tls(addr, client(&root, Some((&handle.current().unwrap(), WEB))))
        .await
        .unwrap();
    let info = next(&mut incoming).await.connect_info();
    assert_eq!(info.client_identity.as_deref(), Some(WEB));
    drop(mtls);

    // One from another mesh is refused: the connection never reaches tonic.
    let other_root = new_root();
    let (other, _) = authority(&other_root);
    let _ = connect_tls(addr, client(&root, Some((&other, WEB)))).await;
    let counted = |transport: &str| {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        text.lines().any(|line| {
            line.starts_with("grpc_connections_total")
                && line.contains(&format!("transport=\"{transport}\""))
                && line.ends_with(" 1")
        })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !counted("failed") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no failed handshake counted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(counted("tls") && counted("mtls") && counted("plaintext"));

    // A new issuer: the controller's next certificate chains to it.
    let (second, second_issuer) = authority(&root);
    handle.replace(second);
    let (_, second_pem) =
        x509_parser::pem::parse_x509_pem(second_issuer.certificate_pem.as_bytes()).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let stream = connect_tls(addr, client(&root, None)).await.unwrap();
        let _ = next(&mut incoming).await;
        let chain = stream.get_ref().1.peer_certificates().unwrap();
        if chain[1].as_ref() == second_pem.contents.as_slice() {
            assert_ne!(chain[0].to_vec(), first_chain[0], "a new leaf");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not renewed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop.send(());
    renewal.await.unwrap();
}

#[tokio::test]
async fn with_tls_on_plaintext_is_only_for_loopback_peers() {
    let Some(ip) = weft_test_support::non_loopback_ip() else {
        eprintln!("SKIPPED: this host has no non-loopback address to connect from");
        return;
    };
    let domain = IdentityDomain::default();
    let mut registry = Registry::default();
    let (root, _handle, serving) = serving_under_new_root(&domain, &mut registry);
    for (policy, served) in [
        (PlaintextPolicy::LoopbackOnly, false),
        (PlaintextPolicy::Any, true),
    ] {
        let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut incoming = Box::pin(
            GrpcListener {
                listener,
                server: Server::Destination,
                tls: Some(serving.tls()),
                plaintext: policy,
                metrics: IncomingMetrics::default(),
            }
            .incoming(),
        );
        // Plaintext HTTP/2 from the host's other address.
        let mut remote = TcpStream::connect((ip, port)).await.unwrap();
        remote
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await
            .unwrap();
        if served {
            assert!(!next(&mut incoming).await.connect_info().tls, "{policy:?}");
        } else {
            // Closed without being served...
            let mut buffer = [0u8; 16];
            let read = tokio::time::timeout(
                Duration::from_secs(5),
                tokio::io::AsyncReadExt::read(&mut remote, &mut buffer),
            )
            .await
            .expect("the refused connection is closed");
            assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
            // ...while loopback plaintext and remote TLS are served.
            let mut local = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            local
                .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
                .await
                .unwrap();
            assert!(!next(&mut incoming).await.connect_info().tls);
            let addr = std::net::SocketAddr::new(ip, port);
            let _tls = connect_tls(addr, client(&root, None)).await.unwrap();
            assert!(next(&mut incoming).await.connect_info().tls);
        }
    }
}
