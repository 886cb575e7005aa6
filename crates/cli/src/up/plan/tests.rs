//! Table tests of the planning decisions.

use super::*;

fn controller() -> ControllerAddrs {
    ControllerAddrs {
        destination: "127.0.0.1:8086".parse().unwrap(),
        identity: "127.0.0.1:8080".parse().unwrap(),
        admin: "127.0.0.1:9990".parse().unwrap(),
        web: "127.0.0.1:8084".parse().unwrap(),
    }
}

fn workload(name: &str, app_port: u16, proxy: &str, run: bool) -> String {
    let run = if run {
        format!(
            "\n  run: {{command: [weft-demo, books, --listen, '127.0.0.1:{app_port}'], env: {{A: b}}}}"
        )
    } else {
        String::new()
    };
    format!(
        "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {{name: {name}, namespace: demo, labels: {{app: {name}}}}}\n\
         spec:\n  serviceAccount: {name}\n  addresses: [127.0.0.1]\n  ports: [{{name: http, port: {app_port}}}]\n  \
         meshed: true\n  proxy: {proxy}{run}\n"
    )
}

const SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata: {name: books, namespace: demo}\nspec:\n  selector: {app: books}\n  ports: [{port: 80, targetPort: http}]\n";

fn mesh(documents: &[String]) -> String {
    documents
        .iter()
        .map(|document| format!("---\n{document}"))
        .collect()
}

/// The environment of meshed `workload`'s proxy, by name, with tokens
/// under `/state/tokens` and a placeholder trust anchor.
fn proxy_env_map(workload: &WorkloadPlan) -> BTreeMap<String, String> {
    let context = ProxyContext {
        controller: controller(),
        token_dir: PathBuf::from("/state/tokens"),
        trust_anchors_pem: "PEM".to_string(),
    };
    proxy_env(workload, &workload.proxy.unwrap(), &context)
        .into_iter()
        .collect()
}

fn plan_text(text: &str) -> Result<Plan, PlanError> {
    let workloads = parse_workloads(text)?;
    plan(&workloads, controller(), Path::new("/mesh"))
}

#[test]
fn workloads_with_a_command_become_apps_and_proxies() {
    let text = mesh(&[
        SERVICE.to_string(),
        workload(
            "books",
            7020,
            "{inboundPort: 7021, outboundPort: 7022, adminPort: 7023, tapPort: 7024}",
            true,
        ),
        workload("external", 7030, "{inboundPort: 7031}", false),
    ]);
    let plan = plan_text(&text).unwrap();
    assert_eq!(
        plan.workloads.len(),
        1,
        "only workloads that name a command"
    );
    let books = &plan.workloads[0];
    assert_eq!(books.key(), "demo/books");
    assert_eq!(
        books.identity,
        "books.demo.serviceaccount.identity.weft.cluster.local"
    );
    assert_eq!(books.app.working_dir, Path::new("/mesh"));
    let proxy = books.proxy.unwrap();
    assert_eq!(proxy.forward, "127.0.0.1:7020".parse().unwrap());
    assert_eq!(proxy.admin, "127.0.0.1:7023".parse().unwrap());
    let owners: Vec<String> = plan
        .ports()
        .iter()
        .map(|claim| format!("{} {}", claim.addr.port(), claim.owner))
        .collect();
    assert_eq!(
        owners,
        [
            "8086 controller destination",
            "8080 controller identity",
            "9990 controller admin",
            "8084 controller API and dashboard",
            "7020 app of demo/books",
            "7021 inbound of demo/books",
            "7022 outbound of demo/books",
            "7023 admin of demo/books",
            "7024 tap of demo/books",
        ]
    );
}

#[test]
fn clashes_inside_the_file_are_named() {
    for (documents, expected) in [
        (
            // Two workloads with default proxy ports.
            vec![
                workload("a", 7010, "{inboundPort: 7011}", true),
                workload("b", 7020, "{inboundPort: 7021}", true),
            ],
            vec![
                "port 4140 is claimed twice: outbound of demo/a and outbound of demo/b",
                "port 4191 is claimed twice: admin of demo/a and admin of demo/b",
                "port 4190 is claimed twice: tap of demo/a and tap of demo/b",
            ],
        ),
        (
            // An app on the controller's admin port.
            vec![workload(
                "a",
                9990,
                "{inboundPort: 7011, outboundPort: 7012, adminPort: 7013, tapPort: 7014}",
                true,
            )],
            vec!["port 9990 is claimed twice: controller admin and app of demo/a"],
        ),
        (
            // Distinct ports: fine.
            vec![workload(
                "a",
                7010,
                "{inboundPort: 7011, outboundPort: 7012, adminPort: 7013, tapPort: 7014}",
                true,
            )],
            vec![],
        ),
    ] {
        match plan_text(&mesh(&documents)) {
            Ok(_) => assert!(expected.is_empty(), "expected clashes {expected:?}"),
            Err(PlanError::Clashes(found)) => assert_eq!(found, expected),
            Err(other) => panic!("unexpected error {other}"),
        }
    }
}

