//! The pure parts of the test Kubernetes API server: which resource types it
//! serves (the registry), how a request path names a resource, label and
//! field selectors, continue tokens and timestamps. No I/O, no locks; table
//! tests at the bottom.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::Value;

/// Index of a resource type in the [`Registry`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct ResourceId(pub(super) usize);

/// One served resource type: a kind under one group, possibly served at
/// several versions (stored once, like a CRD with `conversion: None`).
#[derive(Debug, Clone)]
pub(super) struct ResourceType {
    /// API group, `""` for the core group.
    pub(super) group: String,
    /// Served versions, in registration order.
    pub(super) versions: Vec<String>,
    /// `Pod`.
    pub(super) kind: String,
    /// `pods`.
    pub(super) plural: String,
    /// Namespaced (else cluster-scoped).
    pub(super) namespaced: bool,
}

impl ResourceType {
    /// `group/version`, or `version` for the core group.
    pub(super) fn api_version(&self, version: &str) -> String {
        join_api_version(&self.group, version)
    }
}

/// `group/version`, or `version` for the core group.
pub(super) fn join_api_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

/// `("apps", "v1")` from `apps/v1`, `("", "v1")` from `v1`.
pub(super) fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.rsplit_once('/').unwrap_or(("", api_version))
}

/// The kinds built in: `(apiVersion, kind, plural, namespaced)`.
const BUILT_IN: &[(&str, &str, &str, bool)] = &[
    ("v1", "Pod", "pods", true),
    ("v1", "Service", "services", true),
    ("v1", "Namespace", "namespaces", false),
    ("v1", "Secret", "secrets", true),
    ("v1", "ConfigMap", "configmaps", true),
    ("v1", "ServiceAccount", "serviceaccounts", true),
    ("v1", "Node", "nodes", false),
    ("v1", "Endpoints", "endpoints", true),
    ("v1", "Event", "events", true),
    ("events.k8s.io/v1", "Event", "events", true),
    (
        "discovery.k8s.io/v1",
        "EndpointSlice",
        "endpointslices",
        true,
    ),
    ("apps/v1", "Deployment", "deployments", true),
    ("apps/v1", "ReplicaSet", "replicasets", true),
    ("apps/v1", "StatefulSet", "statefulsets", true),
    ("apps/v1", "DaemonSet", "daemonsets", true),
    ("batch/v1", "Job", "jobs", true),
    ("batch/v1", "CronJob", "cronjobs", true),
    ("coordination.k8s.io/v1", "Lease", "leases", true),
    (
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        false,
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "ClusterRole",
        "clusterroles",
        false,
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
    ),
    ("rbac.authorization.k8s.io/v1", "Role", "roles", true),
    (
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        "rolebindings",
        true,
    ),
    (
        "admissionregistration.k8s.io/v1",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        false,
    ),
    (
        "admissionregistration.k8s.io/v1",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        false,
    ),
    (
        "policy/v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        true,
    ),
    (
        "linkerd.io/v1alpha2",
        "ServiceProfile",
        "serviceprofiles",
        true,
    ),
    (
        "split.smi-spec.io/v1alpha1",
        "TrafficSplit",
        "trafficsplits",
        true,
    ),
    (
        "split.smi-spec.io/v1alpha2",
        "TrafficSplit",
        "trafficsplits",
        true,
    ),
    (
        "split.smi-spec.io/v1alpha3",
        "TrafficSplit",
        "trafficsplits",
        true,
    ),
    (
        "split.smi-spec.io/v1alpha4",
        "TrafficSplit",
        "trafficsplits",
        true,
    ),
    ("policy.linkerd.io/v1beta1", "Server", "servers", true),
    ("policy.linkerd.io/v1beta2", "Server", "servers", true),
    ("policy.linkerd.io/v1beta3", "Server", "servers", true),
    (
        "policy.linkerd.io/v1alpha1",
        "AuthorizationPolicy",
        "authorizationpolicies",
        true,
    ),
    (
        "policy.linkerd.io/v1alpha1",
        "MeshTLSAuthentication",
        "meshtlsauthentications",
        true,
    ),
    (
        "policy.linkerd.io/v1alpha1",
        "NetworkAuthentication",
        "networkauthentications",
        true,
    ),
    ("policy.linkerd.io/v1beta1", "HTTPRoute", "httproutes", true),
    ("policy.linkerd.io/v1beta2", "HTTPRoute", "httproutes", true),
    ("policy.linkerd.io/v1beta3", "HTTPRoute", "httproutes", true),
    (
        "gateway.networking.k8s.io/v1",
        "HTTPRoute",
        "httproutes",
        true,
    ),
    (
        "gateway.networking.k8s.io/v1beta1",
        "HTTPRoute",
        "httproutes",
        true,
    ),
    (
        "gateway.networking.k8s.io/v1",
        "GRPCRoute",
        "grpcroutes",
        true,
    ),
    ("weft.dev/v1alpha1", "Workload", "workloads", true),
];

