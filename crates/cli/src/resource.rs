//! Resource arguments as the observe commands take them: `workload`,
//! `workload/web`, `svc web books`, `ns/demo`, and `--to`/`--from` targets
//! (`svc/web`, `svc/shop/web`). Short names follow Linkerd's (`deploy`, `po`,
//! `svc`, `ns`, `au`, `ts`), plus `wl` for workloads.
//!
//! Parsing is pure; [`resolve_namespace`] asks the API which namespace a
//! name lives in when the user gave none.

use crate::api::{ApiClient, StatResponse, TrafficSplitsResponse, WorkloadsResponse, query};

/// Why a resource argument was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceError {
    /// No resource type was given.
    #[error(
        "a resource type is needed: namespace (ns), workload (wl, deploy), service (svc), authority (au) or trafficsplit (ts)"
    )]
    Missing,
    /// The type is not one weft knows.
    #[error(
        "unknown resource type {0:?}: use namespace (ns), workload (wl, deploy), service (svc), authority (au) or trafficsplit (ts)"
    )]
    UnknownKind(String),
    /// `TYPE/NAME` arguments of different types.
    #[error("all resources must be of one type ({first} and {other} given)")]
    MixedKinds {
        /// The first type.
        first: String,
        /// Another type.
        other: String,
    },
    /// A `TYPE/NAME` with an empty part or too many slashes.
    #[error("bad resource {0:?}: write TYPE/NAME or TYPE/NAMESPACE/NAME")]
    Malformed(String),
    /// No namespace given and the name is in none or several.
    #[error("cannot tell the namespace of {kind}/{name}: {reason}; give it with -n/--namespace")]
    NoNamespace {
        /// The type.
        kind: String,
        /// The name.
        name: String,
        /// Found in none, or in several.
        reason: String,
    },
}

/// A resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A namespace.
    Namespace,
    /// A workload (a Workload in the mesh file: one process and its proxy).
    Workload,
    /// A service.
    Service,
    /// An authority (`host:port` requests were sent to).
    Authority,
    /// A TrafficSplit (`weft stat ts`: its leaves, by weight).
    TrafficSplit,
}

impl Kind {
    /// Parses a type name or short name.
    pub fn parse(text: &str) -> Result<Self, ResourceError> {
        match text.to_ascii_lowercase().as_str() {
            "ns" | "namespace" | "namespaces" => Ok(Kind::Namespace),
            "wl" | "workload" | "workloads" | "deploy" | "deployment" | "deployments" | "po"
            | "pod" | "pods" => Ok(Kind::Workload),
            "svc" | "service" | "services" => Ok(Kind::Service),
            "au" | "authority" | "authorities" => Ok(Kind::Authority),
            "ts" | "trafficsplit" | "trafficsplits" => Ok(Kind::TrafficSplit),
            _ => Err(ResourceError::UnknownKind(text.to_string())),
        }
    }

    /// The name the API uses (`kind=`).
    pub fn api_name(self) -> &'static str {
        match self {
            Kind::Namespace => "namespace",
            Kind::Workload => "workload",
            Kind::Service => "service",
            Kind::Authority => "authority",
            Kind::TrafficSplit => "trafficsplit",
        }
    }
}

/// The resources of a command line: one type, maybe some names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// The type.
    pub kind: Kind,
    /// The names (empty: all of that type).
    pub names: Vec<String>,
}

/// `TYPE [NAME…]` or `TYPE/NAME…` (one type).
pub fn parse_selection(arguments: &[String]) -> Result<Selection, ResourceError> {
    let first = arguments.first().ok_or(ResourceError::Missing)?;
    if !first.contains('/') {
        let kind = Kind::parse(first)?;
        return Ok(Selection {
            kind,
            names: arguments[1..].to_vec(),
        });
    }
    let mut selection: Option<Selection> = None;
    for argument in arguments {
        let (kind_text, name) = argument
            .split_once('/')
            .filter(|(kind, name)| !kind.is_empty() && !name.is_empty() && !name.contains('/'))
            .ok_or_else(|| ResourceError::Malformed(argument.clone()))?;
        let kind = Kind::parse(kind_text)?;
        match &mut selection {
            None => {
                selection = Some(Selection {
                    kind,
                    names: vec![name.to_string()],
                })
            }
            Some(existing) if existing.kind == kind => existing.names.push(name.to_string()),
            Some(existing) => {
                return Err(ResourceError::MixedKinds {
                    first: existing.kind.api_name().into(),
                    other: kind.api_name().into(),
                });
            }
        }
    }
    selection.ok_or(ResourceError::Missing)
}

/// A `--to`/`--from` target: `KIND/NAME` or `KIND/NAMESPACE/NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The type.
    pub kind: Kind,
    /// The namespace, when written.
    pub namespace: Option<String>,
    /// The name.
    pub name: String,
}

