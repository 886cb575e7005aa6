//! A container's environment as the kubelet resolves it, so a test can start
//! a process with exactly what a pod's container would see.
//!
//! ```text
//! pod JSON + container name ─► env [{name, value | valueFrom.fieldRef}] in order
//!     value:    `$(VAR)` of a variable defined EARLIER in the list expanded,
//!               `$$(VAR)` kept as `$(VAR)`, an unknown `$(VAR)` kept verbatim
//!     fieldRef: metadata.name / namespace / uid, spec.serviceAccountName,
//!               spec.nodeName, status.podIP / hostIP,
//!               metadata.labels['k'] / metadata.annotations['k']
//! ```
//!
//! The expansion follows Kubernetes' (`third_party/forked/golang/expansion`):
//! only `$(NAME)` is special, and only variables already resolved count.
//! Other `valueFrom` sources (Secrets, ConfigMaps, resources) are refused:
//! the injected proxy uses none.

use serde_json::Value;

/// Why an environment cannot be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    /// No container or init container of that name.
    #[error("the pod has no container {0:?}")]
    NoContainer(String),
    /// An entry without a name.
    #[error("an env entry has no name")]
    NoName,
    /// A `valueFrom` this resolver does not know.
    #[error("{name}: valueFrom {origin} is not supported")]
    Unsupported {
        /// The variable.
        name: String,
        /// Its source.
        origin: String,
    },
}

/// The environment of `container` (a container or an init container) of
/// `pod`, in order, as the kubelet hands it to the process.
pub fn container_env(pod: &Value, container: &str) -> Result<Vec<(String, String)>, EnvError> {
    let spec = &pod["spec"];
    let found = ["initContainers", "containers"]
        .iter()
        .filter_map(|list| spec[list].as_array())
        .flatten()
        .find(|candidate| candidate["name"] == container)
        .ok_or_else(|| EnvError::NoContainer(container.to_string()))?;
    let mut resolved: Vec<(String, String)> = Vec::new();
    for entry in found["env"].as_array().into_iter().flatten() {
        let name = entry["name"].as_str().ok_or(EnvError::NoName)?.to_string();
        let value = if let Some(value_from) = entry.get("valueFrom") {
            let Some(path) = value_from["fieldRef"]["fieldPath"].as_str() else {
                return Err(EnvError::Unsupported {
                    name,
                    origin: value_from.to_string(),
                });
            };
            field(pod, path).ok_or_else(|| EnvError::Unsupported {
                name: name.clone(),
                origin: format!("fieldRef {path}"),
            })?
        } else {
            expand(entry["value"].as_str().unwrap_or_default(), &resolved)
        };
        // A later entry of the same name replaces the earlier one.
        resolved.retain(|(known, _)| *known != name);
        resolved.push((name, value));
    }
    Ok(resolved)
}

/// The value of a downward-API field path.
fn field(pod: &Value, path: &str) -> Option<String> {
    let text = |value: &Value| Some(value.as_str().unwrap_or_default().to_string());
    match path {
        "metadata.name" => text(&pod["metadata"]["name"]),
        "metadata.namespace" => text(&pod["metadata"]["namespace"]),
        "metadata.uid" => text(&pod["metadata"]["uid"]),
        "spec.serviceAccountName" => {
            let account = pod["spec"]["serviceAccountName"]
                .as_str()
                .unwrap_or("default");
            Some(account.to_string())
        }
        "spec.nodeName" => text(&pod["spec"]["nodeName"]),
        "status.podIP" => text(&pod["status"]["podIP"]),
        "status.hostIP" => text(&pod["status"]["hostIP"]),
        _ => {
            for map in ["labels", "annotations"] {
                let prefix = format!("metadata.{map}['");
                if let Some(key) = path
                    .strip_prefix(&prefix)
                    .and_then(|rest| rest.strip_suffix("']"))
                {
                    return text(&pod["metadata"][map][key]);
                }
            }
            None
        }
    }
}

/// Kubernetes' `$(VAR)` expansion of `input` against the variables so far.
pub fn expand(input: &str, defined: &[(String, String)]) -> String {
    let mut output = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(position) = rest.find('$') {
        output.push_str(&rest[..position]);
        let after = &rest[position + 1..];
        if let Some(escaped) = after.strip_prefix('$') {
            // `$$` is one literal `$`.
            output.push('$');
            rest = escaped;
        } else if let Some(reference) = after.strip_prefix('(') {
            match reference.find(')') {
                Some(end) => {
                    let name = &reference[..end];
                    match defined.iter().rev().find(|(known, _)| known == name) {
                        Some((_, value)) => output.push_str(value),
                        None => {
                            output.push_str("$(");
                            output.push_str(name);
                            output.push(')');
                        }
                    }
                    rest = &reference[end + 1..];
                }
                None => {
                    // Unterminated: kept as written.
                    output.push_str("$(");
                    rest = reference;
                }
            }
        } else {
            output.push('$');
            rest = after;
        }
    }
    output.push_str(rest);
    output
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn defined(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn expansion_follows_kubernetes() {
        let vars = defined(&[("A", "a"), ("EMPTY", "")]);
        let cases = [
            ("plain", "plain"),
            ("$(A)", "a"),
            ("x$(A)y$(A)", "xaya"),
            ("$(EMPTY)!", "!"),
            ("$(UNKNOWN)", "$(UNKNOWN)"),
            ("$$(A)", "$(A)"),
            ("$$", "$"),
            ("$A", "$A"),
            ("$(A", "$(A"),
            ("{\"ns\":\"$(A)\"}", "{\"ns\":\"a\"}"),
            ("end$", "end$"),
        ];
        for (input, expected) in cases {
            assert_eq!(expand(input, &vars), expected, "{input}");
        }
    }

    #[test]
    fn a_container_env_is_resolved_in_order() {
        let pod = json!({
            "metadata": {"name": "web-1", "namespace": "shop", "labels": {"app": "web"}},
            "spec": {
                "serviceAccountName": "web",
                "initContainers": [{"name": "proxy", "env": [
                    {"name": "LATER", "value": "$(_pod_ns)"},
                    {"name": "_pod_ns", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                    {"name": "_pod_sa", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
                    {"name": "_app", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                    {"name": "ID", "value": "$(_pod_sa).$(_pod_ns).serviceaccount"},
                ]}],
                "containers": [{"name": "app"}],
            },
        });
        assert_eq!(
            container_env(&pod, "proxy").unwrap(),
            defined(&[
                ("LATER", "$(_pod_ns)"),
                ("_pod_ns", "shop"),
                ("_pod_sa", "web"),
                ("_app", "web"),
                ("ID", "web.shop.serviceaccount"),
            ])
        );
        assert_eq!(container_env(&pod, "app").unwrap(), Vec::new());
        assert_eq!(
            container_env(&pod, "nope"),
            Err(EnvError::NoContainer("nope".into()))
        );
        let secret = json!({"spec": {"containers": [{"name": "app", "env": [
            {"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}]}});
        assert!(matches!(
            container_env(&secret, "app"),
            Err(EnvError::Unsupported { .. })
        ));
    }
}
