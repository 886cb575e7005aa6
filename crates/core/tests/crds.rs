//! The CRDs weft installs (`weft_core::crds`): their names and versions,
//! that every schema is structural, that `kubernetes-validate --strict`
//! accepts each CRD for Kubernetes 1.33 and 1.37, and that the repository's
//! custom resources (examples, docs) pass the schemas (and CEL rules) while
//! bad ones are refused — by the schema and by weft's own parser alike.
//!
//! The validators come from `scripts/k8s-tools.sh` (a venv at
//! `$WEFT_K8S_TOOLS` or `target/k8s-tools`); without it these tests print
//! "skipped" (and fail when `CI` is set).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Map, Value, json};
use weft_core::crds;

mod common;

use common::{k8s_tools, kubernetes_validate_strict, skip, workspace_root};

/// The venv with what scripts/validate-crs.py imports (openapi-schema-validator,
/// cel-python, pyyaml), or `None` (after saying why) outside CI.
fn custom_resource_tools() -> Option<PathBuf> {
    let bin = k8s_tools()?;
    let imports = Command::new(bin.join("python3"))
        .args(["-c", "import celpy, openapi_schema_validator, yaml"])
        .output()
        .expect("run the venv's python3");
    if imports.status.success() {
        return Some(bin);
    }
    skip(&format!(
        "{} lacks cel-python or openapi-schema-validator",
        bin.display()
    ))
}

fn crds_as_json() -> Vec<Value> {
    crds::custom_resource_definitions()
        .iter()
        .map(|crd| serde_json::to_value(crd).expect("a CRD serializes"))
        .collect()
}

/// A scratch directory for this test.
fn scratch(name: &str) -> PathBuf {
    let directory = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("crds")
        .join(name);
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).expect("scratch directory");
    directory
}

/// Every CRD as one multi-document YAML file.
fn write_crds(directory: &Path) -> PathBuf {
    let documents: Vec<String> = crds::custom_resource_definitions()
        .iter()
        .map(|crd| serde_saphyr::to_string(crd).expect("a CRD serializes to YAML"))
        .collect();
    let path = directory.join("crds.yaml");
    std::fs::write(&path, documents.join("---\n")).expect("write crds.yaml");
    path
}

#[test]
fn crds_have_linkerds_names_and_versions() {
    let expected: &[(&str, &[&str], &str, &[&str])] = &[
        (
            "serviceprofiles.linkerd.io",
            &["v1alpha1", "v1alpha2"],
            "v1alpha2",
            &["sp"],
        ),
        (
            "trafficsplits.split.smi-spec.io",
            &["v1alpha1"],
            "v1alpha1",
            &["ts"],
        ),
        (
            "servers.policy.linkerd.io",
            &["v1beta1", "v1beta2", "v1beta3"],
            "v1beta3",
            &["srv"],
        ),
        (
            "authorizationpolicies.policy.linkerd.io",
            &["v1alpha1"],
            "v1alpha1",
            &["authzpolicy"],
        ),
        (
            "meshtlsauthentications.policy.linkerd.io",
            &["v1alpha1"],
            "v1alpha1",
            &["meshtlsauthn"],
        ),
        (
            "networkauthentications.policy.linkerd.io",
            &["v1alpha1"],
            "v1alpha1",
            &["netauthn", "networkauthn"],
        ),
        (
            "httproutes.policy.linkerd.io",
            &["v1beta1", "v1beta2", "v1beta3"],
            "v1beta3",
            &[],
        ),
        ("workloads.weft.dev", &["v1alpha1"], "v1alpha1", &["wl"]),
    ];
    let generated = crds::try_custom_resource_definitions().expect("every CRD generates");
    assert_eq!(generated.len(), expected.len());
    for (crd, (name, versions, storage, short_names)) in generated.iter().zip(expected) {
        assert_eq!(crd.metadata.name.as_deref(), Some(*name));
        assert_eq!(crd.spec.scope, "Namespaced", "{name}");
        let served: Vec<&str> = crd
            .spec
            .versions
            .iter()
            .filter(|version| version.served)
            .map(|version| version.name.as_str())
            .collect();
        assert_eq!(&served, versions, "{name}");
        let stored: Vec<&str> = crd
            .spec
            .versions
            .iter()
            .filter(|version| version.storage)
            .map(|version| version.name.as_str())
            .collect();
        assert_eq!(stored, [*storage], "{name}");
        assert_eq!(
            crd.spec.names.short_names.clone().unwrap_or_default(),
            short_names
                .iter()
                .map(|name| name.to_string())
                .collect::<Vec<_>>(),
            "{name}"
        );
        assert_eq!(
            crd.spec.names.categories,
            Some(vec![crds::CATEGORY.to_string()]),
            "{name}"
        );
        let schemas: Vec<_> = crd
            .spec
            .versions
            .iter()
            .map(|version| &version.schema)
            .collect();
        assert!(
            schemas.windows(2).all(|pair| pair[0] == pair[1]),
            "{name}: every version has the same schema (no conversion needed)"
        );
    }
}

