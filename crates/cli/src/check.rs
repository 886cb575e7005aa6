//! `weft check`: the mesh's health in Linkerd's layout — categories of
//! checks, each `√` (ok), `‼` (warning) or `×` (error) with the error and a
//! hint — and exit code 1 when any check is an error (warnings keep 0).
//!
//! ```text
//!  fetch (I/O): /api/version (+ its Date header), /api/identity,
//!               /api/workloads, /api/mesh ──► Facts
//!  evaluate (pure): Facts + Thresholds ──► [Category { checks }]
//!  render (pure): table text, or Linkerd's `-o json`
//! ```
//!
//! Categories: `weft-controller` (API reachable, versions), `weft-identity`
//! (trust anchors and issuer valid now and not expiring, issuer signed by an
//! anchor), `weft-identity-data-plane` (every proxy's certificate valid for
//! longer than `--expiry-threshold`), `weft-data-plane` (every meshed proxy
//! answered the controller's last scrape), `weft-mesh-file` (the newest mesh
//! file loaded) and `clock` (the controller's `Date` within a few seconds of
//! ours). When the controller cannot be reached, only the first category runs.
//!
//! `weft check --kubernetes` (implied by `--pre`, `--proxy`, `--kubeconfig`
//! and `--context`) checks an installation on a Kubernetes cluster instead:
//! [`cluster`], with the same categories/render/JSON types.

pub mod cluster;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use serde_json::json;

use crate::api::{self, IdentityInfo, MeshStatus, Version, WorkloadsResponse};
use crate::global_options::GlobalOptions;
use crate::output::{Color, GLYPH_ERROR, GLYPH_OK, GLYPH_WARNING, color_wanted, paint};
use crate::tap::go_duration;

/// Anchors and issuers expiring sooner than this get a warning.
pub const WARNING_WINDOW: Duration = Duration::from_secs(60 * 24 * 3600);
/// Clocks further apart than this are an error.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5);

/// `weft check` flags.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A certificate (trust anchor, issuer or proxy) valid for less than this
    /// is an error (the mesh on this host; a cluster's anchors and issuer are
    /// errors when expired and warnings within 60 days).
    #[arg(long, value_parser = go_duration, default_value = "1h")]
    pub expiry_threshold: Duration,
    /// Output format: `table` or `json` (Linkerd's shape).
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: crate::output::Format,
    /// Check the mesh installed on a Kubernetes cluster instead of the one
    /// on this host (implied by --pre, --proxy, --kubeconfig and --context).
    #[arg(long)]
    pub kubernetes: bool,
    /// Kubernetes: check that the cluster can take `weft install` (instead
    /// of checking an installation).
    #[arg(long, conflicts_with = "proxy")]
    pub pre: bool,
    /// Kubernetes: check the installation and the meshed pods' proxies.
    #[arg(long)]
    pub proxy: bool,
    /// Kubernetes: the kubeconfig file (default: $KUBECONFIG, ~/.kube/config,
    /// else the in-cluster ServiceAccount).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubernetes: the kubeconfig context (default: its current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Kubernetes: the control plane's namespace [default: weft].
    #[arg(long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// Kubernetes, with --proxy: only the pods of this namespace (default: every namespace).
    #[arg(long, value_name = "NAMESPACE", requires = "proxy")]
    pub data_plane_namespace: Option<String>,
    /// Kubernetes: retry until every check passes or this long has passed
    /// (`5m`; default: no retry).
    #[arg(long, value_parser = go_duration, value_name = "DURATION")]
    pub wait: Option<Duration>,
}

impl Args {
    /// Whether the flags ask for the Kubernetes checks.
    pub fn kubernetes_mode(&self) -> bool {
        self.kubernetes
            || self.pre
            || self.proxy
            || self.kubeconfig.is_some()
            || self.context.is_some()
    }

    /// Which Kubernetes checks run.
    pub fn cluster_mode(&self) -> cluster::Mode {
        if self.pre {
            cluster::Mode::Pre
        } else if self.proxy {
            cluster::Mode::Proxy
        } else {
            cluster::Mode::ControlPlane
        }
    }

    /// What the Kubernetes checks read.
    pub fn cluster_target(&self) -> cluster::Target {
        cluster::Target {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            control_namespace: self
                .namespace
                .clone()
                .unwrap_or_else(|| weft_core::cluster::CONTROL_PLANE_NAMESPACE.to_string()),
            data_plane_namespace: self.data_plane_namespace.clone(),
        }
    }
}

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Passed.
    Success,
    /// Passed, but something needs attention soon.
    Warning,
    /// Failed.
    Error,
}

