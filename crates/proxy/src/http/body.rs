//! The response body the proxy sends to clients: the target's body streamed
//! through frame by frame (never buffered), or nothing for a response the
//! proxy made itself. Either way the response is recorded in the metrics
//! once, when its stream ends: status, gRPC status (from trailers or a
//! trailers-only response), latency to end of stream, and stream errors.
//! A tapped request's recorder also carries its [`TapRecording`]: response
//! head, body bytes, trailers and end of stream become tap events.

use crate::http::headers::grpc_status_of;
use crate::metrics::labels::HttpLabels;
use crate::metrics::route::{RouteHandleCache, RouteLabels, RouteMetrics, RouteOutcome};
use crate::metrics::{HttpHandleCache, HttpMetrics, ResponseOutcome};
use crate::routing::policy;
use crate::routing::profile::ResponseClass;
use crate::tap::TapRecording;
use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

/// Records one response in the HTTP metrics.
pub(crate) struct ResponseRecorder {
    metrics: HttpMetrics,
    cache: Arc<HttpHandleCache>,
    labels: HttpLabels,
    started: Instant,
    status_code: u16,
    grpc_status: Option<u32>,
    route: Option<RouteRecording>,
    tap: Option<Box<TapRecording>>,
}

/// The route part of a response's recording: the request's route labels,
/// the route's response classes and when the request arrived.
pub(crate) struct RouteRecording {
    /// The route families.
    pub metrics: RouteMetrics,
    /// The request's route.
    pub labels: RouteLabels,
    /// The route's response classes (empty: the default classification).
    pub classes: Vec<ResponseClass>,
    /// When the request arrived (route latency covers every attempt).
    pub started: Instant,
    /// The connection's route metric handles.
    pub cache: Arc<RouteHandleCache>,
}

impl RouteRecording {
    /// Records the response the client got.
    pub(crate) fn finish(
        self,
        status_code: u16,
        grpc_status: Option<u32>,
        error: Option<&'static str>,
    ) {
        let classification = policy::classify(&self.classes, status_code, grpc_status, error);
        self.metrics.response(
            &self.labels,
            RouteOutcome {
                status_code,
                classification,
                error,
            },
            self.started.elapsed(),
            &self.cache,
        );
    }
}

impl ResponseRecorder {
    /// A recorder for a request that arrived at `started`.
    pub(crate) fn new(
        metrics: HttpMetrics,
        cache: Arc<HttpHandleCache>,
        labels: HttpLabels,
        started: Instant,
    ) -> Self {
        ResponseRecorder {
            metrics,
            cache,
            labels,
            started,
            status_code: 0,
            grpc_status: None,
            route: None,
            tap: None,
        }
    }

    /// Also reports the response to the taps that claimed the request.
    pub(crate) fn with_tap(mut self, tap: Option<Box<TapRecording>>) -> Self {
        self.tap = tap;
        self
    }

    /// The response is one the proxy made because the request failed: the
    /// tap reports a request that got no response.
    pub(crate) fn proxy_error(&mut self) {
        if let Some(tap) = self.tap.take() {
            tap.fail();
        }
    }

    /// The labels of the endpoint the request goes to.
    pub(crate) fn target_labels(&self) -> Arc<crate::metrics::labels::TargetLabels> {
        self.labels.target.clone()
    }

    /// Also records the response in the route metrics.
    pub(crate) fn with_route(mut self, route: RouteRecording) -> Self {
        self.route = Some(route);
        self
    }

    /// Records a response whose body is not passed on (an attempt that is
    /// retried), at once.
    pub(crate) fn finish_now(mut self, status_code: u16, headers: &HeaderMap) {
        self.head(status_code, headers);
        self.finish(None);
    }

    /// Notes the response head: its status and, for trailers-only gRPC
    /// responses, the gRPC status in the headers.
    pub(crate) fn head(&mut self, status_code: u16, headers: &HeaderMap) {
        self.status_code = status_code;
        if let Some(grpc_status) = grpc_status_of(headers) {
            self.grpc_status = Some(grpc_status);
        }
        if let Some(tap) = &mut self.tap {
            tap.response_init(status_code, headers);
        }
    }

    fn trailers(&mut self, trailers: &HeaderMap) {
        if let Some(grpc_status) = grpc_status_of(trailers) {
            self.grpc_status = Some(grpc_status);
        }
        if let Some(tap) = &mut self.tap {
            tap.trailers(trailers);
        }
    }

    fn finish(mut self, error: Option<&'static str>) {
        if let Some(tap) = self.tap.take() {
            tap.end(error.is_some());
        }
        if let Some(route) = self.route.take() {
            route.finish(self.status_code, self.grpc_status, error);
        }
        self.metrics.response(
            &self.labels,
            &ResponseOutcome {
                status_code: self.status_code,
                grpc_status: self.grpc_status,
                error,
                latency: self.started.elapsed(),
            },
            &self.cache,
        );
    }
}

/// A response body on its way to the client.
pub(crate) struct ProxyBody {
    inner: Option<Incoming>,
    recorder: Option<ResponseRecorder>,
}

impl ProxyBody {
    /// Streams `inner`, recording the response when it ends.
    pub(crate) fn streaming(inner: Incoming, recorder: ResponseRecorder) -> Self {
        let mut body = ProxyBody {
            inner: Some(inner),
            recorder: Some(recorder),
        };
        if body.inner.as_ref().is_some_and(Body::is_end_stream) {
            body.finish(None);
        }
        body
    }

    /// An empty body; the response is recorded now.
    pub(crate) fn empty(recorder: Option<ResponseRecorder>) -> Self {
        if let Some(recorder) = recorder {
            recorder.finish(None);
        }
        ProxyBody {
            inner: None,
            recorder: None,
        }
    }

    fn finish(&mut self, error: Option<&'static str>) {
        if let Some(recorder) = self.recorder.take() {
            recorder.finish(error);
        }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(inner).poll_frame(context);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(recorder) = &mut this.recorder {
                    if let Some(tap) = &mut recorder.tap
                        && let Some(data) = frame.data_ref()
                    {
                        tap.data(data.len());
                    }
                    if let Some(trailers) = frame.trailers_ref() {
                        recorder.trailers(trailers);
                    }
                }
                if this.inner.as_ref().is_some_and(Body::is_end_stream) {
                    this.finish(None);
                }
            }
            Poll::Ready(Some(Err(error))) => {
                if let Some(tap) = this
                    .recorder
                    .as_mut()
                    .and_then(|recorder| recorder.tap.as_mut())
                {
                    tap.stream_error(crate::tap::reset_reason(error));
                }
                this.finish(Some("stream error"))
            }
            Poll::Ready(None) => this.finish(None),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Some(inner) => inner.size_hint(),
            None => SizeHint::with_exact(0),
        }
    }
}

impl Drop for ProxyBody {
    fn drop(&mut self) {
        // A client that goes away mid-stream ends the response early.
        self.finish(Some("canceled"));
    }
}