/// The resource types served, looked up by kind (for `apply`) or by path.
#[derive(Debug, Clone)]
pub(super) struct Registry {
    types: Vec<ResourceType>,
}

impl Registry {
    /// The built-in kinds (see the module docs of `kube_api`).
    pub(super) fn built_in() -> Self {
        let mut registry = Self { types: Vec::new() };
        for (api_version, kind, plural, namespaced) in BUILT_IN {
            registry.register(api_version, kind, plural, *namespaced);
        }
        registry
    }

    /// Serves `kind` as `plural` at `api_version`; a second version of an
    /// already registered `(group, plural)` joins the same resource.
    pub(super) fn register(
        &mut self,
        api_version: &str,
        kind: &str,
        plural: &str,
        namespaced: bool,
    ) -> ResourceId {
        let (group, version) = split_api_version(api_version);
        if let Some(index) = self
            .types
            .iter()
            .position(|resource| resource.group == group && resource.plural == plural)
        {
            let resource = &mut self.types[index];
            if !resource.versions.iter().any(|known| known == version) {
                resource.versions.push(version.to_string());
            }
            return ResourceId(index);
        }
        self.types.push(ResourceType {
            group: group.to_string(),
            versions: vec![version.to_string()],
            kind: kind.to_string(),
            plural: plural.to_string(),
            namespaced,
        });
        ResourceId(self.types.len() - 1)
    }

    /// The type with this id.
    pub(super) fn get(&self, id: ResourceId) -> &ResourceType {
        &self.types[id.0]
    }

    /// How many types are registered (ids are `0..len`).
    pub(super) fn len(&self) -> usize {
        self.types.len()
    }

    /// Every registered type with its id.
    pub(super) fn iter(&self) -> impl Iterator<Item = (ResourceId, &ResourceType)> {
        self.types
            .iter()
            .enumerate()
            .map(|(index, resource)| (ResourceId(index), resource))
    }

    /// The type of objects of `kind` at `api_version` (the version must be served).
    pub(super) fn by_kind(&self, api_version: &str, kind: &str) -> Option<ResourceId> {
        let (group, version) = split_api_version(api_version);
        self.iter()
            .find(|(_, resource)| {
                resource.group == group
                    && resource.kind == kind
                    && resource.versions.iter().any(|known| known == version)
            })
            .map(|(id, _)| id)
    }

    /// The type served at `/…/group/version/plural`.
    pub(super) fn by_path(&self, group: &str, version: &str, plural: &str) -> Option<ResourceId> {
        self.iter()
            .find(|(_, resource)| {
                resource.group == group
                    && resource.plural == plural
                    && resource.versions.iter().any(|known| known == version)
            })
            .map(|(id, _)| id)
    }
}

/// What a request path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Route {
    /// `/version`.
    Version,
    /// `/healthz`, `/livez`, `/readyz`.
    Health,
    /// `/api`: the core group's versions.
    CoreVersions,
    /// `/apis`: the groups.
    Groups,
    /// `/api/v1`, `/apis/group/version`: the resources of a group version.
    Resources { group: String, version: String },
    /// A collection or an object.
    Resource(ResourcePath),
    /// Anything else.
    Unknown,
}

