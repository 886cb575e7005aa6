//! The books service: `GET /books` lists books and says which version
//! answered, so a TrafficSplit between `books-v1` and `books-v2` shows in the
//! answers as well as in the metrics. v2 adds ratings.

use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use serde_json::json;

use crate::cli::BooksArgs;
use crate::serve::{bind, json, serve};

/// The catalogue: (id, title).
pub const BOOKS: &[(&str, &str)] = &[
    ("dune", "Dune"),
    ("neuromancer", "Neuromancer"),
    ("solaris", "Solaris"),
];

/// Serves until stopped.
pub async fn run(args: BooksArgs) -> anyhow::Result<()> {
    let listener = bind(args.listen).await?;
    println!(
        "books {}: listening on http://{}",
        args.version, args.listen
    );
    let version = args.version;
    serve(listener, move |request| {
        let answer = answer(&version, &request);
        async move { answer }
    })
    .await
}

fn answer(
    version: &str,
    request: &Request<Incoming>,
) -> http::Response<http_body_util::Full<bytes::Bytes>> {
    match (request.method(), request.uri().path()) {
        (&Method::GET, "/books") => json(StatusCode::OK, &listing(version)),
        (&Method::GET, "/healthz") => json(StatusCode::OK, &json!({"ok": true})),
        (_, path) => json(
            StatusCode::NOT_FOUND,
            &json!({"error": format!("no such endpoint: {path}")}),
        ),
    }
}

/// The listing a version answers with.
pub fn listing(version: &str) -> serde_json::Value {
    let books: Vec<serde_json::Value> = BOOKS
        .iter()
        .enumerate()
        .map(|(index, (id, title))| {
            if version == "v1" {
                json!({"id": id, "title": title})
            } else {
                json!({"id": id, "title": title, "stars": 3 + index % 3})
            }
        })
        .collect();
    json!({"version": version, "books": books})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_differ() {
        let v1 = listing("v1");
        let v2 = listing("v2");
        assert_eq!(v1["version"], "v1");
        assert!(v1["books"][0].get("stars").is_none());
        assert!(v2["books"][0].get("stars").is_some());
    }
}
