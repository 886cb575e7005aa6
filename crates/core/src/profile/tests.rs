//! Table tests for route matching, response classification and validation.

use std::time::Duration;

use super::*;

const PROFILE: &str = r#"
apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata: {name: web.shop.svc.cluster.local, namespace: shop}
spec:
  routes:
  - name: GET /api/items/{id}
    condition: {method: GET, pathRegex: '/api/items/[^/]+'}
    isRetryable: true
    timeout: 250ms
    responseClasses:
    - condition: {status: {min: 500, max: 504}}
      isFailure: true
    - condition: {status: {min: 404}}
      isFailure: true
    - condition: {not: {status: {min: 200, max: 599}}}
      isFailure: false
  - name: writes
    condition:
      any:
      - method: POST
      - method: PUT
  - name: not-health
    condition:
      all:
      - pathRegex: '/admin/.*'
      - not: {pathRegex: '/admin/health'}
  retryBudget: {retryRatio: 0.3, minRetriesPerSecond: 5, ttl: 20s}
"#;

fn profile() -> ServiceProfile {
    serde_saphyr::from_str(PROFILE).expect("profile parses")
}

#[test]
fn parses_linkerd_field_names() {
    let profile = profile();
    let route = &profile.spec.routes[0];
    assert_eq!(route.name, "GET /api/items/{id}");
    assert!(route.is_retryable);
    assert_eq!(
        route.timeout.as_ref().map(GoDuration::value),
        Some(Duration::from_millis(250))
    );
    assert_eq!(route.response_classes.len(), 3);
    let budget = profile.spec.retry_budget.expect("budget");
    assert_eq!(
        (
            budget.retry_ratio,
            budget.min_retries_per_second,
            budget.ttl.value()
        ),
        (0.3, 5, Duration::from_secs(20))
    );
}

#[test]
fn first_matching_route_wins_and_paths_are_anchored() {
    let profile = profile();
    let cases: &[(&str, &str, Option<&str>)] = &[
        ("GET", "/api/items/7", Some("GET /api/items/{id}")),
        ("GET", "/api/items/7/extra", None),
        ("GET", "/prefix/api/items/7", None),
        ("POST", "/api/items/7", Some("writes")),
        ("PUT", "/anything", Some("writes")),
        ("GET", "/admin/users", Some("not-health")),
        ("GET", "/admin/health", None),
        ("GET", "/admin/healthz", Some("not-health")),
        ("DELETE", "/", None),
    ];
    for (method, path, expected) in cases {
        let route = first_matching_route(&profile.spec.routes, method, path)
            .map(|route| route.name.as_str());
        assert_eq!(route, *expected, "{method} {path}");
    }
}

#[test]
fn already_anchored_patterns_are_kept() {
    let regex = PathRegex::new("^/a$").unwrap();
    assert!(regex.is_match("/a"));
    assert!(!regex.is_match("/ab"));
    assert_eq!(regex.as_str(), "^/a$");
}

#[test]
fn classifies_responses() {
    let profile = profile();
    let classified = Some(&profile.spec.routes[0]);
    let unclassified = Some(&profile.spec.routes[1]);
    let cases: &[(Option<&RouteSpec>, u16, Option<i32>, Classification)] = &[
        (classified, 500, None, Classification::Failure),
        (classified, 504, None, Classification::Failure),
        (classified, 404, None, Classification::Failure),
        (classified, 505, None, Classification::Failure),
        (classified, 200, None, Classification::Success),
        (classified, 200, Some(14), Classification::Failure),
        (unclassified, 503, None, Classification::Failure),
        (unclassified, 404, None, Classification::Success),
        (unclassified, 200, Some(0), Classification::Success),
        (unclassified, 200, Some(13), Classification::Failure),
        (unclassified, 200, Some(5), Classification::Success),
        (None, 502, None, Classification::Failure),
        (None, 302, None, Classification::Success),
    ];
    for (index, (route, status, grpc_status, expected)) in cases.iter().enumerate() {
        assert_eq!(
            classify_response(*route, *status, *grpc_status),
            *expected,
            "case {index}: {status} {grpc_status:?}"
        );
    }
}

#[test]
fn response_matches_combine() {
    let server_errors = ResponseMatch::status(500, 599).unwrap();
    let not_found = ResponseMatch::status(404, 404).unwrap();
    let any = ResponseMatch {
        status: None,
        all: None,
        any: Some(vec![server_errors.clone(), not_found]),
        not: None,
    };
    let all_empty = ResponseMatch {
        status: None,
        all: Some(vec![]),
        any: None,
        not: None,
    };
    let any_empty = ResponseMatch {
        status: None,
        all: None,
        any: Some(vec![]),
        not: None,
    };
    let cases: &[(&ResponseMatch, u16, bool)] = &[
        (&server_errors, 500, true),
        (&server_errors, 499, false),
        (&any, 404, true),
        (&any, 503, true),
        (&any, 200, false),
        (&all_empty, 200, true),
        (&any_empty, 200, false),
    ];
    for (condition, status, expected) in cases {
        assert_eq!(
            condition.matches(*status),
            *expected,
            "{condition:?} {status}"
        );
    }
}

#[test]
fn rejects_invalid_profiles() {
    let cases: &[(&str, &str)] = &[
        ("pathRegex: '/api/items/[^/]+'", "pathRegex: '/a/(unclosed'"),
        (
            "condition: {method: GET, pathRegex: '/api/items/[^/]+'}",
            "condition: {}",
        ),
        ("timeout: 250ms", "timeout: soon"),
        ("{min: 500, max: 504}", "{min: 504, max: 500}"),
        ("{min: 404}", "{min: 700}"),
        ("{not: {status: {min: 200, max: 599}}}", "{}"),
        ("retryRatio: 0.3", "retryRatio: -1"),
        ("ttl: 20s", "tll: 20s"),
        ("isRetryable: true", "isRetriable: true"),
    ];
    for (good, bad) in cases {
        assert!(PROFILE.contains(good), "fixture contains {good}");
        let broken = PROFILE.replacen(good, bad, 1);
        let result: Result<ServiceProfile, _> = serde_saphyr::from_str(&broken);
        assert!(result.is_err(), "{bad} should be rejected");
    }
}

#[test]
fn default_retry_budget() {
    let budget = RetryBudget::default();
    assert_eq!(
        (
            budget.retry_ratio,
            budget.min_retries_per_second,
            budget.ttl.value()
        ),
        (0.2, 10, Duration::from_secs(10))
    );
}