/// A collection (`name` none) or object path.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct ResourcePath {
    pub(super) group: String,
    pub(super) version: String,
    /// From `/namespaces/{namespace}/…`.
    pub(super) namespace: Option<String>,
    pub(super) plural: String,
    pub(super) name: Option<String>,
    /// `status`, `scale`, …
    pub(super) subresource: Option<String>,
}

/// Parses a request path: `/api/v1/…`, `/apis/{group}/{version}/…`, then
/// `[namespaces/{ns}/]{plural}[/{name}[/{subresource}]]`. Note that
/// `/api/v1/namespaces/{name}` is the Namespace object itself.
pub(super) fn parse_path(path: &str) -> Route {
    let segments: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|segment| !segment.is_empty())
        .collect();
    let (group, version, rest) = match segments.as_slice() {
        ["version"] => return Route::Version,
        ["healthz" | "livez" | "readyz"] => return Route::Health,
        ["api"] => return Route::CoreVersions,
        ["apis"] => return Route::Groups,
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Route::Unknown,
    };
    let resource = |namespace: Option<&str>, rest: &[&str]| {
        let path = ResourcePath {
            group: group.to_string(),
            version: version.to_string(),
            namespace: namespace.map(str::to_string),
            plural: rest[0].to_string(),
            name: rest.get(1).map(|name| name.to_string()),
            subresource: rest.get(2).map(|name| name.to_string()),
        };
        Route::Resource(path)
    };
    match rest {
        [] => Route::Resources {
            group: group.to_string(),
            version: version.to_string(),
        },
        ["namespaces", namespace, rest @ ..] if !rest.is_empty() && rest.len() <= 3 => {
            resource(Some(namespace), rest)
        }
        rest if rest.len() <= 3 => resource(None, rest),
        _ => Route::Unknown,
    }
}

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum LabelRequirement {
    /// `key=value`, `key==value`, `key in (a,b)`.
    In(String, Vec<String>),
    /// `key!=value`, `key notin (a,b)` (also true when the label is absent).
    NotIn(String, Vec<String>),
    /// `key`.
    Exists(String),
    /// `!key`.
    NotExists(String),
}

/// Parses a label selector (`a=b,c!=d,e,!f,g in (x,y),h notin (z)`).
pub(super) fn parse_label_selector(selector: &str) -> Result<Vec<LabelRequirement>, String> {
    let mut requirements = Vec::new();
    for term in split_selector_terms(selector) {
        let term = term.trim();
        if term.is_empty() {
            continue;
        }
        let requirement = if let Some((key, values)) = split_set_term(term, " notin ") {
            LabelRequirement::NotIn(key, values?)
        } else if let Some((key, values)) = split_set_term(term, " in ") {
            LabelRequirement::In(key, values?)
        } else if let Some((key, value)) = term.split_once("!=") {
            LabelRequirement::NotIn(key.trim().to_string(), vec![value.trim().to_string()])
        } else if let Some((key, value)) = term.split_once("==").or_else(|| term.split_once('=')) {
            LabelRequirement::In(key.trim().to_string(), vec![value.trim().to_string()])
        } else if let Some(key) = term.strip_prefix('!') {
            LabelRequirement::NotExists(key.trim().to_string())
        } else {
            LabelRequirement::Exists(term.to_string())
        };
        let key = match &requirement {
            LabelRequirement::In(key, _)
            | LabelRequirement::NotIn(key, _)
            | LabelRequirement::Exists(key)
            | LabelRequirement::NotExists(key) => key,
        };
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(format!("unable to parse requirement: {term:?}"));
        }
        requirements.push(requirement);
    }
    Ok(requirements)
}