impl Outcome {
    fn json_name(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Warning => "warning",
            Outcome::Error => "error",
        }
    }
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked (`issuer cert is within its validity period`).
    pub description: String,
    /// The outcome.
    pub outcome: Outcome,
    /// What is wrong, unless it passed.
    pub error: Option<String>,
    /// What to do about it, unless it passed.
    pub hint: Option<String>,
}

impl Check {
    fn success(description: impl Into<String>) -> Self {
        Self {
            description: description.into(),
            outcome: Outcome::Success,
            error: None,
            hint: None,
        }
    }

    fn failed(description: impl Into<String>, outcome: Outcome, error: String, hint: &str) -> Self {
        Self {
            description: description.into(),
            outcome,
            error: Some(error),
            hint: Some(hint.to_string()),
        }
    }
}

/// A named group of checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Category {
    /// Its name (`weft-identity`).
    pub name: String,
    /// Its checks, in order.
    pub checks: Vec<Check>,
}

/// Everything the checks look at, fetched up front.
#[derive(Debug, Clone)]
pub struct Facts {
    /// This host's clock (Unix seconds).
    pub now_unix: f64,
    /// `/api/version`, or why it failed.
    pub version: Result<Version, String>,
    /// The controller's `Date` header (Unix seconds).
    pub server_date_unix: Option<f64>,
    /// `/api/identity`.
    pub identity: Result<IdentityInfo, String>,
    /// `/api/workloads`.
    pub workloads: Result<WorkloadsResponse, String>,
    /// `/api/mesh`.
    pub mesh: Result<MeshStatus, String>,
}

/// The limits the checks use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Valid for less than this: error.
    pub expiry: Duration,
    /// Anchors and issuer valid for less than this: warning.
    pub warning: Duration,
    /// Largest clock difference.
    pub clock_skew: Duration,
}

/// Runs `weft check`.
pub async fn run(global: &GlobalOptions, args: Args) -> anyhow::Result<ExitCode> {
    if args.kubernetes_mode() {
        return cluster::run(
            args.cluster_target(),
            args.cluster_mode(),
            args.wait,
            args.output,
        )
        .await;
    }
    if args.namespace.is_some() || args.wait.is_some() {
        anyhow::bail!("--namespace and --wait check a Kubernetes cluster: add --kubernetes");
    }
    let client = api::client(global);
    let facts = fetch(&client).await;
    let thresholds = Thresholds {
        expiry: args.expiry_threshold,
        warning: WARNING_WINDOW.max(args.expiry_threshold),
        clock_skew: MAX_CLOCK_SKEW,
    };
    let categories = evaluate(&facts, &thresholds);
    match args.output {
        crate::output::Format::Json => {
            println!("{}", serde_json::to_string_pretty(&to_json(&categories))?)
        }
        _ => print!("{}", render(&categories, color_wanted())),
    }
    Ok(if passed(&categories) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Fetches the facts (the four API calls run together).
async fn fetch(client: &api::ApiClient) -> Facts {
    let now_unix = unix(SystemTime::now());
    let (version, identity, workloads, mesh) = tokio::join!(
        client.get_json_dated::<Version>("/api/version"),
        client.get_json::<IdentityInfo>("/api/identity"),
        client.get_json::<WorkloadsResponse>("/api/workloads"),
        client.get_json::<MeshStatus>("/api/mesh"),
    );
    let (version, server_date_unix) = match version {
        Ok(dated) => (Ok(dated.value), dated.date.map(unix)),
        Err(error) => (Err(error.to_string()), None),
    };
    Facts {
        now_unix,
        version,
        server_date_unix,
        identity: identity.map_err(|error| error.to_string()),
        workloads: workloads.map_err(|error| error.to_string()),
        mesh: mesh.map_err(|error| error.to_string()),
    }
}

fn unix(time: SystemTime) -> f64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64())
}

/// `90061` → `1d1h`, `5400` → `1h30m`, `3600` → `1h`, `90` → `1m30s`, `-30` → `-30s`.
pub fn human_duration(seconds: f64) -> String {
    let sign = if seconds < 0.0 { "-" } else { "" };
    let total = seconds.abs().round() as u64;
    let (days, hours, minutes, secs) = (
        total / 86_400,
        total % 86_400 / 3600,
        total % 3600 / 60,
        total % 60,
    );
    let pair = |big: u64, big_unit: &str, small: u64, small_unit: &str| {
        if small == 0 {
            format!("{big}{big_unit}")
        } else {
            format!("{big}{big_unit}{small}{small_unit}")
        }
    };
    let text = if days > 0 {
        pair(days, "d", hours, "h")
    } else if hours > 0 {
        pair(hours, "h", minutes, "m")
    } else if minutes > 0 {
        pair(minutes, "m", secs, "s")
    } else {
        format!("{secs}s")
    };
    format!("{sign}{text}")
}

