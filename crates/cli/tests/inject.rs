//! `weft inject` and `weft uninject`, run as the real `weft` binary on the
//! manifests in `tests/fixtures/inject/` and `examples/kubernetes/`:
//!
//! - every workload kind gets the proxy in its pod template, and `weft
//!   uninject` gives back the input (compared as JSON values); other
//!   objects pass through unchanged, in input order; Lists item by item;
//! - stdin, files, directories, JSON and `--output FILE` read and write the
//!   same; empty input writes nothing;
//! - injecting twice is injecting once; `weft.io/inject: disabled` and
//!   host-network templates are left without a proxy, and reported;
//! - bad input (YAML syntax, a workload without a template, missing or
//!   invalid trust anchors) fails naming what is wrong, with nothing on
//!   stdout;
//! - the three-tier example's injected output matches its golden file
//!   (`WEFT_UPDATE_GOLDEN=1` rewrites it) and passes
//!   `kubernetes-validate --strict` for Kubernetes 1.33.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use weft_test_support::k8s_tools::{kubernetes_validate, kubernetes_validate_strict};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/inject")
}

fn fixture(name: &str) -> String {
    fixtures().join(name).display().to_string()
}

fn three_tier() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/kubernetes/three-tier.yaml")
        .display()
        .to_string()
}

/// The flags every injection here is given: the test trust anchors and a
/// fixed version (the goldens do not change with weft's).
fn inject_flags() -> Vec<String> {
    vec![
        "--identity-trust-anchors-file".to_string(),
        fixture("trust-anchors.pem"),
        "--proxy-version".to_string(),
        "v0.0.0-test".to_string(),
    ]
}

/// Runs `weft ARGS` with `stdin` as its standard input.
fn weft(args: &[String], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// (stdout, stderr) of `weft ARGS`; panics with stderr unless it succeeds.
fn weft_ok(args: &[String], stdin: &str) -> (String, String) {
    let output = weft(args, stdin);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "weft {args:?}: {stderr}");
    (String::from_utf8(output.stdout).unwrap(), stderr)
}

/// stderr of `weft ARGS`, which must fail with nothing on stdout.
fn weft_fails(args: &[String], stdin: &str) -> String {
    let output = weft(args, stdin);
    assert!(!output.status.success(), "weft {args:?} succeeded");
    assert!(
        output.stdout.is_empty(),
        "nothing on stdout on error, got: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8(output.stderr).unwrap()
}

fn inject_args(inputs: &[String]) -> Vec<String> {
    let mut args = vec!["inject".to_string()];
    args.extend(inject_flags());
    args.extend(inputs.iter().cloned());
    args
}

/// `weft inject FILE`: (stdout, stderr).
fn inject_file(path: &str) -> (String, String) {
    weft_ok(&inject_args(&[path.to_string()]), "")
}

/// `weft inject` of `text` on stdin: stdout.
fn inject_text(text: &str) -> String {
    weft_ok(&inject_args(&[]), text).0
}

/// `weft uninject` of `text` on stdin: (stdout, stderr).
fn uninject_text(text: &str) -> (String, String) {
    weft_ok(&["uninject".to_string()], text)
}

/// The documents of a multi-document stream, as JSON values.
fn documents(text: &str) -> Vec<Value> {
    let options = serde_saphyr::options! { legacy_octal_numbers: true };
    serde_saphyr::from_str_multiple_with_options::<Value, Vec<Value>>(text, options).unwrap()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// Where each kind keeps its pod.
fn pod_pointer(document: &Value) -> Option<&'static str> {
    match (document["apiVersion"].as_str()?, document["kind"].as_str()?) {
        ("apps/v1", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet")
        | ("batch/v1", "Job")
        | ("v1", "ReplicationController") => Some("/spec/template"),
        ("batch/v1", "CronJob") => Some("/spec/jobTemplate/spec/template"),
        ("v1", "Pod") => Some(""),
        _ => None,
    }
}

fn container_names(pod: &Value, field: &str) -> Vec<String> {
    pod["spec"][field]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|container| container["name"].as_str().map(str::to_string))
        .collect()
}

/// Whether a pod (template) has weft-init then weft-proxy first among its
/// init containers, the proxy a native sidecar.
fn has_proxy(pod: &Value) -> bool {
    let names = container_names(pod, "initContainers");
    names.len() >= 2
        && names[0] == "weft-init"
        && names[1] == "weft-proxy"
        && pod["spec"]["initContainers"][1]["restartPolicy"] == "Always"
}

fn annotation<'a>(pod: &'a Value, name: &str) -> Option<&'a str> {
    pod["metadata"]["annotations"][name].as_str()
}

