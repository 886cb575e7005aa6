//! The `Server` kind (`policy.linkerd.io/v1beta3`; v1beta1 and v1beta2 read
//! the same): a port of the workloads a label selector picks, and the
//! protocol the proxy should expect there.
//!
//! ```yaml
//! apiVersion: policy.linkerd.io/v1beta3
//! kind: Server
//! metadata: {name: web-http, namespace: shop}
//! spec:
//!   podSelector: {matchLabels: {app: web}}
//!   port: http              # a number, or a name among the Workload's ports
//!   proxyProtocol: HTTP/1   # unknown (detect) | HTTP/1 | HTTP/2 | gRPC | opaque | TLS
//!   accessPolicy: deny      # what traffic no AuthorizationPolicy admits gets (default deny)
//! ```

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

use super::FieldError;
use super::default_policy::DefaultPolicy;
use crate::workload::{Labels, Workload};

/// The API versions a Server may be written in.
pub const API_VERSIONS: [&str; 3] = [
    "policy.linkerd.io/v1beta3",
    "policy.linkerd.io/v1beta2",
    "policy.linkerd.io/v1beta1",
];
/// The kind of [`Server`].
pub const KIND: &str = "Server";

/// A Server: metadata and spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Server {
    /// `policy.linkerd.io/v1beta3` (or v1beta1, v1beta2).
    pub api_version: String,
    /// `Server`.
    pub kind: String,
    /// Name and namespace.
    pub metadata: ObjectMeta,
    /// What it selects.
    pub spec: ServerSpec,
}

/// The body of a Server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServerSpec {
    /// The workloads (pods, in Linkerd) it applies to, by label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<LabelSelector>,
    /// Linkerd's selector for ExternalWorkloads; on weft, the same as
    /// `podSelector` (a Workload is both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_workload_selector: Option<LabelSelector>,
    /// The port: a number, or the name of a Workload port.
    pub port: ServerPort,
    /// The protocol on the port (`unknown`: detect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_protocol: Option<ProxyProtocol>,
    /// The default for traffic no AuthorizationPolicy admits (`deny` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_policy: Option<String>,
}

/// A port number or a port name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum ServerPort {
    /// A number.
    Number(u32),
    /// The name of one of the Workload's ports.
    Name(String),
}

impl ServerPort {
    /// The port number on `workload` (a name resolves through its named ports).
    pub fn resolve(&self, workload: &Workload) -> Option<u16> {
        match self {
            ServerPort::Number(number) => u16::try_from(*number).ok().filter(|port| *port != 0),
            ServerPort::Name(name) => workload.port_named(name),
        }
    }
}

impl std::fmt::Display for ServerPort {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerPort::Number(number) => write!(formatter, "{number}"),
            ServerPort::Name(name) => formatter.write_str(name),
        }
    }
}

/// The protocol a Server declares, as Linkerd spells it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
pub enum ProxyProtocol {
    /// Detect HTTP, else forward opaquely.
    #[default]
    #[serde(rename = "unknown")]
    Unknown,
    /// HTTP/1.
    #[serde(rename = "HTTP/1")]
    Http1,
    /// HTTP/2.
    #[serde(rename = "HTTP/2")]
    Http2,
    /// gRPC.
    #[serde(rename = "gRPC")]
    Grpc,
    /// Opaque TCP.
    #[serde(rename = "opaque")]
    Opaque,
    /// TLS the app terminates.
    #[serde(rename = "TLS")]
    Tls,
}

/// A Kubernetes label selector. Unlike a Service's selector, an empty one
/// selects every workload of the namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelector {
    /// Labels that must be set to these values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<BTreeMap<String, String>>,
    /// Requirements that must all hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_expressions: Option<Vec<LabelRequirement>>,
}

/// One `matchExpressions` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelRequirement {
    /// The label.
    pub key: String,
    /// How it is compared.
    pub operator: SelectorOperator,
    /// The values for `In` and `NotIn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
}

/// A `matchExpressions` operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
pub enum SelectorOperator {
    /// The label is set to one of the values.
    In,
    /// The label is absent or set to none of the values.
    NotIn,
    /// The label is set.
    Exists,
    /// The label is absent.
    DoesNotExist,
}

