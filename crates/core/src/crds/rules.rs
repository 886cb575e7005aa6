//! What the model's `validate()` checks (and its parsers refuse), said again
//! in each CRD's schema so the API server refuses it at `kubectl apply`:
//! OpenAPI keywords where one suffices (bounds, enums, patterns, required
//! fields, Linkerd's `oneOf` of required selectors), CEL
//! (`x-kubernetes-validations`) where fields depend on each other, as
//! Linkerd's and the Gateway API's CRDs do. Lists that CEL rules sit under
//! are bounded (`maxItems`, the Gateway API's limits) so the API server's
//! CEL cost estimate stays within its budget.
//!
//! A rule names a schemars definition (the Rust type's name) and optionally
//! one of its properties; [`apply`] merges its keywords there before the
//! schema is made structural, and refuses a rule whose target is gone (a
//! renamed type or field fails the CRD tests, not silently).

use serde_json::{Map, Value, json};

/// Keywords to merge into one definition, or one property of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The schemars definition: the Rust type's name (`HttpPathMatch`).
    pub definition: &'static str,
    /// One of its properties (`value`), or `None` for the definition itself.
    pub property: Option<&'static str>,
    /// The keywords (`{"minimum": 1}`), merged: lists of `required` and
    /// `x-kubernetes-validations` add up, objects merge, others replace.
    pub keywords: Value,
}

fn on(definition: &'static str, property: Option<&'static str>, keywords: Value) -> Rule {
    Rule {
        definition,
        property,
        keywords,
    }
}

/// A CEL rule and the message the API server answers with.
fn cel(rule: &str, message: &str) -> Value {
    json!({"rule": rule, "message": message})
}

/// An HTTP token: a method or header name.
const TOKEN_PATTERN: &str = r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$";
/// A route host name: DNS labels of letters, digits and `-`, optionally
/// after a leading `*.`.
const HOSTNAME_PATTERN: &str = r"^(\*\.)?[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})*$";
/// An IP address (either family), loosely: the parser has the last word.
const ADDRESS_PATTERN: &str = r"^[0-9A-Fa-f:.]+$";
/// An IP network or address, loosely.
const NETWORK_PATTERN: &str = r"^[0-9A-Fa-f:.]+(/[0-9]{1,3})?$";
/// A MeshTLSAuthentication identity: `*`, `*.suffix` or a DNS-like name.
const IDENTITY_PATTERN: &str = r"^(\*|(\*\.)?[^*.]+(\.[^*.]+)*)$";

/// A port number 1..=65535.
fn port() -> Value {
    json!({"minimum": 1, "maximum": 65535})
}

/// Scalars that may not be empty.
fn not_empty() -> Value {
    json!({"minLength": 1})
}

/// An object name (a DNS subdomain at most), bounded for CEL's cost estimate.
fn object_name() -> Value {
    json!({"minLength": 1, "maxLength": 253})
}

/// An API group, bounded for CEL's cost estimate.
fn group() -> Value {
    json!({"maxLength": 253})
}

/// ServiceProfile: conditions with a field set, status ranges within
/// 100..=599, a non-negative retry ratio.
pub fn service_profile() -> Vec<Rule> {
    vec![
        on("RequestMatch", None, json!({"minProperties": 1})),
        on("ResponseMatch", None, json!({"minProperties": 1})),
        // No CEL for min <= max: status ranges sit in unbounded lists
        // (routes, responseClasses), whose CEL cost the API server would
        // refuse; weft's parser reports it.
        on("StatusRange", None, json!({"minProperties": 1})),
        on(
            "StatusRange",
            Some("min"),
            json!({"minimum": 100, "maximum": 599}),
        ),
        on(
            "StatusRange",
            Some("max"),
            json!({"minimum": 100, "maximum": 599}),
        ),
        on("RetryBudget", Some("retryRatio"), json!({"minimum": 0})),
        on("RouteSpec", Some("name"), not_empty()),
    ]
}

