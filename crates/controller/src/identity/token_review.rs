//! ServiceAccount tokens checked by the Kubernetes API: a
//! [`TokenValidator`] that creates a TokenReview
//! (`POST /apis/authentication.k8s.io/v1/tokenreviews`) with the token and
//! our audience, and reads who the API says the token belongs to.
//!
//! ```text
//! token ─► TokenReview{token, audiences: [identity.weft.io]} ─► status
//!   API error 403 ─► Unavailable (the controller may not create tokenreviews: RBAC)
//!   other API error, 5xx, no answer within 5 s ─► Unavailable
//!   status.error, or authenticated = false ─► NotAuthenticated (the API's text is logged)
//!   status.audiences given without ours ─► NotAuthenticated
//!   user system:serviceaccount:<ns>:<sa> (DNS labels) ─► WorkloadIdentity{ns, sa}
//!   any other user ─► InvalidIdentity
//! ```
//!
//! The decisions ([`identity_from_username`], [`review_outcome`],
//! [`api_rejection`]) are pure and table-tested; [`TokenReviewValidator`]
//! only sends the request. The Identity service then checks that the proven
//! identity is the one the proxy asked for.
//!
//! At start-up [`check_access`] asks the API (SelfSubjectAccessReview)
//! whether the controller may create TokenReviews, as Linkerd's identity
//! controller does: a "no" stops start-up; an API that cannot answer is
//! only logged (the first Certify will say more).

use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec, TokenReviewStatus};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::Api;
use kube::api::PostParams;

use super::token::{TokenRejection, TokenValidator};
use super::{WorkloadIdentity, is_dns_label};

/// How long a TokenReview may take before the request is refused (a hung
/// API must not hold proxies' Certify calls).
pub const REVIEW_TIMEOUT: Duration = Duration::from_secs(5);
/// The username prefix of ServiceAccount tokens.
const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";

/// Validates tokens with the Kubernetes TokenReview API.
#[derive(Clone)]
pub struct TokenReviewValidator {
    reviews: Api<TokenReview>,
    audience: String,
    timeout: Duration,
}

impl std::fmt::Debug for TokenReviewValidator {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TokenReviewValidator")
            .field("audience", &self.audience)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl TokenReviewValidator {
    /// A validator asking the API behind `client` to review tokens for `audience`.
    pub fn new(client: kube::Client, audience: impl Into<String>) -> Self {
        Self {
            reviews: Api::all(client),
            audience: audience.into(),
            timeout: REVIEW_TIMEOUT,
        }
    }

    /// The same, giving up on a review after `timeout` instead of [`REVIEW_TIMEOUT`].
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The review request for `token`.
    fn request(&self, token: &str) -> TokenReview {
        TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_string()),
                audiences: Some(vec![self.audience.clone()]),
            },
            ..TokenReview::default()
        }
    }
}

#[tonic::async_trait]
impl TokenValidator for TokenReviewValidator {
    async fn validate(&self, token: &[u8]) -> Result<WorkloadIdentity, TokenRejection> {
        let token = token_text(token)?;
        let review = self.request(token);
        let created = tokio::time::timeout(
            self.timeout,
            self.reviews.create(&PostParams::default(), &review),
        )
        .await;
        let reviewed = match created {
            Ok(Ok(reviewed)) => reviewed,
            Ok(Err(error)) => {
                let rejection = api_rejection(&error);
                tracing::warn!(%error, "TokenReview failed");
                return Err(rejection);
            }
            Err(_) => {
                tracing::warn!(timeout = ?self.timeout, "TokenReview got no answer in time");
                return Err(TokenRejection::Unavailable(format!(
                    "the Kubernetes API did not answer the TokenReview within {:?}",
                    self.timeout
                )));
            }
        };
        let outcome = review_outcome(reviewed.status.as_ref(), &self.audience);
        if let Err(rejection) = &outcome {
            let api_error = reviewed
                .status
                .as_ref()
                .and_then(|status| status.error.as_deref())
                .unwrap_or("");
            tracing::info!(%rejection, api_error, "TokenReview refused the token");
        }
        outcome
    }
}

/// The controller may not create TokenReviews.
#[derive(Debug, thiserror::Error)]
#[error(
    "the controller may not create tokenreviews.authentication.k8s.io{reason} \
     (RBAC: grant its ServiceAccount `create` on tokenreviews, e.g. with a ClusterRole)"
)]
pub struct ReviewAccessDenied {
    /// `: <the API's reason>`, or empty.
    reason: String,
}

