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

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/core is two levels below the workspace")
        .to_path_buf()
}

/// The validators' venv bin directory, or `None` (after saying why) when
/// it is absent outside CI.
fn k8s_tools() -> Option<PathBuf> {
    let venv = std::env::var_os("WEFT_K8S_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/k8s-tools"));
    let bin = venv.join("bin");
    if bin.join("kubernetes-validate").is_file() {
        return Some(bin);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "no kubernetes-validate under {}: run scripts/k8s-tools.sh",
        venv.display()
    );
    println!("skipped: run scripts/k8s-tools.sh");
    None
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
    for version in ["1.33.0", "1.37.0"] {
        let output = Command::new(tools.join("kubernetes-validate"))
            .args(["--strict", "--quiet", "-k", version])
            .arg(&crds)
            .output()
            .expect("run kubernetes-validate");
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "kubernetes {version}:\n{report}");
        assert!(!report.contains("WARN"), "kubernetes {version}:\n{report}");
    }
}
