//! The injector's listener (`--injector-addr`): HTTPS, `POST /inject` only.
//!
//! ```text
//! accept ─► over MAX_CONNECTIONS? close at once (refused: connections)
//!        ─► TLS handshake (TLS_HANDSHAKE_TIMEOUT) ─► ALPN h2 → HTTP/2, else HTTP/1.1
//!             (headers within HEADER_READ_TIMEOUT; a connection lives at most CONNECTION_LIFETIME)
//! request ─► path /inject? else 404 ─► POST? else 405
//!         ─► Content-Length > MAX_BODY_BYTES? 413 unread
//!         ─► body (at most MAX_BODY_BYTES: else 413; within REQUEST_TIMEOUT: else 408)
//!         ─► review::review on the blocking pool ─► 200 AdmissionReview, or 400
//! ```
//!
//! Who may reach it: anyone who reaches the port (the API server presents
//! no client certificate by default). What they can do: have a patch
//! computed for the object they send, nothing else; every request is
//! bounded in size, time and concurrency.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use weft_core::cluster::INJECTOR_PATH;

use super::review::{Verdict, review};
use super::serving::{InjectorTls, SharedInjectionConfig};
use super::{InjectorMetrics, Refusal};
use crate::kubernetes::namespaces::NamespaceAnnotations;

/// The largest request body read (an AdmissionReview holds the pod twice at
/// most; the API server stores objects of at most 1.5 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;
/// Connections served at once; more are closed as they are accepted.
pub const MAX_CONNECTIONS: usize = 128;
/// How long a client may take to send a request's headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the TLS handshake may take.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one request may take, body included (the webhook's own timeout
/// in the API server is 10 s).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a connection is kept (the API server opens a new one).
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(300);
/// HTTP/2 streams per connection.
const MAX_STREAMS: u32 = 32;
/// The largest header list (HTTP/1.1 buffer and HTTP/2 list).
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// What the handler needs; shared by every connection.
#[derive(Debug, Clone)]
pub struct InjectorState {
    /// What is injected (its anchors follow the issuer).
    pub config: SharedInjectionConfig,
    /// The namespaces' annotations.
    pub namespaces: NamespaceAnnotations,
    /// `injector_*` metrics.
    pub metrics: InjectorMetrics,
}

/// The bound listener, its TLS and its state.
#[derive(Debug)]
pub struct InjectorListener {
    /// The bound socket.
    pub listener: TcpListener,
    /// The certificate (follows renewals).
    pub tls: InjectorTls,
    /// The handler's state.
    pub state: Arc<InjectorState>,
}

impl InjectorListener {
    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes; connections then get
    /// [`REQUEST_TIMEOUT`] to finish (they are not waited for beyond it).
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        let Self {
            listener,
            tls,
            state,
        } = self;
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                () = &mut shutdown => return Ok(()),
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // EMFILE and friends: back off rather than spin.
                        tracing::warn!(%error, "injector: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                state.metrics.refuse(Refusal::Connections);
                tracing::debug!(%peer, "injector: too many connections; closed");
                drop(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let acceptor = tls.acceptor();
            let state = Arc::clone(&state);
            tokio::spawn(async move {
                let _slot = slot;
                let handshake =
                    tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
                let stream = match handshake {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(error)) => {
                        state.metrics.refuse(Refusal::Handshake);
                        tracing::debug!(%peer, %error, "injector: TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        state.metrics.refuse(Refusal::Handshake);
                        tracing::debug!(%peer, "injector: TLS handshake timed out");
                        return;
                    }
                };
                let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                let served = tokio::time::timeout(
                    CONNECTION_LIFETIME,
                    serve_connection(TokioIo::new(stream), h2, state),
                )
                .await;
                match served {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => {
                        tracing::debug!(%peer, %error, "injector: connection ended with an error");
                    }
                    Err(_) => tracing::debug!(%peer, "injector: connection reached its lifetime"),
                }
            });
        }
    }
}

