//! The authors service, over gRPC (h2c), written by hand without `protoc`:
//!
//! ```text
//! service weft.demo.Authors {
//!   rpc Get(AuthorRequest) returns (AuthorReply);  // UNAVAILABLE for a share of calls
//! }
//! ```
//!
//! [`AuthorsClient`] calls it through the app's proxy in explicit mode: it
//! dials the proxy and sets the request's authority to the service's name.

use std::future::{Ready, ready};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use http::uri::PathAndQuery;
use tonic::server::UnaryService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tonic_prost::ProstCodec;

use crate::cli::AuthorsArgs;
use crate::serve::{bind, serve};

/// The path of the one method.
pub const GET_PATH: &str = "/weft.demo.Authors/Get";

/// The request.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AuthorRequest {
    /// A book's id.
    #[prost(string, tag = "1")]
    pub book: String,
}

/// The reply.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AuthorReply {
    /// The author's name.
    #[prost(string, tag = "1")]
    pub name: String,
}

/// Whether call number `count` (from 0) fails at `rate`: exactly `rate` of
/// every run of calls fail, spread evenly (no randomness, so the share shows
/// in the metrics from the first minute).
pub fn fails(count: u64, rate: f64) -> bool {
    ((count + 1) as f64 * rate).floor() > (count as f64 * rate).floor()
}

/// The author of a book, if known.
pub fn author_of(book: &str) -> Option<&'static str> {
    match book {
        "dune" => Some("Frank Herbert"),
        "neuromancer" => Some("William Gibson"),
        "solaris" => Some("Stanisław Lem"),
        _ => None,
    }
}

/// Serves until stopped.
pub async fn run(args: AuthorsArgs) -> anyhow::Result<()> {
    let listener = bind(args.listen).await?;
    println!(
        "authors: gRPC on {} (failing {:.0}% of calls)",
        args.listen,
        args.failure_rate * 100.0
    );
    serve_on(listener, args.failure_rate).await
}

/// Serves the service on `listener` until stopped.
pub async fn serve_on(listener: tokio::net::TcpListener, failure_rate: f64) -> anyhow::Result<()> {
    let service = Get {
        calls: Arc::new(AtomicU64::new(0)),
        failure_rate,
    };
    serve(listener, move |request| {
        let service = service.clone();
        async move {
            let mut grpc =
                tonic::server::Grpc::new(ProstCodec::<AuthorReply, AuthorRequest>::default());
            match request.uri().path() {
                GET_PATH => grpc.unary(service, request).await,
                _ => Status::unimplemented("no such method").into_http(),
            }
        }
    })
    .await
}

#[derive(Clone)]
struct Get {
    calls: Arc<AtomicU64>,
    failure_rate: f64,
}

impl UnaryService<AuthorRequest> for Get {
    type Response = AuthorReply;
    type Future = Ready<Result<tonic::Response<AuthorReply>, Status>>;

    fn call(&mut self, request: tonic::Request<AuthorRequest>) -> Self::Future {
        let count = self.calls.fetch_add(1, Ordering::Relaxed);
        if fails(count, self.failure_rate) {
            return ready(Err(Status::new(
                Code::Unavailable,
                "the demo's injected failure",
            )));
        }
        let book = request.into_inner().book;
        ready(match author_of(&book) {
            Some(name) => Ok(tonic::Response::new(AuthorReply {
                name: name.to_string(),
            })),
            None => Err(Status::not_found(format!("no author for {book:?}"))),
        })
    }
}

/// A client of the authors service over one h2c connection.
#[derive(Clone)]
pub struct AuthorsClient {
    grpc: tonic::client::Grpc<Channel>,
}

impl AuthorsClient {
    /// A client of the service at `url` (`http://authors.demo.svc.cluster.local`),
    /// through `proxy` when given: the connection goes to the proxy, the
    /// requests' authority names the service. Connects lazily.
    pub fn new(url: &str, proxy: Option<SocketAddr>) -> anyhow::Result<Self> {
        let service: http::Uri = url
            .parse()
            .with_context(|| format!("{url:?} is not a URL"))?;
        let endpoint = match proxy {
            Some(proxy) => Endpoint::from_shared(format!("http://{proxy}"))?.origin(service),
            None => Endpoint::from_shared(url.to_string())?,
        };
        let channel = endpoint
            .timeout(crate::client::REQUEST_TIMEOUT)
            .connect_lazy();
        Ok(Self {
            grpc: tonic::client::Grpc::new(channel),
        })
    }

    /// Calls `Get`.
    pub async fn get(&mut self, book: &str) -> Result<String, Status> {
        self.grpc
            .ready()
            .await
            .map_err(|error| Status::unavailable(error.to_string()))?;
        let codec = ProstCodec::<AuthorRequest, AuthorReply>::default();
        let reply = self
            .grpc
            .unary(
                tonic::Request::new(AuthorRequest {
                    book: book.to_string(),
                }),
                PathAndQuery::from_static(GET_PATH),
                codec,
            )
            .await?;
        Ok(reply.into_inner().name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_share_is_exact() {
        for (rate, calls, expected) in [
            (0.0, 100, 0),
            (0.1, 100, 10),
            (0.25, 8, 2),
            (1.0, 7, 7),
            (0.5, 10, 5),
        ] {
            let failed = (0..calls).filter(|count| fails(*count, rate)).count();
            assert_eq!(failed, expected, "rate {rate} over {calls}");
        }
    }

    #[tokio::test]
    async fn answers_over_grpc_and_fails_on_schedule() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve_on(listener, 0.5));
        let mut client = AuthorsClient::new(&format!("http://{addr}"), None).unwrap();
        let mut outcomes = Vec::new();
        for _ in 0..4 {
            outcomes.push(client.get("dune").await);
        }
        server.abort();
        let ok = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
        assert_eq!(outcomes.len(), 4, "{outcomes:?}");
        assert_eq!(ok, 2, "{outcomes:?}");
        assert!(
            outcomes
                .iter()
                .flatten()
                .all(|name| name == "Frank Herbert")
        );
    }
}
