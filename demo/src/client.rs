//! HTTP/1.1 requests the way a meshed app makes them in explicit mode: to
//! its proxy (`HTTP_PROXY`), in absolute form (`GET http://books.demo.svc.cluster.local/books`),
//! so the proxy resolves the service name. Without `HTTP_PROXY`, straight to
//! the URL's host.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// How long one request may take, connect to last body byte.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// An answer, reduced to what the apps look at.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Its status.
    pub status: StatusCode,
    /// Its body, lossily decoded.
    pub body: String,
}

/// Sends requests through the proxy named by `HTTP_PROXY`, if any.
#[derive(Debug, Clone, Copy)]
pub struct ProxyClient {
    /// The proxy's address; `None` = connect directly.
    pub proxy: Option<SocketAddr>,
}

impl ProxyClient {
    /// The client `HTTP_PROXY` (or `http_proxy`) asks for.
    pub fn from_env() -> anyhow::Result<Self> {
        let value = std::env::var("HTTP_PROXY")
            .or_else(|_| std::env::var("http_proxy"))
            .ok()
            .filter(|value| !value.is_empty());
        let proxy = value
            .map(|value| parse_proxy(&value).with_context(|| format!("HTTP_PROXY={value}")))
            .transpose()?;
        Ok(Self { proxy })
    }

    /// `GET url`.
    pub async fn get(&self, url: &str) -> anyhow::Result<Reply> {
        tokio::time::timeout(REQUEST_TIMEOUT, self.get_inner(url))
            .await
            .with_context(|| format!("GET {url}: no answer within {REQUEST_TIMEOUT:?}"))?
    }

    async fn get_inner(&self, url: &str) -> anyhow::Result<Reply> {
        let uri: Uri = url
            .parse()
            .with_context(|| format!("{url:?} is not a URL"))?;
        let authority = uri
            .authority()
            .with_context(|| format!("{url:?} names no host"))?
            .clone();
        let (stream, target) = match self.proxy {
            Some(proxy) => (TcpStream::connect(proxy).await, uri.to_string()),
            None => {
                let port = authority.port_u16().unwrap_or(80);
                let path = uri.path_and_query().map_or("/", |path| path.as_str());
                (
                    TcpStream::connect((authority.host(), port)).await,
                    path.to_string(),
                )
            }
        };
        let stream = stream.with_context(|| format!("GET {url}: connect"))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP/1.1 handshake")?;
        tokio::spawn(connection);
        let request = Request::get(target)
            .header(header::HOST, authority.as_str())
            .header(header::USER_AGENT, "weft-demo")
            .body(Empty::<Bytes>::new())?;
        let response = sender
            .send_request(request)
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok(Reply {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}

/// `http://127.0.0.1:4140`, `http://127.0.0.1:4140/` or `127.0.0.1:4140` → the address.
pub fn parse_proxy(value: &str) -> anyhow::Result<SocketAddr> {
    let bare = value
        .strip_prefix("http://")
        .unwrap_or(value)
        .trim_end_matches('/');
    bare.parse()
        .map_err(|_| anyhow::anyhow!("expected http://IP:PORT, got {value:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_values() {
        for (input, expected) in [
            ("http://127.0.0.1:4140", Some("127.0.0.1:4140")),
            ("http://127.0.0.1:4140/", Some("127.0.0.1:4140")),
            ("127.0.0.1:4140", Some("127.0.0.1:4140")),
            ("http://[::1]:4140", Some("[::1]:4140")),
            ("http://proxy.example:4140", None),
        ] {
            let parsed = parse_proxy(input).ok();
            assert_eq!(
                parsed,
                expected.map(|addr| addr.parse().unwrap()),
                "{input}"
            );
        }
    }
}
