//! What a tap asks for, parsed from `/api/tap`'s query (pure), and the
//! proxies' `ObserveRequest` built from it.
//!
//! ```text
//! ?kind=workload&namespace=demo&name=web&to=service/demo/books&method=GET&path=/books&max_rps=10
//!   ─► TapRequest { resource, to, method, authority, path, max_rps }
//!   ─► ObserveRequest { limit: rps per proxy, match: All[destination labels…, http…] }
//! ```

use std::collections::HashMap;

use linkerd2_proxy_api::http_types::HttpMethod;
use linkerd2_proxy_api::tap::ObserveRequest;
use linkerd2_proxy_api::tap::observe_request::Match;
use linkerd2_proxy_api::tap::observe_request::r#match::http::StringMatch;
use linkerd2_proxy_api::tap::observe_request::r#match::http::string_match::Match as StringMatchKind;
use linkerd2_proxy_api::tap::observe_request::r#match::{
    Http, Label, Match as MatchKind, Seq, http::Match as HttpMatch,
};

/// `max_rps` when the caller does not say (Linkerd's default).
pub const DEFAULT_MAX_RPS: u32 = 100;

/// Why a tap query was refused (400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// A parameter is required and missing.
    #[error("tap needs the `{0}` parameter")]
    Missing(&'static str),
    /// `kind` or the kind of `to` is not workload, service or namespace.
    #[error("unknown kind {0:?}: expected workload, service or namespace")]
    Kind(String),
    /// `to` is not `KIND/NS/NAME` (or `namespace/NS`).
    #[error("`to` must be KIND/NAMESPACE/NAME or namespace/NAME, not {0:?}")]
    To(String),
    /// `max_rps` is not a positive whole number.
    #[error("`max_rps` must be a whole number above 0, not {0:?}")]
    MaxRps(String),
    /// `method` is not an HTTP method.
    #[error("`method` is not an HTTP method: {0:?}")]
    Method(String),
}

/// The kinds of resource a tap can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    /// One workload.
    Workload,
    /// The workloads a service selects.
    Service,
    /// Every workload of a namespace.
    Namespace,
}

impl ResourceKind {
    fn parse(text: &str) -> Result<Self, QueryError> {
        match text {
            "workload" | "workloads" | "wl" => Ok(Self::Workload),
            "service" | "services" | "svc" => Ok(Self::Service),
            "namespace" | "namespaces" | "ns" => Ok(Self::Namespace),
            other => Err(QueryError::Kind(other.to_string())),
        }
    }

    /// Its name in messages and `to=` (`workload`, `service`, `namespace`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Workload => "workload",
            Self::Service => "service",
            Self::Namespace => "namespace",
        }
    }
}

/// A resource: a kind, a namespace and (except for a namespace) a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// What it is.
    pub kind: ResourceKind,
    /// Its namespace.
    pub namespace: String,
    /// Its name (`None` for a namespace).
    pub name: Option<String>,
}

impl std::fmt::Display for Resource {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.name {
            Some(name) => write!(
                formatter,
                "{}/{}/{name}",
                self.kind.as_str(),
                self.namespace
            ),
            None => write!(formatter, "namespace/{}", self.namespace),
        }
    }
}

impl Resource {
    /// `KIND/NS/NAME` or `namespace/NS`.
    fn parse_path(text: &str) -> Result<Self, QueryError> {
        let parts: Vec<&str> = text.split('/').collect();
        let bad = || QueryError::To(text.to_string());
        if parts.iter().any(|part| part.is_empty()) {
            return Err(bad());
        }
        match parts.as_slice() {
            [kind, namespace] => match ResourceKind::parse(kind)? {
                ResourceKind::Namespace => Ok(Self {
                    kind: ResourceKind::Namespace,
                    namespace: namespace.to_string(),
                    name: None,
                }),
                _ => Err(bad()),
            },
            [kind, namespace, name] => match ResourceKind::parse(kind)? {
                ResourceKind::Namespace => Err(bad()),
                kind => Ok(Self {
                    kind,
                    namespace: namespace.to_string(),
                    name: Some(name.to_string()),
                }),
            },
            _ => Err(bad()),
        }
    }