/// Server: one selector (Linkerd's `oneOf`), a port number or a port name,
/// a known access policy.
pub fn server() -> Vec<Rule> {
    vec![
        on(
            "ServerSpec",
            None,
            json!({"oneOf": [{"required": ["podSelector"]}, {"required": ["externalWorkloadSelector"]}]}),
        ),
        on(
            "ServerPort",
            None,
            json!({"minimum": 1, "maximum": 65535, "minLength": 1, "maxLength": 15}),
        ),
        on(
            "ServerSpec",
            Some("accessPolicy"),
            json!({"enum": [
                "all-unauthenticated",
                "all-authenticated",
                "cluster-unauthenticated",
                "cluster-authenticated",
                "deny",
                "audit",
            ]}),
        ),
        on("LabelRequirement", Some("key"), not_empty()),
    ]
}

/// AuthorizationPolicy: a target of a kind weft knows, in that kind's
/// group; authentications of known kinds and groups, at most one identity
/// source and one network.
pub fn authorization_policy() -> Vec<Rule> {
    vec![
        on(
            "TargetRef",
            Some("kind"),
            json!({"enum": ["Server", "HTTPRoute", "GRPCRoute", "Namespace"]}),
        ),
        on("TargetRef", Some("name"), object_name()),
        on("TargetRef", Some("group"), group()),
        on(
            "TargetRef",
            None,
            json!({"x-kubernetes-validations": [cel(
                "self.kind == 'Server' ? (has(self.group) && self.group == 'policy.linkerd.io') \
                 : self.kind == 'HTTPRoute' ? (has(self.group) && self.group in ['policy.linkerd.io', 'gateway.networking.k8s.io']) \
                 : self.kind == 'GRPCRoute' ? (has(self.group) && self.group == 'gateway.networking.k8s.io') \
                 : (!has(self.group) || self.group in ['', 'core'])",
                "group must be policy.linkerd.io for a Server, policy.linkerd.io or gateway.networking.k8s.io for an HTTPRoute, gateway.networking.k8s.io for a GRPCRoute, and empty or core for a Namespace",
            )]}),
        ),
        on(
            "AuthenticationRef",
            Some("kind"),
            json!({"enum": ["MeshTLSAuthentication", "NetworkAuthentication", "ServiceAccount"]}),
        ),
        on("AuthenticationRef", Some("name"), object_name()),
        on("AuthenticationRef", Some("group"), group()),
        on(
            "AuthenticationRef",
            None,
            json!({"x-kubernetes-validations": [cel(
                "self.kind == 'ServiceAccount' ? (!has(self.group) || self.group in ['', 'core']) \
                 : (has(self.group) && self.group == 'policy.linkerd.io')",
                "group must be policy.linkerd.io for a MeshTLSAuthentication or NetworkAuthentication, and empty or core for a ServiceAccount",
            )]}),
        ),
        on(
            "AuthorizationPolicySpec",
            Some("requiredAuthenticationRefs"),
            json!({
                "maxItems": 2,
                "x-kubernetes-validations": [
                    cel(
                        "self.filter(auth, auth.kind == 'NetworkAuthentication').size() <= 1",
                        "at most one NetworkAuthentication per policy",
                    ),
                    cel(
                        "self.filter(auth, auth.kind != 'NetworkAuthentication').size() <= 1",
                        "at most one MeshTLSAuthentication or ServiceAccount per policy",
                    ),
                ],
            }),
        ),
    ]
}

/// MeshTLSAuthentication: identities or identityRefs (Linkerd's `oneOf`),
/// not empty, well formed.
pub fn mesh_tls_authentication() -> Vec<Rule> {
    vec![
        on(
            "MeshTLSAuthenticationSpec",
            None,
            json!({"oneOf": [{"required": ["identities"]}, {"required": ["identityRefs"]}]}),
        ),
        on(
            "MeshTLSAuthenticationSpec",
            Some("identities"),
            json!({"minItems": 1, "items": {"pattern": IDENTITY_PATTERN}}),
        ),
        on(
            "MeshTLSAuthenticationSpec",
            Some("identityRefs"),
            json!({"minItems": 1}),
        ),
        on(
            "IdentityRef",
            Some("kind"),
            json!({"enum": ["ServiceAccount", "Namespace"]}),
        ),
        on("IdentityRef", Some("group"), json!({"enum": ["", "core"]})),
        on("IdentityRef", Some("name"), not_empty()),
    ]
}

