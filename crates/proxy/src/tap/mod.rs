//! Live tap: `io.linkerd.proxy.tap.Tap/Observe` streams, per matching
//! request, a `RequestInit`, a `ResponseInit` and a `ResponseEnd` event
//! (never bodies) to the tap client, until `limit` requests were reported.
//!
//! ```text
//! Observe (service.rs) ─► Taps::observe: a Tap {base, match, limit, queue of 400}
//!                          in the active list ─► TapStream (ends when the tap is done)
//! per request (forward.rs inbound/outbound, logical.rs per endpoint attempt):
//!   Taps::begin ─ no active tap: one atomic load, None
//!               └ else: facts ─► each tap's match ─► claim a stream id ─► RequestInit
//!   TapRecording (inside the ResponseRecorder): head ─► ResponseInit,
//!                 body bytes and trailers ─► end of stream ─► ResponseEnd
//! ```
//!
//! A tap leaves the active list when its last stream id is claimed (or its
//! client goes away); its queue closes when every claimed request ended, so
//! the client's stream ends after exactly `limit` complete requests. A full
//! queue drops events (counted in `tap_events_dropped_total`).

pub(crate) mod events;
pub(crate) mod matching;
pub(crate) mod server;
pub(crate) mod service;

use crate::direction::Direction;
use crate::metrics::labels::{TargetLabels, TlsStatus};
use crate::metrics::route::RouteLabels;
use http::{HeaderMap, Method, Uri, Version};
use linkerd2_proxy_api::tap::TapEvent;
use matching::{Match, RequestFacts};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::sync::mpsc;

/// Events queued per tap client before new ones are dropped.
pub(crate) const EVENT_CAPACITY: usize = 400;

/// HTTP/2 `CANCEL`: reported when a tapped response ends because the client
/// went away (or the request was abandoned) before its end of stream.
pub(crate) const RESET_CANCEL: u32 = 0x8;

/// HTTP/2 `INTERNAL_ERROR`: a stream error with no HTTP/2 reason.
pub(crate) const RESET_INTERNAL_ERROR: u32 = 0x2;

/// The HTTP/2 reason of a response stream error (`INTERNAL_ERROR` when the
/// error carries none, e.g. an HTTP/1 connection closed mid-body).
pub(crate) fn reset_reason(error: &hyper::Error) -> u32 {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if let Some(reason) = current
            .downcast_ref::<h2::Error>()
            .and_then(h2::Error::reason)
        {
            return u32::from(reason);
        }
        source = current.source();
    }
    RESET_INTERNAL_ERROR
}

/// The active taps of this process.
pub(crate) struct Taps {
    /// How many taps are active: the per-request check.
    active_count: AtomicUsize,
    /// The active taps; replaced (never mutated) when one starts or ends.
    active: RwLock<Arc<Vec<Arc<Tap>>>>,
    /// The next `StreamId.base`.
    next_base: AtomicU32,
    /// Events dropped because a tap client's queue was full.
    dropped: Counter,
}

/// One `Observe` call.
struct Tap {
    base: u32,
    matcher: Match,
    limit: u64,
    extract_headers: bool,
    next_stream: AtomicU64,
    events: mpsc::Sender<TapEvent>,
    dropped: Counter,
}

impl Tap {
    fn send(&self, event: TapEvent) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.events.try_send(event) {
            self.dropped.inc();
        }
    }
}

/// One request as a hook point sees it; borrowed, so building it costs
/// nothing.
#[derive(Clone, Copy)]
pub(crate) struct TapRequest<'a> {
    /// Inbound (to the app) or outbound (to an endpoint).
    pub direction: Direction,
    /// The client's address.
    pub source: SocketAddr,
    /// Where the request goes.
    pub destination: SocketAddr,
    /// The endpoint's metric labels (TLS status, discovery labels).
    pub target: &'a TargetLabels,
    /// The profile route, outbound to a logical service.
    pub route: Option<&'a RouteLabels>,
    /// Request method.
    pub method: &'a Method,
    /// Request URI.
    pub uri: &'a Uri,
    /// Request headers.
    pub headers: &'a HeaderMap,
    /// HTTP version.
    pub version: Version,
}

impl Taps {
    /// No taps; the dropped-event counter registered in `registry`.
    pub(crate) fn new(registry: &mut Registry) -> Taps {
        let dropped = Counter::default();
        registry.register(
            "tap_events_dropped",
            "Tap events dropped because a tap client's queue was full.",
            dropped.clone(),
        );
        Taps {
            active_count: AtomicUsize::new(0),
            active: RwLock::new(Arc::new(Vec::new())),
            next_base: AtomicU32::new(0),
            dropped,
        }
    }

    /// Whether any tap is active.
    #[inline]
    pub(crate) fn is_active(&self) -> bool {
        self.active_count.load(Ordering::Acquire) != 0
    }