    /// The destination labels a proxy matches for requests sent to this
    /// resource (the labels discovery gives endpoints).
    fn destination_labels(&self) -> Vec<(&'static str, String)> {
        let mut labels = vec![("namespace", self.namespace.clone())];
        if let Some(name) = &self.name {
            labels.push((self.kind.as_str(), name.clone()));
        }
        labels
    }
}

/// A parsed tap query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapRequest {
    /// Whose proxies are tapped.
    pub resource: Resource,
    /// Only requests sent to this resource.
    pub to: Option<Resource>,
    /// Only requests with this method.
    pub method: Option<String>,
    /// Only requests with exactly this authority.
    pub authority: Option<String>,
    /// Only requests whose path starts with this.
    pub path: Option<String>,
    /// Requests per second over all the tapped proxies.
    pub max_rps: u32,
}

impl TapRequest {
    /// Parses `/api/tap`'s query parameters (`token` is ignored here).
    pub fn parse(query: &HashMap<String, String>) -> Result<Self, QueryError> {
        let get = |key: &str| {
            query
                .get(key)
                .map(|value| value.trim())
                .filter(|value| !value.is_empty())
        };
        let kind = ResourceKind::parse(get("kind").ok_or(QueryError::Missing("kind"))?)?;
        let namespace = get("namespace")
            .ok_or(QueryError::Missing("namespace"))?
            .to_string();
        let name = match kind {
            ResourceKind::Namespace => None,
            _ => Some(get("name").ok_or(QueryError::Missing("name"))?.to_string()),
        };
        let to = get("to").map(Resource::parse_path).transpose()?;
        let method = get("method")
            .map(|method| {
                let upper = method.to_ascii_uppercase();
                axum::http::Method::from_bytes(upper.as_bytes())
                    .map(|_| upper)
                    .map_err(|_| QueryError::Method(method.to_string()))
            })
            .transpose()?;
        let max_rps = match get("max_rps") {
            None => DEFAULT_MAX_RPS,
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|rps| *rps > 0)
                .ok_or_else(|| QueryError::MaxRps(text.to_string()))?,
        };
        Ok(Self {
            resource: Resource {
                kind,
                namespace,
                name,
            },
            to,
            method,
            authority: get("authority").map(str::to_string),
            path: get("path").map(str::to_string),
            max_rps,
        })
    }

    /// The `ObserveRequest` sent to each of `proxies` proxies: the match,
    /// and `limit` = this proxy's share of `max_rps` (one second's worth).
    pub fn observe_request(&self, proxies: usize) -> ObserveRequest {
        ObserveRequest {
            limit: rps_per_proxy(self.max_rps, proxies),
            r#match: Some(self.observe_match()),
            extract: None,
        }
    }

    /// `All[destination labels of `to`…, method, authority (exact), path
    /// (prefix)]`; an empty `All` matches every request.
    pub fn observe_match(&self) -> Match {
        let mut matches = Vec::new();
        for (key, value) in self
            .to
            .iter()
            .flat_map(|resource| resource.destination_labels())
        {
            matches.push(Match {
                r#match: Some(MatchKind::DestinationLabel(Label {
                    key: key.to_string(),
                    value,
                })),
            });
        }
        let http = |matcher: HttpMatch| Match {
            r#match: Some(MatchKind::Http(Http {
                r#match: Some(matcher),
            })),
        };
        if let Some(method) = &self.method
            && let Ok(method) = axum::http::Method::from_bytes(method.as_bytes())
        {
            matches.push(http(HttpMatch::Method(HttpMethod::from(method))));
        }
        if let Some(authority) = &self.authority {
            matches.push(http(HttpMatch::Authority(StringMatch {
                r#match: Some(StringMatchKind::Exact(authority.clone())),
            })));
        }
        if let Some(path) = &self.path {
            matches.push(http(HttpMatch::Path(StringMatch {
                r#match: Some(StringMatchKind::Prefix(path.clone())),
            })));
        }
        Match {
            r#match: Some(MatchKind::All(Seq { matches })),
        }
    }
}

