//! `weft routes`: golden metrics per ServiceProfile route (plus `[DEFAULT]`
//! for requests no route matched) of one workload or service, from
//! `GET /api/routes`. Inbound by default (what the resource served); with
//! `--to`, what it sent to that target, and `-o wide` then shows effective
//! (what the caller saw) and actual (including retries) numbers.

use std::process::ExitCode;

use serde_json::json;

use crate::api::{self, RouteProfile, RouteRow, RoutesResponse, query};
use crate::global_options::GlobalOptions;
use crate::output::{Align, Format, Table, latency_cell, out, out_line, rps_cell, success_cell};
use crate::resource::{Kind, Target, parse_selection, resolve_namespace};

/// The route requests no ServiceProfile route matched.
pub const DEFAULT_ROUTE: &str = "[DEFAULT]";

/// `weft routes` flags.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// `workload/NAME` or `service/NAME` (also `TYPE NAME`).
    #[arg(required = true, value_name = "RESOURCE")]
    pub resource: Vec<String>,
    /// Its namespace (default: the only one it is in).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// The window metrics are computed over (15s … 15m).
    #[arg(short = 't', long = "time-window", default_value = "1m")]
    pub time_window: String,
    /// Outbound: the routes of this target's profile, as the resource called them.
    #[arg(long)]
    pub to: Option<String>,
    /// The namespace of --to (default: -n, else found).
    #[arg(long)]
    pub to_namespace: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Format,
}

