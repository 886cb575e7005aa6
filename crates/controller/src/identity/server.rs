//! The `io.linkerd.proxy.identity.Identity` gRPC service: Certify, in
//! Linkerd's order (reference: Linkerd's `pkg/identity/service.go`):
//!
//! ```text
//! 1. an issuer is loaded                           else Unavailable
//! 2. identity, token and CSR present; CSR parses   else InvalidArgument
//! 3. the issuer chain has not expired              else Unavailable
//! 4. the CSR names exactly the requested identity  else FailedPrecondition
//! 5. the token proves (namespace, service account) else InvalidArgument / FailedPrecondition / Internal
//! 6. that identity is the requested one            else FailedPrecondition
//! 7. sign: leaf + [issuer] (DER) + valid_until
//! ```
//!
//! [`CertifyError`] is the one place errors become a gRPC status and a
//! metric label. Served over TLS (the controller's own certificate) and
//! plaintext on the same port ([`crate::incoming`]).
//!
//! Bounds ([`GRPC_LIMITS`]): a request message of at most 64 KiB (a CSR is
//! a few hundred bytes, a token about a kilobyte; a bigger one is refused
//! with OUT_OF_RANGE before it is parsed), 100 HTTP/2 streams per connection
//! (so at most 100 × 64 KiB of requests buffered per connection; a limit of
//! calls in progress is not used, as the streams it holds back keep their
//! unread bodies in the connection's flow-control window and starve the calls
//! it lets through), 16 KiB of headers.

use std::fmt::Write as _;
use std::future::Future;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use linkerd2_proxy_api::identity as proto;
use linkerd2_proxy_api::identity::identity_server::{Identity, IdentityServer};

use crate::incoming::{GrpcLimits, GrpcListener};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use time::OffsetDateTime;
use tonic::{Request, Response, Status};

use super::IdentityDomain;
use super::authority::{IssueError, ValidityPolicy, leaf_validity};
use super::csr::{CsrError, CsrParseError, check_csr, parse_csr};
use super::issuer_files::AuthorityHandle;
use super::token::{TokenRejection, TokenValidator};

/// The Identity server's bounds.
pub const GRPC_LIMITS: GrpcLimits = GrpcLimits {
    streams_per_connection: 100,
    header_list_bytes: 16 * 1024,
    message_bytes: 64 * 1024,
};

