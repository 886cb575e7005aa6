//! The `io.linkerd.proxy.tap.Tap` gRPC service: authorizes the client (see
//! [`authorize`]), validates the `ObserveRequest` and starts a tap.
//!
//! ```text
//! Observe ─► client authorized? no ─► UNAUTHENTICATED
//!         ─► limit > 0 and a valid match? no ─► INVALID_ARGUMENT
//!         ─► Taps::observe ─► stream of TapEvents (ends after `limit` requests)
//! ```

use super::matching::Match;
use super::{TapStream, Taps};
use linkerd2_proxy_api::tap::observe_request::extract;
use linkerd2_proxy_api::tap::{ObserveRequest, tap_server};
use std::net::SocketAddr;
use std::sync::Arc;

/// Who is calling, as the tap listener saw the connection (put in every
/// request's extensions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TapClient {
    /// A plaintext connection from this address.
    Plaintext(SocketAddr),
    /// TLS the proxy terminated, with the identity of the client's
    /// certificate (verified against the trust anchors) if it sent one.
    Tls(Option<Arc<str>>),
}

/// Whether `client` may tap: plaintext only from loopback; TLS only with a
/// certificate naming `tap_svc_name`. The error says why not.
pub(crate) fn authorize(client: &TapClient, tap_svc_name: &str) -> Result<(), String> {
    match client {
        TapClient::Plaintext(addr) if addr.ip().to_canonical().is_loopback() => Ok(()),
        TapClient::Plaintext(addr) => Err(format!(
            "unauthorized client: plaintext tap is served only to loopback clients, not {}; \
             connect over TLS with a certificate for {tap_svc_name}",
            addr.ip()
        )),
        TapClient::Tls(Some(identity)) if identity.eq_ignore_ascii_case(tap_svc_name) => Ok(()),
        TapClient::Tls(Some(identity)) => Err(format!(
            "unauthorized client: identity {identity} may not tap (only {tap_svc_name})"
        )),
        TapClient::Tls(None) => Err(format!(
            "unauthorized client: no client certificate (only {tap_svc_name} may tap)"
        )),
    }
}

/// Why an `ObserveRequest` cannot start a tap.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ObserveError {
    /// `limit` is 0.
    #[error("limit must be greater than 0")]
    ZeroLimit,
    /// No `match`.
    #[error("match is required")]
    MissingMatch,
    /// An invalid `match`.
    #[error("invalid match: {0}")]
    InvalidMatch(#[from] super::matching::MatchError),
}

/// A validated `ObserveRequest`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Observe {
    /// Requests to report.
    pub limit: u32,
    /// Which requests.
    pub matcher: Match,
    /// Whether headers and trailers are sent.
    pub extract_headers: bool,
}

impl TryFrom<ObserveRequest> for Observe {
    type Error = ObserveError;

    fn try_from(request: ObserveRequest) -> Result<Observe, ObserveError> {
        if request.limit == 0 {
            return Err(ObserveError::ZeroLimit);
        }
        let matcher = Match::try_from(request.r#match.ok_or(ObserveError::MissingMatch)?)?;
        let extract_headers = matches!(
            request.extract.and_then(|extract| extract.extract),
            Some(extract::Extract::Http(extract::Http {
                extract: Some(extract::http::Extract::Headers(_)),
            }))
        );
        Ok(Observe {
            limit: request.limit,
            matcher,
            extract_headers,
        })
    }
}

/// The gRPC service.
pub(crate) struct TapService {
    taps: Arc<Taps>,
    tap_svc_name: Arc<str>,
}

impl TapService {
    /// Serves taps of `taps` to clients [`authorize`]d for `tap_svc_name`.
    pub(crate) fn new(taps: Arc<Taps>, tap_svc_name: Arc<str>) -> TapService {
        TapService { taps, tap_svc_name }
    }
}

#[tonic::async_trait]
impl tap_server::Tap for TapService {
    type ObserveStream = TapStream;

    async fn observe(
        &self,
        request: tonic::Request<ObserveRequest>,
    ) -> Result<tonic::Response<TapStream>, tonic::Status> {
        let client = request
            .extensions()
            .get::<TapClient>()
            .cloned()
            .ok_or_else(|| tonic::Status::unauthenticated("unauthorized client: unknown peer"))?;
        authorize(&client, &self.tap_svc_name).map_err(|reason| {
            tracing::info!(?client, %reason, "tap refused");
            tonic::Status::unauthenticated(reason)
        })?;
        let observe = Observe::try_from(request.into_inner())
            .map_err(|error| tonic::Status::invalid_argument(error.to_string()))?;
        let stream = self
            .taps
            .observe(observe.matcher, observe.limit, observe.extract_headers);
        tracing::info!(
            ?client,
            base = stream.base(),
            limit = observe.limit,
            "tap started"
        );
        Ok(tonic::Response::new(stream))
    }
}