/// Asks the API whether the controller may create TokenReviews
/// (SelfSubjectAccessReview): `Err` when it says no. An API that cannot
/// answer within [`REVIEW_TIMEOUT`] or fails is logged, not held against
/// start-up.
pub async fn check_access(client: &kube::Client) -> Result<(), ReviewAccessDenied> {
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                group: Some("authentication.k8s.io".to_string()),
                resource: Some("tokenreviews".to_string()),
                verb: Some("create".to_string()),
                ..ResourceAttributes::default()
            }),
            ..SelfSubjectAccessReviewSpec::default()
        },
        ..SelfSubjectAccessReview::default()
    };
    let reviews: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let created = tokio::time::timeout(
        REVIEW_TIMEOUT,
        reviews.create(&PostParams::default(), &review),
    )
    .await;
    match created {
        Ok(Ok(reviewed)) => {
            let status = reviewed.status.unwrap_or_default();
            if status.allowed {
                Ok(())
            } else {
                let reason = status
                    .reason
                    .filter(|reason| !reason.is_empty())
                    .map(|reason| format!(": {reason}"))
                    .unwrap_or_default();
                Err(ReviewAccessDenied { reason })
            }
        }
        Ok(Err(error)) => {
            tracing::warn!(%error, "cannot ask whether the controller may create tokenreviews");
            Ok(())
        }
        Err(_) => {
            tracing::warn!("no answer to whether the controller may create tokenreviews");
            Ok(())
        }
    }
}

/// The token as text: UTF-8, surrounding whitespace (a file's trailing
/// newline) trimmed, not empty.
fn token_text(token: &[u8]) -> Result<&str, TokenRejection> {
    let text = std::str::from_utf8(token)
        .map_err(|_| TokenRejection::Malformed("not UTF-8".into()))?
        .trim();
    if text.is_empty() {
        return Err(TokenRejection::Malformed("empty".into()));
    }
    Ok(text)
}

/// What a review's status proves for a token meant for `audience`.
pub fn review_outcome(
    status: Option<&TokenReviewStatus>,
    audience: &str,
) -> Result<WorkloadIdentity, TokenRejection> {
    let Some(status) = status else {
        return Err(TokenRejection::NotAuthenticated);
    };
    if status
        .error
        .as_deref()
        .is_some_and(|error| !error.is_empty())
    {
        return Err(TokenRejection::NotAuthenticated);
    }
    if status.authenticated != Some(true) {
        return Err(TokenRejection::NotAuthenticated);
    }
    if let Some(audiences) = &status.audiences
        && !audiences.iter().any(|granted| granted == audience)
    {
        return Err(TokenRejection::NotAuthenticated);
    }
    let username = status
        .user
        .as_ref()
        .and_then(|user| user.username.as_deref())
        .unwrap_or("");
    identity_from_username(username)
}

/// The workload a TokenReview username names: `system:serviceaccount:<ns>:<sa>`,
/// both DNS labels.
pub fn identity_from_username(username: &str) -> Result<WorkloadIdentity, TokenRejection> {
    let invalid = |why: String| TokenRejection::InvalidIdentity(why);
    let rest = username.strip_prefix(SERVICE_ACCOUNT_PREFIX).ok_or_else(|| {
        invalid(format!(
            "user {username:?} is not a service account (system:serviceaccount:<namespace>:<name>)"
        ))
    })?;
    let (namespace, service_account) = rest.split_once(':').ok_or_else(|| {
        invalid(format!(
            "user {username:?} is not system:serviceaccount:<namespace>:<name>"
        ))
    })?;
    if !is_dns_label(namespace) {
        return Err(invalid(format!(
            "namespace {namespace:?} is not a DNS label"
        )));
    }
    if !is_dns_label(service_account) {
        return Err(invalid(format!(
            "service account {service_account:?} is not a DNS label"
        )));
    }
    Ok(WorkloadIdentity::new(namespace, service_account))
}

