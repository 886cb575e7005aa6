//! The request body the proxy sends upstream: the client's body streamed as
//! is, the same body recorded on its way through so a retry can send it
//! again, or such a recording played back.
//!
//! ```text
//! first attempt:  Incoming ─► Recording ─► upstream      (frames copied into the shared
//!                                   │                     buffer while ≤ the replay limit)
//! retry:          Replay::body() ─► Replayed ─► upstream (only if the first attempt read the
//!                                                         whole body within the limit)
//! ```
//!
//! Recording keeps `Bytes` handles (no copies). Once the body grows past the
//! limit the recording is dropped and the request can no longer be retried.
//!
//! [`RequestBody::watched`] notes when the client's body fails (bad chunked
//! encoding, a reset stream): hyper reports such a failure on the upstream
//! side as its own (HTTP/1) or swallows it into a reset (HTTP/2), so the
//! client's fault is told apart by this flag ([`ClientBodyWatch`]).

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

/// Linkerd's replay limit: bodies up to 64 KiB can be retried.
pub(crate) const REPLAY_LIMIT: usize = 64 * 1024;

/// A request body on its way upstream.
pub(crate) enum RequestBody<B = Incoming> {
    /// The client's body, streamed through untouched.
    Streaming(B),
    /// The client's body, recorded for a possible retry.
    Recording(Recording<B>),
    /// A recorded body played back.
    Replayed(Replayed),
    /// Any of the above, with failures of the client's body noted.
    Watched(Box<RequestBody<B>>, ClientBodyWatch),
}

/// Whether the client's request body failed while being sent upstream.
#[derive(Clone, Debug, Default)]
pub(crate) struct ClientBodyWatch {
    /// `None` for a body that had ended before it was sent: it cannot fail.
    failed: Option<Arc<AtomicBool>>,
}

impl ClientBodyWatch {
    /// Whether the client's body failed.
    pub(crate) fn failed(&self) -> bool {
        self.failed
            .as_ref()
            .is_some_and(|failed| failed.load(Ordering::Relaxed))
    }
}

/// What a recording has captured so far.
#[derive(Default)]
struct Captured {
    chunks: Vec<Bytes>,
    trailers: Option<HeaderMap>,
    length: usize,
    complete: bool,
    overflowed: bool,
}

/// A body that copies its frames into a shared buffer as they pass.
pub(crate) struct Recording<B> {
    inner: B,
    captured: Arc<Mutex<Captured>>,
    limit: usize,
}

/// The handle that replays a recording, if it is complete.
#[derive(Clone)]
pub(crate) struct Replay {
    captured: Arc<Mutex<Captured>>,
}

/// A recorded body being played back. Its trailers are boxed (rare, and a
/// `HeaderMap` is 96 bytes): every request on its way upstream is a
/// [`RequestBody`], and hyper's HTTP/1 client keeps a queue of 32 request
/// slots per connection, pooled or not.
pub(crate) struct Replayed {
    chunks: VecDeque<Bytes>,
    trailers: Option<Box<HeaderMap>>,
}

impl<B: Body<Data = Bytes>> RequestBody<B> {
    /// Wraps `body` so it can be replayed if it turns out to be at most
    /// `limit` bytes. A body announcing more than `limit` bytes is streamed
    /// without recording, and [`None`] is returned for the replay.
    pub(crate) fn recording(body: B, limit: usize) -> (RequestBody<B>, Option<Replay>) {
        if body.size_hint().lower() > limit as u64 {
            return (RequestBody::Streaming(body), None);
        }
        let captured = Arc::new(Mutex::new(Captured {
            complete: body.is_end_stream(),
            ..Captured::default()
        }));
        let replay = Replay {
            captured: captured.clone(),
        };
        let recording = Recording {
            inner: body,
            captured,
            limit,
        };
        (RequestBody::Recording(recording), Some(replay))
    }
}