/// NetworkAuthentication: at least one network, each an address or CIDR.
pub fn network_authentication() -> Vec<Rule> {
    vec![
        on(
            "NetworkAuthenticationSpec",
            Some("networks"),
            json!({"minItems": 1}),
        ),
        on(
            "NetworkSpec",
            Some("cidr"),
            json!({"pattern": NETWORK_PATTERN}),
        ),
        on(
            "NetworkSpec",
            Some("except"),
            json!({"items": {"pattern": NETWORK_PATTERN}}),
        ),
    ]
}

/// HTTPRoute: the checks of route.rs's `validate` that a schema can say,
/// with the Gateway API's list bounds and CEL messages.
pub fn http_route() -> Vec<Rule> {
    let spec = "RouteSpec";
    vec![
        on(spec, Some("parentRefs"), json!({"maxItems": 32})),
        on(
            spec,
            Some("hostnames"),
            json!({"maxItems": 16, "items": {"pattern": HOSTNAME_PATTERN, "maxLength": 255}}),
        ),
        on(spec, Some("rules"), json!({"maxItems": 16})),
        on(
            "ParentReference",
            None,
            json!({
                "required": ["kind"],
                "x-kubernetes-validations": [cel(
                    "self.kind == 'Server' ? (has(self.group) && self.group == 'policy.linkerd.io') \
                     : (!has(self.group) || self.group in ['', 'core'])",
                    "group must be policy.linkerd.io for a Server parent, and empty or core for a Service",
                )],
            }),
        ),
        on(
            "ParentReference",
            Some("kind"),
            json!({"enum": ["Service", "Server"]}),
        ),
        on("ParentReference", Some("name"), object_name()),
        on("ParentReference", Some("group"), group()),
        on("ParentReference", Some("port"), port()),
        on("HttpRouteRule", Some("matches"), json!({"maxItems": 64})),
        on("HttpRouteRule", Some("filters"), json!({"maxItems": 16})),
        on(
            "HttpRouteRule",
            Some("backendRefs"),
            json!({"maxItems": 16}),
        ),
        on(
            "HttpPathMatch",
            None,
            json!({"x-kubernetes-validations": [cel(
                "!has(self.value) || (has(self.type) && self.type == 'RegularExpression') || self.value.startsWith('/')",
                "value must be an absolute path (start with /) when type is Exact or PathPrefix",
            )]}),
        ),
        on("HttpPathMatch", Some("value"), json!({"maxLength": 1024})),
        on("HttpRouteMatch", Some("headers"), json!({"maxItems": 16})),
        on(
            "HttpRouteMatch",
            Some("queryParams"),
            json!({"maxItems": 16}),
        ),
        on(
            "HttpRouteMatch",
            Some("method"),
            json!({"pattern": TOKEN_PATTERN}),
        ),
        on(
            "HeaderMatch",
            Some("name"),
            json!({"pattern": TOKEN_PATTERN}),
        ),
        on(
            "HttpHeader",
            Some("name"),
            json!({"pattern": TOKEN_PATTERN}),
        ),
        on(
            "HeaderModifier",
            Some("remove"),
            json!({"items": {"pattern": TOKEN_PATTERN}}),
        ),
        on(
            "HttpRouteFilter",
            None,
            json!({"x-kubernetes-validations": [
                cel(
                    "(self.type == 'RequestHeaderModifier') == has(self.requestHeaderModifier)",
                    "requestHeaderModifier must be set for type RequestHeaderModifier, and only for it",
                ),
                cel(
                    "(self.type == 'ResponseHeaderModifier') == has(self.responseHeaderModifier)",
                    "responseHeaderModifier must be set for type ResponseHeaderModifier, and only for it",
                ),
                cel(
                    "(self.type == 'RequestRedirect') == has(self.requestRedirect)",
                    "requestRedirect must be set for type RequestRedirect, and only for it",
                ),
            ]}),
        ),
        on(
            "RequestRedirect",
            Some("scheme"),
            json!({"enum": ["http", "https"]}),
        ),
        on(
            "RequestRedirect",
            Some("statusCode"),
            json!({"enum": [301, 302]}),
        ),
        on("RequestRedirect", Some("port"), port()),
        on(
            "PathModifier",
            None,
            json!({"x-kubernetes-validations": [
                cel(
                    "self.type != 'ReplaceFullPath' || (has(self.replaceFullPath) && self.replaceFullPath.startsWith('/'))",
                    "replaceFullPath must be set and start with / for type ReplaceFullPath",
                ),
                cel(
                    "self.type != 'ReplacePrefixMatch' || (has(self.replacePrefixMatch) && self.replacePrefixMatch.startsWith('/'))",
                    "replacePrefixMatch must be set and start with / for type ReplacePrefixMatch",
                ),
            ]}),
        ),
        on(
            "PathModifier",
            Some("replaceFullPath"),
            json!({"maxLength": 1024}),
        ),
        on(
            "PathModifier",
            Some("replacePrefixMatch"),
            json!({"maxLength": 1024}),
        ),
        on("HttpBackendRef", None, json!({"required": ["port"]})),
        on(
            "HttpBackendRef",
            Some("group"),
            json!({"enum": ["", "core"]}),
        ),
        on("HttpBackendRef", Some("kind"), json!({"enum": ["Service"]})),
        on("HttpBackendRef", Some("name"), not_empty()),
        on("HttpBackendRef", Some("port"), port()),
        on(
            "HttpBackendRef",
            Some("weight"),
            json!({"minimum": 0, "maximum": crate::route::MAX_BACKEND_WEIGHT}),
        ),
        on("HttpBackendRef", Some("filters"), json!({"maxItems": 16})),
    ]
}

