//! The CustomResourceDefinitions `weft install --crds` writes, generated
//! from this crate's types (schemars), with Linkerd's groups, names and
//! versions so existing ServiceProfile/TrafficSplit/policy YAML applies
//! unchanged.
//!
//! ```text
//! ServiceProfileSpec, ServerSpec, ... (#[derive(JsonSchema)], feature `crds`)
//!   └─ schemars, OpenAPI 3.0 settings ─► schema + definitions
//!        └─ rules::apply: what validate() checks, as OpenAPI keywords and CEL
//!             └─ structural::structural_schema: $refs inlined, unions rewritten
//!                  └─ CustomResourceDefinition (apiextensions.k8s.io/v1), one per kind
//! ```
//!
//! | CRD                                        | versions (storage last)        | short name |
//! |--------------------------------------------|--------------------------------|------------|
//! | serviceprofiles.linkerd.io                 | v1alpha1, v1alpha2             | sp |
//! | trafficsplits.split.smi-spec.io            | v1alpha1                       | ts |
//! | servers.policy.linkerd.io                  | v1beta1, v1beta2, v1beta3      | srv |
//! | authorizationpolicies.policy.linkerd.io    | v1alpha1                       | authzpolicy |
//! | meshtlsauthentications.policy.linkerd.io   | v1alpha1                       | meshtlsauthn |
//! | networkauthentications.policy.linkerd.io   | v1alpha1                       | netauthn, networkauthn |
//! | httproutes.policy.linkerd.io               | v1beta1, v1beta2, v1beta3      | |
//! | workloads.weft.dev                         | v1alpha1                       | wl |
//!
//! Every version of a kind has the same schema (weft reads them alike), so
//! no conversion webhook is needed. The Gateway API's own HTTPRoute and
//! GRPCRoute (gateway.networking.k8s.io) are not here: users install the
//! Gateway API's CRDs.

mod rules;
pub mod structural;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceColumnDefinition, CustomResourceDefinition, CustomResourceDefinitionNames,
    CustomResourceDefinitionSpec, CustomResourceDefinitionVersion, CustomResourceValidation,
    JSONSchemaProps,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Value, json};

use crate::policy::authentication::{MeshTLSAuthenticationSpec, NetworkAuthenticationSpec};
use crate::policy::authorization::AuthorizationPolicySpec;
use crate::policy::server::ServerSpec;
use crate::profile::ServiceProfileSpec;
use crate::route::HttpRouteSpec;
use crate::split::TrafficSplitSpec;
use crate::workload::WorkloadSpec;

pub use structural::StructuralError;

/// The category every weft CRD is in: `kubectl get weft` lists them all.
pub const CATEGORY: &str = "weft";

/// Why a CRD could not be generated (a bug in a model type or a rule; the
/// tests generate every CRD).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrdError {
    /// A rule names a definition or property the kind's schema lacks.
    #[error("{kind}: rule target {target} is not in the schema (its definitions: {definitions})")]
    UnknownRuleTarget {
        /// The CRD's kind.
        kind: String,
        /// `Definition` or `Definition.property`.
        target: String,
        /// The definitions there are, comma-separated.
        definitions: String,
    },
    /// The schema has no structural form.
    #[error("{kind}: {source}")]
    Structural {
        /// The CRD's kind.
        kind: String,
        /// What could not be converted.
        source: StructuralError,
    },
    /// The converted schema is not a JSONSchemaProps.
    #[error("{kind}: the schema does not read as JSONSchemaProps: {reason}")]
    NotJsonSchemaProps {
        /// The CRD's kind.
        kind: String,
        /// serde's complaint.
        reason: String,
    },
}

/// A printer column: name, type, JSON path, description.
type Column = (&'static str, &'static str, &'static str, &'static str);

/// The age column kubectl shows by default (gone once a CRD lists columns).
const AGE: Column = (
    "Age",
    "date",
    ".metadata.creationTimestamp",
    "Time since creation",
);

/// One kind weft defines a CRD for.
struct Kind {
    group: &'static str,
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    short_names: &'static [&'static str],
    /// Every version is served; the last one is stored.
    versions: &'static [&'static str],
    description: &'static str,
    /// `generator.subschema_for::<Spec>()`.
    spec: fn(&mut SchemaGenerator) -> schemars::Schema,
    rules: fn() -> Vec<rules::Rule>,
    columns: &'static [Column],
}

