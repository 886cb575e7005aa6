//! `TrafficSplit` (`split.smi-spec.io/v1alpha1`): an apex service's traffic
//! divided between backend services by weight, and [`dst_overrides`], the pure
//! function that turns a split (or a profile's `dstOverrides`, or neither) into
//! the weighted destinations a profile answer carries.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

use crate::names::ServiceName;
use crate::profile::WeightedDestinationSpec;
use crate::weight::Weight;

/// The API version of [`TrafficSplit`].
pub const API_VERSION: &str = "split.smi-spec.io/v1alpha1";
/// The kind of [`TrafficSplit`].
pub const KIND: &str = "TrafficSplit";

/// A TrafficSplit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrafficSplit {
    /// `split.smi-spec.io/v1alpha1`.
    pub api_version: String,
    /// `TrafficSplit`.
    pub kind: String,
    /// Name and namespace (the apex service's namespace).
    pub metadata: ObjectMeta,
    /// Apex and backends.
    pub spec: TrafficSplitSpec,
}

/// The apex service and its weighted backends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrafficSplitSpec {
    /// The apex service clients address.
    pub service: String,
    /// Where its traffic goes.
    pub backends: Vec<TrafficSplitBackend>,
}

/// One backend of a split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrafficSplitBackend {
    /// A service in the split's namespace.
    pub service: String,
    /// Its relative weight.
    pub weight: Weight,
}

/// One weighted destination of a profile answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WeightedDestination {
    /// `<service>.<namespace>.svc.<domain>.:<port>` (trailing dot as Linkerd writes it).
    pub authority: String,
    /// Wire weight (×10000 per unit).
    pub weight: u32,
}

/// The destinations a profile answer for `service:port` carries, as Linkerd
/// does: a TrafficSplit for the service wins (one entry per backend, in the
/// split's namespace); else the profile's `dstOverrides` (a port is appended
/// when missing); else none. (Linkerd 2.9 sent the service itself with
/// weight 1 here; since the policy API, a profile with overrides makes
/// linkerd2-proxy route by the profile and ignore HTTPRoutes, so, as Linkerd
/// does since, a service without a split carries no override: its
/// `fully_qualified_name` already says the host is a service.)
pub fn dst_overrides(
    service: &ServiceName,
    port: u16,
    split: Option<&TrafficSplit>,
    profile_overrides: &[WeightedDestinationSpec],
    cluster_domain: &str,
) -> Vec<WeightedDestination> {
    let authority_of =
        |name: &str| format!("{name}.{}.svc.{cluster_domain}.:{port}", service.namespace);
    if let Some(split) = split {
        return split
            .spec
            .backends
            .iter()
            .map(|backend| WeightedDestination {
                authority: authority_of(&backend.service),
                weight: backend.weight.wire(),
            })
            .collect();
    }
    if !profile_overrides.is_empty() {
        return profile_overrides
            .iter()
            .map(|entry| {
                let has_port = entry
                    .authority
                    .rsplit_once(':')
                    .is_some_and(|(_, port)| port.parse::<u16>().is_ok());
                let authority = if has_port {
                    entry.authority.clone()
                } else {
                    format!("{}:{port}", entry.authority)
                };
                WeightedDestination {
                    authority,
                    weight: entry.weight.wire(),
                }
            })
            .collect();
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPLIT: &str = "
apiVersion: split.smi-spec.io/v1alpha1
kind: TrafficSplit
metadata: {name: web-split, namespace: shop}
spec:
  service: web
  backends:
  - {service: web-v1, weight: 900m}
  - {service: web-v2, weight: 100}
";

    #[test]
    fn split_weights_become_destinations() {
        let split: TrafficSplit = serde_saphyr::from_str(SPLIT).unwrap();
        let service = ServiceName::new("shop", "web");
        let overrides = [WeightedDestinationSpec {
            authority: "web-v3.shop.svc.cluster.local".into(),
            weight: Weight::from_milli(500),
        }];
        let destination = |authority: &str, weight| WeightedDestination {
            authority: authority.into(),
            weight,
        };
        let cases: Vec<(
            Option<&TrafficSplit>,
            &[WeightedDestinationSpec],
            Vec<WeightedDestination>,
        )> = vec![
            (
                Some(&split),
                &overrides,
                vec![
                    destination("web-v1.shop.svc.cluster.local.:80", 9000),
                    destination("web-v2.shop.svc.cluster.local.:80", 1_000_000),
                ],
            ),
            (
                None,
                &overrides,
                vec![destination("web-v3.shop.svc.cluster.local:80", 5000)],
            ),
            (None, &[], vec![]),
        ];
        for (index, (split, overrides, expected)) in cases.into_iter().enumerate() {
            assert_eq!(
                dst_overrides(&service, 80, split, overrides, "cluster.local"),
                expected,
                "case {index}"
            );
        }
    }
}