/// The keywords a CRD schema (JSONSchemaProps) may use.
const SCHEMA_KEYWORDS: &[&str] = &[
    "type",
    "format",
    "description",
    "default",
    "enum",
    "required",
    "properties",
    "items",
    "additionalProperties",
    "anyOf",
    "oneOf",
    "allOf",
    "not",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "pattern",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "nullable",
    "x-kubernetes-int-or-string",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-validations",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
];

/// Keywords a schema inside `anyOf`/`oneOf`/`allOf`/`not` may not set
/// (structural schema rule 3), the int-or-string pattern aside.
const NOT_IN_JUNCTIONS: &[&str] = &[
    "type",
    "description",
    "default",
    "additionalProperties",
    "nullable",
];

/// Every place `schema` breaks Kubernetes' structural-schema rules, by path.
fn structural_violations(schema: &Map<String, Value>, path: &str, violations: &mut Vec<String>) {
    for keyword in schema.keys() {
        if !SCHEMA_KEYWORDS.contains(&keyword.as_str()) {
            violations.push(format!("{path}: keyword {keyword:?}"));
        }
    }
    let int_or_string = schema.get("x-kubernetes-int-or-string") == Some(&json!(true));
    let free_form = schema.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true));
    match schema.get("type") {
        Some(Value::String(_)) => {}
        Some(other) => violations.push(format!("{path}: type {other} is not one type")),
        None if int_or_string || free_form => {}
        None => violations.push(format!("{path}: no type")),
    }
    if int_or_string && schema.contains_key("type") {
        violations.push(format!("{path}: int-or-string with a type"));
    }
    if schema.contains_key("properties") && schema.contains_key("additionalProperties") {
        violations.push(format!("{path}: properties and additionalProperties"));
    }
    for rule in schema
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let has = |field: &str| {
            rule.get(field)
                .and_then(Value::as_str)
                .is_some_and(|text| !text.is_empty())
        };
        if !has("rule") || !has("message") {
            violations.push(format!("{path}: CEL rule without rule or message: {rule}"));
        }
    }
    let properties = schema.get("properties").and_then(Value::as_object);
    for (name, property) in properties.into_iter().flatten() {
        match property.as_object() {
            Some(property) => {
                structural_violations(property, &format!("{path}.{name}"), violations)
            }
            None => violations.push(format!("{path}.{name}: not a schema")),
        }
    }
    for keyword in ["items", "additionalProperties"] {
        match schema.get(keyword) {
            None => {}
            Some(Value::Object(child)) => {
                structural_violations(child, &format!("{path}[{keyword}]"), violations)
            }
            Some(other) => violations.push(format!("{path}.{keyword}: {other} is not a schema")),
        }
    }
    for keyword in ["anyOf", "oneOf", "allOf"] {
        let branches = schema.get(keyword).and_then(Value::as_array);
        let is_int_or_string_pattern = keyword == "anyOf"
            && int_or_string
            && schema.get(keyword) == Some(&json!([{"type": "integer"}, {"type": "string"}]));
        if is_int_or_string_pattern {
            continue;
        }
        for (index, branch) in branches.into_iter().flatten().enumerate() {
            junction_violations(
                branch,
                schema,
                &format!("{path}.{keyword}[{index}]"),
                violations,
            );
        }
    }
}

