//! `weft diagnostics proxy-metrics`: a proxy's raw Prometheus text from its
//! admin `/metrics`, for one workload (`demo/web`, `workload/web -n demo`)
//! or every workload of a namespace (`ns/demo`). Admin addresses come from
//! `GET /api/workloads`, else from `up.json` when the controller is down.
//! Each proxy's text is framed like Linkerd's:
//!
//! ```text
//! #
//! # WORKLOAD demo/web (1 of 2)
//! #
//! <metrics>
//! ```

use std::process::ExitCode;

use crate::api::{self, WorkloadsResponse};
use crate::global_options::GlobalOptions;
use crate::output::{out, out_line};
use crate::resource::{Kind, ResourceError};

/// The diagnostics commands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print proxies' raw `/metrics`.
    ProxyMetrics(ProxyMetricsArgs),
}

/// `weft diagnostics proxy-metrics` flags.
#[derive(Debug, clap::Args)]
pub struct ProxyMetricsArgs {
    /// `NAMESPACE/WORKLOAD`, `workload/NAME` (with -n), `workload NAME` or `ns/NAMESPACE`.
    #[arg(required = true, value_name = "RESOURCE")]
    pub resource: Vec<String>,
    /// The workload's namespace (default: the only one it is in).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
}

/// Which proxies to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricsTarget {
    /// One workload; the namespace when known.
    Workload {
        /// Its namespace.
        namespace: Option<String>,
        /// Its name.
        name: String,
    },
    /// Every workload of a namespace.
    Namespace(String),
}

/// Parses the resource argument (pure): a first part that is a resource
/// type means `TYPE/NAME`, anything else `NAMESPACE/WORKLOAD`.
pub fn parse_target(
    arguments: &[String],
    namespace: Option<&str>,
) -> Result<MetricsTarget, ResourceError> {
    let (kind_text, name) = match arguments {
        [one] => match one.split_once('/') {
            Some((first, second))
                if !first.is_empty() && !second.is_empty() && !second.contains('/') =>
            {
                (first.to_string(), second.to_string())
            }
            _ => return Err(ResourceError::Malformed(one.clone())),
        },
        [kind, name] => (kind.clone(), name.clone()),
        [] => return Err(ResourceError::Missing),
        _ => return Err(ResourceError::Malformed(arguments.join(" "))),
    };
    match Kind::parse(&kind_text) {
        Ok(Kind::Workload) => Ok(MetricsTarget::Workload {
            namespace: namespace.map(str::to_string),
            name,
        }),
        Ok(Kind::Namespace) => Ok(MetricsTarget::Namespace(name)),
        Ok(_) => Err(ResourceError::UnknownKind(kind_text)),
        Err(_) if arguments.len() == 1 => Ok(MetricsTarget::Workload {
            namespace: Some(kind_text),
            name,
        }),
        Err(error) => Err(error),
    }
}

/// `(namespace, name, admin address)` of the target's proxies.
pub fn select_proxies(
    target: &MetricsTarget,
    known: &[(String, String, String)],
) -> Result<Vec<(String, String, String)>, ResourceError> {
    let selected: Vec<(String, String, String)> = known
        .iter()
        .filter(|(namespace, name, _)| match target {
            MetricsTarget::Workload {
                namespace: wanted_namespace,
                name: wanted,
            } => {
                name == wanted
                    && wanted_namespace
                        .as_ref()
                        .is_none_or(|wanted| wanted == namespace)
            }
            MetricsTarget::Namespace(wanted) => namespace == wanted,
        })
        .cloned()
        .collect();
    if let MetricsTarget::Workload { name, .. } = target {
        let namespaces: Vec<String> = selected
            .iter()
            .map(|(namespace, _, _)| namespace.clone())
            .collect();
        crate::resource::pick_namespace(Kind::Workload, name, namespaces)?;
    }
    Ok(selected)
}