#[test]
fn overlapping_addresses() {
    for (a, b, clash) in [
        ("127.0.0.1:80", "127.0.0.1:80", true),
        ("127.0.0.1:80", "127.0.0.2:80", false),
        ("0.0.0.0:80", "127.0.0.2:80", true),
        ("127.0.0.1:80", "127.0.0.1:81", false),
    ] {
        assert_eq!(
            overlaps(a.parse().unwrap(), b.parse().unwrap()),
            clash,
            "{a} {b}"
        );
    }
}

#[test]
fn bad_files_are_reported_by_document() {
    for (text, expected) in [
        ("---\nkind: Workload\nmetadata: {name: a}\n", "document 1"),
        ("---\n{}\n---\n: : :\n", "document 2"),
        (
            "---\napiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: a}\nspec: {addresses: [127.0.0.1], meshed: true, run: {command: [x]}}\n",
            "default/a: a meshed workload needs a port",
        ),
        (
            "---\napiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: a, namespace: demo}\nspec: {addresses: [127.0.0.1], run: {command: []}}\n",
            "demo/a: spec.run.command is empty",
        ),
    ] {
        let error = plan_text(text).unwrap_err().to_string();
        assert!(error.contains(expected), "{text:?}: {error}");
    }
}

#[test]
fn environments() {
    let text = mesh(&[workload(
        "web",
        7010,
        "{inboundPort: 7011, outboundPort: 7012, adminPort: 7013, tapPort: 7014}",
        true,
    )]);
    let plan = plan_text(&text).unwrap();
    let web = &plan.workloads[0];
    let app: BTreeMap<String, String> = app_env(web).into_iter().collect();
    // Both spellings (curl reads only http_proxy for http:// URLs), CONNECT
    // for https://, loopback direct.
    for name in ["http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"] {
        assert_eq!(app[name], "http://127.0.0.1:7012", "{name}");
    }
    for name in ["no_proxy", "NO_PROXY"] {
        assert_eq!(app[name], "localhost,127.0.0.1,::1", "{name}");
    }
    assert_eq!(app["A"], "b");
    let proxy = proxy_env_map(web);
    for (name, value) in [
        ("WEFT_PROXY_INBOUND_LISTEN_ADDR", "127.0.0.1:7011"),
        ("WEFT_PROXY_OUTBOUND_LISTEN_ADDR", "127.0.0.1:7012"),
        ("WEFT_PROXY_ADMIN_LISTEN_ADDR", "127.0.0.1:7013"),
        ("WEFT_PROXY_TAP_LISTEN_ADDR", "127.0.0.1:7014"),
        ("WEFT_PROXY_INBOUND_FORWARD_ADDR", "127.0.0.1:7010"),
        ("WEFT_PROXY_INBOUND_PORTS", "7010"),
        ("WEFT_PROXY_DESTINATION_SVC_ADDR", "127.0.0.1:8086"),
        ("WEFT_PROXY_IDENTITY_SVC_ADDR", "127.0.0.1:8080"),
        (
            "WEFT_PROXY_IDENTITY_TOKEN_FILE",
            "/state/tokens/demo/web.token",
        ),
        (
            "WEFT_PROXY_IDENTITY_LOCAL_NAME",
            "web.demo.serviceaccount.identity.weft.cluster.local",
        ),
        ("WEFT_PROXY_IDENTITY_TRUST_ANCHORS", "PEM"),
        ("WEFT_PROXY_POLICY_WORKLOAD", r#"{"ns":"demo","pod":"web"}"#),
        (
            "WEFT_PROXY_DESTINATION_CONTEXT",
            r#"{"ns":"demo","pod":"web"}"#,
        ),
    ] {
        assert_eq!(proxy[name], value, "{name}");
    }
    // No annotation: the proxy's own default until the controller answers.
    assert!(!proxy.contains_key("WEFT_PROXY_INBOUND_DEFAULT_POLICY"));
}

#[test]
fn the_default_inbound_policy_annotation_reaches_the_proxy_and_is_checked() {
    let annotated = |value: &str| {
        workload(
            "web",
            7050,
            "{inboundPort: 7051, outboundPort: 7052, adminPort: 7053, tapPort: 7054}",
            true,
        )
        .replace(
            "metadata: {name: web, namespace: demo",
            &format!(
                "metadata: {{annotations: {{config.linkerd.io/default-inbound-policy: {value}}}, name: web, namespace: demo"
            ),
        )
    };
    let plan = plan_text(&mesh(&[annotated("deny")])).unwrap();
    let web = &plan.workloads[0];
    let proxy = proxy_env_map(web);
    assert_eq!(proxy["WEFT_PROXY_INBOUND_DEFAULT_POLICY"], "deny");
    let error = plan_text(&mesh(&[annotated("nobody")]))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("demo/web: metadata.annotations.config.linkerd.io/default-inbound-policy: \"nobody\" is not one of all-unauthenticated,"),
        "{error}"
    );
}

