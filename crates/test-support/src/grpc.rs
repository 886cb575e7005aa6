//! A gRPC echo service written by hand (no `protoc`): prost messages, a
//! server built on `tonic::server::Grpc` and a client on `tonic::client::Grpc`.
//!
//! ```text
//! service weft.test.Echo {
//!   rpc Unary(EchoRequest) returns (EchoReply);             // echoes, or fails with fail_code
//!   rpc BidiStream(stream EchoRequest) returns (stream EchoReply); // one reply per request
//! }
//! ```
//!
//! A request with a non-zero `fail_code` is answered with that gRPC status
//! and the request's message as the status message.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::net::SocketAddr;
use std::pin::Pin;

use bytes::{BufMut, Bytes, BytesMut};
use futures::{Stream, StreamExt};
use http::uri::PathAndQuery;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use prost::Message;
use tokio::net::TcpListener;
use tonic::metadata::MetadataMap;
use tonic::server::{StreamingService, UnaryService};
use tonic::transport::Channel;
use tonic::{Code, Status, Streaming};
use tonic_prost::ProstCodec;

use crate::background::BackgroundServer;

/// Path of the unary method.
pub const UNARY_PATH: &str = "/weft.test.Echo/Unary";
/// Path of the bidirectional streaming method.
pub const BIDI_PATH: &str = "/weft.test.Echo/BidiStream";

/// Request message.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EchoRequest {
    /// Text to echo (or the status message when failing).
    #[prost(string, tag = "1")]
    pub message: String,
    /// Non-zero: answer with this gRPC status code instead of echoing.
    #[prost(int32, tag = "2")]
    pub fail_code: i32,
}

/// Reply message.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EchoReply {
    /// The echoed text.
    #[prost(string, tag = "1")]
    pub message: String,
}

/// The gRPC echo server (h2c); stopped when dropped.
pub struct GrpcEchoServer {
    server: BackgroundServer,
}

impl GrpcEchoServer {
    /// Starts the server on `127.0.0.1:<free port>`.
    pub fn start() -> Self {
        Self {
            server: BackgroundServer::start("grpc-echo-server", accept_loop),
        }
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }
}

async fn accept_loop(listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service_fn(route))
                .await;
        });
    }
}

async fn route(
    request: http::Request<Incoming>,
) -> Result<http::Response<tonic::body::Body>, Infallible> {
    let codec = ProstCodec::<EchoReply, EchoRequest>::default();
    let mut grpc = tonic::server::Grpc::new(codec);
    let response = match request.uri().path() {
        UNARY_PATH => grpc.unary(UnaryEcho, request).await,
        BIDI_PATH => grpc.streaming(BidiEcho, request).await,
        _ => Status::unimplemented("no such method").into_http(),
    };
    Ok(response)
}

fn answer(request: EchoRequest) -> Result<EchoReply, Status> {
    if request.fail_code == 0 {
        Ok(EchoReply {
            message: request.message,
        })
    } else {
        Err(Status::new(
            Code::from_i32(request.fail_code),
            request.message,
        ))
    }
}

struct UnaryEcho;

impl UnaryService<EchoRequest> for UnaryEcho {
    type Response = EchoReply;
    type Future = Ready<Result<tonic::Response<EchoReply>, Status>>;

    fn call(&mut self, request: tonic::Request<EchoRequest>) -> Self::Future {
        ready(answer(request.into_inner()).map(tonic::Response::new))
    }
}

type ReplyStream = Pin<Box<dyn Stream<Item = Result<EchoReply, Status>> + Send>>;

struct BidiEcho;

impl StreamingService<EchoRequest> for BidiEcho {
    type Response = EchoReply;
    type ResponseStream = ReplyStream;
    type Future = Ready<Result<tonic::Response<ReplyStream>, Status>>;

    fn call(&mut self, request: tonic::Request<Streaming<EchoRequest>>) -> Self::Future {
        let replies = request.into_inner().map(|item| item.and_then(answer));
        ready(Ok(tonic::Response::new(Box::pin(replies) as ReplyStream)))
    }
}

/// A gRPC echo client over one h2c connection.
pub struct GrpcEchoClient {
    grpc: tonic::client::Grpc<Channel>,
}