    /// Starts a tap: matching requests are reported on the returned stream
    /// until `limit` of them have ended.
    pub(crate) fn observe(
        self: &Arc<Self>,
        matcher: Match,
        limit: u32,
        extract_headers: bool,
    ) -> TapStream {
        let (sender, receiver) = mpsc::channel(EVENT_CAPACITY);
        let base = self.next_base.fetch_add(1, Ordering::Relaxed);
        let tap = Arc::new(Tap {
            base,
            matcher,
            limit: u64::from(limit),
            extract_headers,
            next_stream: AtomicU64::new(0),
            events: sender,
            dropped: self.dropped.clone(),
        });
        let mut active = self.active.write().unwrap_or_else(PoisonError::into_inner);
        let mut taps = Vec::clone(&active);
        taps.push(tap);
        self.active_count.store(taps.len(), Ordering::Release);
        *active = Arc::new(taps);
        drop(active);
        TapStream {
            events: receiver,
            registration: Registration {
                taps: self.clone(),
                base,
            },
        }
    }

    /// Removes tap `base` from the active list (no new requests match it).
    fn remove(&self, base: u32) {
        let mut active = self.active.write().unwrap_or_else(PoisonError::into_inner);
        if !active.iter().any(|tap| tap.base == base) {
            return;
        }
        let taps: Vec<Arc<Tap>> = active
            .iter()
            .filter(|tap| tap.base != base)
            .cloned()
            .collect();
        self.active_count.store(taps.len(), Ordering::Release);
        *active = Arc::new(taps);
    }

    /// The per-request hook: `None` at once when no tap is active; otherwise
    /// the request is matched against every tap and, when one or more claim
    /// it, their `RequestInit` events are sent and the recording returned.
    #[inline]
    pub(crate) fn begin(&self, request: &TapRequest<'_>) -> Option<Box<TapRecording>> {
        if !self.is_active() {
            return None;
        }
        self.begin_active(request)
    }

    fn begin_active(&self, request: &TapRequest<'_>) -> Option<Box<TapRecording>> {
        let active = self
            .active
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let metadata = Metadata::of(request);
        let authority =
            crate::http::headers::authority_of(request.uri, request.headers).unwrap_or_default();
        let scheme = request.uri.scheme_str().unwrap_or("http");
        let facts = RequestFacts {
            source: request.source,
            destination: request.destination,
            method: request.method,
            scheme,
            authority,
            path: request.uri.path(),
            destination_labels: &metadata.destination,
            route_labels: &metadata.route,
        };
        let mut claims = Vec::new();
        for tap in active.iter() {
            if !tap.matcher.matches(&facts) {
                continue;
            }
            let stream = tap.next_stream.fetch_add(1, Ordering::Relaxed);
            if stream + 1 >= tap.limit {
                // The last (or a late) claim: no more requests for this tap.
                self.remove(tap.base);
            }
            if stream < tap.limit {
                claims.push(Claim {
                    tap: tap.clone(),
                    stream,
                });
            }
        }
        if claims.is_empty() {
            return None;
        }
        let template = events::template(request, metadata);
        let head = events::RequestHead {
            method: request.method,
            scheme,
            authority,
            path: request.uri.path(),
            headers: request.headers,
            version: request.version,
        };
        for claim in &claims {
            claim.tap.send(events::request_init(
                &template,
                claim.id(),
                &head,
                claim.tap.extract_headers,
            ));
        }
        let wants_headers = claims.iter().any(|claim| claim.tap.extract_headers);
        Some(Box::new(TapRecording {
            claims,
            template,
            wants_headers,
            request_init: Instant::now(),
            response_init: None,
            response_bytes: 0,
            grpc_status: None,
            trailers: None,
            reset: None,
            ended: false,
        }))
    }
}

/// A tap's claim on one request: its stream id.
struct Claim {
    tap: Arc<Tap>,
    stream: u64,
}

impl Claim {
    fn id(&self) -> events::StreamId {
        events::StreamId {
            base: self.tap.base,
            stream: self.stream,
        }
    }
}

/// The metadata labels of a tapped request.
pub(crate) struct Metadata {
    /// `source_meta.labels`.
    pub(crate) source: HashMap<String, String>,
    /// `destination_meta.labels`.
    pub(crate) destination: HashMap<String, String>,
    /// `route_meta.labels`.
    pub(crate) route: HashMap<String, String>,
}

impl Metadata {
    fn of(request: &TapRequest<'_>) -> Metadata {
        let mut source = HashMap::new();
        let mut destination: HashMap<String, String> = HashMap::new();
        match request.direction {
            Direction::Inbound => {
                tls_labels(request.target.tls(), &mut source);
                destination.insert("tls".to_string(), "loopback".to_string());
            }
            Direction::Outbound => {
                source.insert("tls".to_string(), "loopback".to_string());
                for (name, value) in request.target.destination().iter() {
                    destination.insert(name.to_string(), value.to_string());
                }
                tls_labels(request.target.tls(), &mut destination);
            }
        }
        let mut route = HashMap::new();
        if let Some(name) = request.route.and_then(|route| route.route.as_ref()) {
            route.insert("rt_route".to_string(), name.to_string());
        }
        Metadata {
            source,
            destination,
            route,
        }
    }
}