#[test]
fn the_proxy_lets_peers_name_only_the_apps_declared_ports() {
    let text = workload(
        "web",
        7040,
        "{inboundPort: 7041, outboundPort: 7042, adminPort: 7043, tapPort: 7044}",
        true,
    )
    .replace(
        "ports: [{name: http, port: 7040}]",
        "ports: [{name: metrics, port: 7045}, {name: http, port: 7040}]",
    );
    let plan = plan_text(&mesh(&[text])).unwrap();
    let web = &plan.workloads[0];
    let proxy = proxy_env_map(web);
    assert_eq!(proxy["WEFT_PROXY_INBOUND_FORWARD_ADDR"], "127.0.0.1:7040");
    assert_eq!(proxy["WEFT_PROXY_INBOUND_PORTS"], "7045,7040");
}

#[test]
fn documents_split_at_separators() {
    assert_eq!(split_documents("a: 1\n---\nb: 2\n"), ["a: 1\n", "b: 2\n"]);
    assert_eq!(split_documents("---\na: 1\n"), ["", "a: 1\n"]);
}

/// A run workload named `name` (namespace demo) depending on `depends_on`.
fn dependent(name: &str, port: u16, depends_on: &str) -> String {
    format!(
        "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {{name: {name}, namespace: demo}}\n\
         spec:\n  addresses: [127.0.0.1]\n  ports: [{{port: {port}}}]\n  \
         run: {{command: [app], dependsOn: [{depends_on}]}}\n"
    )
}

#[test]
fn apps_start_after_what_they_depend_on() {
    for (documents, expected) in [
        // No dependencies: file order.
        (
            vec![dependent("a", 7001, ""), dependent("b", 7002, "")],
            Ok(vec!["demo/a", "demo/b"]),
        ),
        // web waits for books and authors; authors (namespaced) for books.
        (
            vec![
                dependent("web", 7001, "books, demo/authors"),
                dependent("authors", 7002, "books"),
                dependent("books", 7003, ""),
            ],
            Ok(vec!["demo/books", "demo/authors", "demo/web"]),
        ),
        (
            vec![dependent("web", 7001, "bookz")],
            Err(
                "demo/web: spec.run.dependsOn names demo/bookz, which is not a workload with spec.run in this file",
            ),
        ),
        (
            vec![dependent("web", 7001, "web")],
            Err("spec.run.dependsOn goes round in a circle: demo/web -> demo/web"),
        ),
        (
            vec![
                dependent("a", 7001, ""),
                dependent("b", 7002, "c"),
                dependent("c", 7003, "d"),
                dependent("d", 7004, "b, a"),
            ],
            Err("spec.run.dependsOn goes round in a circle: demo/b -> demo/c -> demo/d -> demo/b"),
        ),
    ] {
        let outcome = plan_text(&mesh(&documents)).map(|plan| {
            plan.start_order
                .iter()
                .map(|&position| plan.workloads[position].key())
                .collect::<Vec<_>>()
        });
        match (outcome, expected) {
            (Ok(order), Ok(expected)) => assert_eq!(order, expected),
            (Err(error), Err(expected)) => assert_eq!(error.to_string(), expected),
            (outcome, expected) => panic!("{outcome:?}, expected {expected:?}"),
        }
    }
}