impl Target {
    /// Parses `KIND/NAME` or `KIND/NAMESPACE/NAME`.
    pub fn parse(text: &str) -> Result<Self, ResourceError> {
        let parts: Vec<&str> = text.split('/').collect();
        if parts.iter().any(|part| part.is_empty()) {
            return Err(ResourceError::Malformed(text.to_string()));
        }
        match parts.as_slice() {
            [kind, name] => Ok(Self {
                kind: Kind::parse(kind)?,
                namespace: None,
                name: name.to_string(),
            }),
            [kind, namespace, name] => Ok(Self {
                kind: Kind::parse(kind)?,
                namespace: Some(namespace.to_string()),
                name: name.to_string(),
            }),
            _ => Err(ResourceError::Malformed(text.to_string())),
        }
    }

    /// The API's `KIND/NAMESPACE/NAME` form (a namespace is `namespace/NAME`).
    pub fn api_value(&self, namespace: &str) -> String {
        match self.kind {
            Kind::Namespace => format!("namespace/{}", self.name),
            kind => format!("{}/{namespace}/{}", kind.api_name(), self.name),
        }
    }
}

/// The namespace of `kind/name`: `given` if any; a namespace is its own; else
/// the only namespace the API knows the name in.
pub async fn resolve_namespace(
    client: &ApiClient,
    kind: Kind,
    name: &str,
    given: Option<&str>,
) -> anyhow::Result<String> {
    if let Some(namespace) = given {
        return Ok(namespace.to_string());
    }
    let found: Vec<String> = match kind {
        Kind::Namespace => return Ok(name.to_string()),
        Kind::Workload => {
            let answer: WorkloadsResponse = client.get_json("/api/workloads").await?;
            answer
                .workloads
                .into_iter()
                .filter(|workload| workload.name == name)
                .map(|workload| workload.namespace)
                .collect()
        }
        Kind::TrafficSplit => {
            let path = format!("/api/trafficsplits{}", query(&[("name", Some(name))]));
            let answer: TrafficSplitsResponse = client.get_json(&path).await?;
            answer.rows.into_iter().map(|row| row.namespace).collect()
        }
        Kind::Service | Kind::Authority => {
            let path = format!(
                "/api/stat{}",
                query(&[("kind", Some(kind.api_name())), ("name", Some(name))])
            );
            let answer: StatResponse = client.get_json(&path).await?;
            answer.rows.into_iter().map(|row| row.namespace).collect()
        }
    };
    pick_namespace(kind, name, found).map_err(Into::into)
}

/// The one namespace among `found` (duplicates allowed), else why not.
pub fn pick_namespace(kind: Kind, name: &str, found: Vec<String>) -> Result<String, ResourceError> {
    let mut unique = found;
    unique.sort();
    unique.dedup();
    match unique.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(ResourceError::NoNamespace {
            kind: kind.api_name().into(),
            name: name.into(),
            reason: "not found".into(),
        }),
        several => Err(ResourceError::NoNamespace {
            kind: kind.api_name().into(),
            name: name.into(),
            reason: format!("found in {}", several.join(", ")),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| item.to_string()).collect()
    }

    #[test]
    fn selections() {
        for (arguments, expected) in [
            (vec!["workload"], Ok((Kind::Workload, vec![]))),
            (
                vec!["deploy", "web", "books"],
                Ok((Kind::Workload, vec!["web", "books"])),
            ),
            (vec!["wl/web"], Ok((Kind::Workload, vec!["web"]))),
            (
                vec!["svc/web", "service/books"],
                Ok((Kind::Service, vec!["web", "books"])),
            ),
            (vec!["ns"], Ok((Kind::Namespace, vec![]))),
            (vec!["au"], Ok((Kind::Authority, vec![]))),
            (vec![], Err(ResourceError::Missing)),
            (
                vec!["pizza"],
                Err(ResourceError::UnknownKind("pizza".into())),
            ),
            (vec!["wl/"], Err(ResourceError::Malformed("wl/".into()))),
            (
                vec!["wl/web", "svc/web"],
                Err(ResourceError::MixedKinds {
                    first: "workload".into(),
                    other: "service".into(),
                }),
            ),
        ] {
            let got = parse_selection(&strings(&arguments));
            let expected = expected.map(|(kind, names)| Selection {
                kind,
                names: strings(&names),
            });
            assert_eq!(got, expected, "{arguments:?}");
        }
    }

    #[test]
    fn targets() {
        let target = Target::parse("svc/web").unwrap();
        assert_eq!(
            (target.kind, target.namespace.as_deref()),
            (Kind::Service, None)
        );
        assert_eq!(target.api_value("shop"), "service/shop/web");
        let target = Target::parse("deploy/shop/load").unwrap();
        assert_eq!(target.namespace.as_deref(), Some("shop"));
        assert_eq!(target.api_value("shop"), "workload/shop/load");
        assert_eq!(
            Target::parse("ns/shop").unwrap().api_value("shop"),
            "namespace/shop"
        );
        for bad in ["web", "svc//web", "a/b/c/d"] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn namespaces() {
        assert_eq!(
            pick_namespace(Kind::Workload, "web", strings(&["shop", "shop"])),
            Ok("shop".into())
        );
        assert!(pick_namespace(Kind::Workload, "web", vec![]).is_err());
        let several = pick_namespace(Kind::Workload, "web", strings(&["a", "b"])).unwrap_err();
        assert!(several.to_string().contains("found in a, b"), "{several}");
    }
}