/// Workload: port numbers 1..=65535, addresses that look like addresses.
pub fn workload() -> Vec<Rule> {
    let mut rules = vec![
        on("WorkloadPort", Some("port"), port()),
        on(
            "WorkloadSpec",
            Some("addresses"),
            json!({"items": {"pattern": ADDRESS_PATTERN}}),
        ),
        on(
            "WorkloadProxy",
            Some("address"),
            json!({"pattern": ADDRESS_PATTERN}),
        ),
    ];
    for property in ["inboundPort", "outboundPort", "adminPort", "tapPort"] {
        rules.push(on("WorkloadProxy", Some(property), port()));
    }
    rules
}

/// Merges each rule's keywords into its target; the first target missing
/// from `definitions` is the error (`Definition` or `Definition.property`).
pub fn apply(definitions: &mut Map<String, Value>, rules: &[Rule]) -> Result<(), String> {
    for rule in rules {
        let target = match rule.property {
            Some(property) => format!("{}.{property}", rule.definition),
            None => rule.definition.to_string(),
        };
        let definition = definitions.get_mut(rule.definition);
        let schema = match rule.property {
            None => definition,
            Some(property) => definition
                .and_then(|definition| definition.get_mut("properties"))
                .and_then(|properties| properties.get_mut(property)),
        };
        let Some(Value::Object(schema)) = schema else {
            return Err(target);
        };
        if let Value::Object(keywords) = &rule.keywords {
            merge(schema, keywords);
        }
    }
    Ok(())
}

/// Deep merge: objects merge, `required` and `x-kubernetes-validations` add
/// up, anything else replaces.
fn merge(into: &mut Map<String, Value>, from: &Map<String, Value>) {
    for (keyword, value) in from {
        match (into.get_mut(keyword), value) {
            (Some(Value::Object(existing)), Value::Object(more)) => merge(existing, more),
            (Some(Value::Array(existing)), Value::Array(more))
                if keyword == "required" || keyword == "x-kubernetes-validations" =>
            {
                existing.extend(more.iter().cloned());
            }
            _ => {
                into.insert(keyword.clone(), value.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_rules_into_their_targets() {
        let mut definitions = json!({
            "A": {"type": "object", "required": ["x"], "properties": {
                "x": {"type": "array", "items": {"type": "string"}}}},
        })
        .as_object()
        .cloned()
        .unwrap_or_default();
        let rules = [
            on("A", None, json!({"required": ["y"]})),
            on(
                "A",
                Some("x"),
                json!({"maxItems": 2, "items": {"pattern": "^a"}}),
            ),
        ];
        assert_eq!(apply(&mut definitions, &rules), Ok(()));
        assert_eq!(
            Value::Object(definitions.clone()),
            json!({"A": {"type": "object", "required": ["x", "y"], "properties": {
                "x": {"type": "array", "maxItems": 2, "items": {"type": "string", "pattern": "^a"}}}}})
        );
        for (rule, target) in [
            (on("B", None, json!({})), "B"),
            (on("A", Some("z"), json!({})), "A.z"),
        ] {
            assert_eq!(apply(&mut definitions, &[rule]), Err(target.to_string()));
        }
    }
}