/// `tls` (`true` or the reason there is none) and the peer's identity.
fn tls_labels(tls: &TlsStatus, labels: &mut HashMap<String, String>) {
    let value = tls.no_tls_reason().unwrap_or("true");
    labels.insert("tls".to_string(), value.to_string());
    match tls {
        TlsStatus::ToServer(server) => {
            labels.insert("server_id".to_string(), server.to_string());
        }
        TlsStatus::FromClient(Some(client)) => {
            labels.insert("client_id".to_string(), client.to_string());
        }
        _ => {}
    }
}

/// The tap side of one tapped request: carried by the response's recorder,
/// it sends `ResponseInit` on the response head and `ResponseEnd` at end of
/// stream (or when dropped first).
pub(crate) struct TapRecording {
    claims: Vec<Claim>,
    template: TapEvent,
    wants_headers: bool,
    request_init: Instant,
    response_init: Option<Instant>,
    response_bytes: u64,
    grpc_status: Option<u32>,
    trailers: Option<HeaderMap>,
    reset: Option<u32>,
    ended: bool,
}

impl TapRecording {
    /// The response head arrived.
    pub(crate) fn response_init(&mut self, status: u16, headers: &HeaderMap) {
        let now = Instant::now();
        self.response_init = Some(now);
        if let Some(grpc_status) = crate::http::headers::grpc_status_of(headers) {
            self.grpc_status = Some(grpc_status);
        }
        let head = events::ResponseHead {
            since_request_init: now - self.request_init,
            status,
            headers,
        };
        for claim in &self.claims {
            claim.tap.send(events::response_init(
                &self.template,
                claim.id(),
                &head,
                claim.tap.extract_headers,
            ));
        }
    }

    /// Response body bytes passed to the client.
    #[inline]
    pub(crate) fn data(&mut self, bytes: usize) {
        self.response_bytes += bytes as u64;
    }

    /// The response's trailers.
    pub(crate) fn trailers(&mut self, trailers: &HeaderMap) {
        if let Some(grpc_status) = crate::http::headers::grpc_status_of(trailers) {
            self.grpc_status = Some(grpc_status);
        }
        if self.wants_headers {
            self.trailers = Some(trailers.clone());
        }
    }

    /// The response stream failed with this HTTP/2 reason.
    pub(crate) fn stream_error(&mut self, reason: u32) {
        self.reset = Some(reason);
    }

    /// The request failed before any response: `ResponseEnd` without
    /// `since_response_init`, no bytes.
    pub(crate) fn fail(mut self) {
        self.response_init = None;
        self.response_bytes = 0;
        self.send_end(None);
    }

    /// The response stream ended: cleanly (`failed` false), or with the
    /// error noted by [`TapRecording::stream_error`] (`CANCEL` if none was).
    pub(crate) fn end(mut self, failed: bool) {
        let reset = failed.then(|| self.reset.unwrap_or(RESET_CANCEL));
        self.send_end(reset);
    }

    fn send_end(&mut self, reset: Option<u32>) {
        if self.ended {
            return;
        }
        self.ended = true;
        let now = Instant::now();
        let end = events::ResponseTail {
            since_request_init: now - self.request_init,
            since_response_init: self.response_init.map(|at| now - at),
            response_bytes: self.response_bytes,
            grpc_status: self.grpc_status,
            reset,
            trailers: self.trailers.as_ref(),
        };
        for claim in &self.claims {
            claim.tap.send(events::response_end(
                &self.template,
                claim.id(),
                &end,
                claim.tap.extract_headers,
            ));
        }
    }
}

impl Drop for TapRecording {
    fn drop(&mut self) {
        // Abandoned before its end of stream: still reported, so the tap's
        // count of complete requests is reached.
        self.send_end(Some(RESET_CANCEL));
    }
}

/// Removes its tap from the active list when the client's stream goes.
struct Registration {
    taps: Arc<Taps>,
    base: u32,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.taps.remove(self.base);
    }
}

/// The events of one tap, ending once `limit` requests were reported.
pub(crate) struct TapStream {
    events: mpsc::Receiver<TapEvent>,
    registration: Registration,
}

impl TapStream {
    /// This tap's `StreamId.base`.
    pub(crate) fn base(&self) -> u32 {
        self.registration.base
    }
}

impl futures::Stream for TapStream {
    type Item = Result<TapEvent, tonic::Status>;

    fn poll_next(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.events.poll_recv(context).map(|event| event.map(Ok))
    }
}

#[cfg(test)]
mod tests;