fn identity(document: &Value) -> (String, String) {
    (
        document["kind"].as_str().unwrap_or_default().to_string(),
        document["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

#[test]
fn every_kind_is_injected_and_uninjects_to_the_input() {
    let input = read(&fixture("kinds.yaml"));
    let (injected, report) = inject_file(&fixture("kinds.yaml"));
    let before = documents(&input);
    let after = documents(&injected);
    assert_eq!(
        before.iter().map(identity).collect::<Vec<_>>(),
        after.iter().map(identity).collect::<Vec<_>>(),
        "every document, in input order"
    );
    let mut workloads = 0;
    for (original, document) in before.iter().zip(&after) {
        let (kind, name) = identity(document);
        let Some(pointer) = pod_pointer(document) else {
            assert_eq!(original, document, "{kind} {name} passes through");
            assert!(
                report.contains(&format!(
                    "{} {name:?} unchanged (not a workload)",
                    kind.to_lowercase()
                )),
                "{report}"
            );
            continue;
        };
        workloads += 1;
        let pod = document.pointer(pointer).unwrap();
        assert!(has_proxy(pod), "{kind} {name}: {pod:#}");
        assert_eq!(annotation(pod, "weft.io/inject"), Some("enabled"));
        assert_eq!(
            annotation(pod, "weft.io/proxy-version"),
            Some("v0.0.0-test")
        );
        // The pod's own init containers still run, after the proxy's.
        let original_pod = original.pointer(pointer).unwrap();
        let own = container_names(original_pod, "initContainers");
        assert_eq!(container_names(pod, "initContainers")[2..], own[..]);
        assert!(
            report.contains(&format!("{} {name:?} injected", kind.to_lowercase())),
            "{report}"
        );
        // Outside the pod template, nothing changed.
        let mut without_pod = document.clone();
        let mut original_without_pod = original.clone();
        if !pointer.is_empty() {
            *without_pod.pointer_mut(pointer).unwrap() = Value::Null;
            *original_without_pod.pointer_mut(pointer).unwrap() = Value::Null;
            assert_eq!(without_pod, original_without_pod, "{kind} {name}");
        }
    }
    assert_eq!(workloads, 8, "every kind of the fixture");
    assert!(
        report.ends_with("summary: 8 injected, 3 not workloads\n"),
        "{report}"
    );

    let (uninjected, uninject_report) = uninject_text(&injected);
    assert_eq!(documents(&uninjected), before);
    assert!(
        uninject_report.contains("deployment \"web\" uninjected"),
        "{uninject_report}"
    );
    assert!(
        uninject_report.ends_with("summary: 8 uninjected, 3 not workloads\n"),
        "{uninject_report}"
    );
    // Strings that YAML 1.1 would read as numbers or booleans stay strings.
    let settings = &documents(&injected)[0];
    assert_eq!(settings["data"]["mode"], "0644");
    assert_eq!(settings["data"]["enabled"], "yes");
}

#[test]
fn lists_are_injected_item_by_item() {
    let input = read(&fixture("list.yaml"));
    let (injected, report) = inject_file(&fixture("list.yaml"));
    let after = documents(&injected);
    assert_eq!(after.len(), 1, "still one List");
    let items = after[0]["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert!(has_proxy(&items[0]["spec"]["template"]));
    assert_eq!(items[1], documents(&input)[0]["items"][1]);
    assert!(has_proxy(&items[2]["spec"]["template"]));
    assert_eq!(
        report,
        "deployment \"web\" injected\nservice \"web\" unchanged (not a workload)\n\
         job \"once\" injected\nsummary: 2 injected, 1 not workloads\n"
    );
    assert_eq!(documents(&uninject_text(&injected).0), documents(&input));
}

#[test]
fn stdin_files_directories_and_output_file_agree() {
    let input = read(&fixture("kinds.yaml"));
    let (from_file, _) = inject_file(&fixture("kinds.yaml"));
    assert_eq!(inject_text(&input), from_file, "stdin, no argument");
    let (from_dash, _) = weft_ok(&inject_args(&["-".to_string()]), &input);
    assert_eq!(from_dash, from_file, "stdin as -");

    // Several inputs: one stream, in argument order.
    let (both, _) = weft_ok(
        &inject_args(&[fixture("list.yaml"), "-".to_string()]),
        &input,
    );
    let mut expected = documents(&inject_file(&fixture("list.yaml")).0);
    expected.extend(documents(&from_file));
    assert_eq!(documents(&both), expected);

    // A directory: its YAML files by name, other files ignored.
    let dir = std::env::temp_dir().join(format!("weft-inject-dir-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("nested")).unwrap();
    std::fs::write(dir.join("b.yml"), &input).unwrap();
    std::fs::write(dir.join("a.yaml"), read(&fixture("list.yaml"))).unwrap();
    std::fs::write(dir.join("notes.txt"), "not: yaml: at all: [").unwrap();
    std::fs::write(dir.join("nested/c.yaml"), "{").unwrap();
    let (from_dir, _) = weft_ok(&inject_args(&[dir.display().to_string()]), "");
    assert_eq!(documents(&from_dir), expected);

    // --output FILE: nothing on stdout, the same stream in the file, which
    // may be the input itself.
    let in_place = dir.join("b.yml");
    let mut args = inject_args(&[in_place.display().to_string()]);
    args.extend(["--output".to_string(), in_place.display().to_string()]);
    let (stdout, report) = weft_ok(&args, "");
    assert_eq!(stdout, "");
    assert!(report.contains("summary: 8 injected"), "{report}");
    assert_eq!(read(&in_place.display().to_string()), from_file);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn injecting_twice_is_injecting_once() {
    let (once, _) = inject_file(&fixture("kinds.yaml"));
    let (twice, report) = weft_ok(&inject_args(&[]), &once);
    assert_eq!(twice, once);
    assert!(
        report.contains("deployment \"web\" already injected"),
        "{report}"
    );
    assert!(
        report.ends_with("summary: 8 already injected, 3 not workloads\n"),
        "{report}"
    );
    // Uninjecting what has no proxy changes nothing.
    let input = read(&fixture("kinds.yaml"));
    let (uninjected, report) = uninject_text(&input);
    assert_eq!(documents(&uninjected), documents(&input));
    assert!(
        report.contains("deployment \"web\" unchanged (no weft proxy)"),
        "{report}"
    );
}

#[test]
fn opted_out_and_host_network_templates_get_no_proxy() {
    let input = read(&fixture("opt-out.yaml"));
    let (injected, report) = inject_file(&fixture("opt-out.yaml"));
    let before = documents(&input);
    let after = documents(&injected);

    // weft.io/inject: disabled is the user's word: untouched.
    assert_eq!(after[0], before[0]);
    assert!(
        report.contains("deployment \"legacy-admin\" skipped: weft.io/inject: disabled"),
        "{report}"
    );

    // hostNetwork: no proxy, the reason on the template and in the report.
    let template = &after[1]["spec"]["template"];
    assert!(!has_proxy(template), "{template:#}");
    assert!(container_names(template, "initContainers").is_empty());
    let reason = annotation(template, "weft.io/inject-skipped").unwrap();
    assert!(reason.contains("hostNetwork"), "{reason}");
    assert!(
        report.contains(&format!("daemonset \"node-exporter\" skipped: {reason}")),
        "{report}"
    );

    // A setting the injector cannot read: no proxy, the reason named.
    let template = &after[2]["spec"]["template"];
    assert!(!has_proxy(template), "{template:#}");
    let reason = annotation(template, "weft.io/inject-skipped").unwrap();
    assert!(
        reason.contains("config.weft.io/proxy-cpu-limit"),
        "{reason}"
    );
    assert!(
        report.contains(&format!("deployment \"typo\" skipped: {reason}")),
        "{report}"
    );
    assert!(report.ends_with("summary: 3 skipped\n"), "{report}");

    // Uninject takes the reason (and the enabled it wrote) away again.
    assert_eq!(documents(&uninject_text(&injected).0), before);
}

#[test]
fn yaml_errors_name_the_file_document_and_line() {
    let path = fixture("bad-syntax.yaml");
    let stderr = weft_fails(&inject_args(std::slice::from_ref(&path)), "");
    assert!(
        stderr.contains(&format!("{path}: document 3, line ")),
        "{stderr}"
    );
    let stderr = weft_fails(&["uninject".to_string()], &read(&path));
    assert!(stderr.contains("<stdin>: document 3, line "), "{stderr}");
    // A good file before the bad one: still nothing written.
    let stderr = weft_fails(&inject_args(&[fixture("kinds.yaml"), path.clone()]), "");
    assert!(stderr.contains("bad-syntax.yaml: document 3"), "{stderr}");
    // A missing file is named.
    let missing = fixture("missing.yaml");
    let stderr = weft_fails(&inject_args(std::slice::from_ref(&missing)), "");
    assert!(stderr.contains(&missing), "{stderr}");
}

#[test]
fn workloads_without_pod_templates_are_errors() {
    let path = fixture("no-template.yaml");
    let stderr = weft_fails(&inject_args(std::slice::from_ref(&path)), "");
    assert!(
        stderr.contains("Deployment \"broken\" has no pod template"),
        "{stderr}"
    );
    assert!(stderr.contains(&path), "{stderr}");
    let stderr = weft_fails(&["uninject".to_string(), path], "");
    assert!(stderr.contains("Deployment \"broken\""), "{stderr}");
}

#[test]
fn trust_anchors_are_required_and_checked() {
    let input = read(&fixture("kinds.yaml"));
    let stderr = weft_fails(&["inject".to_string()], &input);
    assert!(stderr.contains("--identity-trust-anchors-file"), "{stderr}");

    let dir = std::env::temp_dir().join(format!("weft-inject-anchors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let key_only = dir.join("key.pem");
    std::fs::write(
        &key_only,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let missing = dir.join("missing.pem");
    for (file, says) in [
        (&empty, "holds no CERTIFICATE"),
        (&garbage, "holds no CERTIFICATE"),
        (&key_only, "holds no CERTIFICATE"),
        (&missing, "No such file"),
    ] {
        let args = [
            "inject".to_string(),
            "--identity-trust-anchors-file".to_string(),
            file.display().to_string(),
        ];
        let stderr = weft_fails(&args, &input);
        let named = format!("--identity-trust-anchors-file {}", file.display());
        assert!(
            stderr.contains(&named) && stderr.contains(says),
            "expected {named:?} and {says:?} in: {stderr}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The environment variable `name` of the weft-proxy container of `pod`.
fn proxy_env<'a>(pod: &'a Value, name: &str) -> Option<&'a str> {
    pod["spec"]["initContainers"]
        .as_array()?
        .iter()
        .find(|container| container["name"] == "weft-proxy")?["env"]
        .as_array()?
        .iter()
        .find(|variable| variable["name"] == name)?["value"]
        .as_str()
}

#[test]
fn flags_reach_the_injected_proxy() {
    let input = read(&fixture("list.yaml"));
    let mut args = inject_args(&[]);
    args.extend(
        [
            "--proxy-image",
            "registry.example/weft-proxy",
            "--image-pull-policy",
            "Never",
            "--cluster-domain",
            "cluster.example",
            "--default-inbound-policy",
            "cluster-authenticated",
            "--cluster-networks",
            "10.42.0.0/16,fd42::/48",
            "--proxy-log-level",
            "debug",
        ]
        .map(str::to_string),
    );
    let (injected, _) = weft_ok(&args, &input);
    let pod = &documents(&injected)[0]["items"][0]["spec"]["template"];
    let proxy = &pod["spec"]["initContainers"][1];
    assert_eq!(proxy["image"], "registry.example/weft-proxy:v0.0.0-test");
    assert_eq!(proxy["imagePullPolicy"], "Never");
    assert_eq!(
        pod["spec"]["initContainers"][0]["image"],
        "registry.example/weft-proxy:v0.0.0-test"
    );
    let anchors = read(&fixture("trust-anchors.pem"));
    assert_eq!(
        proxy_env(pod, "WEFT_PROXY_IDENTITY_TRUST_ANCHORS"),
        Some(anchors.as_str())
    );
    assert_eq!(
        proxy_env(pod, "WEFT_PROXY_INBOUND_DEFAULT_POLICY"),
        Some("cluster-authenticated")
    );
    assert_eq!(
        proxy_env(pod, "WEFT_PROXY_POLICY_CLUSTER_NETWORKS"),
        Some("10.42.0.0/16,fd42::/48")
    );
    assert_eq!(proxy_env(pod, "WEFT_PROXY_LOG"), Some("debug"));
    assert!(
        proxy_env(pod, "WEFT_PROXY_DESTINATION_SVC_ADDR")
            .is_some_and(|address| address.contains(".svc.cluster.example.")),
        "{pod:#}"
    );

    // Bad values are refused before anything is read.
    for (flag, value) in [
        ("--default-inbound-policy", "open"),
        ("--cluster-networks", "10.0.0.0/33"),
        ("--image-pull-policy", "Sometimes"),
        ("--proxy-image", ""),
        ("--proxy-image", "registry.example/weft-proxy:v1"),
    ] {
        let mut args = inject_args(&[]);
        args.extend([flag.to_string(), value.to_string()]);
        let stderr = weft_fails(&args, &input);
        assert!(stderr.contains(flag), "{flag}: {stderr}");
    }
}

fn check_golden(name: &str, actual: &str) {
    weft_test_support::golden::check(&fixtures().join(name), actual, "`weft inject` output");
}

#[test]
fn three_tier_example_matches_golden_and_round_trips() {
    let (injected, report) = inject_file(&three_tier());
    check_golden("three-tier.injected.yaml", &injected);
    check_golden("three-tier.report.txt", &report);

    let input = documents(&read(&three_tier()));
    let after = documents(&injected);
    let mut meshed = Vec::new();
    for document in &after {
        if let Some(pointer) = pod_pointer(document) {
            let pod = document.pointer(pointer).unwrap();
            assert!(has_proxy(pod), "{:?}", identity(document));
            meshed.push(identity(document).1);
        }
    }
    assert_eq!(meshed, ["web", "api", "db", "backup"]);
    // The injected output, uninjected, is the example again.
    assert_eq!(documents(&uninject_text(&injected).0), input);
}

#[test]
fn injected_manifests_pass_kubernetes_validate_strict() {
    let Some(tool) = kubernetes_validate() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("weft-inject-validate-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = Vec::new();
    for (name, input) in [
        ("three-tier.yaml", three_tier()),
        ("kinds.yaml", fixture("kinds.yaml")),
        ("opt-out.yaml", fixture("opt-out.yaml")),
    ] {
        let (injected, _) = inject_file(&input);
        if name == "three-tier.yaml" {
            for document in documents(&injected) {
                if let Some(pointer) = pod_pointer(&document) {
                    let pod = document.pointer(pointer).unwrap();
                    assert!(has_proxy(pod), "{:?}", identity(&document));
                }
            }
        }
        // The custom resource has no schema to validate against.
        let known: Vec<Value> = documents(&injected)
            .into_iter()
            .filter(|document| document["apiVersion"] != "example.com/v1")
            .collect();
        let path = dir.join(name);
        let mut text = String::new();
        for document in &known {
            text.push_str("---\n");
            text.push_str(&serde_saphyr::to_string(document).unwrap());
        }
        std::fs::write(&path, text).unwrap();
        files.push(path);
    }
    kubernetes_validate_strict(&tool, &files, &["1.33.0"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn json_and_empty_inputs() {
    // JSON is YAML: `kubectl get -o json` output injects the same.
    let yaml = documents(&read(&fixture("list.yaml")));
    let json = serde_json::to_string_pretty(&yaml[0]).unwrap();
    assert_eq!(
        documents(&inject_text(&json)),
        documents(&inject_file(&fixture("list.yaml")).0)
    );
    // Nothing in, nothing out.
    let (stdout, report) = weft_ok(&inject_args(&[]), "# only a comment\n---\n");
    assert_eq!(stdout, "");
    assert_eq!(report, "summary: no objects\n");
}

/// The arguments the injector gives `weft-init` are the ones `weft-init`
/// takes: every injected template's init arguments (the three-tier app,
/// whose `api` skips ports and subnets, and an ingress pod) parse, check and
/// plan rules, and the annotations' values arrive in them.
#[test]
fn injected_init_arguments_are_accepted_by_weft_init() {
    let ingress = r#"apiVersion: v1
kind: Pod
metadata:
  name: edge
  annotations:
    weft.io/inject: ingress
    config.weft.io/skip-outbound-ports: "25, 4000-4010"
    config.weft.io/skip-subnets: "10.1.0.0/16,fd00::/8"
spec:
  containers:
  - name: edge
    image: nginx
"#;
    let mut checked = 0;
    for input in [read(&three_tier()), ingress.to_string()] {
        for document in documents(&inject_text(&input)) {
            let Some(pointer) = pod_pointer(&document) else {
                continue;
            };
            let pod = document.pointer(pointer).expect("the pod template");
            let init = &pod["spec"]["initContainers"][0];
            assert_eq!(init["name"], "weft-init", "{:?}", identity(&document));
            let arguments: Vec<String> = init["args"]
                .as_array()
                .expect("weft-init has args")
                .iter()
                .map(|argument| argument.as_str().unwrap().to_string())
                .collect();
            let parsed = <weft_init::args::Args as clap::Parser>::try_parse_from(
                std::iter::once("weft-init".to_string()).chain(arguments.iter().cloned()),
            )
            .unwrap_or_else(|error| panic!("{:?}: {arguments:?}: {error}", identity(&document)));
            let config = weft_init::ports::Config::from_args(&parsed).unwrap_or_else(|error| {
                panic!("{:?}: {arguments:?}: {error}", identity(&document))
            });
            let commands = weft_init::run::dry_run_commands(&config);
            assert!(!commands.is_empty(), "{:?}", identity(&document));
            let inbound_only = annotation(pod, "weft.io/inject") == Some("ingress");
            assert_eq!(
                parsed.inbound_only,
                inbound_only,
                "{:?}",
                identity(&document)
            );
            if inbound_only {
                assert!(
                    parsed.skip_outbound_ports.contains("4000-4010"),
                    "{arguments:?}"
                );
                assert!(parsed.skip_subnets.contains("10.1.0.0/16"), "{arguments:?}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 5, "four three-tier templates and the ingress pod");
}
