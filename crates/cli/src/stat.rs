//! `weft stat`: golden metrics (success rate, requests per second, latency
//! percentiles, open TCP connections) per namespace, workload, service or
//! authority, from `GET /api/stat`, as Linkerd's `stat` prints them.
//!
//! Without `-n` every namespace is shown (with a NAMESPACE column): a mesh on
//! one host has few namespaces, so "all" is the useful default; `-A` says so
//! explicitly. `--to R`: what the selected resources sent to R; `--from R`:
//! what R sent, one row per destination of the selected type.
//!
//! `-o wide` adds the bytes columns and, for workloads, each one's proxy
//! ports (inbound, admin, tap) from `GET /api/workloads`.
//!
//! DENIED (inbound requests and connections the proxies' authorization
//! refused in the window) follows TCP_CONN when some row has denials, and
//! always in `-o wide` of workloads and namespaces (the rows the proxies'
//! authorization counters answer); a table without denials keeps Linkerd's
//! columns. `-o json` always has `authz_allowed` and `authz_denied` (`null`
//! when the proxies export no authorization counters).

use std::collections::BTreeMap;
use std::process::ExitCode;

use serde_json::json;

use crate::api::{
    self, StatResponse, StatRow, TrafficSplitRow, TrafficSplitsResponse, WorkloadInfo,
    WorkloadsResponse, query,
};
use crate::global_options::GlobalOptions;
use crate::output::{
    Align, Format, Table, bytes_rate_cell, count_cell, latency_cell, meshed_cell, out, out_line,
    rps_cell, success_cell,
};
use crate::resource::{Kind, Target, parse_selection, resolve_namespace};

/// `weft stat` flags.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// `TYPE [NAME…]` or `TYPE/NAME…`; TYPE is namespace (ns), workload (wl,
    /// deploy), service (svc), authority (au) or trafficsplit (ts).
    #[arg(required = true, value_name = "RESOURCE")]
    pub resources: Vec<String>,
    /// Only this namespace (default: all namespaces).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// All namespaces (the default without -n).
    #[arg(short = 'A', long, conflicts_with = "namespace")]
    pub all_namespaces: bool,
    /// The window metrics are computed over (15s … 15m).
    #[arg(short = 't', long = "time-window", default_value = "1m")]
    pub time_window: String,
    /// Only traffic sent to this resource (`svc/web`, `wl/shop/web`).
    #[arg(long, conflicts_with = "from")]
    pub to: Option<String>,
    /// The namespace of --to (default: -n, else found).
    #[arg(long)]
    pub to_namespace: Option<String>,
    /// Only traffic sent by this resource, one row per destination.
    #[arg(long)]
    pub from: Option<String>,
    /// The namespace of --from (default: -n, else found).
    #[arg(long)]
    pub from_namespace: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Format,
}