/// Runs a diagnostics command.
pub async fn run(global: &GlobalOptions, command: Command) -> anyhow::Result<ExitCode> {
    let Command::ProxyMetrics(args) = command;
    let target = parse_target(&args.resource, args.namespace.as_deref())?;
    let client = api::client(global);
    let known = known_proxies(global, &client).await?;
    let proxies = select_proxies(&target, &known)?;
    if proxies.is_empty() {
        anyhow::bail!("no meshed workload with a proxy admin address matches");
    }
    let mut failures = 0;
    for (index, (namespace, name, admin)) in proxies.iter().enumerate() {
        out_line(&format!(
            "#\n# WORKLOAD {namespace}/{name} ({} of {})\n#",
            index + 1,
            proxies.len()
        ))?;
        let url = format!("http://{admin}/metrics");
        match client.get_text(&url).await {
            Ok(text) => out(&text)?,
            Err(error) => {
                failures += 1;
                out_line(&format!("# ERROR: {error}"))?;
            }
        }
    }
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Every meshed workload's proxy admin address: from the API, else `up.json`.
async fn known_proxies(
    global: &GlobalOptions,
    client: &api::ApiClient,
) -> anyhow::Result<Vec<(String, String, String)>> {
    match client.get_json::<WorkloadsResponse>("/api/workloads").await {
        Ok(answer) => Ok(answer
            .workloads
            .into_iter()
            .filter_map(|workload| {
                let admin = workload.proxy?.admin?;
                Some((workload.namespace, workload.name, admin))
            })
            .collect()),
        Err(error) => {
            let state = crate::state::load(&crate::state::state_dir(global))?;
            let Some(state) = state else {
                return Err(error.into());
            };
            eprintln!("weft: {error}; using the proxies listed in up.json");
            Ok(state
                .workloads
                .into_iter()
                .filter(|workload| !workload.admin.is_empty())
                .map(|workload| (workload.namespace, workload.name, workload.admin))
                .collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| item.to_string()).collect()
    }

    #[test]
    fn targets() {
        let workload = |namespace: Option<&str>, name: &str| MetricsTarget::Workload {
            namespace: namespace.map(str::to_string),
            name: name.into(),
        };
        for (arguments, namespace, expected) in [
            (vec!["demo/web"], None, Ok(workload(Some("demo"), "web"))),
            (
                vec!["workload/web"],
                Some("demo"),
                Ok(workload(Some("demo"), "web")),
            ),
            (vec!["deploy/web"], None, Ok(workload(None, "web"))),
            (vec!["wl", "web"], None, Ok(workload(None, "web"))),
            (
                vec!["ns/demo"],
                None,
                Ok(MetricsTarget::Namespace("demo".into())),
            ),
            (
                vec!["svc/web"],
                None,
                Err(ResourceError::UnknownKind("svc".into())),
            ),
            (
                vec!["web"],
                None,
                Err(ResourceError::Malformed("web".into())),
            ),
        ] {
            assert_eq!(
                parse_target(&strings(&arguments), namespace),
                expected,
                "{arguments:?}"
            );
        }
    }

    #[test]
    fn selection() {
        let known = vec![
            (
                "demo".to_string(),
                "web".to_string(),
                "127.0.0.1:1".to_string(),
            ),
            (
                "demo".to_string(),
                "books".to_string(),
                "127.0.0.1:2".to_string(),
            ),
            (
                "other".to_string(),
                "web".to_string(),
                "127.0.0.1:3".to_string(),
            ),
        ];
        let one = MetricsTarget::Workload {
            namespace: Some("demo".into()),
            name: "web".into(),
        };
        assert_eq!(select_proxies(&one, &known).unwrap()[0].2, "127.0.0.1:1");
        let ambiguous = MetricsTarget::Workload {
            namespace: None,
            name: "web".into(),
        };
        assert!(select_proxies(&ambiguous, &known).is_err());
        let namespace = MetricsTarget::Namespace("demo".into());
        assert_eq!(select_proxies(&namespace, &known).unwrap().len(), 2);
    }
}