/// Splits on commas outside parentheses.
fn split_selector_terms(selector: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (index, character) in selector.char_indices() {
        match character {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                terms.push(&selector[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    terms.push(&selector[start..]);
    terms
}

/// `key in (a, b)` → `("key", ["a", "b"])` when `term` has `operator`.
fn split_set_term(term: &str, operator: &str) -> Option<(String, Result<Vec<String>, String>)> {
    let (key, values) = term.split_once(operator)?;
    let values = values
        .trim()
        .strip_prefix('(')
        .and_then(|values| values.strip_suffix(')'))
        .map(|values| {
            values
                .split(',')
                .map(|value| value.trim().to_string())
                .collect()
        })
        .ok_or_else(|| format!("unable to parse requirement: {term:?}"));
    Some((key.trim().to_string(), values))
}

/// Whether `labels` (an object's `metadata.labels`, maybe absent) satisfy every requirement.
pub(super) fn labels_match(requirements: &[LabelRequirement], labels: Option<&Value>) -> bool {
    let label = |key: &str| {
        labels
            .and_then(|labels| labels.get(key))
            .and_then(Value::as_str)
    };
    requirements.iter().all(|requirement| match requirement {
        LabelRequirement::In(key, values) => {
            label(key).is_some_and(|value| values.iter().any(|wanted| wanted == value))
        }
        LabelRequirement::NotIn(key, values) => {
            label(key).is_none_or(|value| values.iter().all(|unwanted| unwanted != value))
        }
        LabelRequirement::Exists(key) => label(key).is_some(),
        LabelRequirement::NotExists(key) => label(key).is_none(),
    })
}

/// One requirement of a field selector: `path=value` or `path!=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FieldRequirement {
    /// Dotted path, `metadata.name`.
    pub(super) path: String,
    pub(super) value: String,
    /// `!=`.
    pub(super) negated: bool,
}

/// Parses a field selector (`metadata.name=a,metadata.namespace!=b`).
pub(super) fn parse_field_selector(selector: &str) -> Result<Vec<FieldRequirement>, String> {
    selector
        .split(',')
        .map(str::trim)
        .filter(|term| !term.is_empty())
        .map(|term| {
            let (path, value, negated) = if let Some((path, value)) = term.split_once("!=") {
                (path, value, true)
            } else if let Some((path, value)) =
                term.split_once("==").or_else(|| term.split_once('='))
            {
                (path, value, false)
            } else {
                return Err(format!("invalid selector: {term:?}; can't understand it"));
            };
            Ok(FieldRequirement {
                path: path.trim().to_string(),
                value: value.trim().to_string(),
                negated,
            })
        })
        .collect()
}

/// Whether `object` satisfies every field requirement (an absent field is `""`).
pub(super) fn fields_match(requirements: &[FieldRequirement], object: &Value) -> bool {
    requirements.iter().all(|requirement| {
        let field = requirement
            .path
            .split('.')
            .try_fold(object, |value, key| value.get(key));
        let text = match field {
            Some(Value::String(text)) => text.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        (text == requirement.value) != requirement.negated
    })
}

/// Where a paginated list goes on: the revision of its first page and the
/// last `(namespace, name)` served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ContinueToken {
    pub(super) revision: u64,
    pub(super) namespace: String,
    pub(super) name: String,
}

impl ContinueToken {
    /// Opaque base64 JSON, as the real server's tokens look.
    pub(super) fn encode(&self) -> String {
        let json = serde_json::json!({
            "v": "meta.k8s.io/v1",
            "rv": self.revision,
            "ns": self.namespace,
            "name": self.name,
        });
        base64::engine::general_purpose::STANDARD.encode(json.to_string())
    }

    /// The token back, or `None` when it is not one of ours.
    pub(super) fn decode(token: &str) -> Option<Self> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(token)
            .ok()?;
        let json: Value = serde_json::from_slice(&bytes).ok()?;
        Some(Self {
            revision: json.get("rv")?.as_u64()?,
            namespace: json.get("ns")?.as_str()?.to_string(),
            name: json.get("name")?.as_str()?.to_string(),
        })
    }
}

/// `2026-12-04T20:30:49Z` for seconds since the Unix epoch.
pub(super) fn rfc3339(unix_seconds: u64) -> String {
    let days = (unix_seconds / 86_400) as i64;
    let seconds_of_day = unix_seconds % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        seconds_of_day / 3600,
        seconds_of_day / 60 % 60,
        seconds_of_day % 60
    )
}

/// The reason a real API server gives with an HTTP status code.
pub(super) fn status_reason(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        410 => "Expired",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    }
}