/// Structural rules 2 and 3 inside a junction: no types, descriptions,
/// defaults, nullable; every property it names also specified outside.
fn junction_violations(
    branch: &Value,
    outer: &Map<String, Value>,
    path: &str,
    violations: &mut Vec<String>,
) {
    let Some(branch) = branch.as_object() else {
        violations.push(format!("{path}: not a schema"));
        return;
    };
    for keyword in NOT_IN_JUNCTIONS {
        if branch.contains_key(*keyword) {
            violations.push(format!("{path}: {keyword} inside a junction"));
        }
    }
    let outer_properties = outer.get("properties").and_then(Value::as_object);
    let required = branch
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string);
    let properties = branch
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|properties| properties.keys().cloned());
    for name in required.chain(properties) {
        if !outer_properties.is_some_and(|properties| properties.contains_key(&name)) {
            violations.push(format!(
                "{path}: {name:?} is not a property outside the junction"
            ));
        }
    }
}

#[test]
fn schemas_are_structural() {
    let mut violations = Vec::new();
    for crd in crds_as_json() {
        let name = crd["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let text = crd.to_string();
        assert!(!text.contains("\"$ref\""), "{name}: a $ref is left");
        for version in crd["spec"]["versions"].as_array().into_iter().flatten() {
            let schema = &version["schema"]["openAPIV3Schema"];
            let path = format!("{name}/{}", version["name"].as_str().unwrap_or_default());
            let schema = schema.as_object().expect("every version has a schema");
            structural_violations(schema, &path, &mut violations);
            assert_eq!(
                schema["properties"]["metadata"],
                json!({"type": "object"}),
                "{path}: metadata is the API server's"
            );
            assert_eq!(schema["required"], json!(["spec"]), "{path}");
        }
    }
    assert!(
        violations.is_empty(),
        "not structural:\n{}",
        violations.join("\n")
    );
}

#[test]
fn crds_pass_kubernetes_validate() {
    let Some(tools) = k8s_tools() else { return };
    let directory = scratch("kubernetes-validate");
    let crds = write_crds(&directory);
    kubernetes_validate_strict(&tools, &[crds], &["1.33.0", "1.37.0"]);
}

// ---- custom resources against the schemas ----------------------------------

/// `(apiVersion, kind)` of every served CRD version.
fn crd_types() -> Vec<(String, String)> {
    let mut types = Vec::new();
    for crd in crds::custom_resource_definitions() {
        for version in &crd.spec.versions {
            types.push((
                format!("{}/{}", crd.spec.group, version.name),
                crd.spec.names.kind.clone(),
            ));
        }
    }
    types
}

fn type_of(document: &Value) -> (String, String) {
    let text = |field: &str| document[field].as_str().unwrap_or_default().to_string();
    (text("apiVersion"), text("kind"))
}

/// The storage version's `apiVersion` for a document of a CRD kind: what a
/// watcher of that version (weft's Kubernetes source) reads, whichever
/// served version it was written in (every version has the same schema).
fn as_stored(document: &Value) -> Value {
    let (api_version, kind) = type_of(document);
    let mut stored = document.clone();
    for crd in crds::custom_resource_definitions() {
        let group = &crd.spec.group;
        let written_here = crd.spec.names.kind == kind
            && crd
                .spec
                .versions
                .iter()
                .any(|version| api_version == format!("{group}/{}", version.name));
        let storage = crd.spec.versions.iter().find(|version| version.storage);
        if let (true, Some(storage)) = (written_here, storage) {
            stored["apiVersion"] = json!(format!("{group}/{}", storage.name));
        }
    }
    stored
}

/// Whether weft's own parser (the mesh file's) accepts a document of a CRD
/// kind, as stored.
fn weft_accepts(document: &Value) -> Result<(), String> {
    let document = &as_stored(document);
    use weft_core::policy::{
        AuthorizationPolicy, MeshTLSAuthentication, NetworkAuthentication, Server,
    };
    use weft_core::{HttpRoute, Kind, ServiceProfile, TrafficSplit, Workload};
    fn parse<T: serde::de::DeserializeOwned>(document: &Value) -> Result<T, String> {
        serde_json::from_value(document.clone()).map_err(|error| error.to_string())
    }
    let (api_version, kind) = type_of(document);
    let checked = |result: Result<(), weft_core::policy::FieldError>| {
        result.map_err(|error| error.to_string())
    };
    match Kind::from_type(&api_version, &kind).map_err(|error| error.to_string())? {
        Kind::Workload => parse::<Workload>(document).map(drop),
        Kind::ServiceProfile => parse::<ServiceProfile>(document).map(drop),
        Kind::TrafficSplit => parse::<TrafficSplit>(document).map(drop),
        Kind::HttpRoute => parse::<HttpRoute>(document).map(drop),
        Kind::Server => checked(parse::<Server>(document)?.validate()),
        Kind::AuthorizationPolicy => checked(parse::<AuthorizationPolicy>(document)?.validate()),
        Kind::MeshTLSAuthentication => {
            checked(parse::<MeshTLSAuthentication>(document)?.validate())
        }
        Kind::NetworkAuthentication => {
            checked(parse::<NetworkAuthentication>(document)?.validate())
        }
        other => Err(format!("{other} is not a CRD kind")),
    }
}

/// The YAML documents of `text`, parsed; a markdown file's ```yaml blocks.
fn documents_of(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).expect("read a resource file");
    let yaml = if path.extension().is_some_and(|extension| extension == "md") {
        let mut blocks = Vec::new();
        let mut block: Option<Vec<&str>> = None;
        for line in text.lines() {
            match (&mut block, line.trim_start()) {
                (None, fence) if fence.starts_with("```yaml") || fence.starts_with("```yml") => {
                    block = Some(Vec::new())
                }
                (Some(lines), "```") => {
                    blocks.push(lines.join("\n"));
                    block = None;
                }
                (Some(lines), _) => lines.push(line),
                (None, _) => {}
            }
        }
        // A block that is not whole YAML documents (an excerpt) is prose.
        blocks
            .iter()
            .filter(|block| serde_saphyr::from_multiple::<Value>(block).is_ok())
            .cloned()
            .collect::<Vec<_>>()
            .join("\n---\n")
    } else {
        text
    };
    serde_saphyr::from_multiple::<Value>(&yaml)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        .into_iter()
        .filter(|document| !document.is_null())
        .collect()
}