impl<B: Body<Data = Bytes> + Unpin> RequestBody<B> {
    /// The body with failures of the client's body noted in the returned
    /// watch; a body already watched keeps its watch. A body that has
    /// already ended (most requests: no body) cannot fail and is not
    /// wrapped.
    pub(crate) fn watched(self) -> (RequestBody<B>, ClientBodyWatch) {
        match self {
            RequestBody::Watched(inner, watch) => {
                let again = watch.clone();
                (RequestBody::Watched(inner, watch), again)
            }
            ended if ended.is_end_stream() => (ended, ClientBodyWatch::default()),
            other => {
                let watch = ClientBodyWatch {
                    failed: Some(Arc::default()),
                };
                (RequestBody::Watched(Box::new(other), watch.clone()), watch)
            }
        }
    }
}

impl<B> RequestBody<B> {
    /// An empty body.
    pub(crate) fn empty() -> RequestBody<B> {
        RequestBody::Replayed(Replayed {
            chunks: VecDeque::new(),
            trailers: None,
        })
    }
}

impl Replay {
    /// A body replaying the recording, if the first attempt read the whole
    /// body and it stayed within the limit.
    pub(crate) fn body<B>(&self) -> Option<RequestBody<B>> {
        let captured = self.captured.lock().unwrap_or_else(PoisonError::into_inner);
        if !captured.complete || captured.overflowed {
            return None;
        }
        Some(RequestBody::Replayed(Replayed {
            chunks: captured.chunks.iter().cloned().collect(),
            trailers: captured.trailers.clone().map(Box::new),
        }))
    }
}

impl<B> Recording<B> {
    fn capture(&self, update: impl FnOnce(&mut Captured)) {
        let mut captured = self.captured.lock().unwrap_or_else(PoisonError::into_inner);
        update(&mut captured);
    }
}