/// What a bidirectional streaming call returned.
#[derive(Debug)]
pub struct BidiOutcome {
    /// Reply messages in order.
    pub replies: Vec<String>,
    /// The final status: `Ok` when the stream ended with `grpc-status: 0`.
    pub status: Result<(), Status>,
    /// Trailers of a successful stream.
    pub trailers: Option<MetadataMap>,
}

impl GrpcEchoClient {
    /// Connects (HTTP/2 prior knowledge) to `addr`.
    pub async fn connect(addr: SocketAddr) -> Result<Self, tonic::transport::Error> {
        let channel = Channel::from_shared(format!("http://{addr}"))
            .expect("valid uri")
            .connect()
            .await?;
        Ok(Self {
            grpc: tonic::client::Grpc::new(channel),
        })
    }

    /// Calls `Unary`; `fail_code` 0 echoes, anything else asks for that status.
    pub async fn unary(
        &mut self,
        message: &str,
        fail_code: Code,
    ) -> Result<tonic::Response<EchoReply>, Status> {
        self.grpc
            .ready()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let request = EchoRequest {
            message: message.to_string(),
            fail_code: fail_code as i32,
        };
        let codec = ProstCodec::<EchoRequest, EchoReply>::default();
        self.grpc
            .unary(
                tonic::Request::new(request),
                PathAndQuery::from_static(UNARY_PATH),
                codec,
            )
            .await
    }

    /// Calls `BidiStream` ping-pong style: sends one message, waits for its
    /// reply, then sends the next, so it only completes if both directions
    /// stream. `fail = Some((message, code))` sends that message with that failure code.
    pub async fn bidi_ping_pong(
        &mut self,
        messages: &[&str],
        fail: Option<(&str, Code)>,
    ) -> Result<BidiOutcome, Status> {
        self.grpc
            .ready()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let to_request = |m: &str| EchoRequest {
            message: m.to_string(),
            fail_code: match fail {
                Some((at, code)) if at == m => code as i32,
                _ => 0,
            },
        };
        let (tx, rx) = tokio::sync::mpsc::channel::<EchoRequest>(1);
        let mut pending = messages.iter();
        if let Some(first) = pending.next() {
            let _ = tx.send(to_request(first)).await;
        }
        let codec = ProstCodec::<EchoRequest, EchoReply>::default();
        let outgoing = tokio_stream::wrappers::ReceiverStream::new(rx);
        let response = self
            .grpc
            .streaming(
                tonic::Request::new(outgoing),
                PathAndQuery::from_static(BIDI_PATH),
                codec,
            )
            .await?;
        let mut incoming = response.into_inner();
        let mut replies = Vec::new();
        let mut tx = Some(tx);
        loop {
            match incoming.message().await {
                Ok(Some(reply)) => {
                    replies.push(reply.message);
                    match pending.next() {
                        Some(next) => {
                            if let Some(tx) = &tx {
                                let _ = tx.send(to_request(next)).await;
                            }
                        }
                        None => tx = None,
                    }
                }
                Ok(None) => {
                    let trailers = incoming.trailers().await?;
                    return Ok(BidiOutcome {
                        replies,
                        status: Ok(()),
                        trailers,
                    });
                }
                Err(status) => {
                    return Ok(BidiOutcome {
                        replies,
                        status: Err(status),
                        trailers: None,
                    });
                }
            }
        }
    }
}

/// A gRPC message frame: compressed flag 0, big-endian length, protobuf bytes.
pub fn encode_frame(message: &impl Message) -> Bytes {
    let body = message.encode_to_vec();
    let mut frame = BytesMut::with_capacity(5 + body.len());
    frame.put_u8(0);
    frame.put_u32(body.len() as u32);
    frame.put_slice(&body);
    frame.freeze()
}

/// A raw HTTP/2 `Unary` request to `authority`, for checking headers and
/// trailers on the wire with [`crate::http_client::send`].
pub fn raw_unary_request(
    authority: &str,
    message: &str,
    fail_code: Code,
) -> http::Request<http_body_util::Full<Bytes>> {
    let request = EchoRequest {
        message: message.to_string(),
        fail_code: fail_code as i32,
    };
    http::Request::builder()
        .method("POST")
        .version(http::Version::HTTP_2)
        .uri(format!("http://{authority}{UNARY_PATH}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(http_body_util::Full::new(encode_frame(&request)))
        .expect("valid request")
}
