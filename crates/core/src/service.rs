//! Pure decisions about core/v1 `Service`s: which workloads a selector picks,
//! which workload port a service port leads to (named `targetPort`s resolved
//! per workload, as Kubernetes does), and the service's virtual IPs.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::workload::{Labels, Workload};

/// Whether a label selector picks these labels. As for Kubernetes Services, an
/// absent or empty selector picks nothing (its endpoints are managed elsewhere).
pub fn selector_matches(selector: Option<&BTreeMap<String, String>>, labels: &Labels) -> bool {
    match selector {
        Some(selector) if !selector.is_empty() => selector
            .iter()
            .all(|(key, value)| labels.get(key) == Some(value)),
        _ => false,
    }
}

/// Whether a service selects a workload: same namespace and matching selector.
pub fn selects(service: &Service, workload: &Workload) -> bool {
    let same_namespace = namespace_or_default(service.metadata.namespace.as_deref())
        == namespace_or_default(workload.metadata.namespace.as_deref());
    same_namespace
        && selector_matches(
            service
                .spec
                .as_ref()
                .and_then(|spec| spec.selector.as_ref()),
            workload.labels(),
        )
}

/// `default` when an object has no namespace, as `kubectl apply` does.
pub fn namespace_or_default(namespace: Option<&str>) -> &str {
    match namespace {
        Some(namespace) if !namespace.is_empty() => namespace,
        _ => "default",
    }
}

/// Where a service port sends traffic on each workload.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TargetPort {
    /// This port number on every workload.
    Number(u16),
    /// The workload port with this name; workloads without it are not endpoints.
    Name(String),
}

impl TargetPort {
    /// The port on this workload, or `None` when a named port is missing.
    pub fn resolve(&self, workload: &Workload) -> Option<u16> {
        match self {
            TargetPort::Number(port) => Some(*port),
            TargetPort::Name(name) => workload.port_named(name),
        }
    }
}

/// The target of `service_port` on `service`: the matching `spec.ports[]`
/// entry's `targetPort` (a number, or a name resolved per workload), the port
/// itself when `targetPort` is absent, and — as Linkerd does — the requested
/// number literally when the service does not declare that port.
pub fn target_port(service: &Service, service_port: u16) -> TargetPort {
    let declared = service
        .spec
        .as_ref()
        .and_then(|spec| spec.ports.as_ref())
        .and_then(|ports| {
            ports
                .iter()
                .find(|port| port.port == i32::from(service_port))
        });
    match declared.and_then(|port| port.target_port.as_ref()) {
        Some(IntOrString::Int(number)) => match u16::try_from(*number) {
            Ok(number) if number != 0 => TargetPort::Number(number),
            _ => TargetPort::Number(service_port),
        },
        Some(IntOrString::String(name)) => match name.parse::<u16>() {
            Ok(number) if number != 0 => TargetPort::Number(number),
            _ => TargetPort::Name(name.clone()),
        },
        None => TargetPort::Number(service_port),
    }
}

/// Whether the service declares this port.
pub fn declares_port(service: &Service, service_port: u16) -> bool {
    service
        .spec
        .as_ref()
        .and_then(|spec| spec.ports.as_ref())
        .is_some_and(|ports| {
            ports
                .iter()
                .any(|port| port.port == i32::from(service_port))
        })
}

/// The service's virtual IPs (`clusterIP` and `clusterIPs`); `None` and
/// unparsable values (headless services) yield nothing.
pub fn cluster_ips(service: &Service) -> Vec<IpAddr> {
    let Some(spec) = service.spec.as_ref() else {
        return Vec::new();
    };
    let mut addresses: Vec<IpAddr> = spec
        .cluster_ip
        .iter()
        .chain(spec.cluster_ips.iter().flatten())
        .filter_map(|text| text.parse().ok())
        .collect();
    addresses.sort();
    addresses.dedup();
    addresses
}

