//! `weft edges`: who talks to whom, with the client's and the server's
//! identities and whether the edge is secured by mutual TLS (`√`, else the
//! reason it is not), from `GET /api/edges`.

use std::process::ExitCode;

use serde_json::json;

use crate::api::{self, EdgeRow, EdgesResponse, query};
use crate::global_options::GlobalOptions;
use crate::output::{Align, Format, GLYPH_OK, Table, out, out_line};
use crate::resource::{Kind, parse_selection};

/// `weft edges` flags.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The resource type (only `workload` for now).
    #[arg(value_name = "RESOURCETYPE", default_value = "workload")]
    pub resource_type: String,
    /// Only edges whose source is in this namespace (default: all).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// All namespaces (the default without -n).
    #[arg(short = 'A', long, conflicts_with = "namespace")]
    pub all_namespaces: bool,
    /// The window edges were seen in (15s … 15m).
    #[arg(short = 't', long = "time-window", default_value = "1m")]
    pub time_window: String,
    /// Output format (`wide` adds the identities).
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Format,
}

/// Runs `weft edges`.
pub async fn run(global: &GlobalOptions, args: Args) -> anyhow::Result<ExitCode> {
    let selection = parse_selection(std::slice::from_ref(&args.resource_type))?;
    if selection.kind != Kind::Workload {
        anyhow::bail!("weft edges shows workloads only (try `weft edges workload`)");
    }
    let client = api::client(global);
    let path = format!(
        "/api/edges{}",
        query(&[
            ("kind", Some(selection.kind.api_name())),
            ("namespace", args.namespace.as_deref()),
            ("window", Some(&args.time_window)),
        ])
    );
    let answer: EdgesResponse = client.get_json(&path).await?;
    let rows = sort_rows(answer.rows);
    if rows.is_empty() {
        eprintln!("No edges found.");
    }
    match args.output {
        Format::Json => out_line(&serde_json::to_string_pretty(&json_rows(&rows))?)?,
        _ if rows.is_empty() => {}
        format => out(&render(&rows, format == Format::Wide))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// By source, then destination.
pub fn sort_rows(mut rows: Vec<EdgeRow>) -> Vec<EdgeRow> {
    rows.sort_by(|a, b| {
        let key = |row: &EdgeRow| {
            (
                row.src.namespace.clone(),
                row.src.name.clone(),
                row.dst.namespace.clone(),
                row.dst.name.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    rows
}

/// `√` for a secured edge, else why not.
pub fn secured_cell(row: &EdgeRow) -> String {
    if row.secured {
        GLYPH_OK.into()
    } else {
        row.no_tls_reason
            .clone()
            .filter(|reason| !reason.is_empty())
            .unwrap_or_else(|| "not secured".into())
    }
}

/// The edges table; `wide` adds CLIENT_ID and SERVER_ID.
pub fn render(rows: &[EdgeRow], wide: bool) -> String {
    let mut columns = vec![
        ("SRC", Align::Left),
        ("DST", Align::Left),
        ("SRC_NS", Align::Left),
        ("DST_NS", Align::Left),
    ];
    if wide {
        columns.extend([("CLIENT_ID", Align::Left), ("SERVER_ID", Align::Left)]);
    }
    columns.push(("SECURED", Align::Left));
    let mut table = Table::new(&columns);
    for row in rows {
        let mut cells = vec![
            row.src.name.clone(),
            row.dst.name.clone(),
            row.src.namespace.clone(),
            row.dst.namespace.clone(),
        ];
        if wide {
            let identity = |id: &Option<String>| id.clone().unwrap_or_else(|| "-".into());
            cells.push(identity(&row.client_id));
            cells.push(identity(&row.server_id));
        }
        cells.push(secured_cell(row));
        table.row(cells);
    }
    table.render()
}

/// `-o json`: one object per edge.
pub fn json_rows(rows: &[EdgeRow]) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = rows
        .iter()
        .map(|row| {
            json!({
                "src": row.src.name,
                "src_namespace": row.src.namespace,
                "dst": row.dst.name,
                "dst_namespace": row.dst.namespace,
                "client_id": row.client_id,
                "server_id": row.server_id,
                "secured": row.secured,
                "no_tls_reason": row.no_tls_reason,
                "rps": row.rps,
                "success": row.success_rate,
            })
        })
        .collect();
    serde_json::Value::Array(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::NamedWorkload;

    fn edge(src: &str, dst: &str, secured: bool) -> EdgeRow {
        let named = |name: &str| NamedWorkload {
            namespace: "demo".into(),
            name: name.into(),
        };
        EdgeRow {
            src: named(src),
            dst: named(dst),
            client_id: secured
                .then(|| format!("{src}.demo.serviceaccount.identity.weft.cluster.local")),
            server_id: secured
                .then(|| format!("{dst}.demo.serviceaccount.identity.weft.cluster.local")),
            secured,
            no_tls_reason: (!secured).then(|| "no_identity".into()),
            rps: Some(5.0),
            success_rate: Some(1.0),
        }
    }

    #[test]
    fn table_and_wide() {
        let rows = sort_rows(vec![
            edge("web", "books", false),
            edge("traffic", "web", true),
        ]);
        assert_eq!(
            render(&rows, false),
            "SRC       DST     SRC_NS   DST_NS   SECURED\n\
             traffic   web     demo     demo     √\n\
             web       books   demo     demo     no_identity\n"
        );
        let wide = render(&rows, true);
        assert!(
            wide.lines().nth(1).unwrap().contains(
                "traffic.demo.serviceaccount.identity.weft.cluster.local   web.demo.serviceaccount.identity.weft.cluster.local   √"
            ),
            "{wide}"
        );
        let cells: Vec<&str> = wide.lines().nth(2).unwrap().split_whitespace().collect();
        assert_eq!(
            cells,
            ["web", "books", "demo", "demo", "-", "-", "no_identity"]
        );
    }

    #[test]
    fn secured_cells_and_json() {
        let mut unsecured = edge("a", "b", false);
        assert_eq!(secured_cell(&unsecured), "no_identity");
        unsecured.no_tls_reason = None;
        assert_eq!(secured_cell(&unsecured), "not secured");
        let json = json_rows(&[edge("traffic", "web", true)]);
        assert_eq!(json[0]["src"], "traffic");
        assert_eq!(json[0]["dst_namespace"], "demo");
        assert_eq!(json[0]["secured"], true);
    }
}