/// Every kind, in the order the CRDs are written.
fn kinds() -> Vec<Kind> {
    vec![
        Kind {
            group: "linkerd.io",
            kind: "ServiceProfile",
            plural: "serviceprofiles",
            singular: "serviceprofile",
            short_names: &["sp"],
            versions: &["v1alpha1", "v1alpha2"],
            description: "A service's routes (request conditions, response classes, retries, timeouts) and retry budget. Its name is the service's fully-qualified name.",
            spec: |generator| generator.subschema_for::<ServiceProfileSpec>(),
            rules: rules::service_profile,
            columns: &[],
        },
        Kind {
            group: "split.smi-spec.io",
            kind: "TrafficSplit",
            plural: "trafficsplits",
            singular: "trafficsplit",
            short_names: &["ts"],
            versions: &["v1alpha1"],
            description: "An apex service's traffic divided between backend services by weight.",
            spec: |generator| generator.subschema_for::<TrafficSplitSpec>(),
            rules: Vec::new,
            columns: &[
                ("Service", "string", ".spec.service", "The apex service"),
                AGE,
            ],
        },
        Kind {
            group: "policy.linkerd.io",
            kind: "Server",
            plural: "servers",
            singular: "server",
            short_names: &["srv"],
            versions: &["v1beta1", "v1beta2", "v1beta3"],
            description: "A port of the workloads a label selector picks, and the protocol the proxy should expect there.",
            spec: |generator| generator.subschema_for::<ServerSpec>(),
            rules: rules::server,
            columns: &[
                ("Port", "string", ".spec.port", "The port number or name"),
                (
                    "Protocol",
                    "string",
                    ".spec.proxyProtocol",
                    "The protocol the proxy expects",
                ),
                AGE,
            ],
        },
        Kind {
            group: "policy.linkerd.io",
            kind: "AuthorizationPolicy",
            plural: "authorizationpolicies",
            singular: "authorizationpolicy",
            short_names: &["authzpolicy"],
            versions: &["v1alpha1"],
            description: "Admits the clients that satisfy all of its required authentications to a Server, the Servers of a namespace, or a route.",
            spec: |generator| generator.subschema_for::<AuthorizationPolicySpec>(),
            rules: rules::authorization_policy,
            columns: &[
                (
                    "Target Kind",
                    "string",
                    ".spec.targetRef.kind",
                    "The kind of the target",
                ),
                (
                    "Target Name",
                    "string",
                    ".spec.targetRef.name",
                    "The name of the target",
                ),
                AGE,
            ],
        },
        Kind {
            group: "policy.linkerd.io",
            kind: "MeshTLSAuthentication",
            plural: "meshtlsauthentications",
            singular: "meshtlsauthentication",
            short_names: &["meshtlsauthn"],
            versions: &["v1alpha1"],
            description: "Client identities an AuthorizationPolicy may require.",
            spec: |generator| generator.subschema_for::<MeshTLSAuthenticationSpec>(),
            rules: rules::mesh_tls_authentication,
            columns: &[],
        },
        Kind {
            group: "policy.linkerd.io",
            kind: "NetworkAuthentication",
            plural: "networkauthentications",
            singular: "networkauthentication",
            short_names: &["netauthn", "networkauthn"],
            versions: &["v1alpha1"],
            description: "Client networks an AuthorizationPolicy may require.",
            spec: |generator| generator.subschema_for::<NetworkAuthenticationSpec>(),
            rules: rules::network_authentication,
            columns: &[],
        },
        Kind {
            group: "policy.linkerd.io",
            kind: "HTTPRoute",
            plural: "httproutes",
            singular: "httproute",
            short_names: &[],
            versions: &["v1beta1", "v1beta2", "v1beta3"],
            description: "HTTP routing (outbound, attached to a Service) or per-route authorization (inbound, attached to a Server), with the Gateway API's fields.",
            spec: |generator| generator.subschema_for::<HttpRouteSpec>(),
            rules: rules::http_route,
            columns: &[
                (
                    "Hostnames",
                    "string",
                    ".spec.hostnames",
                    "The host names the route applies to",
                ),
                AGE,
            ],
        },
        Kind {
            group: "weft.dev",
            kind: "Workload",
            plural: "workloads",
            singular: "workload",
            short_names: &["wl"],
            versions: &["v1alpha1"],
            description: "Something that serves traffic and is not a pod (a process on a host, a VM); Services select it by its labels.",
            spec: |generator| generator.subschema_for::<WorkloadSpec>(),
            rules: rules::workload,
            columns: &[
                (
                    "Addresses",
                    "string",
                    ".spec.addresses",
                    "The addresses it serves on",
                ),
                (
                    "Meshed",
                    "boolean",
                    ".spec.meshed",
                    "Whether a proxy fronts it",
                ),
                AGE,
            ],
        },
    ]
}