/// Serves one TLS connection as HTTP/2 (`h2`) or HTTP/1.1.
async fn serve_connection<I>(
    io: TokioIo<I>,
    h2: bool,
    state: Arc<InjectorState>,
) -> Result<(), hyper::Error>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request| {
        let state = Arc::clone(&state);
        async move { Ok::<_, Infallible>(handle(request, &state).await) }
    });
    if h2 {
        hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .max_concurrent_streams(MAX_STREAMS)
            .max_header_list_size(MAX_HEADER_BYTES as u32)
            .serve_connection(io, service)
            .await
    } else {
        hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .max_buf_size(MAX_HEADER_BYTES.max(8 * 1024))
            .serve_connection(io, service)
            .await
    }
}

/// One request: the checks in order, then the review.
async fn handle(request: Request<Incoming>, state: &InjectorState) -> Response<Full<Bytes>> {
    // 1. Only POST /inject.
    if request.uri().path() != INJECTOR_PATH {
        state.metrics.refuse(Refusal::NotFound);
        return plain(
            StatusCode::NOT_FOUND,
            "not found: the injector serves POST /inject\n",
        );
    }
    if request.method() != Method::POST {
        state.metrics.refuse(Refusal::Method);
        let mut response = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed: POST an AdmissionReview\n",
        );
        response
            .headers_mut()
            .insert(ALLOW, hyper::header::HeaderValue::from_static("POST"));
        return response;
    }
    // 2. A body announced too large is refused unread.
    let announced = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if announced.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        state.metrics.refuse(Refusal::TooLarge);
        return too_large();
    }
    // 3. The body, bounded in size and time.
    let started = Instant::now();
    let body = Limited::new(request.into_body(), MAX_BODY_BYTES);
    let body = match tokio::time::timeout(REQUEST_TIMEOUT, body.collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => {
            state.metrics.refuse(Refusal::TooLarge);
            return too_large();
        }
        Ok(Err(error)) => {
            tracing::debug!(%error, "injector: the request body failed");
            state.metrics.refuse(Refusal::Body);
            return plain(
                StatusCode::BAD_REQUEST,
                "the request body could not be read\n",
            );
        }
        Err(_) => {
            state.metrics.refuse(Refusal::Timeout);
            return plain(
                StatusCode::REQUEST_TIMEOUT,
                "the request body was not sent in time\n",
            );
        }
    };
    // 4. The review: pure, but a large body takes a while to parse, so
    //    it runs on the blocking pool.
    let config = state.config.current();
    let namespaces = state.namespaces.clone();
    let reviewed = tokio::task::spawn_blocking(move || {
        review(&body, |namespace| namespaces.get(namespace), &config)
    })
    .await;
    let Ok(reviewed) = reviewed else {
        return plain(StatusCode::INTERNAL_SERVER_ERROR, "the review failed\n");
    };
    state.metrics.decided(&reviewed.verdict);
    let elapsed = started.elapsed();
    match &reviewed.verdict {
        Verdict::Skipped { reason } => tracing::info!(
            pod = %reviewed.target,
            %reason,
            dry_run = reviewed.dry_run,
            "injector: proxy not injected"
        ),
        Verdict::Malformed { message } => {
            tracing::debug!(%message, "injector: malformed AdmissionReview");
        }
        verdict => tracing::debug!(
            pod = %reviewed.target,
            decision = verdict.label(),
            dry_run = reviewed.dry_run,
            ?elapsed,
            "injector: reviewed"
        ),
    }
    let status = StatusCode::from_u16(reviewed.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let content_type = if status == StatusCode::OK {
        "application/json"
    } else {
        "text/plain; charset=utf-8"
    };
    let mut response = Response::new(Full::new(Bytes::from(reviewed.body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    response
}

fn too_large() -> Response<Full<Bytes>> {
    let mut response = plain(
        StatusCode::PAYLOAD_TOO_LARGE,
        "the AdmissionReview is larger than 3 MiB\n",
    );
    // The rest of the body is not read: the connection cannot be reused.
    response.headers_mut().insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("close"),
    );
    response
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