/// All checks from the facts.
pub fn evaluate(facts: &Facts, thresholds: &Thresholds) -> Vec<Category> {
    let mut categories = vec![controller_category(facts)];
    if facts.version.is_err() {
        return categories;
    }
    categories.extend(identity_categories(facts, thresholds));
    categories.push(data_plane_category(facts));
    categories.push(mesh_file_category(facts));
    categories.push(clock_category(facts, thresholds));
    categories
}

const HINT_REACH: &str = "start the mesh with `weft up`, or point --api-addr (WEFT_API_ADDR) at the controller's --web-addr";
const HINT_VERSION: &str = "use the weft CLI built with the running controller";
const HINT_ANCHOR: &str = "make new trust anchors and an issuer (`weft-controller identity init --force`) and restart the mesh";
const HINT_ISSUER: &str = "sign a new issuer with `weft-controller identity rotate-issuer --dir <state dir>`; the controller reloads it";
const HINT_LEAF: &str = "proxies renew at 70 % of their certificate's lifetime: check the proxy's log and that the controller's Identity service is reachable, or raise --identity-issuance-lifetime";
const HINT_IDENTITY_OFF: &str = "start the controller with --identity-issuer-dir and --identity-trust-anchors (`weft up` does) so proxies use mutual TLS";
const HINT_SCRAPE: &str = "check the proxy is running and its admin port (the mesh file's proxy.adminPort) answers /metrics; see its log";
const HINT_MESH: &str =
    "fix the mesh file (the last good version keeps serving) — the error says where";
const HINT_CLOCK: &str = "synchronise the clocks (NTP); certificates are checked against them";

fn controller_category(facts: &Facts) -> Category {
    let mut checks = Vec::new();
    match &facts.version {
        Ok(version) => {
            checks.push(Check::success("can query the controller API"));
            let cli = env!("CARGO_PKG_VERSION");
            if version.version == cli {
                checks.push(Check::success("controller and cli versions match"));
            } else {
                checks.push(Check::failed(
                    "controller and cli versions match",
                    Outcome::Warning,
                    format!("controller is {}, cli is {cli}", version.version),
                    HINT_VERSION,
                ));
            }
        }
        Err(error) => checks.push(Check::failed(
            "can query the controller API",
            Outcome::Error,
            error.clone(),
            HINT_REACH,
        )),
    }
    Category {
        name: "weft-controller".into(),
        checks,
    }
}

/// A certificate's two checks: valid now; valid for long enough.
fn validity_checks(
    (validity, long_enough_prefix): (&str, &str),
    certificates: &[(String, f64, f64)],
    now: f64,
    thresholds: &Thresholds,
    hint: &str,
) -> Vec<Check> {
    let mut invalid = Vec::new();
    let mut expiring = Vec::new();
    let mut warnings = Vec::new();
    for (subject, not_before, not_after) in certificates {
        if now < *not_before {
            invalid.push(format!(
                "{subject} is not valid before {}",
                human_duration(not_before - now)
            ));
        } else if now > *not_after {
            invalid.push(format!(
                "{subject} expired {} ago",
                human_duration(now - not_after)
            ));
        } else if not_after - now < thresholds.expiry.as_secs_f64() {
            expiring.push(format!(
                "{subject} expires in {} (within --expiry-threshold {})",
                human_duration(not_after - now),
                human_duration(thresholds.expiry.as_secs_f64())
            ));
        } else if not_after - now < thresholds.warning.as_secs_f64() {
            warnings.push(format!(
                "{subject} expires in {}",
                human_duration(not_after - now)
            ));
        }
    }
    let validity = validity.to_string();
    let long_enough = format!(
        "{long_enough_prefix} {}",
        human_duration(thresholds.warning.as_secs_f64())
    );
    let mut checks = Vec::new();
    if invalid.is_empty() {
        checks.push(Check::success(validity));
    } else {
        checks.push(Check::failed(
            validity,
            Outcome::Error,
            invalid.join("; "),
            hint,
        ));
    }
    if !expiring.is_empty() {
        checks.push(Check::failed(
            long_enough,
            Outcome::Error,
            expiring.join("; "),
            hint,
        ));
    } else if !warnings.is_empty() {
        checks.push(Check::failed(
            long_enough,
            Outcome::Warning,
            warnings.join("; "),
            hint,
        ));
    } else if invalid.is_empty() {
        checks.push(Check::success(long_enough));
    }
    checks
}