/// Every CRD weft installs, in a stable order.
pub fn custom_resource_definitions() -> Vec<CustomResourceDefinition> {
    // Invariant: every kind's schema converts and every rule finds its
    // target; tests/crds.rs generates them all, so this cannot fail at run time.
    try_custom_resource_definitions()
        .unwrap_or_else(|error| panic!("weft's CRD schemas are checked by its tests: {error}"))
}

/// Every CRD weft installs, or why one cannot be generated.
pub fn try_custom_resource_definitions() -> Result<Vec<CustomResourceDefinition>, CrdError> {
    kinds().iter().map(definition).collect()
}

/// The `openAPIV3Schema` of a kind's custom resources, as JSON.
fn object_schema(kind: &Kind) -> Result<Value, CrdError> {
    let mut generator = SchemaSettings::openapi3().into_generator();
    let spec = (kind.spec)(&mut generator).to_value();
    let mut definitions = generator.take_definitions(true);
    if let Err(target) = rules::apply(&mut definitions, &(kind.rules)()) {
        return Err(CrdError::UnknownRuleTarget {
            kind: kind.kind.to_string(),
            target,
            definitions: definitions.keys().cloned().collect::<Vec<_>>().join(", "),
        });
    }
    let mut spec = structural::structural_schema(&spec, &definitions).map_err(|source| {
        CrdError::Structural {
            kind: kind.kind.to_string(),
            source,
        }
    })?;
    if let Some(fields) = spec.as_object_mut() {
        // The kind's description says what a spec is; the type's would repeat it.
        fields.remove("description");
    }
    Ok(json!({
        "type": "object",
        "description": kind.description,
        "required": ["spec"],
        "properties": {
            "apiVersion": {
                "type": "string",
                "description": "The versioned schema of this representation of an object.",
            },
            "kind": {
                "type": "string",
                "description": "The REST resource this object represents.",
            },
            "metadata": {"type": "object"},
            "spec": spec,
        },
    }))
}

fn definition(kind: &Kind) -> Result<CustomResourceDefinition, CrdError> {
    let schema: JSONSchemaProps =
        serde_json::from_value(object_schema(kind)?).map_err(|error| {
            CrdError::NotJsonSchemaProps {
                kind: kind.kind.to_string(),
                reason: error.to_string(),
            }
        })?;
    let columns: Vec<CustomResourceColumnDefinition> = kind
        .columns
        .iter()
        .map(
            |(name, column_type, json_path, description)| CustomResourceColumnDefinition {
                name: (*name).to_string(),
                type_: (*column_type).to_string(),
                json_path: (*json_path).to_string(),
                description: Some((*description).to_string()),
                ..Default::default()
            },
        )
        .collect();
    let storage = kind.versions.len() - 1;
    let versions = kind
        .versions
        .iter()
        .enumerate()
        .map(|(index, name)| CustomResourceDefinitionVersion {
            name: (*name).to_string(),
            served: true,
            storage: index == storage,
            schema: Some(CustomResourceValidation {
                open_api_v3_schema: Some(schema.clone()),
            }),
            additional_printer_columns: (!columns.is_empty()).then(|| columns.clone()),
            ..Default::default()
        })
        .collect();
    Ok(CustomResourceDefinition {
        metadata: ObjectMeta {
            name: Some(format!("{}.{}", kind.plural, kind.group)),
            ..Default::default()
        },
        spec: CustomResourceDefinitionSpec {
            group: kind.group.to_string(),
            names: CustomResourceDefinitionNames {
                kind: kind.kind.to_string(),
                plural: kind.plural.to_string(),
                singular: Some(kind.singular.to_string()),
                list_kind: Some(format!("{}List", kind.kind)),
                short_names: (!kind.short_names.is_empty()).then(|| {
                    kind.short_names
                        .iter()
                        .map(|name| name.to_string())
                        .collect()
                }),
                categories: Some(vec![CATEGORY.to_string()]),
            },
            scope: "Namespaced".to_string(),
            versions,
            ..Default::default()
        },
        status: None,
    })
}