/// The repository's resource files: examples and docs (the demo's mesh file
/// is a template).
fn repository_resource_files() -> Vec<PathBuf> {
    let root = workspace_root();
    let mut files = Vec::new();
    for (directory, extension) in [
        ("examples", "yaml"),
        ("crates/controller/examples", "yaml"),
        ("docs", "md"),
        (".", "md"),
    ] {
        let Ok(entries) = std::fs::read_dir(root.join(directory)) else {
            continue;
        };
        let mut found: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|found| found == extension))
            .collect();
        found.sort();
        files.extend(found);
    }
    files
}

/// Runs scripts/validate-crs.py on `resources` (one document per line of
/// its report, in order) and returns (status, report).
fn validate_crs(tools: &Path, directory: &Path, resources: &[PathBuf]) -> (bool, String) {
    let crds = write_crds(directory);
    let output = Command::new(tools.join("python3"))
        .arg(workspace_root().join("scripts/validate-crs.py"))
        .arg("--strict")
        .arg(&crds)
        .args(resources)
        .output()
        .expect("run scripts/validate-crs.py");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), report)
}

/// Writes documents as JSON lines of one YAML stream (JSON is YAML).
fn write_documents(path: &Path, documents: &[Value]) {
    let text: Vec<String> = documents.iter().map(Value::to_string).collect();
    std::fs::write(path, text.join("\n---\n")).expect("write resources");
}

#[test]
fn repository_custom_resources_pass_the_schemas() {
    let types = crd_types();
    let mut expected = 0;
    let mut files = Vec::new();
    let directory = scratch("repository");
    for (index, path) in repository_resource_files().iter().enumerate() {
        let documents: Vec<Value> = documents_of(path)
            .into_iter()
            .filter(|document| types.contains(&type_of(document)))
            .collect();
        if documents.is_empty() {
            continue;
        }
        for document in &documents {
            // Every one of them is valid for weft too (the examples run).
            if let Err(error) = weft_accepts(document) {
                panic!("{}: weft refuses {}: {error}", path.display(), document);
            }
        }
        expected += documents.len();
        // Markdown blocks (and YAML with comments) as plain documents.
        let relative = path.strip_prefix(workspace_root()).unwrap_or(path);
        let copy = directory.join(format!(
            "{index}-{}",
            relative.to_string_lossy().replace('/', "__")
        ));
        write_documents(&copy, &documents);
        files.push(copy);
    }
    assert!(
        expected >= 20,
        "the examples hold custom resources ({expected})"
    );
    let Some(tools) = custom_resource_tools() else {
        return;
    };
    let (success, report) = validate_crs(&tools, &directory, &files);
    assert!(success, "{report}");
    assert!(
        report.contains(&format!("{expected} passed, 0 failed")),
        "every custom resource checked:\n{report}"
    );
}