fn identity_categories(facts: &Facts, thresholds: &Thresholds) -> Vec<Category> {
    let identity = match &facts.identity {
        Ok(identity) => identity,
        Err(error) => {
            return vec![Category {
                name: "weft-identity".into(),
                checks: vec![Check::failed(
                    "can read the identity configuration",
                    Outcome::Error,
                    error.clone(),
                    HINT_REACH,
                )],
            }];
        }
    };
    if !identity.enabled {
        return vec![Category {
            name: "weft-identity".into(),
            checks: vec![Check::failed(
                "identity is enabled",
                Outcome::Warning,
                "the Identity service is off: proxies talk without mutual TLS".into(),
                HINT_IDENTITY_OFF,
            )],
        }];
    }
    let now = facts.now_unix;
    let mut checks = Vec::new();
    let anchors: Vec<(String, f64, f64)> = identity
        .trust_anchors
        .iter()
        .map(|anchor| {
            (
                format!("trust anchor {}", anchor.subject),
                anchor.not_before_unix as f64,
                anchor.not_after_unix as f64,
            )
        })
        .collect();
    if anchors.is_empty() {
        checks.push(Check::failed(
            "trust anchors are present",
            Outcome::Error,
            "the controller reports no trust anchor".into(),
            HINT_ANCHOR,
        ));
    } else {
        checks.extend(validity_checks(
            (
                "trust anchors are within their validity period",
                "trust anchors are valid for at least",
            ),
            &anchors,
            now,
            thresholds,
            HINT_ANCHOR,
        ));
    }
    match &identity.issuer {
        None => checks.push(Check::failed(
            "issuer cert is present",
            Outcome::Error,
            "the controller reports no issuer certificate".into(),
            HINT_ISSUER,
        )),
        Some(issuer) => {
            let certificate = [(
                format!("issuer {}", issuer.subject),
                issuer.not_before_unix as f64,
                issuer.not_after_unix as f64,
            )];
            checks.extend(validity_checks(
                (
                    "issuer cert is within its validity period",
                    "issuer cert is valid for at least",
                ),
                &certificate,
                now,
                thresholds,
                HINT_ISSUER,
            ));
            if issuer.issued_by_anchor {
                checks.push(Check::success("issuer cert is issued by the trust anchor"));
            } else {
                checks.push(Check::failed(
                    "issuer cert is issued by the trust anchor",
                    Outcome::Error,
                    format!(
                        "issuer {} does not chain to any trust anchor",
                        issuer.subject
                    ),
                    HINT_ISSUER,
                ));
            }
        }
    }
    let identity_category = Category {
        name: "weft-identity".into(),
        checks,
    };
    vec![identity_category, leaf_category(facts, thresholds)]
}

fn leaf_category(facts: &Facts, thresholds: &Thresholds) -> Category {
    let description = format!(
        "data plane proxies' certificates are valid for at least {}",
        human_duration(thresholds.expiry.as_secs_f64())
    );
    let check = match &facts.workloads {
        Err(error) => Check::failed(description, Outcome::Error, error.clone(), HINT_REACH),
        Ok(answer) => {
            let mut expiring = Vec::new();
            let mut unknown = Vec::new();
            for workload in answer.workloads.iter().filter(|workload| workload.meshed) {
                let name = format!("{}/{}", workload.namespace, workload.name);
                match workload.cert_expiry_unix {
                    None => unknown.push(name),
                    Some(expiry) if expiry - facts.now_unix < thresholds.expiry.as_secs_f64() => {
                        let left = expiry - facts.now_unix;
                        if left < 0.0 {
                            expiring.push(format!("{name} expired {} ago", human_duration(-left)));
                        } else {
                            expiring.push(format!("{name} expires in {}", human_duration(left)));
                        }
                    }
                    Some(_) => {}
                }
            }
            if !expiring.is_empty() {
                let mut error = expiring.join("; ");
                if let Some(note) = threshold_beyond_renewal(facts, thresholds) {
                    error.push_str(&format!(" ({note})"));
                }
                Check::failed(description, Outcome::Error, error, HINT_LEAF)
            } else if !unknown.is_empty() {
                Check::failed(
                    description,
                    Outcome::Warning,
                    format!("no certificate reported by {}", unknown.join(", ")),
                    HINT_SCRAPE,
                )
            } else {
                Check::success(description)
            }
        }
    };
    Category {
        name: "weft-identity-data-plane".into(),
        checks: vec![check],
    }
}

