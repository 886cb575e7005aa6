//! Where a Kubernetes object keeps the pod it runs: the kinds `weft inject`
//! knows, each with the JSON Pointer of its pod template (or of itself, for a
//! Pod). Pure: `apiVersion` and `kind` in, a pointer out; every other object
//! (Service, ConfigMap, custom resources, a `Deployment` of another API
//! group) has no template and passes through unchanged.
//!
//! | group | kinds | pod at |
//! |---|---|---|
//! | `apps` | Deployment, StatefulSet, DaemonSet, ReplicaSet | `/spec/template` |
//! | `batch` | Job | `/spec/template` |
//! | `batch` | CronJob | `/spec/jobTemplate/spec/template` |
//! | core (`v1`) | ReplicationController | `/spec/template` |
//! | core (`v1`) | Pod | the object itself |

/// The pod a workload runs: its JSON Pointer in the object (`""` for a Pod).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodLocation {
    /// The JSON Pointer (RFC 6901) of the pod or pod template.
    pub pointer: &'static str,
}

/// The pod template's location in an object of `api_version` and `kind`;
/// `None` for kinds without one.
pub fn pod_location(api_version: &str, kind: &str) -> Option<PodLocation> {
    let pointer = match (api_group(api_version), kind) {
        ("apps", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet") => "/spec/template",
        ("batch", "Job") => "/spec/template",
        ("batch", "CronJob") => "/spec/jobTemplate/spec/template",
        ("", "ReplicationController") => "/spec/template",
        ("", "Pod") => "",
        _ => return None,
    };
    Some(PodLocation { pointer })
}

/// Whether the object is a list of objects (`kind: List`, or a typed list
/// such as `DeploymentList` as `kubectl get -o yaml` prints), whose `items`
/// are processed one by one.
pub fn is_list(kind: &str) -> bool {
    kind.ends_with("List")
}

/// The API group of an `apiVersion` (`apps/v1` → `apps`, `v1` → the core
/// group, `""`).
fn api_group(api_version: &str) -> &str {
    match api_version.split_once('/') {
        Some((group, _version)) => group,
        None => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_location_table() {
        let cases = [
            ("apps/v1", "Deployment", Some("/spec/template")),
            ("apps/v1", "StatefulSet", Some("/spec/template")),
            ("apps/v1", "DaemonSet", Some("/spec/template")),
            ("apps/v1", "ReplicaSet", Some("/spec/template")),
            ("batch/v1", "Job", Some("/spec/template")),
            (
                "batch/v1",
                "CronJob",
                Some("/spec/jobTemplate/spec/template"),
            ),
            ("v1", "ReplicationController", Some("/spec/template")),
            ("v1", "Pod", Some("")),
            // Not workloads.
            ("v1", "Service", None),
            ("v1", "ConfigMap", None),
            ("v1", "PodTemplate", None),
            ("policy/v1", "PodDisruptionBudget", None),
            // The same kind in another group is someone else's resource.
            ("example.com/v1", "Deployment", None),
            ("apps/v1", "Pod", None),
            ("v1", "Deployment", None),
            ("", "Job", None),
            // Kinds are case-sensitive, as the API server's are.
            ("apps/v1", "deployment", None),
        ];
        for (api_version, kind, expected) in cases {
            assert_eq!(
                pod_location(api_version, kind).map(|location| location.pointer),
                expected,
                "{api_version} {kind}"
            );
        }
    }

    #[test]
    fn is_list_table() {
        let cases = [
            ("List", true),
            ("DeploymentList", true),
            ("Deployment", false),
            ("Listener", false),
            ("", false),
        ];
        for (kind, expected) in cases {
            assert_eq!(is_list(kind), expected, "{kind}");
        }
    }
}