impl LabelSelector {
    /// Whether the selector picks `labels`.
    pub fn matches(&self, labels: &Labels) -> bool {
        let by_labels = self
            .match_labels
            .iter()
            .flatten()
            .all(|(key, value)| labels.get(key) == Some(value));
        let by_expressions = self.match_expressions.iter().flatten().all(|requirement| {
            let value = labels.get(&requirement.key);
            let listed = |value: &String| {
                requirement
                    .values
                    .iter()
                    .flatten()
                    .any(|candidate| candidate == value)
            };
            match requirement.operator {
                SelectorOperator::In => value.is_some_and(listed),
                SelectorOperator::NotIn => !value.is_some_and(listed),
                SelectorOperator::Exists => value.is_some(),
                SelectorOperator::DoesNotExist => value.is_none(),
            }
        });
        by_labels && by_expressions
    }

    fn validate(&self, field: &str) -> Result<(), FieldError> {
        for (index, requirement) in self.match_expressions.iter().flatten().enumerate() {
            let values = requirement.values.as_deref().unwrap_or_default();
            let field = format!("{field}.matchExpressions[{index}]");
            match requirement.operator {
                SelectorOperator::In | SelectorOperator::NotIn if values.is_empty() => {
                    return Err(FieldError::new(
                        format!("{field}.values"),
                        "In and NotIn need at least one value",
                    ));
                }
                SelectorOperator::Exists | SelectorOperator::DoesNotExist if !values.is_empty() => {
                    return Err(FieldError::new(
                        format!("{field}.values"),
                        "Exists and DoesNotExist take no values",
                    ));
                }
                _ => {}
            }
            if requirement.key.is_empty() {
                return Err(FieldError::new(format!("{field}.key"), "must not be empty"));
            }
        }
        Ok(())
    }
}

impl Server {
    /// Its name (empty when absent; the catalog refuses those).
    pub fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or_default()
    }

    /// The selector in use: `podSelector`, else `externalWorkloadSelector`.
    pub fn selector(&self) -> Option<&LabelSelector> {
        self.spec
            .pod_selector
            .as_ref()
            .or(self.spec.external_workload_selector.as_ref())
    }

    /// Whether it selects `workload` (same namespace is the caller's check).
    pub fn selects(&self, workload: &Workload) -> bool {
        self.selector()
            .is_some_and(|selector| selector.matches(workload.labels()))
    }

    /// The port it selects on `workload`, if it selects the workload and the port resolves.
    pub fn port_on(&self, workload: &Workload) -> Option<u16> {
        if !self.selects(workload) {
            return None;
        }
        self.spec.port.resolve(workload)
    }

    /// The declared protocol (`unknown` when absent).
    pub fn protocol(&self) -> ProxyProtocol {
        self.spec.proxy_protocol.unwrap_or_default()
    }

    /// The access policy (`deny` when absent; checked by [`Self::validate`]).
    pub fn access_policy(&self) -> DefaultPolicy {
        self.spec
            .access_policy
            .as_deref()
            .and_then(|text| DefaultPolicy::parse(text).ok())
            .unwrap_or(DefaultPolicy::Deny)
    }

    /// Checks what serde cannot: one selector, a valid port, a known access policy.
    pub fn validate(&self) -> Result<(), FieldError> {
        match (
            &self.spec.pod_selector,
            &self.spec.external_workload_selector,
        ) {
            (None, None) => {
                return Err(FieldError::new(
                    "spec.podSelector",
                    "required (or spec.externalWorkloadSelector)",
                ));
            }
            (Some(_), Some(_)) => {
                return Err(FieldError::new(
                    "spec.externalWorkloadSelector",
                    "give either podSelector or externalWorkloadSelector, not both",
                ));
            }
            (Some(selector), None) => selector.validate("spec.podSelector")?,
            (None, Some(selector)) => selector.validate("spec.externalWorkloadSelector")?,
        }
        match &self.spec.port {
            ServerPort::Number(number) if !(1..=65535).contains(number) => {
                return Err(FieldError::new(
                    "spec.port",
                    format!("{number} is not a port (1-65535)"),
                ));
            }
            ServerPort::Name(name) if name.is_empty() || name.len() > 15 => {
                return Err(FieldError::new(
                    "spec.port",
                    format!("{name:?} is not a port name (1-15 characters)"),
                ));
            }
            _ => {}
        }
        if let Some(policy) = &self.spec.access_policy {
            DefaultPolicy::parse(policy)
                .map_err(|error| FieldError::new("spec.accessPolicy", error.to_string()))?;
        }
        Ok(())
    }
}
