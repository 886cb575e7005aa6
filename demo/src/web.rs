//! The front end: `GET /` picks a book, lists the books (HTTP/1.1 to the
//! books service) and asks who wrote it (gRPC to the authors service), both
//! through the app's proxy. Either call failing makes it a 502.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http::{Method, StatusCode};
use serde_json::json;

use crate::authors::AuthorsClient;
use crate::books::BOOKS;
use crate::cli::WebArgs;
use crate::client::ProxyClient;
use crate::serve::{bind, json, serve};

/// What the front end needs per request.
struct Web {
    books_url: String,
    books: ProxyClient,
    authors: AuthorsClient,
    next_book: AtomicUsize,
}

/// Serves until stopped.
pub async fn run(args: WebArgs) -> anyhow::Result<()> {
    let books = ProxyClient::from_env()?;
    let authors = AuthorsClient::new(&args.authors, books.proxy)?;
    let listener = bind(args.listen).await?;
    println!(
        "web: listening on http://{} (books at {}, authors at {}, proxy {:?})",
        args.listen, args.books, args.authors, books.proxy
    );
    let web = Arc::new(Web {
        books_url: format!("{}/books", args.books.trim_end_matches('/')),
        books,
        authors,
        next_book: AtomicUsize::new(0),
    });
    serve(listener, move |request| {
        let web = web.clone();
        async move {
            match (request.method(), request.uri().path()) {
                (&Method::GET, "/") => web.front_page().await,
                (&Method::GET, "/healthz") => json(StatusCode::OK, &json!({"ok": true})),
                (_, path) => json(
                    StatusCode::NOT_FOUND,
                    &json!({"error": format!("no such endpoint: {path}")}),
                ),
            }
        }
    })
    .await
}

impl Web {
    async fn front_page(&self) -> http::Response<http_body_util::Full<bytes::Bytes>> {
        let index = self.next_book.fetch_add(1, Ordering::Relaxed) % BOOKS.len();
        let (book, _title) = BOOKS[index];
        let mut authors = self.authors.clone();
        let (listing, author) = tokio::join!(self.books.get(&self.books_url), authors.get(book));
        let listing = match listing {
            Ok(reply) if reply.status.is_success() => {
                serde_json::from_str::<serde_json::Value>(&reply.body).unwrap_or_default()
            }
            Ok(reply) => {
                return failed("books", &format!("{} {}", reply.status, reply.body.trim()));
            }
            Err(error) => return failed("books", &format!("{error:#}")),
        };
        match author {
            Ok(name) => json(
                StatusCode::OK,
                &json!({"book": book, "author": name, "books": listing}),
            ),
            Err(status) => failed(
                "authors",
                &format!("{:?}: {}", status.code(), status.message()),
            ),
        }
    }
}

fn failed(service: &str, why: &str) -> http::Response<http_body_util::Full<bytes::Bytes>> {
    json(
        StatusCode::BAD_GATEWAY,
        &json!({"error": format!("{service} failed: {why}")}),
    )
}