impl<B> Body for RequestBody<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.get_mut() {
            RequestBody::Streaming(body) => Pin::new(body).poll_frame(context),
            RequestBody::Recording(recording) => {
                let polled = Pin::new(&mut recording.inner).poll_frame(context);
                let limit = recording.limit;
                match &polled {
                    Poll::Ready(Some(Ok(frame))) => {
                        let end = recording.inner.is_end_stream();
                        recording.capture(|captured| {
                            if let Some(data) = frame.data_ref() {
                                captured.length += data.len();
                                if captured.length > limit {
                                    captured.overflowed = true;
                                    captured.chunks = Vec::new();
                                } else if !captured.overflowed {
                                    captured.chunks.push(data.clone());
                                }
                            } else if let Some(trailers) = frame.trailers_ref() {
                                captured.trailers = Some(trailers.clone());
                            }
                            captured.complete |= end;
                        });
                    }
                    Poll::Ready(None) => recording.capture(|captured| captured.complete = true),
                    Poll::Ready(Some(Err(_))) => {
                        recording.capture(|captured| captured.overflowed = true)
                    }
                    Poll::Pending => {}
                }
                polled
            }
            RequestBody::Watched(inner, watch) => {
                let polled = Pin::new(inner.as_mut()).poll_frame(context);
                if let Poll::Ready(Some(Err(_))) = &polled
                    && let Some(failed) = &watch.failed
                {
                    failed.store(true, Ordering::Relaxed);
                }
                polled
            }
            RequestBody::Replayed(replayed) => {
                if let Some(chunk) = replayed.chunks.pop_front() {
                    return Poll::Ready(Some(Ok(Frame::data(chunk))));
                }
                Poll::Ready(
                    replayed
                        .trailers
                        .take()
                        .map(|trailers| Ok(Frame::trailers(*trailers))),
                )
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RequestBody::Streaming(body) => body.is_end_stream(),
            RequestBody::Recording(recording) => recording.inner.is_end_stream(),
            RequestBody::Watched(inner, _) => inner.is_end_stream(),
            RequestBody::Replayed(replayed) => {
                replayed.chunks.is_empty() && replayed.trailers.is_none()
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RequestBody::Streaming(body) => body.size_hint(),
            RequestBody::Recording(recording) => recording.inner.size_hint(),
            RequestBody::Watched(inner, _) => inner.size_hint(),
            RequestBody::Replayed(replayed) => {
                SizeHint::with_exact(replayed.chunks.iter().map(|chunk| chunk.len() as u64).sum())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full, StreamBody};
    use std::convert::Infallible;

    type Chunked =
        StreamBody<futures::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

    fn chunked(chunks: &[&'static str]) -> Chunked {
        let frames: Vec<Result<Frame<Bytes>, Infallible>> = chunks
            .iter()
            .map(|chunk| Ok(Frame::data(Bytes::from_static(chunk.as_bytes()))))
            .collect();
        StreamBody::new(futures::stream::iter(frames))
    }

    async fn read_all<B: Body<Data = Bytes> + Unpin>(body: RequestBody<B>) -> Bytes
    where
        B::Error: std::fmt::Debug,
    {
        body.collect().await.unwrap().to_bytes()
    }

    #[tokio::test]
    async fn replays_a_body_read_in_full() {
        let (body, replay) = RequestBody::recording(chunked(&["hello ", "world"]), 64);
        let replay = replay.unwrap();
        assert!(replay.body::<Full<Bytes>>().is_none(), "not read yet");
        assert_eq!(read_all(body).await, "hello world");
        for _ in 0..2 {
            let again: RequestBody<Full<Bytes>> = replay.body().unwrap();
            assert_eq!(read_all(again).await, "hello world");
        }
    }

    #[tokio::test]
    async fn empty_bodies_replay_without_being_read() {
        let (_body, replay) = RequestBody::recording(Full::new(Bytes::new()), 64);
        let again: RequestBody<Full<Bytes>> = replay.unwrap().body().unwrap();
        assert_eq!(read_all(again).await, "");
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_not_replayed() {
        let (body, replay) = RequestBody::recording(chunked(&["0123456789", "0123456789"]), 15);
        assert_eq!(read_all(body).await.len(), 20, "still forwarded in full");
        assert!(replay.unwrap().body::<Full<Bytes>>().is_none());

        let announced = Full::new(Bytes::from(vec![0u8; 100]));
        let (body, replay) = RequestBody::recording(announced, 15);
        assert!(
            replay.is_none(),
            "a known length over the limit is never recorded"
        );
        assert_eq!(read_all(body).await.len(), 100);
    }

    #[tokio::test]
    async fn a_failing_client_body_is_noted_by_its_watch() {
        let frames: Vec<Result<Frame<Bytes>, &'static str>> =
            vec![Ok(Frame::data(Bytes::from_static(b"a"))), Err("bad chunk")];
        let (body, watch) =
            RequestBody::Streaming(StreamBody::new(futures::stream::iter(frames))).watched();
        let (mut body, same) = body.watched();
        assert!(!watch.failed());
        assert!(body.frame().await.unwrap().is_ok());
        assert!(!watch.failed());
        assert!(body.frame().await.unwrap().is_err());
        assert!(watch.failed() && same.failed());

        let (body, watch) = RequestBody::Streaming(chunked(&["fine"])).watched();
        assert_eq!(read_all(body).await, "fine");
        assert!(!watch.failed());

        // An ended body is passed on as it is, with a watch that never fails.
        let (body, watch) = RequestBody::Streaming(Full::new(Bytes::new())).watched();
        assert!(matches!(body, RequestBody::Streaming(_)));
        assert!(body.is_end_stream());
        assert!(!watch.failed());
    }

    #[test]
    fn a_request_on_its_way_upstream_stays_small() {
        // hyper's HTTP/1 client queues requests in blocks of 32 slots of
        // (request, callback), one block allocated per connection: with
        // 16 bytes of callback, a block of 32 slots of 296 bytes fits
        // mimalloc's 10 KiB size class (12 KiB with the trailers inline).
        assert!(std::mem::size_of::<RequestBody>() <= 56);
        assert!(std::mem::size_of::<http::Request<RequestBody>>() <= 280);
    }

    #[tokio::test]
    async fn a_partly_read_body_is_not_replayed() {
        let (mut body, replay) = RequestBody::recording(chunked(&["a", "b"]), 64);
        let _first = body.frame().await.unwrap().unwrap();
        assert!(replay.unwrap().body::<Full<Bytes>>().is_none());
    }
}