/// Whether the service is `type: ExternalName` (not resolvable through the mesh).
pub fn is_external_name(service: &Service) -> bool {
    service.spec.as_ref().and_then(|spec| spec.type_.as_deref()) == Some("ExternalName")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn selector_matching() {
        type Pairs = &'static [(&'static str, &'static str)];
        let cases: &[(Option<Pairs>, Pairs, bool)] = &[
            (Some(&[("app", "web")]), &[("app", "web")], true),
            (
                Some(&[("app", "web")]),
                &[("app", "web"), ("version", "v1")],
                true,
            ),
            (
                Some(&[("app", "web"), ("version", "v1")]),
                &[("app", "web")],
                false,
            ),
            (Some(&[("app", "web")]), &[("app", "api")], false),
            (Some(&[("app", "web")]), &[], false),
            (Some(&[]), &[("app", "web")], false),
            (None, &[("app", "web")], false),
        ];
        for (selector, workload_labels, expected) in cases {
            let selector = selector.map(labels);
            assert_eq!(
                selector_matches(selector.as_ref(), &labels(workload_labels).into()),
                *expected,
                "{selector:?} vs {workload_labels:?}"
            );
        }
    }

    const SERVICE: &str = "
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  clusterIP: 10.96.0.10
  ports:
  - {name: http, port: 80, targetPort: http}
  - {name: admin, port: 9990, targetPort: 9991}
  - {name: plain, port: 7000}
  - {name: numeric-string, port: 7001, targetPort: '7002'}
";

    const WORKLOAD: &str = "
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: web-1, namespace: shop, labels: {app: web}}
spec: {addresses: [10.0.0.11], ports: [{name: http, port: 8080}]}
";

    #[test]
    fn named_target_ports() {
        let service: Service = serde_saphyr::from_str(SERVICE).unwrap();
        let workload: Workload = serde_saphyr::from_str(WORKLOAD).unwrap();
        let unnamed: Workload =
            serde_saphyr::from_str(&WORKLOAD.replace("{name: http, port: 8080}", "{port: 8080}"))
                .unwrap();
        let cases: &[(u16, TargetPort, Option<u16>, Option<u16>)] = &[
            (80, TargetPort::Name("http".into()), Some(8080), None),
            (9990, TargetPort::Number(9991), Some(9991), Some(9991)),
            (7000, TargetPort::Number(7000), Some(7000), Some(7000)),
            (7001, TargetPort::Number(7002), Some(7002), Some(7002)),
            (5555, TargetPort::Number(5555), Some(5555), Some(5555)),
        ];
        for (service_port, target, on_named, on_unnamed) in cases {
            assert_eq!(
                &target_port(&service, *service_port),
                target,
                "port {service_port}"
            );
            assert_eq!(
                target.resolve(&workload),
                *on_named,
                "port {service_port} named"
            );
            assert_eq!(
                target.resolve(&unnamed),
                *on_unnamed,
                "port {service_port} unnamed"
            );
        }
        assert!(declares_port(&service, 80));
        assert!(!declares_port(&service, 5555));
    }

    #[test]
    fn selects_same_namespace_only() {
        let service: Service = serde_saphyr::from_str(SERVICE).unwrap();
        let workload: Workload = serde_saphyr::from_str(WORKLOAD).unwrap();
        let elsewhere: Workload =
            serde_saphyr::from_str(&WORKLOAD.replace("namespace: shop", "namespace: other"))
                .unwrap();
        assert!(selects(&service, &workload));
        assert!(!selects(&service, &elsewhere));
    }

    #[test]
    fn cluster_ips_skip_headless() {
        let service: Service = serde_saphyr::from_str(SERVICE).unwrap();
        assert_eq!(
            cluster_ips(&service),
            vec!["10.96.0.10".parse::<IpAddr>().unwrap()]
        );
        let headless: Service =
            serde_saphyr::from_str(&SERVICE.replace("10.96.0.10", "None")).unwrap();
        assert!(cluster_ips(&headless).is_empty());
        assert!(!is_external_name(&service));
    }
}