/// Proxies renew their certificate at this share of its lifetime.
pub const LEAF_RENEWAL_FRACTION: f64 = 0.7;

/// The least time a healthy proxy's certificate has left: it renews at
/// [`LEAF_RENEWAL_FRACTION`] of the lifetime (24h leaves: 7h12m).
pub fn healthy_leaf_minimum(leaf_lifetime: Duration) -> Duration {
    leaf_lifetime.mul_f64(1.0 - LEAF_RENEWAL_FRACTION)
}

/// When `--expiry-threshold` is longer than a healthy proxy's certificate
/// always keeps, saying so: such a threshold fails a mesh that is fine.
fn threshold_beyond_renewal(facts: &Facts, thresholds: &Thresholds) -> Option<String> {
    let lifetime = Duration::from_secs(facts.identity.as_ref().ok()?.leaf_lifetime_seconds?);
    let minimum = healthy_leaf_minimum(lifetime);
    (thresholds.expiry > minimum).then(|| {
        format!(
            "--expiry-threshold {} is longer than the {} a healthy proxy keeps: it renews its {} certificate at 70 % of its life; use a threshold below {}",
            human_duration(thresholds.expiry.as_secs_f64()),
            human_duration(minimum.as_secs_f64()),
            human_duration(lifetime.as_secs_f64()),
            human_duration(minimum.as_secs_f64()),
        )
    })
}

fn data_plane_category(facts: &Facts) -> Category {
    let description = "data plane proxies are ready";
    let check = match &facts.workloads {
        Err(error) => Check::failed(description, Outcome::Error, error.clone(), HINT_REACH),
        Ok(answer) => {
            let meshed: Vec<_> = answer.workloads.iter().filter(|w| w.meshed).collect();
            let down: Vec<String> = meshed
                .iter()
                .filter(|workload| !workload.scrape.as_ref().is_some_and(|scrape| scrape.up))
                .map(|workload| {
                    let why = workload
                        .scrape
                        .as_ref()
                        .and_then(|scrape| scrape.error.clone())
                        .unwrap_or_else(|| "not scraped yet".into());
                    format!("{}/{}: {why}", workload.namespace, workload.name)
                })
                .collect();
            if meshed.is_empty() {
                Check::failed(
                    description,
                    Outcome::Warning,
                    "no meshed workloads".into(),
                    "mark workloads `meshed: true` in the mesh file and run their proxies",
                )
            } else if down.is_empty() {
                Check::success(description)
            } else {
                Check::failed(description, Outcome::Error, down.join("; "), HINT_SCRAPE)
            }
        }
    };
    Category {
        name: "weft-data-plane".into(),
        checks: vec![check],
    }
}

fn mesh_file_category(facts: &Facts) -> Category {
    let description = "mesh file is valid";
    let check = match &facts.mesh {
        Err(error) => Check::failed(description, Outcome::Error, error.clone(), HINT_REACH),
        Ok(mesh) if mesh.valid => Check::success(description),
        Ok(mesh) => Check::failed(
            description,
            Outcome::Error,
            format!(
                "{}: {}",
                mesh.path,
                mesh.error.clone().unwrap_or_else(|| "rejected".into())
            ),
            HINT_MESH,
        ),
    };
    Category {
        name: "weft-mesh-file".into(),
        checks: vec![check],
    }
}

fn clock_category(facts: &Facts, thresholds: &Thresholds) -> Category {
    let description = "no clock skew detected";
    let check = match facts.server_date_unix {
        None => Check::failed(
            description,
            Outcome::Warning,
            "the controller sent no Date header".into(),
            HINT_CLOCK,
        ),
        // The Date header has whole seconds: allow one more.
        Some(date)
            if (date - facts.now_unix).abs() <= thresholds.clock_skew.as_secs_f64() + 1.0 =>
        {
            Check::success(description)
        }
        Some(date) => Check::failed(
            description,
            Outcome::Error,
            format!(
                "the controller's clock is {} {} this host's",
                human_duration((date - facts.now_unix).abs()),
                if date > facts.now_unix {
                    "ahead of"
                } else {
                    "behind"
                }
            ),
            HINT_CLOCK,
        ),
    };
    Category {
        name: "clock".into(),
        checks: vec![check],
    }
}

