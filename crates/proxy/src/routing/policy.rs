//! Pure decisions of outbound routing, each tested by a table:
//!
//! - [`lookup_path`]: is this target looked up in discovery, and as what?
//! - [`select_route`]: the first profile route matching a request.
//! - [`select_backend`]: a weighted choice among a split's backends.
//! - [`classify`]: success or failure of a response by a route's classes.

use std::net::IpAddr;

use crate::config::IpNetwork;
use crate::metrics::labels::Classification;
use crate::routing::profile::{DstOverride, ResponseClass, Route};

/// The discovery path (`GetProfile` target) for `host:port`, or `None`
/// when discovery does not cover it: IP addresses must be in one of
/// `networks`, names must end with one of `suffixes` (`.` covers every
/// name). Names are compared case-insensitively, trailing dots ignored.
pub(crate) fn lookup_path(
    host: &str,
    port: u16,
    suffixes: &[String],
    networks: &[IpNetwork],
) -> Option<String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        if !networks.iter().any(|network| network.contains(ip)) {
            return None;
        }
        return Some(match ip {
            IpAddr::V4(ip) => format!("{ip}:{port}"),
            IpAddr::V6(ip) => format!("[{ip}]:{port}"),
        });
    }
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    if name.is_empty() {
        return None;
    }
    let covered = suffixes.iter().any(|suffix| {
        let suffix = suffix.trim_end_matches('.');
        suffix.is_empty()
            || name == suffix
            || (name.len() > suffix.len()
                && name.ends_with(suffix)
                && name.as_bytes()[name.len() - suffix.len() - 1] == b'.')
    });
    covered.then(|| format!("{name}:{port}"))
}

/// The index of the first route matching `method` and `path`; `None` means
/// the default route.
pub(crate) fn select_route(routes: &[Route], method: &http::Method, path: &str) -> Option<usize> {
    routes
        .iter()
        .position(|route| route.condition.matches(method, path))
}

/// Picks a backend index from `weights` with `random` uniform in `[0, 1)`.
/// Returns `None` only when `weights` is empty or all zero. Takes the
/// weights as an iterator (walked twice), so a caller reads them in place,
/// with no list made per request.
pub(crate) fn select_backend(
    weights: impl Iterator<Item = u32> + Clone,
    random: f64,
) -> Option<usize> {
    let total: u64 = weights.clone().map(u64::from).sum();
    if total == 0 {
        return None;
    }
    let mut point = (random * total as f64) as u64;
    let mut last_weighted = None;
    for (index, weight) in weights.enumerate() {
        let weight = u64::from(weight);
        if point < weight {
            return Some(index);
        }
        point -= weight;
        if weight > 0 {
            last_weighted = Some(index);
        }
    }
    last_weighted
}

/// Whether a profile's `dst_overrides` split traffic: anything but none or
/// the service itself alone (which Linkerd 2.9-style Destination servers
/// send for every service; weft's controller sends none without a split).
/// Decides whether an outbound policy may route instead.
pub(crate) fn is_split(dst_overrides: &[DstOverride], name: &str) -> bool {
    match dst_overrides {
        [] => false,
        [only] => {
            only.authority.trim_end_matches('.') != name.trim_end_matches('.')
                && only.authority.replace(".:", ":") != name
        }
        _ => true,
    }
}