/// Each proxy's share of `max_rps`: divided evenly, at least 1.
pub fn rps_per_proxy(max_rps: u32, proxies: usize) -> u32 {
    let proxies = u32::try_from(proxies.max(1)).unwrap_or(u32::MAX);
    (max_rps / proxies).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn rps_is_shared_at_least_one_each() {
        let cases = [
            (100, 1, 100),
            (100, 3, 33),
            (100, 0, 100),
            (2, 5, 1),
            (1, 1, 1),
            (10, 10, 1),
        ];
        for (max, proxies, expected) in cases {
            assert_eq!(rps_per_proxy(max, proxies), expected, "{max} / {proxies}");
        }
    }

    #[test]
    fn parses_queries() {
        let parsed = TapRequest::parse(&query(&[
            ("kind", "workload"),
            ("namespace", "demo"),
            ("name", "web"),
            ("to", "service/demo/books"),
            ("method", "get"),
            ("path", "/books"),
            ("max_rps", "7"),
            ("token", "ignored"),
        ]))
        .unwrap();
        assert_eq!(parsed.resource.to_string(), "workload/demo/web");
        assert_eq!(
            parsed.to.as_ref().map(ToString::to_string).as_deref(),
            Some("service/demo/books")
        );
        assert_eq!(parsed.method.as_deref(), Some("GET"));
        assert_eq!(parsed.max_rps, 7);
        let namespace =
            TapRequest::parse(&query(&[("kind", "ns"), ("namespace", "demo")])).unwrap();
        assert_eq!(namespace.resource.name, None);
        assert_eq!(namespace.max_rps, DEFAULT_MAX_RPS);
    }

    #[test]
    fn refuses_bad_queries() {
        let cases: [(&[(&str, &str)], QueryError); 7] = [
            (&[("namespace", "demo")], QueryError::Missing("kind")),
            (
                &[("kind", "workload"), ("name", "web")],
                QueryError::Missing("namespace"),
            ),
            (
                &[("kind", "workload"), ("namespace", "demo")],
                QueryError::Missing("name"),
            ),
            (
                &[("kind", "pod"), ("namespace", "demo")],
                QueryError::Kind("pod".into()),
            ),
            (
                &[
                    ("kind", "ns"),
                    ("namespace", "demo"),
                    ("to", "workload/demo"),
                ],
                QueryError::To("workload/demo".into()),
            ),
            (
                &[("kind", "ns"), ("namespace", "demo"), ("max_rps", "0")],
                QueryError::MaxRps("0".into()),
            ),
            (
                &[("kind", "ns"), ("namespace", "demo"), ("method", "G T")],
                QueryError::Method("G T".into()),
            ),
        ];
        for (pairs, expected) in cases {
            assert_eq!(TapRequest::parse(&query(pairs)), Err(expected), "{pairs:?}");
        }
    }

    #[test]
    fn builds_the_observe_match() {
        let request = TapRequest::parse(&query(&[
            ("kind", "namespace"),
            ("namespace", "demo"),
            ("to", "workload/shop/books"),
            ("authority", "books:80"),
            ("path", "/b"),
            ("max_rps", "10"),
        ]))
        .unwrap();
        let observe = request.observe_request(4);
        assert_eq!(observe.limit, 2);
        let Some(MatchKind::All(Seq { matches })) = observe.r#match.unwrap().r#match else {
            panic!("expected All");
        };
        let kinds: Vec<String> = matches
            .iter()
            .map(|matcher| match matcher.r#match.as_ref().unwrap() {
                MatchKind::DestinationLabel(label) => format!("{}={}", label.key, label.value),
                MatchKind::Http(Http {
                    r#match: Some(HttpMatch::Authority(authority)),
                }) => format!("authority {:?}", authority.r#match),
                MatchKind::Http(Http {
                    r#match: Some(HttpMatch::Path(path)),
                }) => format!("path {:?}", path.r#match),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "namespace=shop",
                "workload=books",
                "authority Some(Exact(\"books:80\"))",
                "path Some(Prefix(\"/b\"))",
            ]
        );
        let everything = TapRequest::parse(&query(&[("kind", "ns"), ("namespace", "x")]))
            .unwrap()
            .observe_match();
        assert_eq!(
            everything.r#match,
            Some(MatchKind::All(Seq { matches: vec![] }))
        );
    }
}