/// Why a TokenReview could not be made: the API refused it or failed.
pub fn api_rejection(error: &kube::Error) -> TokenRejection {
    match error {
        kube::Error::Api(status) if status.code == 403 => TokenRejection::Unavailable(
            "the controller may not create tokenreviews.authentication.k8s.io \
             (RBAC: grant its ServiceAccount `create` on tokenreviews)"
                .to_string(),
        ),
        kube::Error::Api(status) => TokenRejection::Unavailable(format!(
            "the Kubernetes API refused the TokenReview ({} {})",
            status.code, status.reason
        )),
        other => TokenRejection::Unavailable(format!(
            "the Kubernetes API is unreachable for TokenReview: {other}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::authentication::v1::UserInfo;

    use super::*;

    fn invalid(text: &str) -> Result<WorkloadIdentity, TokenRejection> {
        Err(TokenRejection::InvalidIdentity(text.to_string()))
    }

    #[test]
    fn usernames_to_identities() {
        let cases = [
            (
                "system:serviceaccount:shop:web",
                Ok(WorkloadIdentity::new("shop", "web")),
            ),
            (
                "system:serviceaccount:kube-system:default",
                Ok(WorkloadIdentity::new("kube-system", "default")),
            ),
            (
                "system:node:worker-1",
                invalid(
                    "user \"system:node:worker-1\" is not a service account \
                     (system:serviceaccount:<namespace>:<name>)",
                ),
            ),
            (
                "alice",
                invalid(
                    "user \"alice\" is not a service account \
                     (system:serviceaccount:<namespace>:<name>)",
                ),
            ),
            (
                "",
                invalid(
                    "user \"\" is not a service account \
                     (system:serviceaccount:<namespace>:<name>)",
                ),
            ),
            (
                "system:serviceaccount:shop",
                invalid(
                    "user \"system:serviceaccount:shop\" is not system:serviceaccount:<namespace>:<name>",
                ),
            ),
            (
                "system:serviceaccount:shop:web:extra",
                invalid("service account \"web:extra\" is not a DNS label"),
            ),
            (
                "system:serviceaccount:Shop:web",
                invalid("namespace \"Shop\" is not a DNS label"),
            ),
            (
                "system:serviceaccount:shop:",
                invalid("service account \"\" is not a DNS label"),
            ),
            (
                "system:serviceaccount:shop:web.v2",
                invalid("service account \"web.v2\" is not a DNS label"),
            ),
        ];
        for (username, expected) in cases {
            assert_eq!(identity_from_username(username), expected, "{username:?}");
        }
    }

    fn status(
        authenticated: Option<bool>,
        username: Option<&str>,
        audiences: Option<&[&str]>,
        error: Option<&str>,
    ) -> TokenReviewStatus {
        TokenReviewStatus {
            authenticated,
            user: username.map(|name| UserInfo {
                username: Some(name.to_string()),
                ..UserInfo::default()
            }),
            audiences: audiences.map(|list| list.iter().map(|a| a.to_string()).collect()),
            error: error.map(str::to_string),
        }
    }

    #[test]
    fn review_statuses_to_outcomes() {
        const AUDIENCE: &str = "identity.weft.io";
        const WEB: &str = "system:serviceaccount:shop:web";
        let web = Ok(WorkloadIdentity::new("shop", "web"));
        let refused = Err(TokenRejection::NotAuthenticated);
        let cases = [
            ("no status", None, refused.clone()),
            (
                "authenticated, our audience",
                Some(status(Some(true), Some(WEB), Some(&[AUDIENCE]), None)),
                web.clone(),
            ),
            (
                "authenticated, audiences not echoed",
                Some(status(Some(true), Some(WEB), None, None)),
                web.clone(),
            ),
            (
                "authenticated among several audiences",
                Some(status(
                    Some(true),
                    Some(WEB),
                    Some(&["https://kubernetes.default.svc", AUDIENCE]),
                    None,
                )),
                web.clone(),
            ),
            (
                "authenticated for another audience only",
                Some(status(
                    Some(true),
                    Some(WEB),
                    Some(&["https://kubernetes.default.svc"]),
                    None,
                )),
                refused.clone(),
            ),
            (
                "authenticated with an empty audience list",
                Some(status(Some(true), Some(WEB), Some(&[]), None)),
                refused.clone(),
            ),
            (
                "not authenticated",
                Some(status(Some(false), None, None, None)),
                refused.clone(),
            ),
            (
                "authenticated unset",
                Some(status(None, Some(WEB), None, None)),
                refused.clone(),
            ),
            (
                "an error, even with a user",
                Some(status(
                    Some(true),
                    Some(WEB),
                    None,
                    Some("token audiences do not match"),
                )),
                refused.clone(),
            ),
            (
                "an empty error is no error",
                Some(status(Some(true), Some(WEB), None, Some(""))),
                web.clone(),
            ),
            (
                "authenticated, a node",
                Some(status(Some(true), Some("system:node:worker-1"), None, None)),
                invalid(
                    "user \"system:node:worker-1\" is not a service account \
                     (system:serviceaccount:<namespace>:<name>)",
                ),
            ),
            (
                "authenticated, no user",
                Some(status(Some(true), None, None, None)),
                invalid(
                    "user \"\" is not a service account \
                     (system:serviceaccount:<namespace>:<name>)",
                ),
            ),
        ];
        for (name, status, expected) in cases {
            assert_eq!(
                review_outcome(status.as_ref(), AUDIENCE),
                expected,
                "{name}"
            );
        }
    }

    #[test]
    fn api_errors_are_unavailable_and_403_names_rbac() {
        let api = |code: u16, reason: &str| {
            kube::Error::Api(Box::new(kube::core::Status {
                code,
                reason: reason.to_string(),
                ..kube::core::Status::default()
            }))
        };
        let forbidden = api_rejection(&api(403, "Forbidden"));
        assert!(
            matches!(&forbidden, TokenRejection::Unavailable(text) if text.contains("RBAC") && text.contains("tokenreviews")),
            "{forbidden:?}"
        );
        assert_eq!(
            api_rejection(&api(500, "InternalError")),
            TokenRejection::Unavailable(
                "the Kubernetes API refused the TokenReview (500 InternalError)".into()
            )
        );
    }

    #[test]
    fn tokens_are_trimmed_text() {
        assert_eq!(token_text(b"eyJ.abc.def\n"), Ok("eyJ.abc.def"));
        assert_eq!(
            token_text(b" \n"),
            Err(TokenRejection::Malformed("empty".into()))
        );
        assert_eq!(
            token_text(&[0xff, 0xfe]),
            Err(TokenRejection::Malformed("not UTF-8".into()))
        );
    }
}
