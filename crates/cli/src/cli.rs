//! The top-level command line: the global options (defined in
//! [`crate::global_options`], which the commands import) and the list of
//! commands (each command's own flags live in its module).

use clap::{Parser, Subcommand};

pub use crate::global_options::GlobalOptions;

/// weft: the service mesh that is five minutes from nothing to metrics.
#[derive(Debug, Parser)]
#[command(name = "weft", version, about)]
pub struct Cli {
    /// Options every command shares.
    #[command(flatten)]
    pub global: GlobalOptions,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a mesh on this host from a mesh file: controller, apps and proxies.
    Up(crate::up::Args),
    /// Run the built-in demo mesh (`weft up` with a demo mesh file).
    Demo(crate::demo::Args),
    /// Check the mesh's health: controller, certificates, proxies, mesh file, clocks
    /// (this host), or an installation on Kubernetes (`--kubernetes`, `--pre`, `--proxy`).
    Check(crate::check::Args),
    /// Golden metrics (success rate, RPS, latency, TCP) per namespace, workload, service.
    Stat(crate::stat::Args),
    /// Golden metrics per route.
    Routes(crate::routes::Args),
    /// Who may reach each port of a workload: Servers, routes, authorizations, clients.
    Authz(crate::authz::Args),
    /// Edges between workloads, with their identities and whether they are secured.
    Edges(crate::edges::Args),
    /// Live requests aggregated by path.
    Top(crate::top::Args),
    /// Live requests, one line per event.
    Tap(crate::tap::Args),
    /// Diagnostics: a proxy's raw metrics.
    #[command(subcommand)]
    Diagnostics(crate::diagnostics::Command),
    /// Print (and open, when possible) the dashboard's URL.
    Dashboard(crate::dashboard::Args),
    /// Print the Kubernetes manifests of the control plane (`--crds`: the CRDs) for `kubectl apply -f -`.
    Install(crate::install::Args),
    /// Print references to everything `weft install` creates, for `kubectl delete -f -`.
    Uninstall(crate::install::UninstallArgs),
    /// Add the weft proxy to the pod templates of Kubernetes YAML (files or stdin), as the
    /// controller's admission webhook does.
    Inject(crate::inject::Args),
    /// Remove the weft proxy from the pod templates of Kubernetes YAML (files or stdin).
    Uninject(crate::inject::UninjectArgs),
}