/// Classifies a response by a route's response classes: the first class
/// matching the status decides; with none matching, gRPC responses fail on
/// a non-zero `grpc-status` and others on 5xx (and any stream error fails).
pub(crate) fn classify(
    classes: &[ResponseClass],
    status: u16,
    grpc_status: Option<u32>,
    error: Option<&str>,
) -> Classification {
    if error.is_some() {
        return Classification::Failure;
    }
    match classes.iter().find(|class| class.condition.matches(status)) {
        Some(class) if class.is_failure => Classification::Failure,
        Some(_) => Classification::Success,
        None => Classification::of(status, grpc_status, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::convert::anchored;
    use crate::routing::profile::{RequestMatch, ResponseMatch};

    #[test]
    fn splits() {
        let to = |authority: &str| DstOverride {
            authority: authority.to_string(),
            weight: 10_000,
        };
        let name = "web.shop.svc.cluster.local:80";
        let table = [
            (vec![], false),
            (vec![to("web.shop.svc.cluster.local:80")], false),
            (vec![to("web.shop.svc.cluster.local.:80")], false),
            (vec![to("web-v2.shop.svc.cluster.local:80")], true),
            (vec![to(name), to("web-v2.shop.svc.cluster.local:80")], true),
        ];
        for (overrides, expected) in table {
            assert_eq!(is_split(&overrides, name), expected, "{overrides:?}");
        }
    }

    #[test]
    fn lookup_paths() {
        let suffixes = vec!["svc.cluster.local.".to_string()];
        let networks = vec![
            IpNetwork::parse("10.0.0.0/8").unwrap(),
            IpNetwork::parse("fd00::/8").unwrap(),
        ];
        let table: &[(&str, u16, Option<&str>)] = &[
            (
                "web.shop.svc.cluster.local",
                80,
                Some("web.shop.svc.cluster.local:80"),
            ),
            (
                "Web.Shop.SVC.cluster.local.",
                8080,
                Some("web.shop.svc.cluster.local:8080"),
            ),
            ("svc.cluster.local", 80, Some("svc.cluster.local:80")),
            ("notsvc.cluster.local", 80, None),
            ("example.com", 443, None),
            ("10.96.0.10", 80, Some("10.96.0.10:80")),
            ("192.168.1.1", 80, None),
            ("[fd00::5]", 80, Some("[fd00::5]:80")),
            ("fd00::5", 80, Some("[fd00::5]:80")),
            ("[2001:db8::1]", 80, None),
            ("", 80, None),
        ];
        for (host, port, expected) in table {
            assert_eq!(
                lookup_path(host, *port, &suffixes, &networks).as_deref(),
                *expected,
                "{host}:{port}"
            );
        }
        let everything = vec![".".to_string()];
        assert_eq!(
            lookup_path("example.com", 80, &everything, &[]).as_deref(),
            Some("example.com:80")
        );
        assert_eq!(lookup_path("10.0.0.1", 80, &everything, &[]), None);
    }

    fn route(name: &str, condition: RequestMatch) -> Route {
        Route {
            name: name.to_string(),
            condition,
            response_classes: Vec::new(),
            is_retryable: false,
            timeout: None,
        }
    }

    #[test]
    fn first_matching_route_wins() {
        let routes = vec![
            route(
                "get books",
                RequestMatch::All(vec![
                    RequestMatch::Method(http::Method::GET),
                    RequestMatch::Path(anchored("/books/[^/]+").unwrap()),
                ]),
            ),
            route(
                "any books",
                RequestMatch::Path(anchored("/books.*").unwrap()),
            ),
            route(
                "not post",
                RequestMatch::Not(Box::new(RequestMatch::Method(http::Method::POST))),
            ),
        ];
        let table: &[(http::Method, &str, Option<usize>)] = &[
            (http::Method::GET, "/books/1", Some(0)),
            (http::Method::PUT, "/books/1", Some(1)),
            (http::Method::GET, "/books", Some(1)),
            (http::Method::GET, "/authors", Some(2)),
            (http::Method::POST, "/authors", None),
            (http::Method::GET, "/x/books/1", Some(2)),
        ];
        for (method, path, expected) in table {
            assert_eq!(
                select_route(&routes, method, path),
                *expected,
                "{method} {path}"
            );
        }
        assert_eq!(select_route(&[], &http::Method::GET, "/"), None);
    }

    #[test]
    fn weighted_backends() {
        let table: &[(&[u32], f64, Option<usize>)] = &[
            (&[9000, 1000], 0.0, Some(0)),
            (&[9000, 1000], 0.8999, Some(0)),
            (&[9000, 1000], 0.9, Some(1)),
            (&[9000, 1000], 0.99999, Some(1)),
            (&[0, 10], 0.0, Some(1)),
            (&[10, 0], 0.99, Some(0)),
            (&[10000], 0.5, Some(0)),
            (&[], 0.5, None),
            (&[0, 0], 0.5, None),
        ];
        for (weights, random, expected) in table {
            assert_eq!(
                select_backend(weights.iter().copied(), *random),
                *expected,
                "{weights:?} at {random}"
            );
        }
        // Over many uniform draws the shares follow the weights.
        let draws = 10_000;
        let picked_second = (0..draws)
            .filter(|draw| {
                select_backend([9000, 1000].into_iter(), *draw as f64 / draws as f64) == Some(1)
            })
            .count();
        assert_eq!(picked_second, 1000);
    }

    #[test]
    fn classification_by_route_classes() {
        let classes = vec![
            ResponseClass {
                condition: ResponseMatch::Status { min: 500, max: 503 },
                is_failure: true,
            },
            ResponseClass {
                condition: ResponseMatch::Status { min: 504, max: 504 },
                is_failure: false,
            },
            ResponseClass {
                condition: ResponseMatch::Status { min: 404, max: 404 },
                is_failure: true,
            },
        ];
        type Row<'a> = (
            &'a [ResponseClass],
            u16,
            Option<u32>,
            Option<&'a str>,
            Classification,
        );
        let table: &[Row<'_>] = &[
            (&classes, 500, None, None, Classification::Failure),
            (&classes, 504, None, None, Classification::Success),
            (&classes, 404, None, None, Classification::Failure),
            (&classes, 200, None, None, Classification::Success),
            (&classes, 599, None, None, Classification::Failure),
            (&classes, 200, Some(14), None, Classification::Failure),
            (
                &classes,
                504,
                None,
                Some("timeout"),
                Classification::Failure,
            ),
            (&[], 503, None, None, Classification::Failure),
            (&[], 200, Some(0), None, Classification::Success),
        ];
        for (classes, status, grpc, error, expected) in table {
            assert_eq!(
                classify(classes, *status, *grpc, *error),
                *expected,
                "{status} {grpc:?} {error:?}"
            );
        }
    }
}