/// A `v1 Status` failure body.
pub(super) fn status_body(code: u16, reason: &str, message: &str, details: Option<Value>) -> Value {
    let mut status = serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    });
    if let Some(details) = details {
        status["details"] = details;
    }
    status
}

/// RFC 7386 JSON merge patch of `patch` into `target`.
pub(super) fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// RFC 6902 JSON patch: `add`, `remove`, `replace`, `move`, `copy`, `test`.
pub(super) fn json_patch(target: &mut Value, operations: &Value) -> Result<(), String> {
    let operations = operations
        .as_array()
        .ok_or_else(|| "a JSON patch is an array of operations".to_string())?;
    for operation in operations {
        let text = |field: &str| {
            operation[field]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("operation {operation} has no {field:?}"))
        };
        let path = text("path")?;
        match text("op")?.as_str() {
            "add" => pointer_add(target, &path, operation["value"].clone())?,
            "remove" => {
                pointer_remove(target, &path)?;
            }
            "replace" => {
                let slot = target
                    .pointer_mut(&path)
                    .ok_or_else(|| format!("replace: {path} does not exist"))?;
                *slot = operation["value"].clone();
            }
            "move" => {
                let value = pointer_remove(target, &text("from")?)?;
                pointer_add(target, &path, value)?;
            }
            "copy" => {
                let from = text("from")?;
                let value = target
                    .pointer(&from)
                    .cloned()
                    .ok_or_else(|| format!("copy: {from} does not exist"))?;
                pointer_add(target, &path, value)?;
            }
            "test" => {
                if target.pointer(&path) != Some(&operation["value"]) {
                    return Err(format!("test failed at {path}"));
                }
            }
            other => return Err(format!("unknown JSON patch operation {other:?}")),
        }
    }
    Ok(())
}

/// The parent container of a JSON pointer and its last (unescaped) token.
fn pointer_parent<'a>(
    target: &'a mut Value,
    path: &str,
) -> Result<(&'a mut Value, String), String> {
    let (parent, token) = path
        .rsplit_once('/')
        .ok_or_else(|| format!("{path:?} is not a JSON pointer"))?;
    let token = token.replace("~1", "/").replace("~0", "~");
    let parent = target
        .pointer_mut(parent)
        .ok_or_else(|| format!("{parent} does not exist"))?;
    Ok((parent, token))
}

fn pointer_add(target: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        *target = value;
        return Ok(());
    }
    match pointer_parent(target, path)? {
        (Value::Object(map), key) => {
            map.insert(key, value);
        }
        (Value::Array(items), index) if index == "-" => items.push(value),
        (Value::Array(items), index) => match index.parse::<usize>() {
            Ok(index) if index <= items.len() => items.insert(index, value),
            _ => return Err(format!("add: bad array index in {path}")),
        },
        _ => return Err(format!("add: the parent of {path} is not a container")),
    }
    Ok(())
}

fn pointer_remove(target: &mut Value, path: &str) -> Result<Value, String> {
    let removed = match pointer_parent(target, path)? {
        (Value::Object(map), key) => map.remove(&key),
        (Value::Array(items), index) => match index.parse::<usize>() {
            Ok(index) if index < items.len() => Some(items.remove(index)),
            _ => None,
        },
        _ => None,
    };
    removed.ok_or_else(|| format!("remove: {path} does not exist"))
}

