//! The demo app: a tiny JSON HTTP service the proxy sits in front of.
//!
//! Speaks HTTP/1.1 and HTTP/2 without TLS (h2c, prior knowledge) on the same
//! port, like most apps in a mesh.
//!
//! | Path | Answer |
//! |---|---|
//! | `GET /` | index of the endpoints |
//! | `GET /api/hello` | a greeting that names the HTTP version it arrived on |
//! | `GET /api/fail` | always `500`, to see failures in the metrics |
//! | `POST /api/echo` | the request body back |
//! | anything else | `404` |

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::json;
use tokio::net::TcpListener;

/// The demo app, bound but not yet serving.
pub struct App {
    listener: TcpListener,
}

impl App {
    /// Binds the app to `127.0.0.1:port` (0 = a free port).
    pub async fn bind(port: u16) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        Ok(Self { listener })
    }

    /// The address the app listens on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves connections until the task is dropped.
    pub async fn run(self) {
        loop {
            let (stream, _peer) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                // Transient (e.g. out of file descriptors): keep serving.
                Err(_) => continue,
            };
            tokio::spawn(async move {
                // A client that goes away mid-request is not worth reporting.
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service_fn(handle))
                    .await;
            });
        }
    }
}

/// Answers one request (see the module table).
pub async fn handle(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let version = format!("{:?}", request.version());
    let response = match (request.method(), request.uri().path()) {
        (&Method::GET, "/") => json_response(
            StatusCode::OK,
            json!({
                "service": "weft-demo app",
                "endpoints": {
                    "GET /api/hello": "a greeting",
                    "GET /api/fail": "always 500",
                    "POST /api/echo": "echoes the body",
                },
            }),
        ),
        (&Method::GET, "/api/hello") => json_response(
            StatusCode::OK,
            json!({
                "message": "hello from the weft demo app",
                "http_version": version,
            }),
        ),
        (&Method::GET, "/api/fail") => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({ "error": "this endpoint always fails, on purpose" }),
        ),
        (&Method::POST, "/api/echo") => {
            let body = match request.into_body().collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(_) => Bytes::new(),
            };
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .body(Full::new(body))
                .expect("static response parts are valid")
        }
        (_, path) => json_response(
            StatusCode::NOT_FOUND,
            json!({ "error": format!("no such endpoint: {path}"), "try": "/" }),
        ),
    };
    Ok(response)
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    let mut text = body.to_string();
    text.push('\n');
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(text)))
        .expect("static response parts are valid")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traffic::{h2c_get, http1_get};

    async fn serve() -> SocketAddr {
        let app = App::bind(0).await.unwrap();
        let addr = app.local_addr().unwrap();
        tokio::spawn(app.run());
        addr
    }

    #[tokio::test]
    async fn endpoints_over_http1() {
        let addr = serve().await;
        let host = addr.to_string();
        let index = http1_get(addr, "/", &host).await.unwrap();
        assert_eq!(index.status, StatusCode::OK);
        assert!(index.body.contains("/api/hello"));
        let hello = http1_get(addr, "/api/hello", &host).await.unwrap();
        assert_eq!(hello.status, StatusCode::OK);
        assert!(hello.body.contains("\"http_version\":\"HTTP/1.1\""));
        let fail = http1_get(addr, "/api/fail", &host).await.unwrap();
        assert_eq!(fail.status, StatusCode::INTERNAL_SERVER_ERROR);
        let missing = http1_get(addr, "/nope", &host).await.unwrap();
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn hello_over_h2c() {
        let addr = serve().await;
        let hello = h2c_get(addr, &format!("http://{addr}/api/hello"))
            .await
            .unwrap();
        assert_eq!(hello.status, StatusCode::OK);
        assert!(hello.body.contains("\"http_version\":\"HTTP/2.0\""));
    }
}
