//! Table tests of `--transparent`'s decisions: names, addresses, the
//! effective file, hosts files, the steps and the processes' environment.

use super::*;
use crate::up::plan::{self, Placement};

const MESH: &str = "\
---
apiVersion: v1
kind: Service
metadata: {name: books, namespace: shop}
spec:
  selector: {app: books}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: fixed, namespace: other}
spec:
  clusterIP: 10.96.0.10
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: headless, namespace: shop}
spec:
  clusterIP: None
---
apiVersion: v1
kind: Service
metadata: {name: outside, namespace: shop}
spec:
  clusterIP: 192.168.50.5
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: books, namespace: shop, labels: {app: books}}
spec:
  addresses: [127.0.0.1]
  ports: [{name: http, port: 7640}]
  meshed: true
  run: {command: [weft-demo, books, --listen, '0.0.0.0:7640']}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: elsewhere, namespace: shop}
spec:
  addresses: [192.0.2.1]
  ports: [{port: 9}]
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: plain, namespace: shop}
spec:
  addresses: [127.0.0.1]
  ports: [{port: 7650}]
  run: {command: [sleep, '1000']}
";

fn names() -> Names {
    Names::from_id("abc123".to_string())
}

fn laid_out() -> (Vec<Workload>, Layout) {
    let mut workloads = plan::parse_workloads(MESH).unwrap();
    let layout = layout(names(), &workloads, &parse_services(MESH)).unwrap();
    place(&mut workloads, &layout);
    (workloads, layout)
}

fn controller() -> ControllerAddrs {
    ControllerAddrs {
        destination: "10.209.0.1:8086".parse().unwrap(),
        identity: "10.209.0.1:8080".parse().unwrap(),
        admin: "10.209.0.1:9990".parse().unwrap(),
        web: "10.209.0.1:8084".parse().unwrap(),
    }
}

fn strings(step: &Step) -> String {
    step.to_string()
}

#[test]
fn names_fit_ifnamsiz_and_are_stable() {
    let names = Names::for_state_dir(Path::new("/root/.weft"));
    assert_eq!(names, Names::for_state_dir(Path::new("/root/.weft")));
    assert_ne!(names, Names::for_state_dir(Path::new("/tmp/other")));
    for name in [names.bridge(), names.host_veth(9999)] {
        assert!(name.len() <= 15, "{name}");
    }
    let names = self::names();
    assert_eq!(
        (
            names.bridge(),
            names.namespace(2),
            names.host_veth(2),
            names.namespace_prefix()
        ),
        (
            "weft-abc123".to_string(),
            "weft-abc123-2".to_string(),
            "wvabc1232".to_string(),
            "weft-abc123-".to_string()
        )
    );
    // FNV-1a's published test vector: the hash must never change.
    assert_eq!(fnv1a(b"a"), 0xe40c_292c);
}

#[test]
fn workloads_get_bridge_addresses_and_services_cluster_ips() {
    let (_, layout) = laid_out();
    let placed: Vec<(String, String, Ipv4Addr)> = layout
        .workloads
        .iter()
        .map(|net| (net.netns.clone(), net.mesh_namespace.clone(), net.ip))
        .collect();
    assert_eq!(
        placed,
        vec![
            (
                "weft-abc123-0".into(),
                "shop".into(),
                Ipv4Addr::new(10, 209, 0, 2)
            ),
            (
                "weft-abc123-1".into(),
                "shop".into(),
                Ipv4Addr::new(10, 209, 0, 3)
            ),
        ],
        "only run workloads, in file order"
    );
    let services: Vec<(&str, Ipv4Addr)> = layout
        .services
        .iter()
        .map(|(key, (_, ip))| (key.as_str(), *ip))
        .collect();
    assert_eq!(
        services,
        vec![
            ("other/fixed", Ipv4Addr::new(10, 96, 0, 10)),
            // 10.96.0.10 is written by `fixed`: skipped.
            ("shop/books", Ipv4Addr::new(10, 96, 0, 11)),
            ("shop/outside", Ipv4Addr::new(192, 168, 50, 5)),
        ],
        "headless Services are left out"
    );
}

#[test]
fn placed_workloads_have_their_address_and_the_standard_proxy_ports() {
    let (workloads, _) = laid_out();
    let by_name = |name: &str| {
        workloads
            .iter()
            .find(|workload| workload.metadata.name.as_deref() == Some(name))
            .unwrap()
    };
    let books = by_name("books");
    assert_eq!(
        books.spec.addresses,
        vec!["10.209.0.2".parse::<IpAddr>().unwrap()]
    );
    let proxy = books.proxy_settings().unwrap();
    assert_eq!(
        (
            proxy.inbound_port,
            proxy.outbound_port,
            proxy.admin_port,
            proxy.tap_port
        ),
        (4143, 4140, 4191, 4190)
    );
    assert_eq!(
        by_name("plain").spec.addresses,
        vec!["10.209.0.3".parse::<IpAddr>().unwrap()]
    );
    assert_eq!(by_name("plain").spec.proxy, None, "not meshed: no proxy");
    assert_eq!(
        by_name("elsewhere").spec.addresses,
        vec!["192.0.2.1".parse::<IpAddr>().unwrap()],
        "not run: as written"
    );

    // Every namespace has its own ports: only the controller's are this host's.
    let plan = plan::plan_placed(
        &workloads,
        controller(),
        Path::new("/m"),
        Placement::Namespaces,
    )
    .unwrap();
    assert_eq!(plan.ports().len(), 4);
}

