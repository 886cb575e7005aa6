//! The controller's permissions, least privilege: read (get/list/watch)
//! exactly the kinds its Kubernetes source watches, create TokenReviews
//! (identity), and in its own namespace read the issuer Secret and the
//! trust-anchor ConfigMap by name. No wildcard, no write to any object, no
//! Secret outside those named.

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use weft_core::cluster;

/// Read access.
pub const READ_VERBS: [&str; 3] = ["get", "list", "watch"];

/// What the controller reads cluster-wide: (API group, resources).
pub const CLUSTER_READS: &[(&str, &[&str])] = &[
    ("", &["namespaces", "pods", "services"]),
    ("apps", &["replicasets"]),
    ("batch", &["jobs"]),
    ("discovery.k8s.io", &["endpointslices"]),
    ("gateway.networking.k8s.io", &["grpcroutes", "httproutes"]),
    ("linkerd.io", &["serviceprofiles"]),
    (
        "policy.linkerd.io",
        &[
            "authorizationpolicies",
            "httproutes",
            "meshtlsauthentications",
            "networkauthentications",
            "servers",
        ],
    ),
    ("split.smi-spec.io", &["trafficsplits"]),
    ("weft.dev", &["workloads"]),
];

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| item.to_string()).collect()
}

fn rule(group: &str, resources: &[&str], verbs: &[&str], names: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![group.to_string()]),
        resources: Some(strings(resources)),
        verbs: strings(verbs),
        resource_names: (!names.is_empty()).then(|| strings(names)),
        ..PolicyRule::default()
    }
}

fn subjects() -> Vec<Subject> {
    vec![Subject {
        kind: "ServiceAccount".to_string(),
        name: cluster::CONTROLLER_NAME.to_string(),
        namespace: Some(cluster::CONTROL_PLANE_NAMESPACE.to_string()),
        ..Subject::default()
    }]
}

/// The cluster-wide reads and the TokenReview create.
pub fn cluster_role(metadata: ObjectMeta) -> ClusterRole {
    let mut rules: Vec<PolicyRule> = CLUSTER_READS
        .iter()
        .map(|(group, resources)| rule(group, resources, &READ_VERBS, &[]))
        .collect();
    rules.push(rule(
        "authentication.k8s.io",
        &["tokenreviews"],
        &["create"],
        &[],
    ));
    ClusterRole {
        metadata,
        rules: Some(rules),
        ..ClusterRole::default()
    }
}

/// Binds [`cluster_role`] to the controller's ServiceAccount.
pub fn cluster_role_binding(metadata: ObjectMeta) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata,
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_string(),
            kind: "ClusterRole".to_string(),
            name: cluster::CONTROLLER_NAME.to_string(),
        },
        subjects: Some(subjects()),
    }
}

/// In the control plane's namespace: the issuer Secret and the
/// trust-anchor ConfigMap, by name. (A list or watch restricted by
/// `resourceNames` must select the object with
/// `fieldSelector=metadata.name=<name>`.)
pub fn role(metadata: ObjectMeta) -> Role {
    Role {
        metadata,
        rules: Some(vec![
            rule(
                "",
                &["configmaps"],
                &READ_VERBS,
                &[cluster::TRUST_ANCHORS_CONFIGMAP],
            ),
            rule("", &["secrets"], &READ_VERBS, &[cluster::ISSUER_SECRET]),
        ]),
    }
}

/// Binds [`role`] to the controller's ServiceAccount.
pub fn role_binding(metadata: ObjectMeta) -> RoleBinding {
    RoleBinding {
        metadata,
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_string(),
            kind: "Role".to_string(),
            name: cluster::CONTROLLER_NAME.to_string(),
        },
        subjects: Some(subjects()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(rules: &[PolicyRule], group: &str, resource: &str, verb: &str) -> bool {
        rules.iter().any(|rule| {
            rule.api_groups
                .as_ref()
                .is_some_and(|groups| groups.iter().any(|g| g == group))
                && rule
                    .resources
                    .as_ref()
                    .is_some_and(|resources| resources.iter().any(|r| r == resource))
                && rule.verbs.iter().any(|v| v == verb)
        })
    }

    #[test]
    fn cluster_role_table() {
        let rules = cluster_role(ObjectMeta::default()).rules.unwrap();
        let cases = [
            ("", "pods", "watch", true),
            ("", "services", "list", true),
            ("", "namespaces", "get", true),
            ("discovery.k8s.io", "endpointslices", "watch", true),
            ("apps", "replicasets", "watch", true),
            ("batch", "jobs", "list", true),
            ("policy.linkerd.io", "servers", "watch", true),
            ("gateway.networking.k8s.io", "grpcroutes", "watch", true),
            ("weft.dev", "workloads", "watch", true),
            ("authentication.k8s.io", "tokenreviews", "create", true),
            ("", "secrets", "get", false),
            ("", "configmaps", "get", false),
            ("", "pods", "create", false),
            ("", "pods", "delete", false),
            ("apps", "deployments", "get", false),
            ("authentication.k8s.io", "tokenreviews", "get", false),
        ];
        for (group, resource, verb, expected) in cases {
            assert_eq!(
                allows(&rules, group, resource, verb),
                expected,
                "{group}/{resource} {verb}"
            );
        }
        for rule in &rules {
            assert!(!rule.verbs.iter().any(|verb| verb == "*"));
            assert!(!rule.resources.iter().flatten().any(|r| r.contains('*')));
            assert!(!rule.api_groups.iter().flatten().any(|g| g == "*"));
        }
    }

    #[test]
    fn namespaced_role_names_its_objects() {
        let rules = role(ObjectMeta::default()).rules.unwrap();
        assert!(allows(&rules, "", "secrets", "watch"));
        for rule in &rules {
            assert!(
                rule.resource_names
                    .as_ref()
                    .is_some_and(|names| names.len() == 1)
            );
            assert!(
                rule.verbs
                    .iter()
                    .all(|verb| READ_VERBS.contains(&verb.as_str()))
            );
        }
    }
}
