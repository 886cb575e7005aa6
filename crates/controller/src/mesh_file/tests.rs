//! Mesh-file tests: parsing (every problem with document and line), the
//! example file, and reloading real temp files.

use std::net::SocketAddr;
use std::sync::PoisonError;
use std::time::{Duration, Instant};

use super::*;
use crate::catalog::{Catalog, ServicePort, SharedCatalog};

fn example_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/mesh.yaml")
}

fn endpoint_addresses(
    catalog: &SharedCatalog,
    namespace: &str,
    name: &str,
    port: u16,
) -> Option<Vec<SocketAddr>> {
    let catalog = catalog.lock().unwrap_or_else(PoisonError::into_inner);
    catalog
        .endpoints(&ServicePort::new(namespace, name, port))
        .map(|set| set.keys().copied().collect())
}

fn addresses(texts: &[&str]) -> Vec<SocketAddr> {
    texts.iter().map(|text| text.parse().unwrap()).collect()
}

#[test]
fn the_example_mesh_file_loads() {
    let objects = read_mesh_file(&example_path()).expect("example is valid");
    assert_eq!(objects.len(), 10);
    let mut catalog = Catalog::default();
    catalog.reset(objects).unwrap();

    let web = catalog
        .endpoints(&ServicePort::new("shop", "web", 80))
        .unwrap();
    assert_eq!(
        web.keys().copied().collect::<Vec<_>>(),
        addresses(&["127.0.0.1:8081", "127.0.0.2:8082", "127.0.0.3:8083"])
    );
    let canary = catalog
        .endpoints(&ServicePort::new("shop", "web-v2", 80))
        .unwrap();
    assert_eq!(
        canary.keys().copied().collect::<Vec<_>>(),
        addresses(&["127.0.0.3:8083"])
    );
    let db = catalog
        .endpoints(&ServicePort::new("shop", "db", 5432))
        .unwrap();
    assert!(db.values().all(|endpoint| !endpoint.is_meshed()));

    let profile = catalog
        .profile(&ServicePort::new("shop", "web", 80))
        .unwrap();
    let route = weft_core::profile::first_matching_route(&profile.routes, "GET", "/api/items/42")
        .expect("route");
    assert!(route.is_retryable);
    assert_eq!(
        route.timeout.as_ref().map(|timeout| timeout.value()),
        Some(Duration::from_millis(300))
    );
    let weights: Vec<u32> = profile
        .dst_overrides
        .iter()
        .map(|destination| destination.weight)
        .collect();
    assert_eq!(weights, vec![9000, 1000]);
    assert_eq!(
        catalog.service_at("10.96.0.20".parse().unwrap()),
        Some(weft_core::names::ServiceName::new("shop", "db"))
    );
}

const BROKEN: &str = "\
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
---
# a workload with a typo
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: w, namespace: shop}
spec:
  addresses: [10.0.0.1]
  mehsed: true
---
apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata: {name: web.shop.svc.cluster.local, namespace: shop}
spec:
  routes:
  - name: r
    condition: {pathRegex: '(x'}
    timeout: 1 minute
