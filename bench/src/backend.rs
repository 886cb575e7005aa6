//! The benchmark's backend: one TCP port that answers HTTP/1.1, HTTP/2 with
//! prior knowledge (h2c) and gRPC, so a single
//! `WEFT_PROXY_INBOUND_FORWARD_ADDR` serves every workload. The same port
//! is also bound on the loopback addresses the transparent setups intercept
//! (127.0.0.2, 127.0.0.3), where their proxies connect on.
//!
//! ```text
//! conn ─► auto (h1 | h2 preface) ─► content-type application/grpc ? ─► Echo/Unary (tonic)
//!                                                                  └─► 200 "ok\n"
//! ```
//!
//! It runs as its own `weft-bench backend` process so it can be pinned to a
//! different core than the proxies under test.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::net::SocketAddr;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tonic::body::Body;
use tonic_prost::ProstCodec;

use crate::proto::{EchoReply, EchoRequest, UNARY_PATH};

/// Body of every plain HTTP response.
pub const TINY_BODY: &[u8] = b"ok\n";

/// Serves forever on every address of `listens` (single-threaded: call
/// from a current-thread runtime). Prints `ready` on stdout once bound.
pub async fn serve(listens: Vec<SocketAddr>) -> anyhow::Result<()> {
    let mut listeners = Vec::with_capacity(listens.len());
    for listen in listens {
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding backend on {listen}"))?;
        println!("ready {}", listener.local_addr()?);
        listeners.push(listener);
    }
    let mut accepting = tokio::task::JoinSet::new();
    for listener in listeners {
        accepting.spawn(accept_loop(listener));
    }
    while accepting.join_next().await.is_some() {}
    Ok(())
}

async fn accept_loop(listener: TcpListener) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                eprintln!("backend: accept failed: {error}");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let builder = auto::Builder::new(TokioExecutor::new());
            let connection = builder.serve_connection(TokioIo::new(stream), service_fn(handle));
            // Clients closing mid-request at the end of a timed run is normal.
            let _ = connection.await;
        });
    }
}

async fn handle(request: http::Request<Incoming>) -> Result<http::Response<Body>, Infallible> {
    if is_grpc(&request) {
        if request.uri().path() == UNARY_PATH {
            let mut grpc = tonic::server::Grpc::new(ProstCodec::default());
            return Ok(grpc.unary(EchoService, request).await);
        }
        return Ok(tonic::Status::unimplemented("unknown method").into_http());
    }
    Ok(http::Response::new(Body::new(Full::new(
        Bytes::from_static(TINY_BODY),
    ))))
}

fn is_grpc<B>(request: &http::Request<B>) -> bool {
    request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// `Echo/Unary`: returns the request's payload.
#[derive(Clone, Copy)]
struct EchoService;

impl tonic::server::UnaryService<EchoRequest> for EchoService {
    type Response = EchoReply;
    type Future = Ready<Result<tonic::Response<EchoReply>, tonic::Status>>;

    fn call(&mut self, request: tonic::Request<EchoRequest>) -> Self::Future {
        let payload = request.into_inner().payload;
        ready(Ok(tonic::Response::new(EchoReply { payload })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_grpc_by_content_type() {
        let grpc = http::Request::builder()
            .header("content-type", "application/grpc+proto")
            .body(())
            .unwrap();
        assert!(is_grpc(&grpc));
        assert!(!is_grpc(&http::Request::new(())));
    }
}
