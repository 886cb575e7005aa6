//! `weft authz`: who may reach each port of a workload, from
//! `GET /api/authz` (the policy the controller serves the workload's proxy
//! over `InboundServerPolicies`), in the spirit of Linkerd's `linkerd viz
//! authz`: one line per authorization.
//!
//! ```text
//! PORT        SERVER                        ROUTE       AUTHORIZATION                       CLIENTS
//! 7000        web-admin                     -           -                                   -
//! 8080/http   web-http                      *           authorizationpolicy/web-clients     identity traffic.demo…, network 10.0.0.0/8
//! 8080/http   web-http                      books-get   authorizationpolicy/books-readers   service-account demo/books
//! 9090        default:all-unauthenticated   *           default:all-unauthenticated         unauthenticated
//! ```
//!
//! - SERVER: the Server selecting the port, `default:<policy>` where the
//!   default policy applies (Linkerd's name for its default servers).
//! - ROUTE: the route an authorization is limited to, `*` for the whole
//!   Server.
//! - AUTHORIZATION: `<kind>/<name>` as Linkerd's metric labels write it
//!   (`authorizationpolicy/web-clients`), `default:<policy>` for a default
//!   policy's; `-` (and CLIENTS `-`) on a port nothing is authorized on:
//!   every request is denied.
//! - `-o wide` adds PROTOCOL; `-o json` prints the API's document.

use std::process::ExitCode;

use crate::api::{self, AuthzResponse, PortAuthz, query};
use crate::global_options::GlobalOptions;
use crate::output::{Align, Format, Table, out, out_line};
use crate::resource::{Kind, parse_selection, resolve_namespace};

/// `weft authz` flags.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The workload: `NAME` or `workload/NAME`.
    #[arg(value_name = "WORKLOAD")]
    pub workload: String,
    /// Its namespace (default: the only one it is in).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Format,
}

/// Runs `weft authz`.
pub async fn run(global: &GlobalOptions, args: Args) -> anyhow::Result<ExitCode> {
    let name = workload_name(&args.workload)?;
    let client = api::client(global);
    let namespace =
        resolve_namespace(&client, Kind::Workload, &name, args.namespace.as_deref()).await?;
    let path = format!(
        "/api/authz{}",
        query(&[("namespace", Some(&namespace)), ("workload", Some(&name))])
    );
    let answer: AuthzResponse = client.get_json(&path).await?;
    match args.output {
        Format::Json => out_line(&serde_json::to_string_pretty(&answer)?)?,
        _ if answer.ports.is_empty() => eprintln!(
            "No ports found for workload {namespace}/{name} (default policy {}).",
            answer.default_policy
        ),
        format => out(&render(&answer, format == Format::Wide))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `web`, `workload/web`, `wl/web`, `deploy/web` → `web`.
pub fn workload_name(argument: &str) -> anyhow::Result<String> {
    if !argument.contains('/') {
        return Ok(argument.to_string());
    }
    let selection = parse_selection(&[argument.to_string()])?;
    match (selection.kind, selection.names.as_slice()) {
        (Kind::Workload, [name]) => Ok(name.clone()),
        _ => anyhow::bail!("weft authz takes a workload: NAME or workload/NAME"),
    }
}

/// The policy name a default server or authorization is called by:
/// `default_policy` may say where it comes from after the name
/// (`deny (annotation)`).
fn policy_name(default_policy: &str) -> &str {
    default_policy
        .split_whitespace()
        .next()
        .unwrap_or(default_policy)
}

/// The SERVER cell of a port.
pub fn server_cell(port: &PortAuthz, default_policy: &str) -> String {
    match &port.server {
        Some(server) => server.clone(),
        None => {
            // The port's default authorization names the policy that
            // applies to it; without one (deny), the workload's default.
            let policy = port
                .authorizations
                .iter()
                .find(|entry| entry.kind == "default")
                .map_or_else(|| policy_name(default_policy), |entry| &entry.name);
            format!("default:{policy}")
        }
    }
}

/// The table: one line per authorization, one `-` line for a port with none.
pub fn render(answer: &AuthzResponse, wide: bool) -> String {
    let mut columns = vec![
        ("PORT", Align::Left),
        ("SERVER", Align::Left),
        ("ROUTE", Align::Left),
        ("AUTHORIZATION", Align::Left),
        ("CLIENTS", Align::Left),
    ];
    if wide {
        columns.insert(2, ("PROTOCOL", Align::Left));
    }
    let mut table = Table::new(&columns);
    for port in &answer.ports {
        let port_cell = match &port.port_name {
            Some(name) => format!("{}/{name}", port.port),
            None => port.port.to_string(),
        };
        let server = server_cell(port, &answer.default_policy);
        let lines: Vec<[String; 3]> = if port.authorizations.is_empty() {
            vec![["-".into(), "-".into(), "-".into()]]
        } else {
            port.authorizations
                .iter()
                .map(|entry| {
                    let authorization = if entry.kind == "default" {
                        format!("default:{}", entry.name)
                    } else {
                        format!("{}/{}", entry.kind.to_lowercase(), entry.name)
                    };
                    let clients = if entry.clients.is_empty() {
                        "-".to_string()
                    } else {
                        entry.clients.join(", ")
                    };
                    let route = entry.route.clone().unwrap_or_else(|| "*".into());
                    [route, authorization, clients]
                })
                .collect()
        };
        for [route, authorization, clients] in lines {
            let mut cells = vec![port_cell.clone(), server.clone()];
            if wide {
                cells.push(port.protocol.clone());
            }
            cells.extend([route, authorization, clients]);
            table.row(cells);
        }
    }
    table.render()
}

#[cfg(test)]
mod tests;