---
kind: Pod
apiVersion: v1
---
metadata: {name: x}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
---
apiVersion: v1
kind: Service
metadata: {namespace: shop}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: w2}
spec: {addresses: [not-an-ip]}
---
apiVersion: v1
kind: Service
metadata: {name: a
";

#[test]
fn every_problem_is_reported_with_document_and_line() {
    let problems = parse_mesh(BROKEN).unwrap_err();
    let summary: Vec<(usize, u64, &str)> = problems
        .iter()
        .map(|problem| (problem.document, problem.line, problem.reason.as_str()))
        .collect();
    let expected: &[(usize, u64, &str)] = &[
        (2, 11, "unknown field `mehsed`"),
        (3, 19, "invalid pathRegex \"(x\": unclosed group"),
        (4, 22, "unsupported kind \"Pod\""),
        (5, 25, "apiVersion and kind are required"),
        (
            6,
            27,
            "duplicate Service shop/web (first defined in document 1)",
        ),
        (7, 31, "Service: metadata.name is required"),
        (8, 38, "invalid IP address syntax"),
        (9, 42, "unclosed bracket"),
    ];
    assert_eq!(summary.len(), expected.len(), "{problems:#?}");
    for (found, wanted) in summary.iter().zip(expected) {
        assert_eq!((found.0, found.1), (wanted.0, wanted.1), "{found:?}");
        assert!(
            found.2.contains(wanted.2),
            "{found:?} should mention {:?}",
            wanted.2
        );
    }
    let error = MeshFileError::Invalid {
        path: PathBuf::from("mesh.yaml"),
        problems,
    };
    assert!(
        error
            .to_string()
            .starts_with("mesh.yaml: document 2, line 11: unknown field `mehsed`"),
        "{error}"
    );
}

#[test]
fn documents_are_split_and_numbered() {
    type Numbered = Vec<(usize, u64, u64)>;
    let cases: &[(&str, Numbered)] = &[
        ("a: 1\n", vec![(1, 1, 1)]),
        ("---\na: 1\n---\nb: 2\n", vec![(1, 1, 2), (2, 3, 4)]),
        (
            "# header\n---\na: 1\n...\n---\n# only a comment\n---\nb: 2\n",
            vec![(1, 2, 3), (2, 7, 8)],
        ),
        ("--- {a: 1}\n", vec![(1, 1, 1)]),
        ("", vec![]),
    ];
    for (text, expected) in cases {
        let found: Vec<(usize, u64, u64)> = split_documents(text)
            .iter()
            .map(|document| (document.number, document.first_line, document.content_line))
            .collect();
        assert_eq!(&found, expected, "{text:?}");
    }
}

/// A fresh directory for one test's files, removed when dropped.
struct TempDirectory(PathBuf);

impl TempDirectory {
    fn new(name: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("weft-mesh-file-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDirectory {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes like an editor that saves atomically: a temp file renamed over the target.
fn write_atomically(path: &Path, text: &str) {
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, text).unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

fn with_extra_workload(text: &str) -> String {
    format!(
        "{text}---\napiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {{name: web-3, namespace: shop, labels: {{app: web, version: v1}}}}\nspec: {{addresses: [127.0.0.9], ports: [{{name: http, port: 8089}}], meshed: true}}\n"
    )
}

#[test]
fn reload_keeps_the_last_good_version_on_a_bad_edit() {
    let directory = TempDirectory::new("reload");
    let path = directory.0.join("mesh.yaml");
    let good = std::fs::read_to_string(example_path()).unwrap();
    std::fs::write(&path, &good).unwrap();
    let catalog = Catalog::default().shared();
    let mut source = MeshFileSource::new(&path, catalog.clone());
    let workloads = source.subscribe_workloads();
    assert!(
        workloads.borrow().is_empty(),
        "nothing before the first load"
    );

    assert!(source.reload().unwrap());
    assert!(!source.reload().unwrap(), "unchanged text is not reloaded");
    assert_eq!(workloads.borrow().len(), 4, "the example's Workloads");
    let before = endpoint_addresses(&catalog, "shop", "web", 80).unwrap();
    assert_eq!(before.len(), 3);

    let broken = with_extra_workload(&good).replace("port: 8089", "port: eighty");
    std::fs::write(&path, &broken).unwrap();
    let error = source.reload().unwrap_err();
    assert_eq!(error.problems().len(), 1);
    assert_eq!(error.problems()[0].document, 11);
    assert_eq!(
        endpoint_addresses(&catalog, "shop", "web", 80).unwrap(),
        before,
        "catalog unchanged"
    );
    assert!(
        source.reload().is_ok_and(|changed| !changed),
        "the same bad text is reported once"
    );
    let status = source.status();
    assert_eq!(
        (status.good_loads, status.failed_loads, status.objects),
        (1, 1, 10)
    );
    assert!(!status.is_current());
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|error| error.contains("document 11, line")),
        "{status:?}"
    );

    std::fs::write(&path, with_extra_workload(&good)).unwrap();
    assert!(source.reload().unwrap());
    assert_eq!(
        endpoint_addresses(&catalog, "shop", "web", 80)
            .unwrap()
            .len(),
        4
    );
    let status = source.status();
    assert!(status.is_current());
    assert_eq!((status.good_loads, status.objects), (2, 11));
    assert_eq!(workloads.borrow().len(), 5, "republished after a good load");

    std::fs::remove_file(&path).unwrap();
    assert!(matches!(source.reload(), Err(MeshFileError::Read { .. })));
    assert_eq!(
        endpoint_addresses(&catalog, "shop", "web", 80)
            .unwrap()
            .len(),
        4,
        "a missing file keeps serving"
    );
}

async fn eventually(what: &str, mut condition: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !condition() {
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    start.elapsed()
}

#[tokio::test]
async fn watched_edits_take_effect_within_a_second() {
    let directory = TempDirectory::new("watch");
    let path = directory.0.join("mesh.yaml");
    let good = std::fs::read_to_string(example_path()).unwrap();
    std::fs::write(&path, &good).unwrap();
    let catalog = Catalog::default().shared();
    let source = MeshFileSource::new(&path, catalog.clone());
    let status = source.status_handle();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(source.run(async {
        let _ = stopped.await;
    }));

    eventually("the first load", || {
        status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .good_loads
            == 1
    })
    .await;
    let web_count = || endpoint_addresses(&catalog, "shop", "web", 80).map(|found| found.len());
    assert_eq!(web_count(), Some(3));

    // A broken edit: reported with its line, the catalog keeps serving.
    write_atomically(
        &path,
        &with_extra_workload(&good).replace("meshed: true}", "meshed: maybe}"),
    );
    eventually("the bad edit to be reported", || {
        status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .failed_loads
            == 1
    })
    .await;
    let last_error = status
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .last_error
        .clone()
        .unwrap();
    assert!(last_error.contains("document 11, line"), "{last_error}");
    assert_eq!(web_count(), Some(3));

    // The fix lands within a second.
    write_atomically(&path, &with_extra_workload(&good));
    let took = eventually("the fixed edit", || web_count() == Some(4)).await;
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert!(
        status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_current()
    );

    stop.send(()).unwrap();
    task.await.unwrap();
}

#[test]
fn reloads_parse_only_changed_documents_and_find_deletions() {
    let service = "---\napiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\nspec: {selector: {app: web}, ports: [{port: 80}]}\n";
    let workload = |name: &str, ip: &str| {
        format!(
            "---\napiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {{name: {name}, namespace: shop, labels: {{app: web}}}}\nspec: {{addresses: [{ip}]}}\n"
        )
    };
    let first = format!(
        "{service}{}{}",
        workload("a", "10.0.0.1"),
        workload("b", "10.0.0.2")
    );
    let loaded = parse_changes(&first, &DocumentIndex::default()).unwrap();
    assert_eq!((loaded.applied.len(), loaded.deleted.len()), (3, 0));
    assert_eq!(loaded.index.len(), 3);

    // `b` changed address, `a` is gone, `c` is new; the service is untouched.
    let second = format!(
        "{service}{}{}",
        workload("b", "10.0.0.9"),
        workload("c", "10.0.0.3")
    );
    let changes = parse_changes(&second, &loaded.index).unwrap();
    let applied: Vec<String> = changes
        .applied
        .iter()
        .map(|object| object.key().unwrap().name)
        .collect();
    assert_eq!(applied, ["b", "c"]);
    assert_eq!(
        changes.deleted,
        vec![ObjectKey::new(Kind::Workload, "shop", "a")]
    );

    // An unchanged document repeated is still a duplicate.
    let doubled = format!("{service}{service}");
    let problems = parse_changes(&doubled, &loaded.index).unwrap_err();
    assert!(problems[0].reason.contains("duplicate"), "{problems:?}");
}

#[test]
fn marker_lines_with_content_parse() {
    let text = "--- {apiVersion: v1, kind: Service, metadata: {name: a}}\n--- \r\napiVersion: v1\r\nkind: Service\r\nmetadata: {name: b}\r\n";
    let objects = parse_mesh(text).expect("both documents parse");
    assert_eq!(objects.len(), 2);
}

#[test]
fn limits_refuse_big_files_and_too_many_documents_unparsed() {
    let directory = TempDirectory::new("limits");
    let path = directory.0.join("mesh.yaml");
    let good = std::fs::read_to_string(example_path()).unwrap();
    std::fs::write(&path, &good).unwrap();
    let catalog = Catalog::default().shared();
    let limits = MeshFileLimits {
        max_bytes: good.len() as u64 + 10,
        max_objects: 10,
    };
    let mut source = MeshFileSource::new(&path, catalog.clone()).with_limits(limits);
    assert!(source.reload().unwrap());
    assert_eq!(source.status().parses, 1);

    let bigger = format!("{good}# {}\n", "x".repeat(20));
    write_atomically(&path, &bigger);
    let error = source.reload().unwrap_err();
    assert!(
        matches!(error, MeshFileError::TooLarge { size, limit, .. }
            if size == bigger.len() as u64 && limit == limits.max_bytes),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.starts_with(&path.display().to_string()),
        "{message}"
    );
    assert!(message.contains("(--mesh-file-max-bytes)"), "{message}");
    assert!(
        !source.reload().unwrap(),
        "the same refusal is not repeated"
    );

    let eleven = with_extra_workload(&good);
    assert_eq!(count_documents(&eleven), 11);
    let mut limits = limits;
    limits.max_bytes = 1024 * 1024;
    let mut source = MeshFileSource::new(&path, catalog.clone()).with_limits(limits);
    std::fs::write(&path, &good).unwrap();
    assert!(source.reload().unwrap());
    write_atomically(&path, &eleven);
    let error = source.reload().unwrap_err();
    assert!(
        matches!(
            error,
            MeshFileError::TooManyObjects {
                count: 11,
                limit: 10,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(source.status().parses, 1, "refused before parsing");
    assert_eq!(
        endpoint_addresses(&catalog, "shop", "web", 80)
            .unwrap()
            .len(),
        3,
        "the last good version serves"
    );
}

#[test]
fn an_unchanged_file_is_not_parsed_again_even_when_rewritten() {
    let directory = TempDirectory::new("rewritten");
    let path = directory.0.join("mesh.yaml");
    let good = std::fs::read_to_string(example_path()).unwrap();
    std::fs::write(&path, &good).unwrap();
    let mut source = MeshFileSource::new(&path, Catalog::default().shared());
    assert!(source.reload().unwrap());
    for _ in 0..3 {
        write_atomically(&path, &good);
        assert!(!source.reload().unwrap());
    }
    assert_eq!(source.status().parses, 1);
    assert_eq!(source.status().good_loads, 1);
}

#[test]
fn alias_bombs_and_deep_nesting_are_refused_per_document() {
    let mut laughs = String::from(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: lol\n  namespace: shop\n  annotations:\n    a0: &a0 \"lol\"\n",
    );
    for level in 1..8 {
        let list = vec![format!("*a{}", level - 1); 8].join(", ");
        laughs.push_str(&format!("    a{level}: &a{level} [{list}]\n"));
    }
    let deep = format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: deep, namespace: shop}}\nspec:\n  selector: {}{}\n",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    for (name, text) in [("laughs", laughs), ("deep", deep)] {
        let started = Instant::now();
        let problems = parse_mesh(&text).expect_err(name);
        assert_eq!(problems.len(), 1, "{name}: {problems:?}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{name}: took {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn routes_load_and_bad_route_fields_are_named_with_their_line() {
    let text = "\
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: books, namespace: shop}
spec:
  parentRefs: [{kind: Service, name: books, port: 7002}]
  rules: [{backendRefs: [{name: books-v2, port: 7002}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: greeter, namespace: shop}
spec:
  parentRefs: [{kind: Service, name: greeter, port: 50051}]
";
    let changes = parse_mesh(text).expect("routes parse");
    let kinds: Vec<Kind> = changes.iter().map(MeshObject::kind).collect();
    assert_eq!(kinds, vec![Kind::HttpRoute, Kind::GrpcRoute]);
    let broken = text.replace("port: 7002}]}]", "weight: 2}]}]");
    let problems = parse_mesh(&broken).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0]
            .reason
            .contains("spec.rules[0].backendRefs[0].port: required"),
        "{problems:#?}"
    );
}