/// Whether no check is an error.
pub fn passed(categories: &[Category]) -> bool {
    categories
        .iter()
        .flat_map(|category| &category.checks)
        .all(|check| check.outcome != Outcome::Error)
}

/// The table layout: a header per category, a glyph per check, errors and
/// hints indented, then the overall status.
pub fn render(categories: &[Category], color: bool) -> String {
    let mut text = String::new();
    for category in categories {
        text.push_str(&category.name);
        text.push('\n');
        text.push_str(&"-".repeat(category.name.chars().count()));
        text.push('\n');
        for check in &category.checks {
            let glyph = match check.outcome {
                Outcome::Success => paint(GLYPH_OK, Color::Green, color),
                Outcome::Warning => paint(GLYPH_WARNING, Color::Yellow, color),
                Outcome::Error => paint(GLYPH_ERROR, Color::Red, color),
            };
            text.push_str(&format!("{glyph} {}\n", check.description));
            if let Some(error) = &check.error {
                text.push_str(&format!("    {error}\n"));
            }
            match &check.hint {
                // Linkerd's form, for the cluster checks' documentation links.
                Some(url) if url.starts_with("https://") => {
                    text.push_str(&format!("    see {url} for hints\n"))
                }
                Some(hint) => text.push_str(&format!("    hint: {hint}\n")),
                None => {}
            }
        }
        text.push('\n');
    }
    let status = if passed(categories) {
        paint(GLYPH_OK, Color::Green, color)
    } else {
        paint(GLYPH_ERROR, Color::Red, color)
    };
    text.push_str(&format!("Status check results are {status}\n"));
    text
}