/// One custom resource, from its kind's parts.
fn resource(api_version: &str, kind: &str, spec: Value) -> Value {
    json!({
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": "example", "namespace": "shop"},
        "spec": spec,
    })
}

fn server(spec: Value) -> Value {
    resource("policy.linkerd.io/v1beta3", "Server", spec)
}

fn http_route(rule: Value) -> Value {
    resource(
        "policy.linkerd.io/v1beta3",
        "HTTPRoute",
        json!({"parentRefs": [{"kind": "Service", "name": "web", "port": 80}], "rules": [rule]}),
    )
}

fn authorization(spec: Value) -> Value {
    resource("policy.linkerd.io/v1alpha1", "AuthorizationPolicy", spec)
}

fn profile_route(route: Value) -> Value {
    resource(
        "linkerd.io/v1alpha2",
        "ServiceProfile",
        json!({"routes": [route]}),
    )
}

/// Resources the schemas must refuse, with what the report must say; and
/// whether weft's parser refuses them too (the schema may be stricter).
fn bad_resources() -> Vec<(&'static str, Value, &'static str, bool)> {
    let selector = json!({"matchLabels": {"app": "web"}});
    let server_ref = json!({"group": "policy.linkerd.io", "kind": "Server", "name": "web"});
    vec![
        (
            "unknown field",
            server(json!({"podSelector": selector, "port": 80, "protocol": "HTTP/1"})),
            "Additional properties are not allowed ('protocol' was unexpected)",
            true,
        ),
        (
            "port 70000",
            server(json!({"podSelector": selector, "port": 70000})),
            "70000 is greater than the maximum of 65535",
            true,
        ),
        (
            "port 0",
            server(json!({"podSelector": selector, "port": 0})),
            "0 is less than the minimum of 1",
            true,
        ),
        (
            "port name of 16 characters",
            server(json!({"podSelector": selector, "port": "abcdefghijklmnop"})),
            "is too long",
            true,
        ),
        (
            "two selectors",
            server(
                json!({"podSelector": selector, "externalWorkloadSelector": selector, "port": 80}),
            ),
            "is valid under each of",
            true,
        ),
        (
            "unknown access policy",
            server(json!({"podSelector": selector, "port": 80, "accessPolicy": "allow"})),
            "'allow' is not one of",
            true,
        ),
        (
            "unknown proxy protocol",
            server(json!({"podSelector": selector, "port": 80, "proxyProtocol": "HTTP/3"})),
            "'HTTP/3' is not one of",
            true,
        ),
        (
            "PathPrefix without a leading /",
            http_route(json!({"matches": [{"path": {"type": "PathPrefix", "value": "api"}}]})),
            "value must be an absolute path (start with /) when type is Exact or PathPrefix",
            true,
        ),
        (
            "Exact path without a leading /",
            http_route(json!({"matches": [{"path": {"type": "Exact", "value": "api"}}]})),
            "value must be an absolute path",
            true,
        ),
        (
            "filter type without its field",
            http_route(json!({"filters": [{"type": "RequestHeaderModifier"}]})),
            "requestHeaderModifier must be set for type RequestHeaderModifier",
            true,
        ),
        (
            "redirect status 307",
            http_route(
                json!({"filters": [{"type": "RequestRedirect", "requestRedirect": {"statusCode": 307}}]}),
            ),
            "307 is not one of [301, 302]",
            true,
        ),
        (
            "backend without a port",
            http_route(json!({"backendRefs": [{"name": "web-v2"}]})),
            "'port' is a required property",
            true,
        ),
        (
            "header name with a space",
            http_route(json!({"matches": [{"headers": [{"name": "x canary", "value": "1"}]}]})),
            "does not match",
            true,
        ),
        (
            "parent kind Gateway",
            resource(
                "policy.linkerd.io/v1beta3",
                "HTTPRoute",
                json!({"parentRefs": [{"kind": "Gateway", "name": "web"}]}),
            ),
            "'Gateway' is not one of ['Service', 'Server']",
            true,
        ),
        (
            "Server parent without the policy group",
            resource(
                "policy.linkerd.io/v1beta3",
                "HTTPRoute",
                json!({"parentRefs": [{"kind": "Server", "name": "web"}]}),
            ),
            "group must be policy.linkerd.io for a Server parent",
            true,
        ),
        (
            "a request timeout of 10 parsecs",
            http_route(json!({"timeouts": {"request": "10 parsecs"}})),
            "does not match",
            true,
        ),
        (
            "policy target in the wrong group",
            authorization(
                json!({"targetRef": {"group": "gateway.networking.k8s.io", "kind": "Server", "name": "web"}}),
            ),
            "group must be policy.linkerd.io for a Server",
            true,
        ),
        (
            "two network authentications",
            authorization(
                json!({"targetRef": server_ref, "requiredAuthenticationRefs": [
                    {"group": "policy.linkerd.io", "kind": "NetworkAuthentication", "name": "a"},
                    {"group": "policy.linkerd.io", "kind": "NetworkAuthentication", "name": "b"},
                ]}),
            ),
            "at most one NetworkAuthentication per policy",
            true,
        ),
        (
            "a ServiceAccount and a MeshTLSAuthentication",
            authorization(
                json!({"targetRef": server_ref, "requiredAuthenticationRefs": [
                    {"kind": "ServiceAccount", "name": "web"},
                    {"group": "policy.linkerd.io", "kind": "MeshTLSAuthentication", "name": "b"},
                ]}),
            ),
            "at most one MeshTLSAuthentication or ServiceAccount per policy",
            true,
        ),
        (
            "MeshTLSAuthentication without identities",
            resource(
                "policy.linkerd.io/v1alpha1",
                "MeshTLSAuthentication",
                json!({}),
            ),
            "is not valid under any of the given schemas",
            true,
        ),
        (
            "identity with an inner wildcard",
            resource(
                "policy.linkerd.io/v1alpha1",
                "MeshTLSAuthentication",
                json!({"identities": ["web.*.cluster.local"]}),
            ),
            "does not match",
            true,
        ),
        (
            "network that is no network",
            resource(
                "policy.linkerd.io/v1alpha1",
                "NetworkAuthentication",
                json!({"networks": [{"cidr": "cluster"}]}),
            ),
            "does not match",
            true,
        ),
        (
            "route condition with nothing set",
            profile_route(json!({"name": "all", "condition": {}})),
            "should be non-empty",
            true,
        ),
        (
            "response status 700",
            profile_route(json!({"name": "all", "condition": {"method": "GET"},
                "responseClasses": [{"condition": {"status": {"min": 700}}, "isFailure": true}]})),
            "700 is greater than the maximum of 599",
            true,
        ),
        (
            "negative retry ratio",
            resource(
                "linkerd.io/v1alpha2",
                "ServiceProfile",
                json!({"retryBudget": {"retryRatio": -0.5, "minRetriesPerSecond": 10, "ttl": "10s"}}),
            ),
            "-0.5 is less than the minimum of 0",
            true,
        ),
        (
            "split weight that is no quantity",
            resource(
                "split.smi-spec.io/v1alpha1",
                "TrafficSplit",
                json!({"service": "web", "backends": [{"service": "web-v1", "weight": "heavy"}]}),
            ),
            "does not match",
            true,
        ),
        (
            "workload port 0",
            resource(
                "weft.dev/v1alpha1",
                "Workload",
                json!({"addresses": ["10.0.0.1"], "ports": [{"port": 0}]}),
            ),
            "0 is less than the minimum of 1",
            false,
        ),
    ]
}

