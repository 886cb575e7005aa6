//! What every watch stream the controller serves does alike: Destination's
//! Get and GetProfile, InboundServerPolicies.WatchPort and
//! OutboundPolicies.Watch.
//!
//! ```text
//! admit      ClientKey of the connection ─► StreamLimiter ─► StreamPermit
//!                                                        └► RESOURCE_EXHAUSTED, counted by reason
//! subscribe  one catalog lock: subscribe, record the watch gauges ─► Watched{receiver, release}
//! answers    a watch receiver's current value at once, then each changed one
//! finish     ends on shutdown; the permit and the open-stream gauge live as long as the stream
//! ```
//!
//! A stream is a plain `Stream` (no spawned task): when the client goes
//! away tonic drops it, which drops the receiver, then releases the catalog
//! watch (removed with its last subscriber), gives back the permit and
//! lowers the gauge.

use std::pin::Pin;
use std::sync::{Arc, PoisonError};

use futures::stream::{self, Stream, StreamExt};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tonic::{Request, Status};

use super::limits::{ClientKey, StreamLimiter, StreamPermit};
use crate::catalog::{Catalog, SharedCatalog};
use crate::incoming::ConnectionInfo;

/// A boxed response stream.
pub type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Why streams were refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RefusalLabels {
    reason: &'static str,
}

/// A counter of streams refused by a limit, by reason (`per_client`, `total`).
#[derive(Debug, Clone, Default)]
pub struct RefusedStreams(Family<RefusalLabels, Counter>);

impl RefusedStreams {
    /// Registers the counter as `name` (`<name>_total{reason}`), every
    /// reason at zero from the start so a scrape shows it.
    pub fn register(&self, registry: &mut Registry, name: &str, help: &str) {
        registry.register(name, help, self.0.clone());
        for reason in ["per_client", "total"] {
            drop(self.0.get_or_create(&RefusalLabels { reason }));
        }
    }
}

/// A permit for one more stream of the request's client (its verified
/// identity, else its address), or RESOURCE_EXHAUSTED, counted in `refused`.
pub fn admit<T>(
    limiter: &Arc<StreamLimiter>,
    refused: &RefusedStreams,
    request: &Request<T>,
) -> Result<StreamPermit, Status> {
    let client = match request.extensions().get::<ConnectionInfo>() {
        Some(ConnectionInfo {
            client_identity: Some(identity),
            ..
        }) => ClientKey::Identity(identity.clone()),
        Some(ConnectionInfo {
            remote: Some(remote),
            ..
        }) => ClientKey::Address(remote.ip()),
        _ => ClientKey::Unknown,
    };
    limiter.try_open(client).map_err(|refusal| {
        refused
            .0
            .get_or_create(&RefusalLabels {
                reason: refusal.reason(),
            })
            .inc();
        Status::resource_exhausted(refusal.to_string())
    })
}

/// Counts one open stream while alive.
#[derive(Debug)]
pub struct StreamGuard(Gauge);

impl StreamGuard {
    /// Raises `gauge` now, lowers it when dropped.
    pub fn open(gauge: &Gauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// A service's gauges of the catalog watches its streams hold.
pub trait WatchGauges: Clone + Send + 'static {
    /// Sets the gauges from the catalog's counts.
    fn record_watches(&self, catalog: &Catalog);
}

/// What gives a catalog watch back, run under the catalog lock.
type Release = Box<dyn FnOnce(&mut Catalog) + Send>;

/// Releases a catalog watch when dropped (never while the catalog is locked).
struct WatchRelease {
    catalog: SharedCatalog,
    release: Option<Release>,
}

impl Drop for WatchRelease {
    fn drop(&mut self) {
        if let Some(release) = self.release.take() {
            let mut catalog = self.catalog.lock().unwrap_or_else(PoisonError::into_inner);
            release(&mut catalog);
        }
    }
}

/// A subscription's receiver and the release of its catalog watch; fields
/// drop in order, the receiver first.
pub struct Watched<R> {
    /// Where the subscription's answers arrive.
    pub receiver: R,
    _release: WatchRelease,
}

impl<R> Watched<R> {
    /// Subscribes to `key`'s watch under the catalog lock; the watch is
    /// released under it when the result is dropped. Each records `gauges`.
    pub fn subscribe<K: Send + 'static>(
        catalog: &SharedCatalog,
        key: K,
        gauges: &impl WatchGauges,
        subscribe: fn(&mut Catalog, &K) -> R,
        release: fn(&mut Catalog, &K),
    ) -> Self {
        let receiver = {
            let mut catalog = catalog.lock().unwrap_or_else(PoisonError::into_inner);
            let receiver = subscribe(&mut catalog, &key);
            gauges.record_watches(&catalog);
            receiver
        };
        let gauges = gauges.clone();
        Self {
            receiver,
            _release: WatchRelease {
                catalog: Arc::clone(catalog),
                release: Some(Box::new(move |catalog| {
                    release(catalog, &key);
                    gauges.record_watches(catalog);
                })),
            },
        }
    }
}

/// The receiver's current value at once, then each changed one, each passed
/// through `answer`; ends when the sender is gone or `answer` gives `None`.
pub fn answers<T, U>(
    watched: Watched<watch::Receiver<T>>,
    answer: impl FnMut(T) -> Option<U> + Send + 'static,
) -> impl Stream<Item = U> + Send
where
    T: Clone + Send + Sync + 'static,
    U: Send + 'static,
{
    stream::unfold(
        (watched, answer, true),
        |(mut watched, mut answer, first)| async move {
            if !first && watched.receiver.changed().await.is_err() {
                return None;
            }
            let current = watched.receiver.borrow_and_update().clone();
            let next = answer(current)?;
            Some((next, (watched, answer, false)))
        },
    )
}

/// Ends `stream` once `shutdown` turns true; `guard` and `permit` live as
/// long as it does.
pub fn finish<T: Send + 'static>(
    stream: impl Stream<Item = Result<T, Status>> + Send + 'static,
    shutdown: &watch::Receiver<bool>,
    guard: StreamGuard,
    permit: StreamPermit,
) -> ResponseStream<T> {
    let mut shutdown = shutdown.clone();
    let stopped = async move {
        // An error means the sender is gone: stop as well.
        let _ = shutdown.wait_for(|stopped| *stopped).await;
    };
    Box::pin(stream.take_until(stopped).map(move |item| {
        let _alive = (&guard, &permit);
        item
    }))
}