#[test]
fn two_meshed_workloads_share_port_numbers_only_in_namespaces() {
    let text = MESH.replace(
        "metadata: {name: plain, namespace: shop}\nspec:\n",
        "metadata: {name: plain, namespace: shop}\nspec:\n  meshed: true\n",
    );
    let mut workloads = plan::parse_workloads(&text).unwrap();
    let layout = layout(names(), &workloads, &parse_services(&text)).unwrap();
    place(&mut workloads, &layout);
    assert!(
        plan::plan_placed(
            &workloads,
            controller(),
            Path::new("/m"),
            Placement::Namespaces
        )
        .is_ok()
    );
    let error = plan::plan(&workloads, controller(), Path::new("/m")).unwrap_err();
    assert!(
        error.to_string().contains("port 4140 is claimed twice"),
        "on one host they would clash: {error}"
    );
}

#[test]
fn the_effective_file_keeps_line_numbers() {
    let (_, layout) = laid_out();
    let rendered = render(MESH, &layout);
    assert_eq!(rendered.lines().count(), MESH.lines().count());
    let lines: Vec<&str> = rendered.lines().collect();
    let books_service = lines[1];
    assert!(
        books_service.contains(r#""clusterIP":"10.96.0.11""#),
        "{books_service}"
    );
    assert!(
        rendered.contains("clusterIP: 10.96.0.10\n"),
        "written ones as written"
    );
    assert!(rendered.contains("clusterIP: None\n"));
    let books = lines
        .iter()
        .find(|line| line.contains(r#""name":"books","namespace":"shop","labels""#))
        .unwrap();
    assert!(books.contains(r#""addresses":["10.209.0.2"]"#), "{books}");
    assert!(books.contains(r#""inboundPort":4143"#), "{books}");
    assert!(
        rendered.contains("addresses: [192.0.2.1]\n"),
        "not run: as written"
    );
    // The controller reads it back.
    let again = plan::parse_workloads(&rendered).unwrap();
    assert_eq!(again, laid_out().0);
}

#[test]
fn hosts_files_name_every_service() {
    let (_, layout) = laid_out();
    assert_eq!(
        hosts_file(&layout, "shop"),
        "# written by weft up --transparent\n127.0.0.1 localhost\n::1 localhost ip6-localhost\n\
         10.96.0.10 fixed.other.svc.cluster.local fixed.other.svc fixed.other\n\
         10.96.0.11 books.shop.svc.cluster.local books.shop.svc books.shop books\n\
         192.168.50.5 outside.shop.svc.cluster.local outside.shop.svc outside.shop outside\n"
    );
    assert!(
        hosts_file(&layout, "other").contains("fixed.other fixed\n"),
        "the bare name within its own namespace"
    );
}

#[test]
fn set_up_builds_the_bridge_then_each_namespace() {
    let (_, layout) = laid_out();
    let steps: Vec<String> = set_up(&layout, &[true, false])
        .iter()
        .map(strings)
        .collect();
    let expected_start = [
        "ip link add weft-abc123 type bridge",
        "ip addr add 10.209.0.1/16 dev weft-abc123",
        "ip link set weft-abc123 up",
        "iptables -I FORWARD -i weft-abc123 -o weft-abc123 -j ACCEPT",
        "ip netns add weft-abc123-0",
        "ip link add wvabc1230 type veth peer name eth0 netns weft-abc123-0",
        "ip link set wvabc1230 master weft-abc123 up",
        "ip netns exec weft-abc123-0 ip addr add 10.209.0.2/16 dev eth0",
        "ip netns exec weft-abc123-0 ip link set lo up",
        "ip netns exec weft-abc123-0 ip link set eth0 up",
        "ip netns exec weft-abc123-0 ip route add 10.96.0.0/16 via 10.209.0.1",
        "ip netns exec weft-abc123-0 ip route add 192.168.50.5/32 via 10.209.0.1",
        "ip netns exec weft-abc123-0 iptables -t nat -N WEFT_INBOUND",
    ];
    assert_eq!(steps[..expected_start.len()], expected_start);
    let rules = nat_rules().len();
    let second = &steps[expected_start.len() - 1 + rules..];
    assert_eq!(second[0], "ip netns add weft-abc123-1");
    assert!(
        second.iter().all(|step| !step.contains("iptables")),
        "an unmeshed workload has no proxy to redirect to: {second:?}"
    );
}

#[test]
fn nat_rules_are_a_sidecars_with_the_proxy_excluded_by_group() {
    let rules: Vec<String> = nat_rules().iter().map(strings).collect();
    assert_eq!(
        rules,
        [
            "iptables -t nat -N WEFT_INBOUND",
            "iptables -t nat -A WEFT_INBOUND -p tcp --dport 4143 -j RETURN",
            "iptables -t nat -A WEFT_INBOUND -p tcp --dport 4190 -j RETURN",
            "iptables -t nat -A WEFT_INBOUND -p tcp --dport 4191 -j RETURN",
            "iptables -t nat -A WEFT_INBOUND -p tcp -j REDIRECT --to-ports 4143",
            "iptables -t nat -A PREROUTING -p tcp -j WEFT_INBOUND",
            "iptables -t nat -N WEFT_OUTBOUND",
            "iptables -t nat -A WEFT_OUTBOUND -m owner --gid-owner 2102 -j RETURN",
            "iptables -t nat -A WEFT_OUTBOUND -o lo -j RETURN",
            "iptables -t nat -A WEFT_OUTBOUND -p tcp -j REDIRECT --to-ports 4140",
            "iptables -t nat -A OUTPUT -p tcp -j WEFT_OUTBOUND",
        ]
    );
}

#[test]
fn tear_down_removes_namespaces_bridge_and_rule() {
    let steps: Vec<String> = tear_down(&names(), &["weft-abc123-0".into()])
        .iter()
        .map(strings)
        .collect();
    assert_eq!(
        steps,
        [
            "ip netns del weft-abc123-0",
            "ip link del weft-abc123",
            "iptables -D FORWARD -i weft-abc123 -o weft-abc123 -j ACCEPT",
        ]
    );
}

#[test]
fn the_proxy_runs_transparent_in_its_namespace_and_the_app_unproxied() {
    let (workloads, layout) = laid_out();
    let plan = plan::plan_placed(
        &workloads,
        controller(),
        Path::new("/m"),
        Placement::Namespaces,
    )
    .unwrap();
    let books = &plan.workloads[0];
    let context = plan::ProxyContext {
        controller: controller(),
        token_dir: "/state/tokens".into(),
        trust_anchors_pem: "PEM".into(),
    };
    let base = plan::proxy_env(books, books.proxy.as_ref().unwrap(), &context);
    let env: BTreeMap<String, String> = proxy_env(base, &layout, &controller())
        .into_iter()
        .collect();
    let get = |name: &str| env.get(name).map(String::as_str);
    for (name, expected) in [
        ("WEFT_PROXY_INBOUND_FORWARD_ADDR", None),
        ("WEFT_PROXY_INBOUND_LISTEN_ADDR", Some("0.0.0.0:4143")),
        ("WEFT_PROXY_OUTBOUND_LISTEN_ADDR", Some("127.0.0.1:4140")),
        ("WEFT_PROXY_ADMIN_LISTEN_ADDR", Some("0.0.0.0:4191")),
        ("WEFT_PROXY_TAP_LISTEN_ADDR", Some("0.0.0.0:4190")),
        ("WEFT_PROXY_INBOUND_PORTS", Some("7640")),
        ("WEFT_PROXY_DESTINATION_SVC_ADDR", Some("10.209.0.1:8086")),
        ("WEFT_PROXY_IDENTITY_SVC_ADDR", Some("10.209.0.1:8080")),
        (
            "WEFT_PROXY_DESTINATION_PROFILE_NETWORKS",
            Some("10.96.0.0/16,192.168.50.5/32"),
        ),
        (
            "WEFT_PROXY_IDENTITY_TOKEN_FILE",
            Some("/state/tokens/shop/books.token"),
        ),
    ] {
        assert_eq!(get(name), expected, "{name}");
    }

    let (program, args) = proxy_command("weft-abc123-0", Path::new("/bin/weft-proxy"));
    assert_eq!(
        format!("{program} {}", args.join(" ")),
        "ip netns exec weft-abc123-0 setpriv --regid 2102 --clear-groups -- /bin/weft-proxy"
    );
    let (program, args) = app_command("weft-abc123-0", Path::new("curl"), &["-s".to_string()]);
    assert_eq!(
        format!("{program} {}", args.join(" ")),
        "ip netns exec weft-abc123-0 curl -s"
    );
    let app: Vec<String> = app_env(books).into_iter().map(|(name, _)| name).collect();
    assert_eq!(app, ["WEFT_WORKLOAD"], "no proxy variables");
}

#[test]
fn listeners_are_read_from_proc_net_tcp() {
    let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1DD8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 0100007F:102F 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0
   2: 0200D10A:9C40 0A00600A:0050 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 20 4 30 10 -1
";
    for (port, expected) in [(7640, true), (4143, true), (40000, false), (80, false)] {
        assert_eq!(listens_on(table, port), expected, "{port}");
    }
    let tcp6 = "  sl  local_address remote_address st
   0: 00000000000000000000000000000000:1DD8 00000000000000000000000000000000:0000 0A 0
";
    assert!(listens_on(tcp6, 7640));
}