/// Runs `weft routes`.
pub async fn run(global: &GlobalOptions, args: Args) -> anyhow::Result<ExitCode> {
    let selection = parse_selection(&args.resource)?;
    let [name] = selection.names.as_slice() else {
        anyhow::bail!("weft routes takes one resource: workload/NAME or service/NAME");
    };
    if !matches!(selection.kind, Kind::Workload | Kind::Service) {
        anyhow::bail!("weft routes takes a workload or a service");
    }
    let client = api::client(global);
    let namespace =
        resolve_namespace(&client, selection.kind, name, args.namespace.as_deref()).await?;
    let to = match &args.to {
        Some(text) => {
            let target = Target::parse(text)?;
            let given = args
                .to_namespace
                .as_deref()
                .or(target.namespace.as_deref())
                .or(args.namespace.as_deref());
            let resolved = resolve_namespace(&client, target.kind, &target.name, given).await?;
            Some(target.api_value(&resolved))
        }
        None => None,
    };
    let path = format!(
        "/api/routes{}",
        query(&[
            ("kind", Some(selection.kind.api_name())),
            ("namespace", Some(&namespace)),
            ("name", Some(name)),
            ("to", to.as_deref()),
            ("window", Some(&args.time_window)),
        ])
    );
    let answer: RoutesResponse = client.get_json(&path).await?;
    let rows = sort_rows(answer.rows);
    if rows.is_empty() {
        let resource = format!("{}/{namespace}/{name}", selection.kind.api_name());
        let window = &args.time_window;
        let (message, code) = empty_message(&resource, to.as_deref(), &answer.profiles, window);
        eprintln!("{message}");
        return Ok(code);
    }
    match args.output {
        Format::Json => out_line(&serde_json::to_string_pretty(&json_rows(&rows))?)?,
        format => out(&render(&rows, format == Format::Wide && to.is_some()))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Why there are no rows, and the exit code: no ServiceProfile applies
/// (1, as Linkerd), or profiles exist but recorded no route metrics in the
/// window (0: nothing is wrong, there is no traffic to show yet).
pub fn empty_message(
    resource: &str,
    to: Option<&str>,
    profiles: &[RouteProfile],
    window: &str,
) -> (String, ExitCode) {
    let subject = match to {
        Some(target) => format!("{resource} --to {target}"),
        None => resource.to_string(),
    };
    if profiles.is_empty() {
        let whose = match to {
            Some(target) => format!("the service {target}"),
            None if resource.starts_with("service/") => format!("the service {resource}"),
            None => format!("any service selecting {resource}"),
        };
        return (
            format!(
                "No ServiceProfile for {whose}: routes come from a ServiceProfile named after the service's FQDN (<name>.<namespace>.svc.cluster.local) in the mesh file."
            ),
            ExitCode::FAILURE,
        );
    }
    let names: Vec<String> = profiles
        .iter()
        .map(|profile| {
            format!(
                "{}/{} ({} route{})",
                profile.namespace,
                profile.name,
                profile.routes.len(),
                if profile.routes.len() == 1 { "" } else { "s" }
            )
        })
        .collect();
    (
        format!(
            "No route metrics yet for {subject} in the last {window}: ServiceProfile {} applies, but no request was recorded on its routes (no traffic yet, or not scraped yet).",
            names.join(", ")
        ),
        ExitCode::SUCCESS,
    )
}

/// By authority, then route, `[DEFAULT]` last.
pub fn sort_rows(mut rows: Vec<RouteRow>) -> Vec<RouteRow> {
    rows.sort_by(|a, b| {
        let key = |row: &RouteRow| {
            (
                service_name(&row.authority),
                row.route == DEFAULT_ROUTE,
                row.route.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    rows
}

/// The service an authority names: `books.demo.svc.cluster.local:7000` → `books`.
pub fn service_name(authority: &str) -> String {
    let host = authority
        .rsplit_once(':')
        .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
        .map_or(authority, |(host, _)| host);
    host.split('.').next().unwrap_or(host).to_string()
}

/// The routes table; `effective` shows effective and actual columns (`-o wide --to`).
pub fn render(rows: &[RouteRow], effective: bool) -> String {
    let mut columns = vec![("ROUTE", Align::Left), ("SERVICE", Align::Left)];
    if effective {
        columns.extend([
            ("EFFECTIVE_SUCCESS", Align::Right),
            ("EFFECTIVE_RPS", Align::Right),
            ("ACTUAL_SUCCESS", Align::Right),
            ("ACTUAL_RPS", Align::Right),
        ]);
    } else {
        columns.extend([("SUCCESS", Align::Right), ("RPS", Align::Right)]);
    }
    columns.extend([
        ("LATENCY_P50", Align::Right),
        ("LATENCY_P95", Align::Right),
        ("LATENCY_P99", Align::Right),
    ]);
    let mut table = Table::new(&columns);
    for row in rows {
        let latency = row.latency_ms.unwrap_or_default();
        let mut cells = vec![row.route.clone(), service_name(&row.authority)];
        cells.push(success_cell(row.success_rate));
        cells.push(rps_cell(row.rps));
        if effective {
            cells.push(success_cell(row.actual_success_rate));
            cells.push(rps_cell(row.actual_rps));
        }
        cells.extend([
            latency_cell(latency.p50),
            latency_cell(latency.p95),
            latency_cell(latency.p99),
        ]);
        table.row(cells);
    }
    table.render()
}

/// `-o json`: one object per route.
pub fn json_rows(rows: &[RouteRow]) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = rows
        .iter()
        .map(|row| {
            let latency = row.latency_ms.unwrap_or_default();
            json!({
                "route": row.route,
                "authority": row.authority,
                "service": service_name(&row.authority),
                "success": row.success_rate,
                "rps": row.rps,
                "actual_success": row.actual_success_rate,
                "actual_rps": row.actual_rps,
                "latency_ms_p50": latency.p50,
                "latency_ms_p95": latency.p95,
                "latency_ms_p99": latency.p99,
            })
        })
        .collect();
    serde_json::Value::Array(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Latency;

    fn route(route: &str, rate: Option<f64>) -> RouteRow {
        RouteRow {
            route: route.into(),
            authority: "books.demo.svc.cluster.local:7000".into(),
            success_rate: rate,
            rps: rate.map(|_| 1.5),
            actual_success_rate: rate.map(|_| 0.98),
            actual_rps: rate.map(|_| 1.6),
            latency_ms: rate.map(|_| Latency {
                p50: Some(2.0),
                p95: Some(4.0),
                p99: Some(8.0),
            }),
        }
    }

    #[test]
    fn service_names() {
        for (authority, expected) in [
            ("books.demo.svc.cluster.local:7000", "books"),
            ("books.demo.svc.cluster.local", "books"),
            ("127.0.0.1:80", "127"),
            ("web", "web"),
        ] {
            assert_eq!(service_name(authority), expected, "{authority}");
        }
    }

    #[test]
    fn default_route_last_and_columns() {
        let rows = sort_rows(vec![
            route(DEFAULT_ROUTE, None),
            route("GET /books/{id}", Some(1.0)),
        ]);
        assert_eq!(
            render(&rows, false),
            "ROUTE             SERVICE   SUCCESS      RPS   LATENCY_P50   LATENCY_P95   LATENCY_P99\n\
             GET /books/{id}   books     100.00%   1.5rps           2ms           4ms           8ms\n\
             [DEFAULT]         books           -        -             -             -             -\n"
        );
        let wide = render(&rows, true);
        let header: Vec<&str> = wide.lines().next().unwrap().split_whitespace().collect();
        assert_eq!(
            header,
            [
                "ROUTE",
                "SERVICE",
                "EFFECTIVE_SUCCESS",
                "EFFECTIVE_RPS",
                "ACTUAL_SUCCESS",
                "ACTUAL_RPS",
                "LATENCY_P50",
                "LATENCY_P95",
                "LATENCY_P99"
            ]
        );
        let cells: Vec<&str> = wide.lines().nth(1).unwrap().split_whitespace().collect();
        assert_eq!(&cells[3..7], ["100.00%", "1.5rps", "98.00%", "1.6rps"]);
        let json = json_rows(&rows);
        assert_eq!(json[0]["route"], "GET /books/{id}");
        assert_eq!(json[0]["service"], "books");
        assert_eq!(json[1]["success"], serde_json::Value::Null);
    }
}
