//! Table tests of port allocation and the effective mesh file.

use super::*;

fn workload(name: &str, proxy: &str, run: bool) -> String {
    let run = if run { "\n  run: {command: [app]}" } else { "" };
    format!(
        "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {{name: {name}, namespace: demo}}\n\
         spec:\n  addresses: [127.0.0.1]\n  ports: [{{name: http, port: 7000}}]\n  meshed: true{proxy}{run}\n"
    )
}

fn parse(documents: &[String]) -> (String, Vec<Workload>) {
    let text: String = documents
        .iter()
        .map(|document| format!("---\n{document}"))
        .collect();
    let workloads = crate::up::plan::parse_workloads(&text).unwrap();
    (text, workloads)
}

fn ports(allocations: &Allocations, name: &str) -> [Option<u16>; 4] {
    allocations.workloads[&format!("demo/{name}")].as_array()
}

#[test]
fn missing_ports_are_allocated_from_the_base_skipping_named_and_taken_ones() {
    let (_, workloads) = parse(&[
        workload("a", "", true),
        workload("b", "\n  proxy: {adminPort: 7502}", true),
        workload("external", "", false),
    ]);
    // 7500 is the controller's, 7501 is taken on this host, 7502 is b's.
    let allocations = allocate(
        &workloads,
        &Allocations::default(),
        7500,
        &[7500],
        &|port| port == 7501,
    );
    assert_eq!(ports(&allocations, "a"), [7503, 7504, 7505, 7506].map(Some));
    assert_eq!(
        ports(&allocations, "b"),
        [Some(7507), Some(7508), None, Some(7509)]
    );
    assert!(
        !allocations.workloads.contains_key("demo/external"),
        "weft up does not run it"
    );
}

#[test]
fn allocations_are_stable_across_restarts() {
    let (_, workloads) = parse(&[workload("a", "", true), workload("b", "", true)]);
    let first = allocate(&workloads, &Allocations::default(), 7500, &[], &|_| false);
    // Restarted with the ports still held (say, by a stuck process): kept,
    // so the probe names them instead of silently moving.
    let again = allocate(&workloads, &first, 7500, &[], &|_| true);
    assert_eq!(again, first);
    // A workload added in front does not move the others.
    let (_, more) = parse(&[
        workload("new", "", true),
        workload("a", "", true),
        workload("b", "", true),
    ]);
    let grown = allocate(&more, &first, 7500, &[], &|_| false);
    assert_eq!(ports(&grown, "a"), ports(&first, "a"));
    assert_eq!(ports(&grown, "b"), ports(&first, "b"));
    assert_eq!(ports(&grown, "new"), [7508, 7509, 7510, 7511].map(Some));
    // A workload removed keeps its ports reserved.
    let (_, fewer) = parse(&[workload("b", "", true), workload("c", "", true)]);
    let shrunk = allocate(&fewer, &first, 7500, &[], &|_| false);
    assert_eq!(ports(&shrunk, "a"), ports(&first, "a"));
    assert_eq!(ports(&shrunk, "c"), [7508, 7509, 7510, 7511].map(Some));
    // Another base starts afresh.
    let moved = allocate(&workloads, &first, 9000, &[], &|_| false);
    assert_eq!(ports(&moved, "a"), [9000, 9001, 9002, 9003].map(Some));
    // A port the file now names for something else is allocated again.
    let (_, named) = parse(&[
        workload("a", "", true),
        workload("b", "\n  proxy: {inboundPort: 7500}", true),
    ]);
    let reallocated = allocate(&named, &first, 7500, &[], &|_| false);
    assert_eq!(
        ports(&reallocated, "a"),
        [Some(7504), Some(7501), Some(7502), Some(7503)]
    );
}

#[test]
fn the_effective_file_fills_ports_and_keeps_line_numbers() {
    let service = "apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: demo}\n# a comment\nspec: {ports: [{port: 80}]}\n".to_string();
    let (text, workloads) = parse(&[
        service.clone(),
        workload("a", "\n  proxy: {adminPort: 7600}", true),
        workload("external", "", false),
    ]);
    let allocations = allocate(&workloads, &Allocations::default(), 7500, &[], &|_| false);
    let effective = render(&text, &allocations);
    assert_eq!(effective.lines().count(), text.lines().count());
    assert!(effective.contains(&service), "{effective}");
    let rendered = crate::up::plan::parse_workloads(&effective).unwrap();
    let proxy = rendered[0].proxy_settings().unwrap();
    assert_eq!(
        (
            proxy.inbound_port,
            proxy.outbound_port,
            proxy.admin_port,
            proxy.tap_port
        ),
        (7500, 7501, 7600, 7502)
    );
    assert_eq!(rendered[1], workloads[1], "not run: as written");
    // Line numbers: every document starts where it did.
    let starts = |text: &str| -> Vec<usize> {
        text.lines()
            .enumerate()
            .filter(|(_, line)| *line == "---")
            .map(|(number, _)| number)
            .collect()
    };
    assert_eq!(starts(&effective), starts(&text));
    // A file that does not parse is copied.
    assert_eq!(render("---\n: : :\n", &allocations), "---\n: : :\n");
}