/// Runs `weft stat`.
pub async fn run(global: &GlobalOptions, args: Args) -> anyhow::Result<ExitCode> {
    let selection = parse_selection(&args.resources)?;
    let client = api::client(global);
    let namespace = args.namespace.as_deref();
    if selection.kind == Kind::TrafficSplit {
        return run_traffic_splits(&client, &args, &selection.names).await;
    }
    let to = match &args.to {
        Some(text) => Some(target_value(&client, text, &args.to_namespace, namespace).await?),
        None => None,
    };
    let from = match &args.from {
        Some(text) => Some(target_value(&client, text, &args.from_namespace, namespace).await?),
        None => None,
    };
    let single_name = match selection.names.as_slice() {
        [one] => Some(one.as_str()),
        _ => None,
    };
    let path = format!(
        "/api/stat{}",
        query(&[
            ("kind", Some(selection.kind.api_name())),
            ("namespace", namespace),
            ("name", single_name),
            ("window", Some(&args.time_window)),
            ("from", from.as_deref()),
            ("to", to.as_deref()),
        ])
    );
    let answer: StatResponse = client.get_json(&path).await?;
    let rows = select_rows(answer.rows, &selection.names);
    if rows.is_empty() {
        eprintln!("No traffic found.");
    }
    match args.output {
        Format::Json => out_line(&serde_json::to_string_pretty(&json_rows(&rows))?)?,
        Format::Table | Format::Wide if rows.is_empty() => {}
        Format::Table | Format::Wide => {
            let layout = Layout {
                kind: selection.kind,
                show_namespace: namespace.is_none() && selection.kind != Kind::Namespace,
                wide: args.output == Format::Wide,
            };
            let ports = if layout.shows_proxy_ports() {
                workload_ports(&client).await
            } else {
                WorkloadPorts::new()
            };
            out(&render(&rows, layout, &ports))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Each workload's proxy ports, by (namespace, name).
pub type WorkloadPorts = BTreeMap<(String, String), ProxyPorts>;

/// A workload's proxy ports, as `/api/workloads` gives its listeners.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyPorts {
    /// Inbound (mutual TLS from peers).
    pub inbound: Option<u16>,
    /// Admin (`/metrics`, `/ready`).
    pub admin: Option<u16>,
    /// Tap.
    pub tap: Option<u16>,
}

impl ProxyPorts {
    /// The ports of `workload`'s proxy; all `None` when it has none (not
    /// meshed) or a listener is not `host:port`.
    pub fn of(workload: &WorkloadInfo) -> ProxyPorts {
        let port = |listener: &Option<String>| -> Option<u16> {
            listener.as_deref()?.rsplit_once(':')?.1.parse().ok()
        };
        match &workload.proxy {
            Some(proxy) => ProxyPorts {
                inbound: port(&proxy.inbound),
                admin: port(&proxy.admin),
                tap: port(&proxy.tap),
            },
            None => ProxyPorts::default(),
        }
    }
}

/// The proxy ports of every workload the controller knows; none (with a
/// warning, the table still printed) when it cannot say.
async fn workload_ports(client: &api::ApiClient) -> WorkloadPorts {
    match client.get_json::<WorkloadsResponse>("/api/workloads").await {
        Ok(answer) => answer
            .workloads
            .iter()
            .map(|workload| {
                let key = (workload.namespace.clone(), workload.name.clone());
                (key, ProxyPorts::of(workload))
            })
            .collect(),
        Err(error) => {
            eprintln!("warning: no proxy ports: {error}");
            WorkloadPorts::new()
        }
    }
}

/// `weft stat ts`: one row per split and leaf (`GET /api/trafficsplits`).
async fn run_traffic_splits(
    client: &api::ApiClient,
    args: &Args,
    names: &[String],
) -> anyhow::Result<ExitCode> {
    if args.to.is_some() || args.from.is_some() {
        anyhow::bail!("weft stat ts takes neither --to nor --from");
    }
    let namespace = args.namespace.as_deref();
    let single_name = match names {
        [one] => Some(one.as_str()),
        _ => None,
    };
    let path = format!(
        "/api/trafficsplits{}",
        query(&[
            ("namespace", namespace),
            ("name", single_name),
            ("window", Some(&args.time_window)),
        ])
    );
    let answer: TrafficSplitsResponse = client.get_json(&path).await?;
    let rows: Vec<TrafficSplitRow> = answer
        .rows
        .into_iter()
        .filter(|row| names.is_empty() || names.contains(&row.name))
        .collect();
    if rows.is_empty() {
        eprintln!("No TrafficSplits found.");
    }
    match args.output {
        Format::Json => out_line(&serde_json::to_string_pretty(&split_json_rows(&rows))?)?,
        Format::Table | Format::Wide if rows.is_empty() => {}
        Format::Table | Format::Wide => out(&render_splits(&rows, namespace.is_none()))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The TrafficSplit table (Linkerd's `stat ts` columns: no TCP_CONN).
pub fn render_splits(rows: &[TrafficSplitRow], show_namespace: bool) -> String {
    let mut columns = Vec::new();
    if show_namespace {
        columns.push(("NAMESPACE", Align::Left));
    }
    columns.extend([
        ("NAME", Align::Left),
        ("APEX", Align::Left),
        ("LEAF", Align::Left),
        ("WEIGHT", Align::Right),
        ("SUCCESS", Align::Right),
        ("RPS", Align::Right),
        ("LATENCY_P50", Align::Right),
        ("LATENCY_P95", Align::Right),
        ("LATENCY_P99", Align::Right),
    ]);
    let mut table = Table::new(&columns);
    for row in rows {
        let mut cells = Vec::new();
        if show_namespace {
            cells.push(row.namespace.clone());
        }
        let data = row.success_rate.is_some() || row.success + row.failure > 0;
        let metric = |text: String| if data { text } else { "-".to_string() };
        let latency = row.latency_ms.unwrap_or_default();
        cells.extend([
            row.name.clone(),
            row.apex.clone(),
            row.leaf.clone(),
            row.weight.clone(),
            metric(success_cell(row.success_rate)),
            metric(rps_cell(row.rps)),
            metric(latency_cell(latency.p50)),
            metric(latency_cell(latency.p95)),
            metric(latency_cell(latency.p99)),
        ]);
        table.row(cells);
    }
    table.render()
}

/// `weft stat ts -o json`: one object per leaf.
pub fn split_json_rows(rows: &[TrafficSplitRow]) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = rows
        .iter()
        .map(|row| {
            let latency = row.latency_ms.unwrap_or_default();
            json!({
                "namespace": row.namespace,
                "name": row.name,
                "apex": row.apex,
                "leaf": row.leaf,
                "weight": row.weight,
                "success": row.success_rate,
                "rps": row.rps,
                "latency_ms_p50": latency.p50,
                "latency_ms_p95": latency.p95,
                "latency_ms_p99": latency.p99,
                "requests": {"success": row.success, "failure": row.failure},
            })
        })
        .collect();
    serde_json::Value::Array(rows)
}

/// `--to`/`--from` as the API's `KIND/NS/NAME`.
async fn target_value(
    client: &api::ApiClient,
    text: &str,
    flag_namespace: &Option<String>,
    namespace: Option<&str>,
) -> anyhow::Result<String> {
    let target = Target::parse(text)?;
    let given = flag_namespace
        .as_deref()
        .or(target.namespace.as_deref())
        .or(namespace);
    let resolved = resolve_namespace(client, target.kind, &target.name, given).await?;
    Ok(target.api_value(&resolved))
}

/// The rows of the named resources (all when no names), sorted by namespace and name.
pub fn select_rows(rows: Vec<StatRow>, names: &[String]) -> Vec<StatRow> {
    let mut rows: Vec<StatRow> = rows
        .into_iter()
        .filter(|row| names.is_empty() || names.contains(&row.name))
        .collect();
    rows.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    rows
}

/// How a stat table is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// The rows' type.
    pub kind: Kind,
    /// Whether there is a NAMESPACE column.
    pub show_namespace: bool,
    /// Whether to add the bytes columns (and, for workloads, the proxy
    /// ports).
    pub wide: bool,
}

impl Layout {
    /// Whether the table has the proxy port columns: wide, of workloads.
    pub fn shows_proxy_ports(&self) -> bool {
        self.wide && self.kind == Kind::Workload
    }

    /// Whether the table has the DENIED column: some row has denials, or
    /// wide, of workloads or namespaces.
    pub fn shows_denied(&self, rows: &[StatRow]) -> bool {
        let answered = matches!(self.kind, Kind::Workload | Kind::Namespace);
        rows.iter().any(|row| row.authz_denied.unwrap_or(0) > 0) || (self.wide && answered)
    }
}

/// Whether a row has request data (else every metric cell is `-`).
fn has_requests(row: &StatRow) -> bool {
    row.success_rate.is_some() || row.success + row.failure > 0
}

/// `meshed/running`, when the row has both.
fn meshed_text(row: &StatRow) -> Option<String> {
    Some(meshed_cell(row.meshed?, row.running?))
}

/// The stat table (Linkerd's columns and cell formats); wide, workload rows
/// also show their proxy's ports from `ports` (`-` when unknown).
pub fn render(rows: &[StatRow], layout: Layout, ports: &WorkloadPorts) -> String {
    let mut columns = Vec::new();
    if layout.show_namespace {
        columns.push(("NAMESPACE", Align::Left));
    }
    columns.extend([
        ("NAME", Align::Left),
        ("MESHED", Align::Right),
        ("SUCCESS", Align::Right),
        ("RPS", Align::Right),
        ("LATENCY_P50", Align::Right),
        ("LATENCY_P95", Align::Right),
        ("LATENCY_P99", Align::Right),
        ("TCP_CONN", Align::Right),
    ]);
    let denied = layout.shows_denied(rows);
    if denied {
        columns.push(("DENIED", Align::Right));
    }
    if layout.wide {
        columns.extend([
            ("READ_BYTES/SEC", Align::Right),
            ("WRITE_BYTES/SEC", Align::Right),
        ]);
    }
    if layout.shows_proxy_ports() {
        columns.extend([
            ("PROXY_INBOUND", Align::Right),
            ("PROXY_ADMIN", Align::Right),
            ("PROXY_TAP", Align::Right),
        ]);
    }
    let mut table = Table::new(&columns);
    for row in rows {
        let mut cells = Vec::new();
        if layout.show_namespace {
            cells.push(row.namespace.clone());
        }
        cells.push(row.name.clone());
        cells.push(match (layout.kind, meshed_text(row)) {
            (Kind::Authority, _) | (_, None) => "-".into(),
            (_, Some(text)) => text,
        });
        let latency = row.latency_ms.unwrap_or_default();
        let data = has_requests(row);
        let metric = |text: String| if data { text } else { "-".to_string() };
        cells.push(metric(success_cell(row.success_rate)));
        cells.push(metric(rps_cell(row.rps)));
        cells.push(metric(latency_cell(latency.p50)));
        cells.push(metric(latency_cell(latency.p95)));
        cells.push(metric(latency_cell(latency.p99)));
        let tcp = if layout.kind == Kind::Authority {
            "-".into()
        } else {
            count_cell(row.tcp_connections)
        };
        cells.push(metric(tcp));
        if denied {
            // Not `-` with the requests: a workload that denies everything
            // may have served nothing.
            cells.push(count_cell(row.authz_denied));
        }
        if layout.wide {
            cells.push(metric(bytes_rate_cell(row.read_bytes_per_sec)));
            cells.push(metric(bytes_rate_cell(row.write_bytes_per_sec)));
        }
        if layout.shows_proxy_ports() {
            let key = (row.namespace.clone(), row.name.clone());
            let found = ports.get(&key).copied().unwrap_or_default();
            for port in [found.inbound, found.admin, found.tap] {
                cells.push(port.map_or_else(|| "-".to_string(), |port| port.to_string()));
            }
        }
        table.row(cells);
    }
    table.render()
}

/// `-o json`: one object per row, Linkerd's field names (`null` without data).
pub fn json_rows(rows: &[StatRow]) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = rows
        .iter()
        .map(|row| {
            let latency = row.latency_ms.unwrap_or_default();
            json!({
                "namespace": row.namespace,
                "kind": row.kind,
                "name": row.name,
                "meshed": meshed_text(row),
                "success": row.success_rate,
                "rps": row.rps,
                "latency_ms_p50": latency.p50,
                "latency_ms_p95": latency.p95,
                "latency_ms_p99": latency.p99,
                "tcp_open_connections": row.tcp_connections,
                "read_bytes_rate": row.read_bytes_per_sec,
                "write_bytes_rate": row.write_bytes_per_sec,
                "requests": {"success": row.success, "failure": row.failure},
                "authz_allowed": row.authz_allowed,
                "authz_denied": row.authz_denied,
            })
        })
        .collect();
    serde_json::Value::Array(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Latency;

    fn row(name: &str, rate: Option<f64>) -> StatRow {
        StatRow {
            kind: crate::api::ResourceKind::Workload,
            namespace: "demo".into(),
            name: name.into(),
            meshed: Some(1),
            running: Some(1),
            success: if rate.is_some() { 118 } else { 0 },
            failure: if rate.is_some() { 2 } else { 0 },
            success_rate: rate,
            rps: rate.map(|_| 7.06),
            latency_ms: rate.map(|_| Latency {
                p50: Some(4.0),
                p95: Some(26.0),
                p99: Some(33.0),
            }),
            tcp_connections: Some(6),
            read_bytes_per_sec: rate.map(|_| 10.0),
            write_bytes_per_sec: rate.map(|_| 20.0),
            authz_allowed: None,
            authz_denied: None,
        }
    }

    #[test]
    fn table_like_linkerds() {
        let rows = vec![row("authors", Some(1.0)), row("traffic", None)];
        let layout = Layout {
            kind: Kind::Workload,
            show_namespace: false,
            wide: false,
        };
        assert_eq!(
            render(&rows, layout, &WorkloadPorts::new()),
            "NAME      MESHED   SUCCESS      RPS   LATENCY_P50   LATENCY_P95   LATENCY_P99   TCP_CONN\n\
             authors      1/1   100.00%   7.1rps           4ms          26ms          33ms          6\n\
             traffic      1/1         -        -             -             -             -          -\n"
        );
    }

    #[test]
    fn namespace_wide_and_authority_columns() {
        let rows = vec![row("web", Some(0.98333))];
        let wide = render(
            &rows,
            Layout {
                kind: Kind::Service,
                show_namespace: true,
                wide: true,
            },
            &WorkloadPorts::new(),
        );
        let lines: Vec<&str> = wide.lines().collect();
        assert!(lines[0].starts_with("NAMESPACE   NAME   MESHED"), "{wide}");
        assert!(
            lines[0].ends_with("READ_BYTES/SEC   WRITE_BYTES/SEC"),
            "{wide}"
        );
        assert!(
            lines[1].starts_with("demo        web       1/1    98.33%"),
            "{wide}"
        );
        assert!(lines[1].ends_with("10.0B/s           20.0B/s"), "{wide}");
        let authority = render(
            &rows,
            Layout {
                kind: Kind::Authority,
                show_namespace: false,
                wide: false,
            },
            &WorkloadPorts::new(),
        );
        let cells: Vec<&str> = authority
            .lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .collect();
        assert_eq!(
            cells,
            ["web", "-", "98.33%", "7.1rps", "4ms", "26ms", "33ms", "-"]
        );
    }

    #[test]
    fn denied_shows_when_some_row_has_denials_and_always_wide() {
        let with = |name: &str, denied: Option<u64>| StatRow {
            authz_allowed: denied.map(|_| 40),
            authz_denied: denied,
            ..row(name, Some(1.0))
        };
        let layout = |kind, wide| Layout {
            kind,
            show_namespace: false,
            wide,
        };
        let none = vec![with("books", None), with("web", Some(0))];
        let some = vec![with("books", None), with("web", Some(7))];
        // (rows, layout, DENIED cells; None: no column)
        let cases = [
            (&none, layout(Kind::Workload, false), None),
            (&some, layout(Kind::Workload, false), Some(vec!["-", "7"])),
            (&none, layout(Kind::Workload, true), Some(vec!["-", "0"])),
            (&none, layout(Kind::Namespace, true), Some(vec!["-", "0"])),
            (&none, layout(Kind::Service, true), None),
        ];
        for (rows, layout, expected) in cases {
            let table = render(rows, layout, &WorkloadPorts::new());
            let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
            let column = header.iter().position(|name| *name == "DENIED");
            match expected {
                None => assert_eq!(column, None, "{layout:?}: {table}"),
                Some(cells) => {
                    assert_eq!(column, Some(8), "after TCP_CONN: {table}");
                    let found: Vec<&str> = table
                        .lines()
                        .skip(1)
                        .map(|line| line.split_whitespace().nth(8).unwrap())
                        .collect();
                    assert_eq!(found, cells, "{layout:?}: {table}");
                }
            }
        }
        assert_eq!(
            render(&some, layout(Kind::Workload, false), &WorkloadPorts::new()),
            "NAME    MESHED   SUCCESS      RPS   LATENCY_P50   LATENCY_P95   LATENCY_P99   TCP_CONN   DENIED\n\
             books      1/1   100.00%   7.1rps           4ms          26ms          33ms          6        -\n\
             web        1/1   100.00%   7.1rps           4ms          26ms          33ms          6        7\n"
        );
        let json = json_rows(&some);
        assert_eq!(json[0]["authz_denied"], serde_json::Value::Null);
        assert_eq!(
            (&json[1]["authz_allowed"], &json[1]["authz_denied"]),
            (&json!(40), &json!(7))
        );
    }

    #[test]
    fn wide_workload_rows_show_their_proxy_ports() {
        let rows = vec![row("traffic", None), row("web", Some(1.0))];
        let ports = WorkloadPorts::from([(
            ("demo".to_string(), "web".to_string()),
            ProxyPorts {
                inbound: Some(4143),
                admin: Some(4191),
                tap: Some(4190),
            },
        )]);
        let layout = |kind, wide| Layout {
            kind,
            show_namespace: false,
            wide,
        };
        let table = render(&rows, layout(Kind::Workload, true), &ports);
        let lines: Vec<&str> = table.lines().collect();
        assert!(
            lines[0].ends_with("WRITE_BYTES/SEC   PROXY_INBOUND   PROXY_ADMIN   PROXY_TAP"),
            "{table}"
        );
        let last = |line: &str| -> Vec<String> {
            let cells: Vec<&str> = line.split_whitespace().collect();
            cells[cells.len() - 3..]
                .iter()
                .map(|cell| cell.to_string())
                .collect()
        };
        assert_eq!(last(lines[1]), ["-", "-", "-"], "unknown: {table}");
        assert_eq!(last(lines[2]), ["4143", "4191", "4190"], "{table}");
        // Only wide workload tables have them.
        for (kind, wide) in [
            (Kind::Workload, false),
            (Kind::Service, true),
            (Kind::Namespace, true),
        ] {
            let table = render(&rows, layout(kind, wide), &ports);
            assert!(!table.contains("PROXY_"), "{kind:?} {wide}: {table}");
        }
    }

    #[test]
    fn proxy_ports_from_listener_addresses() {
        use crate::api::ProxyAddresses;
        let workload = |proxy: Option<ProxyAddresses>| WorkloadInfo {
            namespace: "demo".into(),
            name: "web".into(),
            service_account: "web".into(),
            identity: None,
            labels: Default::default(),
            addresses: vec![],
            meshed: proxy.is_some(),
            proxy,
            scrape: None,
            cert_expiry_unix: None,
        };
        let listeners = |inbound: &str, admin: &str, tap: Option<&str>| ProxyAddresses {
            inbound: Some(inbound.into()),
            admin: Some(admin.into()),
            tap: tap.map(String::from),
        };
        let table = [
            (
                Some(listeners(
                    "10.0.0.1:4143",
                    "10.0.0.1:4191",
                    Some("10.0.0.1:4190"),
                )),
                (Some(4143), Some(4191), Some(4190)),
            ),
            (
                Some(listeners("[fd00::1]:5143", "[fd00::1]:5191", None)),
                (Some(5143), Some(5191), None),
            ),
            (
                Some(listeners("10.0.0.1", "10.0.0.1:port", None)),
                (None, None, None),
            ),
            (None, (None, None, None)),
        ];
        for (proxy, (inbound, admin, tap)) in table {
            let case = format!("{proxy:?}");
            let ports = ProxyPorts::of(&workload(proxy));
            assert_eq!(
                ports,
                ProxyPorts {
                    inbound,
                    admin,
                    tap
                },
                "{case}"
            );
        }
    }

    #[test]
    fn traffic_split_table_like_linkerds() {
        let leaf = |leaf: &str, weight: &str, rps: Option<f64>| TrafficSplitRow {
            namespace: "demo".into(),
            name: "books-split".into(),
            apex: "books".into(),
            leaf: leaf.into(),
            weight: weight.into(),
            success: if rps.is_some() { 96 } else { 0 },
            failure: 0,
            success_rate: rps.map(|_| 1.0),
            rps,
            latency_ms: rps.map(|_| crate::api::Latency {
                p50: Some(2.0),
                p95: Some(4.0),
                p99: Some(8.0),
            }),
        };
        let rows = vec![
            leaf("books-v1", "800m", Some(1.6)),
            leaf("books-v2", "200m", None),
        ];
        assert_eq!(
            render_splits(&rows, false),
            "NAME          APEX    LEAF       WEIGHT   SUCCESS      RPS   LATENCY_P50   LATENCY_P95   LATENCY_P99\n\
             books-split   books   books-v1     800m   100.00%   1.6rps           2ms           4ms           8ms\n\
             books-split   books   books-v2     200m         -        -             -             -             -\n"
        );
        assert!(render_splits(&rows, true).starts_with("NAMESPACE   NAME"));
        let json = split_json_rows(&rows);
        assert_eq!(json[0]["leaf"], "books-v1");
        assert_eq!(json[0]["requests"]["success"], 96);
        assert_eq!(json[1]["rps"], serde_json::Value::Null);
    }

    #[test]
    fn selection_and_json() {
        let rows = select_rows(
            vec![row("web", Some(0.5)), row("books", None), row("load", None)],
            &["web".to_string(), "books".to_string()],
        );
        let names: Vec<&str> = rows.iter().map(|row| row.name.as_str()).collect();
        assert_eq!(names, ["books", "web"]);
        let json = json_rows(&rows);
        assert_eq!(json[0]["success"], serde_json::Value::Null);
        assert_eq!(json[1]["success"], 0.5);
        assert_eq!(json[1]["meshed"], "1/1");
        assert_eq!(json[1]["latency_ms_p99"], 33.0);
        assert_eq!(json[1]["tcp_open_connections"], 6);
    }
}