/// Linkerd's `-o json` shape.
pub fn to_json(categories: &[Category]) -> serde_json::Value {
    json!({
        "success": passed(categories),
        "categories": categories.iter().map(|category| json!({
            "categoryName": category.name,
            "checks": category.checks.iter().map(|check| json!({
                "description": check.description,
                "hint": check.hint.clone().unwrap_or_default(),
                "error": check.error.clone().unwrap_or_default(),
                "result": check.outcome.json_name(),
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Certificate, IssuerCertificate, Scrape, WorkloadInfo};

    const NOW: f64 = 1_800_000_000.0;
    const DAY: f64 = 86_400.0;

    fn thresholds() -> Thresholds {
        Thresholds {
            expiry: Duration::from_secs(3600),
            warning: WARNING_WINDOW,
            clock_skew: MAX_CLOCK_SKEW,
        }
    }

    fn workload(name: &str, up: bool, expiry: Option<f64>) -> WorkloadInfo {
        WorkloadInfo {
            namespace: "demo".into(),
            name: name.into(),
            meshed: true,
            scrape: Some(Scrape {
                up,
                last_unix: Some(NOW),
                error: (!up).then(|| "connection refused".into()),
            }),
            cert_expiry_unix: expiry,
            ..Default::default()
        }
    }

    fn healthy() -> Facts {
        Facts {
            now_unix: NOW,
            version: Ok(Version {
                version: env!("CARGO_PKG_VERSION").into(),
                metrics_source: "scrape".into(),
            }),
            server_date_unix: Some(NOW + 1.0),
            identity: Ok(IdentityInfo {
                enabled: true,
                trust_domain: Some("weft.cluster.local".into()),
                trust_anchors: vec![Certificate {
                    subject: "CN=root".into(),
                    not_before_unix: (NOW - DAY) as i64,
                    not_after_unix: (NOW + 365.0 * DAY) as i64,
                }],
                issuer: Some(IssuerCertificate {
                    subject: "CN=issuer".into(),
                    not_before_unix: (NOW - DAY) as i64,
                    not_after_unix: (NOW + 365.0 * DAY) as i64,
                    issued_by_anchor: true,
                }),
                leaf_lifetime_seconds: Some(DAY as u64),
            }),
            workloads: Ok(WorkloadsResponse {
                workloads: vec![workload("web", true, Some(NOW + DAY))],
            }),
            mesh: Ok(MeshStatus {
                path: "mesh.yaml".into(),
                valid: true,
                error: None,
                last_load_unix: Some(NOW),
            }),
        }
    }

    /// `(category, description, outcome)` of every check that is not a success.
    fn problems(facts: &Facts) -> Vec<(String, String, Outcome)> {
        evaluate(facts, &thresholds())
            .into_iter()
            .flat_map(|category| {
                category
                    .checks
                    .into_iter()
                    .filter(|check| check.outcome != Outcome::Success)
                    .map(move |check| (category.name.clone(), check.description, check.outcome))
            })
            .collect()
    }

    /// The README's `weft check --expiry-threshold X` example passes on a
    /// healthy fresh mesh of 24h leaves, even for a proxy about to renew.
    #[test]
    fn the_readmes_expiry_threshold_passes_a_healthy_mesh() {
        let readme = include_str!("../../../README.md");
        let example = readme
            .lines()
            .find_map(|line| line.trim().strip_prefix("weft check --expiry-threshold "))
            .expect("README shows `weft check --expiry-threshold`");
        let threshold = go_duration(example.split_whitespace().next().unwrap()).unwrap();
        let thresholds = Thresholds {
            expiry: threshold,
            warning: WARNING_WINDOW.max(threshold),
            clock_skew: MAX_CLOCK_SKEW,
        };
        let just_issued = NOW + DAY;
        let about_to_renew =
            NOW + healthy_leaf_minimum(Duration::from_secs(DAY as u64)).as_secs_f64() + 1.0;
        for expiry in [just_issued, about_to_renew] {
            let mut facts = healthy();
            facts.workloads = Ok(WorkloadsResponse {
                workloads: vec![workload("web", true, Some(expiry))],
            });
            assert!(
                passed(&evaluate(&facts, &thresholds)),
                "README's threshold {example} fails a healthy proxy whose leaf expires at {expiry}: {:?}",
                evaluate(&facts, &thresholds)
            );
        }
        // A threshold past what a healthy proxy keeps fails, and says why.
        let mut facts = healthy();
        facts.workloads = Ok(WorkloadsResponse {
            workloads: vec![workload("web", true, Some(about_to_renew))],
        });
        let strict = Thresholds {
            expiry: Duration::from_secs(DAY as u64),
            ..thresholds
        };
        let categories = evaluate(&facts, &strict);
        let leaf = &categories
            .iter()
            .find(|category| category.name == "weft-identity-data-plane")
            .unwrap()
            .checks[0];
        let error = leaf.error.as_deref().unwrap();
        assert!(
            error.contains("--expiry-threshold 1d is longer than the 7h12m a healthy proxy keeps"),
            "{error}"
        );
    }

    #[test]
    fn a_healthy_mesh_passes() {
        let categories = evaluate(&healthy(), &thresholds());
        let names: Vec<&str> = categories.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "weft-controller",
                "weft-identity",
                "weft-identity-data-plane",
                "weft-data-plane",
                "weft-mesh-file",
                "clock"
            ]
        );
        assert!(passed(&categories));
        assert_eq!(problems(&healthy()), []);
    }

    #[test]
    fn each_failure_is_found() {
        type Edit = fn(&mut Facts);
        let cases: Vec<(&str, Edit, &str, &str, Outcome)> = vec![
            (
                "unreachable",
                |f| f.version = Err("connection refused".into()),
                "weft-controller",
                "can query the controller API",
                Outcome::Error,
            ),
            (
                "old cli",
                |f| f.version.as_mut().unwrap().version = "0.0.1".into(),
                "weft-controller",
                "controller and cli versions match",
                Outcome::Warning,
            ),
            (
                "anchor expired",
                |f| {
                    f.identity.as_mut().unwrap().trust_anchors[0].not_after_unix =
                        (NOW - 10.0) as i64
                },
                "weft-identity",
                "trust anchors are within their validity period",
                Outcome::Error,
            ),
            (
                "anchor expiring within the threshold",
                |f| {
                    f.identity.as_mut().unwrap().trust_anchors[0].not_after_unix =
                        (NOW + 600.0) as i64
                },
                "weft-identity",
                "trust anchors are valid for at least 60d",
                Outcome::Error,
            ),
            (
                "issuer expiring within 60 days",
                |f| {
                    f.identity
                        .as_mut()
                        .unwrap()
                        .issuer
                        .as_mut()
                        .unwrap()
                        .not_after_unix = (NOW + 10.0 * DAY) as i64
                },
                "weft-identity",
                "issuer cert is valid for at least 60d",
                Outcome::Warning,
            ),
            (
                "issuer not yet valid",
                |f| {
                    f.identity
                        .as_mut()
                        .unwrap()
                        .issuer
                        .as_mut()
                        .unwrap()
                        .not_before_unix = (NOW + 100.0) as i64
                },
                "weft-identity",
                "issuer cert is within its validity period",
                Outcome::Error,
            ),
            (
                "issuer not signed by the anchor",
                |f| {
                    f.identity
                        .as_mut()
                        .unwrap()
                        .issuer
                        .as_mut()
                        .unwrap()
                        .issued_by_anchor = false
                },
                "weft-identity",
                "issuer cert is issued by the trust anchor",
                Outcome::Error,
            ),
            (
                "identity off",
                |f| f.identity.as_mut().unwrap().enabled = false,
                "weft-identity",
                "identity is enabled",
                Outcome::Warning,
            ),
            (
                "leaf expiring",
                |f| {
                    f.workloads = Ok(WorkloadsResponse {
                        workloads: vec![workload("web", true, Some(NOW + 60.0))],
                    })
                },
                "weft-identity-data-plane",
                "data plane proxies' certificates are valid for at least 1h",
                Outcome::Error,
            ),
            (
                "leaf unknown",
                |f| {
                    f.workloads = Ok(WorkloadsResponse {
                        workloads: vec![workload("web", true, None)],
                    })
                },
                "weft-identity-data-plane",
                "data plane proxies' certificates are valid for at least 1h",
                Outcome::Warning,
            ),
            (
                "proxy down",
                |f| {
                    f.workloads = Ok(WorkloadsResponse {
                        workloads: vec![workload("web", false, Some(NOW + DAY))],
                    })
                },
                "weft-data-plane",
                "data plane proxies are ready",
                Outcome::Error,
            ),
            (
                "mesh file rejected",
                |f| {
                    let mesh = f.mesh.as_mut().unwrap();
                    mesh.valid = false;
                    mesh.error = Some("line 3: bad".into());
                },
                "weft-mesh-file",
                "mesh file is valid",
                Outcome::Error,
            ),
            (
                "clock ahead",
                |f| f.server_date_unix = Some(NOW + 60.0),
                "clock",
                "no clock skew detected",
                Outcome::Error,
            ),
            (
                "no date",
                |f| f.server_date_unix = None,
                "clock",
                "no clock skew detected",
                Outcome::Warning,
            ),
        ];
        for (name, edit, category, description, outcome) in cases {
            let mut facts = healthy();
            edit(&mut facts);
            let found = problems(&facts);
            assert_eq!(
                found,
                [(category.to_string(), description.to_string(), outcome)],
                "{name}"
            );
            assert_eq!(
                passed(&evaluate(&facts, &thresholds())),
                outcome != Outcome::Error,
                "{name}"
            );
        }
    }

    #[test]
    fn unreachable_stops_after_the_first_category() {
        let mut facts = healthy();
        facts.version = Err("cannot reach".into());
        assert_eq!(evaluate(&facts, &thresholds()).len(), 1);
    }

    #[test]
    fn rendering() {
        let mut facts = healthy();
        facts.mesh = Ok(MeshStatus {
            path: "mesh.yaml".into(),
            valid: false,
            error: Some("line 3: bad".into()),
            last_load_unix: None,
        });
        let categories = evaluate(&facts, &thresholds());
        let text = render(&categories, false);
        assert!(text.starts_with(
            "weft-controller\n---------------\n√ can query the controller API\n√ controller and cli versions match\n\n"
        ), "{text}");
        assert!(text.contains(&format!(
            "weft-mesh-file\n--------------\n× mesh file is valid\n    mesh.yaml: line 3: bad\n    hint: {HINT_MESH}\n\n"
        )), "{text}");
        assert!(text.ends_with("\nStatus check results are ×\n"), "{text}");
        assert!(
            render(&evaluate(&healthy(), &thresholds()), false)
                .ends_with("Status check results are √\n")
        );
        let colored = render(&categories, true);
        assert!(
            colored.contains("\x1b[1;32m√\x1b[0m can query"),
            "{colored}"
        );
        let json = to_json(&categories);
        assert_eq!(json["success"], false);
        assert_eq!(json["categories"][0]["categoryName"], "weft-controller");
        assert_eq!(json["categories"][0]["checks"][0]["result"], "success");
        assert_eq!(json["categories"][0]["checks"][0]["error"], "");
        assert_eq!(json["categories"][4]["checks"][0]["result"], "error");
        assert_eq!(json["categories"][4]["checks"][0]["hint"], HINT_MESH);
    }

    #[test]
    fn human_durations() {
        for (seconds, expected) in [
            (0.0, "0s"),
            (59.4, "59s"),
            (90.0, "1m30s"),
            (5400.0, "1h30m"),
            (90_061.0, "1d1h"),
            (3600.0, "1h"),
            (60.0 * DAY, "60d"),
            (-30.0, "-30s"),
        ] {
            assert_eq!(human_duration(seconds), expected);
        }
    }
}