/// The query parameters of a request (last value wins).
pub(super) fn parse_query(query: &str) -> BTreeMap<String, String> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_name_collections_objects_and_namespaces() {
        let resource = |group: &str, namespace: Option<&str>, plural: &str, name: Option<&str>| {
            Route::Resource(ResourcePath {
                group: group.into(),
                version: "v1".into(),
                namespace: namespace.map(Into::into),
                plural: plural.into(),
                name: name.map(Into::into),
                subresource: None,
            })
        };
        let cases = [
            ("/version", Route::Version),
            ("/api", Route::CoreVersions),
            ("/apis", Route::Groups),
            ("/api/v1/pods", resource("", None, "pods", None)),
            ("/api/v1/namespaces", resource("", None, "namespaces", None)),
            (
                "/api/v1/namespaces/web",
                resource("", None, "namespaces", Some("web")),
            ),
            (
                "/api/v1/namespaces/web/pods",
                resource("", Some("web"), "pods", None),
            ),
            (
                "/api/v1/namespaces/web/pods/a",
                resource("", Some("web"), "pods", Some("a")),
            ),
            (
                "/apis/apps/v1/replicasets",
                resource("apps", None, "replicasets", None),
            ),
            (
                "/apis/apps/v1/namespaces/x/replicasets/r",
                resource("apps", Some("x"), "replicasets", Some("r")),
            ),
            (
                "/apis/rbac.authorization.k8s.io/v1/clusterroles/admin",
                resource(
                    "rbac.authorization.k8s.io",
                    None,
                    "clusterroles",
                    Some("admin"),
                ),
            ),
            (
                "/apis/apps/v1",
                Route::Resources {
                    group: "apps".into(),
                    version: "v1".into(),
                },
            ),
            ("/healthz", Route::Health),
            ("/metrics", Route::Unknown),
            ("/api/v1/namespaces/x/pods/a/status/extra", Route::Unknown),
        ];
        for (path, expected) in cases {
            assert_eq!(parse_path(path), expected, "{path}");
        }
        let Route::Resource(status) = parse_path("/api/v1/namespaces/x/pods/a/status") else {
            panic!("a subresource path");
        };
        assert_eq!(status.subresource.as_deref(), Some("status"));
    }

    #[test]
    fn label_selectors_match_like_the_api_server() {
        let labels = json!({"app": "web", "tier": "front"});
        let cases = [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app=db", false),
            ("app!=db", true),
            ("app!=web", false),
            ("missing!=x", true),
            ("app", true),
            ("missing", false),
            ("!missing", true),
            ("!app", false),
            ("app=web,tier=front", true),
            ("app=web,tier=back", false),
            ("app in (db, web)", true),
            ("app in (db)", false),
            ("app notin (db,cache),tier", true),
            ("app notin (web)", false),
        ];
        for (selector, expected) in cases {
            let requirements = parse_label_selector(selector).expect(selector);
            assert_eq!(
                labels_match(&requirements, Some(&labels)),
                expected,
                "{selector}"
            );
        }
        assert!(labels_match(&parse_label_selector("!app").unwrap(), None));
        assert!(parse_label_selector("a b").is_err());
        assert!(parse_label_selector("a in x").is_err());
    }

    #[test]
    fn field_selectors_read_dotted_paths() {
        let pod =
            json!({"metadata": {"name": "a", "namespace": "web"}, "status": {"phase": "Running"}});
        let cases = [
            ("metadata.name=a", true),
            ("metadata.name=b", false),
            ("metadata.namespace=web,metadata.name=a", true),
            ("metadata.namespace!=web", false),
            ("status.phase==Running", true),
            ("spec.nodeName=", true),
        ];
        for (selector, expected) in cases {
            let requirements = parse_field_selector(selector).expect(selector);
            assert_eq!(fields_match(&requirements, &pod), expected, "{selector}");
        }
        assert!(parse_field_selector("metadata.name").is_err());
    }

    #[test]
    fn registry_serves_one_resource_at_several_versions() {
        let mut registry = Registry::built_in();
        let v1alpha1 = registry.by_kind("split.smi-spec.io/v1alpha1", "TrafficSplit");
        let v1alpha4 = registry.by_path("split.smi-spec.io", "v1alpha4", "trafficsplits");
        assert!(v1alpha1.is_some());
        assert_eq!(v1alpha1, v1alpha4);
        assert_ne!(
            registry.by_kind("policy.linkerd.io/v1beta3", "HTTPRoute"),
            registry.by_kind("gateway.networking.k8s.io/v1", "HTTPRoute")
        );
        assert_eq!(
            registry.by_kind("v1", "Pod"),
            registry.by_path("", "v1", "pods")
        );
        assert_eq!(registry.by_kind("v2", "Pod"), None);
        let widgets = registry.register("example.com/v1", "Widget", "widgets", false);
        assert_eq!(
            registry.register("example.com/v2", "Widget", "widgets", false),
            widgets
        );
        assert_eq!(
            registry.by_path("example.com", "v2", "widgets"),
            Some(widgets)
        );
        assert!(!registry.get(widgets).namespaced);
    }

    #[test]
    fn continue_tokens_round_trip() {
        let token = ContinueToken {
            revision: 42,
            namespace: "web".into(),
            name: "pod-7".into(),
        };
        assert_eq!(ContinueToken::decode(&token.encode()), Some(token));
        assert_eq!(ContinueToken::decode("not a token"), None);
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let cases = [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_796_416_249, "2026-12-04T20:30:49Z"),
        ];
        for (seconds, expected) in cases {
            assert_eq!(rfc3339(seconds), expected);
        }
    }

    #[test]
    fn json_patches_follow_rfc_6902() {
        let target = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"ports": [80]}});
        let cases = [
            (
                json!([{"op": "add", "path": "/metadata/labels/b", "value": "2"}]),
                Ok(json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"ports": [80]}})),
            ),
            (
                json!([{"op": "add", "path": "/spec/ports/-", "value": 81}]),
                Ok(json!({"metadata": {"labels": {"a": "1"}}, "spec": {"ports": [80, 81]}})),
            ),
            (
                json!([{"op": "add", "path": "/spec/ports/0", "value": 79}]),
                Ok(json!({"metadata": {"labels": {"a": "1"}}, "spec": {"ports": [79, 80]}})),
            ),
            (
                json!([{"op": "remove", "path": "/metadata/labels/a"}]),
                Ok(json!({"metadata": {"labels": {}}, "spec": {"ports": [80]}})),
            ),
            (
                json!([{"op": "replace", "path": "/spec/ports/0", "value": 8080}]),
                Ok(json!({"metadata": {"labels": {"a": "1"}}, "spec": {"ports": [8080]}})),
            ),
            (
                json!([{"op": "move", "from": "/metadata/labels/a", "path": "/metadata/labels/c~1d"}]),
                Ok(json!({"metadata": {"labels": {"c/d": "1"}}, "spec": {"ports": [80]}})),
            ),
            (
                json!([{"op": "copy", "from": "/spec/ports", "path": "/spec/targets"}]),
                Ok(
                    json!({"metadata": {"labels": {"a": "1"}}, "spec": {"ports": [80], "targets": [80]}}),
                ),
            ),
            (
                json!([{"op": "test", "path": "/spec/ports/0", "value": 80}]),
                Ok(target.clone()),
            ),
            (
                json!([{"op": "test", "path": "/spec/ports/0", "value": 81}]),
                Err(()),
            ),
            (json!([{"op": "remove", "path": "/missing"}]), Err(())),
            (
                json!([{"op": "replace", "path": "/missing/x", "value": 1}]),
                Err(()),
            ),
            (json!([{"op": "frobnicate", "path": "/a"}]), Err(())),
            (json!({"op": "add"}), Err(())),
        ];
        for (patch, expected) in cases {
            let mut patched = target.clone();
            let result = json_patch(&mut patched, &patch)
                .map(|()| patched)
                .map_err(|_| ());
            assert_eq!(result, expected, "{patch}");
        }
    }

    #[test]
    fn merge_patches_replace_add_and_remove() {
        let mut target = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": [1]});
        merge_patch(
            &mut target,
            &json!({"a": null, "b": {"c": 5}, "e": [2], "f": "x"}),
        );
        assert_eq!(target, json!({"b": {"c": 5, "d": 3}, "e": [2], "f": "x"}));
    }
}