/// Why the Identity server stopped.
#[derive(Debug, thiserror::Error)]
pub enum IdentityServerError {
    /// The gRPC transport failed (accepting connections).
    #[error("identity server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Why a Certify request was refused.
#[derive(Debug, thiserror::Error)]
pub enum CertifyError {
    /// No issuer has loaded.
    #[error("cert issuer not ready yet")]
    IssuerNotReady,
    /// A required field is empty.
    #[error("missing {0}")]
    MissingField(&'static str),
    /// The CSR is not a valid, correctly signed PKCS#10 request.
    #[error(transparent)]
    BadCsr(#[from] CsrParseError),
    /// The CSR asks for something other than the requested identity.
    #[error(transparent)]
    CsrMismatch(#[from] CsrError),
    /// The token proves nothing.
    #[error(transparent)]
    Token(#[from] TokenRejection),
    /// The token proves another identity.
    #[error("requested identity did not match provided token")]
    IdentityMismatch,
    /// The issuer cannot sign (expired chain, signing failure).
    #[error(transparent)]
    Issue(#[from] IssueError),
}

/// The metric label for a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectionReason {
    /// [`CertifyError::IssuerNotReady`].
    IssuerNotReady,
    /// [`CertifyError::MissingField`].
    MissingField,
    /// [`CertifyError::BadCsr`].
    BadCsr,
    /// [`CertifyError::CsrMismatch`].
    CsrMismatch,
    /// [`TokenRejection::Malformed`] or [`TokenRejection::InvalidIdentity`].
    BadToken,
    /// [`TokenRejection::NotAuthenticated`].
    Unauthenticated,
    /// [`TokenRejection::Expired`].
    TokenExpired,
    /// [`TokenRejection::Revoked`].
    TokenRevoked,
    /// [`TokenRejection::Unavailable`].
    TokenValidatorError,
    /// [`CertifyError::IdentityMismatch`].
    IdentityMismatch,
    /// [`IssueError::ChainExpired`].
    IssuerExpired,
    /// [`IssueError::BadName`] or [`IssueError::Signing`].
    SigningFailed,
}

impl RejectionReason {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectionReason::IssuerNotReady => "issuer_not_ready",
            RejectionReason::MissingField => "missing_field",
            RejectionReason::BadCsr => "bad_csr",
            RejectionReason::CsrMismatch => "csr_mismatch",
            RejectionReason::BadToken => "bad_token",
            RejectionReason::Unauthenticated => "unauthenticated",
            RejectionReason::TokenExpired => "token_expired",
            RejectionReason::TokenRevoked => "token_revoked",
            RejectionReason::TokenValidatorError => "token_validator_error",
            RejectionReason::IdentityMismatch => "identity_mismatch",
            RejectionReason::IssuerExpired => "issuer_expired",
            RejectionReason::SigningFailed => "signing_failed",
        }
    }
}

impl EncodeLabelValue for RejectionReason {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> std::fmt::Result {
        encoder.write_str(self.as_str())
    }
}

impl CertifyError {
    /// The gRPC status code (Linkerd's choices).
    pub fn code(&self) -> tonic::Code {
        use tonic::Code;
        match self {
            CertifyError::IssuerNotReady => Code::Unavailable,
            CertifyError::MissingField(_) | CertifyError::BadCsr(_) => Code::InvalidArgument,
            CertifyError::CsrMismatch(_) | CertifyError::IdentityMismatch => {
                Code::FailedPrecondition
            }
            CertifyError::Token(rejection) => match rejection {
                TokenRejection::Malformed(_) | TokenRejection::InvalidIdentity(_) => {
                    Code::InvalidArgument
                }
                TokenRejection::NotAuthenticated | TokenRejection::Expired { .. } => {
                    Code::FailedPrecondition
                }
                TokenRejection::Revoked(_) => Code::PermissionDenied,
                TokenRejection::Unavailable(_) => Code::Internal,
            },
            CertifyError::Issue(IssueError::ChainExpired(_)) => Code::Unavailable,
            CertifyError::Issue(_) => Code::Internal,
        }
    }

    /// The metric label.
    pub fn reason(&self) -> RejectionReason {
        match self {
            CertifyError::IssuerNotReady => RejectionReason::IssuerNotReady,
            CertifyError::MissingField(_) => RejectionReason::MissingField,
            CertifyError::BadCsr(_) => RejectionReason::BadCsr,
            CertifyError::CsrMismatch(_) => RejectionReason::CsrMismatch,
            CertifyError::Token(TokenRejection::NotAuthenticated) => {
                RejectionReason::Unauthenticated
            }
            CertifyError::Token(TokenRejection::Expired { .. }) => RejectionReason::TokenExpired,
            CertifyError::Token(TokenRejection::Revoked(_)) => RejectionReason::TokenRevoked,
            CertifyError::Token(TokenRejection::Unavailable(_)) => {
                RejectionReason::TokenValidatorError
            }
            CertifyError::Token(_) => RejectionReason::BadToken,
            CertifyError::IdentityMismatch => RejectionReason::IdentityMismatch,
            CertifyError::Issue(IssueError::ChainExpired(_)) => RejectionReason::IssuerExpired,
            CertifyError::Issue(_) => RejectionReason::SigningFailed,
        }
    }

    fn status(&self) -> Status {
        Status::new(self.code(), self.to_string())
    }
}

/// `reason` label set.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RejectionLabels {
    reason: RejectionReason,
}

/// Certify metrics.
#[derive(Debug, Clone)]
pub struct CertifyMetrics {
    issued: Counter,
    rejected: Family<RejectionLabels, Counter>,
    duration: Histogram,
}

impl CertifyMetrics {
    /// Registers `identity_cert_issued_total`, `identity_cert_rejected_total{reason}`
    /// and `identity_certify_duration_seconds`.
    pub fn new(registry: &mut Registry) -> Self {
        let metrics = Self {
            issued: Counter::default(),
            rejected: Family::default(),
            duration: Histogram::new([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5]),
        };
        registry.register(
            "identity_cert_issued",
            "Leaf certificates issued",
            metrics.issued.clone(),
        );
        registry.register(
            "identity_cert_rejected",
            "Certify requests refused, by reason",
            metrics.rejected.clone(),
        );
        registry.register(
            "identity_certify_duration_seconds",
            "Time to answer a Certify request (checks, token validation, signing)",
            metrics.duration.clone(),
        );
        metrics
    }
}

/// The Identity service.
#[derive(Clone)]
pub struct IdentityService {
    authority: AuthorityHandle,
    validator: Arc<dyn TokenValidator>,
    domain: IdentityDomain,
    policy: ValidityPolicy,
    metrics: CertifyMetrics,
}

impl IdentityService {
    /// A service signing with `authority` for tokens `validator` accepts.
    pub fn new(
        authority: AuthorityHandle,
        validator: Arc<dyn TokenValidator>,
        domain: IdentityDomain,
        policy: ValidityPolicy,
        metrics: CertifyMetrics,
    ) -> Self {
        Self {
            authority,
            validator,
            domain,
            policy,
            metrics,
        }
    }

    /// Serves gRPC on `listener` (TLS or plaintext, see [`crate::incoming`])
    /// until `shutdown` completes, then drains.
    pub async fn serve(
        self,
        listener: GrpcListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), IdentityServerError> {
        let incoming = listener.incoming();
        GRPC_LIMITS
            .server()
            .add_service(
                IdentityServer::new(self).max_decoding_message_size(GRPC_LIMITS.message_bytes),
            )
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await?;
        Ok(())
    }

