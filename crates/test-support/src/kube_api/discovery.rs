//! The discovery documents of the test API server, built from its registry:
//! `/version`, `/api` and `/apis` (legacy and aggregated v2, which kube's
//! `Discovery::run_aggregated` asks for), `/api/v1` and
//! `/apis/{group}/{version}` resource lists.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::model::{self, Registry, ResourceType};

/// What every resource supports here.
const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// `/version`, as a v1.33.0 server answers.
pub(super) fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": "v1.33.0",
        "gitCommit": "60a317eadfcb839692a68eab88b2096f4d708f4f",
        "gitTreeState": "clean",
        "buildDate": "2025-04-23T13:07:44Z",
        "goVersion": "go1.24.2",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// `/api`: the core group's versions.
pub(super) fn core_versions() -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
}

/// Each named group with its versions, the preferred one first.
fn group_versions(registry: &Registry) -> BTreeMap<&str, Vec<&str>> {
    let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (_, resource) in registry
        .iter()
        .filter(|(_, resource)| !resource.group.is_empty())
    {
        let versions = groups.entry(resource.group.as_str()).or_default();
        for version in &resource.versions {
            if !versions.contains(&version.as_str()) {
                versions.push(version);
            }
        }
    }
    for versions in groups.values_mut() {
        versions.sort_by_key(|version| std::cmp::Reverse(version_priority(version)));
    }
    groups
}

/// `/apis`: the legacy APIGroupList.
pub(super) fn groups(registry: &Registry) -> Value {
    let groups: Vec<Value> = group_versions(registry)
        .into_iter()
        .map(|(group, versions)| {
            let entry = |version: &str| {
                json!({"groupVersion": format!("{group}/{version}"), "version": version})
            };
            json!({
                "name": group,
                "versions": versions.iter().map(|version| entry(version)).collect::<Vec<_>>(),
                "preferredVersion": entry(versions[0]),
            })
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// The resources of `registry` served at `group/version`.
fn served_at<'a>(
    registry: &'a Registry,
    group: &'a str,
    version: &'a str,
) -> impl Iterator<Item = &'a ResourceType> {
    registry
        .iter()
        .map(|(_, resource)| resource)
        .filter(move |resource| {
            resource.group == group && resource.versions.iter().any(|known| known == version)
        })
}

/// `/api/v1`, `/apis/{group}/{version}`: an APIResourceList (none when nothing is served there).
pub(super) fn resources(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let resources: Vec<Value> = served_at(registry, group, version)
        .map(|resource| {
            json!({
                "name": resource.plural,
                "singularName": resource.kind.to_lowercase(),
                "namespaced": resource.namespaced,
                "kind": resource.kind,
                "verbs": VERBS,
            })
        })
        .collect();
    (!resources.is_empty()).then(|| {
        json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": model::join_api_version(group, version),
            "resources": resources,
        })
    })
}

/// `/api` (`core`) or `/apis` asked with
/// `Accept: application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList`.
pub(super) fn aggregated(registry: &Registry, core: bool) -> Value {
    let groups: Vec<(&str, Vec<&str>)> = if core {
        vec![("", vec!["v1"])]
    } else {
        group_versions(registry).into_iter().collect()
    };
    let items: Vec<Value> = groups
        .into_iter()
        .map(|(group, versions)| {
            let versions: Vec<Value> = versions
                .into_iter()
                .map(|version| {
                    let resources: Vec<Value> = served_at(registry, group, version)
                        .map(|resource| {
                            json!({
                                "resource": resource.plural,
                                "responseKind": {"group": group, "version": version, "kind": resource.kind},
                                "scope": if resource.namespaced { "Namespaced" } else { "Cluster" },
                                "singularResource": resource.kind.to_lowercase(),
                                "verbs": VERBS,
                            })
                        })
                        .collect();
                    json!({"version": version, "resources": resources, "freshness": "Current"})
                })
                .collect();
            let metadata = if group.is_empty() {
                json!({"creationTimestamp": null})
            } else {
                json!({"name": group, "creationTimestamp": null})
            };
            json!({"metadata": metadata, "versions": versions})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}

/// Kubernetes' version order: GA over beta over alpha, then by number.
fn version_priority(version: &str) -> (u8, u32, u32) {
    let digits = |text: &str| text.parse::<u32>().unwrap_or_default();
    let rest = version.strip_prefix('v').unwrap_or(version);
    let major_end = rest
        .find(|character: char| !character.is_ascii_digit())
        .unwrap_or(rest.len());
    let (major, stability) = rest.split_at(major_end);
    if stability.is_empty() {
        (3, digits(major), 0)
    } else if let Some(number) = stability.strip_prefix("beta") {
        (2, digits(major), digits(number))
    } else if let Some(number) = stability.strip_prefix("alpha") {
        (1, digits(major), digits(number))
    } else {
        (0, 0, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_like_kubernetes() {
        let mut versions = vec!["v1alpha1", "v1beta1", "v1", "v1alpha4", "v1beta3", "v2"];
        versions.sort_by_key(|version| std::cmp::Reverse(version_priority(version)));
        assert_eq!(
            versions,
            ["v2", "v1", "v1beta3", "v1beta1", "v1alpha4", "v1alpha1"]
        );
    }

    #[test]
    fn groups_prefer_their_most_stable_version() {
        let groups = groups(&Registry::built_in());
        let split = groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|group| group["name"] == "split.smi-spec.io")
            .expect("SMI's group");
        assert_eq!(split["preferredVersion"]["version"], "v1alpha4");
        assert_eq!(split["versions"].as_array().unwrap().len(), 4);
    }
}