/// Resources the schemas must accept (and weft too): the corners the
/// rules above must not catch.
fn good_resources() -> Vec<Value> {
    let selector = json!({"matchLabels": {"app": "web"}});
    vec![
        server(
            json!({"podSelector": selector, "port": "http", "proxyProtocol": "gRPC", "accessPolicy": "audit"}),
        ),
        resource(
            "policy.linkerd.io/v1beta1",
            "Server",
            json!({"podSelector": {"matchExpressions": [{"key": "app", "operator": "Exists"}]}, "port": 65535}),
        ),
        http_route(
            json!({"matches": [{"path": {"type": "RegularExpression", "value": ".*/api"}, "method": "GET"}]}),
        ),
        http_route(
            json!({"matches": [{"path": {"value": "/api"}}], "filters": [
            {"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301, "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/v2"}}},
        ], "timeouts": {"request": "1m30s", "backendRequest": "500ms"}}),
        ),
        http_route(
            json!({"backendRefs": [{"group": "core", "kind": "Service", "name": "web-v2", "port": 8080, "weight": 0,
            "filters": [{"type": "ResponseHeaderModifier", "responseHeaderModifier": {"remove": ["server"]}}]}]}),
        ),
        resource(
            "policy.linkerd.io/v1beta3",
            "HTTPRoute",
            json!({"parentRefs": [{"group": "policy.linkerd.io", "kind": "Server", "name": "web-http"}], "hostnames": ["*.example.com"]}),
        ),
        authorization(
            json!({"targetRef": {"kind": "Namespace", "name": "shop"}, "requiredAuthenticationRefs": [
                {"kind": "ServiceAccount", "name": "web", "namespace": "shop"},
                {"group": "policy.linkerd.io", "kind": "NetworkAuthentication", "name": "cluster"},
            ]}),
        ),
        authorization(
            json!({"targetRef": {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "web"}}),
        ),
        resource(
            "policy.linkerd.io/v1alpha1",
            "MeshTLSAuthentication",
            json!({"identities": ["*", "*.shop.serviceaccount.identity.weft.cluster.local"]}),
        ),
        resource(
            "policy.linkerd.io/v1alpha1",
            "MeshTLSAuthentication",
            json!({"identityRefs": [{"kind": "Namespace", "name": "shop"}]}),
        ),
        resource(
            "policy.linkerd.io/v1alpha1",
            "NetworkAuthentication",
            json!({"networks": [{"cidr": "fd00::/8", "except": ["fd00::1"]}, {"cidr": "10.0.0.1"}]}),
        ),
        resource(
            "linkerd.io/v1alpha1",
            "ServiceProfile",
            json!({"routes": [{"name": "deep", "timeout": "250ms", "isRetryable": true,
            "condition": {"all": [{"method": "GET"}, {"not": {"pathRegex": "/health"}}]},
            "responseClasses": [{"condition": {"any": [{"status": {"min": 500}}, {"status": {"min": 429, "max": 429}}]}, "isFailure": true}]}],
            "retryBudget": {"retryRatio": 0.2, "minRetriesPerSecond": 10, "ttl": "10s"},
            "dstOverrides": [{"authority": "web-v2.shop.svc.cluster.local:80", "weight": "500m"}]}),
        ),
        resource(
            "split.smi-spec.io/v1alpha1",
            "TrafficSplit",
            json!({"service": "web", "backends": [{"service": "web-v1", "weight": 900}, {"service": "web-v2", "weight": "100m"}]}),
        ),
        resource(
            "weft.dev/v1alpha1",
            "Workload",
            json!({"addresses": ["10.0.0.1", "fd00::1"], "ports": [{"name": "http", "port": 8080}],
            "meshed": true, "proxy": {"inboundPort": 4143, "implementation": "linkerd2-proxy"}, "owner": {"kind": "Deployment", "name": "web"}}),
        ),
    ]
}

#[test]
fn bad_custom_resources_are_refused() {
    let cases = bad_resources();
    for (name, document, _, weft_refuses) in &cases {
        assert_eq!(
            weft_accepts(document).is_err(),
            *weft_refuses,
            "{name}: weft's parser"
        );
    }
    for document in good_resources() {
        if let Err(error) = weft_accepts(&document) {
            panic!("weft refuses {document}: {error}");
        }
    }
    let Some(tools) = custom_resource_tools() else {
        return;
    };
    let directory = scratch("bad");
    let bad = directory.join("bad.yaml");
    let documents: Vec<Value> = cases
        .iter()
        .map(|(_, document, _, _)| document.clone())
        .collect();
    write_documents(&bad, &documents);
    let good = directory.join("good.yaml");
    write_documents(&good, &good_resources());
    let (_, report) = validate_crs(&tools, &directory, &[bad.clone(), good]);
    let lines: Vec<&str> = report.lines().collect();
    for (index, (name, _, expected, _)) in cases.iter().enumerate() {
        let prefix = format!("{}#{index} ", bad.display());
        let line = lines
            .iter()
            .find(|line| line.contains(&prefix))
            .unwrap_or_else(|| panic!("{name}: not checked:\n{report}"));
        assert!(
            line.starts_with("FAIL") && line.contains(expected),
            "{name}: expected a failure saying {expected:?}, got:\n{line}"
        );
    }
    let good_count = good_resources().len();
    assert!(
        report.contains(&format!("{good_count} passed, {} failed", cases.len())),
        "every good resource passes:\n{report}"
    );
}