    /// Steps 1–7 (see the module header).
    async fn certify_request(
        &self,
        request: proto::CertifyRequest,
    ) -> Result<proto::CertifyResponse, CertifyError> {
        // 1. An issuer to sign with (this one signs the whole request, even
        //    if a reload lands meanwhile).
        let authority = self
            .authority
            .current()
            .ok_or(CertifyError::IssuerNotReady)?;

        // 2. The request's fields.
        let proto::CertifyRequest {
            identity,
            token,
            certificate_signing_request,
        } = request;
        for (empty, field) in [
            (identity.is_empty(), "identity"),
            (token.is_empty(), "token"),
            (
                certificate_signing_request.is_empty(),
                "certificate_signing_request",
            ),
        ] {
            if empty {
                return Err(CertifyError::MissingField(field));
            }
        }
        let csr = parse_csr(&certificate_signing_request)?;

        // 3. The chain still valid, and the leaf's window.
        let validity = leaf_validity(
            OffsetDateTime::now_utc(),
            &self.policy,
            authority.chain_not_after(),
        )?;

        // 4. The CSR asks for exactly the requested identity.
        check_csr(&identity, &csr.summary)?;

        // 5–6. The token proves that identity.
        let proven = self.validator.validate(&token).await?;
        if self.domain.dns_name(&proven) != identity {
            return Err(CertifyError::IdentityMismatch);
        }

        // 7. Sign.
        let leaf = authority.issue(&csr, &identity, &self.domain.spiffe_id(&proven), validity)?;
        let valid_until = SystemTime::from(leaf.not_after);
        tracing::debug!(%identity, not_after = %leaf.not_after, "issued a certificate");
        Ok(proto::CertifyResponse {
            leaf_certificate: leaf.certificate,
            intermediate_certificates: leaf.intermediates,
            valid_until: Some(valid_until.into()),
        })
    }
}

#[tonic::async_trait]
impl Identity for IdentityService {
    async fn certify(
        &self,
        request: Request<proto::CertifyRequest>,
    ) -> Result<Response<proto::CertifyResponse>, Status> {
        let started = Instant::now();
        let result = self.certify_request(request.into_inner()).await;
        self.metrics
            .duration
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(response) => {
                self.metrics.issued.inc();
                Ok(Response::new(response))
            }
            Err(error) => {
                self.metrics
                    .rejected
                    .get_or_create(&RejectionLabels {
                        reason: error.reason(),
                    })
                    .inc();
                tracing::info!(%error, "certify refused");
                Err(error.status())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    #[test]
    fn errors_map_to_linkerd_codes_and_labels() {
        let cases = [
            (
                CertifyError::IssuerNotReady,
                Code::Unavailable,
                "issuer_not_ready",
            ),
            (
                CertifyError::MissingField("token"),
                Code::InvalidArgument,
                "missing_field",
            ),
            (
                CertifyError::BadCsr(CsrParseError::NotDerOrPem),
                Code::InvalidArgument,
                "bad_csr",
            ),
            (
                CertifyError::CsrMismatch(CsrError::DnsNameCount(2)),
                Code::FailedPrecondition,
                "csr_mismatch",
            ),
            (
                CertifyError::Token(TokenRejection::Malformed("x".into())),
                Code::InvalidArgument,
                "bad_token",
            ),
            (
                CertifyError::Token(TokenRejection::InvalidIdentity("x".into())),
                Code::InvalidArgument,
                "bad_token",
            ),
            (
                CertifyError::Token(TokenRejection::NotAuthenticated),
                Code::FailedPrecondition,
                "unauthenticated",
            ),
            (
                CertifyError::Token(TokenRejection::Expired {
                    expired_at: 100,
                    ago: 5,
                }),
                Code::FailedPrecondition,
                "token_expired",
            ),
            (
                CertifyError::Token(TokenRejection::Revoked("gone".into())),
                Code::PermissionDenied,
                "token_revoked",
            ),
            (
                CertifyError::Token(TokenRejection::Unavailable("api".into())),
                Code::Internal,
                "token_validator_error",
            ),
            (
                CertifyError::IdentityMismatch,
                Code::FailedPrecondition,
                "identity_mismatch",
            ),
            (
                CertifyError::Issue(IssueError::ChainExpired(OffsetDateTime::UNIX_EPOCH)),
                Code::Unavailable,
                "issuer_expired",
            ),
            (
                CertifyError::Issue(IssueError::Signing("ring".into())),
                Code::Internal,
                "signing_failed",
            ),
        ];
        for (error, code, reason) in cases {
            assert_eq!(error.code(), code, "{error}");
            assert_eq!(error.reason().as_str(), reason, "{error}");
        }
        assert_eq!(
            CertifyError::IdentityMismatch.status().message(),
            "requested identity did not match provided token"
        );
    }
}
