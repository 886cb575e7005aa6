//! When a request that failed on its way to an endpoint may be sent again
//! (to another connection or endpoint) although it is not on a retryable
//! route: pure decisions, tested by tables.
//!
//! ```text
//! nothing of it was written (refused, connection closed before the request
//!   went out: hyper hands it back)                        ─► always, any method
//! connection lost before any response byte (EOF, reset, closed, h2 stream
//!   refused / connection gone away) and the request is idempotent (RFC 9110
//!   §9.2.2) with an empty body (nothing the client sent is lost)
//!                                                        ─► sent again, once
//! anything else (a response started, a body in flight, the client's body
//!   failed, POST/PATCH)                                   ─► the error is answered
//! ```
//!
//! The once is the caller's: a pooled HTTP/1.1 connection found dead is
//! replaced by one fresh connection (`client.rs`); an endpoint found dead is
//! replaced by another endpoint (`logical.rs`).

use std::io::ErrorKind;

use http::{Extensions, HeaderMap, Method, Request, Uri, Version};

use crate::http::request_body::RequestBody;

/// Whether `method` is idempotent (RFC 9110 §9.2.2).
pub(crate) fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// What a failed exchange tells about the connection, read off the error.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Loss {
    /// The connection ended before a complete response (EOF).
    pub incomplete: bool,
    /// The connection was closed or the request canceled by it.
    pub closed: bool,
    /// The operating system's error, if the failure was one.
    pub io: Option<ErrorKind>,
    /// The HTTP/2 peer refused the stream or went away before it.
    pub h2_unprocessed: bool,
}

impl Loss {
    /// What `error` (from sending a request) says about the connection.
    pub(crate) fn of(error: &hyper::Error) -> Loss {
        let mut loss = Loss {
            incomplete: error.is_incomplete_message(),
            closed: error.is_closed() || error.is_canceled(),
            ..Loss::default()
        };
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            if let Some(io) = cause.downcast_ref::<std::io::Error>() {
                loss.io = Some(io.kind());
            }
            if let Some(h2) = cause.downcast_ref::<h2::Error>() {
                loss.h2_unprocessed |=
                    h2.is_go_away() || h2.reason() == Some(h2::Reason::REFUSED_STREAM);
                if let Some(io) = h2.get_io() {
                    loss.io = Some(io.kind());
                }
            }
            source = cause.source();
        }
        loss
    }

    /// Whether the connection was lost before a response arrived (as
    /// opposed to a protocol error, a timeout or a failure of the body).
    pub(crate) fn before_response(&self) -> bool {
        self.incomplete
            || self.closed
            || self.h2_unprocessed
            || self.io.is_some_and(|kind| {
                matches!(
                    kind,
                    ErrorKind::ConnectionReset
                        | ErrorKind::ConnectionAborted
                        | ErrorKind::BrokenPipe
                        | ErrorKind::UnexpectedEof
                        | ErrorKind::NotConnected
                )
            })
    }
}

/// Whether a request whose connection was lost (`loss`) may be sent again:
/// idempotent, nothing of a body to lose, the client's body did not fail.
pub(crate) fn may_resend(
    method: &Method,
    body_is_empty: bool,
    client_body_failed: bool,
    loss: Loss,
) -> bool {
    is_idempotent(method) && body_is_empty && !client_body_failed && loss.before_response()
}

/// A copy of a request with an empty body, kept to send it again.
pub(crate) struct ResendableCopy {
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
    extensions: Extensions,
}

impl ResendableCopy {
    /// A copy of `request` if it is idempotent and has an empty body.
    pub(crate) fn of(request: &Request<RequestBody>) -> Option<ResendableCopy> {
        use http_body::Body;
        if !is_idempotent(request.method()) || !request.body().is_end_stream() {
            return None;
        }
        Some(ResendableCopy {
            method: request.method().clone(),
            uri: request.uri().clone(),
            version: request.version(),
            headers: request.headers().clone(),
            extensions: request.extensions().clone(),
        })
    }

    /// The method of the copied request.
    pub(crate) fn method(&self) -> &Method {
        &self.method
    }

    /// The request again, with an empty body.
    pub(crate) fn request(&self) -> Request<RequestBody> {
        let mut request = Request::new(RequestBody::empty());
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.version_mut() = self.version;
        *request.headers_mut() = self.headers.clone();
        *request.extensions_mut() = self.extensions.clone();
        request
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotent_methods() {
        let table = [
            (Method::GET, true),
            (Method::HEAD, true),
            (Method::OPTIONS, true),
            (Method::TRACE, true),
            (Method::PUT, true),
            (Method::DELETE, true),
            (Method::POST, false),
            (Method::PATCH, false),
            (Method::CONNECT, false),
        ];
        for (method, idempotent) in table {
            assert_eq!(is_idempotent(&method), idempotent, "{method}");
        }
    }

    #[test]
    fn resend_decisions() {
        let eof = Loss {
            incomplete: true,
            ..Loss::default()
        };
        let reset = Loss {
            io: Some(ErrorKind::ConnectionReset),
            ..Loss::default()
        };
        let refused_stream = Loss {
            h2_unprocessed: true,
            ..Loss::default()
        };
        let timed_out = Loss {
            io: Some(ErrorKind::TimedOut),
            ..Loss::default()
        };
        let protocol = Loss::default();
        // (method, body empty, client body failed, loss, resend)
        let table = [
            (Method::GET, true, false, eof, true),
            (Method::GET, true, false, reset, true),
            (Method::HEAD, true, false, refused_stream, true),
            (Method::DELETE, true, false, eof, true),
            (Method::GET, true, false, timed_out, false),
            (Method::GET, true, false, protocol, false),
            (Method::GET, false, false, eof, false),
            (Method::PUT, false, false, reset, false),
            (Method::POST, true, false, eof, false),
            (Method::GET, true, true, eof, false),
        ];
        for (method, empty, client_failed, loss, expected) in table {
            assert_eq!(
                may_resend(&method, empty, client_failed, loss),
                expected,
                "{method} empty={empty} client_failed={client_failed} {loss:?}"
            );
        }
    }

    #[test]
    fn only_bodiless_idempotent_requests_are_copied() {
        let mut get = Request::new(RequestBody::empty());
        *get.uri_mut() = "/books/1".parse().unwrap();
        get.headers_mut().insert("x-id", "7".parse().unwrap());
        get.extensions_mut().insert(42u32);
        let copy = ResendableCopy::of(&get).unwrap();
        let again = copy.request();
        assert_eq!(again.method(), Method::GET);
        assert_eq!(again.uri(), "/books/1");
        assert_eq!(again.headers()["x-id"], "7");
        assert_eq!(again.extensions().get::<u32>(), Some(&42));

        let mut post = Request::new(RequestBody::empty());
        *post.method_mut() = Method::POST;
        assert!(ResendableCopy::of(&post).is_none());
    }
}
